/* dcr-file-chooser.h — "pick one file to open", through GtkFileDialog where
 * GTK has it (4.10+) and GtkFileChooserNative on the GTK 4.8 of Debian 12. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* `filters` is a list of GtkFileFilter, the first selected; may be NULL. */
void dcr_file_chooser_open (GtkWindow *parent, const char *title, GListModel *filters, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);
/* The chosen file; NULL with G_IO_ERROR_CANCELLED when the analyst closed
 * the dialog without choosing. */
GFile *dcr_file_chooser_open_finish (GAsyncResult *result, GError **error);

/* A filter named `name` matching the given suffixes (without dots) and MIME
 * types (either NULL-terminated, either may be NULL). */
GtkFileFilter *dcr_file_filter_new (const char *name, const char *const *suffixes, const char *const *mime_types);

G_END_DECLS
