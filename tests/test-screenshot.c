/* test-screenshot.c — what an analyst sees, as PNG files in the build
 * directory: a tiny detector is trained on the fly (`dcr train` on
 * tests/make-dcr-images.py's synthetic set), then the window is rendered on
 * its start page, after analysing a held-out real photo and a held-out fake
 * (top and bottom of the inspect view, and zoomed in), and with the
 * preferences open. Each screenshot is checked for what must be visible:
 * the verdict band in its verdict's colour, the zoomed views agreeing.
 *   test-screenshot DCR PYTHON MAKE-IMAGES OUTDIR */
#include "dcr-config.h"
#include "dcr-application.h"
#include "dcr-preferences-window.h"
#include "dcr-window.h"
#include "dcr-test-files.h"
#include "dcr-test-gui.h"

static const char *dcr_exe, *python, *make_images, *outdir;
static char *tmpdir, *real_path, *fake_path, *model_path, *bank_path;

static void
run (const char *const *argv)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *out = NULL, *errout = NULL;
  int status;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &errout, &status,
                               &err));
  g_assert_no_error (err);
  if (!g_spawn_check_wait_status (status, &err))
    g_error ("%s failed: %s\n%s", argv[0], err->message, errout);
}

static void
make_fixtures (void)
{
  tmpdir = dcr_test_make_tmpdir ("dcr-screenshot-XXXXXX");
  g_autofree char *data = g_build_filename (tmpdir, "data", NULL);
  const char *mk[] = { python, make_images, data, "4", NULL };
  run (mk);
  g_autofree char *reals = g_build_filename (data, "real", NULL);
  g_autofree char *fakes = g_build_filename (data, "fake", NULL);
  g_autofree char *pairs = g_build_filename (data, "pairs.csv", NULL);
  model_path = g_build_filename (tmpdir, "tiny.safetensors", NULL);
  bank_path = g_build_filename (tmpdir, "tiny.dcrbank", NULL);
  const char *train[] = { dcr_exe, "train", "--real", reals, "--fake", fakes, "--pairs", pairs, "--bank", bank_path,
                          "--bank-from-reals", "--k", "3", "--hidden", "32", "--head-hidden", "16", "--batch", "8",
                          "--lr", "3e-3", "--seed", "5", "--epochs", "20", "--out", model_path, NULL };
  run (train);
  real_path = g_build_filename (data, "test-real", "scene01.png", NULL);
  fake_path = g_build_filename (data, "test-fake", "scene01.png", NULL);
}

static void
wait_while_busy (DcrWindow *win)
{
  dcr_test_gui_wait_while_busy (win, 120);
  /* the page crossfade to its end, then layout and a frame */
  dcr_test_gui_wait_transitions (GTK_WIDGET (win), 60);
  dcr_test_gui_spin (300);
}

/* The colour at the middle of `widget`'s left padding in `tex`. */
static void
pixel_in (GdkTexture *tex, GtkWidget *widget, guint8 rgb[3])
{
  graphene_rect_t b;
  g_assert_true (gtk_widget_compute_bounds (widget, GTK_WIDGET (gtk_widget_get_root (widget)), &b));
  int w = gdk_texture_get_width (tex), h = gdk_texture_get_height (tex);
  int x = (int) (b.origin.x + 6), y = (int) (b.origin.y + b.size.height / 2);
  g_assert_cmpint (x, <, w);
  g_assert_cmpint (y, <, h);
  g_autofree guint8 *px = g_malloc ((gsize) w * h * 4);
  gdk_texture_download (tex, px, (gsize) w * 4);
  /* GDK_MEMORY_DEFAULT is B8G8R8A8 premultiplied; the band is opaque */
  const guint8 *p = px + ((gsize) y * w + x) * 4;
  rgb[0] = p[2];
  rgb[1] = p[1];
  rgb[2] = p[0];
}

/* The band's colours in style.css. */
static void
assert_band_colour (DcrInspectView *view, GdkTexture *tex)
{
  static const guint8 colours[][3] = {
    [DCR_VERDICT_REAL] = { 0x26, 0xa2, 0x69 },
    [DCR_VERDICT_FAKE] = { 0xc0, 0x1c, 0x28 },
    [DCR_VERDICT_INCONCLUSIVE] = { 0xc8, 0x88, 0x00 },
  };
  const DcrAnalysisResult *r = dcr_inspect_view_get_result (view);
  guint8 rgb[3];
  pixel_in (tex, dcr_inspect_view_get_verdict_widget (view), rgb);
  for (int c = 0; c < 3; c++)
    g_assert_cmpint (ABS ((int) rgb[c] - colours[r->detection.verdict][c]), <=, 2);
}

static void
show_result (DcrWindow *win, const char *path, const char *name)
{
  DcrInspectView *view = dcr_window_get_inspect_view (win);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  dcr_window_open_file (win, file);
  wait_while_busy (win);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "result");
  const DcrAnalysisResult *r = dcr_inspect_view_get_result (view);
  g_test_message ("%s: %s, P(fake) %.3f (as saved: %s)", name, dcr_inspect_view_get_verdict_text (view),
                  r->detection.p_fake, dcr_verdict_name (r->verdict_as_saved));
  g_autoptr (GdkTexture) top = dcr_test_gui_snapshot_named (GTK_WIDGET (win), outdir, name);
  assert_band_colour (view, top);

  /* the lower half: the difference chart, its distribution, the file facts */
  GtkScrolledWindow *sw = GTK_SCROLLED_WINDOW (adw_bin_get_child (ADW_BIN (view)));
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment (sw);
  gtk_adjustment_set_value (adj, gtk_adjustment_get_upper (adj));
  dcr_test_gui_spin (300);
  g_autofree char *bottom = g_strdup_printf ("%s-bottom", name);
  g_autoptr (GdkTexture) bt = dcr_test_gui_snapshot_named (GTK_WIDGET (win), outdir, bottom);
  gtk_adjustment_set_value (adj, 0);
  dcr_test_gui_spin (100);
}

/* The application's window once it is on screen and laid out. */
static DcrWindow *
mapped_window (GApplication *app)
{
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  while (!gtk_widget_get_mapped (GTK_WIDGET (win)))
    g_main_context_iteration (NULL, TRUE);
  dcr_test_gui_spin (400);
  return win;
}

static void
on_activate (GApplication *app, gpointer data)
{
  gboolean *done = data;
  DcrWindow *win = mapped_window (app);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "start");
  g_autoptr (GdkTexture) start = dcr_test_gui_snapshot_named (GTK_WIDGET (win), outdir, "screenshot-start");

  show_result (win, real_path, "screenshot-real");
  show_result (win, fake_path, "screenshot-fake");

  /* zoomed in on the fake: both views at 4× on the same region */
  DcrInspectView *view = dcr_window_get_inspect_view (win);
  DcrZoomView *suspect = dcr_inspect_view_get_suspect_view (view);
  DcrZoomView *proto = dcr_inspect_view_get_prototype_view (view);
  int w = gtk_widget_get_width (GTK_WIDGET (suspect)), h = gtk_widget_get_height (GTK_WIDGET (suspect));
  /* the same size (a homogeneous box may give one the odd pixel) */
  g_assert_cmpint (ABS (w - gtk_widget_get_width (GTK_WIDGET (proto))), <=, 1);
  g_assert_cmpint (h, ==, gtk_widget_get_height (GTK_WIDGET (proto)));
  dcr_zoom_view_zoom_by (suspect, 4, w * 0.3, h * 0.3);
  dcr_test_gui_spin (200);
  double sx, sy, px, py;
  dcr_zoom_view_get_center (suspect, &sx, &sy);
  dcr_zoom_view_get_center (proto, &px, &py);
  g_assert_cmpfloat (dcr_zoom_view_get_zoom (proto), ==, 4);
  g_assert_cmpfloat (sx, ==, px);
  g_assert_cmpfloat (sy, ==, py);
  g_assert_cmpfloat (sx, <, 0.5);
  g_autoptr (GdkTexture) zoomed = dcr_test_gui_snapshot_named (GTK_WIDGET (win), outdir, "screenshot-fake-zoomed");
  dcr_zoom_view_fit (suspect);

  /* the same in the dark style the system may ask for: the drawn charts
   * must stay readable, the band keep its colour */
  AdwStyleManager *style = adw_style_manager_get_default ();
  adw_style_manager_set_color_scheme (style, ADW_COLOR_SCHEME_FORCE_DARK);
  dcr_test_gui_spin (400);
  g_autoptr (GdkTexture) dark = dcr_test_gui_snapshot_named (GTK_WIDGET (win), outdir, "screenshot-fake-dark");
  assert_band_colour (view, dark);
  adw_style_manager_set_color_scheme (style, ADW_COLOR_SCHEME_DEFAULT);
  dcr_test_gui_spin (200);

  DcrPreferencesPage *prefs = dcr_preferences_present (GTK_WIDGET (win));
  while (!gtk_widget_get_mapped (GTK_WIDGET (prefs)))
    g_main_context_iteration (NULL, TRUE);
  dcr_test_gui_spin (400);
  g_autoptr (GdkTexture) pt = dcr_test_gui_snapshot_named (GTK_WIDGET (prefs), outdir, "screenshot-preferences");
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (prefs));
  if (GTK_IS_WINDOW (root) && GTK_WINDOW (root) != GTK_WINDOW (win))
    gtk_window_destroy (GTK_WINDOW (root));

  *done = TRUE;
  g_application_quit (app);
}

/* Runs the app at 1100 × 1000 with the model and bank ("" for the shipped
 * ones) and `on_activate`, which sets its gboolean when it got through. */
static void
run_app (const char *model, const char *bank, GCallback on_activate_cb)
{
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "model-file", model);
  g_settings_set_string (settings, "bank-file", bank);
  g_settings_set_int (settings, "window-width", 1100);
  g_settings_set_int (settings, "window-height", 1000);
  g_autoptr (DcrApplication) app = dcr_application_new ();
  gboolean done = FALSE;
  dcr_test_gui_run (G_APPLICATION (app), on_activate_cb, &done);
  g_assert_true (done);
}

static void
test_screenshots (void)
{
  run_app (model_path, bank_path, G_CALLBACK (on_activate));
}

/* The shipped default model on the bundled partly regenerated sample: the
 * tile map is shown over the suspect, as the quick start opens it. */
static void
on_activate_partial (GApplication *app, gpointer data)
{
  gboolean *done = data;
  DcrWindow *win = mapped_window (app);
  g_autofree char *sample = g_build_filename (g_getenv ("DCR_SOURCE_ROOT"), "data", "samples",
                                              "fake-partial-esrgan-medium-x3-aitzgorri-1.png", NULL);
  show_result (win, sample, "screenshot-partial");
  DcrInspectView *view = dcr_window_get_inspect_view (win);
  GtkToggleButton *tiles = dcr_inspect_view_get_tile_map_button (view);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (tiles)));
  g_test_message ("tile evidence: %s (map %s)", dcr_inspect_view_get_tile_text (view),
                  gtk_toggle_button_get_active (tiles) ? "shown" : "hidden");
  g_assert_nonnull (dcr_inspect_view_get_tile_text (view));
  *done = TRUE;
  g_application_quit (app);
}

static void
test_screenshot_partial (void)
{
  run_app ("", "", G_CALLBACK (on_activate_partial));
}

int
main (int argc, char **argv)
{
  if (!dcr_test_gui_init (&argc, &argv))
    return 0;
  if (argc < 5)
    {
      g_printerr ("usage: %s DCR PYTHON MAKE-IMAGES OUTDIR\n", argv[0]);
      return 1;
    }
  dcr_exe = argv[1];
  python = argv[2];
  make_images = argv[3];
  outdir = argv[4];
  make_fixtures ();
  g_test_add_func ("/app/screenshots", test_screenshots);
  g_test_add_func ("/app/screenshots/shipped-partial", test_screenshot_partial);
  int rc = g_test_run ();
  dcr_test_remove_tree (tmpdir);
  return rc;
}
