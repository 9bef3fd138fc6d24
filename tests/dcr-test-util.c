/* dcr-test-util.c — see the header. */
#include "dcr-test-util.h"

#include <math.h>

static DcrContext *test_ctx;

DcrContext *
dcr_test_context (void)
{
  if (!test_ctx)
    {
      g_autoptr (GError) err = NULL;
      DcrContextOptions opts = { .validation = g_strcmp0 (g_getenv ("DCR_TEST_VALIDATION"), "0") != 0 };
      test_ctx = dcr_context_new (&opts, &err);
      g_assert_no_error (err);
      g_test_message ("device: %s", dcr_context_device (test_ctx)->name);
    }
  return test_ctx;
}

void
dcr_test_assert_no_validation_errors (void)
{
  if (test_ctx)
    g_assert_cmpuint (dcr_context_validation_errors (test_ctx), ==, 0);
}

void
dcr_test_context_teardown (void)
{
  dcr_test_assert_no_validation_errors ();
  g_clear_pointer (&test_ctx, dcr_context_free);
}

void
dcr_test_assert_close (const char *what, const float *got, const float *want, gsize n,
                       double atol, double rtol)
{
  for (gsize i = 0; i < n; i++)
    {
      double d = fabs ((double) got[i] - (double) want[i]);
      if (!(d <= atol + rtol * fabs ((double) want[i])))
        {
          g_test_fail_printf ("%s: element %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " is %.9g, expected %.9g "
                              "(|diff| %.3g > %.3g + %.3g*|want|)", what, i, n, got[i], want[i], d, atol, rtol);
          return;
        }
    }
}

void
dcr_test_fill (float *x, gsize n, guint32 seed, float lo, float hi)
{
  guint32 s = seed * 2654435761u + 12345u;
  for (gsize i = 0; i < n; i++)
    {
      s ^= s << 13;
      s ^= s >> 17;
      s ^= s << 5;
      x[i] = lo + (hi - lo) * (float) ((s >> 8) * (1.0 / 16777216.0));
    }
}
