/* dcr-detector.h — the whole detector in single mode, as scan, eval and the
 * app use it: backbone features of a batch of images (or features already
 * computed), GPU retrieval of the k nearest real prototypes, the heads, and
 * per image the verdict with its evidence. */
#pragma once

#include "dcr-backbone.h"
#include "dcr-bank.h"
#include "dcr-detail.h"
#include "dcr-jpeg-trace.h"
#include "dcr-model.h"
#include "dcr-op-reduce.h"

G_BEGIN_DECLS

typedef struct {
  DcrVerdict verdict;
  /* Judged as a JPEG: its verdict follows the model's JPEG decision when the
   * model has one (dcr_model_decision). The file is a JPEG, or its pixels
   * carry the grid of an earlier JPEG compression (jpeg_trace). */
  gboolean jpeg;
  /* dcr_detector_run, for an image that is not a JPEG file: the search for
   * an earlier JPEG's grid in its pixels (dcr-jpeg-trace.h). Zeros for a
   * JPEG file and for detections from features. */
  DcrJpegTrace jpeg_trace;
  /* dcr_detector_run: how much fine detail the image has (dcr-detail.h; NaN
   * for detections from features). dcr_detail_is_low: the model's verdicts
   * on such images are not to be trusted (a caution; nothing else uses it). */
  float detail;
  float p_fake;
  float anomaly;
  float logits[2];
  guint k;                        /* prototypes compared with */
  gint64 ids[DCR_TOPK_MAX];       /* bank ids, nearest first */
  float similarity[DCR_TOPK_MAX]; /* cosine similarity */
  float attention[DCR_TOPK_MAX];  /* the attention weight on each */
  float *residual;                /* dim floats: |f̂ − r̂₁| per channel (owned) */
  float p_heads;                  /* the heads' own p_fake, before score fusion (= p_fake without it) */
  /* The tile head's evidence, with a backbone that has one (dcr-tile-head.h):
   * its two feature columns (standardised like every column: the mean of the
   * 4 highest tile scores, the highest) and, when the detector keeps tile
   * maps and the detection came from an image, the score of every local-v1
   * tile, row-major (tile_rows × tile_cols; dcr_tile_rect places them). */
  gboolean has_tiles;
  float tile_score, tile_max;
  guint tile_rows, tile_cols;
  float *tile_logits;             /* owned, or NULL */
  /* The forensic CNN's evidence, with a backbone that has one (dcr-cnn.h),
   * for detections from images (dcr_detector_run; from features alone there
   * are no pixels and has_cnn stays FALSE): its three columns as the CNN's
   * raw logits — the backbone's values before the default backbone's
   * per-column standardisation (dcr_backbone_run_raw_features), not the
   * standardised row the heads read: the mean logit of the map, the mean of
   * the 4 highest block means, the highest block mean (σ of a logit is the
   * CNN's own P(generated)). When the detector keeps maps, also the mean
   * logit of every block, row-major (cnn_rows × cnn_cols, numbered as
   * dcr_cnn_columns does; dcr_cnn_block_rect places them). */
  gboolean has_cnn;
  float cnn_mean, cnn_top, cnn_max;
  guint cnn_rows, cnn_cols;
  float *cnn_blocks;              /* owned, or NULL */
} DcrDetection;

void dcr_detection_clear (DcrDetection *d);
/* The CNN's highest block (the first of equals) of a detection with kept
 * blocks, on its width × height image: its index, its pixels (x, y, w, h;
 * dcr_cnn_block_rect) and its mean logit. FALSE when there are none, or they
 * do not fit that image's block grid. */
gboolean dcr_detection_cnn_highest (const DcrDetection *d, const DcrCnn *cnn, guint width, guint height,
                                    guint *block, gint64 rect[4], float *logit);

typedef struct _DcrDetector DcrDetector;

/* Checks that the model and the bank were made for this backbone, loads
 * the bank's enabled prototypes to the GPU and records the passes for up to
 * `batch` images. Storage follows the backbone's dtype. */
DcrDetector *dcr_detector_new (DcrBackbone *bb, DcrModel *m, DcrBank *bank, guint batch, GError **error);
void dcr_detector_free (DcrDetector *det);
guint dcr_detector_batch (DcrDetector *det);
/* Prototypes compared with per image: min(model k, enabled prototypes). */
guint dcr_detector_k (DcrDetector *det);
gsize dcr_detector_bank_count (DcrDetector *det);
/* Reloads the prototypes if the bank changed since (and re-records). */
gboolean dcr_detector_sync (DcrDetector *det, GError **error);

/* Whether dcr_detector_run fills DcrDetection.tile_logits and cnn_blocks
 * (off by default: one more download per image and map). */
void dcr_detector_set_tile_maps (DcrDetector *det, gboolean keep);

/* n ≤ batch images; out[n] (clear each with dcr_detection_clear). Each
 * image that is not a JPEG file is searched for an earlier JPEG's grid
 * (dcr_jpeg_trace_find, ~2 ms). The images go to the backbone's slots in
 * order of size, so that same-sized ones are analysed together (one
 * dispatch an op); out[] is in the order given, and every result is what
 * the image gets alone. */
gboolean dcr_detector_run (DcrDetector *det, DcrImage *const *images, guint n, DcrDetection *out, GError **error);
/* The same with those searches, and the measures of fine detail
 * (dcr_detail_measure), done already (on the threads that decoded the
 * images, say): traces[i] is used for each image that is not a JPEG file,
 * details[i] for every image. traces or details NULL: done here. */
gboolean dcr_detector_run_traced (DcrDetector *det, DcrImage *const *images, const DcrJpegTrace *traces,
                                  const float *details, guint n, DcrDetection *out, GError **error);
/* That work for one image, as a decoding thread does it for
 * dcr_detector_run_traced: the search for an earlier JPEG's grid (not for a
 * JPEG file, whose *trace is left as it is) and the fine-detail measure. */
void dcr_detector_prepare (const DcrImage *img, DcrJpegTrace *trace, float *detail);
/* The same from backbone features [n, dim] (e.g. from the feature cache);
 * jpeg [n] says which to judge as JPEGs (dcr_feature_item_judged_as_jpeg;
 * NULL: none). */
gboolean dcr_detector_run_features (DcrDetector *det, const float *features, const gboolean *jpeg, guint n,
                                    DcrDetection *out, GError **error);

/* Where the shipped model and bank are looked for: the source tree
 * (uninstalled builds), then the installed data directory — or only
 * $DCR_DATA_DIR when it is set — as models/default/model.safetensors and
 * models/default/bank.dcrbank. NULL when none exists. */
char *dcr_detector_default_model_path (void);
char *dcr_detector_default_bank_path (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrDetector, dcr_detector_free)

G_END_DECLS
