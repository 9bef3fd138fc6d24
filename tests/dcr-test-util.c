/* dcr-test-util.c — see the header. */
#include "dcr-test-util.h"
#include "dcr-half.h"
#include "dcr-op-preprocess.h"

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

float *
dcr_test_random_floats (gsize n, guint32 seed, float lo, float hi)
{
  float *x = g_new (float, MAX (n, 1));
  dcr_test_fill (x, n, seed, lo, hi);
  return x;
}

gboolean
dcr_test_device_has_f16 (void)
{
  return dcr_context_device (dcr_test_context ())->storage_16bit;
}

void
dcr_test_round_to_dtype (float *x, gsize n, DcrDtype dt)
{
  if (dt == DCR_F16)
    for (gsize i = 0; i < n; i++)
      x[i] = dcr_half_to_float (dcr_half_from_float (x[i]));
}

void
dcr_test_upload_floats (DcrTensor *t, const float *data)
{
  g_autoptr (GError) err = NULL;
  gint64 n = dcr_tensor_numel (t);
  if (t->dtype == DCR_F16)
    {
      g_autofree guint16 *h = g_new (guint16, MAX (n, 1));
      dcr_half_from_floats (h, data, n);
      g_assert_true (dcr_tensor_upload (t, h, &err));
    }
  else
    g_assert_true (dcr_tensor_upload (t, data, &err));
  g_assert_no_error (err);
}

DcrTensor *
dcr_test_image_tensor (const guint8 *pixels, gint64 h, gint64 w)
{
  g_autoptr (GError) err = NULL;
  DcrTensor *t = dcr_image_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, h, w, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_buffer_upload (t->buf, 0, pixels, (gsize) h * w * 3, &err));
  g_assert_no_error (err);
  return t;
}

DcrTensor *
dcr_test_images_tensor (const guint8 *pixels, gint64 m, gint64 h, gint64 w)
{
  g_autoptr (GError) err = NULL;
  DcrTensor *t = dcr_images_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, m, h, w, &err);
  g_assert_no_error (err);
  g_assert_true (dcr_buffer_upload (t->buf, 0, pixels, (gsize) m * h * w * 3, &err));
  g_assert_no_error (err);
  return t;
}

DcrTensor *
dcr_test_upload_tensor (DcrPoolKind pool, DcrDtype dt, int ndim, const gint64 *shape, const float *data)
{
  g_autoptr (GError) err = NULL;
  DcrTensor *t = dcr_tensor_new (dcr_test_context (), pool, dt, ndim, shape, &err);
  g_assert_no_error (err);
  if (data)
    dcr_test_upload_floats (t, data);
  else
    {
      g_assert_true (dcr_buffer_fill_zero (t->buf, &err));
      g_assert_no_error (err);
    }
  return t;
}

DcrTensor *
dcr_test_upload_rounded (DcrDtype dt, int ndim, const gint64 *shape, float *data)
{
  DcrTensor *t = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, dt, ndim, shape, data);
  if (data)
    dcr_test_round_to_dtype (data, dcr_tensor_numel (t), dt);
  return t;
}

void
dcr_test_download_into (DcrTensor *t, float *out)
{
  g_autoptr (GError) err = NULL;
  gint64 n = dcr_tensor_numel (t);
  if (t->dtype == DCR_F16)
    {
      g_autofree guint16 *h = g_new (guint16, MAX (n, 1));
      g_assert_true (dcr_tensor_download (t, h, &err));
      dcr_half_to_floats (out, h, n);
    }
  else
    g_assert_true (dcr_tensor_download (t, out, &err));
  g_assert_no_error (err);
}

float *
dcr_test_download_floats (DcrTensor *t)
{
  float *out = g_new (float, MAX (dcr_tensor_numel (t), 1));
  dcr_test_download_into (t, out);
  return out;
}

DcrSeq *
dcr_test_seq_new (void)
{
  g_autoptr (GError) err = NULL;
  DcrSeq *seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_no_error (err);
  return seq;
}

void
dcr_test_submit_wait (DcrSeq *seq)
{
  g_autoptr (GError) err = NULL;
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
}
