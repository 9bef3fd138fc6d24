/* dcr-inspect-view.c — draws a DcrAnalysisResult: the verdict band, the
 * P(fake) scale with the threshold and inconclusive band, the suspect beside
 * its nearest real prototype (zoomed and panned together; over the suspect,
 * on a toggle, the tile head's map of where pixels look regenerated), the prototype
 * strip, the top channels of |f̂ − r̂₁| by tap with a histogram of all
 * channels, and the file facts. */
#include "dcr-config.h"
#include "dcr-inspect-view.h"
#include "dcr-zoom-view.h"
#include "dcr-tile-head.h"

#include <math.h>

struct _DcrInspectView {
  AdwBin parent_instance;
  GtkLabel *verdict_label, *reason_label, *score_label;
  GtkLabel *stability_label, *stability_reason_label;
  GtkLabel *tile_label;
  GtkToggleButton *tile_map_button;
  DcrTileMap tile_map; /* of the result shown; empty without a tile head */
  GtkDrawingArea *scale_area, *chart_area, *histogram_area;
  DcrZoomView *suspect_view, *prototype_view;
  GtkButton *zoom_fit_button;
  GSettings *settings;
  gboolean show_thresholds;
  GtkLabel *suspect_caption, *prototype_caption, *provenance_label;
  GtkBox *strip_box;
  AdwPreferencesGroup *facts_group;
  GPtrArray *fact_rows;

  DcrAnalysisResult *result;
  guint top[DCR_INSPECT_TOP_CHANNELS]; /* channel indices, largest difference first */
  guint n_top;
  float max_residual;
};

enum {
  PROP_0,
  PROP_RESULT,
  PROP_SHOW_THRESHOLDS,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE (DcrInspectView, dcr_inspect_view, ADW_TYPE_BIN)

/* One colour per tap, readable on light and dark backgrounds, and none of
 * them the verdict colours (green, amber, red): a bar says where, not what. */
static const double tap_colors[][3] = {
  { 0.21, 0.52, 0.89 }, { 0.90, 0.38, 0.00 }, { 0.57, 0.25, 0.67 }, { 0.20, 0.65, 0.70 },
  { 0.62, 0.46, 0.30 }, { 0.85, 0.35, 0.65 }, { 0.40, 0.45, 0.60 }, { 0.55, 0.55, 0.15 },
};

static guint
tap_index (const DcrAnalysisResult *r, guint channel)
{
  const DcrAnalysisTap *t = dcr_analysis_result_tap (r, channel);
  return t ? (guint) (t - &g_array_index (r->taps, DcrAnalysisTap, 0)) : 0;
}

static void
set_tap_color (cairo_t *cr, guint tap)
{
  const double *c = tap_colors[tap % G_N_ELEMENTS (tap_colors)];
  cairo_set_source_rgb (cr, c[0], c[1], c[2]);
}

static void
draw_text (cairo_t *cr, double x, double y, double align, const char *text)
{
  cairo_text_extents_t ext;
  cairo_text_extents (cr, text, &ext);
  cairo_move_to (cr, x - align * ext.x_advance, y);
  cairo_show_text (cr, text);
}

static void
draw_scale (GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data)
{
  DcrInspectView *self = data;
  const DcrAnalysisResult *r = self->result;
  if (!r)
    return;
  double x0 = 8, x1 = w - 8, bar_y = 24, bar_h = 14;
  double span = x1 - x0;
  double tx = x0 + span * r->threshold;
  gboolean show = self->show_thresholds;
  cairo_set_font_size (cr, 11);
  if (show)
    {
      /* real … fake, the inconclusive band shaded between */
      cairo_set_source_rgb (cr, 0.15, 0.64, 0.41);
      cairo_rectangle (cr, x0, bar_y, span * r->band_lo, bar_h);
      cairo_fill (cr);
      cairo_set_source_rgb (cr, 0.78, 0.53, 0.0);
      cairo_rectangle (cr, x0 + span * r->band_lo, bar_y, span * (r->band_hi - r->band_lo), bar_h);
      cairo_fill (cr);
      cairo_set_source_rgb (cr, 0.75, 0.11, 0.16);
      cairo_rectangle (cr, x0 + span * r->band_hi, bar_y, span * (1 - r->band_hi), bar_h);
      cairo_fill (cr);
      cairo_set_source_rgb (cr, 0.5, 0.5, 0.5);
      cairo_set_line_width (cr, 2);
      cairo_move_to (cr, tx, bar_y - 4);
      cairo_line_to (cr, tx, bar_y + bar_h + 4);
      cairo_stroke (cr);
      g_autofree char *th = g_strdup_printf ("threshold %.2f", r->threshold);
      draw_text (cr, tx, bar_y + bar_h + 16, tx < w / 2.0 ? 0 : 1, th);
      /* name the amber band where it has room beside the threshold label */
      double bx0 = x0 + span * r->band_lo, bx1 = x0 + span * r->band_hi;
      cairo_text_extents_t ext;
      cairo_text_extents (cr, "inconclusive", &ext);
      if (bx1 - bx0 > ext.x_advance + 8)
        {
          cairo_set_source_rgb (cr, 1, 1, 1);
          draw_text (cr, (bx0 + bx1) / 2, bar_y + bar_h - 3, 0.5, "inconclusive");
        }
    }
  else
    {
      /* the score alone on a plain 0…1 scale */
      cairo_set_source_rgb (cr, 0.55, 0.55, 0.58);
      cairo_rectangle (cr, x0, bar_y, span, bar_h);
      cairo_fill (cr);
    }
  /* P(fake): a marker above the bar */
  double px = x0 + span * CLAMP (r->detection.p_fake, 0, 1);
  cairo_set_source_rgb (cr, 0.5, 0.5, 0.5);
  cairo_move_to (cr, px, bar_y);
  cairo_line_to (cr, px - 7, bar_y - 12);
  cairo_line_to (cr, px + 7, bar_y - 12);
  cairo_close_path (cr);
  cairo_fill (cr);
  /* say what the marker is, on whichever side has room */
  g_autofree char *here = g_strdup_printf ("this image: P(fake) %.2f", r->detection.p_fake);
  cairo_text_extents_t hext;
  cairo_text_extents (cr, here, &hext);
  gboolean right = px + 10 + hext.x_advance <= x1;
  draw_text (cr, right ? px + 10 : px - 10, bar_y - 4, right ? 0 : 1, here);
  /* the end labels give way to the threshold's when they would overlap */
  draw_text (cr, x0, bar_y + bar_h + 16, 0, show && tx < 90 ? "" : "real");
  draw_text (cr, x1, bar_y + bar_h + 16, 1, show && tx > w - 90 ? "" : "fake");
}

static void
draw_chart (GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data)
{
  DcrInspectView *self = data;
  const DcrAnalysisResult *r = self->result;
  if (!r || self->n_top == 0 || self->max_residual <= 0)
    return;
  double left = 8, right = w - 8, top = 26, bottom = h - 22;
  double slot = (right - left) / self->n_top;
  cairo_set_font_size (cr, 10);
  /* legend: one swatch per tap */
  double lx = left;
  for (guint t = 0; t < r->taps->len; t++)
    {
      const char *name = g_array_index (r->taps, DcrAnalysisTap, t).name;
      set_tap_color (cr, t);
      cairo_rectangle (cr, lx, 6, 10, 10);
      cairo_fill (cr);
      cairo_set_source_rgb (cr, 0.5, 0.5, 0.5);
      cairo_text_extents_t ext;
      cairo_text_extents (cr, name, &ext);
      cairo_move_to (cr, lx + 14, 15);
      cairo_show_text (cr, name);
      lx += 24 + ext.x_advance;
    }
  for (guint i = 0; i < self->n_top; i++)
    {
      guint c = self->top[i];
      double v = r->detection.residual[c] / self->max_residual;
      double bh = v * (bottom - top - 12);
      double x = left + i * slot + slot * 0.15;
      set_tap_color (cr, tap_index (r, c));
      cairo_rectangle (cr, x, bottom - bh, slot * 0.7, bh);
      cairo_fill (cr);
      cairo_set_source_rgb (cr, 0.5, 0.5, 0.5);
      g_autofree char *ci = g_strdup_printf ("%u", c);
      draw_text (cr, x + slot * 0.35, bottom + 14, 0.5, ci);
      g_autofree char *val = g_strdup_printf ("%.3f", r->detection.residual[c]);
      if (slot > 34)
        draw_text (cr, x + slot * 0.35, bottom - bh - 3, 0.5, val);
    }
}

static gboolean
chart_tooltip (GtkWidget *widget, int x, int y, gboolean keyboard, GtkTooltip *tooltip, gpointer data)
{
  DcrInspectView *self = data;
  if (!self->result || self->n_top == 0)
    return FALSE;
  int w = gtk_widget_get_width (widget);
  double slot = (w - 16.0) / self->n_top;
  int i = (int) floor ((x - 8) / slot);
  if (i < 0 || i >= (int) self->n_top)
    return FALSE;
  guint c = self->top[i];
  const DcrAnalysisTap *t = dcr_analysis_result_tap (self->result, c);
  g_autofree char *text = g_strdup_printf ("Channel %u (%s, column %u of the block): |f̂ − r̂₁| = %.4f", c,
                                           t ? t->name : "?", t ? c - t->offset : c,
                                           self->result->detection.residual[c]);
  gtk_tooltip_set_text (tooltip, text);
  return TRUE;
}

static void
draw_histogram (GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data)
{
  DcrInspectView *self = data;
  const DcrAnalysisResult *r = self->result;
  if (!r || r->dim == 0 || self->max_residual <= 0)
    return;
  enum { BINS = 48 };
  guint counts[BINS] = { 0 };
  guint most = 0;
  for (guint c = 0; c < r->dim; c++)
    {
      guint b = MIN ((guint) (r->detection.residual[c] / self->max_residual * BINS), BINS - 1);
      most = MAX (most, ++counts[b]);
    }
  double left = 8, right = w - 8, top = 4, bottom = h - 18;
  double bw = (right - left) / BINS;
  cairo_set_source_rgb (cr, 0.55, 0.55, 0.6);
  for (guint b = 0; b < BINS; b++)
    {
      /* log scale: the mass sits near zero, the tail is what matters */
      double v = counts[b] ? log1p (counts[b]) / log1p (most) : 0;
      cairo_rectangle (cr, left + b * bw + 1, bottom - v * (bottom - top), bw - 2, v * (bottom - top));
    }
  cairo_fill (cr);
  cairo_set_source_rgb (cr, 0.5, 0.5, 0.5);
  cairo_set_font_size (cr, 10);
  g_autofree char *lo = g_strdup ("0");
  g_autofree char *hi = g_strdup_printf ("%.3f", self->max_residual);
  g_autofree char *mid = g_strdup_printf ("all %u channels (count, log scale)", r->dim);
  draw_text (cr, left, h - 4, 0, lo);
  draw_text (cr, w / 2.0, h - 4, 0.5, mid);
  draw_text (cr, right, h - 4, 1, hi);
}

static void
clear_box (GtkBox *box)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (box))))
    gtk_box_remove (box, child);
}

static void
add_fact (DcrInspectView *self, const char *title, const char *value)
{
  if (!value || !*value)
    return;
  GtkWidget *row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  /* file names and EXIF text are not markup */
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), value);
  adw_preferences_group_add (self->facts_group, row);
  g_ptr_array_add (self->fact_rows, row);
}

static char *
prototype_caption (const DcrAnalysisPrototype *p)
{
  g_autofree char *added = p->added ? g_date_time_format (p->added, "%Y-%m-%d %H:%M UTC") : g_strdup ("?");
  g_autofree char *base = g_path_get_basename (p->source ? p->source : "?");
  return g_strdup_printf ("#%" G_GINT64_FORMAT " %s · similarity %.3f · added %s%s%.12s", p->id, base,
                          p->similarity, added, p->sha256 ? " · sha256 " : "", p->sha256 ? p->sha256 : "");
}

static void
fill_strip (DcrInspectView *self)
{
  clear_box (self->strip_box);
  for (guint j = 0; j < self->result->prototypes->len; j++)
    {
      const DcrAnalysisPrototype *p = g_ptr_array_index (self->result->prototypes, j);
      GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
      GtkWidget *pic = gtk_picture_new_for_paintable (GDK_PAINTABLE (p->thumbnail));
      gtk_picture_set_content_fit (GTK_PICTURE (pic), GTK_CONTENT_FIT_CONTAIN);
      gtk_widget_set_size_request (pic, 96, 96);
      gtk_widget_add_css_class (pic, "card");
      g_autofree char *tip = prototype_caption (p);
      gtk_widget_set_tooltip_text (box, tip);
      g_autofree char *text = g_strdup_printf ("%.3f", p->similarity);
      GtkWidget *label = gtk_label_new (text);
      gtk_widget_add_css_class (label, "caption");
      gtk_widget_add_css_class (label, "numeric");
      gtk_box_append (GTK_BOX (box), pic);
      gtk_box_append (GTK_BOX (box), label);
      gtk_box_append (self->strip_box, box);
    }
}

/* The tile map over the suspect when the toggle is on and there is one. */
static void
update_tile_overlay (DcrInspectView *self)
{
  gboolean on = self->tile_map.n && gtk_toggle_button_get_active (self->tile_map_button);
  dcr_zoom_view_set_overlay (self->suspect_view, on ? self->tile_map.rects : NULL, on ? self->tile_map.n : 0);
}

static void
on_tile_map_toggled (GtkToggleButton *button, DcrInspectView *self)
{
  update_tile_overlay (self);
}

/* The line of evidence on where, the toggle and the overlay: the forensic
 * CNN's blocks when the result has them (a backbone with the CNN), else the
 * tile head's tiles; all hidden when there is neither. The toggle starts on
 * when a block or tile reaches DCR_INSPECT_TILE_MAP_AUTO. */
static void
show_tile_map (DcrInspectView *self)
{
  const DcrAnalysisResult *r = self->result;
  dcr_tile_map_clear (&self->tile_map);
  gboolean cnn = r->cnn_map.n > 0, has;
  if (cnn)
    {
      self->tile_map = r->cnn_map;
      self->tile_map.rects = g_memdup2 (r->cnn_map.rects, sizeof (DcrOverlayRect) * r->cnn_map.n);
      has = TRUE;
    }
  else
    has = dcr_tile_map_from_detection (&r->detection, r->width, r->height, &self->tile_map);
  dcr_zoom_view_set_overlay_title (self->suspect_view, cnn ? "CNN block score" : "Tile head score");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->tile_map_button),
                               cnn ? "Shade each block of the suspect image by the forensic CNN's score (stronger "
                                     "colour: more likely generated); the highest block is outlined"
                                   : "Shade each tile of the suspect image by the tile head's score (stronger "
                                     "colour: more likely regenerated); the highest tile is outlined");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->tile_map_button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  cnn ? "Show the forensic CNN's block map over the suspect image"
                                      : "Show the tile head's map over the suspect image",
                                  -1);
  g_autofree char *text = NULL;
  if (cnn)
    {
      const DcrOverlayRect *top = &self->tile_map.rects[self->tile_map.strongest];
      text = g_strdup_printf ("CNN (evidence, not proof): highest block p = %.2f, at (%.0f, %.0f), %.0f × %.0f px; "
                              "mean of the %u highest %.2f",
                              top->strength, top->x, top->y, top->width, top->height,
                              MIN (DCR_CNN_TOPK, self->tile_map.n), self->tile_map.top_mean);
    }
  else if (has)
    {
      const DcrOverlayRect *top = &self->tile_map.rects[self->tile_map.strongest];
      text = g_strdup_printf ("Tile head (evidence, not proof): highest tile %.2f at (%.0f, %.0f), %.0f × %.0f px; "
                              "mean of the %u highest %.2f",
                              top->strength, top->x, top->y, top->width, top->height,
                              MIN (DCR_TILES_TOPK, self->tile_map.n), self->tile_map.top_mean);
    }
  gtk_label_set_label (self->tile_label, text ? text : "");
  gtk_widget_set_visible (GTK_WIDGET (self->tile_label), has);
  gtk_widget_set_visible (GTK_WIDGET (self->tile_map_button), has);
  g_signal_handlers_block_by_func (self->tile_map_button, on_tile_map_toggled, self);
  gtk_toggle_button_set_active (self->tile_map_button,
                                has && self->tile_map.rects[self->tile_map.strongest].strength
                                           >= DCR_INSPECT_TILE_MAP_AUTO);
  g_signal_handlers_unblock_by_func (self->tile_map_button, on_tile_map_toggled, self);
  update_tile_overlay (self);
}

void
dcr_inspect_view_set_result (DcrInspectView *self, DcrAnalysisResult *result)
{
  g_return_if_fail (DCR_IS_INSPECT_VIEW (self) && result);
  g_clear_pointer (&self->result, dcr_analysis_result_free);
  self->result = result;
  const DcrAnalysisResult *r = result;
  const DcrDetection *d = &r->detection;

  /* top channels of the residual */
  self->n_top = 0;
  self->max_residual = 0;
  if (d->residual && r->dim)
    {
      /* insertion into a short sorted list: N is small, dim at most a few thousand */
      for (guint c = 0; c < r->dim; c++)
        {
          float v = d->residual[c];
          self->max_residual = MAX (self->max_residual, v);
          guint i = self->n_top;
          if (i == DCR_INSPECT_TOP_CHANNELS && v <= d->residual[self->top[i - 1]])
            continue;
          if (i < DCR_INSPECT_TOP_CHANNELS)
            self->n_top++;
          else
            i--;
          while (i > 0 && d->residual[self->top[i - 1]] < v)
            {
              self->top[i] = self->top[i - 1];
              i--;
            }
          self->top[i] = c;
        }
    }

  static const char *const classes[] = { "real", "fake", "inconclusive" };
  for (guint i = 0; i < G_N_ELEMENTS (classes); i++)
    gtk_widget_remove_css_class (GTK_WIDGET (self->verdict_label), classes[i]);
  gtk_widget_add_css_class (GTK_WIDGET (self->verdict_label), classes[d->verdict]);
  const char *words = d->verdict == DCR_VERDICT_REAL   ? "Real — consistent with real camera images"
                      : d->verdict == DCR_VERDICT_FAKE ? "Fake — likely AI-generated or manipulated"
                                                       : "Inconclusive — the detector cannot tell";
  gtk_label_set_label (self->verdict_label, words);
  g_autofree char *reason = NULL;
  /* a PNG judged as a JPEG: say why */
  const char *past = r->jpeg_decision && d->jpeg_trace.found
                         ? " This PNG's pixels carry the 8 × 8 grid of an earlier JPEG compression, so it is judged "
                           "as a JPEG file."
                         : "";
  if (r->stability_reason)
    reason = g_strdup_printf ("The verdict does not survive ordinary re-saving: %s (P(fake) = %.2f as saved).",
                              r->stability_reason, d->p_fake);
  else if (d->verdict == DCR_VERDICT_INCONCLUSIVE)
    reason = g_strdup_printf ("P(fake) = %.2f falls in the model's inconclusive band%s [%.2f, %.2f).%s%s", d->p_fake,
                              r->jpeg_decision ? " for JPEG files" : "", r->band_lo, r->band_hi,
                              r->jpeg_decision ? " JPEG compression erases much of what the detector looks for, so "
                                                 "its band for JPEG files is wider."
                                               : "",
                              past);
  else
    reason = g_strdup_printf ("P(fake) = %.2f is %s the model's threshold%s %.2f. The nearest real prototype has "
                              "cosine similarity %.3f.%s",
                              d->p_fake, d->verdict == DCR_VERDICT_FAKE ? "at or above" : "below",
                              r->jpeg_decision ? " for JPEG files" : "", r->threshold,
                              d->k ? d->similarity[0] : 0.0, past);
  /* the model's blind spot for smooth images (dcr-detail.h): say so */
  if (dcr_detail_is_low (d->detail))
    {
      char *with = g_strdup_printf ("%s Caution: this image has little fine detail (%.2f, under %.2f: less than 95 %% "
                                    "of the real photos the default model learnt from — out of focus, fog, sky). "
                                    "Generators leave their traces in fine detail, so this verdict rests on little "
                                    "evidence.",
                                    reason, d->detail, DCR_DETAIL_LOW);
      g_free (reason);
      reason = with;
    }
  gtk_label_set_label (self->reason_label, reason);
  /* with score fusion the verdict's P(fake) is the fused one; the heads'
   * own probability is shown beside it */
  g_autofree char *score =
      r->score_fusion
          ? g_strdup_printf ("P(fake) %.3f (heads %.3f, fused with %s%s) · anomaly %.3f · threshold %.2f",
                             d->p_fake, d->p_heads, r->fusion_what ? r->fusion_what : "a forensic score",
                             r->fusion_jpeg ? " by the weights for JPEG files" : "", d->anomaly, r->threshold)
          : g_strdup_printf ("P(fake) %.3f · anomaly %.3f · threshold %.2f", d->p_fake, d->anomaly, r->threshold);
  gtk_label_set_label (self->score_label, score);
  g_autoptr (GString) stab = g_string_new (NULL);
  for (guint i = 0; i < DCR_STABILITY_N_VARIANTS; i++)
    if (r->stability[i].skipped)
      g_string_append_printf (stab, "%s%s: skipped (the image is under %u px)", i ? " · " : "",
                              dcr_stability_variant_name (i), DCR_STABILITY_HALF_MIN_SIDE);
    else
      g_string_append_printf (stab, "%s%s: P(fake) %.3f, %s", i ? " · " : "", dcr_stability_variant_name (i),
                              r->stability[i].p_fake, dcr_verdict_name (r->stability[i].verdict));
  gtk_label_set_label (self->stability_label, stab->str);
  g_autofree char *unstable = r->stability_reason
                                  ? g_strdup_printf ("Unstable — shown as inconclusive: %s.", r->stability_reason)
                                  : NULL;
  gtk_label_set_label (self->stability_reason_label, unstable ? unstable : "");
  gtk_widget_set_visible (GTK_WIDGET (self->stability_reason_label), unstable != NULL);

  dcr_zoom_view_set_paintable (self->suspect_view, GDK_PAINTABLE (r->image));
  dcr_zoom_view_fit (self->suspect_view);
  show_tile_map (self);
  g_autofree char *sc = g_strdup_printf ("%s · %u × %u", r->name, r->width, r->height);
  gtk_label_set_label (self->suspect_caption, sc);
  const DcrAnalysisPrototype *p0 = r->prototypes->len ? g_ptr_array_index (r->prototypes, 0) : NULL;
  dcr_zoom_view_set_paintable (self->prototype_view, p0 ? GDK_PAINTABLE (p0->thumbnail) : NULL);
  g_autofree char *pc = p0 ? prototype_caption (p0) : g_strdup ("no prototype in the bank");
  gtk_label_set_label (self->prototype_caption, pc);
  fill_strip (self);

  for (guint i = 0; i < self->fact_rows->len; i++)
    adw_preferences_group_remove (self->facts_group, g_ptr_array_index (self->fact_rows, i));
  g_ptr_array_set_size (self->fact_rows, 0);
  g_autofree char *size = g_format_size_full (r->size, G_FORMAT_SIZE_LONG_FORMAT);
  g_autofree char *dims = g_strdup_printf ("%u × %u", r->width, r->height);
  add_fact (self, "Name", r->name);
  add_fact (self, "Location", r->path);
  add_fact (self, "Size", size);
  add_fact (self, "Format", r->format);
  /* for a file other than JPEG: whether its pixels were a JPEG before */
  const DcrJpegTrace *tr = &r->detection.jpeg_trace;
  g_autofree char *jpeg_past = g_strcmp0 (r->format, "JPEG") == 0 ? NULL
                          : tr->found ? g_strdup_printf ("Found — the pixels carry the 8 × 8 grid of an earlier JPEG "
                                                         "compression (first block at column %u, row %u; margin "
                                                         "%.2f)",
                                                         tr->origin_x, tr->origin_y, tr->contrast)
                          : tr->blocks ? g_strdup ("None found (a JPEG saved at quality ~97 or more, or resized "
                                                   "afterwards, leaves none)")
                                       : g_strdup ("Too small to tell");
  add_fact (self, "Earlier JPEG compression", jpeg_past);
  g_autofree char *detail = isnan (d->detail) ? NULL
                            : dcr_detail_is_low (d->detail)
                                ? g_strdup_printf ("%.2f — little (under %.2f): verdicts on such images rest on little evidence",
                                                   d->detail, DCR_DETAIL_LOW)
                                : g_strdup_printf ("%.2f", d->detail);
  add_fact (self, "Fine detail", detail);
  add_fact (self, "Dimensions", dims);
  add_fact (self, "SHA-256", r->sha256);
  /* gexiv2's reading when it has one, else what the decoder saw */
  const DcrFileFacts *f = r->facts;
  add_fact (self, "Camera make", f && f->make ? f->make : r->exif_make);
  add_fact (self, "Camera model", f && f->model ? f->model : r->exif_model);
  add_fact (self, "Taken", f && f->date_taken ? f->date_taken : r->exif_date);
  add_fact (self, "Software", f ? f->software : NULL);
  /* the pixels shown are the decoder's; say so when it read the tag otherwise */
  g_autofree char *orientation = f && f->orientation && f->orientation_value && f->orientation_value != r->orientation
                                     ? g_strdup_printf ("%u — not applied: the tag has a non-standard type, so "
                                                        "the image is shown as stored",
                                                        f->orientation_value)
                                     : g_strdup (f ? f->orientation : NULL);
  add_fact (self, "Orientation", orientation);
  add_fact (self, "Dimensions in EXIF", f ? f->dimensions : NULL);
  if (f && !f->has_metadata && !r->exif_make && !r->exif_model && !r->exif_date)
    add_fact (self, "Metadata", "None — no EXIF, XMP or IPTC in the file");
  else
    add_fact (self, "GPS location", f ? dcr_gps_presence_text (f->gps) : NULL);

  g_autofree char *load = r->load_ms > 0 ? g_strdup_printf (" (plus %.0f ms to load the detector)", r->load_ms)
                                         : g_strdup ("");
  g_autofree char *prov = g_strdup_printf ("Model %s · bank %s · backbone %s · device %s · analysed in %.0f ms%s",
                                           r->model_name, r->bank_name, r->backbone_id, r->device_name,
                                           r->elapsed_ms, load);
  gtk_label_set_label (self->provenance_label, prov);

  gtk_widget_queue_draw (GTK_WIDGET (self->scale_area));
  gtk_widget_queue_draw (GTK_WIDGET (self->chart_area));
  gtk_widget_queue_draw (GTK_WIDGET (self->histogram_area));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_RESULT]);
}

const DcrAnalysisResult *
dcr_inspect_view_get_result (DcrInspectView *self)
{
  return self->result;
}

const char *
dcr_inspect_view_get_verdict_text (DcrInspectView *self)
{
  return gtk_label_get_label (self->verdict_label);
}

const char *
dcr_inspect_view_get_reason_text (DcrInspectView *self)
{
  return gtk_label_get_label (self->reason_label);
}

const char *
dcr_inspect_view_get_score_text (DcrInspectView *self)
{
  return gtk_label_get_label (self->score_label);
}

const char *
dcr_inspect_view_get_stability_text (DcrInspectView *self)
{
  return gtk_label_get_label (self->stability_label);
}

guint
dcr_inspect_view_get_n_bars (DcrInspectView *self)
{
  return self->n_top;
}

guint
dcr_inspect_view_get_n_strip (DcrInspectView *self)
{
  guint n = 0;
  for (GtkWidget *c = gtk_widget_get_first_child (GTK_WIDGET (self->strip_box)); c; c = gtk_widget_get_next_sibling (c))
    n++;
  return n;
}

GtkWidget *
dcr_inspect_view_get_verdict_widget (DcrInspectView *self)
{
  return GTK_WIDGET (self->verdict_label);
}

DcrZoomView *
dcr_inspect_view_get_suspect_view (DcrInspectView *self)
{
  return self->suspect_view;
}

const char *
dcr_inspect_view_get_tile_text (DcrInspectView *self)
{
  g_return_val_if_fail (DCR_IS_INSPECT_VIEW (self), NULL);
  return gtk_widget_get_visible (GTK_WIDGET (self->tile_label)) ? gtk_label_get_label (self->tile_label) : NULL;
}

GtkToggleButton *
dcr_inspect_view_get_tile_map_button (DcrInspectView *self)
{
  g_return_val_if_fail (DCR_IS_INSPECT_VIEW (self), NULL);
  return self->tile_map_button;
}

DcrZoomView *
dcr_inspect_view_get_prototype_view (DcrInspectView *self)
{
  return self->prototype_view;
}

const char *
dcr_inspect_view_get_fact (DcrInspectView *self, const char *title)
{
  for (guint i = 0; i < self->fact_rows->len; i++)
    {
      AdwPreferencesRow *row = g_ptr_array_index (self->fact_rows, i);
      if (g_strcmp0 (adw_preferences_row_get_title (row), title) == 0)
        return adw_action_row_get_subtitle (ADW_ACTION_ROW (row));
    }
  return NULL;
}

void
dcr_inspect_view_set_show_thresholds (DcrInspectView *self, gboolean show)
{
  g_return_if_fail (DCR_IS_INSPECT_VIEW (self));
  show = !!show;
  if (show == self->show_thresholds)
    return;
  self->show_thresholds = show;
  gtk_widget_queue_draw (GTK_WIDGET (self->scale_area));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_SHOW_THRESHOLDS]);
}

gboolean
dcr_inspect_view_get_show_thresholds (DcrInspectView *self)
{
  g_return_val_if_fail (DCR_IS_INSPECT_VIEW (self), FALSE);
  return self->show_thresholds;
}

static void
zoom_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrInspectView *self = DCR_INSPECT_VIEW (widget);
  /* the prototype view follows through the property bindings */
  if (g_str_equal (name, "zoom.in"))
    dcr_zoom_view_zoom_by (self->suspect_view, 1.5, -1, -1);
  else if (g_str_equal (name, "zoom.out"))
    dcr_zoom_view_zoom_by (self->suspect_view, 1 / 1.5, -1, -1);
  else
    dcr_zoom_view_fit (self->suspect_view);
}

static void
on_zoom_changed (DcrZoomView *view, GParamSpec *pspec, DcrInspectView *self)
{
  double zoom = dcr_zoom_view_get_zoom (view);
  g_autofree char *text = zoom <= 1 ? g_strdup ("Fit") : g_strdup_printf ("%.0f %%", zoom * 100);
  gtk_button_set_label (self->zoom_fit_button, text);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "zoom.in", zoom < DCR_ZOOM_MAX);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "zoom.out", zoom > 1);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "zoom.fit", zoom > 1);
}

static void
dcr_inspect_view_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  DcrInspectView *self = DCR_INSPECT_VIEW (object);
  switch (prop_id)
    {
    case PROP_RESULT:
      g_value_set_pointer (value, self->result);
      break;
    case PROP_SHOW_THRESHOLDS:
      g_value_set_boolean (value, self->show_thresholds);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dcr_inspect_view_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  DcrInspectView *self = DCR_INSPECT_VIEW (object);
  switch (prop_id)
    {
    case PROP_SHOW_THRESHOLDS:
      dcr_inspect_view_set_show_thresholds (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dcr_inspect_view_dispose (GObject *object)
{
  DcrInspectView *self = DCR_INSPECT_VIEW (object);
  g_clear_object (&self->settings);
  g_clear_pointer (&self->result, dcr_analysis_result_free);
  dcr_tile_map_clear (&self->tile_map);
  g_clear_pointer (&self->fact_rows, g_ptr_array_unref);
  gtk_widget_dispose_template (GTK_WIDGET (self), DCR_TYPE_INSPECT_VIEW);
  G_OBJECT_CLASS (dcr_inspect_view_parent_class)->dispose (object);
}

static void
dcr_inspect_view_class_init (DcrInspectViewClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = dcr_inspect_view_dispose;
  G_OBJECT_CLASS (klass)->get_property = dcr_inspect_view_get_property;
  G_OBJECT_CLASS (klass)->set_property = dcr_inspect_view_set_property;
  /* the DcrAnalysisResult shown, NULL before the first */
  props[PROP_RESULT] = g_param_spec_pointer ("result", NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /* draw the model's threshold and inconclusive band on the P(fake) scale */
  props[PROP_SHOW_THRESHOLDS] = g_param_spec_boolean ("show-thresholds", NULL, NULL, TRUE,
                                                      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY
                                                          | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (G_OBJECT_CLASS (klass), N_PROPS, props);
  g_type_ensure (DCR_TYPE_ZOOM_VIEW);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/dcrforensics/DcrForensics/dcr-inspect-view.ui");
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, verdict_label);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, reason_label);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, score_label);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, stability_label);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, stability_reason_label);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, tile_label);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, tile_map_button);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, scale_area);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, chart_area);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, histogram_area);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, suspect_view);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, prototype_view);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, zoom_fit_button);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, suspect_caption);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, prototype_caption);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, provenance_label);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, strip_box);
  gtk_widget_class_bind_template_child (widget_class, DcrInspectView, facts_group);

  gtk_widget_class_install_action (widget_class, "zoom.in", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "zoom.out", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "zoom.fit", NULL, zoom_action);
  static const struct {
    guint key;
    const char *action;
  } keys[] = {
    { GDK_KEY_plus, "zoom.in" },     { GDK_KEY_equal, "zoom.in" },     { GDK_KEY_KP_Add, "zoom.in" },
    { GDK_KEY_minus, "zoom.out" },   { GDK_KEY_KP_Subtract, "zoom.out" }, { GDK_KEY_0, "zoom.fit" },
    { GDK_KEY_KP_0, "zoom.fit" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      gtk_widget_class_add_binding_action (widget_class, keys[i].key, 0, keys[i].action, NULL);
      gtk_widget_class_add_binding_action (widget_class, keys[i].key, GDK_CONTROL_MASK, keys[i].action, NULL);
    }
}

static void
dcr_inspect_view_init (DcrInspectView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->fact_rows = g_ptr_array_new ();
  self->show_thresholds = TRUE;
  /* the suspect and the prototype always show the same part of the image */
  static const char *const shared[] = { "zoom", "center-x", "center-y" };
  for (gsize i = 0; i < G_N_ELEMENTS (shared); i++)
    g_object_bind_property (self->suspect_view, shared[i], self->prototype_view, shared[i],
                            G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
  g_signal_connect (self->suspect_view, "notify::zoom", G_CALLBACK (on_zoom_changed), self);
  on_zoom_changed (self->suspect_view, NULL, self);
  self->settings = g_settings_new (DCR_APP_ID);
  g_settings_bind (self->settings, "show-thresholds", self, "show-thresholds", G_SETTINGS_BIND_GET);
  gtk_drawing_area_set_draw_func (self->scale_area, draw_scale, self, NULL);
  gtk_drawing_area_set_draw_func (self->chart_area, draw_chart, self, NULL);
  gtk_drawing_area_set_draw_func (self->histogram_area, draw_histogram, self, NULL);
  g_signal_connect (self->chart_area, "query-tooltip", G_CALLBACK (chart_tooltip), self);
  g_signal_connect (self->tile_map_button, "toggled", G_CALLBACK (on_tile_map_toggled), self);
  dcr_zoom_view_set_overlay_title (self->suspect_view, "Tile head score");
}

GtkWidget *
dcr_inspect_view_new (void)
{
  return g_object_new (DCR_TYPE_INSPECT_VIEW, NULL);
}
