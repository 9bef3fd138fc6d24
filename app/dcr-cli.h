/* dcr-cli.h — entry point and shared helpers of the `dcr` tool. */
#pragma once

#include <glib.h>

int dcr_cli_main (int argc, char **argv);
gboolean dcr_cli_parse (GOptionContext *oc, int *argc, char ***argv);
int dcr_cli_fail (GError *err);

int dcr_cmd_bench (int argc, char **argv);
int dcr_cmd_bench_backbone (int argc, char **argv);
int dcr_cmd_devices (int argc, char **argv);
int dcr_cmd_features (int argc, char **argv);
int dcr_cmd_smoke (int argc, char **argv);
int dcr_cmd_train (int argc, char **argv);
int dcr_cmd_scan (int argc, char **argv);
int dcr_cmd_eval (int argc, char **argv);
int dcr_cmd_version (int argc, char **argv);
