/* test-op-eltwise.c — the pointwise ops against their references: add, mul
 * and |a − b| with broadcasting and a fused activation, clamp, every
 * activation, in place, f32 and f16; shape and dtype errors. */
#include "dcr-test-util.h"
#include "dcr-op-eltwise.h"

#include <math.h>
#include <string.h>

/* f32: one rounding per op (GELU's erf approximation is good to ~1e-7).
 * f16: inputs are rounded to f16 before the reference sees them; the output
 * rounding (2^-11 relative) remains. */
#define F32_TOL 1e-6
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
  int andim;
  gint64 ashape[4];
  int bndim;
  gint64 bshape[4];
} BinShape;

static void
test_binary (void)
{
  const BinShape shapes[] = {
    { 4, { 2, 3, 5, 17 }, 4, { 2, 3, 5, 17 } }, /* same shape, odd size */
    { 4, { 2, 3, 5, 17 }, 1, { 17 } },          /* per channel, scalar path */
    { 4, { 1, 7, 7, 64 }, 1, { 64 } },          /* per channel, vec4 path */
    { 4, { 1, 7, 7, 64 }, 2, { 1, 64 } },       /* leading 1s */
    { 3, { 3, 7, 65 }, 2, { 7, 65 } },          /* two trailing dims */
    { 2, { 5, 12 }, 1, { 1 } },                 /* one value */
    { 1, { 1 }, 1, { 1 } },
  };
  const DcrBinaryOp ops[] = { DCR_BINARY_ADD, DCR_BINARY_MUL, DCR_BINARY_ABSDIFF };
  const char *names[] = { "add", "mul", "absdiff" };
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint d = 0; d < G_N_ELEMENTS (dts); d++)
    for (guint o = 0; o < G_N_ELEMENTS (ops); o++)
      for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
        {
          if (dts[d] == DCR_F16 && !dcr_test_device_has_f16 ())
            continue;
          g_autoptr (GError) err = NULL;
          const BinShape *bs = &shapes[s];
          /* a fused activation on one shape per op (add + relu is the residual join) */
          DcrAct act = s == 2 ? (o == 0 ? DCR_ACT_RELU : DCR_ACT_RELU6) : DCR_ACT_NONE;
          g_autoptr (DcrTensor) ta = dcr_test_upload_rounded (dts[d], bs->andim, bs->ashape, NULL);
          g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (dts[d], bs->bndim, bs->bshape, NULL);
          gint64 na = dcr_tensor_numel (ta), nb = dcr_tensor_numel (tb);
          g_autofree float *a = g_new (float, na);
          g_autofree float *b = g_new (float, nb);
          g_autofree float *want = g_new (float, na);
          dcr_test_fill (a, na, s + 1, -4, 4);
          dcr_test_fill (b, nb, s + 100, -4, 4);
          g_clear_pointer (&ta, dcr_tensor_free);
          g_clear_pointer (&tb, dcr_tensor_free);
          ta = dcr_test_upload_rounded (dts[d], bs->andim, bs->ashape, a);
          tb = dcr_test_upload_rounded (dts[d], bs->bndim, bs->bshape, b);
          g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (dts[d], bs->andim, bs->ashape, NULL);
          g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
          g_assert_true (dcr_op_binary (seq, ops[o], ta, tb, ty, act, &err));
          g_assert_no_error (err);
          dcr_test_submit_wait (seq);
          dcr_ref_binary (ops[o], a, na, b, nb, want, act);
          g_autofree float *got = dcr_test_download_floats (ty);
          g_autofree char *what = g_strdup_printf ("%s %s shape %u (%s)", names[o], dcr_act_name (act), s,
                                                   dcr_dtype_name (dts[d]));
          check (what, dts[d], got, want, na);
        }
  dcr_test_assert_no_validation_errors ();
}

/* y = a itself, and the convenience wrappers */
static void
test_in_place (void)
{
  g_autoptr (GError) err = NULL;
  gint64 as[] = { 3, 5, 8 }, bs[] = { 8 };
  float a[120], b[8], want[120], tmp[120];
  dcr_test_fill (a, 120, 5, -1, 1);
  dcr_test_fill (b, 8, 6, -1, 1);
  g_autoptr (DcrTensor) ta = dcr_test_upload_rounded (DCR_F32, 3, as, a);
  g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (DCR_F32, 1, bs, b);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_op_mul (seq, ta, tb, ta, &err));
  g_assert_true (dcr_op_add (seq, ta, tb, ta, &err));
  g_assert_true (dcr_op_absdiff (seq, ta, tb, ta, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  dcr_ref_binary (DCR_BINARY_MUL, a, 120, b, 8, want, DCR_ACT_NONE);
  dcr_ref_binary (DCR_BINARY_ADD, want, 120, b, 8, tmp, DCR_ACT_NONE);
  dcr_ref_binary (DCR_BINARY_ABSDIFF, tmp, 120, b, 8, want, DCR_ACT_NONE);
  g_autofree float *got = dcr_test_download_floats (ta);
  dcr_test_assert_close ("mul, add, absdiff in place", got, want, 120, F32_TOL, F32_TOL);
  dcr_test_assert_no_validation_errors ();
}

static void
test_clamp_and_activations (void)
{
  const gint64 sizes[] = { 1, 7, 65, 1000 };
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint d = 0; d < G_N_ELEMENTS (dts); d++)
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      {
        if (dts[d] == DCR_F16 && !dcr_test_device_has_f16 ())
          continue;
        g_autoptr (GError) err = NULL;
        gint64 n = sizes[s];
        g_autofree float *x = g_new (float, n);
        g_autofree float *want = g_new (float, n);
        dcr_test_fill (x, n, s + 40, -8, 8);
        if (n >= 7)
          {
            x[0] = 0.0f;
            x[1] = 6.0f;   /* relu6's corner */
            x[2] = -30.0f; /* quick_gelu's exp overflows without harm */
            x[3] = 30.0f;
          }
        g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dts[d], 1, &n, x);
        g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (dts[d], 1, &n, NULL);
        for (DcrAct act = DCR_ACT_NONE; act <= DCR_ACT_QUICK_GELU; act++)
          {
            g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
            g_assert_true (dcr_op_activation (seq, tx, ty, act, &err));
            g_assert_no_error (err);
            dcr_test_submit_wait (seq);
            dcr_ref_activation (x, n, want, act);
            g_autofree float *got = dcr_test_download_floats (ty);
            g_autofree char *what = g_strdup_printf ("%s on %" G_GINT64_FORMAT " (%s)", dcr_act_name (act), n,
                                                     dcr_dtype_name (dts[d]));
            check (what, dts[d], got, want, n);
          }
        g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
        g_assert_true (dcr_op_clamp (seq, tx, ty, -1.5f, 2.25f, &err));
        g_assert_no_error (err);
        dcr_test_submit_wait (seq);
        dcr_ref_clamp (x, n, want, -1.5f, 2.25f);
        g_autofree float *got = dcr_test_download_floats (ty);
        g_autofree char *what = g_strdup_printf ("clamp on %" G_GINT64_FORMAT " (%s)", n, dcr_dtype_name (dts[d]));
        check (what, dts[d], got, want, n);
      }
  /* the reference of GELU against known values */
  g_assert_cmpfloat_with_epsilon (dcr_ref_act (DCR_ACT_GELU, 1.0f), 0.8413447f, 1e-6);
  g_assert_cmpfloat_with_epsilon (dcr_ref_act (DCR_ACT_GELU, -2.0f), -0.0455003f, 1e-6);
  g_assert_cmpfloat_with_epsilon (dcr_ref_act (DCR_ACT_QUICK_GELU, 1.0f), 0.8457957f, 1e-6);
  dcr_test_assert_no_validation_errors ();
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
  gint64 as[] = { 2, 3, 4 }, bs[] = { 3 }, ys[] = { 2, 12 }, b2[] = { 2, 4 };
  g_autoptr (DcrTensor) a = dcr_test_upload_rounded (DCR_F32, 3, as, NULL);
  g_autoptr (DcrTensor) b = dcr_test_upload_rounded (DCR_F32, 1, bs, NULL);
  g_autoptr (DcrTensor) bmid = dcr_test_upload_rounded (DCR_F32, 2, b2, NULL);
  g_autoptr (DcrTensor) y = dcr_test_upload_rounded (DCR_F32, 2, ys, NULL);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), NULL);
  GError *err = NULL;
  expect_error (dcr_op_add (seq, a, b, a, &err), &err, DCR_OPS_ERROR_SHAPE, "broadcast");
  expect_error (dcr_op_mul (seq, a, bmid, a, &err), &err, DCR_OPS_ERROR_SHAPE, "[2, 4]");
  expect_error (dcr_op_absdiff (seq, a, a, y, &err), &err, DCR_OPS_ERROR_SHAPE, "[2, 12]");
  expect_error (dcr_op_clamp (seq, a, a, 1, 0, &err), &err, DCR_OPS_ERROR_UNSUPPORTED, "empty");
  expect_error (dcr_op_activation (seq, a, y, DCR_ACT_RELU, &err), &err, DCR_OPS_ERROR_SHAPE, "output");
  expect_error (dcr_op_binary (seq, (DcrBinaryOp) 9, a, a, a, DCR_ACT_NONE, &err), &err,
                DCR_OPS_ERROR_UNSUPPORTED, "unknown");
  if (dcr_test_device_has_f16 ())
    {
      g_autoptr (DcrTensor) a16 = dcr_test_upload_rounded (DCR_F16, 3, as, NULL);
      expect_error (dcr_op_add (seq, a, a16, a, &err), &err, DCR_OPS_ERROR_DTYPE, "dtype");
    }
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/op-eltwise/binary", test_binary);
  g_test_add_func ("/op-eltwise/in-place", test_in_place);
  g_test_add_func ("/op-eltwise/clamp-and-activations", test_clamp_and_activations);
  g_test_add_func ("/op-eltwise/errors", test_errors);
  int ret = g_test_run ();
  dcr_test_context_teardown ();
  return ret;
}
