/* test-op-softmax.c — softmax on the GPU against the CPU reference over odd
 * shapes, scales and masks (shared, per-row, broadcast, −inf, fully masked
 * rows), f32 and f16 storage. */
#include "dcr-test-util.h"
#include "dcr-op-softmax.h"

#include <math.h>
#include <string.h>

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

typedef enum { MASK_NONE, MASK_SHARED, MASK_FULL, MASK_PERIODIC } MaskKind;

static void
check_softmax (DcrDtype dt, gint64 rows, gint64 n, float scale, MaskKind mk, float range, gboolean in_place)
{
  g_autoptr (GError) err = NULL;
  gint64 mask_rows = mk == MASK_SHARED ? 1 : mk == MASK_FULL ? rows : mk == MASK_PERIODIC ? (rows % 7 == 0 ? 7 : 1) : 0;
  gint64 shape[] = { rows, n }, mshape[] = { mask_rows, n };
  gsize count = rows * n;
  g_autofree float *x = g_new (float, count), *want = g_new (float, count), *got = g_new (float, count);
  g_autofree float *mask = g_new (float, MAX (mask_rows * n, 1));
  dcr_test_fill (x, count, (guint32) (rows * 31 + n), -range, range);
  dcr_test_fill (mask, MAX (mask_rows * n, 1), (guint32) n + 3, -4, 1);
  /* knock out every third position with −inf, but keep position 0 alive */
  for (gint64 i = 0; i < mask_rows * n; i++)
    if (i % n != 0 && i % 3 == 1)
      mask[i] = -INFINITY;
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 2, shape, x);
  g_autoptr (DcrTensor) tm = mask_rows ? dcr_test_upload_rounded (dt, 2, mshape, mask) : NULL;
  g_autoptr (DcrTensor) ty = in_place ? NULL : dcr_test_upload_rounded (dt, 2, shape, want);
  DcrTensor *out = in_place ? tx : ty;
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_op_softmax (seq, tx, tm, out, scale, &err));
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_ref_softmax (x, mask_rows ? mask : NULL, want, rows, n, MAX (mask_rows, 1), scale);
  dcr_test_download_into (out, got);
  g_autofree char *what = g_strdup_printf ("softmax %s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " scale %g mask %d%s",
                                           dcr_dtype_name (dt), rows, n, scale, mk, in_place ? " in-place" : "");
  /* probabilities in [0, 1]: f32 within 1e-6 + 1e-5 relative (fp32 exp),
   * f16 within its output rounding (4.9e-4 relative) plus slack; both plus
   * two fp32 ulps of the largest logit, which the fp32 product scale·x
   * already carries into exp */
  double logit_ulps = 2.4e-7 * range * (scale != 0 ? scale : 1);
  if (dt == DCR_F16)
    dcr_test_assert_close (what, got, want, count, 2e-5, 2e-3 + logit_ulps);
  else
    dcr_test_assert_close (what, got, want, count, 1e-6, 1e-5 + logit_ulps);
  for (gint64 r = 0; r < rows; r++)
    {
      double s = 0;
      for (gint64 i = 0; i < n; i++)
        s += got[r * n + i];
      g_assert_cmpfloat_with_epsilon (s, 1.0, dt == DCR_F16 ? 3e-3 : 1e-5);
    }
}

static const gint64 test_rows[] = { 1, 3, 7, 17, 65 };
static const gint64 test_lens[] = { 1, 3, 7, 17, 65, 257, 1024 };

static void
test_softmax (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  for (gsize r = 0; r < G_N_ELEMENTS (test_rows); r++)
    for (gsize i = 0; i < G_N_ELEMENTS (test_lens); i++)
      check_softmax (dt, test_rows[r], test_lens[i], (r + i) % 3 == 0 ? 0 : 0.125f, (MaskKind) ((r + i) % 4),
                     4, FALSE);
  /* longer rows, with and without vec4 loads */
  check_softmax (dt, 3, 601, 0.5f, MASK_FULL, 4, FALSE);
  check_softmax (dt, 2, 4100, 0, MASK_SHARED, 4, TRUE);
  /* large logits: a naive exp overflows without the max subtraction */
  check_softmax (dt, 7, 65, 1, MASK_NONE, dt == DCR_F16 ? 6e4f : 1e4f, FALSE);
  check_softmax (dt, 7, 257, 30, MASK_SHARED, 50, TRUE);
  check_softmax (dt, 21, 17, 1, MASK_PERIODIC, 3, FALSE);
  dcr_test_assert_no_validation_errors ();
}

static void
test_fully_masked (void)
{
  /* a row masked out entirely gives zeros; its neighbours are unaffected */
  g_autoptr (GError) err = NULL;
  gint64 shape[] = { 2, 5 };
  float x[10] = { 1, 2, 3, 4, 5, 1, 2, 3, 4, 5 }, m[10], got[10], want[10];
  for (int i = 0; i < 10; i++)
    m[i] = i < 5 ? -INFINITY : 0;
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 2, shape, x);
  g_autoptr (DcrTensor) tm = dcr_test_upload_rounded (DCR_F32, 2, shape, m);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_op_softmax (seq, tx, tm, tx, 1, &err));
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_test_download_into (tx, got);
  dcr_ref_softmax (x, m, want, 2, 5, 2, 1);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat (got[i], ==, 0.0f);
  g_assert_cmpfloat_with_epsilon (want[9], 0.63640865, 1e-7); /* e⁴ / Σ eⁱ, i = 0..4 */
  dcr_test_assert_close ("fully masked", got, want, 10, 1e-6, 1e-5);
}

static void
test_bad_args (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  gint64 s1[] = { 6, 8 }, s2[] = { 6, 9 }, s3[] = { 4, 8 };
  g_autoptr (DcrTensor) a = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, s1, &err);
  g_autoptr (DcrTensor) b = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, s2, &err);
  g_autoptr (DcrTensor) m = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, s3, &err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
  g_assert_false (dcr_op_softmax (seq, a, NULL, b, 1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  /* 4 mask rows do not divide 6 rows */
  g_assert_false (dcr_op_softmax (seq, a, m, a, 1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "mask"));
  g_clear_error (&err);
  g_assert_false (dcr_op_softmax (seq, a, b, a, 1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/op-softmax/softmax/f32", GINT_TO_POINTER (DCR_F32), test_softmax);
  g_test_add_data_func ("/op-softmax/softmax/f16", GINT_TO_POINTER (DCR_F16), test_softmax);
  g_test_add_func ("/op-softmax/fully-masked", test_fully_masked);
  g_test_add_func ("/op-softmax/bad-args", test_bad_args);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
