/* dcr-cmd-report.c — `dcr report`: a batch report over files and folders
 * (dcr-report.h does the work). The report runs in a worker thread while
 * the main thread waits for SIGINT/SIGTERM, which cancel it and leave no
 * report directory behind. Ends with the throughput, images per second. */
#include "dcr-cli.h"
#include "dcr-cli-detect.h"
#include "dcr-report.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>

typedef struct {
  DcrReport *report;
  const char *out;
  GCancellable *cancellable;
  GMainLoop *loop;
  GError *error;
  gboolean ok;
  gboolean quiet;
  int phase;       /* the last phase announced; -1 none */
  DcrCliProgress analysing;
} Run;

static void
on_progress (DcrReportPhase phase, guint index, guint done, guint total, gpointer user_data)
{
  Run *run = user_data;
  if (run->quiet)
    return;
  if ((int) phase != run->phase)
    {
      run->phase = (int) phase;
      switch (phase)
        {
        case DCR_REPORT_PHASE_LOADING:
          fprintf (stderr, "report: loading the detector…\n");
          break;
        case DCR_REPORT_PHASE_ANALYSING:
          fprintf (stderr, "report: analysing %u file(s)…\n", total);
          break;
        case DCR_REPORT_PHASE_VERIFYING:
          fprintf (stderr, "report: hashing the evidence again…\n");
          break;
        case DCR_REPORT_PHASE_WRITING:
          fprintf (stderr, "report: writing the PDF, CSV and JSON…\n");
          break;
        }
    }
  if (phase == DCR_REPORT_PHASE_ANALYSING)
    dcr_cli_progress (done, total, &run->analysing);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static gpointer
report_thread (gpointer data)
{
  Run *run = data;
  run->ok = dcr_report_write (run->report, run->out, on_progress, run, run->cancellable, &run->error);
  /* an idle source (not g_main_context_invoke, which would quit from this
   * thread, possibly before the loop runs) */
  g_idle_add (quit_loop, run->loop);
  return NULL;
}

static gboolean
on_signal (gpointer data)
{
  Run *run = data;
  if (!g_cancellable_is_cancelled (run->cancellable))
    fprintf (stderr, "\nreport: cancelling…\n");
  g_cancellable_cancel (run->cancellable);
  return G_SOURCE_CONTINUE;
}

int
dcr_cmd_report (int argc, char **argv)
{
  const char *out = NULL, *case_id = NULL, *exhibit = NULL, *examiner = NULL, *model = NULL, *bank = NULL;
  const char *device = NULL, *backbone = NULL;
  int batch = DCR_CLI_DEFAULT_BATCH, decoders = 0;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "The report folder to create (must not exist)", "DIR" },
    { "case", 0, 0, G_OPTION_ARG_STRING, &case_id, "Case reference, printed in the report", "ID" },
    { "exhibit", 0, 0, G_OPTION_ARG_STRING, &exhibit, "Exhibit reference", "ID" },
    { "examiner", 0, 0, G_OPTION_ARG_STRING, &examiner, "Examiner's name", "NAME" },
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "Detector model (the shipped one by default)", "MODEL" },
    { "bank", 0, 0, G_OPTION_ARG_FILENAME, &bank, "Bank of real prototypes (the shipped one by default)", "BANK" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Images per GPU batch (" G_STRINGIFY (DCR_CLI_DEFAULT_BATCH) ")", "N" },
    { "decoders", 0, 0, G_OPTION_ARG_INT, &decoders, "Decoding threads (one per CPU, at most 8)", "N" },
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "backbone", 'b', 0, G_OPTION_ARG_STRING, &backbone, "Backbone (default; the model's)", "SPEC" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress output", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("PATH… - a batch report over image files and folders");
  g_option_context_set_description (
      oc, "Folders are walked recursively; every file found is examined by its content (PNG or JPEG), and one\n"
          "that cannot be analysed is listed in the report with the reason. DIR receives report.pdf,\n"
          "report.csv, report.json and report.sha256, all at once when the report is complete: an error,\n"
          "Ctrl+C or SIGTERM leaves nothing. Evidence files are only opened read-only.\n"
          "Exit status: 0 the report was written (even with rejected inputs), 1 it was not, 2 usage error.");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (!out || argc < 2 || batch < 1 || decoders < 0)
    {
      fprintf (stderr, "dcr: report needs --out DIR and at least one file or folder (see `dcr report --help`)\n");
      return 2;
    }
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (GError) err = NULL;
  DcrReportOptions opts = {
    .case_id = case_id, .exhibit = exhibit, .examiner = examiner, .device = device, .model_path = model,
    .bank_path = bank, .backbone = backbone, .batch = (guint) batch, .decoders = (guint) decoders,
  };
  g_autoptr (DcrReport) report = dcr_report_new (&opts);
  if (!dcr_report_add_inputs (report, (const char *const *) argv + 1, (guint) argc - 1, &err))
    return dcr_cli_fail (err);

  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Run run = { report, out, cancellable, loop, .quiet = quiet, .phase = -1, .analysing = { "analysing" } };
  guint sig_int = g_unix_signal_add (SIGINT, on_signal, &run);
  guint sig_term = g_unix_signal_add (SIGTERM, on_signal, &run);
  GThread *thread = g_thread_new ("dcr-report", report_thread, &run);
  g_main_loop_run (loop);
  g_thread_join (thread);
  g_source_remove (sig_int);
  g_source_remove (sig_term);
  if (!run.ok)
    {
      if (g_error_matches (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        fprintf (stderr, "dcr: report cancelled; nothing was written to %s\n", out);
      else
        dcr_cli_fail (run.error);
      g_clear_error (&run.error);
      return 1;
    }
  guint analysed, rejected, changed, n = dcr_report_n_items (report);
  dcr_report_get_counts (report, &analysed, &rejected, &changed);
  double analysis_s, total_s = (g_get_monotonic_time () - t0) / 1e6;
  dcr_report_get_times (report, &analysis_s, NULL);
  printf ("report written to %s: %u file(s), %u analysed, %u rejected%s\n", out, n, analysed, rejected,
          changed ? "" : ", none changed since intake");
  if (changed)
    printf ("WARNING: %u file(s) CHANGED between intake and the report (flagged in it)\n", changed);
  printf ("speed: %.1f images/s end to end (%u files in %.2f s, loading and writing included); "
          "analysis alone %.1f images/s\n",
          total_s > 0 ? n / total_s : 0.0, n, total_s, analysis_s > 0 ? n / analysis_s : 0.0);
  return 0;
}
