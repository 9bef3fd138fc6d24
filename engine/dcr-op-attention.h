/* dcr-op-attention.h — fused multi-head scaled-dot-product attention,
 * softmax(Q·Kᵀ·scale)·V, for the ViT-L/14 blocks (L = 257, H = 16, d = 64)
 * and DCR's difference attention (Lq = 1 over the k nearest prototypes,
 * d = 512). One dispatch, online softmax: no Lq×Lk matrix in memory. */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

typedef struct {
  guint heads;          /* H ≥ 1: the last dim of q, k, v and out is H·d, heads interleaved */
  float scale;          /* 0 → 1/√d */
  DcrTensor *weights;   /* optional output [B, H, Lq, Lk] of the softmax weights, in q's dtype
                         * (which prototype the DCR head attended to); costs a second pass
                         * over the keys */
} DcrAttentionParams;

/* out[b, i, h·d + c] = Σ_j softmax_j(scale · q[b, i, h]·k[b, j, h]) · v[b, j, h·d + c]
 * q and out are [B, Lq, H·d], k and v [B, Lk, H·d] (or all without B, for
 * B = 1). All tensors share one dtype (f32, or f16 storage); fp32 math.
 * out must not alias q, k or v. */
gboolean dcr_op_attention (DcrSeq *seq, const DcrTensor *q, const DcrTensor *k, const DcrTensor *v,
                           DcrTensor *out, const DcrAttentionParams *params, GError **error);

/* Self-attention on the output of a fused QKV projection: qkv is
 * [B, L, 3·H·d] with q, k, v side by side in the last dim (PyTorch's
 * nn.MultiheadAttention in_proj layout); out is [B, L, H·d]. */
gboolean dcr_op_attention_qkv (DcrSeq *seq, const DcrTensor *qkv, DcrTensor *out,
                               const DcrAttentionParams *params, GError **error);

/* Reference (double accumulation) on host floats. q, k, v are row-major
 * with row strides q_stride, k_stride, v_stride (elements; ≥ H·d, so q, k, v
 * may point into one fused qkv array); rows are B·Lq for q and B·Lk for k
 * and v. out is [B, Lq, H·d]; weights [B, H, Lq, Lk] or NULL. */
void dcr_ref_attention (const float *q, gint64 q_stride, const float *k, gint64 k_stride,
                        const float *v, gint64 v_stride, float *out, float *weights,
                        gint64 batch, gint64 lq, gint64 lk, guint heads, gint64 head_dim, float scale);

G_END_DECLS
