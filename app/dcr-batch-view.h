/* dcr-batch-view.h — the batch page: files and folders in, a queue with each
 * file's status and verdict, overall progress with ETA, cancel, and the
 * report folder (dcr-report.h) at the end. */
#pragma once

#include <adwaita.h>

#include "dcr-report.h"

G_BEGIN_DECLS

#define DCR_TYPE_BATCH_VIEW (dcr_batch_view_get_type ())
G_DECLARE_FINAL_TYPE (DcrBatchView, dcr_batch_view, DCR, BATCH_VIEW, AdwBin)

typedef enum {
  DCR_BATCH_IDLE,
  DCR_BATCH_RUNNING,
  DCR_BATCH_DONE,
  DCR_BATCH_CANCELLED,
  DCR_BATCH_FAILED,
} DcrBatchState;

/* Starts a report over `files` (files or folders) with the detector in
 * opts (case fields included), into a new folder "Batch YYYY-MM-DD
 * HH.MM.SS" under report_folder (created if need be; NULL or "" → Documents/DCR
 * Reports). A batch still running is cancelled first. */
void dcr_batch_view_start (DcrBatchView *self, GFile **files, guint n, const DcrReportOptions *opts,
                           const char *report_folder);
void dcr_batch_view_cancel (DcrBatchView *self);

DcrBatchState dcr_batch_view_get_state (DcrBatchView *self);
/* The report folder once written (NULL before); the status line; the
 * queue (GListModel of rows, one per input file) for tests. */
const char *dcr_batch_view_get_report_dir (DcrBatchView *self);
const char *dcr_batch_view_get_status_text (DcrBatchView *self);
GListModel *dcr_batch_view_get_queue (DcrBatchView *self);
/* Row i of the queue as shown: file name, status, verdict ("" while queued). */
void dcr_batch_view_get_row (DcrBatchView *self, guint i, const char **name, const char **status,
                             const char **verdict);
/* Row i's tooltip: its path, and the reason it was rejected or its most
 * suspicious region — the forensic CNN's highest block with a CNN, else
 * with a tile head its highest tile (dcr_batch_row_tooltip). */
const char *dcr_batch_view_get_row_tooltip (DcrBatchView *self, guint i);
/* The tooltip of a row for report item `it` (as above). */
char *dcr_batch_row_tooltip (const DcrReportItem *it);
/* What clicking row i does: emits "open-file" with its file. */
void dcr_batch_view_activate_row (DcrBatchView *self, guint i);

/* "New Batch Report…": asks for one or more folders, then calls done with
 * them (not when the analyst closes the dialog). user_data is kept alive
 * (a GObject) until then. */
typedef void (*DcrBatchChosenFunc) (GFile **files, guint n, gpointer user_data);
void dcr_batch_view_choose_inputs (GtkWindow *parent, DcrBatchChosenFunc done, gpointer user_data);

G_END_DECLS
