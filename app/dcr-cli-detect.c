/* dcr-cli-detect.c — shared by the detector commands; see the header. */
#include "dcr-cli-detect.h"
#include "dcr-tile-head.h"
#include "dcr-detector.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

DcrModel *
dcr_cli_load_model (DcrContext *ctx, const char *path, GError **error)
{
  g_autofree char *def = path ? NULL : dcr_detector_default_model_path ();
  if (!path && !def)
    {
      g_set_error (error, DCR_MODEL_ERROR, DCR_MODEL_ERROR_FORMAT,
                   "no detector model: this installation ships none yet; train one with `dcr train --real DIR "
                   "--fake DIR --out MODEL` and pass it with --model MODEL");
      return NULL;
    }
  return dcr_model_load (ctx, path ? path : def, error);
}

DcrBank *
dcr_cli_open_bank (const char *path, DcrBackbone *bb, gboolean writable, GError **error)
{
  g_autofree char *def = path ? NULL : dcr_detector_default_bank_path ();
  if (!path && !def)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_IO,
                   "no prototype bank: pass --bank BANK (one is built from real images by `dcr train "
                   "--bank BANK --bank-from-reals`)");
      return NULL;
    }
  return dcr_bank_open (path ? path : def, dcr_backbone_id (bb), dcr_backbone_dim (bb), !writable, error);
}

char *
dcr_cli_duration (double s)
{
  if (!isfinite (s) || s < 0)
    return g_strdup ("?");
  guint64 t = (guint64) (s + 0.5);
  if (t >= 3600)
    return g_strdup_printf ("%" G_GUINT64_FORMAT " h %02u min", t / 3600, (guint) (t % 3600 / 60));
  if (t >= 60)
    return g_strdup_printf ("%u min %02u s", (guint) (t / 60), (guint) (t % 60));
  return g_strdup_printf ("%u s", (guint) t);
}

gboolean
dcr_cli_progress (guint done, guint total, gpointer user_data)
{
  DcrCliProgress *p = user_data;
  if (p->quiet)
    return TRUE;
  gint64 now = g_get_monotonic_time ();
  if (!p->start_us)
    p->start_us = p->last_us = now;
  gboolean tty = isatty (2);
  if (done < total && now - p->last_us < (tty ? 200000 : 5000000))
    return TRUE;
  p->last_us = now;
  double el = (now - p->start_us) / 1e6, rate = el > 0 ? done / el : 0;
  if (done == total)
    {
      g_autofree char *took = dcr_cli_duration (el);
      fprintf (stderr, "%s%s: %u/%u in %s\n", tty ? "\r" : "", p->what, done, total, took);
      return TRUE;
    }
  g_autofree char *eta = dcr_cli_duration (rate > 0 ? (total - done) / rate : NAN);
  fprintf (stderr, "%s%s: %u/%u (%.1f/s, ETA %s)%s", tty ? "\r" : "", p->what, done, total, rate, eta,
           tty ? "  " : "\n");
  return TRUE;
}

gboolean
dcr_cli_folder_features (DcrBackbone *bb, const char *dir, gboolean use_cache, gboolean quiet, float **features,
                         DcrFeatureItem **items, guint *n, GError **error)
{
  g_autoptr (GPtrArray) files = dcr_list_images (dir, error);
  if (!files)
    return FALSE;
  *n = files->len;
  *features = g_new0 (float, (gsize) MAX (files->len, 1) * dcr_backbone_dim (bb));
  *items = g_new0 (DcrFeatureItem, MAX (files->len, 1));
  g_autofree char *what = g_strdup_printf ("features of %s", dir);
  DcrCliProgress pr = { what, .quiet = quiet };
  if (!dcr_features_extract (bb, (const char *const *) files->pdata, files->len, use_cache, 8, *features, *items,
                             dcr_cli_progress, &pr, error))
    return FALSE;
  for (guint i = 0; i < files->len; i++)
    if ((*items)[i].error)
      fprintf (stderr, "dcr: skipped %s\n", (*items)[i].error->message);
  return TRUE;
}

void
dcr_cli_json_add_double (JsonBuilder *b, const char *name, double v)
{
  json_builder_set_member_name (b, name);
  if (isfinite (v))
    json_builder_add_double_value (b, v);
  else
    json_builder_add_null_value (b);
}

guint
dcr_cli_default_decoders (void)
{
  return CLAMP (g_get_num_processors (), 1, DCR_CLI_MAX_DECODERS);
}

const char *
dcr_cli_decision_name (DcrModel *m, gboolean jpeg)
{
  if (!dcr_model_config (m)->jpeg_decision)
    return "single";
  return jpeg ? "jpeg" : "other";
}

void
dcr_cli_json_add_thresholds (JsonBuilder *b, const DcrDecision *d)
{
  dcr_cli_json_add_double (b, "threshold", d->threshold);
  json_builder_set_member_name (b, "inconclusive_band");
  json_builder_begin_array (b);
  json_builder_add_double_value (b, d->band_lo);
  json_builder_add_double_value (b, d->band_hi);
  json_builder_end_array (b);
}

void
dcr_cli_json_add_decision (JsonBuilder *b, DcrModel *m, gboolean jpeg)
{
  DcrDecision d = dcr_model_decision (m, jpeg);
  dcr_cli_json_add_thresholds (b, &d);
  json_builder_set_member_name (b, "decision");
  json_builder_add_string_value (b, dcr_cli_decision_name (m, jpeg));
}

void
dcr_cli_json_add_jpeg_trace (JsonBuilder *b, gboolean jpeg_file, const DcrJpegTrace *t)
{
  json_builder_set_member_name (b, "jpeg_trace");
  if (jpeg_file)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "found");
  json_builder_add_boolean_value (b, t->found);
  dcr_cli_json_add_double (b, "contrast", t->contrast);
  dcr_cli_json_add_double (b, "score", t->score);
  json_builder_set_member_name (b, "origin");
  json_builder_begin_array (b);
  json_builder_add_int_value (b, t->origin_x);
  json_builder_add_int_value (b, t->origin_y);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "blocks");
  json_builder_add_int_value (b, t->blocks);
  json_builder_end_object (b);
}

char *
dcr_cli_jpeg_trace_text (const DcrJpegTrace *t)
{
  if (!t->found)
    return g_strdup ("");
  return g_strdup_printf ("the pixels carry the 8×8 grid of an earlier JPEG compression (origin %u,%u; margin %.2f)",
                          t->origin_x, t->origin_y, t->contrast);
}

void
dcr_cli_json_add_detail (JsonBuilder *b, float detail)
{
  json_builder_set_member_name (b, "detail");
  if (isnan (detail))
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  dcr_cli_json_add_double (b, "value", detail);
  json_builder_set_member_name (b, "low");
  json_builder_add_boolean_value (b, dcr_detail_is_low (detail));
  dcr_cli_json_add_double (b, "threshold", DCR_DETAIL_LOW);
  json_builder_end_object (b);
}

char *
dcr_cli_detail_text (float detail)
{
  if (!dcr_detail_is_low (detail))
    return g_strdup ("");
  return g_strdup_printf ("caution: little fine detail (%.2f, under %.2f: less than in 95 %% of the real photos the "
                          "default model learnt from, as out of focus, fog or sky) — the verdict rests on little "
                          "evidence",
                          detail, DCR_DETAIL_LOW);
}

void
dcr_cli_setup_clear (DcrCliSetup *s)
{
  g_clear_pointer (&s->det, dcr_detector_free);
  g_clear_pointer (&s->sources, g_hash_table_unref);
  g_clear_pointer (&s->protos, g_ptr_array_unref);
  g_clear_pointer (&s->bank, dcr_bank_close);
  g_clear_pointer (&s->model, dcr_model_free);
  g_clear_pointer (&s->bb, dcr_backbone_free);
  g_clear_pointer (&s->ctx, dcr_context_free);
}

gboolean
dcr_cli_setup_open (DcrCliSetup *s, const char *device, const char *backbone, DcrDtype dtype, const char *model,
                    const char *bank, gboolean writable, guint batch, GError **error)
{
  /* the pipelines depend on the backbone, the model, the storage type and
   * the batch: one warm-up list for each such set-up */
  g_autofree char *what = g_strdup_printf ("%s|%s|%d|%u", backbone ? backbone : "", model ? model : "", dtype, batch);
  g_autofree char *profile = g_strdup_printf ("detect-%08x", g_str_hash (what));
  DcrContextOptions copts = { .device = device, .warm_profile = profile };
  if (!(s->ctx = dcr_context_new (&copts, error)) || !(s->bb = dcr_backbone_load (s->ctx, backbone, dtype, error))
      || !(s->model = dcr_cli_load_model (s->ctx, model, error))
      || !dcr_model_check_backbone (s->model, dcr_backbone_id (s->bb), dcr_backbone_dim (s->bb), error)
      || !(s->bank = dcr_cli_open_bank (bank, s->bb, writable, error))
      || !(s->det = dcr_detector_new (s->bb, s->model, s->bank, batch, error))
      || !(s->protos = dcr_bank_list (s->bank, error)))
    return FALSE;
  s->sources = g_hash_table_new (g_int64_hash, g_int64_equal);
  for (guint i = 0; i < s->protos->len; i++)
    {
      DcrPrototype *p = s->protos->pdata[i];
      g_hash_table_insert (s->sources, &p->id, p);
    }
  return TRUE;
}

const char *
dcr_cli_tap_of (DcrBackbone *bb, guint channel)
{
  for (guint t = 0; t < dcr_backbone_n_taps (bb); t++)
    {
      const DcrBackboneTap *tap = dcr_backbone_tap (bb, t);
      if (channel >= tap->offset && channel < tap->offset + tap->width)
        return tap->name;
    }
  return "?";
}

void
dcr_cli_top_channels (const float *residual, guint dim, guint *idx, guint n)
{
  for (guint t = 0; t < n; t++)
    {
      gint best = -1;
      for (guint c = 0; c < dim; c++)
        {
          gboolean taken = FALSE;
          for (guint u = 0; u < t; u++)
            taken |= idx[u] == c;
          if (!taken && (best < 0 || residual[c] > residual[best]))
            best = (gint) c;
        }
      idx[t] = (guint) best;
    }
}

/* "x", "y", "w", "h" of a rectangle in image pixels */
static void
add_rect (JsonBuilder *b, gint64 x, gint64 y, gint64 w, gint64 h)
{
  dcr_cli_json_add_int (b, "x", x);
  dcr_cli_json_add_int (b, "y", y);
  dcr_cli_json_add_int (b, "w", w);
  dcr_cli_json_add_int (b, "h", h);
}

void
dcr_cli_json_add_tiles (JsonBuilder *b, const DcrDetection *d, guint width, guint height)
{
  dcr_cli_json_add_double (b, "p_heads", d->p_heads);
  if (!d->has_tiles)
    return;
  json_builder_set_member_name (b, "tiles");
  json_builder_begin_object (b);
  dcr_cli_json_add_double (b, "score", d->tile_score);
  dcr_cli_json_add_double (b, "max", d->tile_max);
  DcrForensicWindow win;
  if (d->tile_logits && dcr_forensic_window (height, width, &win))
    {
      json_builder_set_member_name (b, "map");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "rows");
      json_builder_add_int_value (b, d->tile_rows);
      json_builder_set_member_name (b, "cols");
      json_builder_add_int_value (b, d->tile_cols);
      json_builder_set_member_name (b, "tiles");
      json_builder_begin_array (b);
      for (guint t = 0; t < d->tile_rows * d->tile_cols; t++)
        {
          gint64 x, y, w, h;
          dcr_tile_rect (&win, t, &x, &y, &w, &h);
          json_builder_begin_object (b);
          add_rect (b, x, y, w, h);
          dcr_cli_json_add_double (b, "score", d->tile_logits[t]);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
}

static double
sigmoid (double x)
{
  return 1.0 / (1.0 + exp (-x));
}

void
dcr_cli_json_add_cnn (JsonBuilder *b, const DcrDetection *d, const DcrCnn *cnn, guint width, guint height)
{
  if (!d->has_cnn)
    return;
  json_builder_set_member_name (b, "cnn");
  json_builder_begin_object (b);
  dcr_cli_json_add_double (b, "mean", d->cnn_mean);
  dcr_cli_json_add_double (b, "top", d->cnn_top);
  dcr_cli_json_add_double (b, "max", d->cnn_max);
  dcr_cli_json_add_double (b, "p_top", sigmoid (d->cnn_top));
  json_builder_end_object (b);
  /* only blocks that fit this image's grid are placed */
  if (!dcr_detection_cnn_highest (d, cnn, width, height, NULL, NULL, NULL))
    return;
  json_builder_set_member_name (b, "cnn_map");
  json_builder_begin_array (b);
  for (guint t = 0; t < d->cnn_rows * d->cnn_cols; t++)
    {
      gint64 x, y, w, h;
      dcr_cnn_block_rect (cnn, height, width, d->cnn_cols, t, &x, &y, &w, &h);
      json_builder_begin_object (b);
      add_rect (b, x, y, w, h);
      dcr_cli_json_add_double (b, "score", d->cnn_blocks[t]);
      dcr_cli_json_add_double (b, "p", sigmoid (d->cnn_blocks[t]));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

char *
dcr_cli_path_under (const char *dir, const char *path)
{
  g_autofree char *root = g_canonicalize_filename (dir, NULL);
  g_autofree char *abs = g_canonicalize_filename (path, NULL);
  gsize rl = strlen (root);
  if (g_str_has_prefix (abs, root) && abs[rl] == G_DIR_SEPARATOR)
    return g_strdup (abs + rl + 1);
  return NULL;
}

const char *
dcr_cli_manifest_value (const DcrManifest *mf, const char *mf_dir, gint col, const char *path)
{
  const char *v = dcr_manifest_value (mf, path, col);
  if (v)
    return v;
  g_autofree char *rel = dcr_cli_path_under (mf_dir, path);
  return rel ? dcr_manifest_value (mf, rel, col) : NULL;
}

gboolean
dcr_cli_parse_rect (const char *s, gint64 r[4])
{
  g_auto (GStrv) f = g_strsplit (s, ",", -1);
  if (g_strv_length (f) != 4)
    return FALSE;
  for (int i = 0; i < 4; i++)
    {
      guint64 v;
      if (!g_ascii_string_to_unsigned (g_strstrip (f[i]), 10, 0, G_MAXINT32, &v, NULL) || (i >= 2 && v == 0))
        return FALSE;
      r[i] = (gint64) v;
    }
  return TRUE;
}

void
dcr_cli_json_add_int (JsonBuilder *b, const char *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
}

void
dcr_cli_json_add_strv (JsonBuilder *b, const char *name, char **v)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (guint i = 0; v && v[i]; i++)
    json_builder_add_string_value (b, v[i]);
  json_builder_end_array (b);
}

gboolean
dcr_cli_epoch_report (guint epoch, guint epochs, double loss, gpointer quiet)
{
  if (!GPOINTER_TO_INT (quiet) && (epoch == 1 || epoch % 5 == 0 || epoch == epochs))
    fprintf (stderr, "epoch %u/%u  loss %.4f\n", epoch, epochs, loss);
  return TRUE;
}

gboolean
dcr_cli_out_folder_exists (const char *out)
{
  g_autofree char *parent = g_path_get_dirname (out);
  if (g_file_test (parent, G_FILE_TEST_IS_DIR))
    return TRUE;
  fprintf (stderr, "dcr: %s: the folder %s does not exist\n", out, parent);
  return FALSE;
}

DcrImage *
dcr_cli_load_image (const char *path, char **sha256, GError **error)
{
  g_autoptr (GMappedFile) mf = g_mapped_file_new (path, FALSE, error);
  if (!mf)
    return NULL;
  g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (mf);
  *sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);
  return dcr_image_load_from_bytes (bytes, path, NULL, error);
}
