/* dcr-op-heads.c — difference tokens and the sigmoid gate of the DCR heads:
 * shape checks, dispatch and the CPU references. Shader: heads.comp. */
#include "dcr-op-heads.h"

#include <math.h>

#define LOCAL 128
#define MAX_GROUPS 4096u

static gboolean
shape_error (GError **error, const char *op, const char *what, const DcrTensor *a, const DcrTensor *b)
{
  g_autofree char *sa = dcr_ops_shape_string (a);
  g_autofree char *sb = b ? dcr_ops_shape_string (b) : NULL;
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: %s (%s%s%s)", op, what, sa, sb ? " vs " : "",
               sb ? sb : "");
  return FALSE;
}

static gboolean
check (DcrSeq *seq, const char *op, const DcrTensor *ref, const DcrTensor *t, GError **error)
{
  if (!dcr_ops_check_dtype (seq, op, t, error))
    return FALSE;
  if (t->dtype != ref->dtype)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE, "%s: tensors mix %s and %s; use one dtype", op,
                   dcr_dtype_name (ref->dtype), dcr_dtype_name (t->dtype));
      return FALSE;
    }
  if (dcr_tensor_numel (t) >= G_MAXINT32)
    return shape_error (error, op, "more than 2³¹ elements; split the batch", t, NULL);
  return TRUE;
}

static guint32
groups_for (gint64 n)
{
  return (guint32) CLAMP ((n + LOCAL * 4 - 1) / (LOCAL * 4), 1, MAX_GROUPS);
}

static DcrBinding
bind (const DcrTensor *t, gboolean write)
{
  return (DcrBinding) { t->buf, 0, dcr_tensor_bytes (t), write };
}

typedef struct {
  guint32 batch, tokens, dim, base, rows;
} DiffPush;

/* f [B, D], d [B, L, D], d1 [B, D] or NULL */
static gboolean
check_diff (DcrSeq *seq, const char *op, const DcrTensor *f, const DcrTensor *d, const DcrTensor *d1,
            gint64 *batch, gint64 *tokens, gint64 *dim, GError **error)
{
  if (!check (seq, op, f, f, error) || !check (seq, op, f, d, error) || (d1 && !check (seq, op, f, d1, error)))
    return FALSE;
  if (f->ndim != 2 || d->ndim != 3 || d->shape[0] != f->shape[0] || d->shape[2] != f->shape[1])
    return shape_error (error, op, "f must be [B, D] and d [B, L, D]", f, d);
  if (d1 && dcr_tensor_numel (d1) != dcr_tensor_numel (f))
    return shape_error (error, op, "d1 must have f's shape", d1, f);
  *batch = d->shape[0];
  *tokens = d->shape[1];
  *dim = d->shape[2];
  return TRUE;
}

static gboolean
record_diff (DcrSeq *seq, const char *shader, const DcrBinding *bindings, guint n_bindings, gboolean write_d1,
             const DiffPush *pc, GError **error)
{
  guint32 spec[] = { LOCAL, 1, 1, write_d1 };
  DcrPipeline *pipe = dcr_pipeline_get (dcr_seq_context (seq), shader, spec, G_N_ELEMENTS (spec), n_bindings,
                                        sizeof *pc, error);
  if (!pipe)
    return FALSE;
  /* a workgroup per row (b, j) of d (shaders/heads.comp) */
  dcr_seq_dispatch (seq, pipe, bindings, n_bindings, pc, sizeof *pc, MIN (pc->tokens, DCR_OPS_MAX_GROUPS),
                    MIN (pc->batch, DCR_OPS_MAX_GROUPS), 1);
  return TRUE;
}

gboolean
dcr_op_diff_tokens (DcrSeq *seq, const DcrTensor *f, const DcrTensor *r, DcrTensor *d, DcrTensor *d1,
                    GError **error)
{
  const char *op = "diff_tokens";
  gint64 b, l, dim;
  if (!check_diff (seq, op, f, d, d1, &b, &l, &dim, error) || !check (seq, op, f, r, error))
    return FALSE;
  if (r->ndim != 3 || r->shape[0] != b || r->shape[1] != l || r->shape[2] != dim)
    return shape_error (error, op, "r must have d's shape [B, L, D]", r, d);
  if (b * l * dim == 0)
    return TRUE;
  char name[32];
  DcrBinding bindings[] = { bind (f, FALSE), bind (r, FALSE), bind (d, TRUE), bind (d1 ? d1 : d, TRUE) };
  DiffPush pc = { (guint32) b, (guint32) l, (guint32) dim, 0, 0 };
  return record_diff (seq, dcr_ops_shader_name ("heads_diff", f->dtype, name, sizeof name), bindings, 4,
                      d1 != NULL, &pc, error);
}

gboolean
dcr_op_diff_tokens_gather (DcrSeq *seq, const DcrTensor *f, const DcrTensor *chunk, const DcrTensor *indices,
                           guint32 base, DcrTensor *d, DcrTensor *d1, GError **error)
{
  const char *op = "diff_tokens_gather";
  gint64 b, l, dim;
  if (!check_diff (seq, op, f, d, d1, &b, &l, &dim, error) || !check (seq, op, f, chunk, error))
    return FALSE;
  if (chunk->ndim != 2 || chunk->shape[1] != dim)
    return shape_error (error, op, "the bank chunk must be [rows, D]", chunk, f);
  if (indices->dtype != DCR_U32 || dcr_tensor_numel (indices) != b * l)
    return shape_error (error, op, "indices must be [B, L] u32", indices, d);
  if (b * l * dim == 0 || chunk->shape[0] == 0)
    return TRUE;
  char name[32];
  DcrBinding bindings[] = {
    bind (f, FALSE), bind (chunk, FALSE), bind (indices, FALSE), bind (d, TRUE), bind (d1 ? d1 : d, TRUE),
  };
  DiffPush pc = { (guint32) b, (guint32) l, (guint32) dim, base, (guint32) MIN (chunk->shape[0], G_MAXUINT32) };
  return record_diff (seq, dcr_ops_shader_name ("heads_gather", f->dtype, name, sizeof name), bindings, 5,
                      d1 != NULL, &pc, error);
}

static gboolean
same_numel (const char *op, const DcrTensor *a, const DcrTensor *b, GError **error)
{
  if (dcr_tensor_numel (a) == dcr_tensor_numel (b))
    return TRUE;
  return shape_error (error, op, "tensors must have the same number of elements", a, b);
}

gboolean
dcr_op_gate (DcrSeq *seq, const DcrTensor *f, const DcrTensor *c, const DcrTensor *z, DcrTensor *y,
             GError **error)
{
  const char *op = "gate";
  const DcrTensor *all[] = { c, z, y };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    if (!check (seq, op, f, all[i], error) || !same_numel (op, f, all[i], error))
      return FALSE;
  gint64 n = dcr_tensor_numel (f);
  if (n == 0)
    return TRUE;
  char name[32];
  guint32 spec[] = { LOCAL, 1, 1 };
  DcrPipeline *pipe = dcr_pipeline_get (dcr_seq_context (seq),
                                        dcr_ops_shader_name ("heads_gate", f->dtype, name, sizeof name), spec,
                                        G_N_ELEMENTS (spec), 4, sizeof (guint32), error);
  if (!pipe)
    return FALSE;
  DcrBinding bindings[] = { bind (f, FALSE), bind (c, FALSE), bind (z, FALSE), bind (y, TRUE) };
  guint32 pc = (guint32) n;
  dcr_seq_dispatch (seq, pipe, bindings, 4, &pc, sizeof pc, groups_for (n), 1, 1);
  return TRUE;
}

gboolean
dcr_op_gate_backward (DcrSeq *seq, const DcrTensor *c, const DcrTensor *z, const DcrTensor *dy, DcrTensor *dc,
                      DcrTensor *dz, gboolean accumulate, GError **error)
{
  const char *op = "gate_backward";
  const DcrTensor *all[] = { c, z, dy, dc, dz };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    {
      if (all[i]->dtype != DCR_F32)
        {
          g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE, "%s: tensors are %s; this op takes f32", op,
                       dcr_dtype_name (all[i]->dtype));
          return FALSE;
        }
      if (!check (seq, op, c, all[i], error) || !same_numel (op, c, all[i], error))
        return FALSE;
    }
  gint64 n = dcr_tensor_numel (c);
  if (n == 0)
    return TRUE;
  guint32 spec[] = { LOCAL, 1, 1 };
  DcrPipeline *pipe = dcr_pipeline_get (dcr_seq_context (seq), "heads_gate_bwd", spec, G_N_ELEMENTS (spec), 5,
                                        2 * sizeof (guint32), error);
  if (!pipe)
    return FALSE;
  DcrBinding bindings[] = { bind (c, FALSE), bind (z, FALSE), bind (dy, FALSE), bind (dc, TRUE), bind (dz, TRUE) };
  guint32 pc[2] = { (guint32) n, accumulate ? 1 : 0 };
  dcr_seq_dispatch (seq, pipe, bindings, 5, pc, sizeof pc, groups_for (n), 1, 1);
  return TRUE;
}

void
dcr_ref_diff_tokens (const float *f, const float *r, float *d, float *d1, gint64 batch, gint64 tokens, gint64 dim)
{
  for (gint64 b = 0; b < batch; b++)
    for (gint64 j = 0; j < tokens; j++)
      for (gint64 c = 0; c < dim; c++)
        {
          float v = fabsf (f[b * dim + c] - r[(b * tokens + j) * dim + c]);
          d[(b * tokens + j) * dim + c] = v;
          if (d1 && j == 0)
            d1[b * dim + c] = v;
        }
}

void
dcr_ref_diff_tokens_gather (const float *f, const float *bank, const guint32 *positions, float *d, float *d1,
                            gint64 batch, gint64 tokens, gint64 dim)
{
  for (gint64 b = 0; b < batch; b++)
    for (gint64 j = 0; j < tokens; j++)
      {
        const float *r = bank + (gint64) positions[b * tokens + j] * dim;
        for (gint64 c = 0; c < dim; c++)
          {
            float v = fabsf (f[b * dim + c] - r[c]);
            d[(b * tokens + j) * dim + c] = v;
            if (d1 && j == 0)
              d1[b * dim + c] = v;
          }
      }
}

static double
sigmoid (double x)
{
  return 1.0 / (1.0 + exp (-x));
}

void
dcr_ref_gate (const float *f, const float *c, const float *z, float *y, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = (float) (f[i] + sigmoid (z[i]) * c[i]);
}

void
dcr_ref_gate_backward (const float *c, const float *z, const float *dy, float *dc, float *dz, gint64 n,
                       gboolean accumulate)
{
  for (gint64 i = 0; i < n; i++)
    {
      double g = sigmoid (z[i]);
      double vc = dy[i] * g, vz = dy[i] * (double) c[i] * g * (1.0 - g);
      dc[i] = (float) (accumulate ? dc[i] + vc : vc);
      dz[i] = (float) (accumulate ? dz[i] + vz : vz);
    }
}
