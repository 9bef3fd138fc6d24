/* dcr-bank-curate.h — shaping the memory bank: near-duplicate prototypes
 * (cosine ≥ τ, found with the GPU retrieval op, in groups of which one
 * survives) and pruning to N by greedy k-center selection (PatchCore's
 * coreset: each pick is the prototype farthest from those kept; pinned ones
 * are always kept). Each has a plain CPU reference of the same semantics. */
#pragma once

#include "dcr-bank.h"
#include "dcr-vk.h"

#include <gio/gio.h>

G_BEGIN_DECLS

/* Pairs found per prototype are at most its DCR_TOPK_MAX − 1 nearest: a
 * group larger than that still comes out whole (every member is linked to
 * the group's first members), but not with every pair listed. */
#define DCR_CURATE_DEFAULT_THRESHOLD 0.98f

/* FALSE cancels (the call then fails with G_IO_ERROR_CANCELLED). */
typedef gboolean (*DcrCurateProgress) (gsize done, gsize total, gpointer user_data);

typedef struct {
  DcrDtype dtype;            /* storage on the GPU: DCR_F32 (the default) or DCR_F16 */
  gsize max_chunk_rows;      /* split the prototypes at most this many rows a chunk (0: by the buffer limit) */
  DcrCurateProgress progress;
  gpointer user_data;
  GCancellable *cancellable;
} DcrCurateOptions;

typedef struct {
  gint64 a, b;      /* a < b: ids, or positions for the array functions */
  float similarity;
} DcrDuplicatePair;

/* Pairs of rows of features [n, dim] (any norm; compared as unit vectors)
 * with cosine ≥ threshold, sorted by (a, b); a and b are ids[i] (positions
 * when ids is NULL). ctx: the GPU, through DcrRetrieval. */
gboolean dcr_find_duplicates (DcrContext *ctx, const float *features, const gint64 *ids, gsize n, guint dim,
                              float threshold, const DcrCurateOptions *opts, GArray **pairs, GError **error);
/* Reference: every pair, in double. */
GArray *dcr_ref_find_duplicates (const float *features, const gint64 *ids, gsize n, guint dim, float threshold);

/* The connected groups of pairs: a GPtrArray of GArray (gint64 ids, ascending),
 * ordered by their smallest id. */
GPtrArray *dcr_duplicate_groups (const DcrDuplicatePair *pairs, guint n);
/* Which members of each group go: all but the pinned ones when the group
 * has any, else all but the smallest id (the prototype added first). */
GArray *dcr_duplicates_redundant (GPtrArray *groups, GHashTable *pinned_ids);

/* Greedy k-center over rows of features [n, dim] (cosine distance 1 − cos):
 * the pinned rows first (pinned may be NULL), then — or row 0 when nothing
 * is pinned — repeatedly the row farthest from everything chosen, ties to
 * the lower position, until `keep` rows are chosen (more when more are
 * pinned; all when keep ≥ n). order gets the chosen positions in the order
 * chosen (*n_kept of them, order sized n); radius (may be NULL) the largest
 * distance from a row left out to its nearest chosen one (0 when none is). */
gboolean dcr_kcenter (DcrContext *ctx, const float *features, gsize n, guint dim, const gboolean *pinned, gsize keep,
                      const DcrCurateOptions *opts, guint32 *order, gsize *n_kept, float *radius, GError **error);
gboolean dcr_ref_kcenter (const float *features, gsize n, guint dim, const gboolean *pinned, gsize keep,
                          guint32 *order, gsize *n_kept, float *radius);

/* ---- over a bank's enabled prototypes ---------------------------------- */

/* Near-duplicate pairs (ids), their groups and the ids that would go. */
typedef struct {
  GArray *pairs;       /* of DcrDuplicatePair */
  GPtrArray *groups;   /* of GArray of gint64 */
  GArray *redundant;   /* of gint64, ascending */
} DcrBankDuplicates;

void dcr_bank_duplicates_free (DcrBankDuplicates *d);
DcrBankDuplicates *dcr_bank_find_duplicates (DcrBank *bank, DcrContext *ctx, float threshold,
                                             const DcrCurateOptions *opts, GError **error);

/* What pruning the enabled prototypes to `keep` would drop. */
typedef struct {
  GArray *kept;        /* of gint64, in the order chosen (pinned first) */
  GArray *dropped;     /* of gint64, ascending */
  gsize n_pinned;
  float radius;        /* covering radius of the kept set over all enabled prototypes */
} DcrBankPrunePlan;

void dcr_bank_prune_plan_free (DcrBankPrunePlan *p);
DcrBankPrunePlan *dcr_bank_plan_prune (DcrBank *bank, DcrContext *ctx, gsize keep, const DcrCurateOptions *opts,
                                       GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrBankDuplicates, dcr_bank_duplicates_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrBankPrunePlan, dcr_bank_prune_plan_free)

G_END_DECLS
