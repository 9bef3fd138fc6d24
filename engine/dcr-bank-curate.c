/* dcr-bank-curate.c — near-duplicates through DcrRetrieval (every prototype
 * is a query against all of them, top-k per query, kept when ≥ τ) and greedy
 * k-center pruning with one GEMM per pick against the prototypes split in
 * chunks that fit a storage buffer; the CPU references; the bank wrappers. */
#include "dcr-bank-curate.h"
#include "dcr-half.h"
#include "dcr-op-gemm.h"
#include "dcr-op-reduce.h"
#include "dcr-retrieval.h"

#include <math.h>
#include <string.h>

#define QUERY_BATCH 256u
#define SEED_BATCH 64u

static const DcrCurateOptions default_opts = { 0 };

/* Reports progress and sees cancellation; FALSE with the error set stops. */
static gboolean
step (const DcrCurateOptions *opts, gsize done, gsize total, GError **error)
{
  if (g_cancellable_set_error_if_cancelled (opts->cancellable, error))
    return FALSE;
  if (opts->progress && !opts->progress (done, total, opts->user_data))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
      return FALSE;
    }
  return TRUE;
}

static int
cmp_pair (gconstpointer x, gconstpointer y)
{
  const DcrDuplicatePair *p = x, *q = y;
  if (p->a != q->a)
    return p->a < q->a ? -1 : 1;
  return p->b < q->b ? -1 : p->b > q->b;
}

static int
cmp_i64 (gconstpointer x, gconstpointer y)
{
  gint64 a = *(const gint64 *) x, b = *(const gint64 *) y;
  return a < b ? -1 : a > b;
}

/* Positions turned into ids (a < b again), sorted by (a, b), one entry per
 * pair (the higher similarity of the two directions). */
static void
finish_pairs (GArray *pairs, const gint64 *ids)
{
  for (guint i = 0; ids && i < pairs->len; i++)
    {
      DcrDuplicatePair *p = &g_array_index (pairs, DcrDuplicatePair, i);
      gint64 a = ids[p->a], b = ids[p->b];
      p->a = MIN (a, b);
      p->b = MAX (a, b);
    }
  g_array_sort (pairs, cmp_pair);
  guint w = 0;
  for (guint i = 0; i < pairs->len; i++)
    {
      DcrDuplicatePair *p = &g_array_index (pairs, DcrDuplicatePair, i);
      if (w > 0)
        {
          DcrDuplicatePair *last = &g_array_index (pairs, DcrDuplicatePair, w - 1);
          if (last->a == p->a && last->b == p->b)
            {
              last->similarity = MAX (last->similarity, p->similarity);
              continue;
            }
        }
      g_array_index (pairs, DcrDuplicatePair, w++) = *p;
    }
  g_array_set_size (pairs, w);
}

gboolean
dcr_find_duplicates (DcrContext *ctx, const float *features, const gint64 *ids, gsize n, guint dim, float threshold,
                     const DcrCurateOptions *opts, GArray **pairs, GError **error)
{
  opts = opts ? opts : &default_opts;
  g_autoptr (GArray) out = g_array_new (FALSE, FALSE, sizeof (DcrDuplicatePair));
  if (n < 2)
    {
      *pairs = g_steal_pointer (&out);
      return TRUE;
    }
  guint batch = (guint) MIN ((gsize) QUERY_BATCH, n);
  g_autoptr (DcrRetrieval) r = dcr_retrieval_new (ctx, dim, opts->dtype, batch, error);
  if (!r)
    return FALSE;
  dcr_retrieval_set_max_chunk_rows (r, opts->max_chunk_rows);
  if (!dcr_retrieval_set_features (r, features, ids, n, error))
    return FALSE;
  guint k = (guint) MIN ((gsize) DCR_TOPK_MAX, n);
  g_autoptr (DcrRetrievalRun) run = dcr_retrieval_run_new (r, batch, k, error);
  if (!run)
    return FALSE;
  k = dcr_retrieval_run_k (run);
  gint64 qs[] = { batch, dim };
  g_autoptr (DcrTensor) q = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, opts->dtype, 2, qs, error);
  g_autoptr (DcrSeq) seq = q ? dcr_seq_new (ctx, error) : NULL;
  if (!seq || !dcr_retrieval_run_record (run, seq, q, error))
    return FALSE;

  gsize qn = (gsize) batch * dim;
  g_autofree float *host = g_new0 (float, qn);
  g_autofree guint16 *half = opts->dtype == DCR_F16 ? g_new (guint16, qn) : NULL;
  g_autofree float *sims = g_new (float, (gsize) batch * k);
  g_autofree guint32 *pos = g_new (guint32, (gsize) batch * k);
  for (gsize start = 0; start < n; start += batch)
    {
      if (!step (opts, start, n, error))
        return FALSE;
      guint m = (guint) MIN ((gsize) batch, n - start);
      /* a short last batch is padded with copies of its first query, whose results are ignored */
      for (guint i = 0; i < batch; i++)
        memcpy (host + (gsize) i * dim, features + (start + (i < m ? i : 0)) * dim, dim * sizeof (float));
      gboolean ok;
      if (half)
        {
          dcr_half_from_floats (half, host, qn);
          ok = dcr_tensor_upload (q, half, error);
        }
      else
        ok = dcr_tensor_upload (q, host, error);
      if (!ok || !dcr_seq_submit (seq, TRUE, error) || !dcr_retrieval_run_results (run, m, NULL, sims, pos, error))
        return FALSE;
      for (guint i = 0; i < m; i++)
        for (guint j = 0; j < k; j++)
          {
            gsize self = start + i, other = pos[(gsize) i * k + j];
            float s = sims[(gsize) i * k + j];
            /* descending: nothing after the first miss can pass */
            if (s < threshold)
              break;
            if (other == self)
              continue;
            DcrDuplicatePair p = { (gint64) MIN (self, other), (gint64) MAX (self, other), MIN (s, 1.0f) };
            g_array_append_val (out, p);
          }
    }
  if (!step (opts, n, n, error))
    return FALSE;
  finish_pairs (out, ids);
  *pairs = g_steal_pointer (&out);
  return TRUE;
}

/* Rows as unit vectors in double; FALSE (with the position) for a zero or
 * non-finite row. */
static double *
unit_rows (const float *features, gsize n, guint dim, gsize *bad)
{
  double *u = g_new (double, MAX (n, 1) * dim);
  for (gsize i = 0; i < n; i++)
    {
      double ss = 0;
      for (guint c = 0; c < dim; c++)
        ss += (double) features[i * dim + c] * features[i * dim + c];
      if (!isfinite (ss) || ss == 0)
        {
          *bad = i;
          g_free (u);
          return NULL;
        }
      double inv = 1.0 / sqrt (ss);
      for (guint c = 0; c < dim; c++)
        u[i * dim + c] = features[i * dim + c] * inv;
    }
  return u;
}

static double
dot (const double *x, const double *y, guint dim)
{
  double acc = 0;
  for (guint c = 0; c < dim; c++)
    acc += x[c] * y[c];
  return acc;
}

GArray *
dcr_ref_find_duplicates (const float *features, const gint64 *ids, gsize n, guint dim, float threshold)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (DcrDuplicatePair));
  gsize bad = 0;
  g_autofree double *u = unit_rows (features, n, dim, &bad);
  g_return_val_if_fail (u != NULL, out);
  for (gsize i = 0; i < n; i++)
    for (gsize j = i + 1; j < n; j++)
      {
        double s = dot (u + i * dim, u + j * dim, dim);
        if (s >= threshold)
          {
            DcrDuplicatePair p = { (gint64) i, (gint64) j, (float) MIN (s, 1.0) };
            g_array_append_val (out, p);
          }
      }
  finish_pairs (out, ids);
  return out;
}

static gsize
uf_find (gsize *parent, gsize x)
{
  while (parent[x] != x)
    {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
  return x;
}

GPtrArray *
dcr_duplicate_groups (const DcrDuplicatePair *pairs, guint n)
{
  GPtrArray *groups = g_ptr_array_new_with_free_func ((GDestroyNotify) g_array_unref);
  g_autoptr (GArray) members = g_array_new (FALSE, FALSE, sizeof (gint64));
  for (guint i = 0; i < n; i++)
    {
      g_array_append_val (members, pairs[i].a);
      g_array_append_val (members, pairs[i].b);
    }
  g_array_sort (members, cmp_i64);
  guint m = 0;
  for (guint i = 0; i < members->len; i++)
    if (m == 0 || g_array_index (members, gint64, m - 1) != g_array_index (members, gint64, i))
      g_array_index (members, gint64, m++) = g_array_index (members, gint64, i);
  g_array_set_size (members, m);
  const gint64 *ids = (const gint64 *) members->data;
  g_autofree gsize *parent = g_new (gsize, MAX (m, 1));
  for (gsize i = 0; i < m; i++)
    parent[i] = i;
  for (guint i = 0; i < n; i++)
    {
      const gint64 *a = bsearch (&pairs[i].a, ids, m, sizeof (gint64), cmp_i64);
      const gint64 *b = bsearch (&pairs[i].b, ids, m, sizeof (gint64), cmp_i64);
      gsize ra = uf_find (parent, (gsize) (a - ids)), rb = uf_find (parent, (gsize) (b - ids));
      /* the smaller position roots the group, so roots are each group's smallest id */
      parent[MAX (ra, rb)] = MIN (ra, rb);
    }
  g_autofree gint *group_of = g_new (gint, MAX (m, 1));
  for (gsize i = 0; i < m; i++)
    {
      gsize root = uf_find (parent, i);
      if (root == i)
        {
          group_of[i] = (gint) groups->len;
          g_ptr_array_add (groups, g_array_new (FALSE, FALSE, sizeof (gint64)));
        }
      g_array_append_val ((GArray *) groups->pdata[group_of[root]], ids[i]);
    }
  return groups;
}

GArray *
dcr_duplicates_redundant (GPtrArray *groups, GHashTable *pinned_ids)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gint64));
  for (guint g = 0; g < groups->len; g++)
    {
      GArray *grp = groups->pdata[g];
      gboolean any_pinned = FALSE;
      for (guint i = 0; pinned_ids && i < grp->len; i++)
        any_pinned |= g_hash_table_contains (pinned_ids, &g_array_index (grp, gint64, i));
      for (guint i = 0; i < grp->len; i++)
        {
          gint64 id = g_array_index (grp, gint64, i);
          gboolean keep = any_pinned ? g_hash_table_contains (pinned_ids, &id) : i == 0;
          if (!keep)
            g_array_append_val (out, id);
        }
    }
  g_array_sort (out, cmp_i64);
  return out;
}

/* ---- k-center ------------------------------------------------------------ */

/* The unit rows on the GPU in chunks, and two recorded GEMMs: a batch of
 * queries (seeding with the pinned rows) and a single one (each pick). */
typedef struct {
  DcrContext *ctx;
  DcrDtype dtype;
  guint dim;
  gsize n;
  float *unit;           /* [n, dim] host copy, rounded as stored */
  GPtrArray *chunks;     /* DcrTensor [rows, dim] */
  GArray *starts;        /* gsize */
  DcrTensor *q;          /* [SEED_BATCH, dim] */
  GPtrArray *scores;     /* DcrTensor [SEED_BATCH, rows] */
  DcrSeq *seq_batch, *seq_one;
  gpointer staging;      /* a query batch or a score block in dtype */
} Scorer;

static void
scorer_free (Scorer *s)
{
  if (!s)
    return;
  g_free (s->unit);
  g_clear_pointer (&s->chunks, g_ptr_array_unref);
  g_clear_pointer (&s->scores, g_ptr_array_unref);
  g_clear_pointer (&s->starts, g_array_unref);
  dcr_tensor_free (s->q);
  dcr_seq_free (s->seq_batch);
  dcr_seq_free (s->seq_one);
  g_free (s->staging);
  g_free (s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Scorer, scorer_free)

static DcrTensor
view2 (const DcrTensor *t, gint64 rows, gint64 cols)
{
  DcrTensor v = *t;
  v.ndim = 2;
  v.shape[0] = rows;
  v.shape[1] = cols;
  return v;
}

static Scorer *
scorer_new (DcrContext *ctx, const float *features, gsize n, guint dim, const DcrCurateOptions *opts,
            GError **error)
{
  if (opts->dtype != DCR_F32 && opts->dtype != DCR_F16)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "k-center runs in f32 or f16, not %s",
                   dcr_dtype_name (opts->dtype));
      return NULL;
    }
  if (opts->dtype == DCR_F16 && !dcr_context_device (ctx)->storage_16bit)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "%s has no 16-bit storage; use f32",
                   dcr_context_device (ctx)->name);
      return NULL;
    }
  g_autoptr (Scorer) s = g_new0 (Scorer, 1);
  s->ctx = ctx;
  s->dtype = opts->dtype;
  s->dim = dim;
  s->n = n;
  gsize es = dcr_dtype_size (s->dtype);
  gsize bad = 0;
  g_autofree double *u = unit_rows (features, n, dim, &bad);
  if (!u)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "row %" G_GSIZE_FORMAT " has a zero or non-finite feature and cannot be compared", bad);
      return NULL;
    }
  s->unit = g_new (float, MAX (n, 1) * dim);
  for (gsize i = 0; i < n * dim; i++)
    s->unit[i] = (float) u[i];
  g_clear_pointer (&u, g_free);
  guint64 range = dcr_context_device (ctx)->max_storage_buffer_range;
  gsize per = MIN (range / ((guint64) dim * es), range / ((guint64) SEED_BATCH * es));
  if (opts->max_chunk_rows)
    per = MIN (per, opts->max_chunk_rows);
  per = MAX (per, 1);
  s->staging = g_malloc (MAX ((gsize) SEED_BATCH * dim, (gsize) SEED_BATCH * MIN (per, n)) * es);
  s->chunks = g_ptr_array_new_with_free_func ((GDestroyNotify) dcr_tensor_free);
  s->scores = g_ptr_array_new_with_free_func ((GDestroyNotify) dcr_tensor_free);
  s->starts = g_array_new (FALSE, FALSE, sizeof (gsize));
  gint64 qs[] = { SEED_BATCH, dim };
  if (!(s->q = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, s->dtype, 2, qs, error)) ||
      !(s->seq_batch = dcr_seq_new (ctx, error)) || !(s->seq_one = dcr_seq_new (ctx, error)))
    return NULL;
  for (gsize start = 0; start < n; start += per)
    {
      gsize rows = MIN (per, n - start);
      gint64 cs[] = { (gint64) rows, dim }, ss[] = { SEED_BATCH, (gint64) rows };
      DcrTensor *c = dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, s->dtype, 2, cs, error);
      if (!c)
        return NULL;
      g_ptr_array_add (s->chunks, c);
      const float *src = s->unit + start * dim;
      gboolean ok;
      if (s->dtype == DCR_F16)
        {
          /* the host copy becomes what the GPU holds, so queries match their rows exactly */
          g_autofree guint16 *h = g_new (guint16, rows * dim);
          dcr_half_from_floats (h, src, rows * dim);
          dcr_half_to_floats (s->unit + start * dim, h, rows * dim);
          ok = dcr_tensor_upload (c, h, error);
        }
      else
        ok = dcr_tensor_upload (c, src, error);
      DcrTensor *sc = ok ? dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, s->dtype, 2, ss, error) : NULL;
      if (!sc)
        return NULL;
      g_ptr_array_add (s->scores, sc);
      g_array_append_val (s->starts, start);
      DcrGemmParams gp = { .trans_b = TRUE, .alpha = 1 };
      DcrTensor q1 = view2 (s->q, 1, dim), s1 = view2 (sc, 1, (gint64) rows);
      if (!dcr_op_gemm (s->seq_batch, s->q, c, NULL, NULL, sc, &gp, error) ||
          !dcr_op_gemm (s->seq_one, &q1, c, NULL, NULL, &s1, &gp, error))
        return NULL;
    }
  return g_steal_pointer (&s);
}

/* Cosine similarities of the rows at positions qpos[m] (m ≤ SEED_BATCH)
 * against every row: out [m, n]. */
static gboolean
scorer_run (Scorer *s, const guint32 *qpos, guint m, float *out, GError **error)
{
  guint rows_q = m == 1 ? 1 : SEED_BATCH;
  gsize es = dcr_dtype_size (s->dtype);
  g_autofree float *qh = g_new0 (float, (gsize) rows_q * s->dim);
  for (guint i = 0; i < m; i++)
    memcpy (qh + (gsize) i * s->dim, s->unit + (gsize) qpos[i] * s->dim, s->dim * sizeof (float));
  gboolean ok;
  if (s->dtype == DCR_F16)
    {
      dcr_half_from_floats (s->staging, qh, (gsize) rows_q * s->dim);
      ok = dcr_buffer_upload (s->q->buf, 0, s->staging, (gsize) rows_q * s->dim * es, error);
    }
  else
    ok = dcr_buffer_upload (s->q->buf, 0, qh, (gsize) rows_q * s->dim * es, error);
  if (!ok || !dcr_seq_submit (m == 1 ? s->seq_one : s->seq_batch, TRUE, error))
    return FALSE;
  for (guint c = 0; c < s->scores->len; c++)
    {
      DcrTensor *sc = s->scores->pdata[c];
      gsize rows = (gsize) sc->shape[1], start = g_array_index (s->starts, gsize, c);
      if (!dcr_buffer_download (sc->buf, 0, s->staging, (gsize) m * rows * es, error))
        return FALSE;
      for (guint i = 0; i < m; i++)
        {
          float *dst = out + (gsize) i * s->n + start;
          if (s->dtype == DCR_F16)
            dcr_half_to_floats (dst, (const guint16 *) s->staging + (gsize) i * rows, rows);
          else
            memcpy (dst, (const float *) s->staging + (gsize) i * rows, rows * sizeof (float));
        }
    }
  return TRUE;
}

static void
update_min (float *mind, const float *sims, gsize n)
{
  for (gsize i = 0; i < n; i++)
    mind[i] = MIN (mind[i], 1.0f - sims[i]);
}

gboolean
dcr_kcenter (DcrContext *ctx, const float *features, gsize n, guint dim, const gboolean *pinned, gsize keep,
             const DcrCurateOptions *opts, guint32 *order, gsize *n_kept, float *radius, GError **error)
{
  opts = opts ? opts : &default_opts;
  *n_kept = 0;
  if (radius)
    *radius = 0;
  if (n == 0)
    return TRUE;
  if (n >= G_MAXUINT32)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%" G_GSIZE_FORMAT " prototypes are more than k-center indexes (2³² − 1)", n);
      return FALSE;
    }
  g_autoptr (Scorer) s = scorer_new (ctx, features, n, dim, opts, error);
  if (!s)
    return FALSE;
  g_autofree float *mind = g_new (float, n);
  g_autofree gboolean *chosen = g_new0 (gboolean, n);
  g_autofree float *sims = g_new (float, (gsize) SEED_BATCH * n);
  for (gsize i = 0; i < n; i++)
    mind[i] = G_MAXFLOAT;
  gsize cnt = 0, n_pinned = 0;
  for (gsize i = 0; pinned && i < n; i++)
    n_pinned += pinned[i] != 0;
  gsize target = MIN (MAX (keep, n_pinned), n);

  /* the pinned rows, a batch at a time */
  guint32 batch[SEED_BATCH];
  guint m = 0;
  for (gsize i = 0; i <= n && n_pinned; i++)
    {
      if (i < n && pinned[i])
        {
          batch[m++] = (guint32) i;
          chosen[i] = TRUE;
          order[cnt++] = (guint32) i;
        }
      if (m == SEED_BATCH || (i == n && m > 0))
        {
          if (!step (opts, cnt, target, error) || !scorer_run (s, batch, m, sims, error))
            return FALSE;
          for (guint j = 0; j < m; j++)
            update_min (mind, sims + (gsize) j * n, n);
          m = 0;
        }
    }
  while (cnt < target)
    {
      guint32 c = 0;
      if (cnt > 0)
        {
          gssize best = -1;
          for (gsize i = 0; i < n; i++)
            if (!chosen[i] && (best < 0 || mind[i] > mind[best]))
              best = (gssize) i;
          c = (guint32) best;
        }
      chosen[c] = TRUE;
      order[cnt++] = c;
      if (!step (opts, cnt, target, error) || !scorer_run (s, &c, 1, sims, error))
        return FALSE;
      update_min (mind, sims, n);
    }
  *n_kept = cnt;
  if (radius && cnt > 0)
    for (gsize i = 0; i < n; i++)
      if (!chosen[i])
        *radius = MAX (*radius, mind[i]);
  return TRUE;
}

gboolean
dcr_ref_kcenter (const float *features, gsize n, guint dim, const gboolean *pinned, gsize keep, guint32 *order,
                 gsize *n_kept, float *radius)
{
  *n_kept = 0;
  if (radius)
    *radius = 0;
  gsize bad = 0;
  g_autofree double *u = unit_rows (features, n, dim, &bad);
  if (!u)
    return FALSE;
  g_autofree double *mind = g_new (double, MAX (n, 1));
  g_autofree gboolean *chosen = g_new0 (gboolean, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    mind[i] = INFINITY;
  gsize cnt = 0, n_pinned = 0;
  for (gsize i = 0; pinned && i < n; i++)
    n_pinned += pinned[i] != 0;
  gsize target = MIN (MAX (keep, n_pinned), n);
  for (gsize pick = 0; pick < target; pick++)
    {
      gssize c = -1;
      if (pick < n_pinned)
        {
          /* the next pinned row in position order */
          for (gsize i = 0; i < n && c < 0; i++)
            if (pinned[i] && !chosen[i])
              c = (gssize) i;
        }
      else if (pick == 0)
        c = 0;
      else
        for (gsize i = 0; i < n; i++)
          if (!chosen[i] && (c < 0 || mind[i] > mind[c]))
            c = (gssize) i;
      chosen[c] = TRUE;
      order[cnt++] = (guint32) c;
      for (gsize i = 0; i < n; i++)
        mind[i] = MIN (mind[i], 1.0 - dot (u + (gsize) c * dim, u + i * dim, dim));
    }
  *n_kept = cnt;
  if (radius && cnt > 0)
    for (gsize i = 0; i < n; i++)
      if (!chosen[i])
        *radius = MAX (*radius, (float) mind[i]);
  return TRUE;
}

/* ---- over a bank --------------------------------------------------------- */

typedef struct {
  float *features;
  gint64 *ids;
  gsize n;
  GHashTable *pinned;  /* gint64 ids */
} Enabled;

static void
enabled_clear (Enabled *e)
{
  g_clear_pointer (&e->features, g_free);
  g_clear_pointer (&e->ids, g_free);
  g_clear_pointer (&e->pinned, g_hash_table_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Enabled, enabled_clear)

static gboolean
load_enabled (DcrBank *bank, Enabled *e, GError **error)
{
  if (!dcr_bank_load_features (bank, TRUE, &e->features, &e->ids, &e->n, error))
    return FALSE;
  g_autoptr (GPtrArray) all = dcr_bank_list (bank, error);
  if (!all)
    return FALSE;
  e->pinned = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  for (guint i = 0; i < all->len; i++)
    {
      DcrPrototype *p = all->pdata[i];
      if (p->pinned)
        g_hash_table_add (e->pinned, g_memdup2 (&p->id, sizeof p->id));
    }
  return TRUE;
}

void
dcr_bank_duplicates_free (DcrBankDuplicates *d)
{
  if (!d)
    return;
  g_clear_pointer (&d->pairs, g_array_unref);
  g_clear_pointer (&d->groups, g_ptr_array_unref);
  g_clear_pointer (&d->redundant, g_array_unref);
  g_free (d);
}

DcrBankDuplicates *
dcr_bank_find_duplicates (DcrBank *bank, DcrContext *ctx, float threshold, const DcrCurateOptions *opts,
                          GError **error)
{
  if (!(threshold > 0 && threshold <= 1))
    {
      g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_INVALID,
                   "a near-duplicate threshold is a cosine similarity above 0 and at most 1 (got %g)", threshold);
      return NULL;
    }
  g_auto (Enabled) e = { 0 };
  if (!load_enabled (bank, &e, error))
    return NULL;
  g_autoptr (DcrBankDuplicates) d = g_new0 (DcrBankDuplicates, 1);
  if (ctx)
    {
      if (!dcr_find_duplicates (ctx, e.features, e.ids, e.n, dcr_bank_dim (bank), threshold, opts, &d->pairs, error))
        return NULL;
    }
  else
    d->pairs = dcr_ref_find_duplicates (e.features, e.ids, e.n, dcr_bank_dim (bank), threshold);
  d->groups = dcr_duplicate_groups ((const DcrDuplicatePair *) d->pairs->data, d->pairs->len);
  d->redundant = dcr_duplicates_redundant (d->groups, e.pinned);
  return g_steal_pointer (&d);
}

void
dcr_bank_prune_plan_free (DcrBankPrunePlan *p)
{
  if (!p)
    return;
  g_clear_pointer (&p->kept, g_array_unref);
  g_clear_pointer (&p->dropped, g_array_unref);
  g_free (p);
}

DcrBankPrunePlan *
dcr_bank_plan_prune (DcrBank *bank, DcrContext *ctx, gsize keep, const DcrCurateOptions *opts, GError **error)
{
  g_auto (Enabled) e = { 0 };
  if (!load_enabled (bank, &e, error))
    return NULL;
  g_autofree gboolean *pinned = g_new0 (gboolean, MAX (e.n, 1));
  gsize n_pinned = 0;
  for (gsize i = 0; i < e.n; i++)
    n_pinned += (pinned[i] = g_hash_table_contains (e.pinned, &e.ids[i]));
  g_autofree guint32 *order = g_new (guint32, MAX (e.n, 1));
  gsize n_kept = 0;
  float radius = 0;
  guint dim = dcr_bank_dim (bank);
  if (ctx ? !dcr_kcenter (ctx, e.features, e.n, dim, pinned, keep, opts, order, &n_kept, &radius, error)
          : !dcr_ref_kcenter (e.features, e.n, dim, pinned, keep, order, &n_kept, &radius))
    {
      if (!ctx)
        g_set_error (error, DCR_BANK_ERROR, DCR_BANK_ERROR_CORRUPT, "%s holds a zero or non-finite feature",
                     dcr_bank_path (bank));
      return NULL;
    }
  g_autoptr (DcrBankPrunePlan) p = g_new0 (DcrBankPrunePlan, 1);
  p->kept = g_array_sized_new (FALSE, FALSE, sizeof (gint64), (guint) n_kept);
  p->dropped = g_array_new (FALSE, FALSE, sizeof (gint64));
  p->n_pinned = n_pinned;
  p->radius = radius;
  g_autofree gboolean *kept = g_new0 (gboolean, MAX (e.n, 1));
  for (gsize i = 0; i < n_kept; i++)
    {
      kept[order[i]] = TRUE;
      g_array_append_val (p->kept, e.ids[order[i]]);
    }
  for (gsize i = 0; i < e.n; i++)
    if (!kept[i])
      g_array_append_val (p->dropped, e.ids[i]);
  return g_steal_pointer (&p);
}
