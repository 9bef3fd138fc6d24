/* dcr-augment.h — training augmentations applied to an image before the
 * frozen backbone: random crop (no resampling, so generation traces keep
 * their pixel grid), horizontal flip, Gaussian blur and JPEG re-encoding at
 * a random quality, in that order (a picture is cropped and edited, then
 * saved). Each training image gets a few augmented "views"; the parameters
 * of view v of a file are drawn from (its SHA-256, v, the seed), so they
 * are the same on every run and their backbone features can be cached on
 * disk under a key that names them. All of it runs on the CPU: it is a few
 * milliseconds an image against the backbone's tens. */
#pragma once

#include "dcr-image.h"

G_BEGIN_DECLS

typedef struct {
  guint views;          /* augmented views per training image; 0: augmentation off */
  double crop_p;        /* probability of a random crop … */
  double crop_min;      /* … keeping this fraction of each side at least, in (0, 1] */
  double flip_p;        /* horizontal flip */
  double blur_p;        /* Gaussian blur … */
  double blur_sigma;    /* … with σ uniform in [0.2, blur_sigma] pixels */
  double jpeg_p;        /* JPEG re-encoding … */
  int jpeg_qmin, jpeg_qmax; /* … at a quality uniform in [qmin, qmax] */
  guint64 seed;
} DcrAugmentConfig;

/* The defaults behind "--augment default": 2 views; crop 0.5 (≥ 0.75 of a
 * side), flip 0.5, blur 0.1 (σ ≤ 1), JPEG 0.5 (quality 60–95). */
void dcr_augment_config_default (DcrAugmentConfig *c);
/* "default", or comma-separated settings over the defaults:
 * "views=N,crop=P:MIN,flip=P,blur=P:SIGMA,jpeg=P:QMIN-QMAX,seed=S";
 * "none" or views=0 turns augmentation off. Clear errors on bad input. */
gboolean dcr_augment_config_parse (const char *spec, DcrAugmentConfig *c, GError **error);
/* The canonical spelling of a configuration (parses back to it), for
 * model metadata and progress lines. */
char *dcr_augment_config_to_string (const DcrAugmentConfig *c);

/* One view's parameters; crop and its position as fractions so that they
 * can be drawn (and the cache looked up) before the image is decoded. */
typedef struct {
  gboolean crop;
  guint crop_q;         /* kept fraction of each side, in 64ths (16 … 64) */
  guint crop_x, crop_y; /* position of the window in the slack, in 256ths */
  gboolean flip;
  guint blur_ms;        /* σ in thousandths of a pixel; 0: no blur */
  int quality;          /* JPEG quality; 0: no re-encoding */
} DcrAugmentParams;

/* The parameters of view `view` (≥ 1) of the file whose SHA-256 (hex) is
 * given. */
void dcr_augment_draw (const DcrAugmentConfig *c, const char *sha256, guint view, DcrAugmentParams *p);
/* TRUE when the view changes nothing (its features are the clean ones). */
gboolean dcr_augment_is_identity (const DcrAugmentParams *p);
/* A short canonical text naming the parameters, e.g. "c56@12,200;f;b650;q72"
 * ("none" for the identity): the feature cache's key for the view. */
char *dcr_augment_params_key (const DcrAugmentParams *p);
/* The augmented copy of img. A crop never goes below 36 pixels a side (the
 * backbone's minimum) unless the image already is smaller. Fails only when
 * the JPEG round trip fails. */
DcrImage *dcr_augment_apply (const DcrImage *img, const DcrAugmentParams *p, GError **error);

/* Separable Gaussian blur of an RGB image with σ (pixels), kernel radius
 * ⌈3σ⌉, borders mirrored (reflect-101), rounded to 8 bits. Exposed for the
 * tests' reference. */
DcrImage *dcr_image_gaussian_blur (const DcrImage *img, double sigma);

G_END_DECLS
