/* dcr-window.h — the main window. */
#pragma once

#include <adwaita.h>

#include "dcr-inspect-view.h"
#include "dcr-batch-view.h"

G_BEGIN_DECLS

#define DCR_TYPE_WINDOW (dcr_window_get_type ())
G_DECLARE_FINAL_TYPE (DcrWindow, dcr_window, DCR, WINDOW, AdwApplicationWindow)

DcrWindow *dcr_window_new (AdwApplication *app);
/* Analyses `file` (cancelling the one in flight) and shows the result. */
void dcr_window_open_file (DcrWindow *self, GFile *file);
/* What a drop or the command line hands over: one image is analysed;
 * several files or a folder start a batch report. */
void dcr_window_open_files (DcrWindow *self, GFile **files, guint n);

/* A batch report over files and folders on the "batch" page (what a drop of
 * several files or a folder does). */
void dcr_window_start_batch (DcrWindow *self, GFile **files, guint n);
DcrBatchView *dcr_window_get_batch_view (DcrWindow *self);

/* The visible page ("start", "no-model", "busy", "result", "batch") and the inspect
 * view, for tests. */
const char *dcr_window_get_page (DcrWindow *self);
DcrInspectView *dcr_window_get_inspect_view (DcrWindow *self);

G_END_DECLS
