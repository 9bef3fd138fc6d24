/* dcr-cli.c — the `dcr` command-line tool: a thin front end over libdcr.
 * Each subcommand parses its own options and returns an exit status:
 * 0 success, 1 a failure with a message on stderr, 2 a usage error. */
#include "dcr-config.h"
#include "dcr-cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  const char *summary;
  int (*run) (int argc, char **argv);
} DcrCommand;

static const DcrCommand commands[] = {
  { "bank", "Look after a bank of real prototypes (`dcr bank --help`)", dcr_cmd_bank },
  { "bench", "Time the engine (`dcr bench ops`, `backbone`, `scan`)", dcr_cmd_bench },
  { "devices", "List Vulkan devices and what they support", dcr_cmd_devices },
  { "eval", "Measure the detector on folders of real and fake images", dcr_cmd_eval },
  { "features", "Print the backbone's feature vector of images", dcr_cmd_features },
  { "report", "Write a batch report (PDF, CSV, JSON) over files and folders", dcr_cmd_report },
  { "scan", "Tell whether images are real, fake or inconclusive, and why", dcr_cmd_scan },
  { "smoke", "Run a small compute job on the GPU and check it against the CPU", dcr_cmd_smoke },
  { "train", "Train the detector on folders of real and fake images", dcr_cmd_train },
  { "train-tiles", "Train the tile head on partial fakes (rectangles from a manifest)", dcr_cmd_train_tiles },
  { "train-cnn", "Train the learned forensic CNN on crops of real images and fakes", dcr_cmd_train_cnn },
  { "version", "Print the version", dcr_cmd_version },
};

static void
usage (FILE *out)
{
  fprintf (out, "Usage: dcr COMMAND [OPTIONS…]\n\nDCR Forensics %s — deepfake and AI-image detection.\n\nCommands:\n",
           DCR_VERSION);
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-12s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\nRun `dcr COMMAND --help` for a command's options. The GPU is chosen with\n"
                "--device=INDEX|NAME or $DCR_DEVICE; `dcr devices` lists them.\n");
}

int
dcr_cli_main (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
  if (strcmp (argv[1], "--version") == 0)
    return dcr_cmd_version (argc - 1, argv + 1);
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].run (argc - 1, argv + 1);
  fprintf (stderr, "dcr: unknown command \"%s\"\n\n", argv[1]);
  usage (stderr);
  return 2;
}

/* GOption allocates the string and filename values it parses and leaves
 * them to the caller; the commands keep them in const char * beside their
 * defaults, so the parsed ones are collected here and freed at exit (before
 * LeakSanitizer's own exit check runs). */
static GPtrArray *parsed_values;

static void
free_parsed_values (void)
{
  g_clear_pointer (&parsed_values, g_ptr_array_unref);
}

static gboolean
is_string_arg (const GOptionEntry *e)
{
  return (e->arg == G_OPTION_ARG_STRING || e->arg == G_OPTION_ARG_FILENAME) && e->arg_data;
}

gboolean
dcr_cli_parse (GOptionContext *oc, const GOptionEntry *entries, int *argc, char ***argv)
{
  gsize n = 0;
  while (entries && entries[n].long_name)
    n++;
  g_autofree char **before = g_new0 (char *, n + 1);
  for (gsize i = 0; i < n; i++)
    if (is_string_arg (&entries[i]))
      before[i] = *(char **) entries[i].arg_data;
  g_autoptr (GError) err = NULL;
  gboolean ok = g_option_context_parse (oc, argc, argv, &err);
  for (gsize i = 0; ok && i < n; i++)
    {
      char *now = is_string_arg (&entries[i]) ? *(char **) entries[i].arg_data : NULL;
      if (!now || now == before[i])
        continue;
      if (!parsed_values)
        {
          parsed_values = g_ptr_array_new_with_free_func (g_free);
          atexit (free_parsed_values);
        }
      g_ptr_array_add (parsed_values, now);
    }
  if (!ok)
    fprintf (stderr, "dcr: %s\n", err->message);
  return ok;
}

int
dcr_cli_fail (GError *err)
{
  fprintf (stderr, "dcr: %s\n", err ? err->message : "unknown error");
  return 1;
}

gboolean
dcr_cli_dtype_from_name (const char *name, DcrDtype *out, GError **error)
{
  if (g_strcmp0 (name, "f32") == 0)
    *out = DCR_F32;
  else if (g_strcmp0 (name, "f16") == 0)
    *out = DCR_F16;
  else
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--dtype must be f32 or f16, not \"%s\"", name);
      return FALSE;
    }
  return TRUE;
}

int
dcr_cmd_version (int argc, char **argv)
{
  printf ("dcr %s\n", DCR_VERSION);
  return 0;
}
