/* test-op-norm.c — layer norm and L2 normalisation on the GPU against the
 * CPU references over odd shapes, f32 and f16 storage, PyTorch's layer norm
 * on a small case (tests/golden/attn-norm-golden.h), and the argument
 * checks. */
#include "dcr-test-util.h"
#include "dcr-op-norm.h"

#include <math.h>
#include <string.h>

#include "golden/attn-norm-golden.h"

static gboolean
skip_f16 (DcrDtype dt)
{
  if (dt == DCR_F16 && !dcr_context_device (dcr_test_context ())->storage_16bit)
    {
      g_test_skip ("device has no 16-bit storage");
      return TRUE;
    }
  return FALSE;
}

static const gint64 test_rows[] = { 1, 3, 7, 17, 65 };
static const gint64 test_dims[] = { 1, 3, 7, 17, 65, 257, 1024 };

/* One submit per case keeps every tensor small; the cases share nothing. */
static void
check_layer_norm (DcrDtype dt, gint64 rows, gint64 d, gboolean affine, gboolean in_place, float offset)
{
  g_autoptr (GError) err = NULL;
  gint64 shape[] = { rows, d }, dshape[] = { d };
  gsize n = rows * d;
  g_autofree float *x = g_new (float, n), *gamma = g_new (float, d), *beta = g_new (float, d);
  g_autofree float *want = g_new (float, n), *got = g_new (float, n);
  dcr_test_fill (x, n, (guint32) (rows * 131 + d), -2 + offset, 3 + offset);
  dcr_test_fill (gamma, d, (guint32) d + 7, 0.5f, 1.5f);
  dcr_test_fill (beta, d, (guint32) d + 9, -0.5f, 0.5f);
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 2, shape, x);
  g_autoptr (DcrTensor) tg = dcr_test_upload_rounded (dt, 1, dshape, gamma);
  g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (dt, 1, dshape, beta);
  g_autoptr (DcrTensor) ty = in_place ? NULL : dcr_test_upload_rounded (dt, 2, shape, want);
  DcrTensor *out = in_place ? tx : ty;
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_op_layer_norm (seq, tx, affine ? tg : NULL, affine ? tb : NULL, out, 1e-5f, &err));
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_ref_layer_norm (x, affine ? gamma : NULL, affine ? beta : NULL, want, rows, d, 1e-5f);
  dcr_test_download_into (out, got);
  g_autofree char *what = g_strdup_printf ("layer_norm %s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "%s%s",
                                           dcr_dtype_name (dt), rows, d, affine ? " affine" : "",
                                           in_place ? " in-place" : "");
  /* outputs are O(1): f32 within 1e-4 (fp32 sums over ≤1024 terms);
   * f16 within the f16 rounding of the output plus 2e-3 */
  if (dt == DCR_F16)
    dcr_test_assert_close (what, got, want, n, 4e-3, 2e-3);
  else
    dcr_test_assert_close (what, got, want, n, 1e-4, 1e-4);
}

static void
test_layer_norm (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  for (gsize r = 0; r < G_N_ELEMENTS (test_rows); r++)
    for (gsize i = 0; i < G_N_ELEMENTS (test_dims); i++)
      check_layer_norm (dt, test_rows[r], test_dims[i], (r + i) % 2 == 0, FALSE, 0);
  /* more widths with d % 4 == 0 (vec4 loads) */
  const gint64 wide[] = { 4, 12, 64, 2048, 4096 };
  for (gsize i = 0; i < G_N_ELEMENTS (wide); i++)
    check_layer_norm (dt, 3 + i, wide[i], i % 2 == 0, FALSE, 0);
  /* ViT-L/14's shape, in place, and rows far from zero mean (a one-pass
   * E[x²]−E[x]² variance would lose most digits here) */
  check_layer_norm (dt, 257, 1024, TRUE, TRUE, 0);
  check_layer_norm (dt, 7, 1024, TRUE, FALSE, dt == DCR_F16 ? 100 : 1000);
  dcr_test_assert_no_validation_errors ();
}

static void
check_l2 (DcrDtype dt, gint64 rows, gint64 d, float scale, float eps)
{
  g_autoptr (GError) err = NULL;
  gint64 shape[] = { rows, d };
  gsize n = rows * d;
  g_autofree float *x = g_new (float, n), *want = g_new (float, n), *got = g_new (float, n);
  dcr_test_fill (x, n, (guint32) (rows * 7 + d), -scale, scale);
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 2, shape, x);
  g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (dt, 2, shape, want);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_op_l2_normalize (seq, tx, ty, eps, &err));
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_ref_l2_normalize (x, want, rows, d, eps);
  dcr_test_download_into (ty, got);
  g_autofree char *what = g_strdup_printf ("l2_normalize %s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " scale %g",
                                           dcr_dtype_name (dt), rows, d, scale);
  /* unit rows: components ≤ 1; f16 output rounding is ≤ 4.9e-4 relative */
  if (dt == DCR_F16)
    dcr_test_assert_close (what, got, want, n, 1e-3, 2e-3);
  else
    dcr_test_assert_close (what, got, want, n, 1e-6, 1e-5);
  if (eps == 0 || scale > eps)
    for (gint64 r = 0; r < rows; r++)
      {
        double ss = 0;
        for (gint64 i = 0; i < d; i++)
          ss += (double) got[r * d + i] * got[r * d + i];
        g_assert_cmpfloat_with_epsilon (sqrt (ss), 1.0, dt == DCR_F16 ? 2e-3 : 1e-5);
      }
}

static void
test_l2_normalize (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  for (gsize r = 0; r < G_N_ELEMENTS (test_rows); r++)
    for (gsize i = 0; i < G_N_ELEMENTS (test_dims); i++)
      check_l2 (dt, test_rows[r], test_dims[i], 2.0f, 1e-12f);
  check_l2 (dt, 130, 1024, 2.0f, 1e-12f);
  check_l2 (dt, 2, 4096, 2.0f, 1e-12f);
  /* rows smaller than eps are divided by eps, not by their norm */
  check_l2 (dt, 3, 17, 1e-5f, 1.0f);
  dcr_test_assert_no_validation_errors ();
}

static void
test_zero_row (void)
{
  /* an all-zero row normalises to zeros (not NaN), as torch does */
  g_autoptr (GError) err = NULL;
  gint64 shape[] = { 2, 5 };
  float x[10] = { 0, 0, 0, 0, 0, 3, 0, 4, 0, 0 }, got[10];
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 2, shape, x);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_op_l2_normalize (seq, tx, tx, 1e-12f, &err));
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_test_download_into (tx, got);
  const float want[10] = { 0, 0, 0, 0, 0, 0.6f, 0, 0.8f, 0, 0 };
  dcr_test_assert_close ("l2 zero row", got, want, 10, 1e-7, 1e-6);
}

static void
test_torch_golden (void)
{
  /* torch.nn.functional.layer_norm (PyTorch 1.13, eps 1e-5) on 3 rows of 20
   * with mean ≈ 3, and the C reference against the same numbers */
  g_autoptr (GError) err = NULL;
  gint64 shape[] = { GOLDEN_LN_ROWS, GOLDEN_LN_D }, dshape[] = { GOLDEN_LN_D };
  float x[G_N_ELEMENTS (golden_ln_x)], g[GOLDEN_LN_D], bt[GOLDEN_LN_D], got[G_N_ELEMENTS (golden_ln_x)];
  memcpy (x, golden_ln_x, sizeof x);
  memcpy (g, golden_ln_gamma, sizeof g);
  memcpy (bt, golden_ln_beta, sizeof bt);
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 2, shape, x);
  g_autoptr (DcrTensor) tg = dcr_test_upload_rounded (DCR_F32, 1, dshape, g);
  g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (DCR_F32, 1, dshape, bt);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_op_layer_norm (seq, tx, tg, tb, tx, 1e-5f, &err));
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_test_download_into (tx, got);
  dcr_test_assert_close ("torch layer_norm", got, golden_ln_y, G_N_ELEMENTS (got), 1e-5, 1e-5);
  dcr_ref_layer_norm (golden_ln_x, golden_ln_gamma, golden_ln_beta, got, GOLDEN_LN_ROWS, GOLDEN_LN_D, 1e-5f);
  dcr_test_assert_close ("reference vs torch layer_norm", got, golden_ln_y, G_N_ELEMENTS (got), 1e-6, 1e-6);
}

static void
test_bad_args (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  gint64 s1[] = { 4, 8 }, s2[] = { 4, 9 }, s3[] = { 7 };
  g_autoptr (DcrTensor) a = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, s1, &err);
  g_autoptr (DcrTensor) b = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, s2, &err);
  g_autoptr (DcrTensor) g = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, s3, &err);
  g_autoptr (DcrTensor) u = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_U32, 2, s1, &err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
  g_assert_false (dcr_op_layer_norm (seq, a, NULL, NULL, b, 1e-5f, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "layer_norm"));
  g_clear_error (&err);
  g_assert_false (dcr_op_layer_norm (seq, a, g, NULL, a, 1e-5f, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "gamma"));
  g_clear_error (&err);
  g_assert_false (dcr_op_l2_normalize (seq, u, u, 1e-12f, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/op-norm/layer-norm/f32", GINT_TO_POINTER (DCR_F32), test_layer_norm);
  g_test_add_data_func ("/op-norm/layer-norm/f16", GINT_TO_POINTER (DCR_F16), test_layer_norm);
  g_test_add_data_func ("/op-norm/l2-normalize/f32", GINT_TO_POINTER (DCR_F32), test_l2_normalize);
  g_test_add_data_func ("/op-norm/l2-normalize/f16", GINT_TO_POINTER (DCR_F16), test_l2_normalize);
  g_test_add_func ("/op-norm/zero-row", test_zero_row);
  g_test_add_func ("/op-norm/torch-golden", test_torch_golden);
  g_test_add_func ("/op-norm/bad-args", test_bad_args);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
