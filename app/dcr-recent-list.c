/* dcr-recent-list.c — reads GtkRecentManager's list, keeps the entries this
 * application added whose files still exist, newest first, and rebuilds
 * the list and the menu whenever the recent list changes. */
#include "dcr-config.h"
#include "dcr-recent-list.h"

#include <adwaita.h>

/* The name entries are recorded under; other applications' entries are not
 * shown. */
#define RECENT_APP_NAME "DCR Forensics"

struct _DcrRecentList {
  GtkBox parent_instance;
  GtkListBox *list;
  GMenu *menu;
  GtkRecentManager *manager;
  guint n_items;
};

enum {
  SIGNAL_OPEN_FILE,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (DcrRecentList, dcr_recent_list, GTK_TYPE_BOX)

void
dcr_recent_add (GFile *file)
{
  g_return_if_fail (G_IS_FILE (file));
  g_autofree char *uri = g_file_get_uri (file);
  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *type = g_content_type_guess (name, NULL, 0, NULL);
  g_autofree char *mime = g_content_type_get_mime_type (type);
  GtkRecentData data = {
    .display_name = name,
    .mime_type = mime ? mime : (char *) "application/octet-stream",
    .app_name = (char *) RECENT_APP_NAME,
    .app_exec = (char *) "dcr-forensics %u",
  };
  gtk_recent_manager_add_full (gtk_recent_manager_get_default (), uri, &data);
}

gboolean
dcr_recent_contains (GFile *file)
{
  g_autofree char *uri = g_file_get_uri (file);
  g_autoptr (GtkRecentInfo) info = gtk_recent_manager_lookup_item (gtk_recent_manager_get_default (), uri, NULL);
  return info && gtk_recent_info_has_application (info, RECENT_APP_NAME);
}

static int
newest_first (gconstpointer a, gconstpointer b)
{
  GtkRecentInfo *ia = *(GtkRecentInfo **) a, *ib = *(GtkRecentInfo **) b;
  return g_date_time_compare (gtk_recent_info_get_modified (ib), gtk_recent_info_get_modified (ia));
}

static GtkWidget *
make_row (GtkRecentInfo *info)
{
  g_autoptr (GFile) file = g_file_new_for_uri (gtk_recent_info_get_uri (info));
  g_autoptr (GFile) parent = g_file_get_parent (file);
  g_autofree char *dir = parent ? g_file_get_parse_name (parent) : g_strdup ("");
  g_autofree char *when = g_date_time_format (gtk_recent_info_get_modified (info), "%Y-%m-%d %H:%M");
  g_autofree char *subtitle = g_strdup_printf ("%s · opened %s", dir, when);
  GtkWidget *row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), gtk_recent_info_get_display_name (info));
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), gtk_image_new_from_icon_name ("go-next-symbolic"));
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
  g_object_set_data_full (G_OBJECT (row), "dcr-file", g_steal_pointer (&file), g_object_unref);
  return row;
}

static void
rebuild (DcrRecentList *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->list))))
    gtk_list_box_remove (self->list, child);
  if (self->menu)
    g_menu_remove_all (self->menu);

  GList *items = gtk_recent_manager_get_items (self->manager);
  g_autoptr (GPtrArray) ours = g_ptr_array_new ();
  for (GList *l = items; l; l = l->next)
    if (gtk_recent_info_has_application (l->data, RECENT_APP_NAME) && gtk_recent_info_exists (l->data))
      g_ptr_array_add (ours, l->data);
  g_ptr_array_sort (ours, newest_first);
  self->n_items = MIN (ours->len, DCR_RECENT_MAX);
  for (guint i = 0; i < self->n_items; i++)
    {
      GtkRecentInfo *info = g_ptr_array_index (ours, i);
      gtk_list_box_append (self->list, make_row (info));
      if (self->menu)
        {
          g_autoptr (GMenuItem) item = g_menu_item_new (gtk_recent_info_get_display_name (info), NULL);
          g_menu_item_set_action_and_target (item, "win.open-recent", "s", gtk_recent_info_get_uri (info));
          g_menu_append_item (self->menu, item);
        }
    }
  g_list_free_full (items, (GDestroyNotify) gtk_recent_info_unref);
  /* an action nobody installs: the item shows, greyed out */
  if (self->menu && self->n_items == 0)
    g_menu_append (self->menu, "No Recent Images", "win.no-recent-images");
  gtk_widget_set_visible (GTK_WIDGET (self), self->n_items > 0);
}

static void
on_row_activated (GtkListBox *list, GtkListBoxRow *row, DcrRecentList *self)
{
  GFile *file = g_object_get_data (G_OBJECT (row), "dcr-file");
  if (file)
    g_signal_emit (self, signals[SIGNAL_OPEN_FILE], 0, file);
}

void
dcr_recent_list_set_menu (DcrRecentList *self, GMenu *menu)
{
  g_return_if_fail (DCR_IS_RECENT_LIST (self));
  g_set_object (&self->menu, menu);
  rebuild (self);
}

guint
dcr_recent_list_get_n_items (DcrRecentList *self)
{
  g_return_val_if_fail (DCR_IS_RECENT_LIST (self), 0);
  return self->n_items;
}

static void
dcr_recent_list_dispose (GObject *object)
{
  DcrRecentList *self = DCR_RECENT_LIST (object);
  if (self->manager)
    g_signal_handlers_disconnect_by_func (self->manager, rebuild, self);
  self->manager = NULL;
  g_clear_object (&self->menu);
  G_OBJECT_CLASS (dcr_recent_list_parent_class)->dispose (object);
}

static void
dcr_recent_list_class_init (DcrRecentListClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = dcr_recent_list_dispose;
  /* ::open-file (GFile *file): the analyst picked a recent file */
  signals[SIGNAL_OPEN_FILE] = g_signal_new ("open-file", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                            NULL, NULL, G_TYPE_NONE, 1, G_TYPE_FILE);
}

static void
dcr_recent_list_init (DcrRecentList *self)
{
  gtk_orientable_set_orientation (GTK_ORIENTABLE (self), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing (GTK_BOX (self), 12);
  GtkWidget *heading = gtk_label_new ("Recent Images");
  gtk_label_set_xalign (GTK_LABEL (heading), 0);
  gtk_widget_add_css_class (heading, "heading");
  gtk_box_append (GTK_BOX (self), heading);
  self->list = GTK_LIST_BOX (gtk_list_box_new ());
  gtk_list_box_set_selection_mode (self->list, GTK_SELECTION_NONE);
  gtk_widget_add_css_class (GTK_WIDGET (self->list), "boxed-list");
  g_signal_connect (self->list, "row-activated", G_CALLBACK (on_row_activated), self);
  gtk_box_append (GTK_BOX (self), GTK_WIDGET (self->list));

  self->manager = gtk_recent_manager_get_default ();
  g_signal_connect_swapped (self->manager, "changed", G_CALLBACK (rebuild), self);
  rebuild (self);
}

GtkWidget *
dcr_recent_list_new (void)
{
  return g_object_new (DCR_TYPE_RECENT_LIST, NULL);
}
