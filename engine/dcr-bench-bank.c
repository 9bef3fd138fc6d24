/* dcr-bench-bank.c — `dcr bench ops` cases for bank curation over synthetic
 * banks of the default backbone's width (216): the near-duplicate search
 * (every prototype a query against all, through retrieval's GEMM + top-k,
 * split in chunks) and greedy k-center pruning (one GEMM per pick). Each
 * run is the whole call, wall-clock; the 100k cases run once. */
#include "dcr-bench.h"
#include "dcr-bank-curate.h"

typedef enum { OP_DEDUP, OP_KCENTER } BankOp;

static const char *op_names[] = { "bank_dedup", "bank_kcenter" };

typedef struct {
  BankOp op;
  gsize n;
  guint d;
  gsize keep;     /* k-center */
  DcrDtype dtype;
  const char *what;
  gboolean quick;
} BankCase;

static const BankCase cases[] = {
  { OP_DEDUP, 2000, 216, 0, DCR_F32, "small", TRUE },
  { OP_KCENTER, 2000, 216, 50, DCR_F32, "small", TRUE },
  { OP_DEDUP, 10000, 216, 0, DCR_F32, "mobilenet bank 10k", FALSE },
  { OP_DEDUP, 10000, 216, 0, DCR_F16, "mobilenet bank 10k", FALSE },
  { OP_DEDUP, 100000, 216, 0, DCR_F32, "mobilenet bank 100k", FALSE },
  { OP_KCENTER, 100000, 216, 256, DCR_F32, "mobilenet bank 100k → 256", FALSE },
};

/* Pseudo-random rows, every 100th a slightly perturbed copy of the row
 * before it, so the search has pairs to report. */
static float *
synthetic_bank (gsize n, guint d)
{
  float *x = g_new (float, n * d);
  guint32 s = 17;
  for (gsize i = 0; i < n * d; i++)
    {
      s ^= s << 13;
      s ^= s >> 17;
      s ^= s << 5;
      x[i] = (float) ((s >> 8) * (2.0 / 16777216.0) - 1.0);
    }
  for (gsize i = 1; i < n; i += 100)
    for (guint c = 0; c < d; c++)
      x[i * d + c] = x[(i - 1) * d + c] * (1.0f + 0.01f * ((c % 3) - 1.0f));
  return x;
}

static gboolean
bench_case (DcrContext *ctx, const DcrBenchOptions *opts, const BankCase *cs, GArray *results, GError **error)
{
  g_autofree float *x = synthetic_bank (cs->n, cs->d);
  int reps = cs->n >= 100000 ? 1 : MIN (MAX (opts->repeats, 1), 3);
  DcrCurateOptions co = { .dtype = cs->dtype };
  g_autofree double *t = g_new (double, reps);
  guint found = 0;
  float radius = 0;
  for (int r = 0; r < reps; r++)
    {
      gint64 t0 = g_get_monotonic_time ();
      if (cs->op == OP_DEDUP)
        {
          g_autoptr (GArray) pairs = NULL;
          if (!dcr_find_duplicates (ctx, x, NULL, cs->n, cs->d, DCR_CURATE_DEFAULT_THRESHOLD, &co, &pairs, error))
            return FALSE;
          found = pairs->len;
        }
      else
        {
          g_autofree guint32 *order = g_new (guint32, cs->n);
          gsize kept = 0;
          if (!dcr_kcenter (ctx, x, cs->n, cs->d, NULL, cs->keep, &co, order, &kept, &radius, error))
            return FALSE;
          found = (guint) kept;
        }
      t[r] = (g_get_monotonic_time () - t0) / 1e3;
    }
  double min_ms = t[0];
  for (int r = 1; r < reps; r++)
    min_ms = MIN (min_ms, t[r]);
  for (int i = 1; i < reps; i++) /* insertion sort for the median */
    for (int j = i; j > 0 && t[j - 1] > t[j]; j--)
      {
        double v = t[j];
        t[j] = t[j - 1];
        t[j - 1] = v;
      }
  double n = (double) cs->n;
  double flop = cs->op == OP_DEDUP ? 2.0 * n * n * cs->d : 2.0 * (double) cs->keep * n * cs->d;
  g_autofree char *shape = cs->op == OP_DEDUP
    ? g_strdup_printf ("%" G_GSIZE_FORMAT "x%u τ=%.2f, %u pairs (%s)", cs->n, cs->d, DCR_CURATE_DEFAULT_THRESHOLD,
                       found, cs->what)
    : g_strdup_printf ("%" G_GSIZE_FORMAT "x%u keep %" G_GSIZE_FORMAT ", radius %.3f (%s)", cs->n, cs->d, cs->keep,
                       radius, cs->what);
  dcr_bench_add (results, op_names[cs->op], shape, cs->dtype, flop, 0, min_ms, t[reps / 2], reps);
  return TRUE;
}

gboolean
dcr_bench_bank (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error)
{
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const BankCase *cs = &cases[i];
      if (cs->quick != opts->quick || !dcr_bench_wanted (opts, op_names[cs->op]))
        continue;
      if (cs->dtype == DCR_F16 && !dev->storage_16bit)
        continue;
      if (!bench_case (ctx, opts, cs, results, error))
        return FALSE;
    }
  return TRUE;
}
