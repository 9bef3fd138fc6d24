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

/* A thumbnail-sized blob (20–40 KB, so it spans overflow pages) unique to seed. */
static GBytes *
fake_thumbnail (guint seed)
{
  gsize n = 20000 + (seed * 7919) % 20000;
  guint8 *b = g_malloc (n);
  guint32 x = seed * 2654435761u + 1;
  for (gsize i = 0; i < n; i++)
    {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      b[i] = (guint8) x;
    }
  return g_bytes_new_take (b, n);
}

static gint64
add_with_thumbnail (DcrBank *bank, guint seed, gboolean with_thumb, GError **error)
{
  float f[DIM];
  feature (f, seed);
  g_autofree char *src = g_strdup_printf ("/evidence/real-%u.jpg", seed);
  g_autofree char *note = g_strdup_printf ("note %u", seed);
  g_autoptr (GBytes) thumb = with_thumb ? fake_thumbnail (seed) : NULL;
  DcrPrototypeNew it = { f, src, NULL, thumb, note, seed % 2 == 0 };
  gint64 id = 0;
  if (!dcr_bank_add (bank, &it, 1, FALSE, &id, error))
    return 0;
  return id;
}

/* The light listing has everything but the thumbnail bytes; the getter
 * returns the same bytes as the full listing, one at a time. */
static void
test_light_list_thumbnails (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBank) bank = dcr_bank_create (fx->path, "mobilenet_v2_b10", DIM, &err);
  g_assert_no_error (err);
  gint64 ids[8];
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      ids[i] = add_with_thumbnail (bank, 100 + i, i % 3 != 1, &err);
      g_assert_no_error (err);
    }
  g_assert_true (dcr_bank_set_enabled (bank, &ids[2], 1, FALSE, &err));
  g_assert_true (dcr_bank_add_retrievals (bank, &ids[3], 1, &err));
  g_assert_no_error (err);

  for (int ro = 0; ro < 2; ro++)
    {
      g_autoptr (DcrBank) b = ro ? dcr_bank_open (fx->path, NULL, 0, TRUE, &err) : dcr_bank_ref (bank);
      g_assert_no_error (err);
      g_autoptr (GPtrArray) full = dcr_bank_list (b, &err);
      g_assert_no_error (err);
      g_autoptr (GPtrArray) light = dcr_bank_list_full (b, DCR_BANK_LIST_NO_THUMBNAILS, &err);
      g_assert_no_error (err);
      g_assert_cmpuint (full->len, ==, G_N_ELEMENTS (ids));
      g_assert_cmpuint (light->len, ==, full->len);
      for (guint i = 0; i < full->len; i++)
        {
          DcrPrototype *f = full->pdata[i], *l = light->pdata[i];
          g_assert_cmpint (l->id, ==, ids[i]);
          g_assert_cmpint (l->id, ==, f->id);
          g_assert_cmpstr (l->source, ==, f->source);
          g_assert_cmpstr (l->sha256, ==, f->sha256);
          g_assert_cmpstr (l->note, ==, f->note);
          g_assert_true (l->added && f->added && g_date_time_equal (l->added, f->added));
          g_assert_cmpint (l->enabled, ==, f->enabled);
          g_assert_cmpint (l->pinned, ==, f->pinned);
          g_assert_cmpint (l->retrievals, ==, f->retrievals);
          g_assert_null (l->feature);
          g_assert_null (f->feature);
          /* no bytes, but the size (so "has a thumbnail") is known */
          g_assert_null (l->thumbnail);
          gboolean has = i % 3 != 1;
          g_assert_cmpint (f->thumbnail != NULL, ==, has);
          g_assert_cmpuint (l->thumbnail_size, ==, has ? g_bytes_get_size (f->thumbnail) : 0);
          g_assert_cmpuint (f->thumbnail_size, ==, l->thumbnail_size);

          g_autoptr (GBytes) t = dcr_bank_get_thumbnail (b, l->id, &err);
          g_assert_no_error (err);
          if (has)
            {
              g_autoptr (GBytes) want = fake_thumbnail (100 + i);
              g_assert_nonnull (t);
              g_assert_true (g_bytes_equal (t, f->thumbnail));
              g_assert_true (g_bytes_equal (t, want));
            }
          else
            g_assert_null (t); /* none, and no error */
        }
    }

  /* dcr_bank_get agrees */
  g_autoptr (DcrPrototype) p0 = dcr_bank_get (bank, ids[0], FALSE, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (p0->thumbnail_size, ==, g_bytes_get_size (p0->thumbnail));

  /* unknown or removed id: a clear error */
  g_assert_null (dcr_bank_get_thumbnail (bank, 999999, &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (err->message, "999999"));
  g_clear_error (&err);
  g_assert_true (dcr_bank_remove (bank, &ids[0], 1, NULL, &err));
  g_assert_null (dcr_bank_get_thumbnail (bank, ids[0], &err));
  g_assert_error (err, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND);
  g_clear_error (&err);
  /* a committed change is seen by the getter's own connection */
  gint64 id_new = add_with_thumbnail (bank, 500, TRUE, &err);
  g_assert_no_error (err);
  g_autoptr (GBytes) t_new = dcr_bank_get_thumbnail (bank, id_new, &err);
  g_autoptr (GBytes) want_new = fake_thumbnail (500);
  g_assert_no_error (err);
  g_assert_true (t_new && g_bytes_equal (t_new, want_new));
}

typedef struct {
  DcrBank *bank; /* a reference of this thread's own */
  const gint64 *stable;
  guint n_stable;
  const gint64 *churn; /* added and removed meanwhile */
  guint n_churn;
  gint *stop;
  guint reads, failures;
} Reader;

static gpointer
reader_thread (gpointer data)
{
  Reader *r = data;
  guint extra = 0;
  /* keep reading a while after the main thread has dropped its reference */
  for (guint i = 0; extra < 50; i++)
    {
      if (g_atomic_int_get (r->stop))
        extra++;
      guint k = (i * 7 + GPOINTER_TO_UINT (g_thread_self ())) % (r->n_stable + r->n_churn);
      g_autoptr (GError) err = NULL;
      if (k < r->n_stable)
        {
          g_autoptr (GBytes) t = dcr_bank_get_thumbnail (r->bank, r->stable[k], &err);
          g_autoptr (GBytes) want = fake_thumbnail (200 + k);
          if (!t || !g_bytes_equal (t, want))
            r->failures++;
        }
      else
        {
          /* present or not, depending on the moment: never anything else */
          g_autoptr (GBytes) t = dcr_bank_get_thumbnail (r->bank, r->churn[k - r->n_stable], &err);
          if (!t && !g_error_matches (err, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND))
            r->failures++;
        }
      r->reads++;
    }
  dcr_bank_close (r->bank);
  return NULL;
}

/* Several threads fetch thumbnails while the main thread adds, removes and
 * restores prototypes through the same DcrBank, then closes it first. */
static void
test_thumbnail_threads (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) err = NULL;
  DcrBank *bank = dcr_bank_create (fx->path, "mobilenet_v2_b10", DIM, &err);
  g_assert_no_error (err);
  gint64 stable[6], churn[4];
  for (guint i = 0; i < G_N_ELEMENTS (stable); i++)
    stable[i] = add_with_thumbnail (bank, 200 + i, TRUE, &err);
  for (guint i = 0; i < G_N_ELEMENTS (churn); i++)
    churn[i] = add_with_thumbnail (bank, 300 + i, TRUE, &err);
  g_assert_no_error (err);

  gint stop = 0;
  Reader readers[4];
  GThread *threads[G_N_ELEMENTS (readers)];
  for (guint i = 0; i < G_N_ELEMENTS (readers); i++)
    {
      readers[i] = (Reader) { dcr_bank_ref (bank), stable, G_N_ELEMENTS (stable), churn, G_N_ELEMENTS (churn),
                              &stop, 0, 0 };
      threads[i] = g_thread_new ("thumb-reader", reader_thread, &readers[i]);
    }
  for (guint round = 0; round < 20; round++)
    {
      GPtrArray *removed = NULL;
      g_assert_true (dcr_bank_remove (bank, churn, G_N_ELEMENTS (churn), &removed, &err));
      g_assert_no_error (err);
      gint64 extra = add_with_thumbnail (bank, 400 + round, round % 2, &err);
      g_assert_no_error (err);
      g_autoptr (GPtrArray) light = dcr_bank_list_full (bank, DCR_BANK_LIST_NO_THUMBNAILS, &err);
      g_assert_no_error (err);
      g_assert_cmpuint (light->len, ==, G_N_ELEMENTS (stable) + 1);
      g_assert_true (dcr_bank_restore (bank, removed, &err));
      g_assert_no_error (err);
      g_ptr_array_unref (removed);
      g_assert_true (dcr_bank_remove (bank, &extra, 1, NULL, &err));
      g_assert_no_error (err);
      /* the main thread reads thumbnails too */
      g_autoptr (GBytes) t = dcr_bank_get_thumbnail (bank, churn[round % G_N_ELEMENTS (churn)], &err);
      g_autoptr (GBytes) want = fake_thumbnail (300 + round % G_N_ELEMENTS (churn));
      g_assert_no_error (err);
      g_assert_true (t && g_bytes_equal (t, want));
    }
  /* the readers hold references of their own: closing here closes nothing yet */
  dcr_bank_close (bank);
  g_atomic_int_set (&stop, 1);
  for (guint i = 0; i < G_N_ELEMENTS (readers); i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (readers[i].failures, ==, 0);
      g_assert_cmpuint (readers[i].reads, >=, 50);
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
  ADD ("light-list-thumbnails", test_light_list_thumbnails);
  ADD ("thumbnail-threads", test_thumbnail_threads);
  return g_test_run ();
}
