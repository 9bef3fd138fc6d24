/* dcr-bench-dcr.c — `dcr bench ops` cases for the DCR detector: exact
 * cosine retrieval end to end (normalise, GEMM per chunk, top-k, merge)
 * over banks of the default backbone's width (216) and ViT-L's (1024), up
 * to a million prototypes split in chunks (on GPUs up to 8 queries scored
 * by the GEMV that reads the bank once, more by the GEMM;
 * $DCR_RETRIEVAL_GEMV=0|1 picks one for all); the heads' forward pass in
 * single mode; and one recorded training step (forward, losses, backward,
 * AdamW). Data are pseudo-random. */
#include "dcr-bench.h"
#include "dcr-half.h"
#include "dcr-model.h"
#include "dcr-retrieval.h"
#include "dcr-train.h"

#include <math.h>

typedef enum { OP_RETRIEVAL, OP_HEADS, OP_TRAIN_STEP } DcrOp;

static const char *op_names[] = { "retrieval", "dcr_heads", "dcr_train_step" };

typedef struct {
  DcrOp op;
  gint64 n;       /* bank rows (retrieval) */
  guint d, b, k;  /* width, batch, prototypes */
  guint hidden;
  const char *what;
  gboolean quick;
  guint moco_queue; /* training step with MoCo's InfoNCE against a queue this long (0: off) */
  guint pinned;     /* of which pinned prototypes */
} DcrCase;

static const DcrCase cases[] = {
  { OP_RETRIEVAL, 5000, 216, 4, 8, 0, "small", TRUE },
  { OP_HEADS, 0, 216, 4, 8, 64, "small", TRUE },
  { OP_TRAIN_STEP, 0, 216, 8, 4, 64, "small", TRUE },
  /* issue 9's targets: exact top-5 of one query over 10k / 100k / 1M */
  { OP_RETRIEVAL, 10000, 216, 1, 5, 0, "1 query top-5, mobilenet bank 10k", FALSE },
  { OP_RETRIEVAL, 100000, 216, 1, 5, 0, "1 query top-5, mobilenet bank 100k", FALSE },
  { OP_RETRIEVAL, 1000000, 216, 1, 5, 0, "1 query top-5, mobilenet bank 1M", FALSE },
  { OP_RETRIEVAL, 100000, 216, 1, 8, 0, "1 query, mobilenet bank 100k", FALSE },
  { OP_RETRIEVAL, 100000, 216, 64, 8, 0, "64 queries, mobilenet bank 100k", FALSE },
  { OP_RETRIEVAL, 1000000, 216, 1, 32, 0, "1 query, mobilenet bank 1M, k=32", FALSE },
  { OP_RETRIEVAL, 100000, 1024, 64, 8, 0, "64 queries, vit-l bank 100k", FALSE },
  /* issue 12: exact top-5 over a ViT-L/14 bank, one query (≤ 0.5 ms on an H200) and 64;
   * 1M × 1024 is skipped where it exceeds half the device's memory (lavapipe) */
  { OP_RETRIEVAL, 100000, 1024, 1, 5, 0, "1 query top-5, vit-l bank 100k", FALSE },
  { OP_RETRIEVAL, 1000000, 1024, 1, 5, 0, "1 query top-5, vit-l bank 1M", FALSE },
  { OP_RETRIEVAL, 1000000, 1024, 64, 5, 0, "64 queries top-5, vit-l bank 1M", FALSE },
  { OP_HEADS, 0, 216, 64, 8, 512, "B=64 k=8 H=512 (mobilenet)", FALSE },
  { OP_HEADS, 0, 2048, 64, 8, 512, "B=64 k=8 H=512 (resnet-50)", FALSE },
  { OP_TRAIN_STEP, 0, 216, 32, 8, 512, "B=32 k=8 H=512 (mobilenet)", FALSE },
  { OP_TRAIN_STEP, 0, 216, 8, 4, 64, "small, MoCo queue 64 + 8 pinned", TRUE, 64, 8 },
  { OP_TRAIN_STEP, 0, 216, 32, 8, 512, "mobilenet, MoCo queue 1024", FALSE, 1024, 0 },
  { OP_TRAIN_STEP, 0, 216, 64, 8, 256, "the default model's widths, MoCo queue 4096 + 256 pinned",
    FALSE, 4096, 256 },
};

static void
fill (float *x, gsize n, guint32 s)
{
  for (gsize i = 0; i < n; i++)
    {
      s ^= s << 13;
      s ^= s >> 17;
      s ^= s << 5;
      x[i] = (float) ((s >> 8) * (2.0 / 16777216.0) - 1.0);
    }
}

static gboolean
upload (DcrTensor *t, const float *src, GError **error)
{
  gsize n = (gsize) dcr_tensor_numel (t);
  if (t->dtype != DCR_F16)
    return dcr_tensor_upload (t, src, error);
  g_autofree guint16 *h = g_new (guint16, n);
  dcr_half_from_floats (h, src, n);
  return dcr_tensor_upload (t, h, error);
}

static DcrModel *
bench_model (DcrContext *ctx, const DcrCase *cs, GError **error)
{
  DcrModelConfig c = { .backbone_id = "bench@0", .dim = cs->d, .k = cs->k, .hidden = cs->hidden,
                       .head_hidden = cs->hidden, .gate = TRUE };
  return dcr_model_new (ctx, &c, 1, error);
}

static gboolean
bench_case (DcrContext *ctx, const DcrBenchOptions *opts, const DcrCase *cs, DcrDtype dt, GArray *results,
            GError **error)
{
  double flop = 0, bytes = 0, min_ms = 0, median_ms = 0;
  gint64 fs[] = { cs->b, cs->d };
  g_autofree float *q = g_new (float, (gsize) cs->b * cs->d);
  fill (q, (gsize) cs->b * cs->d, 7);
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
  if (!seq)
    return FALSE;
  dcr_seq_enable_timing (seq);
  if (cs->op == OP_RETRIEVAL || cs->op == OP_HEADS)
    {
      gint64 n = cs->op == OP_RETRIEVAL ? cs->n : 1000;
      g_autofree float *bank = g_new (float, (gsize) n * cs->d);
      fill (bank, (gsize) n * cs->d, 3);
      g_autoptr (DcrRetrieval) r = dcr_retrieval_new (ctx, cs->d, dt, cs->b, error);
      g_autoptr (DcrTensor) tq = r ? dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dt, 2, fs, error) : NULL;
      if (!tq || !upload (tq, q, error) || !dcr_retrieval_set_features (r, bank, NULL, (gsize) n, error))
        return FALSE;
      g_clear_pointer (&bank, g_free);
      g_autoptr (DcrRetrievalRun) rr = dcr_retrieval_run_new (r, cs->b, cs->k, error);
      if (!rr)
        return FALSE;
      g_autoptr (DcrModel) m = NULL;
      g_autoptr (DcrModelRun) run = NULL;
      if (cs->op == OP_RETRIEVAL)
        {
          if (!dcr_retrieval_run_record (rr, seq, tq, error))
            return FALSE;
          flop = 2.0 * cs->b * n * cs->d;
          bytes = (double) n * cs->d * dcr_dtype_size (dt);
        }
      else
        {
          if (!(m = bench_model (ctx, cs, error)) ||
              !(run = dcr_model_run_new (m, dt, cs->b, cs->k, FALSE, error)) ||
              !dcr_model_run_record_single (run, seq, rr, tq, error))
            return FALSE;
          /* the heads' GEMMs: Q, K, V, out, gate (2), classifier, residual head */
          double b = cs->b, d = cs->d, h = cs->hidden, k = cs->k;
          flop = 2.0 * b * (d * h * (1 + 2 * k) + h * d + 2 * d * d + 2 * d + d * h + h);
        }
      if (!dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
        return FALSE;
    }
  else
    {
      g_autoptr (DcrModel) m = bench_model (ctx, cs, error);
      DcrTrainLoss loss = { .moco = cs->moco_queue > 0, .moco_queue = cs->moco_queue, .moco_pinned = cs->pinned };
      g_autoptr (DcrTrainStep) step = m ? dcr_train_step_new (m, cs->b, cs->k, &loss, TRUE, error) : NULL;
      if (!step)
        return FALSE;
      if (cs->pinned)
        {
          g_autofree float *pf = g_new (float, (gsize) cs->pinned * cs->d);
          g_autofree float *pr = g_new (float, (gsize) cs->pinned * cs->k * cs->d);
          fill (pf, (gsize) cs->pinned * cs->d, 11);
          fill (pr, (gsize) cs->pinned * cs->k * cs->d, 13);
          if (!dcr_train_step_set_pinned (step, pf, pr, cs->pinned, error))
            return FALSE;
        }
      g_autofree float *r = g_new (float, (gsize) cs->b * cs->k * cs->d);
      g_autofree gint32 *labels = g_new (gint32, cs->b);
      fill (r, (gsize) cs->b * cs->k * cs->d, 9);
      for (guint i = 0; i < cs->b; i++)
        labels[i] = i % 2;
      g_autoptr (GRand) rng = g_rand_new_with_seed (1);
      if (!dcr_train_step_set_batch (step, q, r, labels, NULL, rng, error))
        return FALSE;
      int reps = MAX (opts->repeats, 1);
      g_autofree double *t = g_new (double, reps);
      double l[4];
      for (int i = -1; i < reps; i++)
        {
          gint64 t0 = g_get_monotonic_time ();
          if (!dcr_train_step_run (step, i + 2, 1e-4, l, error))
            return FALSE;
          if (i >= 0)
            t[i] = (g_get_monotonic_time () - t0) / 1e3;
        }
      min_ms = t[0];
      for (int i = 1; i < reps; i++)
        min_ms = MIN (min_ms, t[i]);
      for (int i = 1; i < reps; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--)
          {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
          }
      median_ms = t[reps / 2];
    }
  g_autofree char *shape = cs->op == OP_RETRIEVAL
    ? g_strdup_printf ("%" G_GINT64_FORMAT "x%u B=%u k=%u (%s)", cs->n, cs->d, cs->b, cs->k, cs->what)
    : g_strdup_printf ("D=%u B=%u k=%u H=%u (%s)", cs->d, cs->b, cs->k, cs->hidden, cs->what);
  dcr_bench_add (results, op_names[cs->op], shape, dt, flop, bytes, min_ms, median_ms, opts->repeats);
  return TRUE;
}

gboolean
dcr_bench_dcr (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error)
{
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const DcrCase *cs = &cases[i];
      /* --filter matches the op's name or the case's description ("vit-l bank 1M") */
      if (cs->quick != opts->quick ||
          !(dcr_bench_wanted (opts, op_names[cs->op]) || (opts->filter && strstr (cs->what, opts->filter))))
        continue;
      /* training is f32 only */
      for (int f16 = 0; f16 <= (dev->storage_16bit && cs->op != OP_TRAIN_STEP ? 1 : 0); f16++)
        {
          if (cs->op == OP_RETRIEVAL && (double) cs->n * cs->d * (f16 ? 2 : 4) > dev->device_local_bytes / 2.0)
            continue;
          if (!bench_case (ctx, opts, cs, f16 ? DCR_F16 : DCR_F32, results, error))
            return FALSE;
        }
    }
  return TRUE;
}
