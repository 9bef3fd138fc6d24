/* dcr-model.h — the trainable part of DCR-Net on the GPU: difference
 * attention over the k nearest real prototypes, the residual (anomaly) head
 * and the real/fake classifier, with their parameters in a safetensors
 * model file. Shapes: batch B, feature width D, L difference tokens.
 *
 *   f̂ = f/‖f‖, r̂_j = r_j/‖r_j‖, d_j = |f̂ − r̂_j|       (j = 1 … L; d_1: the nearest)
 *   Q = W_q f̂ + b_q,  K_j = W_k d_j + b_k,  V_j = W_v d_j + b_v   (width H, 512)
 *   a = softmax_j(Q·K_j / √H),  c = W_o Σ_j a_j V_j + b_o
 *   fused = f̂ + c, or with the gate f̂ + σ(W_g [f̂, c] + b_g) ⊙ c
 *   logits = W_c fused + b_c,  p_fake = softmax(logits)_1
 *   anomaly = σ(w_2 · dropout(relu(W_1 d_1 + b_1)) + b_2)   (width 512, p = 0.3)
 *
 * With one token the softmax is 1 and c = W_o (W_v d_1 + b_v) + b_o: the
 * seed's one-key attention, kept as a test case. */
#pragma once

#include "dcr-vk.h"
#include "dcr-bank.h"
#include "dcr-retrieval.h"

G_BEGIN_DECLS

#define DCR_MODEL_ERROR (dcr_model_error_quark ())
GQuark dcr_model_error_quark (void);

typedef enum {
  DCR_MODEL_ERROR_FORMAT,    /* not a DCR model file, or damaged */
  DCR_MODEL_ERROR_VERSION,   /* written by a newer DCR */
  DCR_MODEL_ERROR_MISMATCH,  /* trained for another backbone or feature width */
  DCR_MODEL_ERROR_INVALID,   /* bad argument (sizes, dtype, batch) */
} DcrModelError;

#define DCR_MODEL_FORMAT "dcr-model"
#define DCR_MODEL_VERSION 1

/* A decision on p_fake: fake at or above threshold, real below, and
 * inconclusive in [band_lo, band_hi) (lo ≤ threshold ≤ hi; lo = hi: no band). */
typedef struct {
  float threshold;
  float band_lo, band_hi;
} DcrDecision;

typedef struct {
  char *backbone_id;     /* dcr_backbone_id() of the features it was trained on */
  guint dim;             /* D */
  guint k;               /* prototypes compared with in single mode */
  guint hidden;          /* H, the attention width (512) */
  guint head_hidden;     /* the residual head's width (512) */
  gboolean gate;
  float dropout;         /* of the residual head in training (0.3) */
  /* The verdict on p_fake: fake at or above threshold, real below, and
   * inconclusive in [band_lo, band_hi) (lo ≤ threshold ≤ hi; lo = hi: no band). */
  float threshold;
  float band_lo, band_hi;
  /* Optional: the decision for JPEG files, chosen on the validation split's
   * JPEG files alone (the one above then on its other files). JPEG erases
   * much of the evidence, so scores of JPEG files are less certain and get
   * a decision (mostly a wider band) of their own. Without it the decision
   * above serves every file. */
  gboolean jpeg_decision;
  DcrDecision jpeg;
  char *training;        /* JSON summary of how it was trained (or NULL) */
  /* Score fusion (optional): with it, p_fake = σ(a·(l1 − l0) + b·f[column] + c)
   * over the heads' logits l and one raw feature column (the tile head's
   * top-4 score, dcr-tile-head.h), fitted on the validation split. */
  gboolean fusion;
  guint fusion_column;
  float fusion_w[3];     /* a, b, c */
  /* Optional, with fusion and a JPEG decision: the weights for files judged
   * as JPEG, fitted on the validation split's JPEG files alone (same column);
   * the weights above then serve the other files. JPEG changes how far each
   * input can be trusted, so the two kinds may weigh them differently. */
  gboolean fusion_jpeg;
  float fusion_jpeg_w[3];
} DcrModelConfig;

typedef enum {
  DCR_VERDICT_REAL,
  DCR_VERDICT_FAKE,
  DCR_VERDICT_INCONCLUSIVE,
} DcrVerdict;

const char *dcr_verdict_name (DcrVerdict v);

typedef struct _DcrModel DcrModel;

/* A model with fresh parameters, initialised as torch.nn.Linear does
 * (U(±1/√fan_in) for weights and biases) from `seed`. Defaults for zero
 * fields: k 8, hidden 512, head_hidden 512, dropout 0.3, threshold 0.5 with
 * an empty band. */
DcrModel *dcr_model_new (DcrContext *ctx, const DcrModelConfig *cfg, guint64 seed, GError **error);
/* Reads a model file (safetensors, format "dcr-model"), checking every
 * tensor's shape and values against the metadata. */
DcrModel *dcr_model_load (DcrContext *ctx, const char *path, GError **error);
void dcr_model_free (DcrModel *m);
/* Writes the parameters (as f32) and the metadata atomically. */
gboolean dcr_model_save (DcrModel *m, const char *path, GError **error);
/* Refuses features from another backbone: the model's weights mean nothing
 * for them. */
gboolean dcr_model_check_backbone (DcrModel *m, const char *backbone_id, guint dim, GError **error);

const DcrModelConfig *dcr_model_config (DcrModel *m);
DcrContext *dcr_model_context (DcrModel *m);
/* The file it was loaded from (or last saved to), and that file's SHA-256
 * (hex); NULL for a model never on disk. */
const char *dcr_model_path (DcrModel *m);
const char *dcr_model_sha256 (DcrModel *m);
void dcr_model_set_decision (DcrModel *m, float threshold, float band_lo, float band_hi);
/* Sets the decision for JPEG files (lo and hi clamped around the threshold
 * as above), or removes it (d NULL, and the JPEG files' fusion weights with it). */
void dcr_model_set_jpeg_decision (DcrModel *m, const DcrDecision *d);
/* The decision for a file, JPEG or not: the model's JPEG decision for a
 * JPEG when it has one, else its decision. */
DcrDecision dcr_model_decision (DcrModel *m, gboolean jpeg);
void dcr_model_set_training (DcrModel *m, const char *json);
/* Turns score fusion on (column < dim; weights finite) or off (w NULL, and
 * the JPEG files' weights with it). */
void dcr_model_set_fusion (DcrModel *m, guint column, const float *w);
/* Sets the fusion weights for files judged as JPEG (the model must have a
 * fusion; weights finite; a saved model needs a JPEG decision with them),
 * or removes them (w NULL). */
void dcr_model_set_fusion_jpeg (DcrModel *m, const float *w);
/* p_fake of a file from the heads' logits and the raw feature row f (dim
 * values), fused when the model has fusion; jpeg: the file is judged as a
 * JPEG (its fusion weights, when the model has them). */
float dcr_model_p_fake (DcrModel *m, const float logits[2], const float *f, gboolean jpeg);
/* The verdict on p_fake of a file, under dcr_model_decision (m, jpeg). */
DcrVerdict dcr_model_verdict (DcrModel *m, float p_fake, gboolean jpeg);
/* Parameters, in the PyTorch state_dict order and names of the reference
 * module (tests/golden/make-dcr-golden.py). */
guint dcr_model_n_params (DcrModel *m);
gsize dcr_model_param_count (DcrModel *m); /* scalars in all */

/* Writes the real features of images into the bank (the update_memory
 * mode): normalised, with their provenance, in one transaction; the bank
 * must be built for the model's backbone. ids_out as dcr_bank_add. */
gboolean dcr_model_update_memory (DcrModel *m, DcrBank *bank, const DcrPrototypeNew *items, guint n,
                                  gboolean skip_duplicates, gint64 *ids_out, GError **error);

/* A forward pass for `batch` images against `tokens` prototypes each,
 * recorded once into a caller's sequence and replayed. `dtype` is the
 * storage of weights and activations (DCR_F16 needs 16-bit storage);
 * training runs are f32 and also apply the residual head's dropout mask. */
typedef struct _DcrModelRun DcrModelRun;

DcrModelRun *dcr_model_run_new (DcrModel *m, DcrDtype dtype, guint batch, guint tokens, gboolean training,
                                GError **error);
void dcr_model_run_free (DcrModelRun *run);
guint dcr_model_run_batch (DcrModelRun *run);
guint dcr_model_run_tokens (DcrModelRun *run);

/* Pair / given prototypes: uploads raw features f [n, D] and prototypes
 * r [n, L, D] (normalised on the GPU) into the run's inputs; rows n … B−1
 * are zeros. The pair mode is L = 1 with r = f(x_pair). */
gboolean dcr_model_run_set_inputs (DcrModelRun *run, const float *f, const float *r, guint n, GError **error);
/* Records normalisation, difference tokens and the heads from those inputs. */
gboolean dcr_model_run_record_tokens (DcrModelRun *run, DcrSeq *seq, GError **error);
/* Pair mode on device features: f and f_pair [B, D] in the run's dtype. */
gboolean dcr_model_run_record_pair (DcrModelRun *run, DcrSeq *seq, const DcrTensor *f, const DcrTensor *f_pair,
                                    GError **error);
/* Single mode: retrieval of features [B, D] (e.g. the backbone's output)
 * through rr (same batch, k = tokens, same dtype), the tokens gathered from
 * the bank on the GPU, then the heads. */
gboolean dcr_model_run_record_single (DcrModelRun *run, DcrSeq *seq, DcrRetrievalRun *rr,
                                      const DcrTensor *features, GError **error);

/* After the sequence ran, the first n images' outputs (any may be NULL):
 * logits [n, 2], p_fake [n] (as for files other than JPEG: for a file
 * judged as JPEG, dcr_model_p_fake), anomaly [n] (σ of the head), attention [n, L]
 * (the weights over the prototypes), residual [n, D] = |f̂ − r̂_1|, fused
 * [n, D]. */
gboolean dcr_model_run_outputs (DcrModelRun *run, guint n, float *logits, float *p_fake, float *anomaly,
                                float *attention, float *residual, float *fused, GError **error);

/* The host-side forward of the same heads in double (dropout off), for
 * tests: f [n, D] and r [n, L, D] raw features, outputs as above. */
void dcr_model_ref_forward (DcrModel *m, const float *f, const float *r, guint n, guint tokens, float *logits,
                            float *p_fake, float *anomaly, float *attention, float *residual, float *fused);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrModel, dcr_model_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrModelRun, dcr_model_run_free)

G_END_DECLS
