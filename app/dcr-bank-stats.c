/* dcr-bank-stats.c — provenance summary, nearest neighbours inside the bank
 * (plain CPU dot products: one query against the bank is a few million
 * multiply-adds, less than starting the GPU) and the 2-D PCA projection the
 * statistics dialog plots. */
#include "dcr-bank-stats.h"

#include <math.h>
#include <string.h>

char *
dcr_bank_source_folder (const char *source)
{
  if (!source || !*source)
    return g_strdup ("(unknown)");
  return g_path_get_dirname (source);
}

typedef struct {
  const char *name;
  guint count;
} SourceCount;

static int
cmp_source_count (gconstpointer a, gconstpointer b)
{
  const SourceCount *x = a, *y = b;
  if (x->count != y->count)
    return x->count > y->count ? -1 : 1;
  return strcmp (x->name, y->name);
}

DcrBankSummary *
dcr_bank_summarize (const DcrPrototype *const *protos, guint n)
{
  DcrBankSummary *s = g_new0 (DcrBankSummary, 1);
  g_autoptr (GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++)
    {
      const DcrPrototype *p = protos[i];
      s->total++;
      s->enabled += p->enabled != 0;
      s->pinned += p->pinned != 0;
      if (p->added && (!s->first_added || g_date_time_compare (p->added, s->first_added) < 0))
        {
          g_clear_pointer (&s->first_added, g_date_time_unref);
          s->first_added = g_date_time_ref (p->added);
        }
      if (p->added && (!s->last_added || g_date_time_compare (p->added, s->last_added) > 0))
        {
          g_clear_pointer (&s->last_added, g_date_time_unref);
          s->last_added = g_date_time_ref (p->added);
        }
      char *folder = dcr_bank_source_folder (p->source);
      gpointer old = g_hash_table_lookup (counts, folder);
      g_hash_table_replace (counts, folder, GUINT_TO_POINTER (GPOINTER_TO_UINT (old) + 1));
    }
  s->disabled = s->total - s->enabled;
  g_autoptr (GArray) sorted = g_array_sized_new (FALSE, FALSE, sizeof (SourceCount), g_hash_table_size (counts));
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, counts);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      SourceCount c = { key, GPOINTER_TO_UINT (value) };
      g_array_append_val (sorted, c);
    }
  g_array_sort (sorted, cmp_source_count);
  s->sources = g_ptr_array_new_full (sorted->len, g_free);
  s->source_counts = g_array_sized_new (FALSE, FALSE, sizeof (guint), sorted->len);
  for (guint i = 0; i < sorted->len; i++)
    {
      SourceCount *c = &g_array_index (sorted, SourceCount, i);
      g_ptr_array_add (s->sources, g_strdup (c->name));
      g_array_append_val (s->source_counts, c->count);
    }
  return s;
}

void
dcr_bank_summary_free (DcrBankSummary *s)
{
  if (!s)
    return;
  g_clear_pointer (&s->sources, g_ptr_array_unref);
  g_clear_pointer (&s->source_counts, g_array_unref);
  g_clear_pointer (&s->first_added, g_date_time_unref);
  g_clear_pointer (&s->last_added, g_date_time_unref);
  g_free (s);
}

/* ---- nearest neighbours ------------------------------------------------- */

guint
dcr_bank_nearest (const float *features, const gint64 *ids, gsize n, guint dim, gsize row, guint k,
                  DcrBankNeighbour *out)
{
  g_return_val_if_fail (row < n || n == 0, 0);
  if (n < 2 || k == 0)
    return 0;
  const float *q = features + row * dim;
  double qn = 0;
  for (guint j = 0; j < dim; j++)
    qn += (double) q[j] * q[j];
  if (qn <= 0)
    return 0;
  qn = sqrt (qn);
  guint have = 0;
  for (gsize i = 0; i < n; i++)
    {
      if (i == row)
        continue;
      const float *r = features + i * dim;
      float dot = 0, rn = 0;
      for (guint j = 0; j < dim; j++)
        {
          dot += q[j] * r[j];
          rn += r[j] * r[j];
        }
      if (rn <= 0)
        continue;
      float sim = (float) (dot / (qn * sqrt (rn)));
      if (have == k && !(sim > out[k - 1].similarity))
        continue; /* ties keep the lower position already in */
      guint pos = have < k ? have++ : k - 1;
      while (pos > 0 && out[pos - 1].similarity < sim)
        {
          out[pos] = out[pos - 1];
          pos--;
        }
      out[pos] = (DcrBankNeighbour) { ids ? ids[i] : (gint64) i, sim };
    }
  return have;
}

gsize
dcr_sample_rows (gsize n, gsize max, gsize *rows)
{
  gsize m = MIN (n, max);
  for (gsize i = 0; i < m; i++)
    rows[i] = m == n ? i : (gsize) ((double) i * n / m);
  return m;
}

/* ---- PCA ---------------------------------------------------------------- */

/* Block size of the subspace iteration: the top two converge at the rate
 * λ_{P+1}/λ_2 rather than λ_3/λ_2, which matters for banks whose leading
 * variances are close (and costs P/2 times more per step). */
#define P 6
#define MAX_STEPS 40

/* W = C V for the P columns of V, C the covariance of the rows around mu,
 * without forming C. V and W are [dim, P] (a row's P values side by side,
 * so the inner loops run over P independent sums and vectorise). */
static void
cov_times (const float *x, gsize n, guint dim, const double *mu, const double *v, double *w)
{
  double mv[P] = { 0 }, ssum[P] = { 0 };
  for (guint j = 0; j < dim; j++)
    for (int a = 0; a < P; a++)
      mv[a] += mu[j] * v[j * P + a];
  memset (w, 0, sizeof (double) * P * dim);
  for (gsize i = 0; i < n; i++)
    {
      const float *r = x + i * dim;
      double s[P] = { 0 };
      for (guint j = 0; j < dim; j++)
        {
          double rj = r[j];
          for (int a = 0; a < P; a++)
            s[a] += rj * v[j * P + a];
        }
      for (int a = 0; a < P; a++)
        {
          s[a] -= mv[a];
          ssum[a] += s[a];
        }
      for (guint j = 0; j < dim; j++)
        {
          double rj = r[j];
          for (int a = 0; a < P; a++)
            w[j * P + a] += s[a] * rj;
        }
    }
  for (guint j = 0; j < dim; j++)
    for (int a = 0; a < P; a++)
      w[j * P + a] = (w[j * P + a] - mu[j] * ssum[a]) / n;
}

/* Column a · column b of [dim, P] matrices. */
static double
dot_cols (const double *x, int a, const double *y, int b, guint dim)
{
  double s = 0;
  for (guint j = 0; j < dim; j++)
    s += x[j * P + a] * y[j * P + b];
  return s;
}

/* Modified Gram–Schmidt (twice) on the P columns of v [dim, P]; a column
 * with nothing left (rank below P) becomes zero. */
static void
orthonormalize (double *v, guint dim)
{
  for (int a = 0; a < P; a++)
    {
      double before = sqrt (dot_cols (v, a, v, a, dim));
      for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < a; b++)
          {
            double c = dot_cols (v, b, v, a, dim);
            for (guint j = 0; j < dim; j++)
              v[j * P + a] -= c * v[j * P + b];
          }
      double len = sqrt (dot_cols (v, a, v, a, dim));
      for (guint j = 0; j < dim; j++)
        v[j * P + a] = before > 0 && len > 1e-10 * before ? v[j * P + a] / len : 0;
    }
}

/* Eigenvalues (descending) and eigenvectors (columns of q, in that order)
 * of the symmetric P×P matrix h, by cyclic Jacobi rotations. */
static void
eigen_sym (double h[P][P], double *lambda, double q[P][P])
{
  double a[P][P];
  memcpy (a, h, sizeof a);
  for (int i = 0; i < P; i++)
    for (int j = 0; j < P; j++)
      q[i][j] = i == j;
  for (int sweep = 0; sweep < 60; sweep++)
    {
      double off = 0;
      for (int i = 0; i < P; i++)
        for (int j = i + 1; j < P; j++)
          off += a[i][j] * a[i][j];
      if (off < 1e-30)
        break;
      for (int p = 0; p < P; p++)
        for (int r = p + 1; r < P; r++)
          {
            if (fabs (a[p][r]) < 1e-300)
              continue;
            double theta = (a[r][r] - a[p][p]) / (2 * a[p][r]);
            double t = (theta >= 0 ? 1 : -1) / (fabs (theta) + sqrt (theta * theta + 1));
            double c = 1 / sqrt (t * t + 1), s = t * c;
            for (int k = 0; k < P; k++)
              {
                double akp = a[k][p], akr = a[k][r];
                a[k][p] = c * akp - s * akr;
                a[k][r] = s * akp + c * akr;
              }
            for (int k = 0; k < P; k++)
              {
                double apk = a[p][k], ark = a[r][k];
                a[p][k] = c * apk - s * ark;
                a[r][k] = s * apk + c * ark;
              }
            for (int k = 0; k < P; k++)
              {
                double qkp = q[k][p], qkr = q[k][r];
                q[k][p] = c * qkp - s * qkr;
                q[k][r] = s * qkp + c * qkr;
              }
          }
    }
  /* sort descending */
  int order[P];
  for (int i = 0; i < P; i++)
    order[i] = i;
  for (int i = 1; i < P; i++)
    for (int j = i; j > 0 && a[order[j]][order[j]] > a[order[j - 1]][order[j - 1]]; j--)
      {
        int t = order[j];
        order[j] = order[j - 1];
        order[j - 1] = t;
      }
  double qs[P][P];
  for (int i = 0; i < P; i++)
    {
      lambda[i] = a[order[i]][order[i]];
      for (int k = 0; k < P; k++)
        qs[k][i] = q[k][order[i]];
    }
  memcpy (q, qs, sizeof qs);
}

gboolean
dcr_pca_2d (const float *x, gsize n, guint dim, float *xy, double var[2], double *total, GCancellable *cancellable,
            GError **error)
{
  if (n == 0 || dim == 0)
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID, "no prototypes to project");
      return FALSE;
    }
  for (gsize i = 0; i < n * dim; i++)
    if (!isfinite (x[i]))
      {
        g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID,
                     "feature %" G_GSIZE_FORMAT " of prototype row %" G_GSIZE_FORMAT " is not a finite number",
                     i % dim, i / dim);
        return FALSE;
      }
  g_autofree double *mu = g_new0 (double, dim);
  for (gsize i = 0; i < n; i++)
    for (guint j = 0; j < dim; j++)
      mu[j] += x[i * dim + j];
  for (guint j = 0; j < dim; j++)
    mu[j] /= n;

  double tot = 0;
  for (gsize i = 0; i < n; i++)
    for (guint j = 0; j < dim; j++)
      {
        double c = x[i * dim + j] - mu[j];
        tot += c * c;
      }
  tot /= n;

  /* subspace iteration from a fixed pseudo-random start, so the same bank
   * always gives the same picture */
  g_autofree double *v = g_new (double, P * dim);
  g_autofree double *w = g_new (double, P * dim);
  guint32 seed = 2463534242u;
  for (guint j = 0; j < P * dim; j++)
    {
      seed ^= seed << 13;
      seed ^= seed >> 17;
      seed ^= seed << 5;
      v[j] = seed / 4294967296.0 - 0.5;
    }
  orthonormalize (v, dim);
  double h[P][P], q[P][P], lambda[P], prev[2] = { -1, -1 };
  for (int step = 0; tot > 0; step++)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      cov_times (x, n, dim, mu, v, w);
      /* Rayleigh–Ritz in the current span: H = Vᵀ C V */
      for (int a = 0; a < P; a++)
        for (int b = 0; b < P; b++)
          h[a][b] = 0.5 * (dot_cols (v, a, w, b, dim) + dot_cols (v, b, w, a, dim));
      eigen_sym (h, lambda, q);
      gboolean settled = fabs (lambda[0] - prev[0]) <= 1e-6 * lambda[0] &&
                         fabs (lambda[1] - prev[1]) <= 1e-6 * lambda[0];
      if (settled || step + 1 >= MAX_STEPS)
        break;
      prev[0] = lambda[0];
      prev[1] = lambda[1];
      memcpy (v, w, sizeof (double) * P * dim);
      orthonormalize (v, dim);
    }
  /* the two leading Ritz vectors */
  g_autofree double *e = g_new0 (double, 2 * dim);
  for (int a = 0; a < 2 && tot > 0; a++)
    for (int b = 0; b < P; b++)
      for (guint j = 0; j < dim; j++)
        e[a * dim + j] += q[b][a] * v[j * P + b];
  for (int a = 0; a < 2; a++)
    {
      double *ea = e + a * dim, big = 0;
      for (guint j = 0; j < dim; j++)
        if (fabs (ea[j]) > fabs (big))
          big = ea[j];
      if (big < 0)
        for (guint j = 0; j < dim; j++)
          ea[j] = -ea[j];
    }

  double sq[2] = { 0, 0 };
  for (gsize i = 0; i < n; i++)
    for (int a = 0; a < 2; a++)
      {
        double p = 0;
        for (guint j = 0; j < dim; j++)
          p += (x[i * dim + j] - mu[j]) * e[a * dim + j];
        xy[i * 2 + a] = (float) p;
        sq[a] += p * p;
      }
  if (var)
    {
      var[0] = sq[0] / n;
      var[1] = sq[1] / n;
    }
  if (total)
    *total = tot;
  return TRUE;
}
