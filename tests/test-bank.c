/* test-bank.c — the prototype bank: create/open checks (backbone, width,
 * schema, not-a-bank files), changes with audit and undo, features stored
 * as unit vectors, export/import, read-only use, and kill -9 in the middle
 * of writing: what was committed is all there, nothing else. */
#include "dcr-bank.h"

#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#define DIM 37

typedef struct {
  char *dir;
  char *path;
} Fixture;

static void
setup (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) err = NULL;
  fx->dir = g_dir_make_tmp ("dcr-bank-XXXXXX", &err);
  g_assert_no_error (err);
  fx->path = g_build_filename (fx->dir, "bank.dcrbank", NULL);
}

static void
rm_rf (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      g_remove (p);
    }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

static void
teardown (Fixture *fx, gconstpointer data)
{
  rm_rf (fx->dir);
  g_free (fx->dir);
  g_free (fx->path);
}

static void
feature (float *f, guint seed)
{
  for (guint i = 0; i < DIM; i++)
    f[i] = sinf ((float) (seed * 31 + i * 7)) * (1.0f + seed % 3);
}

static gint64
add_one (DcrBank *bank, guint seed, const char *sha, GError **error)
{
  float f[DIM];
  feature (f, seed);
  g_autofree char *src = g_strdup_printf ("/evidence/real-%u.jpg", seed);
  DcrPrototypeNew it = { f, src, sha, NULL, NULL, FALSE };
  gint64 id = 0;
  if (!dcr_bank_add (bank, &it, 1, TRUE, &id, error))
    return 0;
  return id;
}

static void
test_create_open (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) err = NULL;
  {
    g_autoptr (DcrBank) bank = dcr_bank_create (fx->path, "mobilenet_v2_b10", DIM, &err);
    g_assert_no_error (err);
    g_assert_cmpint (dcr_bank_count (bank, FALSE), ==, 0);
    g_assert_cmpuint (dcr_bank_dim (bank), ==, DIM);
    g_assert_nonnull (dcr_bank_uuid (bank));
  }
  /* no overwrite */
  g_assert_null (dcr_bank_create (fx->path, "x", DIM, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_IO);
  g_clear_error (&err);

  g_autoptr (DcrBank) ok = dcr_bank_open (fx->path, "mobilenet_v2_b10", DIM, FALSE, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (dcr_bank_backbone_id (ok), ==, "mobilenet_v2_b10");

  g_assert_null (dcr_bank_open (fx->path, "resnet50", 0, FALSE, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_MISMATCH);
  g_assert_nonnull (strstr (err->message, "resnet50"));
  g_clear_error (&err);
  g_assert_null (dcr_bank_open (fx->path, NULL, 2048, FALSE, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_MISMATCH);
  g_clear_error (&err);
  g_autofree char *missing = g_build_filename (fx->dir, "nope.dcrbank", NULL);
  g_assert_null (dcr_bank_open (missing, NULL, 0, FALSE, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_IO);
}

static void
test_not_a_bank (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *junk = g_build_filename (fx->dir, "junk.dcrbank", NULL);
  g_assert_true (g_file_set_contents (junk, "this is not a database, just some text that goes on for a while", -1, &err));
  g_assert_null (dcr_bank_open (junk, NULL, 0, FALSE, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT);
  g_assert_nonnull (strstr (err->message, "junk.dcrbank"));
  g_clear_error (&err);

  /* an SQLite file of someone else's */
  g_autofree char *other = g_build_filename (fx->dir, "other.db", NULL);
  sqlite3 *db;
  g_assert_cmpint (sqlite3_open (other, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "CREATE TABLE t (x)", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  g_assert_null (dcr_bank_open (other, NULL, 0, FALSE, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT);
  g_assert_nonnull (strstr (err->message, "not a DCR bank"));
  g_clear_error (&err);

  /* a bank from a newer DCR */
  {
    g_autoptr (DcrBank) b = dcr_bank_create (fx->path, "bb", DIM, &err);
    g_assert_no_error (err);
  }
  g_assert_cmpint (sqlite3_open (fx->path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  g_assert_null (dcr_bank_open (fx->path, NULL, 0, FALSE, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_VERSION);
  g_assert_nonnull (strstr (err->message, "newer"));
}

static void
test_add_and_features (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = dcr_bank_create (fx->path, "bb", DIM, &err);
  gint64 gen0 = dcr_bank_generation (bank);
  gint64 a = add_one (bank, 1, "aa11", &err);
  gint64 b = add_one (bank, 2, "bb22", &err);
  g_assert_no_error (err);
  g_assert_cmpint (a, >, 0);
  g_assert_cmpint (b, >, a);
  g_assert_cmpint (dcr_bank_generation (bank), ==, gen0 + 2);
  /* the same file again is skipped and points at the first */
  gint64 again = add_one (bank, 7, "aa11", &err);
  g_assert_no_error (err);
  g_assert_cmpint (again, ==, -a);
  g_assert_cmpint (dcr_bank_count (bank, FALSE), ==, 2);

  /* features come back as the unit vector, to fp16 precision */
  float *f = NULL;
  gint64 *ids = NULL;
  gsize n = 0;
  g_assert_true (dcr_bank_load_features (bank, TRUE, &f, &ids, &n, &err));
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpint (ids[0], ==, a);
  float want[DIM];
  feature (want, 2);
  double norm = 0;
  for (int i = 0; i < DIM; i++)
    norm += (double) want[i] * want[i];
  norm = sqrt (norm);
  for (int i = 0; i < DIM; i++)
    g_assert_cmpfloat_with_epsilon (f[DIM + i], want[i] / norm, 1e-3);
  g_free (f);
  g_free (ids);

  /* NaN features and zero vectors are refused, and nothing is added */
  float bad[DIM] = { 0 };
  DcrPrototypeNew it = { bad, "zero.png", "zz", NULL, NULL, FALSE };
  g_assert_false (dcr_bank_add (bank, &it, 1, TRUE, NULL, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID);
  g_assert_nonnull (strstr (err->message, "zero.png"));
  g_clear_error (&err);
  float good[DIM];
  feature (good, 9);
  bad[3] = NAN;
  DcrPrototypeNew two[] = { { good, "good.png", "g1", NULL, NULL, FALSE }, { bad, "nan.png", "n1", NULL, NULL, FALSE } };
  g_assert_false (dcr_bank_add (bank, two, 2, TRUE, NULL, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID);
  g_assert_cmpint (dcr_bank_count (bank, FALSE), ==, 2); /* the good one was rolled back too */
}

static void
test_changes_audit_undo (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = dcr_bank_create (fx->path, "bb", DIM, &err);
  gint64 ids[4];
  for (int i = 0; i < 4; i++)
    ids[i] = add_one (bank, 10 + i, NULL, &err);
  g_assert_no_error (err);

  g_assert_true (dcr_bank_set_enabled (bank, &ids[1], 1, FALSE, &err));
  g_assert_cmpint (dcr_bank_count (bank, TRUE), ==, 3);
  g_assert_true (dcr_bank_set_pinned (bank, &ids[2], 1, TRUE, &err));
  g_assert_true (dcr_bank_set_note (bank, ids[0], "from the lab's reference camera", &err));
  gint64 gen = dcr_bank_generation (bank);
  g_assert_true (dcr_bank_add_retrievals (bank, ids, 2, &err));
  g_assert_no_error (err);
  /* counting retrievals, notes and pins leave the GPU copy valid */
  g_assert_cmpint (dcr_bank_generation (bank), ==, gen);

  /* a missing id fails the whole change */
  gint64 mixed[] = { ids[3], 999999 };
  g_assert_false (dcr_bank_set_enabled (bank, mixed, 2, FALSE, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND);
  g_clear_error (&err);
  g_assert_cmpint (dcr_bank_count (bank, TRUE), ==, 3);

  g_autoptr (DcrPrototype) p0 = dcr_bank_get (bank, ids[0], FALSE, &err);
  g_assert_cmpstr (p0->note, ==, "from the lab's reference camera");
  g_assert_cmpint (p0->retrievals, ==, 1);
  g_assert_cmpstr (p0->source, ==, "/evidence/real-10.jpg");
  g_assert_nonnull (p0->added);

  /* remove two, then undo: same ids, same state */
  GPtrArray *removed = NULL;
  gint64 rm[] = { ids[1], ids[2] };
  g_assert_true (dcr_bank_remove (bank, rm, 2, &removed, &err));
  g_assert_cmpint (dcr_bank_count (bank, FALSE), ==, 2);
  g_assert_null (dcr_bank_get (bank, ids[1], FALSE, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND);
  g_clear_error (&err);
  g_assert_true (dcr_bank_restore (bank, removed, &err));
  g_assert_no_error (err);
  g_ptr_array_unref (removed);
  g_autoptr (DcrPrototype) p1 = dcr_bank_get (bank, ids[1], TRUE, &err);
  g_autoptr (DcrPrototype) p2 = dcr_bank_get (bank, ids[2], FALSE, &err);
  g_assert_false (p1->enabled);
  g_assert_true (p2->pinned);
  g_assert_cmpint (p1->retrievals, ==, 1);
  g_assert_nonnull (p1->feature);

  g_autoptr (GPtrArray) log = dcr_bank_audit_log (bank, 0, &err);
  g_assert_no_error (err);
  /* newest first: restore, remove, retrieved, note, pin, disable, 4× add */
  g_assert_cmpuint (log->len, ==, 10);
  const char *want[] = { "restore", "remove", "retrieved", "note", "pin", "disable", "add" };
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    g_assert_cmpstr (((DcrBankAudit *) log->pdata[i])->action, ==, want[i]);
  g_autofree char *rm_ids = g_strdup_printf ("%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT, ids[1], ids[2]);
  g_assert_cmpstr (((DcrBankAudit *) log->pdata[1])->ids, ==, rm_ids);
  g_assert_true (dcr_bank_check (bank, &err));
  g_assert_no_error (err);
}

static void
test_export_import_readonly (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = dcr_bank_create (fx->path, "bb", DIM, &err);
  add_one (bank, 1, "s1", &err);
  add_one (bank, 2, "s2", &err);
  g_autofree char *out = g_build_filename (fx->dir, "copy.dcrbank", NULL);
  g_assert_true (dcr_bank_export (bank, out, &err));
  g_assert_no_error (err);
  g_assert_false (dcr_bank_export (bank, out, &err)); /* never overwrites */
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_IO);
  g_clear_error (&err);

  g_autofree char *p2 = g_build_filename (fx->dir, "second.dcrbank", NULL);
  g_autoptr (DcrBank) second = dcr_bank_create (p2, "bb", DIM, &err);
  add_one (second, 2, "s2", &err);
  add_one (second, 3, "s3", &err);
  guint added = 0;
  g_assert_true (dcr_bank_import (second, out, &added, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (added, ==, 1); /* s2 was already there */
  g_assert_cmpint (dcr_bank_count (second, FALSE), ==, 3);

  /* a bank of another backbone is refused */
  g_autofree char *p3 = g_build_filename (fx->dir, "third.dcrbank", NULL);
  g_autoptr (DcrBank) third = dcr_bank_create (p3, "resnet50", DIM, &err);
  g_assert_false (dcr_bank_import (third, out, NULL, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_MISMATCH);
  g_clear_error (&err);

  g_autoptr (DcrBank) ro = dcr_bank_open (out, "bb", DIM, TRUE, &err);
  g_assert_no_error (err);
  g_assert_cmpint (dcr_bank_count (ro, FALSE), ==, 2);
  g_assert_cmpint (add_one (ro, 5, "s5", &err), ==, 0);
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_IO);
  g_clear_error (&err);
  /* a read-only bank can be exported, and stays read-only afterwards */
  g_autofree char *out2 = g_build_filename (fx->dir, "copy2.dcrbank", NULL);
  g_assert_true (dcr_bank_export (ro, out2, &err));
  g_assert_no_error (err);
  g_assert_cmpint (add_one (ro, 6, "s6", &err), ==, 0);
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_IO);
  g_clear_error (&err);
  g_autoptr (DcrBank) copy2 = dcr_bank_open (out2, "bb", DIM, TRUE, &err);
  g_assert_no_error (err);
  g_assert_cmpint (dcr_bank_count (copy2, FALSE), ==, 2);
}

/* The child adds batches of 5 prototypes, one transaction each, until it
 * is killed. Afterwards the bank must open and hold a whole number of
 * batches, each matched by its audit entry. */
static void
test_kill_during_add (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) err = NULL;
  {
    g_autoptr (DcrBank) bank = dcr_bank_create (fx->path, "bb", DIM, &err);
    g_assert_no_error (err);
  }
  for (int trial = 0; trial < 5; trial++)
    {
      pid_t pid = fork ();
      g_assert_cmpint (pid, >=, 0);
      if (pid == 0)
        {
          DcrBank *bank = dcr_bank_open (fx->path, "bb", DIM, FALSE, NULL);
          if (!bank)
            _exit (3);
          for (guint batch = 0;; batch++)
            {
              float f[5][DIM];
              DcrPrototypeNew items[5];
              for (int i = 0; i < 5; i++)
                {
                  feature (f[i], batch * 5 + i + trial * 100000);
                  items[i] = (DcrPrototypeNew) { f[i], "/x.png", NULL, NULL, NULL, FALSE };
                }
              if (!dcr_bank_add (bank, items, 5, FALSE, NULL, NULL))
                _exit (4);
            }
        }
      g_usleep (50000 + 37000 * trial);
      kill (pid, SIGKILL);
      int status;
      waitpid (pid, &status, 0);
      g_assert_true (WIFSIGNALED (status));

      g_autoptr (DcrBank) bank = dcr_bank_open (fx->path, "bb", DIM, FALSE, &err);
      g_assert_no_error (err);
      g_assert_true (dcr_bank_check (bank, &err));
      g_assert_no_error (err);
      gint64 count = dcr_bank_count (bank, FALSE);
      g_autoptr (GPtrArray) log = dcr_bank_audit_log (bank, 0, &err);
      g_assert_cmpint (count % 5, ==, 0);
      g_assert_cmpint (count, ==, 5 * (gint64) log->len);
      g_test_message ("trial %d: %" G_GINT64_FORMAT " prototypes survived the kill", trial, count);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/bank/" name, Fixture, NULL, setup, fn, teardown)
  ADD ("create-open", test_create_open);
  ADD ("not-a-bank", test_not_a_bank);
  ADD ("add-and-features", test_add_and_features);
  ADD ("changes-audit-undo", test_changes_audit_undo);
  ADD ("export-import-readonly", test_export_import_readonly);
  ADD ("kill-during-add", test_kill_during_add);
  return g_test_run ();
}
