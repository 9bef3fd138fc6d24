/* dcr-op-pool.h — 2-D max and average pooling and global average pooling
 * over NHWC activations (ResNet's stem max-pool and head, MobileNetV2's
 * head, the pooled taps of the feature extractor). */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

typedef enum {
  DCR_POOL_MAX,
  DCR_POOL_AVG,
} DcrPoolMode;

typedef struct {
  DcrPoolMode mode;
  int kernel_h, kernel_w;
  int stride_h, stride_w;     /* 0 = the kernel size (PyTorch's default) */
  /* Each pad must be smaller than the kernel, so that every window holds at
   * least one pixel of the image. Padding never wins a max. */
  int pad_top, pad_bottom, pad_left, pad_right;
  /* Average only: divide by the whole window, padding included (PyTorch's
   * default), or by the pixels inside the image (Keras, and PyTorch with
   * count_include_pad=False). */
  gboolean count_include_pad;
} DcrPool2dParams;

/* Output size along one axis (floor rule, as PyTorch without ceil_mode). */
gint64 dcr_pool2d_out_size (gint64 in, int kernel, int stride, int pad_before, int pad_after);

/* y[N,Ho,Wo,C] = pool(x[N,H,W,C]); x and y share one dtype. */
gboolean dcr_op_pool2d (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, const DcrPool2dParams *params,
                        GError **error);

/* y[N,C] (or [N,1,1,C]) = mean of x[N,H,W,C] over H and W. */
gboolean dcr_op_global_avg_pool (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, GError **error);

void dcr_ref_pool2d (const float *x, gint64 n, gint64 h, gint64 w, gint64 c, float *y,
                     const DcrPool2dParams *params);
void dcr_ref_global_avg_pool (const float *x, gint64 n, gint64 h, gint64 w, gint64 c, float *y);

G_END_DECLS
