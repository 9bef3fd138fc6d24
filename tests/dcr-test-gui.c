/* dcr-test-gui.c — see the header. */
#include "dcr-test-gui.h"

#include <stdio.h>
#include <string.h>

gboolean
dcr_test_gui_init (int *argc, char ***argv)
{
  if (!g_getenv ("DISPLAY") && !g_getenv ("WAYLAND_DISPLAY"))
    {
      printf ("1..0 # SKIP no display: run the suite under xvfb-run (see README)\n");
      return FALSE;
    }
  gtk_disable_setlocale ();
  g_test_init (argc, argv, NULL);
  gtk_init ();
  return TRUE;
}

void
dcr_test_gui_run (GApplication *app, GCallback on_activate, gpointer data)
{
  g_signal_connect_after (app, "activate", on_activate, data);
  g_application_set_flags (app, G_APPLICATION_NON_UNIQUE);
  char *argv[] = { (char *) "dcr-forensics", NULL };
  g_assert_cmpint (g_application_run (app, 1, argv), ==, 0);
}

void
dcr_test_gui_spin (guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < until)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (2000);
    }
}

GdkTexture *
dcr_test_gui_snapshot (GtkWidget *widget, const char *path)
{
  GtkWidget *win = GTK_WIDGET (gtk_widget_get_root (widget));
  g_assert_nonnull (win);
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (win);
  /* On a loaded machine the window may be between frames (nothing to draw
   * yet): let the main loop run until it draws, for at most 10 s. */
  g_autoptr (GskRenderNode) node = NULL;
  int w = 0, h = 0;
  for (gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;;)
    {
      w = gtk_widget_get_width (win);
      h = gtk_widget_get_height (win);
      GtkSnapshot *snap = gtk_snapshot_new ();
      gdk_paintable_snapshot (paintable, snap, w, h);
      node = gtk_snapshot_free_to_node (snap);
      if (node || g_get_monotonic_time () > deadline)
        break;
      dcr_test_gui_spin (50);
    }
  g_assert_nonnull (node);
  GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (win));
  GdkTexture *tex = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  g_assert_nonnull (tex);
  if (path)
    {
      g_assert_true (gdk_texture_save_to_png (tex, path));
      g_test_message ("screenshot: %s", path);
    }
  return tex;
}

GdkTexture *
dcr_test_gui_snapshot_named (GtkWidget *widget, const char *dir, const char *name)
{
  g_autofree char *file = g_strdup_printf ("%s.png", name);
  g_autofree char *path = g_build_filename (dir, file, NULL);
  return dcr_test_gui_snapshot (widget, path);
}

GtkWidget *
dcr_test_gui_find_match (GtkWidget *root, DcrTestGuiMatch match, gconstpointer data)
{
  if (match (root, data))
    return root;
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = dcr_test_gui_find_match (c, match, data);
      if (found)
        return found;
    }
  return NULL;
}

static gboolean
is_of_type (GtkWidget *w, gconstpointer type)
{
  return G_TYPE_CHECK_INSTANCE_TYPE (w, *(const GType *) type);
}

GtkWidget *
dcr_test_gui_find (GtkWidget *root, GType type)
{
  return dcr_test_gui_find_match (root, is_of_type, &type);
}

static gboolean
is_label_with (GtkWidget *w, gconstpointer text)
{
  return GTK_IS_LABEL (w) && strstr (gtk_label_get_text (GTK_LABEL (w)), text);
}

GtkWidget *
dcr_test_gui_find_label (GtkWidget *root, const char *text)
{
  return dcr_test_gui_find_match (root, is_label_with, text);
}

void
dcr_test_gui_wait_while_busy (DcrWindow *win, guint timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;
  while (g_strcmp0 (dcr_window_get_page (win), "busy") == 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

static gboolean
is_stack_in_transition (GtkWidget *w, gconstpointer data)
{
  (void) data;
  return GTK_IS_STACK (w) && gtk_stack_get_transition_running (GTK_STACK (w));
}

void
dcr_test_gui_wait_transitions (GtkWidget *root, guint timeout_s)
{
  /* A fixed wait is not enough on a loaded machine: a screenshot taken
   * during a crossfade blends two pages' colours. */
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;
  while (dcr_test_gui_find_match (root, is_stack_in_transition, NULL))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      dcr_test_gui_spin (20);
    }
}
