/* test-op-local.c — the local (tiled) forensic feature: the GPU accumulators
 * and feature against the double references over image sizes that exercise
 * the tiling (one 24-anchor tile, 24 × 48 tiles, 5 × 5, a clipped window,
 * the 512 window's 10 × 10; f32 and f16 output), the reference against an
 * independent NumPy implementation (tests/golden/local-numpy.py), and the
 * reference checked against what it must give: a hand-computed one-tile
 * image, a flat image, and a ×2 horizontal upscale that shows up at period 2
 * and not at 3. */
#include "test-backbone-common.h"
#include "dcr-op-local.h"
#include "golden/local-numpy.h"

#include <math.h>
#include <string.h>

/* Sums of up to 2304 products of values ≤ 1020 per tile in float32: ~1e-6
 * relative. The feature: logs, ratios and small DFTs of them in float32,
 * 2e-4 absolute on values of order 1–15; f16 storage adds 1e-3 relative. */
#define ACC_RTOL 1e-5
#define FEAT_ATOL 2e-4
#define FEAT_RTOL 1e-4
#define F16_ATOL 2e-3
#define F16_RTOL 2e-3


/* The GPU's accumulators (slot `slot` of a 2-slot buffer) and feature (row 1
 * of a [3, D] output at column 7) of an image. */
static void
run_gpu (const guint8 *img, gint64 h, gint64 w, DcrDtype dt, guint slot, float *acc_out, float *feat_out)
{
  g_autoptr (GError) err = NULL;
  const gint64 D = DCR_LOCAL_DIM + 11, row = 1, column = 7;
  g_autoptr (DcrTensor) t = dcr_test_image_tensor (img, h, w);
  gint64 ashape[] = { 2 * DCR_LOCAL_ACC_SIZE };
  g_autoptr (DcrTensor) acc = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, ashape, NULL);
  gint64 yshape[] = { 3, D };
  g_autofree float *fill = g_new (float, 3 * D);
  for (gint64 i = 0; i < 3 * D; i++)
    fill[i] = -7.0f;
  g_autoptr (DcrTensor) y = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, dt, 2, yshape, fill);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_local (seq, t, acc, slot, y, row, column, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  g_autofree float *all_acc = dcr_test_download_floats (acc);
  if (acc_out)
    memcpy (acc_out, all_acc + slot * DCR_LOCAL_ACC_SIZE, sizeof (float) * DCR_LOCAL_ACC_SIZE);
  g_autofree float *all_y = dcr_test_download_floats (y);
  /* everything outside the feature's columns is untouched */
  for (gint64 i = 0; i < 3 * D; i++)
    if (i < row * D + column || i >= row * D + column + DCR_LOCAL_DIM)
      g_assert_cmpfloat (all_y[i], ==, -7.0f);
  memcpy (feat_out, all_y + row * D + column, sizeof (float) * DCR_LOCAL_DIM);
}

static void
reference (const guint8 *img, gint64 h, gint64 w, double *acc_out, float *feat_out)
{
  DcrForensicWindow win;
  g_assert_true (dcr_forensic_window (h, w, &win));
  g_autofree double *acc = g_new (double, DCR_LOCAL_ACC_SIZE);
  dcr_ref_local_stats (img, h, w, &win, acc);
  if (acc_out)
    memcpy (acc_out, acc, sizeof (double) * DCR_LOCAL_ACC_SIZE);
  dcr_ref_local_features (acc, &win, feat_out);
}

static void
test_tiles (void)
{
  static const struct {
    gint64 h, w, th, tw, nth, ntw;
  } cases[] = {
    { 48, 48, 24, 24, 1, 1 },    { 36, 36, 24, 24, 1, 1 },     { 60, 100, 48, 48, 1, 1 },
    { 60, 40, 48, 24, 1, 1 },    { 256, 256, 48, 48, 5, 5 },   { 300, 517, 48, 48, 6, 10 },
    { 700, 600, 48, 48, 10, 10 }, { 40, 600, 24, 48, 1, 10 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      DcrForensicWindow win;
      DcrLocalTiles t;
      g_assert_true (dcr_forensic_window (cases[i].h, cases[i].w, &win));
      dcr_local_tiles (&win, &t);
      g_assert_cmpint (t.th, ==, cases[i].th);
      g_assert_cmpint (t.tw, ==, cases[i].tw);
      g_assert_cmpint (t.nth, ==, cases[i].nth);
      g_assert_cmpint (t.ntw, ==, cases[i].ntw);
      g_assert_cmpint (t.nth * t.ntw, <=, DCR_LOCAL_MAX_TILES);
    }
}

/* A scratch slot against the reference: per tile and channel, against the
 * size of its energy sums (the correlation sums cancel). */
static void
check_scratch (const float *gacc, const double *racc, const DcrLocalTiles *t, gint64 h, gint64 w)
{
  for (gint64 k = 0; k < t->nth * t->ntw * 3; k++)
    {
      const double *r = racc + k * DCR_LOCAL_ACC_STRIDE;
      const float *g = gacc + k * DCR_LOCAL_ACC_STRIDE;
      double scale = 1;
      for (int i = 0; i < DCR_LOCAL_NACC; i++)
        scale = MAX (scale, fabs (r[i]));
      for (int i = 0; i < DCR_LOCAL_ACC_STRIDE; i++)
        {
          /* the accumulators against their energy; the tile's values as
           * the feature */
          double tol = i < DCR_LOCAL_NACC ? ACC_RTOL * scale : FEAT_ATOL + FEAT_RTOL * fabs (r[i]);
          if (fabs (g[i] - r[i]) > tol)
            g_error ("scratch %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ": tile·channel %" G_GINT64_FORMAT
                     " [%d] = %.9g, want %.9g", w, h, k, i, g[i], r[i]);
        }
    }
}

static void
test_gpu_vs_ref (void)
{
  static const gint64 sizes[][2] = { { 48, 48 }, { 60, 100 }, { 256, 256 }, { 300, 517 }, { 700, 600 }, { 40, 130 } };
  for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      gint64 h = sizes[s][0], w = sizes[s][1];
      g_autofree guint8 *img = photo_image (h, w, (guint32) s * 7919u + 3, TRUE);
      g_autofree double *racc = g_new (double, DCR_LOCAL_ACC_SIZE);
      g_autofree float *gacc = g_new (float, DCR_LOCAL_ACC_SIZE);
      float rf[DCR_LOCAL_DIM], gf[DCR_LOCAL_DIM];
      reference (img, h, w, racc, rf);
      DcrForensicWindow win;
      DcrLocalTiles t;
      g_assert_true (dcr_forensic_window (h, w, &win));
      dcr_local_tiles (&win, &t);
      for (int dt = 0; dt < 2; dt++)
        {
          DcrDtype dtype = dt ? DCR_F16 : DCR_F32;
          if (dtype == DCR_F16 && !dcr_test_device_has_f16 ())
            continue;
          run_gpu (img, h, w, dtype, (guint) ((s + dt) & 1), gacc, gf);
          check_scratch (gacc, racc, &t, h, w);
          g_autofree char *what = g_strdup_printf ("feature %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " %s", w, h,
                                                   dt ? "f16" : "f32");
          dcr_test_assert_close (what, gf, rf, DCR_LOCAL_DIM, dt ? F16_ATOL : FEAT_ATOL, dt ? F16_RTOL : FEAT_RTOL);
        }
    }
  dcr_test_assert_no_validation_errors ();
}

/* Three images of one size (111 × 130 × 3 bytes each, so the second and
 * third start inside a 32-bit word; 2 × 2 tiles) in one [3, H, W, 3]
 * tensor: one pair of dispatches writes slots 1–3 and rows 1–3, each as the
 * reference of its own image; the slots and rows around them stay as they
 * were. */
static void
test_batch (void)
{
  g_autoptr (GError) err = NULL;
  const gint64 h = 111, w = 130, m = 3, D = DCR_LOCAL_DIM + 11, column = 7;
  OpBatch ob;
  op_batch_init (&ob, m, h, w, 5, TRUE, DCR_LOCAL_ACC_SIZE, D);
  const gsize bytes = ob.bytes;
  const guint8 *px = ob.px;
  DcrTensor *t = ob.images, *acc = ob.acc, *y = ob.y;
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_local (seq, t, acc, 1, y, 1, column, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  g_autofree float *gacc = dcr_test_download_floats (acc), *gy = dcr_test_download_floats (y);
  DcrForensicWindow win;
  DcrLocalTiles tiles;
  g_assert_true (dcr_forensic_window (h, w, &win));
  dcr_local_tiles (&win, &tiles);
  g_assert_cmpint (tiles.nth * tiles.ntw, ==, 4);
  g_autofree double *racc = g_new (double, DCR_LOCAL_ACC_SIZE);
  float rf[DCR_LOCAL_DIM];
  for (gint64 i = 0; i < m; i++)
    {
      reference (px + i * bytes, h, w, racc, rf);
      check_scratch (gacc + (1 + i) * DCR_LOCAL_ACC_SIZE, racc, &tiles, h, w);
      g_autofree char *what = g_strdup_printf ("batch image %" G_GINT64_FORMAT, i);
      dcr_test_assert_close (what, gy + (1 + i) * D + column, rf, DCR_LOCAL_DIM, FEAT_ATOL, FEAT_RTOL);
    }
  op_batch_check_untouched (&ob, gacc, DCR_LOCAL_ACC_SIZE, gy, column, DCR_LOCAL_DIM);
  /* a batch reaching past the last slot or row */
  g_assert_false (dcr_op_local (seq, t, acc, 3, y, 1, column, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_local (seq, t, acc, 1, y, 3, column, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  op_batch_clear (&ob);
  dcr_test_assert_no_validation_errors ();
}

static void
test_matches_numpy (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (local_numpy_cases); i++)
    {
      const LocalNumpyCase *g = &local_numpy_cases[i];
      g_autofree guint8 *img = g_new (guint8, g->h * g->w * 3);
      for (int y = 0; y < g->h; y++)
        for (int x = 0; x < g->w; x++)
          for (int c = 0; c < 3; c++)
            img[(y * g->w + x) * 3 + c] = local_numpy_pixel (g->seed, y, x, c);
      float rf[DCR_LOCAL_DIM];
      reference (img, g->h, g->w, NULL, rf);
      dcr_test_assert_close (g->what, rf, g->feature, DCR_LOCAL_DIM, 1e-5, 1e-5);
    }
}

/* Index of value v's statistic (0 mean, 1 max, 2 min, 3 std) in channel c. */
static int
fidx (int c, int stat, int v)
{
  return c * DCR_LOCAL_PER_CHANNEL + stat * DCR_LOCAL_NVAL + v;
}

/* t-index of the DFT value at (u, v) of period q, by the header's rule. */
static int
dft_index (guint q, guint u, guint v)
{
  int k = DCR_LOCAL_NDIL;
  for (guint p = 2; p <= 4; p++)
    for (guint a = 0; a < p; a++)
      for (guint b = 0; b < p; b++)
        {
          guint ca = (p - a) % p, cb = (p - b) % p;
          if ((a == 0 && b == 0) || ca < a || (ca == a && cb < b))
            continue;
          if (p == q && a == u && b == v)
            return k;
          k++;
        }
  g_assert_not_reached ();
}

static void
test_hand_computed (void)
{
  /* A 48 × 48 grey image (R = G = B) alternating 0 / 10 by column: one tile
   * of 24 × 24 anchors; luma only (the colour differences are 0). h_1 = ±20
   * everywhere, h_3 likewise, h_2 = h_4 = h_6 = 0, v = 0; neighbouring h_1
   * have opposite signs. */
  const gint64 h = 48, w = 48;
  g_autofree guint8 *img = g_new (guint8, h * w * 3);
  for (gint64 y = 0; y < h; y++)
    for (gint64 x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        img[(y * w + x) * 3 + c] = (x & 1) ? 10 : 0;
  g_autofree double *acc = g_new (double, DCR_LOCAL_ACC_SIZE);
  float f[DCR_LOCAL_DIM];
  reference (img, h, w, acc, f);
  /* luma of grey 10 in float: 10·(0.299 + 0.587 + 0.114) */
  double l = 10.0f * 0.299f + 10.0f * 0.587f + 10.0f * 0.114f, e = 4 * l * l, n = 576;
  const double want[DCR_LOCAL_NDIL] = { n * e, 0, n * e, 0, 0 };
  for (int k = 0; k < DCR_LOCAL_NDIL; k++)
    g_assert_cmpfloat_with_epsilon (acc[k], want[k], 1e-6 * n * e);
  for (int p = 0; p < 144; p++)
    g_assert_cmpfloat_with_epsilon (acc[DCR_LOCAL_NDIL + p], 4 * e, 1e-6 * e);
  g_assert_cmpfloat_with_epsilon (acc[149], -n * e, 1e-6 * n * e); /* Ch */
  g_assert_cmpfloat_with_epsilon (acc[150], 0, 1e-9);              /* Cv */
  g_assert_cmpfloat_with_epsilon (acc[151], n * e, 1e-6 * n * e);  /* Sh */
  g_assert_cmpfloat_with_epsilon (acc[152], 0, 1e-9);              /* Sv */
  for (int i = DCR_LOCAL_ACC_STRIDE; i < 3 * DCR_LOCAL_ACC_STRIDE; i++)
    if (i % DCR_LOCAL_ACC_STRIDE < DCR_LOCAL_NACC)
      g_assert_cmpfloat (acc[i], ==, 0.0);
  /* one tile: mean = max = min, std 0 */
  g_assert_cmpfloat_with_epsilon (f[fidx (0, 0, 0)], log (e + 0.01), 1e-5);
  g_assert_cmpfloat_with_epsilon (f[fidx (0, 0, 1)], log (0.001 / (e + 0.001)), 1e-4);
  g_assert_cmpfloat_with_epsilon (f[fidx (0, 0, 2)], 0, 1e-6);
  g_assert_cmpfloat_with_epsilon (f[fidx (0, 0, 21)], -1, 1e-6);
  g_assert_cmpfloat_with_epsilon (f[fidx (0, 0, 22)], 0, 1e-6);
  for (int v = 0; v < DCR_LOCAL_NVAL; v++)
    {
      g_assert_cmpfloat (f[fidx (0, 1, v)], ==, f[fidx (0, 0, v)]);
      g_assert_cmpfloat (f[fidx (0, 2, v)], ==, f[fidx (0, 0, v)]);
      g_assert_cmpfloat (f[fidx (0, 3, v)], ==, 0.0f);
    }
  /* the energy is the same on every phase: no DFT component */
  for (int v = DCR_LOCAL_NDIL; v < DCR_LOCAL_NVAL - 2; v++)
    g_assert_cmpfloat_with_epsilon (f[fidx (0, 0, v)], 0, 1e-6);
  float g[DCR_LOCAL_DIM];
  run_gpu (img, h, w, DCR_F32, 0, NULL, g);
  dcr_test_assert_close ("hand-computed on the GPU", g, f, DCR_LOCAL_DIM, FEAT_ATOL, FEAT_RTOL);
}

static void
test_flat (void)
{
  const gint64 h = 256, w = 200;
  g_autofree guint8 *img = g_new (guint8, h * w * 3);
  memset (img, 77, h * w * 3);
  float f[DCR_LOCAL_DIM], g[DCR_LOCAL_DIM];
  reference (img, h, w, NULL, f);
  run_gpu (img, h, w, DCR_F32, 1, NULL, g);
  for (int i = 0; i < DCR_LOCAL_DIM; i++)
    {
      int k = i % DCR_LOCAL_PER_CHANNEL, stat = k / DCR_LOCAL_NVAL, v = k % DCR_LOCAL_NVAL;
      float want = v == 0 && stat < 3 ? logf (0.01f) : 0.0f;
      g_assert_cmpfloat_with_epsilon (f[i], want, 1e-6);
      g_assert_cmpfloat_with_epsilon (g[i], want, 1e-5);
    }
}

static void
test_upscale_trace (void)
{
  /* Noise, and noise upscaled ×2 across the columns by linear
   * interpolation: the odd columns are their neighbours' means, so their h_1
   * vanishes and the dilation-1 energy alternates with the column's parity —
   * the period-2 DFT at (0, 1) — while period 3 sees nothing. */
  const gint64 h = 256, w = 256, sw = w / 2 + 1;
  g_autofree guint8 *small = g_new (guint8, h * sw * 3), *big = g_new (guint8, h * w * 3);
  for (gint64 i = 0; i < h * sw * 3; i++)
    small[i] = (guint8) (64 + golden_lowbias32 ((guint32) i * 31u + 5) % 128);
  for (gint64 y = 0; y < h; y++)
    for (gint64 x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        {
          gint64 x0 = x / 2, x1 = x0 + (x & 1);
          big[(y * w + x) * 3 + c] = (guint8) ((small[(y * sw + x0) * 3 + c] + small[(y * sw + x1) * 3 + c] + 1) / 2);
        }
  float fb[DCR_LOCAL_DIM], fs[DCR_LOCAL_DIM];
  reference (big, h, w, NULL, fb);
  reference (small, h, sw, NULL, fs); /* the noise itself (129 wide: 2 tile columns) */
  int i01 = dft_index (2, 0, 1), i10 = dft_index (2, 1, 0);
  for (int c = 0; c < 3; c++)
    {
      g_assert_cmpfloat (fb[fidx (c, 0, i01)], >, 0.2f);
      g_assert_cmpfloat (fb[fidx (c, 2, i01)], >, 0.2f); /* in every tile */
      g_assert_cmpfloat (fb[fidx (c, 0, i10)], <, 0.05f);
      g_assert_cmpfloat (fs[fidx (c, 0, i01)], <, 0.05f);
      for (guint u = 0; u < 3; u++)
        for (guint v = 0; v < 3; v++)
          {
            guint cu = (3 - u) % 3, cv = (3 - v) % 3;
            if ((u == 0 && v == 0) || cu < u || (cu == u && cv < v))
              continue;
            g_assert_cmpfloat (fb[fidx (c, 0, dft_index (3, u, v))], <, 0.05f);
          }
    }
  float gb[DCR_LOCAL_DIM];
  run_gpu (big, h, w, DCR_F32, 0, NULL, gb);
  dcr_test_assert_close ("upscaled on the GPU", gb, fb, DCR_LOCAL_DIM, FEAT_ATOL, FEAT_RTOL);
}

static void
test_errors (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree guint8 *img = photo_image (35, 80, 1, TRUE);
  g_autoptr (DcrTensor) t = dcr_test_image_tensor (img, 35, 80);
  gint64 ashape[] = { DCR_LOCAL_ACC_SIZE }, yshape[] = { 2, DCR_LOCAL_DIM };
  g_autoptr (DcrTensor) acc = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, ashape, NULL);
  g_autoptr (DcrTensor) y = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, yshape, NULL);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_false (dcr_op_local (seq, t, acc, 0, y, 0, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "too small"));
  g_clear_error (&err);

  g_autofree guint8 *img2 = photo_image (40, 40, 2, TRUE);
  g_autoptr (DcrTensor) t2 = dcr_test_image_tensor (img2, 40, 40);
  g_assert_false (dcr_op_local (seq, t2, acc, 1, y, 0, 0, &err)); /* no slot 1 */
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_local (seq, t2, acc, 0, y, 2, 0, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_local (seq, t2, acc, 0, y, 0, 1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_local (seq, t2, y, 0, y, 0, 0, &err)); /* too few accumulators */
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  dcr_test_assert_no_validation_errors ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/op-local/tiles", test_tiles);
  g_test_add_func ("/op-local/gpu-vs-ref", test_gpu_vs_ref);
  g_test_add_func ("/op-local/batch", test_batch);
  g_test_add_func ("/op-local/matches-numpy", test_matches_numpy);
  g_test_add_func ("/op-local/hand-computed", test_hand_computed);
  g_test_add_func ("/op-local/flat", test_flat);
  g_test_add_func ("/op-local/upscale-trace", test_upscale_trace);
  g_test_add_func ("/op-local/errors", test_errors);
  int ret = g_test_run ();
  dcr_test_context_teardown ();
  return ret;
}
