/* test-cnn-train.c — the forensic CNN's trainer: recorded GPU steps against
 * a host reference (preprocessing, the layers, the mean, BCE with logits,
 * the backward pass through dcr_ref_conv2d_backward, AdamW), two updates so
 * the optimiser state counts; the crop labels and origins; learning a
 * synthetic task (fakes are ×2 nearest-neighbour upscales of noise); seeded
 * runs that repeat exactly; the JPEG round trip of a crop against a JPEG of
 * the whole image, and runs with it; bad data. */
#include "dcr-test-util.h"
#include "dcr-cnn-train.h"
#include "dcr-image.h"
#include "dcr-metrics.h"
#include "dcr-op-conv.h"
#include "dcr-op-grad.h"
#include "dcr-op-loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static DcrCnn *
make_cnn (guint n, const guint *channels, const guint *kernels, const guint *strides, guint32 seed)
{
  g_autoptr (GError) err = NULL;
  DcrCnn *c = dcr_cnn_new (n, channels, kernels, strides, &err);
  g_assert_no_error (err);
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  dcr_cnn_train_init (c, r);
  return c;
}

/* ---- one step against the reference ------------------------------------- */

typedef struct {
  float *w, *b, *mw, *vw, *mb, *vb;
} RefLayer;

/* One update of the reference: returns the loss before it. */
static double
ref_step (const DcrCnn *c, RefLayer *P, const guint8 *crops, const float *targets, guint B, guint crop,
          const DcrAdamWConfig *cfg, gint64 update)
{
  guint L = c->n_layers;
  gint64 side = crop - 4, hs[DCR_CNN_MAX_LAYERS + 1], ws[DCR_CNN_MAX_LAYERS + 1];
  hs[0] = ws[0] = side;
  g_autofree float *q = g_new (float, (gsize) B * side * side * 3);
  for (guint i = 0; i < B; i++)
    dcr_ref_cnn_prep (crops + (gsize) i * crop * crop * 3, crop * 3, crop, crop, q + (gsize) i * side * side * 3);
  float *act[DCR_CNN_MAX_LAYERS], *dact[DCR_CNN_MAX_LAYERS];
  for (guint l = 0; l < L; l++)
    {
      const DcrCnnLayer *ly = &c->layers[l];
      hs[l + 1] = (hs[l] - ly->kernel) / ly->stride + 1;
      ws[l + 1] = (ws[l] - ly->kernel) / ly->stride + 1;
      gsize n = (gsize) B * hs[l + 1] * ws[l + 1] * ly->cout;
      act[l] = g_new (float, n);
      dact[l] = g_new (float, n);
      DcrConv2dParams p = { .stride_h = (int) ly->stride, .stride_w = (int) ly->stride,
                            .act = l + 1 < L ? DCR_ACT_RELU : DCR_ACT_NONE };
      dcr_ref_conv2d (l ? act[l - 1] : q, B, hs[l], ws[l], ly->cin, P[l].w, ly->cout, (int) ly->kernel,
                      (int) ly->kernel, P[l].b, NULL, act[l], &p);
    }
  gint64 M = hs[L] * ws[L];
  g_autofree float *logit = g_new (float, B), *dlogit = g_new (float, B);
  for (guint i = 0; i < B; i++)
    {
      double s = 0;
      for (gint64 j = 0; j < M; j++)
        s += act[L - 1][i * M + j];
      logit[i] = (float) (s / M);
    }
  double loss = dcr_ref_bce_with_logits (logit, targets, B, 1.0f, dlogit);
  for (guint i = 0; i < B; i++)
    for (gint64 j = 0; j < M; j++)
      dact[L - 1][i * M + j] = (float) (dlogit[i] / (double) M);
  float hyper[DCR_OPTIM_HYPER_LEN];
  dcr_adamw_hyper (cfg, update, hyper);
  for (guint l = L; l-- > 0;)
    {
      const DcrCnnLayer *ly = &c->layers[l];
      gsize n = (gsize) B * hs[l + 1] * ws[l + 1] * ly->cout, nw = (gsize) ly->cout * ly->kernel * ly->kernel * ly->cin;
      if (l + 1 < L)
        for (gsize i = 0; i < n; i++)
          dact[l][i] = act[l][i] > 0 ? dact[l][i] : 0.0f;
      g_autofree float *gw = g_new (float, nw), *gb = g_new (float, ly->cout);
      DcrConv2dParams p = { .stride_h = (int) ly->stride, .stride_w = (int) ly->stride };
      dcr_ref_conv2d_backward (l ? act[l - 1] : q, B, hs[l], ws[l], ly->cin, P[l].w, ly->cout, (int) ly->kernel,
                               (int) ly->kernel, dact[l], l ? dact[l - 1] : NULL, gw, gb, &p, DCR_GRAD_OVERWRITE);
      dcr_ref_adamw (hyper, P[l].w, gw, P[l].mw, P[l].vw, NULL, (gint64) nw);
      dcr_ref_adamw (hyper, P[l].b, gb, P[l].mb, P[l].vb, NULL, ly->cout);
    }
  for (guint l = 0; l < L; l++)
    {
      g_free (act[l]);
      g_free (dact[l]);
    }
  return loss;
}

static void
check_step (guint n, const guint *channels, const guint *kernels, const guint *strides, guint B, guint crop)
{
  g_autoptr (DcrCnn) c = make_cnn (n, channels, kernels, strides, 7);
  DcrAdamWConfig cfg = { 1e-2, 0.9, 0.999, 1e-8, 1e-2 };
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrCnnTrainStep) step = dcr_cnn_train_step_new (dcr_test_context (), c, B, crop, &cfg, &err);
  g_assert_no_error (err);
  RefLayer P[DCR_CNN_MAX_LAYERS];
  for (guint l = 0; l < n; l++)
    {
      const DcrCnnLayer *ly = &c->layers[l];
      gsize nw = (gsize) ly->cout * ly->kernel * ly->kernel * ly->cin;
      P[l] = (RefLayer) { g_memdup2 (ly->weight, nw * sizeof (float)), g_memdup2 (ly->bias, ly->cout * sizeof (float)),
                          g_new0 (float, nw), g_new0 (float, nw), g_new0 (float, ly->cout),
                          g_new0 (float, ly->cout) };
    }
  g_autofree guint8 *crops = g_new (guint8, (gsize) B * crop * crop * 3);
  g_autofree float *targets = g_new (float, B);
  for (gint64 u = 1; u <= 2; u++)
    {
      g_autoptr (GRand) r = g_rand_new_with_seed (40 + (guint32) u);
      for (gsize i = 0; i < (gsize) B * crop * crop * 3; i++)
        crops[i] = (guint8) g_rand_int_range (r, 0, 256);
      for (guint i = 0; i < B; i++)
        targets[i] = (float) (i % 2);
      double want = ref_step (c, P, crops, targets, B, crop, &cfg, u), got;
      g_assert_true (dcr_cnn_train_step_set_batch (step, crops, targets, &err));
      g_assert_true (dcr_cnn_train_step_run (step, u, &got, &err));
      g_assert_no_error (err);
      g_test_message ("update %" G_GINT64_FORMAT ": loss %.6f (reference %.6f)", u, got, want);
      g_assert_cmpfloat (fabs (got - want), <=, 1e-4 + 1e-4 * fabs (want));
      g_autoptr (DcrCnn) now = make_cnn (n, channels, kernels, strides, 7);
      g_assert_true (dcr_cnn_train_step_weights (step, now, &err));
      for (guint l = 0; l < n; l++)
        {
          const DcrCnnLayer *ly = &c->layers[l];
          gsize nw = (gsize) ly->cout * ly->kernel * ly->kernel * ly->cin;
          g_autofree char *what = g_strdup_printf ("layer %u weights after update %" G_GINT64_FORMAT, l, u);
          dcr_test_assert_close (what, now->layers[l].weight, P[l].w, nw, 2e-5, 1e-3);
          dcr_test_assert_close ("biases", now->layers[l].bias, P[l].b, ly->cout, 2e-5, 1e-3);
        }
    }
  for (guint l = 0; l < n; l++)
    {
      g_free (P[l].w);
      g_free (P[l].b);
      g_free (P[l].mw);
      g_free (P[l].vw);
      g_free (P[l].mb);
      g_free (P[l].vb);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
test_step (void)
{
  /* a strided 3 × 3 layer then the 1 × 1 logit layer */
  check_step (2, (const guint[]) { 3, 4, 1 }, (const guint[]) { 3, 1 }, (const guint[]) { 2, 1 }, 3, 16);
  /* the default's shape, smaller: two strided layers, a stride-1 one, channels not multiples of 4 */
  check_step (4, (const guint[]) { 3, 5, 6, 3, 1 }, (const guint[]) { 3, 3, 3, 1 }, (const guint[]) { 2, 2, 1, 1 },
              2, 32);
  /* one layer only (the logit layer is the first) */
  check_step (1, (const guint[]) { 3, 1 }, (const guint[]) { 5 }, (const guint[]) { 3 }, 4, 20);
}

/* ---- crops ---------------------------------------------------------------- */

static void
test_crops (void)
{
  guint8 px[3] = { 0 };
  DcrCnnTrainImage real = { px, 100, 90, FALSE, { 0 } }, whole = { px, 100, 90, TRUE, { 0 } };
  DcrCnnTrainImage part = { px, 100, 90, TRUE, { 40, 20, 30, 40 } };
  g_assert_cmpfloat (dcr_cnn_crop_label (&real, 0, 0, 16), ==, 0);
  g_assert_cmpfloat (dcr_cnn_crop_label (&whole, 0, 0, 16), ==, 1);
  /* centre (top + 8, left + 8) inside [40, 70) × [20, 60) */
  g_assert_cmpfloat (dcr_cnn_crop_label (&part, 16, 32, 16), ==, 1);  /* centre x 40, y 24 */
  g_assert_cmpfloat (dcr_cnn_crop_label (&part, 16, 24, 16), ==, 0);  /* x 32 */
  g_assert_cmpfloat (dcr_cnn_crop_label (&part, 8, 32, 16), ==, 0);   /* y 16 */
  g_assert_cmpfloat (dcr_cnn_crop_label (&part, 48, 56, 16), ==, 1);  /* x 64, y 56 */
  g_assert_cmpfloat (dcr_cnn_crop_label (&part, 44, 54, 16), ==, 1);  /* x 62, y 52 */
  g_assert_cmpfloat (dcr_cnn_crop_label (&part, 52, 54, 16), ==, 0);  /* y 60: out */
  g_assert_cmpfloat (dcr_cnn_crop_label (&part, 16, 62, 16), ==, 0);  /* x 70: out */
  g_autoptr (GRand) r = g_rand_new_with_seed (3);
  gboolean seen_top = FALSE, seen_left = FALSE;
  for (int i = 0; i < 500; i++)
    {
      gint64 t, l;
      dcr_cnn_draw_crop (&part, 16, r, &t, &l);
      g_assert_cmpint (t % 8, ==, 0);
      g_assert_cmpint (l % 8, ==, 0);
      g_assert_cmpint (t, >=, 0);
      g_assert_cmpint (l, >=, 0);
      g_assert_cmpint (t + 16, <=, 90);
      g_assert_cmpint (l + 16, <=, 100);
      seen_top |= t == 72;
      seen_left |= l == 80;
    }
  g_assert_true (seen_top && seen_left); /* the last aligned origins are reachable */
}

/* ---- learning --------------------------------------------------------------- */

#define SIDE 48

/* reals: uniform noise; fakes: ×2 nearest-neighbour upscales of noise */
static guint8 *
synth (guint32 seed, gboolean fake)
{
  guint8 *px = g_new (guint8, SIDE * SIDE * 3);
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  for (int y = 0; y < SIDE; y++)
    for (int x = 0; x < SIDE; x++)
      for (int c = 0; c < 3; c++)
        {
          guint8 v = (guint8) g_rand_int_range (r, 0, 256);
          if (fake && (x % 2 || y % 2))
            v = px[(((y - y % 2) * SIDE) + (x - x % 2)) * 3 + c];
          px[(y * SIDE + x) * 3 + c] = v;
        }
  return px;
}

static DcrCnn *
train_synth_jpeg (guint64 seed, double jpeg_p, double *final_loss, guint8 ***pixels_out, guint *n_out)
{
  enum { N = 24 };
  guint8 **px = g_new (guint8 *, N);
  DcrCnnTrainImage im[N];
  for (guint i = 0; i < N; i++)
    {
      px[i] = synth (100 + i, i % 2);
      im[i] = (DcrCnnTrainImage) { px[i], SIDE, SIDE, i % 2, { 0 } };
    }
  g_autoptr (DcrCnn) arch = make_cnn (2, (const guint[]) { 3, 4, 1 }, (const guint[]) { 3, 1 },
                                      (const guint[]) { 1, 1 }, 1);
  DcrCnnTrainOptions o;
  dcr_cnn_train_options_init (&o);
  o.epochs = 30;
  o.batch = 16;
  o.crop = 24;
  o.crops_per_image = 4;
  o.lr = 1e-2;
  o.seed = seed;
  o.jpeg_p = jpeg_p;
  o.jpeg_qmin = 50;
  o.jpeg_qmax = 90;
  g_autoptr (GError) err = NULL;
  DcrCnn *c = dcr_cnn_train (dcr_test_context (), arch, im, N, &o, NULL, NULL, final_loss, &err);
  g_assert_no_error (err);
  *pixels_out = px;
  *n_out = N;
  return c;
}

static DcrCnn *
train_synth (guint64 seed, double *final_loss, guint8 ***pixels_out, guint *n_out)
{
  return train_synth_jpeg (seed, 0, final_loss, pixels_out, n_out);
}

static void
free_pixels (guint8 **px, guint n)
{
  for (guint i = 0; i < n; i++)
    g_free (px[i]);
  g_free (px);
}

static void
test_learn (void)
{
  double loss;
  guint8 **px;
  guint n;
  g_autoptr (DcrCnn) c = train_synth (1, &loss, &px, &n);
  free_pixels (px, n);
  g_test_message ("final loss %.4f", loss);
  g_assert_cmpfloat (loss, <, 0.3);
  /* new images: the mean column separates them */
  float s[20];
  gint32 y[20];
  for (guint i = 0; i < 20; i++)
    {
      g_autofree guint8 *p = synth (5000 + i, i % 2);
      float out[DCR_CNN_DIM];
      g_assert_true (dcr_ref_cnn (c, p, SIDE * 3, SIDE, SIDE, NULL, out));
      s[i] = out[0];
      y[i] = (gint32) (i % 2);
    }
  double auc = dcr_metrics_roc_auc (s, y, 20);
  g_test_message ("AUC on new images %.3f", auc);
  g_assert_cmpfloat (auc, >=, 0.95);
  dcr_test_assert_no_validation_errors ();
}

static void
test_seeded (void)
{
  double l1, l2, l3;
  guint8 **p1, **p2, **p3;
  guint n;
  g_autoptr (DcrCnn) a = train_synth (5, &l1, &p1, &n);
  g_autoptr (DcrCnn) b = train_synth (5, &l2, &p2, &n);
  g_autoptr (DcrCnn) d = train_synth (6, &l3, &p3, &n);
  free_pixels (p1, n);
  free_pixels (p2, n);
  free_pixels (p3, n);
  g_assert_cmpfloat (l1, ==, l2);
  gsize nw = (gsize) a->layers[0].cout * 9 * 3;
  g_assert_cmpmem (a->layers[0].weight, nw * sizeof (float), b->layers[0].weight, nw * sizeof (float));
  g_assert_true (memcmp (a->layers[0].weight, d->layers[0].weight, nw * sizeof (float)) != 0);
}

/* A smooth picture with texture, in colour or grey: JPEG changes it
 * visibly at quality 60. */
static DcrImage *
textured (guint w, guint h, gboolean grey)
{
  DcrImage *img = dcr_image_new (w, h);
  g_autoptr (GRand) r = g_rand_new_with_seed (11);
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      for (guint c = 0; c < 3; c++)
        img->pixels[((gsize) y * w + x) * 3 + c] =
          grey && c ? img->pixels[((gsize) y * w + x) * 3]
                    : (guint8) CLAMP (128 + 60 * sin (x * 0.21 + c) * cos (y * 0.13 - c) + g_rand_int_range (r, -20, 21),
                                      0, 255);
  return img;
}

/* max |a − b| over the crop × crop pixels, leaving out `margin` pixels at each side */
static int
max_diff (const guint8 *a, gsize a_stride, const guint8 *b, gsize b_stride, guint crop, guint margin)
{
  int m = 0;
  for (guint y = margin; y < crop - margin; y++)
    for (guint x = margin * 3; x < (crop - margin) * 3; x++)
      m = MAX (m, abs ((int) a[y * a_stride + x] - (int) b[y * b_stride + x]));
  return m;
}

static void
test_jpeg_crop (void)
{
  enum { W = 112, H = 96, CROP = 48, Q = 60 };
  g_autoptr (DcrImage) img = textured (W, H, FALSE);
  g_autoptr (GError) err = NULL;
  g_autoptr (GBytes) jpg = dcr_image_encode_jpeg (img, Q, &err);
  g_assert_no_error (err);
  g_autoptr (DcrImage) whole = dcr_image_load_from_bytes (jpg, "whole", NULL, &err);
  g_assert_no_error (err);
  DcrCnnTrainImage im = { img->pixels, W, H, FALSE, { 0 } };
  guint8 crop[CROP * CROP * 3];
  /* origins on the 16-pixel MCU grid and between (8 mod 16): the region
   * starts at the MCU corner before the crop, so the crop's pixels are the
   * whole image's JPEG's pixels, but for the region's far edges (chroma
   * upsampling meets the edge there) */
  const gint64 origins[][2] = { { 16, 32 }, { 8, 24 }, { 40, 56 }, { 0, 0 } };
  for (gsize i = 0; i < G_N_ELEMENTS (origins); i++)
    {
      gint64 top = origins[i][0], left = origins[i][1];
      g_assert_true (dcr_cnn_cut_jpeg (&im, top, left, CROP, Q, crop, &err));
      g_assert_no_error (err);
      const guint8 *w0 = whole->pixels + ((gsize) top * W + left) * 3, *o0 = img->pixels + ((gsize) top * W + left) * 3;
      int d_whole = max_diff (crop, CROP * 3, w0, (gsize) W * 3, CROP, 2);
      int d_orig = max_diff (crop, CROP * 3, o0, (gsize) W * 3, CROP, 2);
      g_test_message ("origin (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "): max |crop − whole JPEG| %d inside, "
                      "|crop − original| %d", top, left, d_whole, d_orig);
      g_assert_cmpint (d_whole, ==, 0);
      g_assert_cmpint (d_orig, >, 8);
    }
  /* the check has teeth: a round trip whose grid is 4 pixels off the
   * image's differs from the whole image's JPEG everywhere */
  g_autoptr (DcrImage) off = dcr_image_new (CROP, CROP);
  for (guint y = 0; y < CROP; y++)
    memcpy (off->pixels + (gsize) y * CROP * 3, img->pixels + ((gsize) (20 + y) * W + 36) * 3, CROP * 3);
  g_autoptr (GBytes) offj = dcr_image_encode_jpeg (off, Q, &err);
  g_autoptr (DcrImage) offd = dcr_image_load_from_bytes (offj, "off", NULL, &err);
  g_assert_no_error (err);
  int d_off = max_diff (offd->pixels, CROP * 3, whole->pixels + ((gsize) 20 * W + 36) * 3, (gsize) W * 3, CROP, 2);
  g_test_message ("a grid 4 pixels off: max |crop − whole JPEG| %d", d_off);
  g_assert_cmpint (d_off, >, 8);
  /* the quality is the one asked for: a higher one comes closer to the
   * original (grey, so that chroma subsampling's loss does not hide it) */
  g_autoptr (DcrImage) grey = textured (W, H, TRUE);
  DcrCnnTrainImage gim = { grey->pixels, W, H, FALSE, { 0 } };
  guint8 hi[CROP * CROP * 3];
  g_assert_true (dcr_cnn_cut_jpeg (&gim, 16, 32, CROP, 95, hi, &err));
  const guint8 *o0 = grey->pixels + ((gsize) 16 * W + 32) * 3;
  g_assert_true (dcr_cnn_cut_jpeg (&gim, 16, 32, CROP, Q, crop, &err));
  double e_hi = 0, e_lo = 0;
  for (guint y = 0; y < CROP; y++)
    for (guint x = 0; x < CROP * 3; x++)
      {
        e_hi += fabs ((double) hi[y * CROP * 3 + x] - o0[(gsize) y * W * 3 + x]);
        e_lo += fabs ((double) crop[y * CROP * 3 + x] - o0[(gsize) y * W * 3 + x]);
      }
  g_test_message ("mean |error| at q95 %.2f, at q%d %.2f", e_hi / (CROP * CROP * 3), Q, e_lo / (CROP * CROP * 3));
  g_assert_cmpfloat (e_hi, <, 0.7 * e_lo);
}

static void
test_jpeg_runs (void)
{
  double l1, l2, l0;
  guint8 **p1, **p2, **p0;
  guint n;
  g_autoptr (DcrCnn) a = train_synth_jpeg (5, 0.5, &l1, &p1, &n);
  g_autoptr (DcrCnn) b = train_synth_jpeg (5, 0.5, &l2, &p2, &n);
  g_autoptr (DcrCnn) z = train_synth_jpeg (5, 0, &l0, &p0, &n);
  free_pixels (p1, n);
  free_pixels (p2, n);
  free_pixels (p0, n);
  g_test_message ("final loss with JPEG crops %.4f, without %.4f", l1, l0);
  /* a run repeats exactly; the round trips change what the network saw */
  g_assert_cmpfloat (l1, ==, l2);
  gsize nw = (gsize) a->layers[0].cout * 9 * 3;
  g_assert_cmpmem (a->layers[0].weight, nw * sizeof (float), b->layers[0].weight, nw * sizeof (float));
  g_assert_true (memcmp (a->layers[0].weight, z->layers[0].weight, nw * sizeof (float)) != 0);
  g_assert_true (isfinite (l1));
  /* settings out of range are refused */
  g_autofree guint8 *px = synth (1, FALSE);
  g_autofree guint8 *pf = synth (2, TRUE);
  DcrCnnTrainImage im[4];
  for (int i = 0; i < 4; i++)
    im[i] = (DcrCnnTrainImage) { i % 2 ? pf : px, SIDE, SIDE, i % 2, { 0 } };
  g_autoptr (DcrCnn) arch = make_cnn (2, (const guint[]) { 3, 4, 1 }, (const guint[]) { 3, 1 },
                                      (const guint[]) { 1, 1 }, 1);
  const struct { double p; int lo, hi; } bad[] = { { 1.5, 60, 95 }, { -0.1, 60, 95 }, { 0.5, 90, 60 },
                                                   { 0.5, 0, 95 }, { 0.5, 60, 101 }, { NAN, 60, 95 } };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      DcrCnnTrainOptions o;
      dcr_cnn_train_options_init (&o);
      o.epochs = 1;
      o.batch = 4;
      o.crop = 16;
      o.jpeg_p = bad[i].p;
      o.jpeg_qmin = bad[i].lo;
      o.jpeg_qmax = bad[i].hi;
      g_autoptr (GError) err = NULL;
      g_assert_null (dcr_cnn_train (dcr_test_context (), arch, im, 4, &o, NULL, NULL, NULL, &err));
      g_assert_error (err, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA);
      g_test_message ("%s", err->message);
    }
}

static void
test_bad_data (void)
{
  g_autofree guint8 *px = synth (1, FALSE);
  DcrCnnTrainImage im[4];
  for (int i = 0; i < 4; i++)
    im[i] = (DcrCnnTrainImage) { px, SIDE, SIDE, FALSE, { 0 } };
  g_autoptr (DcrCnn) arch = make_cnn (2, (const guint[]) { 3, 4, 1 }, (const guint[]) { 3, 1 },
                                      (const guint[]) { 1, 1 }, 1);
  DcrCnnTrainOptions o;
  dcr_cnn_train_options_init (&o);
  o.epochs = 1;
  o.batch = 4;
  o.crop = 16;
  g_autoptr (GError) err = NULL;
  /* one class only */
  g_assert_null (dcr_cnn_train (dcr_test_context (), arch, im, 4, &o, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA);
  g_test_message ("%s", err->message);
  g_clear_error (&err);
  im[1].fake = TRUE;
  /* crops larger than the images */
  o.crop = 64;
  g_assert_null (dcr_cnn_train (dcr_test_context (), arch, im, 4, &o, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA);
  g_test_message ("%s", err->message);
  g_clear_error (&err);
  /* crops too small for the network (3 × 3 after the 5 × 5 box needs 7) */
  o.crop = 6;
  g_assert_null (dcr_cnn_train (dcr_test_context (), arch, im, 4, &o, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA);
  g_clear_error (&err);
  /* too few crops for one batch */
  o.crop = 16;
  o.batch = 64;
  g_assert_null (dcr_cnn_train (dcr_test_context (), arch, im, 4, &o, NULL, NULL, NULL, &err));
  g_assert_error (err, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA);
  g_clear_error (&err);
  /* a label that is neither 0 nor 1 */
  DcrAdamWConfig cfg = { 1e-3, 0.9, 0.999, 1e-8, 0 };
  g_autoptr (DcrCnnTrainStep) step = dcr_cnn_train_step_new (dcr_test_context (), arch, 2, 16, &cfg, &err);
  g_assert_no_error (err);
  g_autofree guint8 *crops = g_new0 (guint8, 2 * 16 * 16 * 3);
  g_assert_false (dcr_cnn_train_step_set_batch (step, crops, (const float[]) { 0.0f, 0.5f }, &err));
  g_assert_error (err, DCR_CNN_TRAIN_ERROR, DCR_CNN_TRAIN_ERROR_DATA);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cnn-train/step", test_step);
  g_test_add_func ("/cnn-train/crops", test_crops);
  g_test_add_func ("/cnn-train/learn", test_learn);
  g_test_add_func ("/cnn-train/seeded", test_seeded);
  g_test_add_func ("/cnn-train/jpeg-crop", test_jpeg_crop);
  g_test_add_func ("/cnn-train/jpeg-runs", test_jpeg_runs);
  g_test_add_func ("/cnn-train/bad-data", test_bad_data);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
