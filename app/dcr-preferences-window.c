/* dcr-preferences-window.c — the preferences page. The GPU list comes from
 * the engine's device enumeration; the chosen device is stored by name (by
 * index only when two devices share a name), "" meaning automatic. Model and
 * bank rows show the file in use, the shipped default when none is set. */
#include "dcr-config.h"
#include "dcr-preferences-window.h"
#include "dcr-detector.h"
#include "dcr-file-chooser.h"
#include "dcr-vk.h"

struct _DcrPreferencesPage {
  AdwPreferencesPage parent_instance;
  AdwComboRow *device_row;
  AdwActionRow *model_row, *bank_row;
  GtkButton *model_choose_button, *model_reset_button, *bank_choose_button, *bank_reset_button;
  GtkSwitch *thresholds_switch;

  GSettings *settings;
  GArray *devices;          /* of DcrDeviceInfo, enumerated once; NULL when Vulkan failed */
  char *devices_error;
  GPtrArray *device_values; /* the "device" setting each combo item stands for */
  gboolean filling;         /* the combo is being set from the setting */
};

G_DEFINE_FINAL_TYPE (DcrPreferencesPage, dcr_preferences_page, ADW_TYPE_PREFERENCES_PAGE)

static void
fill_devices (DcrPreferencesPage *self)
{
  g_autofree char *current = g_settings_get_string (self->settings, "device");
  g_autoptr (GtkStringList) names = gtk_string_list_new (NULL);
  g_ptr_array_set_size (self->device_values, 0);
  gtk_string_list_append (names, "Automatic");
  g_ptr_array_add (self->device_values, g_strdup (""));
  guint selected = 0;

  GArray *devices = self->devices;
  if (self->devices_error)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->device_row), self->devices_error);
  int chosen = -1;
  if (devices && *current)
    chosen = dcr_vk_pick_device (devices, current, NULL);
  for (guint i = 0; devices && i < devices->len; i++)
    {
      const DcrDeviceInfo *d = &g_array_index (devices, DcrDeviceInfo, i);
      gboolean shared_name = FALSE;
      for (guint j = 0; j < devices->len; j++)
        shared_name |= j != i && g_str_equal (d->name, g_array_index (devices, DcrDeviceInfo, j).name);
      g_autofree char *label = g_strdup_printf ("%s (%s)", d->name, dcr_device_type_name (d->type));
      gtk_string_list_append (names, label);
      g_ptr_array_add (self->device_values, shared_name ? g_strdup_printf ("%u", d->index) : g_strdup (d->name));
      if ((int) i == chosen)
        selected = self->device_values->len - 1;
    }
  if (*current && chosen < 0)
    {
      /* set by hand (gsettings, DCR_DEVICE habits) to a device not present:
       * show it rather than pretend "Automatic" */
      g_autofree char *label = g_strdup_printf ("%s (not found on this computer)", current);
      gtk_string_list_append (names, label);
      g_ptr_array_add (self->device_values, g_strdup (current));
      selected = self->device_values->len - 1;
    }
  self->filling = TRUE;
  adw_combo_row_set_model (self->device_row, G_LIST_MODEL (names));
  adw_combo_row_set_selected (self->device_row, selected);
  self->filling = FALSE;
}

static void
on_device_selected (AdwComboRow *row, GParamSpec *pspec, DcrPreferencesPage *self)
{
  guint i = adw_combo_row_get_selected (row);
  if (self->filling || i >= self->device_values->len)
    return;
  g_settings_set_string (self->settings, "device", g_ptr_array_index (self->device_values, i));
}

static void
update_file_row (DcrPreferencesPage *self, const char *key)
{
  gboolean model = g_str_equal (key, "model-file");
  AdwActionRow *row = model ? self->model_row : self->bank_row;
  GtkWidget *reset = GTK_WIDGET (model ? self->model_reset_button : self->bank_reset_button);
  g_autofree char *path = g_settings_get_string (self->settings, key);
  g_autofree char *text = NULL;
  if (*path)
    text = g_file_test (path, G_FILE_TEST_EXISTS) ? g_strdup (path) : g_strdup_printf ("%s (missing)", path);
  else
    {
      g_autofree char *def = model ? dcr_detector_default_model_path () : dcr_detector_default_bank_path ();
      text = def ? g_strdup_printf ("Shipped default: %s", def)
                 : g_strdup (model ? "None set and none shipped: choose a model trained with dcr train"
                                   : "None set and none shipped: choose a bank built from known-real images");
    }
  adw_action_row_set_subtitle (row, text);
  gtk_widget_set_sensitive (reset, *path != '\0');
}

static void
on_settings_changed (GSettings *settings, const char *key, DcrPreferencesPage *self)
{
  if (g_str_equal (key, "model-file") || g_str_equal (key, "bank-file"))
    update_file_row (self, key);
  else if (g_str_equal (key, "device"))
    {
      /* our own write needs no refill (and must not swap the model under
       * the combo row while it is still handling the selection) */
      g_autofree char *device = g_settings_get_string (settings, "device");
      guint i = adw_combo_row_get_selected (self->device_row);
      if (i >= self->device_values->len || g_strcmp0 (g_ptr_array_index (self->device_values, i), device))
        fill_devices (self);
    }
}

typedef struct {
  DcrPreferencesPage *self;
  const char *key;
} ChooseData;

static void
on_file_chosen (GObject *source, GAsyncResult *res, gpointer data)
{
  ChooseData *cd = data;
  g_autoptr (GError) err = NULL;
  g_autoptr (GFile) file = dcr_file_chooser_open_finish (res, &err);
  g_autofree char *path = file ? g_file_get_path (file) : NULL;
  if (path)
    g_settings_set_string (cd->self->settings, cd->key, path);
  else if (file)
    {
      g_autofree char *uri = g_file_get_uri (file);
      g_autofree char *msg = g_strdup_printf ("%s is not a local file: copy it to this computer first", uri);
      AdwActionRow *row = g_str_equal (cd->key, "model-file") ? cd->self->model_row : cd->self->bank_row;
      adw_action_row_set_subtitle (row, msg);
    }
  g_object_unref (cd->self);
  g_free (cd);
}

static void
choose_file (DcrPreferencesPage *self, const char *key)
{
  gboolean model = g_str_equal (key, "model-file");
  static const char *const model_suffixes[] = { "safetensors", NULL };
  static const char *const bank_suffixes[] = { "dcrbank", NULL };
  static const char *const any[] = { "*", NULL };
  g_autoptr (GListStore) filters = g_list_store_new (GTK_TYPE_FILE_FILTER);
  g_autoptr (GtkFileFilter) own = dcr_file_filter_new (model ? "Detector models (*.safetensors)"
                                                             : "Prototype banks (*.dcrbank)",
                                                       model ? model_suffixes : bank_suffixes, NULL);
  g_autoptr (GtkFileFilter) all = gtk_file_filter_new ();
  gtk_file_filter_set_name (all, "All files");
  gtk_file_filter_add_pattern (all, any[0]);
  g_list_store_append (filters, own);
  g_list_store_append (filters, all);
  ChooseData *cd = g_new0 (ChooseData, 1);
  cd->self = g_object_ref (self);
  cd->key = key;
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  dcr_file_chooser_open (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                         model ? "Choose a Detector Model" : "Choose a Prototype Bank", G_LIST_MODEL (filters),
                         NULL, on_file_chosen, cd);
}

static void
on_model_choose (DcrPreferencesPage *self)
{
  choose_file (self, "model-file");
}

static void
on_bank_choose (DcrPreferencesPage *self)
{
  choose_file (self, "bank-file");
}

static void
on_model_reset (DcrPreferencesPage *self)
{
  g_settings_reset (self->settings, "model-file");
}

static void
on_bank_reset (DcrPreferencesPage *self)
{
  g_settings_reset (self->settings, "bank-file");
}

AdwComboRow *
dcr_preferences_page_get_device_row (DcrPreferencesPage *self)
{
  g_return_val_if_fail (DCR_IS_PREFERENCES_PAGE (self), NULL);
  return self->device_row;
}

DcrPreferencesPage *
dcr_preferences_present (GtkWidget *parent)
{
  DcrPreferencesPage *page = g_object_new (DCR_TYPE_PREFERENCES_PAGE, NULL);
#if ADW_CHECK_VERSION(1, 5, 0)
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS /* newer API in its version guard: see app/meson.build */
  AdwDialog *dialog = adw_preferences_dialog_new ();
  adw_preferences_dialog_add (ADW_PREFERENCES_DIALOG (dialog), ADW_PREFERENCES_PAGE (page));
  adw_dialog_present (dialog, parent);
  G_GNUC_END_IGNORE_DEPRECATIONS
#else
  GtkWidget *window = adw_preferences_window_new ();
  GtkRoot *root = parent ? gtk_widget_get_root (parent) : NULL;
  if (GTK_IS_WINDOW (root))
    gtk_window_set_transient_for (GTK_WINDOW (window), GTK_WINDOW (root));
  gtk_window_set_modal (GTK_WINDOW (window), TRUE);
  adw_preferences_window_set_search_enabled (ADW_PREFERENCES_WINDOW (window), FALSE);
  adw_preferences_window_add (ADW_PREFERENCES_WINDOW (window), ADW_PREFERENCES_PAGE (page));
  gtk_window_present (GTK_WINDOW (window));
#endif
  return page;
}

static void
dcr_preferences_page_dispose (GObject *object)
{
  DcrPreferencesPage *self = DCR_PREFERENCES_PAGE (object);
  if (self->settings)
    g_signal_handlers_disconnect_by_func (self->settings, on_settings_changed, self);
  g_clear_object (&self->settings);
  g_clear_pointer (&self->device_values, g_ptr_array_unref);
  g_clear_pointer (&self->devices, g_array_unref);
  g_clear_pointer (&self->devices_error, g_free);
  gtk_widget_dispose_template (GTK_WIDGET (self), DCR_TYPE_PREFERENCES_PAGE);
  G_OBJECT_CLASS (dcr_preferences_page_parent_class)->dispose (object);
}

static void
dcr_preferences_page_class_init (DcrPreferencesPageClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  G_OBJECT_CLASS (klass)->dispose = dcr_preferences_page_dispose;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/dcrforensics/DcrForensics/dcr-preferences-window.ui");
  gtk_widget_class_bind_template_child (widget_class, DcrPreferencesPage, device_row);
  gtk_widget_class_bind_template_child (widget_class, DcrPreferencesPage, model_row);
  gtk_widget_class_bind_template_child (widget_class, DcrPreferencesPage, bank_row);
  gtk_widget_class_bind_template_child (widget_class, DcrPreferencesPage, model_choose_button);
  gtk_widget_class_bind_template_child (widget_class, DcrPreferencesPage, model_reset_button);
  gtk_widget_class_bind_template_child (widget_class, DcrPreferencesPage, bank_choose_button);
  gtk_widget_class_bind_template_child (widget_class, DcrPreferencesPage, bank_reset_button);
  gtk_widget_class_bind_template_child (widget_class, DcrPreferencesPage, thresholds_switch);
}

static void
dcr_preferences_page_init (DcrPreferencesPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->settings = g_settings_new (DCR_APP_ID);
  self->device_values = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) err = NULL;
  self->devices = dcr_vk_list_devices (&err);
  if (!self->devices)
    self->devices_error = g_strdup (err->message);
  g_settings_bind (self->settings, "show-thresholds", self->thresholds_switch, "active", G_SETTINGS_BIND_DEFAULT);
  fill_devices (self);
  update_file_row (self, "model-file");
  update_file_row (self, "bank-file");
  g_signal_connect (self->device_row, "notify::selected", G_CALLBACK (on_device_selected), self);
  g_signal_connect (self->settings, "changed", G_CALLBACK (on_settings_changed), self);
  g_signal_connect_swapped (self->model_choose_button, "clicked", G_CALLBACK (on_model_choose), self);
  g_signal_connect_swapped (self->bank_choose_button, "clicked", G_CALLBACK (on_bank_choose), self);
  g_signal_connect_swapped (self->model_reset_button, "clicked", G_CALLBACK (on_model_reset), self);
  g_signal_connect_swapped (self->bank_reset_button, "clicked", G_CALLBACK (on_bank_reset), self);
}
