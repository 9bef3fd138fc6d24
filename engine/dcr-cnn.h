/* dcr-cnn.h — the learned forensic CNN ("cnn-v1"): a small fully
 * convolutional network over an image's pixels at their native resolution,
 * trained by `dcr train-cnn` (dcr-cnn-train.h) to give every location of
 * its output map a logit for "these pixels were generated". It is the one
 * learned piece of pixel-level evidence in the backbone: the residual and
 * local taps are fixed statistics, and they lose most of what separates
 * the classes once an image is JPEG-compressed.
 *
 * Window: the pixels the tap reads in an H × W image are the centred
 * min(H, 512) × min(W, 512) pixels, with the origin rounded *down* to a
 * multiple of 8 in both axes, so that a JPEG's 8 × 8 block grid falls on
 * the same phase as in training (dcr_cnn_window).
 *
 * Preprocessing (fixed): p = x / 32 per channel (R, G, B; x the 8-bit
 * value), q = p − the mean of p over the 5 × 5 box around each pixel,
 * valid positions only: q is (h − 4) × (w − 4) × 3 for an h × w window,
 * q[i][j][c] = p[i + 2][j + 2][c] − (1/25)·Σ_{a,b = 0…4} p[i + a][j + b][c].
 *
 * Layers l = 0 … L − 1 (L ≤ DCR_CNN_MAX_LAYERS): a square k_l × k_l
 * convolution with stride s_l, no padding ("valid"), cin_l → cout_l
 * channels (cin_0 = 3, cin_l = cout_{l−1}, cout_{L−1} = 1), plus bias,
 * followed by ReLU on every layer but the last. The last layer's output is
 * the logit map M, hm × wm (dcr_cnn_map_size), one map cell per S = Π s_l
 * pixels along each axis.
 *
 * Columns (DCR_CNN_DIM), from M split into non-overlapping blocks of
 * t × t cells, t = dcr_cnn_block() = max(1, round(48 / S)) (about 48 px),
 * whole blocks only, row-major (nbh = hm / t, nbw = wm / t; when that
 * leaves no whole block, the whole map is one block):
 *   0 = the mean of M over all its cells,
 *   1 = the mean of the min(DCR_CNN_TOPK, nb) largest block means,
 *   2 = the largest block mean.
 *
 * File (safetensors, f32 tensors): "layer{l}.weight" [cout, k, k, cin]
 * (dcr_op_conv2d's layout), "layer{l}.bias" [cout], l = 0 … L − 1;
 * metadata "format" = "dcr-cnn", "version" = "cnn-v1", "strides" = the
 * L strides as decimal integers joined by "," (e.g. "2,2,1,1"), optionally
 * "training" (JSON text). */
#pragma once

#include "dcr-ops.h"

G_BEGIN_DECLS

#define DCR_CNN_DIM 3              /* backbone columns */
#define DCR_CNN_MAX_LAYERS 6
#define DCR_CNN_MAX_CHANNELS 64
#define DCR_CNN_MAX_KERNEL 7
#define DCR_CNN_MAX_STRIDE 4
#define DCR_CNN_BOX 5              /* preprocessing box side */
#define DCR_CNN_SCALE (1.0 / 32.0) /* preprocessing scale */
#define DCR_CNN_BLOCK_PX 48        /* block side in pixels (about) */
#define DCR_CNN_TOPK 4
#define DCR_CNN_WINDOW 512
#define DCR_CNN_ALIGN 8
/* blocks of the largest window: 10 × 10 at S = 1 (t = 48), at most 11 × 11
 * for the other total strides but one; dcr_cnn_new and dcr_cnn_load refuse
 * an architecture whose 512 × 512 window makes more (S = 36: t = 1, 14 × 14
 * and more) */
#define DCR_CNN_MAX_BLOCKS 121

#define DCR_CNN_ERROR (dcr_cnn_error_quark ())
GQuark dcr_cnn_error_quark (void);
typedef enum {
  DCR_CNN_ERROR_FILE,  /* unreadable, malformed, or not a cnn-v1 file */
  DCR_CNN_ERROR_SHAPE, /* an architecture outside the limits above */
  DCR_CNN_ERROR_INPUT, /* an image or window too small for the network */
} DcrCnnError;

typedef struct {
  guint cin, cout, kernel, stride;
  float *weight; /* [cout][kernel][kernel][cin] */
  float *bias;   /* [cout] */
} DcrCnnLayer;

typedef struct {
  guint n_layers;
  DcrCnnLayer layers[DCR_CNN_MAX_LAYERS];
  char *sha256;   /* of the file it was loaded from (NULL when built in memory) */
  char *training; /* the file's "training" metadata, or NULL */
} DcrCnn;

/* A network with zero weights: n_layers layers, channels[0 … n_layers]
 * (channels[0] must be 3 and channels[n_layers] 1), kernels[] and
 * strides[] per layer. Checks every limit. */
DcrCnn *dcr_cnn_new (guint n_layers, const guint *channels, const guint *kernels, const guint *strides,
                     GError **error);
void dcr_cnn_free (DcrCnn *c);
/* Checks everything (format, version, strides, shapes and their chaining,
 * limits, finite values) and says what is wrong in a sentence a person can
 * act on. */
DcrCnn *dcr_cnn_load (const char *path, GError **error);
/* Atomic (dcr_safetensors_write); training: JSON text or NULL. */
gboolean dcr_cnn_save (const DcrCnn *c, const char *path, const char *training, GError **error);

/* Π strides. */
guint dcr_cnn_stride (const DcrCnn *c);
/* Block side in map cells: max(1, round(DCR_CNN_BLOCK_PX / stride)). */
guint dcr_cnn_block (const DcrCnn *c);
/* The logit map's size for an h × w window (preprocessing, then each
 * layer's floor((n − k) / s) + 1); FALSE when some layer gets less than its
 * kernel (*hm, *wm then 0). */
gboolean dcr_cnn_map_size (const DcrCnn *c, gint64 h, gint64 w, gint64 *hm, gint64 *wm);
/* The window of an H × W image (above). */
void dcr_cnn_window (gint64 H, gint64 W, gint64 *top, gint64 *left, gint64 *h, gint64 *w);
/* The smallest window side whose map is at least 1 × 1. */
gint64 dcr_cnn_min_side (const DcrCnn *c);

/* The three columns from a map [hm][wm] (host floats); blocks (may be
 * NULL; DCR_CNN_MAX_BLOCKS floats) receives the block means row-major and
 * *nbh, *nbw (may be NULL) the block grid. */
void dcr_cnn_columns (const DcrCnn *c, const float *map, gint64 hm, gint64 wm, float out[DCR_CNN_DIM],
                      float *blocks, guint *nbh, guint *nbw);

/* Reference in double: the preprocessing of an h × w window of RGB bytes
 * (row stride `stride` bytes; the first byte is the window's top-left
 * pixel's R) into q [(h − 4)][(w − 4)][3]. */
void dcr_ref_cnn_prep (const guint8 *rgb, gint64 stride, gint64 h, gint64 w, float *q);
/* Reference in double: the whole network on an h × w window of RGB bytes
 * (as above); map (may be NULL; hm · wm floats) and the columns. FALSE when
 * the window is too small. */
gboolean dcr_ref_cnn (const DcrCnn *c, const guint8 *rgb, gint64 stride, gint64 h, gint64 w, float *map,
                      float out[DCR_CNN_DIM]);

/* GPU: the preprocessing of n images at once. images: DCR_U8 tensor holding
 * n images of H × W × 3 bytes back to back (n = 1: a dcr_image_tensor_new
 * buffer); reads the window (top, left, h, w) of each; writes q to y, f32
 * [n, h − 4, w − 4, 3]. */
gboolean dcr_op_cnn_prep (DcrSeq *seq, const DcrTensor *images, gint64 n, gint64 H, gint64 W, gint64 top,
                          gint64 left, gint64 h, gint64 w, DcrTensor *y, GError **error);

/* GPU: the columns of n maps (f32 [n, hm, wm, 1]) into y (f32 or f16)
 * rows row0 … row0 + n − 1, columns column … column + DCR_CNN_DIM − 1;
 * blocks (may be NULL): f32 with at least n · DCR_CNN_MAX_BLOCKS elements,
 * the block means of map i at blocks[i · DCR_CNN_MAX_BLOCKS + b]. */
gboolean dcr_op_cnn_pool (DcrSeq *seq, const DcrTensor *map, guint block, DcrTensor *y, gint64 row0,
                          gint64 column, DcrTensor *blocks, GError **error);

/* The whole forward pass on the GPU, shared by the backbone's tap and the
 * trainer's evaluation: the weights uploaded once (DCR_POOL_WEIGHTS, f32)
 * and scratch for n images of windows up to max_h × max_w. */
typedef struct _DcrCnnGpu DcrCnnGpu;

DcrCnnGpu *dcr_cnn_gpu_new (DcrContext *ctx, const DcrCnn *cnn, gint64 n, gint64 max_h, gint64 max_w,
                            GError **error);
void dcr_cnn_gpu_free (DcrCnnGpu *gpu);
/* How many windows of h × w (h ≤ max_h, w ≤ max_w) one pass takes: the n
 * it was made for, more when the windows are smaller and their activations
 * fit the same scratch; 0 when the window is too large or too small. */
gint64 dcr_cnn_gpu_capacity (const DcrCnnGpu *gpu, gint64 h, gint64 w);
/* Records the network → pool for n images. Where the shapes allow, the
 * preprocessing is fused with the first layer (shaders/cnn_stem.comp) and
 * a thin stride-1 3 × 3 layer with a following 1 × 1 → 1 logit layer
 * (shaders/cnn_conv.comp); the other layers run through dcr_op_conv2d
 * (ReLU fused but on the last, no padding, DCR_CONV_ALGO_AUTO).
 * $DCR_CNN_STEM=0 turns the fused kernels off and $DCR_CNN_CONV_ALGO=
 * direct|igemm forces dcr_op_conv2d's kernel (benchmarks and tests).
 * For n images (≤ dcr_cnn_gpu_capacity) of H × W bytes back to back in
 * `images` (as dcr_op_cnn_prep), window (top, left, h, w): the columns to y rows
 * row0 … row0 + n − 1 from `column`, block means to `blocks` (may be NULL;
 * as dcr_op_cnn_pool). DCR_CNN_ERROR_INPUT when the window is too small. */
gboolean dcr_cnn_gpu_record (DcrSeq *seq, DcrCnnGpu *gpu, const DcrTensor *images, gint64 n, gint64 H, gint64 W,
                             gint64 top, gint64 left, gint64 h, gint64 w, DcrTensor *y, gint64 row0,
                             gint64 column, DcrTensor *blocks, GError **error);
/* The logit maps of the last recorded pass, f32 [n, hm, wm, 1] at the start
 * of the returned tensor's buffer (valid after the sequence ran, until the
 * next record). */
const DcrTensor *dcr_cnn_gpu_map (DcrCnnGpu *gpu);

/* Where block `block` (row-major in a grid nbw blocks wide, as
 * dcr_cnn_columns and dcr_backbone_run_cnn_blocks number them) of an H × W
 * image lies, in the image's pixels: map cell (i, j) stands for the S × S
 * pixels from window pixel (2 + i·S, 2 + j·S) (2: the preprocessing box's
 * margin, S = dcr_cnn_stride), so block (a, b) of t × t cells (t =
 * dcr_cnn_block) starts at (left + 2 + b·t·S, top + 2 + a·t·S) and is t·S
 * pixels a side; when the map holds no whole block, the one block is the
 * whole map (hm·S × wm·S). Clipped to the window. This is the stride's
 * footprint, where the evidence is placed; each cell also sees up to its
 * receptive field's reach beyond it. *w = *h = 0 when the image is too small
 * for the network, or nbw is not its grid's width (blocks of another image
 * size) or the block is outside the grid. */
void dcr_cnn_block_rect (const DcrCnn *c, gint64 H, gint64 W, guint nbw, guint block, gint64 *x, gint64 *y,
                         gint64 *w, gint64 *h);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrCnn, dcr_cnn_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DcrCnnGpu, dcr_cnn_gpu_free)

G_END_DECLS
