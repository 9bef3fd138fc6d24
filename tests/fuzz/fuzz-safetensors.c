/* fuzz-safetensors.c — libFuzzer target: a safetensors file through the
 * strict reader, then everything a model loader does with it: metadata,
 * every tensor's bytes, the NaN/infinity check and the f32 conversion. */
#include "dcr-safetensors.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (GBytes) bytes = g_bytes_new (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (DcrSafetensors) st = dcr_safetensors_new_from_bytes (bytes, "fuzz.safetensors", &error);
  if (!st)
    {
      g_assert (error && g_str_has_prefix (error->message, "fuzz.safetensors"));
      return 0;
    }
  for (const char *const *k = dcr_safetensors_metadata_keys (st); *k; k++)
    g_assert (dcr_safetensors_metadata (st, *k) != NULL);
  for (guint i = 0; i < dcr_safetensors_n_tensors (st); i++)
    {
      const DcrStTensor *t = dcr_safetensors_tensor_at (st, i);
      g_assert (dcr_safetensors_lookup (st, t->name) == t);
      g_assert (t->nbytes == t->numel * dcr_st_dtype_size (t->dtype));
      guint8 x = 0;
      for (gsize j = 0; j < t->nbytes; j++)
        x ^= t->data[j];
      (void) x;
      float *values = NULL;
      g_autoptr (GError) e2 = NULL;
      if (dcr_safetensors_get_f32 (st, t->name, NULL, 0, &values, &e2))
        g_free (values);
      else
        g_assert (e2 != NULL);
    }
  g_autoptr (GError) e3 = NULL;
  (void) dcr_safetensors_check_finite (st, NULL, &e3);
  return 0;
}
