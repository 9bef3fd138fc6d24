/* test-op-gemm.c — GEMM, batched GEMM and linear on the device against
 * dcr_ref_gemm (itself checked against a naive loop): odd shapes, every
 * transpose combination, the fused epilogue, batch strides incl. broadcast,
 * f16 storage, every kernel (subgroup, tiled, and the f16 cooperative-matrix
 * one — on lavapipe its emulation; the real one is skipped without
 * VK_NV_cooperative_matrix) and the shape errors.
 *
 * Tolerances: f32 |got − want| ≤ 1e-5·√K + 1e-5·|want| (inputs in [−1, 1),
 * fp32 accumulation in a different order than the double-precision
 * reference); f16 ≤ 2e-4·√K + 2e-3·|want| (one f16 ulp is 9.8e-4 relative,
 * and the driver may truncate when converting; inputs are rounded to f16
 * before the reference sees them, so only the output rounding differs). */
#include "dcr-test-util.h"
#include "dcr-op-conv.h"
#include "dcr-op-gemm.h"

#include <math.h>
#include <string.h>

/* ---- one case ------------------------------------------------------------- */

typedef struct {
  gint64 m, n, k;
  gboolean trans_a, trans_b;
  float alpha, beta;
  DcrAct act;
  gboolean bias, residual;
  gint64 batch;
  gint64 stride_a, stride_b, stride_c; /* batched only; -1 = packed */
} Case;

/* Batched operands are [X, rows, cols] with X large enough for the strides. */
static void
operand_shape (const Case *cs, gint64 rows, gint64 cols, gint64 stride, int *ndim, gint64 *shape, gint64 *numel)
{
  if (cs->batch <= 1)
    {
      *ndim = 2;
      shape[0] = rows;
      shape[1] = cols;
      *numel = rows * cols;
      return;
    }
  gint64 need = (cs->batch - 1) * stride + rows * cols;
  *ndim = 3;
  shape[0] = (need + rows * cols - 1) / (rows * cols);
  shape[1] = rows;
  shape[2] = cols;
  *numel = shape[0] * rows * cols;
}

static void
run_case (const Case *in, DcrDtype dt)
{
  Case cs = *in;
  if (cs.batch > 1)
    {
      if (cs.stride_a < 0)
        cs.stride_a = cs.m * cs.k;
      if (cs.stride_b < 0)
        cs.stride_b = cs.k * cs.n;
      if (cs.stride_c < 0)
        cs.stride_c = cs.m * cs.n;
    }
  int nda, ndb, ndc;
  gint64 sha[3], shb[3], shc[3], na, nb, nc;
  operand_shape (&cs, cs.trans_a ? cs.k : cs.m, cs.trans_a ? cs.m : cs.k, cs.stride_a, &nda, sha, &na);
  operand_shape (&cs, cs.trans_b ? cs.n : cs.k, cs.trans_b ? cs.k : cs.n, cs.stride_b, &ndb, shb, &nb);
  operand_shape (&cs, cs.m, cs.n, cs.stride_c, &ndc, shc, &nc);

  guint32 seed = (guint32) (cs.m * 7919 + cs.n * 104729 + cs.k * 31 + cs.trans_a * 2 + cs.trans_b);
  g_autofree float *a = dcr_test_random_floats (na, seed, -1.0f, 1.0f);
  g_autofree float *b = dcr_test_random_floats (nb, seed + 1, -1.0f, 1.0f);
  g_autofree float *bias = dcr_test_random_floats (cs.n, seed + 2, -1.0f, 1.0f);
  g_autofree float *res = dcr_test_random_floats (nc, seed + 3, -1.0f, 1.0f);
  /* C before the op (read when beta != 0) */
  g_autofree float *want = dcr_test_random_floats (nc, seed + 4, -1.0f, 1.0f);
  g_autofree float *got = g_new (float, nc);

  g_autoptr (DcrTensor) ta = dcr_test_upload_rounded (dt, nda, sha, a);
  g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (dt, ndb, shb, b);
  g_autoptr (DcrTensor) tbias = cs.bias ? dcr_test_upload_rounded (dt, 1, &cs.n, bias) : NULL;
  g_autoptr (DcrTensor) tres = cs.residual ? dcr_test_upload_rounded (dt, ndc, shc, res) : NULL;
  g_autoptr (DcrTensor) tc = dcr_test_upload_rounded (dt, ndc, shc, want);
  /* the uploads rounded the inputs to dt: the reference sees what the device reads */

  DcrGemmParams p = {
    .trans_a = cs.trans_a, .trans_b = cs.trans_b, .alpha = cs.alpha, .beta = cs.beta, .act = cs.act,
    .batch = cs.batch, .stride_a = cs.stride_a, .stride_b = cs.stride_b, .stride_c = cs.stride_c,
  };
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_gemm (seq, ta, tb, tbias, tres, tc, &p, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  dcr_test_download_into (tc, got);

  dcr_ref_gemm (a, b, cs.bias ? bias : NULL, cs.residual ? res : NULL, want, cs.m, cs.n, cs.k, &p);
  g_autofree char *what = g_strdup_printf (
    "%s %s M=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " ta=%d tb=%d alpha=%g beta=%g "
    "act=%s bias=%d res=%d batch=%" G_GINT64_FORMAT " strides=%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%"
    G_GINT64_FORMAT, dcr_gemm_kernel_name (dcr_gemm_kernel_for_dtype (dcr_test_context (), dt)), dcr_dtype_name (dt),
    cs.m, cs.n, cs.k, cs.trans_a, cs.trans_b, cs.alpha, cs.beta, dcr_act_name (cs.act), cs.bias, cs.residual,
    cs.batch, cs.stride_a, cs.stride_b, cs.stride_c);
  double sk = sqrt ((double) cs.k);
  if (dt == DCR_F16)
    dcr_test_assert_close (what, got, want, nc, 2e-4 * sk, 2e-3);
  else
    dcr_test_assert_close (what, got, want, nc, 1e-5 * sk, 1e-5);
}

/* ---- kernels ------------------------------------------------------------- */

typedef struct {
  const char *kernel; /* DCR_GEMM_KERNEL */
  const char *tile;   /* DCR_GEMM_TILE, or NULL */
  gboolean fewer;     /* fewer epilogue / multi-tile cases (slow compiles) */
} KernelChoice;

/* A kernel name ending in "-sh16" is that kernel with f16 staged tiles
 * ($DCR_COOPMAT_SHARED=f16). */
static void
use_kernel (const KernelChoice *kc)
{
  gboolean sh16 = g_str_has_suffix (kc->kernel, "-sh16");
  g_autofree char *k = sh16 ? g_strndup (kc->kernel, strlen (kc->kernel) - 5) : g_strdup (kc->kernel);
  g_setenv ("DCR_GEMM_KERNEL", k, TRUE);
  if (sh16)
    g_setenv ("DCR_COOPMAT_SHARED", "f16", TRUE);
  else
    g_unsetenv ("DCR_COOPMAT_SHARED");
  if (kc->tile)
    g_setenv ("DCR_GEMM_TILE", kc->tile, TRUE);
  else
    g_unsetenv ("DCR_GEMM_TILE");
}

static gboolean
kernel_available (const KernelChoice *kc)
{
  const DcrDeviceInfo *dev = dcr_context_device (dcr_test_context ());
  if (g_str_equal (kc->kernel, "subgroup") && !dev->subgroup_arithmetic)
    {
      g_test_skip ("no subgroup operations on this device");
      return FALSE;
    }
  if ((g_str_equal (kc->kernel, "coopmat") || g_str_equal (kc->kernel, "coopmat-sh16")) && !dev->coopmat_f16)
    {
      g_autofree char *why = g_strdup_printf (
        "%s has no usable VK_NV_cooperative_matrix (16x16x16 f16*f16+f32, subgroup scope, with f16 arithmetic "
        "and the Vulkan memory model): the coopmat kernel cannot run here (coopmat-emu covers its tiles)",
        dev->name);
      g_test_skip (why);
      return FALSE;
    }
  if (g_str_has_prefix (kc->kernel, "coopmat") && (!dev->shader_float16 || !dev->storage_16bit))
    {
      g_test_skip ("the coopmat kernels need f16 arithmetic and 16-bit storage");
      return FALSE;
    }
  if (g_str_has_prefix (kc->kernel, "coopmat") && kc->tile && !dcr_gemm_coop_tile_usable (dev, kc->tile))
    {
      g_autofree char *why = g_strdup_printf ("tile %s does not fit %s (shared memory or workgroup size)",
                                              kc->tile, dev->name);
      g_test_skip (why);
      return FALSE;
    }
  return TRUE;
}

static void
done (void)
{
  g_unsetenv ("DCR_GEMM_KERNEL");
  g_unsetenv ("DCR_GEMM_TILE");
  g_unsetenv ("DCR_COOPMAT_SHARED");
  dcr_test_assert_no_validation_errors ();
}

/* Lavapipe compiles each pipeline (a shape class: layout, vec4 paths,
 * epilogue, tile) in 0.3–2 s, so the cases below are grouped to reuse
 * pipelines: any number of shapes of one class cost one compile. */

/* Every transpose combination over odd sizes (scalar loads, K tail) and
 * over sizes that are multiples of 4 (vec4 loads), crossing tile edges. */
static void
test_shapes (gconstpointer data, DcrDtype dt)
{
  const KernelChoice *kc = data;
  if (!kernel_available (kc))
    return;
  if (dt == DCR_F16 && !dcr_test_device_has_f16 ())
    {
      g_test_skip ("no 16-bit storage on this device");
      return;
    }
  use_kernel (kc);
  static const gint64 odd[][3] = {
    { 1, 1, 1 }, { 3, 7, 17 }, { 17, 65, 3 }, { 65, 1, 7 }, { 7, 17, 65 }, { 65, 65, 1 }, { 1, 3, 65 },
  };
  static const gint64 by4[][3] = {
    { 4, 8, 4 }, { 16, 64, 8 }, { 68, 132, 36 }, { 36, 20, 68 }, { 20, 12, 32 },
  };
  for (guint t = 0; t < 4; t++)
    {
      /* f16 runs the two combinations that together use every loader */
      if (dt == DCR_F16 && (t == 0 || t == 3))
        continue;
      for (guint i = 0; i < G_N_ELEMENTS (odd); i++)
        {
          Case cs = { odd[i][0], odd[i][1], odd[i][2], t & 1, t >> 1, 1, 0, DCR_ACT_NONE };
          run_case (&cs, dt);
        }
      for (guint i = 0; i < G_N_ELEMENTS (by4); i++)
        {
          Case cs = { by4[i][0], by4[i][1], by4[i][2], t & 1, t >> 1, 1, 0, DCR_ACT_NONE };
          run_case (&cs, dt);
        }
    }
  if (dt == DCR_F32)
    {
      /* vec4 loads in the main loop with a K % 4 tail */
      Case tail = { 12, 8, 19, TRUE, FALSE, 1, 0, DCR_ACT_NONE };
      run_case (&tail, dt);
    }
  done ();
}

static void
test_shapes_f32 (gconstpointer data)
{
  test_shapes (data, DCR_F32);
}

static void
test_shapes_f16 (gconstpointer data)
{
  test_shapes (data, DCR_F16);
}

/* alpha, beta accumulation, bias, residual and each activation, through the
 * scalar (odd N) and the vec4 (N % 4 == 0) epilogue. */
static void
test_epilogue (gconstpointer data)
{
  const KernelChoice *kc = data;
  if (!kernel_available (kc))
    return;
  use_kernel (kc);
  Case cases[] = {
    { 17, 12, 7, FALSE, TRUE, 2.5f, 0, DCR_ACT_NONE, TRUE, TRUE },
    { 9, 65, 17, TRUE, FALSE, 1, 0, DCR_ACT_RELU, TRUE, FALSE },
    { 20, 16, 12, FALSE, FALSE, 3, 0, DCR_ACT_RELU6, FALSE, TRUE },
    { 17, 33, 9, FALSE, TRUE, 4, 0, DCR_ACT_GELU, TRUE, TRUE },
    { 8, 12, 20, TRUE, TRUE, -1.5f, 0, DCR_ACT_QUICK_GELU, TRUE, FALSE },
    /* beta accumulates into C (gradient accumulation) */
    { 7, 17, 3, TRUE, TRUE, 1, 1, DCR_ACT_NONE },
    { 16, 8, 64, FALSE, FALSE, -0.5f, 0.25f, DCR_ACT_NONE, TRUE, TRUE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      /* the activations are shared code; the kernel's own part is the
       * scalar and vec4 stores with bias, residual and beta */
      if (kc->fewer && (i == 1 || i == 2 || i == 4))
        continue;
      run_case (&cases[i], DCR_F32);
    }
  if (dcr_test_device_has_f16 ())
    {
      Case h = { 17, 12, 7, FALSE, TRUE, 2, 0, DCR_ACT_GELU, TRUE, TRUE };
      Case hb = { 7, 3, 17, TRUE, FALSE, 1, 0.5f, DCR_ACT_NONE, TRUE, FALSE };
      run_case (&h, DCR_F16);
      if (!kc->fewer)
        run_case (&hb, DCR_F16);
    }
  done ();
}

/* Batches with packed strides, broadcast (stride 0) A or B and padded
 * strides, over the odd-shape pipelines of test_shapes; the residual case
 * reuses the RELU6 one of test_epilogue. */
static void
test_batched (gconstpointer data)
{
  const KernelChoice *kc = data;
  if (!kernel_available (kc))
    return;
  use_kernel (kc);
  for (guint t = 0; t < 4; t++)
    {
      gboolean ta = t & 1, tb = t >> 1;
      Case packed = { 7, 17, 9, ta, tb, 1, 0, DCR_ACT_NONE, FALSE, FALSE, 3, -1, -1, -1 };
      Case shared_b = { 17, 3, 7, ta, tb, 1, 0, DCR_ACT_NONE, FALSE, FALSE, 4, -1, 0, -1 };
      Case shared_a = { 3, 65, 5, ta, tb, 1, 0, DCR_ACT_NONE, FALSE, FALSE, 2, 0, -1, -1 };
      Case padded = { 5, 7, 3, ta, tb, 1, 0, DCR_ACT_NONE, FALSE, FALSE, 3, 5 * 3 + 7, 7 * 3 + 4, 5 * 7 + 13 };
      run_case (&packed, DCR_F32);
      run_case (&shared_b, DCR_F32);
      run_case (&shared_a, DCR_F32);
      run_case (&padded, DCR_F32);
    }
  Case res = { 8, 12, 4, FALSE, FALSE, 3, 0, DCR_ACT_RELU6, FALSE, TRUE, 3, 0, -1, 8 * 12 + 4 };
  run_case (&res, DCR_F32);
  done ();
}

/* Shapes spanning several tiles in both directions, for the tile variants
 * the other tests do not pin. */
static void
test_multi_tile (gconstpointer data)
{
  const KernelChoice *kc = data;
  if (!kernel_available (kc))
    return;
  use_kernel (kc);
  /* linear-layer layout (the fast path), and a backward-pass layout */
  Case c1 = { 133, 141, 20, FALSE, TRUE, 1, 0, DCR_ACT_NONE, TRUE, FALSE };
  Case c2 = { 130, 260, 24, TRUE, FALSE, 1, 0, DCR_ACT_RELU, FALSE, TRUE };
  run_case (&c1, DCR_F32);
  if (!kc->fewer)
    run_case (&c2, DCR_F32);
  done ();
}

/* The cooperative-matrix kernel (f16 only): every transpose combination over
 * odd shapes (zero-padded edges, K tails shorter than a 16-step) and
 * multiples of 4 (vector loads) crossing block edges, the epilogue, batch
 * strides with broadcast, and blocks in both directions. "coopmat" needs the
 * NV extension (skipped elsewhere, saying why); "coopmat-emu" runs the same
 * loaders, tiles and epilogue with plain loops in place of the fragment
 * operations, so lavapipe checks everything but those. */
static void
test_coopmat (gconstpointer data)
{
  const KernelChoice *kc = data;
  if (!kernel_available (kc))
    return;
  use_kernel (kc);
  static const gint64 shapes[][3] = {
    { 1, 1, 1 }, { 3, 7, 17 }, { 17, 65, 3 }, { 65, 1, 7 }, { 7, 17, 65 },
    { 16, 64, 8 }, { 68, 132, 36 }, { 36, 20, 68 },
  };
  for (guint t = 0; t < 4; t++)
    for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
      {
        /* fewer: an odd shape and one of multiples of 4, A or B transposed */
        if (kc->fewer && ((i != 1 && i != 6) || t == 0 || t == 3))
          continue;
        Case cs = { shapes[i][0], shapes[i][1], shapes[i][2], t & 1, t >> 1, 1, 0, DCR_ACT_NONE };
        run_case (&cs, DCR_F16);
      }
  /* several blocks in both directions and several K steps */
  Case big = { 133, 141, 100, FALSE, TRUE, 1, 0, DCR_ACT_RELU, TRUE, FALSE };
  run_case (&big, DCR_F16);
  if (kc->fewer)
    {
      done ();
      return;
    }
  Case epi[] = {
    { 17, 12, 7, FALSE, TRUE, 2.5f, 0, DCR_ACT_NONE, TRUE, TRUE },
    { 9, 65, 17, TRUE, FALSE, 1, 0, DCR_ACT_RELU, TRUE, FALSE },
    { 17, 33, 40, FALSE, TRUE, 1, 0, DCR_ACT_GELU, TRUE, TRUE },
    { 16, 8, 64, FALSE, FALSE, -0.5f, 0.25f, DCR_ACT_NONE, TRUE, TRUE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (epi); i++)
    run_case (&epi[i], DCR_F16);
  Case packed = { 7, 17, 9, FALSE, TRUE, 1, 0, DCR_ACT_NONE, FALSE, FALSE, 3, -1, -1, -1 };
  Case shared_b = { 33, 3, 20, FALSE, FALSE, 1, 0, DCR_ACT_NONE, FALSE, FALSE, 4, -1, 0, -1 };
  Case shared_a = { 3, 65, 12, TRUE, TRUE, 1, 0, DCR_ACT_NONE, FALSE, FALSE, 2, 0, -1, -1 };
  run_case (&packed, DCR_F16);
  run_case (&shared_b, DCR_F16);
  run_case (&shared_a, DCR_F16);
  done ();
}

/* f16 convolutions (groups 1) on the same tiles: dcr_op_conv2d hands them to
 * the cooperative-matrix kernel when DCR_GEMM_KERNEL picks it, against
 * dcr_ref_conv2d: 1×1 (ResNet's reduce/expand, and stride 2 as in its
 * downsample), 3×3 with padding, stride 2 and dilation, the 7×7 stem with
 * three channels (scalar loads), the epilogue (bias, residual, ReLU/ReLU6),
 * and enough pixels for several row blocks. */
static void
test_coopmat_conv (gconstpointer data)
{
  const KernelChoice *kc = data;
  if (!kernel_available (kc))
    return;
  use_kernel (kc);
  typedef struct {
    gint64 n, h, w, cin, cout;
    int k, stride, pad, dil;
    DcrAct act;
    gboolean bias, res;
  } ConvCase;
  static const ConvCase cases[] = {
    { 2, 7, 9, 16, 20, 1, 1, 0, 1, DCR_ACT_RELU, TRUE, FALSE },
    { 1, 9, 8, 12, 36, 3, 1, 1, 1, DCR_ACT_RELU, TRUE, TRUE },
    { 2, 11, 10, 8, 17, 3, 2, 1, 1, DCR_ACT_NONE, FALSE, FALSE },
    { 1, 12, 12, 8, 8, 3, 1, 2, 2, DCR_ACT_RELU6, TRUE, FALSE },
    { 1, 23, 21, 3, 16, 7, 2, 3, 1, DCR_ACT_RELU, TRUE, FALSE },
    { 2, 9, 9, 20, 40, 1, 2, 0, 1, DCR_ACT_NONE, TRUE, FALSE },
    { 1, 5, 7, 6, 5, 3, 1, 1, 1, DCR_ACT_NONE, TRUE, TRUE },  /* Cin % 4 != 0 */
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      /* fewer: 3×3 with padding and a residual, and the stem's scalar loads */
      if (kc->fewer && i != 1 && i != 4)
        continue;
      const ConvCase *c = &cases[i];
      DcrConv2dParams p = { .stride_h = c->stride, .stride_w = c->stride, .pad_top = c->pad,
                            .pad_bottom = c->pad, .pad_left = c->pad, .pad_right = c->pad,
                            .dilation_h = c->dil, .dilation_w = c->dil, .act = c->act };
      gint64 ho = dcr_conv2d_out_size (c->h, c->k, c->stride, c->pad, c->pad, c->dil);
      gint64 wo = dcr_conv2d_out_size (c->w, c->k, c->stride, c->pad, c->pad, c->dil);
      gint64 xs[] = { c->n, c->h, c->w, c->cin }, ws[] = { c->cout, c->k, c->k, c->cin };
      gint64 ys[] = { c->n, ho, wo, c->cout };
      gint64 nx = c->n * c->h * c->w * c->cin, nw = c->cout * c->k * c->k * c->cin, ny = c->n * ho * wo * c->cout;
      g_autofree float *x = dcr_test_random_floats (nx, 100 + i, -1.0f, 1.0f);
      g_autofree float *w = dcr_test_random_floats (nw, 200 + i, -1.0f, 1.0f);
      g_autofree float *bias = dcr_test_random_floats (c->cout, 300 + i, -1.0f, 1.0f);
      g_autofree float *res = dcr_test_random_floats (ny, 400 + i, -1.0f, 1.0f);
      g_autofree float *want = g_new (float, ny);
      g_autofree float *got = g_new (float, ny);
      g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F16, 4, xs, x);
      g_autoptr (DcrTensor) tw = dcr_test_upload_rounded (DCR_F16, 4, ws, w);
      g_autoptr (DcrTensor) tb = c->bias ? dcr_test_upload_rounded (DCR_F16, 1, &c->cout, bias) : NULL;
      g_autoptr (DcrTensor) tr = c->res ? dcr_test_upload_rounded (DCR_F16, 4, ys, res) : NULL;
      g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (DCR_F16, 4, ys, want);
      g_autoptr (GError) err = NULL;
      g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
      g_assert_true (dcr_op_conv2d (seq, tx, tw, c->bias ? tb : NULL, c->res ? tr : NULL, ty, &p, &err));
      g_assert_no_error (err);
      dcr_test_submit_wait (seq);
      dcr_test_download_into (ty, got);
      dcr_ref_conv2d (x, c->n, c->h, c->w, c->cin, w, c->cout, c->k, c->k, c->bias ? bias : NULL,
                      c->res ? res : NULL, want, &p);
      g_autofree char *what = g_strdup_printf ("%s conv f16 %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%"
                                               G_GINT64_FORMAT "x%" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT
                                               " k%d s%d p%d d%d", kc->kernel, c->n, c->h, c->w, c->cin, c->cout,
                                               c->k, c->stride, c->pad, c->dil);
      dcr_test_assert_close (what, got, want, ny, 2e-4 * sqrt ((double) c->k * c->k * c->cin), 2e-3);
    }
  done ();
}

/* ---- things that do not depend on the kernel ----------------------------- */

/* The reference against the plainest loop there is. */
static void
test_ref_naive (void)
{
  for (int v = 0; v < 2; v++)
    {
      gint64 m = v ? 5 : 7, n = v ? 3 : 9, k = v ? 6 : 4, batch = v ? 2 : 1;
      gboolean ta = v, tb = v;
      gint64 sa = m * k, sb = k * n, sc = m * n;
      g_autofree float *a = g_new (float, batch * sa);
      g_autofree float *b = g_new (float, batch * sb);
      g_autofree float *bias = g_new (float, n);
      g_autofree float *res = g_new (float, batch * sc);
      g_autofree float *c = g_new (float, batch * sc);
      g_autofree float *want = g_new (float, batch * sc);
      dcr_test_fill (a, batch * sa, 11 + v, -1, 1);
      dcr_test_fill (b, batch * sb, 12 + v, -1, 1);
      dcr_test_fill (bias, n, 13 + v, -1, 1);
      dcr_test_fill (res, batch * sc, 14 + v, -1, 1);
      dcr_test_fill (c, batch * sc, 15 + v, -1, 1);
      float alpha = v ? 1.5f : 1.0f, beta = v ? 0.0f : 0.5f;
      DcrAct act = v ? DCR_ACT_RELU : DCR_ACT_NONE;
      for (gint64 z = 0; z < batch; z++)
        for (gint64 i = 0; i < m; i++)
          for (gint64 j = 0; j < n; j++)
            {
              float s = 0;
              for (gint64 kk = 0; kk < k; kk++)
                {
                  float x = ta ? a[z * sa + kk * m + i] : a[z * sa + i * k + kk];
                  float y = tb ? b[z * sb + j * k + kk] : b[z * sb + kk * n + j];
                  s += x * y;
                }
              float out = alpha * s + bias[j] + res[z * sc + i * n + j];
              if (act == DCR_ACT_RELU && out < 0)
                out = 0;
              want[z * sc + i * n + j] = out + beta * c[z * sc + i * n + j];
            }
      DcrGemmParams p = { .trans_a = ta, .trans_b = tb, .alpha = alpha, .beta = beta, .act = act,
                          .batch = batch, .stride_a = sa, .stride_b = sb, .stride_c = sc };
      dcr_ref_gemm (a, b, bias, res, c, m, n, k, &p);
      dcr_test_assert_close ("dcr_ref_gemm vs naive loop", c, want, batch * sc, 1e-5, 1e-5);
    }
  /* alpha 0 means 1, and a hand-computed 2×2 */
  float a[] = { 1, 2, 3, 4 }, b[] = { 5, 6, 7, 8 }, c[4], want[] = { 19, 22, 43, 50 };
  DcrGemmParams p = { 0 };
  dcr_ref_gemm (a, b, NULL, NULL, c, 2, 2, 2, &p);
  dcr_test_assert_close ("2x2", c, want, 4, 0, 0);
}

/* y = act(x·Wᵀ + b) with leading dims folded into rows. */
static void
test_linear (void)
{
  g_autoptr (GError) err = NULL;
  const gint64 xs[] = { 2, 5, 12 }, ws[] = { 7, 12 }, ys[] = { 2, 5, 7 };
  g_autofree float *x = dcr_test_random_floats (120, 1, -1.0f, 1.0f);
  g_autofree float *w = dcr_test_random_floats (84, 2, -1.0f, 1.0f);
  g_autofree float *bias = dcr_test_random_floats (7, 3, -1.0f, 1.0f);
  g_autofree float *want = g_new0 (float, 70);
  g_autofree float *got = g_new0 (float, 70);
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 3, xs, x);
  g_autoptr (DcrTensor) tw = dcr_test_upload_rounded (DCR_F32, 2, ws, w);
  g_autoptr (DcrTensor) tb = dcr_test_upload_rounded (DCR_F32, 1, &ws[0], bias);
  g_autoptr (DcrTensor) ty = dcr_test_upload_rounded (DCR_F32, 3, ys, want);
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_linear (seq, tx, tw, tb, ty, DCR_ACT_QUICK_GELU, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  dcr_test_download_into (ty, got);
  DcrGemmParams p = { .trans_b = TRUE, .act = DCR_ACT_QUICK_GELU };
  dcr_ref_gemm (x, w, bias, NULL, want, 10, 7, 12, &p);
  dcr_test_assert_close ("linear", got, want, 70, 1e-5 * sqrt (12.0), 1e-5);
  dcr_test_assert_no_validation_errors ();
}

/* Leading dims fold into each operand's outer dimension: a weight gradient
 * dW[out, in] = dYᵀ·X straight from dY [2, 5, out] and X [2, 5, in]. */
static void
test_fold (void)
{
  g_autoptr (GError) err = NULL;
  const gint64 dys[] = { 2, 5, 7 }, xs[] = { 2, 5, 12 }, ws[] = { 7, 12 };
  g_autofree float *dy = dcr_test_random_floats (70, 4, -1.0f, 1.0f);
  g_autofree float *x = dcr_test_random_floats (120, 5, -1.0f, 1.0f);
  g_autofree float *want = dcr_test_random_floats (84, 6, -1.0f, 1.0f);
  g_autofree float *got = g_new0 (float, 84);
  g_autoptr (DcrTensor) tdy = dcr_test_upload_rounded (DCR_F32, 3, dys, dy);
  g_autoptr (DcrTensor) tx = dcr_test_upload_rounded (DCR_F32, 3, xs, x);
  g_autoptr (DcrTensor) tw = dcr_test_upload_rounded (DCR_F32, 2, ws, want);
  /* accumulate into the existing gradient, as a backward pass does */
  DcrGemmParams p = { .trans_a = TRUE, .alpha = 1, .beta = 1 };
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  g_assert_true (dcr_op_gemm (seq, tdy, tx, NULL, NULL, tw, &p, &err));
  g_assert_no_error (err);
  dcr_test_submit_wait (seq);
  dcr_test_download_into (tw, got);
  dcr_ref_gemm (dy, x, NULL, NULL, want, 7, 12, 10, &p);
  dcr_test_assert_close ("dW = dY^T X", got, want, 84, 1e-5 * sqrt (10.0), 1e-5);
  dcr_test_assert_no_validation_errors ();
}

static DcrTensor *
empty (DcrDtype dt, int ndim, const gint64 *shape)
{
  g_autoptr (GError) err = NULL;
  DcrTensor *t = dcr_tensor_new (dcr_test_context (), DCR_POOL_ACTIVATIONS, dt, ndim, shape, &err);
  g_assert_no_error (err);
  return t;
}

static void
expect_error (gboolean ok, GError **err, int code, const char *const *needles)
{
  g_assert_false (ok);
  g_assert_error (*err, DCR_OPS_ERROR, code);
  for (; *needles; needles++)
    if (!strstr ((*err)->message, *needles))
      g_test_fail_printf ("error message \"%s\" does not mention \"%s\"", (*err)->message, *needles);
  g_clear_error (err);
}

static void
test_errors (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (DcrSeq) seq = dcr_test_seq_new ();
  const gint64 s35[] = { 3, 5 }, s45[] = { 4, 5 }, s53[] = { 5, 3 }, s34[] = { 3, 4 }, s33[] = { 3, 3 };
  const gint64 s4[] = { 4 }, s233[] = { 2, 3, 3 };
  g_autoptr (DcrTensor) a35 = empty (DCR_F32, 2, s35);
  g_autoptr (DcrTensor) b45 = empty (DCR_F32, 2, s45);
  g_autoptr (DcrTensor) b53 = empty (DCR_F32, 2, s53);
  g_autoptr (DcrTensor) c34 = empty (DCR_F32, 2, s34);
  g_autoptr (DcrTensor) c33 = empty (DCR_F32, 2, s33);
  g_autoptr (DcrTensor) v4 = empty (DCR_F32, 1, s4);
  g_autoptr (DcrTensor) c233 = empty (DCR_F32, 3, s233);
  g_autoptr (DcrTensor) i34 = empty (DCR_I32, 2, s34);
  DcrGemmParams plain = { .alpha = 1 };

  /* K disagrees: A [3,5] · B [4,5] */
  const char *k_msg[] = { "gemm", "[3, 5] f32", "[4, 5] f32", "K", NULL };
  expect_error (dcr_op_gemm (seq, a35, b45, NULL, NULL, c34, &plain, &err), &err, DCR_OPS_ERROR_SHAPE, k_msg);
  /* N disagrees with C */
  const char *n_msg[] = { "gemm", "[5, 3] f32", "[3, 4] f32", "N=", NULL };
  expect_error (dcr_op_gemm (seq, a35, b53, NULL, NULL, c34, &plain, &err), &err, DCR_OPS_ERROR_SHAPE, n_msg);
  /* M disagrees when A is read transposed */
  DcrGemmParams ta = { .trans_a = TRUE };
  const char *m_msg[] = { "M=5", "transposed", "[3, 4] f32", NULL };
  expect_error (dcr_op_gemm (seq, a35, c34, NULL, NULL, c34, &ta, &err), &err, DCR_OPS_ERROR_SHAPE, m_msg);
  /* bias of the wrong length */
  const char *bias_msg[] = { "bias", "[4] f32", "N=3", NULL };
  expect_error (dcr_op_gemm (seq, a35, b53, v4, NULL, c33, &plain, &err), &err, DCR_OPS_ERROR_SHAPE, bias_msg);
  /* residual of the wrong shape */
  const char *res_msg[] = { "residual", "[3, 4] f32", NULL };
  expect_error (dcr_op_gemm (seq, a35, b53, NULL, c34, c33, &plain, &err), &err, DCR_OPS_ERROR_SHAPE, res_msg);
  /* batched: stride_c 0 would make every batch entry write the same C */
  DcrGemmParams bad_c = { .batch = 2, .stride_c = 0 };
  const char *sc_msg[] = { "stride_c", NULL };
  expect_error (dcr_op_gemm (seq, a35, b53, NULL, NULL, c233, &bad_c, &err), &err, DCR_OPS_ERROR_SHAPE, sc_msg);
  /* batched: A too small for its stride */
  DcrGemmParams bad_a = { .batch = 2, .stride_a = 15, .stride_c = 9 };
  const char *sa_msg[] = { "A [3, 5] f32", "stride 15", NULL };
  expect_error (dcr_op_gemm (seq, a35, b53, NULL, NULL, c233, &bad_a, &err), &err, DCR_OPS_ERROR_SHAPE, sa_msg);
  /* beta with an activation */
  DcrGemmParams beta_act = { .beta = 1, .act = DCR_ACT_RELU };
  const char *ba_msg[] = { "beta", "relu", NULL };
  expect_error (dcr_op_gemm (seq, a35, b53, NULL, NULL, c33, &beta_act, &err), &err, DCR_OPS_ERROR_UNSUPPORTED, ba_msg);
  /* dtypes */
  const char *dt_msg[] = { "i32", NULL };
  expect_error (dcr_op_gemm (seq, a35, b53, NULL, NULL, i34, &plain, &err), &err, DCR_OPS_ERROR_DTYPE, dt_msg);
  if (dcr_test_device_has_f16 ())
    {
      g_autoptr (DcrTensor) h33 = empty (DCR_F16, 2, s33);
      const char *mix_msg[] = { "dtype", "f16", NULL };
      expect_error (dcr_op_gemm (seq, a35, b53, NULL, NULL, h33, &plain, &err), &err, DCR_OPS_ERROR_DTYPE, mix_msg);
    }
  /* linear: W [5, 3] is [out=5, in=3], x [3, 5] has in=5 */
  const char *lin_msg[] = { "linear", "[3, 5] f32", "[5, 3] f32", NULL };
  expect_error (dcr_op_linear (seq, a35, b53, NULL, c33, DCR_ACT_NONE, &err), &err, DCR_OPS_ERROR_SHAPE, lin_msg);
  /* nothing was recorded */
  g_assert_cmpuint (dcr_seq_n_dispatches (seq), ==, 0);
  dcr_test_assert_no_validation_errors ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* The full suites run on one small tile of each kernel; the tiles used
   * for large problems get the multi-tile test. */
  static const KernelChoice full[] = { { "subgroup", "16x4", FALSE }, { "tiled", "small", TRUE } };
  static const KernelChoice tiles[] = {
    { "subgroup", "32x8", FALSE }, { "subgroup", "48x8", TRUE }, { "tiled", "large", FALSE },
    { "tiled", "medium", TRUE }, { "tiled", "compat", TRUE },
  };
  g_test_add_func ("/op-gemm/ref-vs-naive", test_ref_naive);
  g_test_add_func ("/op-gemm/linear", test_linear);
  g_test_add_func ("/op-gemm/fold", test_fold);
  g_test_add_func ("/op-gemm/errors", test_errors);
  static const struct {
    const char *name;
    GTestDataFunc fn;
  } suites[] = {
    { "shapes-f32", test_shapes_f32 },
    { "shapes-f16", test_shapes_f16 },
    { "epilogue", test_epilogue },
    { "batched", test_batched },
    { "multi-tile", test_multi_tile },
  };
  for (guint i = 0; i < G_N_ELEMENTS (full); i++)
    for (guint j = 0; j < G_N_ELEMENTS (suites); j++)
      {
        g_autofree char *path = g_strdup_printf ("/op-gemm/%s-%s/%s", full[i].kernel, full[i].tile, suites[j].name);
        g_test_add_data_func (path, &full[i], suites[j].fn);
      }
  for (guint i = 0; i < G_N_ELEMENTS (tiles); i++)
    {
      g_autofree char *path = g_strdup_printf ("/op-gemm/%s-%s/multi-tile", tiles[i].kernel, tiles[i].tile);
      g_test_add_data_func (path, &tiles[i], test_multi_tile);
    }
  static const KernelChoice coop[] = {
    { "coopmat-emu", "coop-small", FALSE }, { "coopmat", "coop-small", FALSE },
    { "coopmat", "coop-medium", FALSE }, { "coopmat", "coop-large", FALSE },
    { "coopmat-emu", "coop-large8", TRUE },
    { "coopmat", "coop-large8", FALSE }, { "coopmat", "coop-k64", FALSE },
    { "coopmat", "coop-wide", FALSE }, { "coopmat", "coop-tall", FALSE },
    { "coopmat-emu-sh16", "coop-small", TRUE }, { "coopmat-sh16", "coop-small", FALSE },
    { "coopmat-sh16", "coop-large8", FALSE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (coop); i++)
    {
      g_autofree char *path = g_strdup_printf ("/op-gemm/%s-%s/f16", coop[i].kernel, coop[i].tile);
      g_test_add_data_func (path, &coop[i], test_coopmat);
      g_autofree char *cpath = g_strdup_printf ("/op-gemm/%s-%s/conv-f16", coop[i].kernel, coop[i].tile);
      g_test_add_data_func (cpath, &coop[i], test_coopmat_conv);
    }
  int rc = g_test_run ();
  DcrContextStats st;
  dcr_context_stats (dcr_test_context (), &st);
  g_test_message ("%" G_GUINT64_FORMAT " pipelines built", st.pipelines_created);
  dcr_test_context_teardown ();
  return rc;
}
