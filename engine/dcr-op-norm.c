/* dcr-op-norm.c — layer norm and L2 normalisation along the last dim, and
 * their CPU references. One subgroup normalises one row (shaders/norm.comp). */
#include "dcr-op-norm.h"

#include <math.h>

typedef struct {
  guint32 rows;
  guint32 d;
  float eps;
  guint32 affine; /* bit 0: gamma, bit 1: beta */
} NormPush;

enum { MODE_LAYER_NORM = 0, MODE_L2 = 1 };

static gboolean
shape_error (const char *op, const char *what, const DcrTensor *a, const DcrTensor *b, GError **error)
{
  g_autofree char *sa = dcr_ops_shape_string (a);
  g_autofree char *sb = b ? dcr_ops_shape_string (b) : NULL;
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: %s (x is %s%s%s)", op, what, sa,
               sb ? ", other is " : "", sb ? sb : "");
  return FALSE;
}

static gboolean
record_norm (DcrSeq *seq, const char *op, guint32 mode, const DcrTensor *x, const DcrTensor *gamma,
             const DcrTensor *beta, DcrTensor *y, float eps, GError **error)
{
  if (!dcr_ops_check_dtype (seq, op, x, error))
    return FALSE;
  if (!dcr_ops_same_shape (x, y) || y->dtype != x->dtype)
    return shape_error (op, "y must have the shape and dtype of x", x, y, error);
  gint64 d = x->shape[x->ndim - 1];
  const DcrTensor *aff[2] = { gamma, beta };
  for (int i = 0; i < 2; i++)
    if (aff[i] && (aff[i]->dtype != x->dtype || dcr_tensor_numel (aff[i]) != d))
      return shape_error (op, i ? "beta must be [D] in the dtype of x" : "gamma must be [D] in the dtype of x",
                          x, aff[i], error);
  gint64 rows = d ? dcr_tensor_numel (x) / d : 0;
  if (rows == 0)
    return TRUE;
  if (dcr_tensor_numel (x) > G_MAXUINT32)
    return shape_error (op, "more than 2³² elements; split the tensor", x, NULL, error);

  DcrContext *ctx = dcr_seq_context (seq);
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  char name[32];
  guint32 spec[] = { dev->subgroup_size, 1, 1, mode, d % 4 == 0 };
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("norm", x->dtype, name, sizeof name), spec,
                                        G_N_ELEMENTS (spec), 4, sizeof (NormPush), error);
  if (!pipe)
    return FALSE;
  /* Unused optional bindings point at x: read-only and never touched. */
  DcrBinding b[] = {
    { x->buf, 0, 0, FALSE },
    { gamma ? gamma->buf : x->buf, 0, 0, FALSE },
    { beta ? beta->buf : x->buf, 0, 0, FALSE },
    { y->buf, 0, 0, TRUE },
  };
  NormPush push = { (guint32) rows, (guint32) d, eps, (gamma != NULL) | (beta != NULL) << 1 };
  /* A CPU device runs a few long workgroups better than one per row; GPUs
   * want every row in flight. */
  guint32 max_groups = dev->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 64 : MIN (dev->max_workgroup_count[0], 65535u);
  guint32 groups = (guint32) MIN (rows, (gint64) max_groups);
  dcr_seq_dispatch (seq, pipe, b, G_N_ELEMENTS (b), &push, sizeof push, groups, 1, 1);
  return TRUE;
}

gboolean
dcr_op_layer_norm (DcrSeq *seq, const DcrTensor *x, const DcrTensor *gamma, const DcrTensor *beta,
                   DcrTensor *y, float eps, GError **error)
{
  return record_norm (seq, "layer_norm", MODE_LAYER_NORM, x, gamma, beta, y, eps, error);
}

gboolean
dcr_op_l2_normalize (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, float eps, GError **error)
{
  return record_norm (seq, "l2_normalize", MODE_L2, x, NULL, NULL, y, eps, error);
}

void
dcr_ref_layer_norm (const float *x, const float *gamma, const float *beta, float *y,
                    gint64 rows, gint64 d, float eps)
{
  for (gint64 r = 0; r < rows; r++)
    {
      const float *xr = x + r * d;
      double mean = 0, var = 0;
      for (gint64 i = 0; i < d; i++)
        mean += xr[i];
      mean /= d;
      for (gint64 i = 0; i < d; i++)
        var += (xr[i] - mean) * (xr[i] - mean);
      var /= d;
      double rstd = 1.0 / sqrt (var + eps);
      for (gint64 i = 0; i < d; i++)
        y[r * d + i] = (float) ((xr[i] - mean) * rstd * (gamma ? gamma[i] : 1.0) + (beta ? beta[i] : 0.0));
    }
}

void
dcr_ref_l2_normalize (const float *x, float *y, gint64 rows, gint64 d, float eps)
{
  for (gint64 r = 0; r < rows; r++)
    {
      double ss = 0;
      for (gint64 i = 0; i < d; i++)
        ss += (double) x[r * d + i] * x[r * d + i];
      double s = 1.0 / MAX (sqrt (ss), (double) eps);
      for (gint64 i = 0; i < d; i++)
        y[r * d + i] = (float) (x[r * d + i] * s);
    }
}
