/* dcr-bank-stats.h — the numbers behind the bank page's statistics and its
 * detail pane, kept free of GTK so they are tested without a display: a
 * summary of the prototypes' provenance, the nearest neighbours of one
 * prototype among the others, and a 2-D PCA projection of the features. */
#pragma once

#include "dcr-bank.h"

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
  guint total, enabled, disabled, pinned;
  GPtrArray *sources;        /* char *: distinct source folders, most prototypes first (ties by name) */
  GArray *source_counts;     /* guint: prototypes per entry of sources */
  GDateTime *first_added;    /* NULL when no prototype records it */
  GDateTime *last_added;
} DcrBankSummary;

/* The folder a prototype came from: the directory of its source path, or
 * "(unknown)" when there is none. Newly allocated. */
char *dcr_bank_source_folder (const char *source);
/* Counts over n prototypes. */
DcrBankSummary *dcr_bank_summarize (const DcrPrototype *const *protos, guint n);
void dcr_bank_summary_free (DcrBankSummary *s);

typedef struct {
  gint64 id;         /* a bank id, or the row when no ids were given */
  float similarity;  /* cosine */
} DcrBankNeighbour;

/* The k rows of features [n, dim] most similar to row `row` by cosine
 * similarity, that row itself left out; most similar first, ties to the
 * lower position. ids (may be NULL) names the rows. Returns how many were
 * written to out: min(k, n − 1), fewer only when rows are all zero. */
guint dcr_bank_nearest (const float *features, const gint64 *ids, gsize n, guint dim, gsize row, guint k,
                        DcrBankNeighbour *out);

/* Up to max of n rows, evenly spread and in order (all when n ≤ max):
 * writes their positions to rows (sized min(n, max)), returns how many. */
gsize dcr_sample_rows (gsize n, gsize max, gsize *rows);

/* Projects rows x [n, dim] onto their first two principal axes, centred on
 * their mean: xy [n, 2]. Subspace (block power) iteration with six vectors
 * on the covariance without forming it (12·n·dim multiply-adds a step, at
 * most 40 steps: close leading variances, as in noise, stop there with a
 * good-enough plane), with a Rayleigh–Ritz step each time, so axis 0
 * carries the most variance; the start is fixed and each axis's largest
 * component made positive, so the same input gives the same picture. var
 * (may be NULL) receives the variance along each axis, total (may be NULL)
 * the total variance of the rows. Fails on n = 0 or a non-finite value,
 * or when cancelled (checked between steps). */
gboolean dcr_pca_2d (const float *x, gsize n, guint dim, float *xy, double var[2], double *total,
                     GCancellable *cancellable, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrBankSummary, dcr_bank_summary_free)

G_END_DECLS
