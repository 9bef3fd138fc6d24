/* test-report.c — the batch report library (app/dcr-report.h) without the
 * CLI: intake order, images found by content (a JPEG named .dat) and
 * rejections, a file changed after intake flagged, the progress it
 * reports phase by phase (every file exactly once), and a GCancellable cancelled mid-batch or an
 * existing folder leaving the output folder's parent as it was. Uses a
 * model with fresh weights: the verdicts mean nothing, the plumbing does. */
#include "dcr-config.h"
#include "dcr-report.h"
#include "dcr-test-files.h"
#include "dcr-cnn.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

static char *tmpdir, *model_path, *bank_path;

static void
make_model (void)
{
  model_path = g_build_filename (tmpdir, "m.safetensors", NULL);
  bank_path = g_build_filename (tmpdir, "bank.dcrbank", NULL);
  dcr_test_make_untrained_detector (model_path, bank_path, 3, 3, "/evidence/real.png");
  /* with a decision for JPEG files that calls every JPEG inconclusive */
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrContext) ctx = dcr_context_new (NULL, &err);
  g_autoptr (DcrModel) m = dcr_model_load (ctx, model_path, &err);
  g_assert_no_error (err);
  const DcrDecision jpeg = { 0.5f, 0.0f, 1.0f };
  dcr_model_set_jpeg_decision (m, &jpeg);
  g_assert_true (dcr_model_save (m, model_path, &err));
  g_assert_no_error (err);
}

static char *
make_folder (const char *name, guint n_images, gboolean with_bad)
{
  char *dir = g_build_filename (tmpdir, name, NULL);
  g_autofree char *sub = g_build_filename (dir, "sub", NULL);
  g_assert_cmpint (g_mkdir_with_parents (sub, 0755), ==, 0);
  for (guint i = 0; i < n_images; i++)
    {
      g_autofree char *fname = g_strdup_printf ("img%02u.png", i);
      g_autofree char *p = g_build_filename (i % 2 ? sub : dir, fname, NULL);
      dcr_test_write_pattern_png (p, 60 + i, 48 + 2 * i, i);
    }
  if (with_bad)
    {
      g_autofree char *p = g_build_filename (dir, "bad.jpeg", NULL);
      g_assert_true (g_file_set_contents (p, "GIF89a not really", -1, NULL));
      /* a JPEG whose name says nothing: found by its content */
      g_autoptr (DcrImage) img = dcr_image_new (64, 50);
      memset (img->pixels, 120, (gsize) 64 * 50 * 3);
      g_autoptr (GBytes) jpeg = dcr_image_encode_jpeg (img, 90, NULL);
      g_autofree char *q = g_build_filename (dir, "photo.dat", NULL);
      g_assert_true (g_file_set_contents (q, g_bytes_get_data (jpeg, NULL), g_bytes_get_size (jpeg), NULL));
    }
  return dir;
}

static DcrReport *
new_report (guint batch)
{
  DcrReportOptions o = { .case_id = "C-1", .model_path = model_path, .bank_path = bank_path, .batch = batch,
                         .decoders = 2 };
  return dcr_report_new (&o);
}

typedef struct {
  GArray *phases;
  guint *seen;   /* per item: times reported while analysing */
  guint last_done;
  GCancellable *cancel_at_3;
  const char *tamper;  /* a file to change once analysis is over */
} Watch;

static void
on_progress (DcrReportPhase phase, guint index, guint done, guint total, gpointer data)
{
  Watch *w = data;
  int ph = phase;
  if (!w->phases->len || g_array_index (w->phases, int, w->phases->len - 1) != ph)
    g_array_append_val (w->phases, ph);
  if (phase == DCR_REPORT_PHASE_ANALYSING)
    {
      w->seen[index]++;
      g_assert_cmpuint (done, ==, w->last_done + 1);
      w->last_done = done;
      if (w->cancel_at_3 && done == 3)
        g_cancellable_cancel (w->cancel_at_3);
      if (w->tamper && done == total)
        g_assert_true (g_file_set_contents (w->tamper, "changed after intake", -1, NULL));
    }
}

static void
test_write (void)
{
  g_autofree char *dir = make_folder ("in-write", 5, TRUE);
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrReport) r = new_report (2);
  const char *inputs[] = { dir };
  g_assert_true (dcr_report_add_inputs (r, inputs, 1, &err));
  g_assert_no_error (err);
  /* sorted by name, folders walked: bad.jpeg, img00, img02, img04, photo.dat, sub/img01, sub/img03 */
  g_assert_cmpuint (dcr_report_n_items (r), ==, 7);
  g_assert_true (g_str_has_suffix (dcr_report_get_item (r, 0)->path, "/bad.jpeg"));
  g_assert_true (g_str_has_suffix (dcr_report_get_item (r, 4)->path, "/photo.dat"));
  g_assert_true (g_str_has_suffix (dcr_report_get_item (r, 5)->path, "/sub/img01.png"));

  g_autofree char *out = g_build_filename (tmpdir, "out-write", NULL);
  g_autofree guint *seen = g_new0 (guint, 7);
  /* img02 changes between intake and the report: flagged, not hidden */
  g_autofree char *tampered = g_strdup (dcr_report_get_item (r, 2)->path);
  Watch w = { g_array_new (FALSE, FALSE, sizeof (int)), seen, .tamper = tampered };
  gboolean ok = dcr_report_write (r, out, on_progress, &w, NULL, &err);
  g_assert_no_error (err);
  g_assert_true (ok);
  int want[] = { DCR_REPORT_PHASE_LOADING, DCR_REPORT_PHASE_ANALYSING, DCR_REPORT_PHASE_VERIFYING,
                 DCR_REPORT_PHASE_WRITING };
  g_assert_cmpmem (w.phases->data, w.phases->len * sizeof (int), want, sizeof want);
  for (guint i = 0; i < 7; i++)
    g_assert_cmpuint (seen[i], ==, 1);
  g_array_unref (w.phases);

  guint analysed, rejected, changed;
  dcr_report_get_counts (r, &analysed, &rejected, &changed);
  g_assert_cmpuint (analysed, ==, 6);
  g_assert_cmpuint (rejected, ==, 1);
  g_assert_cmpuint (changed, ==, 1);
  const DcrReportItem *bad = dcr_report_get_item (r, 0);
  g_assert_cmpint (bad->status, ==, DCR_REPORT_ITEM_REJECTED);
  g_assert_nonnull (strstr (bad->reason, "not a PNG or JPEG image by its content (first bytes 47 49 46 38"));
  for (guint i = 1; i < 7; i++)
    {
      const DcrReportItem *it = dcr_report_get_item (r, i);
      g_assert_cmpint (it->status, ==, DCR_REPORT_ITEM_ANALYSED);
      g_assert_cmpstr (it->format, ==, i == 4 ? "JPEG" : "PNG");
      /* the JPEG under the model's JPEG decision, the PNGs under its own */
      g_assert_cmpstr (it->decision, ==, i == 4 ? "jpeg" : "other");
      /* the PNGs were searched for an earlier JPEG's grid (none), the JPEG not */
      g_assert_false (it->jpeg_trace.found);
      g_assert_true (i == 4 ? it->jpeg_trace.blocks == 0 : it->jpeg_trace.blocks >= 30);
      if (i == 4)
        g_assert_cmpint (it->verdict, ==, DCR_VERDICT_INCONCLUSIVE);
      g_autofree char *contents = NULL;
      gsize len;
      g_assert_true (g_file_get_contents (it->path, &contents, &len, NULL));
      g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guchar *) contents, len);
      g_assert_cmpstr (it->sha256_report, ==, sha);
      if (i == 2)
        {
          g_assert_true (it->changed);
          g_assert_cmpstr (it->sha256, !=, sha);
          continue;
        }
      g_assert_false (it->changed);
      g_assert_cmpstr (it->sha256, ==, sha);
      g_assert_cmpuint (it->k, ==, 2);
      /* the default backbone has the shipped forensic CNN: its evidence,
       * with the most suspicious block inside the image */
      g_assert_true (it->has_cnn);
      g_assert_true (it->has_top_block);
      g_assert_cmpint (it->top_block[0] + it->top_block[2], <=, (gint64) it->width);
      g_assert_cmpint (it->top_block[1] + it->top_block[3], <=, (gint64) it->height);
      g_assert_cmpfloat (it->top_block_p, >=, 0);
      g_assert_cmpfloat (it->top_block_p, <=, 1);
      g_assert_cmpuint (it->n_top, ==, DCR_REPORT_TOP_CHANNELS);
      g_assert_cmpfloat (it->top_magnitude[0], >=, it->top_magnitude[1]);
    }
  /* img02 is 62 × 52 */
  g_assert_cmpuint (dcr_report_get_item (r, 2)->width, ==, 62);
  g_assert_cmpuint (dcr_report_get_item (r, 2)->height, ==, 52);
  const char *names[] = { "report.csv", "report.json", "report.pdf", "report.sha256" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *p = g_build_filename (out, names[i], NULL);
      g_assert_true (g_file_test (p, G_FILE_TEST_IS_REGULAR));
    }
  g_assert_cmpuint (dcr_test_count_entries (out), ==, 4); /* the thumbnails were working files */
  g_autofree char *csv_path = g_build_filename (out, "report.csv", NULL);
  g_autofree char *csv = NULL;
  g_assert_true (g_file_get_contents (csv_path, &csv, NULL, NULL));
  g_autofree char *flag = g_strdup_printf ("%s,analysed,,", tampered);
  const char *line = strstr (csv, flag);
  g_assert_nonnull (line);
  g_assert_nonnull (strstr (line, ",CHANGED,PNG,"));
  g_assert_true (strstr (line, ",CHANGED,") < strchr (line, '\n'));
  /* the JSON gives the model's JPEG decision and which decision each file had */
  g_autofree char *json_path = g_build_filename (out, "report.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (parser, json_path, &err));
  g_assert_no_error (err);
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonObject *jd = json_object_get_object_member (json_object_get_object_member (root, "model"), "jpeg_decision");
  g_assert_nonnull (jd);
  g_assert_cmpfloat (json_object_get_double_member (jd, "threshold"), ==, 0.5);
  JsonArray *band = json_object_get_array_member (jd, "inconclusive_band");
  g_assert_cmpfloat (json_array_get_double_element (band, 0), ==, 0.0);
  g_assert_cmpfloat (json_array_get_double_element (band, 1), ==, 1.0);
  JsonArray *jitems = json_object_get_array_member (root, "items");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (jitems, 4), "decision"), ==, "jpeg");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (jitems, 5), "decision"), ==,
                   "other");
  /* jpeg_trace: null for the JPEG, the search's result for a PNG */
  g_assert_true (JSON_NODE_HOLDS_NULL (json_object_get_member (json_array_get_object_element (jitems, 4), "jpeg_trace")));
  JsonObject *tr = json_object_get_object_member (json_array_get_object_element (jitems, 5), "jpeg_trace");
  g_assert_false (json_object_get_boolean_member (tr, "found"));
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (tr, "origin")), ==, 2);
}

static void
test_cancel (void)
{
  g_autofree char *dir = make_folder ("in-cancel", 16, FALSE);
  g_autofree char *parent = g_build_filename (tmpdir, "out-cancel", NULL);
  g_assert_cmpint (g_mkdir (parent, 0755), ==, 0);
  g_autofree char *out = g_build_filename (parent, "report", NULL);
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrReport) r = new_report (1);
  const char *inputs[] = { dir };
  g_assert_true (dcr_report_add_inputs (r, inputs, 1, &err));
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_autofree guint *seen = g_new0 (guint, dcr_report_n_items (r));
  Watch w = { g_array_new (FALSE, FALSE, sizeof (int)), seen, .cancel_at_3 = cancel };
  g_assert_false (dcr_report_write (r, out, on_progress, &w, cancel, &err));
  g_assert_error (err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_array_unref (w.phases);
  /* mid-batch: some analysed, not all */
  g_assert_cmpuint (w.last_done, >=, 3);
  g_assert_cmpuint (w.last_done, <, 16);
  g_assert_cmpuint (dcr_test_count_entries (parent), ==, 0);
}

static void
test_exists (void)
{
  g_autofree char *dir = make_folder ("in-exists", 1, FALSE);
  g_autofree char *out = g_build_filename (tmpdir, "out-exists", NULL);
  g_assert_cmpint (g_mkdir (out, 0755), ==, 0);
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrReport) r = new_report (1);
  const char *inputs[] = { dir };
  g_assert_true (dcr_report_add_inputs (r, inputs, 1, &err));
  g_assert_false (dcr_report_write (r, out, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_REPORT_ERROR, DCR_REPORT_ERROR_EXISTS);
  g_assert_cmpuint (dcr_test_count_entries (out), ==, 0);
  g_clear_error (&err);
  const char *missing[] = { "/nonexistent/evidence" };
  g_assert_false (dcr_report_add_inputs (r, missing, 1, &err));
  g_assert_error (err, DCR_REPORT_ERROR, DCR_REPORT_ERROR_INPUT);
}

/* The forensic CNN's evidence with a backbone that has one (a small random
 * CNN): each item's columns are the CNN's own logits and its highest block
 * is where dcr_ref_cnn's block means put it; report.json carries them. */
static void
test_cnn (void)
{
  g_autoptr (GError) err = NULL;
  static const guint ch[] = { 3, 4, 4, 1 }, ks[] = { 3, 3, 1 }, st[] = { 2, 2, 1 };
  g_autoptr (DcrCnn) c = dcr_cnn_new (3, ch, ks, st, &err);
  g_assert_no_error (err);
  g_autoptr (GRand) rand = g_rand_new_with_seed (21);
  for (guint l = 0; l < c->n_layers; l++)
    {
      DcrCnnLayer *L = &c->layers[l];
      for (guint i = 0; i < L->cout * L->kernel * L->kernel * L->cin; i++)
        L->weight[i] = (float) g_rand_double_range (rand, -0.6, 0.6) * (l + 1 == c->n_layers ? 6 : 1);
      for (guint o = 0; o < L->cout; o++)
        L->bias[o] = (float) g_rand_double_range (rand, -0.3, 0.3);
    }
  g_autofree char *cnn_path = g_build_filename (tmpdir, "cnn.safetensors", NULL);
  g_assert_true (dcr_cnn_save (c, cnn_path, NULL, &err));
  g_assert_no_error (err);
  g_autofree char *weights = dcr_backbone_default_path ();
  g_autofree char *spec = g_strdup_printf ("mobilenet_v2+residual+local+cnn=%s:%s", cnn_path, weights);
  g_autofree char *model = g_build_filename (tmpdir, "cnn-m.safetensors", NULL);
  g_autofree char *bank = g_build_filename (tmpdir, "cnn.dcrbank", NULL);
  dcr_test_make_untrained_detector_for (spec, model, bank, 3, 4, "/evidence/real.png");

  g_autofree char *dir = g_build_filename (tmpdir, "in-cnn", NULL);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  const guint sizes[][2] = { { 300, 200 }, { 64, 64 }, { 131, 97 } };
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autofree char *name = g_strdup_printf ("img%u.png", i);
      g_autofree char *p = g_build_filename (dir, name, NULL);
      dcr_test_write_pattern_png (p, sizes[i][0], sizes[i][1], 7 + i);
    }
  DcrReportOptions o = { .model_path = model, .bank_path = bank, .backbone = spec, .batch = 2, .decoders = 1 };
  g_autoptr (DcrReport) r = dcr_report_new (&o);
  const char *inputs[] = { dir };
  g_assert_true (dcr_report_add_inputs (r, inputs, 1, &err));
  g_assert_no_error (err);
  g_autofree char *out = g_build_filename (tmpdir, "out-cnn", NULL);
  g_assert_true (dcr_report_write (r, out, NULL, NULL, NULL, &err));
  g_assert_no_error (err);
  g_autofree char *json_path = g_build_filename (out, "report.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (parser, json_path, &err));
  g_assert_no_error (err);
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonArray *jitems = json_object_get_array_member (root, "items");
  g_assert_cmpuint (dcr_report_n_items (r), ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      const DcrReportItem *it = dcr_report_get_item (r, i);
      g_assert_cmpint (it->status, ==, DCR_REPORT_ITEM_ANALYSED);
      g_assert_true (it->has_cnn);
      g_assert_false (it->has_tiles);
      g_assert_true (it->has_top_block);
      /* the reference on the decoded pixels */
      g_autoptr (DcrImage) img = dcr_image_load (it->path, NULL, &err);
      g_assert_no_error (err);
      gint64 H = img->height, W = img->width, top, left, h, w, hm, wm;
      dcr_cnn_window (H, W, &top, &left, &h, &w);
      g_assert_true (dcr_cnn_map_size (c, h, w, &hm, &wm));
      g_autofree float *map = g_new (float, hm * wm);
      float want[DCR_CNN_DIM], blocks[DCR_CNN_MAX_BLOCKS];
      guint nbh, nbw;
      g_assert_true (dcr_ref_cnn (c, img->pixels + (top * W + left) * 3, W * 3, h, w, map, want));
      dcr_cnn_columns (c, map, hm, wm, want, blocks, &nbh, &nbw);
      double scale = 0;
      for (gint64 k = 0; k < hm * wm; k++)
        scale = MAX (scale, fabs (map[k]));
      double tol = 2e-5 * (1 + scale);
      g_test_message ("%s: top %g (ref %g), max %g (ref %g)", it->path, it->cnn_top, want[1], it->cnn_max, want[2]);
      g_assert_cmpfloat_with_epsilon (it->cnn_top, want[1], tol);
      g_assert_cmpfloat_with_epsilon (it->cnn_max, want[2], tol);
      guint best = 0;
      for (guint b = 1; b < nbh * nbw; b++)
        if (blocks[b] > blocks[best])
          best = b;
      gint64 rect[4];
      dcr_cnn_block_rect (c, H, W, nbw, best, &rect[0], &rect[1], &rect[2], &rect[3]);
      g_assert_cmpmem (it->top_block, sizeof it->top_block, rect, sizeof rect);
      g_assert_cmpfloat_with_epsilon (it->top_block_p, 1 / (1 + exp (-blocks[best])), 1e-5);
      /* report.json: the same values */
      JsonObject *jo = json_array_get_object_element (jitems, i);
      g_assert_false (json_object_has_member (jo, "tiles"));
      JsonObject *jc = json_object_get_object_member (jo, "cnn");
      g_assert_nonnull (jc);
      g_assert_cmpfloat_with_epsilon (json_object_get_double_member (jc, "top"), it->cnn_top, 1e-6);
      g_assert_cmpfloat_with_epsilon (json_object_get_double_member (jc, "max"), it->cnn_max, 1e-6);
      g_assert_cmpfloat_with_epsilon (json_object_get_double_member (jc, "p_top"), 1 / (1 + exp (-it->cnn_top)),
                                      1e-6);
      JsonObject *hi = json_object_get_object_member (jc, "highest");
      const char *keys[] = { "x", "y", "w", "h" };
      for (guint k = 0; k < 4; k++)
        g_assert_cmpint (json_object_get_int_member (hi, keys[k]), ==, rect[k]);
      g_assert_cmpfloat_with_epsilon (json_object_get_double_member (hi, "p"), it->top_block_p, 1e-6);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmpdir = dcr_test_make_tmpdir ("dcr-report-XXXXXX");
  make_model ();
  g_test_add_func ("/report/write", test_write);
  g_test_add_func ("/report/cancel", test_cancel);
  g_test_add_func ("/report/exists", test_exists);
  g_test_add_func ("/report/cnn", test_cnn);
  int rc = g_test_run ();
  dcr_test_remove_tree (tmpdir);
  g_free (tmpdir);
  g_free (model_path);
  g_free (bank_path);
  return rc;
}
