/* dcr-bench-forensic.c — `dcr bench ops` cases for the forensic taps: the
 * global residual statistics (dcr-op-forensic.h, "forensic"), the tiled
 * ones (dcr-op-local.h, "local") and the tiled ones followed by the tile
 * head (dcr-tile-head.h, "local+tiles", hidden width 64 with random
 * weights) of a batch of noise images at their native resolution, each
 * image's dispatches recorded one after another as
 * dcr_backbone_run_set_image does. */
#include "dcr-bench.h"
#include "dcr-op-forensic.h"
#include "dcr-op-local.h"
#include "dcr-op-preprocess.h"
#include "dcr-tile-head.h"

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
};

static gboolean
bench_case (DcrContext *ctx, const DcrBenchOptions *opts, const ForensicCase *cs, GArray *results, GError **error)
{
  gboolean tiles = g_str_equal (cs->op, "local+tiles"), local = tiles || g_str_equal (cs->op, "local");
  gint64 acc_size = local ? DCR_LOCAL_ACC_SIZE : DCR_FORENSIC_ACC_SIZE, dim = local ? DCR_LOCAL_DIM : DCR_FORENSIC_DIM;
  gsize npix = (gsize) (cs->h * cs->w * 3);
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
  g_autoptr (DcrTensor) img = dcr_image_tensor_new (ctx, DCR_POOL_ACTIVATIONS, cs->h, cs->w, error);
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
  for (guint b = 0; b < cs->batch; b++)
    if (!(local ? dcr_op_local (seq, img, acc, b, y, b, 0, error)
                : dcr_op_forensic (seq, img, acc, b, y, b, 0, &dcr_forensic_scales_v1, error)) ||
        (tiles && !dcr_op_tile_head (seq, acc, b, ntiles, packed, hidden, NULL, y, b, 0, error)))
      return FALSE;
  double min_ms, median_ms;
  if (!dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
    return FALSE;
  g_autofree char *shape = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch=%u, %.3f ms/image",
                                            cs->w, cs->h, cs->batch, median_ms / cs->batch);
  dcr_bench_add (results, cs->op, shape, DCR_F32, 0, (double) npix * cs->batch, min_ms, median_ms, opts->repeats);
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
      if (!bench_case (ctx, opts, cs, results, error))
        {
          g_prefix_error (error, "%s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ": ", cs->op, cs->w, cs->h);
          return FALSE;
        }
    }
  return TRUE;
}
