/* dcr-tile-head.h — the tile head ("tiles-v1"): a small learned detector of
 * *partly* regenerated images. It scores every local-v1 tile of the window
 * (dcr-op-local.h) by how its residual statistics differ from the image's
 * own typical tile — a contrast within the image, so that a super-resolved
 * rectangle stands out against the real pixels around it — and gives the
 * backbone two columns: the mean of the highest tile scores and the highest.
 *
 * Inputs per tile t of the n = nth × ntw local-v1 tiles (row-major), 69 of
 * them: x[t][c·23 + v] = the tile's value t_v of channel c (c = 0 luma,
 * 1 R − G, 2 B − G; v = 0…22), as local_stats.comp leaves them in the
 * local scratch (slot layout in dcr-op-local.h).
 * Relative inputs: r[t][j] = x[t][j] − med_j, med_j the median of x[·][j]
 * over the image's tiles (n odd: the middle value; n even: the mean of the
 * two middle values; n = 1: the value, so r = 0).
 * Head, hidden width H (1…DCR_TILES_MAX_HIDDEN):
 *   z[t][j]  = (r[t][j] − mean[j]) / std[j]
 *   logit[t] = b2 + Σ_h w2[h]·max(0, b1[h] + Σ_j w1[h][j]·z[t][j])
 * Columns (DCR_TILES_DIM): 0 = the mean of the min(4, n) largest logits,
 * 1 = the largest logit.
 *
 * File (safetensors, f32 tensors): "mean" [69], "std" [69], "w1" [H, 69],
 * "b1" [H], "w2" [1, H], "b2" [1]; metadata "format" = "dcr-tile-head",
 * "version" = "tiles-v1", optionally "training" (JSON text). Trained by
 * `dcr train-tiles` (dcr-tile-train.h). */
#pragma once

#include "dcr-op-local.h"

G_BEGIN_DECLS

#define DCR_TILES_NIN (3 * DCR_LOCAL_NVAL) /* 69 inputs per tile */
#define DCR_TILES_DIM 2                    /* backbone columns */
#define DCR_TILES_TOPK 4
#define DCR_TILES_MAX_HIDDEN 256

#define DCR_TILE_HEAD_ERROR (dcr_tile_head_error_quark ())
GQuark dcr_tile_head_error_quark (void);
typedef enum {
  DCR_TILE_HEAD_ERROR_FILE, /* unreadable, malformed, or not a tile head */
} DcrTileHeadError;

typedef struct {
  guint hidden;
  float mean[DCR_TILES_NIN], std[DCR_TILES_NIN];
  float *w1; /* [hidden][DCR_TILES_NIN] */
  float *b1; /* [hidden] */
  float *w2; /* [hidden] */
  float b2;
  char *sha256;   /* of the file it was loaded from (NULL when built in memory) */
  char *training; /* the file's "training" metadata, or NULL */
} DcrTileHead;

/* Zero weights, mean 0, std 1. */
DcrTileHead *dcr_tile_head_new (guint hidden);
void dcr_tile_head_free (DcrTileHead *h);
/* Checks everything (format, version, shapes, H range, finite values,
 * std > 0) and says what is wrong in a sentence a person can act on. */
DcrTileHead *dcr_tile_head_load (const char *path, GError **error);
/* Atomic (dcr_safetensors_write); training: JSON text or NULL. */
gboolean dcr_tile_head_save (const DcrTileHead *h, const char *path, const char *training, GError **error);

/* The weights packed for the GPU (f32): mean[69], 1/std[69], w1[H·69],
 * b1[H], w2[H], b2 — DCR_TILES_PACKED (H) floats. */
#define DCR_TILES_PACKED(H) (2 * DCR_TILES_NIN + (H) * (DCR_TILES_NIN + 2) + 1)
void dcr_tile_head_pack (const DcrTileHead *h, float *packed);

/* x[n][69] from one image's local scratch slot (host copy of the
 * DCR_LOCAL_ACC_SIZE floats dcr_op_local wrote). */
void dcr_tile_values_from_acc (const float *acc_slot, guint ntiles, float *x);
/* Tile `tile` (row-major) of the window in image pixels: its anchors'
 * pixels, x = left + 6 + b·tw, y = top + 6 + a·th, tw × th of them. */
void dcr_tile_rect (const DcrForensicWindow *win, guint tile, gint64 *x, gint64 *y, gint64 *w, gint64 *h);

/* r[n][69] = x − the per-column median over the n tiles (above). */
void dcr_tile_relative (const float *x, guint ntiles, float *r);

/* Reference in double from the tile values: logits[n] (may be NULL) and
 * the two columns. */
void dcr_ref_tile_head (const DcrTileHead *h, const float *x, guint ntiles, float *logits,
                        float out[DCR_TILES_DIM]);

/* GPU: reads the tile values of acc's slot `slot` (written by dcr_op_local
 * earlier in the same sequence), ntiles of them, and the packed weights
 * (f32 [DCR_TILES_PACKED (hidden)]); writes the two columns to y[row,
 * column …] (f32 or f16) and, when logits is not NULL (f32, at least
 * (slot + 1) · DCR_LOCAL_MAX_TILES elements), the tile logits to
 * logits[slot · DCR_LOCAL_MAX_TILES + t]. */
gboolean dcr_op_tile_head (DcrSeq *seq, const DcrTensor *acc, guint slot, guint ntiles, const DcrTensor *packed,
                           guint hidden, DcrTensor *logits, DcrTensor *y, gint64 row, gint64 column,
                           GError **error);
/* The same for n images with ntiles tiles each (slots slot … slot + n − 1,
 * rows row … row + n − 1) in one dispatch. */
gboolean dcr_op_tile_head_batch (DcrSeq *seq, const DcrTensor *acc, guint slot, guint n, guint ntiles,
                                 const DcrTensor *packed, guint hidden, DcrTensor *logits, DcrTensor *y, gint64 row,
                                 gint64 column, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrTileHead, dcr_tile_head_free)

G_END_DECLS
