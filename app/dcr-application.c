/* dcr-application.c — application lifetime: one main window, app-level
 * actions (quit, about), files from the command line opened in the window. */
#include "dcr-config.h"
#include "dcr-application.h"
#include "dcr-window.h"

struct _DcrApplication {
  AdwApplication parent_instance;
};

G_DEFINE_FINAL_TYPE (DcrApplication, dcr_application, ADW_TYPE_APPLICATION)

static void
dcr_application_activate (GApplication *app)
{
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (app));
  if (!win)
    win = GTK_WINDOW (dcr_window_new (ADW_APPLICATION (app)));
  gtk_window_present (win);
}

static void
dcr_application_open (GApplication *app, GFile **files, int n_files, const char *hint)
{
  dcr_application_activate (app);
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (app));
  dcr_window_open_files (DCR_WINDOW (win), files, n_files);
}

static void
on_quit (GSimpleAction *action, GVariant *param, gpointer app)
{
  g_application_quit (G_APPLICATION (app));
}

static void
on_about (GSimpleAction *action, GVariant *param, gpointer app)
{
  const char *developers[] = { "DCR Forensics developers", NULL };
  GtkWidget *about = g_object_new (ADW_TYPE_ABOUT_WINDOW,
                                   "transient-for", gtk_application_get_active_window (app),
                                   "application-name", "DCR Forensics",
                                   "application-icon", DCR_APP_ID,
                                   "version", DCR_VERSION,
                                   "developers", developers,
                                   "license-type", GTK_LICENSE_GPL_3_0,
                                   "comments", "Tells whether an image is a deepfake or AI-generated, and shows why.",
                                   NULL);
  gtk_window_present (GTK_WINDOW (about));
}

static void
dcr_application_startup (GApplication *app)
{
  G_APPLICATION_CLASS (dcr_application_parent_class)->startup (app);
  static const GActionEntry entries[] = {
    { "quit", on_quit },
    { "about", on_about },
  };
  g_action_map_add_action_entries (G_ACTION_MAP (app), entries, G_N_ELEMENTS (entries), app);
  const char *quit[] = { "<Ctrl>q", NULL };
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "app.quit", quit);
}

static void
dcr_application_class_init (DcrApplicationClass *klass)
{
  G_APPLICATION_CLASS (klass)->activate = dcr_application_activate;
  G_APPLICATION_CLASS (klass)->startup = dcr_application_startup;
  G_APPLICATION_CLASS (klass)->open = dcr_application_open;
}

static void
dcr_application_init (DcrApplication *self)
{
}

DcrApplication *
dcr_application_new (void)
{
  return g_object_new (DCR_TYPE_APPLICATION,
                       "application-id", DCR_APP_ID,
                       "flags", G_APPLICATION_HANDLES_OPEN,
                       "resource-base-path", "/io/github/dcrforensics/DcrForensics",
                       NULL);
}
