/* test-op-preprocess.c — dcr_op_preprocess (u8 RGB → resize → crop →
 * normalise → NHWC slice) against dcr_ref_preprocess, and both against
 * torchvision's transforms (golden data from tests/golden/preprocess-torch.py);
 * batch slices, Keras' x/127.5 − 1, the torchvision geometry helper, errors. */
#include "dcr-test-util.h"
#include "dcr-op-preprocess.h"
#include "golden/preprocess-torch.h"

#include <math.h>
#include <string.h>

/* Outputs are normalised values of magnitude ≲ 3. f32: torch resamples in
 * float32 and normalises each weight first, the reference in double, the GPU
 * in float32 — differences stay near 1e-5. f16 storage adds the output
 * rounding (half an ulp is 1e-3 at 2–4). */
#define F32_ATOL 1e-4
#define F16_ATOL 2e-3
#define F16_RTOL 1e-3

static DcrTensor *
output_tensor (DcrDtype dt, gint64 n, gint64 oh, gint64 ow, float fill)
{
  gint64 shape[] = { n, oh, ow, 3 };
  gint64 numel = n * oh * ow * 3;
  g_autofree float *f = g_new (float, numel);
  for (gint64 i = 0; i < numel; i++)
    f[i] = fill;
  return dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, dt, 4, shape, f);
}

static void
run (const DcrTensor *img, DcrTensor *y, const DcrPreprocessParams *p)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_preprocess (seq, img, y, p, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
}

static void
test_matches_torch (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (preprocess_torch_cases); i++)
    {
      const PreprocessTorchCase *g = &preprocess_torch_cases[i];
      g_autofree guint8 *img = g_new (guint8, g->h * g->w * 3);
      for (int y = 0; y < g->h; y++)
        for (int x = 0; x < g->w; x++)
          for (int c = 0; c < 3; c++)
            img[(y * g->w + x) * 3 + c] = preprocess_torch_pixel (y, x, c);
      DcrPreprocessParams p = {
        .resize_h = g->resize_h, .resize_w = g->resize_w, .crop_top = g->crop_top, .crop_left = g->crop_left,
        .filter = g->antialias ? DCR_RESIZE_ANTIALIAS : DCR_RESIZE_BILINEAR,
      };
      if (g->norm == 0)
        dcr_preprocess_set_imagenet (&p);
      else if (g->norm == 2)
        dcr_preprocess_set_keras_tf (&p);
      gint64 n = (gint64) g->oh * g->ow * 3;
      g_autofree float *ref = g_new (float, n);
      dcr_ref_preprocess (img, g->h, g->w, ref, g->oh, g->ow, &p);
      g_autofree char *what = g_strdup_printf ("reference vs torch: %s", g->what);
      dcr_test_assert_close (what, ref, g->out, n, F32_ATOL, 0);

      g_autoptr (DcrTensor) timg = dcr_test_image_tensor (img, g->h, g->w);
      g_autoptr (DcrTensor) ty = output_tensor (DCR_F32, 1, g->oh, g->ow, 0);
      run (timg, ty, &p);
      g_autofree float *got = dcr_test_download_floats (ty);
      g_free (what);
      what = g_strdup_printf ("GPU vs torch: %s", g->what);
      dcr_test_assert_close (what, got, g->out, n, F32_ATOL, 0);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
random_image (guint8 *img, gint64 n, guint32 seed)
{
  g_autofree float *f = g_new (float, n);
  dcr_test_fill (f, n, seed, 0, 256);
  for (gint64 i = 0; i < n; i++)
    img[i] = (guint8) MIN (f[i], 255.0f);
}

typedef struct {
  gint64 h, w, rh, rw, top, left, oh, ow;
  DcrResizeFilter filter;
} Geometry;

/* Each image goes into slice 1 of a 3-image batch; the other slices must keep
 * their sentinel. */
static void
test_gpu_vs_ref (void)
{
  const Geometry cases[] = {
    { 1, 1, 3, 3, 0, 0, 3, 3, DCR_RESIZE_ANTIALIAS },       /* one pixel upscaled */
    { 17, 3, 7, 7, 0, 0, 7, 7, DCR_RESIZE_ANTIALIAS },      /* down in H, up in W */
    { 64, 48, 9, 7, 2, 1, 5, 5, DCR_RESIZE_ANTIALIAS },     /* strong downscale + crop */
    { 64, 48, 9, 7, 2, 1, 5, 5, DCR_RESIZE_BILINEAR },
    { 7, 5, 0, 0, 1, 0, 5, 5, DCR_RESIZE_ANTIALIAS },       /* crop only */
    { 3, 17, 1, 1, 0, 0, 1, 1, DCR_RESIZE_ANTIALIAS },      /* everything into one pixel */
    /* scales ≤ 1.5: the walking kernel (runs of 16 rows, taps kept) */
    { 256, 256, 224, 224, 0, 0, 224, 224, DCR_RESIZE_ANTIALIAS }, /* the benchmark's 256² → 224 */
    { 41, 37, 33, 30, 1, 2, 31, 27, DCR_RESIZE_ANTIALIAS },    /* 1.24 / 1.23, crop, odd row stride */
    { 30, 45, 20, 30, 0, 0, 20, 30, DCR_RESIZE_ANTIALIAS },    /* exactly 1.5 */
    { 10, 13, 37, 29, 3, 1, 33, 27, DCR_RESIZE_ANTIALIAS },    /* upscale, crop */
  };
  const DcrDtype dts[] = { DCR_F32, DCR_F16 };
  for (guint d = 0; d < G_N_ELEMENTS (dts); d++)
    {
      if (dts[d] == DCR_F16 && !dcr_test_device_has_f16 ())
        continue;
      for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
        {
          const Geometry *c = &cases[i];
          g_autofree guint8 *img = g_new (guint8, c->h * c->w * 3);
          random_image (img, c->h * c->w * 3, i + 1);
          DcrPreprocessParams p = {
            .resize_h = c->rh, .resize_w = c->rw, .crop_top = c->top, .crop_left = c->left,
            .filter = c->filter, .batch_index = 1,
          };
          dcr_preprocess_set_imagenet (&p);
          g_autoptr (DcrTensor) timg = dcr_test_image_tensor (img, c->h, c->w);
          const float sentinel = -7.0f;
          g_autoptr (DcrTensor) ty = output_tensor (dts[d], 3, c->oh, c->ow, sentinel);
          run (timg, ty, &p);
          g_autofree float *got = dcr_test_download_floats (ty);
          gint64 slice = c->oh * c->ow * 3;
          g_autofree float *want = g_new (float, 3 * slice);
          for (gint64 k = 0; k < 3 * slice; k++)
            want[k] = sentinel;
          dcr_ref_preprocess (img, c->h, c->w, want + slice, c->oh, c->ow, &p);
          g_autofree char *what = g_strdup_printf ("preprocess %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                                                   " -> %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " (%s, %s)",
                                                   c->w, c->h, c->ow, c->oh,
                                                   c->filter == DCR_RESIZE_ANTIALIAS ? "antialias" : "bilinear",
                                                   dcr_dtype_name (dts[d]));
          if (dts[d] == DCR_F16)
            dcr_test_assert_close (what, got, want, 3 * slice, F16_ATOL, F16_RTOL);
          else
            dcr_test_assert_close (what, got, want, 3 * slice, F32_ATOL, 0);
        }
    }
  dcr_test_assert_no_validation_errors ();
}

/* Three images of one size back to back ([3, H, W, 3], odd byte counts, so
 * the second and third start inside a 32-bit word) in one dispatch into
 * slices 1–3 of a 5-image batch, each as the reference of its own image,
 * both kernels; slices 0 and 4 keep their sentinel. */
static void
test_gpu_batch (void)
{
  const Geometry cases[] = {
    { 41, 37, 33, 30, 1, 2, 31, 27, DCR_RESIZE_ANTIALIAS }, /* the walking kernel */
    { 63, 47, 9, 7, 2, 1, 5, 5, DCR_RESIZE_ANTIALIAS },     /* one invocation a pixel */
    { 63, 47, 9, 7, 2, 1, 5, 5, DCR_RESIZE_BILINEAR },
  };
  const gint64 m = 3;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Geometry *c = &cases[i];
      gint64 bytes = c->h * c->w * 3, slice = c->oh * c->ow * 3;
      g_autofree guint8 *img = g_new (guint8, m * bytes);
      random_image (img, m * bytes, 40 + i);
      DcrPreprocessParams p = {
        .resize_h = c->rh, .resize_w = c->rw, .crop_top = c->top, .crop_left = c->left,
        .filter = c->filter, .batch_index = 1,
      };
      dcr_preprocess_set_imagenet (&p);
      g_autoptr (DcrTensor) timg = dcr_test_images_tensor (img, m, c->h, c->w);
      const float sentinel = -7.0f;
      g_autoptr (DcrTensor) ty = output_tensor (DCR_F32, m + 2, c->oh, c->ow, sentinel);
      run (timg, ty, &p);
      g_autofree float *got = dcr_test_download_floats (ty);
      g_autofree float *want = g_new (float, (m + 2) * slice);
      for (gint64 k = 0; k < (m + 2) * slice; k++)
        want[k] = sentinel;
      for (gint64 j = 0; j < m; j++)
        dcr_ref_preprocess (img + j * bytes, c->h, c->w, want + (1 + j) * slice, c->oh, c->ow, &p);
      g_autofree char *what = g_strdup_printf ("batch of %" G_GINT64_FORMAT " %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                                               " -> %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT, m, c->w, c->h, c->ow,
                                               c->oh);
      dcr_test_assert_close (what, got, want, (m + 2) * slice, F32_ATOL, 0);
      /* more images than the slices from batch_index */
      g_autoptr (GError) err = NULL;
      g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
      p.batch_index = 3;
      g_assert_false (dcr_op_preprocess (seq, timg, ty, &p, &err));
      g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
    }
  dcr_test_assert_no_validation_errors ();
}

/* Keras MobileNetV2 feeds x / 127.5 − 1: without a resize the op must give
 * that expression's float value (to the device's division accuracy). */
static void
test_keras_expression (void)
{
  enum { H = 5, W = 3 }; /* 45 bytes: the image buffer needs its padding */
  guint8 img[H * W * 3];
  for (int i = 0; i < H * W * 3; i++)
    img[i] = (guint8) (i * 97 % 256);
  img[0] = 0;
  img[1] = 255;
  img[2] = 127;
  img[3] = 128;
  DcrPreprocessParams p = { 0 };
  dcr_preprocess_set_keras_tf (&p);
  g_autoptr (DcrTensor) timg = dcr_test_image_tensor (img, H, W);
  g_autoptr (DcrTensor) ty = output_tensor (DCR_F32, 1, H, W, 0);
  run (timg, ty, &p);
  g_autofree float *got = dcr_test_download_floats (ty);
  float want[H * W * 3];
  for (int i = 0; i < H * W * 3; i++)
    want[i] = (float) img[i] / 127.5f - 1.0f;
  g_assert_cmpfloat (got[0], ==, -1.0f);
  g_assert_cmpfloat (got[1], ==, 1.0f);
  dcr_test_assert_close ("x/127.5 - 1", got, want, H * W * 3, 2.5e-7, 2.5e-7);
  dcr_ref_preprocess (img, H, W, got, H, W, &p);
  dcr_test_assert_close ("x/127.5 - 1 (reference)", got, want, H * W * 3, 0, 0);
  dcr_test_assert_no_validation_errors ();
}

static void
test_torchvision_geometry (void)
{
  DcrPreprocessParams p = { 0 };
  /* Resize(256) + CenterCrop(224) of a 1920x1080 frame: 455x256, window at
   * (116, 16) — round(231 / 2) = 116, Python rounds halves to even */
  dcr_preprocess_set_resize_short_crop (&p, 1080, 1920, 256, 224, 224);
  g_assert_cmpint (p.resize_h, ==, 256);
  g_assert_cmpint (p.resize_w, ==, 455);
  g_assert_cmpint (p.crop_top, ==, 16);
  g_assert_cmpint (p.crop_left, ==, 116);
  /* portrait: round(4.5) = 4 */
  dcr_preprocess_set_resize_short_crop (&p, 41, 30, 16, 7, 7);
  g_assert_cmpint (p.resize_h, ==, 21);
  g_assert_cmpint (p.resize_w, ==, 16);
  g_assert_cmpint (p.crop_top, ==, 7);
  g_assert_cmpint (p.crop_left, ==, 4);
  /* square stays square */
  dcr_preprocess_set_resize_short_crop (&p, 500, 500, 256, 224, 224);
  g_assert_cmpint (p.resize_h, ==, 256);
  g_assert_cmpint (p.resize_w, ==, 256);
  g_assert_cmpint (p.crop_top, ==, 16);
  g_assert_cmpint (p.crop_left, ==, 16);
}

static void
expect_error (const DcrTensor *img, DcrTensor *y, const DcrPreprocessParams *p, int code, const char *needle)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_false (dcr_op_preprocess (seq, img, y, p, &err));
  g_assert_error (err, DCR_OPS_ERROR, code);
  if (!strstr (err->message, needle))
    g_test_fail_printf ("error message \"%s\" does not mention \"%s\"", err->message, needle);
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

static void
test_errors (void)
{
  g_autoptr (GError) err = NULL;
  DcrContext *ctx = dcr_test_context ();
  gint64 odd[] = { 5, 3, 3 }, f32img[] = { 4, 4, 3 }, gray[] = { 4, 4, 1 };
  g_autoptr (DcrTensor) unpadded = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_U8, 3, odd, &err);
  g_autoptr (DcrTensor) fimg = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 3, f32img, &err);
  g_autoptr (DcrTensor) gimg = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_U8, 3, gray, &err);
  g_assert_no_error (err);
  g_autoptr (DcrTensor) img = dcr_image_tensor_new (ctx, DCR_POOL_ACTIVATIONS, 5, 3, &err);
  g_assert_no_error (err);
  g_autoptr (DcrTensor) y = output_tensor (DCR_F32, 2, 4, 4, 0);
  gint64 ys4[] = { 2, 4, 4, 4 };
  g_autoptr (DcrTensor) y4 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 4, ys4, &err);
  g_assert_no_error (err);
  DcrPreprocessParams p = { .resize_h = 8, .resize_w = 8 };
  expect_error (unpadded, y, &p, DCR_OPS_ERROR_SHAPE, "dcr_image_tensor_new");
  expect_error (fimg, y, &p, DCR_OPS_ERROR_DTYPE, "u8");
  expect_error (gimg, y, &p, DCR_OPS_ERROR_SHAPE, "[H, W, 3]");
  expect_error (img, y4, &p, DCR_OPS_ERROR_SHAPE, "[N, OH, OW, 3]");
  p.crop_left = 5;
  expect_error (img, y, &p, DCR_OPS_ERROR_SHAPE, "does not fit");
  p.crop_left = 0;
  p.batch_index = 2;
  expect_error (img, y, &p, DCR_OPS_ERROR_SHAPE, "batch index");
  g_assert_null (dcr_image_tensor_new (ctx, DCR_POOL_ACTIVATIONS, 0, 3, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  dcr_test_assert_no_validation_errors ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/op-preprocess/torchvision-geometry", test_torchvision_geometry);
  g_test_add_func ("/op-preprocess/matches-torch", test_matches_torch);
  g_test_add_func ("/op-preprocess/gpu-vs-ref", test_gpu_vs_ref);
  g_test_add_func ("/op-preprocess/gpu-batch", test_gpu_batch);
  g_test_add_func ("/op-preprocess/keras-expression", test_keras_expression);
  g_test_add_func ("/op-preprocess/errors", test_errors);
  int ret = g_test_run ();
  dcr_test_context_teardown ();
  return ret;
}
