/* dcr-ops.c — what the op families share: the error domain, activations,
 * the dtype/shape checks and their messages, and pipeline lookup + dispatch. */
#include "dcr-ops.h"

#include <math.h>

G_DEFINE_QUARK (dcr-ops-error-quark, dcr_ops_error)

const char *
dcr_act_name (DcrAct act)
{
  switch (act)
    {
    case DCR_ACT_NONE: return "none";
    case DCR_ACT_RELU: return "relu";
    case DCR_ACT_RELU6: return "relu6";
    case DCR_ACT_GELU: return "gelu";
    case DCR_ACT_QUICK_GELU: return "quick_gelu";
    }
  return "?";
}

float
dcr_ref_act (DcrAct act, float x)
{
  switch (act)
    {
    case DCR_ACT_NONE: return x;
    case DCR_ACT_RELU: return x > 0 ? x : 0;
    case DCR_ACT_RELU6: return x < 0 ? 0 : x > 6 ? 6 : x;
    case DCR_ACT_GELU: return (float) (0.5 * x * (1.0 + erf (x / sqrt (2.0))));
    case DCR_ACT_QUICK_GELU: return (float) (x / (1.0 + exp (-1.702 * x)));
    }
  return x;
}

char *
dcr_ops_shape_string (const DcrTensor *t)
{
  GString *s = g_string_new ("[");
  for (int i = 0; i < t->ndim; i++)
    g_string_append_printf (s, i ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, t->shape[i]);
  g_string_append_printf (s, "] %s", dcr_dtype_name (t->dtype));
  return g_string_free (s, FALSE);
}

gboolean
dcr_ops_check_dtype (DcrSeq *seq, const char *op, const DcrTensor *t, GError **error)
{
  if (t->dtype != DCR_F32 && t->dtype != DCR_F16)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE, "%s: %s tensors are not supported (f32 or f16)",
                   op, dcr_dtype_name (t->dtype));
      return FALSE;
    }
  if (t->dtype == DCR_F16 && !dcr_context_device (dcr_seq_context (seq))->storage_16bit)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE,
                   "%s: this device (%s) has no 16-bit storage; use f32 tensors", op,
                   dcr_context_device (dcr_seq_context (seq))->name);
      return FALSE;
    }
  return TRUE;
}

const char *
dcr_ops_shader_name (const char *base, DcrDtype dtype, char *buf, gsize len)
{
  g_snprintf (buf, len, dtype == DCR_F16 ? "%s_f16" : "%s", base);
  return buf;
}

gboolean
dcr_ops_shape_error (GError **error, const char *op, const char *what, const DcrTensor *a, const DcrTensor *b)
{
  g_autofree char *sa = dcr_ops_shape_string (a);
  g_autofree char *sb = b ? dcr_ops_shape_string (b) : NULL;
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: %s (%s%s%s)", op, what, sa,
               sb ? " vs " : "", sb ? sb : "");
  return FALSE;
}

gboolean
dcr_ops_same_shape (const DcrTensor *a, const DcrTensor *b)
{
  if (a->ndim != b->ndim)
    return FALSE;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return FALSE;
  return TRUE;
}

gboolean
dcr_ops_need_subgroups (DcrSeq *seq, const char *op, GError **error)
{
  const DcrDeviceInfo *dev = dcr_context_device (dcr_seq_context (seq));
  if (dev->subgroup_arithmetic)
    return TRUE;
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
               "%s: this device (%s) has no subgroup arithmetic in compute shaders", op, dev->name);
  return FALSE;
}

DcrTensor
dcr_ops_view_2d (const DcrTensor *t, gint64 rows, gint64 cols)
{
  DcrTensor v = *t;
  v.ndim = 2;
  v.shape[0] = rows;
  v.shape[1] = cols;
  return v;
}

DcrBinding
dcr_ops_bind (const DcrTensor *t, gboolean write)
{
  return (DcrBinding) { t->buf, 0, dcr_tensor_bytes (t), write };
}

guint32
dcr_ops_groups (gint64 n, guint32 local)
{
  return (guint32) MIN ((n + local - 1) / local, (gint64) DCR_OPS_MAX_GROUPS);
}

gboolean
dcr_ops_dispatch (DcrSeq *seq, const char *shader, const guint32 *spec, guint n_spec, const DcrBinding *bindings,
                  guint n_bindings, const void *push, guint push_size, guint32 gx, guint32 gy, guint32 gz,
                  GError **error)
{
  DcrPipeline *pipe = dcr_pipeline_get (dcr_seq_context (seq), shader, spec, n_spec, n_bindings, push_size, error);
  if (!pipe)
    return FALSE;
  dcr_seq_dispatch (seq, pipe, bindings, n_bindings, push, push_size, gx, gy, gz);
  return TRUE;
}
