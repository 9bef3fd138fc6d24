/* dcr-feature-cache.c — hashing, decoding and batched feature extraction
 * with the on-disk cache (one small file per backbone and image hash:
 * "DCRG", u32 dim, u32 width, u32 height, the file's JPEG trace as u32
 * found | origin_x << 8 | origin_y << 16, u32 blocks, f32 contrast, f32
 * score, then dim f32; all little-endian), and the image-folder listing.
 * Entries of the first format ("DCRF", no trace) are misses. */
#include "dcr-feature-cache.h"

#include <gio/gio.h>
#include <math.h>
#include <string.h>

#define CACHE_MAGIC "DCRG"
#define CACHE_HEADER 32

void
dcr_feature_item_clear (DcrFeatureItem *it)
{
  g_clear_pointer (&it->path, g_free);
  g_clear_pointer (&it->sha256, g_free);
  g_clear_error (&it->error);
  g_clear_pointer (&it->thumbnail, g_bytes_unref);
}

char *
dcr_feature_cache_dir (DcrBackbone *bb)
{
  g_autofree char *name = g_strdup_printf ("%s-%s", dcr_backbone_id (bb), dcr_dtype_name (dcr_backbone_dtype (bb)));
  g_strcanon (name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-", '_');
  return g_build_filename (g_get_user_cache_dir (), "dcr-forensics", "features", name, NULL);
}

/* The clean feature of a file is <sha256>.feat; an augmented view's is
 * <sha256>-<first 16 hex digits of SHA-256(params key)>.feat. */
static char *
cache_file (const char *dir, const char *sha256, const char *aug_key)
{
  char sub[3] = { sha256[0], sha256[1], 0 };
  g_autofree char *h = aug_key ? g_compute_checksum_for_string (G_CHECKSUM_SHA256, aug_key, -1) : NULL;
  if (h)
    h[16] = 0;
  g_autofree char *leaf = g_strconcat (sha256, h ? "-" : "", h ? h : "", ".feat", NULL);
  return g_build_filename (dir, sub, leaf, NULL);
}

static guint32
le_u32 (const char *p)
{
  guint32 u;
  memcpy (&u, p, 4);
  return GUINT32_FROM_LE (u);
}

static float
le_f32 (const char *p)
{
  guint32 u = le_u32 (p);
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static void
put_u32 (char *p, guint32 u)
{
  u = GUINT32_TO_LE (u);
  memcpy (p, &u, 4);
}

static void
put_f32 (char *p, float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  put_u32 (p, u);
}

static gboolean
cache_read (const char *dir, DcrFeatureItem *it, const char *aug_key, guint dim, float *out)
{
  g_autofree char *path = cache_file (dir, it->sha256, aug_key);
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &data, &len, NULL) || len != CACHE_HEADER + (gsize) dim * 4 ||
      memcmp (data, CACHE_MAGIC, 4) != 0 || le_u32 (data + 4) != dim)
    return FALSE;
  guint32 flags = le_u32 (data + 16);
  DcrJpegTrace tr = {
    .origin_x = (flags >> 8) & 0xff,
    .origin_y = (flags >> 16) & 0xff,
    .blocks = le_u32 (data + 20),
    .contrast = le_f32 (data + 24),
    .score = le_f32 (data + 28),
  };
  if (tr.origin_x > 7 || tr.origin_y > 7 || !isfinite (tr.contrast) || !isfinite (tr.score))
    return FALSE;
  tr.found = dcr_jpeg_trace_stands_out (&tr); /* the stored bit is for readers; this build's rule decides */
  for (guint i = 0; i < dim; i++)
    {
      out[i] = le_f32 (data + CACHE_HEADER + i * 4);
      if (!isfinite (out[i]))
        return FALSE;
    }
  it->width = le_u32 (data + 8);
  it->height = le_u32 (data + 12);
  it->jpeg_trace = tr;
  it->cached = TRUE;
  return TRUE;
}

/* Best effort: a cache that cannot be written only costs time later. */
static void
cache_write (const char *dir, const DcrFeatureItem *it, const char *aug_key, guint dim, const float *f)
{
  g_autofree char *path = cache_file (dir, it->sha256, aug_key);
  g_autofree char *parent = g_path_get_dirname (path);
  if (g_mkdir_with_parents (parent, 0700) != 0)
    return;
  g_autofree char *data = g_malloc (CACHE_HEADER + (gsize) dim * 4);
  const DcrJpegTrace *tr = &it->jpeg_trace;
  memcpy (data, CACHE_MAGIC, 4);
  put_u32 (data + 4, dim);
  put_u32 (data + 8, it->width);
  put_u32 (data + 12, it->height);
  put_u32 (data + 16, (tr->found ? 1u : 0u) | tr->origin_x << 8 | tr->origin_y << 16);
  put_u32 (data + 20, tr->blocks);
  put_f32 (data + 24, tr->contrast);
  put_f32 (data + 28, tr->score);
  for (guint i = 0; i < dim; i++)
    put_f32 (data + CACHE_HEADER + i * 4, f[i]);
  g_file_set_contents (path, data, CACHE_HEADER + (gssize) dim * 4, NULL);
}

gboolean
dcr_features_extract (DcrBackbone *bb, const char *const *paths, guint n, gboolean use_cache, guint batch,
                      float *features, DcrFeatureItem *items, DcrFeatureProgress progress, gpointer user_data,
                      GError **error)
{
  return dcr_features_extract_view (bb, paths, n, use_cache, batch, NULL, 0, features, items, progress, user_data,
                                    error);
}

static gboolean extract (DcrBackbone *bb, const char *const *paths, guint n, gboolean use_cache, guint batch,
                         const DcrAugmentConfig *aug, guint view, guint thumb_side, float *features,
                         DcrFeatureItem *items, DcrFeatureProgress progress, gpointer user_data, GError **error);

gboolean
dcr_features_extract_view (DcrBackbone *bb, const char *const *paths, guint n, gboolean use_cache, guint batch,
                           const DcrAugmentConfig *aug, guint view, float *features, DcrFeatureItem *items,
                           DcrFeatureProgress progress, gpointer user_data, GError **error)
{
  return extract (bb, paths, n, use_cache, batch, aug, view, 0, features, items, progress, user_data, error);
}

gboolean
dcr_features_extract_thumbnails (DcrBackbone *bb, const char *const *paths, guint n, gboolean use_cache,
                                 guint batch, guint thumb_side, float *features, DcrFeatureItem *items,
                                 DcrFeatureProgress progress, gpointer user_data, GError **error)
{
  g_return_val_if_fail (thumb_side > 0, FALSE);
  return extract (bb, paths, n, use_cache, batch, NULL, 0, thumb_side, features, items, progress, user_data, error);
}

static gboolean
extract (DcrBackbone *bb, const char *const *paths, guint n, gboolean use_cache, guint batch,
         const DcrAugmentConfig *aug, guint view, guint thumb_side, float *features, DcrFeatureItem *items,
         DcrFeatureProgress progress, gpointer user_data, GError **error)
{
  guint dim = dcr_backbone_dim (bb);
  g_autofree char *dir = dcr_feature_cache_dir (bb);
  memset (features, 0, (gsize) n * dim * sizeof (float));
  memset (items, 0, n * sizeof *items);
  batch = MIN (batch ? batch : 8, dcr_backbone_max_batch (bb));
  /* the augmentation key of each filled batch slot (NULL: clean) */
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_set_size (keys, MAX (batch, 1));
  g_autoptr (DcrBackboneRun) run = NULL;
  g_autofree guint *slot_item = g_new (guint, MAX (batch, 1));
  g_autofree float *out = g_new (float, (gsize) MAX (batch, 1) * dim);
  guint filled = 0, done = 0;
  for (guint i = 0; i <= n; i++)
    {
      if (i < n)
        {
          DcrFeatureItem *it = &items[i];
          it->path = g_strdup (paths[i]);
          /* hash and decode from one read-only mapping of the file */
          g_autoptr (GMappedFile) mf = g_mapped_file_new (paths[i], FALSE, &it->error);
          if (mf)
            {
              g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (mf);
              it->sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);
              it->jpeg = dcr_image_bytes_are_jpeg (bytes);
              DcrAugmentParams ap = { 0 };
              if (aug && view > 0)
                dcr_augment_draw (aug, it->sha256, view, &ap);
              /* a view that changes nothing is the clean feature */
              g_autofree char *key = dcr_augment_is_identity (&ap) ? NULL : dcr_augment_params_key (&ap);
              if (!use_cache || !cache_read (dir, it, key, dim, features + (gsize) i * dim))
                {
                  g_autoptr (DcrImage) img = dcr_image_load_from_bytes (bytes, paths[i], NULL, &it->error);
                  if (img)
                    {
                      it->width = img->width;
                      it->height = img->height;
                      /* the file's own pixels, before any augmentation */
                      if (!it->jpeg)
                        dcr_jpeg_trace_find (img, &it->jpeg_trace);
                      /* provenance only: a thumbnail that fails costs nothing else */
                      if (thumb_side)
                        it->thumbnail = dcr_image_thumbnail_png (img, thumb_side, NULL);
                      if (key)
                        {
                          DcrImage *a = dcr_augment_apply (img, &ap, &it->error);
                          dcr_image_free (img);
                          img = a;
                        }
                    }
                  if (img)
                    {
                      if (!run && !(run = dcr_backbone_run_new (bb, MIN (batch, n), error)))
                        return FALSE;
                      if (dcr_backbone_run_set_image (run, filled, img, &it->error))
                        {
                          g_free (keys->pdata[filled]);
                          keys->pdata[filled] = g_steal_pointer (&key);
                          slot_item[filled++] = i;
                        }
                    }
                }
            }
          if (it->cached || it->error)
            {
              done++;
              if (progress && !progress (done, n, user_data))
                goto cancelled;
            }
        }
      if (filled && (filled == dcr_backbone_run_batch (run) || i == n))
        {
          if (!dcr_backbone_run_forward (run, error) || !dcr_backbone_run_features (run, out, error))
            return FALSE;
          for (guint s = 0; s < filled; s++)
            {
              DcrFeatureItem *it = &items[slot_item[s]];
              memcpy (features + (gsize) slot_item[s] * dim, out + (gsize) s * dim, dim * sizeof (float));
              if (use_cache)
                cache_write (dir, it, keys->pdata[s], dim, out + (gsize) s * dim);
              g_clear_pointer (&keys->pdata[s], g_free);
            }
          done += filled;
          filled = 0;
          if (progress && !progress (done, n, user_data))
            goto cancelled;
        }
    }
  return TRUE;

cancelled:
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled after %u of %u images", done, n);
  return FALSE;
}

GBytes *
dcr_feature_item_thumbnail (const DcrFeatureItem *it, guint thumb_side)
{
  if (it->thumbnail)
    return g_bytes_ref (it->thumbnail);
  g_autoptr (DcrImage) img = dcr_image_load (it->path, NULL, NULL);
  return img ? dcr_image_thumbnail_png (img, thumb_side, NULL) : NULL;
}

static gboolean
is_image_name (const char *name)
{
  g_autofree char *lower = g_ascii_strdown (name, -1);
  return g_str_has_suffix (lower, ".png") || g_str_has_suffix (lower, ".jpg") || g_str_has_suffix (lower, ".jpeg");
}

static gboolean
walk (const char *dir, GPtrArray *out, guint depth, GError **error)
{
  if (depth > 32)
    return TRUE; /* a link loop or absurd nesting */
  g_autoptr (GDir) d = g_dir_open (dir, 0, error);
  if (!d)
    return FALSE;
  const char *name;
  while ((name = g_dir_read_name (d)))
    {
      if (name[0] == '.')
        continue;
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          if (!walk (path, out, depth + 1, error))
            return FALSE;
        }
      else if (is_image_name (name) && g_file_test (path, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (out, g_steal_pointer (&path));
    }
  return TRUE;
}

static int
cmp_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

GPtrArray *
dcr_list_images (const char *dir, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  if (!walk (dir, out, 0, error))
    return NULL;
  g_ptr_array_sort (out, cmp_str);
  return g_steal_pointer (&out);
}
