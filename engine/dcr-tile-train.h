/* dcr-tile-train.h — training the tile head's MLP (dcr-tile-head.h) on the
 * GPU from standardised tile inputs z [n][69] and tile labels (1: the tile
 * lies in a regenerated rectangle, 0: it does not):
 *   logit = w2·dropout_p(relu(W1 z + b1)) + b2,
 * BCE with logits (mean over the batch), AdamW with PyTorch's semantics
 * (every parameter decayed), PyTorch's nn.Linear initialisation drawn from
 * a seeded RNG, the tiles reshuffled every epoch. One step (forward,
 * loss, backward, AdamW) is recorded once and replayed for every batch;
 * like dcr_train_run, an epoch runs floor(n / batch) full batches, so the
 * tiles of an incomplete last batch wait for the next shuffle. */
#pragma once

#include "dcr-op-optim.h"
#include "dcr-tile-head.h"

G_BEGIN_DECLS

#define DCR_TILE_TRAIN_ERROR (dcr_tile_train_error_quark ())
GQuark dcr_tile_train_error_quark (void);

typedef enum {
  DCR_TILE_TRAIN_ERROR_DATA,      /* too few tiles, one class only, labels not 0/1, bad settings */
  DCR_TILE_TRAIN_ERROR_DIVERGED,  /* the loss became NaN or infinite */
  DCR_TILE_TRAIN_ERROR_CANCELLED,
} DcrTileTrainError;

typedef struct {
  guint epochs;        /* 30 */
  guint hidden;        /* H, 64 (1 … DCR_TILES_MAX_HIDDEN) */
  guint batch;         /* 256 (at least 2; more than n → n) */
  double lr;           /* 1e-3, constant */
  double weight_decay; /* 0.1 */
  double dropout;      /* p on the hidden units, 0.3; in [0, 1) */
  guint64 seed;        /* 1: initialisation, shuffles and dropout masks */
} DcrTileTrainOptions;

/* The defaults above. */
void dcr_tile_train_options_init (DcrTileTrainOptions *o);

/* nn.Linear's default initialisation of both layers: weights and biases
 * U(−1/√in, 1/√in) (in = 69 for the first layer, H for the second), drawn
 * from rng in the order w1, b1, w2, b2. */
void dcr_tile_train_init (DcrTileHead *h, GRand *rng);

/* ---- one step ------------------------------------------------------------ */

typedef struct _DcrTileTrainStep DcrTileTrainStep;

/* A step over `batch` tiles starting from h's weights (mean and std are not
 * used: inputs are already standardised), AdamW state zero. */
DcrTileTrainStep *dcr_tile_train_step_new (DcrContext *ctx, const DcrTileHead *h, guint batch, double dropout,
                                           const DcrAdamWConfig *adamw, GError **error);
void dcr_tile_train_step_free (DcrTileTrainStep *step);
/* z [batch][69], labels [batch] (0 or 1), and the dropout mask [batch][H]
 * of 0 and 1/(1 − p) (NULL: drawn from rng; ignored without dropout). */
gboolean dcr_tile_train_step_set_batch (DcrTileTrainStep *step, const float *z, const gint32 *labels,
                                        const float *mask, GRand *rng, GError **error);
/* Runs the step as AdamW update number `update` (1 for the first); *loss:
 * the batch's mean BCE before the update. */
gboolean dcr_tile_train_step_run (DcrTileTrainStep *step, gint64 update, double *loss, GError **error);
/* The current weights into h (same hidden width; mean and std untouched). */
gboolean dcr_tile_train_step_weights (DcrTileTrainStep *step, DcrTileHead *h, GError **error);

/* ---- the loop ------------------------------------------------------------ */

/* Called after every epoch with its mean loss; FALSE cancels. */
typedef gboolean (*DcrTileTrainProgressFunc) (guint epoch, guint epochs, double loss, gpointer user_data);

/* Trains a new head of o->hidden units on z [n][69] and labels [n];
 * mean 0 and std 1 (the caller sets the standardisation it used).
 * *final_loss (may be NULL): the last epoch's mean loss. */
DcrTileHead *dcr_tile_train (DcrContext *ctx, const float *z, const gint32 *labels, gsize n,
                             const DcrTileTrainOptions *o, DcrTileTrainProgressFunc progress, gpointer user_data,
                             double *final_loss, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrTileTrainStep, dcr_tile_train_step_free)

G_END_DECLS
