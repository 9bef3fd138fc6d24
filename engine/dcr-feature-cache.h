/* dcr-feature-cache.h — backbone features of image files, computed once:
 * each file is hashed (SHA-256) and decoded read-only, and its feature is
 * kept on disk under $XDG_CACHE_HOME/dcr-forensics/features/<backbone id>-
 * <dtype>/ by that hash, so training, evaluation and bank building never
 * run the backbone twice over the same bytes. Also lists image folders. */
#pragma once

#include "dcr-augment.h"
#include "dcr-backbone.h"
#include "dcr-jpeg-trace.h"

G_BEGIN_DECLS

typedef struct {
  char *path;
  char *sha256;     /* NULL when the file could not be read */
  guint width, height; /* 0 when served from the cache without decoding */
  gboolean cached;  /* the feature came from the cache */
  gboolean jpeg;    /* the file is a JPEG (by its first bytes) */
  /* for a file other than JPEG: the grid of an earlier JPEG compression in
   * its pixels (dcr-jpeg-trace.h; cached with the feature); zeros for a JPEG */
  DcrJpegTrace jpeg_trace;
  GError *error;    /* why this file has no feature (NULL on success) */
  GBytes *thumbnail; /* PNG, from dcr_features_extract_thumbnails for a decoded file; else NULL */
} DcrFeatureItem;

void dcr_feature_item_clear (DcrFeatureItem *it);

/* Whether the model's JPEG decision applies to the file: it is a JPEG, or
 * its pixels carry an earlier JPEG compression's grid. */
static inline gboolean
dcr_feature_item_judged_as_jpeg (const DcrFeatureItem *it)
{
  return it->jpeg || it->jpeg_trace.found;
}

/* FALSE cancels. */
typedef gboolean (*DcrFeatureProgress) (guint done, guint total, gpointer user_data);

/* The cache directory of a backbone and storage dtype (not created). */
char *dcr_feature_cache_dir (DcrBackbone *bb);

/* features [n, dim] for paths[n] (rows of files that failed are zeros, with
 * the reason in items[i].error); items[n] are filled in and must be
 * cleared. batch 0 → 8. The function fails only on GPU errors or when
 * cancelled; unreadable files are per-item errors. */
gboolean dcr_features_extract (DcrBackbone *bb, const char *const *paths, guint n, gboolean use_cache, guint batch,
                               float *features, DcrFeatureItem *items, DcrFeatureProgress progress,
                               gpointer user_data, GError **error);

/* The same for augmented view `view` (≥ 1) of each file under `aug`
 * (dcr-augment.h): each file is decoded, augmented and run through the
 * backbone, and the feature is cached under the view's parameters. A view
 * whose parameters change nothing is the clean feature (and its cache
 * entry). aug NULL or view 0: dcr_features_extract. */
gboolean dcr_features_extract_view (DcrBackbone *bb, const char *const *paths, guint n, gboolean use_cache,
                                    guint batch, const DcrAugmentConfig *aug, guint view, float *features,
                                    DcrFeatureItem *items, DcrFeatureProgress progress, gpointer user_data,
                                    GError **error);

/* dcr_features_extract that also makes, for every file it decodes, a PNG
 * thumbnail whose longer side is at most thumb_side (dcr_image_thumbnail_png)
 * in items[i].thumbnail — from the same decoded pixels, so that adding to a
 * bank decodes each file once. A file served from the cache is not decoded:
 * its thumbnail is NULL. */
gboolean dcr_features_extract_thumbnails (DcrBackbone *bb, const char *const *paths, guint n, gboolean use_cache,
                                          guint batch, guint thumb_side, float *features, DcrFeatureItem *items,
                                          DcrFeatureProgress progress, gpointer user_data, GError **error);

/* A new reference to it->thumbnail, or, for a file that was served from
 * the cache, a thumbnail made by decoding it again (read-only); NULL when it
 * will not decode. Thumbnails are provenance only: callers go on without. */
GBytes *dcr_feature_item_thumbnail (const DcrFeatureItem *it, guint thumb_side);

/* The image files (.png, .jpg, .jpeg, any case) under dir, recursively,
 * sorted; hidden entries skipped. */
GPtrArray *dcr_list_images (const char *dir, GError **error);

G_END_DECLS
