/* dcr-forensics-main.c — the GUI executable. */
#include "dcr-application.h"
#include "dcr-vk.h"

#include <locale.h>

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  dcr_vk_default_cpu_threads ();
  g_autoptr (DcrApplication) app = dcr_application_new ();
  int status = g_application_run (G_APPLICATION (app), argc, argv);
  return status ? status : dcr_application_get_exit_status (app);
}
