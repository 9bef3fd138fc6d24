/* dcr-analysis.c — the detector behind the window. The engine is loaded in a
 * worker thread the first time a file is analysed and then kept; a mutex
 * keeps the (single) GPU context used by one worker at a time. */
#include "dcr-config.h"
#include "dcr-analysis.h"
#include "dcr-tile-head.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_QUARK (dcr-analysis-error-quark, dcr_analysis_error)

struct _DcrAnalysis {
  GObject parent_instance;
  char *device, *model_path, *bank_path;

  GMutex lock; /* guards everything below */
  DcrContext *ctx;
  DcrBackbone *bb;
  DcrModel *model;
  DcrBank *bank;
  DcrDetector *det;
  char *model_name, *bank_name;
};

G_DEFINE_FINAL_TYPE (DcrAnalysis, dcr_analysis, G_TYPE_OBJECT)

static void
prototype_free (gpointer data)
{
  DcrAnalysisPrototype *p = data;
  g_free (p->source);
  g_free (p->sha256);
  g_clear_pointer (&p->added, g_date_time_unref);
  g_clear_object (&p->thumbnail);
  g_free (p);
}

void
dcr_analysis_result_free (DcrAnalysisResult *r)
{
  if (!r)
    return;
  g_free (r->path);
  g_free (r->name);
  g_free (r->format);
  g_free (r->sha256);
  g_free (r->exif_make);
  g_free (r->exif_model);
  g_free (r->exif_date);
  g_clear_pointer (&r->facts, dcr_file_facts_free);
  g_clear_object (&r->image);
  dcr_detection_clear (&r->detection);
  dcr_tile_map_clear (&r->cnn_map);
  g_free (r->fusion_what);
  g_clear_pointer (&r->prototypes, g_ptr_array_unref);
  if (r->taps)
    for (guint i = 0; i < r->taps->len; i++)
      g_free (g_array_index (r->taps, DcrAnalysisTap, i).name);
  g_clear_pointer (&r->taps, g_array_unref);
  g_free (r->model_name);
  g_free (r->bank_name);
  g_free (r->device_name);
  g_free (r->backbone_id);
  g_free (r->stability_reason);
  g_free (r);
}

const DcrAnalysisTap *
dcr_analysis_result_tap (const DcrAnalysisResult *r, guint channel)
{
  for (guint i = 0; r->taps && i < r->taps->len; i++)
    {
      const DcrAnalysisTap *t = &g_array_index (r->taps, DcrAnalysisTap, i);
      if (channel >= t->offset && channel < t->offset + t->width)
        return t;
    }
  return NULL;
}

const char *
dcr_stability_variant_name (DcrStabilityVariant v)
{
  static const char *const names[] = { "JPEG q90 re-encoding", "JPEG q75 re-encoding", "0.5× resize" };
  g_return_val_if_fail (v < DCR_STABILITY_N_VARIANTS, "?");
  return names[v];
}

DcrVerdict
dcr_stability_verdict (DcrVerdict as_saved, const DcrStabilityScore variants[DCR_STABILITY_N_VARIANTS],
                       char **reason)
{
  if (reason)
    *reason = NULL;
  if (as_saved == DCR_VERDICT_INCONCLUSIVE)
    return as_saved;
  g_autoptr (GString) why = NULL;
  for (guint i = 0; i < DCR_STABILITY_N_VARIANTS; i++)
    {
      if (variants[i].skipped || variants[i].verdict == as_saved)
        continue;
      if (!why)
        {
          why = g_string_new (NULL);
          g_string_append_printf (why, "%s as saved", dcr_verdict_name (as_saved));
        }
      g_string_append_printf (why, ", %s after %s", dcr_verdict_name (variants[i].verdict),
                              dcr_stability_variant_name (i));
    }
  if (!why)
    return as_saved;
  if (reason)
    *reason = g_string_free (g_steal_pointer (&why), FALSE);
  return DCR_VERDICT_INCONCLUSIVE;
}

static int
cmp_float_desc (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x < y) - (x > y);
}

gboolean
dcr_tile_map_from_detection (const DcrDetection *d, guint width, guint height, DcrTileMap *map)
{
  g_return_val_if_fail (d && map, FALSE);
  memset (map, 0, sizeof *map);
  DcrForensicWindow win;
  if (!d->has_tiles || !d->tile_logits || !d->tile_rows || !d->tile_cols
      || !dcr_forensic_window (height, width, &win))
    return FALSE;
  DcrLocalTiles lt;
  dcr_local_tiles (&win, &lt);
  if (lt.nth != d->tile_rows || lt.ntw != d->tile_cols)
    {
      /* logits from another image size: placing them would mislead */
      g_debug ("tile map %ux%u does not fit the %ux%u image's %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
               " tiles", d->tile_rows, d->tile_cols, width, height, lt.nth, lt.ntw);
      return FALSE;
    }
  guint n = d->tile_rows * d->tile_cols;
  map->rects = g_new (DcrOverlayRect, n);
  map->n = n;
  g_autofree float *s = g_new (float, n);
  for (guint t = 0; t < n; t++)
    {
      gint64 x, y, w, h;
      dcr_tile_rect (&win, t, &x, &y, &w, &h);
      float l = d->tile_logits[t];
      s[t] = isnan (l) ? 0.0f : (float) (1.0 / (1.0 + exp (-(double) l)));
      map->rects[t] = (DcrOverlayRect) { x, y, w, h, s[t] };
      if (s[t] > s[map->strongest])
        map->strongest = t;
    }
  qsort (s, n, sizeof *s, cmp_float_desc);
  guint k = MIN (DCR_TILES_TOPK, n);
  double sum = 0;
  for (guint i = 0; i < k; i++)
    sum += s[i];
  map->top_mean = (float) (sum / k);
  return TRUE;
}

void
dcr_tile_map_clear (DcrTileMap *map)
{
  g_clear_pointer (&map->rects, g_free);
  memset (map, 0, sizeof *map);
}

gboolean
dcr_cnn_map_from_detection (const DcrDetection *d, const DcrCnn *cnn, guint width, guint height, DcrTileMap *map)
{
  g_return_val_if_fail (d && map, FALSE);
  memset (map, 0, sizeof *map);
  /* blocks of another image size would be misplaced: the helper checks */
  if (!dcr_detection_cnn_highest (d, cnn, width, height, NULL, NULL, NULL))
    return FALSE;
  guint n = d->cnn_rows * d->cnn_cols;
  map->rects = g_new (DcrOverlayRect, n);
  map->n = n;
  g_autofree float *s = g_new (float, n);
  for (guint t = 0; t < n; t++)
    {
      gint64 x, y, w, h;
      dcr_cnn_block_rect (cnn, height, width, d->cnn_cols, t, &x, &y, &w, &h);
      float l = d->cnn_blocks[t];
      s[t] = isnan (l) ? 0.0f : (float) (1.0 / (1.0 + exp (-(double) l)));
      map->rects[t] = (DcrOverlayRect) { x, y, w, h, s[t] };
      if (s[t] > s[map->strongest])
        map->strongest = t;
    }
  qsort (s, n, sizeof *s, cmp_float_desc);
  guint k = MIN (DCR_CNN_TOPK, n);
  double sum = 0;
  for (guint i = 0; i < k; i++)
    sum += s[i];
  map->top_mean = (float) (sum / k);
  return TRUE;
}

char *
dcr_analysis_fusion_name (const DcrModelConfig *cfg, DcrBackbone *bb)
{
  if (!cfg->fusion)
    return NULL;
  if (dcr_backbone_has_cnn (bb) && cfg->fusion_column == dcr_backbone_cnn_column (bb) + 1)
    return g_strdup ("the CNN's top-block score");
  if (dcr_backbone_has_tiles (bb) && cfg->fusion_column == dcr_backbone_tiles_column (bb))
    return g_strdup ("the tile score");
  return g_strdup_printf ("feature column %u", cfg->fusion_column);
}

/* The variants of `img`, in DcrStabilityVariant order. */
static gboolean
make_variants (const DcrImage *img, DcrImage *out[DCR_STABILITY_N_VARIANTS], GError **error)
{
  static const int qualities[] = { 90, 75 };
  for (guint i = 0; i < G_N_ELEMENTS (qualities); i++)
    {
      g_autoptr (GBytes) jpeg = dcr_image_encode_jpeg (img, qualities[i], error);
      if (!jpeg)
        return FALSE;
      out[i] = dcr_image_load_from_bytes (jpeg, dcr_stability_variant_name (i), NULL, error);
      if (!out[i])
        return FALSE;
    }
  out[DCR_STABILITY_HALF] = MIN (img->width, img->height) >= DCR_STABILITY_HALF_MIN_SIDE
                                ? dcr_image_resize_half (img)
                                : NULL;
  return TRUE;
}

static void
dcr_analysis_finalize (GObject *object)
{
  DcrAnalysis *self = DCR_ANALYSIS (object);
  g_clear_pointer (&self->det, dcr_detector_free);
  g_clear_pointer (&self->bank, dcr_bank_close);
  g_clear_pointer (&self->model, dcr_model_free);
  g_clear_pointer (&self->bb, dcr_backbone_free);
  g_clear_pointer (&self->ctx, dcr_context_free);
  g_free (self->model_name);
  g_free (self->bank_name);
  g_free (self->device);
  g_free (self->model_path);
  g_free (self->bank_path);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (dcr_analysis_parent_class)->finalize (object);
}

static void
dcr_analysis_class_init (DcrAnalysisClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dcr_analysis_finalize;
}

static void
dcr_analysis_init (DcrAnalysis *self)
{
  g_mutex_init (&self->lock);
}

static char *
nonempty (const char *s)
{
  return s && *s ? g_strdup (s) : NULL;
}

DcrAnalysis *
dcr_analysis_new (const char *device, const char *model_path, const char *bank_path)
{
  DcrAnalysis *self = g_object_new (DCR_TYPE_ANALYSIS, NULL);
  self->device = nonempty (device);
  self->model_path = nonempty (model_path);
  self->bank_path = nonempty (bank_path);
  return self;
}

char *
dcr_analysis_resolve_model_path (const char *model_path)
{
  if (model_path && *model_path)
    return g_strdup (model_path);
  return dcr_detector_default_model_path ();
}

/* Called with the lock held, in a worker. */
static gboolean
ensure_loaded (DcrAnalysis *self, GError **error)
{
  if (self->det)
    return TRUE;
  g_autofree char *model_path = dcr_analysis_resolve_model_path (self->model_path);
  if (!model_path)
    {
      g_set_error (error, DCR_ANALYSIS_ERROR, DCR_ANALYSIS_ERROR_NO_MODEL,
                   "No detector model: this installation ships none yet. Train one with `dcr train --real DIR "
                   "--fake DIR --out MODEL` and choose it as the model file in the preferences.");
      return FALSE;
    }
  g_autofree char *bank_path = self->bank_path ? g_strdup (self->bank_path) : dcr_detector_default_bank_path ();
  if (!bank_path)
    {
      g_set_error (error, DCR_ANALYSIS_ERROR, DCR_ANALYSIS_ERROR_NO_BANK,
                   "No prototype bank: build one from real images with `dcr train --bank BANK "
                   "--bank-from-reals` and choose it as the bank file in the preferences.");
      return FALSE;
    }
  if (!self->ctx)
    {
      DcrContextOptions opts = { .device = self->device, .warm_profile = "gui" };
      self->ctx = dcr_context_new (&opts, error);
      if (!self->ctx)
        return FALSE;
    }
  if (!self->bb && !(self->bb = dcr_backbone_load (self->ctx, "default", DCR_F32, error)))
    return FALSE;
  if (!self->model && !(self->model = dcr_model_load (self->ctx, model_path, error)))
    return FALSE;
  if (!dcr_model_check_backbone (self->model, dcr_backbone_id (self->bb), dcr_backbone_dim (self->bb), error))
    return FALSE;
  if (!self->bank
      && !(self->bank = dcr_bank_open (bank_path, dcr_backbone_id (self->bb), dcr_backbone_dim (self->bb), TRUE,
                                       error)))
    return FALSE;
  /* the image and its stability variants in one batch */
  self->det = dcr_detector_new (self->bb, self->model, self->bank, 1 + DCR_STABILITY_N_VARIANTS, error);
  if (!self->det)
    return FALSE;
  /* the inspect view's "where" map (nothing to keep without a tile head or
   * the CNN) */
  dcr_detector_set_tile_maps (self->det, TRUE);
  g_free (self->model_name);
  g_free (self->bank_name);
  self->model_name = g_path_get_basename (model_path);
  self->bank_name = g_path_get_basename (bank_path);
  return TRUE;
}

/* SHA-256 of the evidence, read through an O_RDONLY descriptor. */
static char *
file_sha256 (const char *path, guint64 *size, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "%s: cannot open: %s", path,
                   g_strerror (e));
      return NULL;
    }
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 buf[65536];
  guint64 total = 0;
  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;
          close (fd);
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "%s: cannot read: %s", path,
                       g_strerror (e));
          return NULL;
        }
      if (n == 0)
        break;
      g_checksum_update (sum, buf, n);
      total += n;
    }
  close (fd);
  *size = total;
  return g_strdup (g_checksum_get_string (sum));
}

static GdkTexture *
texture_from_png (GBytes *png)
{
  if (!png)
    return NULL;
  g_autoptr (GError) err = NULL;
  GdkTexture *t = gdk_texture_new_from_bytes (png, &err);
  if (!t)
    g_debug ("prototype thumbnail unreadable: %s", err->message);
  return t;
}

/* The task's data. The task has no source object: its last reference may
 * go in the worker, and the analysis (a GPU device) must never be finalised
 * there — Finish holds it and lets go on the main thread. */
typedef struct {
  DcrAnalysis *self; /* unowned: Finish's reference outlives the worker */
  char *path;
} RunData;

static void
run_data_free (RunData *d)
{
  g_free (d->path);
  g_free (d);
}

typedef struct {
  DcrAnalysis *self;
  GAsyncReadyCallback callback;
  gpointer user_data;
} Finish;

static void
run_done (GObject *source, GAsyncResult *res, gpointer data)
{
  Finish *fin = data;
  g_autoptr (DcrAnalysis) self = fin->self;
  fin->callback (G_OBJECT (self), res, fin->user_data);
  g_free (fin);
}

static void
run_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  RunData *rd = task_data;
  DcrAnalysis *self = rd->self;
  const char *path = rd->path;
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrAnalysisResult) r = g_new0 (DcrAnalysisResult, 1);
  r->path = g_strdup (path);
  r->name = g_path_get_basename (path);

  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (DcrImage) img = dcr_image_load (path, NULL, &err);
  if (!img)
    {
      g_task_return_error (task, g_steal_pointer (&err));
      return;
    }
  r->sha256 = file_sha256 (path, &r->size, &err);
  if (!r->sha256)
    {
      g_task_return_error (task, g_steal_pointer (&err));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  g_mutex_lock (&self->lock);
  gint64 t_load = g_get_monotonic_time ();
  gboolean was_loaded = self->det != NULL;
  gboolean ok = ensure_loaded (self, &err);
  gint64 t_run = g_get_monotonic_time ();
  DcrImage *imgs[1 + DCR_STABILITY_N_VARIANTS] = { img };
  DcrDetection dets[1 + DCR_STABILITY_N_VARIANTS] = { 0 };
  if (ok && !g_cancellable_is_cancelled (cancellable))
    ok = make_variants (img, imgs + 1, &err);
  /* the variants that exist, packed into one batch after the image */
  DcrImage *batch[G_N_ELEMENTS (imgs)] = { img };
  DcrDetection out[G_N_ELEMENTS (imgs)] = { 0 };
  guint n = 1, slot[G_N_ELEMENTS (imgs)] = { 0 };
  for (guint i = 1; ok && i < G_N_ELEMENTS (imgs); i++)
    if (imgs[i])
      {
        slot[i] = n;
        batch[n++] = imgs[i];
      }
  if (ok && !g_cancellable_is_cancelled (cancellable))
    ok = dcr_detector_run (self->det, batch, n, out, &err);
  for (guint i = 0; ok && i < G_N_ELEMENTS (imgs); i++)
    if (i == 0 || imgs[i])
      {
        dets[i] = out[slot[i]];
        memset (&out[slot[i]], 0, sizeof out[0]);
      }
  for (guint i = 0; i < n; i++)
    dcr_detection_clear (&out[i]);
  if (ok)
    {
      r->detection = dets[0];
      memset (&dets[0], 0, sizeof dets[0]);
      for (guint i = 0; i < DCR_STABILITY_N_VARIANTS; i++)
        {
          r->stability[i].skipped = imgs[1 + i] == NULL;
          r->stability[i].p_fake = dets[1 + i].p_fake;
          /* under the image's own decision: the question is whether its
           * score survives re-saving, not how sure JPEGs are in general */
          r->stability[i].verdict = dcr_model_verdict (self->model, dets[1 + i].p_fake, r->detection.jpeg);
        }
      r->verdict_as_saved = r->detection.verdict;
      r->detection.verdict = dcr_stability_verdict (r->verdict_as_saved, r->stability, &r->stability_reason);
    }
  for (guint i = 0; i < G_N_ELEMENTS (dets); i++)
    dcr_detection_clear (&dets[i]);
  for (guint i = 1; i < G_N_ELEMENTS (imgs); i++)
    g_clear_pointer (&imgs[i], dcr_image_free);
  if (ok && !g_cancellable_is_cancelled (cancellable))
    {
      const DcrModelConfig *cfg = dcr_model_config (self->model);
      DcrDecision dec = dcr_model_decision (self->model, r->detection.jpeg);
      r->threshold = dec.threshold;
      r->jpeg_decision = cfg->jpeg_decision && r->detection.jpeg;
      r->score_fusion = cfg->fusion;
      r->fusion_jpeg = cfg->fusion && cfg->fusion_jpeg && r->jpeg_decision;
      r->fusion_what = dcr_analysis_fusion_name (cfg, self->bb);
      dcr_cnn_map_from_detection (&r->detection, dcr_backbone_cnn (self->bb), img->width, img->height, &r->cnn_map);
      r->band_lo = dec.band_lo;
      r->band_hi = dec.band_hi;
      r->dim = dcr_backbone_dim (self->bb);
      r->backbone_id = g_strdup (dcr_backbone_id (self->bb));
      r->model_name = g_strdup (self->model_name);
      r->bank_name = g_strdup (self->bank_name);
      r->device_name = g_strdup (dcr_context_device (self->ctx)->name);
      r->taps = g_array_new (FALSE, TRUE, sizeof (DcrAnalysisTap));
      for (guint i = 0; i < dcr_backbone_n_taps (self->bb); i++)
        {
          const DcrBackboneTap *t = dcr_backbone_tap (self->bb, i);
          DcrAnalysisTap at = { g_strdup (t->name), t->offset, t->width };
          g_array_append_val (r->taps, at);
        }
      r->prototypes = g_ptr_array_new_with_free_func (prototype_free);
      for (guint j = 0; ok && j < r->detection.k; j++)
        {
          g_autoptr (DcrPrototype) p = dcr_bank_get (self->bank, r->detection.ids[j], FALSE, &err);
          if (!p)
            {
              ok = FALSE;
              break;
            }
          DcrAnalysisPrototype *ap = g_new0 (DcrAnalysisPrototype, 1);
          ap->id = p->id;
          ap->source = g_strdup (p->source);
          ap->sha256 = g_strdup (p->sha256);
          ap->added = p->added ? g_date_time_ref (p->added) : NULL;
          ap->thumbnail = texture_from_png (p->thumbnail);
          ap->similarity = r->detection.similarity[j];
          ap->attention = r->detection.attention[j];
          g_ptr_array_add (r->prototypes, ap);
        }
    }
  g_mutex_unlock (&self->lock);
  if (!ok)
    {
      g_task_return_error (task, g_steal_pointer (&err));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  gint64 t1 = g_get_monotonic_time ();
  r->load_ms = was_loaded ? 0 : (t_run - t_load) / 1000.0;
  r->elapsed_ms = (t1 - t0) / 1000.0 - r->load_ms;
  r->format = g_strdup (img->format_name);
  r->width = img->width;
  r->height = img->height;
  r->exif_make = g_strdup (img->exif.make);
  r->exif_model = g_strdup (img->exif.model);
  r->exif_date = g_strdup (img->exif.date_time_original);
  r->facts = dcr_file_facts_read (path);
  r->orientation = img->orientation;
  g_autoptr (GBytes) pixels = g_bytes_new_take (g_steal_pointer (&img->pixels), (gsize) img->width * img->height * 3);
  r->image = gdk_memory_texture_new (img->width, img->height, GDK_MEMORY_R8G8B8, pixels, (gsize) img->width * 3);
  g_task_return_pointer (task, g_steal_pointer (&r), (GDestroyNotify) dcr_analysis_result_free);
}

void
dcr_analysis_run_async (DcrAnalysis *self, GFile *file, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
  g_return_if_fail (DCR_IS_ANALYSIS (self));
  Finish *fin = g_new (Finish, 1);
  *fin = (Finish) { g_object_ref (self), callback, user_data };
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, run_done, fin);
  g_task_set_source_tag (task, dcr_analysis_run_async);
  char *path = g_file_get_path (file);
  if (!path)
    {
      g_autofree char *uri = g_file_get_uri (file);
      g_task_return_new_error (task, DCR_ANALYSIS_ERROR, DCR_ANALYSIS_ERROR_FAILED,
                               "%s is not a local file: copy it to this computer first", uri);
      return;
    }
  RunData *rd = g_new (RunData, 1);
  *rd = (RunData) { self, path };
  g_task_set_task_data (task, rd, (GDestroyNotify) run_data_free);
  g_task_set_return_on_cancel (task, FALSE);
  g_task_run_in_thread (task, run_thread);
}

DcrAnalysisResult *
dcr_analysis_run_finish (DcrAnalysis *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (DCR_IS_ANALYSIS (self) && g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
