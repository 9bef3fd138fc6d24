/* dcr-op-preprocess.h — the image → network-input step on the GPU: an 8-bit
 * RGB image of any size is resized, cropped and normalised into one slice of
 * an NHWC float batch, matching torchvision's tensor transforms. */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

typedef enum {
  /* The triangle filter, widened by the scale factor when downscaling:
   * torch.nn.functional.interpolate(mode='bilinear', align_corners=False,
   * antialias=True) on float pixels, i.e. torchvision's resize(tensor,
   * antialias=True). PIL's BILINEAR uses the same filter but rounds to 8 bits
   * after each pass (differences up to ~1/255). When upscaling it equals
   * plain bilinear away from the border. */
  DCR_RESIZE_ANTIALIAS,
  /* interpolate(mode='bilinear', align_corners=False, antialias=False). */
  DCR_RESIZE_BILINEAR,
} DcrResizeFilter;

typedef struct {
  gint64 resize_h, resize_w;  /* the resized image's size; 0 = the input's (no resize) */
  gint64 crop_top, crop_left; /* origin of the output window in the resized image */
  DcrResizeFilter filter;
  /* out = (v / divisor − mean[c]) / std[c] for v in 0..255, RGB order.
   * divisor 0 = 255; std 0 = 1. ImageNet (torchvision ToTensor + Normalize):
   * dcr_preprocess_set_imagenet. Keras MobileNetV2's x / 127.5 − 1:
   * dcr_preprocess_set_keras_tf (divisor 127.5, mean 1, std 1, evaluated in
   * that order, so it is the same expression, not a rescaled one). */
  float divisor;
  float mean[3], std[3];
  gint64 batch_index;         /* the slice n of y [N, OH, OW, 3] to write */
} DcrPreprocessParams;

void dcr_preprocess_set_imagenet (DcrPreprocessParams *p);
void dcr_preprocess_set_keras_tf (DcrPreprocessParams *p);
/* torchvision's Resize(short_side) + CenterCrop((crop_h, crop_w)): the
 * shorter side becomes short_side, the longer int(short_side·long/short),
 * and the crop is centred with Python's round(). */
void dcr_preprocess_set_resize_short_crop (DcrPreprocessParams *p, gint64 img_h, gint64 img_w,
                                           gint64 short_side, gint64 crop_h, gint64 crop_w);

/* A DCR_U8 [h, w, 3] tensor whose buffer is padded to a multiple of 4 bytes
 * (the shader reads 32-bit words); dcr_tensor_free frees it. Images with
 * h·w a multiple of 4 may use dcr_tensor_new as well. */
DcrTensor *dcr_image_tensor_new (DcrContext *ctx, DcrPoolKind pool, gint64 h, gint64 w, GError **error);
/* n images of h × w one after another, DCR_U8 [n, h, w, 3], the buffer
 * padded to a multiple of 4 bytes: a batch that the image ops (preprocess,
 * forensic, local, the CNN) take in one dispatch each. */
DcrTensor *dcr_images_tensor_new (DcrContext *ctx, DcrPoolKind pool, gint64 n, gint64 h, gint64 w, GError **error);

/* image: DCR_U8 [H, W, 3], or [M, H, W, 3] for M images of one size in one
 * dispatch (to slices batch_index … batch_index + M − 1); y: f32 or f16 [N,
 * OH, OW, 3] (or [OH, OW, 3] with batch_index 0). The crop window must lie
 * inside the resized image. */
gboolean dcr_op_preprocess (DcrSeq *seq, const DcrTensor *image, DcrTensor *y,
                            const DcrPreprocessParams *params, GError **error);

/* Reference: writes the [oh, ow, 3] slice (batch_index is ignored). */
void dcr_ref_preprocess (const guint8 *image, gint64 h, gint64 w, float *y, gint64 oh, gint64 ow,
                         const DcrPreprocessParams *params);

G_END_DECLS
