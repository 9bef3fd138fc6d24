/* dcr-walk.c — the files under the paths a person names (dcr-walk.h). */
#include "dcr-walk.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DEPTH 64

typedef struct {
  GHashTable *seen;
  DcrWalkFileFunc file;
  DcrWalkRejectFunc reject;
  gpointer user_data;
} Walk;

static int
cmp_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static gboolean
walk (Walk *w, const char *path, guint depth, GError **error)
{
  GStatBuf st;
  gboolean top = depth == 0;
  if ((top ? g_stat (path, &st) : g_lstat (path, &st)) != 0)
    {
      int e = errno;
      if (top)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (e), "%s: %s", path, g_strerror (e));
          return FALSE;
        }
      w->reject (path, g_strdup_printf ("cannot be examined: %s", g_strerror (e)), w->user_data);
      return TRUE;
    }
  if (S_ISLNK (st.st_mode))
    {
      /* a link to a file is followed; a link to a folder could loop */
      if (g_stat (path, &st) != 0)
        {
          w->reject (path, g_strdup ("symbolic link to nothing"), w->user_data);
          return TRUE;
        }
      if (S_ISDIR (st.st_mode))
        {
          w->reject (path, g_strdup ("symbolic link to a folder, not followed"), w->user_data);
          return TRUE;
        }
    }
  if (S_ISDIR (st.st_mode))
    {
      if (depth > MAX_DEPTH)
        {
          w->reject (path, g_strdup ("folder nested too deep (over 64 levels), not walked"), w->user_data);
          return TRUE;
        }
      g_autoptr (GError) err = NULL;
      g_autoptr (GDir) d = g_dir_open (path, 0, &err);
      if (!d)
        {
          if (top)
            {
              g_set_error (error, G_FILE_ERROR, err->domain == G_FILE_ERROR ? err->code : G_FILE_ERROR_FAILED,
                           "%s: cannot read the folder: %s", path, err->message);
              return FALSE;
            }
          w->reject (path, g_strdup_printf ("folder cannot be read: %s", err->message), w->user_data);
          return TRUE;
        }
      g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
      const char *name;
      while ((name = g_dir_read_name (d)))
        g_ptr_array_add (names, g_strdup (name));
      g_ptr_array_sort (names, cmp_names);
      for (guint i = 0; i < names->len; i++)
        {
          g_autofree char *child = g_build_filename (path, names->pdata[i], NULL);
          if (!walk (w, child, depth + 1, error))
            return FALSE;
        }
      return TRUE;
    }
  if (!S_ISREG (st.st_mode))
    {
      w->reject (path, g_strdup ("not a regular file (a device, pipe or socket)"), w->user_data);
      return TRUE;
    }
  char *real = realpath (path, NULL);
  if (real && g_hash_table_contains (w->seen, real))
    {
      free (real);
      return TRUE;
    }
  if (real)
    {
      g_hash_table_add (w->seen, g_strdup (real));
      free (real);
    }
  w->file (path, w->user_data);
  return TRUE;
}

gboolean
dcr_walk_paths (const char *const *paths, guint n, GHashTable *seen, DcrWalkFileFunc file, DcrWalkRejectFunc reject,
                gpointer user_data, GError **error)
{
  Walk w = { seen, file, reject, user_data };
  for (guint i = 0; i < n; i++)
    if (!walk (&w, paths[i], 0, error))
      return FALSE;
  return TRUE;
}

static void
entry_clear (gpointer data)
{
  DcrWalkEntry *e = data;
  g_free (e->path);
  g_free (e->reason);
}

static void
collect_file (const char *path, gpointer entries)
{
  DcrWalkEntry e = { g_strdup (path), NULL };
  g_array_append_val ((GArray *) entries, e);
}

static void
collect_reject (const char *path, char *reason, gpointer entries)
{
  /* the walk's reasons for what it finds inside a folder do not name the path */
  DcrWalkEntry e = { g_strdup (path), g_strdup_printf ("%s: %s", path, reason) };
  g_free (reason);
  g_array_append_val ((GArray *) entries, e);
}

GArray *
dcr_walk_collect (const char *const *paths, guint n, GError **error)
{
  GArray *entries = g_array_new (FALSE, FALSE, sizeof (DcrWalkEntry));
  g_array_set_clear_func (entries, entry_clear);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GError) err = NULL;
      if (!dcr_walk_paths (paths + i, 1, seen, collect_file, collect_reject, entries, &err))
        {
          DcrWalkEntry e = { g_strdup (paths[i]), g_strdup (err->message) };
          g_array_append_val (entries, e);
        }
    }
  if (!entries->len)
    {
      g_array_unref (entries);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no files in the folder%s given", n > 1 ? "s" : "");
      return NULL;
    }
  return entries;
}
