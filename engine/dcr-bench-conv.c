/* dcr-bench-conv.c — `dcr bench ops` cases for convolution, the fused
 * MobileNetV2 block, pooling, pointwise ops and image preprocessing at
 * ResNet-50, MobileNetV2 and ViT-L/14 shapes, and a 1080p frame → 224²
 * network input. Inputs are zero-filled: the timing does not depend on the
 * values. */
#include "dcr-bench.h"
#include "dcr-op-conv.h"
#include "dcr-op-eltwise.h"
#include "dcr-op-pool.h"
#include "dcr-op-preprocess.h"

typedef struct {
  const char *op;     /* "conv2d" or "dwconv" */
  gint64 h, w, cin, cout;
  int k, stride, pad_before, pad_after, groups;
  gboolean residual;
  DcrAct act;
  DcrConvAlgo algo;
  const char *what;
  gboolean quick;
} ConvCase;

static const ConvCase conv_cases[] = {
  { "conv2d", 28, 28, 64, 64, 1, 1, 0, 0, 1, FALSE, DCR_ACT_RELU, 0, "small 1x1", TRUE },
  { "dwconv", 28, 28, 32, 32, 3, 1, 1, 1, 32, FALSE, DCR_ACT_RELU6, 0, "small depthwise", TRUE },
  { "conv2d", 224, 224, 3, 64, 7, 2, 3, 3, 1, FALSE, DCR_ACT_RELU, 0, "resnet50 stem 7x7/2", FALSE },
  { "conv2d", 56, 56, 64, 64, 1, 1, 0, 0, 1, FALSE, DCR_ACT_RELU, 0, "resnet50 layer1 1x1 reduce", FALSE },
  { "conv2d", 56, 56, 64, 64, 3, 1, 1, 1, 1, FALSE, DCR_ACT_RELU, 0, "resnet50 layer1 3x3", FALSE },
  { "conv2d", 56, 56, 64, 256, 1, 1, 0, 0, 1, TRUE, DCR_ACT_RELU, 0, "resnet50 layer1 1x1 expand +residual", FALSE },
  { "conv2d", 56, 56, 256, 64, 1, 1, 0, 0, 1, FALSE, DCR_ACT_RELU, 0, "resnet50 layer2.0 1x1 reduce", FALSE },
  { "conv2d", 56, 56, 128, 128, 3, 2, 1, 1, 1, FALSE, DCR_ACT_RELU, 0, "resnet50 layer2.0 3x3/2", FALSE },
  { "conv2d", 14, 14, 256, 1024, 1, 1, 0, 0, 1, TRUE, DCR_ACT_RELU, 0, "resnet50 layer3 1x1 expand +residual", FALSE },
  { "conv2d", 224, 224, 3, 32, 3, 2, 0, 1, 1, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 stem 3x3/2 same", FALSE },
  { "conv2d", 112, 112, 32, 16, 1, 1, 0, 0, 1, FALSE, DCR_ACT_NONE, 0, "mobilenetv2 block0 1x1 project", FALSE },
  { "conv2d", 56, 56, 24, 144, 1, 1, 0, 0, 1, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 block2 1x1 expand", FALSE },
  { "conv2d", 56, 56, 144, 24, 1, 1, 0, 0, 1, TRUE, DCR_ACT_NONE, 0, "mobilenetv2 block2 1x1 project +residual", FALSE },
  { "conv2d", 28, 28, 32, 192, 1, 1, 0, 0, 1, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 block4 1x1 expand", FALSE },
  { "conv2d", 14, 14, 64, 384, 1, 1, 0, 0, 1, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 block7 1x1 expand", FALSE },
  { "conv2d", 56, 56, 24, 144, 1, 1, 0, 0, 1, FALSE, DCR_ACT_RELU6, DCR_CONV_ALGO_DIRECT,
    "mobilenetv2 block2 1x1 expand, direct kernel", FALSE },
  { "conv2d", 56, 56, 64, 64, 3, 1, 1, 1, 1, FALSE, DCR_ACT_RELU, DCR_CONV_ALGO_DIRECT,
    "resnet50 layer1 3x3, direct kernel", FALSE },
  { "dwconv", 112, 112, 32, 32, 3, 1, 1, 1, 32, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 block0 3x3", FALSE },
  { "dwconv", 112, 112, 96, 96, 3, 2, 0, 1, 96, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 block1 3x3/2 same", FALSE },
  { "dwconv", 56, 56, 144, 144, 3, 1, 1, 1, 144, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 block2 3x3", FALSE },
  { "dwconv", 56, 56, 144, 144, 3, 2, 0, 1, 144, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 block3 3x3/2 same", FALSE },
  { "dwconv", 28, 28, 192, 192, 3, 1, 1, 1, 192, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 block4 3x3", FALSE },
  { "dwconv", 14, 14, 384, 384, 3, 1, 1, 1, 384, FALSE, DCR_ACT_RELU6, 0, "mobilenetv2 block7 3x3", FALSE },
};

static const char *const algo_names[] = { "auto", "direct", "igemm", "depthwise" };

static gboolean
bench_conv (DcrContext *ctx, const DcrBenchOptions *opts, const ConvCase *cs, DcrDtype dt, GArray *results,
            GError **error)
{
  DcrConv2dParams p = {
    .stride_h = cs->stride, .stride_w = cs->stride,
    .pad_top = cs->pad_before, .pad_bottom = cs->pad_after, .pad_left = cs->pad_before, .pad_right = cs->pad_after,
    .groups = cs->groups, .act = cs->act, .algo = cs->algo,
  };
  gint64 ho = dcr_conv2d_out_size (cs->h, cs->k, cs->stride, cs->pad_before, cs->pad_after, 1);
  gint64 wo = dcr_conv2d_out_size (cs->w, cs->k, cs->stride, cs->pad_before, cs->pad_after, 1);
  gint64 xs[] = { 1, cs->h, cs->w, cs->cin }, ws[] = { cs->cout, cs->k, cs->k, cs->cin / cs->groups };
  gint64 ys[] = { 1, ho, wo, cs->cout };
  g_autoptr (DcrTensor) x = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dt, 4, xs, error);
  g_autoptr (DcrTensor) w = x ? dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, dt, 4, ws, error) : NULL;
  g_autoptr (DcrTensor) b = w ? dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, dt, 1, &cs->cout, error) : NULL;
  g_autoptr (DcrTensor) y = b ? dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dt, 4, ys, error) : NULL;
  g_autoptr (DcrTensor) r = y && cs->residual ? dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dt, 4, ys, error) : NULL;
  if (!y || (cs->residual && !r))
    return FALSE;
  if (!dcr_buffer_fill_zero (x->buf, error) || !dcr_buffer_fill_zero (w->buf, error)
      || !dcr_buffer_fill_zero (b->buf, error) || (r && !dcr_buffer_fill_zero (r->buf, error)))
    return FALSE;
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
  if (!seq)
    return FALSE;
  dcr_seq_enable_timing (seq);
  double min_ms, median_ms;
  if (!dcr_op_conv2d (seq, x, w, b, r, y, &p, error) || !dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
    return FALSE;
  g_autofree char *shape = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                                            " -> %" G_GINT64_FORMAT " k%d/%d +bias%s%s%s (%s) [%s]",
                                            cs->h, cs->w, cs->cin, cs->cout, cs->k, cs->stride,
                                            cs->residual ? "+residual" : "", cs->act ? "+" : "",
                                            cs->act ? dcr_act_name (cs->act) : "", cs->what, algo_names[cs->algo]);
  double flop = 2.0 * ho * wo * cs->cout * cs->k * cs->k * (cs->cin / cs->groups);
  dcr_bench_add (results, cs->op, shape, dt, flop, 0, min_ms, median_ms, opts->repeats);
  return TRUE;
}

/* The fused MobileNetV2 block (dcr_op_mbblock) at the backbone's shapes;
 * FLOP counts the three convolutions it replaces (the halo recomputation of
 * the expansion is not counted). */
typedef struct {
  gint64 hw, cin, mid, cout;
  int stride;
  gboolean residual, quick;
  const char *what;
} MbCase;

static const MbCase mb_cases[] = {
  { 112, 16, 96, 24, 2, FALSE, FALSE, "mobilenetv2 block1" },
  { 56, 24, 144, 24, 1, TRUE, TRUE, "mobilenetv2 block2" },
  { 56, 24, 144, 32, 2, FALSE, FALSE, "mobilenetv2 block3" },
  { 28, 32, 192, 32, 1, TRUE, FALSE, "mobilenetv2 block4" },
  { 28, 32, 192, 64, 2, FALSE, FALSE, "mobilenetv2 block6" },
  { 14, 64, 384, 64, 1, TRUE, FALSE, "mobilenetv2 block7" },
  { 14, 64, 384, 96, 1, FALSE, FALSE, "mobilenetv2 block10" },
};

static gboolean
bench_mbblock (DcrContext *ctx, const DcrBenchOptions *opts, const MbCase *cs, DcrDtype dt, GArray *results,
               GError **error)
{
  DcrMbBlockParams p = { .stride = cs->stride, .residual = cs->residual };
  dcr_conv2d_same_padding (cs->hw, 3, cs->stride, 1, &p.pad_top, &p.pad_bottom);
  dcr_conv2d_same_padding (cs->hw, 3, cs->stride, 1, &p.pad_left, &p.pad_right);
  gint64 ho = dcr_conv2d_out_size (cs->hw, 3, cs->stride, p.pad_top, p.pad_bottom, 1);
  gint64 xs[] = { 1, cs->hw, cs->hw, cs->cin }, ys[] = { 1, ho, ho, cs->cout }, bs[] = { cs->cout };
  gint64 ps[] = { cs->mid, dcr_mbblock_row_length (ctx, cs->cin, cs->cout) };
  g_autoptr (DcrTensor) x = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dt, 4, xs, error);
  g_autoptr (DcrTensor) w = x ? dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, dt, 2, ps, error) : NULL;
  g_autoptr (DcrTensor) b = w ? dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, dt, 1, bs, error) : NULL;
  g_autoptr (DcrTensor) y = b ? dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dt, 4, ys, error) : NULL;
  if (!y || !dcr_buffer_fill_zero (x->buf, error) || !dcr_buffer_fill_zero (w->buf, error)
      || !dcr_buffer_fill_zero (b->buf, error))
    return FALSE;
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
  if (!seq)
    return FALSE;
  dcr_seq_enable_timing (seq);
  double min_ms, median_ms;
  if (!dcr_op_mbblock (seq, x, w, b, y, &p, error) || !dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
    return FALSE;
  g_autofree char *shape = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                                            " -> %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT " s%d%s (%s, fused)",
                                            cs->hw, cs->hw, cs->cin, cs->mid, cs->cout, cs->stride,
                                            cs->residual ? " +residual" : "", cs->what);
  double flop = 2.0 * cs->mid * ((double) cs->hw * cs->hw * cs->cin + (double) ho * ho * (9 + cs->cout));
  dcr_bench_add (results, "mbblock", shape, dt, flop, 0, min_ms, median_ms, opts->repeats);
  return TRUE;
}

/* Pooling, pointwise and preprocessing are memory-bound: they report GB/s. */
static gboolean
time_and_add (DcrSeq *seq, const DcrBenchOptions *opts, GArray *results, const char *op, const char *shape,
              DcrDtype dt, double bytes, GError **error)
{
  double min_ms, median_ms;
  if (!dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
    return FALSE;
  dcr_bench_add (results, op, shape, dt, 0, bytes, min_ms, median_ms, opts->repeats);
  return TRUE;
}

static DcrTensor *
zeros (DcrContext *ctx, DcrDtype dt, int ndim, const gint64 *shape, GError **error)
{
  DcrTensor *t = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dt, ndim, shape, error);
  if (t && !dcr_buffer_fill_zero (t->buf, error))
    g_clear_pointer (&t, dcr_tensor_free);
  return t;
}

static gboolean
bench_pool (DcrContext *ctx, const DcrBenchOptions *opts, DcrDtype dt, GArray *results, GError **error)
{
  gsize es = dcr_dtype_size (dt);
  /* ResNet-50's stem max-pool; the quick run uses a quarter of it */
  gint64 hw = opts->quick ? 56 : 112;
  gint64 xs[] = { 1, hw, hw, 64 }, ys[] = { 1, hw / 2, hw / 2, 64 };
  g_autoptr (DcrTensor) x = zeros (ctx, dt, 4, xs, error);
  g_autoptr (DcrTensor) y = x ? zeros (ctx, dt, 4, ys, error) : NULL;
  if (!y)
    return FALSE;
  DcrPool2dParams p = { DCR_POOL_MAX, 3, 3, 2, 2, 1, 1, 1, 1 };
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
  if (!seq)
    return FALSE;
  dcr_seq_enable_timing (seq);
  g_autofree char *s1 = g_strdup_printf ("max 3x3/2 pad 1 %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x64 (resnet50 stem)",
                                         hw, hw);
  if (!dcr_op_pool2d (seq, x, y, &p, error)
      || !time_and_add (seq, opts, results, "pool", s1, dt, (double) (dcr_tensor_numel (x) + dcr_tensor_numel (y)) * es,
                        error))
    return FALSE;
  if (opts->quick)
    return TRUE;

  /* ResNet-50's head and the MobileNetV2 block-10 tap */
  const gint64 gshapes[][4] = { { 1, 7, 7, 2048 }, { 1, 14, 14, 96 }, { 32, 7, 7, 2048 } };
  const char *gwhat[] = { "resnet50 head", "mobilenetv2 block10 tap", "resnet50 head, batch 32" };
  for (guint i = 0; i < G_N_ELEMENTS (gshapes); i++)
    {
      gint64 gys[] = { gshapes[i][0], gshapes[i][3] };
      g_autoptr (DcrTensor) gx = zeros (ctx, dt, 4, gshapes[i], error);
      g_autoptr (DcrTensor) gy = gx ? zeros (ctx, dt, 2, gys, error) : NULL;
      g_autoptr (DcrSeq) gseq = gy ? dcr_seq_new (ctx, error) : NULL;
      if (!gseq)
        return FALSE;
      dcr_seq_enable_timing (gseq);
      g_autofree char *s = g_strdup_printf ("global avg %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                                            "x%" G_GINT64_FORMAT " (%s)", gshapes[i][0], gshapes[i][1],
                                            gshapes[i][2], gshapes[i][3], gwhat[i]);
      if (!dcr_op_global_avg_pool (gseq, gx, gy, error)
          || !time_and_add (gseq, opts, results, "pool", s, dt, (double) dcr_tensor_numel (gx) * es, error))
        return FALSE;
    }
  return TRUE;
}

typedef struct {
  const char *what;
  int kind;           /* 0 binary, 1 activation, 2 clamp */
  DcrBinaryOp op;
  DcrAct act;
  int andim;
  gint64 a[4];
  int bndim;
  gint64 b[4];
  gboolean quick;
} EltCase;

static const EltCase elt_cases[] = {
  { "residual add + relu (resnet50 layer1)", 0, DCR_BINARY_ADD, DCR_ACT_RELU, 4, { 1, 56, 56, 256 }, 4, { 1, 56, 56, 256 }, TRUE },
  { "per-channel scale", 0, DCR_BINARY_MUL, DCR_ACT_NONE, 4, { 1, 56, 56, 144 }, 1, { 144 }, FALSE },
  { "|f - r| (dcr-net difference, batch 64)", 0, DCR_BINARY_ABSDIFF, DCR_ACT_NONE, 2, { 64, 2048 }, 2, { 64, 2048 }, FALSE },
  { "gelu (vit-l/14 mlp)", 1, 0, DCR_ACT_GELU, 2, { 257, 4096 }, 0, { 0 }, FALSE },
  { "quick_gelu (clip mlp)", 1, 0, DCR_ACT_QUICK_GELU, 2, { 257, 4096 }, 0, { 0 }, FALSE },
  { "clamp", 2, 0, DCR_ACT_NONE, 4, { 1, 112, 112, 32 }, 0, { 0 }, FALSE },
};

static gboolean
bench_eltwise (DcrContext *ctx, const DcrBenchOptions *opts, DcrDtype dt, GArray *results, GError **error)
{
  gsize es = dcr_dtype_size (dt);
  for (guint i = 0; i < G_N_ELEMENTS (elt_cases); i++)
    {
      const EltCase *c = &elt_cases[i];
      if (opts->quick && !c->quick)
        continue;
      g_autoptr (DcrTensor) a = zeros (ctx, dt, c->andim, c->a, error);
      g_autoptr (DcrTensor) b = a && c->kind == 0 ? zeros (ctx, dt, c->bndim, c->b, error) : NULL;
      g_autoptr (DcrTensor) y = a && (b || c->kind != 0) ? zeros (ctx, dt, c->andim, c->a, error) : NULL;
      g_autoptr (DcrSeq) seq = y ? dcr_seq_new (ctx, error) : NULL;
      if (!seq)
        return FALSE;
      dcr_seq_enable_timing (seq);
      gboolean ok;
      double bytes = 2.0 * dcr_tensor_numel (a) * es;
      if (c->kind == 0)
        {
          ok = dcr_op_binary (seq, c->op, a, b, y, c->act, error);
          bytes += (double) dcr_tensor_numel (b) * es;
        }
      else if (c->kind == 1)
        ok = dcr_op_activation (seq, a, y, c->act, error);
      else
        ok = dcr_op_clamp (seq, a, y, 0, 6, error);
      g_autofree char *as = dcr_ops_shape_string (a);
      g_autofree char *s = g_strdup_printf ("%s %s", c->what, as);
      if (!ok || !time_and_add (seq, opts, results, "eltwise", s, dt, bytes, error))
        return FALSE;
    }
  return TRUE;
}

/* What a dispatch costs whatever it does: 64 dispatches of a 16-element add
 * in one submission (each waits for the one before, as the layers of a
 * network do). On lavapipe this is thread wake-up and hand-over: the floor
 * under each of the detector's small per-image dispatches. */
static gboolean
bench_dispatch (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error)
{
  const int n = 64;
  gint64 shape[] = { 16 };
  g_autoptr (DcrTensor) a = zeros (ctx, DCR_F32, 1, shape, error);
  g_autoptr (DcrTensor) b = a ? zeros (ctx, DCR_F32, 1, shape, error) : NULL;
  g_autoptr (DcrTensor) y = b ? zeros (ctx, DCR_F32, 1, shape, error) : NULL;
  g_autoptr (DcrSeq) seq = y ? dcr_seq_new (ctx, error) : NULL;
  if (!seq)
    return FALSE;
  dcr_seq_enable_timing (seq);
  /* y = a + b, then a = y + b, …: each reads what the one before wrote */
  for (int i = 0; i < n; i++)
    if (!dcr_op_binary (seq, DCR_BINARY_ADD, i % 2 ? y : a, b, i % 2 ? a : y, DCR_ACT_NONE, error))
      return FALSE;
  double min_ms, median_ms;
  if (!dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
    return FALSE;
  g_autofree char *s = g_strdup_printf ("%d dependent dispatches of a 16-element add, %.3f ms each", n,
                                        median_ms / n);
  dcr_bench_add (results, "dispatch", s, DCR_F32, 0, 0, min_ms, median_ms, opts->repeats);
  return TRUE;
}

static gboolean
bench_preprocess (DcrContext *ctx, const DcrBenchOptions *opts, DcrDtype dt, GArray *results, GError **error)
{
  const gint64 s = 224;
  gint64 ys[] = { 1, s, s, 3 };
  g_autoptr (DcrTensor) y = zeros (ctx, dt, 4, ys, error);
  if (!y)
    return FALSE;
  /* modes: antialias and bilinear ImageNet presets and the keras preset on a
   * photo, then the keras preset on a 256² crop (the benchmark's images) */
  for (int mode = 0; mode < (opts->quick ? 1 : 4); mode++)
    {
      gint64 h = mode == 3 ? 256 : opts->quick ? 480 : 1080, w = mode == 3 ? 256 : opts->quick ? 640 : 1920;
      g_autoptr (DcrTensor) img = dcr_image_tensor_new (ctx, DCR_POOL_ACTIVATIONS, h, w, error);
      if (!img || !dcr_buffer_fill_zero (img->buf, error))
        return FALSE;
      DcrPreprocessParams p = { 0 };
      const char *what;
      if (mode >= 2)
        {
          p.resize_h = s;
          p.resize_w = s;
          dcr_preprocess_set_keras_tf (&p);
          what = "resize to 224x224, x/127.5-1 (keras mobilenetv2)";
        }
      else
        {
          dcr_preprocess_set_resize_short_crop (&p, h, w, 256, s, s);
          dcr_preprocess_set_imagenet (&p);
          p.filter = mode == 0 ? DCR_RESIZE_ANTIALIAS : DCR_RESIZE_BILINEAR;
          what = mode == 0 ? "Resize(256, antialias) + CenterCrop(224) + imagenet"
                           : "Resize(256, bilinear) + CenterCrop(224) + imagenet";
        }
      g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
      if (!seq)
        return FALSE;
      dcr_seq_enable_timing (seq);
      g_autofree char *shape = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " u8 -> 224x224x3: %s",
                                                w, h, what);
      double bytes = (double) h * w * 3 + (double) s * s * 3 * dcr_dtype_size (dt);
      if (!dcr_op_preprocess (seq, img, y, &p, error)
          || !time_and_add (seq, opts, results, "preprocess", shape, dt, bytes, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dcr_bench_conv (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error)
{
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  const DcrDtype dtypes[] = { DCR_F32, DCR_F16 };
  for (guint d = 0; d < G_N_ELEMENTS (dtypes); d++)
    {
      DcrDtype dt = dtypes[d];
      if (dt == DCR_F16 && !dev->storage_16bit)
        continue;
      for (guint i = 0; i < G_N_ELEMENTS (conv_cases); i++)
        {
          const ConvCase *cs = &conv_cases[i];
          if (!dcr_bench_wanted (opts, cs->op) || (opts->quick && !cs->quick))
            continue;
          if (!bench_conv (ctx, opts, cs, dt, results, error))
            {
              g_prefix_error (error, "%s %s (%s): ", cs->op, dcr_dtype_name (dt), cs->what);
              return FALSE;
            }
        }
      for (guint i = 0; i < G_N_ELEMENTS (mb_cases); i++)
        {
          const MbCase *cs = &mb_cases[i];
          if (!dcr_bench_wanted (opts, "mbblock") || (opts->quick && !cs->quick)
              || !dcr_mbblock_supported (ctx, cs->cin, cs->cout))
            continue;
          if (!bench_mbblock (ctx, opts, cs, dt, results, error))
            {
              g_prefix_error (error, "mbblock %s (%s): ", dcr_dtype_name (dt), cs->what);
              return FALSE;
            }
        }
      if (dcr_bench_wanted (opts, "pool") && !bench_pool (ctx, opts, dt, results, error))
        return FALSE;
      if (dcr_bench_wanted (opts, "eltwise") && !bench_eltwise (ctx, opts, dt, results, error))
        return FALSE;
      if (dcr_bench_wanted (opts, "preprocess") && !bench_preprocess (ctx, opts, dt, results, error))
        return FALSE;
    }
  if (dcr_bench_wanted (opts, "dispatch") && !bench_dispatch (ctx, opts, results, error))
    return FALSE;
  return TRUE;
}
