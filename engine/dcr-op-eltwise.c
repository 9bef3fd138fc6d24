/* dcr-op-eltwise.c — pointwise ops: broadcasting rules, dispatch size and
 * the CPU references. */
#include "dcr-op-eltwise.h"

#include <math.h>

static const char *const op_names[] = { "add", "mul", "absdiff" };

void
dcr_ref_binary (DcrBinaryOp op, const float *a, gint64 n, const float *b, gint64 nb, float *y, DcrAct act)
{
  for (gint64 i = 0; i < n; i++)
    {
      float u = a[i], v = b[i % nb], r;
      switch (op)
        {
        case DCR_BINARY_ADD: r = u + v; break;
        case DCR_BINARY_MUL: r = u * v; break;
        case DCR_BINARY_ABSDIFF: r = fabsf (u - v); break;
        default: r = u; break;
        }
      y[i] = dcr_ref_act (act, r);
    }
}

void
dcr_ref_clamp (const float *x, gint64 n, float *y, float lo, float hi)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}

void
dcr_ref_activation (const float *x, gint64 n, float *y, DcrAct act)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = dcr_ref_act (act, x[i]);
}

typedef struct {
  guint32 nb, rows;
  float lo, hi;
} EltPush;

enum { OP_CLAMP = 3, OP_ACT = 4 };

static gboolean
check_tensor (DcrSeq *seq, const char *op, const DcrTensor *t, const DcrTensor *like, GError **error)
{
  if (!dcr_ops_check_dtype (seq, op, t, error))
    return FALSE;
  if (t->dtype != like->dtype)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE, "%s: tensors must share one dtype (%s and %s)",
                   op, dcr_dtype_name (like->dtype), dcr_dtype_name (t->dtype));
      return FALSE;
    }
  if (dcr_tensor_numel (t) >= G_MAXINT32)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: %" G_GINT64_FORMAT " elements are too many for one call; split the tensor", op,
                   dcr_tensor_numel (t));
      return FALSE;
    }
  return TRUE;
}

static gboolean
output_shape_ok (const char *op, const DcrTensor *a, const DcrTensor *y, GError **error)
{
  if (dcr_ops_same_shape (a, y))
    return TRUE;
  g_autofree char *as = dcr_ops_shape_string (a);
  g_autofree char *ys = dcr_ops_shape_string (y);
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: the output is %s, expected the input's shape %s",
               op, ys, as);
  return FALSE;
}

/* b broadcasts when it is a single value or, without its leading 1s, equals
 * a's trailing dims */
static gboolean
broadcasts (const DcrTensor *a, const DcrTensor *b)
{
  if (dcr_tensor_numel (b) == 1)
    return TRUE;
  int lead = 0;
  while (lead < b->ndim - 1 && b->shape[lead] == 1)
    lead++;
  int nb = b->ndim - lead;
  if (nb > a->ndim)
    return FALSE;
  for (int i = 0; i < nb; i++)
    if (b->shape[lead + i] != a->shape[a->ndim - nb + i])
      return FALSE;
  return TRUE;
}

static guint32
pow2_at_most (gint64 v, guint32 cap)
{
  guint32 p = 1;
  while ((gint64) p * 2 <= v && p * 2 <= cap)
    p *= 2;
  return p;
}

/* b = NULL: a unary op over a, seen as one row */
static gboolean
record (DcrSeq *seq, guint32 opcode, DcrAct act, const DcrTensor *a, const DcrTensor *b, DcrTensor *y,
        float lo, float hi, GError **error)
{
  DcrContext *ctx = dcr_seq_context (seq);
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  gint64 n = dcr_tensor_numel (a), nb = b ? dcr_tensor_numel (b) : n;
  gboolean vec = n % 4 == 0 && nb % 4 == 0;
  gint64 width = vec ? nb / 4 : nb, rows = n / nb;
  guint32 lx = pow2_at_most (width, 64), ly = 64 / lx;
  guint32 spec[] = { lx, ly, 1, opcode, act, vec };
  char name[32];
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("eltwise", a->dtype, name, sizeof name),
                                        spec, G_N_ELEMENTS (spec), 3, sizeof (EltPush), error);
  if (!pipe)
    return FALSE;
  EltPush pc = { (guint32) width, (guint32) rows, lo, hi };
  /* a few elements per invocation at most; the loops in the shader cover the rest */
  gint64 gx = MIN ((width + lx * 4 - 1) / (lx * 4), MIN (dev->max_workgroup_count[0], 4096));
  gint64 gy = MIN ((rows + ly - 1) / ly, MIN (dev->max_workgroup_count[1], 4096));
  const DcrTensor *bt = b ? b : a;
  DcrBinding bind[3] = {
    { a->buf, 0, dcr_tensor_bytes (a), FALSE },
    { bt->buf, 0, dcr_tensor_bytes (bt), FALSE },
    { y->buf, 0, dcr_tensor_bytes (y), TRUE },
  };
  dcr_seq_dispatch (seq, pipe, bind, 3, &pc, sizeof pc, (guint32) MAX (gx, 1), (guint32) MAX (gy, 1), 1);
  return TRUE;
}

gboolean
dcr_op_binary (DcrSeq *seq, DcrBinaryOp op, const DcrTensor *a, const DcrTensor *b, DcrTensor *y,
               DcrAct act, GError **error)
{
  if ((guint) op >= G_N_ELEMENTS (op_names))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "binary op %d is unknown", op);
      return FALSE;
    }
  const char *name = op_names[op];
  if (!check_tensor (seq, name, a, a, error) || !check_tensor (seq, name, b, a, error)
      || !check_tensor (seq, name, y, a, error) || !output_shape_ok (name, a, y, error))
    return FALSE;
  if (!broadcasts (a, b))
    {
      g_autofree char *as = dcr_ops_shape_string (a);
      g_autofree char *bs = dcr_ops_shape_string (b);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "%s: %s does not broadcast against %s (it must equal the trailing dimensions)", name, bs, as);
      return FALSE;
    }
  return record (seq, op, act, a, b, y, 0, 0, error);
}

gboolean
dcr_op_add (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b, DcrTensor *y, GError **error)
{
  return dcr_op_binary (seq, DCR_BINARY_ADD, a, b, y, DCR_ACT_NONE, error);
}

gboolean
dcr_op_mul (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b, DcrTensor *y, GError **error)
{
  return dcr_op_binary (seq, DCR_BINARY_MUL, a, b, y, DCR_ACT_NONE, error);
}

gboolean
dcr_op_absdiff (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b, DcrTensor *y, GError **error)
{
  return dcr_op_binary (seq, DCR_BINARY_ABSDIFF, a, b, y, DCR_ACT_NONE, error);
}

gboolean
dcr_op_clamp (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, float lo, float hi, GError **error)
{
  if (!check_tensor (seq, "clamp", x, x, error) || !check_tensor (seq, "clamp", y, x, error)
      || !output_shape_ok ("clamp", x, y, error))
    return FALSE;
  if (!(lo <= hi))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "clamp: the range [%g, %g] is empty", lo, hi);
      return FALSE;
    }
  return record (seq, OP_CLAMP, DCR_ACT_NONE, x, NULL, y, lo, hi, error);
}

gboolean
dcr_op_activation (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, DcrAct act, GError **error)
{
  if (!check_tensor (seq, "activation", x, x, error) || !check_tensor (seq, "activation", y, x, error)
      || !output_shape_ok ("activation", x, y, error))
    return FALSE;
  if ((guint) act > DCR_ACT_QUICK_GELU)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "activation: unknown activation %d", act);
      return FALSE;
    }
  return record (seq, OP_ACT, act, x, NULL, y, 0, 0, error);
}
