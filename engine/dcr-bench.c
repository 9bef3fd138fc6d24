/* dcr-bench.c — timing and bookkeeping for `dcr bench ops`; the families'
 * own cases live in dcr-bench-<family>.c next to their ops. */
#include "dcr-bench.h"

#include <string.h>

/* One line per op family. */
const DcrBenchFamily dcr_bench_families[] = {
  dcr_bench_attn,
  dcr_bench_gemm,
  dcr_bench_grad,
  dcr_bench_conv,
  dcr_bench_dcr,
  dcr_bench_bank,
  dcr_bench_forensic,
  NULL,
};

static void
result_clear (gpointer p)
{
  DcrBenchResult *r = p;
  g_free (r->op);
  g_free (r->shape);
}

GArray *
dcr_bench_results_new (void)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (DcrBenchResult));
  g_array_set_clear_func (a, result_clear);
  return a;
}

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

gboolean
dcr_bench_time (DcrSeq *seq, int repeats, double *min_ms, double *median_ms, GError **error)
{
  repeats = MAX (repeats, 1);
  if (!dcr_seq_submit (seq, TRUE, error))
    return FALSE;
  g_autofree double *t = g_new (double, repeats);
  for (int i = 0; i < repeats; i++)
    {
      gint64 t0 = g_get_monotonic_time ();
      if (!dcr_seq_submit (seq, TRUE, error))
        return FALSE;
      double wall = (g_get_monotonic_time () - t0) / 1000.0;
      guint n = 0;
      const double *ms = dcr_seq_timings_ms (seq, &n);
      double gpu = 0;
      for (guint k = 0; k < n; k++)
        gpu += ms[k];
      t[i] = n ? gpu : wall;
    }
  qsort (t, repeats, sizeof (double), cmp_double);
  *min_ms = t[0];
  *median_ms = t[repeats / 2];
  return TRUE;
}

void
dcr_bench_add (GArray *results, const char *op, const char *shape, DcrDtype dtype,
               double flop, double bytes, double min_ms, double median_ms, int repeats)
{
  DcrBenchResult r = {
    g_strdup (op), g_strdup (shape), dtype, flop, bytes, min_ms, median_ms, repeats,
  };
  g_array_append_val (results, r);
}

gboolean
dcr_bench_wanted (const DcrBenchOptions *opts, const char *op)
{
  return !opts->filter || strstr (op, opts->filter) != NULL;
}
