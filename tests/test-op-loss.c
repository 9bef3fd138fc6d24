/* test-op-loss.c — the training losses: each reference gradient against
 * central finite differences of the reference loss (double), the
 * references and GPU ops against torch (tests/golden/loss-torch.py: official
 * SupConLoss, MoCo InfoNCE, F.cross_entropy, BCE), and the GPU ops against
 * the references over odd shapes, plus the argument checks. */
#include "dcr-test-util.h"
#include "dcr-op-grad.h"
#include "dcr-op-loss.h"
#include "golden/loss-torch.h"

#include <math.h>
#include <string.h>

static DcrTensor *
tensor_f32 (int ndim, const gint64 *shape, const float *data)
{
  return dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, ndim, shape, data);
}

static DcrTensor *
tensor_i32 (gint64 n, const gint32 *data)
{
  g_autoptr (GError) err = NULL;
  DcrTensor *t = dcr_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, DCR_I32, 1, &n, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_tensor_upload (t, data, &err));
  g_assert_no_error (err);
  return t;
}

static DcrTensor *
scalar_tensor (void)
{
  gint64 one = 1;
  float nan = NAN;
  return tensor_f32 (1, &one, &nan);
}

static float
read_scalar (DcrTensor *t)
{
  float v;
  dcr_test_download_into (t, &v);
  return v;
}

static gint32 *
random_labels (gsize n, guint32 seed, int lo, int hi)
{
  g_autofree float *f = dcr_test_random_floats (n, seed, 0, 1);
  gint32 *y = g_new (gint32, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    y[i] = lo + MIN ((int) (f[i] * (hi - lo + 1)), hi - lo);
  return y;
}

/* rows scaled to unit length, in place */
static void
normalize_rows (float *x, gint64 rows, gint64 d)
{
  for (gint64 r = 0; r < rows; r++)
    {
      double n2 = 0;
      for (gint64 c = 0; c < d; c++)
        n2 += (double) x[r * d + c] * x[r * d + c];
      double inv = 1 / MAX (sqrt (n2), 1e-12);
      for (gint64 c = 0; c < d; c++)
        x[r * d + c] = (float) (x[r * d + c] * inv);
    }
}

static void
assert_loss (const char *what, double got, double want, double rtol)
{
  if (!(fabs (got - want) <= 1e-6 + rtol * fabs (want)))
    g_test_fail_printf ("%s: loss %.9g, expected %.9g", what, got, want);
}

/* ---- finite differences of the reference losses --------------------------------- */

typedef double (*Objective) (gpointer data);

/* Central differences with respect to each element of the float array var
 * (read by the objective through data). The step is taken in float and the
 * actual float difference divides, so the reference sees exact inputs. */
static void
check_fd (const char *what, float *var, gsize n, Objective f, gpointer data, const float *grad, double atol,
          double rtol)
{
  for (gsize i = 0; i < n; i++)
    {
      float v = var[i];
      double h = 1e-4 * MAX (1.0, fabs (v));
      float vp = (float) (v + h), vm = (float) (v - h);
      var[i] = vp;
      double fp = f (data);
      var[i] = vm;
      double fm = f (data);
      var[i] = v;
      double fd = (fp - fm) / ((double) vp - (double) vm);
      if (!(fabs (fd - grad[i]) <= atol + rtol * fabs (fd)))
        {
          g_test_fail_printf ("%s: d/d[%" G_GSIZE_FORMAT "] is %.9g, finite differences say %.9g", what, i,
                              grad[i], fd);
          return;
        }
    }
}

typedef struct {
  float *a, *b, *c;
  const gint32 *labels;
  gint64 n, m, d;
  float t, base;
} LossObj;

static double
ce_obj (gpointer p)
{
  LossObj *o = p;
  return dcr_ref_cross_entropy (o->a, o->labels, o->n, o->m, 1, NULL);
}

static double
bce_obj (gpointer p)
{
  LossObj *o = p;
  return dcr_ref_bce (o->a, o->b, o->n, 1, NULL);
}

static double
bcel_obj (gpointer p)
{
  LossObj *o = p;
  return dcr_ref_bce_with_logits (o->a, o->b, o->n, 1, NULL);
}

static double
supcon_obj (gpointer p)
{
  LossObj *o = p;
  return dcr_ref_supcon (o->a, o->labels, o->n, o->d, o->t, o->base, 1, NULL);
}

static double
infonce_obj (gpointer p)
{
  LossObj *o = p;
  return dcr_ref_infonce (o->a, o->b, o->c, o->n, o->m, o->d, o->t, 1, NULL, NULL);
}

static void
test_fd (void)
{
  /* cross-entropy, one ignored row */
  {
    const gint64 b = 5, c = 4;
    g_autofree float *z = dcr_test_random_floats (b * c, 1, -3, 3);
    gint32 y[] = { 0, 3, -100, 1, 2 };
    g_autofree float *g = g_new (float, b * c);
    dcr_ref_cross_entropy (z, y, b, c, 1, g);
    LossObj o = { .a = z, .labels = y, .n = b, .m = c };
    check_fd ("cross_entropy", z, b * c, ce_obj, &o, g, 1e-7, 1e-4);
  }
  /* BCE away from the clamps, and BCE with logits */
  {
    const gint64 n = 9;
    g_autofree float *p = dcr_test_random_floats (n, 2, 0.02f, 0.98f);
    g_autofree float *t = dcr_test_random_floats (n, 3, 0, 1);
    g_autofree float *g = g_new (float, n);
    dcr_ref_bce (p, t, n, 1, g);
    LossObj o = { .a = p, .b = t, .n = n };
    check_fd ("bce", p, n, bce_obj, &o, g, 1e-7, 1e-4);
    g_autofree float *z = dcr_test_random_floats (n, 4, -6, 6);
    dcr_ref_bce_with_logits (z, t, n, 1, g);
    LossObj ol = { .a = z, .b = t, .n = n };
    check_fd ("bce_with_logits", z, n, bcel_obj, &ol, g, 1e-7, 1e-4);
  }
  /* SupCon: a singleton class (no positives), the official temperatures
   * and a base temperature that scales the loss */
  for (int variant = 0; variant < 2; variant++)
    {
      const gint64 n = 7, d = 4;
      g_autofree float *z = dcr_test_random_floats (n * d, 5 + variant, -1, 1);
      normalize_rows (z, n, d);
      gint32 y[] = { 0, 1, 0, 2, 1, 0, 1 };
      float t = variant ? 0.5f : 0.07f, base = variant ? 0.3f : 0.07f;
      g_autofree float *g = g_new (float, n * d);
      dcr_ref_supcon (z, y, n, d, t, base, 1, g);
      LossObj o = { .a = z, .labels = y, .n = n, .d = d, .t = t, .base = base };
      check_fd ("supcon", z, n * d, supcon_obj, &o, g, 1e-5, 1e-4);
    }
  /* InfoNCE, both q and k⁺ */
  {
    const gint64 b = 3, q = 5, d = 4;
    g_autofree float *qq = dcr_test_random_floats (b * d, 8, -1, 1);
    g_autofree float *kk = dcr_test_random_floats (b * d, 9, -1, 1);
    g_autofree float *queue = dcr_test_random_floats (q * d, 10, -1, 1);
    normalize_rows (qq, b, d);
    normalize_rows (kk, b, d);
    normalize_rows (queue, q, d);
    g_autofree float *gq = g_new (float, b * d);
    g_autofree float *gk = g_new (float, b * d);
    dcr_ref_infonce (qq, kk, queue, b, q, d, 0.2f, 1, gq, gk);
    LossObj o = { .a = qq, .b = kk, .c = queue, .n = b, .m = q, .d = d, .t = 0.2f };
    check_fd ("infonce dq", qq, b * d, infonce_obj, &o, gq, 1e-6, 1e-4);
    check_fd ("infonce dk", kk, b * d, infonce_obj, &o, gk, 1e-6, 1e-4);
  }
  /* grad_scale scales the gradient, not the loss */
  {
    const gint64 b = 3, c = 2;
    g_autofree float *z = dcr_test_random_floats (b * c, 11, -3, 3);
    gint32 y[] = { 1, 0, 1 };
    g_autofree float *g1 = g_new (float, b * c);
    g_autofree float *g3 = g_new (float, b * c);
    double l1 = dcr_ref_cross_entropy (z, y, b, c, 1, g1);
    double l3 = dcr_ref_cross_entropy (z, y, b, c, 3, g3);
    g_assert_cmpfloat (l1, ==, l3);
    for (gint64 i = 0; i < b * c; i++)
      g_assert_cmpfloat_with_epsilon (g3[i], 3 * g1[i], 1e-6);
  }
}

/* ---- against torch ----------------------------------------------------------------- */

static void
test_golden_refs (void)
{
  float g[64];
  assert_loss ("ref cross_entropy vs torch", dcr_ref_cross_entropy (ce_logits, ce_labels, 6, 3, 1, g), ce_loss, 1e-6);
  dcr_test_assert_close ("ref cross_entropy grad vs torch", g, ce_grad, 18, 1e-7, 1e-5);
  assert_loss ("ref bce vs torch", dcr_ref_bce (bce_probs, bce_targets, 8, 1, g), bce_loss, 1e-6);
  dcr_test_assert_close ("ref bce grad vs torch", g, bce_grad, 8, 1e-7, 1e-5);
  assert_loss ("ref bce_with_logits vs torch", dcr_ref_bce_with_logits (bcel_logits, bcel_targets, 8, 1, g),
               bcel_loss, 1e-6);
  dcr_test_assert_close ("ref bce_with_logits grad vs torch", g, bcel_grad, 8, 1e-7, 1e-5);

  struct {
    const char *name;
    const float *x, *dz, *dx;
    const gint32 *labels;
    gint64 n, d;
    float t, base;
    double loss;
  } sc[] = {
    { "A", supcon_a_x, supcon_a_dz, supcon_a_dx, supcon_a_labels, SUPCON_A_N, SUPCON_A_D, supcon_a_temp,
      supcon_a_base, supcon_a_loss },
    { "B", supcon_b_x, supcon_b_dz, supcon_b_dx, supcon_b_labels, SUPCON_B_N, SUPCON_B_D, supcon_b_temp,
      supcon_b_base, supcon_b_loss },
  };
  for (guint i = 0; i < G_N_ELEMENTS (sc); i++)
    {
      g_autofree float *z = g_memdup2 (sc[i].x, sizeof (float) * sc[i].n * sc[i].d);
      normalize_rows (z, sc[i].n, sc[i].d);
      g_autofree float *dz = g_new (float, sc[i].n * sc[i].d);
      g_autofree float *dx = g_new (float, sc[i].n * sc[i].d);
      g_autofree char *what = g_strdup_printf ("ref supcon %s vs torch", sc[i].name);
      assert_loss (what, dcr_ref_supcon (z, sc[i].labels, sc[i].n, sc[i].d, sc[i].t, sc[i].base, 1, dz), sc[i].loss,
                   1e-5);
      dcr_test_assert_close (what, dz, sc[i].dz, sc[i].n * sc[i].d, 1e-5, 1e-4);
      /* chained through F.normalize */
      dcr_ref_l2_normalize_backward (sc[i].x, dz, 1e-12f, dx, sc[i].n, sc[i].d, DCR_GRAD_OVERWRITE);
      dcr_test_assert_close (what, dx, sc[i].dx, sc[i].n * sc[i].d, 1e-5, 1e-4);
    }

  float gq[INFONCE_B * INFONCE_D], gk[INFONCE_B * INFONCE_D];
  assert_loss ("ref infonce vs torch",
               dcr_ref_infonce (infonce_q, infonce_k, infonce_queue, INFONCE_B, INFONCE_Q, INFONCE_D, infonce_temp, 1,
                                gq, gk),
               infonce_loss, 1e-5);
  dcr_test_assert_close ("ref infonce dq vs torch", gq, infonce_dq, INFONCE_B * INFONCE_D, 1e-6, 1e-4);
  dcr_test_assert_close ("ref infonce dk vs torch", gk, infonce_dk, INFONCE_B * INFONCE_D, 1e-6, 1e-4);
}

static void
test_golden_gpu (void)
{
  g_autoptr (GError) err = NULL;
  float g[64];
  /* cross-entropy, BCE, BCE with logits in one sequence */
  {
    gint64 ls[] = { 6, 3 }, n8 = 8;
    g_autoptr (DcrTensor) z = tensor_f32 (2, ls, ce_logits);
    g_autoptr (DcrTensor) y = tensor_i32 (6, ce_labels);
    g_autoptr (DcrTensor) dz = tensor_f32 (2, ls, NULL);
    g_autoptr (DcrTensor) p = tensor_f32 (1, &n8, bce_probs);
    g_autoptr (DcrTensor) t = tensor_f32 (1, &n8, bce_targets);
    g_autoptr (DcrTensor) dp = tensor_f32 (1, &n8, NULL);
    g_autoptr (DcrTensor) zl = tensor_f32 (1, &n8, bcel_logits);
    g_autoptr (DcrTensor) tl = tensor_f32 (1, &n8, bcel_targets);
    g_autoptr (DcrTensor) dzl = tensor_f32 (1, &n8, NULL);
    g_autoptr (DcrTensor) l1 = scalar_tensor (), l2 = scalar_tensor (), l3 = scalar_tensor ();
    g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
    g_assert_true (dcr_op_cross_entropy (seq, z, y, 1, l1, dz, &err));
    g_assert_true (dcr_op_bce (seq, p, t, 1, l2, dp, &err));
    g_assert_true (dcr_op_bce_with_logits (seq, zl, tl, 1, l3, dzl, &err));
    g_assert_no_error (err);
    dcr_test_submit_wait (seq);
    assert_loss ("gpu cross_entropy vs torch", read_scalar (l1), ce_loss, 1e-5);
    dcr_test_download_into (dz, g);
    dcr_test_assert_close ("gpu cross_entropy grad vs torch", g, ce_grad, 18, 1e-7, 1e-5);
    assert_loss ("gpu bce vs torch", read_scalar (l2), bce_loss, 1e-5);
    dcr_test_download_into (dp, g);
    dcr_test_assert_close ("gpu bce grad vs torch", g, bce_grad, 8, 1e-7, 1e-5);
    assert_loss ("gpu bce_with_logits vs torch", read_scalar (l3), bcel_loss, 1e-5);
    dcr_test_download_into (dzl, g);
    dcr_test_assert_close ("gpu bce_with_logits grad vs torch", g, bcel_grad, 8, 1e-7, 1e-5);
  }
  /* SupCon on normalised features, chained into the L2-normalise backward */
  for (int i = 0; i < 2; i++)
    {
      const float *x = i ? supcon_b_x : supcon_a_x;
      gint64 n = i ? SUPCON_B_N : SUPCON_A_N, d = i ? SUPCON_B_D : SUPCON_A_D, s[] = { n, d }, ws[] = { n, n + 1 };
      g_autofree float *z = g_memdup2 (x, sizeof (float) * n * d);
      normalize_rows (z, n, d);
      g_autoptr (DcrTensor) tx = tensor_f32 (2, s, x);
      g_autoptr (DcrTensor) tz = tensor_f32 (2, s, z);
      g_autoptr (DcrTensor) ty = tensor_i32 (n, i ? supcon_b_labels : supcon_a_labels);
      g_autoptr (DcrTensor) tw = tensor_f32 (2, ws, NULL);
      g_autoptr (DcrTensor) tdz = tensor_f32 (2, s, NULL);
      g_autoptr (DcrTensor) tdx = tensor_f32 (2, s, NULL);
      g_autoptr (DcrTensor) loss = scalar_tensor ();
      g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
      g_assert_true (dcr_op_supcon (seq, tz, ty, i ? supcon_b_temp : supcon_a_temp, i ? supcon_b_base : supcon_a_base,
                                    1, tw, loss, tdz, &err));
      g_assert_true (dcr_op_l2_normalize_backward (seq, tx, tdz, 1e-12f, tdx, DCR_GRAD_OVERWRITE, &err));
      g_assert_no_error (err);
      dcr_test_submit_wait (seq);
      g_autofree char *what = g_strdup_printf ("gpu supcon %c vs torch", i ? 'B' : 'A');
      assert_loss (what, read_scalar (loss), i ? supcon_b_loss : supcon_a_loss, 1e-5);
      dcr_test_download_into (tdz, g);
      dcr_test_assert_close (what, g, i ? supcon_b_dz : supcon_a_dz, n * d, 1e-5, 1e-4);
      dcr_test_download_into (tdx, g);
      dcr_test_assert_close (what, g, i ? supcon_b_dx : supcon_a_dx, n * d, 1e-5, 1e-4);
    }
  /* InfoNCE */
  {
    gint64 s[] = { INFONCE_B, INFONCE_D }, qs[] = { INFONCE_Q, INFONCE_D }, ws[] = { INFONCE_B, INFONCE_Q + 2 };
    g_autoptr (DcrTensor) q = tensor_f32 (2, s, infonce_q);
    g_autoptr (DcrTensor) k = tensor_f32 (2, s, infonce_k);
    g_autoptr (DcrTensor) queue = tensor_f32 (2, qs, infonce_queue);
    g_autoptr (DcrTensor) w = tensor_f32 (2, ws, NULL);
    g_autoptr (DcrTensor) dq = tensor_f32 (2, s, NULL);
    g_autoptr (DcrTensor) dk = tensor_f32 (2, s, NULL);
    g_autoptr (DcrTensor) loss = scalar_tensor ();
    g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
    g_assert_true (dcr_op_infonce (seq, q, k, queue, infonce_temp, 1, w, loss, dq, dk, &err));
    g_assert_no_error (err);
    dcr_test_submit_wait (seq);
    assert_loss ("gpu infonce vs torch", read_scalar (loss), infonce_loss, 1e-5);
    dcr_test_download_into (dq, g);
    dcr_test_assert_close ("gpu infonce dq vs torch", g, infonce_dq, INFONCE_B * INFONCE_D, 1e-6, 1e-4);
    dcr_test_download_into (dk, g);
    dcr_test_assert_close ("gpu infonce dk vs torch", g, infonce_dk, INFONCE_B * INFONCE_D, 1e-6, 1e-4);
  }
  dcr_test_assert_no_validation_errors ();
}

/* ---- GPU against the references over odd shapes -------------------------------------- */

static void
test_cross_entropy_gpu (void)
{
  static const gint64 shapes[][2] = { { 1, 1 }, { 1, 2 }, { 7, 2 }, { 65, 3 }, { 300, 2 }, { 17, 1000 } };
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int mode = 0; mode < 3; mode++)
      {
        /* mode 0 loss and grad, 1 loss only, 2 every label ignored */
        gint64 b = shapes[s][0], c = shapes[s][1];
        g_autofree float *z = dcr_test_random_floats (b * c, 1 + s, -5, 5);
        g_autofree gint32 *y = random_labels (b, 2 + s, mode == 2 ? c : -1, mode == 2 ? c + 3 : (int) c - 1);
        g_autofree float *want = g_new (float, b * c);
        g_autofree float *got = g_new (float, b * c);
        double want_loss = dcr_ref_cross_entropy (z, y, b, c, 0.5f, want);
        g_autoptr (DcrTensor) tz = tensor_f32 (2, shapes[s], z);
        g_autoptr (DcrTensor) ty = tensor_i32 (b, y);
        g_autoptr (DcrTensor) tg = tensor_f32 (2, shapes[s], NULL);
        g_autoptr (DcrTensor) loss = scalar_tensor ();
        g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
        g_autoptr (GError) err = NULL;
        g_assert_true (dcr_op_cross_entropy (seq, tz, ty, 0.5f, loss, mode == 1 ? NULL : tg, &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        g_autofree char *what = g_strdup_printf ("cross_entropy %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " mode %d",
                                                 b, c, mode);
        assert_loss (what, read_scalar (loss), want_loss, 1e-5);
        if (mode == 2)
          g_assert_cmpfloat (read_scalar (loss), ==, 0);
        if (mode != 1)
          {
            dcr_test_download_into (tg, got);
            dcr_test_assert_close (what, got, want, b * c, 1e-7, 1e-5);
          }
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_bce_gpu (void)
{
  const gint64 sizes[] = { 1, 7, 65, 1000 };
  for (int logits = 0; logits < 2; logits++)
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      for (int with_grad = 0; with_grad < 2; with_grad++)
        {
          gint64 n = sizes[s];
          g_autofree float *x = logits ? dcr_test_random_floats (n, 3 + s, -20, 20)
                                       : dcr_test_random_floats (n, 3 + s, 0.001f, 0.999f);
          g_autofree float *t = dcr_test_random_floats (n, 4 + s, 0, 1);
          for (gint64 i = 0; i < n; i += 3)
            t[i] = (float) (i % 2); /* hard labels too */
          g_autofree float *want = g_new (float, n);
          g_autofree float *got = g_new (float, n);
          double want_loss = logits ? dcr_ref_bce_with_logits (x, t, n, 2, want) : dcr_ref_bce (x, t, n, 2, want);
          g_autoptr (DcrTensor) tx = tensor_f32 (1, &n, x);
          g_autoptr (DcrTensor) tt = tensor_f32 (1, &n, t);
          g_autoptr (DcrTensor) tg = tensor_f32 (1, &n, NULL);
          g_autoptr (DcrTensor) loss = scalar_tensor ();
          g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
          g_autoptr (GError) err = NULL;
          if (logits)
            g_assert_true (dcr_op_bce_with_logits (seq, tx, tt, 2, loss, with_grad ? tg : NULL, &err));
          else
            g_assert_true (dcr_op_bce (seq, tx, tt, 2, loss, with_grad ? tg : NULL, &err));
          g_assert_no_error (err);
          dcr_test_submit_wait (seq);
          g_autofree char *what = g_strdup_printf ("%s n=%" G_GINT64_FORMAT, logits ? "bce_with_logits" : "bce", n);
          assert_loss (what, read_scalar (loss), want_loss, 1e-5);
          if (with_grad)
            {
              dcr_test_download_into (tg, got);
              dcr_test_assert_close (what, got, want, n, 1e-7, 1e-5);
            }
        }
  dcr_test_assert_no_validation_errors ();
}

static void
test_supcon_gpu (void)
{
  /* n, d, classes */
  static const gint64 cases[][3] = { { 1, 3, 1 }, { 7, 5, 3 }, { 65, 128, 2 }, { 130, 9, 40 } };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    for (int with_grad = 0; with_grad < 2; with_grad++)
      {
        gint64 n = cases[c][0], d = cases[c][1], s[] = { n, d }, ws[] = { n, n + 1 };
        g_autofree float *z = dcr_test_random_floats (n * d, 5 + c, -1, 1);
        normalize_rows (z, n, d);
        g_autofree gint32 *y = random_labels (n, 6 + c, 0, (int) cases[c][2] - 1);
        float t = c % 2 ? 0.07f : 0.2f, base = c % 2 ? 0 : 0.1f, gs = 1.5f;
        g_autofree float *want = g_new (float, n * d);
        g_autofree float *got = g_new (float, n * d);
        double want_loss = dcr_ref_supcon (z, y, n, d, t, base, gs, want);
        g_autoptr (DcrTensor) tz = tensor_f32 (2, s, z);
        g_autoptr (DcrTensor) ty = tensor_i32 (n, y);
        g_autoptr (DcrTensor) tw = tensor_f32 (2, ws, NULL);
        g_autoptr (DcrTensor) tg = tensor_f32 (2, s, NULL);
        g_autoptr (DcrTensor) loss = scalar_tensor ();
        g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
        g_autoptr (GError) err = NULL;
        g_assert_true (dcr_op_supcon (seq, tz, ty, t, base, gs, tw, loss, with_grad ? tg : NULL, &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        g_autofree char *what = g_strdup_printf ("supcon n=%" G_GINT64_FORMAT " d=%" G_GINT64_FORMAT, n, d);
        assert_loss (what, read_scalar (loss), want_loss, 2e-5);
        if (n == 1)
          g_assert_cmpfloat (read_scalar (loss), ==, 0); /* no positives anywhere */
        if (with_grad)
          {
            dcr_test_download_into (tg, got);
            /* logits up to 1/τ ≈ 14 enter exp(): fp32 there is ~1e-6 relative */
            dcr_test_assert_close (what, got, want, n * d, 2e-5, 1e-4);
          }
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_infonce_gpu (void)
{
  /* b, d, queue length */
  static const gint64 cases[][3] = { { 1, 1, 1 }, { 17, 33, 65 }, { 8, 128, 1000 } };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    for (int mode = 0; mode < 3; mode++)
      {
        /* mode 0 dq and dk, 1 dq only, 2 loss only */
        gint64 b = cases[c][0], d = cases[c][1], ql = cases[c][2];
        gint64 s[] = { b, d }, qs[] = { ql, d }, ws[] = { b, ql + 2 };
        g_autofree float *q = dcr_test_random_floats (b * d, 7 + c, -1, 1);
        g_autofree float *k = dcr_test_random_floats (b * d, 8 + c, -1, 1);
        g_autofree float *queue = dcr_test_random_floats (ql * d, 9 + c, -1, 1);
        normalize_rows (q, b, d);
        normalize_rows (k, b, d);
        normalize_rows (queue, ql, d);
        g_autofree float *wq = g_new (float, b * d);
        g_autofree float *wk = g_new (float, b * d);
        g_autofree float *got = g_new (float, b * d);
        double want_loss = dcr_ref_infonce (q, k, queue, b, ql, d, 0.07f, 0.5f, wq, wk);
        g_autoptr (DcrTensor) tq = tensor_f32 (2, s, q);
        g_autoptr (DcrTensor) tk = tensor_f32 (2, s, k);
        g_autoptr (DcrTensor) tqueue = tensor_f32 (2, qs, queue);
        g_autoptr (DcrTensor) tw = tensor_f32 (2, ws, NULL);
        g_autoptr (DcrTensor) tdq = tensor_f32 (2, s, NULL);
        g_autoptr (DcrTensor) tdk = tensor_f32 (2, s, NULL);
        g_autoptr (DcrTensor) loss = scalar_tensor ();
        g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
        g_autoptr (GError) err = NULL;
        g_assert_true (dcr_op_infonce (seq, tq, tk, tqueue, 0.07f, 0.5f, tw, loss, mode < 2 ? tdq : NULL,
                                       mode == 0 ? tdk : NULL, &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        g_autofree char *what = g_strdup_printf ("infonce b=%" G_GINT64_FORMAT " d=%" G_GINT64_FORMAT
                                                 " q=%" G_GINT64_FORMAT " mode %d", b, d, ql, mode);
        assert_loss (what, read_scalar (loss), want_loss, 2e-5);
        if (mode < 2)
          {
            dcr_test_download_into (tdq, got);
            dcr_test_assert_close (what, got, wq, b * d, 1e-5, 1e-4);
          }
        if (mode == 0)
          {
            dcr_test_download_into (tdk, got);
            dcr_test_assert_close (what, got, wk, b * d, 1e-5, 1e-4);
          }
        if (mode == 0)
          {
            /* the scratch ends with the probabilities (queue, then positives:
             * each row sums to 1) and the row losses, −log p(positive) */
            g_autofree float *w = g_new (float, b * (ql + 2));
            dcr_test_download_into (tw, w);
            double total = 0;
            for (gint64 r = 0; r < b; r++)
              {
                double sum = w[b * ql + r], row_loss = w[b * ql + b + r];
                for (gint64 j = 0; j < ql; j++)
                  sum += w[r * ql + j];
                g_assert_cmpfloat_with_epsilon (sum, 1.0, 1e-5);
                g_assert_cmpfloat_with_epsilon (row_loss, -log (w[b * ql + r]), 1e-4 * MAX (1, row_loss));
                total += row_loss;
              }
            assert_loss (what, total / b, want_loss, 2e-5);
          }
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_errors (void)
{
  g_autoptr (GError) err = NULL;
  gint64 s23[] = { 2, 3 }, s33[] = { 3, 3 }, s2[] = { 2 }, s24[] = { 2, 4 };
  g_autoptr (DcrTensor) z = tensor_f32 (2, s23, NULL);
  g_autoptr (DcrTensor) w33 = tensor_f32 (2, s33, NULL);
  g_autoptr (DcrTensor) w24 = tensor_f32 (2, s24, NULL);
  g_autoptr (DcrTensor) f2 = tensor_f32 (1, s2, NULL);
  gint32 lab[3] = { 0, 1, 0 };
  g_autoptr (DcrTensor) y3 = tensor_i32 (3, lab);
  g_autoptr (DcrTensor) y2 = tensor_i32 (2, lab);
  g_autoptr (DcrTensor) loss = scalar_tensor ();
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();

  g_assert_false (dcr_op_cross_entropy (seq, z, y3, 1, loss, NULL, &err)); /* 2 rows, 3 labels */
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "cross_entropy"));
  g_clear_error (&err);
  g_assert_false (dcr_op_cross_entropy (seq, z, f2, 1, loss, NULL, &err)); /* float labels */
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_bce (seq, z, f2, 1, loss, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_bce_with_logits (seq, f2, f2, 1, z, NULL, &err)); /* loss holds 6 values */
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  /* scratch [3, 3] is not [N, N + 1] = [2, 3]... it is 9 floats, 6 wanted */
  g_assert_false (dcr_op_supcon (seq, z, y2, 0.07f, 0, 1, w33, loss, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "N + 1"));
  g_clear_error (&err);
  g_assert_false (dcr_op_supcon (seq, z, y2, 0, 0, 1, z, loss, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED);
  g_clear_error (&err);
  /* queue width 4 against q width 3 */
  g_assert_false (dcr_op_infonce (seq, z, z, w24, 0.07f, 1, w24, loss, NULL, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/loss/finite-differences", test_fd);
  g_test_add_func ("/loss/golden/reference", test_golden_refs);
  g_test_add_func ("/loss/golden/gpu", test_golden_gpu);
  g_test_add_func ("/loss/cross-entropy/gpu", test_cross_entropy_gpu);
  g_test_add_func ("/loss/bce/gpu", test_bce_gpu);
  g_test_add_func ("/loss/supcon/gpu", test_supcon_gpu);
  g_test_add_func ("/loss/infonce/gpu", test_infonce_gpu);
  g_test_add_func ("/loss/errors", test_errors);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
