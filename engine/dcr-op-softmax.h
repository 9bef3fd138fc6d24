/* dcr-op-softmax.h — numerically stable softmax along the last dimension,
 * with an optional scale and additive mask (attention scores, the RINE
 * block-importance weights, classifier probabilities). */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

/* y[r, :] = softmax(scale · x[r, :] + mask[r mod M, :]) over the last dim N.
 * scale 0 is taken as 1. mask is NULL or [..., N] with M rows (numel / N)
 * where M divides the rows of x, so [N] is shared by every row and
 * [Lq, Lk] by every batch and head of [B, H, Lq, Lk] scores; −inf entries
 * mask a position out. A row masked out entirely comes out as zeros (torch
 * gives NaN). x and y have the same shape (may be the same tensor); all
 * tensors share one dtype. */
gboolean dcr_op_softmax (DcrSeq *seq, const DcrTensor *x, const DcrTensor *mask, DcrTensor *y,
                         float scale, GError **error);

/* Reference on host floats: x and y rows × n, mask mask_rows × n or NULL. */
void dcr_ref_softmax (const float *x, const float *mask, float *y, gint64 rows, gint64 n,
                      gint64 mask_rows, float scale);

G_END_DECLS
