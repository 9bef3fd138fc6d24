/* dcr-batch-view.c — the batch page. Intake and the report run in a worker
 * thread (dcr-report.h); each finished file comes back to the main thread
 * as a small update that replaces its row in the queue, so the page stays
 * responsive however many files there are. */
#include "dcr-config.h"
#include "dcr-batch-view.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>

/* ---- one row of the queue ---- */

#define DCR_TYPE_BATCH_ROW (dcr_batch_row_get_type ())
G_DECLARE_FINAL_TYPE (DcrBatchRow, dcr_batch_row, DCR, BATCH_ROW, GObject)

struct _DcrBatchRow {
  GObject parent_instance;
  guint index;
  char *path, *name, *status, *verdict, *p_fake, *anomaly, *tooltip;
  const char *verdict_class; /* CSS class of the verdict cell, or NULL */
};

G_DEFINE_FINAL_TYPE (DcrBatchRow, dcr_batch_row, G_TYPE_OBJECT)

static void
dcr_batch_row_finalize (GObject *object)
{
  DcrBatchRow *row = DCR_BATCH_ROW (object);
  g_free (row->path);
  g_free (row->name);
  g_free (row->status);
  g_free (row->verdict);
  g_free (row->p_fake);
  g_free (row->anomaly);
  g_free (row->tooltip);
  G_OBJECT_CLASS (dcr_batch_row_parent_class)->finalize (object);
}

static void
dcr_batch_row_class_init (DcrBatchRowClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dcr_batch_row_finalize;
}

static void
dcr_batch_row_init (DcrBatchRow *row)
{
}

char *
dcr_batch_row_tooltip (const DcrReportItem *it)
{
  if (it->status == DCR_REPORT_ITEM_REJECTED)
    return g_strdup_printf ("%s\n%s", it->path, it->reason);
  if (it->status != DCR_REPORT_ITEM_ANALYSED)
    return g_strdup (it->path);
  /* where a partial fake would be: the forensic CNN's highest block (the
   * stronger evidence), else the tile head's highest tile */
  if (it->has_top_block)
    return g_strdup_printf ("%s\nMost suspicious region (the CNN's highest block, %" G_GINT64_FORMAT
                            " × %" G_GINT64_FORMAT " px) at (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "): p = %.2f",
                            it->path, it->top_block[2], it->top_block[3], it->top_block[0], it->top_block[1],
                            it->top_block_p);
  if (it->has_top_tile)
    return g_strdup_printf ("%s\nMost suspicious 48 × 48 tile at (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "): %.2f",
                            it->path, it->top_tile[0], it->top_tile[1], it->top_tile_p);
  return g_strdup (it->path);
}

static DcrBatchRow *
row_new (guint index, const DcrReportItem *it)
{
  DcrBatchRow *row = g_object_new (DCR_TYPE_BATCH_ROW, NULL);
  row->index = index;
  row->path = g_strdup (it->path);
  row->name = g_path_get_basename (it->path);
  row->tooltip = dcr_batch_row_tooltip (it);
  switch (it->status)
    {
    case DCR_REPORT_ITEM_QUEUED:
      row->status = g_strdup ("Queued");
      break;
    case DCR_REPORT_ITEM_REJECTED:
      row->status = g_strdup_printf ("Rejected: %s", it->reason);
      break;
    case DCR_REPORT_ITEM_ANALYSED:
      /* the default model's blind spot for smooth images (dcr-detail.h) */
      row->status = g_strdup_printf ("%s · %u × %u%s", it->format, it->width, it->height,
                                     dcr_detail_is_low (it->detail) ? " · little fine detail: weak evidence" : "");
      row->verdict = g_ascii_strup (dcr_verdict_name (it->verdict), -1);
      row->verdict_class = it->verdict == DCR_VERDICT_REAL ? "success"
                           : it->verdict == DCR_VERDICT_FAKE ? "error" : "warning";
      row->p_fake = g_strdup_printf ("%.3f", it->p_fake);
      row->anomaly = g_strdup_printf ("%.3f", it->anomaly);
      break;
    }
  return row;
}

/* ---- the view ---- */

struct _DcrBatchView {
  AdwBin parent_instance;
  GtkLabel *title_label, *status_label;
  GtkProgressBar *progress_bar;
  GtkColumnView *column_view;
  GtkButton *cancel_button, *open_button;
  GtkWidget *case_box;
  GtkEntry *case_entry, *exhibit_entry, *examiner_entry;
  GSettings *settings;

  GListStore *queue;
  GtkNoSelection *selection;
  struct _Job *job;          /* the batch in flight or last run */
  GCancellable *cancellable;
  DcrBatchState state;
  char *report_dir;          /* once written */
  char *status_text;
  gint64 analysis_start_us;
};

G_DEFINE_FINAL_TYPE (DcrBatchView, dcr_batch_view, ADW_TYPE_BIN)

enum { SIGNAL_OPEN_FILE, N_SIGNALS };
static guint signals[N_SIGNALS];

/* Shared by the worker and the updates it posts; freed with the last ref. */
typedef struct _Job {
  DcrReport *report;
  GPtrArray *inputs;  /* paths */
  char *out_dir;
  GApplication *app;  /* held while the job runs, so that quitting waits for
                       * a cancelled report to remove its temporary folder */
} Job;

static void
job_clear (gpointer data)
{
  Job *job = data;
  dcr_report_free (job->report);
  g_ptr_array_unref (job->inputs);
  g_free (job->out_dir);
  g_clear_object (&job->app);
}

static void
job_unref (Job *job)
{
  g_rc_box_release_full (job, job_clear);
}

typedef struct {
  DcrBatchView *view;
  Job *job;
  int phase;     /* a DcrReportPhase, or -1: intake finished */
  guint index, done, total;
} Update;

static void
update_free (gpointer data)
{
  Update *u = data;
  g_object_unref (u->view);
  job_unref (u->job);
  g_free (u);
}

static void
set_status (DcrBatchView *self, const char *text)
{
  g_free (self->status_text);
  self->status_text = g_strdup (text);
  gtk_label_set_label (self->status_label, text);
}

static char *
eta_text (double seconds)
{
  if (!isfinite (seconds) || seconds < 0)
    return g_strdup ("");
  guint s = (guint) (seconds + 0.5);
  if (s >= 3600)
    return g_strdup_printf (", about %u h %02u min left", s / 3600, s % 3600 / 60);
  if (s >= 60)
    return g_strdup_printf (", about %u min %02u s left", s / 60, s % 60);
  return g_strdup_printf (", about %u s left", s);
}

static gboolean
apply_update (gpointer data)
{
  Update *u = data;
  DcrBatchView *self = u->view;
  if (u->job != self->job)
    return G_SOURCE_REMOVE; /* from a batch since replaced */
  guint n = dcr_report_n_items (u->job->report);
  if (u->phase < 0)
    {
      /* intake done: the whole queue, every file "Queued" (or rejected at intake) */
      g_autoptr (GPtrArray) rows = g_ptr_array_new_with_free_func (g_object_unref);
      for (guint i = 0; i < n; i++)
        g_ptr_array_add (rows, row_new (i, dcr_report_get_item (u->job->report, i)));
      g_list_store_splice (self->queue, 0, g_list_model_get_n_items (G_LIST_MODEL (self->queue)), rows->pdata,
                           rows->len);
      g_autofree char *s = g_strdup_printf ("%u file(s) queued; loading the detector…", n);
      set_status (self, s);
      return G_SOURCE_REMOVE;
    }
  switch ((DcrReportPhase) u->phase)
    {
    case DCR_REPORT_PHASE_LOADING:
      break;
    case DCR_REPORT_PHASE_ANALYSING:
      {
        if (!self->analysis_start_us)
          self->analysis_start_us = g_get_monotonic_time ();
        if (u->index < g_list_model_get_n_items (G_LIST_MODEL (self->queue)))
          {
            g_autoptr (DcrBatchRow) row = row_new (u->index, dcr_report_get_item (u->job->report, u->index));
            g_list_store_splice (self->queue, u->index, 1, (gpointer *) &row, 1);
          }
        double el = (g_get_monotonic_time () - self->analysis_start_us) / 1e6;
        double rate = el > 0.5 ? u->done / el : NAN;
        g_autofree char *eta = eta_text (rate > 0 ? (u->total - u->done) / rate : NAN);
        g_autofree char *s = isfinite (rate)
                                 ? g_strdup_printf ("%u of %u analysed · %.1f images/s%s", u->done, u->total, rate, eta)
                                 : g_strdup_printf ("%u of %u analysed", u->done, u->total);
        set_status (self, s);
        gtk_progress_bar_set_fraction (self->progress_bar, u->total ? (double) u->done / u->total : 0);
        g_autofree char *frac = g_strdup_printf ("%u / %u", u->done, u->total);
        gtk_progress_bar_set_text (self->progress_bar, frac);
        break;
      }
    case DCR_REPORT_PHASE_VERIFYING:
      set_status (self, "Hashing the evidence again to check it did not change…");
      break;
    case DCR_REPORT_PHASE_WRITING:
      set_status (self, "Writing the PDF, CSV and JSON…");
      break;
    }
  return G_SOURCE_REMOVE;
}

static void
post_update (Job *job, DcrBatchView *view, int phase, guint index, guint done, guint total)
{
  Update *u = g_new (Update, 1);
  *u = (Update) { g_object_ref (view), g_rc_box_acquire (job), phase, index, done, total };
  /* an idle source, never g_main_context_invoke: that would run the update
   * right here, in the worker, whenever the main thread is between
   * iterations */
  g_idle_add_full (G_PRIORITY_DEFAULT, apply_update, u, update_free);
}

typedef struct {
  Job *job;
  DcrBatchView *view;
} Worker;

static void
on_progress (DcrReportPhase phase, guint index, guint done, guint total, gpointer user_data)
{
  Worker *w = user_data;
  post_update (w->job, w->view, phase, index, done, total);
}

/* The task's data: its own job reference, and the view unreferenced —
 * the Finish of the task's callback keeps it alive, and every reference
 * the worker takes on it is released on the main thread (update_free). */
static void
worker_free (Worker *w)
{
  job_unref (w->job);
  g_free (w);
}

static void
report_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Worker w = *(Worker *) task_data;
  g_autoptr (GError) err = NULL;
  if (!dcr_report_add_inputs (w.job->report, (const char *const *) w.job->inputs->pdata, w.job->inputs->len, &err))
    {
      g_task_return_error (task, g_steal_pointer (&err));
      return;
    }
  post_update (w.job, w.view, -1, 0, 0, 0);
  if (!dcr_report_write (w.job->report, w.job->out_dir, on_progress, &w, cancellable, &err))
    g_task_return_error (task, g_steal_pointer (&err));
  else
    g_task_return_boolean (task, TRUE);
}

static void
set_running (DcrBatchView *self, gboolean running)
{
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "batch.cancel", running);
  gtk_widget_set_visible (GTK_WIDGET (self->cancel_button), running);
  gtk_widget_set_visible (GTK_WIDGET (self->open_button), !running && self->report_dir);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "batch.open-folder", !running && self->report_dir);
  /* what a running report prints was fixed when it started */
  gtk_widget_set_sensitive (self->case_box, !running);
}

/* The task's callback data: references released on the main thread. */
typedef struct {
  DcrBatchView *view;
  Job *job;
} Finish;

static void
on_finished (GObject *source, GAsyncResult *res, gpointer data)
{
  Finish *fin = data;
  g_autoptr (DcrBatchView) self = fin->view;
  Job *job = fin->job;
  g_free (fin);
  g_autoptr (GError) err = NULL;
  gboolean ok = g_task_propagate_boolean (G_TASK (res), &err);
  if (job->app)
    {
      g_application_release (job->app);
      g_clear_object (&job->app);
    }
  if (job != self->job)
    {
      job_unref (job);
      return;
    }
  g_clear_object (&self->cancellable);
  if (ok)
    {
      guint analysed, rejected, changed;
      dcr_report_get_counts (job->report, &analysed, &rejected, &changed);
      self->report_dir = g_strdup (job->out_dir);
      self->state = DCR_BATCH_DONE;
      g_autofree char *s = g_strdup_printf ("Report written: %u analysed, %u rejected%s — %s", analysed, rejected,
                                            changed ? ", SOME FILES CHANGED during the run" : "", job->out_dir);
      set_status (self, s);
      gtk_progress_bar_set_fraction (self->progress_bar, 1);
    }
  else if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      self->state = DCR_BATCH_CANCELLED;
      set_status (self, "Cancelled — no report was written");
    }
  else
    {
      self->state = DCR_BATCH_FAILED;
      g_autofree char *s = g_strdup_printf ("No report was written: %s", err->message);
      set_status (self, s);
    }
  set_running (self, FALSE);
  job_unref (job);
}

void
dcr_batch_view_cancel (DcrBatchView *self)
{
  g_return_if_fail (DCR_IS_BATCH_VIEW (self));
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
}

static char *
new_report_dir (const char *report_folder, GError **error)
{
  g_autofree char *base = NULL;
  if (report_folder && *report_folder)
    base = g_strdup (report_folder);
  else
    {
      const char *docs = g_get_user_special_dir (G_USER_DIRECTORY_DOCUMENTS);
      base = g_build_filename (docs ? docs : g_get_home_dir (), "DCR Reports", NULL);
    }
  if (g_mkdir_with_parents (base, 0755) != 0)
    {
      int e = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "cannot create the report folder %s: %s", base,
                   g_strerror (e));
      return NULL;
    }
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "Batch %Y-%m-%d %H.%M.%S");
  for (guint i = 1; i < 100; i++)
    {
      g_autofree char *name = i == 1 ? g_strdup (stamp) : g_strdup_printf ("%s (%u)", stamp, i);
      char *dir = g_build_filename (base, name, NULL);
      if (!g_file_test (dir, G_FILE_TEST_EXISTS))
        return dir;
      g_free (dir);
    }
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "too many reports named %s in %s", stamp, base);
  return NULL;
}

void
dcr_batch_view_start (DcrBatchView *self, GFile **files, guint n, const DcrReportOptions *opts,
                      const char *report_folder)
{
  g_return_if_fail (DCR_IS_BATCH_VIEW (self));
  dcr_batch_view_cancel (self);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->report_dir, g_free);
  g_list_store_remove_all (self->queue);
  self->analysis_start_us = 0;
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  gtk_progress_bar_set_text (self->progress_bar, NULL);

  Job *job = g_rc_box_new0 (Job);
  job->report = dcr_report_new (opts);
  job->inputs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) err = NULL;
  for (guint i = 0; i < n; i++)
    {
      char *path = g_file_get_path (files[i]);
      if (!path)
        {
          g_autofree char *uri = g_file_get_uri (files[i]);
          g_set_error (&err, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "%s is not a local file: copy it here first",
                       uri);
          break;
        }
      g_ptr_array_add (job->inputs, path);
    }
  if (!err)
    job->out_dir = new_report_dir (report_folder, &err);
  if (self->job)
    job_unref (self->job);
  self->job = job;
  if (err)
    {
      self->state = DCR_BATCH_FAILED;
      g_autofree char *s = g_strdup_printf ("No report was written: %s", err->message);
      set_status (self, s);
      set_running (self, FALSE);
      return;
    }
  g_autofree char *first = g_file_get_basename (files[0]);
  g_autofree char *title = n > 1 ? g_strdup_printf ("Batch Report: %s and %u more", first, n - 1)
                                 : g_strdup_printf ("Batch Report: %s", first);
  gtk_label_set_label (self->title_label, title);
  set_status (self, "Looking for images…");
  self->state = DCR_BATCH_RUNNING;
  self->cancellable = g_cancellable_new ();
  set_running (self, TRUE);
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkApplication *app = GTK_IS_WINDOW (root) ? gtk_window_get_application (GTK_WINDOW (root)) : NULL;
  if (app)
    {
      job->app = g_object_ref (G_APPLICATION (app));
      g_application_hold (job->app);
    }
  /* No source object: the task's last reference may go in the worker, and
   * the view must never be finalised there. */
  Finish *fin = g_new (Finish, 1);
  *fin = (Finish) { g_object_ref (self), g_rc_box_acquire (job) };
  g_autoptr (GTask) task = g_task_new (NULL, self->cancellable, on_finished, fin);
  g_task_set_source_tag (task, dcr_batch_view_start);
  /* a cancel that comes after the report was renamed into place cannot undo
   * it: the result is what the thread returns, so the page says "written" */
  g_task_set_check_cancellable (task, FALSE);
  Worker *w = g_new (Worker, 1);
  *w = (Worker) { g_rc_box_acquire (job), self };
  g_task_set_task_data (task, w, (GDestroyNotify) worker_free);
  g_task_run_in_thread (task, report_thread);
}

DcrBatchState
dcr_batch_view_get_state (DcrBatchView *self)
{
  return self->state;
}

const char *
dcr_batch_view_get_report_dir (DcrBatchView *self)
{
  return self->report_dir;
}

const char *
dcr_batch_view_get_status_text (DcrBatchView *self)
{
  return self->status_text;
}

GListModel *
dcr_batch_view_get_queue (DcrBatchView *self)
{
  return G_LIST_MODEL (self->queue);
}

void
dcr_batch_view_get_row (DcrBatchView *self, guint i, const char **name, const char **status, const char **verdict)
{
  g_autoptr (DcrBatchRow) row = g_list_model_get_item (G_LIST_MODEL (self->queue), i);
  g_return_if_fail (row != NULL);
  *name = row->name;
  *status = row->status;
  *verdict = row->verdict ? row->verdict : "";
}

const char *
dcr_batch_view_get_row_tooltip (DcrBatchView *self, guint i)
{
  g_autoptr (DcrBatchRow) row = g_list_model_get_item (G_LIST_MODEL (self->queue), i);
  g_return_val_if_fail (row != NULL, NULL);
  return row->tooltip; /* the queue keeps the row */
}

void
dcr_batch_view_activate_row (DcrBatchView *self, guint i)
{
  g_autoptr (DcrBatchRow) row = g_list_model_get_item (G_LIST_MODEL (self->queue), i);
  if (!row)
    return;
  g_autoptr (GFile) file = g_file_new_for_path (row->path);
  g_signal_emit (self, signals[SIGNAL_OPEN_FILE], 0, file);
}

static void
on_activate (GtkColumnView *view, guint position, DcrBatchView *self)
{
  dcr_batch_view_activate_row (self, position);
}

/* ---- cells ---- */

static void
setup_label (GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  GtkWidget *label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_MIDDLE);
  gtk_list_item_set_child (item, label);
}

static void
setup_number (GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  GtkWidget *label = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (label), 1);
  gtk_widget_add_css_class (label, "numeric");
  gtk_list_item_set_child (item, label);
}

static void
bind_text (GtkListItem *item, const char *text, const char *tooltip)
{
  GtkWidget *label = gtk_list_item_get_child (item);
  gtk_label_set_label (GTK_LABEL (label), text ? text : "");
  gtk_widget_set_tooltip_text (label, tooltip);
}

static void
bind_index (GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  DcrBatchRow *row = gtk_list_item_get_item (item);
  g_autofree char *s = g_strdup_printf ("%u", row->index + 1);
  bind_text (item, s, NULL);
}

static void
bind_file (GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  DcrBatchRow *row = gtk_list_item_get_item (item);
  bind_text (item, row->name, row->tooltip);
}

static void
bind_status (GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  DcrBatchRow *row = gtk_list_item_get_item (item);
  bind_text (item, row->status, row->tooltip);
}

static void
bind_verdict (GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  DcrBatchRow *row = gtk_list_item_get_item (item);
  GtkWidget *label = gtk_list_item_get_child (item);
  bind_text (item, row->verdict, NULL);
  const char *classes[] = { "success", "error", "warning" };
  for (guint i = 0; i < G_N_ELEMENTS (classes); i++)
    gtk_widget_remove_css_class (label, classes[i]);
  if (row->verdict_class)
    gtk_widget_add_css_class (label, row->verdict_class);
}

static void
bind_p_fake (GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  DcrBatchRow *row = gtk_list_item_get_item (item);
  bind_text (item, row->p_fake, NULL);
}

static void
bind_anomaly (GtkSignalListItemFactory *f, GtkListItem *item, gpointer data)
{
  DcrBatchRow *row = gtk_list_item_get_item (item);
  bind_text (item, row->anomaly, NULL);
}

/* ---- actions ---- */

static void
cancel_action (GtkWidget *widget, const char *name, GVariant *param)
{
  dcr_batch_view_cancel (DCR_BATCH_VIEW (widget));
}

static void
on_launched (GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr (GError) err = NULL;
  if (!g_app_info_launch_default_for_uri_finish (res, &err))
    g_warning ("cannot open the report folder: %s", err->message);
}

static void
open_folder_action (GtkWidget *widget, const char *name, GVariant *param)
{
  DcrBatchView *self = DCR_BATCH_VIEW (widget);
  if (!self->report_dir)
    return;
  g_autoptr (GFile) dir = g_file_new_for_path (self->report_dir);
  g_autofree char *uri = g_file_get_uri (dir);
  g_app_info_launch_default_for_uri_async (uri, NULL, NULL, on_launched, NULL);
}

/* Leaving the window (it closes) stops the batch: no report half made. */
static void
dcr_batch_view_unroot (GtkWidget *widget)
{
  dcr_batch_view_cancel (DCR_BATCH_VIEW (widget));
  GTK_WIDGET_CLASS (dcr_batch_view_parent_class)->unroot (widget);
}

static void
dcr_batch_view_dispose (GObject *object)
{
  DcrBatchView *self = DCR_BATCH_VIEW (object);
  dcr_batch_view_cancel (self);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->job, job_unref);
  g_clear_object (&self->settings);
  gtk_widget_dispose_template (GTK_WIDGET (self), DCR_TYPE_BATCH_VIEW);
  G_OBJECT_CLASS (dcr_batch_view_parent_class)->dispose (object);
}

static void
dcr_batch_view_finalize (GObject *object)
{
  DcrBatchView *self = DCR_BATCH_VIEW (object);
  g_clear_object (&self->queue);
  g_free (self->report_dir);
  g_free (self->status_text);
  G_OBJECT_CLASS (dcr_batch_view_parent_class)->finalize (object);
}

static void
dcr_batch_view_class_init (DcrBatchViewClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = dcr_batch_view_dispose;
  G_OBJECT_CLASS (klass)->finalize = dcr_batch_view_finalize;
  widget_class->unroot = dcr_batch_view_unroot;
  signals[SIGNAL_OPEN_FILE] = g_signal_new ("open-file", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                            NULL, NULL, G_TYPE_NONE, 1, G_TYPE_FILE);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/dcrforensics/DcrForensics/dcr-batch-view.ui");
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, title_label);
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, status_label);
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, column_view);
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, cancel_button);
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, open_button);
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, case_box);
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, case_entry);
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, exhibit_entry);
  gtk_widget_class_bind_template_child (widget_class, DcrBatchView, examiner_entry);
  gtk_widget_class_bind_template_callback (widget_class, setup_label);
  gtk_widget_class_bind_template_callback (widget_class, setup_number);
  gtk_widget_class_bind_template_callback (widget_class, bind_index);
  gtk_widget_class_bind_template_callback (widget_class, bind_file);
  gtk_widget_class_bind_template_callback (widget_class, bind_status);
  gtk_widget_class_bind_template_callback (widget_class, bind_verdict);
  gtk_widget_class_bind_template_callback (widget_class, bind_p_fake);
  gtk_widget_class_bind_template_callback (widget_class, bind_anomaly);
  gtk_widget_class_bind_template_callback (widget_class, on_activate);
  gtk_widget_class_install_action (widget_class, "batch.cancel", NULL, cancel_action);
  gtk_widget_class_install_action (widget_class, "batch.open-folder", NULL, open_folder_action);
}

static void
dcr_batch_view_init (DcrBatchView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->queue = g_list_store_new (DCR_TYPE_BATCH_ROW);
  self->selection = gtk_no_selection_new (g_object_ref (G_LIST_MODEL (self->queue)));
  gtk_column_view_set_model (self->column_view, GTK_SELECTION_MODEL (self->selection));
  g_object_unref (self->selection); /* the column view holds it */
  self->settings = g_settings_new (DCR_APP_ID);
  g_settings_bind (self->settings, "report-case", self->case_entry, "text", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "report-exhibit", self->exhibit_entry, "text", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "report-examiner", self->examiner_entry, "text", G_SETTINGS_BIND_DEFAULT);
  set_running (self, FALSE);
}

/* ---- choosing folders ---- */

typedef struct {
  DcrBatchChosenFunc done;
  GObject *user_data;
} Choice;

static void
choice_finish (Choice *c, GListModel *files)
{
  guint n = files ? g_list_model_get_n_items (files) : 0;
  if (n)
    {
      g_autoptr (GPtrArray) arr = g_ptr_array_new_with_free_func (g_object_unref);
      for (guint i = 0; i < n; i++)
        g_ptr_array_add (arr, g_list_model_get_item (files, i));
      c->done ((GFile **) arr->pdata, n, c->user_data);
    }
  g_object_unref (c->user_data);
  g_free (c);
}

#if GTK_CHECK_VERSION(4, 10, 0)
G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer API in its version guard: see app/meson.build */
static void
on_folders_chosen (GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GListModel) files = gtk_file_dialog_select_multiple_folders_finish (GTK_FILE_DIALOG (source), res, &err);
  if (!files && !g_error_matches (err, GTK_DIALOG_ERROR, GTK_DIALOG_ERROR_DISMISSED))
    g_warning ("cannot choose folders: %s", err->message);
  choice_finish (data, files);
}
G_GNUC_END_IGNORE_DEPRECATIONS
#else
static void
on_chooser_response (GtkNativeDialog *dialog, int response, gpointer data)
{
  g_autoptr (GListModel) files = NULL;
  if (response == GTK_RESPONSE_ACCEPT)
    files = gtk_file_chooser_get_files (GTK_FILE_CHOOSER (dialog));
  choice_finish (data, files);
  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
}
#endif

void
dcr_batch_view_choose_inputs (GtkWindow *parent, DcrBatchChosenFunc done, gpointer user_data)
{
  Choice *c = g_new (Choice, 1);
  *c = (Choice) { done, g_object_ref (user_data) };
#if GTK_CHECK_VERSION(4, 10, 0)
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer API in its version guard: see app/meson.build */
  g_autoptr (GtkFileDialog) dialog = gtk_file_dialog_new ();
  gtk_file_dialog_set_title (dialog, "New Batch Report: Choose Folders of Evidence");
  gtk_file_dialog_set_accept_label (dialog, "_Analyse");
  gtk_file_dialog_select_multiple_folders (dialog, parent, NULL, on_folders_chosen, c);
  G_GNUC_END_IGNORE_DEPRECATIONS
#else
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new ("New Batch Report: Choose Folders of Evidence", parent,
                                                               GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Analyse",
                                                               "_Cancel");
  gtk_file_chooser_set_select_multiple (GTK_FILE_CHOOSER (chooser), TRUE);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect (chooser, "response", G_CALLBACK (on_chooser_response), c);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
#endif
}
