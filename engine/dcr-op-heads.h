/* dcr-op-heads.h — the few kernels of the DCR heads that are not generic
 * ops: the difference tokens d_j = |f̂ − r̂_j| of a suspect against its k
 * prototypes (given, or gathered from a bank chunk where retrieval put
 * them), and the sigmoid gate fused = f̂ + σ(z) ⊙ context with its backward. */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

/* d[b, j, :] = |f[b, :] − r[b, j, :]| for f [B, D] and r, d [B, L, D]; d1
 * [B, D] (or NULL) receives token 0, d[b, 0, :], for the residual head. All
 * share one dtype. */
gboolean dcr_op_diff_tokens (DcrSeq *seq, const DcrTensor *f, const DcrTensor *r, DcrTensor *d,
                             DcrTensor *d1, GError **error);

/* The same with r[b, j] = chunk[indices[b, j] − base] for the indices in
 * [base, base + rows of chunk); the other tokens are not written, so one
 * call per chunk of a split bank fills d. chunk is [rows, D] in f's dtype,
 * indices [B, L] u32 (what dcr_op_topk wrote). */
gboolean dcr_op_diff_tokens_gather (DcrSeq *seq, const DcrTensor *f, const DcrTensor *chunk,
                                    const DcrTensor *indices, guint32 base, DcrTensor *d, DcrTensor *d1,
                                    GError **error);

/* y = f + σ(z) ⊙ c, all of one shape and dtype (y may not alias c or z). */
gboolean dcr_op_gate (DcrSeq *seq, const DcrTensor *f, const DcrTensor *c, const DcrTensor *z,
                      DcrTensor *y, GError **error);

/* Backward of dcr_op_gate for c and z (f̂ is a constant input here):
 * dc = dy ⊙ σ(z), dz = dy ⊙ c ⊙ σ(z)(1 − σ(z)); f32; both outputs required;
 * accumulate adds into them. */
gboolean dcr_op_gate_backward (DcrSeq *seq, const DcrTensor *c, const DcrTensor *z, const DcrTensor *dy,
                               DcrTensor *dc, DcrTensor *dz, gboolean accumulate, GError **error);

/* References on host floats. d1 may be NULL. positions[b·L + j] indexes
 * bank rows directly (the whole bank, not a chunk). */
void dcr_ref_diff_tokens (const float *f, const float *r, float *d, float *d1, gint64 batch, gint64 tokens,
                          gint64 dim);
void dcr_ref_diff_tokens_gather (const float *f, const float *bank, const guint32 *positions, float *d,
                                 float *d1, gint64 batch, gint64 tokens, gint64 dim);
void dcr_ref_gate (const float *f, const float *c, const float *z, float *y, gint64 n);
void dcr_ref_gate_backward (const float *c, const float *z, const float *dy, float *dc, float *dz, gint64 n,
                            gboolean accumulate);

G_END_DECLS
