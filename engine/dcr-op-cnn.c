/* dcr-op-cnn.c — the forensic CNN on the GPU (definition in dcr-cnn.h): the
 * preprocessing (shaders/cnn_prep.comp), the columns from the logit maps
 * (shaders/cnn_pool.comp), and the whole forward pass: the preprocessing
 * fused with the first layer (shaders/cnn_stem.comp) when that layer is
 * small enough, the thin stride-1 layers (with a following 1 × 1 → 1 layer
 * fused in) through shaders/cnn_conv.comp, the others through
 * dcr_op_conv2d. On lavapipe this took the bench net (3×3/2 3→8, 3×3/2
 * 8→16, 3×3 16→16, 1×1 16→1) from six dispatches to four and about a
 * third of the time (BENCHMARKS.md). $DCR_CNN_STEM=0 turns the fused
 * kernels off (tests, benchmarks). */
#include "dcr-cnn.h"
#include "dcr-op-conv.h"
#include "dcr-op-forensic.h"

#include <string.h>

typedef struct {
  guint32 H, W, top, left, oh, ow, tiles;
} PrepPush;

typedef struct {
  guint32 hm, wm, t, nbh, nbw, out0, y_stride, write_blocks;
} PoolPush;

typedef struct {
  guint32 H, W, top, left, oh, ow, runs, rows, last_word, act;
} StemPush;

/* The fused stem's limits (shaders/cnn_stem.comp): up to 16 output
 * channels and k² · cout ≤ 144 (the shader is unrolled with its weights in
 * registers; a 7 × 7 → 16 one took LLVM minutes to compile on lavapipe); a
 * first layer beyond them runs as prep + dcr_op_conv2d. */
#define STEM_MAX_COUT 16
#define STEM_MAX_TAPS 144
#define STEM_LOCAL 32 /* invocations (output columns) a workgroup, both kernels */

/* Output rows a run (one invocation walks down one column of a run and
 * loads the layer's weights once): on lavapipe fewer, longer runs were
 * faster than more workgroups (a 256² image's layers are 2 × 1 or 4 × 2
 * workgroups of 32 columns × 64 rows). */
#define RUN_ROWS 64

/* The subgroup size the kernels share weight loads across (0: they load
 * them one by one). */
static guint32
weight_lanes (DcrSeq *seq)
{
  const DcrDeviceInfo *dev = dcr_context_device (dcr_seq_context (seq));
  return dev->subgroup_arithmetic && dev->subgroup_size <= STEM_LOCAL ? dev->subgroup_size : 0;
}

typedef struct {
  guint32 ih, iw, oh, ow, runs, rows, act, next_act;
} ThinPush;

/* The thin layers' kernel (shaders/cnn_conv.comp): stride 1, cin a
 * multiple of 4 up to 16, cout up to 16, weights up to a 3 × 3 16 → 16
 * layer's (kept in registers), fused with the next layer when that is
 * 1 × 1 → 1 channel; other layers run through dcr_op_conv2d (on lavapipe
 * its implicit GEMM was faster for the stride-2 8 → 16 layer, best 0.46
 * against 0.53 ms a 256² image, and slower for the stride-1 16 → 16 one
 * with the 1 × 1 after it, 0.68 + 0.20 against 0.49 fused). */
#define THIN_MAX_CHANNELS 16
#define THIN_MAX_WEIGHTS (3 * 3 * 16 * 16)

static gboolean
thin_fits (const DcrCnnLayer *L)
{
  return L->stride == 1 && L->cin % 4 == 0 && L->cin <= THIN_MAX_CHANNELS && L->cout <= THIN_MAX_CHANNELS
         && L->kernel * L->kernel * L->cin * L->cout <= THIN_MAX_WEIGHTS;
}

/* Whether layer N can follow a thin layer of cout channels in registers. */
static gboolean
next_fits (const DcrCnnLayer *N, guint cout)
{
  return N->kernel == 1 && N->stride == 1 && N->cout == 1 && N->cin == cout;
}

/* Layer L (thin_fits) from x f32 [n, ih, iw, cin] into y f32 [n, oh, ow,
 * cout]; with next_w (next_fits), the next layer too: y [n, oh, ow, 1]. The
 * shapes are the caller's (dcr_cnn_gpu_record's). */
static gboolean
record_thin (DcrSeq *seq, const DcrCnnLayer *L, const DcrTensor *x, const DcrTensor *weight, const DcrTensor *bias,
             gboolean relu, const DcrTensor *next_w, const DcrTensor *next_b, gboolean next_relu, DcrTensor *y,
             GError **error)
{
  gint64 n = x->shape[0], oh = y->shape[1], ow = y->shape[2];
  if (dcr_tensor_numel (x) >= G_MAXUINT32 || dcr_tensor_numel (y) >= G_MAXUINT32)
    return dcr_ops_shape_error (error, "cnn-conv", "the activations exceed 2^32 elements", x, y);
  DcrBinding b[6] = {
    { x->buf, 0, (gsize) dcr_tensor_numel (x) * 4, FALSE },
    dcr_ops_bind (weight, FALSE),
    dcr_ops_bind (bias, FALSE),
    { y->buf, 0, (gsize) dcr_tensor_numel (y) * 4, TRUE },
    dcr_ops_bind (next_w ? next_w : weight, FALSE), /* without next_w, placeholders the shader does not read */
    dcr_ops_bind (next_b ? next_b : bias, FALSE),
  };
  gint64 rows = MIN (oh, RUN_ROWS), runs = n * ((oh + rows - 1) / rows);
  ThinPush pc = { (guint32) x->shape[1], (guint32) x->shape[2], (guint32) oh, (guint32) ow, (guint32) runs,
                  (guint32) rows, relu, next_relu };
  guint32 spec[] = { STEM_LOCAL, 1, 1, L->kernel, L->stride, L->cin / 4, L->cout, weight_lanes (seq), next_w != NULL };
  return dcr_ops_dispatch (seq, "cnn_conv", spec, G_N_ELEMENTS (spec), b, 6, &pc, sizeof pc,
                           (guint32) ((ow + STEM_LOCAL - 1) / STEM_LOCAL),
                           (guint32) MIN (runs, (gint64) DCR_OPS_MAX_GROUPS), 1, error);
}

gboolean
dcr_op_cnn_prep (DcrSeq *seq, const DcrTensor *images, gint64 n, gint64 H, gint64 W, gint64 top, gint64 left,
                 gint64 h, gint64 w, DcrTensor *y, GError **error)
{
  const char *op = "cnn-prep";
  if (images->dtype != DCR_U8 || n < 1 || H < 1 || W < 1 || (gint64) dcr_tensor_bytes (images) < n * H * W * 3)
    return dcr_ops_shape_error (error, op, "the images must be u8 with n · H · W · 3 bytes", images, NULL);
  if (h < DCR_CNN_BOX || w < DCR_CNN_BOX || top < 0 || left < 0 || top + h > H || left + w > W)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "%s: the window %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT " at (%" G_GINT64_FORMAT ", %"
                   G_GINT64_FORMAT ") is smaller than %d×%d or outside the %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT
                   " image", op, w, h, left, top, DCR_CNN_BOX, DCR_CNN_BOX, W, H);
      return FALSE;
    }
  if (n * H * W * 3 >= G_MAXUINT32)
    return dcr_ops_shape_error (error, op, "the images exceed 4 GiB", images, NULL);
  gint64 oh = h - (DCR_CNN_BOX - 1), ow = w - (DCR_CNN_BOX - 1);
  if (y->dtype != DCR_F32 || y->ndim != 4 || y->shape[0] != n || y->shape[1] != oh || y->shape[2] != ow
      || y->shape[3] != 3)
    {
      g_autofree char *ys = dcr_ops_shape_string (y);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "%s: the output is %s, expected f32 [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %"
                   G_GINT64_FORMAT ", 3]", op, ys, n, oh, ow);
      return FALSE;
    }
  gsize need = (gsize) ((n * H * W * 3 + 3) & ~(gint64) 3);
  DcrBinding b[2] = {
    { images->buf, 0, need, FALSE },
    dcr_ops_bind (y, TRUE),
  };
  /* tiles of 16 rows × 64 columns (shaders/cnn_prep.comp) */
  gint64 tiles = n * ((oh + 15) / 16);
  PrepPush pc = { (guint32) H, (guint32) W, (guint32) top, (guint32) left, (guint32) oh, (guint32) ow,
                  (guint32) tiles };
  guint32 gx = (guint32) ((ow + 63) / 64), gy = (guint32) MIN (tiles, (gint64) DCR_OPS_MAX_GROUPS);
  return dcr_ops_dispatch (seq, "cnn_prep", NULL, 0, b, 2, &pc, sizeof pc, gx, gy, 1, error);
}

gboolean
dcr_op_cnn_pool (DcrSeq *seq, const DcrTensor *map, guint block, DcrTensor *y, gint64 row0, gint64 column,
                 DcrTensor *blocks, GError **error)
{
  const char *op = "cnn-pool";
  if (map->dtype != DCR_F32 || map->ndim != 4 || map->shape[3] != 1 || map->shape[0] < 1 || map->shape[1] < 1
      || map->shape[2] < 1 || map->shape[0] > DCR_OPS_MAX_GROUPS || dcr_tensor_numel (map) >= G_MAXINT32)
    return dcr_ops_shape_error (error, op, "the maps must be f32 [n, hm, wm, 1]", map, NULL);
  gint64 n = map->shape[0], hm = map->shape[1], wm = map->shape[2];
  if (block < 1)
    return dcr_ops_shape_error (error, op, "the block side must be at least 1", map, NULL);
  gint64 nbh = hm / block, nbw = wm / block;
  if (nbh < 1 || nbw < 1)
    nbh = nbw = 0;
  if (nbh * nbw > DCR_CNN_MAX_BLOCKS)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "%s: a %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT " map in blocks of %u makes %" G_GINT64_FORMAT
                   " blocks, more than %d", op, wm, hm, block, nbh * nbw, DCR_CNN_MAX_BLOCKS);
      return FALSE;
    }
  if (blocks && (blocks->dtype != DCR_F32 || dcr_tensor_numel (blocks) < n * DCR_CNN_MAX_BLOCKS))
    return dcr_ops_shape_error (error, op, "the block means must be f32 with DCR_CNN_MAX_BLOCKS per map", blocks,
                                NULL);
  if (!dcr_ops_check_dtype (seq, op, y, error))
    return FALSE;
  if (y->ndim != 2 || row0 < 0 || row0 + n > y->shape[0] || column < 0 || column + DCR_CNN_DIM > y->shape[1])
    return dcr_ops_shape_error (error, op, "the feature rows or columns are outside the output", y, NULL);

  DcrBinding b[3] = {
    { map->buf, 0, (gsize) dcr_tensor_numel (map) * 4, FALSE },
  };
  /* rows row0 … row0 + n − 1 from the 256-byte boundary below the first */
  gsize es = dcr_dtype_size (y->dtype);
  guint32 out0 = dcr_forensic_row_binding (y, row0, column, DCR_CNN_DIM, &b[1]);
  b[1].size += (gsize) (n - 1) * y->shape[1] * es;
  b[2] = blocks ? dcr_ops_bind (blocks, TRUE) : b[0]; /* without blocks, a placeholder the shader does not touch */
  PoolPush pc = { (guint32) hm, (guint32) wm, block, (guint32) nbh, (guint32) nbw, out0, (guint32) y->shape[1],
                  blocks != NULL };
  char name[32];
  return dcr_ops_dispatch (seq, dcr_ops_shader_name ("cnn_pool", y->dtype, name, sizeof name), NULL, 0, b, 3, &pc,
                           sizeof pc, (guint32) n, 1, 1, error);
}

/* The preprocessing and layer 0 (L: its shape; weight [cout, k, k, 3],
 * bias [cout]) in one dispatch, into y f32 [n, oh, ow, cout]; checks as
 * dcr_op_cnn_prep. */
static gboolean
record_stem (DcrSeq *seq, const DcrTensor *images, gint64 n, gint64 H, gint64 W, gint64 top, gint64 left, gint64 h,
             gint64 w, const DcrCnnLayer *L, const DcrTensor *weight, const DcrTensor *bias, gboolean relu,
             DcrTensor *y, GError **error)
{
  const char *op = "cnn-stem";
  if (images->dtype != DCR_U8 || n < 1 || H < 1 || W < 1 || (gint64) dcr_tensor_bytes (images) < n * H * W * 3)
    return dcr_ops_shape_error (error, op, "the images must be u8 with n · H · W · 3 bytes", images, NULL);
  gint64 ih = h - (DCR_CNN_BOX - 1), iw = w - (DCR_CNN_BOX - 1);
  if (ih < L->kernel || iw < L->kernel || top < 0 || left < 0 || top + h > H || left + w > W)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "%s: the window %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT " at (%" G_GINT64_FORMAT ", %"
                   G_GINT64_FORMAT ") is smaller than %u×%u or outside the %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT
                   " image", op, w, h, left, top, L->kernel + DCR_CNN_BOX - 1, L->kernel + DCR_CNN_BOX - 1, W, H);
      return FALSE;
    }
  if (n * H * W * 3 >= G_MAXUINT32)
    return dcr_ops_shape_error (error, op, "the images exceed 4 GiB", images, NULL);
  gint64 oh = (ih - L->kernel) / L->stride + 1, ow = (iw - L->kernel) / L->stride + 1;
  if (y->dtype != DCR_F32 || y->ndim != 4 || y->shape[0] != n || y->shape[1] != oh || y->shape[2] != ow
      || y->shape[3] != L->cout || n * oh * ow * L->cout >= G_MAXUINT32)
    {
      g_autofree char *ys = dcr_ops_shape_string (y);
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "%s: the output is %s, expected f32 [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %"
                   G_GINT64_FORMAT ", %u]", op, ys, n, oh, ow, L->cout);
      return FALSE;
    }
  gsize need = (gsize) ((n * H * W * 3 + 3) & ~(gint64) 3);
  DcrBinding b[4] = {
    { images->buf, 0, need, FALSE },
    dcr_ops_bind (weight, FALSE),
    dcr_ops_bind (bias, FALSE),
    dcr_ops_bind (y, TRUE),
  };
  gint64 rows = MIN (oh, RUN_ROWS), runs = n * ((oh + rows - 1) / rows);
  StemPush pc = { (guint32) H, (guint32) W, (guint32) top, (guint32) left, (guint32) oh, (guint32) ow,
                  (guint32) runs, (guint32) rows, (guint32) (need / 4 - 1), relu };
  guint32 spec[] = { STEM_LOCAL, 1, 1, L->kernel, L->stride, L->cout, weight_lanes (seq) };
  return dcr_ops_dispatch (seq, "cnn_stem", spec, G_N_ELEMENTS (spec), b, 4, &pc, sizeof pc,
                           (guint32) ((ow + STEM_LOCAL - 1) / STEM_LOCAL),
                           (guint32) MIN (runs, (gint64) DCR_OPS_MAX_GROUPS), 1, error);
}

/* ---- the whole forward pass ------------------------------------------- */

struct _DcrCnnGpu {
  DcrCnn *cnn; /* a copy of the architecture (weights not kept) */
  gint64 n, max_h, max_w;
  DcrTensor *weight[DCR_CNN_MAX_LAYERS], *bias[DCR_CNN_MAX_LAYERS];
  DcrTensor *q;       /* [n, max_h − 4, max_w − 4, 3] */
  DcrTensor *act[2];  /* ping-pong, the largest layer output */
  gint64 act_elems;   /* floats in each act (n · the largest layer output) */
  DcrTensor map;      /* view of the last pass's maps */
  DcrConvAlgo algo;   /* AUTO; $DCR_CNN_CONV_ALGO=direct|igemm forces one (benchmarks) */
  gboolean stem;      /* layer 0 fused with the preprocessing (cnn_stem); $DCR_CNN_STEM=0: never */
  gboolean thin;      /* the other layers through cnn_conv where they fit; $DCR_CNN_STEM=0: never */
};

void
dcr_cnn_gpu_free (DcrCnnGpu *gpu)
{
  if (!gpu)
    return;
  for (guint l = 0; l < DCR_CNN_MAX_LAYERS; l++)
    {
      dcr_tensor_free (gpu->weight[l]);
      dcr_tensor_free (gpu->bias[l]);
    }
  dcr_tensor_free (gpu->q);
  dcr_tensor_free (gpu->act[0]);
  dcr_tensor_free (gpu->act[1]);
  g_free (gpu->cnn);
  g_free (gpu);
}

static gboolean
too_small (const DcrCnn *c, gint64 h, gint64 w, GError **error)
{
  g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_INPUT,
               "The forensic CNN needs a window of at least %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT
               " pixels; this one is %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT, dcr_cnn_min_side (c),
               dcr_cnn_min_side (c), w, h);
  return FALSE;
}

/* The largest layer output of the network on an h × w window, in floats
 * (the activations' scratch holds one such per image). */
static gint64
largest_output (const DcrCnn *c, gint64 h, gint64 w)
{
  gint64 ih = h - (DCR_CNN_BOX - 1), iw = w - (DCR_CNN_BOX - 1), largest = 1;
  for (guint l = 0; l < c->n_layers; l++)
    {
      const DcrCnnLayer *L = &c->layers[l];
      ih = (ih - L->kernel) / L->stride + 1;
      iw = (iw - L->kernel) / L->stride + 1;
      largest = MAX (largest, ih * iw * L->cout);
    }
  return largest;
}

DcrCnnGpu *
dcr_cnn_gpu_new (DcrContext *ctx, const DcrCnn *cnn, gint64 n, gint64 max_h, gint64 max_w, GError **error)
{
  gint64 hm, wm;
  if (n < 1)
    {
      g_set_error (error, DCR_CNN_ERROR, DCR_CNN_ERROR_INPUT, "The forensic CNN needs at least one image a pass");
      return NULL;
    }
  if (!dcr_cnn_map_size (cnn, max_h, max_w, &hm, &wm))
    {
      too_small (cnn, max_h, max_w, error);
      return NULL;
    }
  g_autoptr (DcrCnnGpu) gpu = g_new0 (DcrCnnGpu, 1);
  gpu->cnn = g_new0 (DcrCnn, 1);
  gpu->cnn->n_layers = cnn->n_layers;
  gpu->n = n;
  gpu->max_h = max_h;
  gpu->max_w = max_w;
  const char *algo = g_getenv ("DCR_CNN_CONV_ALGO");
  gpu->algo = g_strcmp0 (algo, "direct") == 0 ? DCR_CONV_ALGO_DIRECT
              : g_strcmp0 (algo, "igemm") == 0 ? DCR_CONV_ALGO_IGEMM
                                               : DCR_CONV_ALGO_AUTO;
  gboolean fused = g_strcmp0 (g_getenv ("DCR_CNN_STEM"), "0") != 0;
  const DcrCnnLayer *L0 = &cnn->layers[0];
  gpu->stem = fused && L0->cout <= STEM_MAX_COUT && L0->kernel * L0->kernel * L0->cout <= STEM_MAX_TAPS;
  gpu->thin = fused && gpu->algo == DCR_CONV_ALGO_AUTO;
  gint64 qs[] = { n, max_h - (DCR_CNN_BOX - 1), max_w - (DCR_CNN_BOX - 1), 3 };
  if (!gpu->stem && !(gpu->q = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 4, qs, error)))
    return NULL;
  for (guint l = 0; l < cnn->n_layers; l++)
    {
      const DcrCnnLayer *L = &cnn->layers[l];
      DcrCnnLayer *C = &gpu->cnn->layers[l];
      *C = *L;
      C->weight = C->bias = NULL;
      gint64 ws[] = { L->cout, L->kernel, L->kernel, L->cin }, bs[] = { L->cout };
      if (!(gpu->weight[l] = dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, DCR_F32, 4, ws, error))
          || !dcr_tensor_upload (gpu->weight[l], L->weight, error)
          || !(gpu->bias[l] = dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, DCR_F32, 1, bs, error))
          || !dcr_tensor_upload (gpu->bias[l], L->bias, error))
        return NULL;
    }
  gpu->act_elems = n * largest_output (cnn, max_h, max_w);
  gint64 as[] = { gpu->act_elems };
  for (int i = 0; i < 2; i++)
    if (!(gpu->act[i] = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, as, error)))
      return NULL;
  return g_steal_pointer (&gpu);
}

gint64
dcr_cnn_gpu_capacity (const DcrCnnGpu *gpu, gint64 h, gint64 w)
{
  gint64 hm, wm;
  if (h > gpu->max_h || w > gpu->max_w || !dcr_cnn_map_size (gpu->cnn, h, w, &hm, &wm))
    return 0;
  gint64 ih = h - (DCR_CNN_BOX - 1), iw = w - (DCR_CNN_BOX - 1);
  gint64 cap = gpu->q ? dcr_tensor_numel (gpu->q) / (3 * ih * iw) : G_MAXINT64;
  return MIN (cap, gpu->act_elems / largest_output (gpu->cnn, h, w));
}

gboolean
dcr_cnn_gpu_record (DcrSeq *seq, DcrCnnGpu *gpu, const DcrTensor *images, gint64 n, gint64 H, gint64 W, gint64 top,
                    gint64 left, gint64 h, gint64 w, DcrTensor *y, gint64 row0, gint64 column, DcrTensor *blocks,
                    GError **error)
{
  const DcrCnn *c = gpu->cnn;
  gint64 hm, wm;
  if (!dcr_cnn_map_size (c, h, w, &hm, &wm))
    return too_small (c, h, w, error);
  if (n < 1 || n > dcr_cnn_gpu_capacity (gpu, h, w))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE,
                   "cnn: %" G_GINT64_FORMAT " windows of %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT
                   " do not fit scratch made for %" G_GINT64_FORMAT " of up to %" G_GINT64_FORMAT "×%"
                   G_GINT64_FORMAT, n, w, h, gpu->n, gpu->max_w, gpu->max_h);
      return FALSE;
    }
  gint64 ih = h - (DCR_CNN_BOX - 1), iw = w - (DCR_CNN_BOX - 1);
  gint64 qs[] = { n, ih, iw, 3 };
  DcrTensor x = { gpu->q ? gpu->q->buf : NULL, DCR_F32, 4, { 0 } };
  memcpy (x.shape, qs, sizeof qs);
  if (!gpu->stem && !dcr_op_cnn_prep (seq, images, n, H, W, top, left, h, w, &x, error))
    return FALSE;
  for (guint l = 0; l < c->n_layers; l++)
    {
      const DcrCnnLayer *L = &c->layers[l];
      gint64 oh = (ih - L->kernel) / L->stride + 1, ow = (iw - L->kernel) / L->stride + 1;
      DcrTensor out = { gpu->act[l % 2]->buf, DCR_F32, 4, { n, oh, ow, L->cout } };
      if (l == 0 && gpu->stem)
        {
          if (!record_stem (seq, images, n, H, W, top, left, h, w, L, gpu->weight[0], gpu->bias[0],
                            c->n_layers > 1, &out, error))
            return FALSE;
          x = out;
          ih = oh;
          iw = ow;
          continue;
        }
      if (gpu->thin && thin_fits (L))
        {
          gboolean fuse = l + 1 < c->n_layers && next_fits (&c->layers[l + 1], L->cout);
          if (fuse)
            out.shape[3] = 1;
          if (!record_thin (seq, L, &x, gpu->weight[l], gpu->bias[l], l + 1 < c->n_layers,
                            fuse ? gpu->weight[l + 1] : NULL, fuse ? gpu->bias[l + 1] : NULL, l + 2 < c->n_layers,
                            &out, error))
            return FALSE;
          x = out;
          ih = oh;
          iw = ow;
          l += fuse;
          continue;
        }
      DcrConv2dParams p = {
        .stride_h = (int) L->stride,
        .stride_w = (int) L->stride,
        .act = l + 1 < c->n_layers ? DCR_ACT_RELU : DCR_ACT_NONE,
        .algo = gpu->algo,
      };
      if (!dcr_op_conv2d (seq, &x, gpu->weight[l], gpu->bias[l], NULL, &out, &p, error))
        return FALSE;
      x = out;
      ih = oh;
      iw = ow;
    }
  g_assert (ih == hm && iw == wm);
  gpu->map = x;
  return dcr_op_cnn_pool (seq, &gpu->map, dcr_cnn_block (c), y, row0, column, blocks, error);
}

const DcrTensor *
dcr_cnn_gpu_map (DcrCnnGpu *gpu)
{
  return &gpu->map;
}
