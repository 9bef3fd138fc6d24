/* dcr-op-pool.c — pooling: shape checks, dispatch geometry and the CPU
 * references. */
#include "dcr-op-pool.h"

#include <float.h>

gint64
dcr_pool2d_out_size (gint64 in, int kernel, int stride, int pad_before, int pad_after)
{
  stride = stride > 0 ? stride : kernel;
  gint64 padded = in + pad_before + pad_after;
  if (kernel < 1 || stride < 1 || padded < kernel)
    return 0;
  return (padded - kernel) / stride + 1;
}

static int
stride_or_kernel (int stride, int kernel)
{
  return stride > 0 ? stride : kernel;
}

void
dcr_ref_pool2d (const float *x, gint64 n, gint64 h, gint64 w, gint64 c, float *y,
                const DcrPool2dParams *p)
{
  int sh = stride_or_kernel (p->stride_h, p->kernel_h), sw = stride_or_kernel (p->stride_w, p->kernel_w);
  gint64 ho = dcr_pool2d_out_size (h, p->kernel_h, sh, p->pad_top, p->pad_bottom);
  gint64 wo = dcr_pool2d_out_size (w, p->kernel_w, sw, p->pad_left, p->pad_right);
  for (gint64 b = 0; b < n; b++)
    for (gint64 oy = 0; oy < ho; oy++)
      for (gint64 ox = 0; ox < wo; ox++)
        for (gint64 ch = 0; ch < c; ch++)
          {
            double acc = p->mode == DCR_POOL_MAX ? -DBL_MAX : 0.0;
            gint64 count = 0;
            for (int ky = 0; ky < p->kernel_h; ky++)
              for (int kx = 0; kx < p->kernel_w; kx++)
                {
                  gint64 iy = oy * sh - p->pad_top + ky, ix = ox * sw - p->pad_left + kx;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                    continue;
                  double v = x[((b * h + iy) * w + ix) * c + ch];
                  acc = p->mode == DCR_POOL_MAX ? MAX (acc, v) : acc + v;
                  count++;
                }
            if (p->mode == DCR_POOL_AVG)
              acc /= p->count_include_pad ? p->kernel_h * p->kernel_w : count;
            y[((b * ho + oy) * wo + ox) * c + ch] = (float) acc;
          }
}

void
dcr_ref_global_avg_pool (const float *x, gint64 n, gint64 h, gint64 w, gint64 c, float *y)
{
  for (gint64 b = 0; b < n; b++)
    for (gint64 ch = 0; ch < c; ch++)
      {
        double s = 0;
        for (gint64 i = 0; i < h * w; i++)
          s += x[(b * h * w + i) * c + ch];
        y[b * c + ch] = (float) (s / (double) (h * w));
      }
}

typedef struct {
  guint32 H, W, C, Ho, Wo, KH, KW, SH, SW;
  gint32 PT, PL;
  guint32 n0;
  float scale;
} PoolPush;

static gboolean
check_pair (DcrSeq *seq, const char *op, const DcrTensor *x, const DcrTensor *y, GError **error)
{
  if (!dcr_ops_check_dtype (seq, op, x, error) || !dcr_ops_check_dtype (seq, op, y, error))
    return FALSE;
  if (x->dtype != y->dtype)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE, "%s: input is %s but output is %s", op,
                   dcr_dtype_name (x->dtype), dcr_dtype_name (y->dtype));
      return FALSE;
    }
  if (x->ndim != 4)
    {
      g_autofree char *xs = dcr_ops_shape_string (x);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: the input is %s, expected [N, H, W, C]",
                   op, xs);
      return FALSE;
    }
  if (dcr_tensor_numel (x) >= G_MAXINT32)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: %" G_GINT64_FORMAT " elements are too many for one call; split the batch", op,
                   dcr_tensor_numel (x));
      return FALSE;
    }
  return TRUE;
}

static guint32
next_pow2 (gint64 v)
{
  guint32 p = 1;
  while (p < v && p < 1024)
    p <<= 1;
  return p;
}

static gboolean
record (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, guint32 mode, gint64 ho, gint64 wo,
        const PoolPush *base, GError **error)
{
  DcrContext *ctx = dcr_seq_context (seq);
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  gint64 n = x->shape[0], c = x->shape[3];
  gboolean vec = c % 4 == 0;
  gint64 cx = vec ? c / 4 : c;
  gboolean global = mode == 3;
  guint32 lx = MIN (next_pow2 (cx), 64), ly = global ? 1 : MIN (next_pow2 (wo), 64 / lx);
  guint32 spec[] = { lx, ly, 1, mode, vec };
  char name[32];
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("pool", x->dtype, name, sizeof name),
                                        spec, G_N_ELEMENTS (spec), 2, sizeof (PoolPush), error);
  if (!pipe)
    return FALSE;
  DcrBinding b[2] = {
    { x->buf, 0, dcr_tensor_bytes (x), FALSE },
    { y->buf, 0, dcr_tensor_bytes (y), TRUE },
  };
  /* images per dispatch, within the workgroup-count limit of the dimension that carries them */
  gint64 chunk = global ? dev->max_workgroup_count[1] : MAX (dev->max_workgroup_count[2] / ho, 1);
  for (gint64 n0 = 0; n0 < n; n0 += chunk)
    {
      gint64 nn = MIN (chunk, n - n0);
      PoolPush pc = *base;
      pc.n0 = (guint32) n0;
      guint32 gx = (guint32) ((cx + lx - 1) / lx);
      if (global)
        dcr_seq_dispatch (seq, pipe, b, 2, &pc, sizeof pc, gx, (guint32) nn, 1);
      else
        dcr_seq_dispatch (seq, pipe, b, 2, &pc, sizeof pc, gx, (guint32) ((wo + ly - 1) / ly),
                          (guint32) (nn * ho));
    }
  return TRUE;
}

gboolean
dcr_op_pool2d (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, const DcrPool2dParams *p, GError **error)
{
  if (!check_pair (seq, "pool2d", x, y, error))
    return FALSE;
  int sh = stride_or_kernel (p->stride_h, p->kernel_h), sw = stride_or_kernel (p->stride_w, p->kernel_w);
  if (p->kernel_h < 1 || p->kernel_w < 1 || sh < 1 || sw < 1)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "pool2d: kernel %dx%d, stride %dx%d",
                   p->kernel_h, p->kernel_w, sh, sw);
      return FALSE;
    }
  if (p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0
      || p->pad_top >= p->kernel_h || p->pad_bottom >= p->kernel_h
      || p->pad_left >= p->kernel_w || p->pad_right >= p->kernel_w)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "pool2d: padding (%d, %d, %d, %d) must be ≥ 0 and smaller than the %dx%d kernel",
                   p->pad_top, p->pad_bottom, p->pad_left, p->pad_right, p->kernel_h, p->kernel_w);
      return FALSE;
    }
  if (p->mode != DCR_POOL_MAX && p->mode != DCR_POOL_AVG)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "pool2d: unknown mode %d", p->mode);
      return FALSE;
    }
  gint64 n = x->shape[0], h = x->shape[1], w = x->shape[2], c = x->shape[3];
  gint64 ho = dcr_pool2d_out_size (h, p->kernel_h, sh, p->pad_top, p->pad_bottom);
  gint64 wo = dcr_pool2d_out_size (w, p->kernel_w, sw, p->pad_left, p->pad_right);
  if (ho < 1 || wo < 1 || y->ndim != 4 || y->shape[0] != n || y->shape[1] != ho || y->shape[2] != wo
      || y->shape[3] != c)
    {
      g_autofree char *xs = dcr_ops_shape_string (x);
      g_autofree char *ys = dcr_ops_shape_string (y);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "pool2d: a %dx%d window, stride %dx%d, padding (%d, %d, %d, %d) maps %s to "
                   "[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   "], but the output is %s", p->kernel_h, p->kernel_w, sh, sw, p->pad_top, p->pad_bottom,
                   p->pad_left, p->pad_right, xs, n, ho, wo, c, ys);
      return FALSE;
    }
  guint32 mode = p->mode == DCR_POOL_MAX ? 0 : p->count_include_pad ? 1 : 2;
  PoolPush pc = {
    (guint32) h, (guint32) w, (guint32) c, (guint32) ho, (guint32) wo, p->kernel_h, p->kernel_w, sh, sw,
    p->pad_top, p->pad_left, 0, mode == 1 ? 1.0f / (float) (p->kernel_h * p->kernel_w) : 1.0f,
  };
  return record (seq, x, y, mode, ho, wo, &pc, error);
}

gboolean
dcr_op_global_avg_pool (DcrSeq *seq, const DcrTensor *x, DcrTensor *y, GError **error)
{
  if (!check_pair (seq, "global_avg_pool", x, y, error))
    return FALSE;
  gint64 n = x->shape[0], h = x->shape[1], w = x->shape[2], c = x->shape[3];
  gboolean ok = (y->ndim == 2 && y->shape[0] == n && y->shape[1] == c)
                || (y->ndim == 4 && y->shape[0] == n && y->shape[1] == 1 && y->shape[2] == 1 && y->shape[3] == c);
  if (!ok)
    {
      g_autofree char *xs = dcr_ops_shape_string (x);
      g_autofree char *ys = dcr_ops_shape_string (y);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "global_avg_pool: the output is %s, expected [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   "] (or [N, 1, 1, C]) for input %s", ys, n, c, xs);
      return FALSE;
    }
  PoolPush pc = { (guint32) h, (guint32) w, (guint32) c, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1.0f };
  return record (seq, x, y, 3, 1, 1, &pc, error);
}
