/* dcr-op-gemm.c — GEMM, batched GEMM and linear layers: shape checks, the
 * choice between the CPU-friendly subgroup kernel and the shared-memory
 * tiled one (shaders/gemm.comp), their tile variants, and the C reference. */
#include "dcr-op-gemm.h"

#include <string.h>

/* Matches the push-constant block of shaders/gemm.comp. */
typedef struct {
  guint32 m, n, k;
  guint32 lda, ldb;
  guint32 sa, sb, sc;
  guint32 m_base, z_base;
  float alpha, beta;
} GemmPush;

/* Spec constant ids of shaders/gemm.comp. */
enum {
  SPEC_TILE0 = 3,   /* 3–9: tile shape, per kernel */
  SPEC_TRANS_A = 10,
  SPEC_TRANS_B,
  SPEC_VEC_A,
  SPEC_VEC_B,
  SPEC_VEC_C,
  SPEC_ACT,
  SPEC_HAS_BIAS,
  SPEC_HAS_RES,
  SPEC_HAS_BETA,
  N_SPEC
};

/* A problem after the shape checks. */
typedef struct {
  gint64 m, n, k;
  gint64 batch;
  gint64 sa, sb, sc;
} GemmShape;

const char *
dcr_gemm_kernel_name (DcrGemmKernel kernel)
{
  switch (kernel)
    {
    case DCR_GEMM_KERNEL_AUTO: return "auto";
    case DCR_GEMM_KERNEL_SUBGROUP: return "subgroup";
    case DCR_GEMM_KERNEL_TILED: return "tiled";
    case DCR_GEMM_KERNEL_COOPMAT: return "coopmat";
    case DCR_GEMM_KERNEL_COOPMAT_EMU: return "coopmat-emu";
    }
  return "?";
}

static gboolean
subgroup_usable (const DcrDeviceInfo *dev)
{
  return dev->subgroup_arithmetic && dev->subgroup_size >= 1 && dev->subgroup_size <= dev->max_workgroup_invocations;
}

DcrGemmKernel
dcr_gemm_kernel_for (DcrContext *ctx)
{
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  const char *env = g_getenv ("DCR_GEMM_KERNEL");
  if (g_strcmp0 (env, "subgroup") == 0)
    return DCR_GEMM_KERNEL_SUBGROUP;
  if (g_strcmp0 (env, "tiled") == 0)
    return DCR_GEMM_KERNEL_TILED;
  /* CPU drivers run memory access as per-lane scalar code and barriers as
   * coroutine switches: shared-memory tiles are ~40× slower there. */
  if (dev->type == VK_PHYSICAL_DEVICE_TYPE_CPU && subgroup_usable (dev))
    return DCR_GEMM_KERNEL_SUBGROUP;
  return DCR_GEMM_KERNEL_TILED;
}

DcrGemmKernel
dcr_gemm_kernel_for_dtype (DcrContext *ctx, DcrDtype dtype)
{
  const char *env = g_getenv ("DCR_GEMM_KERNEL");
  if (dtype == DCR_F16)
    {
      if (g_strcmp0 (env, "coopmat") == 0)
        return DCR_GEMM_KERNEL_COOPMAT;
      if (g_strcmp0 (env, "coopmat-emu") == 0)
        return DCR_GEMM_KERNEL_COOPMAT_EMU;
      if (!env && dcr_context_device (ctx)->coopmat_f16)
        return DCR_GEMM_KERNEL_COOPMAT;
    }
  return dcr_gemm_kernel_for (ctx);
}

/* ---- shape checks ------------------------------------------------------ */

static gint64
last_dim (const DcrTensor *t)
{
  return t->shape[t->ndim - 1];
}

static gboolean
shape_error (GError **error, const char *op, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static gboolean
shape_error (GError **error, const char *op, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_SHAPE, "%s: %s", op, msg);
  return FALSE;
}

/* Batched operands: `batch` matrices of rows × cols, `stride` apart. */
static gboolean
check_extent (const char *op, const char *what, const DcrTensor *t, gint64 batch, gint64 stride,
              gint64 rows, gint64 cols, GError **error)
{
  gint64 need = (batch - 1) * stride + rows * cols;
  if (stride < 0 || need > dcr_tensor_numel (t))
    {
      g_autofree char *s = dcr_ops_shape_string (t);
      return shape_error (error, op, "%s %s is too small for %" G_GINT64_FORMAT " batch entries of %"
                          G_GINT64_FORMAT "×%" G_GINT64_FORMAT " with stride %" G_GINT64_FORMAT
                          " (needs %" G_GINT64_FORMAT " elements)", what, s, batch, rows, cols, stride, need);
    }
  return TRUE;
}

static gboolean
resolve_shape (const char *op, const DcrTensor *a, const DcrTensor *b, const DcrTensor *bias,
               const DcrTensor *res, const DcrTensor *c, const DcrGemmParams *p, GemmShape *s, GError **error)
{
  g_autofree char *as = dcr_ops_shape_string (a);
  g_autofree char *bs = dcr_ops_shape_string (b);
  g_autofree char *cs = dcr_ops_shape_string (c);
  gint64 ma, ka, kb, nb;
  memset (s, 0, sizeof *s);
  s->batch = MAX (p->batch, 1);

  if (s->batch == 1)
    {
      /* Leading dims fold into the outer (non-contiguous) dimension. */
      s->n = last_dim (c);
      s->m = dcr_tensor_numel (c) / s->n;
      if (p->trans_a)
        ma = last_dim (a), ka = dcr_tensor_numel (a) / ma;
      else
        ka = last_dim (a), ma = dcr_tensor_numel (a) / ka;
      if (p->trans_b)
        kb = last_dim (b), nb = dcr_tensor_numel (b) / kb;
      else
        nb = last_dim (b), kb = dcr_tensor_numel (b) / nb;
    }
  else
    {
      if (a->ndim < 2 || b->ndim < 2 || c->ndim < 2)
        return shape_error (error, op, "batched operands need at least 2 dims (A %s, B %s, C %s)", as, bs, cs);
      s->m = c->shape[c->ndim - 2];
      s->n = last_dim (c);
      gint64 a0 = a->shape[a->ndim - 2], a1 = last_dim (a);
      gint64 b0 = b->shape[b->ndim - 2], b1 = last_dim (b);
      ma = p->trans_a ? a1 : a0;
      ka = p->trans_a ? a0 : a1;
      kb = p->trans_b ? b1 : b0;
      nb = p->trans_b ? b0 : b1;
    }

  if (ka != kb)
    return shape_error (error, op, "A %s and B %s disagree on K (%" G_GINT64_FORMAT " vs %" G_GINT64_FORMAT
                        "; trans_a=%d, trans_b=%d)", as, bs, ka, kb, !!p->trans_a, !!p->trans_b);
  if (ma != s->m)
    return shape_error (error, op, "A %s gives M=%" G_GINT64_FORMAT " rows%s but C %s has M=%" G_GINT64_FORMAT,
                        as, ma, p->trans_a ? " (transposed)" : "", cs, s->m);
  if (nb != s->n)
    return shape_error (error, op, "B %s gives N=%" G_GINT64_FORMAT " columns%s but C %s has N=%" G_GINT64_FORMAT,
                        bs, nb, p->trans_b ? " (transposed)" : "", cs, s->n);
  s->k = ka;

  if (s->batch > 1)
    {
      s->sa = p->stride_a;
      s->sb = p->stride_b;
      s->sc = p->stride_c;
      if (s->sc < s->m * s->n)
        return shape_error (error, op, "stride_c %" G_GINT64_FORMAT " makes the %" G_GINT64_FORMAT
                            " outputs of C %s overlap (needs at least M·N = %" G_GINT64_FORMAT ")",
                            s->sc, s->batch, cs, s->m * s->n);
      if (!check_extent (op, "A", a, s->batch, s->sa, s->m, s->k, error) ||
          !check_extent (op, "B", b, s->batch, s->sb, s->k, s->n, error) ||
          !check_extent (op, "C", c, s->batch, s->sc, s->m, s->n, error))
        return FALSE;
    }

  if (bias && (dcr_tensor_numel (bias) != s->n || last_dim (bias) != s->n))
    {
      g_autofree char *bi = dcr_ops_shape_string (bias);
      return shape_error (error, op, "bias %s must hold N=%" G_GINT64_FORMAT " values for C %s", bi, s->n, cs);
    }
  if (res && (dcr_tensor_numel (res) != dcr_tensor_numel (c) || last_dim (res) != s->n))
    {
      g_autofree char *rs = dcr_ops_shape_string (res);
      return shape_error (error, op, "residual %s must have the shape of C %s", rs, cs);
    }
  return TRUE;
}

/* ---- variants ------------------------------------------------------------ */

typedef struct {
  guint32 bm, bn, bk, tm, tn;
} TiledVariant;

/* Shared-memory variants, largest first: 128×128 blocks with 8×8 per thread
 * for big problems, smaller blocks when the big ones would leave most of the
 * GPU idle; the last fits Vulkan's minimum limits (128 invocations, 16 KiB). */
static const TiledVariant tiled_variants[] = {
  { 128, 128, 8, 8, 8 },
  { 64, 64, 16, 4, 4 },
  { 32, 32, 32, 2, 2 },
  { 64, 64, 8, 8, 8 },
};
/* $DCR_GEMM_TILE=NAME forces one, for tests and tuning. */
static const char *const tiled_variant_names[] = { "large", "medium", "small", "compat" };

static guint32
tiled_threads (const TiledVariant *v)
{
  return (v->bm / v->tm) * (v->bn / v->tn);
}

static gboolean
tiled_fits (const TiledVariant *v, const DcrDeviceInfo *dev)
{
  guint32 shared = 2 * v->bk * (v->bm / 4 + 1 + v->bn / 4 + 1) * 16;
  return tiled_threads (v) <= dev->max_workgroup_invocations && shared <= dev->max_shared_memory;
}

static const TiledVariant *
pick_tiled (const DcrDeviceInfo *dev, const GemmShape *s)
{
  /* Enough blocks to fill a large GPU (H100: 132 SMs, 2 blocks each). */
  const gint64 want_blocks = 256;
  const char *env = g_getenv ("DCR_GEMM_TILE");
  for (guint i = 0; env && i < G_N_ELEMENTS (tiled_variants); i++)
    if (g_str_equal (env, tiled_variant_names[i]) && tiled_fits (&tiled_variants[i], dev))
      return &tiled_variants[i];
  const TiledVariant *best = NULL;
  for (guint i = 0; i < 3; i++)
    {
      const TiledVariant *v = &tiled_variants[i];
      if (!tiled_fits (v, dev))
        continue;
      best = v;
      gint64 blocks = ((s->m + v->bm - 1) / v->bm) * ((s->n + v->bn - 1) / v->bn) * s->batch;
      if (blocks >= want_blocks)
        break;
    }
  return best ? best : &tiled_variants[3];
}

/* Subgroup kernel: rows per subgroup tile (TM) and columns per lane (TN).
 * On lavapipe each vec4 load or store costs ~500 instructions per subgroup
 * and an FMA with its accumulator traffic ~3, so one step of K costs about
 * 127/TM (B loads) + 21/TN (A loads and shuffles) + 3 instructions per
 * vector FMA and each output ~16 more to store; pick the variant with the
 * least total over the padded problem. Bigger tiles are faster still but
 * compile slower (32 × 8 ≈ 1.3 s, 48 × 8 ≈ 2.5 s, 64 × 8 ≈ 5 s on 2 cores),
 * so 48 rows only pay for big products. */
static const struct {
  guint32 tm, tn;
  gint64 min_macs;
} subgroup_tiles[] = {
  { 48, 8, 64 << 20 },
  { 32, 8, 0 },
  { 32, 4, 0 },
  { 16, 8, 0 },
  { 16, 4, 0 },
};

static void
pick_subgroup (const DcrDeviceInfo *dev, const GemmShape *s, guint32 *tm, guint32 *tn)
{
  *tm = subgroup_tiles[1].tm;
  *tn = subgroup_tiles[1].tn;
  /* $DCR_GEMM_TILE=TMxTN forces one, for tests and tuning. */
  const char *env = g_getenv ("DCR_GEMM_TILE");
  for (guint i = 0; env && i < G_N_ELEMENTS (subgroup_tiles); i++)
    {
      char name[16];
      g_snprintf (name, sizeof name, "%ux%u", subgroup_tiles[i].tm, subgroup_tiles[i].tn);
      if (g_str_equal (env, name))
        {
          *tm = subgroup_tiles[i].tm;
          *tn = subgroup_tiles[i].tn;
          return;
        }
    }
  double best = G_MAXDOUBLE;
  gint64 macs = s->m * s->n * s->k * s->batch;
  for (guint i = 0; i < G_N_ELEMENTS (subgroup_tiles); i++)
    {
      guint32 rows = subgroup_tiles[i].tm, per_lane = subgroup_tiles[i].tn;
      if (macs < subgroup_tiles[i].min_macs)
        continue;
      gint64 cols = (gint64) per_lane * dev->subgroup_size;
      double rows_padded = (double) ((s->m + rows - 1) / rows) * rows;
      double cols_padded = (double) ((s->n + cols - 1) / cols) * cols;
      double per_fma = 127.0 / rows + 21.0 / per_lane + 3.0;
      double cost = rows_padded * cols_padded * (s->k * per_fma / 8.0 + 16.0);
      if (cost < best * 0.999)
        {
          best = cost;
          *tm = rows;
          *tn = per_lane;
        }
    }
}

/* Cooperative-matrix variants: a BM × BN block per workgroup, (BM/WM)·(BN/WN)
 * subgroups each computing WM × WN in 16×16 fragments, K in steps of BK.
 * Big blocks for big problems (fewer re-reads of A and B), smaller ones when
 * the big ones would leave a large GPU idle: the first N_COOP_AUTO are
 * chosen from by size; the others only by name ($DCR_GEMM_TILE), for
 * measuring them. The emulation (no cooperative matrices: plain loops, for
 * tests on lavapipe) uses the smallest unless named.
 * The big block has eight subgroups of 64 × 32: on an H200 (2026-11-30,
 * BENCHMARKS.md) it ran ViT-L/14 f16 at batch 128 at 175.5 img/s against
 * 118.0 for four subgroups of 64 × 64 ("coop-large"), and ResNet-50 f16 at
 * batch 256 at 2642 against 2631; "coop-wide" gave ViT 185.8 but ResNet
 * 1882, "coop-k64" 99.3 and 1916, "coop-tall" ResNet 2365. */
typedef struct {
  const char *name;
  guint32 bm, bn, bk, wm, wn;
} CoopVariant;

static const CoopVariant coop_variants[] = {
  { "coop-large8", 128, 128, 32, 64, 32 },  /* eight subgroups */
  { "coop-medium", 64, 64, 32, 32, 32 },
  { "coop-small", 32, 32, 32, 16, 16 },
  { "coop-large", 128, 128, 32, 64, 64 },
  { "coop-k64", 128, 128, 64, 64, 64 },
  { "coop-wide", 128, 256, 32, 64, 64 },
  { "coop-tall", 256, 128, 32, 64, 64 },
};
#define N_COOP_AUTO 3

static guint32
coop_threads (const CoopVariant *v, const DcrDeviceInfo *dev)
{
  return (v->bm / v->wm) * (v->bn / v->wn) * dev->subgroup_size;
}

/* The staged tiles (either layout), the epilogue's scratch, and what the
 * conv kernel's staging assumes: every thread keeps one group of four along
 * K, and the rows split evenly over the rounds. */
static gboolean
coop_fits (const CoopVariant *v, const DcrDeviceInfo *dev)
{
  guint32 threads = coop_threads (v, dev), kq = v->bk / 4;
  guint32 tile_a = MAX (v->bm * (v->bk + 8), v->bk * (v->bm + 8)) * 2;
  guint32 tile_b = MAX (v->bn * (v->bk + 8), v->bk * (v->bn + 8)) * 2;
  guint32 shared = tile_a + tile_b + (v->bm / v->wm) * (v->bn / v->wn) * 256 * 4;
  return threads <= dev->max_workgroup_invocations && shared <= dev->max_shared_memory && threads % kq == 0 &&
         v->bm % (threads / kq) == 0 && v->bn % (threads / kq) == 0;
}

/* A coopmat kernel's shader: BASE, "_emu" for the emulation, and "_sh16"
 * with $DCR_COOPMAT_SHARED=f16, which stages the tiles in f16 arrays (four
 * scalar stores per group) rather than uvec2 ones, as before 52a323b; kept
 * to measure the two on a GPU (tests/gpu/bench.sh). */
static void
coop_shader_name (const char *base, gboolean emu, char *name, gsize size)
{
  gboolean sh16 = g_strcmp0 (g_getenv ("DCR_COOPMAT_SHARED"), "f16") == 0;
  g_autofree char *full = g_strconcat (base, emu ? "_emu" : "", sh16 ? "_sh16" : "", NULL);
  dcr_ops_shader_name (full, DCR_F16, name, size);
}

static const CoopVariant *
coop_variant_named (const char *name)
{
  for (guint i = 0; name && i < G_N_ELEMENTS (coop_variants); i++)
    if (g_str_equal (name, coop_variants[i].name))
      return &coop_variants[i];
  return NULL;
}

gboolean
dcr_gemm_coop_tile_usable (const DcrDeviceInfo *dev, const char *name)
{
  const CoopVariant *v = coop_variant_named (name);
  return v && coop_fits (v, dev);
}

static const CoopVariant *
pick_coop (const DcrDeviceInfo *dev, const GemmShape *s, gboolean emu)
{
  const CoopVariant *named = coop_variant_named (g_getenv ("DCR_GEMM_TILE"));
  if (named && coop_fits (named, dev))
    return named;
  if (emu)
    return coop_fits (&coop_variants[N_COOP_AUTO - 1], dev) ? &coop_variants[N_COOP_AUTO - 1] : NULL;
  const gint64 want_blocks = 256;
  const CoopVariant *best = NULL;
  for (guint i = 0; i < N_COOP_AUTO; i++)
    {
      const CoopVariant *v = &coop_variants[i];
      if (!coop_fits (v, dev))
        continue;
      best = v;
      gint64 blocks = ((s->m + v->bm - 1) / v->bm) * ((s->n + v->bn - 1) / v->bn) * s->batch;
      if (blocks >= want_blocks)
        break;
    }
  return best;
}

/* ---- the op ----------------------------------------------------------- */

static gboolean
record_gemm (const char *op, DcrSeq *seq, const DcrTensor *a, const DcrTensor *b, const DcrTensor *bias,
             const DcrTensor *res, DcrTensor *c, const DcrGemmParams *params, GError **error)
{
  static const DcrGemmParams defaults = { .alpha = 1 };
  const DcrGemmParams *p = params ? params : &defaults;
  DcrContext *ctx = dcr_seq_context (seq);
  const DcrDeviceInfo *dev = dcr_context_device (ctx);

  const DcrTensor *all[] = { a, b, bias, res, c };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    {
      if (!all[i])
        continue;
      if (!dcr_ops_check_dtype (seq, op, all[i], error))
        return FALSE;
      if (all[i]->dtype != c->dtype)
        {
          g_autofree char *ts = dcr_ops_shape_string (all[i]);
          g_autofree char *cs = dcr_ops_shape_string (c);
          g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_DTYPE,
                       "%s: all tensors must share one dtype (%s vs C %s)", op, ts, cs);
          return FALSE;
        }
    }
  if (p->beta != 0 && p->act != DCR_ACT_NONE)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: beta=%g (accumulate into C) cannot be combined with activation %s", op, p->beta,
                   dcr_act_name (p->act));
      return FALSE;
    }
  if ((guint) p->act > DCR_ACT_QUICK_GELU)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED, "%s: unknown activation %d", op, p->act);
      return FALSE;
    }

  GemmShape s;
  if (!resolve_shape (op, a, b, bias, res, c, p, &s, error))
    return FALSE;

  /* The shader indexes with 32-bit integers. */
  const DcrTensor *big[] = { a, b, c };
  for (guint i = 0; i < G_N_ELEMENTS (big); i++)
    if (dcr_tensor_numel (big[i]) > G_MAXUINT32 - 16)
      {
        g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                     "%s: tensors above 2³² elements are not supported; split the problem", op);
        return FALSE;
      }

  DcrGemmKernel kernel = dcr_gemm_kernel_for_dtype (ctx, c->dtype);
  if (kernel == DCR_GEMM_KERNEL_SUBGROUP && !subgroup_usable (dev))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: DCR_GEMM_KERNEL=subgroup, but %s lacks subgroup shuffles in compute shaders", op, dev->name);
      return FALSE;
    }
  gboolean coop = kernel == DCR_GEMM_KERNEL_COOPMAT || kernel == DCR_GEMM_KERNEL_COOPMAT_EMU;
  const CoopVariant *cv = NULL;
  if (kernel == DCR_GEMM_KERNEL_COOPMAT && !dev->coopmat_f16)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: DCR_GEMM_KERNEL=coopmat, but %s has no usable VK_NV_cooperative_matrix "
                   "(16×16×16 f16·f16+f32; see `dcr devices`)", op, dev->name);
      return FALSE;
    }
  if (coop && (!dev->shader_float16 || !dev->storage_16bit || dev->subgroup_size < 4 ||
               !(cv = pick_coop (dev, &s, kernel == DCR_GEMM_KERNEL_COOPMAT_EMU))))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: the %s GEMM kernel needs f16 arithmetic and storage and room for its tiles on %s", op,
                   dcr_gemm_kernel_name (kernel), dev->name);
      return FALSE;
    }

  gboolean tiled = kernel == DCR_GEMM_KERNEL_TILED;
  guint32 spec[N_SPEC] = { 0 };
  spec[1] = spec[2] = 1;
  guint32 rows_per_wg, cols_per_wg;
  gboolean vec_ok = TRUE;
  if (coop)
    {
      spec[0] = coop_threads (cv, dev);
      spec[SPEC_TILE0] = cv->bm;
      spec[SPEC_TILE0 + 1] = cv->bn;
      spec[SPEC_TILE0 + 2] = cv->bk;
      spec[SPEC_TILE0 + 3] = cv->wm;
      spec[SPEC_TILE0 + 4] = cv->wn;
      spec[SPEC_TILE0 + 5] = dev->subgroup_size;
      rows_per_wg = cv->bm;
      cols_per_wg = cv->bn;
    }
  else if (tiled)
    {
      const TiledVariant *v = pick_tiled (dev, &s);
      spec[0] = tiled_threads (v);
      spec[SPEC_TILE0] = v->bm;
      spec[SPEC_TILE0 + 1] = v->bn;
      spec[SPEC_TILE0 + 2] = v->bk;
      spec[SPEC_TILE0 + 3] = v->tm;
      spec[SPEC_TILE0 + 4] = v->tn;
      rows_per_wg = v->bm;
      cols_per_wg = v->bn;
      /* The vec4 staging path hands each thread whole groups of 4. */
      vec_ok = (v->bm * v->bk / spec[0]) % 4 == 0 && (v->bk * v->bn / spec[0]) % 4 == 0;
    }
  else
    {
      guint32 tm, tn;
      pick_subgroup (dev, &s, &tm, &tn);
      spec[0] = dev->subgroup_size;
      spec[SPEC_TILE0] = tm;
      spec[SPEC_TILE0 + 1] = tn;
      rows_per_wg = tm;
      cols_per_wg = tn * dev->subgroup_size;
      vec_ok = tn % 4 == 0;
    }

  /* vec4 access needs the contiguous dimension and every batch offset to be
   * multiples of 4 elements (tensors start 16-byte aligned in their pools). */
  gint64 a_contig = p->trans_a ? s.m : s.k;
  gint64 b_contig = p->trans_b ? s.k : s.n;
  spec[SPEC_TRANS_A] = !!p->trans_a;
  spec[SPEC_TRANS_B] = !!p->trans_b;
  spec[SPEC_VEC_A] = vec_ok && a_contig % 4 == 0 && s.sa % 4 == 0;
  spec[SPEC_VEC_B] = vec_ok && b_contig % 4 == 0 && s.sb % 4 == 0;
  spec[SPEC_VEC_C] = vec_ok && s.n % 4 == 0 && s.sc % 4 == 0;
  spec[SPEC_ACT] = p->act;
  spec[SPEC_HAS_BIAS] = bias != NULL;
  spec[SPEC_HAS_RES] = res != NULL;
  spec[SPEC_HAS_BETA] = p->beta != 0;

  char name[32];
  if (coop)
    coop_shader_name ("gemm_coopmat", kernel == DCR_GEMM_KERNEL_COOPMAT_EMU, name, sizeof name);
  else
    dcr_ops_shader_name (tiled ? "gemm_tiled" : "gemm", c->dtype, name, sizeof name);
  DcrPipeline *pipe = dcr_pipeline_get (ctx, name, spec, N_SPEC, 5, sizeof (GemmPush), error);
  if (!pipe)
    return FALSE;

  gint64 row_tiles = (s.m + rows_per_wg - 1) / rows_per_wg;
  gint64 col_tiles = (s.n + cols_per_wg - 1) / cols_per_wg;
  if (col_tiles > dev->max_workgroup_count[1])
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "%s: N=%" G_GINT64_FORMAT " needs %" G_GINT64_FORMAT " column tiles, above this device's limit of %u",
                   op, s.n, col_tiles, dev->max_workgroup_count[1]);
      return FALSE;
    }

  /* Absent bias/residual bind A: the shader never reads them then. */
  DcrBinding bind[5] = {
    dcr_ops_bind (a, FALSE),
    dcr_ops_bind (b, FALSE),
    dcr_ops_bind (bias ? bias : a, FALSE),
    dcr_ops_bind (res ? res : a, FALSE),
    dcr_ops_bind (c, TRUE),
  };
  GemmPush push = {
    .m = (guint32) s.m, .n = (guint32) s.n, .k = (guint32) s.k,
    .lda = (guint32) a_contig, .ldb = (guint32) b_contig,
    .sa = (guint32) s.sa, .sb = (guint32) s.sb, .sc = (guint32) s.sc,
    .alpha = p->alpha != 0 ? p->alpha : 1.0f,
    .beta = p->beta,
  };
  /* Rows and batch entries beyond the device's grid limits go into further
   * dispatches rather than failing. */
  gint64 max_x = dev->max_workgroup_count[0], max_z = dev->max_workgroup_count[2];
  for (gint64 z0 = 0; z0 < s.batch; z0 += max_z)
    for (gint64 x0 = 0; x0 < row_tiles; x0 += max_x)
      {
        push.m_base = (guint32) x0;
        push.z_base = (guint32) z0;
        dcr_seq_dispatch (seq, pipe, bind, 5, &push, sizeof push, (guint32) MIN (row_tiles - x0, max_x),
                          (guint32) col_tiles, (guint32) MIN (s.batch - z0, max_z));
      }
  return TRUE;
}

gboolean
dcr_op_gemm (DcrSeq *seq, const DcrTensor *a, const DcrTensor *b, const DcrTensor *bias,
             const DcrTensor *residual, DcrTensor *c, const DcrGemmParams *params, GError **error)
{
  return record_gemm ("gemm", seq, a, b, bias, residual, c, params, error);
}

gboolean
dcr_op_linear (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w, const DcrTensor *bias, DcrTensor *y,
               DcrAct act, GError **error)
{
  if (w->ndim != 2)
    {
      g_autofree char *ws = dcr_ops_shape_string (w);
      return shape_error (error, "linear", "weight %s must be [out, in]", ws);
    }
  if (last_dim (x) != w->shape[1] || last_dim (y) != w->shape[0] ||
      dcr_tensor_numel (x) / last_dim (x) != dcr_tensor_numel (y) / last_dim (y))
    {
      g_autofree char *xs = dcr_ops_shape_string (x);
      g_autofree char *ws = dcr_ops_shape_string (w);
      g_autofree char *ys = dcr_ops_shape_string (y);
      return shape_error (error, "linear", "x %s · W %sᵀ does not give y %s (x must be [..., in], W [out, in], "
                          "y [..., out])", xs, ws, ys);
    }
  DcrGemmParams p = { .trans_b = TRUE, .alpha = 1, .act = act };
  return record_gemm ("linear", seq, x, w, bias, NULL, y, &p, error);
}

/* ---- convolution on the same tiles ---------------------------------------- */

/* Matches the push-constant block of shaders/conv_coopmat.comp (which is
 * conv_igemm.comp's). */
typedef struct {
  guint32 m, h, w, cin, ho, wo, cout, kh, kw, sh, sw, dh, dw;
  gint32 pt, pl;
  guint32 cin_g, cout_g, tiles_per_group, row_tiles;
  guint32 act, has_bias, has_res;
} ConvCoopPush;

gboolean
dcr_conv_coopmat_wanted (DcrContext *ctx, DcrDtype dtype, int groups)
{
  DcrGemmKernel k = dcr_gemm_kernel_for_dtype (ctx, dtype);
  return dtype == DCR_F16 && groups == 1 && (k == DCR_GEMM_KERNEL_COOPMAT || k == DCR_GEMM_KERNEL_COOPMAT_EMU);
}

gboolean
dcr_op_conv_coopmat (DcrSeq *seq, const DcrTensor *x, const DcrTensor *w, const DcrTensor *bias,
                     const DcrTensor *residual, DcrTensor *y, const DcrConvCoopmatShape *cs, GError **error)
{
  DcrContext *ctx = dcr_seq_context (seq);
  const DcrDeviceInfo *dev = dcr_context_device (ctx);
  DcrGemmKernel kernel = dcr_gemm_kernel_for_dtype (ctx, y->dtype);
  gboolean emu = kernel == DCR_GEMM_KERNEL_COOPMAT_EMU;
  gint64 m = cs->n * cs->ho * cs->wo;
  GemmShape gs = { .m = m, .n = cs->cout, .k = cs->kh * cs->kw * cs->cin, .batch = 1 };
  const CoopVariant *v = NULL;
  if ((kernel == DCR_GEMM_KERNEL_COOPMAT && !dev->coopmat_f16) || y->dtype != DCR_F16 || !dev->shader_float16 ||
      !dev->storage_16bit || !(v = pick_coop (dev, &gs, emu)))
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "conv2d: the %s kernel needs f16 tensors, f16 arithmetic and storage%s on %s",
                   dcr_gemm_kernel_name (kernel), emu ? "" : " and VK_NV_cooperative_matrix", dev->name);
      return FALSE;
    }
  if (m > G_MAXUINT32 - 256 || gs.n * gs.k > G_MAXUINT32 || (double) m * cs->cout > G_MAXUINT32 ||
      (double) cs->n * cs->h * cs->w * cs->cin > G_MAXUINT32)
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "conv2d: tensors above 2³² elements are not supported; split the batch");
      return FALSE;
    }
  guint32 spec[] = { coop_threads (v, dev), 1, 1, v->bm, v->bn, v->bk, v->wm, v->wn, dev->subgroup_size,
                     cs->cin % 4 == 0 };
  char name[32];
  coop_shader_name ("conv_coopmat", emu, name, sizeof name);
  DcrPipeline *pipe = dcr_pipeline_get (ctx, name, spec, G_N_ELEMENTS (spec), 5, sizeof (ConvCoopPush), error);
  if (!pipe)
    return FALSE;
  gint64 row_tiles = (m + v->bm - 1) / v->bm, col_tiles = (cs->cout + v->bn - 1) / v->bn;
  gint64 gx = row_tiles, gz = 1;
  if (gx > dev->max_workgroup_count[0])
    {
      gz = (gx + dev->max_workgroup_count[0] - 1) / dev->max_workgroup_count[0];
      gx = dev->max_workgroup_count[0];
    }
  if (col_tiles > dev->max_workgroup_count[1] || gz > dev->max_workgroup_count[2])
    {
      g_set_error (error, DCR_OPS_ERROR, DCR_OPS_ERROR_UNSUPPORTED,
                   "conv2d: %" G_GINT64_FORMAT " output pixels × %" G_GINT64_FORMAT " channels exceed this "
                   "device's dispatch limits; split the batch", m, cs->cout);
      return FALSE;
    }
  ConvCoopPush pc = {
    (guint32) m, (guint32) cs->h, (guint32) cs->w, (guint32) cs->cin, (guint32) cs->ho, (guint32) cs->wo,
    (guint32) cs->cout, cs->kh, cs->kw, cs->sh, cs->sw, cs->dh, cs->dw, cs->pt, cs->pl,
    (guint32) cs->cin, (guint32) cs->cout, (guint32) col_tiles, (guint32) row_tiles,
    cs->act, bias != NULL, residual != NULL,
  };
  DcrBinding b[5] = {
    dcr_ops_bind (x, FALSE),
    dcr_ops_bind (w, FALSE),
    dcr_ops_bind (bias ? bias : x, FALSE),
    dcr_ops_bind (residual ? residual : x, FALSE),
    dcr_ops_bind (y, TRUE),
  };
  dcr_seq_dispatch (seq, pipe, b, 5, &pc, sizeof pc, (guint32) gx, (guint32) col_tiles, (guint32) gz);
  return TRUE;
}

/* ---- reference ---------------------------------------------------------- */

void
dcr_ref_gemm (const float *a, const float *b, const float *bias, const float *residual, float *c,
              gint64 m, gint64 n, gint64 k, const DcrGemmParams *params)
{
  static const DcrGemmParams defaults = { .alpha = 1 };
  const DcrGemmParams *p = params ? params : &defaults;
  gint64 batch = MAX (p->batch, 1);
  double alpha = p->alpha != 0 ? p->alpha : 1.0;
  for (gint64 z = 0; z < batch; z++)
    {
      const float *az = a + (batch > 1 ? z * p->stride_a : 0);
      const float *bz = b + (batch > 1 ? z * p->stride_b : 0);
      gint64 co = batch > 1 ? z * p->stride_c : 0;
      for (gint64 i = 0; i < m; i++)
        for (gint64 j = 0; j < n; j++)
          {
            double acc = 0;
            for (gint64 kk = 0; kk < k; kk++)
              {
                double av = p->trans_a ? az[kk * m + i] : az[i * k + kk];
                double bv = p->trans_b ? bz[j * k + kk] : bz[kk * n + j];
                acc += av * bv;
              }
            double v = alpha * acc;
            if (bias)
              v += bias[j];
            if (residual)
              v += residual[co + i * n + j];
            float out = dcr_ref_act (p->act, (float) v);
            if (p->beta != 0)
              out += p->beta * c[co + i * n + j];
            c[co + i * n + j] = out;
          }
    }
}
