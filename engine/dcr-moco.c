/* dcr-moco.c — the MoCo key queue (ring writes as buffer copies, replayed
 * from one recorded sequence per ring position) and the momentum update
 * (shader moco.comp), with their host references. */
#include "dcr-moco.h"

#include <math.h>
#include <string.h>

#define MOCO_LOCAL 256

gboolean
dcr_op_momentum_update (DcrSeq *seq, DcrTensor *key, const DcrTensor *query, float m, GError **error)
{
  g_return_val_if_fail (seq && key && query, FALSE);
  if (key->dtype != DCR_F32 || query->dtype != DCR_F32)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE,
                   "momentum_update: parameters are %s and %s; the momentum copy is kept in f32",
                   dcr_dtype_name (key->dtype), dcr_dtype_name (query->dtype));
      return FALSE;
    }
  gint64 n = dcr_tensor_numel (key);
  if (n != dcr_tensor_numel (query))
    return dcr_ops_shape_error (error, "momentum_update", "key and query parameters differ", key, query);
  if (!(m >= 0 && m <= 1))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "momentum_update: momentum %g is outside [0, 1]", m);
      return FALSE;
    }
  if (n == 0)
    return TRUE;
  guint32 spec[] = { MOCO_LOCAL, 1, 1 };
  DcrBinding b[] = { dcr_ops_bind (key, TRUE), dcr_ops_bind (query, FALSE) };
  struct { guint32 n; float m; } push = { (guint32) n, m };
  return dcr_ops_dispatch (seq, "moco", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), &push, sizeof push,
                           dcr_ops_groups (n, MOCO_LOCAL), 1, 1, error);
}

void
dcr_ref_momentum_update (float *key, const float *query, gint64 n, float m)
{
  float one_minus_m = 1.0f - m;
  for (gint64 i = 0; i < n; i++)
    key[i] = m * key[i] + one_minus_m * query[i];
}

gboolean
dcr_ref_moco_enqueue (float *queue, gint64 n_pinned, gint64 size, gint64 d, gint64 *ptr, const float *keys,
                      gint64 b)
{
  if (b > size || *ptr < 0 || *ptr >= size)
    return FALSE;
  float *ring = queue + n_pinned * d;
  for (gint64 i = 0; i < b; i++)
    memcpy (ring + ((*ptr + i) % size) * d, keys + i * d, (gsize) d * sizeof (float));
  *ptr = (*ptr + b) % size;
  return TRUE;
}

typedef struct {
  DcrSeq *seq;
  DcrBuffer *src; /* the keys' buffer the copies were recorded from */
  guint b;
} PushSeq;

struct _DcrMocoQueue {
  DcrContext *ctx;
  guint dim, size, n_pinned, ptr;
  DcrTensor *queue;
  PushSeq *pushes; /* [size]: the copies for a batch written at each ring position */
};

static void
push_seq_clear (PushSeq *p)
{
  g_clear_pointer (&p->seq, dcr_seq_free);
  p->src = NULL;
}

void
dcr_moco_queue_free (DcrMocoQueue *q)
{
  if (!q)
    return;
  for (guint i = 0; q->pushes && i < q->size; i++)
    push_seq_clear (&q->pushes[i]);
  g_free (q->pushes);
  g_clear_pointer (&q->queue, dcr_tensor_free);
  g_free (q);
}

static void
normalize_rows (float *x, gsize rows, guint dim)
{
  for (gsize r = 0; r < rows; r++)
    {
      double s = 0;
      for (guint c = 0; c < dim; c++)
        s += (double) x[r * dim + c] * x[r * dim + c];
      float inv = (float) (1.0 / MAX (sqrt (s), 1e-12));
      for (guint c = 0; c < dim; c++)
        x[r * dim + c] *= inv;
    }
}

DcrMocoQueue *
dcr_moco_queue_new (DcrContext *ctx, guint dim, guint size, guint n_pinned, guint64 seed, GError **error)
{
  if (!dim || !size)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "moco queue: a queue of %u keys of width %u holds nothing; give both a positive size", size, dim);
      return NULL;
    }
  g_autoptr (DcrMocoQueue) q = g_new0 (DcrMocoQueue, 1);
  q->ctx = ctx;
  q->dim = dim;
  q->size = size;
  q->n_pinned = n_pinned;
  gint64 shape[] = { (gint64) n_pinned + size, dim };
  if (!(q->queue = dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, DCR_F32, 2, shape, error)))
    return NULL;
  q->pushes = g_new0 (PushSeq, size);
  gsize n = (gsize) (n_pinned + size) * dim;
  g_autofree float *init = g_new0 (float, n);
  g_autoptr (GRand) rng = g_rand_new_with_seed_array ((const guint32 *) &seed, 2);
  float *ring = init + (gsize) n_pinned * dim;
  for (gsize i = 0; i < (gsize) size * dim; i++)
    {
      /* Box–Muller: a normal draw makes the direction uniform on the sphere */
      double u1 = g_rand_double_range (rng, 1e-12, 1.0), u2 = g_rand_double (rng);
      ring[i] = (float) (sqrt (-2 * log (u1)) * cos (2 * G_PI * u2));
    }
  normalize_rows (ring, size, dim);
  if (!dcr_tensor_upload (q->queue, init, error))
    return NULL;
  return g_steal_pointer (&q);
}

gboolean
dcr_moco_queue_set_pinned (DcrMocoQueue *q, const float *rows, GError **error)
{
  if (!q->n_pinned)
    return TRUE;
  gsize n = (gsize) q->n_pinned * q->dim;
  g_autofree float *x = g_memdup2 (rows, n * sizeof (float));
  normalize_rows (x, q->n_pinned, q->dim);
  return dcr_buffer_upload (q->queue->buf, 0, x, n * sizeof (float), error);
}

gboolean
dcr_moco_queue_push (DcrMocoQueue *q, const DcrTensor *keys, GError **error)
{
  gint64 b = keys->ndim == 2 ? keys->shape[0] : -1;
  if (keys->dtype != DCR_F32 || b < 1 || keys->shape[1] != q->dim)
    {
      g_autofree char *s = dcr_ops_shape_string (keys);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "moco queue: keys are %s %s; the queue takes f32 [b, %u]",
                   dcr_dtype_name (keys->dtype), s, q->dim);
      return FALSE;
    }
  if (b > q->size)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "moco queue: a batch of %" G_GINT64_FORMAT " keys does not fit a queue of %u; "
                   "make the queue at least as large as the batch",
                   b, q->size);
      return FALSE;
    }
  PushSeq *p = &q->pushes[q->ptr];
  if (!p->seq || p->src != keys->buf || p->b != (guint) b)
    {
      push_seq_clear (p);
      if (!(p->seq = dcr_seq_new (q->ctx, error)))
        return FALSE;
      p->src = keys->buf;
      p->b = (guint) b;
      gsize row = (gsize) q->dim * sizeof (float), ring = (gsize) q->n_pinned * row;
      guint first = MIN ((guint) b, q->size - q->ptr);
      dcr_seq_copy (p->seq, keys->buf, 0, q->queue->buf, ring + q->ptr * row, first * row);
      if (first < b)
        dcr_seq_copy (p->seq, keys->buf, first * row, q->queue->buf, ring, (b - first) * row);
    }
  if (!dcr_seq_submit (p->seq, TRUE, error))
    return FALSE;
  q->ptr = (guint) ((q->ptr + b) % q->size);
  return TRUE;
}

const DcrTensor *
dcr_moco_queue_tensor (DcrMocoQueue *q)
{
  return q->queue;
}

guint
dcr_moco_queue_pointer (DcrMocoQueue *q)
{
  return q->ptr;
}

guint
dcr_moco_queue_size (DcrMocoQueue *q)
{
  return q->size;
}

guint
dcr_moco_queue_n_pinned (DcrMocoQueue *q)
{
  return q->n_pinned;
}

gboolean
dcr_moco_queue_restore (DcrMocoQueue *q, const float *rows, guint pointer, GError **error)
{
  if (pointer >= q->size)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "moco queue: pointer %u is outside a ring of %u",
                   pointer, q->size);
      return FALSE;
    }
  if (!dcr_tensor_upload (q->queue, rows, error))
    return FALSE;
  q->ptr = pointer;
  return TRUE;
}
