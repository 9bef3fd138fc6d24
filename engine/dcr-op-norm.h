/* dcr-op-norm.h — normalisation along the last dimension: layer norm (the
 * ViT/CLIP blocks) and L2 normalisation (features before cosine retrieval
 * and the memory bank). */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

/* y[r, :] = (x[r, :] − mean) / sqrt(var + eps) · gamma + beta over the last
 * dim D (biased variance, as torch.nn.LayerNorm). x and y have the same
 * shape (may be the same tensor); gamma and beta are [D] or NULL (1 and 0).
 * All tensors share one dtype. CLIP uses eps = 1e-5. */
gboolean dcr_op_layer_norm (DcrSeq *seq, const DcrTensor *x, const DcrTensor *gamma,
                            const DcrTensor *beta, DcrTensor *y, float eps, GError **error);

/* y[r, :] = x[r, :] / max(‖x[r, :]‖₂, eps), as torch.nn.functional.normalize
 * (its default eps is 1e-12). x and y have the same shape (may be the same
 * tensor). */
gboolean dcr_op_l2_normalize (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, float eps, GError **error);

/* References on host floats, rows × d row-major; gamma/beta may be NULL. */
void dcr_ref_layer_norm (const float *x, const float *gamma, const float *beta, float *y,
                         gint64 rows, gint64 d, float eps);
void dcr_ref_l2_normalize (const float *x, float *y, gint64 rows, gint64 d, float eps);

G_END_DECLS
