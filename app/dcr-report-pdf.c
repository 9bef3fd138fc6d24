/* dcr-report-pdf.c — report.pdf through a Cairo PDF surface and Pango: the
 * case and method header, the summary, one row per image (its thumbnail,
 * its nearest real prototype, hash, size, scores and verdict), the rejected
 * inputs with their reasons, integrity findings and the limitations. Pages
 * are emitted as they fill, so the report's size does not bound memory. */
#include "dcr-config.h"
#include "dcr-report-private.h"

#include <cairo-pdf.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <string.h>

#define PAGE_W 595.276
#define PAGE_H 841.890
#define MARGIN 42.0
#define CONTENT_W (PAGE_W - 2 * MARGIN)
#define TOP (MARGIN + 22)          /* below the running header */
#define BOTTOM (PAGE_H - MARGIN - 16) /* above the footer */
#define ROW_H 58.0
#define THUMB 48.0
#define PROTO_CACHE 256
/* the tile head's highest tile is outlined on the thumbnail from this σ(score)
 * on: the app's tile-map rule (DCR_INSPECT_TILE_MAP_AUTO) */
#define TILE_OUTLINE_P 0.5
/* table columns, from the left margin */
#define COL_THUMB 22.0
#define COL_PROTO (COL_THUMB + THUMB + 6)
#define COL_TEXT (COL_PROTO + THUMB + 8)
#define COL_PFAKE 355.0
#define COL_ANOM 401.0
#define COL_VERDICT 453.0
#define TEXT_W (COL_PFAKE - COL_TEXT - 4)

typedef struct {
  DcrReport *r;
  cairo_surface_t *surface;
  cairo_t *cr;
  PangoLayout *layout;
  double y;
  int page;
  GHashTable *protos; /* bank id → cairo_surface_t (NULL when it has none) */
} Pdf;

static void
rgb (cairo_t *cr, guint32 c)
{
  cairo_set_source_rgb (cr, ((c >> 16) & 255) / 255.0, ((c >> 8) & 255) / 255.0, (c & 255) / 255.0);
}

#define INK 0x1d2733
#define GREY 0x5f6b7a
#define RULE 0xc9d1db
#define SHADE 0xf3f5f8
#define ACCENT 0x1c4e80

static guint32
verdict_colour (DcrVerdict v)
{
  return v == DCR_VERDICT_REAL ? 0x2e7d32 : v == DCR_VERDICT_FAKE ? 0xc62828 : 0xa86400;
}

static const char *
verdict_label (DcrVerdict v)
{
  return v == DCR_VERDICT_REAL ? "REAL" : v == DCR_VERDICT_FAKE ? "FAKE" : "INCONCLUSIVE";
}

/* Draws text (Pango markup when markup is TRUE) at x, y in a box `width`
 * wide; wraps unless ellipsize; returns the height used. */
static double
text (Pdf *p, double x, double y, double width, const char *font, guint32 colour, const char *s, gboolean markup,
      gboolean ellipsize, PangoAlignment align)
{
  PangoFontDescription *fd = pango_font_description_from_string (font);
  pango_layout_set_font_description (p->layout, fd);
  pango_font_description_free (fd);
  pango_layout_set_width (p->layout, (int) (width * PANGO_SCALE));
  pango_layout_set_wrap (p->layout, PANGO_WRAP_WORD_CHAR);
  pango_layout_set_ellipsize (p->layout, ellipsize ? PANGO_ELLIPSIZE_MIDDLE : PANGO_ELLIPSIZE_NONE);
  pango_layout_set_alignment (p->layout, align);
  if (markup)
    pango_layout_set_markup (p->layout, s, -1);
  else
    {
      pango_layout_set_attributes (p->layout, NULL);
      pango_layout_set_text (p->layout, s, -1);
    }
  int w, h;
  pango_layout_get_size (p->layout, &w, &h);
  rgb (p->cr, colour);
  cairo_move_to (p->cr, x, y);
  pango_cairo_show_layout (p->cr, p->layout);
  return h / (double) PANGO_SCALE;
}

static double
text_height (Pdf *p, double width, const char *font, const char *s, gboolean markup)
{
  PangoFontDescription *fd = pango_font_description_from_string (font);
  pango_layout_set_font_description (p->layout, fd);
  pango_font_description_free (fd);
  pango_layout_set_width (p->layout, (int) (width * PANGO_SCALE));
  pango_layout_set_wrap (p->layout, PANGO_WRAP_WORD_CHAR);
  pango_layout_set_ellipsize (p->layout, PANGO_ELLIPSIZE_NONE);
  if (markup)
    pango_layout_set_markup (p->layout, s, -1);
  else
    {
      pango_layout_set_attributes (p->layout, NULL);
      pango_layout_set_text (p->layout, s, -1);
    }
  int w, h;
  pango_layout_get_size (p->layout, &w, &h);
  return h / (double) PANGO_SCALE;
}

static void
hline (Pdf *p, double y, guint32 colour, double width)
{
  rgb (p->cr, colour);
  cairo_set_line_width (p->cr, width);
  cairo_move_to (p->cr, MARGIN, y);
  cairo_line_to (p->cr, PAGE_W - MARGIN, y);
  cairo_stroke (p->cr);
}

static const char *
or_not_given (const char *s)
{
  return s ? s : "not given";
}

static void
page_frame (Pdf *p)
{
  DcrReport *r = p->r;
  g_autofree char *when = dcr_report_format_time (r->written);
  if (p->page > 1)
    {
      g_autofree char *head = g_strdup_printf ("DCR Forensics batch report · Case %s · Exhibit %s",
                                               or_not_given (r->case_id), or_not_given (r->exhibit));
      text (p, MARGIN, MARGIN, CONTENT_W, "Sans 7", GREY, head, FALSE, TRUE, PANGO_ALIGN_LEFT);
      hline (p, MARGIN + 12, RULE, 0.5);
    }
  hline (p, PAGE_H - MARGIN - 6, RULE, 0.5);
  g_autofree char *foot = g_strdup_printf ("Generated %s by DCR Forensics %s", when, DCR_VERSION);
  text (p, MARGIN, PAGE_H - MARGIN - 2, CONTENT_W * 0.7, "Sans 7", GREY, foot, FALSE, TRUE, PANGO_ALIGN_LEFT);
  g_autofree char *num = g_strdup_printf ("Page %d", p->page);
  text (p, MARGIN, PAGE_H - MARGIN - 2, CONTENT_W, "Sans 7", GREY, num, FALSE, FALSE, PANGO_ALIGN_RIGHT);
}

static void
new_page (Pdf *p)
{
  cairo_show_page (p->cr);
  p->page++;
  p->y = TOP;
  page_frame (p);
}

/* Starts a new page unless `needed` points still fit on this one. */
static void
need (Pdf *p, double needed)
{
  if (p->y + needed > BOTTOM)
    new_page (p);
}

static void
section (Pdf *p, const char *title, double min_after)
{
  need (p, 30 + min_after);
  p->y += 10;
  text (p, MARGIN, p->y, CONTENT_W, "Sans Bold 12", ACCENT, title, FALSE, FALSE, PANGO_ALIGN_LEFT);
  p->y += 17;
  hline (p, p->y, ACCENT, 0.8);
  p->y += 6;
}

/* A label and its value (markup), the value wrapping in its column. */
static void
field (Pdf *p, const char *label, const char *value_markup)
{
  const double lw = 92;
  double h = text_height (p, CONTENT_W - lw, "Sans 8.5", value_markup, TRUE);
  need (p, h + 4);
  text (p, MARGIN, p->y, lw - 6, "Sans Bold 8", GREY, label, FALSE, FALSE, PANGO_ALIGN_LEFT);
  text (p, MARGIN + lw, p->y, CONTENT_W - lw, "Sans 8.5", INK, value_markup, TRUE, FALSE, PANGO_ALIGN_LEFT);
  p->y += h + 3.5;
}

typedef struct {
  const guint8 *data;
  gsize len, pos;
} ReadState;

static cairo_status_t
read_bytes (void *closure, unsigned char *data, unsigned int length)
{
  ReadState *rs = closure;
  if (rs->len - rs->pos < length)
    return CAIRO_STATUS_READ_ERROR;
  memcpy (data, rs->data + rs->pos, length);
  rs->pos += length;
  return CAIRO_STATUS_SUCCESS;
}

static cairo_surface_t *
surface_from_png_bytes (GBytes *png)
{
  ReadState rs = { 0 };
  rs.data = g_bytes_get_data (png, &rs.len);
  cairo_surface_t *s = cairo_image_surface_create_from_png_stream (read_bytes, &rs);
  if (cairo_surface_status (s) != CAIRO_STATUS_SUCCESS)
    {
      cairo_surface_destroy (s);
      return NULL;
    }
  return s;
}

/* Draws s fitted into the THUMB square at (x, y); *drawn (may be NULL)
 * receives where the picture went (width 0 without one). */
static void
draw_thumb (Pdf *p, cairo_surface_t *s, double x, double y, cairo_rectangle_t *drawn)
{
  if (drawn)
    *drawn = (cairo_rectangle_t) { x, y, 0, 0 };
  cairo_t *cr = p->cr;
  rgb (cr, SHADE);
  cairo_rectangle (cr, x, y, THUMB, THUMB);
  cairo_fill (cr);
  if (s)
    {
      int w = cairo_image_surface_get_width (s), h = cairo_image_surface_get_height (s);
      double scale = MIN (THUMB / w, THUMB / h);
      double dx = x + (THUMB - w * scale) / 2, dy = y + (THUMB - h * scale) / 2;
      if (drawn)
        *drawn = (cairo_rectangle_t) { dx, dy, w * scale, h * scale };
      cairo_save (cr);
      cairo_translate (cr, dx, dy);
      cairo_scale (cr, scale, scale);
      cairo_set_source_surface (cr, s, 0, 0);
      cairo_pattern_set_filter (cairo_get_source (cr), CAIRO_FILTER_GOOD);
      cairo_paint (cr);
      cairo_restore (cr);
    }
  else
    text (p, x, y + THUMB / 2 - 5, THUMB, "Sans 6", GREY, "no thumbnail", FALSE, FALSE, PANGO_ALIGN_CENTER);
  rgb (cr, RULE);
  cairo_set_line_width (cr, 0.5);
  cairo_rectangle (cr, x, y, THUMB, THUMB);
  cairo_stroke (cr);
}

static cairo_surface_t *
proto_surface (Pdf *p, gint64 id)
{
  gpointer found;
  if (g_hash_table_lookup_extended (p->protos, &id, NULL, &found))
    return found;
  if (g_hash_table_size (p->protos) >= PROTO_CACHE)
    g_hash_table_remove_all (p->protos);
  g_autoptr (DcrPrototype) proto = dcr_bank_get (p->r->setup.bank, id, FALSE, NULL);
  cairo_surface_t *s = proto && proto->thumbnail ? surface_from_png_bytes (proto->thumbnail) : NULL;
  if (s)
    {
      /* one image object in the PDF however often it is the nearest; cairo
       * calls the destroy function with the closure, not the data */
      char *uid = g_strdup_printf ("dcr-prototype-%" G_GINT64_FORMAT, id);
      if (cairo_surface_set_mime_data (s, CAIRO_MIME_TYPE_UNIQUE_ID, (const guchar *) uid, strlen (uid), g_free, uid))
        g_free (uid); /* not attached (out of memory): the PDF only repeats the image */
    }
  g_hash_table_insert (p->protos, g_memdup2 (&id, sizeof id), s);
  return s;
}

static char *
human_size (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
}

static void
table_header (Pdf *p)
{
  cairo_t *cr = p->cr;
  rgb (cr, ACCENT);
  cairo_rectangle (cr, MARGIN, p->y, CONTENT_W, 16);
  cairo_fill (cr);
  const char *font = "Sans Bold 7";
  double y = p->y + 3.5;
  text (p, MARGIN + 2, y, COL_THUMB - 2, font, 0xffffff, "#", FALSE, FALSE, PANGO_ALIGN_LEFT);
  text (p, MARGIN + COL_THUMB, y, THUMB, font, 0xffffff, "Image", FALSE, FALSE, PANGO_ALIGN_CENTER);
  text (p, MARGIN + COL_PROTO - 4, y, THUMB + 8, font, 0xffffff, "Nearest real", FALSE, FALSE, PANGO_ALIGN_CENTER);
  text (p, MARGIN + COL_TEXT, y, TEXT_W, font, 0xffffff, "File · SHA-256 · format", FALSE, FALSE, PANGO_ALIGN_LEFT);
  text (p, MARGIN + COL_PFAKE, y, 44, font, 0xffffff, "P(fake)", FALSE, FALSE, PANGO_ALIGN_RIGHT);
  text (p, MARGIN + COL_ANOM, y, 44, font, 0xffffff, "Anomaly", FALSE, FALSE, PANGO_ALIGN_RIGHT);
  text (p, MARGIN + COL_VERDICT, y, CONTENT_W - COL_VERDICT, font, 0xffffff, "Verdict", FALSE, FALSE, PANGO_ALIGN_CENTER);
  p->y += 16;
}

static void
image_row (Pdf *p, guint index, guint row, const DcrReportItem *it)
{
  cairo_t *cr = p->cr;
  if (p->y + ROW_H > BOTTOM)
    {
      new_page (p);
      table_header (p);
    }
  double y = p->y;
  if (row % 2)
    {
      rgb (cr, SHADE);
      cairo_rectangle (cr, MARGIN, y, CONTENT_W, ROW_H);
      cairo_fill (cr);
    }
  g_autofree char *num = g_strdup_printf ("%u", index + 1);
  text (p, MARGIN + 2, y + 5, COL_THUMB - 2, "Sans 7", GREY, num, FALSE, FALSE, PANGO_ALIGN_LEFT);

  g_autofree char *tp = dcr_report_thumb_path (p->r, index);
  cairo_surface_t *thumb = cairo_image_surface_create_from_png (tp);
  if (cairo_surface_status (thumb) != CAIRO_STATUS_SUCCESS)
    g_clear_pointer (&thumb, cairo_surface_destroy);
  cairo_rectangle_t drawn;
  draw_thumb (p, thumb, MARGIN + COL_THUMB, y + 5, &drawn);
  g_clear_pointer (&thumb, cairo_surface_destroy);
  /* the most suspicious region — the CNN's highest block when the backbone
   * has the CNN, else the tile head's highest tile — outlined on the
   * thumbnail when it reads as more likely regenerated than not (the app's
   * tile map rule) */
  gboolean has_region = it->has_top_block || it->has_top_tile;
  const gint64 *region = it->has_top_block ? it->top_block : it->top_tile;
  float region_p = it->has_top_block ? it->top_block_p : it->top_tile_p;
  if (has_region && region_p >= TILE_OUTLINE_P && drawn.width > 0 && it->width && it->height)
    {
      double sx = drawn.width / it->width, sy = drawn.height / it->height;
      cairo_save (cr);
      cairo_rectangle (cr, drawn.x + region[0] * sx, drawn.y + region[1] * sy, region[2] * sx, region[3] * sy);
      cairo_set_source_rgba (cr, 1.0, 0.47, 0.0, 1.0);
      cairo_set_line_width (cr, 1.2);
      cairo_stroke (cr);
      cairo_restore (cr);
    }
  draw_thumb (p, it->k ? proto_surface (p, it->ids[0]) : NULL, MARGIN + COL_PROTO, y + 5, NULL);

  /* the SHA-256 line carries the scores, so each row reads as one line of text */
  g_autofree char *name = g_path_get_basename (it->path);
  text (p, MARGIN + COL_TEXT, y + 6, TEXT_W, "Sans Bold 8", INK, name, FALSE, TRUE, PANGO_ALIGN_LEFT);
  double line2 = y + 19;
  text (p, MARGIN + COL_TEXT, line2 + 1.5, TEXT_W + 4, "Monospace 5.6", INK, it->sha256, FALSE, FALSE, PANGO_ALIGN_LEFT);
  g_autofree char *size = human_size (it->size);
  gboolean low = dcr_detail_is_low (it->detail);
  g_autofree char *facts = g_strdup_printf ("%s · %u × %u · %s%s%s", it->format, it->width, it->height, size,
                                            it->changed ? " · CHANGED SINCE INTAKE" : "",
                                            low ? " · little fine detail: weak evidence" : "");
  text (p, MARGIN + COL_TEXT, y + 30, TEXT_W, "Sans 7", it->changed ? 0xc62828 : low ? 0xb35900 : GREY, facts, FALSE,
        TRUE, PANGO_ALIGN_LEFT);
  if (it->k)
    {
      g_autofree char *near = g_strdup_printf ("nearest real #%" G_GINT64_FORMAT " (similarity %.3f)", it->ids[0],
                                               it->similarity[0]);
      text (p, MARGIN + COL_TEXT, y + 40, TEXT_W, "Sans 7", GREY, near, FALSE, TRUE, PANGO_ALIGN_LEFT);
    }
  if (has_region)
    {
      g_autofree char *tile = g_strdup_printf ("most suspicious %s (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                               "), %.2f%s", it->has_top_block ? "region" : "tile", region[0],
                                               region[1], region_p, region_p >= TILE_OUTLINE_P ? ", outlined" : "");
      text (p, MARGIN + COL_TEXT, y + 49, TEXT_W, "Sans 7", region_p >= TILE_OUTLINE_P ? 0xb35900 : GREY, tile,
            FALSE, TRUE, PANGO_ALIGN_LEFT);
    }
  g_autofree char *pf = g_strdup_printf ("%.3f", it->p_fake);
  g_autofree char *an = g_strdup_printf ("%.3f", it->anomaly);
  text (p, MARGIN + COL_PFAKE, line2 - 1, 44, "Sans Bold 9", INK, pf, FALSE, FALSE, PANGO_ALIGN_RIGHT);
  text (p, MARGIN + COL_ANOM, line2 - 1, 44, "Sans 9", INK, an, FALSE, FALSE, PANGO_ALIGN_RIGHT);
  /* verdict chip */
  double cx = MARGIN + COL_VERDICT + 4, cw = CONTENT_W - COL_VERDICT - 8, ch = 12;
  rgb (cr, verdict_colour (it->verdict));
  double rad = 3, x0 = cx, y0 = line2 - 0.5;
  cairo_new_sub_path (cr);
  cairo_arc (cr, x0 + cw - rad, y0 + rad, rad, -G_PI / 2, 0);
  cairo_arc (cr, x0 + cw - rad, y0 + ch - rad, rad, 0, G_PI / 2);
  cairo_arc (cr, x0 + rad, y0 + ch - rad, rad, G_PI / 2, G_PI);
  cairo_arc (cr, x0 + rad, y0 + rad, rad, G_PI, 3 * G_PI / 2);
  cairo_close_path (cr);
  cairo_fill (cr);
  /* "INCONCLUSIVE" needs a smaller size to stay on one line in the chip */
  text (p, cx, line2 + (it->verdict == DCR_VERDICT_INCONCLUSIVE ? 2.2 : 1.6), cw,
        it->verdict == DCR_VERDICT_INCONCLUSIVE ? "Sans Bold 5.4" : "Sans Bold 6.8", 0xffffff,
        verdict_label (it->verdict), FALSE, FALSE, PANGO_ALIGN_CENTER);
  p->y += ROW_H;
}

static void
summary_tiles (Pdf *p)
{
  DcrReport *r = p->r;
  struct {
    const char *label;
    guint n;
    guint32 colour;
  } tiles[] = {
    { "Files", r->items->len, INK },
    { "Real", r->n_verdict[DCR_VERDICT_REAL], verdict_colour (DCR_VERDICT_REAL) },
    { "Fake", r->n_verdict[DCR_VERDICT_FAKE], verdict_colour (DCR_VERDICT_FAKE) },
    { "Inconclusive", r->n_verdict[DCR_VERDICT_INCONCLUSIVE], verdict_colour (DCR_VERDICT_INCONCLUSIVE) },
    { "Rejected", r->n_rejected, GREY },
  };
  const double gap = 8, tw = (CONTENT_W - gap * (G_N_ELEMENTS (tiles) - 1)) / G_N_ELEMENTS (tiles), th = 40;
  need (p, th + 8);
  for (guint i = 0; i < G_N_ELEMENTS (tiles); i++)
    {
      double x = MARGIN + i * (tw + gap);
      rgb (p->cr, SHADE);
      cairo_rectangle (p->cr, x, p->y, tw, th);
      cairo_fill (p->cr);
      rgb (p->cr, tiles[i].colour);
      cairo_rectangle (p->cr, x, p->y, 3, th);
      cairo_fill (p->cr);
      g_autofree char *n = g_strdup_printf ("%u", tiles[i].n);
      text (p, x + 10, p->y + 4, tw - 14, "Sans Bold 18", tiles[i].colour, n, FALSE, FALSE, PANGO_ALIGN_LEFT);
      text (p, x + 10, p->y + 25, tw - 14, "Sans 8", GREY, tiles[i].label, FALSE, FALSE, PANGO_ALIGN_LEFT);
    }
  p->y += th + 8;
}

static void
header (Pdf *p)
{
  DcrReport *r = p->r;
  cairo_t *cr = p->cr;
  rgb (cr, ACCENT);
  cairo_rectangle (cr, MARGIN, MARGIN, CONTENT_W, 3);
  cairo_fill (cr);
  p->y = MARGIN + 10;
  text (p, MARGIN, p->y, CONTENT_W, "Sans Bold 22", INK, "Batch Analysis Report", FALSE, FALSE, PANGO_ALIGN_LEFT);
  g_autofree char *sub = g_strdup_printf ("DCR Forensics %s · deepfake and AI-generated image detection", DCR_VERSION);
  p->y += 28;
  text (p, MARGIN, p->y, CONTENT_W, "Sans 8.5", GREY, sub, FALSE, FALSE, PANGO_ALIGN_LEFT);
  p->y += 18;

  /* case block: three columns */
  const char *labels[] = { "CASE", "EXHIBIT", "EXAMINER" };
  const char *values[] = { or_not_given (r->case_id), or_not_given (r->exhibit), or_not_given (r->examiner) };
  double cw = CONTENT_W / 3;
  rgb (cr, SHADE);
  cairo_rectangle (cr, MARGIN, p->y, CONTENT_W, 62);
  cairo_fill (cr);
  for (guint i = 0; i < 3; i++)
    {
      text (p, MARGIN + 10 + i * cw, p->y + 6, cw - 16, "Sans Bold 6.5", GREY, labels[i], FALSE, FALSE,
            PANGO_ALIGN_LEFT);
      text (p, MARGIN + 10 + i * cw, p->y + 15, cw - 16, "Sans Bold 11", INK, values[i], FALSE, TRUE,
            PANGO_ALIGN_LEFT);
    }
  g_autofree char *t_in = dcr_report_format_time (r->intake);
  g_autofree char *t_an = dcr_report_format_time (r->analysis_start);
  g_autofree char *t_rep = dcr_report_format_time (r->written);
  const char *tlabels[] = { "INTAKE", "ANALYSIS STARTED", "REPORT WRITTEN" };
  const char *tvalues[] = { t_in, t_an, t_rep };
  for (guint i = 0; i < 3; i++)
    {
      text (p, MARGIN + 10 + i * cw, p->y + 34, cw - 16, "Sans Bold 6.5", GREY, tlabels[i], FALSE, FALSE,
            PANGO_ALIGN_LEFT);
      text (p, MARGIN + 10 + i * cw, p->y + 43, cw - 16, "Sans 9", INK, tvalues[i], FALSE, TRUE,
            PANGO_ALIGN_LEFT);
    }
  p->y += 62;

  section (p, "Method", 60);
  const DcrModelConfig *cfg = dcr_model_config (r->setup.model);
  const DcrDeviceInfo *dev = dcr_context_device (r->setup.ctx);
  g_autofree char *model_name = g_path_get_basename (dcr_model_path (r->setup.model));
  g_autofree char *bank_name = g_path_get_basename (dcr_bank_path (r->setup.bank));
  g_autofree char *v_tool = g_markup_printf_escaped ("DCR Forensics %s (DCR-Net: frozen backbone, nearest real "
                                                     "prototypes, difference attention, residual head)",
                                                     DCR_VERSION);
  field (p, "Tool", v_tool);
  g_autofree char *v_model = g_markup_printf_escaped ("%s  <span font='Monospace 6.8'>SHA-256 %s</span>",
                                                      model_name, dcr_model_sha256 (r->setup.model));
  field (p, "Model", v_model);
  g_autofree char *v_bb = g_markup_printf_escaped ("%s", cfg->backbone_id);
  field (p, "Backbone", v_bb);
  g_autofree char *bank_size = human_size (r->bank_size);
  g_autofree char *v_bank = g_markup_printf_escaped (
      "%s — id %s, generation %" G_GINT64_FORMAT ", %" G_GSIZE_FORMAT " prototypes in use, %s\n"
      "<span font='Monospace 6.8'>SHA-256 %s</span>",
      bank_name, dcr_bank_uuid (r->setup.bank), dcr_bank_generation (r->setup.bank),
      dcr_detector_bank_count (r->setup.det), bank_size, r->bank_sha256);
  field (p, "Prototype bank", v_bank);
  g_autofree char *v_dev = g_markup_printf_escaped ("%s (%s) · driver %s %s", dev->name,
                                                    dcr_device_type_name (dev->type), dev->driver_name,
                                                    dev->driver_info);
  field (p, "Device", v_dev);
  g_autofree char *thr_rule = dcr_report_training_field (r, "threshold_rule");
  g_autofree char *band_rule = dcr_report_training_field (r, "band_rule");
  g_autofree char *v_jpeg = cfg->jpeg_decision
                                ? g_markup_printf_escaped (
                                      "\nJPEG files, and PNGs whose pixels carry an earlier JPEG's 8×8 grid: "
                                      "<b>fake</b> when P(fake) ≥ %.3f, <b>real</b> below; "
                                      "<b>inconclusive</b> when P(fake) is in [%.3f, %.3f), chosen the same way on "
                                      "the validation JPEGs alone (JPEG erases much of the evidence).",
                                      cfg->jpeg.threshold, cfg->jpeg.band_lo, cfg->jpeg.band_hi)
                                : g_strdup ("");
  g_autofree char *v_dec = g_markup_printf_escaped (
      "%s<b>fake</b> when P(fake) ≥ %.3f, <b>real</b> below; <b>inconclusive</b> when P(fake) is in [%.3f, %.3f).\n"
      "Threshold: %s. Band: %s.",
      cfg->jpeg_decision ? "Files other than JPEG: " : "", cfg->threshold, cfg->band_lo, cfg->band_hi,
      thr_rule ? thr_rule : "set by hand (no training record)",
      band_rule ? band_rule : "set by hand (no training record)");
  g_autofree char *v_dec_all = g_strconcat (v_dec, v_jpeg, NULL);
  field (p, "Decision rule", v_dec_all);

  section (p, "Summary", 50);
  summary_tiles (p);
  g_autofree char *integrity = NULL;
  if (r->n_changed)
    integrity = g_markup_printf_escaped ("<span foreground='#c62828'><b>%u file(s) CHANGED</b></span> between "
                                         "intake and this report — see Integrity below. Results for them describe "
                                         "the file as it was at intake.",
                                         r->n_changed);
  else
    integrity = g_markup_printf_escaped ("Every readable file was hashed (SHA-256) at intake and again when this "
                                         "report was written; none changed. Evidence was opened read-only.");
  field (p, "Integrity", integrity);
  g_autofree char *timing = g_strdup_printf ("%u image(s) analysed in %.1f s; %u input(s) rejected (listed under "
                                             "Rejected inputs).",
                                             r->n_analysed, r->analysis_s, r->n_rejected);
  field (p, "Run", timing);
}

static void
rejected_section (Pdf *p)
{
  DcrReport *r = p->r;
  if (!r->n_rejected)
    return;
  section (p, "Rejected inputs", 24);
  g_autofree char *intro = g_strdup_printf ("%u input(s) could not be analysed. They were not scored; each is "
                                            "listed with the reason.", r->n_rejected);
  p->y += text (p, MARGIN, p->y, CONTENT_W, "Sans 8.5", INK, intro, FALSE, FALSE, PANGO_ALIGN_LEFT) + 4;
  guint n = 0;
  for (guint i = 0; i < r->items->len; i++)
    {
      const DcrReportItem *it = r->items->pdata[i];
      if (it->status != DCR_REPORT_ITEM_REJECTED)
        continue;
      g_autofree char *markup = g_markup_printf_escaped ("<b>%s</b>\n<span foreground='#c62828'>%s</span>",
                                                         it->path, it->reason);
      double h = text_height (p, CONTENT_W - 30, "Sans 8", markup, TRUE);
      double hs = it->sha256 ? 9 : 0;
      need (p, h + hs + 6);
      if (n++ % 2)
        {
          rgb (p->cr, SHADE);
          cairo_rectangle (p->cr, MARGIN, p->y - 2, CONTENT_W, h + hs + 4);
          cairo_fill (p->cr);
        }
      g_autofree char *num = g_strdup_printf ("%u", i + 1);
      text (p, MARGIN + 2, p->y, 24, "Sans 7", GREY, num, FALSE, FALSE, PANGO_ALIGN_LEFT);
      text (p, MARGIN + 28, p->y, CONTENT_W - 30, "Sans 8", INK, markup, TRUE, FALSE, PANGO_ALIGN_LEFT);
      if (it->sha256)
        {
          g_autofree char *sha = g_strdup_printf ("SHA-256 %s · %" G_GUINT64_FORMAT " bytes", it->sha256, it->size);
          text (p, MARGIN + 28, p->y + h + 0.5, CONTENT_W - 30, "Monospace 6", GREY, sha, FALSE, FALSE,
                PANGO_ALIGN_LEFT);
        }
      p->y += h + hs + 4;
    }
}

static void
integrity_section (Pdf *p)
{
  DcrReport *r = p->r;
  if (!r->n_changed)
    return;
  section (p, "Integrity", 24);
  for (guint i = 0; i < r->items->len; i++)
    {
      const DcrReportItem *it = r->items->pdata[i];
      if (!it->changed)
        continue;
      g_autofree char *v = g_markup_printf_escaped (
          "<b>%s</b> CHANGED after intake\n<span font='Monospace 6.5'>at intake %s\nat report %s</span>", it->path,
          it->sha256, it->sha256_report ? it->sha256_report : "(no longer readable)");
      field (p, "", v);
    }
}

static void
limitations (Pdf *p)
{
  DcrReport *r = p->r;
  g_autofree char *n_real = dcr_report_training_field (r, "n_real");
  g_autofree char *n_fake = dcr_report_training_field (r, "n_fake");
  g_autofree char *auc = dcr_report_training_field (r, "val_auc");
  g_autofree char *trained = NULL;
  if (n_real && n_fake)
    trained = g_strdup_printf ("The model was trained on %s real and %s fake images%s%s%s, with features from the "
                               "frozen backbone %s. ",
                               n_real, n_fake, auc ? " (validation ROC AUC " : "", auc ? auc : "", auc ? ")" : "",
                               dcr_model_config (r->setup.model)->backbone_id);
  else
    trained = g_strdup_printf ("The model file carries no record of its training data; it uses features from the "
                               "frozen backbone %s. ", dcr_model_config (r->setup.model)->backbone_id);
  g_autofree char *body = g_markup_printf_escaped (
      "%sA score is evidence, not proof. P(fake) is the model's estimate from what it learnt from its training "
      "images; images unlike them — from generators it never saw, heavily compressed, resized, cropped, "
      "screenshots or printed and re-photographed — can be misjudged in either direction. The anomaly score "
      "measures how far the image's features sit from the nearest known-real prototypes in the bank, so it "
      "depends on what that bank contains. <b>Inconclusive</b> marks scores where the model's validation "
      "precision was too low to call. Images with little fine detail (out of focus, fog, sky, heavy denoising; "
      "under %.2f on the detail measure of the JSON report) are marked: generators leave their traces in fine "
      "detail, so a verdict on such an image rests on little evidence. %sNo verdict here should be relied on alone: weigh "
      "it with the file's "
      "provenance, metadata and other forensic findings.",
      trained, DCR_DETAIL_LOW,
      dcr_backbone_has_cnn (r->setup.bb)
        ? "The most suspicious region is the block of about 48 × 48 pixels of the central (at most 512 × 512) "
          "window that the detector's forensic CNN scores highest; it is outlined on the thumbnail when its score "
          "is 0.5 or more. The CNN is a small learned network trained on the super-resolution generators of the "
          "detector's benchmark: its score is evidence, not proof, and it generalises less well to generator "
          "families it was not trained on than the hand-made residual statistics do. "
      : dcr_backbone_has_tiles (r->setup.bb)
        ? "The most suspicious tile is the 48 × 48-pixel tile of the central (at most 512 × 512) window whose "
          "statistics differ most, in the way regenerated pixels do, from the image's typical tile; it is outlined "
          "on the thumbnail when its score is 0.5 or more. It points to where a partly regenerated image may have "
          "been changed; it cannot see a change outside that window, and a high score on a whole-image fake or "
          "on an unusual but real region is possible. "
        : "");
  section (p, "Limitations", 40);
  double h = text_height (p, CONTENT_W, "Sans 8.5", body, TRUE);
  need (p, h);
  text (p, MARGIN, p->y, CONTENT_W, "Sans 8.5", INK, body, TRUE, FALSE, PANGO_ALIGN_LEFT);
  p->y += h;
}

static void
destroy_surface (gpointer s)
{
  if (s)
    cairo_surface_destroy (s);
}

gboolean
dcr_report_write_pdf (DcrReport *r, const char *path, GError **error)
{
  Pdf p = { .r = r, .page = 1 };
  p.surface = cairo_pdf_surface_create (path, PAGE_W, PAGE_H);
  if (cairo_surface_status (p.surface) != CAIRO_STATUS_SUCCESS)
    {
      g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_WRITE, "%s: cannot create the PDF: %s", path,
                   cairo_status_to_string (cairo_surface_status (p.surface)));
      cairo_surface_destroy (p.surface);
      return FALSE;
    }
  g_autofree char *title = g_strdup_printf ("DCR Forensics batch report — case %s, exhibit %s",
                                            or_not_given (r->case_id), or_not_given (r->exhibit));
  cairo_pdf_surface_set_metadata (p.surface, CAIRO_PDF_METADATA_TITLE, title);
  cairo_pdf_surface_set_metadata (p.surface, CAIRO_PDF_METADATA_CREATOR, "DCR Forensics " DCR_VERSION);
  if (r->examiner)
    cairo_pdf_surface_set_metadata (p.surface, CAIRO_PDF_METADATA_AUTHOR, r->examiner);
  p.cr = cairo_create (p.surface);
  p.layout = pango_cairo_create_layout (p.cr);
  /* font sizes in PDF points, not at the screen's 96 dpi */
  pango_cairo_context_set_resolution (pango_layout_get_context (p.layout), 72);
  pango_layout_context_changed (p.layout);
  p.protos = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, destroy_surface);

  page_frame (&p);
  header (&p);
  if (r->n_analysed)
    {
      section (&p, "Results", ROW_H + 16);
      table_header (&p);
      guint row = 0;
      for (guint i = 0; i < r->items->len; i++)
        {
          const DcrReportItem *it = r->items->pdata[i];
          if (it->status == DCR_REPORT_ITEM_ANALYSED)
            image_row (&p, i, row++, it);
        }
    }
  rejected_section (&p);
  integrity_section (&p);
  limitations (&p);

  g_hash_table_unref (p.protos);
  g_object_unref (p.layout);
  cairo_destroy (p.cr);
  cairo_surface_finish (p.surface);
  cairo_status_t st = cairo_surface_status (p.surface);
  cairo_surface_destroy (p.surface);
  if (st != CAIRO_STATUS_SUCCESS)
    {
      g_set_error (error, DCR_REPORT_ERROR, DCR_REPORT_ERROR_WRITE, "%s: cannot write the PDF: %s", path,
                   cairo_status_to_string (st));
      return FALSE;
    }
  return TRUE;
}
