/* dcr-window.c — the main window: for now the start page that invites the
 * analyst to open or drop an image; the inspect view lands here next. */
#include "dcr-config.h"
#include "dcr-window.h"

struct _DcrWindow {
  AdwApplicationWindow parent_instance;
  AdwStatusPage *start_page;
};

G_DEFINE_FINAL_TYPE (DcrWindow, dcr_window, ADW_TYPE_APPLICATION_WINDOW)

static void
dcr_window_class_init (DcrWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dcrforensics/DcrForensics/dcr-window.ui");
  gtk_widget_class_bind_template_child (widget_class, DcrWindow, start_page);
}

static void
dcr_window_init (DcrWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

DcrWindow *
dcr_window_new (AdwApplication *app)
{
  return g_object_new (DCR_TYPE_WINDOW, "application", app, NULL);
}
