/* dcr-tile-train.c — the tile head's training step on the GPU (forward with
 * dropout, BCE with logits, the backward pass through the engine's backward
 * ops, AdamW), recorded once and replayed per batch, and the epoch loop. */
#include "dcr-tile-train.h"
#include "dcr-op-eltwise.h"
#include "dcr-op-gemm.h"
#include "dcr-op-grad.h"
#include "dcr-op-loss.h"

#include "dcr-util.h"

#include <math.h>
#include <string.h>

#define NIN DCR_TILES_NIN

G_DEFINE_QUARK (dcr-tile-train-error-quark, dcr_tile_train_error)

enum { P_W1, P_B1, P_W2, P_B2, N_P };

struct _DcrTileTrainStep {
  DcrSeq *seq;
  guint batch, hidden;
  double dropout;
  DcrAdamWConfig adamw;
  DcrTensor *z, *targets, *mask;
  DcrTensor *ha, *had, *logit, *loss, *dlogit, *dhad, *dha, *dpre, *hyper;
  DcrTensor *p[N_P], *g[N_P], *m[N_P], *v[N_P];
};

void
dcr_tile_train_options_init (DcrTileTrainOptions *o)
{
  *o = (DcrTileTrainOptions) { .epochs = 30, .hidden = 64, .batch = 256, .lr = 1e-3, .weight_decay = 0.1,
                               .dropout = 0.3, .seed = 1 };
}

static void
uniform (GRand *rng, float *x, gsize n, double bound)
{
  for (gsize i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rng, -bound, bound);
}

void
dcr_tile_train_init (DcrTileHead *h, GRand *rng)
{
  double k1 = 1.0 / sqrt ((double) NIN), k2 = 1.0 / sqrt ((double) h->hidden);
  uniform (rng, h->w1, (gsize) h->hidden * NIN, k1);
  uniform (rng, h->b1, h->hidden, k1);
  uniform (rng, h->w2, h->hidden, k2);
  uniform (rng, &h->b2, 1, k2);
}

void
dcr_tile_train_step_free (DcrTileTrainStep *s)
{
  if (!s)
    return;
  dcr_seq_free (s->seq);
  /* without dropout had and dha are ha and dhad */
  DcrTensor *all[] = { s->z, s->targets, s->mask, s->ha, s->had != s->ha ? s->had : NULL, s->logit, s->loss,
                       s->dlogit, s->dhad, s->dha != s->dhad ? s->dha : NULL, s->dpre, s->hyper };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    dcr_tensor_free (all[i]);
  for (int i = 0; i < N_P; i++)
    {
      dcr_tensor_free (s->p[i]);
      dcr_tensor_free (s->g[i]);
      dcr_tensor_free (s->m[i]);
      dcr_tensor_free (s->v[i]);
    }
  g_free (s);
}

static DcrTensor *
tensor (DcrContext *ctx, DcrPoolKind pool, gint64 d0, gint64 d1, GError **error)
{
  gint64 shape[] = { d0, d1 };
  return dcr_tensor_new (ctx, pool, DCR_F32, d1 ? 2 : 1, shape, error);
}

static gboolean
record (DcrTileTrainStep *s, GError **error)
{
  DcrSeq *seq = s->seq;
  DcrTensor **P = s->p, **G = s->g;
  gboolean drop = s->dropout > 0;
  /* forward: h = relu(W1 z + b1), dropped out, logit = w2·h + b2 */
  if (!dcr_op_linear (seq, s->z, P[P_W1], P[P_B1], s->ha, DCR_ACT_RELU, error) ||
      (drop && !dcr_op_mul (seq, s->ha, s->mask, s->had, error)) ||
      !dcr_op_linear (seq, s->had, P[P_W2], P[P_B2], s->logit, DCR_ACT_NONE, error) ||
      !dcr_op_bce_with_logits (seq, s->logit, s->targets, 1.0f, s->loss, s->dlogit, error))
    return FALSE;
  /* backward; the ReLU output gives its own mask */
  if (!dcr_op_linear_backward (seq, s->had, P[P_W2], s->dlogit, s->dhad, G[P_W2], G[P_B2], DCR_GRAD_OVERWRITE,
                               error) ||
      (drop && !dcr_op_mul (seq, s->dhad, s->mask, s->dha, error)) ||
      !dcr_op_act_backward (seq, DCR_ACT_RELU, s->ha, s->dha, s->dpre, DCR_GRAD_OVERWRITE, error) ||
      !dcr_op_linear_backward (seq, s->z, P[P_W1], s->dpre, NULL, G[P_W1], G[P_B1], DCR_GRAD_OVERWRITE, error))
    return FALSE;
  for (int i = 0; i < N_P; i++)
    if (!dcr_op_adamw (seq, s->hyper, P[i], G[i], s->m[i], s->v[i], NULL, error))
      return FALSE;
  return TRUE;
}

DcrTileTrainStep *
dcr_tile_train_step_new (DcrContext *ctx, const DcrTileHead *h, guint batch, double dropout,
                         const DcrAdamWConfig *adamw, GError **error)
{
  g_return_val_if_fail (h && batch >= 1 && adamw, NULL);
  if (!(dropout >= 0 && dropout < 1))
    {
      g_set_error (error, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA, "dropout %g is outside [0, 1)", dropout);
      return NULL;
    }
  g_autoptr (DcrTileTrainStep) s = g_new0 (DcrTileTrainStep, 1);
  gint64 b = batch, hd = h->hidden;
  s->batch = batch;
  s->hidden = h->hidden;
  s->dropout = dropout;
  s->adamw = *adamw;
  const DcrPoolKind A = DCR_POOL_ACTIVATIONS;
  if (!(s->seq = dcr_seq_new (ctx, error)) || !(s->z = tensor (ctx, A, b, NIN, error)) ||
      !(s->targets = tensor (ctx, A, b, 1, error)) || !(s->ha = tensor (ctx, A, b, hd, error)) ||
      !(s->logit = tensor (ctx, A, b, 1, error)) || !(s->loss = tensor (ctx, A, 1, 0, error)) ||
      !(s->dlogit = tensor (ctx, A, b, 1, error)) || !(s->dhad = tensor (ctx, A, b, hd, error)) ||
      !(s->dpre = tensor (ctx, A, b, hd, error)) || !(s->hyper = tensor (ctx, A, DCR_OPTIM_HYPER_LEN, 0, error)))
    return NULL;
  s->had = s->ha;
  s->dha = s->dhad;
  if (dropout > 0 &&
      (!(s->mask = tensor (ctx, A, b, hd, error)) || !(s->had = tensor (ctx, A, b, hd, error)) ||
       !(s->dha = tensor (ctx, A, b, hd, error))))
    return NULL;
  const gint64 shape[N_P][2] = { { hd, NIN }, { hd, 0 }, { 1, hd }, { 1, 0 } };
  const float *init[N_P] = { h->w1, h->b1, h->w2, &h->b2 };
  for (int i = 0; i < N_P; i++)
    if (!(s->p[i] = tensor (ctx, DCR_POOL_WEIGHTS, shape[i][0], shape[i][1], error)) ||
        !(s->g[i] = tensor (ctx, A, shape[i][0], shape[i][1], error)) ||
        !(s->m[i] = tensor (ctx, DCR_POOL_WEIGHTS, shape[i][0], shape[i][1], error)) ||
        !(s->v[i] = tensor (ctx, DCR_POOL_WEIGHTS, shape[i][0], shape[i][1], error)) ||
        !dcr_tensor_upload (s->p[i], init[i], error) || !dcr_buffer_fill_zero (s->m[i]->buf, error) ||
        !dcr_buffer_fill_zero (s->v[i]->buf, error))
      return NULL;
  if (!record (s, error))
    return NULL;
  return g_steal_pointer (&s);
}

gboolean
dcr_tile_train_step_set_batch (DcrTileTrainStep *s, const float *z, const gint32 *labels, const float *mask,
                               GRand *rng, GError **error)
{
  gsize b = s->batch, hd = s->hidden;
  g_autofree float *targets = g_new (float, b);
  for (gsize i = 0; i < b; i++)
    {
      if (labels[i] != 0 && labels[i] != 1)
        {
          g_set_error (error, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA,
                       "tile label %d in row %" G_GSIZE_FORMAT " of the batch; labels are 0 or 1", labels[i], i);
          return FALSE;
        }
      targets[i] = (float) labels[i];
    }
  if (!dcr_tensor_upload (s->z, z, error) || !dcr_tensor_upload (s->targets, targets, error))
    return FALSE;
  if (!s->mask)
    return TRUE;
  g_autofree float *drawn = NULL;
  if (!mask)
    {
      /* as dcr_train_step_set_batch draws the residual head's mask */
      double p = s->dropout;
      float keep = (float) (1.0 / (1.0 - p));
      drawn = g_new (float, b * hd);
      for (gsize i = 0; i < b * hd; i++)
        drawn[i] = g_rand_double (rng) >= p ? keep : 0.0f;
      mask = drawn;
    }
  return dcr_tensor_upload (s->mask, mask, error);
}

gboolean
dcr_tile_train_step_run (DcrTileTrainStep *s, gint64 update, double *loss, GError **error)
{
  float hyper[DCR_OPTIM_HYPER_LEN], l;
  dcr_adamw_hyper (&s->adamw, update, hyper);
  if (!dcr_tensor_upload (s->hyper, hyper, error) || !dcr_seq_submit (s->seq, TRUE, error) ||
      !dcr_tensor_download (s->loss, &l, error))
    return FALSE;
  if (!isfinite (l))
    {
      g_set_error (error, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DIVERGED,
                   "the tile head's training loss became %g at update %" G_GINT64_FORMAT "; lower the learning rate",
                   (double) l, update);
      return FALSE;
    }
  if (loss)
    *loss = l;
  return TRUE;
}

gboolean
dcr_tile_train_step_weights (DcrTileTrainStep *s, DcrTileHead *h, GError **error)
{
  g_return_val_if_fail (h->hidden == s->hidden, FALSE);
  return dcr_tensor_download (s->p[P_W1], h->w1, error) && dcr_tensor_download (s->p[P_B1], h->b1, error) &&
         dcr_tensor_download (s->p[P_W2], h->w2, error) && dcr_tensor_download (s->p[P_B2], &h->b2, error);
}

static gboolean
data_error (GError **error, const char *what)
{
  g_set_error_literal (error, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA, what);
  return FALSE;
}

static gboolean
check (const float *z, const gint32 *labels, gsize n, const DcrTileTrainOptions *o, GError **error)
{
  if (o->epochs < 1 || o->hidden < 1 || o->hidden > DCR_TILES_MAX_HIDDEN || o->batch < 2 || !(o->lr > 0) ||
      !(o->weight_decay >= 0) || !(o->dropout >= 0 && o->dropout < 1))
    {
      g_autofree char *msg = g_strdup_printf ("tile head training needs epochs ≥ 1, hidden width 1…%d, batch ≥ 2, "
                                              "a learning rate > 0, weight decay ≥ 0 and dropout in [0, 1)",
                                              DCR_TILES_MAX_HIDDEN);
      return data_error (error, msg);
    }
  gsize pos = 0;
  for (gsize i = 0; i < n; i++)
    {
      if (labels[i] != 0 && labels[i] != 1)
        {
          g_set_error (error, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA,
                       "tile %" G_GSIZE_FORMAT " has label %d; labels are 0 or 1", i, labels[i]);
          return FALSE;
        }
      pos += labels[i];
    }
  for (gsize i = 0; i < n * NIN; i++)
    if (!isfinite (z[i]))
      {
        g_set_error (error, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA,
                     "input %" G_GSIZE_FORMAT " of tile %" G_GSIZE_FORMAT " is %g; inputs must be finite", i % NIN,
                     i / NIN, (double) z[i]);
        return FALSE;
      }
  if (n < 2 || pos == 0 || pos == n)
    {
      g_set_error (error, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_DATA,
                   "%" G_GSIZE_FORMAT " tiles with label 1 and %" G_GSIZE_FORMAT " with label 0; training needs "
                   "tiles of both", pos, n - pos);
      return FALSE;
    }
  return TRUE;
}

DcrTileHead *
dcr_tile_train (DcrContext *ctx, const float *z, const gint32 *labels, gsize n, const DcrTileTrainOptions *o,
                DcrTileTrainProgressFunc progress, gpointer user_data, double *final_loss, GError **error)
{
  if (!check (z, labels, n, o, error))
    return NULL;
  if (n > G_MAXINT32)
    {
      data_error (error, "too many tiles for one training run");
      return NULL;
    }
  guint32 s0 = (guint32) o->seed, s1 = (guint32) (o->seed >> 32);
  g_autoptr (GRand) rng = g_rand_new_with_seed_array ((const guint32[]) { s0, s1, 0x711e }, 3);
  g_autoptr (DcrTileHead) h = dcr_tile_head_new (o->hidden);
  dcr_tile_train_init (h, rng);
  guint b = (guint) MIN ((gsize) o->batch, n);
  DcrAdamWConfig adamw = { o->lr, 0.9, 0.999, 1e-8, o->weight_decay };
  g_autoptr (DcrTileTrainStep) step = dcr_tile_train_step_new (ctx, h, b, o->dropout, &adamw, error);
  if (!step)
    return NULL;
  gsize per_epoch = n / b;
  g_autofree gsize *order = g_new (gsize, n);
  g_autofree float *zb = g_new (float, (gsize) b * NIN);
  g_autofree gint32 *yb = g_new (gint32, b);
  gint64 update = 0;
  double epoch_loss = NAN;
  for (guint e = 0; e < o->epochs; e++)
    {
      /* each epoch's shuffle and dropout masks come from (seed, epoch) */
      g_autoptr (GRand) er = g_rand_new_with_seed_array ((const guint32[]) { s0, s1, e, 0x5eed }, 4);
      for (gsize i = 0; i < n; i++)
        order[i] = i;
      dcr_shuffle_indices (order, n, er);
      double sum = 0;
      for (gsize u = 0; u < per_epoch; u++)
        {
          for (guint i = 0; i < b; i++)
            {
              gsize k = order[u * b + i];
              memcpy (zb + (gsize) i * NIN, z + k * NIN, sizeof (float) * NIN);
              yb[i] = labels[k];
            }
          double l;
          if (!dcr_tile_train_step_set_batch (step, zb, yb, NULL, er, error) ||
              !dcr_tile_train_step_run (step, ++update, &l, error))
            return NULL;
          sum += l;
        }
      epoch_loss = sum / per_epoch;
      if (progress && !progress (e + 1, o->epochs, epoch_loss, user_data))
        {
          g_set_error_literal (error, DCR_TILE_TRAIN_ERROR, DCR_TILE_TRAIN_ERROR_CANCELLED, "training cancelled");
          return NULL;
        }
    }
  if (!dcr_tile_train_step_weights (step, h, error))
    return NULL;
  if (final_loss)
    *final_loss = epoch_loss;
  return g_steal_pointer (&h);
}
