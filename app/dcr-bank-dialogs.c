/* dcr-bank-dialogs.c — the Statistics and Audit Log windows of the bank
 * page. The coverage plot's projection runs in a GTask worker on its own
 * read-only handle of the bank, so a bank of 100,000 keeps the window
 * responsive; at most DCR_BANK_PLOT_MAX_POINTS are projected. */
#include "dcr-bank-dialogs.h"
#include "dcr-bank-model.h"

#include <math.h>
#include <string.h>

/* Colours of the largest source folders (the rest share grey); readable on
 * light and dark backgrounds. */
static const double palette[][3] = {
  { 0.21, 0.52, 0.89 }, { 0.88, 0.11, 0.14 }, { 0.18, 0.76, 0.49 }, { 1.00, 0.47, 0.00 },
  { 0.57, 0.25, 0.67 }, { 0.60, 0.42, 0.27 }, { 0.90, 0.65, 0.04 }, { 0.04, 0.55, 0.55 },
};
static const double other_colour[3] = { 0.55, 0.55, 0.58 };
#define N_COLOURS G_N_ELEMENTS (palette)

struct _DcrBankStatsWindow {
  AdwWindow parent_instance;
  DcrBankSummary *summary;
  GHashTable *style_of;   /* gint64 id → colour index + 1, bit 8 set when disabled */
  GtkDrawingArea *plot;
  GtkLabel *plot_label;
  GtkSpinner *spinner;
  GCancellable *cancellable;
  /* the projection */
  gsize n_points, n_all;
  float *xy;
  guint16 *style;
  double var[2], total;
  char *error;
};

G_DEFINE_FINAL_TYPE (DcrBankStatsWindow, dcr_bank_stats_window, ADW_TYPE_WINDOW)

typedef struct {
  char *bank_path;
  gsize n, n_all;
  float *xy;
  gint64 *ids;
  double var[2], total;
} Projection;

static void
projection_free (Projection *p)
{
  g_free (p->bank_path);
  g_free (p->xy);
  g_free (p->ids);
  g_free (p);
}

static void
project_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Projection *p = data;
  GError *err = NULL;
  g_autoptr (DcrBank) bank = dcr_bank_open (p->bank_path, NULL, 0, TRUE, &err);
  g_autofree float *features = NULL;
  g_autofree gint64 *ids = NULL;
  gsize n = 0;
  if (!bank || !dcr_bank_load_features (bank, FALSE, &features, &ids, &n, &err))
    {
      g_task_return_error (task, err);
      return;
    }
  guint dim = dcr_bank_dim (bank);
  g_autofree gsize *rows = g_new (gsize, MAX (MIN (n, DCR_BANK_PLOT_MAX_POINTS), 1));
  gsize m = dcr_sample_rows (n, DCR_BANK_PLOT_MAX_POINTS, rows);
  if (m < n)
    {
      /* compact the sampled rows to the front, in order (rows[i] ≥ i) */
      for (gsize i = 0; i < m; i++)
        {
          memmove (features + i * dim, features + rows[i] * dim, dim * sizeof (float));
          ids[i] = ids[rows[i]];
        }
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  p->n = m;
  p->n_all = n;
  p->xy = g_new (float, 2 * MAX (m, 1));
  if (!dcr_pca_2d (features, m, dim, p->xy, p->var, &p->total, cancellable, &err))
    {
      g_task_return_error (task, err);
      return;
    }
  p->ids = g_steal_pointer (&ids);
  g_task_return_boolean (task, TRUE);
}

static void
on_projected (GObject *source, GAsyncResult *res, gpointer data)
{
  /* the task's reference, let go here on the main thread */
  g_autoptr (DcrBankStatsWindow) self = data;
  g_autoptr (GError) err = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (res), &err);
  if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* the window went away */
  gtk_spinner_stop (self->spinner);
  gtk_widget_set_visible (GTK_WIDGET (self->spinner), FALSE);
  g_clear_object (&self->cancellable);
  if (!ok)
    {
      self->error = g_strdup (err->message);
      g_autofree char *msg = g_strdup_printf ("No coverage plot: %s", err->message);
      gtk_label_set_label (self->plot_label, msg);
      return;
    }
  Projection *p = g_task_get_task_data (G_TASK (res));
  self->n_points = p->n;
  self->n_all = p->n_all;
  self->xy = g_steal_pointer (&p->xy);
  self->var[0] = p->var[0];
  self->var[1] = p->var[1];
  self->total = p->total;
  self->style = g_new0 (guint16, MAX (p->n, 1));
  for (gsize i = 0; i < p->n; i++)
    self->style[i] = (guint16) GPOINTER_TO_UINT (g_hash_table_lookup (self->style_of, &p->ids[i]));
  double share[2] = { self->total > 0 ? 100 * self->var[0] / self->total : 0,
                      self->total > 0 ? 100 * self->var[1] / self->total : 0 };
  g_autofree char *msg = g_strdup_printf (
    "%s of %" G_GSIZE_FORMAT " prototypes projected on their first two principal axes (%.1f %% and %.1f %% "
    "of the variance). Colour: source folder; filled: enabled; hollow: disabled.",
    self->n_points == self->n_all ? "All" : "A sample", self->n_all, share[0], share[1]);
  gtk_label_set_label (self->plot_label, msg);
  gtk_widget_queue_draw (GTK_WIDGET (self->plot));
}

static void
set_colour (cairo_t *cr, guint16 style, double alpha)
{
  guint c = style & 0xff;
  const double *rgb = c >= 1 && c <= N_COLOURS ? palette[c - 1] : other_colour;
  cairo_set_source_rgba (cr, rgb[0], rgb[1], rgb[2], alpha);
}

static void
draw_plot (GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer data)
{
  DcrBankStatsWindow *self = data;
  GdkRGBA fg;
  /* gtk_widget_get_color is new in 4.10, where the style-context call it
   * replaces became deprecated: each build uses the one its GTK has */
#if GTK_CHECK_VERSION(4, 10, 0)
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer than GDK_VERSION_MAX_ALLOWED, on purpose */
  gtk_widget_get_color (GTK_WIDGET (area), &fg);
  G_GNUC_END_IGNORE_DEPRECATIONS
#else
  gtk_style_context_get_color (gtk_widget_get_style_context (GTK_WIDGET (area)), &fg);
#endif
  const double pad = 28;
  double w = width - 2 * pad, h = height - 2 * pad;
  cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.35);
  cairo_set_line_width (cr, 1);
  cairo_rectangle (cr, pad - 0.5, pad - 0.5, w + 1, h + 1);
  cairo_stroke (cr);
  cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.8);
  cairo_select_font_face (cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size (cr, 11);
  cairo_move_to (cr, pad, height - 9);
  cairo_show_text (cr, "principal axis 1 →");
  cairo_save (cr);
  cairo_move_to (cr, 17, pad + h);
  cairo_rotate (cr, -G_PI / 2);
  cairo_show_text (cr, "principal axis 2 →");
  cairo_restore (cr);
  if (!self->xy || self->n_points == 0 || w < 10 || h < 10)
    return;
  float lo[2] = { self->xy[0], self->xy[1] }, hi[2] = { self->xy[0], self->xy[1] };
  for (gsize i = 0; i < self->n_points; i++)
    for (int a = 0; a < 2; a++)
      {
        lo[a] = MIN (lo[a], self->xy[2 * i + a]);
        hi[a] = MAX (hi[a], self->xy[2 * i + a]);
      }
  double span[2];
  for (int a = 0; a < 2; a++)
    span[a] = hi[a] > lo[a] ? hi[a] - lo[a] : 1;
  double r = self->n_points > 5000 ? 1.6 : self->n_points > 500 ? 2.5 : 4;
  double m = MAX (r + 2, 0.03 * MIN (w, h));
  /* enabled ones first, the hollow disabled ones on top so they stay visible */
  for (int pass = 0; pass < 2; pass++)
    for (gsize i = 0; i < self->n_points; i++)
      {
        gboolean disabled = (self->style[i] & 0x100) != 0;
        if (disabled != (pass == 1))
          continue;
        double x = pad + m + (self->xy[2 * i] - lo[0]) / span[0] * (w - 2 * m);
        double y = pad + h - m - (self->xy[2 * i + 1] - lo[1]) / span[1] * (h - 2 * m);
        cairo_new_sub_path (cr);
        cairo_arc (cr, x, y, r, 0, 2 * G_PI);
        set_colour (cr, self->style[i], disabled ? 1.0 : 0.8);
        if (disabled)
          {
            cairo_set_line_width (cr, 1.2);
            cairo_stroke (cr);
          }
        else
          cairo_fill (cr);
      }
}

static GtkWidget *
fact_row (GtkGrid *grid, int row, const char *name, const char *value)
{
  GtkWidget *k = gtk_label_new (name), *v = gtk_label_new (value);
  gtk_label_set_xalign (GTK_LABEL (k), 0);
  gtk_label_set_xalign (GTK_LABEL (v), 0);
  /* no wrapping: a wrapped path would make the window as tall as one
   * character per line at its narrowest */
  gtk_label_set_ellipsize (GTK_LABEL (v), PANGO_ELLIPSIZE_START);
  gtk_widget_set_hexpand (v, TRUE);
  gtk_widget_set_tooltip_text (v, value);
  gtk_widget_add_css_class (k, "dim-label");
  gtk_grid_attach (grid, k, 0, row, 1, 1);
  gtk_grid_attach (grid, v, 1, row, 1, 1);
  return v;
}

static void
dcr_bank_stats_window_dispose (GObject *object)
{
  DcrBankStatsWindow *self = DCR_BANK_STATS_WINDOW (object);
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (dcr_bank_stats_window_parent_class)->dispose (object);
}

static void
dcr_bank_stats_window_finalize (GObject *object)
{
  DcrBankStatsWindow *self = DCR_BANK_STATS_WINDOW (object);
  dcr_bank_summary_free (self->summary);
  g_clear_pointer (&self->style_of, g_hash_table_unref);
  g_free (self->xy);
  g_free (self->style);
  g_free (self->error);
  G_OBJECT_CLASS (dcr_bank_stats_window_parent_class)->finalize (object);
}

static void
dcr_bank_stats_window_class_init (DcrBankStatsWindowClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = dcr_bank_stats_window_dispose;
  G_OBJECT_CLASS (klass)->finalize = dcr_bank_stats_window_finalize;
  gtk_widget_class_add_binding_action (GTK_WIDGET_CLASS (klass), GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
dcr_bank_stats_window_init (DcrBankStatsWindow *self)
{
}

static GtkWidget *
window_box (AdwWindow *win, const char *title)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  GtkWidget *header = adw_header_bar_new ();
  adw_header_bar_set_title_widget (ADW_HEADER_BAR (header), adw_window_title_new (title, NULL));
  gtk_box_append (GTK_BOX (box), header);
  adw_window_set_content (win, box);
  return box;
}

DcrBankStatsWindow *
dcr_bank_stats_window_new (GtkWindow *parent, const char *bank_path, GListModel *items)
{
  g_return_val_if_fail (bank_path && G_IS_LIST_MODEL (items), NULL);
  DcrBankStatsWindow *self = g_object_new (DCR_TYPE_BANK_STATS_WINDOW, "title", "Bank Statistics", "modal", TRUE,
                                           "transient-for", parent, "default-width", 760, "default-height", 720,
                                           NULL);
  guint n = g_list_model_get_n_items (items);
  g_autoptr (GPtrArray) keep = g_ptr_array_new_full (n, g_object_unref);
  g_autofree const DcrPrototype **protos = g_new (const DcrPrototype *, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      DcrBankItem *item = g_list_model_get_item (items, i);
      g_ptr_array_add (keep, item);
      protos[i] = dcr_bank_item_get_prototype (item);
    }
  self->summary = dcr_bank_summarize (protos, n);
  /* colour index by source folder rank */
  g_autoptr (GHashTable) rank = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < MIN (self->summary->sources->len, N_COLOURS); i++)
    g_hash_table_insert (rank, self->summary->sources->pdata[i], GUINT_TO_POINTER (i + 1));
  self->style_of = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *folder = dcr_bank_source_folder (protos[i]->source);
      guint style = GPOINTER_TO_UINT (g_hash_table_lookup (rank, folder)) | (protos[i]->enabled ? 0 : 0x100);
      g_hash_table_insert (self->style_of, g_memdup2 (&protos[i]->id, sizeof (gint64)), GUINT_TO_POINTER (style));
    }

  GtkWidget *outer = window_box (ADW_WINDOW (self), "Bank Statistics");
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  gtk_widget_set_margin_top (box, 12);
  gtk_widget_set_margin_bottom (box, 12);
  gtk_widget_set_margin_start (box, 18);
  gtk_widget_set_margin_end (box, 18);
  gtk_widget_set_vexpand (box, TRUE);
  gtk_box_append (GTK_BOX (outer), box);

  GtkWidget *grid = gtk_grid_new ();
  gtk_grid_set_column_spacing (GTK_GRID (grid), 18);
  gtk_grid_set_row_spacing (GTK_GRID (grid), 4);
  const DcrBankSummary *s = self->summary;
  g_autofree char *count = g_strdup_printf ("%u", s->total);
  g_autofree char *state = g_strdup_printf ("%u enabled · %u disabled · %u pinned", s->enabled, s->disabled,
                                            s->pinned);
  g_autofree char *sources = g_strdup_printf ("%u folder%s", s->sources->len, s->sources->len == 1 ? "" : "s");
  g_autofree char *first = s->first_added ? g_date_time_format (s->first_added, "%Y-%m-%d %H:%M UTC") : NULL;
  g_autofree char *last = s->last_added ? g_date_time_format (s->last_added, "%Y-%m-%d %H:%M UTC") : NULL;
  g_autofree char *added = first ? g_strdup_printf ("%s — %s", first, last) : g_strdup ("not recorded");
  fact_row (GTK_GRID (grid), 0, "Prototypes", count);
  fact_row (GTK_GRID (grid), 1, "State", state);
  fact_row (GTK_GRID (grid), 2, "Sources", sources);
  fact_row (GTK_GRID (grid), 3, "Added", added);
  fact_row (GTK_GRID (grid), 4, "File", bank_path);
  gtk_box_append (GTK_BOX (box), grid);

  GtkWidget *heading = gtk_label_new ("Feature-Space Coverage");
  gtk_widget_add_css_class (heading, "heading");
  gtk_label_set_xalign (GTK_LABEL (heading), 0);
  gtk_box_append (GTK_BOX (box), heading);
  GtkWidget *row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->spinner = GTK_SPINNER (gtk_spinner_new ());
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->spinner));
  self->plot_label = GTK_LABEL (gtk_label_new ("Projecting the prototypes…"));
  gtk_label_set_wrap (self->plot_label, TRUE);
  gtk_label_set_xalign (self->plot_label, 0);
  gtk_widget_set_hexpand (GTK_WIDGET (self->plot_label), TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self->plot_label), "dim-label");
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->plot_label));
  gtk_box_append (GTK_BOX (box), row);

  self->plot = GTK_DRAWING_AREA (gtk_drawing_area_new ());
  gtk_drawing_area_set_content_height (self->plot, 360);
  gtk_widget_set_vexpand (GTK_WIDGET (self->plot), TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self->plot), "card");
  gtk_drawing_area_set_draw_func (self->plot, draw_plot, self, NULL);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->plot));

  /* the legend: the largest folders by colour */
  GtkWidget *legend = gtk_flow_box_new ();
  gtk_flow_box_set_selection_mode (GTK_FLOW_BOX (legend), GTK_SELECTION_NONE);
  gtk_flow_box_set_max_children_per_line (GTK_FLOW_BOX (legend), 3);
  guint shown = MIN (s->sources->len, N_COLOURS);
  for (guint i = 0; i <= shown && i < s->sources->len; i++)
    {
      const double *rgb = i < shown ? palette[i] : other_colour;
      guint others = 0;
      for (guint j = shown; i == shown && j < s->sources->len; j++)
        others += g_array_index (s->source_counts, guint, j);
      g_autofree char *markup
        = i < shown ? g_markup_printf_escaped ("<span foreground=\"#%02x%02x%02x\">●</span> %s (%u)",
                                               (int) (rgb[0] * 255), (int) (rgb[1] * 255), (int) (rgb[2] * 255),
                                               (const char *) s->sources->pdata[i],
                                               g_array_index (s->source_counts, guint, i))
                    : g_markup_printf_escaped ("<span foreground=\"#%02x%02x%02x\">●</span> %u other folders (%u)",
                                               (int) (rgb[0] * 255), (int) (rgb[1] * 255), (int) (rgb[2] * 255),
                                               s->sources->len - shown, others);
      GtkWidget *l = gtk_label_new (NULL);
      gtk_label_set_markup (GTK_LABEL (l), markup);
      gtk_label_set_xalign (GTK_LABEL (l), 0);
      gtk_label_set_ellipsize (GTK_LABEL (l), PANGO_ELLIPSIZE_START);
      gtk_widget_set_tooltip_text (l, i < shown ? s->sources->pdata[i] : NULL);
      gtk_flow_box_append (GTK_FLOW_BOX (legend), l);
    }
  gtk_box_append (GTK_BOX (box), legend);

  if (n == 0)
    {
      gtk_label_set_label (self->plot_label, "The bank is empty: nothing to plot.");
      return self;
    }
  gtk_spinner_start (self->spinner);
  self->cancellable = g_cancellable_new ();
  Projection *p = g_new0 (Projection, 1);
  p->bank_path = g_strdup (bank_path);
  /* no source object: the task's last reference may go in the worker, and
   * the window must never be finalised there */
  g_autoptr (GTask) task = g_task_new (NULL, self->cancellable, on_projected, g_object_ref (self));
  g_task_set_task_data (task, p, (GDestroyNotify) projection_free);
  g_task_run_in_thread (task, project_thread);
  return self;
}

const DcrBankSummary *
dcr_bank_stats_window_get_summary (DcrBankStatsWindow *self)
{
  g_return_val_if_fail (DCR_IS_BANK_STATS_WINDOW (self), NULL);
  return self->summary;
}

gboolean
dcr_bank_stats_window_is_busy (DcrBankStatsWindow *self)
{
  g_return_val_if_fail (DCR_IS_BANK_STATS_WINDOW (self), FALSE);
  return self->cancellable != NULL;
}

gsize
dcr_bank_stats_window_get_n_points (DcrBankStatsWindow *self, double *explained)
{
  g_return_val_if_fail (DCR_IS_BANK_STATS_WINDOW (self), 0);
  if (explained)
    *explained = self->total > 0 ? (self->var[0] + self->var[1]) / self->total : 0;
  return self->n_points;
}

const char *
dcr_bank_stats_window_get_error (DcrBankStatsWindow *self)
{
  g_return_val_if_fail (DCR_IS_BANK_STATS_WINDOW (self), NULL);
  return self->error;
}

/* ---- the audit log ------------------------------------------------------ */

struct _DcrBankAuditWindow {
  AdwWindow parent_instance;
  GPtrArray *entries;
};

G_DEFINE_FINAL_TYPE (DcrBankAuditWindow, dcr_bank_audit_window, ADW_TYPE_WINDOW)

static void
dcr_bank_audit_window_finalize (GObject *object)
{
  g_clear_pointer (&DCR_BANK_AUDIT_WINDOW (object)->entries, g_ptr_array_unref);
  G_OBJECT_CLASS (dcr_bank_audit_window_parent_class)->finalize (object);
}

static void
dcr_bank_audit_window_class_init (DcrBankAuditWindowClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dcr_bank_audit_window_finalize;
  gtk_widget_class_add_binding_action (GTK_WIDGET_CLASS (klass), GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
dcr_bank_audit_window_init (DcrBankAuditWindow *self)
{
}

/* "12 prototypes: 1, 2, 3, …" from the stored "1,2,3,…" list */
static char *
ids_text (const char *ids)
{
  if (!ids || !*ids)
    return g_strdup ("—");
  const char *all = strstr (ids, "(");
  guint n = 1;
  for (const char *c = ids; *c && c != all; c++)
    n += *c == ',';
  if (all)
    n = (guint) g_ascii_strtoull (all + 1, NULL, 10);
  g_auto (GStrv) parts = g_strsplit (ids, ",", 0);
  g_autofree char *joined = g_strjoinv (", ", parts);
  return n == 1 ? g_strdup_printf ("1 prototype: %s", joined)
                : g_strdup_printf ("%u prototypes: %s", n, joined);
}

static GtkWidget *
cell (const char *text, gboolean bold, gboolean expand)
{
  GtkWidget *l = gtk_label_new (text);
  gtk_label_set_xalign (GTK_LABEL (l), 0);
  gtk_label_set_yalign (GTK_LABEL (l), 0);
  if (expand)
    {
      gtk_label_set_wrap (GTK_LABEL (l), TRUE);
      gtk_label_set_wrap_mode (GTK_LABEL (l), PANGO_WRAP_WORD_CHAR);
      gtk_label_set_max_width_chars (GTK_LABEL (l), 40);
      gtk_widget_set_hexpand (l, TRUE);
    }
  if (bold)
    gtk_widget_add_css_class (l, "heading");
  return l;
}

DcrBankAuditWindow *
dcr_bank_audit_window_new (GtkWindow *parent, DcrBank *bank, guint limit, GError **error)
{
  g_autoptr (GPtrArray) entries = dcr_bank_audit_log (bank, limit, error);
  if (!entries)
    return NULL;
  DcrBankAuditWindow *self = g_object_new (DCR_TYPE_BANK_AUDIT_WINDOW, "title", "Audit Log", "modal", TRUE,
                                           "transient-for", parent, "default-width", 820, "default-height", 560,
                                           NULL);
  self->entries = g_steal_pointer (&entries);
  GtkWidget *outer = window_box (ADW_WINDOW (self), "Audit Log");
  g_autofree char *base = g_path_get_basename (dcr_bank_path (bank));
  g_autofree char *intro = g_strdup_printf ("%s: %u change%s, newest first%s. Every change to the bank is written "
                                            "here in the same transaction as the change itself.",
                                            base, self->entries->len, self->entries->len == 1 ? "" : "s",
                                            limit && self->entries->len == limit ? " (the latest only)" : "");
  GtkWidget *label = gtk_label_new (intro);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_add_css_class (label, "dim-label");
  gtk_widget_set_margin_start (label, 18);
  gtk_widget_set_margin_end (label, 18);
  gtk_widget_set_margin_top (label, 12);
  gtk_widget_set_margin_bottom (label, 6);
  gtk_box_append (GTK_BOX (outer), label);

  GtkWidget *grid = gtk_grid_new ();
  gtk_grid_set_column_spacing (GTK_GRID (grid), 18);
  gtk_grid_set_row_spacing (GTK_GRID (grid), 6);
  gtk_widget_set_margin_start (grid, 18);
  gtk_widget_set_margin_end (grid, 18);
  gtk_widget_set_margin_bottom (grid, 12);
  const char *headers[] = { "Time (UTC)", "Action", "Prototypes", "Note" };
  for (int c = 0; c < 4; c++)
    gtk_grid_attach (GTK_GRID (grid), cell (headers[c], TRUE, c >= 2), c, 0, 1, 1);
  for (guint i = 0; i < self->entries->len; i++)
    {
      const DcrBankAudit *a = self->entries->pdata[i];
      g_autofree char *when = a->time ? g_date_time_format (a->time, "%Y-%m-%d %H:%M:%S") : g_strdup ("?");
      g_autofree char *ids = ids_text (a->ids);
      gtk_grid_attach (GTK_GRID (grid), cell (when, FALSE, FALSE), 0, (int) i + 1, 1, 1);
      gtk_grid_attach (GTK_GRID (grid), cell (a->action ? a->action : "?", FALSE, FALSE), 1, (int) i + 1, 1, 1);
      gtk_grid_attach (GTK_GRID (grid), cell (ids, FALSE, TRUE), 2, (int) i + 1, 1, 1);
      gtk_grid_attach (GTK_GRID (grid), cell (a->detail ? a->detail : "", FALSE, TRUE), 3, (int) i + 1, 1, 1);
    }
  GtkWidget *sw = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (sw), grid);
  gtk_widget_set_vexpand (sw, TRUE);
  gtk_box_append (GTK_BOX (outer), sw);
  return self;
}

GPtrArray *
dcr_bank_audit_window_get_entries (DcrBankAuditWindow *self)
{
  g_return_val_if_fail (DCR_IS_BANK_AUDIT_WINDOW (self), NULL);
  return self->entries;
}
