/* dcr-model-private.h — the model's parameters and a run's tensors, shared
 * with the trainer (dcr-train.c), which records the backward pass and the
 * optimizer over them. Not installed; not for the app. */
#pragma once

#include "dcr-model.h"

G_BEGIN_DECLS

/* Device parameters. The gate's weight W_g [D, 2D] is kept as its two
 * halves, for f̂ and for c, so that no concatenation is needed on the GPU;
 * the file holds it whole, as PyTorch does. */
typedef enum {
  DCR_P_WQ, DCR_P_BQ, DCR_P_WK, DCR_P_BK, DCR_P_WV, DCR_P_BV, DCR_P_WO, DCR_P_BO,
  DCR_P_WGF, DCR_P_WGC, DCR_P_BG,
  DCR_P_WC, DCR_P_BC,
  DCR_P_W1, DCR_P_B1, DCR_P_W2, DCR_P_B2,
  DCR_N_PARAMS
} DcrParamId;

struct _DcrModel {
  DcrContext *ctx;
  DcrModelConfig cfg;
  char *path;
  char *sha256;
  float *host[DCR_N_PARAMS];            /* NULL: the parameter is absent (no gate) */
  DcrTensor *dev[2][DCR_N_PARAMS];      /* uploaded on demand: [0] f32, [1] f16 */
  gboolean host_stale;                  /* the f32 device copy was trained since */
};

struct _DcrModelRun {
  DcrModel *m;
  DcrDtype dtype;
  guint batch, tokens;
  gboolean training;
  DcrTensor *f_in, *r_in;     /* raw inputs [B, D], [B, L, D] */
  const DcrTensor *f_raw;     /* the raw features the run reads: f_in, or single mode's */
  DcrTensor *fhat, *rhat;     /* normalised inputs */
  const DcrTensor *fhat_used; /* what the heads read: fhat, or retrieval's q̂ */
  DcrTensor *d, *d1;          /* [B, L, D], [B, D] */
  DcrTensor *q, *kt, *vt;     /* [B, H], [B, L, H] ×2 */
  DcrTensor *ctxh;            /* [B, H] attention output */
  DcrTensor *attw;            /* [B, 1, 1, L] */
  DcrTensor *ctx, *zg;        /* [B, D], gate only */
  DcrTensor *fused;           /* [B, D] */
  DcrTensor *logits;          /* [B, 2] */
  DcrTensor *ha;              /* [B, Hr] relu output */
  DcrTensor *mask, *had;      /* [B, Hr] dropout mask (0 or 1/(1−p)) and ha ⊙ mask: training only */
  DcrTensor *za;              /* [B, 1] anomaly logit */
};

gboolean dcr_model_param_present (DcrModel *m, DcrParamId id);
const char *dcr_model_param_name (DcrParamId id);
/* ndim and shape of a device parameter. */
int dcr_model_param_shape (DcrModel *m, DcrParamId id, gint64 shape[2]);
/* The device copy in dtype, uploaded on first use. */
DcrTensor *dcr_model_device_param (DcrModel *m, DcrDtype dtype, DcrParamId id, GError **error);
/* The trainer changed the f32 device parameters: read them back into the
 * host copy (and drop any f16 copy) before saving or a host forward. */
gboolean dcr_model_pull (DcrModel *m, GError **error);
/* Marks the f32 device parameters as newer than the host copy. */
void dcr_model_mark_trained (DcrModel *m);
/* Replaces the host copy of a parameter (e.g. from a checkpoint). */
void dcr_model_set_param (DcrModel *m, DcrParamId id, const float *values);
float *dcr_model_host_param (DcrModel *m, DcrParamId id);

G_END_DECLS
