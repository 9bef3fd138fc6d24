/* dcr-cmd-bench-scan.c — `dcr bench scan PATH…`: images per second of
 * `dcr scan` itself — the same pipeline (dcr-scan-run.h: decoding on
 * threads, the JPEG-grid search, the fine-detail measure, the backbone,
 * the bank retrieval and the heads) over the same files, with the shipped
 * model unless one is given — passed over the files several times in one
 * process, after an untimed first pass that compiles the pipelines. It
 * prints the setup time, the first pass and every timed pass, the median
 * and the best, and what the figure depends on: the device, the processors,
 * lavapipe's thread count and the load average before and after. Issue 6's
 * scan-speed target is read from here (BENCHMARKS.md). */
#include "dcr-config.h"
#include "dcr-cli.h"
#include "dcr-scan-run.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  guint scanned, failed;
  char *first_error;
} Count;

static void
count_clear (Count *c)
{
  g_free (c->first_error);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Count, count_clear)

static void
count_each (DcrCliSetup *s, const DcrScanItem *it, gpointer user_data)
{
  Count *c = user_data;
  (void) s;
  if (!it->error)
    c->scanned++;
  else if (c->failed++ == 0)
    c->first_error = g_strdup (it->error->message);
}

/* the 1-minute load average, or -1 where /proc has none */
static double
load_average (void)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents ("/proc/loadavg", &text, NULL, NULL))
    return -1;
  char *end = NULL;
  double v = g_ascii_strtod (text, &end);
  return end != text ? v : -1;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

typedef struct {
  const char *device, *driver, *model, *model_sha256, *backbone, *lp_threads, *when;
  guint batch, files, scanned, processors;
  double setup_s, first_s, load_before, load_after, median_s, min_s;
  const double *passes;
  guint n_passes;
} Result;

static void
print_json (const Result *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "tool"); json_builder_add_string_value (b, "dcr " DCR_VERSION);
  json_builder_set_member_name (b, "date"); json_builder_add_string_value (b, r->when);
  json_builder_set_member_name (b, "device"); json_builder_add_string_value (b, r->device);
  json_builder_set_member_name (b, "driver"); json_builder_add_string_value (b, r->driver);
  json_builder_set_member_name (b, "processors"); json_builder_add_int_value (b, r->processors);
  json_builder_set_member_name (b, "lp_num_threads"); json_builder_add_string_value (b, r->lp_threads);
  json_builder_set_member_name (b, "model"); json_builder_add_string_value (b, r->model);
  json_builder_set_member_name (b, "model_sha256"); json_builder_add_string_value (b, r->model_sha256);
  json_builder_set_member_name (b, "backbone"); json_builder_add_string_value (b, r->backbone);
  json_builder_set_member_name (b, "batch"); json_builder_add_int_value (b, r->batch);
  json_builder_set_member_name (b, "files"); json_builder_add_int_value (b, r->files);
  json_builder_set_member_name (b, "images"); json_builder_add_int_value (b, r->scanned);
  json_builder_set_member_name (b, "setup_s"); json_builder_add_double_value (b, r->setup_s);
  json_builder_set_member_name (b, "first_pass_s"); json_builder_add_double_value (b, r->first_s);
  json_builder_set_member_name (b, "passes_s");
  json_builder_begin_array (b);
  for (guint i = 0; i < r->n_passes; i++)
    json_builder_add_double_value (b, r->passes[i]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "median_s"); json_builder_add_double_value (b, r->median_s);
  json_builder_set_member_name (b, "min_s"); json_builder_add_double_value (b, r->min_s);
  json_builder_set_member_name (b, "img_per_s"); json_builder_add_double_value (b, r->scanned / r->median_s);
  json_builder_set_member_name (b, "best_img_per_s"); json_builder_add_double_value (b, r->scanned / r->min_s);
  dcr_cli_json_add_double (b, "load_before", r->load_before);
  dcr_cli_json_add_double (b, "load_after", r->load_after);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *s = json_to_string (root, TRUE);
  printf ("%s\n", s);
}

static void
print_table (const Result *r)
{
  /* dcr sets LP_NUM_THREADS when it is unset (dcr_vk_default_cpu_threads): the value lavapipe ran with */
  printf ("device: %s (%s); %u processors; LP_NUM_THREADS %s\n", r->device, r->driver, r->processors,
          r->lp_threads ? r->lp_threads : "unset");
  printf ("model: %s (backbone %s); batch %u\n", r->model, r->backbone, r->batch);
  printf ("%u images (%u files); setup %.2f s; first pass %.2f s (compiles the pipelines; not counted)\n", r->scanned,
          r->files, r->setup_s, r->first_s);
  printf ("timed passes (s):");
  for (guint i = 0; i < r->n_passes; i++)
    printf (" %.2f", r->passes[i]);
  printf ("\n");
  printf ("median %.2f s: %.1f img/s; best %.2f s: %.1f img/s\n", r->median_s, r->scanned / r->median_s, r->min_s,
          r->scanned / r->min_s);
  if (r->load_before >= 0)
    printf ("load average %.2f before, %.2f after (anything else running slows the figure)\n", r->load_before,
            r->load_after);
  printf ("%s\n", r->when);
}

int
dcr_cmd_bench_scan (int argc, char **argv)
{
  const char *device = NULL, *model = NULL, *bank = NULL;
  gboolean json = FALSE;
  int batch = DCR_CLI_DEFAULT_BATCH, repeats = 5;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "Detector model (the shipped one by default)", "MODEL" },
    { "bank", 0, 0, G_OPTION_ARG_FILENAME, &bank, "Bank of real prototypes (the shipped one by default)", "BANK" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Images per GPU batch, as dcr scan (" G_STRINGIFY (DCR_CLI_DEFAULT_BATCH) ")", "N" },
    { "repeats", 'r', 0, G_OPTION_ARG_INT, &repeats, "Timed passes over the files (default 5)", "N" },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("scan PATH… - time dcr scan over images");
  g_option_context_set_description (
      oc, "PATH is an image or a folder, walked as dcr scan walks it. The files are scanned once untimed\n"
          "(the driver compiles its pipelines then), then --repeats times, timed; each pass is the whole\n"
          "of dcr scan's work on the files but the printing. Exit status: 0, 1 when a file could not be\n"
          "scanned (the figure would count fewer images than asked) or the device fails, 2 usage error.");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (argc < 3 || strcmp (argv[1], "scan") != 0 || batch < 1 || repeats < 1)
    {
      fprintf (stderr, "dcr: usage: dcr bench scan [--model M] [--bank B] [--batch N] [--repeats N] [--json] PATH…\n");
      return 2;
    }
  g_autoptr (GError) err = NULL;
  g_autoptr (GArray) walked = dcr_walk_collect ((const char *const *) argv + 2, (guint) argc - 2, &err);
  if (!walked)
    {
      fprintf (stderr, "dcr: %s\n", err->message);
      return 1;
    }
  guint total = walked->len;
  gint64 t0 = g_get_monotonic_time ();
  g_auto (DcrCliSetup) s = { 0 };
  if (!dcr_cli_setup_open (&s, device, "default", DCR_F32, model, bank, FALSE, MIN ((guint) batch, total), &err))
    return dcr_cli_fail (err);
  double setup_s = (g_get_monotonic_time () - t0) / 1e6;

  g_auto (Count) first = { 0 };
  t0 = g_get_monotonic_time ();
  if (!dcr_scan_run (&s, (const DcrWalkEntry *) walked->data, total, count_each, &first, &err))
    return dcr_cli_fail (err);
  double first_s = (g_get_monotonic_time () - t0) / 1e6;
  if (first.failed)
    {
      fprintf (stderr, "dcr: %u of %u files could not be scanned (the first: %s); a speed over fewer images than "
                       "asked would mislead: leave them out\n", first.failed, total, first.first_error);
      return 1;
    }

  if (!first.scanned)
    {
      fprintf (stderr, "dcr: no image to time\n");
      return 1;
    }
  double load_before = load_average ();
  g_autofree double *passes = g_new (double, repeats), *sorted = g_new (double, repeats);
  for (int r = 0; r < repeats; r++)
    {
      g_auto (Count) c = { 0 };
      t0 = g_get_monotonic_time ();
      if (!dcr_scan_run (&s, (const DcrWalkEntry *) walked->data, total, count_each, &c, &err))
        return dcr_cli_fail (err);
      passes[r] = (g_get_monotonic_time () - t0) / 1e6;
      if (c.scanned != first.scanned)
        {
          fprintf (stderr, "dcr: pass %d scanned %u images, the first %u: did the files change?\n", r + 2, c.scanned,
                   first.scanned);
          return 1;
        }
    }
  double load_after = load_average ();
  memcpy (sorted, passes, repeats * sizeof (double));
  qsort (sorted, repeats, sizeof (double), cmp_double);

  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *when = g_date_time_format_iso8601 (now);
  const DcrDeviceInfo *dev = dcr_context_device (s.ctx);
  Result res = {
    .device = dev->name, .driver = dev->driver_info, .model = dcr_model_path (s.model),
    .model_sha256 = dcr_model_sha256 (s.model), .backbone = dcr_backbone_id (s.bb),
    .lp_threads = g_getenv ("LP_NUM_THREADS"), .when = when, .batch = dcr_detector_batch (s.det), .files = total,
    .scanned = first.scanned, .processors = g_get_num_processors (), .setup_s = setup_s, .first_s = first_s,
    .load_before = load_before, .load_after = load_after,
    .median_s = repeats % 2 ? sorted[repeats / 2] : (sorted[repeats / 2 - 1] + sorted[repeats / 2]) / 2,
    .min_s = sorted[0], .passes = passes, .n_passes = (guint) repeats,
  };
  if (json)
    print_json (&res);
  else
    print_table (&res);
  return 0;
}
