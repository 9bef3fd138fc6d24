/* dcr-op-gemm.h — GEMM, batched GEMM and linear layers with a fused
 * epilogue. The kernel behind linear layers, 1×1 convolutions, attention
 * and the GEMM backward passes. */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

typedef struct {
  gboolean trans_a;   /* A is stored [K, M] instead of [M, K] */
  gboolean trans_b;   /* B is stored [N, K] instead of [K, N] (linear weights) */
  float alpha;        /* scales op(A)·op(B); 0 is taken as 1 */
  float beta;         /* C = beta·C + … (gradient accumulation); act must be NONE then */
  DcrAct act;
  gint64 batch;       /* number of independent GEMMs; 0 or 1 = one */
  /* Element strides between consecutive batch entries (0 = broadcast the
   * same matrix to every batch entry, e.g. shared weights). Used only when
   * batch > 1; the default (all 0 with batch > 1) is invalid for C. */
  gint64 stride_a, stride_b, stride_c;
} DcrGemmParams;

/* C[M,N] = act(alpha·op(A)·op(B) + bias[N] + residual[M,N]) (+ beta·C)
 * bias and residual may be NULL. M, N, K are taken from the shapes of A/B/C
 * (the last two dims; leading dims fold into M for non-batched calls).
 * All tensors share one dtype (f32 or f16 storage, fp32 accumulation).
 *
 * Non-batched, each operand's leading dims fold into its outer (stored
 * first) dimension: M for C and plain A, K for transposed A and plain B, N
 * for transposed B — so a weight gradient dW = dYᵀ·X takes dY [B, T, out]
 * and X [B, T, in] as they are. Batched, M, N, K come from the last two dims
 * and the strides say where each entry starts. The residual has C's shape
 * and batch stride. */
gboolean dcr_op_gemm (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b,
                      const DcrTensor *bias, const DcrTensor *residual,
                      DcrTensor *c, const DcrGemmParams *params, GError **error);

/* y[..., out] = act(x[..., in] · W[out, in]ᵀ + bias[out]) */
gboolean dcr_op_linear (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w,
                        const DcrTensor *bias, DcrTensor *y, DcrAct act, GError **error);

/* Which kernel dcr_op_gemm records: $DCR_GEMM_KERNEL=subgroup|tiled forces
 * one; otherwise the subgroup-shuffle register kernel on CPU devices
 * (lavapipe) and the shared-memory tiled kernel on GPUs. $DCR_GEMM_TILE
 * forces a tile variant (TMxTN such as "32x8" for the first, "large",
 * "medium", "small" or "compat" for the second), for tests and tuning. */
typedef enum {
  DCR_GEMM_KERNEL_AUTO,
  DCR_GEMM_KERNEL_SUBGROUP,
  DCR_GEMM_KERNEL_TILED,
  DCR_GEMM_KERNEL_COOPMAT,      /* f16 on NV cooperative matrices (shaders/gemm_coopmat.comp) */
  DCR_GEMM_KERNEL_COOPMAT_EMU,  /* its tiles without cooperative matrices, for tests on any device */
} DcrGemmKernel;

DcrGemmKernel dcr_gemm_kernel_for (DcrContext *ctx);
/* The kernel for one storage dtype: f16 takes the cooperative-matrix kernel
 * where the device has it (DcrDeviceInfo.coopmat_f16), else the one above.
 * $DCR_GEMM_KERNEL=coopmat forces it (an error on other devices),
 * coopmat-emu its emulation (f16 only; for tests). */
DcrGemmKernel dcr_gemm_kernel_for_dtype (DcrContext *ctx, DcrDtype dtype);
const char *dcr_gemm_kernel_name (DcrGemmKernel kernel);
/* Whether the cooperative-matrix tile NAME ("coop-large", "coop-wide", …:
 * see dcr-op-gemm.c), as $DCR_GEMM_TILE names one, fits this device. */
gboolean dcr_gemm_coop_tile_usable (const DcrDeviceInfo *dev, const char *name);

/* fp16 convolution on the cooperative-matrix tiles (shaders/conv_coopmat.comp):
 * the implicit GEMM of x [N, H, W, Cin] (NHWC) with w [Cout, KH, KW, Cin],
 * groups 1, y = act(conv + bias + residual) (act NONE, RELU or RELU6).
 * dcr_op_conv2d records it in place of its own implicit GEMM where
 * dcr_conv_coopmat_wanted says so: f16, groups 1, and
 * dcr_gemm_kernel_for_dtype giving a coopmat kernel (or its emulation). */
typedef struct {
  gint64 n, h, w, cin, ho, wo, cout;
  int kh, kw, sh, sw, dh, dw, pt, pl;
  DcrAct act;
} DcrConvCoopmatShape;

gboolean dcr_conv_coopmat_wanted (DcrContext *ctx, DcrDtype dtype, int groups);
gboolean dcr_op_conv_coopmat (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w, const DcrTensor *bias,
                              const DcrTensor *residual, DcrTensor *y, const DcrConvCoopmatShape *s,
                              GError **error);

/* References on host floats, same semantics (c is read when beta != 0). */
void dcr_ref_gemm (const float *a, const float *b, const float *bias, const float *residual,
                   float *c, gint64 m, gint64 n, gint64 k, const DcrGemmParams *params);

G_END_DECLS
