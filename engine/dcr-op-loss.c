/* dcr-op-loss.c — the losses of dcr-op-loss.h and their references.
 * Shaders: loss_ce, loss_bce (probabilities or logits), loss_contrast
 * (the row and final passes of SupCon and InfoNCE, between dcr_op_gemm
 * calls for their logit and gradient matrix products). */
#include "dcr-op-loss.h"
#include "dcr-op-gemm.h"

#include <math.h>

static gboolean
check_dtype (const char *op, const char *name, const DcrTensor *t, DcrDtype want, GError **error)
{
  if (!t || t->dtype == want)
    return TRUE;
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE, "%s: %s is %s; it must be %s", op, name,
               dcr_dtype_name (t->dtype), dcr_dtype_name (want));
  return FALSE;
}

static gboolean
check_loss (const char *op, const DcrTensor *loss, GError **error)
{
  if (!check_dtype (op, "loss", loss, DCR_F32, error))
    return FALSE;
  if (dcr_tensor_numel (loss) != 1)
    return dcr_ops_shape_error (error, op, "loss must hold one value", loss, NULL);
  return TRUE;
}

/* The single workgroup of the cross-entropy and BCE passes: batches are a
 * few hundred rows, and one size keeps it one pipeline. */
#define REDUCE_LOCAL 64

/* ---- cross-entropy, BCE -------------------------------------------------- */

typedef struct {
  guint32 rows, classes;
  float grad_scale;
  guint32 has_grad;
} CePush;

gboolean
dcr_op_cross_entropy (DcrSeq *seq, const DcrTensor *logits, const DcrTensor *labels, float grad_scale,
                      DcrTensor *loss, DcrTensor *dlogits, GError **error)
{
  g_return_val_if_fail (logits && labels && loss, FALSE);
  const char *op = "cross_entropy";
  if (!check_dtype (op, "logits", logits, DCR_F32, error) || !check_dtype (op, "labels", labels, DCR_I32, error)
      || !check_dtype (op, "dlogits", dlogits, DCR_F32, error) || !check_loss (op, loss, error))
    return FALSE;
  gint64 c = logits->ndim ? logits->shape[logits->ndim - 1] : 0;
  gint64 rows = c ? dcr_tensor_numel (logits) / c : 0;
  if (rows == 0 || dcr_tensor_numel (labels) != rows)
    return dcr_ops_shape_error (error, op, "need logits [B, C] (C, B > 0) and labels [B]", logits, labels);
  if (dlogits && !dcr_ops_same_shape (dlogits, logits))
    return dcr_ops_shape_error (error, op, "dlogits must have the logits' shape", dlogits, logits);

  guint32 spec[] = { REDUCE_LOCAL, 1, 1 };
  DcrBinding b[] = {
    dcr_ops_bind (logits, FALSE), dcr_ops_bind (labels, FALSE), dcr_ops_bind (dlogits ? dlogits : loss, TRUE),
    dcr_ops_bind (loss, TRUE),
  };
  CePush push = { (guint32) rows, (guint32) c, grad_scale, dlogits != NULL };
  return dcr_ops_dispatch (seq, "loss_ce", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), &push, sizeof push, 1,
                           1, 1, error);
}

typedef struct {
  guint32 n;
  float grad_scale;
  guint32 has_grad;
} BcePush;

static gboolean
bce (DcrSeq *seq, const char *op, guint mode, const DcrTensor *x, const DcrTensor *targets, float grad_scale,
     DcrTensor *loss, DcrTensor *dx, GError **error)
{
  g_return_val_if_fail (x && targets && loss, FALSE);
  if (!check_dtype (op, "input", x, DCR_F32, error) || !check_dtype (op, "targets", targets, DCR_F32, error)
      || !check_dtype (op, "gradient", dx, DCR_F32, error) || !check_loss (op, loss, error))
    return FALSE;
  gint64 n = dcr_tensor_numel (x);
  if (n == 0 || dcr_tensor_numel (targets) != n)
    return dcr_ops_shape_error (error, op, "input and targets need the same, non-zero element count", x, targets);
  if (dx && dcr_tensor_numel (dx) != n)
    return dcr_ops_shape_error (error, op, "the gradient needs the input's element count", dx, x);

  guint32 spec[] = { REDUCE_LOCAL, 1, 1, mode };
  DcrBinding b[] = {
    dcr_ops_bind (x, FALSE), dcr_ops_bind (targets, FALSE), dcr_ops_bind (dx ? dx : loss, TRUE),
    dcr_ops_bind (loss, TRUE),
  };
  BcePush push = { (guint32) n, grad_scale, dx != NULL };
  return dcr_ops_dispatch (seq, "loss_bce", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), &push, sizeof push, 1,
                           1, 1, error);
}

gboolean
dcr_op_bce (DcrSeq *seq, const DcrTensor *probs, const DcrTensor *targets, float grad_scale, DcrTensor *loss,
            DcrTensor *dprobs, GError **error)
{
  return bce (seq, "bce", 0, probs, targets, grad_scale, loss, dprobs, error);
}

gboolean
dcr_op_bce_with_logits (DcrSeq *seq, const DcrTensor *logits, const DcrTensor *targets, float grad_scale,
                        DcrTensor *loss, DcrTensor *dlogits, GError **error)
{
  return bce (seq, "bce_with_logits", 1, logits, targets, grad_scale, loss, dlogits, error);
}

/* ---- contrastive: SupCon, InfoNCE ---------------------------------------- */

typedef struct {
  guint32 rows, d, cols;
  float inv_temp, loss_scale, grad_scale;
  guint32 off_pos, off_loss;
  guint32 flags; /* set per pass */
} ContrastPush;

enum { CONTRAST_SUPCON, CONTRAST_INFONCE };

/* One pass of loss_contrast.comp; a missing tensor is bound to one that is
 * there and is never touched. */
static gboolean
contrast_pass (DcrSeq *seq, guint mode, guint stage, const DcrTensor *a, const DcrTensor *kpos,
               const DcrTensor *labels, DcrTensor *scratch, DcrTensor *da, gboolean da_add, DcrTensor *db,
               DcrTensor *loss, const ContrastPush *push_in, GError **error)
{
  ContrastPush pass = *push_in, *push = &pass;
  pass.flags = (da ? 1u : 0u) | (da_add ? 2u : 0u) | (db ? 4u : 0u);
  gboolean rows = stage == 0, grads = da || db;
  guint32 lx = rows ? dcr_context_device (dcr_seq_context (seq))->subgroup_size : 64;
  guint32 spec[] = { lx, 1, 1, mode, stage };
  DcrBinding b[] = {
    dcr_ops_bind (a, FALSE), dcr_ops_bind (kpos ? kpos : a, FALSE), dcr_ops_bind (labels ? labels : a, FALSE),
    dcr_ops_bind (scratch, rows), dcr_ops_bind (da ? da : loss, !rows), dcr_ops_bind (db ? db : loss, !rows),
    dcr_ops_bind (loss, !rows),
  };
  guint32 gx, gy;
  if (rows)
    {
      gx = dcr_ops_groups (push->rows, 1);
      gy = 1;
    }
  else
    {
      gx = grads ? (push->d + 63) / 64 : 1;
      gy = grads ? push->rows : 1;
    }
  return dcr_ops_dispatch (seq, "loss_contrast", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), push, sizeof *push,
                           gx, gy, 1, error);
}

gboolean
dcr_op_supcon (DcrSeq *seq, const DcrTensor *features, const DcrTensor *labels, float temperature,
               float base_temperature, float grad_scale, DcrTensor *scratch, DcrTensor *loss,
               DcrTensor *dfeatures, GError **error)
{
  g_return_val_if_fail (features && labels && scratch && loss, FALSE);
  const char *op = "supcon";
  if (!check_dtype (op, "features", features, DCR_F32, error) || !check_dtype (op, "labels", labels, DCR_I32, error)
      || !check_dtype (op, "scratch", scratch, DCR_F32, error)
      || !check_dtype (op, "dfeatures", dfeatures, DCR_F32, error) || !check_loss (op, loss, error))
    return FALSE;
  if (features->ndim != 2 || features->shape[0] == 0 || features->shape[1] == 0)
    return dcr_ops_shape_error (error, op, "features must be [N, D]", features, NULL);
  gint64 n = features->shape[0], d = features->shape[1];
  if (dcr_tensor_numel (labels) != n)
    return dcr_ops_shape_error (error, op, "labels must be [N] for features [N, D]", labels, features);
  if (dcr_tensor_numel (scratch) != n * (n + 1))
    return dcr_ops_shape_error (error, op, "scratch must hold N·(N + 1) floats, e.g. [N, N + 1]", scratch, features);
  if (dfeatures && !dcr_ops_same_shape (dfeatures, features))
    return dcr_ops_shape_error (error, op, "dfeatures must have the features' shape", dfeatures, features);
  if (!(temperature > 0) || base_temperature < 0)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: temperature must be positive (RINE uses 0.07), got %g / base %g", op, temperature,
                   base_temperature);
      return FALSE;
    }
  if (!dcr_ops_need_subgroups (seq, op, error))
    return FALSE;
  if (base_temperature == 0)
    base_temperature = temperature;
  ContrastPush push = {
    (guint32) n, (guint32) d, (guint32) n, 1.0f / temperature, temperature / base_temperature, grad_scale,
    0, (guint32) (n * n),
  };
  /* logits = z·zᵀ/τ into the [N, N] head of the scratch */
  DcrTensor logits = dcr_ops_view_2d (scratch, n, n);
  DcrGemmParams gram = { .trans_b = TRUE, .alpha = push.inv_temp };
  if (!dcr_op_gemm (seq, features, features, NULL, NULL, &logits, &gram, error)
      || !contrast_pass (seq, CONTRAST_SUPCON, 0, features, NULL, labels, scratch, NULL, FALSE, NULL, loss, &push,
                         error))
    return FALSE;
  if (dfeatures)
    {
      /* dz = (G + Gᵀ)·z/τ, G = ∂L/∂logits now in the scratch */
      DcrGemmParams g = { .alpha = push.inv_temp }, gt = { .trans_a = TRUE, .alpha = push.inv_temp, .beta = 1 };
      if (!dcr_op_gemm (seq, &logits, features, NULL, NULL, dfeatures, &g, error)
          || !dcr_op_gemm (seq, &logits, features, NULL, NULL, dfeatures, &gt, error))
        return FALSE;
    }
  return contrast_pass (seq, CONTRAST_SUPCON, 1, features, NULL, labels, scratch, NULL, FALSE, NULL, loss, &push,
                        error);
}

gboolean
dcr_op_infonce (DcrSeq *seq, const DcrTensor *q, const DcrTensor *k, const DcrTensor *queue, float temperature,
                float grad_scale, DcrTensor *scratch, DcrTensor *loss, DcrTensor *dq, DcrTensor *dk, GError **error)
{
  g_return_val_if_fail (q && k && queue && scratch && loss, FALSE);
  const char *op = "infonce";
  const DcrTensor *all[] = { q, k, queue, scratch, dq, dk };
  const char *names[] = { "q", "k", "queue", "scratch", "dq", "dk" };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    if (!check_dtype (op, names[i], all[i], DCR_F32, error))
      return FALSE;
  if (!check_loss (op, loss, error))
    return FALSE;
  if (q->ndim != 2 || q->shape[0] == 0 || q->shape[1] == 0 || !dcr_ops_same_shape (q, k))
    return dcr_ops_shape_error (error, op, "q and k must be [B, D]", q, k);
  gint64 b = q->shape[0], d = q->shape[1];
  if (queue->ndim != 2 || queue->shape[0] == 0 || queue->shape[1] != d)
    return dcr_ops_shape_error (error, op, "queue must be [Q, D] (Q > 0) for q [B, D]", queue, q);
  gint64 ql = queue->shape[0];
  if (dcr_tensor_numel (scratch) != b * (ql + 2))
    return dcr_ops_shape_error (error, op, "scratch must hold B·(Q + 2) floats, e.g. [B, Q + 2]", scratch, queue);
  if ((dq && !dcr_ops_same_shape (dq, q)) || (dk && !dcr_ops_same_shape (dk, k)))
    return dcr_ops_shape_error (error, op, "dq and dk must have the shape of q", dq ? dq : dk, q);
  if (!(temperature > 0))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: temperature must be positive (MoCo uses 0.07), got %g", op, temperature);
      return FALSE;
    }
  if (b > DCR_OPS_MAX_GROUPS)
    return dcr_ops_shape_error (error, op, "too many queries for one dispatch; split the batch", q, NULL);
  if (!dcr_ops_need_subgroups (seq, op, error))
    return FALSE;
  ContrastPush push = {
    (guint32) b, (guint32) d, (guint32) ql, 1.0f / temperature, 1.0f, grad_scale,
    (guint32) (b * ql), (guint32) (b * ql + b),
  };
  /* negative logits q·queueᵀ/τ into the [B, Q] head of the scratch */
  DcrTensor neg = dcr_ops_view_2d (scratch, b, ql);
  DcrGemmParams logits = { .trans_b = TRUE, .alpha = push.inv_temp };
  if (!dcr_op_gemm (seq, q, queue, NULL, NULL, &neg, &logits, error)
      || !contrast_pass (seq, CONTRAST_INFONCE, 0, q, k, NULL, scratch, NULL, FALSE, NULL, loss, &push, error))
    return FALSE;
  /* dq = (Σ_j p_ij queue_j + (p_i0 − 1) k⁺_i)·grad_scale/(τB): the queue term
   * as a GEMM (alpha 0 would mean 1 there, so a zero scale skips it) */
  gboolean queue_term = dq && grad_scale != 0;
  if (queue_term)
    {
      DcrGemmParams g = { .alpha = grad_scale * push.inv_temp / (float) b };
      if (!dcr_op_gemm (seq, &neg, queue, NULL, NULL, dq, &g, error))
        return FALSE;
    }
  return contrast_pass (seq, CONTRAST_INFONCE, 1, q, k, NULL, scratch, dq, queue_term, dk, loss, &push, error);
}

/* ---- references ----------------------------------------------------------- */

double
dcr_ref_cross_entropy (const float *logits, const gint32 *labels, gint64 rows, gint64 classes, float grad_scale,
                       float *dlogits)
{
  gint64 valid = 0;
  for (gint64 r = 0; r < rows; r++)
    valid += labels[r] >= 0 && labels[r] < classes;
  double inv = valid ? 1.0 / valid : 0, total = 0;
  for (gint64 r = 0; r < rows; r++)
    {
      const float *z = logits + r * classes;
      gboolean ok = labels[r] >= 0 && labels[r] < classes;
      double m = -INFINITY, s = 0;
      for (gint64 j = 0; j < classes; j++)
        m = MAX (m, z[j]);
      for (gint64 j = 0; j < classes; j++)
        s += exp (z[j] - m);
      double lse = m + log (s);
      if (ok)
        total += lse - z[labels[r]];
      if (dlogits)
        for (gint64 j = 0; j < classes; j++)
          dlogits[r * classes + j] = ok ? (float) ((exp (z[j] - lse) - (j == labels[r])) * inv * grad_scale) : 0;
    }
  return total * inv;
}

double
dcr_ref_bce (const float *probs, const float *targets, gint64 n, float grad_scale, float *dprobs)
{
  double total = 0;
  for (gint64 i = 0; i < n; i++)
    {
      double p = probs[i], t = targets[i];
      total -= t * MAX (log (p), -100.0) + (1 - t) * MAX (log1p (-p), -100.0);
      if (dprobs)
        dprobs[i] = (float) ((p - t) / MAX ((1 - p) * p, 1e-12) / n * grad_scale);
    }
  return total / n;
}

double
dcr_ref_bce_with_logits (const float *logits, const float *targets, gint64 n, float grad_scale, float *dlogits)
{
  double total = 0;
  for (gint64 i = 0; i < n; i++)
    {
      double z = logits[i], t = targets[i];
      total += MAX (z, 0.0) - z * t + log1p (exp (-fabs (z)));
      if (dlogits)
        dlogits[i] = (float) ((1.0 / (1.0 + exp (-z)) - t) / n * grad_scale);
    }
  return total / n;
}

static double
dot (const float *a, const float *b, gint64 d)
{
  double s = 0;
  for (gint64 c = 0; c < d; c++)
    s += (double) a[c] * b[c];
  return s;
}

double
dcr_ref_supcon (const float *z, const gint32 *labels, gint64 n, gint64 d, float temperature,
                float base_temperature, float grad_scale, float *dz)
{
  double tau = temperature, scale = base_temperature > 0 ? tau / base_temperature : 1.0, total = 0;
  g_autofree double *g = g_new0 (double, n * n); /* ∂L/∂s_ij, s_ij = z_i·z_j/τ */
  g_autofree double *s = g_new (double, n);
  for (gint64 i = 0; i < n; i++)
    {
      double m = -INFINITY, e = 0, pos = 0, spos = 0;
      for (gint64 j = 0; j < n; j++)
        {
          s[j] = dot (z + i * d, z + j * d, d) / tau;
          if (j != i)
            m = MAX (m, s[j]);
        }
      for (gint64 j = 0; j < n; j++)
        if (j != i)
          {
            e += exp (s[j] - m);
            if (labels[j] == labels[i])
              {
                pos += 1;
                spos += s[j];
              }
          }
      if (pos == 0)
        continue;
      double lse = m + log (e);
      total += -scale * (spos / pos - lse);
      for (gint64 j = 0; j < n; j++)
        if (j != i)
          g[i * n + j] = scale / n * (exp (s[j] - lse) - (labels[j] == labels[i] ? 1.0 / pos : 0));
    }
  if (dz)
    for (gint64 k = 0; k < n; k++)
      for (gint64 c = 0; c < d; c++)
        {
          double v = 0;
          for (gint64 j = 0; j < n; j++)
            v += (g[k * n + j] + g[j * n + k]) * z[j * d + c];
          dz[k * d + c] = (float) (v / tau * grad_scale);
        }
  return total / n;
}

double
dcr_ref_infonce (const float *q, const float *k, const float *queue, gint64 b, gint64 queue_len, gint64 d,
                 float temperature, float grad_scale, float *dq, float *dk)
{
  double tau = temperature, total = 0;
  g_autofree double *l = g_new (double, queue_len + 1);
  for (gint64 i = 0; i < b; i++)
    {
      const float *qi = q + i * d;
      double m = -INFINITY, e = 0;
      for (gint64 j = 0; j <= queue_len; j++)
        {
          l[j] = dot (qi, j ? queue + (j - 1) * d : k + i * d, d) / tau;
          m = MAX (m, l[j]);
        }
      for (gint64 j = 0; j <= queue_len; j++)
        e += exp (l[j] - m);
      double lse = m + log (e);
      total += lse - l[0];
      double f = grad_scale / (tau * b), p0m1 = exp (l[0] - lse) - 1;
      for (gint64 c = 0; c < d; c++)
        {
          if (dq)
            {
              double v = p0m1 * k[i * d + c];
              for (gint64 j = 1; j <= queue_len; j++)
                v += exp (l[j] - lse) * queue[(j - 1) * d + c];
              dq[i * d + c] = (float) (v * f);
            }
          if (dk)
            dk[i * d + c] = (float) (p0m1 * qi[c] * f);
        }
    }
  return total / b;
}
