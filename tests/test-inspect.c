/* test-inspect.c — the inspect view end to end under Xvfb: a tiny model and
 * bank built for the default backbone, a generated image opened the way the
 * command line opens it, the verdict, scores, prototype strip and chart on
 * screen (and a screenshot in /tmp/dcr-inspect.png), the tile map's toggle
 * and overlay exactly when the detection has one; without a model the
 * window says so; a non-image leaves the window usable. Analysed files are
 * recorded as recent (and reopen through win.open-recent); a JPEG's EXIF
 * facts (camera, date, software, orientation, GPS) reach the file-facts
 * group through gexiv2 while the file stays byte-for-byte unchanged. A GPU
 * that fails (DCR_INJECT_FAULT=device-lost|out-of-memory) is reported in a
 * toast; the window stays alive and analyses again once the GPU is back. */
#include "dcr-config.h"
#include "dcr-application.h"
#include "dcr-window.h"
#include "dcr-recent-list.h"
#include "dcr-vk.h"
#include "dcr-test-files.h"
#include "dcr-test-gui.h"

#include <gexiv2/gexiv2.h>

#include <math.h>

static char *tmpdir, *model_path, *bank_path, *image_path, *image2_path, *text_path, *exif_path, *odd_path;
static char *exif_sha;
static char *was_jpeg_path, *smooth_path;

/* A 160 × 120 fixture image whose samples f gives. */
static DcrImage *
fixture_image (double (*f) (guint x, guint y, guint c))
{
  DcrImage *img = dcr_image_new (160, 120);
  for (guint y = 0; y < 120; y++)
    for (guint x = 0; x < 160; x++)
      for (guint c = 0; c < 3; c++)
        img->pixels[((gsize) y * 160 + x) * 3 + c] = (guint8) f (x, y, c);
  return img;
}

static double
photo_like (guint x, guint y, guint c)
{
  return 90 + 40 * sin (0.11 * x + 0.7 * c) + 30 * sin (0.23 * y + 0.05 * x) + (x * 13 + y * 7) % 11;
}

/* a ramp: no second differences, so no fine detail at all (dcr-detail.h) */
static double
ramp (guint x, guint y, guint c)
{
  (void) y;
  return x + 20 * c;
}

/* A PNG saved from a JPEG (quality 85) of a photo-like image: its pixels
 * keep the JPEG's 8 × 8 grid. */
static void
write_was_jpeg_png (const char *path)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrImage) img = fixture_image (photo_like);
  g_autoptr (GBytes) jpeg = dcr_image_encode_jpeg (img, 85, &err);
  g_assert_no_error (err);
  g_autoptr (DcrImage) back = dcr_image_load_from_bytes (jpeg, "fixture.jpg", NULL, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_image_save_png (back, path, &err));
}

/* A smooth gradient. */
static void
write_smooth_png (const char *path)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrImage) img = fixture_image (ramp);
  g_assert_true (dcr_image_save_png (img, path, &err));
  g_assert_no_error (err);
}

/* A JPEG as a camera would write it, with the EXIF fields the view shows;
 * the fixture is written here, evidence never is. Orientation 6: the
 * 200 × 150 stored image is shown 150 × 200. */
static void
write_exif_jpeg (const char *path, gboolean signed_orientation)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrImage) img = dcr_image_new (200, 150);
  for (gsize i = 0; i < (gsize) img->width * img->height * 3; i++)
    img->pixels[i] = (guint8) (i * 7);
  g_autoptr (GBytes) jpeg = dcr_image_encode_jpeg (img, 90, &err);
  g_assert_no_error (err);
  g_assert_true (g_file_set_contents (path, g_bytes_get_data (jpeg, NULL), g_bytes_get_size (jpeg), &err));
  gexiv2_initialize ();
  g_autoptr (GExiv2Metadata) md = gexiv2_metadata_new ();
  g_assert_true (gexiv2_metadata_open_path (md, path, &err));
  static const char *const tags[][2] = {
    { "Exif.Image.Make", "TestCam" },
    { "Exif.Image.Model", "TC-1 Mark II" },
    { "Exif.Photo.DateTimeOriginal", "2024:05:06 07:08:09" },
    { "Exif.Image.Software", "GIMP 2.10.34" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (tags); i++)
    g_assert_true (gexiv2_metadata_try_set_tag_string (md, tags[i][0], tags[i][1], &err));
  /* as a string Exiv2 stores the tag's own type, SHORT; as a long, a
   * SLONG that the decoder (rightly, by the standard) ignores */
  if (signed_orientation)
    g_assert_true (gexiv2_metadata_try_set_tag_long (md, "Exif.Image.Orientation", 6, &err));
  else
    g_assert_true (gexiv2_metadata_try_set_tag_string (md, "Exif.Image.Orientation", "6", &err));
  g_assert_true (gexiv2_metadata_try_set_tag_long (md, "Exif.Photo.PixelXDimension", 200, &err));
  g_assert_true (gexiv2_metadata_try_set_tag_long (md, "Exif.Photo.PixelYDimension", 150, &err));
  g_assert_true (gexiv2_metadata_try_set_gps_info (md, 2.2945, 48.8584, 35, &err));
  g_assert_true (gexiv2_metadata_save_file (md, path, &err));
  g_assert_no_error (err);
}

/* A model with fresh weights and a bank of a few prototypes for the
 * default backbone: the verdict means nothing, but every part of the view
 * gets real data of the right shape. */
static void
make_fixtures (void)
{
  g_autoptr (GError) err = NULL;
  tmpdir = dcr_test_make_tmpdir ("dcr-inspect-XXXXXX");
  model_path = g_build_filename (tmpdir, "m.safetensors", NULL);
  bank_path = g_build_filename (tmpdir, "bank.dcrbank", NULL);
  image_path = g_build_filename (tmpdir, "suspect.png", NULL);
  image2_path = g_build_filename (tmpdir, "second.png", NULL);
  text_path = g_build_filename (tmpdir, "notes.txt", NULL);
  exif_path = g_build_filename (tmpdir, "camera.jpg", NULL);
  odd_path = g_build_filename (tmpdir, "odd-orientation.jpg", NULL);
  was_jpeg_path = g_build_filename (tmpdir, "saved-from-jpeg.png", NULL);
  write_was_jpeg_png (was_jpeg_path);
  smooth_path = g_build_filename (tmpdir, "smooth.png", NULL);
  write_smooth_png (smooth_path);
  write_exif_jpeg (exif_path, FALSE);
  write_exif_jpeg (odd_path, TRUE);
  g_autofree char *exif_bytes = NULL;
  gsize exif_len;
  g_assert_true (g_file_get_contents (exif_path, &exif_bytes, &exif_len, NULL));
  exif_sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) exif_bytes, exif_len);
  dcr_test_write_pattern_png (image_path, 200, 150, 1);
  dcr_test_write_pattern_png (image2_path, 200, 150, 2);
  g_assert_true (g_file_set_contents (text_path, "not an image", -1, NULL));

  DcrContext *ctx = dcr_context_new (NULL, &err);
  g_assert_no_error (err);
  DcrBackbone *bb = dcr_backbone_load (ctx, "default", DCR_F32, &err);
  g_assert_no_error (err);
  guint dim = dcr_backbone_dim (bb);
  DcrModelConfig cfg = {
    .backbone_id = (char *) dcr_backbone_id (bb), .dim = dim, .k = 3, .hidden = 32, .head_hidden = 16,
    .threshold = 0.5f, .band_lo = 0.4f, .band_hi = 0.6f,
    /* for JPEG files a band over everything: every JPEG is inconclusive */
    .jpeg_decision = TRUE, .jpeg = { 0.5f, 0.0f, 1.0f },
  };
  DcrModel *m = dcr_model_new (ctx, &cfg, 11, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_model_save (m, model_path, &err));
  DcrBank *bank = dcr_bank_create (bank_path, dcr_backbone_id (bb), dim, &err);
  g_assert_no_error (err);
  enum { N = 4 };
  DcrPrototypeNew items[N];
  float *feat = g_new (float, (gsize) N * dim);
  GRand *rand = g_rand_new_with_seed (3);
  char *names[N], *hashes[N];
  for (guint i = 0; i < N; i++)
    {
      for (guint c = 0; c < dim; c++)
        feat[(gsize) i * dim + c] = (float) g_rand_double (rand);
      names[i] = g_strdup_printf ("/evidence/real/proto-%u.png", i);
      hashes[i] = g_compute_checksum_for_string (G_CHECKSUM_SHA256, names[i], -1);
      items[i] = (DcrPrototypeNew) { .feature = feat + (gsize) i * dim, .source = names[i], .sha256 = hashes[i],
                                     .thumbnail = dcr_test_thumbnail_png (64, i) };
    }
  g_assert_true (dcr_bank_add (bank, items, N, FALSE, NULL, &err));
  g_assert_no_error (err);
  for (guint i = 0; i < N; i++)
    {
      g_free (names[i]);
      g_free (hashes[i]);
      g_bytes_unref (items[i].thumbnail);
    }
  g_rand_free (rand);
  g_free (feat);
  dcr_bank_close (bank);
  dcr_model_free (m);
  dcr_backbone_free (bb);
  dcr_context_free (ctx);
}

static void
settle (DcrWindow *win)
{
  while (!gtk_widget_get_mapped (GTK_WIDGET (win)))
    g_main_context_iteration (NULL, TRUE);
  /* let layout, the page transition and a frame happen */
  dcr_test_gui_spin (600);
}

static void
on_open (GApplication *app, GFile **files, int n, const char *hint, gpointer data)
{
  gboolean *done = data;
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_assert_nonnull (win);
  /* the class handler started the analysis; the window keeps running */
  g_assert_cmpstr (dcr_window_get_page (win), ==, "busy");
  /* a hint says why it can take long (after $DCR_BUSY_HINT_MS = 0 here;
   * the analysis is still setting up Vulkan) and goes with the result */
  GtkWidget *busy_hint = dcr_test_gui_find_label (GTK_WIDGET (win), "prepares the GPU code");
  g_assert_nonnull (busy_hint);
  for (int i = 0; i < 100 && !gtk_widget_get_visible (busy_hint); i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_true (gtk_widget_get_visible (busy_hint));
  g_assert_cmpstr (dcr_window_get_page (win), ==, "busy");
  dcr_test_gui_wait_while_busy (win, 240);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "result");
  g_assert_false (gtk_widget_get_visible (busy_hint));

  DcrInspectView *view = dcr_window_get_inspect_view (win);
  const DcrAnalysisResult *r = dcr_inspect_view_get_result (view);
  g_assert_nonnull (r);
  g_assert_cmpstr (r->name, ==, "suspect.png");
  g_assert_cmpuint (r->width, ==, 200);
  g_assert_cmpuint (r->height, ==, 150);
  g_assert_cmpstr (r->format, ==, "PNG");
  g_autofree char *contents = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (image_path, &contents, &len, NULL));
  g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) contents, len);
  g_assert_cmpstr (r->sha256, ==, sha);
  g_assert_cmpuint (r->size, ==, len);

  const char *expect = r->detection.verdict == DCR_VERDICT_REAL ? "Real — "
                       : r->detection.verdict == DCR_VERDICT_FAKE ? "Fake — " : "Inconclusive — ";
  g_assert_true (g_str_has_prefix (dcr_inspect_view_get_verdict_text (view), expect));
  /* a PNG: the model's own decision, not its JPEG one */
  g_assert_false (r->detection.jpeg);
  g_assert_false (r->jpeg_decision);
  g_assert_cmpfloat (r->band_lo, ==, 0.4f);
  g_assert_cmpfloat (r->band_hi, ==, 0.6f);
  g_assert_null (strstr (dcr_inspect_view_get_reason_text (view), "JPEG"));
  g_autofree char *score = g_strdup_printf ("P(fake) %.3f · anomaly %.3f · threshold 0.50", r->detection.p_fake,
                                            r->detection.anomaly);
  g_assert_cmpstr (dcr_inspect_view_get_score_text (view), ==, score);
  /* stability: three scores, the rule applied to them */
  for (guint i = 0; i < DCR_STABILITY_N_VARIANTS; i++)
    {
      g_assert_true (isfinite (r->stability[i].p_fake));
      g_assert_cmpfloat (r->stability[i].p_fake, >=, 0);
      g_assert_cmpfloat (r->stability[i].p_fake, <=, 1);
      g_assert_nonnull (strstr (dcr_inspect_view_get_stability_text (view), dcr_stability_variant_name (i)));
    }
  g_autofree char *why = NULL;
  g_assert_cmpint (r->detection.verdict, ==, dcr_stability_verdict (r->verdict_as_saved, r->stability, &why));
  g_assert_cmpstr (r->stability_reason, ==, why);
  /* the "where" map: toggle, line and overlay exactly when the detection
   * has one — the forensic CNN's blocks when the backbone has the CNN, else
   * the tile head's tiles */
  DcrTileMap map;
  gboolean has_map = dcr_tile_map_from_detection (&r->detection, r->width, r->height, &map);
  if (r->cnn_map.n)
    {
      dcr_tile_map_clear (&map);
      map.n = r->cnn_map.n;
      has_map = TRUE;
      g_assert_true (g_str_has_prefix (dcr_inspect_view_get_tile_text (view), "CNN (evidence, not proof)"));
    }
  g_assert_cmpint (r->cnn_map.n > 0, ==, r->detection.has_cnn);
  GtkToggleButton *tiles = dcr_inspect_view_get_tile_map_button (view);
  g_assert_cmpint (gtk_widget_get_visible (GTK_WIDGET (tiles)), ==, has_map);
  g_assert_cmpint (dcr_inspect_view_get_tile_text (view) != NULL, ==, has_map);
  guint n_overlay = 0;
  const DcrOverlayRect *overlay = dcr_zoom_view_get_overlay (dcr_inspect_view_get_suspect_view (view), &n_overlay);
  g_assert_cmpint (overlay != NULL, ==, has_map && gtk_toggle_button_get_active (tiles));
  g_assert_cmpuint (n_overlay, ==, overlay ? map.n : 0);
  dcr_tile_map_clear (&map);
  g_assert_cmpuint (dcr_inspect_view_get_n_bars (view), ==, DCR_INSPECT_TOP_CHANNELS);
  g_assert_cmpuint (r->detection.k, ==, 3);
  g_assert_cmpuint (dcr_inspect_view_get_n_strip (view), ==, 3);
  g_assert_cmpuint (r->prototypes->len, ==, 3);
  const DcrAnalysisPrototype *p0 = g_ptr_array_index (r->prototypes, 0);
  g_assert_true (g_str_has_prefix (p0->source, "/evidence/real/proto-"));
  g_assert_nonnull (p0->thumbnail);
  g_assert_cmpint (gdk_texture_get_width (p0->thumbnail), ==, 64);
  float maxr = 0;
  for (guint c = 0; c < r->dim; c++)
    maxr = MAX (maxr, r->detection.residual[c]);
  g_assert_cmpfloat (maxr, >, 0);
  g_assert_nonnull (dcr_analysis_result_tap (r, r->dim - 1));
  /* a PNG without metadata says so rather than showing nothing */
  g_assert_cmpstr (dcr_inspect_view_get_fact (view, "Metadata"), ==, "None — no EXIF, XMP or IPTC in the file");
  g_assert_null (dcr_inspect_view_get_fact (view, "GPS location"));
  g_assert_null (dcr_inspect_view_get_fact (view, "Camera make"));
  /* recorded as recent, under this application */
  g_autoptr (GFile) first = g_file_new_for_path (image_path);
  g_assert_true (dcr_recent_contains (first));

  settle (win);
  g_object_unref (dcr_test_gui_snapshot (GTK_WIDGET (win), "/tmp/dcr-inspect.png"));
  /* and the lower half: chart axis, histogram, file facts */
  GtkScrolledWindow *sw = GTK_SCROLLED_WINDOW (adw_bin_get_child (ADW_BIN (view)));
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment (sw);
  gtk_adjustment_set_value (adj, gtk_adjustment_get_upper (adj));
  settle (win);
  g_object_unref (dcr_test_gui_snapshot (GTK_WIDGET (win), "/tmp/dcr-inspect-bottom.png"));

  /* a second file cancels nothing visible but replaces the first when both are
   * opened back to back */
  g_autoptr (GFile) f1 = g_file_new_for_path (image_path);
  g_autoptr (GFile) f2 = g_file_new_for_path (image2_path);
  dcr_window_open_file (win, f1);
  dcr_window_open_file (win, f2);
  dcr_test_gui_wait_while_busy (win, 240);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "result");
  g_assert_cmpstr (dcr_inspect_view_get_result (view)->name, ==, "second.png");

  /* not an image: the previous result stays, the window stays usable, and
   * nothing is added to the recent files */
  g_autoptr (GFile) txt = g_file_new_for_path (text_path);
  GFile *drop[] = { txt };
  dcr_window_open_files (win, drop, 1);
  dcr_test_gui_wait_while_busy (win, 240);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "result");
  g_assert_cmpstr (dcr_inspect_view_get_result (view)->name, ==, "second.png");
  g_assert_false (dcr_recent_contains (txt));

  /* Open Recent reopens the first file */
  g_autofree char *first_uri = g_file_get_uri (first);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.open-recent", "s", first_uri));
  dcr_test_gui_wait_while_busy (win, 240);
  g_assert_cmpstr (dcr_inspect_view_get_result (view)->name, ==, "suspect.png");
  /* a detailed image: its fine detail shown, no caution */
  g_assert_null (strstr (dcr_inspect_view_get_fact (view, "Fine detail"), "little"));
  g_assert_false (dcr_detail_is_low (dcr_inspect_view_get_result (view)->detection.detail));
  g_assert_null (strstr (dcr_inspect_view_get_reason_text (view), "Caution"));

  /* a smooth one: the view says its verdict is unreliable */
  g_autoptr (GFile) smooth = g_file_new_for_path (smooth_path);
  dcr_window_open_file (win, smooth);
  dcr_test_gui_wait_while_busy (win, 240);
  g_assert_cmpstr (dcr_inspect_view_get_result (view)->name, ==, "smooth.png");
  g_assert_true (dcr_detail_is_low (dcr_inspect_view_get_result (view)->detection.detail));
  g_assert_nonnull (strstr (dcr_inspect_view_get_fact (view, "Fine detail"), " — little (under 0.38)"));
  g_assert_nonnull (strstr (dcr_inspect_view_get_reason_text (view), "Caution: this image has little fine detail"));

  /* a PNG whose pixels carry an earlier JPEG's grid: judged by the JPEG decision, and the view says why */
  g_assert_true (g_str_has_prefix (dcr_inspect_view_get_fact (view, "Earlier JPEG compression"), "None found"));
  g_autoptr (GFile) past = g_file_new_for_path (was_jpeg_path);
  dcr_window_open_file (win, past);
  dcr_test_gui_wait_while_busy (win, 240);
  r = dcr_inspect_view_get_result (view);
  g_assert_cmpstr (r->name, ==, "saved-from-jpeg.png");
  g_assert_cmpstr (r->format, ==, "PNG");
  g_assert_true (r->detection.jpeg_trace.found);
  g_assert_true (r->detection.jpeg);
  g_assert_true (r->jpeg_decision);
  g_assert_cmpfloat (r->band_lo, ==, 0.0f);
  g_assert_cmpfloat (r->band_hi, ==, 1.0f);
  g_assert_nonnull (strstr (dcr_inspect_view_get_reason_text (view), "inconclusive band for JPEG files [0.00, 1.00)"));
  g_assert_nonnull (strstr (dcr_inspect_view_get_reason_text (view), "carry the 8 × 8 grid of an earlier JPEG"));
  g_assert_true (g_str_has_prefix (dcr_inspect_view_get_fact (view, "Earlier JPEG compression"),
                                   "Found — the pixels carry the 8 × 8 grid of an earlier JPEG compression (first "
                                   "block at column 0, row 0;"));

  /* EXIF through gexiv2, the orientation applied to the pixels, the file untouched */
  g_autoptr (GFile) cam = g_file_new_for_path (exif_path);
  dcr_window_open_file (win, cam);
  dcr_test_gui_wait_while_busy (win, 240);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "result");
  r = dcr_inspect_view_get_result (view);
  g_assert_cmpstr (r->name, ==, "camera.jpg");
  /* a JPEG: the model's JPEG decision, named as such */
  g_assert_true (r->detection.jpeg);
  g_assert_true (r->jpeg_decision);
  g_assert_cmpfloat (r->band_lo, ==, 0.0f);
  g_assert_cmpfloat (r->band_hi, ==, 1.0f);
  g_assert_cmpint (r->verdict_as_saved, ==, DCR_VERDICT_INCONCLUSIVE);
  g_assert_true (g_str_has_prefix (dcr_inspect_view_get_verdict_text (view), "Inconclusive — "));
  g_assert_nonnull (strstr (dcr_inspect_view_get_reason_text (view), "inconclusive band for JPEG files [0.00, 1.00)"));
  g_assert_cmpuint (r->width, ==, 150);
  g_assert_cmpuint (r->height, ==, 200);
  g_assert_cmpstr (r->sha256, ==, exif_sha);
  g_assert_cmpstr (dcr_inspect_view_get_fact (view, "Camera make"), ==, "TestCam");
  g_assert_cmpstr (dcr_inspect_view_get_fact (view, "Camera model"), ==, "TC-1 Mark II");
  g_assert_cmpstr (dcr_inspect_view_get_fact (view, "Taken"), ==, "2024:05:06 07:08:09");
  g_assert_cmpstr (dcr_inspect_view_get_fact (view, "Software"), ==, "GIMP 2.10.34");
  g_assert_cmpstr (dcr_inspect_view_get_fact (view, "Orientation"), ==, "6 — displayed rotated 90° clockwise");
  g_assert_cmpstr (dcr_inspect_view_get_fact (view, "Dimensions in EXIF"), ==, "200 × 150");
  g_assert_true (g_str_has_prefix (dcr_inspect_view_get_fact (view, "GPS location"), "Yes"));
  g_assert_null (dcr_inspect_view_get_fact (view, "Metadata"));
  g_autofree char *after = NULL;
  gsize after_len;
  g_assert_true (g_file_get_contents (exif_path, &after, &after_len, NULL));
  g_autofree char *after_sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) after, after_len);
  g_assert_cmpstr (after_sha, ==, exif_sha);

  /* an orientation the decoder did not apply is not presented as applied */
  g_autoptr (GFile) odd = g_file_new_for_path (odd_path);
  dcr_window_open_file (win, odd);
  dcr_test_gui_wait_while_busy (win, 240);
  r = dcr_inspect_view_get_result (view);
  g_assert_cmpstr (r->name, ==, "odd-orientation.jpg");
  g_assert_cmpuint (r->width, ==, 200);
  g_assert_true (g_str_has_prefix (dcr_inspect_view_get_fact (view, "Orientation"), "6 — not applied"));

  *done = TRUE;
  gtk_window_close (GTK_WINDOW (win));
}

static void
test_stability_rule (void)
{
  DcrStabilityScore v[DCR_STABILITY_N_VARIANTS] = {
    { 0.91f, DCR_VERDICT_FAKE }, { 0.84f, DCR_VERDICT_FAKE }, { 0.88f, DCR_VERDICT_FAKE } };
  char *why = (char *) "untouched";
  g_assert_cmpint (dcr_stability_verdict (DCR_VERDICT_FAKE, v, &why), ==, DCR_VERDICT_FAKE);
  g_assert_null (why);

  v[DCR_STABILITY_JPEG_Q75] = (DcrStabilityScore) { 0.21f, DCR_VERDICT_REAL };
  g_assert_cmpint (dcr_stability_verdict (DCR_VERDICT_FAKE, v, &why), ==, DCR_VERDICT_INCONCLUSIVE);
  g_assert_cmpstr (why, ==, "fake as saved, real after JPEG q75 re-encoding");
  g_clear_pointer (&why, g_free);

  /* an inconclusive variant is unstable too; every differing variant is named */
  v[DCR_STABILITY_HALF] = (DcrStabilityScore) { 0.5f, DCR_VERDICT_INCONCLUSIVE };
  g_assert_cmpint (dcr_stability_verdict (DCR_VERDICT_FAKE, v, &why), ==, DCR_VERDICT_INCONCLUSIVE);
  g_assert_cmpstr (why, ==, "fake as saved, real after JPEG q75 re-encoding, inconclusive after 0.5× resize");
  g_clear_pointer (&why, g_free);

  /* real stays real when stable; inconclusive stays inconclusive without a reason */
  for (guint i = 0; i < DCR_STABILITY_N_VARIANTS; i++)
    v[i] = (DcrStabilityScore) { 0.1f, DCR_VERDICT_REAL };
  g_assert_cmpint (dcr_stability_verdict (DCR_VERDICT_REAL, v, &why), ==, DCR_VERDICT_REAL);
  g_assert_null (why);
  g_assert_cmpint (dcr_stability_verdict (DCR_VERDICT_INCONCLUSIVE, v, &why), ==, DCR_VERDICT_INCONCLUSIVE);
  g_assert_null (why);
  g_assert_cmpint (dcr_stability_verdict (DCR_VERDICT_REAL, v, NULL), ==, DCR_VERDICT_REAL);

  /* a skipped variant (a small image is not halved) takes no part */
  v[DCR_STABILITY_HALF] = (DcrStabilityScore) { 0.9f, DCR_VERDICT_FAKE, .skipped = TRUE };
  g_assert_cmpint (dcr_stability_verdict (DCR_VERDICT_REAL, v, &why), ==, DCR_VERDICT_REAL);
  g_assert_null (why);
}

static void
test_inspect_result (void)
{
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "model-file", model_path);
  g_settings_set_string (settings, "bank-file", bank_path);
  /* tall enough for the whole view in the screenshot (Xvfb: 1280 × 1024) */
  g_settings_set_int (settings, "window-height", 1000);
  g_autoptr (DcrApplication) app = dcr_application_new ();
  gboolean done = FALSE;
  g_signal_connect_after (app, "open", G_CALLBACK (on_open), &done);
  g_application_set_flags (G_APPLICATION (app), G_APPLICATION_NON_UNIQUE | G_APPLICATION_HANDLES_OPEN);
  char *argv[] = { (char *) "dcr-forensics", image_path, NULL };
  int rc = g_application_run (G_APPLICATION (app), 2, argv);
  g_assert_cmpint (rc, ==, 0);
  g_assert_true (done);
}

static void
on_activate_no_model (GApplication *app, gpointer data)
{
  gboolean *done = data;
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_assert_cmpstr (dcr_window_get_page (win), ==, "no-model");
  /* opening a file says the same rather than failing */
  g_autoptr (GFile) f = g_file_new_for_path (image_path);
  dcr_window_open_file (win, f);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "no-model");
  settle (win);
  g_object_unref (dcr_test_gui_snapshot (GTK_WIDGET (win), "/tmp/dcr-inspect-no-model.png"));
  *done = TRUE;
  gtk_window_close (GTK_WINDOW (win));
}

static void
test_inspect_no_model (void)
{
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "model-file", "");
  g_settings_set_string (settings, "bank-file", "");
  g_autofree char *empty = g_build_filename (tmpdir, "no-data", NULL);
  g_setenv ("DCR_DATA_DIR", empty, TRUE);
  /* $DCR_DATA_DIR replaces the search, so the shipped model is not found */
  g_autofree char *def = dcr_detector_default_model_path ();
  g_assert_null (def);
  g_autoptr (DcrApplication) app = dcr_application_new ();
  gboolean done = FALSE;
  dcr_test_gui_run (G_APPLICATION (app), G_CALLBACK (on_activate_no_model), &done);
  g_assert_true (done);
  g_unsetenv ("DCR_DATA_DIR");
}

typedef struct {
  const char *expect; /* in the toast */
  gboolean done;
} FaultRun;

static void
on_activate_fault (GApplication *app, gpointer data)
{
  FaultRun *run = data;
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_autoptr (GFile) f = g_file_new_for_path (image_path);
  dcr_window_open_file (win, f);
  dcr_test_gui_wait_while_busy (win, 240);
  /* the failure is shown, the window is back where it was and still works */
  g_assert_cmpstr (dcr_window_get_page (win), ==, "start");
  g_assert_nonnull (dcr_test_gui_find_label (GTK_WIDGET (win), run->expect));
  g_assert_null (dcr_inspect_view_get_result (dcr_window_get_inspect_view (win)));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (win)));

  /* the GPU is back: a new engine (a settings change drops the old one)
   * analyses the same file */
  g_unsetenv ("DCR_INJECT_FAULT");
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "model-file", "");
  g_settings_set_string (settings, "model-file", model_path);
  dcr_window_open_file (win, f);
  dcr_test_gui_wait_while_busy (win, 240);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "result");
  g_assert_cmpstr (dcr_inspect_view_get_result (dcr_window_get_inspect_view (win))->name, ==, "suspect.png");
  run->done = TRUE;
  gtk_window_close (GTK_WINDOW (win));
}

/* DCR_INJECT_FAULT (issue 11): a lost device or exhausted GPU memory during
 * the analysis is shown in a toast and the window stays alive. */
static void
test_inspect_gpu_fault (gconstpointer data)
{
  const char *const *fault = data;
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "model-file", model_path);
  g_settings_set_string (settings, "bank-file", bank_path);
  g_setenv ("DCR_INJECT_FAULT", fault[0], TRUE);
  g_autoptr (DcrApplication) app = dcr_application_new ();
  FaultRun run = { fault[1], FALSE };
  dcr_test_gui_run (G_APPLICATION (app), G_CALLBACK (on_activate_fault), &run);
  g_assert_true (run.done);
  g_unsetenv ("DCR_INJECT_FAULT");
}

static void
on_activate_close_busy (GApplication *app, gpointer data)
{
  GtkWidget **weak = data;
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  *weak = GTK_WIDGET (win);
  g_object_add_weak_pointer (G_OBJECT (win), (gpointer *) weak);
  g_autoptr (GFile) f = g_file_new_for_path (image_path);
  dcr_window_open_file (win, f);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "busy");
  gtk_window_close (GTK_WINDOW (win));
}

/* Closing the window while an analysis runs: the application keeps running
 * until the worker is done with the GPU, then the window goes — it is never
 * left to a worker still in the driver while the process exits. */
static void
test_inspect_close_busy (void)
{
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "model-file", model_path);
  g_settings_set_string (settings, "bank-file", bank_path);
  g_autoptr (DcrApplication) app = dcr_application_new ();
  GtkWidget *weak = NULL;
  dcr_test_gui_run (G_APPLICATION (app), G_CALLBACK (on_activate_close_busy), &weak);
  g_assert_null (weak);
}

int
main (int argc, char **argv)
{
  if (!dcr_test_gui_init (&argc, &argv))
    return 0;
  g_setenv ("DCR_BUSY_HINT_MS", "0", TRUE);
  make_fixtures ();
  g_test_add_func ("/app/inspect/stability-rule", test_stability_rule);
  g_test_add_func ("/app/inspect/no-model", test_inspect_no_model);
  g_test_add_func ("/app/inspect/result", test_inspect_result);
  g_test_add_func ("/app/inspect/close-while-analysing", test_inspect_close_busy);
  static const char *const lost[] = { "device-lost", "the GPU device was lost" };
  static const char *const oom[] = { "out-of-memory", "out of device memory" };
  g_test_add_data_func ("/app/inspect/gpu-fault/device-lost", lost, test_inspect_gpu_fault);
  g_test_add_data_func ("/app/inspect/gpu-fault/out-of-memory", oom, test_inspect_gpu_fault);
  int rc = g_test_run ();
  dcr_test_remove_tree (tmpdir);
  return rc;
}
