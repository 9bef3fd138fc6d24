/* test-op-forensic.c — the forensic residual feature: the GPU statistics and
 * feature against the double references over odd image sizes (f32 and f16
 * output), the references against an independent NumPy implementation
 * (tests/golden/forensic-numpy.py), and what the feature is for: a ×2
 * nearest-neighbour or bicubic-like upscale shows up at period 2, a flat
 * image has no texture, and the errors. */
#include "test-backbone-common.h"
#include "dcr-op-forensic.h"
#include "golden/forensic-numpy.h"

#include <math.h>
#include <string.h>

/* Statistics are sums of up to ~400 products of values ≤ 1020 per phase,
 * in float32 on the GPU: relative error ~1e-6. The feature takes ratios and
 * small DFTs of them in float32: 1e-4 absolute on values of order 1. f16
 * storage adds its rounding (1e-3 relative). */
#define ACC_RTOL 1e-5
#define FEAT_ATOL 2e-4
#define F16_ATOL 2e-3
#define F16_RTOL 2e-3


/* The GPU's statistics (slot `slot` of a 2-slot buffer) and feature (row 1
 * of a [3, D] output at column 5) of an image. */
static void
run_gpu (const guint8 *img, gint64 h, gint64 w, DcrDtype dt, guint slot, float *acc_out, float *feat_out)
{
  g_autoptr (GError) err = NULL;
  const gint64 D = DCR_FORENSIC_DIM + 9, row = 1, column = 5;
  g_autoptr (DcrTensor) t = dcr_test_image_tensor (img, h, w);
  gint64 ashape[] = { 2 * DCR_FORENSIC_ACC_SIZE };
  g_autoptr (DcrTensor) acc = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, ashape, NULL);
  gint64 yshape[] = { 3, D };
  g_autofree float *fill = g_new (float, 3 * D);
  for (gint64 i = 0; i < 3 * D; i++)
    fill[i] = -7.0f;
  g_autoptr (DcrTensor) y = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, dt, 2, yshape, fill);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_forensic (seq, t, acc, slot, y, row, column, &dcr_forensic_scales_v1, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  g_autofree float *all_acc = dcr_test_download_floats (acc);
  memcpy (acc_out, all_acc + slot * DCR_FORENSIC_ACC_SIZE, sizeof (float) * DCR_FORENSIC_ACC_SIZE);
  g_autofree float *all_y = dcr_test_download_floats (y);
  /* everything outside the feature's columns is untouched */
  for (gint64 i = 0; i < 3 * D; i++)
    if (i < row * D + column || i >= row * D + column + DCR_FORENSIC_DIM)
      g_assert_cmpfloat (all_y[i], ==, -7.0f);
  memcpy (feat_out, all_y + row * D + column, sizeof (float) * DCR_FORENSIC_DIM);
}

static void
reference (const guint8 *img, gint64 h, gint64 w, float *acc_out, float *feat_out)
{
  DcrForensicWindow win;
  g_assert_true (dcr_forensic_window (h, w, &win));
  g_autofree double *acc = g_new (double, DCR_FORENSIC_ACC_SIZE);
  dcr_ref_forensic_stats (img, h, w, &win, acc);
  if (acc_out)
    for (int i = 0; i < DCR_FORENSIC_ACC_SIZE; i++)
      acc_out[i] = (float) acc[i];
  dcr_ref_forensic_features (acc, &win, &dcr_forensic_scales_v1, feat_out);
}

static void
test_gpu_vs_ref (void)
{
  static const gint64 sizes[][2] = { { 36, 36 }, { 37, 61 }, { 65, 49 }, { 129, 300 }, { 530, 517 } };
  for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      gint64 h = sizes[s][0], w = sizes[s][1];
      g_autofree guint8 *img = photo_image (h, w, (guint32) s * 7919u, FALSE);
      g_autofree float *racc = g_new (float, DCR_FORENSIC_ACC_SIZE), *gacc = g_new (float, DCR_FORENSIC_ACC_SIZE);
      g_autofree float *rf = g_new (float, DCR_FORENSIC_DIM), *gf = g_new (float, DCR_FORENSIC_DIM);
      reference (img, h, w, racc, rf);
      for (int dt = 0; dt < 2; dt++)
        {
          DcrDtype dtype = dt ? DCR_F16 : DCR_F32;
          if (dtype == DCR_F16 && !dcr_test_device_has_f16 ())
            continue;
          run_gpu (img, h, w, dtype, (guint) (s & 1), gacc, gf);
          g_autofree char *what = g_strdup_printf ("statistics %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT, w, h);
          /* the correlation sums cancel: compare each channel against the
           * size of its energy sums, which bound every product */
          const int block = DCR_FORENSIC_NACC * DCR_FORENSIC_PERIOD * DCR_FORENSIC_PERIOD;
          for (int c = 0; c < 3; c++)
            {
              double scale = 1;
              for (int i = 0; i < 2 * DCR_FORENSIC_PERIOD * DCR_FORENSIC_PERIOD; i++)
                scale = MAX (scale, fabs (racc[c * block + i]));
              dcr_test_assert_close (what, gacc + c * block, racc + c * block, block, ACC_RTOL * scale, 0);
            }
          g_autofree char *fwhat = g_strdup_printf ("feature %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " %s", w, h,
                                                    dt ? "f16" : "f32");
          dcr_test_assert_close (fwhat, gf, rf, DCR_FORENSIC_DIM, dt ? F16_ATOL : FEAT_ATOL, dt ? F16_RTOL : 1e-4);
        }
    }
  dcr_test_assert_no_validation_errors ();
}

/* Three images of one size in one [3, H, W, 3] tensor (65 × 49 × 3 bytes
 * each, so the second and third start inside a 32-bit word): one pair of
 * dispatches writes slots 1–3 and rows 1–3, each as the reference of its
 * own image; the slot and rows around them stay untouched. */
static void
test_batch (void)
{
  g_autoptr (GError) err = NULL;
  const gint64 h = 65, w = 49, m = 3, D = DCR_FORENSIC_DIM + 9, column = 5;
  OpBatch ob;
  op_batch_init (&ob, m, h, w, 11, FALSE, DCR_FORENSIC_ACC_SIZE, D);
  const gsize bytes = ob.bytes;
  const guint8 *px = ob.px;
  DcrTensor *t = ob.images, *acc = ob.acc, *y = ob.y;
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_forensic (seq, t, acc, 1, y, 1, column, &dcr_forensic_scales_v1, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  g_autofree float *gacc = dcr_test_download_floats (acc), *gy = dcr_test_download_floats (y);
  g_autofree float *racc = g_new (float, DCR_FORENSIC_ACC_SIZE), *rf = g_new (float, DCR_FORENSIC_DIM);
  const int block = DCR_FORENSIC_NACC * DCR_FORENSIC_PERIOD * DCR_FORENSIC_PERIOD;
  for (gint64 i = 0; i < m; i++)
    {
      reference (px + i * bytes, h, w, racc, rf);
      g_autofree char *what = g_strdup_printf ("batch image %" G_GINT64_FORMAT, i);
      const float *ga = gacc + (1 + i) * DCR_FORENSIC_ACC_SIZE;
      for (int c = 0; c < 3; c++)
        {
          double scale = 1;
          for (int k = 0; k < 2 * DCR_FORENSIC_PERIOD * DCR_FORENSIC_PERIOD; k++)
            scale = MAX (scale, fabs (racc[c * block + k]));
          dcr_test_assert_close (what, ga + c * block, racc + c * block, block, ACC_RTOL * scale, 0);
        }
      dcr_test_assert_close (what, gy + (1 + i) * D + column, rf, DCR_FORENSIC_DIM, FEAT_ATOL, 1e-4);
    }
  op_batch_check_untouched (&ob, gacc, DCR_FORENSIC_ACC_SIZE, gy, column, DCR_FORENSIC_DIM);
  /* a batch reaching past the last slot or row */
  g_assert_false (dcr_op_forensic (seq, t, acc, 3, y, 1, column, &dcr_forensic_scales_v1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_forensic (seq, t, acc, 1, y, 3, column, &dcr_forensic_scales_v1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  op_batch_clear (&ob);
  dcr_test_assert_no_validation_errors ();
}

static void
test_matches_numpy (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (forensic_numpy_cases); i++)
    {
      const ForensicNumpyCase *g = &forensic_numpy_cases[i];
      g_autofree guint8 *img = g_new (guint8, g->h * g->w * 3);
      for (int y = 0; y < g->h; y++)
        for (int x = 0; x < g->w; x++)
          for (int c = 0; c < 3; c++)
            img[(y * g->w + x) * 3 + c] = forensic_numpy_pixel (g->seed, y, x, c);
      g_autofree float *rf = g_new (float, DCR_FORENSIC_DIM);
      reference (img, g->h, g->w, NULL, rf);
      dcr_test_assert_close (g->what, rf, g->feature, DCR_FORENSIC_DIM, 1e-5, 1e-5);
    }
}

/* Feature index of channel c's energy DFT magnitude at (u, v) for period q. */
static int
energy_index (int c, guint q, guint u, guint v)
{
  static const guint periods[] = { 2, 3, 4, 8 };
  int k = 12;
  for (gsize pi = 0; pi < G_N_ELEMENTS (periods); pi++)
    for (guint a = 0; a < periods[pi]; a++)
      for (guint b = 0; b < periods[pi]; b++)
        {
          guint p = periods[pi], ca = (p - a) % p, cb = (p - b) % p;
          if ((a == 0 && b == 0) || ca < a || (ca == a && cb < b))
            continue;
          if (p == q && a == u && b == v)
            return c * DCR_FORENSIC_PER_CHANNEL + k;
          k += 2;
        }
  g_assert_not_reached ();
}

static void
test_upscale_trace (void)
{
  /* A noisy image, and the same content upscaled ×2 by linear
   * interpolation: the new pixels are averages of their neighbours, so their
   * second differences vanish and residual energy sits on alternate rows and
   * columns, which the period-2 DFT at (0, 1) and (1, 0) shows; the original
   * has no such pattern. */
  const gint64 h = 128, w = 128, sh = h / 2 + 1, sw = w / 2 + 1;
  g_autofree guint8 *small = photo_image (sh, sw, 99, FALSE);
  g_autofree guint8 *big = g_new (guint8, h * w * 3);
  for (gint64 y = 0; y < h; y++)
    for (gint64 x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        {
          gint64 y0 = y / 2, x0 = x / 2, y1 = y0 + (y & 1), x1 = x0 + (x & 1);
          int sum = small[(y0 * sw + x0) * 3 + c] + small[(y0 * sw + x1) * 3 + c] + small[(y1 * sw + x0) * 3 + c]
                    + small[(y1 * sw + x1) * 3 + c];
          big[(y * w + x) * 3 + c] = (guint8) ((sum + 2) / 4);
        }
  g_autofree guint8 *orig = photo_image (h, w, 99, FALSE);
  float f_big[DCR_FORENSIC_DIM], f_orig[DCR_FORENSIC_DIM];
  g_autofree float *acc = g_new (float, DCR_FORENSIC_ACC_SIZE);
  run_gpu (big, h, w, DCR_F32, 0, acc, f_big);
  run_gpu (orig, h, w, DCR_F32, 0, acc, f_orig);
  /* in units of the unscaled DFT magnitude (a fraction of the mean energy) */
  const float s = dcr_forensic_scales_v1.energy;
  for (int c = 0; c < 3; c++)
    {
      int i01 = energy_index (c, 2, 0, 1), i10 = energy_index (c, 2, 1, 0);
      g_assert_cmpfloat (f_big[i01] / s, >, 0.1f);
      g_assert_cmpfloat (f_big[i10] / s, >, 0.1f);
      g_assert_cmpfloat (f_orig[i01] / s, <, 0.05f);
      g_assert_cmpfloat (f_orig[i10] / s, <, 0.05f);
      /* period 3 sees nothing in either */
      g_assert_cmpfloat (f_big[energy_index (c, 3, 0, 1)] / s, <, 0.05f);
    }

  /* a flat image: no residual at all */
  g_autofree guint8 *flat = g_new (guint8, h * w * 3);
  memset (flat, 77, h * w * 3);
  float f_flat[DCR_FORENSIC_DIM];
  run_gpu (flat, h, w, DCR_F32, 1, acc, f_flat);
  for (int i = 0; i < DCR_FORENSIC_DIM; i++)
    {
      int k = i % DCR_FORENSIC_PER_CHANNEL;
      float want = k == 0 ? logf (1e-2f) * dcr_forensic_scales_v1.level : 0.0f;
      g_assert_cmpfloat_with_epsilon (f_flat[i], want, 1e-4);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
test_errors (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree guint8 *img = photo_image (35, 80, 1, FALSE);
  g_autoptr (DcrTensor) t = dcr_test_image_tensor (img, 35, 80);
  gint64 ashape[] = { DCR_FORENSIC_ACC_SIZE }, yshape[] = { 2, DCR_FORENSIC_DIM };
  g_autoptr (DcrTensor) acc = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 1, ashape, NULL);
  g_autoptr (DcrTensor) y = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, yshape, NULL);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_false (dcr_op_forensic (seq, t, acc, 0, y, 0, 0, &dcr_forensic_scales_v1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "too small"));
  g_clear_error (&err);

  g_autofree guint8 *img2 = photo_image (40, 40, 2, FALSE);
  g_autoptr (DcrTensor) t2 = dcr_test_image_tensor (img2, 40, 40);
  g_assert_false (dcr_op_forensic (seq, t2, acc, 1, y, 0, 0, &dcr_forensic_scales_v1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_forensic (seq, t2, acc, 0, y, 2, 0, &dcr_forensic_scales_v1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_forensic (seq, t2, acc, 0, y, 0, 1, &dcr_forensic_scales_v1, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  dcr_test_assert_no_validation_errors ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/op-forensic/gpu-vs-ref", test_gpu_vs_ref);
  g_test_add_func ("/op-forensic/batch", test_batch);
  g_test_add_func ("/op-forensic/matches-numpy", test_matches_numpy);
  g_test_add_func ("/op-forensic/upscale-trace", test_upscale_trace);
  g_test_add_func ("/op-forensic/errors", test_errors);
  int ret = g_test_run ();
  dcr_test_context_teardown ();
  return ret;
}
