/* test-detail.c — the fine-detail measure (dcr-detail.h) on images whose
 * value is known by hand: flat and linear images have none, alternating
 * columns or rows have the most, only the centred 512 × 512 window counts,
 * a blur lowers it, and the low-detail line is where the header says. */
#include "dcr-detail.h"

#include <math.h>
#include <string.h>

static DcrImage *
filled (guint w, guint h, guint8 (*f) (guint x, guint y))
{
  DcrImage *img = dcr_image_new (w, h);
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      memset (img->pixels + ((gsize) y * w + x) * 3, f (x, y), 3);
  return img;
}

static guint8 grey (guint x, guint y) { return 97; }
static guint8 ramp (guint x, guint y) { return (guint8) (x + 2 * y); }
static guint8 columns (guint x, guint y) { return x % 2 ? 255 : 0; }
static guint8 rows (guint x, guint y) { return y % 2 ? 255 : 0; }
static guint8 checker (guint x, guint y) { return (x + y) % 2 ? 255 : 0; }
/* alternating columns only in the 44 leftmost columns of a 600-wide image:
 * outside the centred 512-wide window (columns 44–555) */
static guint8 left_edge (guint x, guint y) { return x < 44 ? (x % 2 ? 255 : 0) : 50; }

static void
test_known_values (void)
{
  struct {
    guint8 (*f) (guint, guint);
    float want;
  } cases[] = {
    { grey, 0.f },     /* no second differences */
    { ramp, 0.f },     /* linear: none either */
    { columns, 255.f }, /* |h| = 510 everywhere, v = 0: (510 + 0) / 2 */
    { rows, 255.f },
    { checker, 510.f }, /* both 510 */
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (DcrImage) img = filled (40, 30, cases[i].f);
      g_assert_cmpfloat_with_epsilon (dcr_detail_measure (img), cases[i].want, 1e-3);
    }
}

static void
test_luma_weights (void)
{
  /* alternating columns in the red channel alone: luma steps of 0.299 · 255 */
  g_autoptr (DcrImage) img = dcr_image_new (20, 20);
  for (guint y = 0; y < 20; y++)
    for (guint x = 0; x < 20; x++)
      {
        guint8 *p = img->pixels + ((gsize) y * 20 + x) * 3;
        p[0] = x % 2 ? 255 : 0;
        p[1] = 10;
        p[2] = 200;
      }
  g_assert_cmpfloat_with_epsilon (dcr_detail_measure (img), 0.299f * 255.f, 1e-3);
}

static void
test_window (void)
{
  g_autoptr (DcrImage) img = filled (600, 520, left_edge);
  g_assert_cmpfloat_with_epsilon (dcr_detail_measure (img), 0.f, 1e-6);
  /* the same columns inside the window count */
  g_autoptr (DcrImage) in = filled (512, 512, left_edge);
  g_assert_cmpfloat (dcr_detail_measure (in), >, 10.f);
}

static void
test_blur_and_line (void)
{
  /* noise, then the same noise box-blurred 5 × 5: far less detail */
  g_autoptr (GRand) rng = g_rand_new_with_seed (7);
  g_autoptr (DcrImage) sharp = dcr_image_new (64, 64);
  for (gsize i = 0; i < 64 * 64 * 3; i++)
    sharp->pixels[i] = (guint8) g_rand_int_range (rng, 100, 140);
  g_autoptr (DcrImage) soft = dcr_image_new (64, 64);
  for (guint y = 0; y < 64; y++)
    for (guint x = 0; x < 64; x++)
      for (guint c = 0; c < 3; c++)
        {
          guint s = 0, n = 0;
          for (gint dy = -2; dy <= 2; dy++)
            for (gint dx = -2; dx <= 2; dx++)
              {
                gint yy = CLAMP ((gint) y + dy, 0, 63), xx = CLAMP ((gint) x + dx, 0, 63);
                s += sharp->pixels[((gsize) yy * 64 + xx) * 3 + c];
                n++;
              }
          soft->pixels[((gsize) y * 64 + x) * 3 + c] = (guint8) ((s + n / 2) / n);
        }
  float ds = dcr_detail_measure (sharp), dsoft = dcr_detail_measure (soft);
  g_assert_cmpfloat (ds, >, 10.f);
  g_assert_cmpfloat (dsoft, <, ds / 5);
  g_assert_false (dcr_detail_is_low (ds));
  g_assert_true (dcr_detail_is_low (0.f));
  g_assert_true (dcr_detail_is_low (DCR_DETAIL_LOW - 1e-3f));
  g_assert_false (dcr_detail_is_low (DCR_DETAIL_LOW));
  g_assert_false (dcr_detail_is_low (NAN));
}

static void
test_too_small (void)
{
  g_autoptr (DcrImage) img = filled (2, 9, grey);
  g_assert_true (isnan (dcr_detail_measure (img)));
  g_autoptr (DcrImage) ok = filled (3, 3, checker);
  g_assert_cmpfloat_with_epsilon (dcr_detail_measure (ok), 510.f, 1e-3);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/detail/known-values", test_known_values);
  g_test_add_func ("/detail/luma-weights", test_luma_weights);
  g_test_add_func ("/detail/window", test_window);
  g_test_add_func ("/detail/blur-and-line", test_blur_and_line);
  g_test_add_func ("/detail/too-small", test_too_small);
  return g_test_run ();
}
