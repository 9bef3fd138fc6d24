/* test-vk.c — the Vulkan runtime on whatever device the machine has
 * (lavapipe in CI): device choice and override, buffers and pools,
 * dispatch, barriers, re-submission, timing and both pipeline caches. */
#include "dcr-test-util.h"

#include <glib/gstdio.h>
#include <string.h>

typedef struct {
  guint32 n;
  float a;
} AxpyPush;

static DcrDeviceInfo
fake (const char *name, VkPhysicalDeviceType type, guint index)
{
  DcrDeviceInfo d = { 0 };
  g_strlcpy (d.name, name, sizeof d.name);
  d.type = type;
  d.index = index;
  d.api_version = VK_API_VERSION_1_3;
  return d;
}

static void
test_pick_rules (void)
{
  g_autoptr (GArray) devs = g_array_new (FALSE, TRUE, sizeof (DcrDeviceInfo));
  DcrDeviceInfo d[] = {
    fake ("llvmpipe (LLVM 15.0.6, 256 bits)", VK_PHYSICAL_DEVICE_TYPE_CPU, 0),
    fake ("Intel(R) UHD Graphics 620", VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU, 1),
    fake ("NVIDIA H200", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, 2),
  };
  g_array_append_vals (devs, d, 3);
  g_autoptr (GError) err = NULL;

  g_assert_cmpint (dcr_vk_pick_device (devs, NULL, &err), ==, 2);  /* discrete first */
  g_assert_cmpint (dcr_vk_pick_device (devs, "", &err), ==, 2);
  g_assert_cmpint (dcr_vk_pick_device (devs, "0", &err), ==, 0);  /* index */
  g_assert_cmpint (dcr_vk_pick_device (devs, "uhd", &err), ==, 1); /* case-insensitive substring */
  g_assert_cmpint (dcr_vk_pick_device (devs, "LLVMpipe", &err), ==, 0);
  g_assert_no_error (err);

  g_assert_cmpint (dcr_vk_pick_device (devs, "7", &err), ==, -1);
  g_assert_error (err, DCR_VK_ERROR, DCR_VK_ERROR_NO_DEVICE);
  g_assert_nonnull (strstr (err->message, "dcr devices"));
  g_clear_error (&err);
  g_assert_cmpint (dcr_vk_pick_device (devs, "radeon", &err), ==, -1);
  g_assert_error (err, DCR_VK_ERROR, DCR_VK_ERROR_NO_DEVICE);
  g_assert_nonnull (strstr (err->message, "radeon"));
  g_clear_error (&err);

  /* without a discrete GPU the integrated one wins over the CPU */
  g_array_remove_index (devs, 2);
  g_assert_cmpint (dcr_vk_pick_device (devs, NULL, &err), ==, 1);
  /* a Vulkan 1.1 device loses to anything that can run us */
  g_array_index (devs, DcrDeviceInfo, 1).api_version = VK_API_VERSION_1_1;
  g_assert_cmpint (dcr_vk_pick_device (devs, NULL, &err), ==, 0);
}

static void
test_list_devices (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GArray) devs = dcr_vk_list_devices (&err);
  g_assert_no_error (err);
  g_assert_cmpuint (devs->len, >=, 1);
  for (guint i = 0; i < devs->len; i++)
    {
      const DcrDeviceInfo *d = &g_array_index (devs, DcrDeviceInfo, i);
      g_assert_cmpuint (d->index, ==, i);
      g_assert_cmpstr (d->name, !=, "");
      g_assert_cmpuint (d->max_storage_buffer_range, >, 0);
    }
}

static void
test_override (void)
{
  g_autoptr (GError) err = NULL;
  const DcrDeviceInfo *cur = dcr_context_device (dcr_test_context ());
  /* select the same device by index and by a name substring */
  g_autofree char *idx = g_strdup_printf ("%u", cur->index);
  DcrContextOptions by_index = { .device = idx, .no_pipeline_cache = TRUE };
  g_autoptr (DcrContext) a = dcr_context_new (&by_index, &err);
  g_assert_no_error (err);
  g_assert_cmpstr (dcr_context_device (a)->name, ==, cur->name);

  char sub[8] = { 0 };
  memcpy (sub, cur->name, MIN (strlen (cur->name), 5));
  g_setenv ("DCR_DEVICE", sub, TRUE); /* the environment variable works too */
  g_autoptr (DcrContext) b = dcr_context_new (&(DcrContextOptions) { .no_pipeline_cache = TRUE }, &err);
  g_unsetenv ("DCR_DEVICE");
  g_assert_no_error (err);
  g_assert_cmpstr (dcr_context_device (b)->name, ==, cur->name);

  DcrContextOptions nope = { .device = "no-such-gpu-xyz", .no_pipeline_cache = TRUE };
  g_autoptr (DcrContext) c = dcr_context_new (&nope, &err);
  g_assert_null (c);
  g_assert_error (err, DCR_VK_ERROR, DCR_VK_ERROR_NO_DEVICE);
}

static void
test_buffer_round_trip (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  const gsize sizes[] = { 1, 3, 17, 4096, 65537, (gsize) 20 << 20 };
  for (int pool = 0; pool < DCR_N_POOLS; pool++)
    for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
      {
        gsize n = sizes[s];
        g_autoptr (DcrBuffer) buf = dcr_buffer_new (ctx, (DcrPoolKind) pool, n, &err);
        g_assert_no_error (err);
        g_assert_cmpuint (dcr_buffer_size (buf), ==, n);
        g_autofree guint8 *in = g_malloc (n);
        g_autofree guint8 *out = g_malloc0 (n);
        for (gsize i = 0; i < n; i++)
          in[i] = (guint8) (i * 31 + pool + s);
        g_assert_true (dcr_buffer_upload (buf, 0, in, n, &err));
        g_assert_true (dcr_buffer_download (buf, 0, out, n, &err));
        g_assert_no_error (err);
        g_assert_cmpmem (in, n, out, n);
        if (n > 2)
          {
            /* a partial write at an odd offset leaves the rest alone */
            guint8 patch[2] = { 0xAB, 0xCD };
            g_assert_true (dcr_buffer_upload (buf, n - 2, patch, 2, &err));
            g_assert_true (dcr_buffer_download (buf, 0, out, n, &err));
            g_assert_cmpmem (in, n - 2, out, n - 2);
            g_assert_cmpuint (out[n - 1], ==, 0xCD);
          }
        g_assert_true (dcr_buffer_fill_zero (buf, &err));
        g_assert_true (dcr_buffer_download (buf, 0, out, n, &err));
        g_assert_no_error (err);
        for (gsize i = 0; i < n; i++)
          g_assert_cmpuint (out[i], ==, 0);
        /* past the end is an error, not a write */
        g_assert_false (dcr_buffer_upload (buf, n, in, 1, &err));
        g_assert_error (err, DCR_VK_ERROR, DCR_VK_ERROR_FAILED);
        g_clear_error (&err);
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_pool_accounting (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  DcrContextStats before, during, after;
  dcr_context_stats (ctx, &before);

  DcrBuffer *bufs[300];
  for (int i = 0; i < 300; i++)
    {
      bufs[i] = dcr_buffer_new (ctx, DCR_POOL_ACTIVATIONS, 1000 + i * 37, &err);
      g_assert_no_error (err);
    }
  dcr_context_stats (ctx, &during);
  g_assert_cmpuint (during.live_buffers, ==, before.live_buffers + 300);
  /* ~5.8 MB of small tensors share one block instead of 300 allocations */
  g_assert_cmpuint (during.pool_blocks, <=, before.pool_blocks + 1);
  /* free in an interleaved order, then everything must be back */
  for (int i = 0; i < 300; i += 2)
    dcr_buffer_free (bufs[i]);
  for (int i = 1; i < 300; i += 2)
    dcr_buffer_free (bufs[i]);
  dcr_context_stats (ctx, &after);
  g_assert_cmpuint (after.live_buffers, ==, before.live_buffers);
  g_assert_cmpuint (after.live_bytes, ==, before.live_bytes);

  /* an oversized request gets its own block, which is released again */
  DcrBuffer *big = dcr_buffer_new (ctx, DCR_POOL_ACTIVATIONS, (gsize) 100 << 20, &err);
  g_assert_no_error (err);
  dcr_buffer_free (big);
  dcr_context_stats (ctx, &after);
  g_assert_cmpuint (after.pool_blocks, <=, during.pool_blocks);
  g_assert_cmpuint (after.live_buffers, ==, before.live_buffers);
}

static void
test_oversize (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  guint64 limit = dcr_context_device (ctx)->max_storage_buffer_range;
  if (limit >= G_MAXSIZE / 2)
    {
      g_test_skip ("device has no practical storage-buffer limit");
      return;
    }
  DcrBuffer *b = dcr_buffer_new (ctx, DCR_POOL_WEIGHTS, (gsize) limit + 1, &err);
  g_assert_null (b);
  g_assert_error (err, DCR_VK_ERROR, DCR_VK_ERROR_TOO_LARGE);
  g_assert_nonnull (strstr (err->message, "split"));
  g_clear_error (&err);
  gint64 shape[] = { (gint64) (limit / 4) + 1 };
  DcrTensor *t = dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, DCR_F32, 1, shape, &err);
  g_assert_null (t);
  g_assert_error (err, DCR_VK_ERROR, DCR_VK_ERROR_TOO_LARGE);
}

static DcrPipeline *
axpy_pipeline (DcrContext *ctx, guint32 local)
{
  g_autoptr (GError) err = NULL;
  guint32 spec[] = { local };
  DcrPipeline *p = dcr_pipeline_get (ctx, "axpy", spec, 1, 2, sizeof (AxpyPush), &err);
  g_assert_no_error (err);
  return p;
}

static void
test_dispatch_and_resubmit (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  const guint32 sizes[] = { 1, 7, 65, 1000, 100003 };
  for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      guint32 n = sizes[s];
      gint64 shape[] = { n };
      g_autoptr (DcrTensor) x = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, shape, &err);
      g_autoptr (DcrTensor) y = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, shape, &err);
      g_assert_no_error (err);
      g_autofree float *hx = g_new (float, n);
      g_autofree float *hy = g_new (float, n);
      g_autofree float *want = g_new (float, n);
      g_autofree float *got = g_new (float, n);
      dcr_test_fill (hx, n, 1 + s, -2, 2);
      dcr_test_fill (hy, n, 100 + s, -1, 1);
      g_assert_true (dcr_tensor_upload (x, hx, &err));
      g_assert_true (dcr_tensor_upload (y, hy, &err));

      g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
      g_assert_no_error (err);
      AxpyPush p = { n, 0.75f };
      DcrBinding b[] = { { x->buf, 0, 0, FALSE }, { y->buf, 0, 0, TRUE } };
      dcr_seq_dispatch (seq, axpy_pipeline (ctx, 64), b, 2, &p, sizeof p, (n + 63) / 64, 1, 1);
      /* three submits of one recording: y = y + 3·0.75·x */
      for (int rep = 0; rep < 3; rep++)
        {
          g_assert_true (dcr_seq_submit (seq, rep == 2, &err));
          g_assert_no_error (err);
        }
      g_assert_true (dcr_tensor_download (y, got, &err));
      for (guint32 i = 0; i < n; i++)
        want[i] = hy[i] + 0.75f * hx[i] + 0.75f * hx[i] + 0.75f * hx[i];
      dcr_test_assert_close ("axpy×3", got, want, n, 1e-5, 1e-5);
      g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 1);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
test_barriers_minimal (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  const guint32 n = 4096;
  gint64 shape[] = { n };
  g_autoptr (DcrTensor) x = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, shape, &err);
  g_autoptr (DcrTensor) y1 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, shape, &err);
  g_autoptr (DcrTensor) y2 = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 1, shape, &err);
  g_assert_no_error (err);
  g_autofree float *hx = g_new (float, n);
  g_autofree float *got = g_new (float, n);
  g_autofree float *want = g_new (float, n);
  dcr_test_fill (hx, n, 5, -1, 1);
  g_assert_true (dcr_tensor_upload (x, hx, &err));
  g_assert_true (dcr_buffer_fill_zero (y1->buf, &err));
  g_assert_true (dcr_buffer_fill_zero (y2->buf, &err));

  DcrPipeline *pipe = axpy_pipeline (ctx, 128);
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
  dcr_seq_enable_timing (seq);
  AxpyPush p1 = { n, 2.0f }, p2 = { n, 3.0f };
  DcrBinding b1[] = { { x->buf, 0, 0, FALSE }, { y1->buf, 0, 0, TRUE } };
  DcrBinding b2[] = { { x->buf, 0, 0, FALSE }, { y2->buf, 0, 0, TRUE } };
  DcrBinding b3[] = { { y1->buf, 0, 0, FALSE }, { y2->buf, 0, 0, TRUE } };
  /* y1 = 2x and y2 = 3x are independent: no barrier between them */
  dcr_seq_dispatch (seq, pipe, b1, 2, &p1, sizeof p1, n / 128, 1, 1);
  dcr_seq_dispatch (seq, pipe, b2, 2, &p2, sizeof p2, n / 128, 1, 1);
  g_assert_cmpuint (dcr_seq_n_barriers (seq), ==, 0);
  /* y2 += 2·y1 reads y1 and writes y2: one barrier */
  dcr_seq_dispatch (seq, pipe, b3, 2, &p1, sizeof p1, n / 128, 1, 1);
  g_assert_cmpuint (dcr_seq_n_barriers (seq), ==, 1);
  /* copying y2 (just written) over the first half of x (read earlier) is a
   * read-after-write and a write-after-read hazard → second barrier */
  dcr_seq_copy (seq, y2->buf, 0, x->buf, 0, n * 2);
  g_assert_cmpuint (dcr_seq_n_barriers (seq), ==, 2);
  /* zeroing y1: its last reader is already behind the second barrier, so
   * no new one is needed */
  dcr_seq_fill_zero (seq, y1->buf, 0, 0);
  g_assert_cmpuint (dcr_seq_n_barriers (seq), ==, 2);
  /* zeroing the half of x the copy did not touch: still no barrier */
  dcr_seq_fill_zero (seq, x->buf, n * 2, n * 2);
  g_assert_cmpuint (dcr_seq_n_barriers (seq), ==, 2);
  /* zeroing the half the copy just wrote: write after write → barrier */
  dcr_seq_fill_zero (seq, x->buf, 0, n * 2);
  g_assert_cmpuint (dcr_seq_n_barriers (seq), ==, 3);
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);

  g_assert_true (dcr_tensor_download (y2, got, &err));
  for (guint32 i = 0; i < n; i++)
    want[i] = 3.0f * hx[i] + 2.0f * (2.0f * hx[i]);
  dcr_test_assert_close ("y2", got, want, n, 1e-5, 1e-5);
  g_assert_true (dcr_tensor_download (x, got, &err));
  for (guint32 i = 0; i < n; i++)
    g_assert_cmpfloat (got[i], ==, 0.0f); /* both halves zeroed, in order */
  g_assert_true (dcr_tensor_download (y1, got, &err));
  for (guint32 i = 0; i < n; i++)
    g_assert_cmpfloat (got[i], ==, 0.0f);

  guint nt = 0;
  const double *ms = dcr_seq_timings_ms (seq, &nt);
  if (dcr_context_device (ctx)->timestamps)
    {
      g_assert_cmpuint (nt, ==, 3);
      for (guint i = 0; i < nt; i++)
        g_assert_cmpfloat (ms[i], >=, 0.0);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
test_bad_dispatch_reported (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrBuffer) a = dcr_buffer_new (ctx, DCR_POOL_ACTIVATIONS, 64, &err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
  AxpyPush p = { 16, 1 };
  DcrBinding b[] = { { a, 0, 0, FALSE } }; /* one binding, the pipeline wants two */
  dcr_seq_dispatch (seq, axpy_pipeline (ctx, 64), b, 1, &p, sizeof p, 1, 1, 1);
  g_assert_false (dcr_seq_submit (seq, TRUE, &err));
  g_assert_error (err, DCR_VK_ERROR, DCR_VK_ERROR_FAILED);
  g_clear_error (&err);

  g_assert_null (dcr_pipeline_get (ctx, "no-such-shader", NULL, 0, 1, 0, &err));
  g_assert_error (err, DCR_VK_ERROR, DCR_VK_ERROR_SHADER);
}

static void
test_pipeline_cache (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-pcache-XXXXXX", &err);
  g_assert_no_error (err);
  DcrContextOptions opts = { .pipeline_cache_dir = dir };
  g_autofree char *path = NULL;
  {
    g_autoptr (DcrContext) ctx = dcr_context_new (&opts, &err);
    g_assert_no_error (err);
    DcrContextStats st;
    dcr_context_stats (ctx, &st);
    g_assert_cmpuint (st.pipeline_cache_loaded_bytes, ==, 0); /* nothing on disk yet */
    DcrPipeline *p1 = axpy_pipeline (ctx, 32);
    DcrPipeline *p2 = axpy_pipeline (ctx, 32);
    DcrPipeline *p3 = axpy_pipeline (ctx, 64); /* another spec constant: another pipeline */
    g_assert_true (p1 == p2);
    g_assert_true (p1 != p3);
    dcr_context_stats (ctx, &st);
    g_assert_cmpuint (st.pipelines_created, ==, 2);
    g_assert_cmpuint (st.pipeline_cache_hits, ==, 1);
    path = g_strdup (dcr_context_pipeline_cache_path (ctx));
    g_assert_true (g_str_has_prefix (path, dir));
  } /* freeing the context saves the cache */
  g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
  {
    g_autoptr (DcrContext) ctx = dcr_context_new (&opts, &err);
    g_assert_no_error (err);
    DcrContextStats st;
    dcr_context_stats (ctx, &st);
    g_assert_cmpuint (st.pipeline_cache_loaded_bytes, >, 0); /* the next process reuses it */
    axpy_pipeline (ctx, 32);
  }
  /* a corrupt cache file costs a rebuild, not a failure */
  g_assert_true (g_file_set_contents (path, "garbage", 7, &err));
  {
    g_autoptr (DcrContext) ctx = dcr_context_new (&opts, &err);
    g_assert_no_error (err);
    g_assert_nonnull (axpy_pipeline (ctx, 32));
  }
  g_remove (path);
  g_rmdir (dir);
}

/* The warm-up list (DcrContextOptions.warm_profile): a run remembers the
 * pipelines it used, in order; the next run of that name builds them on a
 * thread of its own from the start, and asking for one while it is being
 * built waits for it instead of building it twice. Lines a build cannot use
 * are skipped. */
static void
test_pipeline_warm_up (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dcr-warm-XXXXXX", &err);
  g_assert_no_error (err);
  DcrContextOptions opts = { .pipeline_cache_dir = dir, .warm_profile = "test" };
  g_autofree char *list = NULL;
  {
    g_autoptr (DcrContext) ctx = dcr_context_new (&opts, &err);
    g_assert_no_error (err);
    g_assert_nonnull (axpy_pipeline (ctx, 64));
    g_assert_nonnull (axpy_pipeline (ctx, 32));
    g_assert_nonnull (axpy_pipeline (ctx, 64));
  }
  g_autoptr (GDir) d = g_dir_open (dir, 0, &err);
  g_assert_no_error (err);
  for (const char *name; (name = g_dir_read_name (d));)
    if (g_str_has_prefix (name, "warm-") && g_str_has_suffix (name, "-test.txt"))
      list = g_build_filename (dir, name, NULL);
  g_assert_nonnull (list);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (list, &text, NULL, &err));
  g_auto (GStrv) lines = g_strsplit (text, "\n", 0);
  g_assert_cmpuint (g_strv_length (lines), ==, 3); /* two keys and the empty tail */
  g_assert_true (g_str_has_prefix (lines[0], "axpy|b2|p8|40,"));
  g_assert_true (g_str_has_prefix (lines[1], "axpy|b2|p8|20,"));

  /* the next run: whatever it asks for, each pipeline is built once */
  g_autofree char *with_junk = g_strconcat ("no-such-shader|b1|p0|\nnot a key\naxpy|b99|p8|1,\n", text, NULL);
  g_assert_true (g_file_set_contents (list, with_junk, -1, &err));
  for (int round = 0; round < 3; round++)
    {
      g_autoptr (DcrContext) ctx = dcr_context_new (&opts, &err);
      g_assert_no_error (err);
      DcrContextStats st;
      if (round == 0)
        {
          /* nobody asks: the warm-up thread builds both on its own */
          for (int i = 0; i < 2000; i++)
            {
              dcr_context_stats (ctx, &st);
              if (st.pipelines_created == 2)
                break;
              g_usleep (10000);
            }
          g_assert_cmpuint (st.pipelines_created, ==, 2);
        }
      DcrPipeline *a = axpy_pipeline (ctx, 64), *b = axpy_pipeline (ctx, 32);
      g_assert_true (a != b);
      g_assert_true (a == axpy_pipeline (ctx, 64));
      dcr_context_stats (ctx, &st);
      g_assert_cmpuint (st.pipelines_created, <=, 2);
    }
  /* the list now holds only what those runs used */
  g_free (text);
  text = NULL;
  g_assert_true (g_file_get_contents (list, &text, NULL, &err));
  g_assert_false (strstr (text, "no-such-shader"));
  g_assert_cmpuint (strlen (text), >, 0);
  g_remove (list);
  g_dir_rewind (d);
  for (const char *name; (name = g_dir_read_name (d));)
    {
      g_autofree char *f = g_build_filename (dir, name, NULL);
      g_remove (f);
    }
  g_rmdir (dir);
}

/* dcr_vk_default_cpu_threads: 4 lavapipe threads a CPU (at most 16) when
 * $LP_NUM_THREADS is unset, and the user's choice otherwise. */
static void
test_cpu_threads (void)
{
  g_autofree char *saved = g_strdup (g_getenv ("LP_NUM_THREADS"));
  g_unsetenv ("LP_NUM_THREADS");
  dcr_vk_default_cpu_threads ();
  g_assert_cmpint (atoi (g_getenv ("LP_NUM_THREADS")), ==, MIN (4 * (int) g_get_num_processors (), 16));
  g_setenv ("LP_NUM_THREADS", "3", TRUE);
  dcr_vk_default_cpu_threads ();
  g_assert_cmpstr (g_getenv ("LP_NUM_THREADS"), ==, "3");
  if (saved)
    g_setenv ("LP_NUM_THREADS", saved, TRUE);
  else
    g_unsetenv ("LP_NUM_THREADS");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/vk/cpu-threads", test_cpu_threads);
  g_test_add_func ("/vk/pick-rules", test_pick_rules);
  g_test_add_func ("/vk/list-devices", test_list_devices);
  g_test_add_func ("/vk/override", test_override);
  g_test_add_func ("/vk/buffer-round-trip", test_buffer_round_trip);
  g_test_add_func ("/vk/pool-accounting", test_pool_accounting);
  g_test_add_func ("/vk/oversize", test_oversize);
  g_test_add_func ("/vk/dispatch-resubmit", test_dispatch_and_resubmit);
  g_test_add_func ("/vk/barriers-minimal", test_barriers_minimal);
  g_test_add_func ("/vk/bad-dispatch", test_bad_dispatch_reported);
  g_test_add_func ("/vk/pipeline-cache", test_pipeline_cache);
  g_test_add_func ("/vk/pipeline-warm-up", test_pipeline_warm_up);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
