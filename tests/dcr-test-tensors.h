/* dcr-test-tensors.h — host <-> tensor helpers shared by the DCR detector's
 * test suites (heads, retrieval, model, training): upload floats in f32 or
 * f16 (rounding the host copy the same way), read them back as floats. */
#pragma once

#include "dcr-test-util.h"
#include "dcr-half.h"

static inline gboolean
dcr_test_have_f16 (void)
{
  return dcr_context_device (dcr_test_context ())->storage_16bit;
}

/* Rounds data to dt in place (what the GPU will see), then uploads it. */
static inline DcrTensor *
dcr_test_tensor (DcrDtype dt, int ndim, const gint64 *shape, float *data)
{
  g_autoptr (GError) err = NULL;
  DcrTensor *t = dcr_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, dt, ndim, shape, &err);
  g_assert_no_error (err);
  gint64 n = dcr_tensor_numel (t);
  if (data && dt == DCR_F16)
    {
      g_autofree guint16 *h = g_new (guint16, n);
      dcr_half_from_floats (h, data, n);
      dcr_half_to_floats (data, h, n);
      dcr_tensor_upload (t, h, &err);
    }
  else if (data)
    dcr_tensor_upload (t, data, &err);
  g_assert_no_error (err);
  return t;
}

static inline float *
dcr_test_read (DcrTensor *t)
{
  g_autoptr (GError) err = NULL;
  gint64 n = dcr_tensor_numel (t);
  float *out = g_new (float, n);
  if (t->dtype == DCR_F16)
    {
      g_autofree guint16 *h = g_new (guint16, n);
      dcr_tensor_download (t, h, &err);
      dcr_half_to_floats (out, h, n);
    }
  else
    dcr_tensor_download (t, out, &err);
  g_assert_no_error (err);
  return out;
}

static inline void
dcr_test_submit (DcrSeq *seq)
{
  g_autoptr (GError) err = NULL;
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
}
