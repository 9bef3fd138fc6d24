/* dcr-op-loss.h — the training losses of the DCR heads, each one op that
 * writes the mean loss (a [1] f32 tensor) and its gradient with respect to
 * its inputs: cross-entropy on the class logits, BCE on the anomaly score,
 * supervised contrastive (RINE) and InfoNCE against a MoCo queue.
 *
 * All tensors are f32; labels are i32. Gradients are overwritten (a loss is
 * where backpropagation starts) and multiplied by grad_scale, the loss's
 * weight in the total (pass 1 for a plain loss); the loss value itself is
 * unweighted. A NULL gradient computes the loss alone. SupCon and InfoNCE
 * run their matrix products on dcr_op_gemm and need subgroup arithmetic. */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

/* Mean over rows of −log softmax(logits[r])[labels[r]]; logits [B, C],
 * labels [B] i32. Rows whose label is outside [0, C) are ignored (PyTorch's
 * ignore_index = −100 is one of them): zero gradient, left out of the mean;
 * with every row ignored the loss is 0 (PyTorch gives NaN). */
gboolean dcr_op_cross_entropy (DcrSeq *seq, const DcrTensor *logits, const DcrTensor *labels,
                               float grad_scale, DcrTensor *loss, DcrTensor *dlogits, GError **error);

/* PyTorch's BCELoss on probabilities p in [0, 1], any shape, targets of the
 * same shape (soft targets allowed): logs clamped at −100, gradient
 * (p − t) / max(p(1 − p), 1e-12) / n exactly as PyTorch computes it. */
gboolean dcr_op_bce (DcrSeq *seq, const DcrTensor *probs, const DcrTensor *targets, float grad_scale,
                     DcrTensor *loss, DcrTensor *dprobs, GError **error);

/* BCEWithLogitsLoss: the stable form on logits z, gradient (σ(z) − t) / n. */
gboolean dcr_op_bce_with_logits (DcrSeq *seq, const DcrTensor *logits, const DcrTensor *targets,
                                 float grad_scale, DcrTensor *loss, DcrTensor *dlogits, GError **error);

/* Supervised contrastive loss, Khosla et al. 2020, the L_out form of the
 * official SupConLoss (contrast_mode 'all'), on L2-normalised features
 * z [N, D] with labels [N] i32 (N = batch × views, views flattened):
 *   ℓ_i = −(τ/τ_base) · mean over positives p of log( e^(z_i·z_p/τ) / Σ_{a≠i} e^(z_i·z_a/τ) )
 * averaged over all N anchors; an anchor with no positive contributes 0 and
 * still counts in the mean. base_temperature 0 means τ (RINE: τ = 0.07).
 * scratch holds N·(N + 1) f32 (e.g. [N, N + 1]): an [N, N] logit matrix,
 * which ends as ∂L/∂logits (times grad_scale), then the N row losses. The
 * features are used as given: normalise them in the forward and chain
 * dcr_op_l2_normalize_backward. The matrix products run on dcr_op_gemm. */
gboolean dcr_op_supcon (DcrSeq *seq, const DcrTensor *features, const DcrTensor *labels,
                        float temperature, float base_temperature, float grad_scale,
                        DcrTensor *scratch, DcrTensor *loss, DcrTensor *dfeatures, GError **error);

/* MoCo's InfoNCE: for each query q_i [B, D] the logits are (q_i·k⁺_i,
 * q_i·queue_0 … q_i·queue_{Q−1}) / τ with the positive at index 0, and the
 * loss is their cross-entropy, mean over B. queue [Q, D] is a constant (no
 * gradient); dk may be NULL (MoCo's keys come from the momentum encoder).
 * scratch holds B·(Q + 2) f32 (e.g. [B, Q + 2]) and ends with, in order,
 * the [B, Q] softmax probabilities of the queue entries, the B
 * probabilities of the positives and the B row losses (the positive's
 * probability against the best negative's is the contrastive accuracy). */
gboolean dcr_op_infonce (DcrSeq *seq, const DcrTensor *q, const DcrTensor *k, const DcrTensor *queue,
                         float temperature, float grad_scale, DcrTensor *scratch, DcrTensor *loss,
                         DcrTensor *dq, DcrTensor *dk, GError **error);

/* References: return the mean loss, computed in double; gradients (may be
 * NULL) as the ops define them. */
double dcr_ref_cross_entropy (const float *logits, const gint32 *labels, gint64 rows, gint64 classes,
                              float grad_scale, float *dlogits);
double dcr_ref_bce (const float *probs, const float *targets, gint64 n, float grad_scale, float *dprobs);
double dcr_ref_bce_with_logits (const float *logits, const float *targets, gint64 n, float grad_scale,
                                float *dlogits);
double dcr_ref_supcon (const float *features, const gint32 *labels, gint64 n, gint64 d, float temperature,
                       float base_temperature, float grad_scale, float *dfeatures);
double dcr_ref_infonce (const float *q, const float *k, const float *queue, gint64 b, gint64 queue_len,
                        gint64 d, float temperature, float grad_scale, float *dq, float *dk);

G_END_DECLS
