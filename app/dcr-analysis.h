/* dcr-analysis.h — the app's one door to the engine: loads the detector
 * (once, lazily, off the main thread) and analyses one file asynchronously
 * into everything the inspect view shows. */
#pragma once

#include <gtk/gtk.h>

#include "dcr-detector.h"
#include "dcr-file-facts.h"
#include "dcr-zoom-view.h"

G_BEGIN_DECLS

#define DCR_ANALYSIS_ERROR (dcr_analysis_error_quark ())
GQuark dcr_analysis_error_quark (void);

typedef enum {
  DCR_ANALYSIS_ERROR_NO_MODEL, /* no model configured and none shipped */
  DCR_ANALYSIS_ERROR_NO_BANK,  /* no bank configured and none shipped */
  DCR_ANALYSIS_ERROR_FAILED,
} DcrAnalysisError;

/* One of the k nearest real prototypes, with its provenance. */
typedef struct {
  gint64 id;
  char *source;
  char *sha256;        /* may be NULL */
  GDateTime *added;    /* may be NULL */
  GdkTexture *thumbnail; /* may be NULL */
  float similarity;
  float attention;
} DcrAnalysisPrototype;

typedef struct {
  char *name;
  guint offset, width;
} DcrAnalysisTap;

/* Stability: the image is scored again as it would be after ordinary
 * handling — re-encoded as JPEG at quality 90 and 75 (and decoded back), and
 * halved in size — by the same detector in the same batch. */
typedef enum {
  DCR_STABILITY_JPEG_Q90,
  DCR_STABILITY_JPEG_Q75,
  DCR_STABILITY_HALF,
  DCR_STABILITY_N_VARIANTS,
} DcrStabilityVariant;

/* "JPEG q90 re-encoding", "JPEG q75 re-encoding", "0.5× resize" */
const char *dcr_stability_variant_name (DcrStabilityVariant v);

/* Halving an image whose shorter side is under this says nothing about
 * ordinary handling (and can fall below what the backbone accepts), so
 * that variant is skipped for such images. */
#define DCR_STABILITY_HALF_MIN_SIDE 128

typedef struct {
  float p_fake;
  DcrVerdict verdict;
  gboolean skipped; /* not scored (see DCR_STABILITY_HALF_MIN_SIDE); ignored by the rule */
} DcrStabilityScore;

/* The rule: a real or fake verdict stands only when every variant gets the
 * same verdict. Any variant that differs — the opposite verdict, or
 * inconclusive — makes the result DCR_VERDICT_INCONCLUSIVE, and *reason (if
 * not NULL) names each one, e.g. "fake as saved, real after JPEG q75
 * re-encoding". An inconclusive verdict stays inconclusive and needs no
 * reason. Skipped variants take no part. *reason is NULL when the verdict
 * is returned unchanged. */
DcrVerdict dcr_stability_verdict (DcrVerdict as_saved, const DcrStabilityScore variants[DCR_STABILITY_N_VARIANTS],
                                  char **reason);

/* The tile head's "where" map of one detection on its width × height image
 * (the image the detector saw, orientation applied). */
typedef struct {
  DcrOverlayRect *rects; /* one per tile, row-major, placed by dcr_tile_rect; strength σ(logit) */
  guint n;
  guint strongest;       /* index of the highest tile (the first of equals) */
  float top_mean;        /* mean strength of the min(DCR_TILES_TOPK, n) highest tiles */
} DcrTileMap;

typedef struct {
  /* the file */
  char *path;
  char *name;
  guint64 size;
  char *format;
  guint width, height;
  char *sha256;
  char *exif_make, *exif_model, *exif_date; /* NULL when absent */
  DcrFileFacts *facts; /* EXIF/XMP through gexiv2, for display */
  guint orientation;   /* the EXIF orientation the decoder applied, 1–8 (1: none) */
  GdkTexture *image;   /* as decoded, orientation applied */

  /* the verdict and its evidence; with a tile head, detection.tile_logits
   * holds the image's tile map (dcr_tile_map_from_detection); with the
   * forensic CNN, cnn_map is its blocks placed on the image
   * (dcr_cnn_map_from_detection; empty without) */
  DcrTileMap cnn_map;
  DcrDetection detection;
  gboolean score_fusion; /* detection.p_fake fuses a forensic score (p_heads: the heads alone) */
  char *fusion_what;     /* which, as the score line names it (dcr_analysis_fusion_name); NULL without */
  gboolean fusion_jpeg;  /* weighed by the model's fusion weights for JPEG files (a file judged as JPEG) */
  guint dim;           /* floats in detection.residual */
  float threshold, band_lo, band_hi;   /* the decision that gave the verdict */
  gboolean jpeg_decision;              /* it is the model's decision for JPEG files */
  GPtrArray *prototypes; /* of DcrAnalysisPrototype, nearest first */
  GArray *taps;          /* of DcrAnalysisTap, by offset */

  /* stability: detection.verdict is the verdict after dcr_stability_verdict;
   * verdict_as_saved the detector's verdict on the file as it is */
  DcrStabilityScore stability[DCR_STABILITY_N_VARIANTS];
  DcrVerdict verdict_as_saved;
  char *stability_reason; /* why the verdict became inconclusive, or NULL */

  /* what produced it */
  char *model_name, *bank_name, *device_name, *backbone_id;
  double elapsed_ms;   /* decode + detector, not the one-time loading */
  double load_ms;      /* the one-time loading, 0 when it was already done */
} DcrAnalysisResult;

void dcr_analysis_result_free (DcrAnalysisResult *r);
/* The tap (block) that channel c of the feature comes from, or NULL. */
const DcrAnalysisTap *dcr_analysis_result_tap (const DcrAnalysisResult *r, guint channel);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrAnalysisResult, dcr_analysis_result_free)


/* Fills *map and returns TRUE when d has a tile map (has_tiles, logits kept)
 * whose rows × columns are those of the image's window; otherwise FALSE and
 * *map is empty. Clear with dcr_tile_map_clear. */
gboolean dcr_tile_map_from_detection (const DcrDetection *d, guint width, guint height, DcrTileMap *map);
void dcr_tile_map_clear (DcrTileMap *map);
/* The same for the forensic CNN's blocks (detection.cnn_blocks, kept maps):
 * one rect per block placed by dcr_cnn_block_rect, strength σ(mean logit),
 * top_mean over the DCR_CNN_TOPK highest; FALSE (and *map empty) without
 * blocks or when they do not fit the image's block grid. */
gboolean dcr_cnn_map_from_detection (const DcrDetection *d, const DcrCnn *cnn, guint width, guint height,
                                     DcrTileMap *map);
/* What a model's score fusion fuses with the heads' logit on this backbone,
 * as the inspect view's score line and the batch page name it: "the CNN's
 * top-block score", "the tile score" (by the model's fusion_column against
 * dcr_backbone_cnn_column + 1 and dcr_backbone_tiles_column), else "feature
 * column N"; NULL when the model has no fusion. */
char *dcr_analysis_fusion_name (const DcrModelConfig *cfg, DcrBackbone *bb);

#define DCR_TYPE_ANALYSIS (dcr_analysis_get_type ())
G_DECLARE_FINAL_TYPE (DcrAnalysis, dcr_analysis, DCR, ANALYSIS, GObject)

/* model_path / bank_path NULL or "" → the shipped defaults; device as the
 * GSettings key (NULL/"" → preferred). Nothing is loaded yet. */
DcrAnalysis *dcr_analysis_new (const char *device, const char *model_path, const char *bank_path);
/* The model file that would be used, or NULL when there is none at all. */
char *dcr_analysis_resolve_model_path (const char *model_path);

void dcr_analysis_run_async (DcrAnalysis *self, GFile *file, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data);
DcrAnalysisResult *dcr_analysis_run_finish (DcrAnalysis *self, GAsyncResult *result, GError **error);

G_END_DECLS
