/* dcr-op-conv.h — 2-D convolution over NHWC activations with a fused
 * epilogue (bias, ReLU/ReLU6, residual add), the padding rules of PyTorch
 * and Keras, and BatchNorm folding for loading trained weights. */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

/* Which kernel runs a convolution. AUTO picks per shape; the others force
 * one (tests and benchmarks) and fail with DCR_OPS_ERROR_UNSUPPORTED where
 * it does not apply. */
typedef enum {
  DCR_CONV_ALGO_AUTO,
  DCR_CONV_ALGO_DIRECT,    /* any shape; no subgroup operations */
  DCR_CONV_ALGO_IGEMM,     /* implicit GEMM with subgroup-shared register tiles */
  DCR_CONV_ALGO_DEPTHWISE, /* groups == Cin, Cout = Cin·multiplier */
} DcrConvAlgo;

typedef struct {
  int stride_h, stride_w;     /* 0 = 1 */
  /* Asymmetric on purpose: Keras/TensorFlow 'same' with stride 2 pads one
   * more at the bottom/right (see dcr_conv2d_same_padding). */
  int pad_top, pad_bottom, pad_left, pad_right;
  int dilation_h, dilation_w; /* 0 = 1 */
  int groups;                 /* 0 = 1; Cin and Cout must be multiples of it */
  /* y = act(conv + bias + residual): the residual is added before the
   * activation, as in ResNet's bottleneck (relu(bn3(conv3) + identity)). */
  DcrAct act;                 /* NONE, RELU or RELU6 */
  DcrConvAlgo algo;
} DcrConv2dParams;

/* Output size along one axis (PyTorch's floor rule); < 1 when the dilated
 * kernel does not fit in the padded input. */
gint64 dcr_conv2d_out_size (gint64 in, int kernel, int stride, int pad_before, int pad_after, int dilation);

/* Keras/TensorFlow padding='same': output ceil(in / stride), the odd pixel of
 * padding goes after (bottom/right). */
void dcr_conv2d_same_padding (gint64 in, int kernel, int stride, int dilation,
                              int *pad_before, int *pad_after);

/* y[N,Ho,Wo,Cout] = act(conv(x[N,H,W,Cin], w[Cout,KH,KW,Cin/groups]) + bias[Cout]
 *                       + residual[N,Ho,Wo,Cout])
 * bias and residual may be NULL; residual may be y itself. All tensors share
 * one dtype; Ho and Wo must equal dcr_conv2d_out_size. */
gboolean dcr_op_conv2d (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w, const DcrTensor *bias,
                        const DcrTensor *residual, DcrTensor *y, const DcrConv2dParams *params,
                        GError **error);

/* Reference, same semantics (params->algo is ignored); y is
 * [n, out_h, out_w, cout] with the sizes dcr_conv2d_out_size gives. */
void dcr_ref_conv2d (const float *x, gint64 n, gint64 h, gint64 w, gint64 cin,
                     const float *weights, gint64 cout, int kh, int kw,
                     const float *bias, const float *residual, float *y,
                     const DcrConv2dParams *params);

/* Folds an inference-mode BatchNorm that follows a convolution into the
 * convolution: weights [cout, weights_per_out] are scaled in place by
 * gamma/sqrt(var + eps) and bias (the convolution's own bias, zeros when it
 * has none; length cout) becomes (bias − mean)·scale + beta. */
void dcr_conv_fold_batchnorm (float *weights, float *bias, gint64 cout, gint64 weights_per_out,
                              const float *gamma, const float *beta, const float *mean,
                              const float *var, float eps);

/* ---- a MobileNetV2 inverted-residual block in one dispatch -------------- */

/* y = project(relu6(dw3x3(relu6(expand(x))))) + bias (+ x): expand is a 1×1
 * convolution Cin → mid, dw a 3×3 depthwise one with the given stride and
 * padding (the expanded tensor is zero-padded), project a 1×1 mid → Cout
 * without activation. The expanded and depthwise tensors stay in registers
 * (shaders/conv_mbblock.comp). On a CPU device (lavapipe), where each buffer
 * access is expensive, it is 2–5× faster than three dcr_op_conv2d at
 * MobileNetV2's blocks 1–6; on a GPU its per-lane register tiles are expected
 * to make it slower (not measured). */
typedef struct {
  int stride;                 /* 1 or 2 */
  int pad_top, pad_bottom, pad_left, pad_right; /* of the depthwise convolution */
  gboolean residual;          /* add x (stride 1, Cin == Cout) */
} DcrMbBlockParams;

/* TRUE where dcr_op_mbblock runs (subgroup shuffles; Cin, Cout multiples of
 * 4 and at most DCR_MBBLOCK_MAX_CHANNELS). */
#define DCR_MBBLOCK_MAX_CHANNELS 128
gboolean dcr_mbblock_supported (DcrContext *ctx, gint64 cin, gint64 cout);

/* Floats per packed row (one row per expanded channel) on this device. */
gint64 dcr_mbblock_row_length (DcrContext *ctx, gint64 cin, gint64 cout);

/* Packs the block's weights into `out` [mid, dcr_mbblock_row_length]:
 * we [mid, cin] and be [mid] (expand), wd [mid, 3, 3] and bd [mid]
 * (depthwise), wp [cout, mid] (project); BatchNorm already folded. */
void dcr_mbblock_pack_weights (DcrContext *ctx, const float *we, const float *be, const float *wd,
                               const float *bd, const float *wp, gint64 cin, gint64 mid, gint64 cout,
                               float *out);

/* x [N, H, W, Cin], packed [mid, row length] (dcr_mbblock_pack_weights),
 * bias [Cout] (project), y [N, Ho, Wo, Cout] with Ho, Wo as
 * dcr_conv2d_out_size gives for the 3×3 depthwise convolution. One dtype. */
gboolean dcr_op_mbblock (DcrSeq *seq, const DcrTensor *x, const DcrTensor *packed, const DcrTensor *bias,
                         DcrTensor *y, const DcrMbBlockParams *params, GError **error);

/* Reference of the same block from the unpacked weights (layouts as above). */
void dcr_ref_mbblock (const float *x, gint64 n, gint64 h, gint64 w, gint64 cin,
                      const float *we, const float *be, const float *wd, const float *bd,
                      const float *wp, const float *bp, gint64 mid, gint64 cout,
                      const DcrMbBlockParams *params, float *y);

G_END_DECLS
