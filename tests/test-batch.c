/* test-batch.c — the batch page under Xvfb: a folder dropped on the window
 * (two images and a text file named .png) becomes a batch — the queue shows
 * every file with its status and verdict, the report folder appears with
 * its four files — and clicking an analysed row opens it in the inspect
 * view; a second, larger batch cancelled mid-run, and a third cut short by
 * closing the window, leave no report folder.
 * A screenshot of the page goes to /tmp/dcr-batch.png. */
#include "dcr-config.h"
#include "dcr-application.h"
#include "dcr-window.h"
#include "dcr-test-files.h"
#include "dcr-test-gui.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmpdir, *model_path, *bank_path, *reports, *small_dir, *big_dir;
/* reports the test expects in the end: 2 when the cancelled batch finished first */
static guint n_reports = 1;

static void
make_fixtures (void)
{
  tmpdir = dcr_test_make_tmpdir ("dcr-batch-XXXXXX");
  model_path = g_build_filename (tmpdir, "m.safetensors", NULL);
  bank_path = g_build_filename (tmpdir, "bank.dcrbank", NULL);
  reports = g_build_filename (tmpdir, "reports", NULL);
  small_dir = g_build_filename (tmpdir, "evidence", NULL);
  big_dir = g_build_filename (tmpdir, "many", NULL);
  g_assert_cmpint (g_mkdir (small_dir, 0755), ==, 0);
  g_assert_cmpint (g_mkdir (big_dir, 0755), ==, 0);
  g_autofree char *a = g_build_filename (small_dir, "a.png", NULL);
  g_autofree char *b = g_build_filename (small_dir, "b.png", NULL);
  g_autofree char *c = g_build_filename (small_dir, "c.png", NULL);
  dcr_test_write_pattern_png (a, 80, 60, 1);
  dcr_test_write_pattern_png (b, 72, 72, 2);
  g_assert_true (g_file_set_contents (c, "not a picture at all", -1, NULL));
  for (guint i = 0; i < 120; i++)
    {
      g_autofree char *name = g_strdup_printf ("img%02u.png", i);
      g_autofree char *p = g_build_filename (big_dir, name, NULL);
      dcr_test_write_pattern_png (p, 48, 48, i);
    }

  dcr_test_make_untrained_detector (model_path, bank_path, 2, 5, "/evidence/known-real.png");
}

static void
wait_batch (DcrBatchView *view)
{
  gint64 deadline = g_get_monotonic_time () + 240 * G_USEC_PER_SEC;
  while (dcr_batch_view_get_state (view) == DCR_BATCH_RUNNING)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

static void
on_activate (GApplication *app, gpointer data)
{
  gboolean *done = data;
  DcrWindow *win = DCR_WINDOW (gtk_application_get_active_window (GTK_APPLICATION (app)));
  g_assert_nonnull (win);
  while (!gtk_widget_get_mapped (GTK_WIDGET (win)))
    g_main_context_iteration (NULL, TRUE);
  DcrBatchView *view = dcr_window_get_batch_view (win);

  /* the drop: one folder */
  g_autoptr (GFile) folder = g_file_new_for_path (small_dir);
  GFile *drop[] = { folder };
  dcr_window_open_files (win, drop, 1);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "batch");
  g_assert_cmpint (dcr_batch_view_get_state (view), ==, DCR_BATCH_RUNNING);
  wait_batch (view);
  g_assert_cmpint (dcr_batch_view_get_state (view), ==, DCR_BATCH_DONE);
  dcr_test_gui_spin (300);

  GListModel *queue = dcr_batch_view_get_queue (view);
  g_assert_cmpuint (g_list_model_get_n_items (queue), ==, 3);
  const char *name, *status, *verdict;
  dcr_batch_view_get_row (view, 2, &name, &status, &verdict);
  g_assert_cmpstr (name, ==, "c.png");
  g_assert_true (g_str_has_prefix (status, "Rejected: not a PNG or JPEG image by its content"));
  g_assert_cmpstr (verdict, ==, "");
  for (guint i = 0; i < 2; i++)
    {
      dcr_batch_view_get_row (view, i, &name, &status, &verdict);
      g_assert_cmpstr (name, ==, i ? "b.png" : "a.png");
      g_assert_true (g_str_has_prefix (status, "PNG · "));
      g_assert_true (!strcmp (verdict, "REAL") || !strcmp (verdict, "FAKE") || !strcmp (verdict, "INCONCLUSIVE"));
      /* the default backbone has the forensic CNN: the row names its most suspicious block */
      g_assert_nonnull (strstr (dcr_batch_view_get_row_tooltip (view, i), "Most suspicious region (the CNN's highest block"));
    }
  g_assert_nonnull (strstr (dcr_batch_view_get_row_tooltip (view, 2), "not a PNG or JPEG"));
  dcr_batch_view_get_row (view, 0, &name, &status, &verdict);
  g_assert_cmpstr (status, ==, "PNG · 80 × 60");

  const char *dir = dcr_batch_view_get_report_dir (view);
  g_assert_nonnull (dir);
  g_assert_true (g_str_has_prefix (dir, reports));
  g_assert_cmpuint (dcr_test_count_entries (dir), ==, 4);
  const char *names[] = { "report.pdf", "report.csv", "report.json", "report.sha256" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *p = g_build_filename (dir, names[i], NULL);
      g_assert_true (g_file_test (p, G_FILE_TEST_IS_REGULAR));
    }
  g_assert_nonnull (strstr (dcr_batch_view_get_status_text (view), "2 analysed, 1 rejected"));
  /* the case details from the page (its GSettings keys) are in the report */
  g_autofree char *json_path = g_build_filename (dir, "report.json", NULL);
  g_autofree char *json = NULL;
  g_assert_true (g_file_get_contents (json_path, &json, NULL, NULL));
  g_assert_nonnull (strstr (json, "\"case_id\" : \"CASE-77\""));
  g_assert_nonnull (strstr (json, "\"examiner\" : \"A. Analyst\""));
  g_assert_cmpuint (dcr_test_count_entries (reports), ==, 1);
  g_object_unref (dcr_test_gui_snapshot (GTK_WIDGET (win), "/tmp/dcr-batch.png"));

  /* a click on a row opens that file in the inspect view */
  dcr_batch_view_activate_row (view, 1);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "busy");
  dcr_test_gui_wait_while_busy (win, 240);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "result");
  g_assert_cmpstr (dcr_inspect_view_get_result (dcr_window_get_inspect_view (win))->name, ==, "b.png");
  /* and the menu's "Show Batch Report" brings the batch back */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (win), "win.show-batch", NULL));
  g_assert_cmpstr (dcr_window_get_page (win), ==, "batch");
  g_assert_nonnull (dcr_batch_view_get_report_dir (view));

  /* cancelled once the first files are in: no second report, nothing partial */
  g_autoptr (GFile) many = g_file_new_for_path (big_dir);
  GFile *drop2[] = { many };
  dcr_window_open_files (win, drop2, 1);
  g_assert_cmpstr (dcr_window_get_page (win), ==, "batch");
  gint64 deadline = g_get_monotonic_time () + 240 * G_USEC_PER_SEC;
  gboolean some = FALSE;
  while (!some && dcr_batch_view_get_state (view) == DCR_BATCH_RUNNING)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      guint n = g_list_model_get_n_items (dcr_batch_view_get_queue (view));
      for (guint i = 0; i < n && !some; i++)
        {
          dcr_batch_view_get_row (view, i, &name, &status, &verdict);
          some = *verdict != '\0';
        }
    }
  g_assert_true (some);
  dcr_batch_view_cancel (view);
  wait_batch (view);
  if (dcr_batch_view_get_state (view) == DCR_BATCH_DONE)
    {
      /* the whole batch was through before the cancel reached it (a fast
       * machine): then its report is complete and the page says so */
      g_test_message ("the second batch finished before the cancel reached it");
      g_assert_nonnull (dcr_batch_view_get_report_dir (view));
      g_assert_cmpuint (dcr_test_count_entries (dcr_batch_view_get_report_dir (view)), ==, 4);
      g_assert_cmpuint (dcr_test_count_entries (reports), ==, 2);
      n_reports = 2;
    }
  else
    {
      g_assert_cmpint (dcr_batch_view_get_state (view), ==, DCR_BATCH_CANCELLED);
      g_assert_null (dcr_batch_view_get_report_dir (view));
      g_assert_cmpuint (dcr_test_count_entries (reports), ==, 1);
    }

  /* closing the window in the middle of a batch cancels it too; the
   * application waits for that before it quits (checked in test_batch) */
  dcr_window_open_files (win, drop2, 1);
  g_assert_cmpint (dcr_batch_view_get_state (view), ==, DCR_BATCH_RUNNING);
  dcr_test_gui_spin (200);
  *done = TRUE;
  gtk_window_close (GTK_WINDOW (win));
}

static void
test_batch (void)
{
  g_autoptr (GSettings) settings = g_settings_new (DCR_APP_ID);
  g_settings_set_string (settings, "model-file", model_path);
  g_settings_set_string (settings, "bank-file", bank_path);
  g_settings_set_string (settings, "report-folder", reports);
  g_settings_set_string (settings, "report-case", "CASE-77");
  g_settings_set_string (settings, "report-examiner", "A. Analyst");
  g_autoptr (DcrApplication) app = dcr_application_new ();
  gboolean done = FALSE;
  dcr_test_gui_run (G_APPLICATION (app), G_CALLBACK (on_activate), &done);
  g_assert_true (done);
  /* the batch cut short by the window's closing left no report */
  g_assert_cmpuint (dcr_test_count_entries (reports), ==, n_reports);
}

int
main (int argc, char **argv)
{
  if (!dcr_test_gui_init (&argc, &argv))
    return 0;
  make_fixtures ();
  g_test_add_func ("/app/batch/drop-folder", test_batch);
  int rc = g_test_run ();
  dcr_test_remove_tree (tmpdir);
  return rc;
}
