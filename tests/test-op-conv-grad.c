/* test-op-conv-grad.c — dcr_op_conv2d_backward: the reference against
 * central finite differences of dcr_ref_conv2d and against PyTorch's
 * autograd (tests/golden/conv-grad-torch.py), then the GPU op against the
 * reference over strides, kernels, paddings, dilation and channel counts,
 * with outputs left out, overwriting and accumulating, plus the argument
 * checks. */
#include "dcr-test-util.h"
#include "dcr-op-grad.h"
#include "golden/conv-grad-torch.h"

#include <math.h>
#include <string.h>

/* ---- the reference against finite differences of the forward ------------- */

typedef struct {
  float *x, *w, *b, *g, *y;
  gint64 n, h, wd, cin, cout;
  int kh, kw;
  const DcrConv2dParams *p;
  gint64 ny;
} FdObj;

/* Σ g·conv(x, w) + b, the forward in the reference's own code */
static double
fd_obj (FdObj *o)
{
  dcr_ref_conv2d (o->x, o->n, o->h, o->wd, o->cin, o->w, o->cout, o->kh, o->kw, o->b, NULL, o->y, o->p);
  double s = 0;
  for (gint64 i = 0; i < o->ny; i++)
    s += (double) o->g[i] * o->y[i];
  return s;
}

/* The forward is linear in each variable, so a step of 1/16 (exact in
 * binary) leaves only the rounding of y to f32 in the difference. */
static void
check_fd (const char *what, FdObj *o, float *var, gint64 n, const float *grad)
{
  const float h = 1.0f / 16;
  for (gint64 i = 0; i < n; i++)
    {
      float v = var[i];
      var[i] = v + h;
      double fp = fd_obj (o);
      var[i] = v - h;
      double fm = fd_obj (o);
      var[i] = v;
      double fd = (fp - fm) / (2.0 * h);
      if (!(fabs (fd - grad[i]) <= 2e-5 + 1e-4 * fabs (fd)))
        {
          g_test_fail_printf ("%s: d/d[%" G_GINT64_FORMAT "] is %.9g, finite differences say %.9g", what, i,
                              grad[i], fd);
          return;
        }
    }
}

static void
test_ref_fd (void)
{
  static const struct {
    gint64 n, h, w, cin, cout;
    int kh, kw;
    DcrConv2dParams p;
  } cases[] = {
    { 2, 5, 6, 2, 3, 3, 3, { .stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_right = 1 } },
    { 1, 6, 5, 3, 2, 3, 2, { .stride_w = 3, .pad_top = 1, .pad_bottom = 2, .pad_left = 2, .dilation_h = 2 } },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      const DcrConv2dParams *p = &cases[c].p;
      gint64 n = cases[c].n, h = cases[c].h, w = cases[c].w, cin = cases[c].cin, cout = cases[c].cout;
      int kh = cases[c].kh, kw = cases[c].kw;
      gint64 ho = dcr_conv2d_out_size (h, kh, MAX (p->stride_h, 1), p->pad_top, p->pad_bottom,
                                       MAX (p->dilation_h, 1));
      gint64 wo = dcr_conv2d_out_size (w, kw, MAX (p->stride_w, 1), p->pad_left, p->pad_right,
                                       MAX (p->dilation_w, 1));
      gint64 nx = n * h * w * cin, nw = cout * kh * kw * cin, ny = n * ho * wo * cout;
      g_autofree float *x = dcr_test_random_floats (nx, 11 + c, -1, 1);
      g_autofree float *wt = dcr_test_random_floats (nw, 12 + c, -1, 1);
      g_autofree float *b = dcr_test_random_floats (cout, 13 + c, -1, 1);
      g_autofree float *g = dcr_test_random_floats (ny, 14 + c, -1, 1);
      g_autofree float *y = g_new (float, ny);
      g_autofree float *dx = g_new (float, nx);
      g_autofree float *dw = g_new (float, nw);
      g_autofree float *db = g_new (float, cout);
      dcr_ref_conv2d_backward (x, n, h, w, cin, wt, cout, kh, kw, g, dx, dw, db, p, DCR_GRAD_OVERWRITE);
      FdObj o = { x, wt, b, g, y, n, h, w, cin, cout, kh, kw, p, ny };
      g_autofree char *what = g_strdup_printf ("conv2d_backward reference case %u", c);
      check_fd (what, &o, x, nx, dx);
      check_fd (what, &o, wt, nw, dw);
      check_fd (what, &o, b, cout, db);
    }
}

/* ---- against PyTorch ---------------------------------------------------------- */

static void
test_torch (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (conv_grad_torch_cases); i++)
    {
      const ConvGradTorchCase *c = &conv_grad_torch_cases[i];
      DcrConv2dParams p = {
        .stride_h = c->stride[0], .stride_w = c->stride[1], .pad_top = c->pad[0], .pad_bottom = c->pad[1],
        .pad_left = c->pad[2], .pad_right = c->pad[3], .dilation_h = c->dilation[0], .dilation_w = c->dilation[1],
      };
      gint64 ho = dcr_conv2d_out_size (c->h, c->kh, c->stride[0], c->pad[0], c->pad[1], c->dilation[0]);
      gint64 wo = dcr_conv2d_out_size (c->w, c->kw, c->stride[1], c->pad[2], c->pad[3], c->dilation[1]);
      gint64 nx = (gint64) c->n * c->h * c->w * c->cin, nw = (gint64) c->cout * c->kh * c->kw * c->cin;
      gint64 ny = c->n * ho * wo * c->cout;
      g_autofree float *x = g_new (float, nx);
      g_autofree float *w = g_new (float, nw);
      g_autofree float *dy = g_new (float, ny);
      for (gint64 k = 0; k < nx; k++)
        x[k] = conv_grad_torch_value (k, 1);
      for (gint64 k = 0; k < nw; k++)
        w[k] = conv_grad_torch_value (k, 2);
      for (gint64 k = 0; k < ny; k++)
        dy[k] = conv_grad_torch_value (k, 4);
      g_autofree char *what = g_strdup_printf ("conv2d_backward vs torch case %u", i);

      g_autofree float *dx = g_new (float, nx);
      g_autofree float *dw = g_new (float, nw);
      g_autofree float *db = g_new (float, c->cout);
      dcr_ref_conv2d_backward (x, c->n, c->h, c->w, c->cin, w, c->cout, c->kh, c->kw, dy, dx, dw, db, &p,
                               DCR_GRAD_OVERWRITE);
      dcr_test_assert_close (what, dx, c->dx, nx, 1e-6, 1e-6);
      dcr_test_assert_close (what, dw, c->dw, nw, 1e-6, 1e-6);
      dcr_test_assert_close (what, db, c->db, c->cout, 1e-6, 1e-6);

      gint64 xs[] = { c->n, c->h, c->w, c->cin }, ws[] = { c->cout, c->kh, c->kw, c->cin };
      gint64 ys[] = { c->n, ho, wo, c->cout }, bs[] = { c->cout };
      g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 4, xs, x);
      g_autoptr (DcrTensor) tw = dcr_test_upload_rounded (DCR_F32, 4, ws, w);
      g_autoptr (DcrTensor) tdy = dcr_test_upload_rounded (DCR_F32, 4, ys, dy);
      g_autoptr (DcrTensor) tdx = dcr_test_upload_rounded (DCR_F32, 4, xs, x);
      g_autoptr (DcrTensor) tdw = dcr_test_upload_rounded (DCR_F32, 4, ws, w);
      g_autoptr (DcrTensor) tdb = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, bs, NULL);
      g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
      g_autoptr (GError) err = NULL;
      g_assert_true (dcr_op_conv2d_backward (seq, tx, tw, tdy, tdx, tdw, tdb, &p, DCR_GRAD_OVERWRITE, &err));
      g_assert_no_error (err);
      dcr_test_submit_wait (seq);
      dcr_test_download_into (tdx, dx);
      dcr_test_download_into (tdw, dw);
      dcr_test_download_into (tdb, db);
      dcr_test_assert_close (what, dx, c->dx, nx, 1e-5, 1e-5);
      dcr_test_assert_close (what, dw, c->dw, nw, 1e-5, 1e-5);
      dcr_test_assert_close (what, db, c->db, c->cout, 1e-5, 1e-5);
    }
  dcr_test_assert_no_validation_errors ();
}

/* ---- GPU against the reference ------------------------------------------------ */

typedef struct {
  gint64 n, h, w, cin, cout;
  int kh, kw, sh, sw, pt, pb, pl, pr, dh, dw;
} GpuCase;

static const GpuCase gpu_cases[] = {
  /* n  h   w  cin cout kh kw sh sw pt pb pl pr dh dw */
  { 1, 5, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1 },
  { 3, 7, 6, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 },
  { 1, 9, 8, 8, 16, 3, 3, 2, 2, 0, 1, 0, 1, 1, 1 },   /* Keras 'same', stride 2 */
  { 3, 10, 11, 16, 8, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1 },
  { 1, 8, 9, 5, 3, 5, 3, 2, 3, 1, 0, 0, 1, 1, 1 },    /* 5 channels, uneven everything */
  { 3, 9, 9, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2 },    /* dilation 2 */
  { 1, 6, 7, 16, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1 },   /* the CNN's 1x1 head */
  { 3, 7, 7, 16, 16, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1 },  /* strided 1x1 */
  { 1, 12, 10, 9, 11, 3, 5, 3, 2, 0, 1, 1, 0, 1, 1 }, /* more than 8 channels, partial tiles */
  { 3, 31, 30, 3, 8, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1 },  /* the CNN's first layer, valid */
};

/* which outputs, which flags */
static const struct {
  gboolean dx, dw, db;
  DcrGradFlags flags;
} modes[] = {
  { TRUE, TRUE, TRUE, DCR_GRAD_OVERWRITE },
  { TRUE, TRUE, TRUE, DCR_GRAD_ACCUMULATE_ALL },
  { FALSE, TRUE, TRUE, DCR_GRAD_ACCUMULATE_PARAMS },
  { TRUE, FALSE, TRUE, DCR_GRAD_ACCUMULATE_INPUT },
  { TRUE, TRUE, FALSE, DCR_GRAD_ACCUMULATE_INPUT },
  { FALSE, FALSE, TRUE, DCR_GRAD_ACCUMULATE_PARAMS },
};

static void
test_gpu (void)
{
  for (guint ci = 0; ci < G_N_ELEMENTS (gpu_cases); ci++)
    for (guint m = 0; m < G_N_ELEMENTS (modes); m++)
      {
        const GpuCase *c = &gpu_cases[ci];
        DcrConv2dParams p = {
          .stride_h = c->sh, .stride_w = c->sw, .pad_top = c->pt, .pad_bottom = c->pb, .pad_left = c->pl,
          .pad_right = c->pr, .dilation_h = c->dh, .dilation_w = c->dw,
          /* ignored by the backward pass */
          .act = DCR_ACT_RELU, .algo = DCR_CONV_ALGO_IGEMM,
        };
        gint64 ho = dcr_conv2d_out_size (c->h, c->kh, c->sh, c->pt, c->pb, c->dh);
        gint64 wo = dcr_conv2d_out_size (c->w, c->kw, c->sw, c->pl, c->pr, c->dw);
        g_assert_cmpint (ho, >=, 1);
        g_assert_cmpint (wo, >=, 1);
        gint64 nx = c->n * c->h * c->w * c->cin, nw = c->cout * c->kh * c->kw * c->cin;
        gint64 ny = c->n * ho * wo * c->cout;
        guint32 seed = 100 * ci + 10 * m;
        g_autofree float *x = dcr_test_random_floats (nx, seed + 1, -1, 1);
        g_autofree float *w = dcr_test_random_floats (nw, seed + 2, -1, 1);
        g_autofree float *dy = dcr_test_random_floats (ny, seed + 3, -1, 1);
        /* non-zero starting data, which accumulating adds onto */
        g_autofree float *dx = dcr_test_random_floats (nx, seed + 4, -1, 1);
        g_autofree float *dw = dcr_test_random_floats (nw, seed + 5, -1, 1);
        g_autofree float *db = dcr_test_random_floats (c->cout, seed + 6, -1, 1);
        gint64 xs[] = { c->n, c->h, c->w, c->cin }, ws[] = { c->cout, c->kh, c->kw, c->cin };
        gint64 ys[] = { c->n, ho, wo, c->cout }, bs[] = { c->cout };
        g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 4, xs, x);
        g_autoptr (DcrTensor) tw = dcr_test_upload_rounded (DCR_F32, 4, ws, w);
        g_autoptr (DcrTensor) tdy = dcr_test_upload_rounded (DCR_F32, 4, ys, dy);
        g_autoptr (DcrTensor) tdx = dcr_test_upload_rounded (DCR_F32, 4, xs, dx);
        g_autoptr (DcrTensor) tdw = dcr_test_upload_rounded (DCR_F32, 4, ws, dw);
        g_autoptr (DcrTensor) tdb = dcr_test_upload_rounded (DCR_F32, 1, bs, db);
        g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
        g_autoptr (GError) err = NULL;
        g_assert_true (dcr_op_conv2d_backward (seq, tx, tw, tdy, modes[m].dx ? tdx : NULL, modes[m].dw ? tdw : NULL,
                                               modes[m].db ? tdb : NULL, &p, modes[m].flags, &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        g_autofree float *gx = dcr_test_download_floats (tdx);
        g_autofree float *gw = dcr_test_download_floats (tdw);
        g_autofree float *gb = dcr_test_download_floats (tdb);
        /* outputs left out stay as they were: the reference leaves them too */
        dcr_ref_conv2d_backward (x, c->n, c->h, c->w, c->cin, w, c->cout, c->kh, c->kw, dy,
                                 modes[m].dx ? dx : NULL, modes[m].dw ? dw : NULL, modes[m].db ? db : NULL, &p,
                                 modes[m].flags);
        g_autofree char *what = g_strdup_printf ("conv2d_backward case %u mode %u", ci, m);
        /* f32 sums of up to N·Ho·Wo (dw, db) or Cout·KH·KW (dx) terms in another order */
        double terms_w = (double) c->n * ho * wo, terms_x = (double) c->cout * c->kh * c->kw;
        dcr_test_assert_close (what, gx, dx, nx, 2e-6 * terms_x, 1e-4);
        dcr_test_assert_close (what, gw, dw, nw, 2e-6 * terms_w, 1e-4);
        dcr_test_assert_close (what, gb, db, c->cout, 2e-6 * terms_w, 1e-4);
      }
  dcr_test_assert_no_validation_errors ();
}

/* ---- argument checks ---------------------------------------------------------- */

static DcrTensor *
tensor (DcrDtype dt, gint64 a, gint64 b, gint64 c, gint64 d)
{
  g_autoptr (GError) err = NULL;
  gint64 s[] = { a, b, c, d };
  int nd = d ? 4 : c ? 3 : b ? 2 : 1;
  DcrTensor *t = dcr_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, dt, nd, s, &err);
  g_assert_no_error (err);
  return t;
}

static void
expect (gboolean ok, GError **err, int code, const char *needle)
{
  g_assert_false (ok);
  g_assert_error (*err, DCR_OPS_ERROR, code);
  g_assert_nonnull (strstr ((*err)->message, "conv2d_backward"));
  if (needle && !strstr ((*err)->message, needle))
    g_error ("\"%s\" not in \"%s\"", needle, (*err)->message);
  g_clear_error (err);
}

static void
test_errors (void)
{
  /* x [2, 6, 6, 4], w [3, 3, 3, 4], stride 1 valid → dy [2, 4, 4, 3] */
  g_autoptr (DcrTensor) x = tensor (DCR_F32, 2, 6, 6, 4);
  g_autoptr (DcrTensor) w = tensor (DCR_F32, 3, 3, 3, 4);
  g_autoptr (DcrTensor) dy = tensor (DCR_F32, 2, 4, 4, 3);
  g_autoptr (DcrTensor) db = tensor (DCR_F32, 3, 0, 0, 0);
  g_autoptr (DcrTensor) db4 = tensor (DCR_F32, 4, 0, 0, 0);
  g_autoptr (DcrTensor) dy5 = tensor (DCR_F32, 2, 5, 4, 3);
  g_autoptr (DcrTensor) xi = tensor (DCR_I32, 2, 6, 6, 4);
  g_autoptr (DcrTensor) x3 = tensor (DCR_F32, 2, 6, 24, 0);
  g_autoptr (DcrTensor) wbad = tensor (DCR_F32, 3, 3, 3, 2);
  g_autoptr (DcrTensor) dxbad = tensor (DCR_F32, 2, 6, 5, 4);
  g_autoptr (DcrTensor) dwbad = tensor (DCR_F32, 3, 3, 2, 4);
  g_autoptr (DcrTensor) wbig = tensor (DCR_F32, 3, 9, 9, 4);
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  DcrConv2dParams p = { 0 };

  DcrConv2dParams pg = { .groups = 2 };
  expect (dcr_op_conv2d_backward (seq, x, w, dy, x, w, db, &pg, 0, &err), &err, DCR_OPS_ERROR_UNSUPPORTED,
          "groups");
  expect (dcr_op_conv2d_backward (seq, xi, w, dy, NULL, w, NULL, &p, 0, &err), &err, DCR_OPS_ERROR_DTYPE, "f32");
  expect (dcr_op_conv2d_backward (seq, x, w, dy, xi, NULL, NULL, &p, 0, &err), &err, DCR_OPS_ERROR_DTYPE, "dx");
  expect (dcr_op_conv2d_backward (seq, x3, w, dy, NULL, w, NULL, &p, 0, &err), &err, DCR_OPS_ERROR_SHAPE, NULL);
  expect (dcr_op_conv2d_backward (seq, x, wbad, dy, NULL, NULL, db, &p, 0, &err), &err, DCR_OPS_ERROR_SHAPE,
          "[3, 3, 3, 2]");
  expect (dcr_op_conv2d_backward (seq, x, w, dy5, x, NULL, NULL, &p, 0, &err), &err, DCR_OPS_ERROR_SHAPE,
          "expected [2, 4, 4, 3]");
  expect (dcr_op_conv2d_backward (seq, x, w, dy, dxbad, NULL, NULL, &p, 0, &err), &err, DCR_OPS_ERROR_SHAPE,
          "dx");
  expect (dcr_op_conv2d_backward (seq, x, w, dy, NULL, dwbad, NULL, &p, 0, &err), &err, DCR_OPS_ERROR_SHAPE,
          "dw");
  expect (dcr_op_conv2d_backward (seq, x, w, dy, NULL, NULL, db4, &p, 0, &err), &err, DCR_OPS_ERROR_SHAPE, "db");
  expect (dcr_op_conv2d_backward (seq, x, wbig, dy, NULL, wbig, NULL, &p, 0, &err), &err, DCR_OPS_ERROR_SHAPE,
          "does not fit");
  DcrConv2dParams pn = { .pad_left = -1 };
  expect (dcr_op_conv2d_backward (seq, x, w, dy, NULL, w, NULL, &pn, 0, &err), &err, DCR_OPS_ERROR_UNSUPPORTED,
          "negative");
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);

  /* the same tensors with the right shapes record dx and the fused dw + db */
  g_autoptr (DcrTensor) dx = tensor (DCR_F32, 2, 6, 6, 4);
  g_autoptr (DcrTensor) dw = tensor (DCR_F32, 3, 3, 3, 4);
  g_assert_true (dcr_op_conv2d_backward (seq, x, w, dy, dx, dw, db, &p, 0, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/conv-grad/reference/finite-differences", test_ref_fd);
  g_test_add_func ("/conv-grad/torch", test_torch);
  g_test_add_func ("/conv-grad/gpu", test_gpu);
  g_test_add_func ("/conv-grad/errors", test_errors);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
