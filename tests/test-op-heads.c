/* test-op-heads.c — the DCR heads' own kernels against their references:
 * difference tokens (given prototypes, and gathered from a bank split in
 * chunks by retrieval's positions), the sigmoid gate and its backward;
 * odd shapes, f32 and f16; shape errors. */
#include "dcr-test-tensors.h"
#include "dcr-op-heads.h"

#include <math.h>

/* f32: |a − b| and f + σ(z)·c are one or two roundings (exp in the shader is
 * good to a few ulp). f16: the inputs are rounded before the reference sees
 * them, so only the output rounding (2^-11 relative) remains. */
#define F32_TOL 2e-6
#define F16_TOL 1e-3

static void
check (const char *what, DcrDtype dt, const float *got, const float *want, gsize n)
{
  double tol = dt == DCR_F16 ? F16_TOL : F32_TOL;
  dcr_test_assert_close (what, got, want, n, tol, tol);
}

typedef struct {
  gint64 b, l, d;
} Shape;

/* dim 300: rows wider than the kernel's 128 invocations */
static const Shape shapes[] = { { 1, 1, 1 }, { 3, 7, 17 }, { 2, 5, 65 }, { 1, 32, 24 }, { 17, 3, 3 }, { 2, 3, 300 } };

static void
test_diff (void)
{
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
      for (int with_d1 = 0; with_d1 < 2; with_d1++)
        {
          if (dts[t] == DCR_F16 && !dcr_test_have_f16 ())
            continue;
          g_autoptr (GError) err = NULL;
          Shape sh = shapes[s];
          gint64 fs[] = { sh.b, sh.d }, ds[] = { sh.b, sh.l, sh.d };
          gint64 nf = sh.b * sh.d, nd = sh.b * sh.l * sh.d;
          g_autofree float *f = g_new (float, nf);
          g_autofree float *r = g_new (float, nd);
          dcr_test_fill (f, nf, s + 1, -1, 1);
          dcr_test_fill (r, nd, s + 50, -1, 1);
          g_autoptr (DcrTensor) tf = dcr_test_tensor (dts[t], 2, fs, f);
          g_autoptr (DcrTensor) tr = dcr_test_tensor (dts[t], 3, ds, r);
          g_autoptr (DcrTensor) td = dcr_test_tensor (dts[t], 3, ds, NULL);
          g_autoptr (DcrTensor) td1 = dcr_test_tensor (dts[t], 2, fs, NULL);
          g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
          g_assert_true (dcr_op_diff_tokens (seq, tf, tr, td, with_d1 ? td1 : NULL, &err));
          g_assert_no_error (err);
          dcr_test_submit (seq);
          g_autofree float *want = g_new (float, nd);
          g_autofree float *want1 = g_new (float, nf);
          dcr_ref_diff_tokens (f, r, want, want1, sh.b, sh.l, sh.d);
          g_autofree float *got = dcr_test_read (td);
          check ("diff_tokens d", dts[t], got, want, nd);
          if (with_d1)
            {
              g_autofree float *got1 = dcr_test_read (td1);
              check ("diff_tokens d1", dts[t], got1, want1, nf);
            }
        }
  dcr_test_assert_no_validation_errors ();
}

/* A bank of 13 rows split 5 + 8, as retrieval splits one that exceeds the
 * buffer limit: each chunk's dispatch fills only the tokens it holds. */
static void
test_gather (void)
{
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  const gint64 rows = 13, split = 5, b = 3, l = 4, dim = 17;
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    {
      if (dts[t] == DCR_F16 && !dcr_test_have_f16 ())
        continue;
      g_autoptr (GError) err = NULL;
      g_autofree float *bank = g_new (float, rows * dim);
      g_autofree float *f = g_new (float, b * dim);
      dcr_test_fill (bank, rows * dim, 7, -1, 1);
      dcr_test_fill (f, b * dim, 8, -1, 1);
      guint32 pos[] = { 0, 12, 4, 5, 7, 7, 1, 11, 3, 9, 0, 6 };
      gint64 c0s[] = { split, dim }, c1s[] = { rows - split, dim }, fs[] = { b, dim }, ds[] = { b, l, dim };
      gint64 is[] = { b, l };
      g_autoptr (DcrTensor) c0 = dcr_test_tensor (dts[t], 2, c0s, bank);
      g_autoptr (DcrTensor) c1 = dcr_test_tensor (dts[t], 2, c1s, bank + split * dim);
      g_autoptr (DcrTensor) tf = dcr_test_tensor (dts[t], 2, fs, f);
      g_autoptr (DcrTensor) td = dcr_test_tensor (dts[t], 3, ds, NULL);
      g_autoptr (DcrTensor) td1 = dcr_test_tensor (dts[t], 2, fs, NULL);
      g_autoptr (DcrTensor) ti = dcr_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, DCR_U32, 2, is, &err);
      g_assert_no_error (err);
      g_assert_true (dcr_tensor_upload (ti, pos, &err));
      g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
      g_assert_true (dcr_op_diff_tokens_gather (seq, tf, c0, ti, 0, td, td1, &err));
      g_assert_true (dcr_op_diff_tokens_gather (seq, tf, c1, ti, split, td, td1, &err));
      g_assert_no_error (err);
      dcr_test_submit (seq);
      g_autofree float *want = g_new (float, b * l * dim);
      g_autofree float *want1 = g_new (float, b * dim);
      dcr_ref_diff_tokens_gather (f, bank, pos, want, want1, b, l, dim);
      g_autofree float *got = dcr_test_read (td);
      g_autofree float *got1 = dcr_test_read (td1);
      check ("gather d", dts[t], got, want, b * l * dim);
      check ("gather d1", dts[t], got1, want1, b * dim);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
test_gate (void)
{
  const gint64 sizes[] = { 1, 7, 65, 24 * 17 };
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint t = 0; t < G_N_ELEMENTS (dts); t++)
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      {
        if (dts[t] == DCR_F16 && !dcr_test_have_f16 ())
          continue;
        g_autoptr (GError) err = NULL;
        gint64 n = sizes[s];
        g_autofree float *f = g_new (float, n);
        g_autofree float *c = g_new (float, n);
        g_autofree float *z = g_new (float, n);
        dcr_test_fill (f, n, s + 1, -1, 1);
        dcr_test_fill (c, n, s + 2, -2, 2);
        dcr_test_fill (z, n, s + 3, -6, 6);
        g_autoptr (DcrTensor) tf = dcr_test_tensor (dts[t], 1, &n, f);
        g_autoptr (DcrTensor) tc = dcr_test_tensor (dts[t], 1, &n, c);
        g_autoptr (DcrTensor) tz = dcr_test_tensor (dts[t], 1, &n, z);
        g_autoptr (DcrTensor) ty = dcr_test_tensor (dts[t], 1, &n, NULL);
        g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
        g_assert_true (dcr_op_gate (seq, tf, tc, tz, ty, &err));
        g_assert_no_error (err);
        dcr_test_submit (seq);
        g_autofree float *want = g_new (float, n);
        dcr_ref_gate (f, c, z, want, n);
        g_autofree float *got = dcr_test_read (ty);
        check ("gate", dts[t], got, want, n);
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_gate_backward (void)
{
  const gint64 sizes[] = { 1, 7, 65, 24 * 17 };
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (int acc = 0; acc < 2; acc++)
      {
        g_autoptr (GError) err = NULL;
        gint64 n = sizes[s];
        g_autofree float *c = g_new (float, n);
        g_autofree float *z = g_new (float, n);
        g_autofree float *dy = g_new (float, n);
        g_autofree float *dc = g_new (float, n);
        g_autofree float *dz = g_new (float, n);
        dcr_test_fill (c, n, s + 2, -2, 2);
        dcr_test_fill (z, n, s + 3, -6, 6);
        dcr_test_fill (dy, n, s + 4, -1, 1);
        dcr_test_fill (dc, n, s + 5, -1, 1);
        dcr_test_fill (dz, n, s + 6, -1, 1);
        g_autoptr (DcrTensor) tc = dcr_test_tensor (DCR_F32, 1, &n, c);
        g_autoptr (DcrTensor) tz = dcr_test_tensor (DCR_F32, 1, &n, z);
        g_autoptr (DcrTensor) tdy = dcr_test_tensor (DCR_F32, 1, &n, dy);
        g_autoptr (DcrTensor) tdc = dcr_test_tensor (DCR_F32, 1, &n, dc);
        g_autoptr (DcrTensor) tdz = dcr_test_tensor (DCR_F32, 1, &n, dz);
        g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
        g_assert_true (dcr_op_gate_backward (seq, tc, tz, tdy, tdc, tdz, acc, &err));
        g_assert_no_error (err);
        dcr_test_submit (seq);
        dcr_ref_gate_backward (c, z, dy, dc, dz, n, acc);
        g_autofree float *gc = dcr_test_read (tdc);
        g_autofree float *gz = dcr_test_read (tdz);
        check ("gate_backward dc", DCR_F32, gc, dc, n);
        check ("gate_backward dz", DCR_F32, gz, dz, n);
      }

  /* the gate's derivative against a central difference of the reference */
  float c = 0.7f, z = 0.3f, dy = 1, dc, dz;
  dcr_ref_gate_backward (&c, &z, &dy, &dc, &dz, 1, FALSE);
  float f = 0, yp, ym, zp = z + 1e-3f, zm = z - 1e-3f;
  dcr_ref_gate (&f, &c, &zp, &yp, 1);
  dcr_ref_gate (&f, &c, &zm, &ym, 1);
  g_assert_cmpfloat_with_epsilon (dz, (yp - ym) / 2e-3f, 1e-3);
  dcr_test_assert_no_validation_errors ();
}

static void
test_errors (void)
{
  g_autoptr (GError) err = NULL;
  gint64 fs[] = { 2, 5 }, ds[] = { 2, 3, 4 }, is[] = { 2, 2 };
  g_autoptr (DcrTensor) f = dcr_test_tensor (DCR_F32, 2, fs, NULL);
  g_autoptr (DcrTensor) d = dcr_test_tensor (DCR_F32, 3, ds, NULL);
  g_autoptr (DcrTensor) i = dcr_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, DCR_U32, 2, is, &err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_false (dcr_op_diff_tokens (seq, f, d, d, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_diff_tokens_gather (seq, f, f, i, 0, d, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_gate (seq, f, d, d, d, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/op-heads/diff", test_diff);
  g_test_add_func ("/op-heads/gather", test_gather);
  g_test_add_func ("/op-heads/gate", test_gate);
  g_test_add_func ("/op-heads/gate-backward", test_gate_backward);
  g_test_add_func ("/op-heads/errors", test_errors);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
