/* dcr-report.c — intake, the analysis pipeline and the CSV/JSON writers of
 * batch reports. Decoding threads feed a bounded queue that the calling
 * thread drains into GPU batches, so memory holds a few batches of decoded
 * images whatever the number of files; per-image facts are small records.
 * The report is assembled in a hidden temporary directory and renamed into
 * place only when complete. */
#include "dcr-config.h"
#include "dcr-report-private.h"
#include "dcr-tile-head.h"
#include "dcr-walk.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (dcr-report-error-quark, dcr_report_error)

#define THUMB_SIDE 96

static void
item_free (gpointer data)
{
  DcrReportItem *it = data;
  g_free (it->path);
  g_free (it->reason);
  g_free (it->sha256);
  g_free (it->sha256_report);
  g_free (it);
}

static char *
nonempty (const char *s)
{
  return s && *s ? g_strdup (s) : NULL;
}

DcrReport *
dcr_report_new (const DcrReportOptions *opts)
{
  DcrReport *r = g_new0 (DcrReport, 1);
  r->case_id = nonempty (opts->case_id);
  r->exhibit = nonempty (opts->exhibit);
  r->examiner = nonempty (opts->examiner);
  r->device = nonempty (opts->device);
  r->model_path = nonempty (opts->model_path);
  r->bank_path = nonempty (opts->bank_path);
  r->backbone = nonempty (opts->backbone);
  r->batch = opts->batch ? opts->batch : DCR_CLI_DEFAULT_BATCH;
  r->decoders = opts->decoders ? opts->decoders : dcr_cli_default_decoders ();
  r->items = g_ptr_array_new_with_free_func (item_free);
  r->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return r;
}

void
dcr_report_free (DcrReport *r)
{
  if (!r)
    return;
  dcr_cli_setup_clear (&r->setup);
  g_ptr_array_unref (r->items);
  g_hash_table_unref (r->seen);
  g_clear_pointer (&r->intake, g_date_time_unref);
  g_clear_pointer (&r->analysis_start, g_date_time_unref);
  g_clear_pointer (&r->analysis_end, g_date_time_unref);
  g_clear_pointer (&r->written, g_date_time_unref);
  g_free (r->case_id);
  g_free (r->exhibit);
  g_free (r->examiner);
  g_free (r->device);
  g_free (r->model_path);
  g_free (r->bank_path);
  g_free (r->backbone);
  g_free (r->bank_sha256);
  g_free (r->thumb_dir);
  g_free (r);
}

guint
dcr_report_n_items (DcrReport *r)
{
  return r->items->len;
}

const DcrReportItem *
dcr_report_get_item (DcrReport *r, guint i)
{
  g_return_val_if_fail (i < r->items->len, NULL);
  return r->items->pdata[i];
}

void
dcr_report_get_counts (DcrReport *r, guint *analysed, guint *rejected, guint *changed)
{
  if (analysed)
    *analysed = r->n_analysed;
  if (rejected)
    *rejected = r->n_rejected;
  if (changed)
    *changed = r->n_changed;
}

void
dcr_report_get_times (DcrReport *r, double *analysis_s, double *total_s)
{
  if (analysis_s)
    *analysis_s = r->analysis_s;
  if (total_s)
    *total_s = r->total_s;
}

char *
dcr_report_format_time (GDateTime *t)
{
  return t ? g_date_time_format (t, "%Y-%m-%d %H:%M:%S UTC") : g_strdup ("—");
}

char *
dcr_report_thumb_path (DcrReport *r, guint index)
{
  g_autofree char *name = g_strdup_printf ("%08u.png", index);
  return g_build_filename (r->thumb_dir, name, NULL);
}

char *
dcr_report_training_field (DcrReport *r, const char *name)
{
  const char *training = r->setup.model ? dcr_model_config (r->setup.model)->training : NULL;
  if (!training)
    return NULL;
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_data (p, training, -1, NULL))
    return NULL;
  JsonNode *root = json_parser_get_root (p);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  JsonNode *v = json_object_get_member (json_node_get_object (root), name);
  if (!v || !JSON_NODE_HOLDS_VALUE (v))
    return NULL;
  if (json_node_get_value_type (v) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (v));
  if (json_node_get_value_type (v) == G_TYPE_DOUBLE)
    return g_strdup_printf ("%.4g", json_node_get_double (v));
  return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (v));
}

/* ---- intake ---- */

static DcrReportItem *
queue_item (DcrReport *r, const char *path)
{
  DcrReportItem *it = g_new0 (DcrReportItem, 1);
  it->path = g_strdup (path);
  g_ptr_array_add (r->items, it);
  return it;
}

static void
queue_rejected (DcrReport *r, const char *path, char *reason)
{
  DcrReportItem *it = queue_item (r, path);
  it->status = DCR_REPORT_ITEM_REJECTED;
  it->reason = reason;
}

static void
walk_file (const char *path, gpointer r)
{
  queue_item (r, path);
}

static void
walk_reject (const char *path, char *reason, gpointer r)
{
  queue_rejected (r, path, reason);
}

gboolean
dcr_report_add_inputs (DcrReport *r, const char *const *paths, guint n, GError **error)
{
  if (!r->intake)
    r->intake = g_date_time_new_now_utc ();
  g_autoptr (GError) err = NULL;
  if (dcr_walk_paths (paths, n, r->seen, walk_file, walk_reject, r, &err))
    return TRUE;
  g_set_error_literal (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_INPUT, err->message);
  return FALSE;
}

/* SHA-256 and size of a file read through an O_RDONLY descriptor. */
static char *
hash_file (const char *path, guint64 *size, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "%s: cannot open: %s", path, g_strerror (e));
      return NULL;
    }
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *buf = g_malloc (1 << 20);
  guint64 total = 0;
  for (;;)
    {
      ssize_t got = read (fd, buf, 1 << 20);
      if (got < 0 && errno == EINTR)
        continue;
      if (got < 0)
        {
          int e = errno;
          close (fd);
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "%s: cannot read: %s", path,
                       g_strerror (e));
          return NULL;
        }
      if (got == 0)
        break;
      g_checksum_update (sum, buf, got);
      total += (guint64) got;
    }
  close (fd);
  if (size)
    *size = total;
  return g_strdup (g_checksum_get_string (sum));
}

/* An engine message without the leading "name: " it carries. */
static char *
strip_name (const char *message, const char *name)
{
  gsize len = strlen (name);
  if (strncmp (message, name, len) == 0 && message[len] == ':' && message[len + 1] == ' ')
    return g_strdup (message + len + 2);
  return g_strdup (message);
}

/* Reads, hashes, sniffs and decodes one evidence file; writes its
 * thumbnail. Returns the image, or NULL with the item rejected. Runs on a
 * decoding thread. */
static DcrImage *
intake_item (DcrReport *r, guint index)
{
  DcrReportItem *it = r->items->pdata[index];
  int fd = g_open (it->path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int e = errno;
      it->reason = g_strdup_printf ("cannot be opened: %s", g_strerror (e));
      it->status = DCR_REPORT_ITEM_REJECTED;
      return NULL;
    }
  struct stat st;
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      it->reason = g_strdup ("not a regular file");
      it->status = DCR_REPORT_ITEM_REJECTED;
      return NULL;
    }
  it->size = (guint64) st.st_size;
  if (it->size > DCR_IMAGE_DEFAULT_MAX_FILE_BYTES)
    {
      /* hashed by streaming rather than mapped whole */
      close (fd);
      g_autoptr (GError) err = NULL;
      it->sha256 = hash_file (it->path, &it->size, &err);
      it->reason = g_strdup_printf ("file of %" G_GUINT64_FORMAT " bytes, over the 1 GiB limit for an image",
                                    it->size);
      it->status = DCR_REPORT_ITEM_REJECTED;
      return NULL;
    }
  g_autoptr (GError) err = NULL;
  g_autoptr (GBytes) bytes = NULL;
  if (it->size == 0)
    bytes = g_bytes_new_static ("", 0);
  else
    {
      GMappedFile *mf = g_mapped_file_new_from_fd (fd, FALSE, &err);
      if (!mf)
        {
          close (fd);
          it->reason = g_strdup_printf ("cannot be read: %s", err->message);
          it->status = DCR_REPORT_ITEM_REJECTED;
          return NULL;
        }
      bytes = g_mapped_file_get_bytes (mf);
      g_mapped_file_unref (mf);
    }
  close (fd);
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  it->size = len;
  it->sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);

  static const guint8 png_magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  static const guint8 jpeg_magic[3] = { 0xff, 0xd8, 0xff };
  if (len == 0)
    it->reason = g_strdup ("empty file (0 bytes)");
  else if (len >= sizeof png_magic && memcmp (data, png_magic, sizeof png_magic) == 0)
    it->format = "PNG";
  else if (len >= sizeof jpeg_magic && memcmp (data, jpeg_magic, sizeof jpeg_magic) == 0)
    it->format = "JPEG";
  else
    {
      GString *hex = g_string_new (NULL);
      for (gsize i = 0; i < MIN (len, 8); i++)
        g_string_append_printf (hex, "%s%02x", i ? " " : "", data[i]);
      it->reason = g_strdup_printf ("not a PNG or JPEG image by its content (first bytes %s)", hex->str);
      g_string_free (hex, TRUE);
    }
  if (it->reason)
    {
      it->status = DCR_REPORT_ITEM_REJECTED;
      return NULL;
    }
  g_autofree char *name = g_path_get_basename (it->path);
  DcrImage *img = dcr_image_load_from_bytes (bytes, name, NULL, &err);
  if (!img)
    {
      it->reason = strip_name (err->message, name);
      it->status = DCR_REPORT_ITEM_REJECTED;
      return NULL;
    }
  it->width = img->width;
  it->height = img->height;
  g_autoptr (GBytes) thumb = dcr_image_thumbnail_png (img, THUMB_SIDE, NULL);
  if (thumb)
    {
      g_autofree char *tp = dcr_report_thumb_path (r, index);
      /* a missing thumbnail only leaves a blank cell in the PDF */
      if (!g_file_set_contents (tp, g_bytes_get_data (thumb, NULL), (gssize) g_bytes_get_size (thumb), NULL))
        g_unlink (tp);
    }
  return img;
}

/* ---- the pipeline ---- */

typedef struct {
  guint index;
  DcrImage *img; /* NULL: rejected */
} Job;

typedef struct {
  DcrReport *r;
  GCancellable *cancellable;
  GMutex lock;
  GCond cond;
  GQueue queue;     /* of Job * */
  guint cap;
  gint next;        /* atomic: the next item to decode */
  gboolean stop;
  guint producers;  /* decoding threads still running */
} Pipe;

static gboolean
pipe_wait (Pipe *p)
{
  g_cond_wait_until (&p->cond, &p->lock, g_get_monotonic_time () + 50 * G_TIME_SPAN_MILLISECOND);
  if (g_cancellable_is_cancelled (p->cancellable) && !p->stop)
    {
      p->stop = TRUE;
      g_cond_broadcast (&p->cond);
    }
  return !p->stop;
}

static gpointer
decode_thread (gpointer data)
{
  Pipe *p = data;
  guint n = p->r->items->len;
  for (;;)
    {
      guint i = (guint) g_atomic_int_add (&p->next, 1);
      if (i >= n || g_cancellable_is_cancelled (p->cancellable))
        break;
      DcrReportItem *it = p->r->items->pdata[i];
      DcrImage *img = it->status == DCR_REPORT_ITEM_REJECTED ? NULL : intake_item (p->r, i);
      /* the search for an earlier JPEG's grid and the detail, here on a decoding thread */
      if (img)
        dcr_detector_prepare (img, &it->jpeg_trace, &it->detail);
      g_mutex_lock (&p->lock);
      while (!p->stop && p->queue.length >= p->cap)
        pipe_wait (p);
      if (p->stop)
        {
          g_mutex_unlock (&p->lock);
          dcr_image_free (img);
          break;
        }
      Job *job = g_new (Job, 1);
      *job = (Job) { i, img };
      g_queue_push_tail (&p->queue, job);
      g_cond_broadcast (&p->cond);
      g_mutex_unlock (&p->lock);
    }
  g_mutex_lock (&p->lock);
  p->producers--;
  g_cond_broadcast (&p->cond);
  g_mutex_unlock (&p->lock);
  return NULL;
}

static void
record_detection (DcrReport *r, DcrReportItem *it, const DcrDetection *d)
{
  it->verdict = d->verdict;
  it->decision = dcr_cli_decision_name (r->setup.model, d->jpeg);
  it->p_fake = d->p_fake;
  it->anomaly = d->anomaly;
  it->p_heads = d->p_heads;
  it->has_tiles = d->has_tiles;
  it->tile_score = d->tile_score;
  it->tile_max = d->tile_max;
  DcrForensicWindow win;
  guint ntiles = d->tile_rows * d->tile_cols;
  if (d->tile_logits && ntiles && dcr_forensic_window (it->height, it->width, &win))
    {
      guint best = 0;
      for (guint t = 1; t < ntiles; t++)
        if (d->tile_logits[t] > d->tile_logits[best])
          best = t;
      it->has_top_tile = TRUE;
      dcr_tile_rect (&win, best, &it->top_tile[0], &it->top_tile[1], &it->top_tile[2], &it->top_tile[3]);
      it->top_tile_p = (float) (1.0 / (1.0 + exp (-(double) d->tile_logits[best])));
    }
  it->has_cnn = d->has_cnn;
  it->cnn_top = d->cnn_top;
  it->cnn_max = d->cnn_max;
  float logit;
  if (dcr_detection_cnn_highest (d, dcr_backbone_cnn (r->setup.bb), it->width, it->height, NULL, it->top_block,
                                 &logit))
    {
      it->has_top_block = TRUE;
      it->top_block_p = (float) (1.0 / (1.0 + exp (-(double) logit)));
    }
  it->k = d->k;
  memcpy (it->ids, d->ids, sizeof it->ids);
  memcpy (it->similarity, d->similarity, sizeof it->similarity);
  guint dim = dcr_backbone_dim (r->setup.bb);
  it->n_top = MIN (DCR_REPORT_TOP_CHANNELS, dim);
  dcr_cli_top_channels (d->residual, dim, it->top_index, it->n_top);
  for (guint t = 0; t < it->n_top; t++)
    {
      it->top_magnitude[t] = d->residual[it->top_index[t]];
      it->top_tap[t] = g_intern_string (dcr_cli_tap_of (r->setup.bb, it->top_index[t]));
    }
  it->status = DCR_REPORT_ITEM_ANALYSED;
}

static void
finish_item (DcrReport *r, guint index, guint *done, DcrReportProgress progress, gpointer user_data)
{
  (*done)++;
  if (progress)
    progress (DCR_REPORT_PHASE_ANALYSING, index, *done, r->items->len, user_data);
}

/* One GPU batch. An image the detector refuses (too small for it, say)
 * fails the whole batch, so the batch is then run image by image and only
 * that one is rejected; a device error stops the report. */
static gboolean
detect_batch (DcrReport *r, DcrImage **imgs, const guint *slot, guint m, DcrDetection *dets, guint *done,
              DcrReportProgress progress, gpointer user_data, GError **error)
{
  g_autoptr (GError) err = NULL;
  g_autofree DcrJpegTrace *traces = g_new (DcrJpegTrace, m);
  g_autofree float *details = g_new (float, m);
  for (guint j = 0; j < m; j++)
    {
      const DcrReportItem *it = r->items->pdata[slot[j]];
      traces[j] = it->jpeg_trace;
      details[j] = it->detail;
    }
  if (dcr_detector_run_traced (r->setup.det, imgs, traces, details, m, dets, &err))
    {
      for (guint j = 0; j < m; j++)
        {
          record_detection (r, r->items->pdata[slot[j]], &dets[j]);
          r->n_analysed++;
          r->n_verdict[dets[j].verdict]++;
          dcr_detection_clear (&dets[j]);
          finish_item (r, slot[j], done, progress, user_data);
        }
      return TRUE;
    }
  if (err->domain == DCR_VK_ERROR)
    {
      g_propagate_error (error, g_steal_pointer (&err));
      return FALSE;
    }
  if (m > 1)
    {
      for (guint j = 0; j < m; j++)
        if (!detect_batch (r, imgs + j, slot + j, 1, dets, done, progress, user_data, error))
          return FALSE;
      return TRUE;
    }
  DcrReportItem *it = r->items->pdata[slot[0]];
  it->reason = g_strdup_printf ("refused by the detector: %s", err->message);
  it->status = DCR_REPORT_ITEM_REJECTED;
  r->n_rejected++;
  finish_item (r, slot[0], done, progress, user_data);
  return TRUE;
}

static gboolean
run_pipeline (DcrReport *r, DcrReportProgress progress, gpointer user_data, GCancellable *cancellable,
              GError **error)
{
  guint n = r->items->len, b = dcr_detector_batch (r->setup.det), received = 0, m = 0, done = 0;
  Pipe p = { .r = r, .cancellable = cancellable, .cap = b };
  r->n_analysed = r->n_rejected = 0;
  memset (r->n_verdict, 0, sizeof r->n_verdict);
  g_mutex_init (&p.lock);
  g_cond_init (&p.cond);
  g_queue_init (&p.queue);
  guint n_threads = MAX (1, MIN (r->decoders, n));
  p.producers = n_threads;
  GThread **threads = g_new0 (GThread *, n_threads);
  for (guint t = 0; t < n_threads; t++)
    threads[t] = g_thread_new ("dcr-decode", decode_thread, &p);
  DcrImage **imgs = g_new0 (DcrImage *, b);
  guint *slot = g_new0 (guint, b);
  DcrDetection *dets = g_new0 (DcrDetection, b);
  gboolean ok = TRUE;
  while (ok && received < n)
    {
      g_mutex_lock (&p.lock);
      if (g_cancellable_is_cancelled (cancellable))
        p.stop = TRUE;
      while (!p.stop && p.queue.length == 0 && p.producers > 0)
        pipe_wait (&p);
      if (p.stop || p.queue.length == 0)
        {
          g_mutex_unlock (&p.lock);
          ok = FALSE;
          break;
        }
      Job *job = g_queue_pop_head (&p.queue);
      g_cond_broadcast (&p.cond);
      g_mutex_unlock (&p.lock);
      received++;
      if (!job->img)
        {
          r->n_rejected++;
          finish_item (r, job->index, &done, progress, user_data);
        }
      else
        {
          imgs[m] = job->img;
          slot[m++] = job->index;
        }
      g_free (job);
      if (m && (m == b || received == n))
        {
          ok = detect_batch (r, imgs, slot, m, dets, &done, progress, user_data, error);
          for (guint j = 0; j < m; j++)
            g_clear_pointer (&imgs[j], dcr_image_free);
          m = 0;
        }
    }
  g_mutex_lock (&p.lock);
  p.stop = TRUE;
  g_cond_broadcast (&p.cond);
  g_mutex_unlock (&p.lock);
  for (guint t = 0; t < n_threads; t++)
    g_thread_join (threads[t]);
  Job *job;
  while ((job = g_queue_pop_head (&p.queue)))
    {
      dcr_image_free (job->img);
      g_free (job);
    }
  for (guint j = 0; j < m; j++)
    dcr_image_free (imgs[j]);
  g_free (threads);
  g_free (imgs);
  g_free (slot);
  g_free (dets);
  g_mutex_clear (&p.lock);
  g_cond_clear (&p.cond);
  if (!ok && !(error && *error))
    {
      if (!g_cancellable_set_error_if_cancelled (cancellable, error))
        g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_WRITE, "the analysis stopped after %u of %u files",
                     done, n);
    }
  return ok;
}

/* ---- CSV and JSON ---- */

static void
csv_field (GString *s, const char *v)
{
  if (!v)
    v = "";
  if (!strpbrk (v, ",\"\r\n"))
    {
      g_string_append (s, v);
      return;
    }
  g_string_append_c (s, '"');
  for (const char *c = v; *c; c++)
    {
      if (*c == '"')
        g_string_append_c (s, '"');
      g_string_append_c (s, *c);
    }
  g_string_append_c (s, '"');
}

static const char *
status_name (DcrReportItemStatus s)
{
  return s == DCR_REPORT_ITEM_ANALYSED ? "analysed" : s == DCR_REPORT_ITEM_REJECTED ? "rejected" : "queued";
}

static const char *
integrity_name (const DcrReportItem *it)
{
  if (!it->sha256)
    return "unread";
  return it->changed ? "CHANGED" : "unchanged";
}

static void
item_csv (GString *s, guint index, const DcrReportItem *it)
{
  char num[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append_printf (s, "%u,", index + 1);
  csv_field (s, it->path);
  g_string_append_printf (s, ",%s,", status_name (it->status));
  csv_field (s, it->reason);
  g_string_append_printf (s, ",%" G_GUINT64_FORMAT ",%s,%s,%s,%s,", it->size, it->sha256 ? it->sha256 : "",
                          it->sha256_report ? it->sha256_report : "", integrity_name (it),
                          it->format ? it->format : "");
  if (it->status != DCR_REPORT_ITEM_ANALYSED)
    {
      g_string_append (s, ",,,,,,,,,\n");
      return;
    }
  g_string_append_printf (s, "%u,%u,%s,", it->width, it->height, dcr_verdict_name (it->verdict));
  g_string_append_printf (s, "%s,", g_ascii_formatd (num, sizeof num, "%.6f", it->p_fake));
  g_string_append_printf (s, "%s,", g_ascii_formatd (num, sizeof num, "%.6f", it->anomaly));
  for (guint j = 0; j < it->k; j++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, j ? ";" : "", it->ids[j]);
  g_string_append_c (s, ',');
  for (guint j = 0; j < it->k; j++)
    g_string_append_printf (s, "%s%s", j ? ";" : "", g_ascii_formatd (num, sizeof num, "%.6f", it->similarity[j]));
  g_string_append_c (s, ',');
  for (guint t = 0; t < it->n_top; t++)
    g_string_append_printf (s, "%s%u:%s:%s", t ? ";" : "", it->top_index[t], it->top_tap[t],
                            g_ascii_formatd (num, sizeof num, "%.6f", it->top_magnitude[t]));
  g_string_append_c (s, ',');
  if (!isnan (it->detail))
    g_string_append_printf (s, "%s,%s", g_ascii_formatd (num, sizeof num, "%.4f", it->detail),
                            dcr_detail_is_low (it->detail) ? "yes" : "no");
  else
    g_string_append_c (s, ',');
  g_string_append_c (s, '\n');
}

static JsonNode *
item_json (guint index, const DcrReportItem *it)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
#define STR(k, v) (json_builder_set_member_name (b, k), json_builder_add_string_value (b, v))
#define INT(k, v) (json_builder_set_member_name (b, k), json_builder_add_int_value (b, v))
  INT ("index", index + 1);
  STR ("file", it->path);
  STR ("status", status_name (it->status));
  if (it->reason)
    STR ("reason", it->reason);
  INT ("size", (gint64) it->size);
  STR ("sha256", it->sha256);
  STR ("sha256_at_report", it->sha256_report);
  STR ("integrity", integrity_name (it));
  STR ("format", it->format);
  if (it->status == DCR_REPORT_ITEM_ANALYSED)
    {
      INT ("width", it->width);
      INT ("height", it->height);
      STR ("verdict", dcr_verdict_name (it->verdict));
      STR ("decision", it->decision);
      dcr_cli_json_add_jpeg_trace (b, g_strcmp0 (it->format, "JPEG") == 0, &it->jpeg_trace);
      dcr_cli_json_add_detail (b, it->detail);
      dcr_cli_json_add_double (b, "p_fake", it->p_fake);
      dcr_cli_json_add_double (b, "anomaly", it->anomaly);
      dcr_cli_json_add_double (b, "p_heads", it->p_heads);
      if (it->has_tiles)
        {
          json_builder_set_member_name (b, "tiles");
          json_builder_begin_object (b);
          dcr_cli_json_add_double (b, "score", it->tile_score);
          dcr_cli_json_add_double (b, "max", it->tile_max);
          if (it->has_top_tile)
            {
              json_builder_set_member_name (b, "highest");
              json_builder_begin_object (b);
              INT ("x", it->top_tile[0]);
              INT ("y", it->top_tile[1]);
              INT ("w", it->top_tile[2]);
              INT ("h", it->top_tile[3]);
              dcr_cli_json_add_double (b, "p", it->top_tile_p);
              json_builder_end_object (b);
            }
          json_builder_end_object (b);
        }
      if (it->has_cnn)
        {
          json_builder_set_member_name (b, "cnn");
          json_builder_begin_object (b);
          dcr_cli_json_add_double (b, "top", it->cnn_top);
          dcr_cli_json_add_double (b, "p_top", 1.0 / (1.0 + exp (-(double) it->cnn_top)));
          dcr_cli_json_add_double (b, "max", it->cnn_max);
          if (it->has_top_block)
            {
              json_builder_set_member_name (b, "highest");
              json_builder_begin_object (b);
              INT ("x", it->top_block[0]);
              INT ("y", it->top_block[1]);
              INT ("w", it->top_block[2]);
              INT ("h", it->top_block[3]);
              dcr_cli_json_add_double (b, "p", it->top_block_p);
              json_builder_end_object (b);
            }
          json_builder_end_object (b);
        }
      json_builder_set_member_name (b, "prototypes");
      json_builder_begin_array (b);
      for (guint j = 0; j < it->k; j++)
        {
          json_builder_begin_object (b);
          INT ("id", it->ids[j]);
          dcr_cli_json_add_double (b, "similarity", it->similarity[j]);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "top_channels");
      json_builder_begin_array (b);
      for (guint t = 0; t < it->n_top; t++)
        {
          json_builder_begin_object (b);
          INT ("index", it->top_index[t]);
          STR ("tap", it->top_tap[t]);
          dcr_cli_json_add_double (b, "magnitude", it->top_magnitude[t]);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
    }
#undef STR
#undef INT
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static char *
header_json (DcrReport *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const DcrModelConfig *cfg = dcr_model_config (r->setup.model);
  const DcrDeviceInfo *dev = dcr_context_device (r->setup.ctx);
  json_builder_begin_object (b);
#define STR(k, v) (json_builder_set_member_name (b, k), json_builder_add_string_value (b, v))
#define INT(k, v) (json_builder_set_member_name (b, k), json_builder_add_int_value (b, v))
#define TIME(k, t) G_STMT_START { g_autofree char *s_ = g_date_time_format_iso8601 (t); STR (k, s_); } G_STMT_END
  STR ("schema", DCR_REPORT_SCHEMA);
  json_builder_set_member_name (b, "tool");
  json_builder_begin_object (b);
  STR ("name", "DCR Forensics");
  STR ("version", DCR_VERSION);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "case");
  json_builder_begin_object (b);
  STR ("case_id", r->case_id);
  STR ("exhibit", r->exhibit);
  STR ("examiner", r->examiner);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "times");
  json_builder_begin_object (b);
  TIME ("intake", r->intake);
  TIME ("analysis_start", r->analysis_start);
  TIME ("analysis_end", r->analysis_end);
  TIME ("report", r->written);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "model");
  json_builder_begin_object (b);
  g_autofree char *model_name = g_path_get_basename (dcr_model_path (r->setup.model));
  STR ("name", model_name);
  STR ("path", dcr_model_path (r->setup.model));
  STR ("sha256", dcr_model_sha256 (r->setup.model));
  STR ("backbone", cfg->backbone_id);
  DcrDecision own = dcr_model_decision (r->setup.model, FALSE);
  dcr_cli_json_add_thresholds (b, &own);
  if (cfg->jpeg_decision)
    {
      json_builder_set_member_name (b, "jpeg_decision");
      json_builder_begin_object (b);
      dcr_cli_json_add_thresholds (b, &cfg->jpeg);
      json_builder_end_object (b);
    }
  g_autofree char *thr_rule = dcr_report_training_field (r, "threshold_rule");
  g_autofree char *band_rule = dcr_report_training_field (r, "band_rule");
  STR ("threshold_rule", thr_rule);
  STR ("band_rule", band_rule);
  json_builder_set_member_name (b, "training");
  JsonNode *training = cfg->training ? json_from_string (cfg->training, NULL) : NULL;
  if (training)
    json_builder_add_value (b, training);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "bank");
  json_builder_begin_object (b);
  STR ("path", dcr_bank_path (r->setup.bank));
  STR ("uuid", dcr_bank_uuid (r->setup.bank));
  INT ("generation", dcr_bank_generation (r->setup.bank));
  INT ("prototypes", (gint64) dcr_detector_bank_count (r->setup.det));
  STR ("sha256", r->bank_sha256);
  INT ("size", (gint64) r->bank_size);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "device");
  json_builder_begin_object (b);
  STR ("name", dev->name);
  STR ("type", dcr_device_type_name (dev->type));
  STR ("driver", dev->driver_name);
  STR ("driver_info", dev->driver_info);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "summary");
  json_builder_begin_object (b);
  INT ("files", r->items->len);
  INT ("analysed", r->n_analysed);
  INT ("real", r->n_verdict[DCR_VERDICT_REAL]);
  INT ("fake", r->n_verdict[DCR_VERDICT_FAKE]);
  INT ("inconclusive", r->n_verdict[DCR_VERDICT_INCONCLUSIVE]);
  INT ("rejected", r->n_rejected);
  INT ("changed", r->n_changed);
  json_builder_end_object (b);
#undef STR
#undef INT
#undef TIME
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, TRUE);
}

/* A file written through stdio, flushed to disk before it counts. */
static gboolean
close_synced (FILE *f, const char *path, GError **error)
{
  gboolean ok = fflush (f) == 0 && fsync (fileno (f)) == 0 && !ferror (f);
  int e = errno;
  ok = fclose (f) == 0 && ok;
  if (!ok)
    g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_WRITE, "%s: cannot write: %s", path, g_strerror (e));
  return ok;
}

static FILE *
open_out (const char *path, GError **error)
{
  FILE *f = fopen (path, "wex");
  if (!f)
    {
      int e = errno;
      g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_WRITE, "%s: cannot create: %s", path, g_strerror (e));
    }
  return f;
}

static gboolean
write_csv (DcrReport *r, const char *path, GError **error)
{
  FILE *f = open_out (path, error);
  if (!f)
    return FALSE;
  fputs ("index,file,status,reason,size,sha256,sha256_at_report,integrity,format,width,height,verdict,p_fake,"
         "anomaly,prototype_ids,prototype_similarities,top_channels,detail,low_detail\n",
         f);
  g_autoptr (GString) line = g_string_new (NULL);
  for (guint i = 0; i < r->items->len; i++)
    {
      g_string_truncate (line, 0);
      item_csv (line, i, r->items->pdata[i]);
      fwrite (line->str, 1, line->len, f);
    }
  return close_synced (f, path, error);
}

static gboolean
write_json (DcrReport *r, const char *path, GError **error)
{
  FILE *f = open_out (path, error);
  if (!f)
    return FALSE;
  /* the header object, then the items streamed one per line into it */
  g_autofree char *head = header_json (r);
  char *close_brace = strrchr (head, '}');
  *close_brace = '\0';
  g_strchomp (head);
  fprintf (f, "%s,\n  \"items\" : [\n", head);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  for (guint i = 0; i < r->items->len; i++)
    {
      g_autoptr (JsonNode) node = item_json (i, r->items->pdata[i]);
      json_generator_set_root (gen, node);
      g_autofree char *text = json_generator_to_data (gen, NULL);
      fprintf (f, "    %s%s\n", text, i + 1 < r->items->len ? "," : "");
    }
  fputs ("  ]\n}\n", f);
  return close_synced (f, path, error);
}

static gboolean
write_sums (const char *dir, GError **error)
{
  static const char *const names[] = { "report.pdf", "report.csv", "report.json" };
  g_autoptr (GString) s = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *p = g_build_filename (dir, names[i], NULL);
      g_autofree char *sum = hash_file (p, NULL, error);
      if (!sum)
        return FALSE;
      g_string_append_printf (s, "%s  %s\n", sum, names[i]);
    }
  g_autofree char *path = g_build_filename (dir, "report.sha256", NULL);
  FILE *f = open_out (path, error);
  if (!f)
    return FALSE;
  fwrite (s->str, 1, s->len, f);
  return close_synced (f, path, error);
}

/* ---- the report directory ---- */

/* Removes what this report put in its temporary directory. */
static void
remove_tree (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      if (g_file_test (p, G_FILE_TEST_IS_DIR) && !g_file_test (p, G_FILE_TEST_IS_SYMLINK))
        remove_tree (p);
      else
        g_unlink (p);
    }
  g_rmdir (dir);
}

static gboolean
sync_dir (const char *dir)
{
  int fd = g_open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0)
    return FALSE;
  gboolean ok = fsync (fd) == 0;
  close (fd);
  return ok;
}

static gboolean
load_detector (DcrReport *r, GError **error)
{
  if (r->setup.det)
    return TRUE;
  if (!dcr_cli_setup_open (&r->setup, r->device, r->backbone ? r->backbone : "default", DCR_F32, r->model_path,
                           r->bank_path, FALSE, r->batch, error))
    {
      dcr_cli_setup_clear (&r->setup);
      return FALSE;
    }
  /* the tile head's highest tile and the CNN's highest block: where a
   * partial fake would be */
  dcr_detector_set_tile_maps (r->setup.det, TRUE);
  r->bank_sha256 = hash_file (dcr_bank_path (r->setup.bank), &r->bank_size, error);
  return r->bank_sha256 != NULL;
}

static void
verify (DcrReport *r, DcrReportProgress progress, gpointer user_data, GCancellable *cancellable)
{
  r->n_changed = 0;
  for (guint i = 0; i < r->items->len && !g_cancellable_is_cancelled (cancellable); i++)
    {
      DcrReportItem *it = r->items->pdata[i];
      if (it->sha256)
        {
          g_clear_pointer (&it->sha256_report, g_free);
          it->sha256_report = hash_file (it->path, NULL, NULL);
          it->changed = !it->sha256_report || strcmp (it->sha256, it->sha256_report) != 0;
          r->n_changed += it->changed;
        }
      if (progress)
        progress (DCR_REPORT_PHASE_VERIFYING, i, i + 1, r->items->len, user_data);
    }
}

static gboolean
assemble (DcrReport *r, const char *tmp, DcrReportProgress progress, gpointer user_data, GCancellable *cancellable,
          GError **error)
{
  if (progress)
    progress (DCR_REPORT_PHASE_LOADING, 0, 0, 1, user_data);
  if (!load_detector (r, error) || g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  g_clear_pointer (&r->thumb_dir, g_free);
  r->thumb_dir = g_build_filename (tmp, ".thumbnails", NULL);
  if (g_mkdir (r->thumb_dir, 0700) != 0)
    {
      int e = errno;
      g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_WRITE, "%s: cannot create: %s", r->thumb_dir,
                   g_strerror (e));
      return FALSE;
    }
  g_clear_pointer (&r->analysis_start, g_date_time_unref);
  r->analysis_start = g_date_time_new_now_utc ();
  gint64 t0 = g_get_monotonic_time ();
  if (!run_pipeline (r, progress, user_data, cancellable, error))
    return FALSE;
  r->analysis_s = (g_get_monotonic_time () - t0) / 1e6;
  g_clear_pointer (&r->analysis_end, g_date_time_unref);
  r->analysis_end = g_date_time_new_now_utc ();
  verify (r, progress, user_data, cancellable);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  if (progress)
    progress (DCR_REPORT_PHASE_WRITING, 0, 0, 1, user_data);
  g_clear_pointer (&r->written, g_date_time_unref);
  r->written = g_date_time_new_now_utc ();
  g_autofree char *pdf = g_build_filename (tmp, "report.pdf", NULL);
  g_autofree char *csv = g_build_filename (tmp, "report.csv", NULL);
  g_autofree char *json = g_build_filename (tmp, "report.json", NULL);
  if (!write_csv (r, csv, error) || !write_json (r, json, error)
      || g_cancellable_set_error_if_cancelled (cancellable, error) || !dcr_report_write_pdf (r, pdf, error)
      || !write_sums (tmp, error) || g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  remove_tree (r->thumb_dir);
  return TRUE;
}

gboolean
dcr_report_write (DcrReport *r, const char *out_dir, DcrReportProgress progress, gpointer user_data,
                  GCancellable *cancellable, GError **error)
{
  gint64 t0 = g_get_monotonic_time ();
  g_autofree char *out = g_canonicalize_filename (out_dir, NULL);
  g_autofree char *parent = g_path_get_dirname (out);
  g_autofree char *base = g_path_get_basename (out);
  GStatBuf st;
  if (g_lstat (out, &st) == 0)
    {
      g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_EXISTS,
                   "%s already exists: a report is never written over anything; choose a new folder name",
                   out_dir);
      return FALSE;
    }
  if (!g_file_test (parent, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_WRITE,
                   "cannot write the report %s: the folder %s does not exist", out_dir, parent);
      return FALSE;
    }
  g_autofree char *tmpl = g_strdup_printf ("%s/.%s.partial-XXXXXX", parent, base);
  if (!g_mkdtemp_full (tmpl, 0755))
    {
      int e = errno;
      g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_WRITE, "cannot write the report in %s: %s", parent,
                   g_strerror (e));
      return FALSE;
    }
  gboolean ok = assemble (r, tmpl, progress, user_data, cancellable, error);
  if (ok && sync_dir (tmpl))
    {
      /* never over a folder that appeared meanwhile */
      if (renameat2 (AT_FDCWD, tmpl, AT_FDCWD, out, RENAME_NOREPLACE) != 0)
        {
          int e = errno;
          if (e == EINVAL && g_lstat (out, &st) != 0 && g_rename (tmpl, out) == 0)
            e = 0;
          if (e)
            {
              g_set_error (error, DCR_REPORT_ERROR, e == EEXIST ? DCR_REPORT_ERROR_EXISTS : DCR_REPORT_ERROR_WRITE,
                           "cannot move the finished report to %s: %s", out_dir, g_strerror (e));
              ok = FALSE;
            }
        }
      if (ok)
        sync_dir (parent);
    }
  else if (ok)
    {
      g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_WRITE, "cannot flush the report in %s to disk", tmpl);
      ok = FALSE;
    }
  if (!ok)
    remove_tree (tmpl);
  /* the device, model and bank are closed here, on the thread that used
   * them: what is left is memory, freed safely from any thread */
  dcr_cli_setup_clear (&r->setup);
  r->total_s = (g_get_monotonic_time () - t0) / 1e6;
  return ok;
}
