/* test-tile-map.c — the tile head's "where" map in the inspect view.
 * Without a display: dcr_tile_map_from_detection (tile count, placement
 * through dcr_tile_rect, strengths σ(logit), the strongest, the mean of the
 * highest, and every case without a map). With one (Xvfb): the zoom view's
 * overlay API and what it draws at the view's zoom, and the inspect view
 * given an analysis result built here — the toggle, the overlay and the line
 * of evidence with a tile map, none of them without one, and the fused
 * P(fake) wording — from a result built by hand (the view only reads the
 * DcrAnalysisResult it is given) — and end to end: the "default" backbone
 * with a tile head (a random one, through $DCR_DATA_DIR, as the shipped one
 * will be found), an untrained model for it, a file opened in the window,
 * the analysis keeping the tile map and the view showing it. */
#include "dcr-config.h"
#include "dcr-analysis.h"
#include "dcr-application.h"
#include "dcr-batch-view.h"
#include "dcr-inspect-view.h"
#include "dcr-safetensors.h"
#include "dcr-tile-head.h"
#include "dcr-window.h"
#include "dcr-test-files.h"
#include "dcr-test-gui.h"

#include <glib/gstdio.h>
#include <math.h>

static double
sigmoid (double x)
{
  return 1.0 / (1.0 + exp (-x));
}

/* A detection with a tile map for a width × height image: logit of tile t
 * = -4 + 0.05·t, except `hot` (-1 for none) at 2.6. */
static void
make_detection (DcrDetection *d, guint width, guint height, int hot)
{
  memset (d, 0, sizeof *d);
  DcrForensicWindow win;
  g_assert_true (dcr_forensic_window (height, width, &win));
  DcrLocalTiles lt;
  dcr_local_tiles (&win, &lt);
  d->verdict = DCR_VERDICT_FAKE;
  d->p_fake = 0.91f;
  d->p_heads = 0.77f;
  d->has_tiles = TRUE;
  d->tile_score = 1.5f;
  d->tile_max = 2.5f;
  d->tile_rows = lt.nth;
  d->tile_cols = lt.ntw;
  guint n = d->tile_rows * d->tile_cols;
  d->tile_logits = g_new (float, n);
  for (guint t = 0; t < n; t++)
    d->tile_logits[t] = -4.0f + 0.05f * t;
  if (hot >= 0)
    d->tile_logits[hot] = 2.6f;
}

static void
test_helper (void)
{
  /* 640 × 480: window 512 × 480 at (64, 0), 480 × 468 anchors → 10 × 9 tiles of 48 */
  DcrDetection d;
  make_detection (&d, 640, 480, 23);
  g_assert_cmpuint (d.tile_rows, ==, 9);
  g_assert_cmpuint (d.tile_cols, ==, 10);
  DcrTileMap map;
  g_assert_true (dcr_tile_map_from_detection (&d, 640, 480, &map));
  g_assert_cmpuint (map.n, ==, 90);
  DcrForensicWindow win;
  dcr_forensic_window (480, 640, &win);
  for (guint t = 0; t < map.n; t++)
    {
      gint64 x, y, w, h;
      dcr_tile_rect (&win, t, &x, &y, &w, &h);
      g_assert_cmpfloat (map.rects[t].x, ==, x);
      g_assert_cmpfloat (map.rects[t].y, ==, y);
      g_assert_cmpfloat (map.rects[t].width, ==, w);
      g_assert_cmpfloat (map.rects[t].height, ==, h);
      g_assert_cmpfloat (w, ==, 48);
      g_assert_cmpfloat (h, ==, 48);
      /* inside the image */
      g_assert_cmpfloat (x, >=, 0);
      g_assert_cmpfloat (y, >=, 0);
      g_assert_cmpfloat (x + w, <=, 640);
      g_assert_cmpfloat (y + h, <=, 480);
      g_assert_cmpfloat_with_epsilon (map.rects[t].strength, sigmoid (d.tile_logits[t]), 1e-6);
    }
  /* row-major: tile 23 is row 2, column 3 */
  g_assert_cmpfloat (map.rects[23].x, ==, 64 + 6 + 3 * 48);
  g_assert_cmpfloat (map.rects[23].y, ==, 0 + 6 + 2 * 48);
  g_assert_cmpuint (map.strongest, ==, 23);
  /* the 4 highest: tile 23, then 89, 88, 87 */
  double top = (sigmoid (2.6) + sigmoid (-4 + 0.05 * 89) + sigmoid (-4 + 0.05 * 88) + sigmoid (-4 + 0.05 * 87)) / 4;
  g_assert_cmpfloat_with_epsilon (map.top_mean, top, 1e-6);
  dcr_tile_map_clear (&map);
  g_assert_null (map.rects);
  g_assert_cmpuint (map.n, ==, 0);

  /* ties: the first of equals is the strongest */
  for (guint t = 0; t < d.tile_rows * d.tile_cols; t++)
    d.tile_logits[t] = 0.5f;
  g_assert_true (dcr_tile_map_from_detection (&d, 640, 480, &map));
  g_assert_cmpuint (map.strongest, ==, 0);
  g_assert_cmpfloat_with_epsilon (map.top_mean, sigmoid (0.5), 1e-6);
  dcr_tile_map_clear (&map);

  /* the logits of another image size are not placed on this one */
  g_assert_false (dcr_tile_map_from_detection (&d, 1024, 1024, &map));
  g_assert_null (map.rects);
  g_assert_cmpuint (map.n, ==, 0);
  /* an image too small for a window */
  g_assert_false (dcr_tile_map_from_detection (&d, 20, 20, &map));
  /* no logits kept (tile maps off, or from features) */
  g_clear_pointer (&d.tile_logits, g_free);
  g_assert_false (dcr_tile_map_from_detection (&d, 640, 480, &map));
  g_assert_null (map.rects);
  dcr_detection_clear (&d);

  /* no tile head at all */
  DcrDetection none = { .verdict = DCR_VERDICT_REAL, .p_fake = 0.1f };
  g_assert_false (dcr_tile_map_from_detection (&none, 640, 480, &map));
  g_assert_null (map.rects);
  g_assert_cmpuint (map.n, ==, 0);

  /* a small image: 24-anchor tiles along the short side, one tile */
  make_detection (&d, 100, 40, -1);
  g_assert_cmpuint (d.tile_rows * d.tile_cols, ==, 1);
  g_assert_true (dcr_tile_map_from_detection (&d, 100, 40, &map));
  g_assert_cmpuint (map.n, ==, 1);
  g_assert_cmpfloat (map.rects[0].height, ==, 24);
  g_assert_cmpfloat_with_epsilon (map.top_mean, sigmoid (-4), 1e-6);
  dcr_tile_map_clear (&map);
  dcr_detection_clear (&d);
}

/* ---- the forensic CNN's blocks ------------------------------------------ */

/* The geometry of tests/cnn-ref.py's net (3→4 k3 s2, 4→4 k3 s2, 4→1 k1):
 * S = 4, blocks of 12 cells = 48 px; the weights do not matter here. */
static DcrCnn *
block_cnn (void)
{
  static const guint ch[] = { 3, 4, 4, 1 }, k[] = { 3, 3, 1 }, s[] = { 2, 2, 1 };
  g_autoptr (GError) err = NULL;
  DcrCnn *c = dcr_cnn_new (3, ch, k, s, &err);
  g_assert_no_error (err);
  return c;
}

/* A detection with the CNN's blocks for a width × height image: block b's
 * mean logit -3 + 0.02·b, except `hot` (-1 for none) at 2.2. */
static void
make_cnn_detection (DcrDetection *d, const DcrCnn *c, guint width, guint height, int hot)
{
  memset (d, 0, sizeof *d);
  gint64 top, left, h, w, hm, wm;
  dcr_cnn_window (height, width, &top, &left, &h, &w);
  g_assert_true (dcr_cnn_map_size (c, h, w, &hm, &wm));
  g_autofree float *map = g_new0 (float, hm * wm);
  float cols[DCR_CNN_DIM];
  guint nbh, nbw;
  dcr_cnn_columns (c, map, hm, wm, cols, NULL, &nbh, &nbw);
  d->verdict = DCR_VERDICT_FAKE;
  d->p_fake = 0.93f;
  d->p_heads = 0.71f;
  d->has_cnn = TRUE;
  d->cnn_rows = nbh;
  d->cnn_cols = nbw;
  d->cnn_blocks = g_new (float, nbh * nbw);
  for (guint b = 0; b < nbh * nbw; b++)
    d->cnn_blocks[b] = -3.0f + 0.02f * b;
  if (hot >= 0)
    d->cnn_blocks[hot] = 2.2f;
  d->cnn_max = hot >= 0 ? 2.2f : d->cnn_blocks[nbh * nbw - 1];
}

static void
test_cnn_helper (void)
{
  g_autoptr (DcrCnn) c = block_cnn ();
  /* 640 × 480: window 512 × 480 at (64, 0); map 126 × 118 → 9 × 10 blocks */
  DcrDetection d;
  make_cnn_detection (&d, c, 640, 480, 23);
  g_assert_cmpuint (d.cnn_rows, ==, 9);
  g_assert_cmpuint (d.cnn_cols, ==, 10);
  DcrTileMap map;
  g_assert_true (dcr_cnn_map_from_detection (&d, c, 640, 480, &map));
  g_assert_cmpuint (map.n, ==, 90);
  for (guint b = 0; b < map.n; b++)
    {
      gint64 x, y, w, h;
      dcr_cnn_block_rect (c, 480, 640, 10, b, &x, &y, &w, &h);
      g_assert_cmpfloat (map.rects[b].x, ==, x);
      g_assert_cmpfloat (map.rects[b].y, ==, y);
      g_assert_cmpfloat (map.rects[b].width, ==, 48);
      g_assert_cmpfloat (map.rects[b].height, ==, 48);
      g_assert_cmpfloat (x, ==, 64 + 2 + (b % 10) * 48);
      g_assert_cmpfloat (y, ==, 2 + (b / 10) * 48);
      g_assert_cmpfloat_with_epsilon (map.rects[b].strength, sigmoid (d.cnn_blocks[b]), 1e-6);
    }
  g_assert_cmpuint (map.strongest, ==, 23);
  double top = (sigmoid (2.2) + sigmoid (-3 + 0.02 * 89) + sigmoid (-3 + 0.02 * 88) + sigmoid (-3 + 0.02 * 87)) / 4;
  g_assert_cmpfloat_with_epsilon (map.top_mean, top, 1e-6);
  dcr_tile_map_clear (&map);
  /* the same through the detector's helper */
  guint block;
  gint64 rect[4];
  float logit;
  g_assert_true (dcr_detection_cnn_highest (&d, c, 640, 480, &block, rect, &logit));
  g_assert_cmpuint (block, ==, 23);
  g_assert_cmpint (rect[0], ==, 64 + 2 + 3 * 48);
  g_assert_cmpint (rect[1], ==, 2 + 2 * 48);
  g_assert_cmpfloat (logit, ==, 2.2f);

  /* blocks of another image size are not placed on this one, whether the
   * grid's width or only its height differs */
  g_assert_false (dcr_cnn_map_from_detection (&d, c, 1024, 1024, &map));
  g_assert_null (map.rects);
  g_assert_false (dcr_cnn_map_from_detection (&d, c, 640, 520, &map));
  g_assert_false (dcr_detection_cnn_highest (&d, c, 640, 520, NULL, NULL, NULL));
  /* too small for the network; no CNN given */
  g_assert_false (dcr_cnn_map_from_detection (&d, c, 12, 12, &map));
  g_assert_false (dcr_cnn_map_from_detection (&d, NULL, 640, 480, &map));
  /* no blocks kept */
  g_clear_pointer (&d.cnn_blocks, g_free);
  g_assert_false (dcr_cnn_map_from_detection (&d, c, 640, 480, &map));
  g_assert_cmpuint (map.n, ==, 0);
  dcr_detection_clear (&d);
  DcrDetection none = { .verdict = DCR_VERDICT_REAL };
  g_assert_false (dcr_cnn_map_from_detection (&none, c, 640, 480, &map));

  /* a small image: no whole block, the whole map is one */
  make_cnn_detection (&d, c, 40, 40, -1);
  g_assert_cmpuint (d.cnn_rows * d.cnn_cols, ==, 1);
  g_assert_true (dcr_cnn_map_from_detection (&d, c, 40, 40, &map));
  g_assert_cmpuint (map.n, ==, 1);
  g_assert_cmpfloat (map.rects[0].x, ==, 2);
  g_assert_cmpfloat (map.rects[0].width, ==, 32); /* map 8 × 8 cells of 4 px */
  dcr_tile_map_clear (&map);
  dcr_detection_clear (&d);
}

/* The batch page's row tooltip: the CNN's highest block when the item has
 * one, else the tile head's highest tile. */
static void
test_batch_tooltip (void)
{
  DcrReportItem it = { .path = "/evidence/x.png", .status = DCR_REPORT_ITEM_ANALYSED };
  g_autofree char *plain = dcr_batch_row_tooltip (&it);
  g_assert_cmpstr (plain, ==, "/evidence/x.png");
  it.has_top_tile = TRUE;
  it.top_tile[0] = 70;
  it.top_tile[1] = 6;
  it.top_tile_p = 0.25f;
  g_autofree char *tile = dcr_batch_row_tooltip (&it);
  g_assert_cmpstr (tile, ==, "/evidence/x.png\nMost suspicious 48 × 48 tile at (70, 6): 0.25");
  it.has_top_block = TRUE;
  it.top_block[0] = 210;
  it.top_block[1] = 98;
  it.top_block[2] = 48;
  it.top_block[3] = 40;
  it.top_block_p = 0.875f;
  g_autofree char *cnn = dcr_batch_row_tooltip (&it);
  g_assert_cmpstr (cnn, ==,
                   "/evidence/x.png\nMost suspicious region (the CNN's highest block, 48 × 40 px) at (210, 98): p = 0.88");
  it.status = DCR_REPORT_ITEM_REJECTED;
  it.reason = "empty file";
  g_autofree char *rej = dcr_batch_row_tooltip (&it);
  g_assert_cmpstr (rej, ==, "/evidence/x.png\nempty file");
}

/* What the score line says was fused, from the model's fusion column. */
static void
test_fusion_name (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *tmp = dcr_test_make_tmpdir ("dcr-fusion-name-XXXXXX");
  g_autofree char *cnn_path = g_build_filename (tmp, "cnn.safetensors", NULL);
  g_autofree char *head_path = g_build_filename (tmp, "head.safetensors", NULL);
  g_autoptr (DcrCnn) c = block_cnn ();
  g_assert_true (dcr_cnn_save (c, cnn_path, NULL, &err));
  g_autoptr (DcrTileHead) head = dcr_tile_head_new (3);
  g_assert_true (dcr_tile_head_save (head, head_path, NULL, &err));
  g_assert_no_error (err);
  g_autoptr (DcrContext) ctx = dcr_context_new (NULL, &err);
  g_assert_no_error (err);
  g_autofree char *weights = dcr_backbone_default_path ();
  g_autofree char *spec = g_strdup_printf ("mobilenet_v2+local+tiles=%s+cnn=%s:%s", head_path, cnn_path, weights);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, DCR_F32, &err);
  g_assert_no_error (err);
  guint cc = dcr_backbone_cnn_column (bb), tc = dcr_backbone_tiles_column (bb);
  DcrModelConfig cfg = { .fusion = FALSE, .fusion_column = cc + 1 };
  g_assert_null (dcr_analysis_fusion_name (&cfg, bb));
  cfg.fusion = TRUE;
  g_autofree char *a = dcr_analysis_fusion_name (&cfg, bb);
  g_assert_cmpstr (a, ==, "the CNN's top-block score");
  cfg.fusion_column = tc;
  g_autofree char *b = dcr_analysis_fusion_name (&cfg, bb);
  g_assert_cmpstr (b, ==, "the tile score");
  cfg.fusion_column = cc;
  g_autofree char *m = dcr_analysis_fusion_name (&cfg, bb);
  g_autofree char *want = g_strdup_printf ("feature column %u", cc);
  g_assert_cmpstr (m, ==, want);
  dcr_test_remove_tree (tmp);
}

/* A uniform grey w × h texture. */
static GdkTexture *
grey_texture (guint w, guint h)
{
  gsize size = (gsize) w * h * 3;
  guint8 *px = g_malloc (size);
  memset (px, 128, size);
  g_autoptr (GBytes) bytes = g_bytes_new_take (px, size);
  return gdk_memory_texture_new (w, h, GDK_MEMORY_R8G8B8, bytes, (gsize) w * 3);
}

/* The widget's own rendering, B8G8R8A8 premultiplied. */
static guint8 *
render_widget (GtkWidget *widget, int *w, int *h)
{
  *w = gtk_widget_get_width (widget);
  *h = gtk_widget_get_height (widget);
  g_assert_cmpint (*w, >, 0);
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snap = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, snap, *w, *h);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snap);
  g_assert_nonnull (node);
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  g_autoptr (GdkTexture) tex = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, *w, *h));
  guint8 *px = g_malloc ((gsize) *w * *h * 4);
  gdk_texture_download (tex, px, (gsize) *w * 4);
  return px;
}

static const guint8 *
pixel (const guint8 *px, int w, double x, double y)
{
  return px + ((gsize) floor (y) * w + (gsize) floor (x)) * 4;
}

static void
wait_for_size (GtkWidget *widget)
{
  while (!gtk_widget_get_mapped (widget) || gtk_widget_get_width (widget) <= 1)
    g_main_context_iteration (NULL, TRUE);
  dcr_test_gui_spin (200);
}

static void
test_zoom_overlay (void)
{
  GtkWidget *view = dcr_zoom_view_new ();
  DcrZoomView *zv = DCR_ZOOM_VIEW (view);
  guint n = 7;
  g_assert_null (dcr_zoom_view_get_overlay (zv, &n));
  g_assert_cmpuint (n, ==, 0);
  g_assert_cmpint (dcr_zoom_view_get_overlay_strongest (zv), ==, -1);

  /* a 200 × 100 image: a strong rect on the left, a weak one on the right */
  DcrOverlayRect rects[] = {
    { 110, 25, 40, 50, 0.2 },
    { 10, 25, 40, 50, 3.0 }, /* clamped to 1 */
    { 100, 0, 10, 10, NAN }, /* read as 0 */
    { 60, 25, 40, 50, -1 },  /* clamped to 0 */
  };
  dcr_zoom_view_set_overlay (zv, rects, G_N_ELEMENTS (rects));
  rects[0].x = 0; /* the view keeps its own copy */
  const DcrOverlayRect *o = dcr_zoom_view_get_overlay (zv, &n);
  g_assert_cmpuint (n, ==, 4);
  g_assert_cmpfloat (o[0].x, ==, 110);
  g_assert_cmpfloat (o[1].strength, ==, 1);
  g_assert_cmpfloat (o[2].strength, ==, 0);
  g_assert_cmpfloat (o[3].strength, ==, 0);
  g_assert_cmpint (dcr_zoom_view_get_overlay_strongest (zv), ==, 1);

  /* drawn at the view's scale: a 400 × 200 view fits the image at 2× */
  g_autoptr (GdkTexture) grey = grey_texture (200, 100);
  dcr_zoom_view_set_paintable (zv, GDK_PAINTABLE (grey));
  GtkWidget *win = gtk_window_new ();
  gtk_window_set_decorated (GTK_WINDOW (win), FALSE);
  gtk_window_set_default_size (GTK_WINDOW (win), 400, 200);
  gtk_window_set_child (GTK_WINDOW (win), view);
  gtk_window_present (GTK_WINDOW (win));
  wait_for_size (view);
  int w, h;
  g_autofree guint8 *px = render_widget (view, &w, &h);
  double s = MIN (w / 200.0, h / 100.0), ox = (w - 200 * s) / 2, oy = (h - 100 * s) / 2;
  g_test_message ("zoom view %d × %d, scale %.2f", w, h, s);
  /* the strong rect's middle: orange over grey (BGRA) */
  const guint8 *p = pixel (px, w, ox + 30 * s, oy + 50 * s);
  g_assert_cmpint (p[2], >, p[1] + 40);
  g_assert_cmpint (p[1], >, p[0] + 40);
  /* the weak one: tinted, less */
  const guint8 *q = pixel (px, w, ox + 130 * s, oy + 50 * s);
  g_assert_cmpint (q[2], >, q[0] + 5);
  g_assert_cmpint (q[2] - q[0], <, p[2] - p[0]);
  /* strength 0 and outside every rect: the grey image */
  const guint8 *z = pixel (px, w, ox + 80 * s, oy + 50 * s);
  const guint8 *g = pixel (px, w, ox + 120 * s, oy + 90 * s);
  for (int c = 0; c < 3; c++)
    {
      g_assert_cmpint (abs (z[c] - 128), <=, 2);
      g_assert_cmpint (abs (g[c] - 128), <=, 2);
    }
  /* the strongest is outlined: its edge differs from its inside */
  const guint8 *e = pixel (px, w, ox + 10 * s + 1.5, oy + 50 * s);
  g_assert_true (e[0] != p[0] || e[1] != p[1] || e[2] != p[2]);
  g_clear_pointer (&px, g_free);
  /* the tooltip names the rectangle under the pointer, none elsewhere */
  dcr_zoom_view_set_overlay_title (zv, "Tile head score");
  g_autofree char *tip = dcr_zoom_view_overlay_tooltip (zv, ox + 30 * s, oy + 50 * s);
  g_assert_cmpstr (tip, ==, "Tile head score 1.00 (the highest) — 40 × 50 px at (10, 25)");
  g_autofree char *tip2 = dcr_zoom_view_overlay_tooltip (zv, ox + 130 * s, oy + 50 * s);
  g_assert_cmpstr (tip2, ==, "Tile head score 0.20 — 40 × 50 px at (110, 25)");
  g_assert_null (dcr_zoom_view_overlay_tooltip (zv, ox + 130 * s, oy + 90 * s));

  /* zoomed 2× about the middle: image point (u, v) is drawn at
   * (w/2 + (u − 100)·2s, h/2 + (v − 50)·2s) */
  dcr_zoom_view_set_zoom (zv, 2);
  dcr_test_gui_spin (100);
  px = render_widget (view, &w, &h);
  double s2 = 2 * s;
  /* image (105, 50): between the rects */
  const guint8 *m = pixel (px, w, w / 2.0 + 5 * s2, h / 2.0);
  for (int c = 0; c < 3; c++)
    g_assert_cmpint (abs (m[c] - 128), <=, 2);
  /* image (130, 50): the weak rect, where it now is */
  const guint8 *wk = pixel (px, w, w / 2.0 + 30 * s2, h / 2.0);
  g_assert_cmpint (wk[2], >, wk[0] + 5);
  /* image (108, 50): left of the weak rect's edge at 110 */
  const guint8 *l = pixel (px, w, w / 2.0 + 8 * s2, h / 2.0);
  g_assert_cmpint (abs (l[2] - 128), <=, 2);
  g_clear_pointer (&px, g_free);

  /* NULL clears */
  dcr_zoom_view_set_overlay (zv, NULL, 0);
  g_assert_null (dcr_zoom_view_get_overlay (zv, &n));
  g_assert_cmpuint (n, ==, 0);
  g_assert_cmpint (dcr_zoom_view_get_overlay_strongest (zv), ==, -1);
  gtk_window_destroy (GTK_WINDOW (win));
}

/* An analysis result as dcr-analysis.c fills it, with the detection given. */
static DcrAnalysisResult *
make_result (const char *name, guint width, guint height, const DcrDetection *d, gboolean fusion)
{
  DcrAnalysisResult *r = g_new0 (DcrAnalysisResult, 1);
  r->path = g_strdup_printf ("/evidence/%s", name);
  r->name = g_strdup (name);
  r->size = 12345;
  r->format = g_strdup ("PNG");
  r->width = width;
  r->height = height;
  r->sha256 = g_compute_checksum_for_string (G_CHECKSUM_SHA256, name, -1);
  r->orientation = 1;
  r->image = grey_texture (width, height);
  r->detection = *d;
  r->score_fusion = fusion;
  r->fusion_what = fusion ? g_strdup ("the tile score") : NULL;
  r->threshold = 0.5f;
  r->band_lo = 0.4f;
  r->band_hi = 0.6f;
  r->prototypes = g_ptr_array_new ();
  r->verdict_as_saved = d->verdict;
  for (guint i = 0; i < DCR_STABILITY_N_VARIANTS; i++)
    r->stability[i] = (DcrStabilityScore) { d->p_fake, d->verdict, FALSE };
  r->model_name = g_strdup ("test-model.safetensors");
  r->bank_name = g_strdup ("test.dcrbank");
  r->device_name = g_strdup ("none");
  r->backbone_id = g_strdup ("test");
  return r;
}

static void
test_inspect_tile_map (void)
{
  GtkWidget *win = gtk_window_new ();
  gtk_window_set_default_size (GTK_WINDOW (win), 1100, 1000);
  GtkWidget *widget = dcr_inspect_view_new ();
  DcrInspectView *view = DCR_INSPECT_VIEW (widget);
  gtk_window_set_child (GTK_WINDOW (win), widget);
  gtk_window_present (GTK_WINDOW (win));
  DcrZoomView *suspect = dcr_inspect_view_get_suspect_view (view);
  GtkToggleButton *toggle = dcr_inspect_view_get_tile_map_button (view);
  g_assert_nonnull (toggle);
  g_assert_cmpstr (gtk_button_get_label (GTK_BUTTON (toggle)), ==, "Tile map");
  g_assert_nonnull (gtk_widget_get_tooltip_text (GTK_WIDGET (toggle)));

  /* a tile map with a hot tile: the toggle is shown and on, the overlay set */
  DcrDetection d;
  make_detection (&d, 640, 480, 23);
  dcr_inspect_view_set_result (view, make_result ("pasted.png", 640, 480, &d, TRUE));
  wait_for_size (GTK_WIDGET (suspect));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (toggle)));
  g_assert_true (gtk_toggle_button_get_active (toggle));
  guint n = 0;
  const DcrOverlayRect *o = dcr_zoom_view_get_overlay (suspect, &n);
  g_assert_nonnull (o);
  g_assert_cmpuint (n, ==, 90);
  g_assert_cmpint (dcr_zoom_view_get_overlay_strongest (suspect), ==, 23);
  g_assert_cmpfloat_with_epsilon (o[23].strength, sigmoid (2.6), 1e-6);
  g_assert_cmpfloat (o[23].x, ==, 214);
  g_assert_cmpfloat (o[23].y, ==, 102);
  const char *tile = dcr_inspect_view_get_tile_text (view);
  g_assert_nonnull (tile);
  g_test_message ("%s", tile);
  g_autofree char *expect = g_strdup_printf (
      "Tile head (evidence, not proof): highest tile %.2f at (214, 102), 48 × 48 px; mean of the 4 highest %.2f",
      sigmoid (2.6),
      (sigmoid (2.6) + sigmoid (-4 + 0.05 * 89) + sigmoid (-4 + 0.05 * 88) + sigmoid (-4 + 0.05 * 87)) / 4);
  g_assert_cmpstr (tile, ==, expect);
  g_assert_nonnull (dcr_test_gui_find_label (widget, "Tile head (evidence, not proof)"));
  /* fused: the verdict's P(fake) first, the heads' own beside it */
  g_assert_cmpstr (dcr_inspect_view_get_score_text (view), ==,
                   "P(fake) 0.910 (heads 0.770, fused with the tile score) · anomaly 0.000 · threshold 0.50");
  dcr_test_gui_spin (300);
  g_object_unref (dcr_test_gui_snapshot (widget, "/tmp/dcr-tile-map.png"));

  /* off and on again */
  gtk_toggle_button_set_active (toggle, FALSE);
  g_assert_null (dcr_zoom_view_get_overlay (suspect, &n));
  g_assert_cmpuint (n, ==, 0);
  gtk_toggle_button_set_active (toggle, TRUE);
  g_assert_nonnull (dcr_zoom_view_get_overlay (suspect, &n));
  g_assert_cmpuint (n, ==, 90);

  /* a tile map where no tile reaches DCR_INSPECT_TILE_MAP_AUTO: shown on
   * request only */
  make_detection (&d, 640, 480, -1);
  for (guint t = 0; t < d.tile_rows * d.tile_cols; t++)
    d.tile_logits[t] -= 1; /* the highest: σ(−0.55) ≈ 0.37 */
  dcr_inspect_view_set_result (view, make_result ("calm.png", 640, 480, &d, FALSE));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (toggle)));
  g_assert_false (gtk_toggle_button_get_active (toggle));
  g_assert_null (dcr_zoom_view_get_overlay (suspect, &n));
  g_assert_nonnull (dcr_inspect_view_get_tile_text (view));
  g_assert_cmpstr (dcr_inspect_view_get_score_text (view), ==, "P(fake) 0.910 · anomaly 0.000 · threshold 0.50");
  gtk_toggle_button_set_active (toggle, TRUE);
  g_assert_nonnull (dcr_zoom_view_get_overlay (suspect, &n));
  g_assert_cmpuint (n, ==, 90);

  /* the forensic CNN's blocks: drawn instead of the tile head's tiles, the
   * line names the CNN, the score line what the model fused */
  {
    g_autoptr (DcrCnn) c = block_cnn ();
    DcrDetection cd;
    make_cnn_detection (&cd, c, 640, 480, 23);
    /* the tile head's map too: the CNN's wins */
    DcrDetection td;
    make_detection (&td, 640, 480, 5);
    cd.has_tiles = TRUE;
    cd.tile_rows = td.tile_rows;
    cd.tile_cols = td.tile_cols;
    cd.tile_logits = g_steal_pointer (&td.tile_logits);
    DcrAnalysisResult *cr = make_result ("cnn.png", 640, 480, &cd, TRUE);
    g_free (cr->fusion_what);
    cr->fusion_what = g_strdup ("the CNN's top-block score");
    g_assert_true (dcr_cnn_map_from_detection (&cr->detection, c, 640, 480, &cr->cnn_map));
    dcr_inspect_view_set_result (view, cr);
    g_assert_true (gtk_widget_get_visible (GTK_WIDGET (toggle)));
    g_assert_true (gtk_toggle_button_get_active (toggle));
    o = dcr_zoom_view_get_overlay (suspect, &n);
    g_assert_nonnull (o);
    g_assert_cmpuint (n, ==, 90);
    g_assert_cmpint (dcr_zoom_view_get_overlay_strongest (suspect), ==, 23);
    g_assert_cmpfloat (o[23].x, ==, 64 + 2 + 3 * 48);
    g_assert_cmpfloat (o[23].y, ==, 2 + 2 * 48);
    g_assert_cmpfloat_with_epsilon (o[23].strength, sigmoid (2.2), 1e-6);
    g_autofree char *cnn_expect = g_strdup_printf (
        "CNN (evidence, not proof): highest block p = %.2f, at (210, 98), 48 × 48 px; mean of the 4 highest %.2f",
        sigmoid (2.2),
        (sigmoid (2.2) + sigmoid (-3 + 0.02 * 89) + sigmoid (-3 + 0.02 * 88) + sigmoid (-3 + 0.02 * 87)) / 4);
    g_assert_cmpstr (dcr_inspect_view_get_tile_text (view), ==, cnn_expect);
    g_assert_null (dcr_test_gui_find_label (widget, "Tile head"));
    g_assert_cmpstr (dcr_inspect_view_get_score_text (view), ==,
                     "P(fake) 0.930 (heads 0.710, fused with the CNN's top-block score) · anomaly 0.000 · "
                     "threshold 0.50");
    dcr_test_gui_spin (200);
    g_object_unref (dcr_test_gui_snapshot (widget, "/tmp/dcr-cnn-map.png"));

    /* no block reaches DCR_INSPECT_TILE_MAP_AUTO: shown on request only */
    make_cnn_detection (&cd, c, 640, 480, -1);
    cr = make_result ("cnn-calm.png", 640, 480, &cd, FALSE);
    g_assert_true (dcr_cnn_map_from_detection (&cr->detection, c, 640, 480, &cr->cnn_map));
    dcr_inspect_view_set_result (view, cr);
    g_assert_true (gtk_widget_get_visible (GTK_WIDGET (toggle)));
    g_assert_false (gtk_toggle_button_get_active (toggle));
    g_assert_null (dcr_zoom_view_get_overlay (suspect, &n));
    g_assert_true (
        g_str_has_prefix (dcr_inspect_view_get_tile_text (view), "CNN (evidence, not proof): highest block "));
    g_assert_cmpstr (dcr_inspect_view_get_score_text (view), ==, "P(fake) 0.930 · anomaly 0.000 · threshold 0.50");
  }

  /* a model without a tile head: no toggle, no overlay, no line — even right
   * after a result that had them */
  DcrDetection plain = { .verdict = DCR_VERDICT_REAL, .p_fake = 0.12f, .p_heads = 0.12f };
  dcr_inspect_view_set_result (view, make_result ("plain.png", 640, 480, &plain, FALSE));
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (toggle)));
  g_assert_false (gtk_toggle_button_get_active (toggle));
  g_assert_null (dcr_zoom_view_get_overlay (suspect, &n));
  g_assert_cmpuint (n, ==, 0);
  g_assert_null (dcr_inspect_view_get_tile_text (view));
  g_assert_null (dcr_test_gui_find_label (widget, "Tile head"));
  g_assert_cmpstr (dcr_inspect_view_get_score_text (view), ==, "P(fake) 0.120 · anomaly 0.000 · threshold 0.50");

  /* a tile head whose logits were not kept: nothing either */
  make_detection (&d, 640, 480, 5);
  g_clear_pointer (&d.tile_logits, g_free);
  dcr_inspect_view_set_result (view, make_result ("nologits.png", 640, 480, &d, FALSE));
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (toggle)));
  g_assert_null (dcr_zoom_view_get_overlay (suspect, &n));
  g_assert_null (dcr_inspect_view_get_tile_text (view));
  gtk_window_destroy (GTK_WINDOW (win));
}

typedef struct {
  const char *image;
  gboolean done;
} EndToEnd;

static void
on_activate_end_to_end (GApplication *app, gpointer data)
{
  EndToEnd *e = data;
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_autoptr (GFile) f = g_file_new_for_path (e->image);
  dcr_window_open_file (win, f);
  dcr_test_gui_wait_while_busy (win, 240);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "result");
  DcrInspectView *view = dcr_window_get_inspect_view (win);
  const DcrAnalysisResult *r = dcr_inspect_view_get_result (view);
  g_assert_nonnull (r);
  g_assert_false (r->score_fusion);
  /* the detector kept the map, of the window's tiles of this image */
  const DcrDetection *d = &r->detection;
  g_assert_true (d->has_tiles);
  g_assert_nonnull (d->tile_logits);
  DcrForensicWindow fw;
  g_assert_true (dcr_forensic_window (r->height, r->width, &fw));
  DcrLocalTiles lt;
  dcr_local_tiles (&fw, &lt);
  g_assert_cmpuint (d->tile_rows, ==, lt.nth);
  g_assert_cmpuint (d->tile_cols, ==, lt.ntw);
  g_test_message ("%u × %u tiles", d->tile_rows, d->tile_cols);
  float hi = -INFINITY;
  for (guint t = 0; t < d->tile_rows * d->tile_cols; t++)
    {
      g_assert_true (isfinite (d->tile_logits[t]));
      hi = MAX (hi, d->tile_logits[t]);
    }
  /* the head's highest column is the highest logit (before standardisation
   * the columns are the head's own; here the norm is the identity) */
  g_assert_cmpfloat_with_epsilon (d->tile_max, hi, 1e-3);
  DcrTileMap map;
  g_assert_true (dcr_tile_map_from_detection (d, r->width, r->height, &map));
  GtkToggleButton *toggle = dcr_inspect_view_get_tile_map_button (view);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (toggle)));
  gboolean hot = map.rects[map.strongest].strength >= DCR_INSPECT_TILE_MAP_AUTO;
  g_assert_cmpint (gtk_toggle_button_get_active (toggle), ==, hot);
  gtk_toggle_button_set_active (toggle, TRUE);
  guint n = 0;
  const DcrOverlayRect *o = dcr_zoom_view_get_overlay (dcr_inspect_view_get_suspect_view (view), &n);
  g_assert_nonnull (o);
  g_assert_cmpuint (n, ==, map.n);
  for (guint t = 0; t < n; t++)
    g_assert_cmpfloat_with_epsilon (o[t].strength, map.rects[t].strength, 1e-6);
  const char *tile = dcr_inspect_view_get_tile_text (view);
  g_assert_nonnull (tile);
  g_test_message ("%s", tile);
  g_assert_true (g_str_has_prefix (tile, "Tile head (evidence, not proof): highest tile "));
  dcr_tile_map_clear (&map);
  dcr_test_gui_spin (300);
  g_object_unref (dcr_test_gui_snapshot (GTK_WIDGET (win), "/tmp/dcr-tile-map-window.png"));
  e->done = TRUE;
  gtk_window_close (GTK_WINDOW (win));
}

static void
test_end_to_end (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *tmp = dcr_test_make_tmpdir ("dcr-tile-map-XXXXXX");
  g_autofree char *data = g_build_filename (tmp, "data", NULL);
  g_autofree char *dir = g_build_filename (data, "models", "default", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  /* a tile head with random weights of a useful size */
  g_autofree char *head_path = g_build_filename (dir, "tile-head.safetensors", NULL);
  {
    g_autoptr (DcrTileHead) head = dcr_tile_head_new (6);
    g_autoptr (GRand) rand = g_rand_new_with_seed (9);
    for (guint j = 0; j < DCR_TILES_NIN; j++)
      {
        head->mean[j] = (float) g_rand_double_range (rand, -0.2, 0.2);
        head->std[j] = (float) g_rand_double_range (rand, 0.3, 2.0);
      }
    for (guint i = 0; i < head->hidden * DCR_TILES_NIN; i++)
      head->w1[i] = (float) g_rand_double_range (rand, -0.3, 0.3);
    for (guint k = 0; k < head->hidden; k++)
      {
        head->b1[k] = (float) g_rand_double_range (rand, -0.5, 0.5);
        head->w2[k] = (float) g_rand_double_range (rand, -1, 1);
      }
    head->b2 = 0.2f;
    g_assert_true (dcr_tile_head_save (head, head_path, NULL, &err));
    g_assert_no_error (err);
  }
  /* the identity standardisation for the backbone with that head, as the
   * shipped feature-norm.safetensors is made for the shipped backbone */
  {
    g_autoptr (DcrContext) ctx = dcr_context_new (NULL, &err);
    g_assert_no_error (err);
    g_autofree char *weights = dcr_backbone_default_path ();
    g_autofree char *spec = g_strdup_printf ("mobilenet_v2+residual+local+tiles=%s:%s", head_path, weights);
    g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, DCR_F32, &err);
    g_assert_no_error (err);
    gint64 dim = dcr_backbone_dim (bb);
    g_autofree float *mean = g_new0 (float, dim), *sd = g_new (float, dim);
    for (gint64 c = 0; c < dim; c++)
      sd[c] = 1;
    DcrStWriteTensor t[] = { { "mean", DCR_ST_F32, 1, &dim, mean }, { "std", DCR_ST_F32, 1, &dim, sd } };
    const char *meta[] = { "backbone", dcr_backbone_id (bb), NULL };
    g_autofree char *norm = g_build_filename (dir, "feature-norm.safetensors", NULL);
    g_assert_true (dcr_safetensors_write (norm, t, G_N_ELEMENTS (t), meta, &err));
    g_assert_no_error (err);
  }
  g_setenv ("DCR_DATA_DIR", data, TRUE);
  g_autofree char *model = g_build_filename (tmp, "m.safetensors", NULL);
  g_autofree char *bank = g_build_filename (tmp, "bank.dcrbank", NULL);
  dcr_test_make_untrained_detector (model, bank, 3, 4, "/evidence/real/proto.png");
  g_autofree char *image = g_build_filename (tmp, "suspect.png", NULL);
  dcr_test_write_pattern_png (image, 320, 240, 1);

  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "model-file", model);
  g_settings_set_string (settings, "bank-file", bank);
  g_autoptr (DcrApplication) app = dcr_application_new ();
  EndToEnd e = { image, FALSE };
  dcr_test_gui_run (G_APPLICATION (app), G_CALLBACK (on_activate_end_to_end), &e);
  g_assert_true (e.done);
  g_unsetenv ("DCR_DATA_DIR");
  dcr_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  gtk_disable_setlocale ();
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/app/tile-map/helper", test_helper);
  g_test_add_func ("/app/tile-map/cnn-helper", test_cnn_helper);
  g_test_add_func ("/app/tile-map/batch-tooltip", test_batch_tooltip);
  g_test_add_func ("/app/tile-map/fusion-name", test_fusion_name);
  if (g_getenv ("DISPLAY") || g_getenv ("WAYLAND_DISPLAY"))
    {
      gtk_init ();
      adw_init ();
      g_test_add_func ("/app/tile-map/zoom-overlay", test_zoom_overlay);
      g_test_add_func ("/app/tile-map/inspect", test_inspect_tile_map);
      g_test_add_func ("/app/tile-map/end-to-end", test_end_to_end);
    }
  else
    g_test_message ("no display: the view tests need xvfb-run (see README)");
  return g_test_run ();
}
