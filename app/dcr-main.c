/* dcr-main.c — `dcr` executable. */
#include "dcr-cli.h"
#include "dcr-vk.h"

#include <locale.h>

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  dcr_vk_default_cpu_threads ();
  return dcr_cli_main (argc, argv);
}
