/* dcr-train.h — training the DCR heads on frozen backbone features, on the
 * GPU: one step (forward with dropout, the three losses, the backward pass
 * through the engine's backward ops, AdamW) is recorded once and replayed
 * for every batch; the loop around it builds the difference tokens of each
 * sample (its pair, then its nearest bank prototypes), follows a cosine
 * learning-rate schedule, validates on a held-out split of the files,
 * chooses the decision threshold and inconclusive band there, and writes
 * resumable checkpoints.
 *
 * Loss = CE(logits, y) + λ₁·BCE(anomaly, y) + λ₂·SupCon_τ(normalise(fused), y)
 * [+ λ₃·InfoNCE_τ(q, k⁺, queue) with MoCo] with y = 0 for a real sample
 * (paired with a real) and 1 for a fake. With MoCo, q = normalise(fused)
 * and k⁺ the normalised fused feature of the same batch from a momentum
 * copy of the difference attention (no dropout, no gradient); after each
 * update the copy moves towards the trained parameters and k⁺ enters the
 * queue of negatives. */
#pragma once

#include "dcr-metrics.h"
#include "dcr-model.h"
#include "dcr-moco.h"
#include "dcr-op-optim.h"

G_BEGIN_DECLS

#define DCR_TRAIN_ERROR (dcr_train_error_quark ())
GQuark dcr_train_error_quark (void);

typedef enum {
  DCR_TRAIN_ERROR_DATA,       /* too few samples of a class, bad pairs */
  DCR_TRAIN_ERROR_CHECKPOINT, /* a checkpoint that does not fit the run */
  DCR_TRAIN_ERROR_DIVERGED,   /* the loss became NaN or infinite */
  DCR_TRAIN_ERROR_CANCELLED,
} DcrTrainError;

typedef struct {
  float lambda_bce;     /* λ₁; 0 → 1 */
  float lambda_supcon;  /* λ₂; 0 → 0.1 (negative: off) */
  float temperature;    /* SupCon τ; 0 → 0.07 */
  DcrAdamWConfig adamw; /* lr 0 → 1e-3, betas 0 → (0.9, 0.999), eps 0 → 1e-8; weight_decay as given */
  gboolean moco;        /* the InfoNCE term against a momentum key encoder and queue */
  guint moco_queue;     /* ring length; 0 → 1024 (at least the batch) */
  float lambda_infonce; /* λ₃; 0 → 0.1 */
  float moco_momentum;  /* m; 0 → DCR_MOCO_MOMENTUM */
  guint64 moco_seed;    /* of the queue's initial random keys */
  guint moco_pinned;    /* rows the queue reserves for pinned bank prototypes (set by dcr_train_run) */
} DcrTrainLoss;

/* ---- one step ------------------------------------------------------------ */

typedef struct _DcrTrainStep DcrTrainStep;

/* A step over `batch` samples of `tokens` prototypes each, on the model's
 * f32 parameters; with_optimizer FALSE records forward and backward only
 * (gradient checks). */
DcrTrainStep *dcr_train_step_new (DcrModel *m, guint batch, guint tokens, const DcrTrainLoss *loss,
                                  gboolean with_optimizer, GError **error);
void dcr_train_step_free (DcrTrainStep *step);
/* Raw features f [B, D], prototypes r [B, L, D], labels [B] (0 real, 1
 * fake) and the residual head's dropout mask [B, Hr] of 0 and 1/(1 − p)
 * (NULL: drawn from `rng`). */
gboolean dcr_train_step_set_batch (DcrTrainStep *step, const float *f, const float *r, const gint32 *labels,
                                   const float *mask, GRand *rng, GError **error);
/* Runs the step; `update` is the AdamW update number (1 for the first) and
 * lr the learning rate of this update. losses: total, CE, BCE, SupCon. */
gboolean dcr_train_step_run (DcrTrainStep *step, gint64 update, double lr, double losses[4], GError **error);
/* The InfoNCE value (unweighted) of the last run; 0 without MoCo. */
double dcr_train_step_infonce (DcrTrainStep *step);
/* The key encoder's copy of a difference-attention parameter (DCR_P_WQ …
 * DCR_P_BG; FALSE for the heads, which it does not hold) and the queue;
 * NULL / FALSE without MoCo. */
gboolean dcr_train_step_key_param (DcrTrainStep *step, int param, float *out, GError **error);
gboolean dcr_train_step_set_key_param (DcrTrainStep *step, int param, const float *values, GError **error);
DcrMocoQueue *dcr_train_step_queue (DcrTrainStep *step);
/* With MoCo and loss.moco_pinned = n: the key encoder's keys (normalised
 * fused features, no dropout) of n samples f [n, D] with tokens r [n, L, D]
 * become the queue's pinned rows, which the ring never overwrites. */
gboolean dcr_train_step_set_pinned (DcrTrainStep *step, const float *f, const float *r, guint n, GError **error);
/* The gradient of a parameter after a run (tests), in the device layout. */
gboolean dcr_train_step_gradient (DcrTrainStep *step, int param, float *out, GError **error);
/* AdamW state for checkpoints: exp_avg and exp_avg_sq of a parameter. */
gboolean dcr_train_step_get_state (DcrTrainStep *step, int param, float *exp_avg, float *exp_avg_sq,
                                   GError **error);
gboolean dcr_train_step_set_state (DcrTrainStep *step, int param, const float *exp_avg,
                                   const float *exp_avg_sq, GError **error);

/* ---- the loop ------------------------------------------------------------ */

typedef struct {
  const float *features;  /* [n, D] raw backbone features */
  const gint32 *labels;   /* [n]: 0 real, 1 fake */
  const gint64 *pair;     /* [n] or NULL: for a fake, the index of its real source (−1: none) */
  /* [n] stable per-file keys (SHA-256) for the validation split and
   * self-exclusion: a prototype whose bank key equals a sample's key is
   * never its token. Files of one group (e.g. the crops of one photo) may
   * share a key, so that no sample is compared with its own group. */
  const char *const *keys;
  gsize n;
  /* Real prototypes the tokens come from (may be NULL: then one token, a
   * pair with a random real). Prototypes whose key equals the sample's are
   * never its tokens. */
  DcrRetrieval *bank;
  const char *const *bank_keys; /* [dcr_retrieval_count(bank)] keys of the prototypes, or NULL */
  /* [n] or NULL: the validation split, given (e.g. whole source photos held
   * out, so that crops of one photo are never on both sides); then
   * DcrTrainOptions.val_fraction is not used. */
  const gboolean *held_out;
  /* Augmented views (dcr-augment.h): features [n_views, n, D] of view
   * 1 … n_views of every sample (row v·n + i; a sample without a view
   * repeats its clean feature there). Each epoch, each training sample is
   * seen as one of its 1 + n_views versions, drawn at random (the clean one
   * included); validation uses the clean features only. */
  const float *views;
  guint n_views;
  const char *augment; /* the augmentation, as recorded in the training summary */
  /* [dcr_retrieval_count(bank)] or NULL: prototypes the curator pinned.
   * With MoCo their keys are the queue's pinned negatives, recomputed by the
   * key encoder at the start of every epoch (their tokens: their nearest
   * other prototypes). */
  const gboolean *bank_pinned;
  /* [n] or NULL: which samples come from JPEG files. With
   * DcrTrainOptions.jpeg_decision, the validation split's JPEG files get a
   * decision of their own (dcr-model.h). */
  const gboolean *jpeg;
} DcrTrainData;

typedef struct {
  guint epochs;          /* 0 → 20 */
  guint batch;           /* 0 → 32 */
  guint64 seed;
  double lr;             /* peak; cosine to lr·min_lr_ratio over all updates; 0 → 1e-3 */
  double min_lr_ratio;   /* 0 → 0.01 */
  guint warmup;          /* linear warm-up updates */
  double weight_decay;   /* AdamW; default in the CLI 1e-2 */
  double val_fraction;   /* of the files held out; 0 → 0.2; negative: none */
  DcrTrainLoss loss;
  const char *checkpoint; /* written after every epoch (and read by resume) */
  gboolean resume;
  /* Score fusion (dcr-model.h): after training, fit p_fake = σ(a·(l1 − l0) +
   * b·f[fusion_column] + c) on the validation split (a logistic regression
   * of the heads' logit and one raw feature column, e.g. the tile head's
   * score); needs a validation split with both classes. */
  gboolean fusion;
  guint fusion_column;
  /* A decision per kind of file: with DcrTrainData.jpeg and at least
   * DCR_TRAIN_DECISION_MIN_PER_CLASS reals and as many fakes among the
   * validation split's JPEG files and among its other files, the threshold
   * and band are chosen on the other files and the JPEG decision on the
   * JPEG ones; otherwise one decision on all of them. */
  gboolean jpeg_decision;
  /* With fusion and a JPEG decision: the validation split's JPEG files get
   * fusion weights of their own, fitted on them alone (the shared weights
   * are still fitted on every validation file and serve the others). */
  gboolean jpeg_fusion;
  /* The band's rule (dcr-metrics.h) for every decision but the JPEG files'
   * own, which keeps DCR_BAND_FIRST_BREAK: on the default model's
   * validation photos, left out one at a time, DCR_BAND_MOST_CALLS kept the
   * precision of PNG verdicts and gave more of them, but cost the JPEG
   * decision's "real" calls precision (the model card's HISTORY.md,
   * twenty-fifth session). 0: DCR_BAND_FIRST_BREAK. */
  DcrBandRule band_rule;
} DcrTrainOptions;

#define DCR_TRAIN_DECISION_MIN_PER_CLASS 20

typedef struct {
  guint epoch, epochs;
  gint64 update, updates;
  double loss[4];        /* mean over the epoch: total, CE, BCE, SupCon */
  double infonce;        /* mean InfoNCE over the epoch (0 without MoCo) */
  double val_auc;        /* NaN without a validation split */
  double val_acc;
  double elapsed_s, eta_s;
} DcrTrainProgress;

typedef gboolean (*DcrTrainProgressFunc) (const DcrTrainProgress *p, gpointer user_data); /* FALSE cancels */

typedef struct {
  guint n_train, n_val;
  guint n_real, n_fake;
  guint tokens;
  double first_loss, last_loss;  /* mean total loss of the first and last epoch */
  double val_auc, val_ap, val_eer;
  float threshold, band_lo, band_hi;
  /* the JPEG decision, when one was chosen: on n_val_jpeg of the n_val
   * validation files, with their AUC and that of the others */
  gboolean jpeg_decision;
  DcrDecision jpeg;
  guint n_val_jpeg;
  double val_auc_jpeg, val_auc_other;
  guint epochs_run;
  gboolean fusion;        /* fitted (DcrTrainOptions.fusion and a validation split) */
  float fusion_w[3];
  double val_auc_heads;   /* the heads' own validation AUC, before fusion */
  gboolean fusion_jpeg;   /* fitted (DcrTrainOptions.jpeg_fusion, with a JPEG decision) */
  float fusion_jpeg_w[3];
  double val_auc_jpeg_shared; /* the validation JPEG files' AUC under the shared weights */
} DcrTrainSummary;

/* The score fusion's logistic regression (Newton's method in double, an L2
 * penalty of 1e-3 on a and b): x[i] = (l1 − l0, column value), y[i] 0/1.
 * FALSE when it does not converge (e.g. one class only). */
gboolean dcr_train_fit_fusion (const double *x, const gint32 *y, gsize n, float w[3]);

/* Trains m (its parameters in place), sets its threshold, band and training
 * summary (JSON), and writes the checkpoint after every epoch. */
gboolean dcr_train_run (DcrModel *m, const DcrTrainData *data, const DcrTrainOptions *opts,
                        DcrTrainProgressFunc progress, gpointer user_data, DcrTrainSummary *summary,
                        GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrTrainStep, dcr_train_step_free)

G_END_DECLS
