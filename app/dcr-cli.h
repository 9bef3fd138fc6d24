/* dcr-cli.h — entry point and shared helpers of the `dcr` tool. */
#pragma once

#include <glib.h>

#include "dcr-vk.h"

int dcr_cli_main (int argc, char **argv);
/* Parses the command's options (entries: the array given to the context);
 * prints the error and returns FALSE on bad usage. */
gboolean dcr_cli_parse (GOptionContext *oc, const GOptionEntry *entries, int *argc, char ***argv);
int dcr_cli_fail (GError *err);
/* --dtype: "f32" or "f16"; anything else is a usage error with a message. */
gboolean dcr_cli_dtype_from_name (const char *name, DcrDtype *out, GError **error);

int dcr_cmd_bank (int argc, char **argv);
int dcr_cmd_bench (int argc, char **argv);
int dcr_cmd_bench_backbone (int argc, char **argv);
int dcr_cmd_bench_scan (int argc, char **argv);
int dcr_cmd_devices (int argc, char **argv);
int dcr_cmd_features (int argc, char **argv);
int dcr_cmd_smoke (int argc, char **argv);
int dcr_cmd_train (int argc, char **argv);
int dcr_cmd_train_tiles (int argc, char **argv);
int dcr_cmd_train_cnn (int argc, char **argv);
int dcr_cmd_scan (int argc, char **argv);
int dcr_cmd_report (int argc, char **argv);
int dcr_cmd_eval (int argc, char **argv);
int dcr_cmd_version (int argc, char **argv);
