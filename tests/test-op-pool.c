/* test-op-pool.c — dcr_op_pool2d and dcr_op_global_avg_pool against their
 * references: max and average (with and without the padding in the count),
 * odd shapes, strides, asymmetric padding, f32 and f16; shape errors. */
#include "dcr-test-util.h"
#include "dcr-op-pool.h"

#include <string.h>

/* f32: a max is exact; an average differs from the double reference only in
 * summation order. f16: inputs are rounded to f16 before the reference sees
 * them, the output rounding (2^-11 relative) remains. */
#define F32_TOL 1e-5
#define F16_ATOL 1e-3
#define F16_RTOL 1e-3

static void
check (const char *what, DcrDtype dt, const float *got, const float *want, gsize n)
{
  if (dt == DCR_F16)
    dcr_test_assert_close (what, got, want, n, F16_ATOL, F16_RTOL);
  else
    dcr_test_assert_close (what, got, want, n, F32_TOL, F32_TOL);
}

typedef struct {
  const char *what;
  gint64 n, h, w, c;
  DcrPool2dParams p;
} PoolCase;

static void
run_pool (const PoolCase *pc, DcrDtype dt)
{
  g_autoptr (GError) err = NULL;
  const DcrPool2dParams *p = &pc->p;
  int sh = p->stride_h ? p->stride_h : p->kernel_h, sw = p->stride_w ? p->stride_w : p->kernel_w;
  gint64 ho = dcr_pool2d_out_size (pc->h, p->kernel_h, sh, p->pad_top, p->pad_bottom);
  gint64 wo = dcr_pool2d_out_size (pc->w, p->kernel_w, sw, p->pad_left, p->pad_right);
  gint64 xs[] = { pc->n, pc->h, pc->w, pc->c }, ys[] = { pc->n, ho, wo, pc->c };
  gint64 nx = pc->n * pc->h * pc->w * pc->c, ny = pc->n * ho * wo * pc->c;
  g_autofree float *x = g_new (float, nx);
  g_autofree float *want = g_new (float, ny);
  /* all negative, so a max that wrongly counted the padding as 0 would show */
  dcr_test_fill (x, nx, (guint32) (nx + pc->c), -3, -0.5f);
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 4, xs, x);
  g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (dt, 4, ys, NULL);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_op_pool2d (seq, tx, ty, p, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  dcr_ref_pool2d (x, pc->n, pc->h, pc->w, pc->c, want, p);
  g_autofree float *got = dcr_test_download_floats (ty);
  g_autofree char *what = g_strdup_printf ("pool2d %s (%s)", pc->what, dcr_dtype_name (dt));
  check (what, dt, got, want, ny);
}

#define P(...) ((DcrPool2dParams) { __VA_ARGS__ })

static void
test_pool2d (void)
{
  const PoolCase cases[] = {
    { "max 3x3/2 pad 1 (resnet stem)", 2, 17, 17, 65,
      P (DCR_POOL_MAX, 3, 3, 2, 2, 1, 1, 1, 1) },
    { "max 3x3/2 pad 1, 3 channels", 1, 7, 17, 3, P (DCR_POOL_MAX, 3, 3, 2, 2, 1, 1, 1, 1) },
    { "max 3x3/2 keras-same (0,1,0,1)", 1, 17, 7, 32, P (DCR_POOL_MAX, 3, 3, 2, 2, 0, 1, 0, 1) },
    { "avg 3x3/2 keras-same (0,1,0,1)", 1, 17, 7, 16, P (DCR_POOL_AVG, 3, 3, 2, 2, 0, 1, 0, 1) },
    { "max 2x2 default stride", 1, 7, 7, 5, P (DCR_POOL_MAX, 2, 2) },
    { "avg 2x2 default stride", 3, 3, 17, 17, P (DCR_POOL_AVG, 2, 2) },
    { "avg 3x3/1 pad 1 incl. padding", 1, 7, 7, 20, P (DCR_POOL_AVG, 3, 3, 1, 1, 1, 1, 1, 1, TRUE) },
    { "avg 3x3/1 pad 1 excl. padding", 1, 7, 7, 20, P (DCR_POOL_AVG, 3, 3, 1, 1, 1, 1, 1, 1, FALSE) },
    { "avg 3x2 strides (1,2) pads (2,0,0,1) excl.", 2, 7, 17, 1, P (DCR_POOL_AVG, 3, 2, 1, 2, 2, 0, 0, 1, FALSE) },
    { "avg 3x3/2 keras-same excl.", 1, 17, 17, 5, P (DCR_POOL_AVG, 3, 3, 2, 2, 0, 1, 0, 1, FALSE) },
    { "max 1x1 on 1x1", 1, 1, 1, 17, P (DCR_POOL_MAX, 1, 1) },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      run_pool (&cases[i], DCR_F32);
      if (dcr_test_device_has_f16 ())
        run_pool (&cases[i], DCR_F16);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
test_global_avg_pool (void)
{
  const gint64 shapes[][4] = { { 2, 7, 7, 65 }, { 1, 1, 1, 3 }, { 3, 17, 3, 4 }, { 1, 3, 17, 64 } };
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint d = 0; d < G_N_ELEMENTS (dts); d++)
    for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
      {
        if (dts[d] == DCR_F16 && !dcr_test_device_has_f16 ())
          continue;
        g_autoptr (GError) err = NULL;
        const gint64 *s = shapes[i];
        gint64 nx = s[0] * s[1] * s[2] * s[3];
        g_autofree float *x = g_new (float, nx);
        g_autofree float *want = g_new (float, s[0] * s[3]);
        dcr_test_fill (x, nx, i + 11, -2, 3);
        g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dts[d], 4, s, x);
        /* both output forms: [N, C] and [N, 1, 1, C] */
        gint64 ys2[] = { s[0], s[3] }, ys4[] = { s[0], 1, 1, s[3] };
        g_autoptr (DcrTensor) ty = i % 2 ? dcr_test_upload_rounded (dts[d], 4, ys4, NULL)
                                         : dcr_test_upload_rounded (dts[d], 2, ys2, NULL);
        g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
        g_assert_true (dcr_op_global_avg_pool (seq, tx, ty, &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        dcr_ref_global_avg_pool (x, s[0], s[1], s[2], s[3], want);
        g_autofree float *got = dcr_test_download_floats (ty);
        g_autofree char *what = g_strdup_printf ("global_avg_pool [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                                 ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] (%s)",
                                                 s[0], s[1], s[2], s[3], dcr_dtype_name (dts[d]));
        check (what, dts[d], got, want, s[0] * s[3]);
      }
  dcr_test_assert_no_validation_errors ();
}

/* A known case by hand, so the reference itself is pinned down. */
static void
test_reference_values (void)
{
  /* 1 image, 3x3, 1 channel: 1..9 */
  const float x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
  float y[4];
  DcrPool2dParams p = { DCR_POOL_AVG, 2, 2, 1, 1, 1, 0, 1, 0, TRUE };
  /* pad top and left by 1: windows {pad,pad,pad,1}, {pad,pad,1,2}, … */
  float y9[9];
  dcr_ref_pool2d (x, 1, 3, 3, 1, y9, &p);
  g_assert_cmpfloat_with_epsilon (y9[0], 1.0f / 4, 1e-6);
  g_assert_cmpfloat_with_epsilon (y9[1], 3.0f / 4, 1e-6);
  g_assert_cmpfloat_with_epsilon (y9[4], 12.0f / 4, 1e-6);
  p.count_include_pad = FALSE;
  dcr_ref_pool2d (x, 1, 3, 3, 1, y9, &p);
  g_assert_cmpfloat_with_epsilon (y9[0], 1.0f, 1e-6);
  g_assert_cmpfloat_with_epsilon (y9[1], 1.5f, 1e-6);
  p = (DcrPool2dParams) { DCR_POOL_MAX, 2, 2 };
  dcr_ref_pool2d (x, 1, 3, 3, 1, y, &p); /* floor: one 2x2 window */
  g_assert_cmpfloat (y[0], ==, 5.0f);
  dcr_ref_global_avg_pool (x, 1, 3, 3, 1, y);
  g_assert_cmpfloat_with_epsilon (y[0], 5.0f, 1e-6);
  g_assert_cmpint (dcr_pool2d_out_size (112, 3, 2, 1, 1), ==, 56);
  g_assert_cmpint (dcr_pool2d_out_size (7, 2, 0, 0, 0), ==, 3);
}

static void
expect_error (gboolean ok, GError **err, int code, const char *needle)
{
  g_assert_false (ok);
  g_assert_error (*err, DCR_OPS_ERROR, code);
  if (!strstr ((*err)->message, needle))
    g_test_fail_printf ("error message \"%s\" does not mention \"%s\"", (*err)->message, needle);
  g_clear_error (err);
}

static void
test_errors (void)
{
  gint64 xs[] = { 1, 7, 7, 4 }, ys[] = { 1, 3, 3, 4 }, bad[] = { 1, 4, 4, 4 }, g2[] = { 1, 5 }, x3[] = { 7, 7, 4 };
  g_autoptr (DcrTensor) x = dcr_test_upload_rounded (DCR_F32, 4, xs, NULL);
  g_autoptr (DcrTensor) xbad = dcr_test_upload_rounded (DCR_F32, 3, x3, NULL);
  g_autoptr (DcrTensor) y = dcr_test_upload_rounded (DCR_F32, 4, ys, NULL);
  g_autoptr (DcrTensor) ybad = dcr_test_upload_rounded (DCR_F32, 4, bad, NULL);
  g_autoptr (DcrTensor) gbad = dcr_test_upload_rounded (DCR_F32, 2, g2, NULL);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), NULL);
  DcrPool2dParams p = { DCR_POOL_MAX, 2, 2 };
  GError *err = NULL;
  expect_error (dcr_op_pool2d (seq, x, ybad, &p, &err), &err, DCR_OPS_ERROR_SHAPE, "[1, 3, 3, 4]");
  expect_error (dcr_op_pool2d (seq, xbad, y, &p, &err), &err, DCR_OPS_ERROR_SHAPE, "[N, H, W, C]");
  p.pad_left = 2;
  expect_error (dcr_op_pool2d (seq, x, y, &p, &err), &err, DCR_OPS_ERROR_UNSUPPORTED, "smaller than");
  expect_error (dcr_op_global_avg_pool (seq, x, gbad, &err), &err, DCR_OPS_ERROR_SHAPE, "[1, 4]");
  if (dcr_test_device_has_f16 ())
    {
      g_autoptr (DcrTensor) y16 = dcr_test_upload_rounded (DCR_F16, 4, ys, NULL);
      p.pad_left = 0;
      expect_error (dcr_op_pool2d (seq, x, y16, &p, &err), &err, DCR_OPS_ERROR_DTYPE, "f16");
    }
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/op-pool/reference-values", test_reference_values);
  g_test_add_func ("/op-pool/pool2d", test_pool2d);
  g_test_add_func ("/op-pool/global-avg", test_global_avg_pool);
  g_test_add_func ("/op-pool/errors", test_errors);
  int ret = g_test_run ();
  dcr_test_context_teardown ();
  return ret;
}
