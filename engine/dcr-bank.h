/* dcr-bank.h — the memory bank of real prototypes, stored in SQLite: every
 * prototype is an L2-normalised feature of a known-real image with its
 * provenance. Every change is one transaction and one audit-log entry, so
 * a crash leaves the bank as it was before or after a change, never between.
 * Retrieval (on the GPU) reads the features through dcr_bank_load_features. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DCR_BANK_ERROR (dcr_bank_error_quark ())
GQuark dcr_bank_error_quark (void);

typedef enum {
  DCR_BANK_ERROR_IO,          /* cannot open / read / write the file */
  DCR_BANK_ERROR_CORRUPT,     /* not a bank, or damaged */
  DCR_BANK_ERROR_MISMATCH,    /* built for another backbone or feature width */
  DCR_BANK_ERROR_VERSION,     /* written by a newer DCR */
  DCR_BANK_ERROR_NOT_FOUND,   /* no such prototype */
  DCR_BANK_ERROR_INVALID,     /* bad argument (feature width, NaN, …) */
} DcrBankError;

#define DCR_BANK_SCHEMA_VERSION 1

typedef struct _DcrBank DcrBank;

typedef struct {
  gint64 id;
  char *source;        /* path or description of where the image came from */
  char *sha256;        /* hex SHA-256 of the source file (may be NULL) */
  GBytes *thumbnail;   /* small PNG (may be NULL; always NULL from a
                        * DCR_BANK_LIST_NO_THUMBNAILS listing) */
  gsize thumbnail_size; /* bytes of the stored thumbnail, 0 when there is
                         * none; set even when `thumbnail` was not read */
  GDateTime *added;    /* UTC */
  char *note;
  gboolean enabled;
  gboolean pinned;     /* never evicted by pruning or the training queue */
  gint64 retrievals;   /* how often retrieval returned it as a nearest prototype */
  float *feature;      /* dim floats, only when asked for */
} DcrPrototype;

void dcr_prototype_free (DcrPrototype *p);

typedef struct {
  const float *feature; /* dim floats; normalised on the way in */
  const char *source;
  const char *sha256;
  GBytes *thumbnail;
  const char *note;
  gboolean pinned;
} DcrPrototypeNew;

/* Creates a new, empty bank; refuses to overwrite an existing file. */
DcrBank *dcr_bank_create (const char *path, const char *backbone_id, guint dim, GError **error);
/* Opens an existing bank. `backbone_id`/`dim` (NULL/0 = accept any) must
 * match what the bank was built with. read_only opens it without locks
 * that would block a writer and refuses every change. */
DcrBank *dcr_bank_open (const char *path, const char *backbone_id, guint dim, gboolean read_only, GError **error);
/* A bank is reference counted so that a worker thread (a thumbnail loader)
 * can keep it alive: dcr_bank_ref takes a reference, dcr_bank_close drops
 * one and the last one closes the file. Both are thread-safe. */
DcrBank *dcr_bank_ref (DcrBank *bank);
void dcr_bank_close (DcrBank *bank);

const char *dcr_bank_path (DcrBank *bank);
const char *dcr_bank_backbone_id (DcrBank *bank);
guint dcr_bank_dim (DcrBank *bank);
const char *dcr_bank_uuid (DcrBank *bank);
/* Counts; enabled_only counts what retrieval sees. */
gint64 dcr_bank_count (DcrBank *bank, gboolean enabled_only);
/* Bumped by every change to what retrieval sees (prototypes added, removed,
 * restored, imported, enabled or disabled) — not by notes, pins or
 * retrieval counts — so a GPU copy of the features knows when it is stale. */
gint64 dcr_bank_generation (DcrBank *bank);

/* Adds n prototypes in one transaction; ids_out (n) gets their ids. With
 * skip_duplicates, an entry whose sha256 is already in the bank is skipped
 * and its id slot set to -(existing id). */
gboolean dcr_bank_add (DcrBank *bank, const DcrPrototypeNew *items, guint n, gboolean skip_duplicates,
                       gint64 *ids_out, GError **error);
gboolean dcr_bank_set_enabled (DcrBank *bank, const gint64 *ids, guint n, gboolean enabled, GError **error);
gboolean dcr_bank_set_pinned (DcrBank *bank, const gint64 *ids, guint n, gboolean pinned, GError **error);
gboolean dcr_bank_set_note (DcrBank *bank, gint64 id, const char *note, GError **error);
/* Removes prototypes; when `removed` is non-NULL it receives them (with
 * features) so that dcr_bank_restore can undo the removal. */
gboolean dcr_bank_remove (DcrBank *bank, const gint64 *ids, guint n, GPtrArray **removed, GError **error);
gboolean dcr_bank_restore (DcrBank *bank, GPtrArray *removed, GError **error);
gboolean dcr_bank_add_retrievals (DcrBank *bank, const gint64 *ids, guint n, GError **error);

DcrPrototype *dcr_bank_get (DcrBank *bank, gint64 id, gboolean with_feature, GError **error);
/* All prototypes (without features), ordered by id. */
GPtrArray *dcr_bank_list (DcrBank *bank, GError **error);

typedef enum {
  DCR_BANK_LIST_DEFAULT = 0,
  /* Leave the thumbnail PNGs out (`thumbnail` NULL, `thumbnail_size` still
   * set): 100,000 prototypes list in megabytes instead of gigabytes; fetch
   * one thumbnail with dcr_bank_get_thumbnail when it is shown. */
  DCR_BANK_LIST_NO_THUMBNAILS = 1 << 0,
} DcrBankListFlags;

/* dcr_bank_list with options. */
GPtrArray *dcr_bank_list_full (DcrBank *bank, DcrBankListFlags flags, GError **error);
/* The stored thumbnail PNG of one prototype. NULL with no error set when the
 * prototype has none; NULL with DCR_BANK_ERROR_NOT_FOUND when there is no
 * such prototype. Safe to call from any thread, concurrently with any other
 * use of the bank (it reads through a connection of its own), as long as the
 * caller holds a reference (dcr_bank_ref). */
GBytes *dcr_bank_get_thumbnail (DcrBank *bank, gint64 id, GError **error);
/* Features as one row-major [count, dim] array of floats plus the ids, in
 * id order; enabled_only for retrieval. */
gboolean dcr_bank_load_features (DcrBank *bank, gboolean enabled_only, float **features,
                                 gint64 **ids, gsize *count, GError **error);

typedef struct {
  GDateTime *time;
  char *action;
  char *ids;     /* comma-separated (may be abbreviated for huge changes) */
  char *detail;
} DcrBankAudit;

void dcr_bank_audit_free (DcrBankAudit *a);
GPtrArray *dcr_bank_audit_log (DcrBank *bank, guint limit, GError **error);

/* A consistent copy of the bank into a new file (refuses to overwrite). */
gboolean dcr_bank_export (DcrBank *bank, const char *dest, GError **error);
/* Adds every prototype of another bank built with the same backbone and
 * width, skipping those whose sha256 is already here. *n_added may be NULL. */
gboolean dcr_bank_import (DcrBank *bank, const char *src, guint *n_added, GError **error);
/* SQLite's integrity check plus ours (feature blob sizes, norms). */
gboolean dcr_bank_check (DcrBank *bank, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrBank, dcr_bank_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrPrototype, dcr_prototype_free)

G_END_DECLS
