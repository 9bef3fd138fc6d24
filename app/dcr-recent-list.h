/* dcr-recent-list.h — the images this application analysed lately (from
 * GtkRecentManager), as a list on the start page and as the "Open Recent"
 * menu; activating one emits ::open-file. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define DCR_TYPE_RECENT_LIST (dcr_recent_list_get_type ())
G_DECLARE_FINAL_TYPE (DcrRecentList, dcr_recent_list, DCR, RECENT_LIST, GtkBox)

/* How many files the list and the menu offer. */
#define DCR_RECENT_MAX 8

GtkWidget *dcr_recent_list_new (void);
/* Keeps `menu` filled with one item per recent file (action
 * win.open-recent, the file's URI as target). */
void dcr_recent_list_set_menu (DcrRecentList *self, GMenu *menu);
guint dcr_recent_list_get_n_items (DcrRecentList *self);

/* Records `file` as opened by this application. */
void dcr_recent_add (GFile *file);
/* Whether `file` is among this application's recent files. */
gboolean dcr_recent_contains (GFile *file);

G_END_DECLS
