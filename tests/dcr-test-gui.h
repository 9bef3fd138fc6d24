/* dcr-test-gui.h — what the GTK tests (batch, bank view, inspect,
 * screenshots) do to a running window: let the main loop run, render a
 * window to a texture or a PNG, find a widget in the tree. */
#pragma once

#include <gtk/gtk.h>

#include "dcr-window.h"

G_BEGIN_DECLS

/* g_test_init and gtk_init for a test that needs a display. Without one
 * (no DISPLAY or WAYLAND_DISPLAY) prints a TAP plan that skips everything
 * and returns FALSE: main() then returns 0. */
gboolean dcr_test_gui_init (int *argc, char ***argv);
/* Runs `app` as `dcr-forensics` without arguments (non-unique), with
 * `on_activate` (a GApplication::activate handler) connected after the
 * class handler with `data`; fails the test unless it exits with 0. */
void dcr_test_gui_run (GApplication *app, GCallback on_activate, gpointer data);
/* Runs the default main context for `ms` milliseconds (layout, transitions,
 * a frame, idle callbacks). */
void dcr_test_gui_spin (guint ms);
/* Runs the main loop while the window shows its "busy" page (an analysis
 * in flight), failing the test after `timeout_s` seconds. */
void dcr_test_gui_wait_while_busy (DcrWindow *win, guint timeout_s);

/* Runs the main loop until no GtkStack under `root` is in a transition
 * (fails after `timeout_s`). */
void dcr_test_gui_wait_transitions (GtkWidget *root, guint timeout_s);
/* Renders the window `widget` is in (its root) and returns the pixels; with
 * `path` also saves them there as a PNG and says so in a test message. */
GdkTexture *dcr_test_gui_snapshot (GtkWidget *widget, const char *path);
/* dcr_test_gui_snapshot to DIR/NAME.png. */
GdkTexture *dcr_test_gui_snapshot_named (GtkWidget *widget, const char *dir, const char *name);
/* Whether `w` is the widget looked for; `data` as given to find_match. */
typedef gboolean (*DcrTestGuiMatch) (GtkWidget *w, gconstpointer data);
/* The first widget in the tree under `root` (root included, depth first)
 * that `match` accepts, or NULL. */
GtkWidget *dcr_test_gui_find_match (GtkWidget *root, DcrTestGuiMatch match, gconstpointer data);
/* The first widget of `type` in the tree under `root` (root included,
 * depth first), or NULL. */
GtkWidget *dcr_test_gui_find (GtkWidget *root, GType type);
/* The first GtkLabel under `root` whose text contains `text`, or NULL. */
GtkWidget *dcr_test_gui_find_label (GtkWidget *root, const char *text);

G_END_DECLS
