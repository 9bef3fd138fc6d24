/* dcr-cmd-scan.c — `dcr scan` (a verdict and its evidence per image) and
 * `dcr eval` (the detector's metrics on folders of known real and fake
 * images). Evidence files are only ever opened read-only; the bank is
 * opened read-only unless scan is asked to count retrievals. */
#include "dcr-cli.h"
#include "dcr-cli-detect.h"
#include "dcr-detector.h"
#include "dcr-metrics.h"
#include "dcr-scan-run.h"
#include "dcr-walk.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TOP_CHANNELS 10

static void
add_model_bank (DcrCliSetup *s, JsonBuilder *b)
{
  json_builder_set_member_name (b, "model");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "path");
  json_builder_add_string_value (b, dcr_model_path (s->model));
  json_builder_set_member_name (b, "sha256");
  json_builder_add_string_value (b, dcr_model_sha256 (s->model));
  json_builder_set_member_name (b, "backbone");
  json_builder_add_string_value (b, dcr_model_config (s->model)->backbone_id);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "bank");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "path");
  json_builder_add_string_value (b, dcr_bank_path (s->bank));
  json_builder_set_member_name (b, "uuid");
  json_builder_add_string_value (b, dcr_bank_uuid (s->bank));
  json_builder_set_member_name (b, "generation");
  json_builder_add_int_value (b, dcr_bank_generation (s->bank));
  json_builder_set_member_name (b, "prototypes");
  json_builder_add_int_value (b, (gint64) dcr_detector_bank_count (s->det));
  json_builder_end_object (b);
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, dcr_context_device (s->ctx)->name);
}

static JsonNode *
item_json (DcrCliSetup *s, const DcrScanItem *it)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "file");
  json_builder_add_string_value (b, it->path);
  if (it->error)
    {
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, it->error->message);
      json_builder_end_object (b);
      return json_builder_get_root (b);
    }
  const DcrDetection *d = &it->det;
  json_builder_set_member_name (b, "sha256");
  json_builder_add_string_value (b, it->sha256);
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, it->img->width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, it->img->height);
  json_builder_set_member_name (b, "verdict");
  json_builder_add_string_value (b, dcr_verdict_name (d->verdict));
  dcr_cli_json_add_double (b, "p_fake", d->p_fake);
  dcr_cli_json_add_double (b, "anomaly", d->anomaly);
  dcr_cli_json_add_tiles (b, d, it->img->width, it->img->height);
  dcr_cli_json_add_cnn (b, d, dcr_backbone_cnn (s->bb), it->img->width, it->img->height);
  dcr_cli_json_add_decision (b, s->model, d->jpeg);
  dcr_cli_json_add_jpeg_trace (b, it->img->format == DCR_IMAGE_FORMAT_JPEG, &d->jpeg_trace);
  dcr_cli_json_add_detail (b, d->detail);
  json_builder_set_member_name (b, "prototypes");
  json_builder_begin_array (b);
  for (guint j = 0; j < d->k; j++)
    {
      const DcrPrototype *p = g_hash_table_lookup (s->sources, &d->ids[j]);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "id");
      json_builder_add_int_value (b, d->ids[j]);
      dcr_cli_json_add_double (b, "similarity", d->similarity[j]);
      dcr_cli_json_add_double (b, "attention", d->attention[j]);
      json_builder_set_member_name (b, "source");
      json_builder_add_string_value (b, p ? p->source : NULL);
      json_builder_set_member_name (b, "sha256");
      json_builder_add_string_value (b, p ? p->sha256 : NULL);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  guint dim = dcr_backbone_dim (s->bb), top[TOP_CHANNELS], nt = MIN (TOP_CHANNELS, dim);
  dcr_cli_top_channels (d->residual, dim, top, nt);
  json_builder_set_member_name (b, "top_channels");
  json_builder_begin_array (b);
  for (guint t = 0; t < nt; t++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "index");
      json_builder_add_int_value (b, top[t]);
      json_builder_set_member_name (b, "tap");
      json_builder_add_string_value (b, dcr_cli_tap_of (s->bb, top[t]));
      dcr_cli_json_add_double (b, "magnitude", d->residual[top[t]]);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "attention");
  json_builder_begin_array (b);
  for (guint j = 0; j < d->k; j++)
    json_builder_add_double_value (b, d->attention[j]);
  json_builder_end_array (b);
  add_model_bank (s, b);
  json_builder_set_member_name (b, "backbone");
  json_builder_add_string_value (b, dcr_backbone_id (s->bb));
  dcr_cli_json_add_double (b, "ms", it->ms);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static void
item_print (DcrCliSetup *s, const DcrScanItem *it)
{
  if (it->error)
    {
      fprintf (stderr, "dcr: %s\n", it->error->message);
      return;
    }
  const DcrDetection *d = &it->det;
  const DcrPrototype *p = d->k ? g_hash_table_lookup (s->sources, &d->ids[0]) : NULL;
  printf ("%s: %s (p_fake %.3f, anomaly %.3f", it->path, dcr_verdict_name (d->verdict), d->p_fake, d->anomaly);
  if (d->has_tiles)
    printf (", tile score %.2f", d->tile_score);
  if (d->has_cnn)
    printf (", CNN top blocks p=%.2f", 1.0 / (1.0 + exp (-(double) d->cnn_top)));
  printf (")");
  g_autofree char *trace = dcr_cli_jpeg_trace_text (&d->jpeg_trace);
  if (*trace)
    printf ("; %s", trace);
  if (d->jpeg && dcr_model_config (s->model)->jpeg_decision)
    {
      DcrDecision dec = dcr_model_decision (s->model, TRUE);
      printf ("; the model's decision for JPEG files: threshold %.2f, band [%.2f, %.2f)", dec.threshold, dec.band_lo,
              dec.band_hi);
    }
  if (d->k)
    printf ("; nearest real #%" G_GINT64_FORMAT " %s (similarity %.3f)", d->ids[0], p && p->source ? p->source : "",
            d->similarity[0]);
  g_autofree char *caution = dcr_cli_detail_text (d->detail);
  if (*caution)
    printf ("; %s", caution);
  printf ("\n");
}

typedef struct {
  gboolean json;
  JsonArray *json_out;
  GArray *nearest; /* the nearest prototype's id of every file scanned */
  int failed;
} ScanOut;

static void
scan_each (DcrCliSetup *s, const DcrScanItem *it, gpointer user_data)
{
  ScanOut *o = user_data;
  if (it->error)
    {
      o->failed++;
      if (o->json) /* the JSON has it too; stderr tells a person at once */
        fprintf (stderr, "dcr: %s\n", it->error->message);
    }
  else if (it->det.k)
    g_array_append_val (o->nearest, it->det.ids[0]);
  if (o->json)
    json_array_add_element (o->json_out, item_json (s, it));
  else
    item_print (s, it);
}

int
dcr_cmd_scan (int argc, char **argv)
{
  const char *device = NULL, *backbone = "default", *dtype = "f32", *model = NULL, *bank = NULL;
  gboolean json = FALSE, count = FALSE, tile_map = FALSE;
  int batch = DCR_CLI_DEFAULT_BATCH;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "Detector model (the shipped one by default)", "MODEL" },
    { "bank", 0, 0, G_OPTION_ARG_FILENAME, &bank, "Bank of real prototypes (the shipped one by default)", "BANK" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON (an array, one object per file)", NULL },
    { "count-retrievals", 0, 0, G_OPTION_ARG_NONE, &count, "Record in the bank which prototypes were nearest",
      NULL },
    { "tile-map", 0, 0, G_OPTION_ARG_NONE, &tile_map,
      "With --json: where a partial fake would be — with a tile head every tile's score and place, with the "
      "forensic CNN every block's (\"cnn_map\")", NULL },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Images per GPU batch (" G_STRINGIFY (DCR_CLI_DEFAULT_BATCH) ")", "N" },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "backbone", 'b', 0, G_OPTION_ARG_STRING, &backbone, "Backbone (default)", "SPEC" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype, "f32 or f16 (storage)", "TYPE" },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("PATH… - real, fake or inconclusive, and why");
  g_option_context_set_description (
      oc, "PATH is an image file (PNG or JPEG, told by content) or a folder, walked recursively in name order\n"
          "(links to folders are not followed). Every file found is scanned; one that cannot be (not an\n"
          "image, damaged, too small) gets its reason, on stderr and in the JSON, and the others go on.\n"
          "Evidence files are only opened read-only.\n"
          "Exit status: 0 every file was scanned, 1 some could not be (or nothing was found), 2 usage error.");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (argc < 2 || batch < 1 || (g_strcmp0 (dtype, "f32") != 0 && g_strcmp0 (dtype, "f16") != 0))
    {
      fprintf (stderr, "dcr: scan needs at least one image or folder (and --batch ≥ 1, --dtype f32|f16)\n");
      return 2;
    }
  g_autoptr (GError) err = NULL;
  g_autoptr (GArray) walked = dcr_walk_collect ((const char *const *) argv + 1, (guint) argc - 1, &err);
  if (!walked)
    {
      fprintf (stderr, "dcr: %s\n", err->message);
      return 1;
    }
  const DcrWalkEntry *ent = (const DcrWalkEntry *) walked->data;
  int total = (int) walked->len;
  g_auto (DcrCliSetup) s = { 0 };
  DcrDtype dt;
  if (!dcr_cli_dtype_from_name (dtype, &dt, &err)
      || !dcr_cli_setup_open (&s, device, backbone, dt, model, bank, count, (guint) MIN (batch, total), &err))
    return dcr_cli_fail (err);
  dcr_detector_set_tile_maps (s.det, tile_map);
  ScanOut o = { json, json ? json_array_new () : NULL, g_array_new (FALSE, FALSE, sizeof (gint64)), 0 };
  g_autoptr (JsonArray) out = o.json_out;
  g_autoptr (GArray) nearest = o.nearest;
  if (!dcr_scan_run (&s, ent, (guint) total, scan_each, &o, &err))
    return dcr_cli_fail (err);
  int failed = o.failed;
  if (count && nearest->len && !dcr_bank_add_retrievals (s.bank, (gint64 *) nearest->data, nearest->len, &err))
    return dcr_cli_fail (err);
  if (json)
    {
      g_autoptr (JsonNode) root = json_node_init_array (json_node_alloc (), out);
      g_autofree char *text = json_to_string (root, TRUE);
      printf ("%s\n", text);
    }
  return failed ? 1 : 0;
}

/* A fake's generator: by its path as listed, by basename, or by its path
 * relative to the --fake folder (when basenames repeat across generators). */
static gint32
manifest_group (const DcrManifest *mf, const char *fake_dir, const char *path)
{
  gint32 g = dcr_manifest_lookup (mf, path);
  g_autofree char *rel = g < 0 ? dcr_cli_path_under (fake_dir, path) : NULL;
  return rel ? dcr_manifest_lookup (mf, rel) : g;
}

static void
add_metrics (JsonBuilder *b, const DcrMetrics *m)
{
  dcr_cli_json_add_double (b, "acc", m->acc);
  dcr_cli_json_add_double (b, "ap", m->ap);
  dcr_cli_json_add_double (b, "auc", m->auc);
  dcr_cli_json_add_double (b, "eer", m->eer);
  dcr_cli_json_add_double (b, "tpr_at_fpr5", m->tpr_at_fpr5);
}

int
dcr_cmd_eval (int argc, char **argv)
{
  const char *device = NULL, *backbone = "default", *dtype = "f32", *model = NULL, *bank = NULL;
  const char *real_dir = NULL, *fake_dir = NULL, *manifest_path = NULL;
  gboolean json = FALSE, no_cache = FALSE, quiet = FALSE;
  double threshold = NAN;
  GOptionEntry entries[] = {
    { "real", 0, 0, G_OPTION_ARG_FILENAME, &real_dir, "Folder of real images", "DIR" },
    { "fake", 0, 0, G_OPTION_ARG_FILENAME, &fake_dir, "Folder of fake images", "DIR" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "Detector model (the shipped one by default)", "MODEL" },
    { "bank", 0, 0, G_OPTION_ARG_FILENAME, &bank, "Bank of real prototypes (the shipped one by default)", "BANK" },
    { "threshold", 0, 0, G_OPTION_ARG_DOUBLE, &threshold, "Decision threshold on p_fake (the model's)", "T" },
    { "manifest", 0, 0, G_OPTION_ARG_FILENAME, &manifest_path,
      "CSV with columns file,generator: metrics per generator (its fakes against all reals)", "CSV" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "no-cache", 0, 0, G_OPTION_ARG_NONE, &no_cache, "Do not read or write the feature cache", NULL },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "backbone", 'b', 0, G_OPTION_ARG_STRING, &backbone, "Backbone (default)", "SPEC" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype, "f32 or f16 (storage)", "TYPE" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress output", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("- measure the detector on labelled folders");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (!real_dir || !fake_dir || argc > 1 || (g_strcmp0 (dtype, "f32") != 0 && g_strcmp0 (dtype, "f16") != 0))
    {
      fprintf (stderr, "dcr: eval needs --real DIR --fake DIR (see `dcr eval --help`)\n");
      return 2;
    }
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrManifest) manifest = NULL;
  if (manifest_path && !(manifest = dcr_manifest_load (manifest_path, &err)))
    return dcr_cli_fail (err);
  g_auto (DcrCliSetup) s = { 0 };
  DcrDtype dt;
  if (!dcr_cli_dtype_from_name (dtype, &dt, &err)
      || !dcr_cli_setup_open (&s, device, backbone, dt, model, bank, FALSE, 32, &err))
    return dcr_cli_fail (err);
  const char *dirs[] = { real_dir, fake_dir };
  g_autoptr (GArray) groups = g_array_new (FALSE, FALSE, sizeof (gint32));
  guint n_unlisted = 0;
  g_autoptr (GArray) scores = g_array_new (FALSE, FALSE, sizeof (float));
  g_autoptr (GArray) anomaly = g_array_new (FALSE, FALSE, sizeof (float));
  g_autoptr (GArray) labels = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr (GArray) thresholds = g_array_new (FALSE, FALSE, sizeof (float));
  guint n_jpeg = 0, n_trace = 0; /* judged as JPEG; of them, files other than JPEG with a JPEG grid */
  guint n_failed = 0, n_inconclusive = 0, dim = dcr_backbone_dim (s.bb), b = dcr_detector_batch (s.det);
  g_autofree DcrDetection *dets = g_new0 (DcrDetection, b);
  g_autofree float *rows = g_new (float, (gsize) b * dim);
  g_autofree gboolean *jpeg = g_new (gboolean, b);
  guint n_scored = 0, n_failed_before = 0;
  for (gint32 cls = 0; cls < 2; cls++)
    {
      float *features = NULL;
      DcrFeatureItem *items = NULL;
      guint n = 0;
      if (!dcr_cli_folder_features (s.bb, dirs[cls], !no_cache, quiet || json, &features, &items, &n, &err))
        return dcr_cli_fail (err);
      for (guint i = 0; i < n;)
        {
          guint m = 0;
          for (; i < n && m < b; i++)
            if (!items[i].error)
              {
                jpeg[m] = dcr_feature_item_judged_as_jpeg (&items[i]);
                n_trace += !items[i].jpeg && items[i].jpeg_trace.found;
                memcpy (rows + (gsize) m++ * dim, features + (gsize) i * dim, dim * sizeof (float));
                gint32 g = -1;
                if (manifest && cls == 1)
                  g = manifest_group (manifest, fake_dir, items[i].path);
                n_unlisted += manifest && cls == 1 && g < 0;
                g_array_append_val (groups, g);
              }
            else
              n_failed++;
          if (m && !dcr_detector_run_features (s.det, rows, jpeg, m, dets, &err))
            {
              g_free (features);
              return dcr_cli_fail (err);
            }
          for (guint j = 0; j < m; j++)
            {
              g_array_append_val (scores, dets[j].p_fake);
              g_array_append_val (anomaly, dets[j].anomaly);
              g_array_append_val (labels, cls);
              float t = isfinite (threshold) ? (float) threshold : dcr_model_decision (s.model, dets[j].jpeg).threshold;
              g_array_append_val (thresholds, t);
              n_jpeg += dets[j].jpeg;
              n_inconclusive += dets[j].verdict == DCR_VERDICT_INCONCLUSIVE;
              dcr_detection_clear (&dets[j]);
            }
        }
      for (guint i = 0; i < n; i++)
        dcr_feature_item_clear (&items[i]);
      g_free (items);
      g_free (features);
      if (scores->len == n_scored)
        {
          /* the metrics need both classes: say so rather than print NaNs */
          fprintf (stderr, "dcr: eval: no %s images could be read under %s (%u could not be read); the AUC, AP and "
                   "EER need real and fake images\n", cls ? "fake" : "real", dirs[cls], n_failed - n_failed_before);
          return 1;
        }
      n_scored = scores->len;
      n_failed_before = n_failed;
    }
  const DcrModelConfig *cfg = dcr_model_config (s.model);
  float thr = isfinite (threshold) ? (float) threshold : cfg->threshold;
  /* the model's own decision per file: its JPEG threshold for JPEG files */
  gboolean per_file = !isfinite (threshold) && cfg->jpeg_decision && n_jpeg;
  DcrMetrics m, ma;
  if (per_file)
    dcr_metrics_compute_at ((float *) scores->data, (gint32 *) labels->data, (float *) thresholds->data,
                            scores->len, &m);
  else
    dcr_metrics_compute ((float *) scores->data, (gint32 *) labels->data, scores->len, thr, &m);
  dcr_metrics_compute ((float *) anomaly->data, (gint32 *) labels->data, anomaly->len, 0.5f, &ma);
  guint n_gen = manifest ? dcr_manifest_n_generators (manifest) : 0;
  g_autofree DcrMetrics *per_gen = g_new0 (DcrMetrics, MAX (n_gen, 1));
  if (n_gen && per_file)
    dcr_metrics_by_group_at ((float *) scores->data, (gint32 *) labels->data, (gint32 *) groups->data,
                             (float *) thresholds->data, scores->len, n_gen, per_gen);
  else if (n_gen)
    dcr_metrics_by_group ((float *) scores->data, (gint32 *) labels->data, (gint32 *) groups->data, scores->len,
                          n_gen, thr, per_gen);
  if (json)
    {
      g_autoptr (JsonBuilder) jb = json_builder_new ();
      json_builder_begin_object (jb);
      json_builder_set_member_name (jb, "n_real");
      json_builder_add_int_value (jb, (gint64) m.n_neg);
      json_builder_set_member_name (jb, "n_fake");
      json_builder_add_int_value (jb, (gint64) m.n_pos);
      json_builder_set_member_name (jb, "n_failed");
      json_builder_add_int_value (jb, n_failed);
      dcr_cli_json_add_double (jb, "threshold", thr);
      json_builder_set_member_name (jb, "n_jpeg");
      json_builder_add_int_value (jb, n_jpeg);
      json_builder_set_member_name (jb, "n_jpeg_trace");
      json_builder_add_int_value (jb, n_trace);
      if (per_file)
        dcr_cli_json_add_double (jb, "jpeg_threshold", cfg->jpeg.threshold);
      add_metrics (jb, &m);
      dcr_cli_json_add_double (jb, "eer_threshold", m.eer_threshold);
      json_builder_set_member_name (jb, "confusion");
      json_builder_begin_object (jb);
      const char *names[] = { "tp", "fp", "tn", "fn" };
      gsize vals[] = { m.tp, m.fp, m.tn, m.fn };
      for (guint i = 0; i < 4; i++)
        {
          json_builder_set_member_name (jb, names[i]);
          json_builder_add_int_value (jb, (gint64) vals[i]);
        }
      json_builder_end_object (jb);
      json_builder_set_member_name (jb, "inconclusive");
      json_builder_add_int_value (jb, n_inconclusive);
      json_builder_set_member_name (jb, "anomaly_score");
      json_builder_begin_object (jb);
      dcr_cli_json_add_double (jb, "auc", ma.auc);
      dcr_cli_json_add_double (jb, "ap", ma.ap);
      json_builder_end_object (jb);
      if (manifest)
        {
          json_builder_set_member_name (jb, "n_fake_unlisted");
          json_builder_add_int_value (jb, n_unlisted);
          json_builder_set_member_name (jb, "generators");
          json_builder_begin_array (jb);
          for (guint g = 0; g < n_gen; g++)
            {
              json_builder_begin_object (jb);
              json_builder_set_member_name (jb, "generator");
              json_builder_add_string_value (jb, dcr_manifest_generator (manifest, g));
              json_builder_set_member_name (jb, "n_fake");
              json_builder_add_int_value (jb, (gint64) per_gen[g].n_pos);
              add_metrics (jb, &per_gen[g]);
              json_builder_set_member_name (jb, "tp");
              json_builder_add_int_value (jb, (gint64) per_gen[g].tp);
              json_builder_set_member_name (jb, "fn");
              json_builder_add_int_value (jb, (gint64) per_gen[g].fn);
              json_builder_end_object (jb);
            }
          json_builder_end_array (jb);
        }
      add_model_bank (&s, jb);
      json_builder_end_object (jb);
      g_autoptr (JsonNode) root = json_builder_get_root (jb);
      g_autofree char *text = json_to_string (root, TRUE);
      printf ("%s\n", text);
    }
  else
    {
      printf ("images: %zu real, %zu fake (%u could not be read)\n", m.n_neg, m.n_pos, n_failed);
      if (per_file)
        {
          g_autofree char *of_them = n_trace ? g_strdup_printf (", %u of them PNGs with an earlier JPEG's grid", n_trace)
                                             : g_strdup ("");
          printf ("ACC %.4f at threshold %.4f (%u JPEG files%s: at the model's JPEG threshold %.4f)\n", m.acc, thr,
                  n_jpeg, of_them, cfg->jpeg.threshold);
        }
      else
        printf ("ACC %.4f at threshold %.4f\n", m.acc, thr);
      printf ("AP %.4f  ROC AUC %.4f  EER %.4f (at %.4f)  TPR@5%%FPR %.4f\n", m.ap, m.auc, m.eer, m.eer_threshold,
              m.tpr_at_fpr5);
      printf ("confusion: TP %zu  FP %zu  TN %zu  FN %zu\n", m.tp, m.fp, m.tn, m.fn);
      if (cfg->jpeg_decision && n_jpeg)
        printf ("inconclusive: %u of %zu (band [%.4f, %.4f); JPEG files [%.4f, %.4f))\n", n_inconclusive,
                m.n_pos + m.n_neg, cfg->band_lo, cfg->band_hi, cfg->jpeg.band_lo, cfg->jpeg.band_hi);
      else
        printf ("inconclusive: %u of %zu (band [%.4f, %.4f))\n", n_inconclusive, m.n_pos + m.n_neg, cfg->band_lo,
                cfg->band_hi);
      printf ("anomaly score alone: ROC AUC %.4f, AP %.4f\n", ma.auc, ma.ap);
      if (manifest)
        {
          printf ("per generator (its fakes against all %zu reals; %u fakes not in the manifest):\n", m.n_neg,
                  n_unlisted);
          for (guint g = 0; g < n_gen; g++)
            printf ("  %-20s fakes %5zu  ACC %.4f  AP %.4f  ROC AUC %.4f  EER %.4f  TPR@5%%FPR %.4f  TP %zu  FN %zu\n",
                    dcr_manifest_generator (manifest, g), per_gen[g].n_pos, per_gen[g].acc, per_gen[g].ap,
                    per_gen[g].auc, per_gen[g].eer, per_gen[g].tpr_at_fpr5, per_gen[g].tp, per_gen[g].fn);
        }
    }
  return scores->len ? 0 : 1;
}
