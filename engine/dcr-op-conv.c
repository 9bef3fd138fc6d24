/* dcr-op-conv.c — 2-D convolution: shape checks, the choice between the
 * implicit-GEMM, depthwise and direct kernels with their tile sizes, the
 * CPU reference and BatchNorm folding. */
#include "dcr-op-conv.h"
#include "dcr-op-gemm.h"

#include <math.h>
#include <string.h>

typedef struct {
  gint64 n, h, w, cin, cout, ho, wo;
  int kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, groups;
} ConvShape;

gint64
dcr_conv2d_out_size (gint64 in, int kernel, int stride, int pad_before, int pad_after, int dilation)
{
  stride = MAX (stride, 1);
  dilation = MAX (dilation, 1);
  gint64 span = (gint64) dilation * (kernel - 1) + 1;
  gint64 padded = in + pad_before + pad_after;
  if (padded < span)
    return 0;
  return (padded - span) / stride + 1;
}

void
dcr_conv2d_same_padding (gint64 in, int kernel, int stride, int dilation, int *pad_before, int *pad_after)
{
  stride = MAX (stride, 1);
  dilation = MAX (dilation, 1);
  gint64 out = (in + stride - 1) / stride;
  gint64 span = (gint64) dilation * (kernel - 1) + 1;
  gint64 total = MAX ((out - 1) * stride + span - in, 0);
  *pad_before = (int) (total / 2);
  *pad_after = (int) (total - total / 2);
}

static void
shape_from_params (ConvShape *s, const DcrConv2dParams *p)
{
  s->sh = MAX (p->stride_h, 1);
  s->sw = MAX (p->stride_w, 1);
  s->dh = MAX (p->dilation_h, 1);
  s->dw = MAX (p->dilation_w, 1);
  s->groups = MAX (p->groups, 1);
  s->pt = p->pad_top;
  s->pb = p->pad_bottom;
  s->pl = p->pad_left;
  s->pr = p->pad_right;
}

void
dcr_ref_conv2d (const float *x, gint64 n, gint64 h, gint64 w, gint64 cin,
                const float *weights, gint64 cout, int kh, int kw,
                const float *bias, const float *residual, float *y,
                const DcrConv2dParams *params)
{
  ConvShape s;
  shape_from_params (&s, params);
  gint64 ho = dcr_conv2d_out_size (h, kh, s.sh, s.pt, s.pb, s.dh);
  gint64 wo = dcr_conv2d_out_size (w, kw, s.sw, s.pl, s.pr, s.dw);
  gint64 cin_g = cin / s.groups, cout_g = cout / s.groups;
  for (gint64 b = 0; b < n; b++)
    for (gint64 oy = 0; oy < ho; oy++)
      for (gint64 ox = 0; ox < wo; ox++)
        for (gint64 co = 0; co < cout; co++)
          {
            gint64 g = co / cout_g;
            double acc = bias ? bias[co] : 0.0;
            for (int ky = 0; ky < kh; ky++)
              {
                gint64 iy = oy * s.sh - s.pt + (gint64) ky * s.dh;
                if (iy < 0 || iy >= h)
                  continue;
                for (int kx = 0; kx < kw; kx++)
                  {
                    gint64 ix = ox * s.sw - s.pl + (gint64) kx * s.dw;
                    if (ix < 0 || ix >= w)
                      continue;
                    const float *xp = x + ((b * h + iy) * w + ix) * cin + g * cin_g;
                    const float *wp = weights + ((co * kh + ky) * kw + kx) * cin_g;
                    for (gint64 c = 0; c < cin_g; c++)
                      acc += (double) xp[c] * wp[c];
                  }
              }
            gint64 o = ((b * ho + oy) * wo + ox) * cout + co;
            if (residual)
              acc += residual[o];
            y[o] = dcr_ref_act (params->act, (float) acc);
          }
}

void
dcr_conv_fold_batchnorm (float *weights, float *bias, gint64 cout, gint64 weights_per_out,
                         const float *gamma, const float *beta, const float *mean,
                         const float *var, float eps)
{
  for (gint64 o = 0; o < cout; o++)
    {
      double scale = gamma[o] / sqrt ((double) var[o] + eps);
      for (gint64 i = 0; i < weights_per_out; i++)
        weights[o * weights_per_out + i] = (float) (weights[o * weights_per_out + i] * scale);
      bias[o] = (float) (((double) bias[o] - mean[o]) * scale + beta[o]);
    }
}

/* ---- recording ---------------------------------------------------------- */

static gboolean
shape_error (GError **error, const char *what, const DcrTensor *t, const char *expected)
{
  g_autofree char *got = dcr_ops_shape_string (t);
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "conv2d: %s is %s, expected %s", what, got, expected);
  return FALSE;
}

static gboolean
check_shapes (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w, const DcrTensor *bias,
              const DcrTensor *residual, const DcrTensor *y, const DcrConv2dParams *params,
              ConvShape *s, GError **error)
{
  const DcrTensor *all[] = { x, w, bias, residual, y };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    {
      if (!all[i])
        continue;
      if (!dcr_ops_check_dtype (seq, "conv2d", all[i], error))
        return FALSE;
      if (all[i]->dtype != x->dtype)
        {
          g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE,
                       "conv2d: all tensors must share one dtype (input is %s, another is %s)",
                       dcr_dtype_name (x->dtype), dcr_dtype_name (all[i]->dtype));
          return FALSE;
        }
      if (dcr_tensor_numel (all[i]) >= G_MAXINT32)
        {
          g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                       "conv2d: a tensor of %" G_GINT64_FORMAT " elements is too large; split the batch",
                       dcr_tensor_numel (all[i]));
          return FALSE;
        }
    }
  shape_from_params (s, params);
  if (params->act != DCR_ACT_NONE && params->act != DCR_ACT_RELU && params->act != DCR_ACT_RELU6)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "conv2d: the fused activation must be none, relu or relu6, not %s "
                   "(apply it with dcr_op_activation)", dcr_act_name (params->act));
      return FALSE;
    }
  if (s->pt < 0 || s->pb < 0 || s->pl < 0 || s->pr < 0)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "conv2d: negative padding (%d, %d, %d, %d)",
                   s->pt, s->pb, s->pl, s->pr);
      return FALSE;
    }
  if (x->ndim != 4)
    return shape_error (error, "the input", x, "[N, H, W, C]");
  s->n = x->shape[0];
  s->h = x->shape[1];
  s->w = x->shape[2];
  s->cin = x->shape[3];
  if (s->cin % s->groups)
    {
      g_autofree char *xs = dcr_ops_shape_string (x);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "conv2d: %d groups do not divide the %" G_GINT64_FORMAT " input channels of %s",
                   s->groups, s->cin, xs);
      return FALSE;
    }
  if (w->ndim != 4 || w->shape[3] != s->cin / s->groups || w->shape[0] % s->groups)
    {
      g_autofree char *xs = dcr_ops_shape_string (x);
      g_autofree char *exp = g_strdup_printf ("[Cout, KH, KW, %" G_GINT64_FORMAT "] with Cout a multiple "
                                              "of %d groups (input %s)", s->cin / s->groups, s->groups, xs);
      return shape_error (error, "the weight tensor", w, exp);
    }
  s->cout = w->shape[0];
  s->kh = (int) w->shape[1];
  s->kw = (int) w->shape[2];
  s->ho = dcr_conv2d_out_size (s->h, s->kh, s->sh, s->pt, s->pb, s->dh);
  s->wo = dcr_conv2d_out_size (s->w, s->kw, s->sw, s->pl, s->pr, s->dw);
  if (s->ho < 1 || s->wo < 1)
    {
      g_autofree char *xs = dcr_ops_shape_string (x);
      g_autofree char *ws = dcr_ops_shape_string (w);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "conv2d: the %dx%d kernel of %s (dilation %d, %d) does not fit in the padded input %s",
                   s->kh, s->kw, ws, s->dh, s->dw, xs);
      return FALSE;
    }
  g_autofree char *ys = g_strdup_printf ("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                         ", %" G_GINT64_FORMAT "]", s->n, s->ho, s->wo, s->cout);
  if (y->ndim != 4 || y->shape[0] != s->n || y->shape[1] != s->ho || y->shape[2] != s->wo
      || y->shape[3] != s->cout)
    return shape_error (error, "the output", y, ys);
  if (residual && (residual->ndim != 4 || residual->shape[0] != s->n || residual->shape[1] != s->ho
                   || residual->shape[2] != s->wo || residual->shape[3] != s->cout))
    return shape_error (error, "the residual", residual, ys);
  if (bias && (bias->ndim != 1 || bias->shape[0] != s->cout))
    {
      g_autofree char *exp = g_strdup_printf ("[%" G_GINT64_FORMAT "]", s->cout);
      return shape_error (error, "the bias", bias, exp);
    }
  return TRUE;
}

/* bias and residual slots get the input when absent; the shader never reads them then */
static void
conv_bindings (DcrBinding b[5], const DcrTensor *x, const DcrTensor *w, const DcrTensor *bias,
               const DcrTensor *residual, const DcrTensor *y)
{
  b[0] = dcr_ops_bind (x, FALSE);
  b[1] = dcr_ops_bind (w, FALSE);
  b[2] = dcr_ops_bind (bias ? bias : x, FALSE);
  b[3] = dcr_ops_bind (residual ? residual : x, FALSE);
  b[4] = dcr_ops_bind (y, TRUE);
}

static guint32
next_pow2 (guint64 v)
{
  guint32 p = 1;
  while (p < v && p < (1u << 30))
    p <<= 1;
  return p;
}

typedef struct {
  guint32 M, H, W, Cin, Ho, Wo, Cout, KH, KW, SH, SW, DH, DW;
  gint32 PT, PL;
  guint32 cin_g, cout_g, tiles_per_group, row_tiles;
  guint32 act, has_bias, has_res;
} IgemmPush;

/* Output channels per lane. On lavapipe every per-lane load costs ~16
 * instructions per 32-bit value while a shuffle is nearly free, so the
 * instructions per multiply-add go as 1/TM + 1/(SG·TN) (the pixels and the
 * channels each vec4 load serves) plus a constant, times the share of
 * padded channels; the tile stays within 256 accumulators per lane. */
static guint32
igemm_pick_tn (gint64 cout_g, guint32 sg, guint32 tm)
{
  static const guint32 cand[] = { 8, 6, 4, 3, 2, 1 };
  guint32 best = 1;
  double best_cost = G_MAXDOUBLE;
  for (guint i = 0; i < G_N_ELEMENTS (cand); i++)
    {
      guint32 tn = cand[i];
      if (tm * tn > 256)
        continue;
      gint64 tile = (gint64) sg * tn;
      double padded = (double) ((cout_g + tile - 1) / tile * tile) / (double) cout_g;
      double cost = padded * (62.5 / tm + 62.5 / tile + 1.9);
      if (cost < best_cost - 1e-9)
        {
          best_cost = cost;
          best = tn;
        }
    }
  return best;
}

static gboolean
record_igemm (DcrSeq *seq, const ConvShape *s, const DcrTensor *x, const DcrTensor *w, const DcrTensor *bias,
              const DcrTensor *residual, DcrTensor *y, DcrAct act, GError **error)
{
  DcrContext *ctx = dcr_seq_context (seq);
  /* f16 on cooperative matrices where the device has them (dcr-op-gemm.c) */
  if (dcr_conv_coopmat_wanted (ctx, x->dtype, s->groups))
    {
      DcrConvCoopmatShape cs = { s->n, s->h, s->w, s->cin, s->ho, s->wo, s->cout, s->kh, s->kw, s->sh, s->sw,
                                 s->dh, s->dw, s->pt, s->pl, act };
      return dcr_op_conv_coopmat (seq, x, w, bias, residual, y, &cs, error);
    }
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  guint32 sg = MAX (dev->subgroup_size, 1);
  gint64 m = s->n * s->ho * s->wo;
  /* output pixels per subgroup: 32 loads the least per multiply-add, 16
   * compiles in half the time and wastes less on a small image */
  guint32 tm = MAX (sg, m > 1024 ? 32 : 16) / sg * sg;
  guint32 nsg = MAX (32 / sg, 1);  /* subgroups per workgroup */
  gint64 cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
  guint32 tn = igemm_pick_tn (cout_g, sg, tm);
  gint64 row_tiles = (m + tm - 1) / tm;
  gint64 tiles_per_group = (cout_g + (gint64) sg * tn - 1) / ((gint64) sg * tn);
  guint32 vw = tn % 4 == 0 && cout_g % 4 == 0 ? 4 : tn % 2 == 0 && cout_g % 2 == 0 ? 2 : 1;

  guint32 spec[] = { sg * nsg, 1, 1, sg, tm, tn, cin_g % 4 == 0, vw };
  char name[32];
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("conv_igemm", x->dtype, name, sizeof name),
                                        spec, G_N_ELEMENTS (spec), 5, sizeof (IgemmPush), error);
  if (!pipe)
    return FALSE;
  IgemmPush pc = {
    (guint32) m, (guint32) s->h, (guint32) s->w, (guint32) s->cin, (guint32) s->ho, (guint32) s->wo,
    (guint32) s->cout, s->kh, s->kw, s->sh, s->sw, s->dh, s->dw, s->pt, s->pl,
    (guint32) cin_g, (guint32) cout_g, (guint32) tiles_per_group, (guint32) row_tiles,
    act, bias != NULL, residual != NULL,
  };
  gint64 gx = (row_tiles + nsg - 1) / nsg, gz = 1;
  gint64 gy = tiles_per_group * s->groups;
  if (gx > dev->max_workgroup_count[0])
    {
      gz = (gx + dev->max_workgroup_count[0] - 1) / dev->max_workgroup_count[0];
      gx = dev->max_workgroup_count[0];
    }
  if (gy > dev->max_workgroup_count[1] || gz > dev->max_workgroup_count[2])
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "conv2d: %" G_GINT64_FORMAT " output pixels × %" G_GINT64_FORMAT " channels exceed this "
                   "device's dispatch limits; split the batch", m, s->cout);
      return FALSE;
    }
  DcrBinding b[5];
  conv_bindings (b, x, w, bias, residual, y);
  dcr_seq_dispatch (seq, pipe, b, 5, &pc, sizeof pc, (guint32) gx, (guint32) gy, (guint32) gz);
  return TRUE;
}

typedef struct {
  guint32 H, W, Cin, Ho, Wo, Cout, KH, KW, SH, SW, DH, DW;
  gint32 PT, PL;
  guint32 cin_g, cout_g, n0;
  guint32 act, has_bias, has_res;
} DirectPush;

/* Images per dispatch so that N·Ho workgroups fit the z limit. */
static gint64
images_per_dispatch (DcrSeq *seq, gint64 ho, gint64 lz)
{
  guint32 maxz = dcr_context_device (dcr_seq_context (seq))->max_workgroup_count[2];
  return MAX ((gint64) maxz * lz / ho, 1);
}

static gboolean
record_direct (DcrSeq *seq, const ConvShape *s, const DcrTensor *x, const DcrTensor *w, const DcrTensor *bias,
               const DcrTensor *residual, DcrTensor *y, DcrAct act, GError **error)
{
  DcrContext *ctx = dcr_seq_context (seq);
  gint64 cin_g = s->cin / s->groups, cout_g = s->cout / s->groups;
  guint32 tp = 4, tc = cout_g % 4 == 0 ? 4 : 1;
  gint64 cx = s->cout / tc, cy = (s->wo + tp - 1) / tp;
  guint32 lx = MIN (next_pow2 (cx), 16), ly = MIN (next_pow2 (cy), 64 / lx);
  guint32 spec[] = { lx, ly, 1, tp, tc, cin_g % 4 == 0 };
  char name[32];
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("conv_direct", x->dtype, name, sizeof name),
                                        spec, G_N_ELEMENTS (spec), 5, sizeof (DirectPush), error);
  if (!pipe)
    return FALSE;
  DcrBinding b[5];
  conv_bindings (b, x, w, bias, residual, y);
  gint64 chunk = images_per_dispatch (seq, s->ho, 1);
  for (gint64 n0 = 0; n0 < s->n; n0 += chunk)
    {
      gint64 nn = MIN (chunk, s->n - n0);
      DirectPush pc = {
        (guint32) s->h, (guint32) s->w, (guint32) s->cin, (guint32) s->ho, (guint32) s->wo, (guint32) s->cout,
        s->kh, s->kw, s->sh, s->sw, s->dh, s->dw, s->pt, s->pl, (guint32) cin_g, (guint32) cout_g,
        (guint32) n0, act, bias != NULL, residual != NULL,
      };
      dcr_seq_dispatch (seq, pipe, b, 5, &pc, sizeof pc, (guint32) ((cx + lx - 1) / lx),
                        (guint32) ((cy + ly - 1) / ly), (guint32) (nn * s->ho));
    }
  return TRUE;
}

typedef struct {
  guint32 H, W, C, Ho, Wo, Cout, mult;
  gint32 PT, PL;
  guint32 n0, row_blocks;
  guint32 act, has_bias, has_res;
} DwPush;

/* The output block per invocation. A depthwise convolution has no channel
 * reuse, so its cost is the input loads (each ~500 instructions per subgroup
 * on lavapipe against ~15 for a vec4 FMA): a TH × TP block loads
 * ((TH−1)·SH + (KH−1)·DH + 1) × ((TP−1)·SW + (KW−1)·DW + 1) pixels for TH·TP
 * outputs. Partial blocks waste work; accumulators stay within 32 vec4. */
static void
dw_pick_block (const ConvShape *s, gboolean vec, guint32 *th, guint32 *tp)
{
  double best = G_MAXDOUBLE;
  /* the block is unrolled: a 32-output block takes lavapipe seconds to
   * compile, worth it only on a large image */
  guint32 max_block = s->ho * s->wo > 1024 ? 32 : 8;
  *th = *tp = 1;
  for (guint32 h = 1; h <= 8; h++)
    for (guint32 w = 1; w <= 8; w++)
      {
        guint32 hn = (h - 1) * s->sh + (s->kh - 1) * s->dh + 1, wn = (w - 1) * s->sw + (s->kw - 1) * s->dw + 1;
        if (h * w > max_block || wn > 24 || hn * wn > 160)
          continue;
        double padded = (double) ((s->ho + h - 1) / h * h) * (double) ((s->wo + w - 1) / w * w);
        double per_block = 500.0 * hn * wn + 100.0 * s->kh * s->kw * (vec ? 4 : 1) + 15.0 * h * w * s->kh * s->kw;
        double cost = padded * per_block / (h * w);
        if (cost < best - 1e-9)
          {
            best = cost;
            *th = h;
            *tp = w;
          }
      }
}

static gboolean
record_depthwise (DcrSeq *seq, const ConvShape *s, const DcrTensor *x, const DcrTensor *w,
                  const DcrTensor *bias, const DcrTensor *residual, DcrTensor *y, DcrAct act, GError **error)
{
  DcrContext *ctx = dcr_seq_context (seq);
  gint64 mult = s->cout / s->cin;
  gboolean vec = mult == 1 && s->cin % 4 == 0;
  guint32 th, tp;
  dw_pick_block (s, vec, &th, &tp);
  gint64 cx = vec ? s->cout / 4 : s->cout, cy = (s->wo + tp - 1) / tp;
  gint64 row_blocks = (s->ho + th - 1) / th;
  guint32 lx = MIN (next_pow2 (cx), 8), ly = MIN (next_pow2 (cy), 32 / lx);
  guint32 spec[] = { lx, ly, 1, s->kh, s->kw, s->sh, s->sw, s->dh, s->dw, tp, vec, th };
  char name[32];
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("conv_dw", x->dtype, name, sizeof name),
                                        spec, G_N_ELEMENTS (spec), 5, sizeof (DwPush), error);
  if (!pipe)
    return FALSE;
  DcrBinding b[5];
  conv_bindings (b, x, w, bias, residual, y);
  gint64 chunk = images_per_dispatch (seq, row_blocks, 1);
  for (gint64 n0 = 0; n0 < s->n; n0 += chunk)
    {
      gint64 nn = MIN (chunk, s->n - n0);
      DwPush pc = {
        (guint32) s->h, (guint32) s->w, (guint32) s->cin, (guint32) s->ho, (guint32) s->wo, (guint32) s->cout,
        (guint32) mult, s->pt, s->pl, (guint32) n0, (guint32) row_blocks, act, bias != NULL, residual != NULL,
      };
      dcr_seq_dispatch (seq, pipe, b, 5, &pc, sizeof pc, (guint32) ((cx + lx - 1) / lx),
                        (guint32) ((cy + ly - 1) / ly), (guint32) (nn * row_blocks));
    }
  return TRUE;
}

gboolean
dcr_op_conv2d (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w, const DcrTensor *bias,
               const DcrTensor *residual, DcrTensor *y, const DcrConv2dParams *params, GError **error)
{
  ConvShape s;
  if (!check_shapes (seq, x, w, bias, residual, y, params, &s, error))
    return FALSE;
  const DcrDeviceInfo *dev = dcr_context_device (dcr_seq_context (seq));
  gboolean depthwise_ok = s.groups == s.cin && s.groups > 1;
  gboolean igemm_ok = dev->subgroup_arithmetic;
  switch (params->algo)
    {
    case DCR_CONV_ALGO_AUTO:
      if (depthwise_ok)
        return record_depthwise (seq, &s, x, w, bias, residual, y, params->act, error);
      /* a group narrower than half a tile would leave most lanes idle */
      if (igemm_ok && (s.groups == 1 || s.cout / s.groups >= 4 * (gint64) dev->subgroup_size))
        return record_igemm (seq, &s, x, w, bias, residual, y, params->act, error);
      return record_direct (seq, &s, x, w, bias, residual, y, params->act, error);
    case DCR_CONV_ALGO_DIRECT:
      return record_direct (seq, &s, x, w, bias, residual, y, params->act, error);
    case DCR_CONV_ALGO_IGEMM:
      if (!igemm_ok)
        {
          g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                       "conv2d: the implicit-GEMM kernel needs subgroup broadcast, which %s lacks", dev->name);
          return FALSE;
        }
      return record_igemm (seq, &s, x, w, bias, residual, y, params->act, error);
    case DCR_CONV_ALGO_DEPTHWISE:
      if (!depthwise_ok)
        {
          g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                       "conv2d: the depthwise kernel needs groups == input channels > 1 (got %d groups, "
                       "%" G_GINT64_FORMAT " channels)", s.groups, s.cin);
          return FALSE;
        }
      return record_depthwise (seq, &s, x, w, bias, residual, y, params->act, error);
    }
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "conv2d: unknown algorithm %d", params->algo);
  return FALSE;
}

/* ---- fused MobileNetV2 block ---------------------------------------------- */

static guint32
mbblock_sg (DcrContext *ctx)
{
  return MAX (dcr_context_device (ctx)->subgroup_size, 1);
}

gboolean
dcr_mbblock_supported (DcrContext *ctx, gint64 cin, gint64 cout)
{
  return dcr_context_device (ctx)->subgroup_arithmetic && cin > 0 && cout > 0 && cin % 4 == 0 && cout % 4 == 0
         && cin <= DCR_MBBLOCK_MAX_CHANNELS && cout <= DCR_MBBLOCK_MAX_CHANNELS;
}

/* as the shader: NQ vec4s in use, rounded up to a whole number per lane */
gint64
dcr_mbblock_row_length (DcrContext *ctx, gint64 cin, gint64 cout)
{
  gint64 sg = mbblock_sg (ctx);
  gint64 nq = (cin + cout + 11 + 3) / 4;
  return (nq + sg - 1) / sg * sg * 4;
}

void
dcr_mbblock_pack_weights (DcrContext *ctx, const float *we, const float *be, const float *wd, const float *bd,
                          const float *wp, gint64 cin, gint64 mid, gint64 cout, float *out)
{
  gint64 lp = dcr_mbblock_row_length (ctx, cin, cout);
  memset (out, 0, sizeof (float) * (gsize) (lp * mid));
  for (gint64 m = 0; m < mid; m++)
    {
      float *row = out + m * lp;
      memcpy (row, we + m * cin, sizeof (float) * (gsize) cin);
      for (gint64 o = 0; o < cout; o++)
        row[cin + o] = wp[o * mid + m];
      row[cin + cout] = be[m];
      row[cin + cout + 1] = bd[m];
      memcpy (row + cin + cout + 2, wd + m * 9, sizeof (float) * 9);
    }
}

void
dcr_ref_mbblock (const float *x, gint64 n, gint64 h, gint64 w, gint64 cin,
                 const float *we, const float *be, const float *wd, const float *bd,
                 const float *wp, const float *bp, gint64 mid, gint64 cout,
                 const DcrMbBlockParams *params, float *y)
{
  DcrConv2dParams pe = { .act = DCR_ACT_RELU6 };
  DcrConv2dParams pd = {
    .stride_h = params->stride, .stride_w = params->stride,
    .pad_top = params->pad_top, .pad_bottom = params->pad_bottom,
    .pad_left = params->pad_left, .pad_right = params->pad_right,
    .groups = (int) mid, .act = DCR_ACT_RELU6,
  };
  DcrConv2dParams pp = { .act = DCR_ACT_NONE };
  gint64 ho = dcr_conv2d_out_size (h, 3, params->stride, params->pad_top, params->pad_bottom, 1);
  gint64 wo = dcr_conv2d_out_size (w, 3, params->stride, params->pad_left, params->pad_right, 1);
  g_autofree float *e = g_new (float, n * h * w * mid);
  g_autofree float *d = g_new (float, n * ho * wo * mid);
  dcr_ref_conv2d (x, n, h, w, cin, we, mid, 1, 1, be, NULL, e, &pe);
  dcr_ref_conv2d (e, n, h, w, mid, wd, mid, 3, 3, bd, NULL, d, &pd);
  dcr_ref_conv2d (d, n, ho, wo, mid, wp, cout, 1, 1, bp, params->residual ? x : NULL, y, &pp);
}

typedef struct {
  guint32 H, W, Ho, Wo, mid;
  gint32 PT, PL;
  guint32 tiles_w, tiles_img, tiles;
} MbPush;

/* The output tile per lane. Per expanded channel a lane does HN·WN·Cin
 * multiply-adds of expansion (its halo recomputed), and TH·TP·(9 + Cout) of
 * depthwise and projection; the halo (HN·WN·Cin values) and the accumulators
 * (TH·TP·Cout) live in registers through the loop over channels. Measured on
 * lavapipe (BENCHMARKS.md): 2×2 is the best or near it for every MobileNetV2
 * block; larger tiles spill and take LLVM tens of seconds to compile, 1×1
 * recomputes the expansion nine times per output. A smaller tile is taken
 * when 2×2 would leave some of the device's threads (a CPU's cores) idle. */
static void
mbblock_pick_tile (DcrContext *ctx, gint64 n, gint64 ho, gint64 wo, guint32 *th, guint32 *tp)
{
  static const guint32 cand[][2] = { { 2, 2 }, { 1, 2 }, { 1, 1 } };
  gint64 sg = mbblock_sg (ctx);
  gint64 want = MIN (MAX (g_get_num_processors (), 1), (n * ho * wo + sg - 1) / sg);
  for (guint i = 0; i < G_N_ELEMENTS (cand); i++)
    {
      *th = cand[i][0];
      *tp = cand[i][1];
      gint64 tiles = n * ((ho + *th - 1) / *th) * ((wo + *tp - 1) / *tp);
      if ((tiles + sg - 1) / sg >= want)
        return;
    }
}

gboolean
dcr_op_mbblock (DcrSeq *seq, const DcrTensor *x, const DcrTensor *packed, const DcrTensor *bias,
                DcrTensor *y, const DcrMbBlockParams *params, GError **error)
{
  DcrContext *ctx = dcr_seq_context (seq);
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  const DcrTensor *all[] = { x, packed, bias, y };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    {
      if (!dcr_ops_check_dtype (seq, "mbblock", all[i], error))
        return FALSE;
      if (all[i]->dtype != x->dtype)
        {
          g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE,
                       "mbblock: all tensors must share one dtype (input is %s, another is %s)",
                       dcr_dtype_name (x->dtype), dcr_dtype_name (all[i]->dtype));
          return FALSE;
        }
    }
  if (params->stride != 1 && params->stride != 2)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "mbblock: stride %d (1 or 2)", params->stride);
      return FALSE;
    }
  if (params->pad_top < 0 || params->pad_bottom < 0 || params->pad_left < 0 || params->pad_right < 0
      || params->pad_top > 2 || params->pad_left > 2)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "mbblock: padding (%d, %d, %d, %d) outside 0–2",
                   params->pad_top, params->pad_bottom, params->pad_left, params->pad_right);
      return FALSE;
    }
  if (x->ndim != 4)
    return shape_error (error, "the input", x, "[N, H, W, Cin]");
  gint64 n = x->shape[0], h = x->shape[1], w = x->shape[2], cin = x->shape[3];
  if (bias->ndim != 1)
    return shape_error (error, "the bias", bias, "[Cout]");
  gint64 cout = bias->shape[0];
  if (!dcr_mbblock_supported (ctx, cin, cout))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "mbblock: needs subgroup shuffles and Cin, Cout multiples of 4 up to %d (%s; Cin %" G_GINT64_FORMAT
                   ", Cout %" G_GINT64_FORMAT ")", DCR_MBBLOCK_MAX_CHANNELS, dev->name, cin, cout);
      return FALSE;
    }
  gint64 lp = dcr_mbblock_row_length (ctx, cin, cout);
  if (packed->ndim != 2 || packed->shape[0] < 1 || packed->shape[1] != lp)
    {
      g_autofree char *exp = g_strdup_printf ("[mid, %" G_GINT64_FORMAT "] (dcr_mbblock_pack_weights)", lp);
      return shape_error (error, "the packed weights", packed, exp);
    }
  gint64 mid = packed->shape[0];
  gint64 ho = dcr_conv2d_out_size (h, 3, params->stride, params->pad_top, params->pad_bottom, 1);
  gint64 wo = dcr_conv2d_out_size (w, 3, params->stride, params->pad_left, params->pad_right, 1);
  if (ho < 1 || wo < 1)
    return shape_error (error, "the input", x, "at least the 3×3 kernel with its padding");
  g_autofree char *ys = g_strdup_printf ("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                         ", %" G_GINT64_FORMAT "]", n, ho, wo, cout);
  if (y->ndim != 4 || y->shape[0] != n || y->shape[1] != ho || y->shape[2] != wo || y->shape[3] != cout)
    return shape_error (error, "the output", y, ys);
  if (params->residual && (params->stride != 1 || cin != cout || ho != h || wo != w))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "mbblock: the residual needs stride 1, Cin == Cout and an output the input's size");
      return FALSE;
    }
  if (dcr_tensor_numel (x) >= G_MAXINT32 || dcr_tensor_numel (y) >= G_MAXINT32)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "mbblock: tensors too large; split the batch");
      return FALSE;
    }

  guint32 sg = mbblock_sg (ctx), th, tp;
  mbblock_pick_tile (ctx, n, ho, wo, &th, &tp);
  gint64 tiles_w = (wo + tp - 1) / tp, tiles_img = tiles_w * ((ho + th - 1) / th), tiles = n * tiles_img;
  gint64 groups = (tiles + sg - 1) / sg;
  gint64 gx = MIN (groups, (gint64) dev->max_workgroup_count[0]), gy = (groups + gx - 1) / gx;
  if (tiles >= G_MAXINT32 || gy > dev->max_workgroup_count[1])
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "mbblock: %" G_GINT64_FORMAT " tiles exceed this device's dispatch limits; split the batch", tiles);
      return FALSE;
    }
  guint32 spec[] = { sg, 1, 1, (guint32) cin, (guint32) cout, (guint32) params->stride, th, tp, sg,
                     params->residual ? 1 : 0 };
  char name[32];
  DcrPipeline *pipe = dcr_pipeline_get (ctx, dcr_ops_shader_name ("conv_mbblock", x->dtype, name, sizeof name),
                                        spec, G_N_ELEMENTS (spec), 4, sizeof (MbPush), error);
  if (!pipe)
    return FALSE;
  MbPush pc = {
    (guint32) h, (guint32) w, (guint32) ho, (guint32) wo, (guint32) mid, params->pad_top, params->pad_left,
    (guint32) tiles_w, (guint32) tiles_img, (guint32) tiles,
  };
  DcrBinding b[4] = {
    dcr_ops_bind (x, FALSE), dcr_ops_bind (packed, FALSE), dcr_ops_bind (bias, FALSE), dcr_ops_bind (y, TRUE),
  };
  dcr_seq_dispatch (seq, pipe, b, 4, &pc, sizeof pc, (guint32) gx, (guint32) gy, 1);
  return TRUE;
}
