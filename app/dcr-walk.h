/* dcr-walk.h — the files under the paths a person names (`dcr scan`,
 * `dcr report` and the app's batch page): a file is taken as it is, a
 * folder is walked recursively in name order. Links to files are followed;
 * links to folders are not (they could loop), and neither are folders
 * nested over 64 levels deep; devices, pipes and sockets are not read. A
 * file reached twice (through a link, or named twice) is taken once. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A file to examine. */
typedef void (*DcrWalkFileFunc) (const char *path, gpointer user_data);
/* Something found that is not examined, and why (the reason is the
 * callee's to free). */
typedef void (*DcrWalkRejectFunc) (const char *path, char *reason, gpointer user_data);

/* Walks paths[0 … n−1]. `seen` (a set of g_strdup'ed real paths, owned by
 * the caller) keeps a file from being taken twice across calls. FALSE with
 * a G_FILE_ERROR when a named path does not exist or a named folder cannot
 * be read (the message names the path); what lies inside a folder never
 * fails the walk, it is rejected with its reason. */
gboolean dcr_walk_paths (const char *const *paths, guint n, GHashTable *seen, DcrWalkFileFunc file,
                         DcrWalkRejectFunc reject, gpointer user_data, GError **error);

/* A file to examine, or something named or found that cannot be (reason
 * non-NULL; it names the path). */
typedef struct {
  char *path;
  char *reason;
} DcrWalkEntry;

/* The entries of paths[0 … n−1] in order, each named path walked on its
 * own: one that cannot be walked (missing, an unreadable folder) becomes an
 * entry with its reason, and the others go on. An array of DcrWalkEntry that
 * clears its elements; NULL with G_FILE_ERROR_NOENT ("no files in the
 * folder(s) given") when there is nothing at all, not even a reason. */
GArray *dcr_walk_collect (const char *const *paths, guint n, GError **error);

G_END_DECLS
