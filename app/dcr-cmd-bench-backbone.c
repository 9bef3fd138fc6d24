/* dcr-cmd-bench-backbone.c — `dcr bench backbone`: images per second of a
 * backbone's forward pass (the recorded sequence replayed, preprocessing
 * not included) at one or more batch sizes, with the minimum and median
 * milliseconds per batch; a table or JSON. Random weights time the same as
 * trained ones, so make-backbone-golden.py --full gives ResNet-50 and
 * ViT-L/14 files for it. */
#include "dcr-config.h"
#include "dcr-cli.h"
#include "dcr-backbone.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  guint batch;
  double min_ms, median_ms, record_ms;
} Row;

static void
print_json (DcrContext *ctx, DcrBackbone *bb, double load_ms, int repeats, GArray *rows)
{
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *when = g_date_time_format_iso8601 (now);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "tool"); json_builder_add_string_value (b, "dcr " DCR_VERSION);
  json_builder_set_member_name (b, "date"); json_builder_add_string_value (b, when);
  json_builder_set_member_name (b, "device"); json_builder_add_string_value (b, dev->name);
  json_builder_set_member_name (b, "driver"); json_builder_add_string_value (b, dev->driver_info);
  json_builder_set_member_name (b, "backbone"); json_builder_add_string_value (b, dcr_backbone_id (bb));
  json_builder_set_member_name (b, "dtype"); json_builder_add_string_value (b, dcr_dtype_name (dcr_backbone_dtype (bb)));
  json_builder_set_member_name (b, "input_size"); json_builder_add_int_value (b, dcr_backbone_input_size (bb));
  json_builder_set_member_name (b, "dim"); json_builder_add_int_value (b, dcr_backbone_dim (bb));
  json_builder_set_member_name (b, "load_ms"); json_builder_add_double_value (b, load_ms);
  json_builder_set_member_name (b, "results");
  json_builder_begin_array (b);
  for (guint i = 0; i < rows->len; i++)
    {
      const Row *r = &g_array_index (rows, Row, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "batch"); json_builder_add_int_value (b, r->batch);
      json_builder_set_member_name (b, "repeats"); json_builder_add_int_value (b, repeats);
      json_builder_set_member_name (b, "record_ms"); json_builder_add_double_value (b, r->record_ms);
      json_builder_set_member_name (b, "min_ms"); json_builder_add_double_value (b, r->min_ms);
      json_builder_set_member_name (b, "median_ms"); json_builder_add_double_value (b, r->median_ms);
      json_builder_set_member_name (b, "img_per_s"); json_builder_add_double_value (b, r->batch / (r->median_ms * 1e-3));
      json_builder_set_member_name (b, "best_img_per_s"); json_builder_add_double_value (b, r->batch / (r->min_ms * 1e-3));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *s = json_to_string (root, TRUE);
  printf ("%s\n", s);
}

static void
print_table (DcrContext *ctx, DcrBackbone *bb, double load_ms, int repeats, GArray *rows)
{
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  printf ("device: %s (%s)\n", dev->name, dev->driver_info);
  printf ("backbone: %s, %s, input %u, %u features; loaded in %.0f ms; %d timed runs each\n", dcr_backbone_id (bb),
          dcr_dtype_name (dcr_backbone_dtype (bb)), dcr_backbone_input_size (bb), dcr_backbone_dim (bb), load_ms,
          repeats);
  printf ("%6s %10s %10s %10s %12s\n", "batch", "min ms", "median ms", "img/s", "best img/s");
  for (guint i = 0; i < rows->len; i++)
    {
      const Row *r = &g_array_index (rows, Row, i);
      printf ("%6u %10.2f %10.2f %10.2f %12.2f\n", r->batch, r->min_ms, r->median_ms,
              r->batch / (r->median_ms * 1e-3), r->batch / (r->min_ms * 1e-3));
    }
}

/* "8" or "1,8,32" */
static gboolean
parse_batches (const char *text, GArray *out)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  for (guint i = 0; parts[i]; i++)
    {
      guint64 v = 0;
      if (!g_ascii_string_to_unsigned (g_strstrip (parts[i]), 10, 1, 4096, &v, NULL))
        return FALSE;
      guint b = (guint) v;
      g_array_append_val (out, b);
    }
  return out->len > 0;
}

int
dcr_cmd_bench_backbone (int argc, char **argv)
{
  const char *device = NULL, *spec = "default", *dtype_name = "f32", *batch_text = "1";
  gboolean json = FALSE;
  int repeats = 10;
  GOptionEntry entries[] = {
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "backbone", 'b', 0, G_OPTION_ARG_STRING, &spec,
      "default, mobilenet_v2:PATH, resnet50:PATH or clip-vit-l14:PATH", "SPEC" },
    { "batch", 0, 0, G_OPTION_ARG_STRING, &batch_text, "Images per batch, or a list such as 1,8,32 (default 1)", "N" },
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "f32 or f16 (storage)", "TYPE" },
    { "repeats", 'r', 0, G_OPTION_ARG_INT, &repeats, "Timed runs per batch size (default 10)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("backbone - time a backbone's forward pass");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  g_autoptr (GArray) batches = g_array_new (FALSE, FALSE, sizeof (guint));
  if (argc != 2 || strcmp (argv[1], "backbone") != 0)
    {
      fprintf (stderr, "dcr: usage: dcr bench backbone [--backbone SPEC] [--batch N[,N…]] [--dtype f32|f16] "
                       "[--repeats N] [--json]\n");
      return 2;
    }
  if (!parse_batches (batch_text, batches))
    {
      fprintf (stderr, "dcr: --batch takes sizes from 1 to 4096, separated by commas\n");
      return 2;
    }
  if (repeats < 1)
    {
      fprintf (stderr, "dcr: --repeats must be at least 1\n");
      return 2;
    }
  DcrDtype dtype;
  g_autoptr (GError) dtype_err = NULL;
  if (!dcr_cli_dtype_from_name (dtype_name, &dtype, &dtype_err))
    {
      fprintf (stderr, "dcr: %s\n", dtype_err->message);
      return 2;
    }

  g_autoptr (GError) err = NULL;
  DcrContextOptions copts = { .device = device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&copts, &err);
  if (!ctx)
    return dcr_cli_fail (err);
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, dtype, &err);
  if (!bb)
    return dcr_cli_fail (err);
  double load_ms = (g_get_monotonic_time () - t0) / 1000.0;

  g_autoptr (GArray) rows = g_array_new (FALSE, TRUE, sizeof (Row));
  guint size = dcr_backbone_input_size (bb);
  for (guint i = 0; i < batches->len; i++)
    {
      Row r = { g_array_index (batches, guint, i) };
      t0 = g_get_monotonic_time ();
      g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, r.batch, &err);
      if (!run)
        return dcr_cli_fail (err);
      r.record_ms = (g_get_monotonic_time () - t0) / 1000.0;
      /* a smooth, image-like input: zeros would leave every ReLU at its kink */
      gsize n = (gsize) r.batch * size * size * 3;
      g_autofree float *in = g_new (float, n);
      for (gsize k = 0; k < n; k++)
        in[k] = (float) sin ((double) k * 0.0007) * 1.5f;
      if (!dcr_backbone_run_set_input (run, in, r.batch, &err) ||
          !dcr_backbone_run_time (run, repeats, &r.min_ms, &r.median_ms, &err))
        return dcr_cli_fail (err);
      g_array_append_val (rows, r);
    }
  if (json)
    print_json (ctx, bb, load_ms, repeats, rows);
  else
    print_table (ctx, bb, load_ms, repeats, rows);
  return 0;
}
