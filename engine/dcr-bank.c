/* dcr-bank.c — the prototype bank in SQLite (WAL, synchronous=FULL):
 * features as little-endian fp16 blobs (they are unit vectors, so fp16
 * keeps cosine similarity to ~1e-3 and halves the file), provenance
 * columns, and an audit table written in the same transaction as the
 * change it records. */
#include "dcr-bank.h"
#include "dcr-half.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>

G_DEFINE_QUARK (dcr-bank-error-quark, dcr_bank_error)

struct _DcrBank {
  gatomicrefcount ref;
  sqlite3 *db;
  char *path;
  char *backbone_id;
  char *uuid;
  guint dim;
  gboolean read_only;
  /* dcr_bank_get_thumbnail's own read-only connection and statement, opened
   * on first use; only ever touched with thumb_lock held (see there). */
  GMutex thumb_lock;
  sqlite3 *thumb_db;
  sqlite3_stmt *thumb_st;
};

static const char schema_v1[] =
  "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
  "CREATE TABLE prototypes ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  feature BLOB NOT NULL,"
  "  source TEXT, sha256 TEXT, thumbnail BLOB,"
  "  added_at TEXT NOT NULL, note TEXT,"
  "  enabled INTEGER NOT NULL DEFAULT 1,"
  "  pinned INTEGER NOT NULL DEFAULT 0,"
  "  retrievals INTEGER NOT NULL DEFAULT 0);"
  "CREATE INDEX prototypes_sha256 ON prototypes (sha256);"
  "CREATE TABLE audit ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  time TEXT NOT NULL, action TEXT NOT NULL, ids TEXT, detail TEXT);";

static gboolean
db_error (DcrBank *bank, int rc, const char *what, GError **error)
{
  int code = DCR_BANK_ERROR_IO;
  if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
    code = DCR_BANK_ERROR_CORRUPT;
  g_set_error (error, DCR_BANK_ERROR, code, "%s: %s: %s%s", bank->path, what,
               bank->db ? sqlite3_errmsg (bank->db) : sqlite3_errstr (rc),
               code == DCR_BANK_ERROR_CORRUPT ? " (the file is damaged or not a DCR bank)" : "");
  return FALSE;
}

static gboolean
exec (DcrBank *bank, const char *sql, GError **error)
{
  int rc = sqlite3_exec (bank->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK || db_error (bank, rc, "database error", error);
}

static sqlite3_stmt *
prepare (DcrBank *bank, const char *sql, GError **error)
{
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2 (bank->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    {
      db_error (bank, rc, "database error", error);
      return NULL;
    }
  return st;
}

static char *
now_iso (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

static char *
meta_get (DcrBank *bank, const char *key, GError **error)
{
  sqlite3_stmt *st = prepare (bank, "SELECT value FROM meta WHERE key = ?", error);
  if (!st)
    return NULL;
  sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
  char *v = NULL;
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW && sqlite3_column_type (st, 0) != SQLITE_NULL)
    v = g_strdup ((const char *) sqlite3_column_text (st, 0));
  else if (rc == SQLITE_ROW)
    g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT,
                 "%s: the bank's \"%s\" entry is empty (damaged, or not a DCR bank)", bank->path, key);
  else if (rc == SQLITE_DONE)
    g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT,
                 "%s: the bank has no \"%s\" entry (damaged, or not a DCR bank)", bank->path, key);
  else
    db_error (bank, rc, "reading the bank header", error);
  sqlite3_finalize (st);
  return v;
}

static gboolean
meta_set (DcrBank *bank, const char *key, const char *value, GError **error)
{
  sqlite3_stmt *st = prepare (bank, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", error);
  if (!st)
    return FALSE;
  sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, value, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  return rc == SQLITE_DONE || db_error (bank, rc, "writing the bank header", error);
}

static gboolean
configure (DcrBank *bank, GError **error)
{
  sqlite3_busy_timeout (bank->db, 10000);
  if (bank->read_only)
    return exec (bank, "PRAGMA query_only = 1;", error);
  /* WAL keeps readers (the GUI) going while `dcr bank add` writes;
   * synchronous=FULL makes a committed prototype survive power loss too. */
  return exec (bank, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", error);
}

static DcrBank *
bank_alloc (const char *path, gboolean read_only)
{
  DcrBank *bank = g_new0 (DcrBank, 1);
  g_atomic_ref_count_init (&bank->ref);
  g_mutex_init (&bank->thumb_lock);
  bank->path = g_strdup (path);
  bank->read_only = read_only;
  return bank;
}

DcrBank *
dcr_bank_create (const char *path, const char *backbone_id, guint dim, GError **error)
{
  g_return_val_if_fail (backbone_id && dim > 0, NULL);
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_IO,
                   "%s already exists; open it, or choose another name for the new bank", path);
      return NULL;
    }
  g_autoptr (DcrBank) bank = bank_alloc (path, FALSE);
  int rc = sqlite3_open_v2 (path, &bank->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (rc != SQLITE_OK)
    {
      db_error (bank, rc, "cannot create the bank", error);
      return NULL;
    }
  g_autofree char *uuid = g_uuid_string_random ();
  g_autofree char *dim_s = g_strdup_printf ("%u", dim);
  g_autofree char *ver = g_strdup_printf ("%d", DCR_BANK_SCHEMA_VERSION);
  g_autofree char *now = now_iso ();
  if (!configure (bank, error) || !exec (bank, "BEGIN IMMEDIATE", error))
    return NULL;
  if (!exec (bank, schema_v1, error) ||
      !meta_set (bank, "schema_version", ver, error) || !meta_set (bank, "backbone_id", backbone_id, error) ||
      !meta_set (bank, "feature_dim", dim_s, error) || !meta_set (bank, "uuid", uuid, error) ||
      !meta_set (bank, "created", now, error) || !meta_set (bank, "generation", "0", error) ||
      !exec (bank, "COMMIT", error))
    {
      sqlite3_exec (bank->db, "ROLLBACK", NULL, NULL, NULL);
      return NULL;
    }
  bank->backbone_id = g_strdup (backbone_id);
  bank->dim = dim;
  bank->uuid = g_steal_pointer (&uuid);
  return g_steal_pointer (&bank);
}

DcrBank *
dcr_bank_open (const char *path, const char *backbone_id, guint dim, gboolean read_only, GError **error)
{
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_IO, "%s: no such bank file", path);
      return NULL;
    }
  /* SQLite takes an empty file for an empty database; say what it is. */
  GStatBuf sb;
  if (g_stat (path, &sb) == 0 && sb.st_size == 0)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT, "%s: the file is empty (not a DCR bank)", path);
      return NULL;
    }
  g_autoptr (DcrBank) bank = bank_alloc (path, read_only);
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  int rc = sqlite3_open_v2 (path, &bank->db, flags, NULL);
  if (rc != SQLITE_OK)
    {
      db_error (bank, rc, "cannot open the bank", error);
      return NULL;
    }
  if (!configure (bank, error))
    return NULL;

  /* Is this a DCR bank at all? */
  sqlite3_stmt *st = prepare (bank, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", error);
  if (!st)
    return NULL;
  rc = sqlite3_step (st);
  gboolean has_meta = rc == SQLITE_ROW && sqlite3_column_int (st, 0) == 1;
  sqlite3_finalize (st);
  if (rc != SQLITE_ROW)
    {
      db_error (bank, rc, "cannot read the bank", error);
      return NULL;
    }
  if (!has_meta)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT,
                   "%s is an SQLite database but not a DCR bank (no meta table)", path);
      return NULL;
    }

  g_autofree char *ver = meta_get (bank, "schema_version", error);
  if (!ver)
    return NULL;
  gint64 v = g_ascii_strtoll (ver, NULL, 10);
  if (v > DCR_BANK_SCHEMA_VERSION)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_VERSION,
                   "%s was written by a newer DCR Forensics (bank schema %" G_GINT64_FORMAT ", this build "
                   "reads up to %d); update DCR Forensics to open it", path, v, DCR_BANK_SCHEMA_VERSION);
      return NULL;
    }
  if (v < 1)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT, "%s: invalid bank schema version \"%s\"", path, ver);
      return NULL;
    }
  /* Schema 1 is the first; older versions would be migrated here. */

  bank->backbone_id = meta_get (bank, "backbone_id", error);
  g_autofree char *dim_s = bank->backbone_id ? meta_get (bank, "feature_dim", error) : NULL;
  bank->uuid = dim_s ? meta_get (bank, "uuid", error) : NULL;
  if (!bank->uuid)
    return NULL;
  bank->dim = (guint) g_ascii_strtoull (dim_s, NULL, 10);
  if (bank->dim == 0 || bank->dim > 65536)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT, "%s: invalid feature width \"%s\"", path, dim_s);
      return NULL;
    }
  if (backbone_id && g_strcmp0 (backbone_id, bank->backbone_id) != 0)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_MISMATCH,
                   "%s was built with the backbone \"%s\", but the model uses \"%s\"; its prototypes "
                   "cannot be compared — rebuild the bank with this model's backbone",
                   path, bank->backbone_id, backbone_id);
      return NULL;
    }
  if (dim && dim != bank->dim)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_MISMATCH,
                   "%s holds %u-wide features, but the model produces %u-wide ones; rebuild the bank "
                   "with this model", path, bank->dim, dim);
      return NULL;
    }
  return g_steal_pointer (&bank);
}

DcrBank *
dcr_bank_ref (DcrBank *bank)
{
  g_return_val_if_fail (bank != NULL, NULL);
  g_atomic_ref_count_inc (&bank->ref);
  return bank;
}

void
dcr_bank_close (DcrBank *bank)
{
  if (!bank || !g_atomic_ref_count_dec (&bank->ref))
    return;
  /* the last reference: no other thread can be in dcr_bank_get_thumbnail */
  sqlite3_finalize (bank->thumb_st);
  if (bank->thumb_db)
    sqlite3_close (bank->thumb_db);
  g_mutex_clear (&bank->thumb_lock);
  if (bank->db)
    sqlite3_close (bank->db);
  g_free (bank->path);
  g_free (bank->backbone_id);
  g_free (bank->uuid);
  g_free (bank);
}

const char *dcr_bank_path (DcrBank *bank) { return bank->path; }
const char *dcr_bank_backbone_id (DcrBank *bank) { return bank->backbone_id; }
guint dcr_bank_dim (DcrBank *bank) { return bank->dim; }
const char *dcr_bank_uuid (DcrBank *bank) { return bank->uuid; }

static gint64
query_int (DcrBank *bank, const char *sql)
{
  sqlite3_stmt *st = prepare (bank, sql, NULL);
  gint64 v = -1;
  if (st && sqlite3_step (st) == SQLITE_ROW)
    v = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  return v;
}

gint64
dcr_bank_count (DcrBank *bank, gboolean enabled_only)
{
  return query_int (bank, enabled_only ? "SELECT count(*) FROM prototypes WHERE enabled"
                                       : "SELECT count(*) FROM prototypes");
}

gint64
dcr_bank_generation (DcrBank *bank)
{
  return query_int (bank, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'");
}

/* ---- changes: one transaction each, audited --------------------------- */

static gboolean
writable (DcrBank *bank, GError **error)
{
  if (bank->read_only)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_IO, "%s is open read-only", bank->path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
begin (DcrBank *bank, GError **error)
{
  return writable (bank, error) && exec (bank, "BEGIN IMMEDIATE", error);
}

static char *
ids_string (const gint64 *ids, guint n)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < n; i++)
    {
      if (i == 200)
        {
          g_string_append_printf (s, ",… (%u in all)", n);
          break;
        }
      g_string_append_printf (s, i ? ",%" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, ids[i]);
    }
  return g_string_free (s, FALSE);
}

/* Writes the audit entry, bumps the generation when the change alters what
 * retrieval sees, and commits; rolls back on any failure so that the change
 * and its record stand or fall together. */
static gboolean
commit_change (DcrBank *bank, const char *action, const gint64 *ids, guint n, const char *detail,
               gboolean features_changed, GError **error)
{
  g_autofree char *when = now_iso ();
  g_autofree char *id_list = ids ? ids_string (ids, n) : NULL;
  sqlite3_stmt *st = prepare (bank, "INSERT INTO audit (time, action, ids, detail) VALUES (?, ?, ?, ?)", error);
  int rc = SQLITE_ERROR;
  if (st)
    {
      sqlite3_bind_text (st, 1, when, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 2, action, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 3, id_list, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 4, detail, -1, SQLITE_STATIC);
      rc = sqlite3_step (st);
      sqlite3_finalize (st);
      if (rc != SQLITE_DONE)
        db_error (bank, rc, "writing the audit log", error);
    }
  if (rc == SQLITE_DONE &&
      (!features_changed ||
       exec (bank, "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'", error)) &&
      exec (bank, "COMMIT", error))
    return TRUE;
  sqlite3_exec (bank->db, "ROLLBACK", NULL, NULL, NULL);
  return FALSE;
}

static gboolean
commit (DcrBank *bank, const char *action, const gint64 *ids, guint n, const char *detail, GError **error)
{
  return commit_change (bank, action, ids, n, detail, TRUE, error);
}

static void
rollback (DcrBank *bank)
{
  sqlite3_exec (bank->db, "ROLLBACK", NULL, NULL, NULL);
}

static GBytes *
encode_feature (DcrBank *bank, const float *f, GError **error)
{
  double norm = 0;
  for (guint i = 0; i < bank->dim; i++)
    {
      if (!isfinite (f[i]))
        {
          g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID,
                       "feature element %u is not a finite number; the image's features are unusable", i);
          return NULL;
        }
      norm += (double) f[i] * f[i];
    }
  norm = sqrt (norm);
  if (norm < 1e-12)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID, "the feature vector is all zeros");
      return NULL;
    }
  guint16 *h = g_new (guint16, bank->dim);
  for (guint i = 0; i < bank->dim; i++)
    h[i] = GUINT16_TO_LE (dcr_half_from_float ((float) (f[i] / norm)));
  return g_bytes_new_take (h, bank->dim * sizeof (guint16));
}

static gboolean
decode_feature (DcrBank *bank, gint64 id, const void *blob, int bytes, float *out, GError **error)
{
  if (!blob || bytes != (int) (bank->dim * sizeof (guint16)))
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT,
                   "%s: prototype %" G_GINT64_FORMAT " has a %d-byte feature, expected %u (damaged bank)",
                   bank->path, id, bytes, (guint) (bank->dim * sizeof (guint16)));
      return FALSE;
    }
  const guint8 *b = blob;
  for (guint i = 0; i < bank->dim; i++)
    out[i] = dcr_half_to_float ((guint16) (b[2 * i] | (b[2 * i + 1] << 8)));
  return TRUE;
}

static gint64
find_sha (DcrBank *bank, sqlite3_stmt *st, const char *sha)
{
  sqlite3_reset (st);
  sqlite3_bind_text (st, 1, sha, -1, SQLITE_STATIC);
  return sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : 0;
}

static gboolean
insert_rows (DcrBank *bank, const DcrPrototypeNew *items, const gint64 *want_ids, const char *const *added_at,
             const gint64 *retrievals, const gboolean *enabled, guint n, gboolean skip_duplicates,
             gint64 *ids_out, guint *n_added, GError **error)
{
  sqlite3_stmt *ins = prepare (bank,
                               "INSERT INTO prototypes (id, feature, source, sha256, thumbnail, added_at, note, "
                               "enabled, pinned, retrievals) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", error);
  sqlite3_stmt *dup = ins ? prepare (bank, "SELECT id FROM prototypes WHERE sha256 = ? LIMIT 1", error) : NULL;
  if (!dup)
    {
      sqlite3_finalize (ins);
      return FALSE;
    }
  g_autofree char *now = now_iso ();
  gboolean ok = TRUE;
  guint added = 0;
  for (guint i = 0; i < n && ok; i++)
    {
      const DcrPrototypeNew *it = &items[i];
      gint64 existing = skip_duplicates && it->sha256 ? find_sha (bank, dup, it->sha256) : 0;
      if (existing)
        {
          if (ids_out)
            ids_out[i] = -existing;
          continue;
        }
      g_autoptr (GError) ferr = NULL;
      g_autoptr (GBytes) feat = encode_feature (bank, it->feature, &ferr);
      if (!feat)
        {
          g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID, "%s: %s",
                       it->source ? it->source : "prototype", ferr->message);
          ok = FALSE;
          break;
        }
      sqlite3_reset (ins);
      sqlite3_clear_bindings (ins);
      if (want_ids)
        sqlite3_bind_int64 (ins, 1, want_ids[i]);
      gsize fl;
      const void *fd = g_bytes_get_data (feat, &fl);
      sqlite3_bind_blob (ins, 2, fd, (int) fl, SQLITE_STATIC);
      sqlite3_bind_text (ins, 3, it->source, -1, SQLITE_STATIC);
      sqlite3_bind_text (ins, 4, it->sha256, -1, SQLITE_STATIC);
      if (it->thumbnail)
        {
          gsize tl;
          const void *td = g_bytes_get_data (it->thumbnail, &tl);
          sqlite3_bind_blob (ins, 5, td, (int) tl, SQLITE_STATIC);
        }
      sqlite3_bind_text (ins, 6, added_at ? added_at[i] : now, -1, SQLITE_STATIC);
      sqlite3_bind_text (ins, 7, it->note, -1, SQLITE_STATIC);
      sqlite3_bind_int (ins, 8, enabled ? enabled[i] : 1);
      sqlite3_bind_int (ins, 9, it->pinned ? 1 : 0);
      sqlite3_bind_int64 (ins, 10, retrievals ? retrievals[i] : 0);
      int rc = sqlite3_step (ins);
      if (rc != SQLITE_DONE)
        ok = db_error (bank, rc, "adding a prototype", error);
      else
        {
          added++;
          if (ids_out)
            ids_out[i] = sqlite3_last_insert_rowid (bank->db);
        }
    }
  sqlite3_finalize (ins);
  sqlite3_finalize (dup);
  if (n_added)
    *n_added = added;
  return ok;
}

gboolean
dcr_bank_add (DcrBank *bank, const DcrPrototypeNew *items, guint n, gboolean skip_duplicates,
              gint64 *ids_out, GError **error)
{
  if (!begin (bank, error))
    return FALSE;
  g_autofree gint64 *ids = g_new0 (gint64, MAX (n, 1));
  guint added = 0;
  if (!insert_rows (bank, items, NULL, NULL, NULL, NULL, n, skip_duplicates, ids, &added, error))
    {
      rollback (bank);
      return FALSE;
    }
  g_autofree gint64 *new_ids = g_new0 (gint64, MAX (added, 1));
  guint k = 0;
  for (guint i = 0; i < n; i++)
    if (ids[i] > 0)
      new_ids[k++] = ids[i];
  g_autofree char *detail = g_strdup_printf ("%u added, %u duplicate(s) skipped", added, n - added);
  if (!commit (bank, "add", new_ids, k, detail, error))
    return FALSE;
  if (ids_out)
    memcpy (ids_out, ids, n * sizeof (gint64));
  return TRUE;
}

/* Runs `sql` (one ? for the id) for each id; a missing id fails the whole change. */
static gboolean
update_each (DcrBank *bank, const char *sql, const gint64 *ids, guint n, const char *action,
             const char *detail, gboolean features_changed, GError **error)
{
  if (!begin (bank, error))
    return FALSE;
  sqlite3_stmt *st = prepare (bank, sql, error);
  if (!st)
    {
      rollback (bank);
      return FALSE;
    }
  gboolean ok = TRUE;
  for (guint i = 0; i < n && ok; i++)
    {
      sqlite3_reset (st);
      sqlite3_bind_int64 (st, 1, ids[i]);
      int rc = sqlite3_step (st);
      if (rc != SQLITE_DONE)
        ok = db_error (bank, rc, action, error);
      else if (sqlite3_changes (bank->db) == 0)
        {
          g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND,
                       "%s: there is no prototype %" G_GINT64_FORMAT "; nothing was changed", bank->path, ids[i]);
          ok = FALSE;
        }
    }
  sqlite3_finalize (st);
  if (!ok)
    {
      rollback (bank);
      return FALSE;
    }
  return commit_change (bank, action, ids, n, detail, features_changed, error);
}

gboolean
dcr_bank_set_enabled (DcrBank *bank, const gint64 *ids, guint n, gboolean enabled, GError **error)
{
  return update_each (bank, enabled ? "UPDATE prototypes SET enabled = 1 WHERE id = ?"
                                    : "UPDATE prototypes SET enabled = 0 WHERE id = ?",
                      ids, n, enabled ? "enable" : "disable", NULL, TRUE, error);
}

gboolean
dcr_bank_set_pinned (DcrBank *bank, const gint64 *ids, guint n, gboolean pinned, GError **error)
{
  return update_each (bank, pinned ? "UPDATE prototypes SET pinned = 1 WHERE id = ?"
                                   : "UPDATE prototypes SET pinned = 0 WHERE id = ?",
                      ids, n, pinned ? "pin" : "unpin", NULL, FALSE, error);
}

gboolean
dcr_bank_add_retrievals (DcrBank *bank, const gint64 *ids, guint n, GError **error)
{
  return update_each (bank, "UPDATE prototypes SET retrievals = retrievals + 1 WHERE id = ?",
                      ids, n, "retrieved", NULL, FALSE, error);
}

gboolean
dcr_bank_set_note (DcrBank *bank, gint64 id, const char *note, GError **error)
{
  if (!begin (bank, error))
    return FALSE;
  sqlite3_stmt *st = prepare (bank, "UPDATE prototypes SET note = ? WHERE id = ?", error);
  if (!st)
    {
      rollback (bank);
      return FALSE;
    }
  sqlite3_bind_text (st, 1, note, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, id);
  int rc = sqlite3_step (st);
  int changed = sqlite3_changes (bank->db);
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    {
      db_error (bank, rc, "editing a note", error);
      rollback (bank);
      return FALSE;
    }
  if (changed == 0)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND,
                   "%s: there is no prototype %" G_GINT64_FORMAT, bank->path, id);
      rollback (bank);
      return FALSE;
    }
  return commit_change (bank, "note", &id, 1, note, FALSE, error);
}

/* ---- reading ---------------------------------------------------------- */

void
dcr_prototype_free (DcrPrototype *p)
{
  if (!p)
    return;
  g_free (p->source);
  g_free (p->sha256);
  g_clear_pointer (&p->thumbnail, g_bytes_unref);
  g_clear_pointer (&p->added, g_date_time_unref);
  g_free (p->note);
  g_free (p->feature);
  g_free (p);
}

/* Column 3 is the thumbnail, or only its length (no blob copied) when the
 * caller does not want it; column 9 is the feature, or NULL when not wanted. */
#define PROTO_COLUMNS_FMT "id, source, sha256, %s, added_at, note, enabled, pinned, retrievals, %s"
#define PROTO_COLUMNS "id, source, sha256, thumbnail, added_at, note, enabled, pinned, retrievals, feature"

static char *
proto_columns (gboolean with_thumbnail, gboolean with_feature)
{
  return g_strdup_printf (PROTO_COLUMNS_FMT, with_thumbnail ? "thumbnail" : "length(thumbnail)",
                          with_feature ? "feature" : "NULL");
}

static DcrPrototype *
row_to_prototype (DcrBank *bank, sqlite3_stmt *st, gboolean with_feature, GError **error)
{
  DcrPrototype *p = g_new0 (DcrPrototype, 1);
  p->id = sqlite3_column_int64 (st, 0);
  p->source = g_strdup ((const char *) sqlite3_column_text (st, 1));
  p->sha256 = g_strdup ((const char *) sqlite3_column_text (st, 2));
  int ttype = sqlite3_column_type (st, 3);
  if (ttype == SQLITE_BLOB)
    {
      p->thumbnail = g_bytes_new (sqlite3_column_blob (st, 3), sqlite3_column_bytes (st, 3));
      p->thumbnail_size = g_bytes_get_size (p->thumbnail);
    }
  else if (ttype == SQLITE_INTEGER)
    p->thumbnail_size = (gsize) MAX (sqlite3_column_int64 (st, 3), 0); /* length(thumbnail) */
  const char *when = (const char *) sqlite3_column_text (st, 4);
  p->added = when ? g_date_time_new_from_iso8601 (when, NULL) : NULL;
  p->note = g_strdup ((const char *) sqlite3_column_text (st, 5));
  p->enabled = sqlite3_column_int (st, 6) != 0;
  p->pinned = sqlite3_column_int (st, 7) != 0;
  p->retrievals = sqlite3_column_int64 (st, 8);
  if (with_feature)
    {
      p->feature = g_new (float, bank->dim);
      if (!decode_feature (bank, p->id, sqlite3_column_blob (st, 9), sqlite3_column_bytes (st, 9), p->feature, error))
        {
          dcr_prototype_free (p);
          return NULL;
        }
    }
  return p;
}

DcrPrototype *
dcr_bank_get (DcrBank *bank, gint64 id, gboolean with_feature, GError **error)
{
  sqlite3_stmt *st = prepare (bank, "SELECT " PROTO_COLUMNS " FROM prototypes WHERE id = ?", error);
  if (!st)
    return NULL;
  sqlite3_bind_int64 (st, 1, id);
  DcrPrototype *p = NULL;
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    p = row_to_prototype (bank, st, with_feature, error);
  else if (rc == SQLITE_DONE)
    g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND,
                 "%s: there is no prototype %" G_GINT64_FORMAT, bank->path, id);
  else
    db_error (bank, rc, "reading a prototype", error);
  sqlite3_finalize (st);
  return p;
}

static GPtrArray *
select_prototypes (DcrBank *bank, const char *where, const gint64 *ids, guint n, gboolean with_thumbnail,
                   gboolean with_feature, GError **error)
{
  g_autofree char *cols = proto_columns (with_thumbnail, with_feature);
  g_autofree char *sql = g_strdup_printf ("SELECT %s FROM prototypes %s ORDER BY id", cols, where);
  sqlite3_stmt *st = prepare (bank, sql, error);
  if (!st)
    return NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) dcr_prototype_free);
  for (guint i = 0; i < (ids ? n : 1); i++)
    {
      sqlite3_reset (st);
      if (ids)
        sqlite3_bind_int64 (st, 1, ids[i]);
      int rc;
      while ((rc = sqlite3_step (st)) == SQLITE_ROW)
        {
          DcrPrototype *p = row_to_prototype (bank, st, with_feature, error);
          if (!p)
            {
              sqlite3_finalize (st);
              return NULL;
            }
          g_ptr_array_add (out, p);
        }
      if (rc != SQLITE_DONE)
        {
          db_error (bank, rc, "reading prototypes", error);
          sqlite3_finalize (st);
          return NULL;
        }
    }
  sqlite3_finalize (st);
  return g_steal_pointer (&out);
}

GPtrArray *
dcr_bank_list (DcrBank *bank, GError **error)
{
  return dcr_bank_list_full (bank, DCR_BANK_LIST_DEFAULT, error);
}

GPtrArray *
dcr_bank_list_full (DcrBank *bank, DcrBankListFlags flags, GError **error)
{
  /* Note: with NO_THUMBNAILS no thumbnail is copied, but SQLite still walks
   * each row's overflow pages to reach the columns stored after it. */
  return select_prototypes (bank, "", NULL, 0, !(flags & DCR_BANK_LIST_NO_THUMBNAILS), FALSE, error);
}

/* Thread safety. The GUI calls this from GTask worker threads while the
 * main thread goes on using bank->db — possibly inside a write transaction,
 * and reading sqlite3_errmsg / sqlite3_changes of that connection, which
 * are per connection. Debian's SQLite is built thread-safe and bank->db is
 * opened in its default (serialized) mode, so sharing it would not corrupt
 * memory, but a worker's read would then see (and be aborted by the ROLLBACK
 * of) the main thread's uncommitted changes, and could swap its error
 * messages. So thumbnails are read through a second, read-only connection
 * that nothing but this function uses, always with thumb_lock held (its one
 * prepared statement is never used by two threads at once; it is opened
 * NOMUTEX because the lock already serialises it). WAL lets this reader see
 * the last committed state while the main connection writes; the statement
 * is reset after every read so it never pins a snapshot. Callers on other
 * threads hold a reference (dcr_bank_ref), so the bank cannot be closed
 * under them. */
GBytes *
dcr_bank_get_thumbnail (DcrBank *bank, gint64 id, GError **error)
{
  g_return_val_if_fail (bank != NULL, NULL);
  if (!sqlite3_threadsafe ())
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_IO,
                   "%s: this SQLite library is built without thread support; cannot read thumbnails", bank->path);
      return NULL;
    }
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&bank->thumb_lock);
  int rc = SQLITE_OK;
  if (!bank->thumb_db)
    {
      rc = sqlite3_open_v2 (bank->path, &bank->thumb_db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
      if (rc == SQLITE_OK)
        {
          sqlite3_busy_timeout (bank->thumb_db, 10000);
          rc = sqlite3_prepare_v2 (bank->thumb_db, "SELECT thumbnail FROM prototypes WHERE id = ?", -1,
                                   &bank->thumb_st, NULL);
        }
      if (rc != SQLITE_OK)
        {
          g_set_error (error, DCR_BANK_ERROR, rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT
                                                ? DCR_BANK_ERROR_CORRUPT : DCR_BANK_ERROR_IO,
                       "%s: cannot open the bank to read thumbnails: %s", bank->path,
                       bank->thumb_db ? sqlite3_errmsg (bank->thumb_db) : sqlite3_errstr (rc));
          sqlite3_finalize (bank->thumb_st);
          bank->thumb_st = NULL;
          sqlite3_close (bank->thumb_db); /* harmless on NULL */
          bank->thumb_db = NULL;
          return NULL;
        }
    }
  sqlite3_stmt *st = bank->thumb_st;
  sqlite3_bind_int64 (st, 1, id);
  rc = sqlite3_step (st);
  GBytes *out = NULL;
  if (rc == SQLITE_ROW)
    {
      if (sqlite3_column_type (st, 0) != SQLITE_NULL)
        out = g_bytes_new (sqlite3_column_blob (st, 0), sqlite3_column_bytes (st, 0));
    }
  else if (rc == SQLITE_DONE)
    g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_NOT_FOUND,
                 "%s: there is no prototype %" G_GINT64_FORMAT, bank->path, id);
  else
    g_set_error (error, DCR_BANK_ERROR,
                 rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? DCR_BANK_ERROR_CORRUPT : DCR_BANK_ERROR_IO,
                 "%s: reading the thumbnail of prototype %" G_GINT64_FORMAT ": %s", bank->path, id,
                 sqlite3_errmsg (bank->thumb_db));
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
  return out;
}

gboolean
dcr_bank_remove (DcrBank *bank, const gint64 *ids, guint n, GPtrArray **removed, GError **error)
{
  if (!writable (bank, error))
    return FALSE;
  g_autoptr (GPtrArray) saved = NULL;
  if (removed)
    {
      /* read first, so undo gets everything back, features included */
      saved = select_prototypes (bank, "WHERE id = ?", ids, n, TRUE, TRUE, error);
      if (!saved)
        return FALSE;
    }
  if (!update_each (bank, "DELETE FROM prototypes WHERE id = ?", ids, n, "remove", NULL, TRUE, error))
    return FALSE;
  if (removed)
    *removed = g_steal_pointer (&saved);
  return TRUE;
}

gboolean
dcr_bank_restore (DcrBank *bank, GPtrArray *removed, GError **error)
{
  guint n = removed->len;
  g_autofree DcrPrototypeNew *items = g_new0 (DcrPrototypeNew, MAX (n, 1));
  g_autofree gint64 *ids = g_new0 (gint64, MAX (n, 1));
  g_autofree gint64 *retr = g_new0 (gint64, MAX (n, 1));
  g_autofree gboolean *enabled = g_new0 (gboolean, MAX (n, 1));
  g_autoptr (GPtrArray) when = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < n; i++)
    {
      DcrPrototype *p = g_ptr_array_index (removed, i);
      g_return_val_if_fail (p->feature != NULL, FALSE);
      items[i] = (DcrPrototypeNew) { p->feature, p->source, p->sha256, p->thumbnail, p->note, p->pinned };
      ids[i] = p->id;
      retr[i] = p->retrievals;
      enabled[i] = p->enabled;
      g_ptr_array_add (when, p->added ? g_date_time_format (p->added, "%Y-%m-%dT%H:%M:%S.%fZ") : now_iso ());
    }
  if (!begin (bank, error))
    return FALSE;
  if (!insert_rows (bank, items, ids, (const char *const *) when->pdata, retr, enabled, n, FALSE, NULL, NULL, error))
    {
      rollback (bank);
      return FALSE;
    }
  return commit (bank, "restore", ids, n, NULL, error);
}

gboolean
dcr_bank_load_features (DcrBank *bank, gboolean enabled_only, float **features, gint64 **ids,
                        gsize *count, GError **error)
{
  sqlite3_stmt *st = prepare (bank, enabled_only ? "SELECT id, feature FROM prototypes WHERE enabled ORDER BY id"
                                                 : "SELECT id, feature FROM prototypes ORDER BY id", error);
  if (!st)
    return FALSE;
  gsize cap = 1024, n = 0;
  float *f = g_new (float, cap * bank->dim);
  gint64 *id = g_new (gint64, cap);
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      if (n == cap)
        {
          cap *= 2;
          f = g_renew (float, f, cap * bank->dim);
          id = g_renew (gint64, id, cap);
        }
      id[n] = sqlite3_column_int64 (st, 0);
      if (!decode_feature (bank, id[n], sqlite3_column_blob (st, 1), sqlite3_column_bytes (st, 1),
                           f + n * bank->dim, error))
        break;
      n++;
    }
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    {
      if (rc != SQLITE_ROW)
        db_error (bank, rc, "reading features", error);
      g_free (f);
      g_free (id);
      return FALSE;
    }
  *features = f;
  *ids = id;
  *count = n;
  return TRUE;
}

void
dcr_bank_audit_free (DcrBankAudit *a)
{
  if (!a)
    return;
  g_clear_pointer (&a->time, g_date_time_unref);
  g_free (a->action);
  g_free (a->ids);
  g_free (a->detail);
  g_free (a);
}

GPtrArray *
dcr_bank_audit_log (DcrBank *bank, guint limit, GError **error)
{
  sqlite3_stmt *st = prepare (bank, "SELECT time, action, ids, detail FROM audit ORDER BY id DESC LIMIT ?", error);
  if (!st)
    return NULL;
  sqlite3_bind_int64 (st, 1, limit ? limit : G_MAXINT64);
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) dcr_bank_audit_free);
  int rc;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      DcrBankAudit *a = g_new0 (DcrBankAudit, 1);
      const char *t = (const char *) sqlite3_column_text (st, 0);
      a->time = t ? g_date_time_new_from_iso8601 (t, NULL) : NULL;
      a->action = g_strdup ((const char *) sqlite3_column_text (st, 1));
      a->ids = g_strdup ((const char *) sqlite3_column_text (st, 2));
      a->detail = g_strdup ((const char *) sqlite3_column_text (st, 3));
      g_ptr_array_add (out, a);
    }
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    {
      g_ptr_array_unref (out);
      db_error (bank, rc, "reading the audit log", error);
      return NULL;
    }
  return out;
}

gboolean
dcr_bank_export (DcrBank *bank, const char *dest, GError **error)
{
  if (g_file_test (dest, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_IO, "%s already exists; choose a new file name", dest);
      return FALSE;
    }
  /* VACUUM INTO writes a consistent snapshot; write it beside the target
   * and rename, so an interrupted export leaves no half file. */
  g_autofree char *tmp = g_strdup_printf ("%s.part-%08x", dest, g_random_int ());
  /* query_only (our read-only guard) also refuses VACUUM INTO, which only
   * reads this bank; a read-only connection still cannot write it. */
  if (bank->read_only && !exec (bank, "PRAGMA query_only = 0", error))
    return FALSE;
  sqlite3_stmt *st = prepare (bank, "VACUUM INTO ?", error);
  int rc = SQLITE_ERROR;
  if (st)
    {
      sqlite3_bind_text (st, 1, tmp, -1, SQLITE_STATIC);
      rc = sqlite3_step (st);
      sqlite3_finalize (st);
    }
  if (bank->read_only)
    sqlite3_exec (bank->db, "PRAGMA query_only = 1", NULL, NULL, NULL);
  if (!st)
    return FALSE;
  if (rc != SQLITE_DONE)
    {
      g_unlink (tmp);
      return db_error (bank, rc, "exporting", error);
    }
  if (g_rename (tmp, dest) != 0)
    {
      int e = errno;
      g_unlink (tmp);
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_IO, "%s: cannot write the export: %s", dest, g_strerror (e));
      return FALSE;
    }
  return TRUE;
}

gboolean
dcr_bank_import (DcrBank *bank, const char *src, guint *n_added, GError **error)
{
  if (!writable (bank, error))
    return FALSE;
  g_autoptr (DcrBank) other = dcr_bank_open (src, bank->backbone_id, bank->dim, TRUE, error);
  if (!other)
    return FALSE;
  g_autoptr (GPtrArray) protos = select_prototypes (other, "", NULL, 0, TRUE, TRUE, error);
  if (!protos)
    return FALSE;
  guint n = protos->len;
  g_autofree DcrPrototypeNew *items = g_new0 (DcrPrototypeNew, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    {
      DcrPrototype *p = g_ptr_array_index (protos, i);
      items[i] = (DcrPrototypeNew) { p->feature, p->source, p->sha256, p->thumbnail, p->note, p->pinned };
    }
  if (!begin (bank, error))
    return FALSE;
  guint added = 0;
  g_autofree gint64 *ids = g_new0 (gint64, MAX (n, 1));
  if (!insert_rows (bank, items, NULL, NULL, NULL, NULL, n, TRUE, ids, &added, error))
    {
      rollback (bank);
      return FALSE;
    }
  g_autofree char *detail = g_strdup_printf ("from %s (bank %s): %u added, %u duplicate(s) skipped",
                                             src, dcr_bank_uuid (other), added, n - added);
  if (!commit (bank, "import", NULL, 0, detail, error))
    return FALSE;
  if (n_added)
    *n_added = added;
  return TRUE;
}

gboolean
dcr_bank_check (DcrBank *bank, GError **error)
{
  sqlite3_stmt *st = prepare (bank, "PRAGMA integrity_check", error);
  if (!st)
    return FALSE;
  int rc = sqlite3_step (st);
  g_autofree char *res = rc == SQLITE_ROW ? g_strdup ((const char *) sqlite3_column_text (st, 0)) : NULL;
  sqlite3_finalize (st);
  if (rc != SQLITE_ROW)
    return db_error (bank, rc, "integrity check", error);
  if (g_strcmp0 (res, "ok") != 0)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT, "%s is damaged: %s", bank->path, res);
      return FALSE;
    }
  float *f = NULL;
  gint64 *ids = NULL;
  gsize n = 0;
  if (!dcr_bank_load_features (bank, FALSE, &f, &ids, &n, error))
    return FALSE;
  gboolean ok = TRUE;
  for (gsize i = 0; i < n && ok; i++)
    {
      double norm = 0;
      for (guint j = 0; j < bank->dim; j++)
        norm += (double) f[i * bank->dim + j] * f[i * bank->dim + j];
      if (!(fabs (sqrt (norm) - 1.0) < 1e-2))
        {
          g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT,
                       "%s: prototype %" G_GINT64_FORMAT " is not a unit vector (norm %.4f)", bank->path, ids[i],
                       sqrt (norm));
          ok = FALSE;
        }
    }
  g_free (f);
  g_free (ids);
  return ok;
}
