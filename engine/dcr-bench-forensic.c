/* dcr-bench-forensic.c — `dcr bench ops` cases for the forensic taps: the
 * global residual statistics (dcr-op-forensic.h, "forensic"), the tiled
 * ones (dcr-op-local.h, "local") and the tiled ones followed by the tile
 * head (dcr-tile-head.h, "local+tiles", hidden width 64 with random
 * weights) of a batch of noise images at their native resolution, each
 * image's dispatches recorded one after another (as the backbone records an
 * image of a size of its own), and "…-batch": the batch's images back to
 * back in one tensor, one dispatch an op for all (as the backbone records
 * consecutive images of one size); and the learned forensic CNN
 * (dcr-cnn.h, "cnn": the default model's shape, conv 3×3 s2 3→8, 3×3 s2
 * 8→16, 3×3 s2 16→32, 3×3 32→32, 1×1 32→1, with random weights) the same
 * way, one image a pass through one scratch as the backbone's tap runs it
 * ("cnn-batch": the 16 images in one pass), with a row per dispatch
 * ("cnn/prep", "cnn/conv0" …: its median share of one image). */
#include "dcr-bench.h"
#include "dcr-op-forensic.h"
#include "dcr-op-local.h"
#include "dcr-op-preprocess.h"
#include "dcr-tile-head.h"
#include "dcr-cnn.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
  const char *op;
  gint64 h, w;
  guint batch;
  gboolean quick;
} ForensicCase;

static const ForensicCase cases[] = {
  { "forensic", 64, 64, 2, TRUE },
  { "local", 64, 64, 2, TRUE },
  { "forensic", 256, 256, 16, FALSE },
  { "local", 256, 256, 16, FALSE },
  { "forensic", 512, 512, 16, FALSE },
  { "local", 512, 512, 16, FALSE },
  { "local+tiles", 64, 64, 2, TRUE },
  { "local+tiles", 256, 256, 16, FALSE },
  { "local+tiles", 512, 512, 16, FALSE },
  { "forensic-batch", 256, 256, 16, FALSE },
  { "local+tiles-batch", 256, 256, 16, FALSE },
  { "cnn", 64, 64, 2, TRUE },
  { "cnn", 256, 256, 16, FALSE },
  { "cnn", 512, 512, 16, FALSE },
  { "cnn-batch", 256, 256, 16, FALSE },
  { "cnn-batch", 512, 512, 16, FALSE },
};

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* The CNN's cases (above). */
static gboolean
bench_cnn (DcrContext *ctx, const DcrBenchOptions *opts, const ForensicCase *cs, GArray *results, GError **error)
{
  gboolean batched = g_str_equal (cs->op, "cnn-batch");
  static const guint channels[] = { 3, 8, 16, 32, 32, 1 }, kernels[] = { 3, 3, 3, 3, 1 },
                     strides[] = { 2, 2, 2, 1, 1 };
  g_autoptr (DcrCnn) cnn = dcr_cnn_new (5, channels, kernels, strides, error);
  if (!cnn)
    return FALSE;
  guint32 s = 2463534242u;
  double flop = 0;
  gint64 hh = cs->h - 4, ww = cs->w - 4;
  for (guint l = 0; l < cnn->n_layers; l++)
    {
      DcrCnnLayer *L = &cnn->layers[l];
      gsize nw = (gsize) L->cout * L->kernel * L->kernel * L->cin;
      float bound = sqrtf (3.0f / (L->kernel * L->kernel * L->cin));
      for (gsize i = 0; i < nw; i++)
        {
          s ^= s << 13;
          s ^= s >> 17;
          s ^= s << 5;
          L->weight[i] = bound * (2.0f * (float) (s >> 8) / (float) (1 << 24) - 1.0f);
        }
      hh = (hh - L->kernel) / L->stride + 1;
      ww = (ww - L->kernel) / L->stride + 1;
      flop += 2.0 * hh * ww * L->cout * L->kernel * L->kernel * L->cin;
    }
  gint64 n = batched ? cs->batch : 1;
  gsize npix = (gsize) (cs->h * cs->w * 3);
  g_autofree guint8 *pixels = g_new (guint8, npix * n);
  for (gsize i = 0; i < npix * n; i++)
    {
      s ^= s << 13;
      s ^= s >> 17;
      s ^= s << 5;
      pixels[i] = (guint8) (s >> 24);
    }
  gint64 yshape[] = { cs->batch, DCR_CNN_DIM };
  g_autoptr (DcrTensor) img = dcr_image_tensor_new (ctx, DCR_POOL_ACTIVATIONS, cs->h * n, cs->w, error);
  if (!img || !dcr_buffer_upload (img->buf, 0, pixels, npix * n, error))
    return FALSE;
  g_autoptr (DcrTensor) y = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, yshape, error);
  g_autoptr (DcrCnnGpu) gpu = y ? dcr_cnn_gpu_new (ctx, cnn, n, cs->h, cs->w, error) : NULL;
  g_autoptr (DcrSeq) seq = gpu ? dcr_seq_new (ctx, error) : NULL;
  if (!seq)
    return FALSE;
  gint64 top, left, h, w;
  dcr_cnn_window (cs->h, cs->w, &top, &left, &h, &w);
  dcr_seq_enable_timing (seq);
  for (guint b = 0; b < cs->batch; b += (guint) n)
    if (!dcr_cnn_gpu_record (seq, gpu, img, n, cs->h, cs->w, top, left, h, w, y, b, 0, NULL, error))
      return FALSE;
  guint per = dcr_seq_n_dispatches (seq) / (cs->batch / (guint) n);
  double min_ms, median_ms;
  if (!dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
    return FALSE;
  g_autofree char *shape = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch=%u%s, %.3f ms/image",
                                            cs->w, cs->h, cs->batch, batched ? " in one pass" : "",
                                            median_ms / cs->batch);
  dcr_bench_add (results, cs->op, shape, DCR_F32, flop * cs->batch, (double) npix * cs->batch, min_ms, median_ms,
                 opts->repeats);
  /* per dispatch: the median over repeated runs of its time summed over the passes */
  guint nt = 0;
  if (!dcr_seq_timings_ms (seq, &nt) || nt != dcr_seq_n_dispatches (seq) || per == 0)
    return TRUE;
  int reps = MAX (opts->repeats, 1);
  g_autofree double *t = g_new0 (double, (gsize) per * reps);
  for (int r = 0; r < reps; r++)
    {
      if (!dcr_seq_submit (seq, TRUE, error))
        return FALSE;
      const double *ms = dcr_seq_timings_ms (seq, &nt);
      for (guint i = 0; i < nt; i++)
        t[(i % per) * reps + r] += ms[i];
    }
  for (guint d = 0; d < per; d++)
    {
      qsort (t + (gsize) d * reps, reps, sizeof (double), cmp_double);
      g_autofree char *name = d == 0 ? g_strdup_printf ("%s/prep", cs->op)
                              : d == per - 1 ? g_strdup_printf ("%s/pool", cs->op)
                                             : g_strdup_printf ("%s/conv%u", cs->op, d - 1);
      g_autofree char *what = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ", %.3f ms/image", cs->w,
                                               cs->h, t[(gsize) d * reps + reps / 2] / cs->batch);
      dcr_bench_add (results, name, what, DCR_F32, 0, 0, t[(gsize) d * reps], t[(gsize) d * reps + reps / 2], reps);
    }
  return TRUE;
}

static gboolean
bench_case (DcrContext *ctx, const DcrBenchOptions *opts, const ForensicCase *cs, GArray *results, GError **error)
{
  gboolean tiles = g_str_has_prefix (cs->op, "local+tiles"), local = g_str_has_prefix (cs->op, "local");
  gboolean batched = g_str_has_suffix (cs->op, "-batch");
  gint64 acc_size = local ? DCR_LOCAL_ACC_SIZE : DCR_FORENSIC_ACC_SIZE, dim = local ? DCR_LOCAL_DIM : DCR_FORENSIC_DIM;
  gint64 images = batched ? cs->batch : 1;
  gsize npix = (gsize) (images * cs->h * cs->w * 3);
  g_autofree guint8 *pixels = g_new (guint8, npix);
  guint32 s = 2463534242u;
  for (gsize i = 0; i < npix; i++)
    {
      s ^= s << 13;
      s ^= s >> 17;
      s ^= s << 5;
      pixels[i] = (guint8) (s >> 24);
    }
  gint64 ashape[] = { cs->batch, acc_size }, yshape[] = { cs->batch, dim };
  g_autoptr (DcrTensor) img = batched ? dcr_images_tensor_new (ctx, DCR_POOL_ACTIVATIONS, images, cs->h, cs->w, error)
                                     : dcr_image_tensor_new (ctx, DCR_POOL_ACTIVATIONS, cs->h, cs->w, error);
  if (!img || !dcr_buffer_upload (img->buf, 0, pixels, npix, error))
    return FALSE;
  g_autoptr (DcrTensor) acc = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, ashape, error);
  g_autoptr (DcrTensor) y = acc ? dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 2, yshape, error) : NULL;
  g_autoptr (DcrSeq) seq = y ? dcr_seq_new (ctx, error) : NULL;
  if (!seq)
    return FALSE;
  /* the tile head: random weights, its two columns written to column 0 */
  const guint hidden = 64;
  g_autoptr (DcrTensor) packed = NULL;
  guint ntiles = 0;
  if (tiles)
    {
      DcrForensicWindow win;
      DcrLocalTiles lt;
      dcr_forensic_window (cs->h, cs->w, &win);
      dcr_local_tiles (&win, &lt);
      ntiles = (guint) (lt.nth * lt.ntw);
      gint64 pshape[] = { DCR_TILES_PACKED (hidden) };
      g_autofree float *w = g_new (float, pshape[0]);
      for (gint64 i = 0; i < pshape[0]; i++)
        {
          s ^= s << 13;
          s ^= s >> 17;
          s ^= s << 5;
          w[i] = (float) (s >> 8) / (float) (1 << 24) - 0.5f;
        }
      packed = dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, DCR_F32, 1, pshape, error);
      if (!packed || !dcr_tensor_upload (packed, w, error))
        return FALSE;
    }
  dcr_seq_enable_timing (seq);
  for (guint b = 0; b < cs->batch; b += (guint) images)
    if (!(local ? dcr_op_local (seq, img, acc, b, y, b, 0, error)
                : dcr_op_forensic (seq, img, acc, b, y, b, 0, &dcr_forensic_scales_v1, error)) ||
        (tiles && !dcr_op_tile_head_batch (seq, acc, b, (guint) images, ntiles, packed, hidden, NULL, y, b, 0, error)))
      return FALSE;
  double min_ms, median_ms;
  if (!dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
    return FALSE;
  g_autofree char *shape = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch=%u, %.3f ms/image",
                                            cs->w, cs->h, cs->batch, median_ms / cs->batch);
  dcr_bench_add (results, cs->op, shape, DCR_F32, 0, (double) cs->h * cs->w * 3 * cs->batch, min_ms, median_ms,
                 opts->repeats);
  return TRUE;
}

gboolean
dcr_bench_forensic (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const ForensicCase *cs = &cases[i];
      if (cs->quick != opts->quick || !dcr_bench_wanted (opts, cs->op))
        continue;
      if (!(g_str_has_prefix (cs->op, "cnn") ? bench_cnn : bench_case) (ctx, opts, cs, results, error))
        {
          g_prefix_error (error, "%s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ": ", cs->op, cs->w, cs->h);
          return FALSE;
        }
    }
  return TRUE;
}
