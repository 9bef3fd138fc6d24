/* test-op-reduce.c — sum / mean / max, argmax and top-k on the GPU against
 * the CPU references: odd shapes, ties (broken by the lower index), k = 1, 5,
 * 32, rows shorter than k (refused), long rows split into chunks and merged,
 * chunked-bank merging through index_base / out_column / x_indices, f32 and
 * f16 storage. Top-k results must match exactly: values are copied, not
 * computed. */
#include "dcr-test-util.h"
#include "dcr-op-reduce.h"

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

static DcrTensor *
index_tensor (DcrDtype dt, int ndim, const gint64 *shape)
{
  g_autoptr (GError) err = NULL;
  DcrTensor *t = dcr_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, dt, ndim, shape, &err);
  g_assert_no_error (err);
  /* poison, so that an unwritten entry cannot pass */
  g_autofree guint32 *fill = g_new (guint32, dcr_tensor_numel (t));
  memset (fill, 0xab, dcr_tensor_numel (t) * 4);
  g_assert_true (dcr_tensor_upload (t, fill, &err));
  return t;
}

static void
assert_indices_equal (const char *what, const guint32 *got, const guint32 *want, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (got[i] != want[i])
      {
        g_test_fail_printf ("%s: index %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " is %u, expected %u", what, i, n,
                            got[i], want[i]);
        return;
      }
}

static const gint64 test_rows[] = { 1, 3, 7, 17, 65 };
static const gint64 test_lens[] = { 1, 3, 7, 17, 65, 257 };

/* ---- sum / mean / max ---- */

static void
test_reduce (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  g_autoptr (GError) err = NULL;
  for (gsize r = 0; r < G_N_ELEMENTS (test_rows); r++)
    for (gsize l = 0; l <= G_N_ELEMENTS (test_lens); l++)
      {
        gint64 rows = test_rows[r], n = l < G_N_ELEMENTS (test_lens) ? test_lens[l] : 1024;
        gint64 shape[] = { rows, n }, yshape[] = { rows, 1 };
        g_autofree float *x = g_new (float, rows * n), *want = g_new (float, rows), *got = g_new (float, rows);
        dcr_test_fill (x, rows * n, (guint32) (rows + 3 * n), -1, 1.5f);
        g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 2, shape, x);
        for (DcrReduceOp op = DCR_REDUCE_SUM; op <= DCR_REDUCE_MAX; op++)
          {
            g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (dt, 2, yshape, want);
            g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
            g_assert_true (dcr_op_reduce (seq, tx, ty, op, &err));
            g_assert_true (dcr_seq_submit (seq, TRUE, &err));
            g_assert_no_error (err);
            dcr_ref_reduce (x, want, rows, n, op);
            dcr_test_download_into (ty, got);
            g_autofree char *what = g_strdup_printf ("reduce %d %s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT, op,
                                                     dcr_dtype_name (dt), rows, n);
            /* |x| ≤ 1.5: fp32 sums of ≤1024 terms within 1e-4; f16 adds its
             * output rounding (4.9e-4 relative); max is exact */
            if (op == DCR_REDUCE_MAX)
              dcr_test_assert_close (what, got, want, rows, 0, 0);
            else
              dcr_test_assert_close (what, got, want, rows, 1e-4, dt == DCR_F16 ? 1e-3 : 1e-5);
          }
      }
  dcr_test_assert_no_validation_errors ();
}

/* ---- top-k ---- */

/* Values on a coarse grid so that rows are full of ties. */
static void
fill_ties (float *x, gsize n, guint32 seed, float levels)
{
  dcr_test_fill (x, n, seed, -1, 1);
  for (gsize i = 0; i < n; i++)
    x[i] = floorf (x[i] * levels) / levels;
}

static void
check_topk (DcrDtype dt, DcrDtype idt, gint64 rows, gint64 n, guint k, float levels, gboolean with_scratch,
            gboolean with_values)
{
  g_autoptr (GError) err = NULL;
  gint64 shape[] = { rows, n }, oshape[] = { rows, k };
  g_autofree float *x = g_new (float, rows * n), *want_v = g_new (float, rows * k), *got_v = g_new (float, rows * k);
  g_autofree guint32 *want_i = g_new (guint32, rows * k), *got_i = g_new (guint32, rows * k);
  fill_ties (x, rows * n, (guint32) (rows * 17 + n + k), levels);
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 2, shape, x);
  g_autoptr (DcrTensor) tv = with_values ? dcr_test_upload_rounded (dt, 2, oshape, want_v) : NULL;
  g_autoptr (DcrTensor) ti = index_tensor (idt, 2, oshape);
  gsize scratch_bytes = dcr_op_topk_scratch_size (tx, k);
  g_autoptr (DcrBuffer) scratch = with_scratch && scratch_bytes
    ? dcr_buffer_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, scratch_bytes, &err) : NULL;
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  DcrTopkParams p = { .k = k, .scratch = scratch };
  g_assert_true (dcr_op_topk (seq, tx, NULL, tv, ti, &p, &err));
  g_assert_no_error (err);
  /* two dispatches exactly when the rows were split */
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, scratch ? 2 : 1);
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_ref_topk (x, NULL, want_v, want_i, rows, n, k);
  g_assert_true (dcr_tensor_download (ti, got_i, &err));
  g_autofree char *what = g_strdup_printf ("topk %s/%s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " k=%u%s",
                                           dcr_dtype_name (dt), dcr_dtype_name (idt), rows, n, k,
                                           scratch ? " chunked" : "");
  assert_indices_equal (what, got_i, want_i, rows * k);
  if (with_values)
    {
      dcr_test_download_into (tv, got_v);
      dcr_test_assert_close (what, got_v, want_v, rows * k, 0, 0);
    }
}

static void
test_topk (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  const guint ks[] = { 1, 5, 32 };
  for (gsize r = 0; r < G_N_ELEMENTS (test_rows); r++)
    for (gsize l = 0; l < G_N_ELEMENTS (test_lens); l++)
      for (gsize j = 0; j < G_N_ELEMENTS (ks); j++)
        if (ks[j] <= test_lens[l])
          check_topk (dt, (r + l) % 2 ? DCR_U32 : DCR_I32, test_rows[r], test_lens[l], ks[j],
                      (r + j) % 2 ? 4 : 1000, FALSE, (l + j) % 3 != 0);
  dcr_test_assert_no_validation_errors ();
}

static void
test_topk_long (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  /* one query against a 100k bank, split into chunks and merged; ties on a
   * coarse grid must still resolve to the lowest indices across chunks */
  check_topk (dt, DCR_U32, 1, 100003, 5, 1e4f, TRUE, TRUE);
  check_topk (dt, DCR_U32, 1, 100003, 32, 16, TRUE, TRUE);
  check_topk (dt, DCR_I32, 3, 20001, 32, 1e3f, TRUE, FALSE);
  check_topk (dt, DCR_U32, 2, 50000, 5, 1e4f, FALSE, TRUE);
  /* exactly k entries per row */
  check_topk (dt, DCR_U32, 5, 32, 32, 8, FALSE, TRUE);
  dcr_test_assert_no_validation_errors ();
}

static void
test_topk_merge_chunks (void)
{
  /* A bank in two chunks: each chunk's top-k goes to its own columns of one
   * candidate tensor with the chunk's first row as index_base; a second
   * top-k over the candidates, carrying their indices, gives the whole
   * bank's top-k. */
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  const gint64 rows = 3, n0 = 700, n1 = 517, n = n0 + n1;
  const guint k = 7;
  g_autofree float *x = g_new (float, rows * n);
  g_autofree float *a = g_new (float, rows * n0), *b = g_new (float, rows * n1);
  fill_ties (x, rows * n, 99, 64);
  for (gint64 r = 0; r < rows; r++)
    {
      memcpy (a + r * n0, x + r * n, n0 * sizeof (float));
      memcpy (b + r * n1, x + r * n + n0, n1 * sizeof (float));
    }
  gint64 sa[] = { rows, n0 }, sb[] = { rows, n1 }, sc[] = { rows, 2 * k }, so[] = { rows, k };
  g_autoptr (DcrTensor) ta = dcr_test_upload_rounded (DCR_F32, 2, sa, a);
  g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (DCR_F32, 2, sb, b);
  g_autofree float *zeros = g_new0 (float, rows * 2 * k);
  g_autoptr (DcrTensor) cand_v = dcr_test_upload_rounded (DCR_F32, 2, sc, zeros);
  g_autoptr (DcrTensor) cand_i = index_tensor (DCR_U32, 2, sc);
  g_autoptr (DcrTensor) out_v = dcr_test_upload_rounded (DCR_F32, 2, so, zeros);
  g_autoptr (DcrTensor) out_i = index_tensor (DCR_U32, 2, so);
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
  DcrTopkParams p0 = { .k = k }, p1 = { .k = k, .index_base = n0, .out_column = k }, pm = { .k = k };
  g_assert_true (dcr_op_topk (seq, ta, NULL, cand_v, cand_i, &p0, &err));
  g_assert_true (dcr_op_topk (seq, tb, NULL, cand_v, cand_i, &p1, &err));
  g_assert_true (dcr_op_topk (seq, cand_v, cand_i, out_v, out_i, &pm, &err));
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  g_autofree float *want_v = g_new (float, rows * k), *got_v = g_new (float, rows * k);
  g_autofree guint32 *want_i = g_new (guint32, rows * k), *got_i = g_new (guint32, rows * k);
  dcr_ref_topk (x, NULL, want_v, want_i, rows, n, k);
  dcr_test_download_into (out_v, got_v);
  g_assert_true (dcr_tensor_download (out_i, got_i, &err));
  assert_indices_equal ("merged chunks", got_i, want_i, rows * k);
  dcr_test_assert_close ("merged chunks", got_v, want_v, rows * k, 0, 0);
  dcr_test_assert_no_validation_errors ();
}

static void
test_argmax (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  g_autoptr (GError) err = NULL;
  for (gsize r = 0; r < G_N_ELEMENTS (test_rows); r++)
    for (gsize l = 0; l < G_N_ELEMENTS (test_lens); l++)
      {
        gint64 rows = test_rows[r], n = test_lens[l];
        gint64 shape[] = { rows, n }, oshape[] = { rows };
        g_autofree float *x = g_new (float, rows * n), *want_v = g_new (float, rows), *got_v = g_new (float, rows);
        g_autofree guint32 *want_i = g_new (guint32, rows), *got_i = g_new (guint32, rows);
        fill_ties (x, rows * n, (guint32) (rows * 5 + n), l % 2 ? 3 : 500);
        g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (dt, 2, shape, x);
        g_autoptr (DcrTensor) tv = dcr_test_upload_rounded (dt, 1, oshape, want_v);
        g_autoptr (DcrTensor) ti = index_tensor (DCR_I32, 1, oshape);
        g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
        g_assert_true (dcr_op_argmax (seq, tx, ti, r % 2 ? tv : NULL, &err));
        g_assert_true (dcr_seq_submit (seq, TRUE, &err));
        g_assert_no_error (err);
        dcr_ref_topk (x, NULL, want_v, want_i, rows, n, 1);
        g_assert_true (dcr_tensor_download (ti, got_i, &err));
        g_autofree char *what = g_strdup_printf ("argmax %s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT,
                                                 dcr_dtype_name (dt), rows, n);
        assert_indices_equal (what, got_i, want_i, rows);
        if (r % 2)
          {
            dcr_test_download_into (tv, got_v);
            dcr_test_assert_close (what, got_v, want_v, rows, 0, 0);
          }
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_nan_and_inf (void)
{
  /* NaN is never selected; −inf is an ordinary (smallest) value */
  g_autoptr (GError) err = NULL;
  gint64 shape[] = { 1, 6 }, oshape[] = { 1, 4 };
  float x[6] = { NAN, -INFINITY, 2, NAN, 5, -INFINITY }, v[4] = { 0 }, got_v[4];
  guint32 got_i[4];
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 2, shape, x);
  g_autoptr (DcrTensor) tv = dcr_test_upload_rounded (DCR_F32, 2, oshape, v);
  g_autoptr (DcrTensor) ti = index_tensor (DCR_U32, 2, oshape);
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  DcrTopkParams p = { .k = 4 };
  g_assert_true (dcr_op_topk (seq, tx, NULL, tv, ti, &p, &err));
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_test_download_into (tv, got_v);
  g_assert_true (dcr_tensor_download (ti, got_i, &err));
  const guint32 want_i[4] = { 4, 2, 1, 5 };
  const float want_v[4] = { 5, 2, -INFINITY, -INFINITY };
  assert_indices_equal ("nan/inf", got_i, want_i, 4);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (got_v[i], ==, want_v[i]);
}

static void
test_bad_args (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  gint64 sx[] = { 4, 3 }, si[] = { 4, 5 }, s3[] = { 3, 5 }, s1[] = { 4 };
  g_autoptr (DcrTensor) x = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, sx, &err);
  g_autoptr (DcrTensor) idx = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_U32, 2, si, &err);
  g_autoptr (DcrTensor) idx3 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_U32, 2, s3, &err);
  g_autoptr (DcrTensor) fidx = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, s1, &err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
  /* rows of 3 are shorter than k = 5: refused, with the fix in the message */
  DcrTopkParams p = { .k = 5 };
  g_assert_false (dcr_op_topk (seq, x, NULL, NULL, idx, &p, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "k ≤ 3"));
  g_clear_error (&err);
  p.k = 0;
  g_assert_false (dcr_op_topk (seq, x, NULL, NULL, idx, &p, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED);
  g_clear_error (&err);
  p.k = 33;
  g_assert_false (dcr_op_topk (seq, x, NULL, NULL, idx, &p, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED);
  g_clear_error (&err);
  /* out_column + k past the end; wrong row count */
  p = (DcrTopkParams) { .k = 2, .out_column = 4 };
  g_assert_false (dcr_op_topk (seq, x, NULL, NULL, idx, &p, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  p.out_column = 0;
  g_assert_false (dcr_op_topk (seq, x, NULL, NULL, idx3, &p, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_argmax (seq, x, fidx, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_reduce (seq, x, idx, DCR_REDUCE_SUM, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/op-reduce/reduce/f32", GINT_TO_POINTER (DCR_F32), test_reduce);
  g_test_add_data_func ("/op-reduce/reduce/f16", GINT_TO_POINTER (DCR_F16), test_reduce);
  g_test_add_data_func ("/op-reduce/topk/f32", GINT_TO_POINTER (DCR_F32), test_topk);
  g_test_add_data_func ("/op-reduce/topk/f16", GINT_TO_POINTER (DCR_F16), test_topk);
  g_test_add_data_func ("/op-reduce/topk-long/f32", GINT_TO_POINTER (DCR_F32), test_topk_long);
  g_test_add_data_func ("/op-reduce/topk-long/f16", GINT_TO_POINTER (DCR_F16), test_topk_long);
  g_test_add_func ("/op-reduce/topk-merge-chunks", test_topk_merge_chunks);
  g_test_add_data_func ("/op-reduce/argmax/f32", GINT_TO_POINTER (DCR_F32), test_argmax);
  g_test_add_data_func ("/op-reduce/argmax/f16", GINT_TO_POINTER (DCR_F16), test_argmax);
  g_test_add_func ("/op-reduce/nan-inf", test_nan_and_inf);
  g_test_add_func ("/op-reduce/bad-args", test_bad_args);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
