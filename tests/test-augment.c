/* test-augment.c — training augmentations (engine/dcr-augment.h): the
 * specification parser, the deterministic per-file draw and its
 * frequencies, and each operation against an independent reference (crop
 * and flip by index arithmetic, the blur by a direct 2-D convolution in
 * double precision, JPEG by the encoder and decoder called directly). */
#include "dcr-augment.h"

#include <math.h>
#include <string.h>

static DcrImage *
noise_image (guint w, guint h, guint32 seed)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  DcrImage *img = dcr_image_new (w, h);
  for (gsize i = 0; i < (gsize) w * h * 3; i++)
    img->pixels[i] = (guint8) g_rand_int_range (r, 0, 256);
  return img;
}

/* field by field: the struct's padding bytes are not part of it */
static void
assert_config_equal (const DcrAugmentConfig *a, const DcrAugmentConfig *b)
{
  g_assert_cmpuint (a->views, ==, b->views);
  g_assert_cmpfloat (a->crop_p, ==, b->crop_p);
  g_assert_cmpfloat (a->crop_min, ==, b->crop_min);
  g_assert_cmpfloat (a->flip_p, ==, b->flip_p);
  g_assert_cmpfloat (a->blur_p, ==, b->blur_p);
  g_assert_cmpfloat (a->blur_sigma, ==, b->blur_sigma);
  g_assert_cmpfloat (a->jpeg_p, ==, b->jpeg_p);
  g_assert_cmpint (a->jpeg_qmin, ==, b->jpeg_qmin);
  g_assert_cmpint (a->jpeg_qmax, ==, b->jpeg_qmax);
  g_assert_cmpuint (a->seed, ==, b->seed);
}

static void
assert_params_equal (const DcrAugmentParams *a, const DcrAugmentParams *b)
{
  g_assert_cmpint (a->crop, ==, b->crop);
  g_assert_cmpuint (a->crop_q, ==, b->crop_q);
  g_assert_cmpuint (a->crop_x, ==, b->crop_x);
  g_assert_cmpuint (a->crop_y, ==, b->crop_y);
  g_assert_cmpint (a->flip, ==, b->flip);
  g_assert_cmpuint (a->blur_ms, ==, b->blur_ms);
  g_assert_cmpint (a->quality, ==, b->quality);
}

static void
test_parse (void)
{
  DcrAugmentConfig c, d;
  g_autoptr (GError) err = NULL;
  g_assert_true (dcr_augment_config_parse ("default", &c, &err));
  dcr_augment_config_default (&d);
  assert_config_equal (&c, &d);
  g_assert_cmpuint (c.views, ==, 2);

  g_assert_true (dcr_augment_config_parse ("none", &c, &err));
  g_assert_cmpuint (c.views, ==, 0);
  g_autofree char *none = dcr_augment_config_to_string (&c);
  g_assert_cmpstr (none, ==, "none");

  g_assert_true (dcr_augment_config_parse ("views=4, jpeg=0.7:50-90 ,blur=0:2,crop=1:0.5,flip=0,seed=9", &c, &err));
  g_assert_no_error (err);
  g_assert_cmpuint (c.views, ==, 4);
  g_assert_cmpfloat (c.jpeg_p, ==, 0.7);
  g_assert_cmpint (c.jpeg_qmin, ==, 50);
  g_assert_cmpint (c.jpeg_qmax, ==, 90);
  g_assert_cmpfloat (c.blur_p, ==, 0);
  g_assert_cmpfloat (c.blur_sigma, ==, 2);
  g_assert_cmpfloat (c.crop_p, ==, 1);
  g_assert_cmpfloat (c.crop_min, ==, 0.5);
  g_assert_cmpfloat (c.flip_p, ==, 0);
  g_assert_cmpuint (c.seed, ==, 9);
  /* the canonical spelling parses back to the same configuration */
  g_autofree char *s = dcr_augment_config_to_string (&c);
  g_assert_true (dcr_augment_config_parse (s, &d, &err));
  assert_config_equal (&c, &d);
  g_assert_true (dcr_augment_config_parse ("jpeg=0.2:80", &c, &err));
  g_assert_cmpint (c.jpeg_qmin, ==, 80);
  g_assert_cmpint (c.jpeg_qmax, ==, 80);

  const char *bad[] = { "views=-1", "views=x", "views=65", "jpeg=1.5", "jpeg=0.5:90-50", "jpeg=0.5:0-50",
                        "jpeg=0.5:50-101", "blur=0.5:9", "blur=0.5:", "crop=0.5:0.1", "flip=0.5:3", "sharpen=1",
                        "views", "seed=abc" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_clear_error (&err);
      g_assert_false (dcr_augment_config_parse (bad[i], &c, &err));
      g_assert_nonnull (err);
      g_assert_nonnull (strstr (err->message, "augmentation"));
    }
}

static void
test_draw (void)
{
  DcrAugmentConfig c;
  dcr_augment_config_default (&c);
  c.blur_p = 0.3;
  const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  DcrAugmentParams a, b;
  dcr_augment_draw (&c, sha, 1, &a);
  dcr_augment_draw (&c, sha, 1, &b);
  assert_params_equal (&a, &b);

  /* frequencies over many files and views follow the probabilities, and
   * every drawn value is within its range */
  guint n = 4000, crops = 0, flips = 0, blurs = 0, jpegs = 0, identity = 0;
  g_autoptr (GHashTable) keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *h = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) &i, sizeof i);
      DcrAugmentParams p;
      dcr_augment_draw (&c, h, 1 + i % 3, &p);
      crops += p.crop;
      flips += p.flip;
      blurs += p.blur_ms > 0;
      jpegs += p.quality > 0;
      identity += dcr_augment_is_identity (&p);
      if (p.crop)
        g_assert_true (p.crop_q >= 48 && p.crop_q < 64 && p.crop_x < 256 && p.crop_y < 256);
      if (p.blur_ms)
        g_assert_true (p.blur_ms >= 200 && p.blur_ms <= 1000);
      if (p.quality)
        g_assert_true (p.quality >= 60 && p.quality <= 95);
      g_autofree char *k = dcr_augment_params_key (&p);
      g_assert_cmpint (g_str_equal (k, "none"), ==, dcr_augment_is_identity (&p));
      g_hash_table_add (keys, g_steal_pointer (&k));
    }
  /* a crop that keeps 64/64 of the side is no crop: 1/16 of the drawn ones */
  g_assert_cmpfloat (fabs (crops / (double) n - 0.5 * 15 / 16), <, 0.03);
  g_assert_cmpfloat (fabs (flips / (double) n - 0.5), <, 0.03);
  g_assert_cmpfloat (fabs (blurs / (double) n - 0.3), <, 0.03);
  g_assert_cmpfloat (fabs (jpegs / (double) n - 0.5), <, 0.03);
  g_assert_cmpuint (identity, >, 0);
  g_assert_cmpuint (g_hash_table_size (keys), >, n / 2); /* keys name distinct views */

  /* settings at probability 0 never fire */
  c.crop_p = c.flip_p = c.blur_p = c.jpeg_p = 0;
  for (guint v = 1; v < 50; v++)
    {
      dcr_augment_draw (&c, sha, v, &a);
      g_assert_true (dcr_augment_is_identity (&a));
    }
}

static void
test_crop_flip (void)
{
  g_autoptr (DcrImage) img = noise_image (100, 80, 3);
  g_autoptr (GError) err = NULL;
  DcrAugmentParams p = { .crop = TRUE, .crop_q = 48, .crop_x = 255, .crop_y = 0, .flip = TRUE };
  g_autoptr (DcrImage) out = dcr_augment_apply (img, &p, &err);
  g_assert_no_error (err);
  guint cw = 100 * 48 / 64, ch = 80 * 48 / 64, x0 = 100 - cw, y0 = 0;
  g_assert_cmpuint (out->width, ==, cw);
  g_assert_cmpuint (out->height, ==, ch);
  for (guint y = 0; y < ch; y++)
    for (guint x = 0; x < cw; x++)
      g_assert_cmpmem (out->pixels + ((gsize) y * cw + x) * 3, 3,
                       img->pixels + ((gsize) (y0 + y) * 100 + x0 + cw - 1 - x) * 3, 3);

  /* never below the backbone's 36-pixel minimum */
  g_autoptr (DcrImage) small = noise_image (40, 50, 4);
  DcrAugmentParams q = { .crop = TRUE, .crop_q = 16, .crop_x = 128, .crop_y = 128 };
  g_autoptr (DcrImage) s = dcr_augment_apply (small, &q, &err);
  g_assert_cmpuint (s->width, ==, 36);
  g_assert_cmpuint (s->height, ==, 36);

  /* the identity copies */
  DcrAugmentParams none = { 0 };
  g_autoptr (DcrImage) same = dcr_augment_apply (img, &none, &err);
  g_assert_cmpmem (same->pixels, 100 * 80 * 3, img->pixels, 100 * 80 * 3);
}

static int
mirror (int i, int n)
{
  while (i < 0 || i >= n)
    i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

static void
test_blur (void)
{
  g_autoptr (DcrImage) img = noise_image (37, 29, 5);
  const double sigmas[] = { 0.2, 0.65, 1.0, 2.5 };
  for (gsize t = 0; t < G_N_ELEMENTS (sigmas); t++)
    {
      double sg = sigmas[t];
      int rad = (int) ceil (3 * sg);
      g_autoptr (DcrImage) out = dcr_image_gaussian_blur (img, sg);
      double norm = 0;
      for (int i = -rad; i <= rad; i++)
        norm += exp (-i * i / (2 * sg * sg));
      guint off = 0;
      for (int y = 0; y < 29; y++)
        for (int x = 0; x < 37; x++)
          for (int c = 0; c < 3; c++)
            {
              double a = 0; /* the 2-D kernel, directly */
              for (int j = -rad; j <= rad; j++)
                for (int i = -rad; i <= rad; i++)
                  a += exp (-(i * i + j * j) / (2 * sg * sg)) / (norm * norm) *
                       img->pixels[((gsize) mirror (y + j, 29) * 37 + mirror (x + i, 37)) * 3 + c];
              int got = out->pixels[((gsize) y * 37 + x) * 3 + c];
              g_assert_cmpfloat (fabs (got - a), <=, 0.5 + 1e-3);
              off += got != (int) lround (a);
            }
      g_test_message ("blur sigma %.2f: %u of %u samples differ from the double reference by one (rounding)", sg,
                      off, 29 * 37 * 3);
    }
  /* a constant image stays constant */
  g_autoptr (DcrImage) flat = dcr_image_new (20, 20);
  memset (flat->pixels, 77, 20 * 20 * 3);
  g_autoptr (DcrImage) fb = dcr_image_gaussian_blur (flat, 1.7);
  for (gsize i = 0; i < 20 * 20 * 3; i++)
    g_assert_cmpuint (fb->pixels[i], ==, 77);
}

static void
test_jpeg_and_order (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrImage) img = noise_image (64, 48, 6);
  DcrAugmentParams p = { .flip = TRUE, .blur_ms = 800, .quality = 70 };
  g_autoptr (DcrImage) out = dcr_augment_apply (img, &p, &err);
  g_assert_no_error (err);
  /* flip, then blur, then the JPEG round trip, each by its own function */
  DcrAugmentParams f = { .flip = TRUE };
  g_autoptr (DcrImage) flipped = dcr_augment_apply (img, &f, &err);
  g_autoptr (DcrImage) blurred = dcr_image_gaussian_blur (flipped, 0.8);
  g_autoptr (GBytes) jpg = dcr_image_encode_jpeg (blurred, 70, &err);
  g_autoptr (DcrImage) want = dcr_image_load_from_bytes (jpg, "ref", NULL, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (out->width, ==, want->width);
  g_assert_cmpmem (out->pixels, 64 * 48 * 3, want->pixels, 64 * 48 * 3);
  g_autofree char *key = dcr_augment_params_key (&p);
  g_assert_cmpstr (key, ==, "f;b800;q70");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/augment/parse", test_parse);
  g_test_add_func ("/augment/draw", test_draw);
  g_test_add_func ("/augment/crop-flip", test_crop_flip);
  g_test_add_func ("/augment/blur", test_blur);
  g_test_add_func ("/augment/jpeg-and-order", test_jpeg_and_order);
  return g_test_run ();
}
