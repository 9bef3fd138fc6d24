/* dcr-bench-gemm.c — `dcr bench ops` cases for the GEMM family: ResNet-50
 * and MobileNetV2 1×1 (and im2col 3×3) convolutions as GEMMs, ViT-L/14
 * linear layers, attention scores as a batched GEMM, a weight-gradient GEMM,
 * and 4096³ on GPUs. Inputs are zero-filled: the timing does not depend on
 * the values. */
#include "dcr-bench.h"
#include "dcr-op-gemm.h"

typedef struct {
  const char *op;     /* "gemm" or "linear" */
  gint64 m, n, k;
  gint64 batch;
  gboolean trans_a;
  gboolean bias;
  DcrAct act;
  const char *what;
  gboolean quick;     /* part of --quick */
  gboolean gpu_only;  /* minutes on a CPU */
} GemmCase;

static const GemmCase cases[] = {
  { "gemm", 196, 256, 64, 1, FALSE, TRUE, DCR_ACT_RELU, "small 1x1 conv", TRUE, FALSE },
  { "linear", 17, 64, 64, 1, FALSE, TRUE, DCR_ACT_GELU, "small linear", TRUE, FALSE },
  { "gemm", 3136, 64, 64, 1, FALSE, TRUE, DCR_ACT_RELU, "resnet50 layer1 1x1 reduce", FALSE, FALSE },
  { "gemm", 3136, 256, 64, 1, FALSE, TRUE, DCR_ACT_NONE, "resnet50 layer1 1x1 expand", FALSE, FALSE },
  { "gemm", 3136, 64, 576, 1, FALSE, TRUE, DCR_ACT_RELU, "resnet50 layer1 3x3 im2col", FALSE, FALSE },
  { "gemm", 784, 128, 512, 1, FALSE, TRUE, DCR_ACT_RELU, "resnet50 layer2 1x1 reduce", FALSE, FALSE },
  { "gemm", 784, 512, 1152, 1, FALSE, TRUE, DCR_ACT_NONE, "resnet50 layer2 im2col", FALSE, FALSE },
  { "gemm", 196, 1024, 256, 1, FALSE, TRUE, DCR_ACT_NONE, "resnet50 layer3 1x1 expand", FALSE, FALSE },
  { "gemm", 196, 256, 1024, 1, FALSE, TRUE, DCR_ACT_RELU, "resnet50 layer3 1x1 reduce", FALSE, FALSE },
  { "gemm", 49, 2048, 512, 1, FALSE, TRUE, DCR_ACT_NONE, "resnet50 layer4 1x1 expand", FALSE, FALSE },
  { "gemm", 12544, 96, 16, 1, FALSE, TRUE, DCR_ACT_RELU6, "mobilenetv2 block1 1x1 expand", FALSE, FALSE },
  { "gemm", 3136, 144, 24, 1, FALSE, TRUE, DCR_ACT_RELU6, "mobilenetv2 block2 1x1 expand", FALSE, FALSE },
  { "gemm", 3136, 24, 144, 1, FALSE, TRUE, DCR_ACT_NONE, "mobilenetv2 block2 1x1 project", FALSE, FALSE },
  { "gemm", 784, 192, 32, 1, FALSE, TRUE, DCR_ACT_RELU6, "mobilenetv2 block4 1x1 expand", FALSE, FALSE },
  { "gemm", 784, 32, 192, 1, FALSE, TRUE, DCR_ACT_NONE, "mobilenetv2 block4 1x1 project", FALSE, FALSE },
  { "gemm", 196, 384, 64, 1, FALSE, TRUE, DCR_ACT_RELU6, "mobilenetv2 block7 1x1 expand", FALSE, FALSE },
  { "linear", 257, 3072, 1024, 1, FALSE, TRUE, DCR_ACT_NONE, "vit-l/14 qkv", FALSE, FALSE },
  { "linear", 257, 1024, 1024, 1, FALSE, TRUE, DCR_ACT_NONE, "vit-l/14 attn out", FALSE, FALSE },
  { "linear", 257, 4096, 1024, 1, FALSE, TRUE, DCR_ACT_QUICK_GELU, "vit-l/14 mlp fc1", FALSE, FALSE },
  { "linear", 257, 1024, 4096, 1, FALSE, TRUE, DCR_ACT_NONE, "vit-l/14 mlp fc2", FALSE, FALSE },
  { "gemm", 257, 257, 64, 16, FALSE, FALSE, DCR_ACT_NONE, "vit-l/14 attention QK^T, 16 heads", FALSE, FALSE },
  { "gemm", 1024, 1024, 257, 1, TRUE, FALSE, DCR_ACT_NONE, "vit-l/14 weight grad dY^T X", FALSE, FALSE },
  { "gemm", 4096, 4096, 4096, 1, FALSE, FALSE, DCR_ACT_NONE, "square", FALSE, TRUE },
};

static gboolean
bench_case (DcrContext *ctx, const DcrBenchOptions *opts, const GemmCase *cs, DcrDtype dtype, GArray *results,
            GError **error)
{
  gint64 batch = MAX (cs->batch, 1);
  /* Linear layers and 1×1 convolutions keep weights [out, in]: B is
   * K-contiguous (trans_b). The weight-gradient case reads dY as [K, M]
   * and X as [K, N]. */
  gboolean trans_b = !cs->trans_a;
  gint64 ashape[3] = { batch, cs->trans_a ? cs->k : cs->m, cs->trans_a ? cs->m : cs->k };
  gint64 bshape[3] = { batch, trans_b ? cs->n : cs->k, trans_b ? cs->k : cs->n };
  gint64 cshape[3] = { batch, cs->m, cs->n };
  int nd = batch > 1 ? 3 : 2; /* linear wants W as [out, in] */
  g_autoptr (DcrTensor) a = dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dtype, nd, ashape + 3 - nd, error);
  g_autoptr (DcrTensor) b = a ? dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, dtype, nd, bshape + 3 - nd, error) : NULL;
  g_autoptr (DcrTensor) c = b ? dcr_tensor_new (ctx, DCR_POOL_ACTIVATIONS, dtype, nd, cshape + 3 - nd, error) : NULL;
  g_autoptr (DcrTensor) bias = c && cs->bias ? dcr_tensor_new (ctx, DCR_POOL_WEIGHTS, dtype, 1, &cs->n, error) : NULL;
  if (!c || (cs->bias && !bias))
    return FALSE;
  if (!dcr_buffer_fill_zero (a->buf, error) || !dcr_buffer_fill_zero (b->buf, error) ||
      (bias && !dcr_buffer_fill_zero (bias->buf, error)))
    return FALSE;

  g_autoptr (DcrSeq) seq = dcr_seq_new (ctx, error);
  if (!seq)
    return FALSE;
  dcr_seq_enable_timing (seq);
  gboolean ok;
  if (g_str_equal (cs->op, "linear"))
    ok = dcr_op_linear (seq, a, b, bias, c, cs->act, error);
  else
    {
      DcrGemmParams p = {
        .trans_a = cs->trans_a, .trans_b = trans_b, .alpha = 1, .act = cs->act, .batch = batch,
        .stride_a = ashape[1] * ashape[2], .stride_b = bshape[1] * bshape[2], .stride_c = cs->m * cs->n,
      };
      ok = dcr_op_gemm (seq, a, b, bias, NULL, c, &p, error);
    }
  double min_ms, median_ms;
  if (!ok || !dcr_bench_time (seq, opts->repeats, &min_ms, &median_ms, error))
    return FALSE;

  GString *shape = g_string_new (NULL);
  g_string_append_printf (shape, "M=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT,
                          cs->m, cs->n, cs->k);
  if (batch > 1)
    g_string_append_printf (shape, " batch=%" G_GINT64_FORMAT, batch);
  g_string_append_printf (shape, " %s%s%s (%s) [%s]", cs->bias ? "+bias" : "",
                          cs->act != DCR_ACT_NONE ? "+" : "", cs->act != DCR_ACT_NONE ? dcr_act_name (cs->act) : "",
                          cs->what, dcr_gemm_kernel_name (dcr_gemm_kernel_for_dtype (ctx, dtype)));
  double flop = 2.0 * batch * cs->m * cs->n * cs->k;
  dcr_bench_add (results, cs->op, shape->str, dtype, flop, 0, min_ms, median_ms, opts->repeats);
  g_string_free (shape, TRUE);
  return TRUE;
}

gboolean
dcr_bench_gemm (DcrContext *ctx, const DcrBenchOptions *opts, GArray *results, GError **error)
{
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  gboolean cpu = dev->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  DcrDtype dtypes[] = { DCR_F32, DCR_F16 };
  for (guint d = 0; d < G_N_ELEMENTS (dtypes); d++)
    {
      if (dtypes[d] == DCR_F16 && !dev->storage_16bit)
        continue;
      for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
        {
          const GemmCase *cs = &cases[i];
          if (!dcr_bench_wanted (opts, cs->op) || (opts->quick && !cs->quick) || (cpu && cs->gpu_only))
            continue;
          if (!bench_case (ctx, opts, cs, dtypes[d], results, error))
            {
              g_prefix_error (error, "%s %s M=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT ": ",
                              cs->op, dcr_dtype_name (dtypes[d]), cs->m, cs->n, cs->k);
              return FALSE;
            }
        }
    }
  return TRUE;
}
