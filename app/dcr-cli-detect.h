/* dcr-cli-detect.h — what `dcr train`, `dcr scan`, `dcr eval` and batch
 * reports share: finding the model and bank, the detector set up from them,
 * feature extraction with terminal progress, and durations for people. */
#pragma once

#include "dcr-backbone.h"
#include "dcr-bank.h"
#include "dcr-detector.h"
#include "dcr-feature-cache.h"
#include "dcr-metrics.h"
#include "dcr-model.h"

#include <json-glib/json-glib.h>

/* The model at `path`, or the shipped default; a message saying how to get
 * one otherwise. */
DcrModel *dcr_cli_load_model (DcrContext *ctx, const char *path, GError **error);
/* The bank at `path` (or the shipped default), read-only unless writable. */
DcrBank *dcr_cli_open_bank (const char *path, DcrBackbone *bb, gboolean writable, GError **error);

/* Everything a detection needs, opened together: the device, backbone,
 * model and bank (checked against each other) and the detector, plus the
 * bank's prototypes by id for their provenance. */
typedef struct {
  DcrContext *ctx;
  DcrBackbone *bb;
  DcrModel *model;
  DcrBank *bank;
  DcrDetector *det;
  GHashTable *sources;  /* bank id → DcrPrototype (no features) */
  GPtrArray *protos;
} DcrCliSetup;

/* model / bank NULL → the shipped defaults (with a message saying how to
 * get one when there is none); the bank read-only unless writable. */
gboolean dcr_cli_setup_open (DcrCliSetup *s, const char *device, const char *backbone, DcrDtype dtype,
                             const char *model, const char *bank, gboolean writable, guint batch, GError **error);
void dcr_cli_setup_clear (DcrCliSetup *s);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (DcrCliSetup, dcr_cli_setup_clear)

/* The name of the backbone tap (block) that feature channel c comes from. */
const char *dcr_cli_tap_of (DcrBackbone *bb, guint channel);
/* idx[n]: the channels where the suspect differs most from its nearest
 * prototype, largest first. */
void dcr_cli_top_channels (const float *residual, guint dim, guint *idx, guint n);

typedef struct {
  const char *what;   /* "features" */
  gint64 start_us;
  gint64 last_us;
  gboolean quiet;
} DcrCliProgress;

/* A DcrFeatureProgress that prints "what: done/total (rate, ETA)" on stderr,
 * on one line on a terminal, every few seconds otherwise. */
gboolean dcr_cli_progress (guint done, guint total, gpointer user_data);
/* "1 h 02 min", "3 min 05 s", "12 s" */
char *dcr_cli_duration (double seconds);
/* A trainer's epoch callback (dcr_tile_train, dcr_cnn_train): "epoch E/N
 * loss L" on stderr at the first epoch, every fifth and the last, unless
 * quiet is GINT_TO_POINTER (TRUE). */
gboolean dcr_cli_epoch_report (guint epoch, guint epochs, double loss, gpointer quiet);
/* FALSE, with a message on stderr, when the folder that would hold the
 * output file `out` does not exist: a training run fails before its work,
 * not after it. */
gboolean dcr_cli_out_folder_exists (const char *out);

/* An evidence file hashed and decoded, opened read-only (mapped once for
 * both): the image and *sha256 (even when the decoding fails), or NULL with
 * *error when the file cannot be read or is no image dcr can decode. */
DcrImage *dcr_cli_load_image (const char *path, char **sha256, GError **error);

/* Features of every image under dir; prints files that failed. items and
 * features are allocated; returns the count. */
gboolean dcr_cli_folder_features (DcrBackbone *bb, const char *dir, gboolean use_cache, gboolean quiet,
                                  float **features, DcrFeatureItem **items, guint *n, GError **error);

void dcr_cli_json_add_double (JsonBuilder *b, const char *name, double v); /* null when not finite */
/* "threshold" and "inconclusive_band" [lo, hi] of a decision. */
void dcr_cli_json_add_thresholds (JsonBuilder *b, const DcrDecision *d);
/* A file's decision: its thresholds and "decision": "jpeg" (the model's JPEG
 * decision, for a JPEG file or one whose pixels carry an earlier JPEG's
 * grid), "other" (the model has a JPEG decision, the file is judged as not
 * a JPEG) or "single" (the model has one decision for every file). */
void dcr_cli_json_add_decision (JsonBuilder *b, DcrModel *m, gboolean jpeg);
/* That "decision" word. */
const char *dcr_cli_decision_name (DcrModel *m, gboolean jpeg);

/* Threads that decode images beside the GPU (`dcr scan`, `dcr report`):
 * one per processor, at most DCR_CLI_MAX_DECODERS. */
#define DCR_CLI_MAX_DECODERS 8
guint dcr_cli_default_decoders (void);
/* Images per GPU batch unless told (`dcr scan`, `dcr report`, the app's
 * batch reports): on lavapipe 8 was 2–10 % slower (BENCHMARKS.md). */
#define DCR_CLI_DEFAULT_BATCH 16
/* "jpeg_trace": null for a JPEG file; else the search for an earlier JPEG's
 * grid in the pixels: {"found", "contrast", "score", "origin": [x, y],
 * "blocks"} (dcr-jpeg-trace.h). */
void dcr_cli_json_add_jpeg_trace (JsonBuilder *b, gboolean jpeg_file, const DcrJpegTrace *t);
/* One sentence on an earlier JPEG's grid for text output ("" when not found). */
char *dcr_cli_jpeg_trace_text (const DcrJpegTrace *t);

/* "detail": null for a detection without pixels; else {"value", "low",
 * "threshold"} (dcr-detail.h): low says the verdict is not to be trusted. */
void dcr_cli_json_add_detail (JsonBuilder *b, float detail);
/* One sentence of caution for text output when the detail is low ("" else). */
char *dcr_cli_detail_text (float detail);

/* path relative to dir when it lies under it (both canonicalised), else NULL:
 * how a manifest's relative names are matched to the files given. */
char *dcr_cli_path_under (const char *dir, const char *path);
/* The manifest's value in column col for the file `path`: by its path, by
 * unique basename, or by its path relative to mf_dir (the manifest's
 * canonical folder); NULL when it is not listed. */
const char *dcr_cli_manifest_value (const DcrManifest *mf, const char *mf_dir, gint col, const char *path);
/* "x,y,w,h" (a manifest's `partial` rectangle): non-negative integers, w
 * and h ≥ 1. */
gboolean dcr_cli_parse_rect (const char *s, gint64 r[4]);
/* An integer member and an array of strings (an empty array for NULL). */
void dcr_cli_json_add_int (JsonBuilder *b, const char *name, gint64 v);
void dcr_cli_json_add_strv (JsonBuilder *b, const char *name, char **v);

/* "p_heads" and, with a tile head, "tiles": {"score", "max"[, "map": {"rows",
 * "cols", "tiles": [{"x", "y", "w", "h", "score"}, …]}]} — the map when the
 * detection has one, its tiles in the pixels of a width × height image. */
void dcr_cli_json_add_tiles (JsonBuilder *b, const DcrDetection *d, guint width, guint height);
/* With the forensic CNN, "cnn": {"mean", "top", "max" (its raw logits,
 * dcr-detector.h), "p_top": σ(top)} and, when the detection kept its blocks,
 * "cnn_map": [{"x", "y", "w", "h", "score" (the block's mean logit), "p":
 * σ(score)}, …] (row-major; dcr_cnn_block_rect in a width × height image). */
void dcr_cli_json_add_cnn (JsonBuilder *b, const DcrDetection *d, const DcrCnn *cnn, guint width, guint height);
