/* dcr-window.h — the main window. */
#pragma once

#include <adwaita.h>

#include "dcr-inspect-view.h"

G_BEGIN_DECLS

#define DCR_TYPE_WINDOW (dcr_window_get_type ())
G_DECLARE_FINAL_TYPE (DcrWindow, dcr_window, DCR, WINDOW, AdwApplicationWindow)

DcrWindow *dcr_window_new (AdwApplication *app);
/* Analyses `file` (cancelling the one in flight) and shows the result. */
void dcr_window_open_file (DcrWindow *self, GFile *file);
/* What a drop or the command line hands over: the first file is analysed. */
void dcr_window_open_files (DcrWindow *self, GFile **files, guint n);

/* The visible page ("start", "no-model", "busy", "result") and the inspect
 * view, for tests. */
const char *dcr_window_get_page (DcrWindow *self);
DcrInspectView *dcr_window_get_inspect_view (DcrWindow *self);

G_END_DECLS
