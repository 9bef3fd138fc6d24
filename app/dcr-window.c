/* dcr-window.c — the main window: a start page, the "no detector model"
 * page, a spinner while an image is analysed, the inspect view and the
 * batch page (several files or a folder dropped make a batch report). Files
 * come from the command line, Ctrl+O or a drop; a new file cancels the
 * analysis still running. */
#include "dcr-config.h"
#include "dcr-window.h"
#include "dcr-analysis.h"
#include "dcr-inspect-view.h"
#include "dcr-file-chooser.h"
#include "dcr-recent-list.h"
#include "dcr-batch-view.h"
#include "dcr-bank-view.h"

#include <stdlib.h>

struct _DcrWindow {
  AdwApplicationWindow parent_instance;
  AdwToastOverlay *toast_overlay;
  GtkStack *stack;
  AdwStatusPage *start_page, *no_model_page;
  GtkSpinner *spinner;
  GtkLabel *busy_label;
  GtkWidget *busy_hint;      /* why it takes long, shown when it does */
  guint busy_hint_id;        /* the timeout that shows it */
  DcrInspectView *inspect_view;
  DcrBatchView *batch_view;
  DcrRecentList *recent_list;
  GMenu *recent_menu;

  GSettings *settings;
  DcrAnalysis *analysis;     /* made on first use, dropped when a preference changes */
  GCancellable *cancellable; /* of the analysis in flight, NULL when idle */
  const char *idle_page;     /* what to show when an analysis fails */
};

G_DEFINE_FINAL_TYPE (DcrWindow, dcr_window, ADW_TYPE_APPLICATION_WINDOW)

static gboolean
has_model (DcrWindow *self)
{
  g_autofree char *setting = g_settings_get_string (self->settings, "model-file");
  g_autofree char *path = dcr_analysis_resolve_model_path (setting);
  return path != NULL;
}

/* The busy page's hint: after a few seconds ($DCR_BUSY_HINT_MS, for the
 * tests) it says why an analysis can take long (on lavapipe the first one
 * compiles the GPU code for half a minute). */
static gboolean
show_busy_hint (gpointer data)
{
  DcrWindow *self = data;
  self->busy_hint_id = 0;
  gtk_widget_set_visible (self->busy_hint, TRUE);
  return G_SOURCE_REMOVE;
}

static void
busy_hint_start (DcrWindow *self)
{
  g_clear_handle_id (&self->busy_hint_id, g_source_remove);
  gtk_widget_set_visible (self->busy_hint, FALSE);
  const char *env = g_getenv ("DCR_BUSY_HINT_MS");
  self->busy_hint_id = g_timeout_add (env ? (guint) atoi (env) : 4000, show_busy_hint, self);
}

static void
busy_hint_stop (DcrWindow *self)
{
  g_clear_handle_id (&self->busy_hint_id, g_source_remove);
  gtk_widget_set_visible (self->busy_hint, FALSE);
}

/* Leaves the busy page (its spinner and hint) for page. */
static void
end_busy (DcrWindow *self, const char *page)
{
  busy_hint_stop (self);
  gtk_spinner_stop (self->spinner);
  gtk_stack_set_visible_child_name (self->stack, page);
}

static void
show_idle (DcrWindow *self)
{
  end_busy (self, has_model (self) ? self->idle_page : "no-model");
}

static void
on_settings_changed (GSettings *settings, const char *key, DcrWindow *self)
{
  if (g_strcmp0 (key, "device") && g_strcmp0 (key, "model-file") && g_strcmp0 (key, "bank-file"))
    return;
  /* the next analysis loads the engine again with the new choice */
  g_clear_object (&self->analysis);
  /* the Memory Bank page stays up when it switched banks itself */
  if (!self->cancellable && g_strcmp0 (gtk_stack_get_visible_child_name (self->stack), "bank") != 0)
    show_idle (self);
}

static void
toast (DcrWindow *self, const char *message)
{
  AdwToast *t = adw_toast_new (message);
  adw_toast_set_timeout (t, 8);
  adw_toast_overlay_add_toast (self->toast_overlay, t);
}

/* An analysis in flight holds the window and the application: quitting
 * waits for the worker, which may be inside the GPU driver. */
typedef struct {
  DcrWindow *self;
  GApplication *app;
} Pending;

static void
on_analysed (GObject *source, GAsyncResult *res, gpointer data)
{
  Pending *pending = data;
  g_autoptr (DcrWindow) self = pending->self;
  if (pending->app)
    {
      g_application_release (pending->app);
      g_object_unref (pending->app);
    }
  g_free (pending);
  g_autoptr (GError) err = NULL;
  DcrAnalysisResult *r = dcr_analysis_run_finish (DCR_ANALYSIS (source), res, &err);
  if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* a newer file took over */
  g_clear_object (&self->cancellable);
  if (!r)
    {
      if (g_error_matches (err, DCR_ANALYSIS_ERROR, DCR_ANALYSIS_ERROR_NO_MODEL))
        {
          end_busy (self, "no-model");
          return;
        }
      toast (self, err->message);
      show_idle (self);
      return;
    }
  g_autofree char *title = g_strdup_printf ("%s — DCR Forensics", r->name);
  gtk_window_set_title (GTK_WINDOW (self), title);
  g_autoptr (GFile) analysed = g_file_new_for_path (r->path);
  dcr_recent_add (analysed);
  dcr_inspect_view_set_result (self->inspect_view, r);
  self->idle_page = "result";
  end_busy (self, "result");
}

void
dcr_window_open_file (DcrWindow *self, GFile *file)
{
  g_return_if_fail (DCR_IS_WINDOW (self) && G_IS_FILE (file));
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (!has_model (self))
    {
      gtk_stack_set_visible_child_name (self->stack, "no-model");
      return;
    }
  if (!self->analysis)
    {
      g_autofree char *device = g_settings_get_string (self->settings, "device");
      g_autofree char *model = g_settings_get_string (self->settings, "model-file");
      g_autofree char *bank = g_settings_get_string (self->settings, "bank-file");
      self->analysis = dcr_analysis_new (device, model, bank);
    }
  self->cancellable = g_cancellable_new ();
  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *busy = g_strdup_printf ("Analysing %s…", name);
  gtk_label_set_label (self->busy_label, busy);
  busy_hint_start (self);
  gtk_spinner_start (self->spinner);
  gtk_stack_set_visible_child_name (self->stack, "busy");
  Pending *pending = g_new (Pending, 1);
  GtkApplication *app = gtk_window_get_application (GTK_WINDOW (self));
  *pending = (Pending) { g_object_ref (self), app ? g_object_ref (G_APPLICATION (app)) : NULL };
  if (pending->app)
    g_application_hold (pending->app);
  dcr_analysis_run_async (self->analysis, file, self->cancellable, on_analysed, pending);
}

void
dcr_window_start_batch (DcrWindow *self, GFile **files, guint n)
{
  g_return_if_fail (DCR_IS_WINDOW (self));
  if (!has_model (self))
    {
      gtk_stack_set_visible_child_name (self->stack, "no-model");
      return;
    }
  g_autofree char *device = g_settings_get_string (self->settings, "device");
  g_autofree char *model = g_settings_get_string (self->settings, "model-file");
  g_autofree char *bank = g_settings_get_string (self->settings, "bank-file");
  g_autofree char *folder = g_settings_get_string (self->settings, "report-folder");
  g_autofree char *case_id = g_settings_get_string (self->settings, "report-case");
  g_autofree char *exhibit = g_settings_get_string (self->settings, "report-exhibit");
  g_autofree char *examiner = g_settings_get_string (self->settings, "report-examiner");
  DcrReportOptions opts = { .device = device, .model_path = model, .bank_path = bank, .case_id = case_id,
                            .exhibit = exhibit, .examiner = examiner };
  dcr_batch_view_start (self->batch_view, files, n, &opts, folder);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.show-batch", TRUE);
  gtk_stack_set_visible_child_name (self->stack, "batch");
}

static void
on_batch_chosen (GFile **files, guint n, gpointer data)
{
  dcr_window_start_batch (DCR_WINDOW (data), files, n);
}

static void
new_batch_action (GtkWidget *widget, const char *name, GVariant *param)
{
  dcr_batch_view_choose_inputs (GTK_WINDOW (widget), on_batch_chosen, widget);
}

static void
show_batch_action (GtkWidget *widget, const char *name, GVariant *param)
{
  gtk_stack_set_visible_child_name (DCR_WINDOW (widget)->stack, "batch");
}

DcrBatchView *
dcr_window_get_batch_view (DcrWindow *self)
{
  return self->batch_view;
}

void
dcr_window_open_files (DcrWindow *self, GFile **files, guint n)
{
  if (n == 0)
    return;
  /* several files or a folder make a batch report; one image is inspected */
  if (n > 1 || g_file_query_file_type (files[0], G_FILE_QUERY_INFO_NONE, NULL) == G_FILE_TYPE_DIRECTORY)
    {
      dcr_window_start_batch (self, files, n);
      return;
    }
  dcr_window_open_file (self, files[0]);
}

static gboolean
on_drop (GtkDropTarget *target, const GValue *value, double x, double y, DcrWindow *self)
{
  GdkFileList *list = g_value_get_boxed (value);
  g_autoptr (GSList) files = list ? gdk_file_list_get_files (list) : NULL;
  g_autoptr (GPtrArray) arr = g_ptr_array_new ();
  for (GSList *l = files; l; l = l->next)
    g_ptr_array_add (arr, l->data);
  if (arr->len == 0)
    return FALSE;
  dcr_window_open_files (self, (GFile **) arr->pdata, arr->len);
  return TRUE;
}

static void
on_file_chosen (GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr (DcrWindow) self = data;
  g_autoptr (GError) err = NULL;
  g_autoptr (GFile) file = dcr_file_chooser_open_finish (res, &err);
  if (file)
    dcr_window_open_file (self, file);
  else if (!g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    toast (self, err->message);
}

static void
open_action (GtkWidget *widget, const char *name, GVariant *param)
{
  static const char *const suffixes[] = { "png", "jpg", "jpeg", NULL };
  static const char *const types[] = { "image/png", "image/jpeg", NULL };
  g_autoptr (GListStore) filters = g_list_store_new (GTK_TYPE_FILE_FILTER);
  g_autoptr (GtkFileFilter) images = dcr_file_filter_new ("PNG and JPEG images", suffixes, types);
  g_autoptr (GtkFileFilter) all = gtk_file_filter_new ();
  gtk_file_filter_set_name (all, "All files");
  gtk_file_filter_add_pattern (all, "*");
  g_list_store_append (filters, images);
  g_list_store_append (filters, all);
  dcr_file_chooser_open (GTK_WINDOW (widget), "Open Image", G_LIST_MODEL (filters), NULL, on_file_chosen,
                         g_object_ref (widget));
}

static void
open_recent_action (GtkWidget *widget, const char *name, GVariant *param)
{
  g_autoptr (GFile) file = g_file_new_for_uri (g_variant_get_string (param, NULL));
  dcr_window_open_file (DCR_WINDOW (widget), file);
}

/* The Memory Bank page loads its bank when it is shown. */
static void
show_bank_action (GtkWidget *widget, const char *name, GVariant *param)
{
  gtk_stack_set_visible_child_name (DCR_WINDOW (widget)->stack, "bank");
}

static void
close_bank_action (GtkWidget *widget, const char *name, GVariant *param)
{
  show_idle (DCR_WINDOW (widget));
}

const char *
dcr_window_get_page (DcrWindow *self)
{
  return gtk_stack_get_visible_child_name (self->stack);
}

DcrInspectView *
dcr_window_get_inspect_view (DcrWindow *self)
{
  return self->inspect_view;
}

static void
dcr_window_dispose (GObject *object)
{
  DcrWindow *self = DCR_WINDOW (object);
  g_clear_handle_id (&self->busy_hint_id, g_source_remove);
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->analysis);
  g_clear_object (&self->settings);
  gtk_widget_dispose_template (GTK_WIDGET (self), DCR_TYPE_WINDOW);
  G_OBJECT_CLASS (dcr_window_parent_class)->dispose (object);
}

static void
dcr_window_class_init (DcrWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = dcr_window_dispose;
  g_type_ensure (DCR_TYPE_INSPECT_VIEW);
  g_type_ensure (DCR_TYPE_RECENT_LIST);
  g_type_ensure (DCR_TYPE_BATCH_VIEW);
  g_type_ensure (DCR_TYPE_BANK_VIEW);
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dcrforensics/DcrForensics/dcr-window.ui");
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, stack);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, start_page);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, no_model_page);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, spinner);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, busy_label);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, busy_hint);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, inspect_view);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, batch_view);
  gtk_widget_class_install_action (widget_class, "win.new-batch", NULL, new_batch_action);
  gtk_widget_class_install_action (widget_class, "win.show-batch", NULL, show_batch_action);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, recent_list);
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, recent_menu);
  gtk_widget_class_install_action (widget_class, "win.open", NULL, open_action);
  gtk_widget_class_install_action (widget_class, "win.show-bank", NULL, show_bank_action);
  gtk_widget_class_install_action (widget_class, "win.close-bank", NULL, close_bank_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_o, GDK_CONTROL_MASK, "win.open", NULL);
  gtk_widget_class_install_action (widget_class, "win.open-recent", "s", open_recent_action);
}

static void
dcr_window_init (DcrWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->idle_page = "start";
  self->settings = g_settings_new (DCR_APP_ID);
  g_settings_bind (self->settings, "window-width", self, "default-width", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "window-height", self, "default-height", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "window-maximized", self, "maximized", G_SETTINGS_BIND_DEFAULT);
  g_signal_connect (self->settings, "changed", G_CALLBACK (on_settings_changed), self);
  g_signal_connect_swapped (self->recent_list, "open-file", G_CALLBACK (dcr_window_open_file), self);
  dcr_recent_list_set_menu (self->recent_list, self->recent_menu);
  g_signal_connect_swapped (self->batch_view, "open-file", G_CALLBACK (dcr_window_open_file), self);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.show-batch", FALSE);

  GtkDropTarget *drop = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect (drop, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop));
  show_idle (self);
}

DcrWindow *
dcr_window_new (AdwApplication *app)
{
  return g_object_new (DCR_TYPE_WINDOW, "application", app, NULL);
}
