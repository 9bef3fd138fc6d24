/* dcr-bench-attn.c — `dcr bench ops` cases for the normalisation, softmax,
 * attention and reduction families: ViT-L/14 layer norm, attention-score
 * softmax and fused attention (B = 1 and 8), the DCR difference attention,
 * L2 normalisation of queries and of a bank chunk, and top-k retrieval
 * over 100k-prototype banks. Top-k inputs are pseudo-random (its speed
 * depends on how often a value enters a lane's list); the others are zeros. */
#include "dcr-bench.h"
#include "dcr-op-attention.h"
#include "dcr-op-norm.h"
#include "dcr-op-reduce.h"
#include "dcr-op-softmax.h"

typedef enum { OP_LAYERNORM, OP_SOFTMAX, OP_ATTENTION, OP_TOPK, OP_L2NORM } AttnOp;

static const char *op_names[] = { "layernorm", "softmax", "attention", "topk", "l2norm" };

typedef struct {
  AttnOp op;
  gint64 b, lq, lk, heads, d; /* rows = b·lq for the row ops, width d */
  guint k;
  gboolean weights;
  const char *what;
  gboolean quick;
} AttnCase;

static const AttnCase cases[] = {
  { OP_LAYERNORM, 1, 17, 0, 0, 64, 0, FALSE, "small", TRUE },
  { OP_SOFTMAX, 1, 17, 0, 0, 65, 0, FALSE, "small", TRUE },
  { OP_ATTENTION, 1, 17, 17, 2, 64, 0, FALSE, "small fused qkv", TRUE },
  { OP_ATTENTION, 4, 1, 8, 1, 512, 0, TRUE, "small dcr head", TRUE },
  { OP_TOPK, 2, 1, 0, 0, 5000, 5, FALSE, "small", TRUE },
  { OP_L2NORM, 1, 64, 0, 0, 1024, 0, FALSE, "small", TRUE },
  { OP_LAYERNORM, 1, 257, 0, 0, 1024, 0, FALSE, "vit-l/14 ln B=1", FALSE },
  { OP_LAYERNORM, 8, 257, 0, 0, 1024, 0, FALSE, "vit-l/14 ln B=8", FALSE },
  { OP_SOFTMAX, 1, 16 * 257, 0, 0, 257, 0, FALSE, "vit-l/14 scores B=1 H=16", FALSE },
  { OP_SOFTMAX, 8, 16 * 257, 0, 0, 257, 0, FALSE, "vit-l/14 scores B=8 H=16", FALSE },
  { OP_ATTENTION, 1, 257, 257, 16, 64, 0, FALSE, "vit-l/14 B=1 fused qkv", FALSE },
  { OP_ATTENTION, 8, 257, 257, 16, 64, 0, FALSE, "vit-l/14 B=8 fused qkv", FALSE },
  { OP_ATTENTION, 64, 1, 8, 1, 512, 0, FALSE, "dcr head B=64 Lk=8", FALSE },
  { OP_ATTENTION, 64, 1, 8, 1, 512, 0, TRUE, "dcr head B=64 Lk=8 +weights", FALSE },
  { OP_TOPK, 1, 1, 0, 0, 100000, 5, FALSE, "1 query x 100k bank", FALSE },
  { OP_TOPK, 64, 1, 0, 0, 100000, 5, FALSE, "64 queries x 100k bank", FALSE },
  { OP_TOPK, 1, 1, 0, 0, 1000000, 32, FALSE, "1 query x 1M bank k=32", FALSE },
  { OP_L2NORM, 1, 64, 0, 0, 1024, 0, FALSE, "64 queries D=1024", FALSE },
  { OP_L2NORM, 1, 16384, 0, 0, 1024, 0, FALSE, "bank chunk 16384 x 1024", FALSE },
};

static DcrTensor *
zeros (DcrContext *ctx, DcrDtype dt, int ndim, const gint64 *shape, GError **error)
{
  DcrTensor *t = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dt, ndim, shape, error);
  if (t && !dcr_buffer_fill_zero (t->buf, error))
    g_clear_pointer (&t, dcr_tensor_free);
  return t;
}

/* Random-looking scores in [−1, 1): f16 bit patterns or floats. */
static gboolean
fill_scores (DcrTensor *t, GError **error)
{
  gint64 n = dcr_tensor_numel (t);
  gsize es = dcr_dtype_size (t->dtype);
  g_autofree guint8 *data = g_malloc (n * es);
  guint32 s = 12345;
  for (gint64 i = 0; i < n; i++)
    {
      s ^= s << 13;
      s ^= s >> 17;
      s ^= s << 5;
      if (es == 2)
        ((guint16 *) data)[i] = (guint16) (0x3800 | (s & 0x3ff) | ((s >> 16) & 1 ? 0x8000 : 0)); /* ±[0.5, 1) */
      else
        ((float *) data)[i] = (float) ((s >> 8) * (2.0 / 16777216.0) - 1.0);
    }
  return dcr_tensor_upload (t, data, error);
}

static gboolean
bench_case (DcrContext *ctx, const DcrBenchOptions *opts, const AttnCase *cs, DcrDtype dt, GArray *results,
            GError **error)
{
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
  if (!seq)
    return FALSE;
  dcr_seq_enable_timing (seq);
  gsize es = dcr_dtype_size (dt);
  gint64 rows = cs->b * cs->lq;
  double flop = 0, bytes = 0;
  g_autoptr (DcrTensor) x = NULL, y = NULL, g = NULL, bt = NULL, q = NULL, out = NULL, w = NULL, idx = NULL;
  g_autoptr (DcrBuffer) scratch = NULL;
  gboolean ok = FALSE;
  gint64 xs[] = { rows, cs->d }, ds[] = { cs->d };
  switch (cs->op)
    {
    case OP_LAYERNORM:
    case OP_L2NORM:
    case OP_SOFTMAX:
      if (!(x = zeros (ctx, dt, 2, xs, error)) || !(y = zeros (ctx, dt, 2, xs, error)))
        return FALSE;
      bytes = 2.0 * rows * cs->d * es;
      if (cs->op == OP_LAYERNORM)
        {
          if (!(g = zeros (ctx, dt, 1, ds, error)) || !(bt = zeros (ctx, dt, 1, ds, error)))
            return FALSE;
          ok = dcr_op_layer_norm (seq, x, g, bt, y, 1e-5f, error);
        }
      else if (cs->op == OP_L2NORM)
        ok = dcr_op_l2_normalize (seq, x, y, 1e-12f, error);
      else
        ok = dcr_op_softmax (seq, x, NULL, y, 0.125f, error);
      break;
    case OP_ATTENTION:
      {
        gint64 hd = cs->heads * cs->d;
        gint64 os[] = { cs->b, cs->lq, hd }, ws[] = { cs->b, cs->heads, cs->lq, cs->lk };
        DcrAttentionParams p = { .heads = (guint) cs->heads };
        if (!(out = zeros (ctx, dt, 3, os, error)) || (cs->weights && !(w = zeros (ctx, dt, 4, ws, error))))
          return FALSE;
        p.weights = w;
        flop = 4.0 * cs->b * cs->heads * cs->lq * cs->lk * cs->d;
        if (cs->lq == cs->lk && !cs->weights)
          {
            gint64 qs[] = { cs->b, cs->lq, 3 * hd };
            if (!(q = zeros (ctx, dt, 3, qs, error)))
              return FALSE;
            ok = dcr_op_attention_qkv (seq, q, out, &p, error);
          }
        else
          {
            gint64 ks[] = { cs->b, cs->lk, hd };
            if (!(q = zeros (ctx, dt, 3, os, error)) || !(x = zeros (ctx, dt, 3, ks, error)) ||
                !(y = zeros (ctx, dt, 3, ks, error)))
              return FALSE;
            ok = dcr_op_attention (seq, q, x, y, out, &p, error);
          }
        break;
      }
    case OP_TOPK:
      {
        gint64 is[] = { rows, cs->k };
        if (!(x = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dt, 2, xs, error)) || !fill_scores (x, error) ||
            !(idx = zeros (ctx, DCR_U32, 2, is, error)) || !(y = zeros (ctx, dt, 2, is, error)))
          return FALSE;
        gsize ss = dcr_op_topk_scratch_size (x, cs->k);
        if (ss && !(scratch = dcr_buffer_new (ctx, DCR_POOL_ACTIVATIONS, ss, error)))
          return FALSE;
        DcrTopkParams p = { .k = cs->k, .scratch = scratch };
        bytes = (double) rows * cs->d * es;
        ok = dcr_op_topk (seq, x, NULL, y, idx, &p, error);
        break;
      }
    }
  if (!ok)
    return FALSE;
  double min_ms, median_ms;
  if (!dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
    return FALSE;
  g_autofree char *shape = cs->op == OP_ATTENTION
    ? g_strdup_printf ("B=%" G_GINT64_FORMAT " Lq=%" G_GINT64_FORMAT " Lk=%" G_GINT64_FORMAT " H=%" G_GINT64_FORMAT
                       " d=%" G_GINT64_FORMAT " (%s)", cs->b, cs->lq, cs->lk, cs->heads, cs->d, cs->what)
    : g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "%s%.0u (%s)", rows, cs->d,
                       cs->k ? " k=" : "", cs->k, cs->what);
  dcr_bench_add (results, op_names[cs->op], shape, dt, flop, bytes, min_ms, median_ms, opts->repeats);
  return TRUE;
}

gboolean
dcr_bench_attn (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error)
{
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const AttnCase *cs = &cases[i];
      if (cs->quick != opts->quick || !dcr_bench_wanted (opts, op_names[cs->op]))
        continue;
      for (int f16 = 0; f16 <= (dev->storage_16bit ? 1 : 0); f16++)
        if (!bench_case (ctx, opts, cs, f16 ? DCR_F16 : DCR_F32, results, error))
          return FALSE;
    }
  return TRUE;
}
