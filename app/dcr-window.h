/* dcr-window.h — the main window. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define DCR_TYPE_WINDOW (dcr_window_get_type ())
G_DECLARE_FINAL_TYPE (DcrWindow, dcr_window, DCR, WINDOW, AdwApplicationWindow)

DcrWindow *dcr_window_new (AdwApplication *app);

G_END_DECLS
