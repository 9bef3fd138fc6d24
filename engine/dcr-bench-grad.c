/* dcr-bench-grad.c — `dcr bench ops` cases for training the DCR heads: the
 * backward ops, the losses and the AdamW step at the heads' shapes (batch
 * 256, ResNet-50's 2048-d features, a 512-wide hidden layer, RINE's 24
 * tokens, 128-d contrastive projections), and the convolution backward at
 * the forensic CNN's (dcr-cnn.h). Inputs are zero-filled: the timing does
 * not depend on the values. */
#include "dcr-bench.h"
#include "dcr-op-grad.h"
#include "dcr-op-conv.h"
#include "dcr-op-loss.h"
#include "dcr-op-optim.h"

typedef enum {
  CASE_LINEAR,     /* a: rows, b: in, c: out */
  CASE_GELU,       /* a: elements */
  CASE_LAYER_NORM, /* a: rows, b: n */
  CASE_L2,         /* a: rows, b: n */
  CASE_ATTENTION,  /* a: batch, b: keys, c: heads, d: head dim (one query) */
  CASE_SUPCON,     /* a: n, b: d */
  CASE_INFONCE,    /* a: batch, b: d, c: queue */
  CASE_ADAMW,      /* a: parameters */
} CaseKind;

typedef struct {
  const char *op;
  CaseKind kind;
  gint64 a, b, c, d;
  const char *what;
  gboolean quick;
  gboolean gpu_only;
} GradCase;

static const GradCase cases[] = {
  { "grad.linear", CASE_LINEAR, 16, 64, 32, 0, "small", TRUE, FALSE },
  { "grad.linear", CASE_LINEAR, 256, 2048, 512, 0, "residual head fc1, batch 256", FALSE, FALSE },
  { "grad.gelu", CASE_GELU, 4096, 0, 0, 0, "small", TRUE, FALSE },
  { "grad.gelu", CASE_GELU, 256 * 2048, 0, 0, 0, "batch 256 x 2048", FALSE, FALSE },
  { "grad.layer_norm", CASE_LAYER_NORM, 16, 64, 0, 0, "small", TRUE, FALSE },
  { "grad.layer_norm", CASE_LAYER_NORM, 256, 2048, 0, 0, "batch 256 x 2048 (+dgamma, dbeta)", FALSE, FALSE },
  { "grad.layer_norm", CASE_LAYER_NORM, 257 * 8, 1024, 0, 0, "vit-l/14 tokens x 8 images", FALSE, FALSE },
  { "grad.l2_normalize", CASE_L2, 256, 2048, 0, 0, "batch 256 x 2048", FALSE, FALSE },
  { "grad.attention", CASE_ATTENTION, 4, 8, 2, 16, "small", TRUE, FALSE },
  { "grad.attention", CASE_ATTENTION, 256, 24, 8, 64, "difference attention over RINE's 24 tokens", FALSE, FALSE },
  { "loss.supcon", CASE_SUPCON, 16, 16, 0, 0, "small", TRUE, FALSE },
  { "loss.supcon", CASE_SUPCON, 256, 128, 0, 0, "batch 256, 128-d projection", FALSE, FALSE },
  { "loss.infonce", CASE_INFONCE, 8, 16, 64, 0, "small", TRUE, FALSE },
  { "loss.infonce", CASE_INFONCE, 256, 128, 1024, 0, "batch 256, queue 1024", FALSE, FALSE },
  { "loss.infonce", CASE_INFONCE, 256, 128, 16384, 0, "batch 256, queue 16384", FALSE, TRUE },
  { "optim.adamw", CASE_ADAMW, 4096, 0, 0, 0, "small", TRUE, FALSE },
  { "optim.adamw", CASE_ADAMW, 2048 * 512 + 512 * 1024, 0, 0, 0, "1.6 M head parameters", FALSE, FALSE },
};

/* Zero-filled tensors owned by the case. */
typedef struct {
  DcrContext *ctx;
  GPtrArray *tensors;
} Pool;

static DcrTensor *
zeros (Pool *p, DcrDtype dt, int ndim, const gint64 *shape, GError **error)
{
  DcrTensor *t = dcr_tensor_new (p->ctx, DCR_POOL_ACTIVATIONS, dt, ndim, shape, error);
  if (!t)
    return NULL;
  g_ptr_array_add (p->tensors, t);
  return dcr_buffer_fill_zero (t->buf, error) ? t : NULL;
}

#define Z2(r, c) zeros (pool, DCR_F32, 2, (gint64[]) { (r), (c) }, error)
#define Z1(n) zeros (pool, DCR_F32, 1, (gint64[]) { (n) }, error)
#define Z3(x, y, z) zeros (pool, DCR_F32, 3, (gint64[]) { (x), (y), (z) }, error)

static char *
shape_string (const GradCase *cs)
{
  g_autofree char *dims = NULL;
  switch (cs->kind)
    {
    case CASE_LINEAR:
      dims = g_strdup_printf ("rows=%" G_GINT64_FORMAT " in=%" G_GINT64_FORMAT " out=%" G_GINT64_FORMAT,
                              cs->a, cs->b, cs->c);
      break;
    case CASE_GELU:
    case CASE_ADAMW:
      dims = g_strdup_printf ("n=%" G_GINT64_FORMAT, cs->a);
      break;
    case CASE_LAYER_NORM:
    case CASE_L2:
      dims = g_strdup_printf ("rows=%" G_GINT64_FORMAT " n=%" G_GINT64_FORMAT, cs->a, cs->b);
      break;
    case CASE_ATTENTION:
      dims = g_strdup_printf ("B=%" G_GINT64_FORMAT " Lq=1 Lk=%" G_GINT64_FORMAT " H=%" G_GINT64_FORMAT
                              " dh=%" G_GINT64_FORMAT, cs->a, cs->b, cs->c, cs->d);
      break;
    case CASE_SUPCON:
      dims = g_strdup_printf ("N=%" G_GINT64_FORMAT " D=%" G_GINT64_FORMAT, cs->a, cs->b);
      break;
    case CASE_INFONCE:
      dims = g_strdup_printf ("B=%" G_GINT64_FORMAT " D=%" G_GINT64_FORMAT " Q=%" G_GINT64_FORMAT,
                              cs->a, cs->b, cs->c);
      break;
    }
  return g_strdup_printf ("%s (%s)", dims, cs->what);
}

static gboolean
record (DcrSeq *seq, Pool *pool, const GradCase *cs, double *flop, double *bytes, GError **error)
{
  gint64 a = cs->a, b = cs->b, c = cs->c, d = cs->d;
  switch (cs->kind)
    {
    case CASE_LINEAR:
      {
        DcrTensor *x = Z2 (a, b), *w = x ? Z2 (c, b) : NULL, *dy = w ? Z2 (a, c) : NULL;
        DcrTensor *dx = dy ? Z2 (a, b) : NULL, *dw = dx ? Z2 (c, b) : NULL, *db = dw ? Z1 (c) : NULL;
        *flop = 4.0 * a * b * c;
        return db && dcr_op_linear_backward (seq, x, w, dy, dx, dw, db, DCR_GRAD_OVERWRITE, error);
      }
    case CASE_GELU:
      {
        DcrTensor *x = Z1 (a), *dy = x ? Z1 (a) : NULL, *dx = dy ? Z1 (a) : NULL;
        *bytes = 12.0 * a;
        return dx && dcr_op_act_backward (seq, DCR_ACT_GELU, x, dy, dx, DCR_GRAD_OVERWRITE, error);
      }
    case CASE_LAYER_NORM:
      {
        DcrTensor *x = Z2 (a, b), *g = x ? Z1 (b) : NULL, *dy = g ? Z2 (a, b) : NULL, *dx = dy ? Z2 (a, b) : NULL;
        DcrTensor *dg = dx ? Z1 (b) : NULL, *dbt = dg ? Z1 (b) : NULL, *st = dbt ? Z2 (a, 2) : NULL;
        *bytes = 4.0 * a * b * 5; /* x, dy twice; dx */
        return st && dcr_op_layer_norm_backward (seq, x, g, dy, 1e-5f, dx, dg, dbt, st, DCR_GRAD_OVERWRITE, error);
      }
    case CASE_L2:
      {
        DcrTensor *x = Z2 (a, b), *dy = x ? Z2 (a, b) : NULL, *dx = dy ? Z2 (a, b) : NULL;
        *bytes = 4.0 * a * b * 5;
        return dx && dcr_op_l2_normalize_backward (seq, x, dy, 1e-12f, dx, DCR_GRAD_OVERWRITE, error);
      }
    case CASE_ATTENTION:
      {
        gint64 w = c * d;
        DcrTensor *q = Z3 (a, 1, w), *k = q ? Z3 (a, b, w) : NULL;
        DcrTensor *v = k ? Z3 (a, b, w) : NULL;
        DcrTensor *o = v ? Z3 (a, 1, w) : NULL, *dq = o ? Z3 (a, 1, w) : NULL;
        DcrTensor *dk = dq ? Z3 (a, b, w) : NULL;
        DcrTensor *dv = dk ? Z3 (a, b, w) : NULL;
        *flop = 10.0 * a * c * b * d;
        return dv && dcr_op_attention_backward (seq, q, k, v, o, c, 0, dq, dk, dv, DCR_GRAD_OVERWRITE, error);
      }
    case CASE_SUPCON:
      {
        DcrTensor *z = Z2 (a, b), *y = z ? zeros (pool, DCR_I32, 1, &a, error) : NULL;
        DcrTensor *w = y ? Z2 (a, a + 1) : NULL, *l = w ? Z1 (1) : NULL, *dz = l ? Z2 (a, b) : NULL;
        *flop = 6.0 * a * a * b;
        return dz && dcr_op_supcon (seq, z, y, 0.07f, 0, 1, w, l, dz, error);
      }
    case CASE_INFONCE:
      {
        DcrTensor *q = Z2 (a, b), *k = q ? Z2 (a, b) : NULL, *queue = k ? Z2 (c, b) : NULL;
        DcrTensor *w = queue ? Z2 (a, c + 2) : NULL, *l = w ? Z1 (1) : NULL, *dq = l ? Z2 (a, b) : NULL;
        *flop = 4.0 * a * (c + 1) * b;
        return dq && dcr_op_infonce (seq, q, k, queue, 0.07f, 1, w, l, dq, NULL, error);
      }
    case CASE_ADAMW:
      {
        DcrTensor *h = Z1 (DCR_OPTIM_HYPER_LEN), *pr = h ? Z1 (a) : NULL, *g = pr ? Z1 (a) : NULL;
        DcrTensor *m = g ? Z1 (a) : NULL, *v = m ? Z1 (a) : NULL;
        *bytes = 28.0 * a;
        return v && dcr_op_adamw (seq, h, pr, g, m, v, NULL, error);
      }
    }
  return FALSE;
}

/* ---- convolution backward at the forensic CNN's shapes (dcr-cnn.h): batch
 * 64 of 64x64 crops, 60x60 after the 5x5 box filter, valid convolutions */

typedef struct {
  gint64 n, h, cin, cout;
  int k, stride;
  gboolean dx, dw; /* dw comes with db */
  const char *what;
  gboolean quick;
} ConvGradCase;

static const ConvGradCase conv_grad_cases[] = {
  { 2, 16, 8, 8, 3, 1, TRUE, TRUE, "small", TRUE },
  { 64, 60, 3, 8, 3, 2, FALSE, TRUE, "cnn layer 1 3x3/2 dw+db", FALSE },
  { 64, 29, 8, 16, 3, 2, TRUE, FALSE, "cnn layer 2 3x3/2 dx", FALSE },
  { 64, 29, 8, 16, 3, 2, FALSE, TRUE, "cnn layer 2 3x3/2 dw+db", FALSE },
  { 64, 14, 16, 16, 3, 1, TRUE, FALSE, "cnn layer 3 3x3 dx", FALSE },
  { 64, 14, 16, 16, 3, 1, FALSE, TRUE, "cnn layer 3 3x3 dw+db", FALSE },
  { 64, 12, 16, 1, 1, 1, TRUE, TRUE, "cnn layer 4 1x1 dx+dw+db", FALSE },
};

static gboolean
record_conv_grad (DcrSeq *seq, Pool *pool, const ConvGradCase *cs, double *flop, GError **error)
{
  gint64 ho = dcr_conv2d_out_size (cs->h, cs->k, cs->stride, 0, 0, 1);
  gint64 xs[] = { cs->n, cs->h, cs->h, cs->cin }, ws[] = { cs->cout, cs->k, cs->k, cs->cin };
  gint64 ys[] = { cs->n, ho, ho, cs->cout };
  DcrTensor *x = zeros (pool, DCR_F32, 4, xs, error), *w = x ? zeros (pool, DCR_F32, 4, ws, error) : NULL;
  DcrTensor *dy = w ? zeros (pool, DCR_F32, 4, ys, error) : NULL;
  DcrTensor *dx = dy && cs->dx ? zeros (pool, DCR_F32, 4, xs, error) : NULL;
  DcrTensor *dw = dy && cs->dw ? zeros (pool, DCR_F32, 4, ws, error) : NULL;
  DcrTensor *db = dy && cs->dw ? Z1 (cs->cout) : NULL;
  if (!dy || (cs->dx && !dx) || (cs->dw && (!dw || !db)))
    return FALSE;
  *flop = 2.0 * cs->n * ho * ho * cs->cout * cs->k * cs->k * cs->cin * ((cs->dx ? 1 : 0) + (cs->dw ? 1 : 0));
  DcrConv2dParams p = { .stride_h = cs->stride, .stride_w = cs->stride };
  return dcr_op_conv2d_backward (seq, x, w, dy, dx, dw, db, &p, DCR_GRAD_OVERWRITE, error);
}

static gboolean
bench_conv_grad (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error)
{
  if (!dcr_bench_wanted (opts, "grad.conv2d"))
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (conv_grad_cases); i++)
    {
      const ConvGradCase *cs = &conv_grad_cases[i];
      if (opts->quick && !cs->quick)
        continue;
      g_autoptr (GPtrArray) tensors = g_ptr_array_new_with_free_func ((GDestroyNotify) dcr_tensor_free);
      Pool pool = { ctx, tensors };
      g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
      if (!seq)
        return FALSE;
      dcr_seq_enable_timing (seq);
      double flop = 0, min_ms, median_ms;
      if (!record_conv_grad (seq, &pool, cs, &flop, error)
          || !dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
        {
          g_prefix_error (error, "grad.conv2d (%s): ", cs->what);
          return FALSE;
        }
      g_autofree char *shape = g_strdup_printf ("N=%" G_GINT64_FORMAT " %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                                                " %" G_GINT64_FORMAT "->%" G_GINT64_FORMAT " k=%d s=%d (%s)",
                                                cs->n, cs->h, cs->h, cs->cin, cs->cout, cs->k, cs->stride,
                                                cs->what);
      dcr_bench_add (results, "grad.conv2d", shape, DCR_F32, flop, 0, min_ms, median_ms, opts->repeats);
    }
  return TRUE;
}

gboolean
dcr_bench_grad (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error)
{
  if (!bench_conv_grad (ctx, opts, results, error))
    return FALSE;
  gboolean cpu = dcr_context_device (ctx)->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const GradCase *cs = &cases[i];
      if (!dcr_bench_wanted (opts, cs->op) || (opts->quick && !cs->quick) || (cpu && cs->gpu_only))
        continue;
      g_autoptr (GPtrArray) tensors = g_ptr_array_new_with_free_func ((GDestroyNotify) dcr_tensor_free);
      Pool pool = { ctx, tensors };
      g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
      if (!seq)
        return FALSE;
      dcr_seq_enable_timing (seq);
      double flop = 0, bytes = 0, min_ms, median_ms;
      if (!record (seq, &pool, cs, &flop, &bytes, error)
          || !dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
        {
          g_prefix_error (error, "%s (%s): ", cs->op, cs->what);
          return FALSE;
        }
      g_autofree char *shape = shape_string (cs);
      dcr_bench_add (results, cs->op, shape, DCR_F32, flop, bytes, min_ms, median_ms, opts->repeats);
    }
  return TRUE;
}
