/* dcr-file-chooser.c — one asynchronous "open a file" call for the window
 * and the preferences. GtkFileChooserNative is deprecated from GTK 4.10, so
 * it is only compiled where GtkFileDialog does not exist yet. */
#include "dcr-config.h"
#include "dcr-file-chooser.h"

GtkFileFilter *
dcr_file_filter_new (const char *name, const char *const *suffixes, const char *const *mime_types)
{
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, name);
  for (; suffixes && *suffixes; suffixes++)
    gtk_file_filter_add_suffix (filter, *suffixes);
  for (; mime_types && *mime_types; mime_types++)
    gtk_file_filter_add_mime_type (filter, *mime_types);
  return filter;
}

#if GTK_CHECK_VERSION(4, 10, 0)
G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer API in its version guard: see app/meson.build */

static void
on_dialog_done (GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr (GTask) task = data;
  g_autoptr (GError) err = NULL;
  GFile *file = gtk_file_dialog_open_finish (GTK_FILE_DIALOG (source), res, &err);
  if (file)
    g_task_return_pointer (task, file, g_object_unref);
  else if (g_error_matches (err, GTK_DIALOG_ERROR, GTK_DIALOG_ERROR_DISMISSED)
           || g_error_matches (err, GTK_DIALOG_ERROR, GTK_DIALOG_ERROR_CANCELLED))
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "No file chosen");
  else
    g_task_return_error (task, g_steal_pointer (&err));
}

void
dcr_file_chooser_open (GtkWindow *parent, const char *title, GListModel *filters, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, dcr_file_chooser_open);
  g_autoptr (GtkFileDialog) dialog = gtk_file_dialog_new ();
  gtk_file_dialog_set_title (dialog, title);
  gtk_file_dialog_set_modal (dialog, TRUE);
  if (filters)
    {
      gtk_file_dialog_set_filters (dialog, filters);
      if (g_list_model_get_n_items (filters) > 0)
        {
          g_autoptr (GtkFileFilter) first = g_list_model_get_item (filters, 0);
          gtk_file_dialog_set_default_filter (dialog, first);
        }
    }
  gtk_file_dialog_open (dialog, parent, cancellable, on_dialog_done, task);
}

G_GNUC_END_IGNORE_DEPRECATIONS
#else

static void
on_response (GtkNativeDialog *dialog, int response, GTask *task)
{
  g_autoptr (GFile) file = NULL;
  if (response == GTK_RESPONSE_ACCEPT)
    file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
  if (file)
    g_task_return_pointer (task, g_steal_pointer (&file), g_object_unref);
  else
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "No file chosen");
  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
  g_object_unref (task);
}

void
dcr_file_chooser_open (GtkWindow *parent, const char *title, GListModel *filters, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, dcr_file_chooser_open);
  GtkFileChooserNative *chooser = gtk_file_chooser_native_new (title, parent, GTK_FILE_CHOOSER_ACTION_OPEN,
                                                               "_Open", "_Cancel");
  for (guint i = 0; filters && i < g_list_model_get_n_items (filters); i++)
    {
      g_autoptr (GtkFileFilter) filter = g_list_model_get_item (filters, i);
      gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
    }
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect (chooser, "response", G_CALLBACK (on_response), task);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

#endif

GFile *
dcr_file_chooser_open_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
