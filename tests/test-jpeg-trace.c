/* test-jpeg-trace.c — the search for an earlier JPEG's 8 × 8 grid in
 * decoded pixels: found after JPEG at the qualities people use, at the
 * right origin after a crop, and not found in pixels that never were a
 * JPEG, in integer upscales, in content on an 8-pixel grid, in flat images
 * and in images too small. */
#include "dcr-jpeg-trace.h"
#include "dcr-test-files.h"

#include <math.h>

/* A deterministic photo-like image: gradients, texture at a few scales,
 * edges and noise, so that every DCT coefficient varies from block to
 * block as in a photograph. */
static DcrImage *
synthetic_photo (guint w, guint h, guint32 seed)
{
  DcrImage *img = dcr_image_new (w, h);
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  double fx[3], fy[3], ph[3];
  for (guint i = 0; i < 3; i++)
    {
      fx[i] = g_rand_double_range (rng, 0.02, 0.4);
      fy[i] = g_rand_double_range (rng, 0.02, 0.4);
      ph[i] = g_rand_double_range (rng, 0, 6.28);
    }
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      for (guint c = 0; c < 3; c++)
        {
          double v = 60 + 80.0 * x / w + 40.0 * y / h + 30 * c;
          for (guint i = 0; i < 3; i++)
            v += 18 * sin (fx[i] * x * (1 + 0.1 * c) + fy[i] * y + ph[i]);
          v += (x / 37 + y / 29) % 2 ? 25 : 0; /* edges */
          v += g_rand_double_range (rng, -9, 9);
          img->pixels[((gsize) y * w + x) * 3 + c] = (guint8) CLAMP (lround (v), 0, 255);
        }
  return img;
}

static DcrImage *
through_jpeg (const DcrImage *img, int quality)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GBytes) bytes = dcr_image_encode_jpeg (img, quality, &err);
  g_assert_no_error (err);
  DcrImage *out = dcr_image_load_from_bytes (bytes, "test.jpg", NULL, &err);
  g_assert_no_error (err);
  return out;
}

/* The pixels from (dx, dy) on, as a screenshot or a crop would keep them. */
static DcrImage *
crop (const DcrImage *img, guint dx, guint dy)
{
  DcrImage *out = dcr_image_new (img->width - dx, img->height - dy);
  for (guint y = 0; y < out->height; y++)
    memcpy (out->pixels + (gsize) y * out->width * 3, img->pixels + ((gsize) (y + dy) * img->width + dx) * 3,
            (gsize) out->width * 3);
  return out;
}

/* ×2 by pixel repetition (nearest) or by averaging neighbours (bilinear). */
static DcrImage *
upscale2 (const DcrImage *img, gboolean bilinear)
{
  DcrImage *out = dcr_image_new (img->width * 2, img->height * 2);
  for (guint y = 0; y < out->height; y++)
    for (guint x = 0; x < out->width; x++)
      for (guint c = 0; c < 3; c++)
        {
          guint x0 = x / 2, y0 = y / 2;
          guint x1 = bilinear && x % 2 ? MIN (x0 + 1, img->width - 1) : x0;
          guint y1 = bilinear && y % 2 ? MIN (y0 + 1, img->height - 1) : y0;
#define P(xx, yy) img->pixels[((gsize) (yy) * img->width + (xx)) * 3 + c]
          out->pixels[((gsize) y * out->width + x) * 3 + c] =
              (guint8) ((P (x0, y0) + P (x1, y0) + P (x0, y1) + P (x1, y1) + 2) / 4);
#undef P
        }
  return out;
}

static void
test_never_jpeg (void)
{
  for (guint32 seed = 1; seed <= 4; seed++)
    {
      g_autoptr (DcrImage) img = synthetic_photo (192, 160, seed);
      DcrJpegTrace t;
      dcr_jpeg_trace_find (img, &t);
      g_assert_false (t.found);
      g_assert_cmpuint (t.blocks, ==, DCR_JPEG_TRACE_MAX_BLOCKS);
      g_assert_cmpfloat (t.contrast, <, 0.05);
      g_assert_cmpfloat (t.contrast, >=, 0);
    }
}

static void
test_after_jpeg (void)
{
  const int qualities[] = { 50, 75, 85, 90, 95 };
  for (guint i = 0; i < G_N_ELEMENTS (qualities); i++)
    {
      g_autoptr (DcrImage) img = synthetic_photo (192, 160, 10 + i);
      g_autoptr (DcrImage) j = through_jpeg (img, qualities[i]);
      DcrJpegTrace t;
      dcr_jpeg_trace_find (j, &t);
      if (g_test_verbose ())
        g_test_message ("q%d: contrast %.3f score %.3f", qualities[i], t.contrast, t.score);
      g_assert_true (t.found);
      g_assert_cmpfloat (t.contrast, >=, 0.2);
      g_assert_cmpuint (t.origin_x, ==, 0);
      g_assert_cmpuint (t.origin_y, ==, 0);
    }
}

static void
test_crop_origin (void)
{
  g_autoptr (DcrImage) img = synthetic_photo (200, 176, 21);
  g_autoptr (DcrImage) j = through_jpeg (img, 85);
  const guint shifts[][2] = { { 3, 5 }, { 8, 1 }, { 7, 0 }, { 0, 6 } };
  for (guint i = 0; i < G_N_ELEMENTS (shifts); i++)
    {
      g_autoptr (DcrImage) c = crop (j, shifts[i][0], shifts[i][1]);
      DcrJpegTrace t;
      dcr_jpeg_trace_find (c, &t);
      g_assert_true (t.found);
      /* the first whole block of the old grid starts where the cut left it */
      g_assert_cmpuint (t.origin_x, ==, (8 - shifts[i][0] % 8) % 8);
      g_assert_cmpuint (t.origin_y, ==, (8 - shifts[i][1] % 8) % 8);
    }
}

static void
test_upscales (void)
{
  /* an integer upscale repeats every 2 pixels: no single origin stands out */
  g_autoptr (DcrImage) img = synthetic_photo (112, 96, 31);
  for (int bilinear = 0; bilinear <= 1; bilinear++)
    {
      g_autoptr (DcrImage) up = upscale2 (img, bilinear);
      DcrJpegTrace t;
      dcr_jpeg_trace_find (up, &t);
      g_assert_false (t.found);
    }
}

static void
test_eight_pixel_pattern (void)
{
  /* the test pattern (dcr-test-files.c): 8-pixel squares and ramps,
   * identical blocks at every origin; a lattice everywhere, not one grid */
  for (guint seed = 0; seed < 8; seed++)
    {
      g_autoptr (DcrImage) img = dcr_test_pattern_image (60 + seed, 48 + 2 * seed, seed);
      DcrJpegTrace t;
      dcr_jpeg_trace_find (img, &t);
      g_assert_false (t.found);
      g_assert_cmpfloat (t.score, >, 0.5);
    }
}

static void
test_flat_and_small (void)
{
  g_autoptr (DcrImage) flat = dcr_image_new (64, 64);
  memset (flat->pixels, 128, 64 * 64 * 3);
  DcrJpegTrace t;
  dcr_jpeg_trace_find (flat, &t);
  g_assert_false (t.found);
  g_assert_cmpfloat (t.contrast, ==, 0);
  g_assert_cmpuint (t.blocks, ==, 49);

  /* 4 × 4 blocks at every origin: the fewest that are judged */
  g_autoptr (DcrImage) img = synthetic_photo (40, 40, 41);
  g_autoptr (DcrImage) j = through_jpeg (img, 75);
  dcr_jpeg_trace_find (j, &t);
  g_assert_cmpuint (t.blocks, ==, DCR_JPEG_TRACE_MIN_BLOCKS);
  g_assert_true (t.found);
  g_autoptr (DcrImage) small = crop (j, 0, 1); /* 40 × 39: 4 × 3 blocks */
  t.found = TRUE;
  dcr_jpeg_trace_find (small, &t);
  g_assert_false (t.found);
  g_assert_cmpuint (t.blocks, ==, 0);
  g_autoptr (DcrImage) tiny = dcr_image_new (8, 300);
  dcr_jpeg_trace_find (tiny, &t);
  g_assert_cmpuint (t.blocks, ==, 0);
}

static void
test_large_and_deterministic (void)
{
  /* blocks are sampled: a large image costs the same, and gives the same
   * answer every time */
  g_autoptr (DcrImage) img = synthetic_photo (1030, 770, 51);
  g_autoptr (DcrImage) j = through_jpeg (img, 90);
  g_autoptr (DcrImage) c = crop (j, 5, 2);
  DcrJpegTrace a, b;
  dcr_jpeg_trace_find (c, &a);
  dcr_jpeg_trace_find (c, &b);
  g_assert_cmpmem (&a, sizeof a, &b, sizeof b);
  g_assert_true (a.found);
  g_assert_cmpuint (a.origin_x, ==, 3);
  g_assert_cmpuint (a.origin_y, ==, 6);
  g_assert_cmpuint (a.blocks, ==, DCR_JPEG_TRACE_MAX_BLOCKS);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/jpeg-trace/never-jpeg", test_never_jpeg);
  g_test_add_func ("/jpeg-trace/after-jpeg", test_after_jpeg);
  g_test_add_func ("/jpeg-trace/crop-origin", test_crop_origin);
  g_test_add_func ("/jpeg-trace/upscales", test_upscales);
  g_test_add_func ("/jpeg-trace/eight-pixel-pattern", test_eight_pixel_pattern);
  g_test_add_func ("/jpeg-trace/flat-and-small", test_flat_and_small);
  g_test_add_func ("/jpeg-trace/large-and-deterministic", test_large_and_deterministic);
  return g_test_run ();
}
