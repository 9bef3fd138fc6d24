/* test-moco.c — the MoCo key queue and momentum update: the host references
 * against hand-worked cases (a batch that crosses the end of the ring, one
 * as large as the ring), the GPU queue against the reference push by push
 * (pinned rows untouched, nothing truncated), and the momentum kernel
 * against its reference over odd sizes and repeated replays. */
#include "dcr-test-util.h"
#include "dcr-moco.h"

#include <math.h>
#include <string.h>

/* Row r of a key batch is filled with 100·tag + r + c/10 so every row is
 * recognisable wherever it lands. */
static void
fill_keys (float *k, gint64 b, gint64 d, int tag)
{
  for (gint64 r = 0; r < b; r++)
    for (gint64 c = 0; c < d; c++)
      k[r * d + c] = 100.0f * tag + r + c / 10.0f;
}

static void
test_ref_enqueue (void)
{
  enum { P = 2, S = 7, D = 3 };
  float q[(P + S) * D], want[(P + S) * D], k[S * D];
  for (int i = 0; i < (P + S) * D; i++)
    q[i] = want[i] = -1.0f - i;
  gint64 ptr = 5;
  /* 4 keys with 2 rows left before the end: rows 5, 6 then 0, 1 of the ring */
  fill_keys (k, 4, D, 1);
  g_assert_true (dcr_ref_moco_enqueue (q, P, S, D, &ptr, k, 4));
  g_assert_cmpint (ptr, ==, 2);
  const int at[] = { 5, 6, 0, 1 };
  for (int r = 0; r < 4; r++)
    memcpy (want + (P + at[r]) * D, k + r * D, D * sizeof (float));
  g_assert_cmpmem (q, sizeof q, want, sizeof want);
  /* a batch as large as the ring replaces every ring row, in ring order from
   * the pointer, and leaves the pointer where it was */
  fill_keys (k, S, D, 2);
  g_assert_true (dcr_ref_moco_enqueue (q, P, S, D, &ptr, k, S));
  g_assert_cmpint (ptr, ==, 2);
  for (int r = 0; r < S; r++)
    memcpy (want + (P + (2 + r) % S) * D, k + r * D, D * sizeof (float));
  g_assert_cmpmem (q, sizeof q, want, sizeof want);
  g_assert_cmpfloat (q[0], ==, -1.0f); /* pinned */
  /* too large: refused, nothing written */
  float big[(S + 1) * D];
  fill_keys (big, S + 1, D, 3);
  g_assert_false (dcr_ref_moco_enqueue (q, P, S, D, &ptr, big, S + 1));
  g_assert_cmpint (ptr, ==, 2);
  g_assert_cmpmem (q, sizeof q, want, sizeof want);
}

static void
test_ref_momentum (void)
{
  float k[] = { 1.0f, 0.0f, -2.0f, 0.5f }, q[] = { 0.0f, 1.0f, 2.0f, 0.5f };
  dcr_ref_momentum_update (k, q, 4, 0.999f);
  const float want[] = { 0.999f, 0.001f, -1.996f, 0.5f };
  dcr_test_assert_close ("momentum 0.999", k, want, 4, 1e-6, 1e-6);
  dcr_ref_momentum_update (k, q, 4, 0.0f);
  dcr_test_assert_close ("momentum 0 copies the query", k, q, 4, 0, 0);
}

static void
check_queue (DcrMocoQueue *mq, const float *want, gsize n, const char *what)
{
  g_autofree float *got = dcr_test_download_floats ((DcrTensor *) dcr_moco_queue_tensor (mq));
  dcr_test_assert_close (what, got, want, n, 0, 0);
}

static void
test_gpu_queue (void)
{
  enum { P = 3, S = 10, D = 17 };
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrMocoQueue) mq = dcr_moco_queue_new (dcr_test_context (), D, S, P, 42, &err);
  g_assert_no_error (err);
  gsize n = (gsize) (P + S) * D;
  g_autofree float *ref = dcr_test_download_floats ((DcrTensor *) dcr_moco_queue_tensor (mq));
  /* the ring starts as unit vectors, the pinned rows as zeros */
  for (int r = 0; r < P + S; r++)
    {
      double s = 0;
      for (int c = 0; c < D; c++)
        s += (double) ref[r * D + c] * ref[r * D + c];
      g_assert_cmpfloat_with_epsilon (s, r < P ? 0.0 : 1.0, 1e-5);
    }
  g_autofree float *pinned = dcr_test_random_floats (P * D, 7, -1, 1);
  g_assert_true (dcr_moco_queue_set_pinned (mq, pinned, &err));
  g_assert_no_error (err);
  for (int r = 0; r < P; r++)
    {
      double s = 0;
      for (int c = 0; c < D; c++)
        s += (double) pinned[r * D + c] * pinned[r * D + c];
      for (int c = 0; c < D; c++)
        ref[r * D + c] = (float) (pinned[r * D + c] / sqrt (s));
    }
  g_autofree float *got = dcr_test_download_floats ((DcrTensor *) dcr_moco_queue_tensor (mq));
  dcr_test_assert_close ("pinned rows normalised", got, ref, n, 1e-6, 1e-6);
  memcpy (ref, got, n * sizeof (float));

  /* pointer 0 → 4 → 8 → (8, 9 | 0, 1: crosses the end with 2 rows left) 2
   * → 6 → (the whole ring, 6–9 | 0–5) 6 → 9 → (the whole ring again, 9 |
   * 0–8) 9 → (9 | 0–2) 3 → 7 */
  const int sizes[] = { 4, 4, 4, 4, 10, 3, 10, 4, 4 };
  gint64 ptr = 0;
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      gint64 b = sizes[i], shape[] = { b, D };
      g_autofree float *k = g_new (float, b * D);
      fill_keys (k, b, D, (int) i + 1);
      g_autoptr (DcrTensor) keys = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, shape, k);
      g_assert_true (dcr_moco_queue_push (mq, keys, &err));
      g_assert_no_error (err);
      g_assert_true (dcr_ref_moco_enqueue (ref, P, S, D, &ptr, k, b));
      g_assert_cmpuint (dcr_moco_queue_pointer (mq), ==, (guint) ptr);
      g_autofree char *what = g_strdup_printf ("queue after push %u (%d keys)", i, sizes[i]);
      check_queue (mq, ref, n, what);
    }
  g_assert_cmpint (ptr, ==, 7);

  /* refused: more keys than the ring holds, the wrong width */
  gint64 big[] = { S + 1, D }, wide[] = { 2, D + 1 };
  g_autoptr (DcrTensor) kb = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, big, NULL);
  g_assert_false (dcr_moco_queue_push (mq, kb, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_autoptr (DcrTensor) kw = dcr_test_upload_tensor (DCR_POOL_ACTIVATIONS, DCR_F32, 2, wide, NULL);
  g_assert_false (dcr_moco_queue_push (mq, kw, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_cmpuint (dcr_moco_queue_pointer (mq), ==, 7);
  check_queue (mq, ref, n, "queue after refused pushes");
  dcr_test_assert_no_validation_errors ();
}

static void
test_gpu_momentum (void)
{
  const gint64 sizes[] = { 1, 3, 7, 17, 65, 1000, 70001 };
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      gint64 n = sizes[s];
      g_autofree float *k = dcr_test_random_floats (n, 1 + s, -1, 1);
      g_autofree float *q = dcr_test_random_floats (n, 100 + s, -1, 1);
      g_autoptr (DcrTensor) tk = dcr_test_upload_tensor (DCR_POOL_WEIGHTS, DCR_F32, 1, &n, k);
      g_autoptr (DcrTensor) tq = dcr_test_upload_tensor (DCR_POOL_WEIGHTS, DCR_F32, 1, &n, q);
      g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
      g_autoptr (GError) err = NULL;
      g_assert_true (dcr_op_momentum_update (seq, tk, tq, DCR_MOCO_MOMENTUM, &err));
      g_assert_no_error (err);
      /* three replays, the query changing in between, as in training */
      for (int step = 0; step < 3; step++)
        {
          dcr_test_submit_wait (seq);
          dcr_ref_momentum_update (k, q, n, DCR_MOCO_MOMENTUM);
          g_autofree float *got = dcr_test_download_floats (tk);
          g_autofree char *what = g_strdup_printf ("momentum n=%" G_GINT64_FORMAT " step %d", n, step);
          dcr_test_assert_close (what, got, k, n, 1e-6, 1e-6);
          dcr_test_fill (q, n, 1000 + step, -1, 1);
          dcr_test_upload_floats (tq, q);
        }
    }
  g_autoptr (GError) err = NULL;
  gint64 a = 5, b = 6;
  g_autoptr (DcrTensor) t5 = dcr_test_upload_tensor (DCR_POOL_WEIGHTS, DCR_F32, 1, &a, NULL);
  g_autoptr (DcrTensor) t6 = dcr_test_upload_tensor (DCR_POOL_WEIGHTS, DCR_F32, 1, &b, NULL);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_false (dcr_op_momentum_update (seq, t5, t6, 0.999f, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_momentum_update (seq, t5, t5, 1.5f, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED);
  dcr_test_assert_no_validation_errors ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/moco/ref-enqueue", test_ref_enqueue);
  g_test_add_func ("/moco/ref-momentum", test_ref_momentum);
  g_test_add_func ("/moco/gpu-queue", test_gpu_queue);
  g_test_add_func ("/moco/gpu-momentum", test_gpu_momentum);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
