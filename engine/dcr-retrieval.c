/* dcr-retrieval.c — the bank's prototypes on the GPU (split in chunks that
 * fit a storage buffer), the recorded search (normalise, scores — on GPUs a
 * GEMV that reads the bank once for up to 8 queries, else a GEMM —, top-k,
 * merge) and its CPU reference. */
#include "dcr-retrieval.h"
#include "dcr-half.h"
#include "dcr-op-gemm.h"
#include "dcr-op-heads.h"
#include "dcr-op-norm.h"
#include "dcr-op-reduce.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK (dcr-retrieval-error-quark, dcr_retrieval_error)

#define DEFAULT_MAX_BATCH 256u

typedef struct {
  DcrTensor *t;   /* [rows, dim] */
  gsize start;    /* position of its first row */
  gsize rows;
} Chunk;

struct _DcrRetrieval {
  DcrContext *ctx;
  guint dim;
  DcrDtype dtype;
  guint max_batch;
  gsize chunk_cap;      /* 0: none */
  GArray *chunks;       /* of Chunk */
  gsize count;
  gint64 *ids;
  gpointer host;        /* [count, dim] in dtype: the exact values on the GPU */
  guint64 serial;
  char *bank_uuid;      /* what is loaded, for sync */
  gint64 bank_generation;
};

struct _DcrRetrievalRun {
  DcrRetrieval *r;
  guint64 serial;
  guint batch, k;
  DcrTensor *normalized; /* [batch, dim] */
  DcrTensor *scores;     /* [batch, largest chunk] */
  DcrTensor *cand_values, *cand_indices; /* [batch, Σ k_c] when split */
  DcrTensor *values, *indices;           /* [batch, k] */
  DcrBuffer *scratch;
};

static gsize
elem_size (DcrRetrieval *r)
{
  return dcr_dtype_size (r->dtype);
}

DcrRetrieval *
dcr_retrieval_new (DcrContext *ctx, guint dim, DcrDtype dtype, guint max_batch, GError **error)
{
  if (dim == 0 || (dtype != DCR_F32 && dtype != DCR_F16))
    {
      g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_INVALID,
                   "retrieval needs a feature width and f32 or f16 storage (got %u, %s)", dim,
                   dcr_dtype_name (dtype));
      return NULL;
    }
  if (dtype == DCR_F16 && !dcr_context_device (ctx)->storage_16bit)
    {
      g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_MISMATCH,
                   "%s has no 16-bit storage; retrieve in f32", dcr_context_device (ctx)->name);
      return NULL;
    }
  DcrRetrieval *r = g_new0 (DcrRetrieval, 1);
  r->ctx = ctx;
  r->dim = dim;
  r->dtype = dtype;
  r->max_batch = max_batch ? max_batch : DEFAULT_MAX_BATCH;
  r->chunks = g_array_new (FALSE, TRUE, sizeof (Chunk));
  r->bank_generation = -1;
  return r;
}

static void
clear_chunks (DcrRetrieval *r)
{
  for (guint i = 0; i < r->chunks->len; i++)
    dcr_tensor_free (g_array_index (r->chunks, Chunk, i).t);
  g_array_set_size (r->chunks, 0);
  g_clear_pointer (&r->ids, g_free);
  g_clear_pointer (&r->host, g_free);
  r->count = 0;
}

void
dcr_retrieval_free (DcrRetrieval *r)
{
  if (!r)
    return;
  clear_chunks (r);
  g_array_free (r->chunks, TRUE);
  g_free (r->bank_uuid);
  g_free (r);
}

DcrContext *
dcr_retrieval_context (DcrRetrieval *r)
{
  return r->ctx;
}

guint
dcr_retrieval_dim (DcrRetrieval *r)
{
  return r->dim;
}

DcrDtype
dcr_retrieval_dtype (DcrRetrieval *r)
{
  return r->dtype;
}

void
dcr_retrieval_set_max_chunk_rows (DcrRetrieval *r, gsize rows)
{
  r->chunk_cap = rows;
}

gsize
dcr_retrieval_count (DcrRetrieval *r)
{
  return r->count;
}

guint
dcr_retrieval_n_chunks (DcrRetrieval *r)
{
  return r->chunks->len;
}

guint64
dcr_retrieval_serial (DcrRetrieval *r)
{
  return r->serial;
}

gint64
dcr_retrieval_id_at (DcrRetrieval *r, gsize pos)
{
  g_return_val_if_fail (pos < r->count, -1);
  return r->ids[pos];
}

void
dcr_retrieval_row (DcrRetrieval *r, gsize pos, float *out)
{
  g_return_if_fail (pos < r->count);
  if (r->dtype == DCR_F16)
    dcr_half_to_floats (out, (const guint16 *) r->host + pos * r->dim, r->dim);
  else
    memcpy (out, (const float *) r->host + pos * r->dim, r->dim * sizeof (float));
}

/* Rows per chunk: the prototypes of one chunk and the scores of a full
 * batch against it must each fit one storage buffer. */
static gsize
chunk_rows (DcrRetrieval *r)
{
  guint64 range = dcr_context_device (r->ctx)->max_storage_buffer_range;
  gsize by_bank = range / ((guint64) r->dim * elem_size (r));
  gsize by_scores = range / ((guint64) r->max_batch * elem_size (r));
  gsize rows = MIN (by_bank, by_scores);
  rows = MIN (rows, (gsize) G_MAXINT32);
  if (r->chunk_cap)
    rows = MIN (rows, r->chunk_cap);
  return MAX (rows, 1);
}

gboolean
dcr_retrieval_set_features (DcrRetrieval *r, const float *features, const gint64 *ids, gsize n, GError **error)
{
  if (n >= G_MAXUINT32)
    {
      g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_INVALID,
                   "%" G_GSIZE_FORMAT " prototypes are more than retrieval indexes (2³² − 1)", n);
      return FALSE;
    }
  gsize es = elem_size (r);
  g_autofree gpointer host = g_malloc ((n ? n : 1) * r->dim * es);
  g_autofree float *row = g_new (float, r->dim);
  for (gsize i = 0; i < n; i++)
    {
      const float *f = features + i * r->dim;
      double ss = 0;
      for (guint c = 0; c < r->dim; c++)
        ss += (double) f[c] * f[c];
      if (!isfinite (ss) || ss == 0)
        {
          g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_INVALID,
                       "prototype %" G_GINT64_FORMAT " has a %s feature and cannot be compared",
                       ids ? ids[i] : (gint64) i, ss == 0 ? "zero" : "non-finite");
          return FALSE;
        }
      double inv = 1.0 / sqrt (ss);
      for (guint c = 0; c < r->dim; c++)
        row[c] = (float) (f[c] * inv);
      if (r->dtype == DCR_F16)
        dcr_half_from_floats ((guint16 *) host + i * r->dim, row, r->dim);
      else
        memcpy ((float *) host + i * r->dim, row, r->dim * sizeof (float));
    }

  clear_chunks (r);
  r->serial++;
  g_clear_pointer (&r->bank_uuid, g_free);
  r->bank_generation = -1;
  gsize per = chunk_rows (r);
  for (gsize start = 0; start < n; start += per)
    {
      Chunk c = { NULL, start, MIN (per, n - start) };
      gint64 shape[] = { (gint64) c.rows, r->dim };
      c.t = dcr_tensor_new (r->ctx, DCR_POOL_WEIGHTS, r->dtype, 2, shape, error);
      if (!c.t || !dcr_buffer_upload (c.t->buf, 0, (const guint8 *) host + start * r->dim * es,
                                      c.rows * r->dim * es, error))
        {
          dcr_tensor_free (c.t);
          clear_chunks (r);
          return FALSE;
        }
      g_array_append_val (r->chunks, c);
    }
  r->ids = g_new (gint64, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    r->ids[i] = ids ? ids[i] : (gint64) i;
  r->host = g_steal_pointer (&host);
  r->count = n;
  return TRUE;
}

gboolean
dcr_retrieval_sync (DcrRetrieval *r, DcrBank *bank, gboolean *reloaded, GError **error)
{
  if (reloaded)
    *reloaded = FALSE;
  if (dcr_bank_dim (bank) != r->dim)
    {
      g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_MISMATCH,
                   "%s holds %u-wide features; the detector compares %u-wide ones (built with another backbone?)",
                   dcr_bank_path (bank), dcr_bank_dim (bank), r->dim);
      return FALSE;
    }
  gint64 gen = dcr_bank_generation (bank);
  if (r->bank_uuid && g_strcmp0 (r->bank_uuid, dcr_bank_uuid (bank)) == 0 && gen == r->bank_generation)
    return TRUE;
  g_autofree float *features = NULL;
  g_autofree gint64 *ids = NULL;
  gsize n = 0;
  if (!dcr_bank_load_features (bank, TRUE, &features, &ids, &n, error) ||
      !dcr_retrieval_set_features (r, features, ids, n, error))
    return FALSE;
  r->bank_uuid = g_strdup (dcr_bank_uuid (bank));
  r->bank_generation = gen;
  if (reloaded)
    *reloaded = TRUE;
  return TRUE;
}

/* ---- runs ---------------------------------------------------------------- */

void
dcr_retrieval_run_free (DcrRetrievalRun *run)
{
  if (!run)
    return;
  dcr_tensor_free (run->normalized);
  dcr_tensor_free (run->scores);
  dcr_tensor_free (run->cand_values);
  dcr_tensor_free (run->cand_indices);
  dcr_tensor_free (run->values);
  dcr_tensor_free (run->indices);
  dcr_buffer_free (run->scratch);
  g_free (run);
}

/* A view of t's buffer with another shape (from offset 0). */
static DcrTensor
view2 (const DcrTensor *t, gint64 rows, gint64 cols)
{
  DcrTensor v = *t;
  v.ndim = 2;
  v.shape[0] = rows;
  v.shape[1] = cols;
  return v;
}

static guint
chunk_k (DcrRetrievalRun *run, const Chunk *c)
{
  return (guint) MIN ((gsize) run->k, c->rows);
}

DcrRetrievalRun *
dcr_retrieval_run_new (DcrRetrieval *r, guint batch, guint k, GError **error)
{
  if (r->count == 0)
    {
      g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_EMPTY,
                   "no prototypes to compare with: the bank is empty or every prototype is disabled");
      return NULL;
    }
  if (batch == 0 || batch > r->max_batch || k == 0 || k > DCR_TOPK_MAX)
    {
      g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_INVALID,
                   "retrieval takes 1–%u queries and k from 1 to %d (asked for %u and %u)", r->max_batch,
                   DCR_TOPK_MAX, batch, k);
      return NULL;
    }
  g_autoptr (DcrRetrievalRun) run = g_new0 (DcrRetrievalRun, 1);
  run->r = r;
  run->serial = r->serial;
  run->batch = batch;
  run->k = (guint) MIN ((gsize) k, r->count);

  gsize max_rows = 0, width = 0;
  for (guint i = 0; i < r->chunks->len; i++)
    {
      const Chunk *c = &g_array_index (r->chunks, Chunk, i);
      max_rows = MAX (max_rows, c->rows);
      width += chunk_k (run, c);
    }
  gint64 qs[] = { batch, r->dim }, ss[] = { batch, (gint64) max_rows }, ks[] = { batch, run->k };
  gint64 cs[] = { batch, (gint64) width };
  if (!(run->normalized = dcr_tensor_new (r->ctx, DCR_POOL_ACTIVATIONS, r->dtype, 2, qs, error)) ||
      !(run->scores = dcr_tensor_new (r->ctx, DCR_POOL_ACTIVATIONS, r->dtype, 2, ss, error)) ||
      !(run->values = dcr_tensor_new (r->ctx, DCR_POOL_ACTIVATIONS, r->dtype, 2, ks, error)) ||
      !(run->indices = dcr_tensor_new (r->ctx, DCR_POOL_ACTIVATIONS, DCR_U32, 2, ks, error)))
    return NULL;
  gsize scratch = 0;
  if (r->chunks->len > 1)
    {
      if (!(run->cand_values = dcr_tensor_new (r->ctx, DCR_POOL_ACTIVATIONS, r->dtype, 2, cs, error)) ||
          !(run->cand_indices = dcr_tensor_new (r->ctx, DCR_POOL_ACTIVATIONS, DCR_U32, 2, cs, error)))
        return NULL;
      scratch = dcr_op_topk_scratch_size (run->cand_values, run->k);
    }
  for (guint i = 0; i < r->chunks->len; i++)
    {
      const Chunk *c = &g_array_index (r->chunks, Chunk, i);
      DcrTensor sv = view2 (run->scores, batch, (gint64) c->rows);
      scratch = MAX (scratch, dcr_op_topk_scratch_size (&sv, chunk_k (run, c)));
    }
  if (scratch && !(run->scratch = dcr_buffer_new (r->ctx, DCR_POOL_ACTIVATIONS, scratch, error)))
    return NULL;
  return g_steal_pointer (&run);
}

guint
dcr_retrieval_run_batch (DcrRetrievalRun *run)
{
  return run->batch;
}

guint
dcr_retrieval_run_k (DcrRetrievalRun *run)
{
  return run->k;
}

DcrTensor *
dcr_retrieval_run_normalized (DcrRetrievalRun *run)
{
  return run->normalized;
}

DcrTensor *
dcr_retrieval_run_values (DcrRetrievalRun *run)
{
  return run->values;
}

DcrTensor *
dcr_retrieval_run_indices (DcrRetrievalRun *run)
{
  return run->indices;
}

static gboolean
check_fresh (DcrRetrievalRun *run, GError **error)
{
  if (run->serial == run->r->serial)
    return TRUE;
  g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_STALE,
               "the prototypes were reloaded after this retrieval run was made; make a new run");
  return FALSE;
}

/* Up to this many queries go through the GEMV (shaders/gemv.comp), which
 * reads each chunk once for all of them; more take the GEMM. */
#define GEMV_MAX_QUERIES 8u

/* Whether this run scores with the GEMV: a few queries on a GPU with
 * subgroup arithmetic. On CPU drivers the GEMM is as fast or faster (every
 * per-lane load is a loop there, whatever the mapping), so they keep it.
 * $DCR_RETRIEVAL_GEMV=1 forces the GEMV where it can run (tests check it on
 * lavapipe), 0 turns it off (for comparisons). */
static gboolean
use_gemv (DcrRetrievalRun *run)
{
  const DcrDeviceInfo *dev = dcr_context_device (run->r->ctx);
  const char *env = g_getenv ("DCR_RETRIEVAL_GEMV");
  if (run->batch > GEMV_MAX_QUERIES || !dev->subgroup_arithmetic || dev->subgroup_size < 4 ||
      dev->subgroup_size > 128 || g_strcmp0 (env, "0") == 0)
    return FALSE;
  return g_strcmp0 (env, "1") == 0 || dev->type != VK_PHYSICAL_DEVICE_TYPE_CPU;
}

/* scores [batch, rows] = q̂ [batch, dim] · chunk [rows, dim]ᵀ, the chunk read
 * once: a subgroup per row (RPS rows at a time), eight subgroups (fewer
 * where the device allows less) per workgroup. */
static gboolean
record_gemv (DcrRetrievalRun *run, DcrSeq *seq, const DcrTensor *chunk, DcrTensor *scores, GError **error)
{
  DcrRetrieval *r = run->r;
  const DcrDeviceInfo *dev = dcr_context_device (r->ctx);
  guint32 sg = dev->subgroup_size;
  gint64 rows = chunk->shape[0];
  guint32 local = MAX (sg, MIN (8 * sg, dev->max_workgroup_invocations) / sg * sg);
  /* Rows per subgroup and round (more loads in flight per lane): one, the
   * form measured on an H200; $DCR_GEMV_RPS (1–8) sets more, for measuring
   * (tests/gpu/bench.sh's retrieval-rps4; not yet measured on a GPU). */
  const char *env = g_getenv ("DCR_GEMV_RPS");
  int want = env ? atoi (env) : 1;
  guint32 rps = want >= 1 && want <= 8 ? (guint32) want : 1;
  guint32 groups = dcr_ops_groups ((rows + rps - 1) / rps, local / sg);
  gboolean vec = r->dim % (r->dtype == DCR_F16 ? 8 : 4) == 0;
  guint32 spec[] = { local, 1, 1, run->batch, vec, sg, rps };
  struct {
    guint32 rows, dim, ld_s;
  } push = { (guint32) rows, r->dim, (guint32) rows };
  DcrBinding bind[] = {
    dcr_ops_bind (run->normalized, FALSE),
    dcr_ops_bind (chunk, FALSE),
    dcr_ops_bind (scores, TRUE),
  };
  char name[32];
  dcr_ops_shader_name ("gemv", r->dtype, name, sizeof name);
  return dcr_ops_dispatch (seq, name, spec, G_N_ELEMENTS (spec), bind, G_N_ELEMENTS (bind), &push, sizeof push,
                           groups, 1, 1, error);
}

gboolean
dcr_retrieval_run_record (DcrRetrievalRun *run, DcrSeq *seq, const DcrTensor *queries, GError **error)
{
  DcrRetrieval *r = run->r;
  if (!check_fresh (run, error))
    return FALSE;
  if (queries->dtype != r->dtype || dcr_tensor_numel (queries) != (gint64) run->batch * r->dim ||
      queries->shape[queries->ndim - 1] != r->dim)
    {
      g_autofree char *s = dcr_ops_shape_string (queries);
      g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_MISMATCH,
                   "retrieval: queries are %s; this run takes [%u, %u] %s", s, run->batch, r->dim,
                   dcr_dtype_name (r->dtype));
      return FALSE;
    }
  DcrTensor q = view2 (queries, run->batch, r->dim);
  if (!dcr_op_l2_normalize (seq, &q, run->normalized, 1e-12f, error))
    return FALSE;
  gboolean split = r->chunks->len > 1;
  gboolean gemv = use_gemv (run);
  gint64 col = 0;
  for (guint i = 0; i < r->chunks->len; i++)
    {
      const Chunk *c = &g_array_index (r->chunks, Chunk, i);
      DcrTensor sv = view2 (run->scores, run->batch, (gint64) c->rows);
      DcrGemmParams gp = { .trans_b = TRUE, .alpha = 1 };
      if (gemv ? !record_gemv (run, seq, c->t, &sv, error)
               : !dcr_op_gemm (seq, run->normalized, c->t, NULL, NULL, &sv, &gp, error))
        return FALSE;
      DcrTopkParams tp = { .k = chunk_k (run, c), .index_base = (guint32) c->start, .out_column = col,
                           .scratch = run->scratch };
      if (!dcr_op_topk (seq, &sv, NULL, split ? run->cand_values : run->values,
                        split ? run->cand_indices : run->indices, &tp, error))
        return FALSE;
      col += tp.k;
    }
  if (split)
    {
      DcrTopkParams tp = { .k = run->k, .scratch = run->scratch };
      if (!dcr_op_topk (seq, run->cand_values, run->cand_indices, run->values, run->indices, &tp, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dcr_retrieval_run_record_diff (DcrRetrievalRun *run, DcrSeq *seq, DcrTensor *d, DcrTensor *d1, GError **error)
{
  if (!check_fresh (run, error))
    return FALSE;
  for (guint i = 0; i < run->r->chunks->len; i++)
    {
      const Chunk *c = &g_array_index (run->r->chunks, Chunk, i);
      if (!dcr_op_diff_tokens_gather (seq, run->normalized, c->t, run->indices, (guint32) c->start, d, d1, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dcr_retrieval_run_results (DcrRetrievalRun *run, guint n, gint64 *ids, float *sims, guint32 *positions,
                           GError **error)
{
  if (!check_fresh (run, error))
    return FALSE;
  g_return_val_if_fail (n <= run->batch, FALSE);
  gsize m = (gsize) n * run->k;
  g_autofree guint32 *pos = g_new (guint32, MAX (m, 1));
  if (!dcr_buffer_download (run->indices->buf, 0, pos, m * sizeof (guint32), error))
    return FALSE;
  if (sims)
    {
      if (run->r->dtype == DCR_F16)
        {
          g_autofree guint16 *h = g_new (guint16, MAX (m, 1));
          if (!dcr_buffer_download (run->values->buf, 0, h, m * sizeof (guint16), error))
            return FALSE;
          dcr_half_to_floats (sims, h, m);
        }
      else if (!dcr_buffer_download (run->values->buf, 0, sims, m * sizeof (float), error))
        return FALSE;
    }
  for (gsize i = 0; i < m; i++)
    {
      if (pos[i] >= run->r->count)
        {
          g_set_error (error, DCR_RETRIEVAL_ERROR, DCR_RETRIEVAL_ERROR_INVALID,
                       "retrieval returned position %u of %" G_GSIZE_FORMAT " prototypes (a NaN query?)",
                       pos[i], run->r->count);
          return FALSE;
        }
      if (ids)
        ids[i] = run->r->ids[pos[i]];
    }
  if (positions)
    memcpy (positions, pos, m * sizeof (guint32));
  return TRUE;
}

gboolean
dcr_retrieval_search (DcrRetrieval *r, const float *queries, guint n, guint k, gint64 *ids, float *sims,
                      guint32 *positions, guint *k_out, GError **error)
{
  guint batch = MIN (MAX (n, 1), r->max_batch);
  g_autoptr (DcrRetrievalRun) run = dcr_retrieval_run_new (r, batch, k, error);
  if (!run)
    return FALSE;
  gint64 qs[] = { batch, r->dim };
  g_autoptr (DcrTensor) q = dcr_tensor_new (r->ctx, DCR_POOL_ACTIVATIONS, r->dtype, 2, qs, error);
  g_autoptr (DcrSeq) seq = q ? dcr_seq_new (r->ctx, error) : NULL;
  if (!seq || !dcr_retrieval_run_record (run, seq, q, error))
    return FALSE;
  g_autofree guint16 *half = r->dtype == DCR_F16 ? g_new (guint16, (gsize) batch * r->dim) : NULL;
  g_autofree float *zero = g_new0 (float, (gsize) batch * r->dim);
  for (guint start = 0; start < n; start += batch)
    {
      guint m = MIN (batch, n - start);
      const float *src = queries + (gsize) start * r->dim;
      if (m < batch)
        {
          /* the unused rows of the last group are zeros, whose results are ignored */
          memcpy (zero, src, (gsize) m * r->dim * sizeof (float));
          src = zero;
        }
      gboolean ok;
      if (half)
        {
          dcr_half_from_floats (half, src, (gsize) batch * r->dim);
          ok = dcr_tensor_upload (q, half, error);
        }
      else
        ok = dcr_tensor_upload (q, src, error);
      gsize o = (gsize) start * run->k;
      if (!ok || !dcr_seq_submit (seq, TRUE, error) ||
          !dcr_retrieval_run_results (run, m, ids ? ids + o : NULL, sims ? sims + o : NULL,
                                      positions ? positions + o : NULL, error))
        return FALSE;
    }
  if (k_out)
    *k_out = run->k;
  return TRUE;
}

void
dcr_ref_cosine_topk (const float *bank, gsize n, guint dim, const float *queries, guint b, guint k,
                     guint32 *positions, float *sims)
{
  g_autofree double *s = g_new (double, MAX (n, 1));
  g_autofree double *q = g_new (double, dim);
  for (guint i = 0; i < b; i++)
    {
      double qq = 0;
      for (guint c = 0; c < dim; c++)
        qq += (double) queries[(gsize) i * dim + c] * queries[(gsize) i * dim + c];
      double inv = 1.0 / MAX (sqrt (qq), 1e-12);
      for (guint c = 0; c < dim; c++)
        q[c] = queries[(gsize) i * dim + c] * inv;
      for (gsize j = 0; j < n; j++)
        {
          double acc = 0;
          for (guint c = 0; c < dim; c++)
            acc += q[c] * bank[j * dim + c];
          s[j] = acc;
        }
      /* selection of the k best; a strictly greater score wins, so ties keep the lower position */
      for (guint t = 0; t < k; t++)
        {
          gssize best = -1;
          for (gsize j = 0; j < n; j++)
            {
              if (isnan (s[j]))
                continue;
              if (best < 0 || s[j] > s[best])
                best = (gssize) j;
            }
          positions[(gsize) i * k + t] = (guint32) best;
          sims[(gsize) i * k + t] = (float) s[best];
          s[best] = NAN;
        }
    }
}
