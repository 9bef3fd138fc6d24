/* test-op-attention.c — fused multi-head attention on the GPU against the
 * CPU reference: odd lengths (Lq, Lk ∈ 1 … 257), heads 1, 2, 16, head dims
 * that take either kernel (tile: d % 4 == 0, d ≤ 128, Lq ≥ 8; split: the
 * rest, e.g. the DCR head Lq = 1, d = 512), separate and fused QKV inputs,
 * the optional weights output, f32 and f16 storage, and PyTorch's output on
 * a small case (tests/golden/attn-norm-golden.h). */
#include "dcr-test-util.h"
#include "dcr-op-attention.h"

#include <math.h>
#include <string.h>

#include "golden/attn-norm-golden.h"

static gboolean
skip_f16 (DcrDtype dt)
{
  if (dt == DCR_F16 && !dcr_context_device (dcr_test_context ())->storage_16bit)
    {
      g_test_skip ("device has no 16-bit storage");
      return TRUE;
    }
  return FALSE;
}

typedef struct {
  gint64 batch, lq, lk;
  guint heads;
  gint64 d;
  gboolean fused;       /* one qkv tensor (needs lq == lk) */
  gboolean weights;
  float scale;          /* 0: 1/√d */
  float range;          /* inputs in [−range, range) */
} Case;

static void
check_attention (DcrDtype dt, const Case *c)
{
  g_autoptr (GError) err = NULL;
  gint64 hd = c->heads * c->d;
  gint64 nq = c->batch * c->lq * hd, nk = c->batch * c->lk * hd, nw = c->batch * c->heads * c->lq * c->lk;
  g_autofree float *want = g_new (float, nq), *got = g_new (float, nq);
  g_autofree float *want_w = g_new (float, MAX (nw, 1)), *got_w = g_new (float, MAX (nw, 1));
  gint64 oshape[] = { c->batch, c->lq, hd }, wshape[] = { c->batch, c->heads, c->lq, c->lk };
  g_autoptr (DcrTensor) tout = dcr_test_upload_rounded (dt, 3, oshape, want);
  g_autoptr (DcrTensor) tw = c->weights ? dcr_test_upload_rounded (dt, 4, wshape, want_w) : NULL;
  DcrAttentionParams p = { .heads = c->heads, .scale = c->scale, .weights = tw };
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  guint32 seed = (guint32) (c->lq * 1000 + c->lk * 10 + c->heads + c->d);
  if (c->fused)
    {
      g_assert_cmpint (c->lq, ==, c->lk);
      gint64 shape[] = { c->batch, c->lq, 3 * hd };
      g_autofree float *qkv = g_new (float, 3 * nq);
      dcr_test_fill (qkv, 3 * nq, seed, -c->range, c->range);
      g_autoptr (DcrTensor) t = dcr_test_upload_rounded (dt, 3, shape, qkv);
      g_assert_true (dcr_op_attention_qkv (seq, t, tout, &p, &err));
      g_assert_no_error (err);
      dcr_ref_attention (qkv, 3 * hd, qkv + hd, 3 * hd, qkv + 2 * hd, 3 * hd, want, want_w, c->batch, c->lq, c->lk,
                         c->heads, c->d, c->scale);
    }
  else
    {
      gint64 qshape[] = { c->batch, c->lq, hd }, kshape[] = { c->batch, c->lk, hd };
      g_autofree float *q = g_new (float, nq), *k = g_new (float, nk), *v = g_new (float, nk);
      dcr_test_fill (q, nq, seed, -c->range, c->range);
      dcr_test_fill (k, nk, seed + 1, -c->range, c->range);
      dcr_test_fill (v, nk, seed + 2, -1, 1);
      g_autoptr (DcrTensor) tq = dcr_test_upload_rounded (dt, 3, qshape, q);
      g_autoptr (DcrTensor) tk = dcr_test_upload_rounded (dt, 3, kshape, k);
      g_autoptr (DcrTensor) tv = dcr_test_upload_rounded (dt, 3, kshape, v);
      g_assert_true (dcr_op_attention (seq, tq, tk, tv, tout, &p, &err));
      g_assert_no_error (err);
      dcr_ref_attention (q, hd, k, hd, v, hd, want, want_w, c->batch, c->lq, c->lk, c->heads, c->d, c->scale);
    }
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_test_download_into (tout, got);
  g_autofree char *what = g_strdup_printf ("attention %s B%" G_GINT64_FORMAT " Lq%" G_GINT64_FORMAT " Lk%"
                                           G_GINT64_FORMAT " H%u d%" G_GINT64_FORMAT "%s",
                                           dcr_dtype_name (dt), c->batch, c->lq, c->lk, c->heads, c->d,
                                           c->fused ? " fused" : "");
  /* outputs are convex combinations of values in [−1, 1] (fused: [−range,
   * range)); f32 within 2e-5 (fp32 exp2 and sums over ≤257 keys), f16
   * within its output rounding (4.9e-4 relative) plus 1e-3 */
  double vr = c->fused ? c->range : 1;
  if (dt == DCR_F16)
    dcr_test_assert_close (what, got, want, nq, 1.5e-3 * vr, 2e-3);
  else
    dcr_test_assert_close (what, got, want, nq, 2e-5 * vr, 1e-4);
  if (c->weights)
    {
      dcr_test_download_into (tw, got_w);
      g_autofree char *wwhat = g_strconcat (what, " weights", NULL);
      if (dt == DCR_F16)
        dcr_test_assert_close (wwhat, got_w, want_w, nw, 1e-4, 2e-3);
      else
        dcr_test_assert_close (wwhat, got_w, want_w, nw, 1e-6, 1e-4);
    }
}

static const gint64 test_lens[] = { 1, 3, 7, 17, 65, 257 };

static void
test_shapes (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  const guint heads[] = { 1, 2, 16 };
  const gint64 dims[] = { 64, 8, 32, 6, 20, 4 };
  int n = 0;
  for (gsize i = 0; i < 5; i++)          /* Lq ∈ 1 … 65 */
    for (gsize j = 0; j < G_N_ELEMENTS (test_lens); j++, n++)
      {
        Case c = {
          .batch = 1 + n % 2, .lq = test_lens[i], .lk = test_lens[j], .heads = heads[n % 3],
          .d = dims[n % G_N_ELEMENTS (dims)], .range = 1,
          /* f16 skips the weights variants: each kernel variant costs
           * seconds of pipeline compilation on lavapipe */
          .weights = dt == DCR_F32 && n % 4 == 1,
        };
        check_attention (dt, &c);
      }
  dcr_test_assert_no_validation_errors ();
}

static void
test_vit (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  /* a ViT-L/14 block's attention: fused QKV, L = 257, H = 16, d = 64 */
  Case vit = { .batch = 1, .lq = 257, .lk = 257, .heads = 16, .d = 64, .fused = TRUE, .range = 1 };
  check_attention (dt, &vit);
  /* fused QKV through the split kernel (d % 4 != 0), with weights */
  Case odd = { .batch = 2, .lq = 17, .lk = 17, .heads = 2, .d = 10, .fused = TRUE, .weights = TRUE, .range = 1 };
  check_attention (dt, &odd);
  /* d = 128 tile, an explicit scale, and large logits (|q·k·scale| up to ~60) */
  Case big = { .batch = 2, .lq = 33, .lk = 70, .heads = 2, .d = 128, .scale = 0.5f, .weights = dt == DCR_F32,
               .range = 1.2f };
  check_attention (dt, &big);
  dcr_test_assert_no_validation_errors ();
}

static void
test_dcr_head (gconstpointer data)
{
  DcrDtype dt = GPOINTER_TO_INT (data);
  if (skip_f16 (dt))
    return;
  /* difference attention over the k nearest prototypes: Lq = 1, d = 512 */
  Case dcr = { .batch = 64, .lq = 1, .lk = 8, .heads = 1, .d = 512, .weights = TRUE, .range = 0.3f };
  check_attention (dt, &dcr);
  /* the draft's single key: every weight is exactly 1 and out = v */
  Case one = { .batch = 3, .lq = 1, .lk = 1, .heads = 1, .d = 512, .weights = TRUE, .range = 1 };
  check_attention (dt, &one);
  if (dt == DCR_F32) /* more kernel variants; f16 storage is covered above */
    {
      Case dcr4 = { .batch = 5, .lq = 1, .lk = 32, .heads = 4, .d = 128, .weights = TRUE, .range = 0.5f };
      check_attention (dt, &dcr4);
      /* RINE's 24 per-block tokens as keys */
      Case rine = { .batch = 3, .lq = 2, .lk = 24, .heads = 2, .d = 256, .range = 0.2f };
      check_attention (dt, &rine);
    }
  dcr_test_assert_no_validation_errors ();
}

static void
test_torch_golden (void)
{
  /* PyTorch 1.13's softmax(QKᵀ/√d)V on [2, 3|5, 2·8]: once through each kernel
   * (the tile one needs Lq ≥ 8, so the split one answers here; the tile one
   * is checked against the same reference by test_shapes) */
  g_autoptr (GError) err = NULL;
  const gint64 b = GOLDEN_ATTN_B, lq = GOLDEN_ATTN_LQ, lk = GOLDEN_ATTN_LK, h = GOLDEN_ATTN_H, d = GOLDEN_ATTN_D;
  gint64 qs[] = { b, lq, h * d }, ks[] = { b, lk, h * d }, ws[] = { b, h, lq, lk };
  float q[G_N_ELEMENTS (golden_attn_q)], k[G_N_ELEMENTS (golden_attn_k)], v[G_N_ELEMENTS (golden_attn_v)];
  float out[G_N_ELEMENTS (golden_attn_out)], w[G_N_ELEMENTS (golden_attn_weights)];
  memcpy (q, golden_attn_q, sizeof q);
  memcpy (k, golden_attn_k, sizeof k);
  memcpy (v, golden_attn_v, sizeof v);
  g_autoptr (DcrTensor) tq = dcr_test_upload_rounded (DCR_F32, 3, qs, q);
  g_autoptr (DcrTensor) tk = dcr_test_upload_rounded (DCR_F32, 3, ks, k);
  g_autoptr (DcrTensor) tv = dcr_test_upload_rounded (DCR_F32, 3, ks, v);
  g_autoptr (DcrTensor) to = dcr_test_upload_rounded (DCR_F32, 3, qs, out);
  g_autoptr (DcrTensor) tw = dcr_test_upload_rounded (DCR_F32, 4, ws, w);
  DcrAttentionParams p = { .heads = h, .weights = tw };
  g_autoptr (DcrSeq) seq = dcr_seq_new (dcr_test_context (), &err);
  g_assert_true (dcr_op_attention (seq, tq, tk, tv, to, &p, &err));
  g_assert_true (dcr_seq_submit (seq, TRUE, &err));
  g_assert_no_error (err);
  dcr_test_download_into (to, out);
  dcr_test_download_into (tw, w);
  dcr_test_assert_close ("torch attention out", out, golden_attn_out, G_N_ELEMENTS (out), 2e-5, 1e-4);
  dcr_test_assert_close ("torch attention weights", w, golden_attn_weights, G_N_ELEMENTS (w), 1e-6, 1e-4);
  /* and the C reference agrees with torch too */
  dcr_ref_attention (q, h * d, k, h * d, v, h * d, out, w, b, lq, lk, h, d, 0);
  dcr_test_assert_close ("reference vs torch out", out, golden_attn_out, G_N_ELEMENTS (out), 1e-6, 1e-6);
  dcr_test_assert_close ("reference vs torch weights", w, golden_attn_weights, G_N_ELEMENTS (w), 1e-7, 1e-6);
}

static void
test_bad_args (void)
{
  DcrContext *ctx = dcr_test_context ();
  g_autoptr (GError) err = NULL;
  gint64 s1[] = { 2, 5, 16 }, s2[] = { 2, 7, 16 }, s3[] = { 3, 5, 16 }, s4[] = { 2, 5, 48 };
  g_autoptr (DcrTensor) a = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 3, s1, &err);
  g_autoptr (DcrTensor) o = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 3, s1, &err);
  g_autoptr (DcrTensor) b = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 3, s2, &err);
  g_autoptr (DcrTensor) c = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 3, s3, &err);
  g_autoptr (DcrTensor) qkv = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 3, s4, &err);
  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, &err);
  DcrAttentionParams p = { .heads = 3 };
  g_assert_false (dcr_op_attention (seq, a, a, a, o, &p, &err)); /* 16 is not a multiple of 3 heads */
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "heads"));
  g_clear_error (&err);
  p.heads = 2;
  g_assert_false (dcr_op_attention (seq, a, b, a, o, &p, &err)); /* k and v lengths differ */
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_attention (seq, a, c, c, o, &p, &err)); /* batch differs */
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_attention (seq, a, a, a, a, &p, &err)); /* out aliases q */
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  g_assert_false (dcr_op_attention_qkv (seq, qkv, b, &p, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_clear_error (&err);
  gint64 ws[] = { 2, 2, 5, 4 };
  g_autoptr (DcrTensor) w = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, DCR_F32, 4, ws, &err);
  p.weights = w; /* Lk is 5, not 4 */
  g_assert_false (dcr_op_attention_qkv (seq, qkv, o, &p, &err));
  g_assert_error (err, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE);
  g_assert_nonnull (strstr (err->message, "weights"));
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/op-attention/shapes/f32", GINT_TO_POINTER (DCR_F32), test_shapes);
  g_test_add_data_func ("/op-attention/shapes/f16", GINT_TO_POINTER (DCR_F16), test_shapes);
  g_test_add_data_func ("/op-attention/vit/f32", GINT_TO_POINTER (DCR_F32), test_vit);
  g_test_add_data_func ("/op-attention/vit/f16", GINT_TO_POINTER (DCR_F16), test_vit);
  g_test_add_data_func ("/op-attention/dcr-head/f32", GINT_TO_POINTER (DCR_F32), test_dcr_head);
  g_test_add_data_func ("/op-attention/dcr-head/f16", GINT_TO_POINTER (DCR_F16), test_dcr_head);
  g_test_add_func ("/op-attention/torch-golden", test_torch_golden);
  g_test_add_func ("/op-attention/bad-args", test_bad_args);
  int rc = g_test_run ();
  dcr_test_context_teardown ();
  return rc;
}
