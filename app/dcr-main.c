/* dcr-main.c — `dcr` executable. */
#include "dcr-cli.h"

#include <locale.h>

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  return dcr_cli_main (argc, argv);
}
