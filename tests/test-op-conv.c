/* test-op-conv.c — dcr_op_conv2d against dcr_ref_conv2d over odd shapes,
 * strides, asymmetric padding, dilation and groups, with every kernel that
 * applies (and the larger tiles of large images), f32 and f16; the reference
 * against PyTorch once (golden data); padding helpers, BatchNorm folding and
 * shape errors; the fused MobileNetV2 block (dcr_op_mbblock) against the
 * three reference convolutions. Every distinct kernel configuration costs a compile of up to
 * a few seconds on lavapipe, which is what bounds the number of cases. */
#include "dcr-test-util.h"
#include "dcr-op-conv.h"
#include "dcr-half.h"
#include "golden/conv2d-torch.h"

#include <math.h>
#include <string.h>

/* f32 storage: only the summation order differs from the double-precision
 * reference. f16 storage: inputs are rounded to f16 before the reference
 * sees them, so what remains is the rounding of the output (2^-11 relative)
 * plus the fp32 accumulation. */
#define F32_ATOL 1e-4
#define F32_RTOL 1e-4
#define F16_ATOL 2e-3
#define F16_RTOL 2e-3

typedef struct {
  const char *what;
  gint64 n, h, w, cin, cout;
  int kh, kw;
  DcrConv2dParams p;
  gboolean bias, residual;
} ConvCase;

/* Runs one case with one kernel and dtype and compares with the reference. */
static void
run_case (const ConvCase *c, DcrConvAlgo algo, DcrDtype dt)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  DcrConv2dParams p = c->p;
  p.algo = algo;
  int groups = MAX (p.groups, 1);
  gint64 ho = dcr_conv2d_out_size (c->h, c->kh, p.stride_h, p.pad_top, p.pad_bottom, p.dilation_h);
  gint64 wo = dcr_conv2d_out_size (c->w, c->kw, p.stride_w, p.pad_left, p.pad_right, p.dilation_w);
  g_assert_cmpint (ho, >=, 1);
  g_assert_cmpint (wo, >=, 1);
  gint64 xs[] = { c->n, c->h, c->w, c->cin };
  gint64 ws[] = { c->cout, c->kh, c->kw, c->cin / groups };
  gint64 ys[] = { c->n, ho, wo, c->cout };
  gint64 nx = c->n * c->h * c->w * c->cin, nw = c->cout * c->kh * c->kw * (c->cin / groups);
  gint64 ny = c->n * ho * wo * c->cout;
  g_autofree float *x = g_new (float, nx);
  g_autofree float *w = g_new (float, nw);
  g_autofree float *b = g_new (float, c->cout);
  g_autofree float *r = g_new (float, ny);
  g_autofree float *want = g_new (float, ny);
  dcr_test_fill (x, nx, 1, -1, 1);
  dcr_test_fill (w, nw, 2, -0.5f, 0.5f);
  dcr_test_fill (b, c->cout, 3, -1, 1);
  dcr_test_fill (r, ny, 4, -2, 2);

  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 4, xs, x);
  g_autoptr (DcrTensor) tw = dcr_test_upload_rounded (dt, 4, ws, w);
  gint64 bs[] = { c->cout };
  g_autoptr (DcrTensor) tb = c->bias ? dcr_test_upload_rounded (dt, 1, bs, b) : NULL;
  g_autoptr (DcrTensor) tr = c->residual ? dcr_test_upload_rounded (dt, 4, ys, r) : NULL;
  g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (dt, 4, ys, NULL);

  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_op_conv2d (seq, tx, tw, tb, tr, ty, &p, &err));
  g_assert_no_error (err);
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);

  dcr_ref_conv2d (x, c->n, c->h, c->w, c->cin, w, c->cout, c->kh, c->kw, c->bias ? b : NULL,
                  c->residual ? r : NULL, want, &p);
  g_autofree float *got = dcr_test_download_floats (ty);
  static const char *algos[] = { "auto", "direct", "igemm", "depthwise" };
  g_autofree char *what = g_strdup_printf ("conv2d %s (%s, %s)", c->what, algos[algo], dcr_dtype_name (dt));
  if (dt == DCR_F16)
    dcr_test_assert_close (what, got, want, ny, F16_ATOL, F16_RTOL);
  else
    dcr_test_assert_close (what, got, want, ny, F32_ATOL, F32_RTOL);
}

static void
run_all (const ConvCase *cases, gsize n_cases)
{
  const DcrDeviceInfo *dev = dcr_context_device (dcr_test_context ());
  for (gsize i = 0; i < n_cases; i++)
    {
      const ConvCase *c = &cases[i];
      int groups = MAX (c->p.groups, 1);
      DcrConvAlgo algos[4];
      guint n_algos = 0;
      algos[n_algos++] = DCR_CONV_ALGO_DIRECT;
      if (dev->subgroup_arithmetic)
        algos[n_algos++] = DCR_CONV_ALGO_IGEMM;
      if (groups == c->cin && groups > 1)
        algos[n_algos++] = DCR_CONV_ALGO_DEPTHWISE;
      for (guint a = 0; a < n_algos; a++)
        run_case (c, algos[a], DCR_F32);
      /* f16 storage changes only the loads and stores, and every pipeline costs
       * a compile on lavapipe: f16 runs the kernel AUTO picks (test_conv_f16_direct
       * covers the fallback) */
      if (dcr_test_device_has_f16 ())
        run_case (c, DCR_CONV_ALGO_AUTO, DCR_F16);
    }
  dcr_test_assert_no_validation_errors ();
}

#define P(...) ((DcrConv2dParams) { __VA_ARGS__ })

static void
test_conv_pointwise (void)
{
  const ConvCase cases[] = {
    { "1x1 17->65", 2, 7, 17, 17, 65, 1, 1, P (0), TRUE, FALSE },
    { "1x1 20->5 relu", 1, 3, 7, 20, 5, 1, 1, P (.act = DCR_ACT_RELU), TRUE, FALSE },
    { "1x1 64->24 relu6", 1, 17, 3, 64, 24, 1, 1, P (.act = DCR_ACT_RELU6), FALSE, FALSE },
    { "1x1 1->3 1x1 image", 3, 1, 1, 1, 3, 1, 1, P (0), TRUE, FALSE },
    { "1x1 12->17 stride 2 residual relu", 1, 7, 17, 12, 17, 1, 1,
      P (.stride_h = 2, .stride_w = 2, .act = DCR_ACT_RELU), TRUE, TRUE },
  };
  run_all (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_spatial (void)
{
  const ConvCase cases[] = {
    { "3x3 5->17 pad 1", 1, 17, 17, 5, 17, 3, 3,
      P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1), TRUE, FALSE },
    { "3x3 8->24 stride 2 keras-same", 2, 17, 7, 8, 24, 3, 3,
      P (.stride_h = 2, .stride_w = 2, .pad_bottom = 1, .pad_right = 1, .act = DCR_ACT_RELU6), TRUE, FALSE },
    { "7x7/2 stem 3->5", 1, 17, 17, 3, 5, 7, 7,
      P (.stride_h = 2, .stride_w = 2, .pad_top = 3, .pad_bottom = 3, .pad_left = 3, .pad_right = 3,
         .act = DCR_ACT_RELU), TRUE, FALSE },
    { "3x3 4->3 dilation 2", 1, 7, 7, 4, 3, 3, 3,
      P (.pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2, .dilation_h = 2, .dilation_w = 2),
      FALSE, FALSE },
    { "3x2 3->1 uneven pads and strides", 2, 7, 17, 3, 1, 3, 2,
      P (.stride_h = 2, .stride_w = 3, .pad_top = 2, .pad_left = 1, .pad_right = 3), TRUE, FALSE },
    { "3x3 16->65 on 1x1 residual relu", 1, 1, 1, 16, 65, 3, 3,
      P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .act = DCR_ACT_RELU), TRUE, TRUE },
    { "3x3 64->64 resnet layer shape", 1, 7, 7, 64, 64, 3, 3,
      P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .act = DCR_ACT_RELU), TRUE, TRUE },
  };
  run_all (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_grouped (void)
{
  const ConvCase cases[] = {
    { "3x3 groups 4 8->12", 1, 7, 7, 8, 12, 3, 3,
      P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 4), TRUE, FALSE },
    { "1x1 groups 2 16->64 relu", 1, 3, 17, 16, 64, 1, 1, P (.groups = 2, .act = DCR_ACT_RELU), TRUE, FALSE },
    { "3x3 groups 5 5->65 stride 2", 1, 17, 17, 5, 65, 3, 3,
      P (.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_left = 1, .groups = 5), FALSE, FALSE },
  };
  run_all (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_depthwise (void)
{
  const ConvCase cases[] = {
    { "dw 3x3 17 pad 1", 1, 17, 17, 17, 17, 3, 3,
      P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 17), TRUE, FALSE },
    { "dw 3x3 20 pad 1 relu6", 2, 7, 17, 20, 20, 3, 3,
      P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 20, .act = DCR_ACT_RELU6),
      TRUE, FALSE },
    { "dw 3x3 16 stride 2 keras-same", 1, 17, 17, 16, 16, 3, 3,
      P (.stride_h = 2, .stride_w = 2, .pad_bottom = 1, .pad_right = 1, .groups = 16, .act = DCR_ACT_RELU6),
      TRUE, FALSE },
    { "dw 3x3 5 stride 2 residual", 1, 7, 3, 5, 5, 3, 3,
      P (.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1,
         .groups = 5), TRUE, TRUE },
    { "dw 3x3 multiplier 2", 1, 7, 7, 3, 6, 3, 3,
      P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 3), TRUE, FALSE },
    { "dw 5x5 dilation 2 on 1x1", 1, 1, 1, 12, 12, 5, 5,
      P (.pad_top = 4, .pad_bottom = 4, .pad_left = 4, .pad_right = 4, .dilation_h = 2, .dilation_w = 2,
         .groups = 12), FALSE, TRUE },
    { "dw 3x3 8 dilation 2 stride 2", 1, 17, 17, 8, 8, 3, 3,
      P (.stride_h = 2, .stride_w = 2, .pad_top = 2, .pad_left = 2, .pad_right = 1, .dilation_h = 2,
         .dilation_w = 2, .groups = 8, .act = DCR_ACT_RELU), TRUE, FALSE },
  };
  run_all (cases, G_N_ELEMENTS (cases));
}

/* Images above 1024 output pixels get the larger tiles (32 pixels per
 * subgroup, depthwise blocks up to 32 outputs); f32 only, they take seconds
 * to compile on lavapipe. */
static void
test_conv_large_tiles (void)
{
  const ConvCase cases[] = {
    { "1x1 24->40 on 33x35", 1, 33, 35, 24, 40, 1, 1, P (.act = DCR_ACT_RELU6), TRUE, TRUE },
    { "dw 3x3 16 pad 1 on 35x33", 1, 35, 33, 16, 16, 3, 3,
      P (.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 16, .act = DCR_ACT_RELU6),
      TRUE, TRUE },
    { "dw 3x3 8 stride 2 keras-same on 67x65", 1, 67, 65, 8, 8, 3, 3,
      P (.stride_h = 2, .stride_w = 2, .pad_bottom = 1, .pad_right = 1, .groups = 8), TRUE, FALSE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i], DCR_CONV_ALGO_AUTO, DCR_F32);
  dcr_test_assert_no_validation_errors ();
}

static void
test_conv_f16_direct (void)
{
  if (!dcr_test_device_has_f16 ())
    {
      g_test_skip ("no 16-bit storage on this device");
      return;
    }
  const ConvCase cases[] = {
    { "3x3 8->24 stride 2 keras-same", 2, 17, 7, 8, 24, 3, 3,
      P (.stride_h = 2, .stride_w = 2, .pad_bottom = 1, .pad_right = 1, .act = DCR_ACT_RELU6), TRUE, TRUE },
    { "3x3 groups 5 5->65 stride 2", 1, 17, 17, 5, 65, 3, 3,
      P (.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_left = 1, .groups = 5), FALSE, FALSE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i], DCR_CONV_ALGO_DIRECT, DCR_F16);
  dcr_test_assert_no_validation_errors ();
}

/* The reference is the yardstick for everything above, so it is checked once
 * against torch.nn.functional.conv2d (tests/golden/conv2d-torch.py). */
static void
test_ref_matches_torch (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (conv2d_torch_cases); i++)
    {
      const Conv2dTorchCase *g = &conv2d_torch_cases[i];
      DcrConv2dParams p = {
        .stride_h = g->stride[0], .stride_w = g->stride[1],
        .pad_top = g->pad[0], .pad_bottom = g->pad[1], .pad_left = g->pad[2], .pad_right = g->pad[3],
        .dilation_h = g->dilation[0], .dilation_w = g->dilation[1], .groups = g->groups,
      };
      gint64 nx = g->n * g->h * g->w * g->cin, nw = g->cout * g->kh * g->kw * (g->cin / g->groups);
      g_autofree float *x = g_new (float, nx);
      g_autofree float *w = g_new (float, nw);
      g_autofree float *b = g_new (float, g->cout);
      for (gint64 k = 0; k < nx; k++)
        x[k] = conv2d_torch_value (k, 1);
      for (gint64 k = 0; k < nw; k++)
        w[k] = conv2d_torch_value (k, 2);
      for (gint64 k = 0; k < g->cout; k++)
        b[k] = conv2d_torch_value (k, 3);
      gint64 ho = dcr_conv2d_out_size (g->h, g->kh, p.stride_h, p.pad_top, p.pad_bottom, p.dilation_h);
      gint64 wo = dcr_conv2d_out_size (g->w, g->kw, p.stride_w, p.pad_left, p.pad_right, p.dilation_w);
      gint64 ny = g->n * ho * wo * g->cout;
      g_assert_cmpint (ny, ==, g->n_out);
      g_autofree float *y = g_new (float, ny);
      dcr_ref_conv2d (x, g->n, g->h, g->w, g->cin, w, g->cout, g->kh, g->kw, b, NULL, y, &p);
      g_autofree char *what = g_strdup_printf ("reference vs torch, case %u", i);
      dcr_test_assert_close (what, y, g->out, ny, 1e-5, 1e-5);

      /* and the GPU on the same numbers */
      gint64 xs[] = { g->n, g->h, g->w, g->cin }, ws[] = { g->cout, g->kh, g->kw, g->cin / g->groups };
      gint64 bs[] = { g->cout }, ys[] = { g->n, ho, wo, g->cout };
      g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 4, xs, x);
      g_autoptr (DcrTensor) tw = dcr_test_upload_rounded (DCR_F32, 4, ws, w);
      g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (DCR_F32, 1, bs, b);
      g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (DCR_F32, 4, ys, NULL);
      g_autoptr (GError) err = NULL;
      g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
      g_assert_true (dcr_op_conv2d (seq, tx, tw, tb, NULL, ty, &p, &err));
      g_assert_true (dcr_seq_submit (seq, TRUE, &err));
      g_assert_no_error (err);
      g_autofree float *got = dcr_test_download_floats (ty);
      g_free (what);
      what = g_strdup_printf ("GPU vs torch, case %u", i);
      dcr_test_assert_close (what, got, g->out, ny, 1e-4, 1e-4);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
test_padding_rules (void)
{
  int a, b;
  /* Keras 'same' with stride 2 on an even size puts the extra pixel after */
  dcr_conv2d_same_padding (224, 3, 2, 1, &a, &b);
  g_assert_cmpint (a, ==, 0);
  g_assert_cmpint (b, ==, 1);
  g_assert_cmpint (dcr_conv2d_out_size (224, 3, 2, a, b, 1), ==, 112);
  dcr_conv2d_same_padding (7, 3, 1, 1, &a, &b);
  g_assert_cmpint (a, ==, 1);
  g_assert_cmpint (b, ==, 1);
  dcr_conv2d_same_padding (17, 7, 2, 1, &a, &b);
  g_assert_cmpint (a, ==, 3);
  g_assert_cmpint (b, ==, 3);
  g_assert_cmpint (dcr_conv2d_out_size (17, 7, 2, a, b, 1), ==, 9);
  dcr_conv2d_same_padding (7, 3, 1, 2, &a, &b); /* dilation 2 spans 5 */
  g_assert_cmpint (a, ==, 2);
  g_assert_cmpint (b, ==, 2);
  dcr_conv2d_same_padding (5, 1, 2, 1, &a, &b);
  g_assert_cmpint (a + b, ==, 0);
  /* PyTorch's floor rule: the ResNet stem maps 224 to 112, layer 2's stride to 28 */
  g_assert_cmpint (dcr_conv2d_out_size (224, 7, 2, 3, 3, 1), ==, 112);
  g_assert_cmpint (dcr_conv2d_out_size (56, 3, 2, 1, 1, 1), ==, 28);
  g_assert_cmpint (dcr_conv2d_out_size (3, 7, 1, 1, 1, 1), ==, 0);
}

static void
test_fold_batchnorm (void)
{
  /* conv → BN equals the folded conv, on the reference */
  enum { N = 1, H = 5, W = 4, CIN = 3, COUT = 4, K = 3 };
  float x[N * H * W * CIN], w[COUT * K * K * CIN], b[COUT];
  float gamma[COUT] = { 1.5f, -0.5f, 2.0f, 0.25f }, beta[COUT] = { 0.1f, -0.2f, 0.3f, 0.0f };
  float mean[COUT] = { 0.2f, -1.0f, 0.0f, 3.0f }, var[COUT] = { 0.5f, 2.0f, 1.0f, 0.01f };
  const float eps = 1e-3f;
  dcr_test_fill (x, G_N_ELEMENTS (x), 7, -1, 1);
  dcr_test_fill (w, G_N_ELEMENTS (w), 8, -1, 1);
  dcr_test_fill (b, COUT, 9, -1, 1);
  DcrConv2dParams p = { .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1 };
  float y[N * H * W * COUT], want[N * H * W * COUT];
  dcr_ref_conv2d (x, N, H, W, CIN, w, COUT, K, K, b, NULL, want, &p);
  for (int i = 0; i < N * H * W * COUT; i++)
    {
      int c = i % COUT;
      want[i] = (want[i] - mean[c]) / sqrtf (var[c] + eps) * gamma[c] + beta[c];
    }
  dcr_conv_fold_batchnorm (w, b, COUT, K * K * CIN, gamma, beta, mean, var, eps);
  dcr_ref_conv2d (x, N, H, W, CIN, w, COUT, K, K, b, NULL, y, &p);
  dcr_test_assert_close ("folded batchnorm", y, want, G_N_ELEMENTS (y), 1e-4, 1e-5);

  /* one value by hand: w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β */
  float w1[2] = { 2.0f, -4.0f }, b1[1] = { 1.0f };
  float g1[1] = { 3.0f }, be1[1] = { 0.5f }, m1[1] = { 2.0f }, v1[1] = { 3.0f };
  dcr_conv_fold_batchnorm (w1, b1, 1, 2, g1, be1, m1, v1, 1.0f);
  g_assert_cmpfloat_with_epsilon (w1[0], 3.0f, 1e-6);
  g_assert_cmpfloat_with_epsilon (w1[1], -6.0f, 1e-6);
  g_assert_cmpfloat_with_epsilon (b1[0], -1.0f, 1e-6);
}

static void
expect_error (const DcrTensor *x, const DcrTensor *w, const DcrTensor *b, const DcrTensor *r, DcrTensor *y,
              const DcrConv2dParams *p, int code, const char *needle)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_false (dcr_op_conv2d (seq, x, w, b, r, y, p, &err));
  g_assert_error (err, DCR_OPS_ERROR, code);
  if (needle && !strstr (err->message, needle))
    g_test_fail_printf ("error message \"%s\" does not mention \"%s\"", err->message, needle);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

static void
test_conv_errors (void)
{
  gint64 xs[] = { 1, 7, 7, 8 }, ws[] = { 4, 3, 3, 8 }, ys[] = { 1, 5, 5, 4 }, bad_y[] = { 1, 7, 7, 4 };
  gint64 ws_g[] = { 4, 3, 3, 3 }, bs[] = { 5 }, xs3[] = { 7, 7, 8 };
  g_autoptr (DcrTensor) x = dcr_test_upload_rounded (DCR_F32, 4, xs, NULL);
  g_autoptr (DcrTensor) x3 = dcr_test_upload_rounded (DCR_F32, 3, xs3, NULL);
  g_autoptr (DcrTensor) w = dcr_test_upload_rounded (DCR_F32, 4, ws, NULL);
  g_autoptr (DcrTensor) wg = dcr_test_upload_rounded (DCR_F32, 4, ws_g, NULL);
  g_autoptr (DcrTensor) y = dcr_test_upload_rounded (DCR_F32, 4, ys, NULL);
  g_autoptr (DcrTensor) ybad = dcr_test_upload_rounded (DCR_F32, 4, bad_y, NULL);
  g_autoptr (DcrTensor) b = dcr_test_upload_rounded (DCR_F32, 1, bs, NULL);
  DcrConv2dParams p = { 0 };
  expect_error (x, w, NULL, NULL, ybad, &p, DCR_OPS_ERROR_SHAPE, "[1, 5, 5, 4]"); /* no padding → 5x5 */
  expect_error (x3, w, NULL, NULL, y, &p, DCR_OPS_ERROR_SHAPE, "[N, H, W, C]");
  expect_error (x, wg, NULL, NULL, y, &p, DCR_OPS_ERROR_SHAPE, "weight");
  expect_error (x, w, b, NULL, y, &p, DCR_OPS_ERROR_SHAPE, "bias");
  expect_error (x, w, NULL, ybad, y, &p, DCR_OPS_ERROR_SHAPE, "residual");
  p.groups = 3;
  expect_error (x, w, NULL, NULL, y, &p, DCR_OPS_ERROR_SHAPE, "groups");
  p = (DcrConv2dParams) { .dilation_h = 4 };
  expect_error (x, w, NULL, NULL, y, &p, DCR_OPS_ERROR_SHAPE, "does not fit");
  p = (DcrConv2dParams) { .act = DCR_ACT_GELU };
  expect_error (x, w, NULL, NULL, y, &p, DCR_OPS_ERROR_UNSUPPORTED, "gelu");
  p = (DcrConv2dParams) { .algo = DCR_CONV_ALGO_DEPTHWISE };
  expect_error (x, w, NULL, NULL, y, &p, DCR_OPS_ERROR_UNSUPPORTED, "depthwise");
  p = (DcrConv2dParams) { .pad_left = -1 };
  expect_error (x, w, NULL, NULL, y, &p, DCR_OPS_ERROR_UNSUPPORTED, "padding");
  if (dcr_test_device_has_f16 ())
    {
      g_autoptr (DcrTensor) w16 = dcr_test_upload_rounded (DCR_F16, 4, ws, NULL);
      p = (DcrConv2dParams) { 0 };
      expect_error (x, w16, NULL, NULL, y, &p, DCR_OPS_ERROR_DTYPE, "dtype");
    }
  dcr_test_assert_no_validation_errors ();
}

/* ---- the fused MobileNetV2 block (dcr_op_mbblock) ------------------------- */

typedef struct {
  const char *what;
  gint64 n, h, w, cin, mid, cout;
  int stride;
  gboolean residual;
} MbCase;

static void
round_to_f16 (float *v, gsize n)
{
  for (gsize i = 0; i < n; i++)
    v[i] = dcr_half_to_float (dcr_half_from_float (v[i]));
}

static void
run_mbblock (const MbCase *c, DcrDtype dt)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  /* Keras 'same', as in MobileNetV2: stride 2 pads one more after */
  DcrMbBlockParams p = { .stride = c->stride, .residual = c->residual };
  dcr_conv2d_same_padding (c->h, 3, c->stride, 1, &p.pad_top, &p.pad_bottom);
  dcr_conv2d_same_padding (c->w, 3, c->stride, 1, &p.pad_left, &p.pad_right);
  gint64 ho = dcr_conv2d_out_size (c->h, 3, c->stride, p.pad_top, p.pad_bottom, 1);
  gint64 wo = dcr_conv2d_out_size (c->w, 3, c->stride, p.pad_left, p.pad_right, 1);
  gint64 nx = c->n * c->h * c->w * c->cin, ny = c->n * ho * wo * c->cout;
  g_autofree float *x = g_new (float, nx);
  g_autofree float *we = g_new (float, c->mid * c->cin);
  g_autofree float *be = g_new (float, c->mid);
  g_autofree float *wd = g_new (float, c->mid * 9);
  g_autofree float *bd = g_new (float, c->mid);
  g_autofree float *wp = g_new (float, c->cout * c->mid);
  g_autofree float *bp = g_new (float, c->cout);
  g_autofree float *want = g_new (float, ny);
  /* ranges that put the expansion and the depthwise output on both sides of
   * ReLU6's kinks at 0 and 6 */
  dcr_test_fill (x, nx, 11, -1, 2);
  dcr_test_fill (we, c->mid * c->cin, 12, -1, 1.5f);
  dcr_test_fill (be, c->mid, 13, -1, 2);
  dcr_test_fill (wd, c->mid * 9, 14, -0.5f, 1);
  dcr_test_fill (bd, c->mid, 15, -1, 1);
  dcr_test_fill (wp, c->cout * c->mid, 16, -0.5f, 0.5f);
  dcr_test_fill (bp, c->cout, 17, -1, 1);
  if (dt == DCR_F16)
    {
      round_to_f16 (we, c->mid * c->cin);
      round_to_f16 (be, c->mid);
      round_to_f16 (wd, c->mid * 9);
      round_to_f16 (bd, c->mid);
      round_to_f16 (wp, c->cout * c->mid);
    }
  gint64 xs[] = { c->n, c->h, c->w, c->cin }, ys[] = { c->n, ho, wo, c->cout }, bs[] = { c->cout };
  gint64 ps[] = { c->mid, dcr_mbblock_row_length (ctx, c->cin, c->cout) };
  g_autofree float *packed = g_new (float, ps[0] * ps[1]);
  dcr_mbblock_pack_weights (ctx, we, be, wd, bd, wp, c->cin, c->mid, c->cout, packed);
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 4, xs, x);
  g_autoptr (DcrTensor) tp = dcr_test_upload_rounded (dt, 2, ps, packed);
  g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (dt, 1, bs, bp);
  g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (dt, 4, ys, NULL);
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_op_mbblock (seq, tx, tp, tb, ty, &p, &err));
  g_assert_no_error (err);
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);

  dcr_ref_mbblock (x, c->n, c->h, c->w, c->cin, we, be, wd, bd, wp, bp, c->mid, c->cout, &p, want);
  g_autofree float *got = dcr_test_download_floats (ty);
  g_autofree char *what = g_strdup_printf ("mbblock %s (%s)", c->what, dcr_dtype_name (dt));
  /* the intermediates stay f32 in both; f16 rounds the inputs (seen by the
   * reference too) and the output */
  if (dt == DCR_F16)
    dcr_test_assert_close (what, got, want, ny, F16_ATOL, F16_RTOL);
  else
    dcr_test_assert_close (what, got, want, ny, F32_ATOL, F32_RTOL);
}

static void
test_mbblock (void)
{
  if (!dcr_mbblock_supported (dcr_test_context (), 4, 4))
    {
      g_test_skip ("no subgroup shuffles on this device");
      return;
    }
  static const MbCase cases[] = {
    /* odd sizes: partial 2×2 tiles at the bottom and right, two images */
    { "9x7 8->12->8 s1 +residual", 2, 9, 7, 8, 12, 8, 1, TRUE },
    /* stride 2 'same' with odd and even sides: (1, 1) padding on H, (0, 1) on W */
    { "11x10 4->20->12 s2", 1, 11, 10, 4, 20, 12, 2, FALSE },
    /* nine output pixels: smaller tiles so that two subgroups share them */
    { "3x3 4->4->4 s1 +residual", 1, 3, 3, 4, 4, 4, 1, TRUE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    run_mbblock (&cases[i], DCR_F32);
  if (dcr_test_device_has_f16 ())
    for (gsize i = 0; i < 2; i++)
      run_mbblock (&cases[i], DCR_F16);
  dcr_test_assert_no_validation_errors ();
}

static void
expect_mbblock_error (const DcrTensor *x, const DcrTensor *packed, const DcrTensor *b, DcrTensor *y,
                      const DcrMbBlockParams *p, int code, const char *needle)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_false (dcr_op_mbblock (seq, x, packed, b, y, p, &err));
  g_assert_error (err, DCR_OPS_ERROR, code);
  if (needle && !strstr (err->message, needle))
    g_test_fail_printf ("error message \"%s\" does not mention \"%s\"", err->message, needle);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

static void
test_mbblock_errors (void)
{
  DcrContext *ctx = dcr_test_context ();
  if (!dcr_mbblock_supported (ctx, 4, 4))
    {
      g_test_skip ("no subgroup shuffles on this device");
      return;
    }
  gint64 lp = dcr_mbblock_row_length (ctx, 8, 8);
  gint64 xs[] = { 1, 6, 6, 8 }, ys[] = { 1, 6, 6, 8 }, ys2[] = { 1, 3, 3, 8 }, ps[] = { 12, lp }, bs[] = { 8 };
  gint64 bad_ps[] = { 12, lp + 4 }, xs6[] = { 1, 6, 6, 6 }, bs6[] = { 6 };
  g_autoptr (DcrTensor) x = dcr_test_upload_rounded (DCR_F32, 4, xs, NULL);
  g_autoptr (DcrTensor) x6 = dcr_test_upload_rounded (DCR_F32, 4, xs6, NULL);
  g_autoptr (DcrTensor) y = dcr_test_upload_rounded (DCR_F32, 4, ys, NULL);
  g_autoptr (DcrTensor) y2 = dcr_test_upload_rounded (DCR_F32, 4, ys2, NULL);
  g_autoptr (DcrTensor) pk = dcr_test_upload_rounded (DCR_F32, 2, ps, NULL);
  g_autoptr (DcrTensor) bad = dcr_test_upload_rounded (DCR_F32, 2, bad_ps, NULL);
  g_autoptr (DcrTensor) b = dcr_test_upload_rounded (DCR_F32, 1, bs, NULL);
  g_autoptr (DcrTensor) b6 = dcr_test_upload_rounded (DCR_F32, 1, bs6, NULL);
  DcrMbBlockParams p = { .stride = 1, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1 };
  expect_mbblock_error (x, bad, b, y, &p, DCR_OPS_ERROR_SHAPE, "packed");
  expect_mbblock_error (x, pk, b, y2, &p, DCR_OPS_ERROR_SHAPE, "[1, 6, 6, 8]");
  expect_mbblock_error (x6, pk, b6, y, &p, DCR_OPS_ERROR_UNSUPPORTED, "multiples of 4");
  DcrMbBlockParams p2 = { .stride = 2, .pad_bottom = 1, .pad_right = 1, .residual = TRUE };
  expect_mbblock_error (x, pk, b, y2, &p2, DCR_OPS_ERROR_SHAPE, "residual");
  DcrMbBlockParams p3 = { .stride = 3 };
  expect_mbblock_error (x, pk, b, y2, &p3, DCR_OPS_ERROR_UNSUPPORTED, "stride");
  dcr_test_assert_no_validation_errors ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/op-conv/padding-rules", test_padding_rules);
  g_test_add_func ("/op-conv/fold-batchnorm", test_fold_batchnorm);
  g_test_add_func ("/op-conv/ref-matches-torch", test_ref_matches_torch);
  g_test_add_func ("/op-conv/pointwise", test_conv_pointwise);
  g_test_add_func ("/op-conv/spatial", test_conv_spatial);
  g_test_add_func ("/op-conv/grouped", test_conv_grouped);
  g_test_add_func ("/op-conv/depthwise", test_conv_depthwise);
  g_test_add_func ("/op-conv/large-tiles", test_conv_large_tiles);
  g_test_add_func ("/op-conv/f16-direct", test_conv_f16_direct);
  g_test_add_func ("/op-conv/errors", test_conv_errors);
  g_test_add_func ("/op-conv/mbblock", test_mbblock);
  g_test_add_func ("/op-conv/mbblock-errors", test_mbblock_errors);
  int ret = g_test_run ();
  DcrContextStats st;
  dcr_context_stats (dcr_test_context (), &st);
  g_test_message ("%" G_GUINT64_FORMAT " pipelines built", st.pipelines_created);
  dcr_test_context_teardown ();
  return ret;
}
