/* dcr-op-softmax.c — softmax along the last dim with scale and additive
 * mask (shaders/softmax.comp, one subgroup per row) and its CPU reference. */
#include "dcr-op-softmax.h"

#include <math.h>

typedef struct {
  guint32 rows;
  guint32 n;
  guint32 mask_rows;
  float scale;
} SoftmaxPush;

static gboolean
shape_error (const char *what, const DcrTensor *a, const DcrTensor *b, GError **error)
{
  g_autofree char *sa = dcr_ops_shape_string (a);
  g_autofree char *sb = b ? dcr_ops_shape_string (b) : NULL;
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "softmax: %s (x is %s%s%s)", what, sa,
               sb ? ", other is " : "", sb ? sb : "");
  return FALSE;
}

gboolean
dcr_op_softmax (DcrSeq *seq, const DcrTensor *x, const DcrTensor *mask, DcrTensor *y, float scale,
                GError **error)
{
  if (!dcr_ops_check_dtype (seq, "softmax", x, error))
    return FALSE;
  gboolean same = x->ndim == y->ndim && x->dtype == y->dtype;
  for (int i = 0; same && i < x->ndim; i++)
    same = x->shape[i] == y->shape[i];
  if (!same)
    return shape_error ("y must have the shape and dtype of x", x, y, error);
  gint64 n = x->shape[x->ndim - 1];
  gint64 rows = n ? dcr_tensor_numel (x) / n : 0;
  gint64 mask_rows = 1;
  if (mask)
    {
      gint64 mn = mask->shape[mask->ndim - 1];
      mask_rows = mn ? dcr_tensor_numel (mask) / mn : 0;
      if (mask->dtype != x->dtype || mn != n || mask_rows == 0 || rows % mask_rows != 0)
        return shape_error ("mask must be [..., N] in the dtype of x, with a row count that divides x's", x,
                            mask, error);
    }
  if (rows == 0)
    return TRUE;
  if (dcr_tensor_numel (x) > G_MAXUINT32)
    return shape_error ("more than 2³² elements; split the tensor", x, NULL, error);

  DcrContext *ctx = dcr_seq_context (seq);
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  char name[32];
  guint32 spec[] = { dev->subgroup_size, 1, 1, n % 4 == 0, mask != NULL };
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("softmax", x->dtype, name, sizeof name), spec,
                                        G_N_ELEMENTS (spec), 3, sizeof (SoftmaxPush), error);
  if (!pipe)
    return FALSE;
  DcrBinding b[] = {
    { x->buf, 0, 0, FALSE },
    { mask ? mask->buf : x->buf, 0, 0, FALSE },
    { y->buf, 0, 0, TRUE },
  };
  SoftmaxPush push = { (guint32) rows, (guint32) n, (guint32) mask_rows, scale != 0 ? scale : 1.0f };
  /* A CPU device runs a few long workgroups better than one per row; GPUs
   * want every row in flight. */
  guint32 max_groups = dev->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 64 : MIN (dev->max_workgroup_count[0], 65535u);
  guint32 groups = (guint32) MIN (rows, (gint64) max_groups);
  dcr_seq_dispatch (seq, pipe, b, G_N_ELEMENTS (b), &push, sizeof push, groups, 1, 1);
  return TRUE;
}

void
dcr_ref_softmax (const float *x, const float *mask, float *y, gint64 rows, gint64 n, gint64 mask_rows,
                 float scale)
{
  if (scale == 0)
    scale = 1;
  g_autofree double *v = g_new (double, MAX (n, 1));
  for (gint64 r = 0; r < rows; r++)
    {
      double mx = -INFINITY, sum = 0;
      for (gint64 i = 0; i < n; i++)
        {
          v[i] = (double) scale * x[r * n + i] + (mask ? mask[(r % mask_rows) * n + i] : 0.0);
          mx = MAX (mx, v[i]);
        }
      for (gint64 i = 0; i < n; i++)
        sum += mx == -INFINITY ? 0 : exp (v[i] - mx);
      for (gint64 i = 0; i < n; i++)
        y[r * n + i] = sum > 0 ? (float) (exp (v[i] - mx) / sum) : 0.0f;
    }
}
