/* dcr-preferences-window.h — the preferences: GPU, detector model and
 * prototype bank files, whether thresholds are drawn. Every control is bound
 * to the application's GSettings keys. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define DCR_TYPE_PREFERENCES_PAGE (dcr_preferences_page_get_type ())
G_DECLARE_FINAL_TYPE (DcrPreferencesPage, dcr_preferences_page, DCR, PREFERENCES_PAGE, AdwPreferencesPage)

/* Shows the preferences over `parent`'s window: an AdwPreferencesDialog on
 * libadwaita 1.5 and later, an AdwPreferencesWindow before (1.2 on Debian
 * 12). Returns the page, owned by the dialog or window. */
DcrPreferencesPage *dcr_preferences_present (GtkWidget *parent);

/* The GPU choices: "Automatic" first, then every Vulkan device, for tests. */
AdwComboRow *dcr_preferences_page_get_device_row (DcrPreferencesPage *self);

G_END_DECLS
