/* dcr-train.c — the recorded training step of the DCR heads (forward,
 * losses, backward, AdamW) and the loop around it: tokens per sample,
 * shuffling, cosine schedule, validation, threshold and band, checkpoints. */
#include "dcr-train.h"
#include "dcr-model-private.h"
#include "dcr-metrics.h"
#include "dcr-op-eltwise.h"
#include "dcr-op-grad.h"
#include "dcr-op-heads.h"
#include "dcr-op-loss.h"
#include "dcr-op-norm.h"
#include "dcr-safetensors.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

G_DEFINE_QUARK (dcr-train-error-quark, dcr_train_error)

#define NORM_EPS 1e-12f

struct _DcrTrainStep {
  DcrModel *m;
  DcrModelRun *run;
  DcrSeq *seq;
  DcrTrainLoss loss;
  gboolean optim;
  guint batch, tokens;
  DcrTensor *labels, *targets;
  DcrTensor *zn, *dzn, *sc_scratch;
  DcrTensor *loss_ce, *loss_bce, *loss_sc;
  DcrTensor *dlogits, *dza, *dfused, *dctx, *dzg, *dctxh, *dq, *dk, *dv, *dhad, *dha, *dpre;
  DcrTensor *grad[DCR_N_PARAMS], *exp_avg[DCR_N_PARAMS], *exp_avg_sq[DCR_N_PARAMS];
  DcrTensor *hyper;
  /* MoCo: the key encoder (a model whose difference attention is the
   * momentum copy), its forward run, k⁺ normalised, the queue */
  DcrModel *key;
  DcrModelRun *krun;
  DcrMocoQueue *queue;
  DcrTensor *kn, *dzq, *nce_scratch, *loss_nce;
  double infonce;
};

/* The parameters that produce the fused feature: the key encoder's. */
static gboolean
is_key_param (int i)
{
  return i >= DCR_P_WQ && i <= DCR_P_BG;
}

void
dcr_train_step_free (DcrTrainStep *step)
{
  if (!step)
    return;
  dcr_seq_free (step->seq);
  dcr_model_run_free (step->run);
  dcr_model_run_free (step->krun);
  dcr_model_free (step->key);
  dcr_moco_queue_free (step->queue);
  DcrTensor *all[] = { step->labels, step->targets, step->zn, step->dzn, step->sc_scratch, step->loss_ce,
                       step->loss_bce, step->loss_sc, step->dlogits, step->dza, step->dfused, step->dctx,
                       step->dzg, step->dctxh, step->dq, step->dk, step->dv, step->dhad, step->dha, step->dpre,
                       step->hyper, step->kn, step->dzq, step->nce_scratch, step->loss_nce };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    dcr_tensor_free (all[i]);
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      dcr_tensor_free (step->grad[i]);
      dcr_tensor_free (step->exp_avg[i]);
      dcr_tensor_free (step->exp_avg_sq[i]);
    }
  g_free (step);
}

static void
loss_defaults (DcrTrainLoss *l)
{
  if (l->lambda_bce == 0)
    l->lambda_bce = 1;
  if (l->lambda_supcon == 0)
    l->lambda_supcon = 0.1f;
  if (l->temperature == 0)
    l->temperature = 0.07f;
  if (l->adamw.lr == 0)
    l->adamw.lr = 1e-3;
  if (l->adamw.beta1 == 0)
    l->adamw.beta1 = 0.9;
  if (l->adamw.beta2 == 0)
    l->adamw.beta2 = 0.999;
  if (l->adamw.eps == 0)
    l->adamw.eps = 1e-8;
  if (l->moco_queue == 0)
    l->moco_queue = 1024;
  if (l->lambda_infonce == 0)
    l->lambda_infonce = 0.1f;
  if (l->moco_momentum == 0)
    l->moco_momentum = DCR_MOCO_MOMENTUM;
}

static DcrTensor *
f32 (DcrModel *m, int ndim, const gint64 *shape, GError **error)
{
  return dcr_tensor_new (m->ctx, DCR_POOL_ACTIVATIONS, DCR_F32, ndim, shape, error);
}

/* Everything after the forward pass: losses, backward, optimizer. */
static gboolean
record_backward (DcrTrainStep *s, GError **error)
{
  DcrModel *m = s->m;
  DcrModelRun *r = s->run;
  DcrSeq *seq = s->seq;
  DcrTensor **P = m->dev[0], **G = s->grad;
  gint64 h = m->cfg.hidden;

  /* losses and their gradients, each scaled by its weight in the total */
  if (!dcr_op_cross_entropy (seq, r->logits, s->labels, 1.0f, s->loss_ce, s->dlogits, error) ||
      !dcr_op_bce_with_logits (seq, r->za, s->targets, s->loss.lambda_bce, s->loss_bce, s->dza, error))
    return FALSE;
  /* classifier, then the contrastive term joins dfused */
  if (!dcr_op_linear_backward (seq, r->fused, P[DCR_P_WC], s->dlogits, s->dfused, G[DCR_P_WC], G[DCR_P_BC],
                               DCR_GRAD_OVERWRITE, error))
    return FALSE;
  if ((s->loss.lambda_supcon > 0 || s->key) && !dcr_op_l2_normalize (seq, r->fused, s->zn, NORM_EPS, error))
    return FALSE;
  if (s->loss.lambda_supcon > 0 &&
      (!dcr_op_supcon (seq, s->zn, s->labels, s->loss.temperature, 0, s->loss.lambda_supcon, s->sc_scratch,
                       s->loss_sc, s->dzn, error) ||
       !dcr_op_l2_normalize_backward (seq, r->fused, s->dzn, NORM_EPS, s->dfused, DCR_GRAD_ACCUMULATE_INPUT,
                                      error)))
    return FALSE;
  /* InfoNCE of q = ẑ against k⁺ and the queue as it was before this batch */
  if (s->key &&
      (!dcr_op_l2_normalize (seq, s->krun->fused, s->kn, NORM_EPS, error) ||
       !dcr_op_infonce (seq, s->zn, s->kn, dcr_moco_queue_tensor (s->queue), s->loss.temperature,
                        s->loss.lambda_infonce, s->nce_scratch, s->loss_nce, s->dzq, NULL, error) ||
       !dcr_op_l2_normalize_backward (seq, r->fused, s->dzq, NORM_EPS, s->dfused, DCR_GRAD_ACCUMULATE_INPUT,
                                      error)))
    return FALSE;

  /* fused = f̂ + c (or f̂ + σ(z) ⊙ c): f̂ is a constant input */
  DcrTensor *dctx = s->dfused;
  if (m->cfg.gate)
    {
      dctx = s->dctx;
      if (!dcr_op_gate_backward (seq, r->ctx, r->zg, s->dfused, s->dctx, s->dzg, FALSE, error) ||
          !dcr_op_linear_backward (seq, r->fhat_used, P[DCR_P_WGF], s->dzg, NULL, G[DCR_P_WGF], G[DCR_P_BG],
                                   DCR_GRAD_OVERWRITE, error) ||
          !dcr_op_linear_backward (seq, r->ctx, P[DCR_P_WGC], s->dzg, s->dctx, G[DCR_P_WGC], NULL,
                                   DCR_GRAD_ACCUMULATE_INPUT, error))
        return FALSE;
    }
  gint64 s3[] = { s->batch, 1, h };
  DcrTensor q3 = *r->q, c3 = *r->ctxh;
  q3.ndim = c3.ndim = 3;
  memcpy (q3.shape, s3, sizeof s3);
  memcpy (c3.shape, s3, sizeof s3);
  if (!dcr_op_linear_backward (seq, &c3, P[DCR_P_WO], dctx, s->dctxh, G[DCR_P_WO], G[DCR_P_BO],
                               DCR_GRAD_OVERWRITE, error) ||
      !dcr_op_attention_backward (seq, &q3, r->kt, r->vt, s->dctxh, 1, (float) (1.0 / sqrt ((double) h)), s->dq,
                                  s->dk, s->dv, DCR_GRAD_OVERWRITE, error) ||
      !dcr_op_linear_backward (seq, r->fhat_used, P[DCR_P_WQ], s->dq, NULL, G[DCR_P_WQ], G[DCR_P_BQ],
                               DCR_GRAD_OVERWRITE, error) ||
      !dcr_op_linear_backward (seq, r->d, P[DCR_P_WK], s->dk, NULL, G[DCR_P_WK], G[DCR_P_BK], DCR_GRAD_OVERWRITE,
                               error) ||
      !dcr_op_linear_backward (seq, r->d, P[DCR_P_WV], s->dv, NULL, G[DCR_P_WV], G[DCR_P_BV], DCR_GRAD_OVERWRITE,
                               error))
    return FALSE;

  /* residual head: z = w₂·(relu(W₁ d₁ + b₁) ⊙ mask) + b₂ */
  if (!dcr_op_linear_backward (seq, r->had, P[DCR_P_W2], s->dza, s->dhad, G[DCR_P_W2], G[DCR_P_B2],
                               DCR_GRAD_OVERWRITE, error) ||
      !dcr_op_mul (seq, s->dhad, r->mask, s->dha, error) ||
      !dcr_op_act_backward (seq, DCR_ACT_RELU, r->ha, s->dha, s->dpre, DCR_GRAD_OVERWRITE, error) ||
      !dcr_op_linear_backward (seq, r->d1, P[DCR_P_W1], s->dpre, NULL, G[DCR_P_W1], G[DCR_P_B1],
                               DCR_GRAD_OVERWRITE, error))
    return FALSE;

  if (s->optim)
    for (int i = 0; i < DCR_N_PARAMS; i++)
      if (P[i] && !dcr_op_adamw (seq, s->hyper, P[i], G[i], s->exp_avg[i], s->exp_avg_sq[i], NULL, error))
        return FALSE;
  /* θ_k ← m·θ_k + (1 − m)·θ_q with the updated θ_q */
  if (s->optim && s->key)
    for (int i = 0; i < DCR_N_PARAMS; i++)
      if (is_key_param (i) && P[i] &&
          !dcr_op_momentum_update (seq, s->key->dev[0][i], P[i], s->loss.moco_momentum, error))
        return FALSE;
  return TRUE;
}

/* The key encoder starts as a copy of the model (MoCo's θ_k = θ_q); its
 * run is an inference forward pass, so no dropout reaches k⁺. */
static gboolean
moco_new (DcrTrainStep *s, GError **error)
{
  DcrModel *m = s->m;
  gint64 b = s->batch, d = m->cfg.dim, q = MAX (s->loss.moco_queue, s->batch);
  gint64 s_bd[] = { b, d }, s_nce[] = { b, q + s->loss.moco_pinned + 2 }, s_one[] = { 1 };
  if (!dcr_model_pull (m, error) || !(s->key = dcr_model_new (m->ctx, &m->cfg, 0, error)))
    return FALSE;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    if (m->host[i])
      dcr_model_set_param (s->key, i, m->host[i]);
  for (int i = 0; i < DCR_N_PARAMS; i++)
    if (is_key_param (i) && m->host[i] && !dcr_model_device_param (s->key, DCR_F32, i, error))
      return FALSE;
  s->loss.moco_queue = (guint) q;
  return (s->krun = dcr_model_run_new (s->key, DCR_F32, s->batch, s->tokens, FALSE, error)) &&
         (s->queue = dcr_moco_queue_new (m->ctx, m->cfg.dim, (guint) q, s->loss.moco_pinned, s->loss.moco_seed,
                                         error)) &&
         (s->kn = f32 (m, 2, s_bd, error)) && (s->dzq = f32 (m, 2, s_bd, error)) &&
         (s->nce_scratch = f32 (m, 2, s_nce, error)) && (s->loss_nce = f32 (m, 1, s_one, error));
}

DcrTrainStep *
dcr_train_step_new (DcrModel *m, guint batch, guint tokens, const DcrTrainLoss *loss, gboolean with_optimizer,
                    GError **error)
{
  g_autoptr (DcrTrainStep) s = g_new0 (DcrTrainStep, 1);
  s->m = m;
  s->loss = *loss;
  loss_defaults (&s->loss);
  s->optim = with_optimizer;
  s->batch = batch;
  s->tokens = tokens;
  if (!(s->run = dcr_model_run_new (m, DCR_F32, batch, tokens, TRUE, error)) ||
      !(s->seq = dcr_seq_new (m->ctx, error)))
    return NULL;
  gint64 b = batch, l = tokens, d = m->cfg.dim, h = m->cfg.hidden, hr = m->cfg.head_hidden;
  gint64 s_b[] = { b }, s_b1[] = { b, 1 }, s_bd[] = { b, d }, s_sc[] = { b, b + 1 }, s_one[] = { 1 };
  gint64 s_b2[] = { b, 2 }, s_b1h[] = { b, 1, h }, s_blh[] = { b, l, h }, s_bhr[] = { b, hr };
  gint64 s_hyper[] = { DCR_OPTIM_HYPER_LEN };
  if (!(s->labels = dcr_tensor_new (m->ctx, DCR_POOL_ACTIVATIONS, DCR_I32, 1, s_b, error)) ||
      !(s->targets = f32 (m, 2, s_b1, error)) || !(s->zn = f32 (m, 2, s_bd, error)) ||
      !(s->dzn = f32 (m, 2, s_bd, error)) || !(s->sc_scratch = f32 (m, 2, s_sc, error)) ||
      !(s->loss_ce = f32 (m, 1, s_one, error)) || !(s->loss_bce = f32 (m, 1, s_one, error)) ||
      !(s->loss_sc = f32 (m, 1, s_one, error)) || !(s->dlogits = f32 (m, 2, s_b2, error)) ||
      !(s->dza = f32 (m, 2, s_b1, error)) || !(s->dfused = f32 (m, 2, s_bd, error)) ||
      !(s->dctxh = f32 (m, 3, s_b1h, error)) || !(s->dq = f32 (m, 3, s_b1h, error)) ||
      !(s->dk = f32 (m, 3, s_blh, error)) || !(s->dv = f32 (m, 3, s_blh, error)) ||
      !(s->dhad = f32 (m, 2, s_bhr, error)) || !(s->dha = f32 (m, 2, s_bhr, error)) ||
      !(s->dpre = f32 (m, 2, s_bhr, error)) || !(s->hyper = f32 (m, 1, s_hyper, error)))
    return NULL;
  if (m->cfg.gate && (!(s->dctx = f32 (m, 2, s_bd, error)) || !(s->dzg = f32 (m, 2, s_bd, error))))
    return NULL;
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      if (!m->dev[0][i])
        continue;
      gint64 shape[2];
      int nd = dcr_model_param_shape (m, i, shape);
      if (!(s->grad[i] = f32 (m, nd, shape, error)))
        return NULL;
      if (with_optimizer &&
          (!(s->exp_avg[i] = dcr_tensor_new (m->ctx, DCR_POOL_WEIGHTS, DCR_F32, nd, shape, error)) ||
           !(s->exp_avg_sq[i] = dcr_tensor_new (m->ctx, DCR_POOL_WEIGHTS, DCR_F32, nd, shape, error)) ||
           !dcr_buffer_fill_zero (s->exp_avg[i]->buf, error) || !dcr_buffer_fill_zero (s->exp_avg_sq[i]->buf, error)))
        return NULL;
    }
  /* without SupCon its loss reads 0 */
  if (!dcr_buffer_fill_zero (s->loss_sc->buf, error))
    return NULL;
  if (s->loss.moco && !moco_new (s, error))
    return NULL;
  if (!dcr_model_run_record_tokens (s->run, s->seq, error) ||
      (s->key && !dcr_model_run_record_tokens (s->krun, s->seq, error)) || !record_backward (s, error))
    return NULL;
  return g_steal_pointer (&s);
}

gboolean
dcr_train_step_set_pinned (DcrTrainStep *s, const float *f, const float *r, guint n, GError **error)
{
  if (!s->queue || n != dcr_moco_queue_n_pinned (s->queue))
    {
      g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA,
                   "%u pinned prototypes given; the MoCo queue reserves %u", n,
                   s->queue ? dcr_moco_queue_n_pinned (s->queue) : 0);
      return FALSE;
    }
  if (!n)
    return TRUE;
  gsize d = s->m->cfg.dim;
  guint b = MIN (n, 64u);
  g_autoptr (DcrModelRun) run = dcr_model_run_new (s->key, DCR_F32, b, s->tokens, FALSE, error);
  g_autoptr (DcrSeq) seq = run ? dcr_seq_new (s->m->ctx, error) : NULL;
  if (!seq || !dcr_model_run_record_tokens (run, seq, error))
    return FALSE;
  g_autofree float *keys = g_new (float, (gsize) n * d);
  for (guint i = 0; i < n; i += b)
    {
      guint m = MIN (b, n - i);
      if (!dcr_model_run_set_inputs (run, f + (gsize) i * d, r + (gsize) i * s->tokens * d, m, error) ||
          !dcr_seq_submit (seq, TRUE, error) ||
          !dcr_model_run_outputs (run, m, NULL, NULL, NULL, NULL, NULL, keys + (gsize) i * d, error))
        return FALSE;
    }
  return dcr_moco_queue_set_pinned (s->queue, keys, error);
}

gboolean
dcr_train_step_set_batch (DcrTrainStep *s, const float *f, const float *r, const gint32 *labels, const float *mask,
                          GRand *rng, GError **error)
{
  gsize b = s->batch, hr = s->m->cfg.head_hidden;
  g_autofree float *targets = g_new (float, b);
  for (gsize i = 0; i < b; i++)
    targets[i] = labels[i] ? 1.0f : 0.0f;
  g_autofree float *drawn = NULL;
  if (!mask)
    {
      float p = s->m->cfg.dropout, keep = 1.0f / (1.0f - p);
      drawn = g_new (float, b * hr);
      for (gsize i = 0; i < b * hr; i++)
        drawn[i] = g_rand_double (rng) >= p ? keep : 0.0f;
      mask = drawn;
    }
  if (s->krun && !dcr_model_run_set_inputs (s->krun, f, r, s->batch, error))
    return FALSE;
  return dcr_model_run_set_inputs (s->run, f, r, s->batch, error) && dcr_tensor_upload (s->labels, labels, error) &&
         dcr_tensor_upload (s->targets, targets, error) && dcr_tensor_upload (s->run->mask, mask, error);
}

gboolean
dcr_train_step_run (DcrTrainStep *s, gint64 update, double lr, double losses[4], GError **error)
{
  if (s->optim)
    {
      float hyper[DCR_OPTIM_HYPER_LEN];
      DcrAdamWConfig cfg = s->loss.adamw;
      cfg.lr = lr;
      dcr_adamw_hyper (&cfg, update, hyper);
      if (!dcr_tensor_upload (s->hyper, hyper, error))
        return FALSE;
    }
  if (!dcr_seq_submit (s->seq, TRUE, error))
    return FALSE;
  if (s->optim)
    dcr_model_mark_trained (s->m);
  /* this batch's keys become negatives for the next ones */
  if (s->optim && s->queue && !dcr_moco_queue_push (s->queue, s->kn, error))
    return FALSE;
  float ce, bce, sc, nce = 0;
  if (!dcr_tensor_download (s->loss_ce, &ce, error) || !dcr_tensor_download (s->loss_bce, &bce, error) ||
      !dcr_tensor_download (s->loss_sc, &sc, error) || (s->key && !dcr_tensor_download (s->loss_nce, &nce, error)))
    return FALSE;
  double lsc = s->loss.lambda_supcon > 0 ? s->loss.lambda_supcon : 0;
  s->infonce = nce;
  losses[0] = ce + s->loss.lambda_bce * (double) bce + lsc * sc + (s->key ? s->loss.lambda_infonce * (double) nce : 0);
  losses[1] = ce;
  losses[2] = bce;
  losses[3] = sc;
  if (!isfinite (losses[0]))
    {
      g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DIVERGED,
                   "the training loss became %g at update %" G_GINT64_FORMAT " (CE %g, BCE %g, SupCon %g); lower "
                   "the learning rate", losses[0], update, ce, bce, sc);
      return FALSE;
    }
  return TRUE;
}

double
dcr_train_step_infonce (DcrTrainStep *s)
{
  return s->infonce;
}

gboolean
dcr_train_step_key_param (DcrTrainStep *s, int param, float *out, GError **error)
{
  g_return_val_if_fail (s->key && is_key_param (param) && s->key->dev[0][param], FALSE);
  return dcr_tensor_download (s->key->dev[0][param], out, error);
}

gboolean
dcr_train_step_set_key_param (DcrTrainStep *s, int param, const float *values, GError **error)
{
  g_return_val_if_fail (s->key && is_key_param (param) && s->key->dev[0][param], FALSE);
  return dcr_tensor_upload (s->key->dev[0][param], values, error);
}

DcrMocoQueue *
dcr_train_step_queue (DcrTrainStep *s)
{
  return s->queue;
}

gboolean
dcr_train_step_gradient (DcrTrainStep *s, int param, float *out, GError **error)
{
  g_return_val_if_fail (param >= 0 && param < DCR_N_PARAMS && s->grad[param], FALSE);
  return dcr_tensor_download (s->grad[param], out, error);
}

gboolean
dcr_train_step_get_state (DcrTrainStep *s, int param, float *exp_avg, float *exp_avg_sq, GError **error)
{
  g_return_val_if_fail (s->optim && s->exp_avg[param], FALSE);
  return dcr_tensor_download (s->exp_avg[param], exp_avg, error) &&
         dcr_tensor_download (s->exp_avg_sq[param], exp_avg_sq, error);
}

gboolean
dcr_train_step_set_state (DcrTrainStep *s, int param, const float *exp_avg, const float *exp_avg_sq,
                          GError **error)
{
  g_return_val_if_fail (s->optim && s->exp_avg[param], FALSE);
  return dcr_tensor_upload (s->exp_avg[param], exp_avg, error) &&
         dcr_tensor_upload (s->exp_avg_sq[param], exp_avg_sq, error);
}

/* ---- the loop ------------------------------------------------------------ */

#define EXTRA_CANDIDATES 4    /* retrieved beyond k, to skip the sample itself and its pair */
#define EVAL_BATCH 64u
/* A verdict outside the band is right at least 95 % of the time on the
 * validation photos, reals and fakes weighted as equally likely. */
#define BAND_MIN_PRECISION 0.95
#define BAND_MIN_HALF_WIDTH 0.05
#define CHECKPOINT_FORMAT "dcr-train-checkpoint"

/* Where a token comes from: a bank position (≥ 0) or training sample −1 − s. */
typedef gint64 TokenSrc;

typedef struct {
  const DcrTrainData *data;
  guint dim, tokens;
  TokenSrc *src;          /* [rows, tokens]: row v·n + i is view v (0: clean) of sample i */
  gint64 *train, *val;    /* sample indices */
  gsize n_train, n_val;
} Plan;

static void
plan_clear (Plan *p)
{
  g_free (p->src);
  g_free (p->train);
  g_free (p->val);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Plan, plan_clear)

static guint32
key_hash (const char *key)
{
  g_autofree char *h = g_compute_checksum_for_string (G_CHECKSUM_SHA256, key ? key : "", -1);
  h[8] = 0;
  return (guint32) g_ascii_strtoull (h, NULL, 16);
}

typedef struct {
  guint32 h;
  gint64 i;
} Keyed;

static int
by_hash (const void *a, const void *b)
{
  const Keyed *x = a, *y = b;
  return x->h < y->h ? -1 : x->h > y->h ? 1 : (x->i < y->i ? -1 : x->i > y->i);
}

/* Per class, the files whose key hashes lowest go to validation: a split by
 * file, stratified, the same on every run and resume. */
static void
plan_split (Plan *p, double frac)
{
  const DcrTrainData *d = p->data;
  p->train = g_new (gint64, d->n);
  p->val = g_new (gint64, d->n);
  if (d->held_out)
    {
      for (gsize i = 0; i < d->n; i++)
        {
          if (d->held_out[i])
            p->val[p->n_val++] = (gint64) i;
          else
            p->train[p->n_train++] = (gint64) i;
        }
      return;
    }
  for (gint32 cls = 0; cls <= 1; cls++)
    {
      g_autofree Keyed *k = g_new (Keyed, d->n);
      gsize m = 0;
      for (gsize i = 0; i < d->n; i++)
        if ((d->labels[i] != 0) == cls)
          k[m++] = (Keyed) { key_hash (d->keys ? d->keys[i] : NULL) ^ (guint32) (d->keys ? 0 : i * 2654435761u),
                             (gint64) i };
      qsort (k, m, sizeof *k, by_hash);
      gsize nv = frac > 0 && m >= 4 ? (gsize) MAX (1, floor (frac * m + 0.5)) : 0;
      for (gsize j = 0; j < m; j++)
        {
          if (j < nv)
            p->val[p->n_val++] = k[j].i;
          else
            p->train[p->n_train++] = k[j].i;
        }
    }
}

/* The feature of row r: sample r of the clean features, or a view's. */
static const float *
row_feature (const DcrTrainData *d, gsize dim, gint64 r)
{
  return (gsize) r < d->n ? d->features + (gsize) r * dim : d->views + ((gsize) r - d->n) * dim;
}

static gboolean
same_key (const DcrTrainData *d, gint64 sample, gint64 bank_pos)
{
  return d->keys && d->bank_keys && d->keys[sample] && d->bank_keys[bank_pos] &&
         strcmp (d->keys[sample], d->bank_keys[bank_pos]) == 0;
}

/* Tokens of every sample and view: its explicit pair first, then its
 * nearest bank prototypes that are not the sample itself; without a bank
 * one token, a random real of the training split. */
static gboolean
plan_tokens (Plan *p, guint k, GRand *rng, GError **error)
{
  const DcrTrainData *d = p->data;
  gsize count = d->bank ? dcr_retrieval_count (d->bank) : 0;
  g_autofree gint64 *train_reals = g_new (gint64, MAX (p->n_train, 1));
  gsize n_reals = 0;
  for (gsize i = 0; i < p->n_train; i++)
    if (!d->labels[p->train[i]])
      train_reals[n_reals++] = p->train[i];
  if (!d->bank && n_reals < 2)
    {
      g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA,
                   "training needs at least 2 real images (or a bank of real prototypes) to pair with");
      return FALSE;
    }
  p->tokens = d->bank ? (guint) MIN ((gsize) k, count) : 1;
  if (d->bank && count < 2)
    {
      g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA,
                   "the bank has %" G_GSIZE_FORMAT " enabled prototype%s; training needs at least 2", count,
                   count == 1 ? "" : "s");
      return FALSE;
    }
  gsize rows = d->n * (1 + (d->views ? d->n_views : 0));
  p->src = g_new (TokenSrc, rows * p->tokens);

  g_autofree guint32 *cand = NULL;
  guint kc = 0;
  if (d->bank)
    {
      /* as many candidates as retrieval gives: samples whose key many
       * prototypes share (a group, such as the crops of one photo) skip
       * them all */
      guint want = (guint) MIN ((gsize) 32, count);
      cand = g_new (guint32, rows * want);
      for (gsize v = 0; v * d->n < rows; v++)
        if (!dcr_retrieval_search (d->bank, row_feature (d, p->dim, (gint64) (v * d->n)), (guint) d->n, want, NULL,
                                   NULL, cand + v * d->n * want, &kc, error))
          return FALSE;
    }
  for (gsize row = 0; row < rows; row++)
    {
      gsize i = row % d->n;
      TokenSrc *t = p->src + row * p->tokens;
      guint n = 0;
      gint64 partner = d->pair && d->labels[i] ? d->pair[i] : -1;
      if (partner >= 0)
        t[n++] = -1 - partner;
      else if (!d->bank)
        {
          gint64 j;
          do
            j = train_reals[g_rand_int_range (rng, 0, (gint32) n_reals)];
          while (j == (gint64) i);
          t[n++] = -1 - j;
        }
      for (guint c = 0; cand && c < kc && n < p->tokens; c++)
        {
          gint64 pos = cand[row * kc + c];
          if (same_key (d, (gint64) i, pos) || (partner >= 0 && same_key (d, partner, pos)))
            continue;
          t[n++] = pos;
        }
      if (n == 0)
        {
          g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA,
                       "sample %" G_GSIZE_FORMAT " has no prototype other than itself (or its group) in the bank", i);
          return FALSE;
        }
      for (; n < p->tokens; n++)
        t[n] = t[n - 1];
    }
  return TRUE;
}

/* idx are rows (sample or view, see Plan.src). */
/* The pinned prototypes as MoCo inputs: each one's feature f [n, D] and, as
 * its tokens r [n, tokens, D], its nearest other prototypes of the bank. */
static gboolean
pinned_inputs (const Plan *p, float **f_out, float **r_out, guint *n_out, GError **error)
{
  const DcrTrainData *d = p->data;
  gsize count = d->bank && d->bank_pinned ? dcr_retrieval_count (d->bank) : 0, dim = p->dim;
  g_autoptr (GArray) pos = g_array_new (FALSE, FALSE, sizeof (gsize));
  for (gsize i = 0; i < count; i++)
    if (d->bank_pinned[i])
      g_array_append_val (pos, i);
  guint n = pos->len;
  *n_out = n;
  *f_out = *r_out = NULL;
  if (!n)
    return TRUE;
  g_autofree float *f = g_new (float, (gsize) n * dim);
  g_autofree float *r = g_new (float, (gsize) n * p->tokens * dim);
  for (guint i = 0; i < n; i++)
    dcr_retrieval_row (d->bank, g_array_index (pos, gsize, i), f + (gsize) i * dim);
  guint want = (guint) MIN ((gsize) MIN (p->tokens + EXTRA_CANDIDATES, 32u), count), kc = 0;
  g_autofree guint32 *cand = g_new (guint32, (gsize) n * want);
  if (!dcr_retrieval_search (d->bank, f, n, want, NULL, NULL, cand, &kc, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      gsize self = g_array_index (pos, gsize, i);
      guint t = 0;
      for (guint c = 0; c < kc && t < p->tokens; c++)
        {
          gsize q = cand[(gsize) i * kc + c];
          if (q == self || (d->bank_keys && d->bank_keys[q] && d->bank_keys[self] &&
                            strcmp (d->bank_keys[q], d->bank_keys[self]) == 0))
            continue;
          dcr_retrieval_row (d->bank, q, r + ((gsize) i * p->tokens + t++) * dim);
        }
      if (t == 0)
        {
          g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA,
                       "pinned prototype %" G_GSIZE_FORMAT " has no other prototype in the bank", self);
          return FALSE;
        }
      for (; t < p->tokens; t++)
        memcpy (r + ((gsize) i * p->tokens + t) * dim, r + ((gsize) i * p->tokens + t - 1) * dim, dim * sizeof (float));
    }
  *f_out = g_steal_pointer (&f);
  *r_out = g_steal_pointer (&r);
  return TRUE;
}

static void
gather_batch (const Plan *p, const gint64 *idx, guint b, float *f, float *r, gint32 *labels)
{
  const DcrTrainData *d = p->data;
  gsize dim = p->dim;
  for (guint i = 0; i < b; i++)
    {
      gint64 s = idx[i];
      memcpy (f + i * dim, row_feature (d, dim, s), dim * sizeof (float));
      if (labels)
        labels[i] = d->labels[(gsize) s % d->n] ? 1 : 0;
      for (guint j = 0; j < p->tokens; j++)
        {
          TokenSrc src = p->src[s * p->tokens + j];
          float *dst = r + ((gsize) i * p->tokens + j) * dim;
          if (src >= 0)
            dcr_retrieval_row (d->bank, (gsize) src, dst);
          else
            memcpy (dst, d->features + (-1 - src) * dim, dim * sizeof (float));
        }
    }
}

/* p_fake of the given samples with dropout off, through the eval run. */
static gboolean
evaluate_logits (const Plan *p, DcrModelRun *run, DcrSeq *seq, const gint64 *idx, gsize n, float *p_fake,
                 float *logits, GError **error)
{
  guint b = dcr_model_run_batch (run);
  g_autofree float *f = g_new (float, (gsize) b * p->dim);
  g_autofree float *r = g_new (float, (gsize) b * p->tokens * p->dim);
  for (gsize start = 0; start < n; start += b)
    {
      guint m = (guint) MIN ((gsize) b, n - start);
      gather_batch (p, idx + start, m, f, r, NULL);
      if (!dcr_model_run_set_inputs (run, f, r, m, error) || !dcr_seq_submit (seq, TRUE, error) ||
          !dcr_model_run_outputs (run, m, logits ? logits + 2 * start : NULL, p_fake + start, NULL, NULL, NULL,
                                  NULL, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
evaluate (const Plan *p, DcrModelRun *run, DcrSeq *seq, const gint64 *idx, gsize n, float *p_fake, GError **error)
{
  return evaluate_logits (p, run, seq, idx, n, p_fake, NULL, error);
}

gboolean
dcr_train_fit_fusion (const double *x, const gint32 *y, gsize n, float w[3])
{
  /* standardise both inputs for the iterations, then map back */
  double mu[2] = { 0, 0 }, sd[2] = { 0, 0 };
  for (gsize i = 0; i < n; i++)
    for (int k = 0; k < 2; k++)
      mu[k] += x[2 * i + k] / n;
  for (gsize i = 0; i < n; i++)
    for (int k = 0; k < 2; k++)
      sd[k] += (x[2 * i + k] - mu[k]) * (x[2 * i + k] - mu[k]) / n;
  for (int k = 0; k < 2; k++)
    sd[k] = sd[k] > 1e-24 ? sqrt (sd[k]) : 1.0;
  double beta[3] = { 0, 0, 0 }; /* on (z0, z1, 1) */
  const double lambda = 1e-3;
  gboolean converged = FALSE;
  for (int it = 0; it < 100 && !converged; it++)
    {
      double g[3] = { 0 }, H[3][3] = { { 0 } };
      for (gsize i = 0; i < n; i++)
        {
          double z[3] = { (x[2 * i] - mu[0]) / sd[0], (x[2 * i + 1] - mu[1]) / sd[1], 1.0 };
          double t = beta[0] * z[0] + beta[1] * z[1] + beta[2];
          double pr = 1.0 / (1.0 + exp (-t)), wt = MAX (pr * (1 - pr), 1e-12);
          for (int a = 0; a < 3; a++)
            {
              g[a] += (pr - (y[i] ? 1 : 0)) * z[a] / n;
              for (int b = 0; b < 3; b++)
                H[a][b] += wt * z[a] * z[b] / n;
            }
        }
      for (int a = 0; a < 2; a++)
        {
          g[a] += lambda * beta[a];
          H[a][a] += lambda;
        }
      /* solve H·step = g (3 × 3, Gaussian elimination with partial pivoting) */
      double A[3][4];
      for (int a = 0; a < 3; a++)
        {
          for (int b = 0; b < 3; b++)
            A[a][b] = H[a][b];
          A[a][3] = g[a];
        }
      for (int c = 0; c < 3; c++)
        {
          int piv = c;
          for (int r = c + 1; r < 3; r++)
            if (fabs (A[r][c]) > fabs (A[piv][c]))
              piv = r;
          if (fabs (A[piv][c]) < 1e-15)
            return FALSE;
          for (int k = 0; k < 4; k++)
            {
              double tmp = A[c][k];
              A[c][k] = A[piv][k];
              A[piv][k] = tmp;
            }
          for (int r = 0; r < 3; r++)
            if (r != c)
              {
                double f = A[r][c] / A[c][c];
                for (int k = c; k < 4; k++)
                  A[r][k] -= f * A[c][k];
              }
        }
      double step_max = 0;
      for (int a = 0; a < 3; a++)
        {
          double st = A[a][3] / A[a][a];
          beta[a] -= st;
          step_max = MAX (step_max, fabs (st));
        }
      converged = step_max < 1e-10;
    }
  if (!converged || !isfinite (beta[0]) || !isfinite (beta[1]) || !isfinite (beta[2]))
    return FALSE;
  w[0] = (float) (beta[0] / sd[0]);
  w[1] = (float) (beta[1] / sd[1]);
  w[2] = (float) (beta[2] - beta[0] * mu[0] / sd[0] - beta[1] * mu[1] / sd[1]);
  return TRUE;
}

static double
schedule (const DcrTrainOptions *o, gint64 update, gint64 total)
{
  double lr = o->lr, lo = o->lr * o->min_lr_ratio;
  if (update <= (gint64) o->warmup)
    return lr * update / (double) MAX (o->warmup, 1);
  double t = (double) (update - o->warmup) / MAX (total - (gint64) o->warmup, 1);
  return lo + (lr - lo) * 0.5 * (1 + cos (G_PI * MIN (t, 1.0)));
}

static char *
fmt_d (double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_strdup (g_ascii_formatd (buf, sizeof buf, "%.17g", v));
}

/* What a MoCo checkpoint must agree on with the run resuming it. */
static char *
moco_meta (const DcrTrainLoss *l)
{
  if (!l->moco)
    return NULL;
  return l->moco_pinned ? g_strdup_printf ("queue %u pinned %u", MAX (l->moco_queue, 1u), l->moco_pinned)
                        : g_strdup_printf ("queue %u", MAX (l->moco_queue, 1u));
}

static gboolean
save_checkpoint (DcrModel *m, DcrTrainStep *step, const DcrTrainOptions *o, guint tokens, guint epoch,
                 gint64 update, double first_loss, GError **error)
{
  if (!dcr_model_pull (m, error))
    return FALSE;
  GPtrArray *keep = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) t = g_array_new (FALSE, TRUE, sizeof (DcrStWriteTensor));
  gint64 shapes[DCR_N_PARAMS][2];
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      if (!m->host[i])
        continue;
      int nd = dcr_model_param_shape (m, i, shapes[i]);
      gsize n = nd == 2 ? shapes[i][0] * shapes[i][1] : shapes[i][0];
      float *m1 = g_new (float, n), *m2 = g_new (float, n);
      g_ptr_array_add (keep, m1);
      g_ptr_array_add (keep, m2);
      if (!dcr_train_step_get_state (step, i, m1, m2, error))
        {
          g_ptr_array_unref (keep);
          return FALSE;
        }
      char *n1 = g_strconcat ("adamw.exp_avg.", dcr_model_param_name (i), NULL);
      char *n2 = g_strconcat ("adamw.exp_avg_sq.", dcr_model_param_name (i), NULL);
      g_ptr_array_add (keep, n1);
      g_ptr_array_add (keep, n2);
      DcrStWriteTensor w[] = {
        { dcr_model_param_name (i), DCR_ST_F32, nd, shapes[i], m->host[i] },
        { n1, DCR_ST_F32, nd, shapes[i], m1 },
        { n2, DCR_ST_F32, nd, shapes[i], m2 },
      };
      g_array_append_vals (t, w, 3);
    }
  g_autofree char *s_epoch = g_strdup_printf ("%u", epoch);
  g_autofree char *s_update = g_strdup_printf ("%" G_GINT64_FORMAT, update);
  g_autofree char *s_seed = g_strdup_printf ("%" G_GUINT64_FORMAT, o->seed);
  g_autofree char *s_tokens = g_strdup_printf ("%u", tokens);
  g_autofree char *s_batch = g_strdup_printf ("%u", o->batch);
  g_autofree char *s_dims = g_strdup_printf ("%u/%u/%u/%s", m->cfg.dim, m->cfg.hidden, m->cfg.head_hidden,
                                             m->cfg.gate ? "gate" : "nogate");
  g_autofree char *s_first = fmt_d (first_loss);
  /* MoCo: the key encoder, the queue and its pointer, so a resume continues exactly */
  g_autofree char *s_moco = NULL;
  g_autofree char *s_ptr = NULL;
  gint64 qshape[2];
  if (step->queue)
    {
      for (int i = 0; i < DCR_N_PARAMS; i++)
        {
          if (!is_key_param (i) || !m->host[i])
            continue;
          int nd = dcr_model_param_shape (m, i, shapes[i]);
          gsize n = nd == 2 ? shapes[i][0] * shapes[i][1] : shapes[i][0];
          float *v = g_new (float, n);
          char *name = g_strconcat ("moco.key.", dcr_model_param_name (i), NULL);
          g_ptr_array_add (keep, v);
          g_ptr_array_add (keep, name);
          if (!dcr_train_step_key_param (step, i, v, error))
            {
              g_ptr_array_unref (keep);
              return FALSE;
            }
          DcrStWriteTensor w = { name, DCR_ST_F32, nd, shapes[i], v };
          g_array_append_val (t, w);
        }
      DcrTensor *qt = (DcrTensor *) dcr_moco_queue_tensor (step->queue);
      qshape[0] = qt->shape[0];
      qshape[1] = qt->shape[1];
      float *qv = g_new (float, qshape[0] * qshape[1]);
      g_ptr_array_add (keep, qv);
      if (!dcr_tensor_download (qt, qv, error))
        {
          g_ptr_array_unref (keep);
          return FALSE;
        }
      DcrStWriteTensor w = { "moco.queue", DCR_ST_F32, 2, qshape, qv };
      g_array_append_val (t, w);
      s_moco = moco_meta (&step->loss);
      s_ptr = g_strdup_printf ("%u", dcr_moco_queue_pointer (step->queue));
    }
  const char *meta[] = { "format", CHECKPOINT_FORMAT, "backbone", m->cfg.backbone_id, "shape", s_dims,
                         "epoch", s_epoch, "update", s_update, "seed", s_seed, "tokens", s_tokens,
                         "batch", s_batch, "first_loss", s_first,
                         s_moco ? "moco" : NULL, s_moco, "moco_pointer", s_ptr, NULL };
  gboolean ok = dcr_safetensors_write (o->checkpoint, (DcrStWriteTensor *) t->data, t->len, meta, error);
  g_ptr_array_unref (keep);
  return ok;
}

typedef struct {
  guint epoch;
  gint64 update;
  double first_loss;
  DcrSafetensors *st;
} Resume;

static gboolean
ck_error (GError **error, const char *path, const char *what, const char *have, const char *want)
{
  g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_CHECKPOINT,
               "%s does not fit this run: its %s is %s, this run's is %s (remove it or drop --resume)", path, what,
               have ? have : "missing", want);
  return FALSE;
}

/* Reads a checkpoint and puts its parameters into the model (before the
 * step uploads them); the optimizer state is applied after. */
static gboolean
load_checkpoint (DcrModel *m, const DcrTrainOptions *o, guint tokens, Resume *r, GError **error)
{
  r->st = dcr_safetensors_open (o->checkpoint, error);
  if (!r->st)
    return FALSE;
  DcrSafetensors *st = r->st;
  const char *path = o->checkpoint;
  g_autofree char *s_seed = g_strdup_printf ("%" G_GUINT64_FORMAT, o->seed);
  g_autofree char *s_tokens = g_strdup_printf ("%u", tokens);
  g_autofree char *s_batch = g_strdup_printf ("%u", o->batch);
  g_autofree char *s_dims = g_strdup_printf ("%u/%u/%u/%s", m->cfg.dim, m->cfg.hidden, m->cfg.head_hidden,
                                             m->cfg.gate ? "gate" : "nogate");
  const char *checks[][2] = { { "format", CHECKPOINT_FORMAT }, { "backbone", m->cfg.backbone_id },
                              { "shape", s_dims }, { "seed", s_seed }, { "tokens", s_tokens }, { "batch", s_batch } };
  for (guint i = 0; i < G_N_ELEMENTS (checks); i++)
    if (g_strcmp0 (dcr_safetensors_metadata (st, checks[i][0]), checks[i][1]) != 0)
      return ck_error (error, path, checks[i][0], dcr_safetensors_metadata (st, checks[i][0]), checks[i][1]);
  g_autofree char *s_moco = moco_meta (&o->loss);
  if (g_strcmp0 (dcr_safetensors_metadata (st, "moco"), s_moco) != 0)
    return ck_error (error, path, "MoCo queue", dcr_safetensors_metadata (st, "moco") ? dcr_safetensors_metadata (st, "moco") : "off",
                     s_moco ? s_moco : "off");
  guint64 epoch;
  gint64 update;
  const char *fl = dcr_safetensors_metadata (st, "first_loss");
  if (!g_ascii_string_to_unsigned (dcr_safetensors_metadata (st, "epoch"), 10, 0, G_MAXUINT32, &epoch, NULL) ||
      !g_ascii_string_to_signed (dcr_safetensors_metadata (st, "update"), 10, 0, G_MAXINT64, &update, NULL) || !fl)
    return ck_error (error, path, "epoch/update record", NULL, "a number");
  r->epoch = (guint) epoch;
  r->update = update;
  r->first_loss = g_ascii_strtod (fl, NULL);
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      if (!m->host[i])
        continue;
      gint64 shape[2];
      int nd = dcr_model_param_shape (m, i, shape);
      g_autofree float *v = NULL;
      if (!dcr_safetensors_get_f32 (st, dcr_model_param_name (i), shape, nd, &v, error))
        return FALSE;
      dcr_model_set_param (m, i, v);
    }
  return TRUE;
}

static gboolean
apply_checkpoint_state (DcrModel *m, DcrTrainStep *step, Resume *r, GError **error)
{
  for (int i = 0; i < DCR_N_PARAMS; i++)
    {
      if (!m->host[i])
        continue;
      gint64 shape[2];
      int nd = dcr_model_param_shape (m, i, shape);
      g_autofree char *n1 = g_strconcat ("adamw.exp_avg.", dcr_model_param_name (i), NULL);
      g_autofree char *n2 = g_strconcat ("adamw.exp_avg_sq.", dcr_model_param_name (i), NULL);
      g_autofree float *m1 = NULL;
      g_autofree float *m2 = NULL;
      if (!dcr_safetensors_get_f32 (r->st, n1, shape, nd, &m1, error) ||
          !dcr_safetensors_get_f32 (r->st, n2, shape, nd, &m2, error) ||
          !dcr_train_step_set_state (step, i, m1, m2, error))
        return FALSE;
      g_autofree char *nk = g_strconcat ("moco.key.", dcr_model_param_name (i), NULL);
      g_autofree float *k = NULL;
      if (step->queue && is_key_param (i) &&
          (!dcr_safetensors_get_f32 (r->st, nk, shape, nd, &k, error) ||
           !dcr_train_step_set_key_param (step, i, k, error)))
        return FALSE;
    }
  if (step->queue)
    {
      const DcrTensor *qt = dcr_moco_queue_tensor (step->queue);
      gint64 qshape[] = { qt->shape[0], qt->shape[1] };
      guint64 ptr;
      g_autofree float *qv = NULL;
      if (!g_ascii_string_to_unsigned (dcr_safetensors_metadata (r->st, "moco_pointer"), 10, 0, G_MAXUINT32, &ptr,
                                       NULL))
        return ck_error (error, "the checkpoint", "MoCo queue pointer", NULL, "a number");
      if (!dcr_safetensors_get_f32 (r->st, "moco.queue", qshape, 2, &qv, error) ||
          !dcr_moco_queue_restore (step->queue, qv, (guint) ptr, error))
        return FALSE;
    }
  return TRUE;
}

static char *
summary_json (DcrModel *m, const DcrTrainData *d, const DcrTrainOptions *o, const DcrTrainSummary *s)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
#define INT(k, v) (json_builder_set_member_name (b, k), json_builder_add_int_value (b, v))
#define DBL(k, v) (json_builder_set_member_name (b, k), isfinite (v) ? json_builder_add_double_value (b, v) \
                                                                    : json_builder_add_null_value (b))
#define STR(k, v) (json_builder_set_member_name (b, k), json_builder_add_string_value (b, v))
  INT ("epochs", s->epochs_run);
  INT ("batch", o->batch);
  DBL ("lr", o->lr);
  DBL ("min_lr_ratio", o->min_lr_ratio);
  INT ("warmup", o->warmup);
  DBL ("weight_decay", o->weight_decay);
  INT ("seed", (gint64) o->seed);
  DBL ("lambda_bce", o->loss.lambda_bce);
  DBL ("lambda_supcon", o->loss.lambda_supcon);
  DBL ("temperature", o->loss.temperature);
  if (o->loss.moco)
    {
      INT ("moco_queue", o->loss.moco_queue);
      INT ("moco_pinned", o->loss.moco_pinned);
      DBL ("lambda_infonce", o->loss.lambda_infonce);
      DBL ("moco_momentum", o->loss.moco_momentum);
    }
  if (d->views && d->n_views)
    {
      INT ("views", d->n_views);
      STR ("augment", d->augment ? d->augment : "");
    }
  INT ("tokens", s->tokens);
  INT ("n_train", s->n_train);
  INT ("n_val", s->n_val);
  INT ("n_real", s->n_real);
  INT ("n_fake", s->n_fake);
  DBL ("first_loss", s->first_loss);
  DBL ("last_loss", s->last_loss);
  DBL ("val_auc", s->val_auc);
  DBL ("val_ap", s->val_ap);
  DBL ("val_eer", s->val_eer);
  if (s->fusion)
    {
      json_builder_set_member_name (b, "fusion");
      json_builder_begin_object (b);
      INT ("column", o->fusion_column);
      json_builder_set_member_name (b, "weights");
      json_builder_begin_array (b);
      for (int i = 0; i < 3; i++)
        json_builder_add_double_value (b, s->fusion_w[i]);
      json_builder_end_array (b);
      DBL ("val_auc_heads", s->val_auc_heads);
      STR ("rule", "logistic regression of the heads' logit l1 - l0 and the feature column on the validation "
                   "split (L2 1e-3 on the two weights)");
      json_builder_end_object (b);
    }
  STR ("threshold_rule", !s->n_val ? "0.5 (no validation split)"
                        : s->jpeg_decision ? "maximum balanced accuracy on the validation split's files other than "
                                             "JPEG (midpoint between scores)"
                                           : "maximum balanced accuracy on the validation split (midpoint between "
                                             "scores)");
  if (s->jpeg_decision)
    {
      json_builder_set_member_name (b, "jpeg_decision");
      json_builder_begin_object (b);
      DBL ("threshold", s->jpeg.threshold);
      json_builder_set_member_name (b, "band");
      json_builder_begin_array (b);
      json_builder_add_double_value (b, s->jpeg.band_lo);
      json_builder_add_double_value (b, s->jpeg.band_hi);
      json_builder_end_array (b);
      INT ("n_val_jpeg", s->n_val_jpeg);
      INT ("n_val_other", s->n_val - s->n_val_jpeg);
      DBL ("val_auc_jpeg", s->val_auc_jpeg);
      DBL ("val_auc_other", s->val_auc_other);
      if (s->fusion_jpeg)
        {
          json_builder_set_member_name (b, "fusion");
          json_builder_begin_array (b);
          for (int i = 0; i < 3; i++)
            json_builder_add_double_value (b, s->fusion_jpeg_w[i]);
          json_builder_end_array (b);
          DBL ("val_auc_jpeg_shared_fusion", s->val_auc_jpeg_shared);
          STR ("fusion_rule", "the score fusion's logistic regression on the validation split's JPEG files alone, "
                              "for files judged as JPEG (val_auc_jpeg is under it)");
        }
      STR ("rule", "threshold and band chosen by the threshold_rule and band_rule on the validation split's JPEG "
                   "files alone; the model's own threshold and band on its other files");
      STR ("band_edges", dcr_metrics_band_rule_name (DCR_BAND_FIRST_BREAK));
      json_builder_end_object (b);
    }
  STR ("band_rule", "p_fake where validation precision of fake calls (from the top) or of real calls (from the "
                    "bottom), reals and fakes weighted as equally likely, stays >= " G_STRINGIFY (BAND_MIN_PRECISION)
                    ", at least ±" G_STRINGIFY (BAND_MIN_HALF_WIDTH) " around the threshold; its edges by "
                    "band_edges: first-break, the last cut before the first that falls under it, scanning from "
                    "the top (the bottom); most-calls, the lowest (highest) cut whose calls together keep it");
  STR ("band_edges", dcr_metrics_band_rule_name (o->band_rule));
#undef INT
#undef DBL
#undef STR
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

gboolean
dcr_train_run (DcrModel *m, const DcrTrainData *data, const DcrTrainOptions *opts, DcrTrainProgressFunc progress,
               gpointer user_data, DcrTrainSummary *summary, GError **error)
{
  DcrTrainOptions o = *opts;
  if (!o.epochs)
    o.epochs = 20;
  if (!o.batch)
    o.batch = 32;
  if (o.lr == 0)
    o.lr = 1e-3;
  if (o.min_lr_ratio == 0)
    o.min_lr_ratio = 0.01;
  if (o.val_fraction == 0)
    o.val_fraction = 0.2;
  loss_defaults (&o.loss);
  o.loss.adamw.lr = o.lr;
  o.loss.adamw.weight_decay = o.weight_decay;
  o.loss.moco_seed = o.seed;

  DcrTrainSummary sum = { 0 };
  for (gsize i = 0; i < data->n; i++)
    data->labels[i] ? sum.n_fake++ : sum.n_real++;
  if (sum.n_real == 0 || sum.n_fake == 0)
    {
      g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA,
                   "training needs real and fake images (got %u real, %u fake)", sum.n_real, sum.n_fake);
      return FALSE;
    }
  g_auto (Plan) p = { data, m->cfg.dim };
  plan_split (&p, o.val_fraction);
  g_autoptr (GRand) rng = g_rand_new_with_seed_array ((const guint32[]) { (guint32) o.seed, 0x70c3 }, 2);
  if (!plan_tokens (&p, m->cfg.k, rng, error))
    return FALSE;
  guint b = (guint) MIN ((gsize) o.batch, p.n_train);
  if (b < 2)
    {
      g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA,
                   "%" G_GSIZE_FORMAT " training sample%s after the validation split; at least 2 are needed",
                   p.n_train, p.n_train == 1 ? "" : "s");
      return FALSE;
    }
  o.batch = b;
  g_autofree float *pin_f = NULL, *pin_r = NULL;
  guint n_pin = 0;
  if (o.loss.moco)
    {
      o.loss.moco_queue = MAX (o.loss.moco_queue, b);
      if (!pinned_inputs (&p, &pin_f, &pin_r, &n_pin, error))
        return FALSE;
      o.loss.moco_pinned = n_pin;
    }
  sum.n_train = (guint) p.n_train;
  sum.n_val = (guint) p.n_val;
  sum.tokens = p.tokens;
  gint64 per_epoch = (gint64) (p.n_train / b), total = per_epoch * o.epochs, update = 0;
  guint start_epoch = 0;
  double first_loss = NAN;

  Resume res = { 0 };
  if (o.resume && o.checkpoint && g_file_test (o.checkpoint, G_FILE_TEST_EXISTS))
    {
      if (!load_checkpoint (m, &o, p.tokens, &res, error))
        {
          g_clear_pointer (&res.st, dcr_safetensors_free);
          return FALSE;
        }
      start_epoch = res.epoch;
      update = res.update;
      first_loss = res.first_loss;
    }
  g_autoptr (DcrTrainStep) step = dcr_train_step_new (m, b, p.tokens, &o.loss, TRUE, error);
  gboolean ok = step != NULL;
  if (ok && res.st)
    ok = apply_checkpoint_state (m, step, &res, error);
  g_clear_pointer (&res.st, dcr_safetensors_free);
  if (!ok)
    return FALSE;

  g_autoptr (DcrModelRun) eval = NULL;
  g_autoptr (DcrSeq) eval_seq = NULL;
  g_autofree float *val_p = g_new (float, MAX (p.n_val, 1));
  g_autofree gint32 *val_y = g_new (gint32, MAX (p.n_val, 1));
  for (gsize i = 0; i < p.n_val; i++)
    val_y[i] = data->labels[p.val[i]] ? 1 : 0;
  if (p.n_val &&
      (!(eval = dcr_model_run_new (m, DCR_F32, (guint) MIN ((gsize) EVAL_BATCH, p.n_val), p.tokens, FALSE, error)) ||
       !(eval_seq = dcr_seq_new (m->ctx, error)) || !dcr_model_run_record_tokens (eval, eval_seq, error)))
    return FALSE;

  gsize dim = m->cfg.dim;
  guint d_views = data->views ? data->n_views : 0;
  g_autofree gint64 *order = g_new (gint64, p.n_train);
  g_autofree float *f = g_new (float, (gsize) b * dim);
  g_autofree float *r = g_new (float, (gsize) b * p.tokens * dim);
  g_autofree gint32 *labels = g_new (gint32, b);
  gint64 t0 = g_get_monotonic_time ();
  gint64 updates_this_run = 0;
  double last_loss = NAN;
  DcrTrainProgress pr = { 0 };
  for (guint e = start_epoch; e < o.epochs; e++)
    {
      /* the epoch's shuffle and dropout come from (seed, epoch): a resumed run repeats them */
      g_autoptr (GRand) er = g_rand_new_with_seed_array ((const guint32[]) { (guint32) o.seed, e, 0x5eed }, 3);
      memcpy (order, p.train, p.n_train * sizeof (gint64));
      for (gsize i = p.n_train; i > 1; i--)
        {
          gsize j = (gsize) g_rand_int_range (er, 0, (gint32) i);
          gint64 tmp = order[i - 1];
          order[i - 1] = order[j];
          order[j] = tmp;
        }
      /* each sample as one of its versions (drawn only with views, so a run
       * without them repeats the one before views existed) */
      for (gsize i = 0; d_views && i < p.n_train; i++)
        order[i] += (gint64) (g_rand_int_range (er, 0, (gint32) d_views + 1) * data->n);
      double acc[4] = { 0 }, nce = 0;
      /* the pinned negatives from the key encoder as it is now */
      if (n_pin && !dcr_train_step_set_pinned (step, pin_f, pin_r, n_pin, error))
        return FALSE;
      for (gint64 u = 0; u < per_epoch; u++)
        {
          double l[4];
          gather_batch (&p, order + u * b, b, f, r, labels);
          update++;
          if (!dcr_train_step_set_batch (step, f, r, labels, NULL, er, error) ||
              !dcr_train_step_run (step, update, schedule (&o, update, total), l, error))
            return FALSE;
          for (int i = 0; i < 4; i++)
            acc[i] += l[i] / per_epoch;
          nce += dcr_train_step_infonce (step) / per_epoch;
          updates_this_run++;
        }
      if (e == 0 || isnan (first_loss))
        first_loss = acc[0];
      last_loss = acc[0];
      pr = (DcrTrainProgress) { e + 1, o.epochs, update, total, { acc[0], acc[1], acc[2], acc[3] }, nce, NAN, NAN };
      if (p.n_val)
        {
          if (!evaluate (&p, eval, eval_seq, p.val, p.n_val, val_p, error))
            return FALSE;
          pr.val_auc = dcr_metrics_roc_auc (val_p, val_y, p.n_val);
          DcrMetrics mt;
          dcr_metrics_compute (val_p, val_y, p.n_val, 0.5f, &mt);
          pr.val_acc = mt.acc;
        }
      pr.elapsed_s = (g_get_monotonic_time () - t0) / 1e6;
      pr.eta_s = updates_this_run ? pr.elapsed_s / updates_this_run * (total - update) : 0;
      if (o.checkpoint && !save_checkpoint (m, step, &o, p.tokens, e + 1, update, first_loss, error))
        return FALSE;
      sum.epochs_run = e + 1;
      if (progress && !progress (&pr, user_data))
        {
          g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_CANCELLED,
                       "training stopped after epoch %u%s%s", e + 1, o.checkpoint ? "; resume from " : "",
                       o.checkpoint ? o.checkpoint : "");
          return FALSE;
        }
    }
  if (!dcr_model_pull (m, error))
    return FALSE;

  /* the decision, from the final model on the validation split */
  float thr = 0.5f, lo = 0.5f - BAND_MIN_HALF_WIDTH, hi = 0.5f + BAND_MIN_HALF_WIDTH;
  sum.val_auc = sum.val_ap = sum.val_eer = NAN;
  sum.val_auc_heads = sum.val_auc_jpeg = sum.val_auc_other = NAN;
  sum.val_auc_jpeg_shared = NAN;
  dcr_model_set_fusion (m, 0, NULL);
  /* a decision per kind of file, when both kinds have enough of each class */
  gsize per_class[2][2] = { { 0 } };
  for (gsize i = 0; o.jpeg_decision && data->jpeg && i < p.n_val; i++)
    per_class[data->jpeg[p.val[i]] ? 1 : 0][val_y[i]]++;
  gboolean split = o.jpeg_decision && data->jpeg && p.n_val;
  for (int j = 0; j < 2; j++)
    for (int c = 0; c < 2; c++)
      split = split && per_class[j][c] >= DCR_TRAIN_DECISION_MIN_PER_CLASS;
  g_autofree float *lg = g_new (float, 2 * MAX (p.n_val, 1));
  if (p.n_val && o.fusion)
    {
      g_autofree double *x = g_new (double, 2 * p.n_val);
      if (!evaluate_logits (&p, eval, eval_seq, p.val, p.n_val, val_p, lg, error))
        return FALSE;
      sum.val_auc_heads = dcr_metrics_roc_auc (val_p, val_y, p.n_val);
      for (gsize i = 0; i < p.n_val; i++)
        {
          x[2 * i] = (double) lg[2 * i + 1] - lg[2 * i];
          x[2 * i + 1] = data->features[p.val[i] * p.dim + o.fusion_column];
        }
      if (!dcr_train_fit_fusion (x, val_y, p.n_val, sum.fusion_w))
        {
          g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA,
                       "the score fusion did not converge on the validation split (%zu samples): the heads' "
                       "logit and feature column %u separate it perfectly or not at all", p.n_val, o.fusion_column);
          return FALSE;
        }
      sum.fusion = TRUE;
      dcr_model_set_fusion (m, o.fusion_column, sum.fusion_w);
      if (o.jpeg_fusion && split)
        {
          /* the JPEG files' own weights, on the validation split's JPEG files alone */
          g_autofree gint32 *jy = g_new (gint32, p.n_val);
          gsize nj = 0;
          for (gsize i = 0; i < p.n_val; i++)
            if (data->jpeg[p.val[i]])
              {
                x[2 * nj] = x[2 * i];
                x[2 * nj + 1] = x[2 * i + 1];
                jy[nj++] = val_y[i];
              }
          if (!dcr_train_fit_fusion (x, jy, nj, sum.fusion_jpeg_w))
            {
              g_set_error (error, DCR_TRAIN_ERROR, DCR_TRAIN_ERROR_DATA,
                           "the score fusion for JPEG files did not converge on the validation split's %zu JPEG "
                           "files: the heads' logit and feature column %u separate them perfectly or not at all",
                           nj, o.fusion_column);
              return FALSE;
            }
          sum.fusion_jpeg = TRUE;
        }
    }
  if (p.n_val)
    {
      if (sum.fusion)
        {
          /* the heads' logits are those the fusion was fitted on: P(fake) from them on the host, under the
           * shared weights (as the run would give it), without a second pass over the validation split */
          for (gsize i = 0; i < p.n_val; i++)
            val_p[i] = dcr_model_p_fake (m, lg + 2 * i, data->features + p.val[i] * p.dim, FALSE);
        }
      else if (!evaluate (&p, eval, eval_seq, p.val, p.n_val, val_p, error))
        return FALSE;
      if (sum.fusion_jpeg)
        {
          /* p_fake of the JPEG files under their own weights (the run's is under the shared ones) */
          g_autofree float *sp = g_new (float, p.n_val);
          g_autofree gint32 *sy = g_new (gint32, p.n_val);
          gsize cnt = 0;
          for (gsize i = 0; i < p.n_val; i++)
            if (data->jpeg[p.val[i]])
              {
                sp[cnt] = val_p[i];
                sy[cnt++] = val_y[i];
              }
          sum.val_auc_jpeg_shared = dcr_metrics_roc_auc (sp, sy, cnt);
          dcr_model_set_fusion_jpeg (m, sum.fusion_jpeg_w);
          for (gsize i = 0; i < p.n_val; i++)
            if (data->jpeg[p.val[i]])
              val_p[i] = dcr_model_p_fake (m, lg + 2 * i, data->features + p.val[i] * p.dim, TRUE);
        }
      DcrMetrics mt;
      thr = dcr_metrics_best_threshold (val_p, val_y, p.n_val, NULL);
      dcr_metrics_band (val_p, val_y, p.n_val, thr, o.band_rule, BAND_MIN_PRECISION, BAND_MIN_HALF_WIDTH, &lo, &hi);
      dcr_metrics_compute (val_p, val_y, p.n_val, thr, &mt);
      sum.val_auc = mt.auc;
      sum.val_ap = mt.ap;
      sum.val_eer = mt.eer;
      g_autofree float *sp = g_new (float, p.n_val);
      g_autofree gint32 *sy = g_new (gint32, p.n_val);
      for (int j = 1; split && j >= 0; j--)
        {
          gsize cnt = 0;
          for (gsize i = 0; i < p.n_val; i++)
            if ((data->jpeg[p.val[i]] ? 1 : 0) == j)
              {
                sp[cnt] = val_p[i];
                sy[cnt++] = val_y[i];
              }
          float t = dcr_metrics_best_threshold (sp, sy, cnt, NULL), l, h;
          dcr_metrics_band (sp, sy, cnt, t, j ? DCR_BAND_FIRST_BREAK : o.band_rule, BAND_MIN_PRECISION,
                            BAND_MIN_HALF_WIDTH, &l, &h);
          double auc = dcr_metrics_roc_auc (sp, sy, cnt);
          if (j)
            {
              sum.jpeg = (DcrDecision) { t, l, h };
              sum.n_val_jpeg = (guint) cnt;
              sum.val_auc_jpeg = auc;
            }
          else
            {
              thr = t;
              lo = l;
              hi = h;
              sum.val_auc_other = auc;
            }
        }
      sum.jpeg_decision = split;
    }
  sum.first_loss = first_loss;
  sum.last_loss = last_loss;
  sum.threshold = thr;
  sum.band_lo = lo;
  sum.band_hi = hi;
  dcr_model_set_decision (m, thr, lo, hi);
  dcr_model_set_jpeg_decision (m, sum.jpeg_decision ? &sum.jpeg : NULL);
  if (sum.fusion_jpeg)
    dcr_model_set_fusion_jpeg (m, sum.fusion_jpeg_w);
  g_autofree char *json = summary_json (m, data, &o, &sum);
  dcr_model_set_training (m, json);
  if (summary)
    *summary = sum;
  return TRUE;
}
