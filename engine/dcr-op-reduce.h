/* dcr-op-reduce.h — reductions along the last dimension: sum / mean / max,
 * argmax, and top-k (k ≤ 32) for retrieval — cosine scores of B queries
 * against a memory bank of up to a million prototypes. */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

typedef enum {
  DCR_REDUCE_SUM,
  DCR_REDUCE_MEAN,
  DCR_REDUCE_MAX,
} DcrReduceOp;

/* y[r] = op(x[r, :]) over the last dim N; y has numel = rows of x (e.g.
 * [..., 1] or [...]) and x's dtype. fp32 accumulation; the max of a row
 * holding NaN is unspecified. */
gboolean dcr_op_reduce (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, DcrReduceOp op, GError **error);

#define DCR_TOPK_MAX 32

typedef struct {
  guint k;                /* 1 ≤ k ≤ DCR_TOPK_MAX */
  guint32 index_base;     /* added to every position written (the first row of a bank chunk) */
  gint64 out_column;      /* results go to columns out_column … out_column+k−1 of values/indices,
                           * which may be wider than k: chunked retrieval writes each chunk's
                           * candidates side by side, then merges them with a second call */
  DcrBuffer *scratch;     /* optional, ≥ dcr_op_topk_scratch_size(): lets long rows be split
                           * across workgroups (per-chunk top-k, then a merge); without it one
                           * subgroup scans each row, which is fine for many rows */
} DcrTopkParams;

/* The k largest entries of each row of x [..., N], in descending order, ties
 * broken by the lower index. NaN entries are never selected (a row with
 * fewer than k other entries is padded with −inf and index 0xffffffff).
 * values [..., ≥k] (x's dtype, or NULL) and indices [..., ≥k] (u32 or i32)
 * have the rows of x. Without x_indices the index is the position in the
 * row plus index_base; with x_indices (u32/i32, x's shape) it is the index
 * carried there (merging candidates from several chunks). Rows shorter than
 * k are refused (DCR_OPS_ERROR_SHAPE); pass a smaller k. */
gboolean dcr_op_topk (DcrSeq *seq, const DcrTensor *x, const DcrTensor *x_indices, DcrTensor *values,
                      DcrTensor *indices, const DcrTopkParams *params, GError **error);
/* Bytes of scratch dcr_op_topk can use for x's shape and k (0 when it would
 * not split rows of this shape). */
gsize dcr_op_topk_scratch_size (const DcrTensor *x, guint k);

/* indices[r] = the position of the largest entry of x[r, :] (the first on
 * ties; NaN as in top-k); values[r] its value, when values is not NULL.
 * indices (u32 or i32) and values (x's dtype) hold one entry per row of x,
 * in any shape. */
gboolean dcr_op_argmax (DcrSeq *seq, const DcrTensor *x, DcrTensor *indices, DcrTensor *values, GError **error);

/* References on host floats (x rows × n). */
void dcr_ref_reduce (const float *x, float *y, gint64 rows, gint64 n, DcrReduceOp op);
/* values and indices are rows × k; x_indices may be NULL (positions). */
void dcr_ref_topk (const float *x, const guint32 *x_indices, float *values, guint32 *indices,
                   gint64 rows, gint64 n, guint k);

G_END_DECLS
