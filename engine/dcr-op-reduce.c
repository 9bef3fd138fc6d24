/* dcr-op-reduce.c — sum / mean / max, argmax and top-k along the last dim
 * (shaders/reduce.comp, shaders/topk.comp) and their CPU references. Long
 * top-k rows with few rows run in two passes (per-chunk top-k into caller
 * scratch, then a merge) so that more than one subgroup works on a row. */
#include "dcr-op-reduce.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
  guint32 rows, n;
} ReducePush;

typedef struct {
  guint32 rows, n, n_chunks, chunk_len;
  guint32 in_rs, in_v_off, in_i_off;
  guint32 out_rs, out_v_off, out_i_off;
  guint32 index_base;
} TopkPush;

static gboolean
shape_error (const char *op, const char *what, const DcrTensor *x, const DcrTensor *other, GError **error)
{
  g_autofree char *sx = dcr_ops_shape_string (x);
  g_autofree char *so = other ? dcr_ops_shape_string (other) : NULL;
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: %s (x is %s%s%s)", op, what, sx,
               so ? ", other is " : "", so ? so : "");
  return FALSE;
}

gboolean
dcr_op_reduce (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, DcrReduceOp op, GError **error)
{
  if (!dcr_ops_check_dtype (seq, "reduce", x, error))
    return FALSE;
  gint64 n = x->shape[x->ndim - 1];
  gint64 rows = n ? dcr_tensor_numel (x) / n : 0;
  if (op > DCR_REDUCE_MAX)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "reduce: unknown operation %d", op);
      return FALSE;
    }
  if (n == 0 || y->dtype != x->dtype || dcr_tensor_numel (y) != rows)
    return shape_error ("reduce", "y must hold one value per row of x (N > 0), in x's dtype", x, y, error);
  if (dcr_tensor_numel (x) > G_MAXUINT32)
    return shape_error ("reduce", "more than 2³² elements; split the tensor", x, NULL, error);
  if (rows == 0)
    return TRUE;
  DcrContext *ctx = dcr_seq_context (seq);
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  char name[32];
  guint32 spec[] = { dev->subgroup_size, 1, 1, op, n % 4 == 0 };
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("reduce", x->dtype, name, sizeof name), spec,
                                        G_N_ELEMENTS (spec), 2, sizeof (ReducePush), error);
  if (!pipe)
    return FALSE;
  DcrBinding b[] = { { x->buf, 0, 0, FALSE }, { y->buf, 0, 0, TRUE } };
  ReducePush push = { (guint32) rows, (guint32) n };
  dcr_seq_dispatch (seq, pipe, b, 2, &push, sizeof push, dcr_ops_groups (rows, 1), 1, 1);
  return TRUE;
}

/* ---- top-k ---- */

/* Chunk length for splitting rows: enough (row, chunk) tasks to fill a GPU
 * (~256 subgroups), chunks of at least 4096 entries and 128·k (so that the
 * merge pass stays small), a multiple of 4 (vec4 loads). Rows that are
 * short or numerous run in one pass: one chunk of n. */
static gint64
topk_chunk_len (gint64 rows, gint64 n, guint k)
{
  if (n < 8192 || rows >= 256)
    return n;
  gint64 want = (256 + rows - 1) / rows;
  gint64 len = MAX (MAX (4096, 128 * (gint64) k), (n + want - 1) / want);
  return MIN (n, (len + 3) & ~(gint64) 3);
}

static gint64
topk_chunks (gint64 rows, gint64 n, guint k)
{
  gint64 len = topk_chunk_len (rows, n, k);
  return (n + len - 1) / len;
}

typedef struct {
  gsize values_bytes; /* the values region, padded to 4 bytes; the indices follow */
  gsize total;
} ScratchLayout;

static ScratchLayout
scratch_layout (DcrDtype dt, gint64 rows, gint64 chunks, guint k)
{
  ScratchLayout l;
  gsize cand = (gsize) rows * chunks * k;
  l.values_bytes = (cand * dcr_dtype_size (dt) + 3) & ~(gsize) 3;
  l.total = l.values_bytes + cand * 4;
  return l;
}

gsize
dcr_op_topk_scratch_size (const DcrTensor *x, guint k)
{
  gint64 n = x->shape[x->ndim - 1];
  gint64 rows = n ? dcr_tensor_numel (x) / n : 0;
  gint64 chunks = rows ? topk_chunks (rows, n, k) : 1;
  return chunks > 1 ? scratch_layout (x->dtype, rows, chunks, k).total : 0;
}

static DcrPipeline *
topk_pipeline (DcrSeq *seq, DcrDtype dt, guint k, gboolean in_idx, gboolean write_values, const TopkPush *push,
               GError **error)
{
  DcrContext *ctx = dcr_seq_context (seq);
  char name[32];
  gboolean vec4 = (push->n | push->in_rs | push->in_v_off | push->in_i_off | push->chunk_len) % 4 == 0;
  guint32 spec[] = { dcr_context_device (ctx)->subgroup_size, 1, 1, k, in_idx, write_values, vec4 };
  return dcr_pipeline_get (ctx, dcr_ops_shader_name ("topk", dt, name, sizeof name), spec, G_N_ELEMENTS (spec), 4,
                           sizeof (TopkPush), error);
}

static gboolean
is_index_dtype (DcrDtype dt)
{
  return dt == DCR_U32 || dt == DCR_I32;
}

/* Checks an output of `rows` rows whose last dim holds columns
 * out_column … out_column+k−1; returns its row stride. */
static gboolean
check_out (const char *op, const DcrTensor *x, const DcrTensor *t, gboolean is_index, gint64 rows,
           gint64 out_column, guint k, gint64 *row_stride, GError **error)
{
  if (is_index ? !is_index_dtype (t->dtype) : t->dtype != x->dtype)
    return shape_error (op, is_index ? "indices must be u32 or i32" : "values must have x's dtype", x, t, error);
  gint64 w = t->shape[t->ndim - 1];
  if (w == 0 || dcr_tensor_numel (t) / w != rows || out_column < 0 || out_column + k > w)
    return shape_error (op, is_index ? "indices must be [rows of x, ≥ out_column + k]"
                                     : "values must be [rows of x, ≥ out_column + k]", x, t, error);
  *row_stride = w;
  return TRUE;
}

static gboolean
record_topk (DcrSeq *seq, const DcrTensor *x, const DcrTensor *x_indices, DcrTensor *values,
             DcrTensor *indices, guint k, guint32 index_base, gint64 out_column, gint64 out_rs,
             DcrBuffer *scratch, GError **error)
{
  gint64 n = x->shape[x->ndim - 1];
  gint64 rows = dcr_tensor_numel (x) / n;
  gint64 chunk_len = topk_chunk_len (rows, n, k);
  gint64 chunks = (n + chunk_len - 1) / chunk_len;
  ScratchLayout sl = scratch_layout (x->dtype, rows, chunks, k);
  if (chunks > 1 && (!scratch || dcr_buffer_size (scratch) < sl.total))
    chunk_len = n, chunks = 1;

  TopkPush push = {
    .rows = (guint32) rows, .n = (guint32) n, .n_chunks = (guint32) chunks,
    .chunk_len = (guint32) chunk_len, .in_rs = (guint32) n,
    .index_base = index_base,
  };
  DcrPipeline *first = topk_pipeline (seq, x->dtype, k, x_indices != NULL, chunks > 1 || values != NULL, &push,
                                      error);
  if (!first)
    return FALSE;
  DcrBinding in_b[2] = {
    { x->buf, 0, 0, FALSE },
    { x_indices ? x_indices->buf : x->buf, 0, 0, FALSE },
  };
  /* Unused value output: bound to indices, never written (WRITE_VALUES off). */
  DcrBinding out_b[2] = {
    { values ? values->buf : indices->buf, 0, 0, values != NULL },
    { indices->buf, 0, 0, TRUE },
  };
  if (chunks == 1)
    {
      push.out_rs = (guint32) out_rs;
      push.out_v_off = push.out_i_off = (guint32) out_column;
      DcrBinding b[] = { in_b[0], in_b[1], out_b[0], out_b[1] };
      dcr_seq_dispatch (seq, first, b, 4, &push, sizeof push, dcr_ops_groups (rows, 1), 1, 1);
      return TRUE;
    }

  /* pass 1: candidates [rows, chunks, k] into scratch, values then indices */
  push.out_rs = (guint32) (chunks * k);
  push.out_v_off = 0;
  push.out_i_off = (guint32) (sl.values_bytes / 4);
  DcrBinding b1[] = { in_b[0], in_b[1], { scratch, 0, 0, TRUE }, { scratch, 0, 0, TRUE } };
  dcr_seq_dispatch (seq, first, b1, 4, &push, sizeof push, dcr_ops_groups (rows * chunks, 1), 1, 1);

  /* pass 2: merge each row's candidates, carrying their indices */
  TopkPush mp = {
    .rows = (guint32) rows, .n = (guint32) (chunks * k), .n_chunks = 1, .chunk_len = (guint32) (chunks * k),
    .in_rs = (guint32) (chunks * k), .in_v_off = 0, .in_i_off = (guint32) (sl.values_bytes / 4),
    .out_rs = (guint32) out_rs, .out_v_off = (guint32) out_column, .out_i_off = (guint32) out_column,
  };
  DcrPipeline *merge = topk_pipeline (seq, x->dtype, k, TRUE, values != NULL, &mp, error);
  if (!merge)
    return FALSE;
  DcrBinding b2[] = { { scratch, 0, 0, FALSE }, { scratch, 0, 0, FALSE }, out_b[0], out_b[1] };
  dcr_seq_dispatch (seq, merge, b2, 4, &mp, sizeof mp, dcr_ops_groups (rows, 1), 1, 1);
  return TRUE;
}

gboolean
dcr_op_topk (DcrSeq *seq, const DcrTensor *x, const DcrTensor *x_indices, DcrTensor *values,
             DcrTensor *indices, const DcrTopkParams *params, GError **error)
{
  if (!dcr_ops_check_dtype (seq, "topk", x, error))
    return FALSE;
  guint k = params->k;
  if (k < 1 || k > DCR_TOPK_MAX)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "topk: k = %u is outside 1…%d", k, DCR_TOPK_MAX);
      return FALSE;
    }
  gint64 n = x->shape[x->ndim - 1];
  gint64 rows = n ? dcr_tensor_numel (x) / n : 0;
  if (n < k)
    {
      g_autofree char *sx = dcr_ops_shape_string (x);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "topk: rows of %" G_GINT64_FORMAT
                   " entries are shorter than k = %u (x is %s); pass k ≤ %" G_GINT64_FORMAT, n, k, sx, n);
      return FALSE;
    }
  if (dcr_tensor_numel (x) > G_MAXUINT32)
    return shape_error ("topk", "more than 2³² elements; split the tensor", x, NULL, error);
  if (x_indices && (!is_index_dtype (x_indices->dtype) || dcr_tensor_numel (x_indices) != dcr_tensor_numel (x)))
    return shape_error ("topk", "x_indices must be u32 or i32 with the shape of x", x, x_indices, error);
  gint64 out_rs = 0, vrs = 0;
  if (!check_out ("topk", x, indices, TRUE, rows, params->out_column, k, &out_rs, error) ||
      (values && !check_out ("topk", x, values, FALSE, rows, params->out_column, k, &vrs, error)))
    return FALSE;
  if (values && vrs != out_rs)
    return shape_error ("topk", "values and indices must have the same last dim", values, indices, error);
  if (rows == 0)
    return TRUE;
  return record_topk (seq, x, x_indices, values, indices, k, params->index_base, params->out_column,
                      out_rs, params->scratch, error);
}

gboolean
dcr_op_argmax (DcrSeq *seq, const DcrTensor *x, DcrTensor *indices, DcrTensor *values, GError **error)
{
  if (!dcr_ops_check_dtype (seq, "argmax", x, error))
    return FALSE;
  gint64 n = x->shape[x->ndim - 1];
  gint64 rows = n ? dcr_tensor_numel (x) / n : 0;
  if (n == 0)
    return shape_error ("argmax", "rows must not be empty", x, NULL, error);
  if (dcr_tensor_numel (x) > G_MAXUINT32)
    return shape_error ("argmax", "more than 2³² elements; split the tensor", x, NULL, error);
  if (!is_index_dtype (indices->dtype) || dcr_tensor_numel (indices) != rows)
    return shape_error ("argmax", "indices must be u32 or i32 with one entry per row of x", x, indices, error);
  if (values && (values->dtype != x->dtype || dcr_tensor_numel (values) != rows))
    return shape_error ("argmax", "values must have x's dtype and one entry per row of x", x, values, error);
  return record_topk (seq, x, NULL, values, indices, 1, 0, 0, 1, NULL, error);
}

/* ---- references ---- */

void
dcr_ref_reduce (const float *x, float *y, gint64 rows, gint64 n, DcrReduceOp op)
{
  for (gint64 r = 0; r < rows; r++)
    {
      double acc = op == DCR_REDUCE_MAX ? -INFINITY : 0;
      for (gint64 i = 0; i < n; i++)
        acc = op == DCR_REDUCE_MAX ? MAX (acc, x[r * n + i]) : acc + x[r * n + i];
      y[r] = (float) (op == DCR_REDUCE_MEAN ? acc / n : acc);
    }
}

typedef struct {
  float v;
  guint32 i;
} Cand;

static int
cand_cmp (const void *pa, const void *pb)
{
  const Cand *a = pa, *b = pb;
  if (a->v != b->v)
    return a->v > b->v ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i;
}

void
dcr_ref_topk (const float *x, const guint32 *x_indices, float *values, guint32 *indices,
              gint64 rows, gint64 n, guint k)
{
  g_autofree Cand *c = g_new (Cand, MAX (n, 1));
  for (gint64 r = 0; r < rows; r++)
    {
      gint64 m = 0;
      for (gint64 i = 0; i < n; i++)
        if (!isnan (x[r * n + i]))
          c[m++] = (Cand) { x[r * n + i], x_indices ? x_indices[r * n + i] : (guint32) i };
      qsort (c, m, sizeof *c, cand_cmp);
      for (guint j = 0; j < k; j++)
        {
          values[r * k + j] = j < m ? c[j].v : -INFINITY;
          indices[r * k + j] = j < m ? c[j].i : G_MAXUINT32;
        }
    }
}
