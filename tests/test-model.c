/* test-model.c — the DCR heads: the GPU forward (f32 and f16 storage) and
 * the backward gradients against PyTorch golden files loaded through the
 * real model loader (k = 3 with the gate, k = 1 without: the seed's
 * one-key attention), the GPU against the host reference at odd sizes, the
 * three modes (pair, single through retrieval, update_memory), the model
 * file (round trip, refusals) and the verdict band. */
#include "dcr-test-tensors.h"
#include "dcr-model-private.h"
#include "dcr-train.h"
#include "dcr-safetensors.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* Tolerances. f32: GEMM accumulation in f32 against a double reference,
 * exp in the softmax and sigmoid: 2e-5 absolute + relative on outputs of
 * order 1. f16 storage: weights, inputs and every activation rounded to
 * f16 (2^-11 relative) through ~6 layers, and the query/key weights of the
 * golden models are scaled ×10 and ×40, so attention logits reach ~10: 3e-2.
 * Gradients (f32): 1e-4 of the largest gradient of the tensor plus 1e-3
 * relative, as the backward ops sum over the batch in another order. */
#define F32_TOL 2e-5
#define F16_TOL 3e-2

static char *
golden_path (const char *name)
{
  const char *root = g_getenv ("DCR_SOURCE_ROOT");
  return g_build_filename (root ? root : ".", "tests", "golden", name, NULL);
}

typedef struct {
  DcrSafetensors *st;
  guint b, l, d;
} Io;

static float *
io_get (Io *io, const char *name, gsize *n)
{
  g_autoptr (GError) err = NULL;
  const DcrStTensor *t = dcr_safetensors_get (io->st, name, &err);
  g_assert_no_error (err);
  float *out = NULL;
  g_assert_true (dcr_safetensors_get_f32 (io->st, name, NULL, 0, &out, &err));
  g_assert_no_error (err);
  if (n)
    *n = t->numel;
  return out;
}

static DcrModel *
load_golden (const char *name, Io *io)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *mp = g_strdup_printf ("%s.safetensors", name);
  g_autofree char *ip = g_strdup_printf ("%s-io.safetensors", name);
  g_autofree char *mpath = golden_path (mp);
  g_autofree char *ipath = golden_path (ip);
  DcrModel *m = dcr_model_load (dcr_test_context (), mpath, &err);
  g_assert_no_error (err);
  io->st = dcr_safetensors_open (ipath, &err);
  g_assert_no_error (err);
  const DcrStTensor *r = dcr_safetensors_lookup (io->st, "r");
  io->b = r->shape[0];
  io->l = r->shape[1];
  io->d = r->shape[2];
  g_assert_cmpuint (io->d, ==, dcr_model_config (m)->dim);
  g_assert_cmpuint (io->l, ==, dcr_model_config (m)->k);
  return m;
}

static void
golden_forward (const char *name, DcrDtype dt)
{
  if (dt == DCR_F16 && !dcr_test_have_f16 ())
    return;
  g_autoptr (GError) err = NULL;
  Io io;
  g_autoptr (DcrModel) m = load_golden (name, &io);
  g_autofree float *f = io_get (&io, "f", NULL);
  g_autofree float *r = io_get (&io, "r", NULL);
  g_autoptr (DcrModelRun) run = dcr_model_run_new (m, dt, io.b, io.l, FALSE, &err);
  g_assert_no_error (err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_model_run_record_tokens (run, seq, &err));
  g_assert_no_error (err);
  g_assert_true (dcr_model_run_set_inputs (run, f, r, io.b, &err));
  dcr_test_submit (seq);
  guint b = io.b, l = io.l, d = io.d;
  g_autofree float *logits = g_new (float, 2 * b);
  g_autofree float *p = g_new (float, b);
  g_autofree float *an = g_new (float, b);
  g_autofree float *att = g_new (float, b * l);
  g_autofree float *res = g_new (float, b * d);
  g_autofree float *fu = g_new (float, b * d);
  g_assert_true (dcr_model_run_outputs (run, b, logits, p, an, att, res, fu, &err));
  g_assert_no_error (err);
  double tol = dt == DCR_F16 ? F16_TOL : F32_TOL;
  const char *names[] = { "logits", "p_fake", "anomaly", "attention", "residual", "fused" };
  float *got[] = { logits, p, an, att, res, fu };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      gsize n;
      g_autofree float *want = io_get (&io, names[i], &n);
      g_autofree char *what = g_strdup_printf ("%s %s %s", name, dcr_dtype_name (dt), names[i]);
      dcr_test_assert_close (what, got[i], want, n, tol, tol);
    }
  /* the attention is a distribution over the prototypes, and not a flat one */
  for (guint i = 0; i < b; i++)
    {
      double s = 0, mx = 0;
      for (guint j = 0; j < l; j++)
        {
          s += att[i * l + j];
          mx = MAX (mx, att[i * l + j]);
        }
      g_assert_cmpfloat_with_epsilon (s, 1.0, tol);
      if (l > 1 && i == 0)
        g_assert_cmpfloat (mx, >, 1.5 / l);
    }
  /* and the host reference agrees with PyTorch too */
  if (dt == DCR_F32)
    {
      g_autofree float *rl = g_new (float, 2 * b);
      dcr_model_ref_forward (m, f, r, b, l, rl, NULL, NULL, NULL, NULL, NULL);
      g_autofree float *want = io_get (&io, "logits", NULL);
      dcr_test_assert_close ("host reference logits", rl, want, 2 * b, 1e-5, 1e-5);
    }
  dcr_safetensors_free (io.st);
  dcr_test_assert_no_validation_errors ();
}

static void
test_golden_forward_k3 (void)
{
  golden_forward ("dcr-golden-k3", DCR_F32);
  golden_forward ("dcr-golden-k3", DCR_F16);
}

static void
test_golden_forward_k1 (void)
{
  golden_forward ("dcr-golden-k1", DCR_F32);
  golden_forward ("dcr-golden-k1", DCR_F16);
}

static void
assert_grad_close (const char *what, const float *got, const float *want, gsize n)
{
  double mx = 0;
  for (gsize i = 0; i < n; i++)
    mx = MAX (mx, fabs (want[i]));
  dcr_test_assert_close (what, got, want, n, 1e-4 * mx + 1e-7, 1e-3);
}

static void
golden_backward (const char *name)
{
  g_autoptr (GError) err = NULL;
  Io io;
  g_autoptr (DcrModel) m = load_golden (name, &io);
  g_autofree float *f = io_get (&io, "f", NULL);
  g_autofree float *r = io_get (&io, "r", NULL);
  g_autofree float *mask = io_get (&io, "mask", NULL);
  g_autofree float *lam = io_get (&io, "lambda", NULL);
  g_autofree float *loss = io_get (&io, "loss", NULL);
  const DcrStTensor *lt = dcr_safetensors_get (io.st, "labels", &err);
  g_assert_no_error (err);
  g_assert_cmpint (lt->dtype, ==, DCR_ST_I32);
  g_autofree gint32 *labels = g_new (gint32, io.b);
  memcpy (labels, lt->data, io.b * sizeof (gint32));
  DcrTrainLoss cfg = { .lambda_bce = lam[0], .lambda_supcon = lam[1], .temperature = 0.07f };
  g_autoptr (DcrTrainStep) step = dcr_train_step_new (m, io.b, io.l, &cfg, FALSE, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_train_step_set_batch (step, f, r, labels, mask, NULL, &err));
  double got_loss[4];
  g_assert_true (dcr_train_step_run (step, 1, 0, got_loss, &err));
  g_assert_no_error (err);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat_with_epsilon (got_loss[i], loss[i], 1e-4 * MAX (1, fabs (loss[i])));

  gsize d = io.d;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      if (!dcr_model_param_present (m, i) || i == DCR_P_WGC)
        continue;
      gint64 shape[2];
      int nd = dcr_model_param_shape (m, i, shape);
      gsize n = nd == 2 ? shape[0] * shape[1] : shape[0];
      g_autofree float *got = g_new (float, n);
      g_assert_true (dcr_train_step_gradient (step, i, got, &err));
      g_assert_no_error (err);
      if (i == DCR_P_WGF)
        {
          /* PyTorch's [D, 2D] gradient is the two halves side by side */
          g_autofree float *want = io_get (&io, "grad.fusion.gate.0.weight", NULL);
          g_autofree float *gc = g_new (float, n);
          g_assert_true (dcr_train_step_gradient (step, DCR_P_WGC, gc, &err));
          g_autofree float *whole = g_new (float, 2 * n);
          for (gsize row = 0; row < d; row++)
            {
              memcpy (whole + row * 2 * d, got + row * d, d * sizeof (float));
              memcpy (whole + row * 2 * d + d, gc + row * d, d * sizeof (float));
            }
          assert_grad_close ("grad fusion.gate.0.weight", whole, want, 2 * n);
          continue;
        }
      g_autofree char *gname = g_strconcat ("grad.", dcr_model_param_name (i), NULL);
      g_autofree float *want = io_get (&io, gname, NULL);
      g_autofree char *what = g_strdup_printf ("%s %s", name, gname);
      assert_grad_close (what, got, want, n);
    }
  dcr_safetensors_free (io.st);
  dcr_test_assert_no_validation_errors ();
}

static void
test_golden_backward_k3 (void)
{
  golden_backward ("dcr-golden-k3");
}

static void
test_golden_backward_k1 (void)
{
  golden_backward ("dcr-golden-k1");
}

/* With one key the softmax is 1 and the attention is a linear map of d:
 * fused − f̂ = W_o (W_v d + b_v) + b_o — the seed's DifferenceAttention. */
static void
test_one_key (void)
{
  g_autoptr (GError) err = NULL;
  Io io;
  g_autoptr (DcrModel) m = load_golden ("dcr-golden-k1", &io);
  g_assert_false (dcr_model_config (m)->gate);
  g_autofree float *f = io_get (&io, "f", NULL);
  g_autofree float *r = io_get (&io, "r", NULL);
  g_autoptr (DcrModelRun) run = dcr_model_run_new (m, DCR_F32, io.b, 1, FALSE, &err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_model_run_record_tokens (run, seq, &err));
  g_assert_true (dcr_model_run_set_inputs (run, f, r, io.b, &err));
  g_assert_no_error (err);
  dcr_test_submit (seq);
  guint b = io.b, d = io.d, h = dcr_model_config (m)->hidden;
  g_autofree float *att = g_new (float, b);
  g_autofree float *res = g_new (float, b * d);
  g_autofree float *fu = g_new (float, b * d);
  g_assert_true (dcr_model_run_outputs (run, b, NULL, NULL, NULL, att, res, fu, &err));
  for (guint i = 0; i < b; i++)
    g_assert_cmpfloat (att[i], ==, 1.0f);
  const float *wv = dcr_model_host_param (m, DCR_P_WV), *bv = dcr_model_host_param (m, DCR_P_BV);
  const float *wo = dcr_model_host_param (m, DCR_P_WO), *bo = dcr_model_host_param (m, DCR_P_BO);
  g_autofree float *want = g_new (float, b * d);
  g_autofree float *got = g_new (float, b * d);
  g_autofree double *v = g_new (double, h);
  for (guint i = 0; i < b; i++)
    {
      double ss = 0;
      for (guint c = 0; c < d; c++)
        ss += (double) f[i * d + c] * f[i * d + c];
      for (guint o = 0; o < h; o++)
        {
          double acc = bv[o];
          for (guint c = 0; c < d; c++)
            acc += (double) wv[o * d + c] * res[i * d + c];
          v[o] = acc;
        }
      for (guint c = 0; c < d; c++)
        {
          double acc = bo[c];
          for (guint o = 0; o < h; o++)
            acc += wo[c * h + o] * v[o];
          want[i * d + c] = (float) acc;
          got[i * d + c] = fu[i * d + c] - (float) (f[i * d + c] / sqrt (ss));
        }
    }
  dcr_test_assert_close ("one key: fused − f̂ = out(V(d))", got, want, b * d, 1e-5, 1e-4);
  dcr_safetensors_free (io.st);
}

static DcrModel *
random_model (guint d, guint h, guint hr, guint k, gboolean gate, guint64 seed)
{
  g_autoptr (GError) err = NULL;
  DcrModelConfig c = { .backbone_id = "test@0", .dim = d, .k = k, .hidden = h, .head_hidden = hr, .gate = gate };
  DcrModel *m = dcr_model_new (dcr_test_context (), &c, seed, &err);
  g_assert_no_error (err);
  return m;
}

/* GPU against the host reference at odd sizes, both gate settings. */
static void
test_reference_odd (void)
{
  const struct { guint b, l, d, h, hr; gboolean gate; } cases[] = {
    { 1, 1, 1, 1, 1, FALSE }, { 3, 5, 17, 24, 9, TRUE }, { 7, 32, 65, 33, 7, FALSE }, { 2, 3, 216, 512, 512, TRUE },
  };
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
      {
        if (dts[t] == DCR_F16 && !dcr_test_have_f16 ())
          continue;
        g_autoptr (GError) err = NULL;
        guint b = cases[c].b, l = cases[c].l, d = cases[c].d;
        g_autoptr (DcrModel) m = random_model (d, cases[c].h, cases[c].hr, l, cases[c].gate, c + 1);
        g_autofree float *f = g_new (float, b * d);
        g_autofree float *r = g_new (float, b * l * d);
        dcr_test_fill (f, b * d, c + 10, -1, 1);
        dcr_test_fill (r, b * l * d, c + 20, -1, 1);
        g_autoptr (DcrModelRun) run = dcr_model_run_new (m, dts[t], b, l, FALSE, &err);
        g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
        g_assert_true (dcr_model_run_record_tokens (run, seq, &err));
        g_assert_true (dcr_model_run_set_inputs (run, f, r, b, &err));
        g_assert_no_error (err);
        dcr_test_submit (seq);
        g_autofree float *lg = g_new (float, 2 * b), *an = g_new (float, b), *att = g_new (float, b * l);
        g_autofree float *wl = g_new (float, 2 * b), *wa = g_new (float, b), *watt = g_new (float, b * l);
        g_assert_true (dcr_model_run_outputs (run, b, lg, NULL, an, att, NULL, NULL, &err));
        dcr_model_ref_forward (m, f, r, b, l, wl, NULL, wa, watt, NULL, NULL);
        double tol = dts[t] == DCR_F16 ? F16_TOL : F32_TOL;
        g_autofree char *what = g_strdup_printf ("%s case %u", dcr_dtype_name (dts[t]), c);
        dcr_test_assert_close (what, lg, wl, 2 * b, tol, tol);
        dcr_test_assert_close (what, an, wa, b, tol, tol);
        dcr_test_assert_close (what, att, watt, b * l, tol, tol);
      }
  dcr_test_assert_no_validation_errors ();
}

/* Pair mode on device features equals the tokens path with L = 1. */
static void
test_pair_mode (void)
{
  g_autoptr (GError) err = NULL;
  const guint b = 4, d = 19;
  g_autoptr (DcrModel) m = random_model (d, 16, 8, 1, TRUE, 3);
  float f[4 * 19], fp[4 * 19];
  dcr_test_fill (f, G_N_ELEMENTS (f), 1, -1, 2);
  dcr_test_fill (fp, G_N_ELEMENTS (fp), 2, -1, 2);
  gint64 s[] = { b, d };
  g_autoptr (DcrTensor) tf = dcr_test_tensor (DCR_F32, 2, s, f);
  g_autoptr (DcrTensor) tp = dcr_test_tensor (DCR_F32, 2, s, fp);
  g_autoptr (DcrModelRun) run = dcr_model_run_new (m, DCR_F32, b, 1, FALSE, &err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_model_run_record_pair (run, seq, tf, tp, &err));
  g_assert_no_error (err);
  dcr_test_submit (seq);
  float p[4], an[4], res[4 * 19], wp[4], wan[4], wres[4 * 19];
  g_assert_true (dcr_model_run_outputs (run, b, NULL, p, an, NULL, res, NULL, &err));
  dcr_model_ref_forward (m, f, fp, b, 1, NULL, wp, wan, NULL, wres, NULL);
  dcr_test_assert_close ("pair p_fake", p, wp, b, F32_TOL, F32_TOL);
  dcr_test_assert_close ("pair anomaly", an, wan, b, F32_TOL, F32_TOL);
  dcr_test_assert_close ("pair |f̂ − f̂_pair|", res, wres, b * d, F32_TOL, F32_TOL);

  g_autoptr (DcrModelRun) run3 = dcr_model_run_new (m, DCR_F32, b, 3, FALSE, &err);
  g_assert_false (dcr_model_run_record_pair (run3, seq, tf, tp, &err));
  g_assert_error (err, DCR_MODEL_ERROR, DCR_MODEL_ERROR_INVALID);
}

/* Single mode: retrieval picks the tokens on the GPU; the result equals the
 * reference on the prototypes it reports. */
static void
test_single_mode (void)
{
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    for (gsize cap = 0; cap <= 9; cap += 9)
      {
        if (dts[t] == DCR_F16 && !dcr_test_have_f16 ())
          continue;
        g_autoptr (GError) err = NULL;
        const guint b = 3, k = 5, d = 21;
        const gsize n = 40;
        g_autoptr (DcrModel) m = random_model (d, 32, 16, k, TRUE, 4);
        g_autofree float *bank = g_new (float, n * d);
        float f[3 * 21];
        dcr_test_fill (bank, n * d, 5, -1, 1);
        dcr_test_fill (f, G_N_ELEMENTS (f), 6, -1, 1);
        g_autoptr (DcrRetrieval) r = dcr_retrieval_new (dcr_test_context (), d, dts[t], b, &err);
        dcr_retrieval_set_max_chunk_rows (r, cap);
        g_assert_true (dcr_retrieval_set_features (r, bank, NULL, n, &err));
        g_autoptr (DcrRetrievalRun) rr = dcr_retrieval_run_new (r, b, k, &err);
        g_autoptr (DcrModelRun) run = dcr_model_run_new (m, dts[t], b, k, FALSE, &err);
        gint64 s[] = { b, d };
        g_autoptr (DcrTensor) tf = dcr_test_tensor (dts[t], 2, s, f);
        g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
        g_assert_true (dcr_model_run_record_single (run, seq, rr, tf, &err));
        g_assert_no_error (err);
        dcr_test_submit (seq);
        guint32 pos[3 * 5];
        float sims[3 * 5];
        g_assert_true (dcr_retrieval_run_results (rr, b, NULL, sims, pos, &err));
        g_autofree float *rows = g_new (float, b * k * d);
        for (guint i = 0; i < b * k; i++)
          dcr_retrieval_row (r, pos[i], rows + i * d);
        float p[3], an[3], att[15], wp[3], wan[3], watt[15];
        g_assert_true (dcr_model_run_outputs (run, b, NULL, p, an, att, NULL, NULL, &err));
        dcr_model_ref_forward (m, f, rows, b, k, NULL, wp, wan, watt, NULL, NULL);
        double tol = dts[t] == DCR_F16 ? F16_TOL : F32_TOL;
        dcr_test_assert_close ("single p_fake", p, wp, b, tol, tol);
        dcr_test_assert_close ("single anomaly", an, wan, b, tol, tol);
        dcr_test_assert_close ("single attention", att, watt, b * k, tol, tol);
        /* score fusion: p_fake = σ(a·(l1 − l0) + b·f[3] + c), from the same run */
        const float fw[3] = { 0.7f, -1.3f, 0.2f };
        float lg[6], pf[3];
        dcr_model_set_fusion (m, 3, fw);
        g_assert_true (dcr_model_run_outputs (run, b, lg, pf, NULL, NULL, NULL, NULL, &err));
        dcr_model_ref_forward (m, f, rows, b, k, NULL, wp, NULL, NULL, NULL, NULL);
        dcr_test_assert_close ("fused p_fake", pf, wp, b, tol, tol);
        for (guint i = 0; i < b; i++)
          {
            double zf = 0.7 * ((double) lg[2 * i + 1] - lg[2 * i]) - 1.3 * f[i * d + 3] + 0.2;
            g_assert_cmpfloat (fabs (pf[i] - 1.0 / (1.0 + exp (-zf))), <, 1e-6);
            g_assert_cmpfloat (fabs (pf[i] - p[i]), >, 1e-4); /* it changed something */
          }
        dcr_model_set_fusion (m, 0, NULL);
        for (guint i = 0; i < b; i++)
          for (guint j = 1; j < k; j++)
            g_assert_cmpfloat (sims[i * k + j - 1], >=, sims[i * k + j]);
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_update_memory (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-model-XXXXXX", &err);
  g_autofree char *path = g_build_filename (dir, "bank.dcrbank", NULL);
  g_autofree char *other = g_build_filename (dir, "other.dcrbank", NULL);
  g_autoptr (DcrModel) m = random_model (6, 8, 4, 2, FALSE, 5);
  {
    g_autoptr (DcrBank) bank = dcr_bank_create (path, "test@0", 6, &err);
    g_autoptr (DcrBank) wrong = dcr_bank_create (other, "another@1", 6, &err);
    g_assert_no_error (err);
    float feat[2][6] = { { 1, 2, 3, 4, 5, 6 }, { 0, 0, 1, 0, 0, 0 } };
    DcrPrototypeNew items[] = { { .feature = feat[0], .source = "a.png", .sha256 = "aa" },
                                { .feature = feat[1], .source = "b.png", .sha256 = "bb" } };
    gint64 ids[2];
    g_assert_true (dcr_model_update_memory (m, bank, items, 2, TRUE, ids, &err));
    g_assert_no_error (err);
    g_assert_cmpint (dcr_bank_count (bank, TRUE), ==, 2);
    g_autoptr (DcrPrototype) p = dcr_bank_get (bank, ids[0], TRUE, &err);
    g_assert_cmpstr (p->source, ==, "a.png");
    g_assert_cmpfloat_with_epsilon (p->feature[5], 6 / sqrt (91.0), 1e-3);
    /* the same files again are skipped */
    g_assert_true (dcr_model_update_memory (m, bank, items, 2, TRUE, ids, &err));
    g_assert_cmpint (ids[0], <, 0);
    g_assert_cmpint (dcr_bank_count (bank, TRUE), ==, 2);
    g_assert_false (dcr_model_update_memory (m, wrong, items, 2, TRUE, ids, &err));
    g_assert_error (err, DCR_MODEL_ERROR, DCR_MODEL_ERROR_MISMATCH);
  }
  const char *files[] = { path, other };
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *wal = g_strconcat (files[i], "-wal", NULL);
      g_autofree char *shm = g_strconcat (files[i], "-shm", NULL);
      g_remove (wal);
      g_remove (shm);
      g_remove (files[i]);
    }
  g_rmdir (dir);
}

static void
write_variant (const char *src, const char *dst, const char *key, const char *value, gboolean drop_tensor)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSafetensors) st = dcr_safetensors_open (src, &err);
  g_assert_no_error (err);
  const char *const *keys = dcr_safetensors_metadata_keys (st);
  g_autoptr (GPtrArray) meta = g_ptr_array_new ();
  for (guint i = 0; keys[i]; i++)
    {
      if (!value && g_strcmp0 (keys[i], key) == 0)
        continue; /* value NULL: the key left out */
      g_ptr_array_add (meta, (gpointer) keys[i]);
      g_ptr_array_add (meta, (gpointer) (g_strcmp0 (keys[i], key) == 0 ? value : dcr_safetensors_metadata (st, keys[i])));
    }
  g_ptr_array_add (meta, NULL);
  guint n = dcr_safetensors_n_tensors (st) - (drop_tensor ? 1 : 0);
  g_autofree DcrStWriteTensor *t = g_new (DcrStWriteTensor, n);
  for (guint i = 0; i < n; i++)
    {
      const DcrStTensor *x = dcr_safetensors_tensor_at (st, i);
      t[i] = (DcrStWriteTensor) { x->name, x->dtype, x->ndim, x->shape, x->data };
    }
  g_assert_true (dcr_safetensors_write (dst, t, n, (const char *const *) meta->pdata, &err));
  g_assert_no_error (err);
}

static void
test_model_file (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-model-XXXXXX", &err);
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  g_autofree char *bad = g_build_filename (dir, "bad.safetensors", NULL);
  g_autoptr (DcrModel) m = random_model (10, 12, 6, 4, TRUE, 7);
  dcr_model_set_decision (m, 0.4f, 0.3f, 0.55f);
  dcr_model_set_training (m, "{\"epochs\":3}");
  g_assert_null (dcr_model_sha256 (m));
  g_assert_true (dcr_model_save (m, path, &err));
  g_assert_no_error (err);
  g_assert_nonnull (dcr_model_sha256 (m));
  g_autoptr (DcrModel) l = dcr_model_load (dcr_test_context (), path, &err);
  g_assert_no_error (err);
  const DcrModelConfig *a = dcr_model_config (m), *b = dcr_model_config (l);
  g_assert_cmpstr (b->backbone_id, ==, "test@0");
  g_assert_cmpuint (b->dim, ==, 10);
  g_assert_cmpuint (b->k, ==, 4);
  g_assert_cmpuint (b->hidden, ==, 12);
  g_assert_cmpuint (b->head_hidden, ==, 6);
  g_assert_true (b->gate);
  g_assert_cmpfloat (b->threshold, ==, 0.4f);
  g_assert_cmpfloat (b->band_lo, ==, 0.3f);
  g_assert_cmpfloat (b->band_hi, ==, 0.55f);
  g_assert_cmpfloat (b->dropout, ==, a->dropout);
  g_assert_cmpstr (b->training, ==, "{\"epochs\":3}");
  g_assert_cmpstr (dcr_model_sha256 (l), ==, dcr_model_sha256 (m));
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      gint64 s[2];
      int nd = dcr_model_param_shape (m, i, s);
      gsize n = nd == 2 ? s[0] * s[1] : s[0];
      g_assert_cmpmem (dcr_model_host_param (m, i), n * 4, dcr_model_host_param (l, i), n * 4);
    }
  g_assert_cmpuint (dcr_model_n_params (l), ==, 17);
  /* the backbone is checked */
  g_assert_true (dcr_model_check_backbone (l, "test@0", 10, &err));
  g_assert_false (dcr_model_check_backbone (l, "mobilenet_v2_b10@123456789abc", 10, &err));
  g_assert_error (err, DCR_MODEL_ERROR, DCR_MODEL_ERROR_MISMATCH);
  g_assert_nonnull (strstr (err->message, "test@0"));
  g_clear_error (&err);

  /* refusals: another format, a newer version, a missing tensor, bad metadata */
  struct { const char *key, *value; gboolean drop; int code; } bads[] = {
    { "format", "something-else", FALSE, DCR_MODEL_ERROR_FORMAT },
    { "version", "2", FALSE, DCR_MODEL_ERROR_VERSION },
    { "dim", "11", FALSE, -1 },
    { "k", "0", FALSE, DCR_MODEL_ERROR_FORMAT },
    { "band_hi", "0.2", FALSE, DCR_MODEL_ERROR_FORMAT },
    { "gate", "maybe", FALSE, DCR_MODEL_ERROR_FORMAT },
    { NULL, NULL, TRUE, -2 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bads); i++)
    {
      write_variant (path, bad, bads[i].key, bads[i].value, bads[i].drop);
      g_autoptr (DcrModel) x = dcr_model_load (dcr_test_context (), bad, &err);
      g_assert_null (x);
      g_assert_nonnull (err);
      if (bads[i].code >= 0)
        g_assert_error (err, DCR_MODEL_ERROR, bads[i].code);
      else if (bads[i].code == -1) /* a shape that disagrees with the metadata */
        g_assert_error (err, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_SHAPE);
      else
        g_assert_error (err, DCR_SAFETENSORS_ERROR, DCR_SAFETENSORS_ERROR_NOT_FOUND);
      g_clear_error (&err);
    }

  /* score fusion survives the file; bad fusion metadata is refused */
  const float fw[3] = { 1.25f, -0.5f, 0.125f };
  dcr_model_set_fusion (m, 7, fw);
  g_assert_true (dcr_model_save (m, path, &err));
  g_autoptr (DcrModel) fl = dcr_model_load (dcr_test_context (), path, &err);
  g_assert_no_error (err);
  const DcrModelConfig *fc = dcr_model_config (fl);
  g_assert_true (fc->fusion);
  g_assert_cmpuint (fc->fusion_column, ==, 7);
  g_assert_cmpmem (fc->fusion_w, sizeof fw, fw, sizeof fw);
  struct { const char *key, *value; } fbads[] = {
    { "fusion", "1,2" }, { "fusion", "1,2,x" }, { "fusion", "1,nan,2" }, { "fusion_column", "10" },
    { "fusion_column", "-1" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (fbads); i++)
    {
      write_variant (path, bad, fbads[i].key, fbads[i].value, FALSE);
      g_autoptr (DcrModel) x = dcr_model_load (dcr_test_context (), bad, &err);
      g_assert_null (x);
      g_assert_error (err, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT);
      g_test_message ("%s=%s: %s", fbads[i].key, fbads[i].value, err->message);
      g_clear_error (&err);
    }

  /* the JPEG decision survives the file; a model without one has none;
   * bad JPEG decisions are refused */
  g_assert_false (fc->jpeg_decision);
  const DcrDecision jd = { 0.45f, 0.1f, 0.85f };
  dcr_model_set_jpeg_decision (m, &jd);
  g_assert_true (dcr_model_save (m, path, &err));
  g_autoptr (DcrModel) jl = dcr_model_load (dcr_test_context (), path, &err);
  g_assert_no_error (err);
  const DcrModelConfig *jc = dcr_model_config (jl);
  g_assert_true (jc->jpeg_decision);
  g_assert_cmpfloat (jc->jpeg.threshold, ==, 0.45f);
  g_assert_cmpfloat (jc->jpeg.band_lo, ==, 0.1f);
  g_assert_cmpfloat (jc->jpeg.band_hi, ==, 0.85f);
  g_assert_cmpfloat (jc->threshold, ==, 0.4f);
  g_assert_true (jc->fusion);
  g_assert_false (jc->fusion_jpeg);
  /* JPEG files' own fusion weights survive the file and apply to JPEG files
   * only; bad ones, or ones without a JPEG decision, are refused */
  const float fjw[3] = { 0.25f, 2.5f, -0.75f };
  dcr_model_set_fusion_jpeg (m, fjw);
  g_assert_true (dcr_model_save (m, path, &err));
  g_autoptr (DcrModel) fjl = dcr_model_load (dcr_test_context (), path, &err);
  g_assert_no_error (err);
  const DcrModelConfig *fjc = dcr_model_config (fjl);
  g_assert_true (fjc->fusion_jpeg);
  g_assert_cmpmem (fjc->fusion_jpeg_w, sizeof fjw, fjw, sizeof fjw);
  g_assert_cmpmem (fjc->fusion_w, sizeof fw, fw, sizeof fw);
  {
    float row[10] = { 0 }, lgt[2] = { 0.5f, 1.5f };
    row[7] = 0.8f;
    double zj = 0.25 * 1.0 + 2.5 * 0.8 - 0.75, zo = 1.25 * 1.0 - 0.5 * 0.8 + 0.125;
    g_assert_cmpfloat (fabs (dcr_model_p_fake (fjl, lgt, row, TRUE) - 1 / (1 + exp (-zj))), <, 1e-6);
    g_assert_cmpfloat (fabs (dcr_model_p_fake (fjl, lgt, row, FALSE) - 1 / (1 + exp (-zo))), <, 1e-6);
  }
  struct { const char *key, *value; } fjbads[] = {
    { "fusion_jpeg", "1,2" }, { "fusion_jpeg", "1,x,2" }, { "fusion_jpeg", "1,inf,2" },
    { "jpeg_decision", NULL }, { "fusion", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (fjbads); i++)
    {
      write_variant (path, bad, fjbads[i].key, fjbads[i].value, FALSE);
      g_autoptr (DcrModel) x = dcr_model_load (dcr_test_context (), bad, &err);
      g_assert_null (x);
      g_assert_error (err, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT);
      g_test_message ("fusion_jpeg, %s=%s: %s", fjbads[i].key, fjbads[i].value ? fjbads[i].value : "(none)",
                      err->message);
      g_clear_error (&err);
    }
  /* removing the JPEG decision or the fusion removes the JPEG weights */
  dcr_model_set_jpeg_decision (m, NULL);
  g_assert_false (dcr_model_config (m)->fusion_jpeg);
  dcr_model_set_jpeg_decision (m, &jd);
  dcr_model_set_fusion_jpeg (m, fjw);
  dcr_model_set_fusion (m, 7, fw);
  g_assert_true (dcr_model_config (m)->fusion_jpeg);
  dcr_model_set_fusion (m, 0, NULL);
  g_assert_false (dcr_model_config (m)->fusion_jpeg);
  dcr_model_set_fusion (m, 7, fw);
  g_assert_true (dcr_model_save (m, path, &err));
  struct { const char *value; } jbads[] = { { "0.5,0.1" }, { "0.5,0.1,x" }, { "0.5,nan,0.9" }, { "0.5,0.6,0.9" },
                                            { "0.5,0.1,1.5" }, { "" } };
  for (guint i = 0; i < G_N_ELEMENTS (jbads); i++)
    {
      write_variant (path, bad, "jpeg_decision", jbads[i].value, FALSE);
      g_autoptr (DcrModel) x = dcr_model_load (dcr_test_context (), bad, &err);
      g_assert_null (x);
      g_assert_error (err, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT);
      g_test_message ("jpeg_decision=%s: %s", jbads[i].value, err->message);
      g_clear_error (&err);
    }
  g_remove (path);
  g_remove (bad);
  g_rmdir (dir);
}

static void
test_verdict (void)
{
  g_autoptr (DcrModel) m = random_model (4, 4, 4, 1, FALSE, 8);
  g_assert_cmpint (dcr_model_verdict (m, 0.49f, FALSE), ==, DCR_VERDICT_REAL);
  g_assert_cmpint (dcr_model_verdict (m, 0.5f, FALSE), ==, DCR_VERDICT_FAKE);
  dcr_model_set_decision (m, 0.6f, 0.45f, 0.7f);
  g_assert_cmpint (dcr_model_verdict (m, 0.44f, FALSE), ==, DCR_VERDICT_REAL);
  g_assert_cmpint (dcr_model_verdict (m, 0.45f, FALSE), ==, DCR_VERDICT_INCONCLUSIVE);
  g_assert_cmpint (dcr_model_verdict (m, 0.65f, FALSE), ==, DCR_VERDICT_INCONCLUSIVE);
  g_assert_cmpint (dcr_model_verdict (m, 0.7f, FALSE), ==, DCR_VERDICT_FAKE);
  g_assert_cmpstr (dcr_verdict_name (DCR_VERDICT_INCONCLUSIVE), ==, "inconclusive");
  /* without a JPEG decision, JPEG files follow the one decision */
  g_assert_cmpint (dcr_model_verdict (m, 0.44f, TRUE), ==, DCR_VERDICT_REAL);
  g_assert_cmpint (dcr_model_verdict (m, 0.65f, TRUE), ==, DCR_VERDICT_INCONCLUSIVE);
  /* with one, JPEG files follow it and the others keep theirs */
  const DcrDecision jd = { 0.55f, 0.2f, 0.9f };
  dcr_model_set_jpeg_decision (m, &jd);
  g_assert_cmpint (dcr_model_verdict (m, 0.19f, TRUE), ==, DCR_VERDICT_REAL);
  g_assert_cmpint (dcr_model_verdict (m, 0.44f, TRUE), ==, DCR_VERDICT_INCONCLUSIVE);
  g_assert_cmpint (dcr_model_verdict (m, 0.44f, FALSE), ==, DCR_VERDICT_REAL);
  g_assert_cmpint (dcr_model_verdict (m, 0.75f, TRUE), ==, DCR_VERDICT_INCONCLUSIVE);
  g_assert_cmpint (dcr_model_verdict (m, 0.75f, FALSE), ==, DCR_VERDICT_FAKE);
  g_assert_cmpint (dcr_model_verdict (m, 0.9f, TRUE), ==, DCR_VERDICT_FAKE);
  DcrDecision d = dcr_model_decision (m, TRUE);
  g_assert_cmpfloat (d.threshold, ==, 0.55f);
  d = dcr_model_decision (m, FALSE);
  g_assert_cmpfloat (d.threshold, ==, 0.6f);
  /* a band that does not hold its threshold is widened to it */
  const DcrDecision narrow = { 0.5f, 0.6f, 0.4f };
  dcr_model_set_jpeg_decision (m, &narrow);
  d = dcr_model_decision (m, TRUE);
  g_assert_cmpfloat (d.band_lo, ==, 0.5f);
  g_assert_cmpfloat (d.band_hi, ==, 0.5f);
  g_assert_cmpint (dcr_model_verdict (m, 0.5f, TRUE), ==, DCR_VERDICT_FAKE);
  dcr_model_set_jpeg_decision (m, NULL);
  g_assert_cmpint (dcr_model_verdict (m, 0.44f, TRUE), ==, DCR_VERDICT_REAL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model/golden-forward-k3", test_golden_forward_k3);
  g_test_add_func ("/model/golden-forward-k1", test_golden_forward_k1);
  g_test_add_func ("/model/golden-backward-k3", test_golden_backward_k3);
  g_test_add_func ("/model/golden-backward-k1", test_golden_backward_k1);
  g_test_add_func ("/model/one-key", test_one_key);
  g_test_add_func ("/model/reference-odd", test_reference_odd);
  g_test_add_func ("/model/pair-mode", test_pair_mode);
  g_test_add_func ("/model/single-mode", test_single_mode);
  g_test_add_func ("/model/update-memory", test_update_memory);
  g_test_add_func ("/model/file", test_model_file);
  g_test_add_func ("/model/verdict", test_verdict);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
