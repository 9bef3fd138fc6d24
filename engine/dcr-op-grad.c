/* dcr-op-grad.c — the backward ops of dcr-op-grad.h and their references.
 * Shaders: grad_pointwise (activations, |a − b|), grad_colsum (bias, dγ/dβ),
 * grad_rows (softmax, L2 normalise, layer norm dx), grad_attn. */
#include "dcr-op-grad.h"
#include "dcr-op-gemm.h"

#include <math.h>
#include <string.h>

#define POINTWISE_LOCAL 256

static gboolean
check_f32 (const char *op, const char *name, const DcrTensor *t, GError **error)
{
  if (t->dtype == DCR_F32)
    return TRUE;
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE, "%s: %s is %s; this op takes f32 tensors",
               op, name, dcr_dtype_name (t->dtype));
  return FALSE;
}

static gboolean
same_dtype (const char *op, const DcrTensor *ref, const DcrTensor *t, GError **error)
{
  if (!t || t->dtype == ref->dtype)
    return TRUE;
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE, "%s: tensors mix %s and %s; use one dtype",
               op, dcr_dtype_name (ref->dtype), dcr_dtype_name (t->dtype));
  return FALSE;
}

static gint64
last_dim (const DcrTensor *t)
{
  return t->ndim ? t->shape[t->ndim - 1] : 1;
}

/* ---- activations and |a − b| ------------------------------------------ */

gboolean
dcr_op_act_backward (DcrSeq *seq, DcrAct act, const DcrTensor *x, const DcrTensor *dy,
                     DcrTensor *dx, DcrGradFlags flags, GError **error)
{
  g_return_val_if_fail (x && dy && dx, FALSE);
  const char *op = "act_backward";
  if (!dcr_ops_check_dtype (seq, op, x, error) || !same_dtype (op, x, dy, error)
      || !same_dtype (op, x, dx, error))
    return FALSE;
  gint64 n = dcr_tensor_numel (x);
  if (dcr_tensor_numel (dy) != n || dcr_tensor_numel (dx) != n)
    return dcr_ops_shape_error (error, op, "x, dy and dx need equal element counts", x, dy);
  if (n == 0)
    return TRUE;
  char name[64];
  guint32 spec[] = { POINTWISE_LOCAL, 1, 1, (guint32) act };
  DcrBinding b[] = { dcr_ops_bind (x, FALSE), dcr_ops_bind (dy, FALSE), dcr_ops_bind (dx, TRUE) };
  guint32 push[] = { (guint32) n, (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0 };
  return dcr_ops_dispatch (seq, dcr_ops_shader_name ("grad_act", x->dtype, name, sizeof name), spec,
                           G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), push, sizeof push,
                           dcr_ops_groups (n, POINTWISE_LOCAL), 1, 1, error);
}

/* a against b: either the same shape (k = 1) or b's shape with one axis of
 * size 1 (or missing) that b extends; yields a as [rows, d], b as [rows, k, d]. */
static gboolean
broadcast_axis (const DcrTensor *a, const DcrTensor *b, gint64 *rows, gint64 *k, gint64 *d)
{
  if (dcr_ops_same_shape (a, b))
    {
      *rows = 1;
      *k = 1;
      *d = dcr_tensor_numel (a);
      return TRUE;
    }
  for (int ax = 0; ax < b->ndim - 1; ax++)
    {
      /* a either keeps the axis with size 1 or drops it */
      for (int drop = 0; drop < 2; drop++)
        {
          if (a->ndim != b->ndim - drop)
            continue;
          gboolean ok = TRUE;
          for (int i = 0, j = 0; i < b->ndim && ok; i++)
            {
              if (i == ax)
                {
                  if (!drop)
                    ok = a->shape[j++] == 1;
                  continue;
                }
              ok = a->shape[j++] == b->shape[i];
            }
          if (!ok)
            continue;
          *rows = 1;
          *d = 1;
          for (int i = 0; i < ax; i++)
            *rows *= b->shape[i];
          for (int i = ax + 1; i < b->ndim; i++)
            *d *= b->shape[i];
          *k = b->shape[ax];
          return TRUE;
        }
    }
  return FALSE;
}

gboolean
dcr_op_abs_diff_backward (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b, const DcrTensor *dd,
                          DcrTensor *da, DcrTensor *db, DcrGradFlags flags, GError **error)
{
  g_return_val_if_fail (a && b && dd, FALSE);
  const char *op = "abs_diff_backward";
  if (!dcr_ops_check_dtype (seq, op, a, error) || !same_dtype (op, a, b, error)
      || !same_dtype (op, a, dd, error) || !same_dtype (op, a, da, error) || !same_dtype (op, a, db, error))
    return FALSE;
  gint64 rows, k, d;
  if (!broadcast_axis (a, b, &rows, &k, &d))
    return dcr_ops_shape_error (error, op, "a must have b's shape, or b's with one axis of size 1", a, b);
  if (!dcr_ops_same_shape (dd, b))
    return dcr_ops_shape_error (error, op, "dd must have b's shape", dd, b);
  if (da && !dcr_ops_same_shape (da, a))
    return dcr_ops_shape_error (error, op, "da must have a's shape", da, a);
  if (db && !dcr_ops_same_shape (db, b))
    return dcr_ops_shape_error (error, op, "db must have b's shape", db, b);
  if ((!da && !db) || dcr_tensor_numel (b) == 0)
    return TRUE;

  char name[64];
  guint32 spec[] = { POINTWISE_LOCAL, 1, 1 };
  /* a missing output is bound to the other one and never written */
  DcrBinding bd[] = {
    dcr_ops_bind (a, FALSE), dcr_ops_bind (b, FALSE), dcr_ops_bind (dd, FALSE),
    dcr_ops_bind (da ? da : db, TRUE), dcr_ops_bind (db ? db : da, TRUE),
  };
  guint32 push[] = {
    (guint32) (rows * d), (guint32) k, (guint32) d,
    (da ? 1u : 0u) | (db ? 2u : 0u) | ((flags & DCR_GRAD_ACCUMULATE_INPUT) ? 4u : 0u),
  };
  return dcr_ops_dispatch (seq, dcr_ops_shader_name ("grad_absdiff", a->dtype, name, sizeof name), spec,
                           G_N_ELEMENTS (spec), bd, G_N_ELEMENTS (bd), push, sizeof push,
                           dcr_ops_groups (rows * d, POINTWISE_LOCAL), 1, 1, error);
}

/* ---- column sums: bias, dγ/dβ ------------------------------------------ */

typedef struct {
  guint32 rows, cols, flags;
} ColsumPush;

static gboolean
colsum (DcrSeq *seq, guint mode, const DcrTensor *dy, const DcrTensor *x, const DcrTensor *stats,
        DcrTensor *out0, DcrTensor *out1, gint64 rows, gint64 cols, gboolean accum, GError **error)
{
  /* row slices spread tall gradients over a GPU's threads; lavapipe runs the
   * barriers of the slice sum as coroutine switches, so it gets one slice */
  gboolean cpu = dcr_context_device (dcr_seq_context (seq))->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  const guint32 lx = 32, ly = cpu || rows < 32 ? 1 : 8;
  guint32 spec[] = { lx, ly, 1, mode };
  DcrTensor *o0 = out0 ? out0 : out1, *o1 = out1 ? out1 : out0;
  DcrBinding b[] = {
    dcr_ops_bind (dy, FALSE), dcr_ops_bind (x ? x : dy, FALSE), dcr_ops_bind (stats ? stats : dy, FALSE),
    dcr_ops_bind (o0, TRUE), dcr_ops_bind (o1, TRUE),
  };
  ColsumPush push = { (guint32) rows, (guint32) cols, (accum ? 1u : 0u) | (out0 ? 2u : 0u) | (out1 ? 4u : 0u) };
  return dcr_ops_dispatch (seq, "grad_colsum", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), &push, sizeof push,
                           (guint32) ((cols + lx - 1) / lx), 1, 1, error);
}

gboolean
dcr_op_bias_backward (DcrSeq *seq, const DcrTensor *dy, DcrTensor *db, DcrGradFlags flags, GError **error)
{
  g_return_val_if_fail (dy && db, FALSE);
  const char *op = "bias_backward";
  if (!check_f32 (op, "dy", dy, error) || !check_f32 (op, "db", db, error))
    return FALSE;
  gint64 n = last_dim (dy);
  if (dcr_tensor_numel (db) != n)
    return dcr_ops_shape_error (error, op, "db needs dy's last dim", db, dy);
  if (n == 0)
    return TRUE;
  return colsum (seq, 0, dy, NULL, NULL, db, NULL, dcr_tensor_numel (dy) / n, n,
                 (flags & DCR_GRAD_ACCUMULATE_PARAMS) != 0, error);
}

/* ---- linear ------------------------------------------------------------- */

gboolean
dcr_op_linear_backward (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w, const DcrTensor *dy,
                        DcrTensor *dx, DcrTensor *dw, DcrTensor *db, DcrGradFlags flags, GError **error)
{
  g_return_val_if_fail (x && w && dy, FALSE);
  const char *op = "linear_backward";
  const DcrTensor *all[] = { x, w, dy, dx, dw, db };
  const char *names[] = { "x", "w", "dy", "dx", "dw", "db" };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    if (all[i] && !check_f32 (op, names[i], all[i], error))
      return FALSE;
  if (w->ndim != 2)
    return dcr_ops_shape_error (error, op, "w must be [out, in]", w, NULL);
  gint64 out = w->shape[0], in = w->shape[1];
  if (last_dim (x) != in || last_dim (dy) != out || in == 0 || out == 0)
    return dcr_ops_shape_error (error, op, "x must be [..., in] and dy [..., out] for w [out, in]", x, dy);
  gint64 rows = dcr_tensor_numel (x) / in;
  if (dcr_tensor_numel (dy) / out != rows)
    return dcr_ops_shape_error (error, op, "x and dy must have the same rows", x, dy);
  if (dx && dcr_tensor_numel (dx) != dcr_tensor_numel (x))
    return dcr_ops_shape_error (error, op, "dx must have x's shape", dx, x);
  if (dw && !dcr_ops_same_shape (dw, w))
    return dcr_ops_shape_error (error, op, "dw must have w's shape", dw, w);
  if (db && dcr_tensor_numel (db) != out)
    return dcr_ops_shape_error (error, op, "db must be [out]", db, w);
  if (rows == 0)
    return TRUE;

  DcrTensor dy2 = dcr_ops_view_2d (dy, rows, out);
  if (dx)
    {
      /* dx[rows, in] = dy[rows, out] · W[out, in] */
      DcrTensor dx2 = dcr_ops_view_2d (dx, rows, in);
      DcrGemmParams gp = { .alpha = 1, .beta = (flags & DCR_GRAD_ACCUMULATE_INPUT) ? 1 : 0 };
      if (!dcr_op_gemm (seq, &dy2, w, NULL, NULL, &dx2, &gp, error))
        return FALSE;
    }
  if (dw)
    {
      /* dW[out, in] = dyᵀ · x, dy stored [rows, out] = [K, M] */
      DcrTensor x2 = dcr_ops_view_2d (x, rows, in);
      DcrGemmParams gp = { .trans_a = TRUE, .alpha = 1, .beta = (flags & DCR_GRAD_ACCUMULATE_PARAMS) ? 1 : 0 };
      if (!dcr_op_gemm (seq, &dy2, &x2, NULL, NULL, dw, &gp, error))
        return FALSE;
    }
  if (db)
    return colsum (seq, 0, dy, NULL, NULL, db, NULL, rows, out, (flags & DCR_GRAD_ACCUMULATE_PARAMS) != 0, error);
  return TRUE;
}

/* ---- row-wise: softmax, L2 normalise, layer norm ----------------------- */

typedef struct {
  guint32 rows, n;
  float eps;
  guint32 flags;
} RowsPush;

enum { ROWS_SOFTMAX, ROWS_L2, ROWS_LAYER_NORM };

static gboolean
rows_dispatch (DcrSeq *seq, const char *op, guint mode, const DcrTensor *a, const DcrTensor *dy,
               const DcrTensor *gamma, DcrTensor *dx, DcrTensor *stats, gint64 rows, gint64 n, float eps,
               gboolean accum, GError **error)
{
  if (!dcr_ops_need_subgroups (seq, op, error))
    return FALSE;
  /* one subgroup per row */
  guint32 spec[] = { dcr_context_device (dcr_seq_context (seq))->subgroup_size, 1, 1, mode };
  DcrBinding b[] = {
    dcr_ops_bind (a, FALSE), dcr_ops_bind (dy, FALSE), dcr_ops_bind (gamma ? gamma : dy, FALSE),
    dcr_ops_bind (dx, TRUE), dcr_ops_bind (stats ? stats : dx, TRUE),
  };
  RowsPush push = { (guint32) rows, (guint32) n, eps, (accum ? 1u : 0u) | (gamma ? 2u : 0u) | (stats ? 4u : 0u) };
  return dcr_ops_dispatch (seq, "grad_rows", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), &push, sizeof push,
                           dcr_ops_groups (rows, 1), 1, 1, error);
}

static gboolean
rows_check (const char *op, const DcrTensor *a, const char *a_name, const DcrTensor *dy, const DcrTensor *dx,
            gint64 *rows, gint64 *n, GError **error)
{
  g_return_val_if_fail (a && dy && dx, FALSE);
  if (!check_f32 (op, a_name, a, error) || !check_f32 (op, "dy", dy, error) || !check_f32 (op, "dx", dx, error))
    return FALSE;
  if (!dcr_ops_same_shape (a, dy) || !dcr_ops_same_shape (a, dx))
    return dcr_ops_shape_error (error, op, "the forward tensor, dy and dx need one shape", a, dy);
  *n = last_dim (a);
  *rows = *n ? dcr_tensor_numel (a) / *n : 0;
  return TRUE;
}

gboolean
dcr_op_softmax_backward (DcrSeq *seq, const DcrTensor *y, const DcrTensor *dy, DcrTensor *dx,
                         DcrGradFlags flags, GError **error)
{
  gint64 rows, n;
  if (!rows_check ("softmax_backward", y, "y", dy, dx, &rows, &n, error))
    return FALSE;
  if (rows == 0)
    return TRUE;
  return rows_dispatch (seq, "softmax_backward", ROWS_SOFTMAX, y, dy, NULL, dx, NULL, rows, n, 0,
                        (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0, error);
}

gboolean
dcr_op_l2_normalize_backward (DcrSeq *seq, const DcrTensor *x, const DcrTensor *dy, float eps, DcrTensor *dx,
                              DcrGradFlags flags, GError **error)
{
  gint64 rows, n;
  if (!rows_check ("l2_normalize_backward", x, "x", dy, dx, &rows, &n, error))
    return FALSE;
  if (!(eps > 0))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "l2_normalize_backward: eps must be positive (F.normalize uses 1e-12), not %g", eps);
      return FALSE;
    }
  if (rows == 0)
    return TRUE;
  return rows_dispatch (seq, "l2_normalize_backward", ROWS_L2, x, dy, NULL, dx, NULL, rows, n, eps,
                        (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0, error);
}

gboolean
dcr_op_layer_norm_backward (DcrSeq *seq, const DcrTensor *x, const DcrTensor *gamma, const DcrTensor *dy,
                            float eps, DcrTensor *dx, DcrTensor *dgamma, DcrTensor *dbeta, DcrTensor *stats,
                            DcrGradFlags flags, GError **error)
{
  const char *op = "layer_norm_backward";
  gint64 rows, n;
  if (!rows_check (op, x, "x", dy, dx, &rows, &n, error))
    return FALSE;
  const DcrTensor *params[] = { gamma, dgamma, dbeta };
  const char *names[] = { "gamma", "dgamma", "dbeta" };
  for (guint i = 0; i < G_N_ELEMENTS (params); i++)
    if (params[i] && (!check_f32 (op, names[i], params[i], error)))
      return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (params); i++)
    if (params[i] && dcr_tensor_numel (params[i]) != n)
      return dcr_ops_shape_error (error, op, "gamma, dgamma and dbeta must be [n] for x [..., n]", params[i], x);
  if ((dgamma || dbeta) && !stats)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "%s: dgamma/dbeta need a stats tensor [rows, 2] f32 for the per-row mean and rstd", op);
      return FALSE;
    }
  if (stats && (!check_f32 (op, "stats", stats, error)))
    return FALSE;
  if (stats && dcr_tensor_numel (stats) != rows * 2)
    return dcr_ops_shape_error (error, op, "stats must be [rows, 2]", stats, x);
  if (rows == 0)
    return TRUE;
  if (!rows_dispatch (seq, op, ROWS_LAYER_NORM, x, dy, gamma, dx, stats, rows, n, eps,
                      (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0, error))
    return FALSE;
  if (dgamma || dbeta)
    return colsum (seq, 1, dy, x, stats, dgamma, dbeta, rows, n, (flags & DCR_GRAD_ACCUMULATE_PARAMS) != 0,
                   error);
  return TRUE;
}

/* ---- attention ---------------------------------------------------------- */

typedef struct {
  guint32 batch, lq, lk, heads, dh, dv;
  float scale;
  guint32 flags;
} AttnPush;

/* Most vec4 (or scalar) chunks of a head one lane keeps in registers. */
#define ATTN_MAX_CHUNKS_PER_LANE 64

/* [B, L, D] or [L, D] (B = 1), as dcr_op_attention takes them */
static gboolean
tokens (const DcrTensor *t, gint64 *b, gint64 *l, gint64 *d)
{
  if (t->ndim == 2)
    {
      *b = 1;
      *l = t->shape[0];
      *d = t->shape[1];
      return TRUE;
    }
  if (t->ndim == 3)
    {
      *b = t->shape[0];
      *l = t->shape[1];
      *d = t->shape[2];
      return TRUE;
    }
  return FALSE;
}

gboolean
dcr_op_attention_backward (DcrSeq *seq, const DcrTensor *q, const DcrTensor *k, const DcrTensor *v,
                           const DcrTensor *dout, gint64 heads, float scale, DcrTensor *dq, DcrTensor *dk,
                           DcrTensor *dv, DcrGradFlags flags, GError **error)
{
  g_return_val_if_fail (q && k && v && dout, FALSE);
  const char *op = "attention_backward";
  const DcrTensor *all[] = { q, k, v, dout, dq, dk, dv };
  const char *names[] = { "q", "k", "v", "dout", "dq", "dk", "dv" };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    if (all[i] && !check_f32 (op, names[i], all[i], error))
      return FALSE;
  heads = MAX (heads, 1);
  gint64 bq, lq, dq_w, bk, lk, dk_w, bv, lv, dv_w, bo, lo, do_w;
  if (!tokens (q, &bq, &lq, &dq_w) || !tokens (k, &bk, &lk, &dk_w) || !tokens (v, &bv, &lv, &dv_w)
      || !tokens (dout, &bo, &lo, &do_w))
    return dcr_ops_shape_error (error, op, "q, k, v and dout must be [B, L, D] or [L, D]", q, k);
  if (bk != bq || bv != bq || bo != bq || lv != lk || lo != lq || dk_w != dq_w || do_w != dv_w)
    return dcr_ops_shape_error (error, op,
                                "need q [B, Lq, H·dh], k [B, Lk, H·dh], v [B, Lk, H·dv], dout [B, Lq, H·dv]", q, k);
  if (dq_w % heads || dv_w % heads)
    return dcr_ops_shape_error (error, op, "head count must divide the q and v widths", q, v);
  if ((dq && !dcr_ops_same_shape (dq, q)) || (dk && !dcr_ops_same_shape (dk, k))
      || (dv && !dcr_ops_same_shape (dv, v)))
    return dcr_ops_shape_error (error, op, "dq, dk, dv must have the shapes of q, k, v", q, k);
  guint32 write = (dq ? 1 : 0) | (dk ? 2 : 0) | (dv ? 4 : 0);
  if (!write || bq == 0 || lq == 0 || lk == 0)
    return TRUE;
  if (!dcr_ops_need_subgroups (seq, op, error))
    return FALSE;
  DcrContext *ctx = dcr_seq_context (seq);
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  gint64 dh = dq_w / heads, dvh = dv_w / heads;
  gboolean vec4 = dh % 4 == 0 && dvh % 4 == 0;
  gint64 sg = dev->subgroup_size, cw = vec4 ? 4 : 1;
  gint64 cq = MAX ((dh / cw + sg - 1) / sg, 1), cv = MAX ((dvh / cw + sg - 1) / sg, 1);
  if (cq > ATTN_MAX_CHUNKS_PER_LANE || cv > ATTN_MAX_CHUNKS_PER_LANE)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: head dims %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " are too large for this device's "
                   "%u-wide subgroups (at most %" G_GINT64_FORMAT ")", op, dh, dvh, dev->subgroup_size,
                   ATTN_MAX_CHUNKS_PER_LANE * sg * cw);
      return FALSE;
    }
  if (scale == 0)
    scale = (float) (1.0 / sqrt ((double) dh));

  /* one subgroup per (batch, head) task, the tasks strided over the groups */
  guint32 spec[] = { dev->subgroup_size, 1, 1, (guint32) cq, (guint32) cv, vec4 };
  /* missing outputs alias a present one and are never written */
  DcrTensor *any = dq ? dq : dk ? dk : dv;
  DcrBinding b[] = {
    dcr_ops_bind (q, FALSE), dcr_ops_bind (k, FALSE), dcr_ops_bind (v, FALSE), dcr_ops_bind (dout, FALSE),
    dcr_ops_bind (dq ? dq : any, TRUE), dcr_ops_bind (dk ? dk : any, TRUE), dcr_ops_bind (dv ? dv : any, TRUE),
  };
  AttnPush push = {
    (guint32) bq, (guint32) lq, (guint32) lk, (guint32) heads, (guint32) dh, (guint32) dvh, scale,
    write | ((flags & DCR_GRAD_ACCUMULATE_INPUT) ? 8u : 0u),
  };
  guint32 groups = (guint32) MIN (bq * heads, (gint64) MIN (dev->max_workgroup_count[0], DCR_OPS_MAX_GROUPS));
  return dcr_ops_dispatch (seq, "grad_attn", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), &push, sizeof push,
                           groups, 1, 1, error);
}

/* ---- references ---------------------------------------------------------- */

static double
normal_cdf (double x)
{
  return 0.5 * erfc (-x / sqrt (2.0));
}

void
dcr_ref_act_backward (DcrAct act, const float *x, const float *dy, float *dx, gint64 n, DcrGradFlags flags)
{
  for (gint64 i = 0; i < n; i++)
    {
      double xv = x[i], g = dy[i], r;
      switch (act)
        {
        case DCR_ACT_RELU:
          r = xv > 0 ? g : 0;
          break;
        case DCR_ACT_RELU6:
          r = xv > 0 && xv < 6 ? g : 0;
          break;
        case DCR_ACT_GELU:
          r = g * (normal_cdf (xv) + xv * exp (-0.5 * xv * xv) / sqrt (2 * G_PI));
          break;
        case DCR_ACT_QUICK_GELU:
          {
            double s = 1.0 / (1.0 + exp (-1.702 * xv));
            r = g * (s + 1.702 * xv * s * (1 - s));
          }
          break;
        case DCR_ACT_NONE:
        default:
          r = g;
          break;
        }
      dx[i] = (float) ((flags & DCR_GRAD_ACCUMULATE_INPUT) ? dx[i] + r : r);
    }
}

void
dcr_ref_abs_diff_backward (const float *a, const float *b, const float *dd, float *da, float *db,
                           gint64 rows, gint64 k, gint64 d, DcrGradFlags flags)
{
  gboolean acc = (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0;
  for (gint64 r = 0; r < rows; r++)
    for (gint64 c = 0; c < d; c++)
      {
        double sum = 0;
        for (gint64 j = 0; j < k; j++)
          {
            gint64 i = (r * k + j) * d + c;
            float diff = a[r * d + c] - b[i];
            double g = (diff > 0 ? 1.0 : diff < 0 ? -1.0 : 0.0) * dd[i];
            sum += g;
            if (db)
              db[i] = (float) (acc ? db[i] - g : -g);
          }
        if (da)
          da[r * d + c] = (float) (acc ? da[r * d + c] + sum : sum);
      }
}

void
dcr_ref_bias_backward (const float *dy, float *db, gint64 rows, gint64 n, DcrGradFlags flags)
{
  for (gint64 c = 0; c < n; c++)
    {
      double s = 0;
      for (gint64 r = 0; r < rows; r++)
        s += dy[r * n + c];
      db[c] = (float) ((flags & DCR_GRAD_ACCUMULATE_PARAMS) ? db[c] + s : s);
    }
}

void
dcr_ref_linear_backward (const float *x, const float *w, const float *dy, float *dx, float *dw, float *db,
                         gint64 rows, gint64 in, gint64 out, DcrGradFlags flags)
{
  gboolean acc_in = (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0, acc_p = (flags & DCR_GRAD_ACCUMULATE_PARAMS) != 0;
  if (dx)
    for (gint64 r = 0; r < rows; r++)
      for (gint64 i = 0; i < in; i++)
        {
          double s = 0;
          for (gint64 o = 0; o < out; o++)
            s += (double) dy[r * out + o] * w[o * in + i];
          dx[r * in + i] = (float) (acc_in ? dx[r * in + i] + s : s);
        }
  if (dw)
    for (gint64 o = 0; o < out; o++)
      for (gint64 i = 0; i < in; i++)
        {
          double s = 0;
          for (gint64 r = 0; r < rows; r++)
            s += (double) dy[r * out + o] * x[r * in + i];
          dw[o * in + i] = (float) (acc_p ? dw[o * in + i] + s : s);
        }
  if (db)
    dcr_ref_bias_backward (dy, db, rows, out, flags);
}

void
dcr_ref_layer_norm_backward (const float *x, const float *gamma, const float *dy, float eps, float *dx,
                             float *dgamma, float *dbeta, gint64 rows, gint64 n, DcrGradFlags flags)
{
  gboolean acc_in = (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0, acc_p = (flags & DCR_GRAD_ACCUMULATE_PARAMS) != 0;
  g_autofree double *dg = g_new0 (double, n);
  g_autofree double *dbt = g_new0 (double, n);
  for (gint64 r = 0; r < rows; r++)
    {
      const float *xr = x + r * n, *gr = dy + r * n;
      double mean = 0, var = 0, s1 = 0, s2 = 0;
      for (gint64 j = 0; j < n; j++)
        mean += xr[j];
      mean /= n;
      for (gint64 j = 0; j < n; j++)
        var += (xr[j] - mean) * (xr[j] - mean);
      var /= n;
      double rstd = 1.0 / sqrt (var + eps);
      for (gint64 j = 0; j < n; j++)
        {
          double xh = (xr[j] - mean) * rstd, gdy = gr[j] * (gamma ? gamma[j] : 1.0);
          s1 += gdy;
          s2 += gdy * xh;
          dg[j] += gr[j] * xh;
          dbt[j] += gr[j];
        }
      for (gint64 j = 0; j < n; j++)
        {
          double xh = (xr[j] - mean) * rstd, gdy = gr[j] * (gamma ? gamma[j] : 1.0);
          double v = rstd * (gdy - s1 / n - xh * s2 / n);
          dx[r * n + j] = (float) (acc_in ? dx[r * n + j] + v : v);
        }
    }
  for (gint64 j = 0; j < n; j++)
    {
      if (dgamma)
        dgamma[j] = (float) (acc_p ? dgamma[j] + dg[j] : dg[j]);
      if (dbeta)
        dbeta[j] = (float) (acc_p ? dbeta[j] + dbt[j] : dbt[j]);
    }
}

void
dcr_ref_softmax_backward (const float *y, const float *dy, float *dx, gint64 rows, gint64 n, DcrGradFlags flags)
{
  for (gint64 r = 0; r < rows; r++)
    {
      const float *yr = y + r * n, *gr = dy + r * n;
      double s = 0;
      for (gint64 j = 0; j < n; j++)
        s += (double) yr[j] * gr[j];
      for (gint64 j = 0; j < n; j++)
        {
          double v = yr[j] * (gr[j] - s);
          dx[r * n + j] = (float) ((flags & DCR_GRAD_ACCUMULATE_INPUT) ? dx[r * n + j] + v : v);
        }
    }
}

void
dcr_ref_l2_normalize_backward (const float *x, const float *dy, float eps, float *dx, gint64 rows, gint64 n,
                               DcrGradFlags flags)
{
  for (gint64 r = 0; r < rows; r++)
    {
      const float *xr = x + r * n, *gr = dy + r * n;
      double n2 = 0, xd = 0;
      for (gint64 j = 0; j < n; j++)
        {
          n2 += (double) xr[j] * xr[j];
          xd += (double) xr[j] * gr[j];
        }
      double nrm = sqrt (n2);
      gboolean full = nrm >= eps;
      double inv = 1.0 / MAX (nrm, eps), kk = full ? xd / n2 : 0;
      for (gint64 j = 0; j < n; j++)
        {
          double v = (gr[j] - xr[j] * kk) * inv;
          dx[r * n + j] = (float) ((flags & DCR_GRAD_ACCUMULATE_INPUT) ? dx[r * n + j] + v : v);
        }
    }
}

void
dcr_ref_attention_backward (const float *q, const float *k, const float *v, const float *dout, gint64 batch,
                            gint64 lq, gint64 lk, gint64 heads, gint64 dh, gint64 dv, float scale, float *dq,
                            float *dk, float *dvo, DcrGradFlags flags)
{
  gboolean acc = (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0;
  double sc = scale == 0 ? 1.0 / sqrt ((double) dh) : scale;
  gint64 qk_row = heads * dh, v_row = heads * dv;
  g_autofree double *p = g_new (double, lk);
  g_autofree double *ds = g_new (double, lk);
  g_autofree double *gk = g_new (double, lk * dh);
  g_autofree double *gv = g_new (double, lk * dv);
  for (gint64 b = 0; b < batch; b++)
    for (gint64 h = 0; h < heads; h++)
      {
        memset (gk, 0, sizeof (double) * lk * dh);
        memset (gv, 0, sizeof (double) * lk * dv);
        const float *kb = k + b * lk * qk_row + h * dh, *vb = v + b * lk * v_row + h * dv;
        for (gint64 i = 0; i < lq; i++)
          {
            const float *qi = q + (b * lq + i) * qk_row + h * dh;
            const float *oi = dout + (b * lq + i) * v_row + h * dv;
            double m = -INFINITY, z = 0, c = 0;
            for (gint64 j = 0; j < lk; j++)
              {
                double s = 0;
                for (gint64 d = 0; d < dh; d++)
                  s += (double) qi[d] * kb[j * qk_row + d];
                p[j] = s * sc;
                m = MAX (m, p[j]);
              }
            for (gint64 j = 0; j < lk; j++)
              {
                p[j] = exp (p[j] - m);
                z += p[j];
              }
            for (gint64 j = 0; j < lk; j++)
              {
                double dp = 0;
                for (gint64 d = 0; d < dv; d++)
                  dp += (double) oi[d] * vb[j * v_row + d];
                p[j] /= z;
                ds[j] = dp;
                c += p[j] * dp;
              }
            for (gint64 j = 0; j < lk; j++)
              {
                ds[j] = p[j] * (ds[j] - c);
                for (gint64 d = 0; d < dh; d++)
                  gk[j * dh + d] += sc * ds[j] * qi[d];
                for (gint64 d = 0; d < dv; d++)
                  gv[j * dv + d] += p[j] * oi[d];
              }
            if (dq)
              for (gint64 d = 0; d < dh; d++)
                {
                  double g = 0;
                  for (gint64 j = 0; j < lk; j++)
                    g += ds[j] * kb[j * qk_row + d];
                  float *o = dq + (b * lq + i) * qk_row + h * dh + d;
                  *o = (float) (acc ? *o + sc * g : sc * g);
                }
          }
        for (gint64 j = 0; j < lk; j++)
          {
            if (dk)
              for (gint64 d = 0; d < dh; d++)
                {
                  float *o = dk + (b * lk + j) * qk_row + h * dh + d;
                  *o = (float) (acc ? *o + gk[j * dh + d] : gk[j * dh + d]);
                }
            if (dvo)
              for (gint64 d = 0; d < dv; d++)
                {
                  float *o = dvo + (b * lk + j) * v_row + h * dv + d;
                  *o = (float) (acc ? *o + gv[j * dv + d] : gv[j * dv + d]);
                }
          }
      }
}
