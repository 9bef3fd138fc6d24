/* dcr-op-grad.h — backward passes of the ops the DCR heads train through:
 * linear layers, activations, layer norm, softmax, the small difference
 * attention, |a − b|, L2 normalisation and 2-D convolution. Each reads
 * what its forward read (softmax and norm statistics are recomputed, not
 * saved) and has a dcr_ref_* twin on host floats.
 *
 * Gradients are f32 tensors; the pointwise ones (activations, |a − b|) also
 * take f16 storage where the device has it. Every output gradient may be
 * NULL when it is not needed, unless its op says otherwise. The row-wise
 * ops (layer norm, softmax, L2 normalise) and the attention backward reduce
 * with subgroup arithmetic, which every desktop GPU and lavapipe have; on
 * a device without it they fail with DCR_OPS_ERROR_UNSUPPORTED. */
#pragma once

#include "dcr-ops.h"
#include "dcr-op-conv.h"

G_BEGIN_DECLS

/* Whether an op overwrites its output gradients or adds into them. Inputs
 * that feed several branches (f feeds Q and |f − r|) sum their gradients;
 * parameters sum them over micro-batches. */
typedef enum {
  DCR_GRAD_OVERWRITE = 0,
  DCR_GRAD_ACCUMULATE_INPUT = 1 << 0,  /* dx, dq, dk, dv, da, db of |a − b| += … */
  DCR_GRAD_ACCUMULATE_PARAMS = 1 << 1, /* dW, db of a linear layer, dγ, dβ += … */
} DcrGradFlags;

#define DCR_GRAD_ACCUMULATE_ALL (DCR_GRAD_ACCUMULATE_INPUT | DCR_GRAD_ACCUMULATE_PARAMS)

/* dx = dy ⊙ act'(x), any shape (equal element counts), f32 or f16. x is the
 * forward input; for RELU and RELU6 the forward output gives the same mask
 * and may be passed instead. GELU is the exact erf form. dx is required. */
gboolean dcr_op_act_backward (DcrSeq *seq, DcrAct act, const DcrTensor *x, const DcrTensor *dy,
                              DcrTensor *dx, DcrGradFlags flags, GError **error);

/* Backward of d = |a − b|: da = sign(a − b)·dd, db = −sign(a − b)·dd, with
 * the subgradient 0 where a == b (as PyTorch's abs). a has b's shape, or b's
 * shape with one axis of size 1 that b extends to K (a [B, 1, D] or [B, D]
 * against b [B, K, D]: one suspect against K prototypes); then da sums over
 * that axis. f32 or f16. */
gboolean dcr_op_abs_diff_backward (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b,
                                   const DcrTensor *dd, DcrTensor *da, DcrTensor *db,
                                   DcrGradFlags flags, GError **error);

/* db[N] = Σ over rows of dy[..., N] (a bias gradient; follows ACCUMULATE_PARAMS). */
gboolean dcr_op_bias_backward (DcrSeq *seq, const DcrTensor *dy, DcrTensor *db,
                               DcrGradFlags flags, GError **error);

/* Backward of y[..., out] = x[..., in]·W[out, in]ᵀ + b[out] (dcr_op_linear
 * without activation: run dcr_op_act_backward first for a fused one):
 * dx = dy·W, dW = dyᵀ·x, db = Σ_rows dy. GEMMs through dcr_op_gemm. */
gboolean dcr_op_linear_backward (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w,
                                 const DcrTensor *dy, DcrTensor *dx, DcrTensor *dw,
                                 DcrTensor *db, DcrGradFlags flags, GError **error);

/* Backward of layer norm over the last dim n: y = (x − μ)·rstd·γ + β,
 * rstd = 1/√(var + eps), var biased (PyTorch's). μ and rstd are recomputed
 * from x; `stats` [rows, 2] f32 receives (μ, rstd) per row and is required
 * when dgamma or dbeta is asked for. gamma NULL means γ = 1. dx is required. */
gboolean dcr_op_layer_norm_backward (DcrSeq *seq, const DcrTensor *x, const DcrTensor *gamma,
                                     const DcrTensor *dy, float eps, DcrTensor *dx,
                                     DcrTensor *dgamma, DcrTensor *dbeta, DcrTensor *stats,
                                     DcrGradFlags flags, GError **error);

/* Backward of y = softmax(x) over the last dim, from the forward output y:
 * dx = y ⊙ (dy − Σ dy⊙y). dx is required. */
gboolean dcr_op_softmax_backward (DcrSeq *seq, const DcrTensor *y, const DcrTensor *dy,
                                  DcrTensor *dx, DcrGradFlags flags, GError **error);

/* Backward of y = x / max(‖x‖₂, eps) over the last dim (F.normalize):
 * dx = (dy − y (y·dy)) / ‖x‖, or dy/eps where ‖x‖ < eps. dx is required. */
gboolean dcr_op_l2_normalize_backward (DcrSeq *seq, const DcrTensor *x, const DcrTensor *dy,
                                       float eps, DcrTensor *dx, DcrGradFlags flags, GError **error);

/* Backward of dcr_op_attention, out = softmax(scale·Q Kᵀ) V per (batch,
 * head), the softmax recomputed. q [B, Lq, H·dh], k [B, Lk, H·dh],
 * v [B, Lk, H·dv], dout [B, Lq, H·dv] (heads side by side in the last dim,
 * as dcr_op_attention and PyTorch's multi-head attention before its head
 * split), or all 2-D without B for B = 1; dv may differ from dh.
 * scale 0 means 1/√dh. Made for the DCR difference attention: one
 * subgroup per (batch, head) walks its few queries (Lq = 1: q [B, 1, D])
 * over any number of keys; not for ViT-sized self-attention. */
gboolean dcr_op_attention_backward (DcrSeq *seq, const DcrTensor *q, const DcrTensor *k,
                                    const DcrTensor *v, const DcrTensor *dout,
                                    gint64 heads, float scale,
                                    DcrTensor *dq, DcrTensor *dk, DcrTensor *dv,
                                    DcrGradFlags flags, GError **error);

/* References on host floats, same semantics (outputs are read when the flags
 * accumulate). Shapes are passed flattened as the ops describe them. */
void dcr_ref_act_backward (DcrAct act, const float *x, const float *dy, float *dx, gint64 n,
                           DcrGradFlags flags);
/* a [rows, d], b and dd [rows, k, d] */
void dcr_ref_abs_diff_backward (const float *a, const float *b, const float *dd, float *da,
                                float *db, gint64 rows, gint64 k, gint64 d, DcrGradFlags flags);
void dcr_ref_bias_backward (const float *dy, float *db, gint64 rows, gint64 n, DcrGradFlags flags);
void dcr_ref_linear_backward (const float *x, const float *w, const float *dy, float *dx,
                              float *dw, float *db, gint64 rows, gint64 in, gint64 out,
                              DcrGradFlags flags);
void dcr_ref_layer_norm_backward (const float *x, const float *gamma, const float *dy, float eps,
                                  float *dx, float *dgamma, float *dbeta, gint64 rows, gint64 n,
                                  DcrGradFlags flags);
void dcr_ref_softmax_backward (const float *y, const float *dy, float *dx, gint64 rows, gint64 n,
                               DcrGradFlags flags);
void dcr_ref_l2_normalize_backward (const float *x, const float *dy, float eps, float *dx,
                                    gint64 rows, gint64 n, DcrGradFlags flags);
void dcr_ref_attention_backward (const float *q, const float *k, const float *v, const float *dout,
                                 gint64 batch, gint64 lq, gint64 lk, gint64 heads, gint64 dh,
                                 gint64 dv, float scale, float *dq, float *dk, float *dvo,
                                 DcrGradFlags flags);

/* ---- convolution -------------------------------------------------------- */

/* Backward of dcr_op_conv2d without its epilogue activation or residual (for a fused ReLU run
 * dcr_op_act_backward on dy first, with the forward output as x): groups 1, f32 tensors,
 * x [N, H, W, Cin], w [Cout, KH, KW, Cin], dy [N, Ho, Wo, Cout] with Ho, Wo from
 * dcr_conv2d_out_size for params' stride, padding and dilation (params->act and ->algo ignored).
 *   dx[n, i, j, c]  = Σ dy[n, oy, ox, o] · w[o, ky, kx, c] over oy·sh − pt + ky·dh = i, ox·sw − pl + kx·dw = j
 *   dw[o, ky, kx, c] = Σ_{n, oy, ox} dy[n, oy, ox, o] · x[n, oy·sh − pt + ky·dh, ox·sw − pl + kx·dw, c]
 *                      (terms outside the input are 0)
 *   db[o] = Σ_{n, oy, ox} dy[n, oy, ox, o]
 * Any of dx, dw, db may be NULL (not computed). flags: DCR_GRAD_ACCUMULATE_INPUT adds into dx,
 * DCR_GRAD_ACCUMULATE_PARAMS into dw and db; otherwise they are overwritten.
 * dx is a gather per input pixel (a lane: up to 4 columns × 8 channels);
 * dw (with db) one workgroup per tile of output × input channels (at most
 * 8 × 8, 32 products) at one kernel tap, its lanes striding over the N·Ho
 * output rows and summing in shared memory (dcr-op-conv-grad.c,
 * shaders/grad_conv.comp). */
gboolean dcr_op_conv2d_backward (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w, const DcrTensor *dy,
                                 DcrTensor *dx, DcrTensor *dw, DcrTensor *db, const DcrConv2dParams *params,
                                 DcrGradFlags flags, GError **error);
/* Reference on host floats (double accumulation), same semantics. */
void dcr_ref_conv2d_backward (const float *x, gint64 n, gint64 h, gint64 w, gint64 cin, const float *weights,
                              gint64 cout, int kh, int kw, const float *dy, float *dx, float *dw, float *db,
                              const DcrConv2dParams *params, DcrGradFlags flags);

G_END_DECLS
