/* test-cnn.c — the learned forensic CNN ("cnn-v1", dcr-cnn.h): its
 * geometry (map size, smallest window, window origin, block side) and the
 * limits dcr_cnn_new checks; the columns on hand-made maps (top-4 with fewer
 * than 4 blocks, no whole block, ties), host and GPU; the GPU preprocessing
 * against the double reference (windows of 256², 301 × 277, a 600 × 700
 * image's 512² window at its aligned origin; 1 and 3 images); the whole GPU
 * forward against dcr_ref_cnn for several architectures (strides 1–3,
 * kernels 1–5, 1–4 layers, channel counts not multiples of 4); the
 * reference and the GPU against torch (tests/golden/cnn-torch.py); the
 * file's round trip and every refusal of the loader; and the backbone's
 * "cnn" tap (spec, id, columns, block means, errors). */
#include "test-backbone-common.h"
#include "dcr-cnn.h"
#include "dcr-half.h"
#include "dcr-tile-head.h"
#include "golden/cnn_golden.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* Tolerances. The GPU computes in float32 what the reference computes in
 * double (from the same float weights); a map cell is a sum of up to
 * k²·cin products per layer, so its error is bounded against the map's own
 * scale: MAP_RTOL · (1 + max |map|). The preprocessing is one rounding of an
 * exact integer ratio. f16 output storage adds half an f16 ulp. */
#define MAP_RTOL 2e-5
#define PREP_ATOL 1e-6
#define F16_RTOL 1e-3

typedef struct {
  guint n_layers;
  /* one more than the limit, for the refusal of too many layers */
  guint channels[DCR_CNN_MAX_LAYERS + 2], kernels[DCR_CNN_MAX_LAYERS + 1], strides[DCR_CNN_MAX_LAYERS + 1];
} Arch;

static const Arch archs[] = {
  { 4, { 3, 8, 16, 16, 1 }, { 3, 3, 3, 1 }, { 2, 2, 1, 1 } }, /* the default net until the eighth session */
  { 2, { 3, 5, 1 }, { 5, 1 }, { 3, 1 } },
  { 1, { 3, 1 }, { 1 }, { 1 } },
  { 4, { 3, 6, 7, 10, 1 }, { 3, 5, 1, 3 }, { 1, 2, 3, 1 } },
  { 3, { 3, 4, 9, 1 }, { 5, 3, 1 }, { 2, 1, 2 } },
  { 5, { 3, 8, 16, 32, 32, 1 }, { 3, 3, 3, 3, 1 }, { 2, 2, 2, 1, 1 } }, /* the default model's net */
};

/* Weights uniform in ±sqrt(3 / fan-in) (unit-variance activations),
 * biases in ±0.1. */
static DcrCnn *
random_cnn (const Arch *a, guint32 seed)
{
  g_autoptr (GError) err = NULL;
  DcrCnn *c = dcr_cnn_new (a->n_layers, a->channels, a->kernels, a->strides, &err);
  g_assert_no_error (err);
  for (guint l = 0; l < c->n_layers; l++)
    {
      DcrCnnLayer *L = &c->layers[l];
      gsize per = (gsize) L->kernel * L->kernel * L->cin;
      float bound = sqrtf (3.0f / per);
      dcr_test_fill (L->weight, per * L->cout, seed + 2 * l, -bound, bound);
      dcr_test_fill (L->bias, L->cout, seed + 2 * l + 1, -0.1f, 0.1f);
    }
  return c;
}

static void
assert_map_close (const char *what, const float *got, const float *want, gsize n)
{
  double scale = 0;
  for (gsize i = 0; i < n; i++)
    scale = MAX (scale, fabs (want[i]));
  dcr_test_assert_close (what, got, want, n, MAP_RTOL * (1 + scale), 0);
}

/* ---- geometry --------------------------------------------------------- */

static void
test_geometry (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrCnn) c = random_cnn (&archs[0], 1);
  g_assert_cmpuint (dcr_cnn_stride (c), ==, 4);
  g_assert_cmpuint (dcr_cnn_block (c), ==, 12);
  /* 1 ← 1×1 ← 3 ← 7 ← 15 (+4 for the box) */
  g_assert_cmpint (dcr_cnn_min_side (c), ==, 19);
  gint64 hm = -1, wm = -1;
  g_assert_true (dcr_cnn_map_size (c, 19, 19, &hm, &wm));
  g_assert_cmpint (hm, ==, 1);
  g_assert_cmpint (wm, ==, 1);
  g_assert_false (dcr_cnn_map_size (c, 18, 400, &hm, &wm));
  g_assert_cmpint (hm, ==, 0);
  g_assert_cmpint (wm, ==, 0);
  g_assert_false (dcr_cnn_map_size (c, 4, 4, &hm, &wm));
  g_assert_true (dcr_cnn_map_size (c, 256, 256, &hm, &wm));
  /* 252 → 125 → 62 → 60 → 60 */
  g_assert_cmpint (hm, ==, 60);
  g_assert_true (dcr_cnn_map_size (c, 512, 301, &hm, &wm));
  g_assert_cmpint (hm, ==, 124); /* 508 → 253 → 126 → 124 */
  g_assert_cmpint (wm, ==, 71);  /* 297 → 148 → 73 → 71 */
  g_autoptr (DcrCnn) one = random_cnn (&archs[2], 2);
  g_assert_cmpint (dcr_cnn_min_side (one), ==, 5);
  g_assert_cmpuint (dcr_cnn_block (one), ==, 48);
  g_autoptr (DcrCnn) c3 = random_cnn (&archs[3], 3);
  g_assert_cmpuint (dcr_cnn_stride (c3), ==, 6);
  g_assert_cmpuint (dcr_cnn_block (c3), ==, 8);
  /* 1 ← 3 ← 3 (s3, k1: (3 − 1)·3 + 1 = 7) ← (7 − 1)·2 + 5 = 17 ← 19, + 4 */
  g_assert_cmpint (dcr_cnn_min_side (c3), ==, 23);
  for (gint64 s = 5; s < 40; s++)
    g_assert_cmpint (dcr_cnn_map_size (c3, s, 300, &hm, &wm), ==, s >= 23);

  /* windows: centred, origin down to a multiple of 8 */
  gint64 top, left, h, w;
  dcr_cnn_window (600, 700, &top, &left, &h, &w);
  g_assert_cmpint (h, ==, 512);
  g_assert_cmpint (w, ==, 512);
  g_assert_cmpint (top, ==, 40);  /* 44 → 40 */
  g_assert_cmpint (left, ==, 88); /* 94 → 88 */
  dcr_cnn_window (301, 277, &top, &left, &h, &w);
  g_assert_cmpint (top, ==, 0);
  g_assert_cmpint (left, ==, 0);
  g_assert_cmpint (h, ==, 301);
  g_assert_cmpint (w, ==, 277);
  dcr_cnn_window (1000, 513, &top, &left, &h, &w);
  g_assert_cmpint (top, ==, 240);
  g_assert_cmpint (left, ==, 0);
  g_assert_cmpint (w, ==, 512);

  /* the limits dcr_cnn_new checks */
  struct {
    Arch a;
    const char *msg;
  } bad[] = {
    { { 0, { 3 }, { 0 }, { 0 } }, "layers" },
    { { 7, { 3, 4, 4, 4, 4, 4, 4, 1 }, { 1, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1, 1 } }, "layers" },
    { { 1, { 4, 1 }, { 1 }, { 1 } }, "must take 3" },
    { { 1, { 3, 2 }, { 1 }, { 1 } }, "give 1" },
    { { 2, { 3, 65, 1 }, { 1, 1 }, { 1, 1 } }, "output channels" },
    { { 2, { 3, 0, 1 }, { 1, 1 }, { 1, 1 } }, "output channels" },
    { { 1, { 3, 1 }, { 8 }, { 1 } }, "kernel" },
    { { 1, { 3, 1 }, { 0 }, { 1 } }, "kernel" },
    { { 1, { 3, 1 }, { 1 }, { 5 } }, "stride" },
    { { 1, { 3, 1 }, { 1 }, { 0 } }, "stride" },
    { { 6, { 3, 4, 4, 4, 4, 4, 1 }, { 7, 7, 7, 7, 7, 7 }, { 4, 4, 4, 4, 4, 4 } }, "window of at least" },
    { { 3, { 3, 4, 4, 1 }, { 1, 1, 1 }, { 4, 3, 3 } }, "blocks" }, /* S = 36: t = 1, 15 × 15 blocks */
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_clear_error (&err);
      DcrCnn *b = dcr_cnn_new (bad[i].a.n_layers, bad[i].a.channels, bad[i].a.kernels, bad[i].a.strides, &err);
      g_assert_null (b);
      g_assert_error (err, DCR_CNN_ERROR, DCR_CNN_ERROR_SHAPE);
      if (!strstr (err->message, bad[i].msg))
        g_error ("case %zu: \"%s\" lacks \"%s\"", i, err->message, bad[i].msg);
    }
}

/* ---- columns on hand-made maps --------------------------------------- */

typedef struct {
  gint64 hm, wm;
  guint nbh, nbw;
  int pattern; /* 0: per-block constants 0.1·b, 1: all equal, 2: a ramp */
} MapCase;

static float *
make_map (const MapCase *m, guint t)
{
  float *map = g_new (float, m->hm * m->wm);
  for (gint64 y = 0; y < m->hm; y++)
    for (gint64 x = 0; x < m->wm; x++)
      {
        float v;
        if (m->pattern == 1)
          v = 0.25f;
        else if (m->pattern == 2)
          v = (float) (y * m->wm + x) * 0.01f - 1.0f;
        else
          {
            gint64 a = y / t, b = x / t;
            /* cells outside the whole blocks get 100: in the mean, in no block */
            v = a < m->nbh && b < m->nbw ? 0.1f * (float) ((a * 7 + b * 3) % 11) - 0.4f : 100.0f;
          }
        map[y * m->wm + x] = v;
      }
  return map;
}

/* The columns and block means in double, the definition written out. */
static void
hand_columns (const float *map, gint64 hm, gint64 wm, guint t, double out[3], double *blocks, guint *nb_out)
{
  double all = 0;
  for (gint64 i = 0; i < hm * wm; i++)
    all += map[i];
  all /= hm * wm;
  gint64 bh = hm / t, bw = wm / t;
  guint nb = 0;
  if (bh < 1 || bw < 1)
    blocks[nb++] = all;
  else
    for (gint64 a = 0; a < bh; a++)
      for (gint64 b = 0; b < bw; b++)
        {
          double s = 0;
          for (guint y = 0; y < t; y++)
            for (guint x = 0; x < t; x++)
              s += map[(a * t + y) * wm + b * t + x];
          blocks[nb++] = s / (t * t);
        }
  /* sort a copy descending */
  double sorted[DCR_CNN_MAX_BLOCKS];
  memcpy (sorted, blocks, nb * sizeof (double));
  for (guint i = 0; i < nb; i++)
    for (guint j = i + 1; j < nb; j++)
      if (sorted[j] > sorted[i])
        {
          double tmp = sorted[i];
          sorted[i] = sorted[j];
          sorted[j] = tmp;
        }
  guint k = MIN (4, nb);
  double s = 0;
  for (guint i = 0; i < k; i++)
    s += sorted[i];
  out[0] = all;
  out[1] = s / k;
  out[2] = sorted[0];
  *nb_out = nb;
}

static void
test_columns (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrCnn) c = random_cnn (&archs[0], 4); /* t = 12 */
  guint t = dcr_cnn_block (c);
  const MapCase cases[] = {
    { 30, 40, 2, 3, 0 },  /* 6 blocks, leftover cells outside them */
    { 20, 40, 1, 3, 0 },  /* 3 blocks: top-4 of fewer than 4 */
    { 24, 24, 2, 2, 0 },  /* exactly 4 */
    { 10, 40, 0, 0, 2 },  /* no whole block: the map is one */
    { 40, 11, 0, 0, 2 },
    { 1, 1, 0, 0, 0 },
    { 36, 60, 3, 5, 1 },  /* ties everywhere */
    { 120, 130, 10, 10, 2 },
  };
  DcrContext *ctx = dcr_test_context ();
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const MapCase *m = &cases[i];
      g_autofree float *map = make_map (m, t);
      double want[3], wblocks[DCR_CNN_MAX_BLOCKS];
      guint nb;
      hand_columns (map, m->hm, m->wm, t, want, wblocks, &nb);
      float got[3], blocks[DCR_CNN_MAX_BLOCKS];
      guint nbh = 0, nbw = 0;
      dcr_cnn_columns (c, map, m->hm, m->wm, got, blocks, &nbh, &nbw);
      g_assert_cmpuint (nbh, ==, MAX (m->nbh, 1));
      g_assert_cmpuint (nbw, ==, MAX (m->nbw, 1));
      g_assert_cmpuint (nbh * nbw, ==, nb);
      for (int k = 0; k < 3; k++)
        g_assert_cmpfloat_with_epsilon (got[k], want[k], 1e-6 * (1 + fabs (want[k])));
      for (guint b = 0; b < nb; b++)
        g_assert_cmpfloat_with_epsilon (blocks[b], wblocks[b], 1e-6 * (1 + fabs (wblocks[b])));

      /* the GPU: maps 0 and 1 of two (the second the first negated), rows
       * 1…2 of a [4, 9] output from column 5; the rest must stay 7 */
      for (int f16 = 0; f16 < 2; f16++)
        {
          if (f16 && !dcr_test_device_has_f16 ())
            continue;
          DcrDtype dt = f16 ? DCR_F16 : DCR_F32;
          gint64 ms[] = { 2, m->hm, m->wm, 1 }, ys[] = { 4, 9 }, bs[] = { 2 * DCR_CNN_MAX_BLOCKS };
          g_autofree float *two = g_new (float, 2 * m->hm * m->wm);
          for (gint64 j = 0; j < m->hm * m->wm; j++)
            {
              two[j] = map[j];
              two[m->hm * m->wm + j] = -map[j];
            }
          g_autofree float *sevens = g_new (float, 36);
          for (int j = 0; j < 36; j++)
            sevens[j] = 7;
          g_autoptr (DcrTensor) mt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 4, ms, two);
          g_autoptr (DcrTensor) yt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, dt, 2, ys, sevens);
          g_autoptr (DcrTensor) bt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, bs, NULL);
          g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
          g_assert_true (dcr_op_cnn_pool (seq, mt, t, yt, 1, 5, bt, &err));
          g_assert_no_error (err);
          dcr_test_submit_wait (seq);
          g_autofree float *y = dcr_test_download_floats (yt), *gb = dcr_test_download_floats (bt);
          float neg[3], nblocks[DCR_CNN_MAX_BLOCKS];
          g_autofree float *negmap = g_new (float, m->hm * m->wm);
          for (gint64 j = 0; j < m->hm * m->wm; j++)
            negmap[j] = -map[j];
          dcr_cnn_columns (c, negmap, m->hm, m->wm, neg, nblocks, NULL, NULL);
          for (int r = 0; r < 4; r++)
            for (int col = 0; col < 9; col++)
              {
                float v = y[r * 9 + col];
                if ((r == 1 || r == 2) && col >= 5 && col < 8)
                  {
                    double w = r == 1 ? got[col - 5] : neg[col - 5];
                    double tol = 1e-5 * (1 + fabs (w)) + (f16 ? F16_RTOL * fabs (w) : 0);
                    if (!(fabs (v - w) <= tol))
                      g_error ("case %zu %s: row %d column %d = %.9g, want %.9g", i, dcr_dtype_name (dt), r, col, v,
                               w);
                  }
                else
                  g_assert_cmpfloat (v, ==, 7.0f);
              }
          for (guint b = 0; b < nb; b++)
            {
              g_assert_cmpfloat_with_epsilon (gb[b], blocks[b], 1e-5 * (1 + fabs (blocks[b])));
              g_assert_cmpfloat_with_epsilon (gb[DCR_CNN_MAX_BLOCKS + b], nblocks[b], 1e-5 * (1 + fabs (nblocks[b])));
            }
          /* and without block means */
          g_autoptr (DcrSeq) seq2 = dcr_test_seq_new ();
          g_assert_true (dcr_op_cnn_pool (seq2, mt, t, yt, 0, 0, NULL, &err));
          g_assert_no_error (err);
          dcr_test_submit_wait (seq2);
        }
    }
  (void) ctx;
}

/* ---- preprocessing ---------------------------------------------------- */

static void
check_prep (gint64 n, gint64 H, gint64 W, guint32 seed)
{
  g_autoptr (GError) err = NULL;
  gint64 top, left, h, w;
  dcr_cnn_window (H, W, &top, &left, &h, &w);
  g_autofree guint8 *px = g_new (guint8, n * H * W * 3);
  for (gint64 k = 0; k < n; k++)
    {
      g_autofree guint8 *one = photo_image (H, W, seed + (guint32) k, TRUE);
      memcpy (px + k * H * W * 3, one, H * W * 3);
    }
  g_autoptr (DcrTensor) it = dcr_test_image_tensor (px, n * H, W);
  gint64 oh = h - 4, ow = w - 4, qs[] = { n, oh, ow, 3 };
  g_autoptr (DcrTensor) qt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 4, qs, NULL);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_cnn_prep (seq, it, n, H, W, top, left, h, w, qt, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  g_autofree float *got = dcr_test_download_floats (qt), *want = g_new (float, n * oh * ow * 3);
  for (gint64 k = 0; k < n; k++)
    dcr_ref_cnn_prep (px + k * H * W * 3 + (top * W + left) * 3, W * 3, h, w, want + k * oh * ow * 3);
  g_autofree char *what = g_strdup_printf ("prep %" G_GINT64_FORMAT " × %" G_GINT64_FORMAT "×%" G_GINT64_FORMAT, n,
                                           H, W);
  dcr_test_assert_close (what, got, want, n * oh * ow * 3, PREP_ATOL, 0);
}

static void
test_prep (void)
{
  check_prep (1, 256, 256, 10);
  check_prep (1, 301, 277, 11);
  check_prep (3, 301, 277, 12);
  check_prep (1, 600, 700, 13);
  check_prep (3, 40, 37, 14);
  dcr_test_assert_no_validation_errors ();
}

/* ---- the whole forward pass ------------------------------------------ */

/* n images of H × W through the GPU helper against dcr_ref_cnn. */
static void
check_forward (const DcrCnn *c, gint64 n, gint64 H, gint64 W, guint32 seed)
{
  g_autoptr (GError) err = NULL;
  gint64 top, left, h, w, hm, wm;
  dcr_cnn_window (H, W, &top, &left, &h, &w);
  g_assert_true (dcr_cnn_map_size (c, h, w, &hm, &wm));
  g_autofree guint8 *px = g_new (guint8, n * H * W * 3);
  for (gint64 k = 0; k < n; k++)
    {
      g_autofree guint8 *one = photo_image (H, W, seed + (guint32) k, TRUE);
      memcpy (px + k * H * W * 3, one, H * W * 3);
    }
  g_autoptr (DcrTensor) it = dcr_test_image_tensor (px, n * H, W);
  /* scratch for more and larger than this pass */
  g_autoptr (DcrCnnGpu) gpu = dcr_cnn_gpu_new (dcr_test_context (), c, n + 1, h + 8, w + 3, &err);
  g_assert_no_error (err);
  gint64 ys[] = { n + 2, 7 }, bs[] = { n * DCR_CNN_MAX_BLOCKS };
  g_autoptr (DcrTensor) yt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, ys, NULL);
  g_autoptr (DcrTensor) bt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, bs, NULL);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_cnn_gpu_record (seq, gpu, it, n, H, W, top, left, h, w, yt, 1, 2, bt, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  const DcrTensor *mt = dcr_cnn_gpu_map (gpu);
  g_assert_cmpint (mt->shape[0], ==, n);
  g_assert_cmpint (mt->shape[1], ==, hm);
  g_assert_cmpint (mt->shape[2], ==, wm);
  g_autofree float *maps = g_new (float, n * hm * wm);
  g_assert_true (dcr_buffer_download (mt->buf, 0, maps, n * hm * wm * 4, &err));
  g_assert_no_error (err);
  g_autofree float *y = dcr_test_download_floats (yt), *gb = dcr_test_download_floats (bt);
  g_autofree float *want = g_new (float, hm * wm);
  for (gint64 k = 0; k < n; k++)
    {
      float cols[DCR_CNN_DIM], blocks[DCR_CNN_MAX_BLOCKS];
      guint nbh, nbw;
      g_assert_true (dcr_ref_cnn (c, px + k * H * W * 3 + (top * W + left) * 3, W * 3, h, w, want, cols));
      g_autofree char *what = g_strdup_printf ("%u-layer map %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " %"
                                               G_GINT64_FORMAT "×%" G_GINT64_FORMAT, c->n_layers, k, n, H, W);
      assert_map_close (what, maps + k * hm * wm, want, hm * wm);
      double scale = 0;
      for (gint64 i = 0; i < hm * wm; i++)
        scale = MAX (scale, fabs (want[i]));
      for (int j = 0; j < DCR_CNN_DIM; j++)
        if (!(fabs (y[(1 + k) * 7 + 2 + j] - cols[j]) <= MAP_RTOL * (1 + scale)))
          g_error ("%s: column %d = %.9g, want %.9g", what, j, y[(1 + k) * 7 + 2 + j], cols[j]);
      /* block means from the reference's own map */
      float cols2[DCR_CNN_DIM];
      dcr_cnn_columns (c, want, hm, wm, cols2, blocks, &nbh, &nbw);
      dcr_test_assert_close (what, gb + k * DCR_CNN_MAX_BLOCKS, blocks, nbh * nbw, MAP_RTOL * (1 + scale), 0);
    }
  for (int j = 0; j < 7; j++)
    {
      g_assert_cmpfloat (y[j], ==, 0.0f);
      g_assert_cmpfloat (y[(n + 1) * 7 + j], ==, 0.0f);
    }
}

static void
test_forward (void)
{
  const gint64 sizes[][2] = { { 256, 256 }, { 301, 277 }, { 600, 700 } };
  for (gsize a = 0; a < G_N_ELEMENTS (archs); a++)
    {
      g_autoptr (DcrCnn) c = random_cnn (&archs[a], 100 + (guint32) a * 10);
      for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
        check_forward (c, 1, sizes[s][0], sizes[s][1], 200 + (guint32) s);
      /* the smallest window it takes */
      gint64 m = dcr_cnn_min_side (c);
      check_forward (c, 1, m, m + 3, 300);
    }
  g_autoptr (DcrCnn) c0 = random_cnn (&archs[0], 100);
  check_forward (c0, 3, 301, 277, 400);
  check_forward (c0, 3, 64, 90, 410);
  dcr_test_assert_no_validation_errors ();
}

/* The fused kernels (shaders/cnn_stem.comp for a first layer of up to 16
 * channels, shaders/cnn_conv.comp for the stride-1 layers of 4·k ≤ 16 input
 * channels, with a following 1 × 1 → 1 layer in registers) at the edges of
 * what they take (the stem: k² · cout ≤ 144), and the layers next to them
 * that go through dcr_op_conv2d; odd sizes and the 512 window of a 600 × 700 image. */
static const Arch fused_archs[] = {
  { 2, { 3, 2, 1 }, { 7, 1 }, { 4, 1 } },                /* stem k 7 s 4 */
  { 2, { 3, 5, 1 }, { 5, 1 }, { 1, 1 } },                /* stem k 5 s 1 */
  { 2, { 3, 16, 1 }, { 7, 1 }, { 1, 1 } },               /* k 7 → 16: too large for the stem */
  { 3, { 3, 5, 8, 1 }, { 2, 3, 1 }, { 3, 2, 1 } },       /* stem s > k, cout 5; cin 5 → igemm */
  { 3, { 3, 8, 12, 1 }, { 1, 3, 1 }, { 1, 1, 1 } },      /* stem 1 × 1; thin 8 → 12 + 1 × 1 fused */
  { 3, { 3, 4, 16, 1 }, { 3, 3, 3 }, { 1, 1, 1 } },      /* thin 4 → 16 with ReLU, last 3 × 3 not fused */
  { 4, { 3, 12, 16, 1, 1 }, { 3, 1, 1, 1 }, { 2, 1, 1, 1 } }, /* thin 12 → 16 fused with a ReLU'd 16 → 1 */
  { 3, { 3, 8, 6, 1 }, { 1, 3, 1 }, { 1, 1, 1 } },       /* thin 8 → 6 (one group of 6) + 1 × 1 fused */
  { 3, { 3, 4, 6, 1 }, { 3, 3, 3 }, { 1, 1, 1 } },       /* thin 4 → 6, written channel by channel */
  { 2, { 3, 20, 1 }, { 3, 1 }, { 2, 1 } },               /* 20 channels: prep + dcr_op_conv2d */
};

static void
test_forward_fused (void)
{
  const gint64 sizes[][2] = { { 301, 277 }, { 600, 700 } };
  for (gsize a = 0; a < G_N_ELEMENTS (fused_archs); a++)
    {
      g_autoptr (DcrCnn) c = random_cnn (&fused_archs[a], 500 + (guint32) a * 10);
      for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
        check_forward (c, 1, sizes[s][0], sizes[s][1], 600 + (guint32) s);
      gint64 m = dcr_cnn_min_side (c);
      check_forward (c, 2, m + 1, m, 700);
    }
  /* that net without the fused kernels ($DCR_CNN_STEM=0) and with */
  g_autoptr (DcrCnn) c0 = random_cnn (&archs[0], 100);
  g_setenv ("DCR_CNN_STEM", "0", TRUE);
  check_forward (c0, 2, 301, 277, 800);
  g_unsetenv ("DCR_CNN_STEM");
  check_forward (c0, 2, 301, 277, 800);
  dcr_test_assert_no_validation_errors ();
}

static void
test_forward_errors (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrCnn) c = random_cnn (&archs[0], 7);
  /* scratch too small a window for the network */
  g_assert_null (dcr_cnn_gpu_new (dcr_test_context (), c, 1, 18, 100, &err));
  g_assert_error (err, DCR_CNN_ERROR, DCR_CNN_ERROR_INPUT);
  g_clear_error (&err);
  g_autoptr (DcrCnnGpu) gpu = dcr_cnn_gpu_new (dcr_test_context (), c, 1, 64, 64, &err);
  g_assert_no_error (err);
  g_autofree guint8 *px = photo_image (100, 100, 1, FALSE);
  g_autoptr (DcrTensor) it = dcr_test_image_tensor (px, 100, 100);
  gint64 ys[] = { 2, 3 };
  g_autoptr (DcrTensor) yt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, ys, NULL);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  /* a window below the network's smallest */
  g_assert_false (dcr_cnn_gpu_record (seq, gpu, it, 1, 100, 100, 0, 0, 18, 60, yt, 0, 0, NULL, &err));
  g_assert_error (err, DCR_CNN_ERROR, DCR_CNN_ERROR_INPUT);
  g_clear_error (&err);
  /* larger than the scratch, or more images */
  g_assert_false (dcr_cnn_gpu_record (seq, gpu, it, 1, 100, 100, 0, 0, 65, 60, yt, 0, 0, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_cnn_gpu_record (seq, gpu, it, 2, 50, 100, 0, 0, 48, 64, yt, 0, 0, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  /* more images than it was made for fit when their windows are smaller */
  g_assert_cmpint (dcr_cnn_gpu_capacity (gpu, 64, 64), ==, 1);
  g_assert_cmpint (dcr_cnn_gpu_capacity (gpu, 48, 64), ==, 1);
  g_assert_cmpint (dcr_cnn_gpu_capacity (gpu, 40, 40), >=, 2);
  g_assert_cmpint (dcr_cnn_gpu_capacity (gpu, 65, 60), ==, 0);
  g_assert_true (dcr_cnn_gpu_record (seq, gpu, it, 2, 50, 100, 0, 0, 40, 40, yt, 0, 0, NULL, &err));
  g_assert_no_error (err);
  /* the prep's window outside the image, its output the wrong shape */
  gint64 qs[] = { 1, 36, 36, 3 };
  g_autoptr (DcrTensor) qt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 4, qs, NULL);
  g_assert_false (dcr_op_cnn_prep (seq, it, 1, 100, 100, 70, 0, 40, 40, qt, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_cnn_prep (seq, it, 1, 100, 100, 0, 0, 41, 40, qt, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_cnn_prep (seq, it, 2, 100, 100, 0, 0, 40, 40, qt, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  /* the pool's rows outside y, its map too many blocks */
  gint64 ms[] = { 2, 30, 30, 1 };
  g_autoptr (DcrTensor) mt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 4, ms, NULL);
  g_assert_false (dcr_op_cnn_pool (seq, mt, 12, yt, 1, 0, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_cnn_pool (seq, mt, 2, yt, 0, 0, NULL, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  gint64 bs[] = { DCR_CNN_MAX_BLOCKS };
  g_autoptr (DcrTensor) bt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, bs, NULL);
  g_assert_false (dcr_op_cnn_pool (seq, mt, 12, yt, 0, 0, bt, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
}

/* ---- golden ----------------------------------------------------------- */

static void
test_golden (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrCnn) c = dcr_cnn_new (CNN_GOLDEN_LAYERS, cnn_golden_channels, cnn_golden_kernels,
                                      cnn_golden_strides, &err);
  g_assert_no_error (err);
  for (guint l = 0; l < c->n_layers; l++)
    {
      DcrCnnLayer *L = &c->layers[l];
      memcpy (L->weight, cnn_golden_weights[l], sizeof (float) * L->cout * L->kernel * L->kernel * L->cin);
      memcpy (L->bias, cnn_golden_biases[l], sizeof (float) * L->cout);
    }
  for (gsize k = 0; k < G_N_ELEMENTS (cnn_golden_cases); k++)
    {
      const CnnGoldenCase *g = &cnn_golden_cases[k];
      g_autofree guint8 *px = g_new (guint8, g->h * g->w * 3);
      for (gint64 i = 0; i < g->h * g->w * 3; i++)
        px[i] = (guint8) (golden_lowbias32 ((guint32) ((CNN_GOLDEN_IMAGE_SEED + k) * 1000003 + i)) & 255);
      gint64 hm, wm;
      g_assert_true (dcr_cnn_map_size (c, g->h, g->w, &hm, &wm));
      g_assert_cmpint (hm, ==, g->hm);
      g_assert_cmpint (wm, ==, g->wm);
      g_autofree float *map = g_new (float, hm * wm);
      float cols[DCR_CNN_DIM];
      g_assert_true (dcr_ref_cnn (c, px, g->w * 3, g->h, g->w, map, cols));
      /* the reference in double against torch in double: float rounding of
       * the stored values only */
      dcr_test_assert_close ("golden map (reference)", map, g->map, hm * wm, 1e-6, 1e-6);
      dcr_test_assert_close ("golden columns (reference)", cols, g->columns, DCR_CNN_DIM, 1e-6, 1e-6);

      g_autoptr (DcrTensor) it = dcr_test_image_tensor (px, g->h, g->w);
      g_autoptr (DcrCnnGpu) gpu = dcr_cnn_gpu_new (dcr_test_context (), c, 1, g->h, g->w, &err);
      g_assert_no_error (err);
      gint64 ys[] = { 1, DCR_CNN_DIM };
      g_autoptr (DcrTensor) yt = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, ys, NULL);
      g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
      g_assert_true (dcr_cnn_gpu_record (seq, gpu, it, 1, g->h, g->w, 0, 0, g->h, g->w, yt, 0, 0, NULL, &err));
      g_assert_no_error (err);
      dcr_test_submit_wait (seq);
      g_autofree float *y = dcr_test_download_floats (yt), *gm = g_new (float, hm * wm);
      g_assert_true (dcr_buffer_download (dcr_cnn_gpu_map (gpu)->buf, 0, gm, hm * wm * 4, &err));
      g_assert_no_error (err);
      assert_map_close ("golden map (GPU)", gm, g->map, hm * wm);
      assert_map_close ("golden columns (GPU)", y, g->columns, DCR_CNN_DIM);
    }
}

/* ---- the file --------------------------------------------------------- */

static char *
tmp_dir (void)
{
  g_autoptr (GError) err = NULL;
  char *dir = g_dir_make_tmp ("dcr-cnn-XXXXXX", &err);
  g_assert_no_error (err);
  return dir;
}

static void
rm_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      g_remove (p);
    }
  g_rmdir (dir);
}

/* A file of archs[0]'s shapes with one thing changed. */
typedef enum {
  BAD_NONE,
  BAD_FORMAT,
  BAD_VERSION,
  BAD_NO_STRIDES,
  BAD_STRIDES_TEXT,
  BAD_STRIDES_EMPTY_PART,
  BAD_STRIDES_COUNT,
  BAD_STRIDE_VALUE,
  BAD_NO_LAYER0,
  BAD_NO_BIAS,
  BAD_EXTRA,
  BAD_GAP,
  BAD_WEIGHT_NDIM,
  BAD_NOT_SQUARE,
  BAD_CIN0,
  BAD_CHAIN,
  BAD_COUT_LAST,
  BAD_CHANNELS,
  BAD_KERNEL,
  BAD_BIAS_SHAPE,
  BAD_NAN,
  BAD_INF,
  BAD_BLOCKS,
  BAD_N
} Bad;

static void
write_bad (const char *path, Bad bad)
{
  g_autoptr (GError) err = NULL;
  /* layers: 3→8 k3, 8→16 k3, 16→1 k1 */
  guint cin[] = { 3, 8, 16 }, cout[] = { 8, 16, 1 }, k[] = { 3, 3, 1 };
  const char *strides = "2,2,1";
  guint nl = 3;
  if (bad == BAD_CIN0)
    cin[0] = 4;
  if (bad == BAD_CHAIN)
    cin[1] = 7;
  if (bad == BAD_COUT_LAST)
    cout[2] = 2;
  if (bad == BAD_CHANNELS)
    {
      cout[0] = 65;
      cin[1] = 65;
    }
  if (bad == BAD_KERNEL)
    k[2] = 9;
  if (bad == BAD_BLOCKS)
    {
      k[0] = k[1] = 1;
      strides = "4,3,3"; /* S = 36: 15 × 15 blocks of one cell */
    }
  DcrStWriteTensor t[8];
  gint64 shapes[8][4];
  char names[8][32];
  g_autofree float *data = g_new0 (float, 100000);
  for (guint i = 0; i < 100000; i++)
    data[i] = 0.01f * (float) (i % 17);
  guint nt = 0;
  for (guint l = 0; l < nl; l++)
    {
      if (bad == BAD_NO_LAYER0 && l == 0)
        continue;
      if (bad == BAD_GAP && l == 1)
        continue;
      g_snprintf (names[nt], 32, "layer%u.weight", l);
      gint64 *s = shapes[nt];
      int nd = 4;
      s[0] = cout[l];
      s[1] = k[l];
      s[2] = bad == BAD_NOT_SQUARE && l == 1 ? k[l] - 1 : k[l];
      s[3] = cin[l];
      if (bad == BAD_WEIGHT_NDIM && l == 1)
        {
          nd = 2;
          s[1] = k[l] * k[l] * cin[l];
        }
      t[nt] = (DcrStWriteTensor) { names[nt], DCR_ST_F32, nd, s, data };
      nt++;
      if (bad == BAD_NO_BIAS && l == 2)
        continue;
      g_snprintf (names[nt], 32, "layer%u.bias", l);
      shapes[nt][0] = bad == BAD_BIAS_SHAPE && l == 0 ? cout[l] + 1 : cout[l];
      t[nt] = (DcrStWriteTensor) { names[nt], DCR_ST_F32, 1, shapes[nt], data };
      nt++;
    }
  float special[16];
  for (int i = 0; i < 16; i++)
    special[i] = 0.5f;
  if (bad == BAD_NAN || bad == BAD_INF)
    {
      special[3] = bad == BAD_NAN ? NAN : INFINITY;
      t[nt - 1].data = special; /* layer2.bias, 1 value */
      special[0] = special[3];
    }
  if (bad == BAD_EXTRA)
    {
      shapes[nt][0] = 4;
      t[nt] = (DcrStWriteTensor) { "head.scale", DCR_ST_F32, 1, shapes[nt], data };
      nt++;
    }
  const char *format = bad == BAD_FORMAT ? "dcr-tile-head" : "dcr-cnn";
  const char *version = bad == BAD_VERSION ? "cnn-v2" : "cnn-v1";
  if (bad == BAD_STRIDES_TEXT)
    strides = "2,two,1";
  if (bad == BAD_STRIDES_EMPTY_PART)
    strides = "2,,1";
  if (bad == BAD_STRIDES_COUNT)
    strides = "2,2";
  if (bad == BAD_STRIDE_VALUE)
    strides = "2,5,1";
  const char *meta[] = { "format", format, "version", version, bad == BAD_NO_STRIDES ? "other" : "strides", strides,
                         NULL };
  g_assert_true (dcr_safetensors_write (path, t, nt, meta, &err));
  g_assert_no_error (err);
}

static void
test_file (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "cnn.safetensors", NULL);
  /* round trip */
  g_autoptr (DcrCnn) c = random_cnn (&archs[3], 55);
  g_assert_true (dcr_cnn_save (c, path, "{\"epochs\": 3}", &err));
  g_assert_no_error (err);
  g_autoptr (DcrCnn) d = dcr_cnn_load (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (d->n_layers, ==, c->n_layers);
  for (guint l = 0; l < c->n_layers; l++)
    {
      const DcrCnnLayer *a = &c->layers[l], *b = &d->layers[l];
      g_assert_cmpuint (a->cin, ==, b->cin);
      g_assert_cmpuint (a->cout, ==, b->cout);
      g_assert_cmpuint (a->kernel, ==, b->kernel);
      g_assert_cmpuint (a->stride, ==, b->stride);
      g_assert_cmpmem (a->weight, sizeof (float) * a->cout * a->kernel * a->kernel * a->cin, b->weight,
                       sizeof (float) * b->cout * b->kernel * b->kernel * b->cin);
      g_assert_cmpmem (a->bias, sizeof (float) * a->cout, b->bias, sizeof (float) * b->cout);
    }
  g_assert_cmpstr (d->training, ==, "{\"epochs\": 3}");
  g_assert_nonnull (d->sha256);
  g_assert_cmpuint (strlen (d->sha256), ==, 64);
  g_assert_null (c->sha256);
  /* the reference file writer's good case loads */
  write_bad (path, BAD_NONE);
  g_autoptr (DcrCnn) e = dcr_cnn_load (path, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (e->n_layers, ==, 3);
  g_assert_cmpuint (dcr_cnn_stride (e), ==, 4);

  static const char *const msgs[BAD_N] = {
    [BAD_FORMAT] = "format \"dcr-cnn\"",
    [BAD_VERSION] = "\"cnn-v2\"",
    [BAD_NO_STRIDES] = "lacks \"strides\"",
    [BAD_STRIDES_TEXT] = "decimal integers",
    [BAD_STRIDES_EMPTY_PART] = "decimal integers",
    [BAD_STRIDES_COUNT] = "2 strides",
    [BAD_STRIDE_VALUE] = "stride 5",
    [BAD_NO_LAYER0] = "layer0.weight",
    [BAD_NO_BIAS] = "layer2.bias",
    [BAD_EXTRA] = "unexpected tensor \"head.scale\"",
    [BAD_GAP] = "unexpected tensor \"layer2",
    [BAD_WEIGHT_NDIM] = "[cout, k, k, cin]",
    [BAD_NOT_SQUARE] = "[cout, k, k, cin]",
    [BAD_CIN0] = "3 of RGB",
    [BAD_CHAIN] = "layer 0 gives 8",
    [BAD_COUT_LAST] = "must give 1",
    [BAD_CHANNELS] = "limits",
    [BAD_KERNEL] = "limits",
    [BAD_BIAS_SHAPE] = "layer0.bias",
    [BAD_NAN] = "layer2.bias",
    [BAD_INF] = "layer2.bias",
    [BAD_BLOCKS] = "blocks",
  };
  for (int b = BAD_FORMAT; b < BAD_N; b++)
    {
      g_clear_error (&err);
      write_bad (path, (Bad) b);
      DcrCnn *x = dcr_cnn_load (path, &err);
      if (x)
        g_error ("bad case %d loaded", b);
      g_assert_nonnull (err);
      if (!strstr (err->message, msgs[b]))
        g_error ("bad case %d: \"%s\" lacks \"%s\"", b, err->message, msgs[b]);
      if (err->domain == DCR_CNN_ERROR)
        g_assert_cmpint (err->code, ==, DCR_CNN_ERROR_FILE);
      else
        g_assert_true (err->domain == DCR_SAFETENSORS_ERROR);
      if (b != BAD_NAN && b != BAD_INF && b != BAD_BIAS_SHAPE)
        g_assert_true (err->domain == DCR_CNN_ERROR);
    }
  g_clear_error (&err);
  g_autofree char *missing = g_build_filename (dir, "none.safetensors", NULL);
  g_assert_null (dcr_cnn_load (missing, &err));
  g_assert_nonnull (err);
  rm_dir (dir);
}

/* ---- the backbone tap ------------------------------------------------- */

static void
test_backbone (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = tmp_dir ();
  g_autofree char *cnn_path = g_build_filename (dir, "cnn.safetensors", NULL);
  g_autoptr (DcrCnn) c = random_cnn (&archs[0], 77);
  g_assert_true (dcr_cnn_save (c, cnn_path, NULL, &err));
  g_assert_no_error (err);
  g_autoptr (DcrCnn) loaded = dcr_cnn_load (cnn_path, &err);
  g_assert_no_error (err);
  g_autofree char *weights = dcr_backbone_default_path ();
  g_autofree char *spec = g_strdup_printf ("mobilenet_v2+residual+local+cnn=%s:%s", cnn_path, weights);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, DCR_F32, &err);
  g_assert_no_error (err);
  g_autofree char *want_id = g_strdup_printf ("mobilenet_v2_b10+residual-v1+local-v1+cnn-v1@%.12s@%.12s",
                                              loaded->sha256, dcr_backbone_weights_sha256 (bb));
  g_assert_cmpstr (dcr_backbone_id (bb), ==, want_id);
  g_assert_true (dcr_backbone_has_cnn (bb));
  g_assert_false (dcr_backbone_has_tiles (bb));
  guint dim = dcr_backbone_dim (bb), n = dcr_backbone_n_taps (bb);
  g_assert_cmpuint (dim, ==, 216 + DCR_FORENSIC_DIM + DCR_LOCAL_DIM + DCR_CNN_DIM);
  const DcrBackboneTap *loc = dcr_backbone_tap (bb, n - 2), *tap = dcr_backbone_tap (bb, n - 1);
  g_assert_cmpstr (loc->name, ==, "local");
  g_assert_cmpstr (tap->name, ==, "cnn");
  g_assert_cmpuint (tap->offset, ==, loc->offset + DCR_LOCAL_DIM);
  g_assert_cmpuint (tap->width, ==, DCR_CNN_DIM);
  g_assert_cmpuint (dcr_backbone_cnn_column (bb), ==, tap->offset);

  /* too small for the network (19 px), though not for the residual taps */
  g_assert_false (dcr_backbone_check_image (bb, 300, 18, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_INPUT);
  g_assert_nonnull (strstr (err->message, "forensic CNN"));
  g_clear_error (&err);

  /* a 300 × 260 picture in slot 1 of 3, a 600 × 700 one (512² window) in
   * slot 2; slot 0 gets none */
  const gint64 sizes[][2] = { { 260, 300 }, { 600, 700 } };
  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, 3, &err);
  g_assert_no_error (err);
  float blocks[DCR_CNN_MAX_BLOCKS];
  guint nbh, nbw;
  g_assert_false (dcr_backbone_run_cnn_blocks (run, 1, blocks, &nbh, &nbw, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH);
  g_clear_error (&err);
  g_autoptr (DcrImage) img0 = NULL;
  g_autoptr (DcrImage) img1 = NULL;
  DcrImage **img[2] = { &img0, &img1 };
  for (int k = 0; k < 2; k++)
    {
      gint64 h = sizes[k][0], w = sizes[k][1];
      g_autofree guint8 *px = photo_image (h, w, 27 + k, TRUE);
      *img[k] = dcr_image_new ((guint) w, (guint) h);
      memcpy ((*img[k])->pixels, px, h * w * 3);
      g_assert_true (dcr_backbone_run_set_image (run, 1 + k, *img[k], &err));
      g_assert_no_error (err);
    }
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_assert_no_error (err);
  g_autofree float *got = g_new (float, 3 * dim);
  g_assert_true (dcr_backbone_run_features (run, got, &err));
  g_assert_no_error (err);
  for (int k = 0; k < 2; k++)
    {
      gint64 H = sizes[k][0], W = sizes[k][1], top, left, h, w, hm, wm;
      dcr_cnn_window (H, W, &top, &left, &h, &w);
      g_assert_true (dcr_cnn_map_size (loaded, h, w, &hm, &wm));
      g_autofree float *map = g_new (float, hm * wm);
      float want[DCR_CNN_DIM], wblocks[DCR_CNN_MAX_BLOCKS];
      guint wbh, wbw;
      const guint8 *px = (*img[k])->pixels;
      g_assert_true (dcr_ref_cnn (loaded, px + (top * W + left) * 3, W * 3, h, w, map, want));
      dcr_cnn_columns (loaded, map, hm, wm, want, wblocks, &wbh, &wbw);
      double scale = 0;
      for (gint64 i = 0; i < hm * wm; i++)
        scale = MAX (scale, fabs (map[i]));
      const float *row = got + (gsize) (1 + k) * dim;
      dcr_test_assert_close ("backbone cnn columns", row + tap->offset, want, DCR_CNN_DIM, MAP_RTOL * (1 + scale), 0);
      g_assert_true (dcr_backbone_run_cnn_blocks (run, 1 + k, blocks, &nbh, &nbw, &err));
      g_assert_no_error (err);
      g_assert_cmpuint (nbh, ==, wbh);
      g_assert_cmpuint (nbw, ==, wbw);
      dcr_test_assert_close ("backbone cnn blocks", blocks, wblocks, nbh * nbw, MAP_RTOL * (1 + scale), 0);
      for (guint b = nbh * nbw; b < DCR_CNN_MAX_BLOCKS; b++)
        g_assert_cmpfloat (blocks[b], ==, 0.0f);
    }
  g_assert_false (dcr_backbone_run_cnn_blocks (run, 3, blocks, &nbh, &nbw, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_BATCH);
  g_clear_error (&err);

  /* the spec's other forms */
  g_autofree char *spec2 = g_strdup_printf ("mobilenet_v2+cnn=%s:%s", cnn_path, weights);
  g_autoptr (DcrBackbone) bb2 = dcr_backbone_load (ctx, spec2, DCR_F32, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (dcr_backbone_dim (bb2), ==, 216 + DCR_CNN_DIM);
  g_assert_cmpuint (dcr_backbone_cnn_column (bb2), ==, 216);
  g_assert_nonnull (strstr (dcr_backbone_id (bb2), "mobilenet_v2_b10+cnn-v1@"));
  g_autofree char *head_path = g_build_filename (dir, "head.safetensors", NULL);
  g_autoptr (DcrTileHead) head = dcr_tile_head_new (3);
  g_assert_true (dcr_tile_head_save (head, head_path, NULL, &err));
  g_assert_no_error (err);
  g_autofree char *spec3 = g_strdup_printf ("mobilenet_v2+local+tiles=%s+cnn=%s:%s", head_path, cnn_path, weights);
  g_autoptr (DcrBackbone) bb3 = dcr_backbone_load (ctx, spec3, DCR_F32, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_backbone_has_tiles (bb3));
  g_assert_cmpuint (dcr_backbone_cnn_column (bb3), ==, dcr_backbone_tiles_column (bb3) + DCR_TILES_DIM);
  g_assert_nonnull (strstr (dcr_backbone_id (bb3), "+local-v1+tiles-v1@"));
  g_autofree char *cnn_part = g_strdup_printf ("+cnn-v1@%.12s@", loaded->sha256);
  g_assert_nonnull (strstr (dcr_backbone_id (bb3), cnn_part));
  g_assert_true (dcr_backbone_has_cnn (bb3));

  /* refusals: no file, no ':' , a bad file */
  g_autofree char *spec4 = g_strdup_printf ("mobilenet_v2+cnn:%s", weights);
  g_assert_null (dcr_backbone_load (ctx, spec4, DCR_F32, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC);
  g_assert_nonnull (strstr (err->message, "+cnn=CNN:PATH"));
  g_clear_error (&err);
  g_autofree char *spec5 = g_strdup_printf ("mobilenet_v2+cnn=%s:%s", head_path, weights);
  g_assert_null (dcr_backbone_load (ctx, spec5, DCR_F32, &err));
  g_assert_error (err, DCR_CNN_ERROR, DCR_CNN_ERROR_FILE);
  g_clear_error (&err);
  g_assert_null (dcr_backbone_load (ctx, "mobilenet_v2+cnn=x", DCR_F32, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC);
  g_clear_error (&err);
  /* a backbone without the tap */
  g_autoptr (DcrBackboneRun) run3 = dcr_backbone_run_new (bb3, 1, &err);
  g_assert_no_error (err);
  g_autofree char *spec6 = g_strdup_printf ("mobilenet_v2:%s", weights);
  g_autoptr (DcrBackbone) bb6 = dcr_backbone_load (ctx, spec6, DCR_F32, &err);
  g_assert_no_error (err);
  g_assert_false (dcr_backbone_has_cnn (bb6));
  g_autoptr (DcrBackboneRun) run6 = dcr_backbone_run_new (bb6, 1, &err);
  g_assert_no_error (err);
  g_assert_false (dcr_backbone_run_cnn_blocks (run6, 0, blocks, &nbh, &nbw, &err));
  g_assert_error (err, DCR_BACKBONE_ERROR, DCR_BACKBONE_ERROR_SPEC);
  g_clear_error (&err);
  dcr_test_assert_no_validation_errors ();
  rm_dir (dir);
}

/* A run records consecutive images of one size as one group, one dispatch
 * an op (dcr-backbone.c): a batch of 8 — three 260 × 300 images, a 200 ×
 * 180 one, three 600 × 700 ones (512² windows: the CNN's scratch takes 2
 * at a time, so they make two groups) and one more 260 × 300 — gives every
 * image the features, tile logits and CNN blocks it gets alone in a batch
 * of one, bit for bit (the same kernels do the same arithmetic). */
static void
test_backbone_groups (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = tmp_dir ();
  g_autofree char *cnn_path = g_build_filename (dir, "cnn.safetensors", NULL);
  g_autofree char *head_path = g_build_filename (dir, "head.safetensors", NULL);
  g_autoptr (DcrCnn) c = random_cnn (&archs[5], 91);
  g_assert_true (dcr_cnn_save (c, cnn_path, NULL, &err));
  g_assert_no_error (err);
  g_autoptr (DcrTileHead) head = dcr_tile_head_new (5);
  dcr_test_fill (head->w1, 5 * DCR_TILES_NIN, 3, -0.3f, 0.3f);
  dcr_test_fill (head->b1, 5, 4, -0.3f, 0.3f);
  dcr_test_fill (head->w2, 5, 5, -1.0f, 1.0f);
  g_assert_true (dcr_tile_head_save (head, head_path, NULL, &err));
  g_assert_no_error (err);
  g_autofree char *weights = dcr_backbone_default_path ();
  g_autofree char *spec = g_strdup_printf ("mobilenet_v2+residual+local+tiles=%s+cnn=%s:%s", head_path, cnn_path,
                                           weights);
  g_autoptr (DcrBackbone) bb = dcr_backbone_load (ctx, spec, DCR_F32, &err);
  g_assert_no_error (err);
  guint dim = dcr_backbone_dim (bb);
  enum { N = 8 };
  const gint64 sizes[N][2] = { { 260, 300 }, { 260, 300 }, { 260, 300 }, { 200, 180 },
                               { 600, 700 }, { 600, 700 }, { 600, 700 }, { 260, 300 } };
  DcrImage *img[N];
  g_autoptr (DcrBackboneRun) run = dcr_backbone_run_new (bb, N, &err);
  g_assert_no_error (err);
  for (int k = 0; k < N; k++)
    {
      gint64 h = sizes[k][0], w = sizes[k][1];
      g_autofree guint8 *px = photo_image (h, w, 301 + k, TRUE);
      img[k] = dcr_image_new ((guint) w, (guint) h);
      memcpy (img[k]->pixels, px, h * w * 3);
      g_assert_true (dcr_backbone_run_set_image (run, k, img[k], &err));
      g_assert_no_error (err);
    }
  g_assert_true (dcr_backbone_run_forward (run, &err));
  g_assert_no_error (err);
  g_autofree float *got = g_new (float, N * dim);
  g_assert_true (dcr_backbone_run_raw_features (run, got, &err));
  g_assert_no_error (err);
  g_autoptr (DcrBackboneRun) one = dcr_backbone_run_new (bb, 1, &err);
  g_assert_no_error (err);
  g_autofree float *want = g_new (float, dim);
  for (int k = 0; k < N; k++)
    {
      g_assert_true (dcr_backbone_run_set_image (one, 0, img[k], &err));
      g_assert_no_error (err);
      g_assert_true (dcr_backbone_run_forward (one, &err));
      g_assert_no_error (err);
      g_assert_true (dcr_backbone_run_raw_features (one, want, &err));
      g_assert_no_error (err);
      for (guint j = 0; j < dim; j++)
        if (got[(gsize) k * dim + j] != want[j])
          g_error ("image %d (%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ") in a batch of %d: column %u = %.9g, alone %.9g",
                   k, sizes[k][1], sizes[k][0], N, j, got[(gsize) k * dim + j], want[j]);
      float lg[DCR_LOCAL_MAX_TILES], lg1[DCR_LOCAL_MAX_TILES], bl[DCR_CNN_MAX_BLOCKS], bl1[DCR_CNN_MAX_BLOCKS];
      guint a, b, a1, b1;
      g_assert_true (dcr_backbone_run_tile_logits (run, k, lg, &a, &b, &err));
      g_assert_true (dcr_backbone_run_tile_logits (one, 0, lg1, &a1, &b1, &err));
      g_assert_no_error (err);
      g_assert_cmpuint (a * b, ==, a1 * b1);
      g_assert_cmpmem (lg, sizeof lg, lg1, sizeof lg1);
      g_assert_true (dcr_backbone_run_cnn_blocks (run, k, bl, &a, &b, &err));
      g_assert_true (dcr_backbone_run_cnn_blocks (one, 0, bl1, &a1, &b1, &err));
      g_assert_no_error (err);
      g_assert_cmpuint (a * b, ==, a1 * b1);
      g_assert_cmpmem (bl, sizeof bl, bl1, sizeof bl1);
    }
  for (int k = 0; k < N; k++)
    dcr_image_free (img[k]);
  dcr_test_assert_no_validation_errors ();
  rm_dir (dir);
}

/* ---- block rectangles (dcr_cnn_block_rect) -------------------------- */

static void
test_block_rect (void)
{
  gint64 x, y, w, h;
  /* archs[0] (S = 4, t = 12) on a 600 × 700 image: window 512² at
   * (88, 40), map 124², 10 × 10 blocks of 48 px from the box margin */
  g_autoptr (DcrCnn) c = random_cnn (&archs[0], 5);
  g_assert_cmpuint (dcr_cnn_stride (c), ==, 4);
  g_assert_cmpuint (dcr_cnn_block (c), ==, 12);
  dcr_cnn_block_rect (c, 600, 700, 10, 23, &x, &y, &w, &h);
  g_assert_cmpint (x, ==, 88 + 2 + 3 * 48);
  g_assert_cmpint (y, ==, 40 + 2 + 2 * 48);
  g_assert_cmpint (w, ==, 48);
  g_assert_cmpint (h, ==, 48);
  dcr_cnn_block_rect (c, 600, 700, 10, 99, &x, &y, &w, &h);
  g_assert_cmpint (x, ==, 88 + 2 + 9 * 48);
  g_assert_cmpint (y, ==, 40 + 2 + 9 * 48);
  g_assert_cmpint (w, ==, 48);
  /* outside the grid, a grid of another width, too small an image */
  dcr_cnn_block_rect (c, 600, 700, 10, 100, &x, &y, &w, &h);
  g_assert_cmpint (w, ==, 0);
  g_assert_cmpint (h, ==, 0);
  dcr_cnn_block_rect (c, 600, 700, 9, 0, &x, &y, &w, &h);
  g_assert_cmpint (w, ==, 0);
  dcr_cnn_block_rect (c, 12, 700, 10, 0, &x, &y, &w, &h);
  g_assert_cmpint (w, ==, 0);
  g_assert_cmpint (h, ==, 0);
  /* a 40 × 40 image: map 6², no whole block, the one block is the map's
   * 24 × 24 pixels */
  dcr_cnn_block_rect (c, 40, 40, 1, 0, &x, &y, &w, &h);
  g_assert_cmpint (x, ==, 2);
  g_assert_cmpint (y, ==, 2);
  g_assert_cmpint (w, ==, 24);
  g_assert_cmpint (h, ==, 24);
  dcr_cnn_block_rect (c, 40, 40, 1, 1, &x, &y, &w, &h);
  g_assert_cmpint (w, ==, 0);

  /* every architecture, several sizes: a map that is 1 at one cell and 0
   * elsewhere gives its block (dcr_cnn_columns' numbering) the only
   * non-zero mean, and that block's rectangle holds the cell's pixel; every
   * rectangle lies in the window and blocks do not overlap */
  const gint64 sizes[][2] = { { 256, 256 }, { 301, 277 }, { 600, 700 }, { 90, 130 }, { 30, 41 } };
  for (gsize a = 0; a < G_N_ELEMENTS (archs); a++)
    {
      g_autoptr (DcrCnn) n = random_cnn (&archs[a], 11);
      gint64 S = dcr_cnn_stride (n);
      for (gsize k = 0; k < G_N_ELEMENTS (sizes); k++)
        {
          gint64 H = sizes[k][0], W = sizes[k][1], top, left, wh, ww, hm, wm;
          dcr_cnn_window (H, W, &top, &left, &wh, &ww);
          if (!dcr_cnn_map_size (n, wh, ww, &hm, &wm))
            continue;
          g_autofree float *map = g_new0 (float, hm * wm);
          float cols[DCR_CNN_DIM], blocks[DCR_CNN_MAX_BLOCKS];
          guint nbh, nbw;
          dcr_cnn_columns (n, map, hm, wm, cols, NULL, &nbh, &nbw);
          g_autofree gint64 *r = g_new (gint64, 4 * nbh * nbw);
          for (guint b = 0; b < nbh * nbw; b++)
            {
              gint64 *q = r + 4 * b;
              dcr_cnn_block_rect (n, H, W, nbw, b, &q[0], &q[1], &q[2], &q[3]);
              g_assert_cmpint (q[2], >, 0);
              g_assert_cmpint (q[3], >, 0);
              g_assert_cmpint (q[0], >=, left);
              g_assert_cmpint (q[1], >=, top);
              g_assert_cmpint (q[0] + q[2], <=, left + ww);
              g_assert_cmpint (q[1] + q[3], <=, top + wh);
              for (guint o = 0; o < b; o++)
                {
                  const gint64 *p = r + 4 * o;
                  g_assert_true (q[0] >= p[0] + p[2] || p[0] >= q[0] + q[2] || q[1] >= p[1] + p[3]
                                 || p[1] >= q[1] + q[3]);
                }
            }
          const gint64 cells[][2] = { { 0, 0 }, { hm - 1, wm - 1 }, { hm / 2, wm / 3 } };
          for (gsize ci = 0; ci < G_N_ELEMENTS (cells); ci++)
            {
              gint64 i = cells[ci][0], j = cells[ci][1];
              memset (map, 0, sizeof (float) * hm * wm);
              map[i * wm + j] = 1;
              dcr_cnn_columns (n, map, hm, wm, cols, blocks, &nbh, &nbw);
              gint hot = -1;
              for (guint b = 0; b < nbh * nbw; b++)
                if (blocks[b] != 0)
                  {
                    g_assert_cmpint (hot, ==, -1);
                    hot = (gint) b;
                  }
              if (hot < 0)
                continue; /* a cell past the last whole block */
              gint64 px = left + 2 + j * S, py = top + 2 + i * S;
              const gint64 *q = r + 4 * hot;
              g_assert_true (px >= q[0] && px < q[0] + q[2] && py >= q[1] && py < q[1] + q[3]);
            }
        }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cnn/geometry", test_geometry);
  g_test_add_func ("/cnn/columns", test_columns);
  g_test_add_func ("/cnn/prep", test_prep);
  g_test_add_func ("/cnn/forward", test_forward);
  g_test_add_func ("/cnn/forward-fused", test_forward_fused);
  g_test_add_func ("/cnn/forward-errors", test_forward_errors);
  g_test_add_func ("/cnn/golden", test_golden);
  g_test_add_func ("/cnn/file", test_file);
  g_test_add_func ("/cnn/backbone", test_backbone);
  g_test_add_func ("/cnn/backbone-groups", test_backbone_groups);
  g_test_add_func ("/cnn/block-rect", test_block_rect);
  int ret = g_test_run ();
  dcr_test_context_teardown ();
  return ret;
}
