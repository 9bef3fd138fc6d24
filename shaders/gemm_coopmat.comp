#version 450
// fp16 GEMM on cooperative matrices (GL_NV_cooperative_matrix: Debian 12's
// glslang compiles the NV extension, not the KHR one), same bindings, push
// constants, layout switches and epilogue as gemm.comp, so dcr-op-gemm.c
// records either for one problem:
//   C = act(alpha·op(A)·op(B) + bias + residual) (+ beta·C), batched over z.
// A workgroup computes a BM × BN block of C with NW subgroups, each a WM × WN
// part of it in 16×16 f32 accumulator fragments. Per BK step the whole
// workgroup stages op(A) [BM, BK] and op(B) [BK, BN] in shared memory as
// f16 (zero-padded at the edges, so any M, N, K works), in whichever layout
// keeps the global reads contiguous: the fragment loads take a row- or
// column-major stride. The staged tiles are arrays of uvec2 (four f16 each,
// as NVIDIA's vk_cooperative_matrix_perf keeps uvec4s): one 8-byte store per
// four elements, fragment offsets and strides in uvec2 units. The next K
// step's elements are read from global memory into registers before the
// current step's multiply-adds, so their latency hides behind the math
// (one shared buffer, two barriers per step). The epilogue goes fragment by
// fragment through a 16×16 f32 scratch per subgroup and writes C with
// bounds checks.
// DCR_COOPMAT_EMU replaces the three fragment operations (load, multiply-add,
// store) with plain shared-memory loops over the same tiles, so that the
// loaders, the epilogue and the host's dispatch run on devices without
// cooperative matrices (lavapipe) in tests.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#ifndef DCR_COOPMAT_EMU
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#endif

layout(local_size_x_id = 0) in;

layout(constant_id = 3) const uint BM = 128;  // block rows
layout(constant_id = 4) const uint BN = 128;  // block columns
layout(constant_id = 5) const uint BK = 32;   // K step (multiple of 16)
layout(constant_id = 6) const uint WM = 64;   // rows per subgroup (multiple of 16)
layout(constant_id = 7) const uint WN = 64;   // columns per subgroup (multiple of 16)
layout(constant_id = 8) const uint SG_SIZE = 32;  // the device's subgroup size (sizes the scratch)
layout(constant_id = 10) const bool TRANS_A = false;  // A stored [K, M]
layout(constant_id = 11) const bool TRANS_B = false;  // B stored [N, K]
layout(constant_id = 12) const bool VEC_A = false;    // A's contiguous dim allows aligned loads of 4
layout(constant_id = 13) const bool VEC_B = false;    // same for B
layout(constant_id = 14) const bool VEC_C = false;    // unused here (kept for gemm.comp's id layout)
layout(constant_id = 15) const uint ACT = 0;          // DcrAct
layout(constant_id = 16) const bool HAS_BIAS = false;
layout(constant_id = 17) const bool HAS_RES = false;
layout(constant_id = 18) const bool HAS_BETA = false;

layout(std430, binding = 0) readonly buffer A1 { float16_t a1[]; };
layout(std430, binding = 0) readonly buffer A4 { f16vec4 a4[]; };
layout(std430, binding = 1) readonly buffer B1 { float16_t b1[]; };
layout(std430, binding = 1) readonly buffer B4 { f16vec4 b4[]; };
layout(std430, binding = 2) readonly buffer Bias1 { float16_t bias1[]; };
layout(std430, binding = 3) readonly buffer R1 { float16_t r1[]; };
layout(std430, binding = 4) buffer C1 { float16_t c1[]; };

layout(push_constant) uniform P {
  uint m, n, k;
  uint lda, ldb;        // row pitch of A and B as stored (elements)
  uint sa, sb, sc;      // batch strides (elements); 0 broadcasts A or B
  uint m_base, z_base;  // first row tile / batch entry of this dispatch
  float alpha, beta;
} p;

float erfc_approx(float x)
{
  float z = abs(x);
  float t = 1.0 / (1.0 + 0.5 * z);
  float r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
            t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
            t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0.0 ? r : 2.0 - r;
}

float act(float x)
{
  if (ACT == 1) return max(x, 0.0);
  if (ACT == 2) return clamp(x, 0.0, 6.0);
  if (ACT == 3) return 0.5 * x * erfc_approx(-x * 0.70710678118654752);
  if (ACT == 4) return x / (1.0 + exp(-1.702 * x));
  return x;
}

void store1(float acc, uint col, uint ci)
{
  float v = p.alpha * acc;
  if (HAS_BIAS) v += float(bias1[col]);
  if (HAS_RES) v += float(r1[ci]);
  v = act(v);
  if (HAS_BETA) v += p.beta * float(c1[ci]);
  c1[ci] = float16_t(v);
}

const uint THREADS = gl_WorkGroupSize.x;
const uint NWN = BN / WN;           // subgroups along N
const uint FM = WM / 16, FN = WN / 16;
const uint PAD = 8;                 // keeps fragment rows 16-byte aligned and spreads banks
// Staged tiles: op(A) as [BM][BK + PAD] (row-major) or, for TRANS_A, as
// [BK][BM + PAD] (column-major); op(B) as [BK][BN + PAD] or, for TRANS_B, as
// [BN][BK + PAD]. Positions below are in f16 elements, always multiples of
// 4 where a group of four starts; the arrays hold four per uvec2.
const uint A_LD = TRANS_A ? BM + PAD : BK + PAD;
const uint B_LD = TRANS_B ? BK + PAD : BN + PAD;
#ifdef DCR_SHARED_F16
// Variant (DCR_COOPMAT_SHARED=f16): f16 arrays, four scalar stores per
// group, fragment offsets in elements; kept to measure against the uvec2
// tiles on a GPU (ViT-L/14 at batch 1 ran slower after the change to them).
const uint SU = 1;
shared float16_t sa[TRANS_A ? BK * (BM + PAD) : BM * (BK + PAD)];
shared float16_t sb[TRANS_B ? BN * (BK + PAD) : BK * (BN + PAD)];
void put_a(uint at, f16vec4 v) { sa[at] = v.x; sa[at + 1] = v.y; sa[at + 2] = v.z; sa[at + 3] = v.w; }
void put_b(uint at, f16vec4 v) { sb[at] = v.x; sb[at + 1] = v.y; sb[at + 2] = v.z; sb[at + 3] = v.w; }
float sa_get(uint i) { return float(sa[i]); }
float sb_get(uint i) { return float(sb[i]); }
#else
const uint SU = 4;  // f16 elements per array element
shared uvec2 sa[(TRANS_A ? BK * (BM + PAD) : BM * (BK + PAD)) / 4];
shared uvec2 sb[(TRANS_B ? BN * (BK + PAD) : BK * (BN + PAD)) / 4];
uvec2 pack4(f16vec4 v) { return uvec2(packFloat2x16(v.xy), packFloat2x16(v.zw)); }
void put_a(uint at, f16vec4 v) { sa[at / 4] = pack4(v); }
void put_b(uint at, f16vec4 v) { sb[at / 4] = pack4(v); }
float sa_get(uint i) { return float(unpackFloat2x16(sa[i >> 2][(i >> 1) & 1u])[i & 1u]); }
float sb_get(uint i) { return float(unpackFloat2x16(sb[i >> 2][(i >> 1) & 1u])[i & 1u]); }
#endif
shared float scratch[(THREADS / SG_SIZE) * 256];  // 16×16 f32 per subgroup

// op(A)[row, kk] and op(B)[kk, col] positions in the staged tiles.
uint sa_at(uint r, uint kk) { return TRANS_A ? kk * A_LD + r : r * A_LD + kk; }
uint sb_at(uint kk, uint c) { return TRANS_B ? c * B_LD + kk : kk * B_LD + c; }

// Four consecutive elements along a contiguous dimension, zero past `lim`
// (the elements' positions along it are i0 .. i0+3).
f16vec4 load_a4(uint base, uint i0, uint lim, bool vec)
{
  if (vec && i0 + 3 < lim)
    return a4[base / 4];
  f16vec4 v = f16vec4(0.0hf);
  [[unroll]] for (uint u = 0; u < 4; u++)
    if (i0 + u < lim)
      v[u] = a1[base + u];
  return v;
}
f16vec4 load_b4(uint base, uint i0, uint lim, bool vec)
{
  if (vec && i0 + 3 < lim)
    return b4[base / 4];
  f16vec4 v = f16vec4(0.0hf);
  [[unroll]] for (uint u = 0; u < 4; u++)
    if (i0 + u < lim)
      v[u] = b1[base + u];
  return v;
}

// Groups of four per K step and per thread (the last round may be partial).
const uint A_GROUPS = BM * BK / 4, B_GROUPS = BN * BK / 4;
const uint A_PER = (A_GROUPS + THREADS - 1) / THREADS, B_PER = (B_GROUPS + THREADS - 1) / THREADS;
f16vec4 ra[A_PER];  // the K step being fetched, in registers
f16vec4 rb[B_PER];
uint tid, m0, n0, aoff, boff;

// Group g of op(A): row r, columns kk .. kk+3 in the staged layout's
// contiguous direction (K for row-major A, M for TRANS_A).
void fetch(uint k0)
{
  [[unroll]] for (uint i = 0; i < A_PER; i++)
    {
      uint g = tid + i * THREADS;
      if (A_GROUPS % THREADS != 0 && g >= A_GROUPS)
        break;
      if (!TRANS_A)
        {
          uint r = g / (BK / 4), kk = 4 * (g % (BK / 4));
          uint row = m0 + r;
          ra[i] = row < p.m ? load_a4(aoff + row * p.lda + k0 + kk, k0 + kk, p.k, VEC_A) : f16vec4(0.0hf);
        }
      else
        {
          uint kk = g / (BM / 4), r = 4 * (g % (BM / 4));
          ra[i] = k0 + kk < p.k ? load_a4(aoff + (k0 + kk) * p.lda + m0 + r, m0 + r, p.m, VEC_A) : f16vec4(0.0hf);
        }
    }
  [[unroll]] for (uint i = 0; i < B_PER; i++)
    {
      uint g = tid + i * THREADS;
      if (B_GROUPS % THREADS != 0 && g >= B_GROUPS)
        break;
      if (TRANS_B)
        {
          uint c = g / (BK / 4), kk = 4 * (g % (BK / 4));
          uint col = n0 + c;
          rb[i] = col < p.n ? load_b4(boff + col * p.ldb + k0 + kk, k0 + kk, p.k, VEC_B) : f16vec4(0.0hf);
        }
      else
        {
          uint kk = g / (BN / 4), c = 4 * (g % (BN / 4));
          rb[i] = k0 + kk < p.k ? load_b4(boff + (k0 + kk) * p.ldb + n0 + c, n0 + c, p.n, VEC_B) : f16vec4(0.0hf);
        }
    }
}

// The fetched groups into the staged tiles (each group is contiguous there).
void stash()
{
  [[unroll]] for (uint i = 0; i < A_PER; i++)
    {
      uint g = tid + i * THREADS;
      if (A_GROUPS % THREADS != 0 && g >= A_GROUPS)
        break;
      uint at = !TRANS_A ? sa_at(g / (BK / 4), 4 * (g % (BK / 4))) : sa_at(4 * (g % (BM / 4)), g / (BM / 4));
      put_a(at, ra[i]);
    }
  [[unroll]] for (uint i = 0; i < B_PER; i++)
    {
      uint g = tid + i * THREADS;
      if (B_GROUPS % THREADS != 0 && g >= B_GROUPS)
        break;
      uint at = TRANS_B ? sb_at(4 * (g % (BK / 4)), g / (BK / 4)) : sb_at(g / (BN / 4), 4 * (g % (BN / 4)));
      put_b(at, rb[i]);
    }
}

void main()
{
  tid = gl_LocalInvocationID.x;
  const uint sg = gl_SubgroupID;
  const uint lane = gl_SubgroupInvocationID;
  const uint sgs = gl_SubgroupSize;
  m0 = (gl_WorkGroupID.x + p.m_base) * BM;
  n0 = gl_WorkGroupID.y * BN;
  const uint z = gl_WorkGroupID.z + p.z_base;
  aoff = z * p.sa;
  boff = z * p.sb;
  const uint coff = z * p.sc;
  const uint wm0 = (sg / NWN) * WM, wn0 = (sg % NWN) * WN;  // this subgroup's part of the block

#ifdef DCR_COOPMAT_EMU
  // Lane l owns elements l, l + sgs, … of each 16×16 fragment.
  const uint EPL = 256 / SG_SIZE;
  float acc[FM][FN][EPL];
  [[unroll]] for (uint i = 0; i < FM; i++)
    [[unroll]] for (uint j = 0; j < FN; j++)
      [[unroll]] for (uint e = 0; e < EPL; e++)
        acc[i][j][e] = 0.0;
#else
  fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[FM][FN];
  [[unroll]] for (uint i = 0; i < FM; i++)
    [[unroll]] for (uint j = 0; j < FN; j++)
      acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
#endif

  fetch(0);
  for (uint k0 = 0; k0 < p.k; k0 += BK)
    {
      stash();
      barrier();
      if (k0 + BK < p.k)
        fetch(k0 + BK);  // in flight during the multiply-adds below

#ifdef DCR_COOPMAT_EMU
      [[dont_unroll]]
#else
      [[unroll]]
#endif
      for (uint ks = 0; ks < BK; ks += 16)
        {
#ifdef DCR_COOPMAT_EMU
          [[dont_unroll]] for (uint i = 0; i < FM; i++)
            [[dont_unroll]] for (uint j = 0; j < FN; j++)
              [[dont_unroll]] for (uint e = 0; e < EPL; e++)
                {
                  uint el = lane + e * sgs;
                  if (el < 256)
                    {
                      uint r = wm0 + i * 16 + el / 16, c = wn0 + j * 16 + el % 16;
                      float s = 0.0;
                      [[dont_unroll]] for (uint kk = 0; kk < 16; kk++)
                        s += sa_get(sa_at(r, ks + kk)) * sb_get(sb_at(ks + kk, c));
                      acc[i][j][e] += s;
                    }
                }
#else
          fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> fa[FM];
          [[unroll]] for (uint i = 0; i < FM; i++)
            coopMatLoadNV(fa[i], sa, sa_at(wm0 + i * 16, ks) / SU, A_LD / SU, TRANS_A);
          [[unroll]] for (uint j = 0; j < FN; j++)
            {
              fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> fb;
              coopMatLoadNV(fb, sb, sb_at(ks, wn0 + j * 16) / SU, B_LD / SU, TRANS_B);
              [[unroll]] for (uint i = 0; i < FM; i++)
                acc[i][j] = coopMatMulAddNV(fa[i], fb, acc[i][j]);
            }
#endif
        }
      barrier();
    }

  // Epilogue, one fragment at a time through this subgroup's scratch.
  const uint so = sg * 256;
  [[unroll]] for (uint i = 0; i < FM; i++)
    [[unroll]] for (uint j = 0; j < FN; j++)
      {
#ifdef DCR_COOPMAT_EMU
        [[unroll]] for (uint e = 0; e < EPL; e++)
          if (lane + e * sgs < 256)
            scratch[so + lane + e * sgs] = acc[i][j][e];
#else
        coopMatStoreNV(acc[i][j], scratch, so, 16, false);
#endif
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint el = lane; el < 256; el += sgs)
          {
            uint row = m0 + wm0 + i * 16 + el / 16, col = n0 + wn0 + j * 16 + el % 16;
            if (row < p.m && col < p.n)
              store1(scratch[so + el], col, coff + row * p.n + col);
          }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
      }
}
