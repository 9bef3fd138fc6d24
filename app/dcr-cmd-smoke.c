/* dcr-cmd-smoke.c — `dcr smoke`: proves the chosen device computes
 * correctly (y = a·x + y on the GPU, checked element by element against
 * the CPU) and reports the GPU time. */
#include "dcr-cli.h"
#include "dcr-vk.h"

#include <math.h>
#include <stdio.h>

typedef struct {
  guint32 n;
  float a;
} AxpyPush;

int
dcr_cmd_smoke (int argc, char **argv)
{
  const char *device = NULL;
  int n = 1 << 20;
  GOptionEntry entries[] = {
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device", "INDEX|NAME" },
    { "size", 'n', 0, G_OPTION_ARG_INT, &n, "Elements (default 1048576)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) oc = g_option_context_new ("- check that the GPU computes correctly");
  g_option_context_add_main_entries (oc, entries, NULL);
  if (!dcr_cli_parse (oc, entries, &argc, &argv))
    return 2;
  if (n < 1)
    {
      fprintf (stderr, "dcr: --size must be at least 1\n");
      return 2;
    }

  g_autoptr (GError) err = NULL;
  DcrContextOptions opts = { .device = device };
  g_autoptr (DcrContext) ctx = dcr_context_new (&opts, &err);
  if (!ctx)
    return dcr_cli_fail (err);
  const DcrDeviceInfo *info = dcr_context_device (ctx);
  printf ("device: %s (%s, %s)\n", info->name, dcr_device_type_name (info->type), info->driver_name);

  g_autofree float *x = g_new (float, n);
  g_autofree float *y = g_new (float, n);
  g_autofree float *out = g_new (float, n);
  for (int i = 0; i < n; i++)
    {
      x[i] = (float) (i % 1000) * 0.001f - 0.5f;
      y[i] = (float) ((i * 7) % 13) - 6.0f;
    }
  gint64 shape[] = { n };
  g_autoptr (DcrTensor) tx = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, shape, &err);
  g_autoptr (DcrTensor) ty = tx ? dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, shape, &err) : NULL;
  if (!ty || !dcr_tensor_upload (tx, x, &err) || !dcr_tensor_upload (ty, y, &err))
    return dcr_cli_fail (err);

  guint32 spec[] = { 256 };
  DcrPipeline *pipe = dcr_pipeline_get (ctx, "axpy", spec, 1, 2, sizeof (AxpyPush), &err);
  g_autoptr (DcrSeq) seq = pipe ? dcr_seq_new (ctx, &err) : NULL;
  if (!seq)
    return dcr_cli_fail (err);
  dcr_seq_enable_timing (seq);
  AxpyPush push = { (guint32) n, 2.5f };
  DcrBinding b[] = { { tx->buf, 0, 0, FALSE }, { ty->buf, 0, 0, TRUE } };
  dcr_seq_dispatch (seq, pipe, b, 2, &push, sizeof push, ((guint32) n + 255) / 256, 1, 1);
  if (!dcr_seq_submit (seq, TRUE, &err) || !dcr_tensor_download (ty, out, &err))
    return dcr_cli_fail (err);

  int bad = 0;
  for (int i = 0; i < n; i++)
    {
      float want = 2.5f * x[i] + y[i];
      if (fabsf (out[i] - want) > 1e-5f * (1.0f + fabsf (want)))
        {
          if (bad < 5)
            fprintf (stderr, "dcr: mismatch at %d: GPU %g, CPU %g\n", i, out[i], want);
          bad++;
        }
    }
  guint nt = 0;
  const double *ms = dcr_seq_timings_ms (seq, &nt);
  if (bad)
    {
      fprintf (stderr, "dcr: smoke test FAILED on %s: %d of %d results wrong\n", info->name, bad, n);
      return 1;
    }
  if (nt)
    printf ("axpy: %d elements correct, GPU time %.3f ms (%.1f GB/s)\n", n, ms[0],
            3.0 * 4 * n / (ms[0] * 1e-3) / 1e9);
  else
    printf ("axpy: %d elements correct\n", n);
  printf ("smoke test passed\n");
  return 0;
}
