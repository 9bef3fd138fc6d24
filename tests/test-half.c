/* test-half.c — host fp16 conversion: every one of the 65536 halves
 * survives half → float → half, and float → half rounds to nearest even. */
#include "dcr-half.h"

#include <math.h>

static void
test_round_trip_all (void)
{
  for (guint32 h = 0; h < 65536; h++)
    {
      float f = dcr_half_to_float ((guint16) h);
      guint16 back = dcr_half_from_float (f);
      if (((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff))
        g_assert_true (isnan (f) && ((back >> 10) & 0x1f) == 0x1f && (back & 0x3ff)); /* NaN stays NaN */
      else
        g_assert_cmphex (back, ==, h);
    }
}

static void
test_known_values (void)
{
  g_assert_cmphex (dcr_half_from_float (1.0f), ==, 0x3c00);
  g_assert_cmphex (dcr_half_from_float (-2.0f), ==, 0xc000);
  g_assert_cmphex (dcr_half_from_float (65504.0f), ==, 0x7bff);  /* largest finite */
  g_assert_cmphex (dcr_half_from_float (65520.0f), ==, 0x7c00);  /* rounds up to inf */
  g_assert_cmphex (dcr_half_from_float (1e-8f), ==, 0x0000);     /* underflow */
  g_assert_cmphex (dcr_half_from_float (5.9604645e-8f), ==, 0x0001); /* smallest subnormal */
  g_assert_cmphex (dcr_half_from_float (INFINITY), ==, 0x7c00);
  /* 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0) */
  g_assert_cmphex (dcr_half_from_float (1.0f + 0.00048828125f), ==, 0x3c00);
  /* 1 + 3·2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even) */
  g_assert_cmphex (dcr_half_from_float (1.0f + 3 * 0.00048828125f), ==, 0x3c02);
  g_assert_cmpfloat (dcr_half_to_float (0x3555), ==, 0.333251953125f);
  float a[3] = { 0.5f, -0.25f, 3.0f }, b[3];
  guint16 h[3];
  dcr_half_from_floats (h, a, 3);
  dcr_half_to_floats (b, h, 3);
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat (a[i], ==, b[i]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/half/round-trip-all", test_round_trip_all);
  g_test_add_func ("/half/known-values", test_known_values);
  return g_test_run ();
}
