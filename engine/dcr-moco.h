/* dcr-moco.h — MoCo's two pieces of state for contrastive training: the
 * key queue (a fixed-size ring of L2-normalised keys on the GPU, with an
 * optional reserved region of pinned bank prototypes the ring never
 * overwrites) and the momentum update of the key encoder's parameters. The
 * queue is the negatives of dcr_op_infonce (engine/dcr-op-loss.h). */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

#define DCR_MOCO_MOMENTUM 0.999f

/* θ_k ← m·θ_k + (1 − m)·θ_q over one f32 parameter tensor (key and query
 * have the same element count). One dispatch. */
gboolean dcr_op_momentum_update (DcrSeq *seq, DcrTensor *key, const DcrTensor *query, float m, GError **error);
void dcr_ref_momentum_update (float *key, const float *query, gint64 n, float m);

typedef struct _DcrMocoQueue DcrMocoQueue;

/* A queue of n_pinned + size rows of dim f32: rows [0, n_pinned) hold
 * pinned prototypes (never evicted), rows [n_pinned, n_pinned + size) the
 * ring. The ring starts as random unit vectors drawn from seed (MoCo's
 * initialisation) and the pinned rows as zeros until set. */
DcrMocoQueue *dcr_moco_queue_new (DcrContext *ctx, guint dim, guint size, guint n_pinned, guint64 seed,
                                  GError **error);
void dcr_moco_queue_free (DcrMocoQueue *q);
/* Uploads the pinned prototypes rows [n_pinned, dim] (normalised here). */
gboolean dcr_moco_queue_set_pinned (DcrMocoQueue *q, const float *rows, GError **error);
/* Writes a batch of keys [b, dim] (b ≤ size; the caller normalises them)
 * whole into the ring at the pointer and advances it modulo size: a batch
 * that crosses the end of the ring is written as two copies, its tail at
 * the ring's start. The copies run on the GPU and are waited for. */
gboolean dcr_moco_queue_push (DcrMocoQueue *q, const DcrTensor *keys, GError **error);
/* The whole queue [n_pinned + size, dim] — the negatives of InfoNCE. */
const DcrTensor *dcr_moco_queue_tensor (DcrMocoQueue *q);
/* The next ring row written, in [0, size). */
guint dcr_moco_queue_pointer (DcrMocoQueue *q);
guint dcr_moco_queue_size (DcrMocoQueue *q);
/* Puts back a saved queue: all n_pinned + size rows and the pointer
 * (checkpoints). */
gboolean dcr_moco_queue_restore (DcrMocoQueue *q, const float *rows, guint pointer, GError **error);
guint dcr_moco_queue_n_pinned (DcrMocoQueue *q);

/* Reference of dcr_moco_queue_push on a host queue laid out the same way:
 * writes keys [b, d] at *ptr of the ring after n_pinned rows and advances
 * *ptr. FALSE (nothing written) when b > size. */
gboolean dcr_ref_moco_enqueue (float *queue, gint64 n_pinned, gint64 size, gint64 d, gint64 *ptr,
                               const float *keys, gint64 b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrMocoQueue, dcr_moco_queue_free)

G_END_DECLS
