/* fuzz-bank.c — libFuzzer target: bytes written to a temporary file and
 * opened as a prototype bank (SQLite), read-only, then read the way scan and
 * `dcr bank list/audit` read it. A damaged bank must give an error, never a
 * crash or a feature vector of the wrong width. */
#include <stdlib.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "dcr-bank.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static char *bank_path;

static void
remove_bank_files (void)
{
  g_autofree char *wal = g_strconcat (bank_path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (bank_path, "-shm", NULL);
  g_autofree char *journal = g_strconcat (bank_path, "-journal", NULL);
  g_unlink (bank_path);
  g_unlink (wal);
  g_unlink (shm);
  g_unlink (journal);
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  if (!bank_path)
    {
      bank_path = g_strdup_printf ("%s/dcr-fuzz-bank-%d.dcrbank", g_get_tmp_dir (), (int) getpid ());
      atexit (remove_bank_files);
    }
  remove_bank_files ();
  g_autoptr (GError) error = NULL;
  /* No fsync, no rename: a scratch file, rewritten thousands of times a second. */
  if (!g_file_set_contents_full (bank_path, (const char *) data, (gssize) size, G_FILE_SET_CONTENTS_NONE, 0600,
                                 &error))
    g_error ("%s", error->message);

  g_autoptr (DcrBank) bank = dcr_bank_open (bank_path, NULL, 0, TRUE, &error);
  if (!bank)
    {
      g_assert (error && error->message);
      return 0;
    }
  guint dim = dcr_bank_dim (bank);
  g_assert (dim > 0);
  g_assert (dcr_bank_backbone_id (bank) && dcr_bank_uuid (bank));
  g_autoptr (GPtrArray) list = dcr_bank_list (bank, NULL);
  if (list)
    for (guint i = 0; i < list->len; i++)
      {
        DcrPrototype *p = g_ptr_array_index (list, i);
        g_autoptr (DcrPrototype) full = dcr_bank_get (bank, p->id, TRUE, NULL);
        if (full && full->feature)
          {
            float s = 0;
            for (guint j = 0; j < dim; j++)
              s += full->feature[j];
            (void) s;
          }
      }
  float *features = NULL;
  gint64 *ids = NULL;
  gsize n = 0;
  if (dcr_bank_load_features (bank, FALSE, &features, &ids, &n, NULL))
    {
      float s = 0;
      for (gsize j = 0; j < n * dim; j++)
        s += features[j];
      (void) s;
      g_free (features);
      g_free (ids);
    }
  GPtrArray *log = dcr_bank_audit_log (bank, 50, NULL);
  if (log)
    g_ptr_array_unref (log);
  (void) dcr_bank_check (bank, NULL);
  (void) dcr_bank_count (bank, TRUE);
  return 0;
}
