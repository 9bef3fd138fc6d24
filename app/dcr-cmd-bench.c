/* dcr-cmd-bench.c — `dcr bench ops`: times every registered op family at
 * realistic shapes on the chosen device and prints GFLOP/s or GB/s with the
 * minimum and median over repeats (JSON with --json). Speed claims in
 * BENCHMARKS.md come from here, never from tests. */
#include "dcr-config.h"
#include "dcr-cli.h"
#include "dcr-bench.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

static void
print_json (const DcrDeviceInfo *dev, GArray *results)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *when = g_date_time_format_iso8601 (now);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "tool"); json_builder_add_string_value (b, "dcr " DCR_VERSION);
  json_builder_set_member_name (b, "date"); json_builder_add_string_value (b, when);
  json_builder_set_member_name (b, "device"); json_builder_add_string_value (b, dev->name);
  json_builder_set_member_name (b, "driver"); json_builder_add_string_value (b, dev->driver_info);
  json_builder_set_member_name (b, "results");
  json_builder_begin_array (b);
  for (guint i = 0; i < results->len; i++)
    {
      const DcrBenchResult *r = &g_array_index (results, DcrBenchResult, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "op"); json_builder_add_string_value (b, r->op);
      json_builder_set_member_name (b, "shape"); json_builder_add_string_value (b, r->shape);
      json_builder_set_member_name (b, "dtype"); json_builder_add_string_value (b, dcr_dtype_name (r->dtype));
      json_builder_set_member_name (b, "min_ms"); json_builder_add_double_value (b, r->min_ms);
      json_builder_set_member_name (b, "median_ms"); json_builder_add_double_value (b, r->median_ms);
      json_builder_set_member_name (b, "repeats"); json_builder_add_int_value (b, r->repeats);
      if (r->flop > 0)
        {
          json_builder_set_member_name (b, "gflops");
          json_builder_add_double_value (b, r->flop / (r->min_ms * 1e-3) / 1e9);
        }
      if (r->bytes > 0)
        {
          json_builder_set_member_name (b, "gbps");
          json_builder_add_double_value (b, r->bytes / (r->min_ms * 1e-3) / 1e9);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *s = json_to_string (root, TRUE);
  printf ("%s\n", s);
}

static void
print_table (const DcrDeviceInfo *dev, GArray *results)
{
  printf ("device: %s (%s)\n", dev->name, dev->driver_info);
  printf ("%-14s %-5s %10s %10s %12s  %s\n", "op", "dtype", "min ms", "median ms", "rate", "shape");
  for (guint i = 0; i < results->len; i++)
    {
      const DcrBenchResult *r = &g_array_index (results, DcrBenchResult, i);
      char rate[32] = "";
      if (r->flop > 0)
        g_snprintf (rate, sizeof rate, "%.2f GFLOP/s", r->flop / (r->min_ms * 1e-3) / 1e9);
      else if (r->bytes > 0)
        g_snprintf (rate, sizeof rate, "%.2f GB/s", r->bytes / (r->min_ms * 1e-3) / 1e9);
      printf ("%-14s %-5s %10.3f %10.3f %12s  %s\n", r->op, dcr_dtype_name (r->dtype), r->min_ms,
              r->median_ms, rate, r->shape);
    }
}

int
dcr_cmd_bench (int argc, char **argv)
{
  const char *device = NULL;
  const char *filter = NULL;
  gboolean json = FALSE, quick = FALSE;
  int repeats = 10;
  GOptionEntry entries[] = {
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "filter", 'f', 0, G_OPTION_ARG_STRING, &filter, "Only ops whose name (or, for retrieval, case) contains TEXT", "TEXT" },
    { "repeats", 'r', 0, G_OPTION_ARG_INT, &repeats, "Timed runs per case (default 10)", "N" },
    { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Small shapes only (checks the harness)", NULL },
    { NULL }
  };
  /* `dcr bench backbone` has options of its own */
  if (argc >= 2 && strcmp (argv[1], "backbone") == 0)
    return dcr_cmd_bench_backbone (argc, argv);
  /* and so has `dcr bench scan` */
  if (argc >= 2 && strcmp (argv[1], "scan") == 0)
    return dcr_cmd_bench_scan (argc, argv);
  g_autoptr (GOptionContext) oc = g_option_context_new ("ops - time the tensor ops on the GPU");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (argc != 2 || strcmp (argv[1], "ops") != 0)
    {
      fprintf (stderr, "dcr: usage: dcr bench ops [--json] [--filter TEXT] [--repeats N] [--quick]\n"
                       "       dcr bench backbone [OPTION…] (dcr bench backbone --help)\n"
                       "       dcr bench scan [OPTION…] PATH… (dcr bench scan --help)\n");
      return 2;
    }
  if (repeats < 1)
    {
      fprintf (stderr, "dcr: --repeats must be at least 1\n");
      return 2;
    }

  g_autoptr (GError) err = NULL;
  DcrContextOptions copts = { .device = device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, &err);
  if (!ctx)
    return dcr_cli_fail (err);
  DcrBenchOptions opts = { .repeats = repeats, .quick = quick, .filter = filter };
  g_autoptr (GArray) results = dcr_bench_results_new ();
  for (const DcrBenchFamily *f = dcr_bench_families; *f; f++)
    if (!(*f) (ctx, &opts, results, &err))
      return dcr_cli_fail (err);
  if (json)
    print_json (dcr_context_device (ctx), results);
  else
    print_table (dcr_context_device (ctx), results);
  return 0;
}
