/* dcr-op-conv-grad.c — the backward pass of dcr_op_conv2d (groups 1, f32):
 * argument checks, the two dispatches of shaders/grad_conv.comp (dx as a
 * gather per input pixel; dw with db as a shared-memory reduction per
 * weight tile) and the CPU reference. */
#include "dcr-op-grad.h"
#include "dcr-op-conv.h"

#include <string.h>

#define DX_LOCAL 64
#define MAX_TILE 8 /* TO, TC: output / input channels per lane */
#define DW_ACCUMULATORS 32 /* TO·TC */
#define DX_COLUMNS 4 /* TP: most input columns per dx lane */

typedef struct {
  gint64 n, h, w, cin, cout, ho, wo;
  int kh, kw, sh, sw, dh, dw, pt, pb, pl, pr;
} Shape;

typedef struct {
  guint32 N, H, W, Cin, Ho, Wo, Cout, KH, KW, SH, SW, DH, DW;
  gint32 PT, PL;
  guint32 cblocks, oblocks, flags;
} ConvGradPush;

static void
shape_params (Shape *s, const DcrConv2dParams *p)
{
  s->sh = MAX (p->stride_h, 1);
  s->sw = MAX (p->stride_w, 1);
  s->dh = MAX (p->dilation_h, 1);
  s->dw = MAX (p->dilation_w, 1);
  s->pt = p->pad_top;
  s->pb = p->pad_bottom;
  s->pl = p->pad_left;
  s->pr = p->pad_right;
}

void
dcr_ref_conv2d_backward (const float *x, gint64 n, gint64 h, gint64 w, gint64 cin, const float *weights,
                         gint64 cout, int kh, int kw, const float *dy, float *dx, float *dw, float *db,
                         const DcrConv2dParams *params, DcrGradFlags flags)
{
  Shape s;
  shape_params (&s, params);
  gint64 ho = dcr_conv2d_out_size (h, kh, s.sh, s.pt, s.pb, s.dh);
  gint64 wo = dcr_conv2d_out_size (w, kw, s.sw, s.pl, s.pr, s.dw);
  gint64 nx = n * h * w * cin, nw = cout * kh * kw * cin;
  double *gx = dx ? g_new0 (double, MAX (nx, 1)) : NULL;
  double *gw = dw ? g_new0 (double, MAX (nw, 1)) : NULL;
  double *gb = db ? g_new0 (double, MAX (cout, 1)) : NULL;
  for (gint64 b = 0; b < n; b++)
    for (gint64 oy = 0; oy < ho; oy++)
      for (gint64 ox = 0; ox < wo; ox++)
        for (gint64 o = 0; o < cout; o++)
          {
            double g = dy[((b * ho + oy) * wo + ox) * cout + o];
            if (gb)
              gb[o] += g;
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
                    gint64 xo = ((b * h + iy) * w + ix) * cin, wi = ((o * kh + ky) * kw + kx) * cin;
                    for (gint64 c = 0; c < cin; c++)
                      {
                        if (gx)
                          gx[xo + c] += g * weights[wi + c];
                        if (gw)
                          gw[wi + c] += g * x[xo + c];
                      }
                  }
              }
          }
  gboolean acc_in = (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0, acc_par = (flags & DCR_GRAD_ACCUMULATE_PARAMS) != 0;
  for (gint64 i = 0; gx && i < nx; i++)
    dx[i] = (float) (acc_in ? dx[i] + gx[i] : gx[i]);
  for (gint64 i = 0; gw && i < nw; i++)
    dw[i] = (float) (acc_par ? dw[i] + gw[i] : gw[i]);
  for (gint64 i = 0; gb && i < cout; i++)
    db[i] = (float) (acc_par ? db[i] + gb[i] : gb[i]);
  g_free (gx);
  g_free (gw);
  g_free (gb);
}

/* ---- recording ---------------------------------------------------------- */

static const char *const OP = "conv2d_backward";

static gboolean
shape_mismatch (GError **error, const char *what, const DcrTensor *t, const Shape *s, gboolean out_side,
                gint64 d3)
{
  g_autofree char *got = dcr_ops_shape_string (t);
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
               "%s: %s is %s, expected [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
               ", %" G_GINT64_FORMAT "]", OP, what, got, s->n, out_side ? s->ho : s->h, out_side ? s->wo : s->w, d3);
  return FALSE;
}

static gboolean
check_args (const DcrTensor *x, const DcrTensor *w, const DcrTensor *dy, const DcrTensor *dx,
            const DcrTensor *dw, const DcrTensor *db, const DcrConv2dParams *params, Shape *s, GError **error)
{
  const DcrTensor *all[] = { x, w, dy, dx, dw, db };
  const char *names[] = { "x", "w", "dy", "dx", "dw", "db" };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    {
      if (!all[i])
        continue;
      if (all[i]->dtype != DCR_F32)
        {
          g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE, "%s: %s is %s; this op takes f32 tensors", OP,
                       names[i], dcr_dtype_name (all[i]->dtype));
          return FALSE;
        }
      if (dcr_tensor_numel (all[i]) >= G_MAXINT32)
        {
          g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                       "%s: %s has %" G_GINT64_FORMAT " elements, too large for 32-bit indexing; split the batch",
                       OP, names[i], dcr_tensor_numel (all[i]));
          return FALSE;
        }
    }
  shape_params (s, params);
  if (MAX (params->groups, 1) != 1)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: only groups = 1 is implemented, not %d", OP, params->groups);
      return FALSE;
    }
  if (s->pt < 0 || s->pb < 0 || s->pl < 0 || s->pr < 0)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "%s: negative padding (%d, %d, %d, %d)", OP,
                   s->pt, s->pb, s->pl, s->pr);
      return FALSE;
    }
  if (x->ndim != 4)
    return dcr_ops_shape_error (error, OP, "x must be [N, H, W, Cin]", x, NULL);
  if (w->ndim != 4 || w->shape[3] != x->shape[3] || w->shape[0] < 1 || w->shape[1] < 1 || w->shape[2] < 1)
    return dcr_ops_shape_error (error, OP, "w must be [Cout, KH, KW, Cin] for x [N, H, W, Cin]", w, x);
  s->n = x->shape[0];
  s->h = x->shape[1];
  s->w = x->shape[2];
  s->cin = x->shape[3];
  s->cout = w->shape[0];
  s->kh = (int) w->shape[1];
  s->kw = (int) w->shape[2];
  s->ho = dcr_conv2d_out_size (s->h, s->kh, s->sh, s->pt, s->pb, s->dh);
  s->wo = dcr_conv2d_out_size (s->w, s->kw, s->sw, s->pl, s->pr, s->dw);
  if (s->ho < 1 || s->wo < 1 || s->cin < 1)
    {
      g_autofree char *xs = dcr_ops_shape_string (x);
      g_autofree char *ws = dcr_ops_shape_string (w);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "%s: the %dx%d kernel of %s (dilation %d, %d) does not fit in the padded input %s", OP,
                   s->kh, s->kw, ws, s->dh, s->dw, xs);
      return FALSE;
    }
  if (dy->ndim != 4 || dy->shape[0] != s->n || dy->shape[1] != s->ho || dy->shape[2] != s->wo
      || dy->shape[3] != s->cout)
    return shape_mismatch (error, "dy", dy, s, TRUE, s->cout);
  if (dx && !dcr_ops_same_shape (dx, x))
    return dcr_ops_shape_error (error, OP, "dx must have x's shape", dx, x);
  if (dw && !dcr_ops_same_shape (dw, w))
    return dcr_ops_shape_error (error, OP, "dw must have w's shape", dw, w);
  if (db && (db->ndim != 1 || db->shape[0] != s->cout))
    return dcr_ops_shape_error (error, OP, "db must be [Cout] for w [Cout, KH, KW, Cin]", db, w);
  return TRUE;
}

static void
fill_push (ConvGradPush *pc, const Shape *s)
{
  *pc = (ConvGradPush) {
    (guint32) s->n, (guint32) s->h, (guint32) s->w, (guint32) s->cin, (guint32) s->ho, (guint32) s->wo,
    (guint32) s->cout, (guint32) s->kh, (guint32) s->kw, (guint32) s->sh, (guint32) s->sw, (guint32) s->dh,
    (guint32) s->dw, s->pt, s->pl, 0, 0, 0,
  };
}

static gboolean
record_dx (DcrSeq *seq, const Shape *s, const DcrTensor *w, const DcrTensor *dy, DcrTensor *dx, gboolean accum,
           GError **error)
{
  guint32 tc = (guint32) MIN (s->cin, MAX_TILE);
  ConvGradPush pc;
  fill_push (&pc, s);
  pc.cblocks = (guint32) ((s->cin + tc - 1) / tc);
  pc.oblocks = 1;
  pc.flags = accum ? 1u : 0u;
  /* a lane's TP columns share its weight loads: the most (up to 4; 8 spills
   * on lavapipe and ran 2-4x slower) that pads the columns of one residue
   * by at most 1/7 */
  gint64 per_res = (s->w + s->sw - 1) / s->sw;
  guint32 tp = DX_COLUMNS;
  while (tp > 1 && (per_res + tp - 1) / tp * tp * 7 > per_res * 8)
    tp /= 2;
  gint64 arows = (s->h + s->sh - 1) / s->sh;
  gint64 items = (gint64) s->sh * s->sw * s->n * arows * ((per_res + tp - 1) / tp) * pc.cblocks;
  if (items == 0)
    return TRUE;
  guint32 spec[] = { DX_LOCAL, 1, 1, 1, tc, tp };
  /* x is not read: w fills its slot; db's slot gets dx */
  DcrBinding b[] = {
    dcr_ops_bind (w, FALSE), dcr_ops_bind (w, FALSE), dcr_ops_bind (dy, FALSE),
    dcr_ops_bind (dx, TRUE), dcr_ops_bind (dx, TRUE),
  };
  return dcr_ops_dispatch (seq, "grad_conv_dx", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), &pc, sizeof pc,
                           dcr_ops_groups (items, DX_LOCAL), 1, 1, error);
}

static gboolean
record_dw (DcrSeq *seq, const Shape *s, const DcrTensor *x, const DcrTensor *dy, DcrTensor *dw, DcrTensor *db,
           gboolean accum, GError **error)
{
  const DcrDeviceInfo *dev = dcr_context_device (dcr_seq_context (seq));
  /* at most 32 accumulators per lane: lavapipe spills larger tiles (8 x 8
   * ran about 1.5x slower at 16 -> 16 channels) */
  guint32 tc = (guint32) MIN (s->cin, MAX_TILE);
  guint32 to = (guint32) MIN (s->cout, MIN (MAX_TILE, MAX (DW_ACCUMULATORS / tc, 1)));
  guint32 nacc = to * tc + to;
  /* lanes per weight tile: a CPU device needs only a few workgroups busy and
   * pays for each lane's share of the final sum; a GPU wants wide groups
   * because there are only Cout·KH·KW·Cin / (TO·TC) of them */
  guint32 local = dev->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 64 : 256;
  while (local > 1 && ((gsize) local * nacc * sizeof (float) > dev->max_shared_memory
                       || local > dev->max_workgroup_invocations))
    local /= 2;
  ConvGradPush pc;
  fill_push (&pc, s);
  pc.cblocks = (guint32) ((s->cin + tc - 1) / tc);
  pc.oblocks = (guint32) ((s->cout + to - 1) / to);
  pc.flags = (accum ? 3u : 0u) | (db ? 4u : 0u);
  gint64 groups = (gint64) pc.oblocks * s->kh * s->kw * pc.cblocks;
  if (groups > dev->max_workgroup_count[0])
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: %" G_GINT64_FORMAT " weight tiles exceed this device's dispatch limit", OP, groups);
      return FALSE;
    }
  guint32 spec[] = { local, 1, 1, to, tc, 1 };
  DcrBinding b[] = {
    dcr_ops_bind (x, FALSE), dcr_ops_bind (x, FALSE), dcr_ops_bind (dy, FALSE),
    dcr_ops_bind (dw, TRUE), dcr_ops_bind (db ? db : dw, TRUE),
  };
  return dcr_ops_dispatch (seq, "grad_conv_dw", spec, G_N_ELEMENTS (spec), b, G_N_ELEMENTS (b), &pc, sizeof pc,
                           (guint32) groups, 1, 1, error);
}

gboolean
dcr_op_conv2d_backward (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w, const DcrTensor *dy,
                        DcrTensor *dx, DcrTensor *dw, DcrTensor *db, const DcrConv2dParams *params,
                        DcrGradFlags flags, GError **error)
{
  g_return_val_if_fail (seq && x && w && dy && params, FALSE);
  Shape s = { 0 };
  if (!check_args (x, w, dy, dx, dw, db, params, &s, error))
    return FALSE;
  if (dx && !record_dx (seq, &s, w, dy, dx, (flags & DCR_GRAD_ACCUMULATE_INPUT) != 0, error))
    return FALSE;
  gboolean acc_par = (flags & DCR_GRAD_ACCUMULATE_PARAMS) != 0;
  if (dw)
    return record_dw (seq, &s, x, dy, dw, db, acc_par, error);
  if (db)
    return dcr_op_bias_backward (seq, dy, db, acc_par ? DCR_GRAD_ACCUMULATE_PARAMS : DCR_GRAD_OVERWRITE, error);
  return TRUE;
}
