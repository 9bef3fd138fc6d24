/* dcr-application.h — the GtkApplication of dcr-forensics. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define DCR_TYPE_APPLICATION (dcr_application_get_type ())
G_DECLARE_FINAL_TYPE (DcrApplication, dcr_application, DCR, APPLICATION, AdwApplication)

DcrApplication *dcr_application_new (void);
/* What main() returns when g_application_run() itself succeeded: non-zero
 * when --benchmark could not measure. */
int dcr_application_get_exit_status (DcrApplication *self);

G_END_DECLS
