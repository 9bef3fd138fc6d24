#version 450
// C = act(alpha·op(A)·op(B) + bias + residual) (+ beta·C), batched over
// gl_WorkGroupID.z. Two kernels share the loaders and the epilogue:
//  - default: a register kernel for CPU drivers (lavapipe), where every
//    buffer or shared-memory access is a per-lane scalar loop (~13
//    instructions per component and lane) and barriers are very costly: one
//    subgroup per workgroup, each lane loads a few A rows that the subgroup
//    shares by subgroupShuffle (on Mesa 22.3 ~10× cheaper than
//    subgroupBroadcast), no shared memory, no barriers;
//  - DCR_GEMM_TILED: shared-memory tiles with per-thread register blocking
//    and a double-buffered K loop, for real GPUs.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require

// fp16 storage: scalar access through float16_t, vectors of four as two
// packed uints, which halves lavapipe's per-component load cost.
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define STYPE float16_t
#define VTYPE uvec2
vec4 unpack4(uvec2 u) { return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); }
uvec2 pack4(vec4 v) { return uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw)); }
#else
#define STYPE float
#define VTYPE vec4
vec4 unpack4(vec4 v) { return v; }
vec4 pack4(vec4 v) { return v; }
#endif

layout(local_size_x_id = 0) in;

// Layout and epilogue switches, shared by both kernels (ids 3–9 are the tile
// shape, which differs per kernel).
layout(constant_id = 10) const bool TRANS_A = false;  // A stored [K, M]
layout(constant_id = 11) const bool TRANS_B = false;  // B stored [N, K]
layout(constant_id = 12) const bool VEC_A = false;    // A's contiguous dim allows aligned vec4 loads
layout(constant_id = 13) const bool VEC_B = false;    // same for B
layout(constant_id = 14) const bool VEC_C = false;    // N % 4 == 0: bias, residual and C by vec4
layout(constant_id = 15) const uint ACT = 0;          // DcrAct
layout(constant_id = 16) const bool HAS_BIAS = false;
layout(constant_id = 17) const bool HAS_RES = false;
layout(constant_id = 18) const bool HAS_BETA = false;

layout(std430, binding = 0) readonly buffer A1 { STYPE a1[]; };
layout(std430, binding = 0) readonly buffer A4 { VTYPE a4[]; };
layout(std430, binding = 1) readonly buffer B1 { STYPE b1[]; };
layout(std430, binding = 1) readonly buffer B4 { VTYPE b4[]; };
layout(std430, binding = 2) readonly buffer Bias1 { STYPE bias1[]; };
layout(std430, binding = 2) readonly buffer Bias4 { VTYPE bias4[]; };
layout(std430, binding = 3) readonly buffer R1 { STYPE r1[]; };
layout(std430, binding = 3) readonly buffer R4 { VTYPE r4[]; };
layout(std430, binding = 4) buffer C1 { STYPE c1[]; };
layout(std430, binding = 4) buffer C4 { VTYPE c4[]; };

layout(push_constant) uniform P {
  uint m, n, k;
  uint lda, ldb;        // row pitch of A and B as stored (elements)
  uint sa, sb, sc;      // batch strides (elements); 0 broadcasts A or B
  uint m_base, z_base;  // first row tile / batch entry of this dispatch
  float alpha, beta;
} p;

// erfc with fractional error < 1.2e-7 (Numerical Recipes' Chebyshev fit):
// GLSL has no erf, and GELU must match PyTorch's exact form.
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

// Bias of column col (four from col when VEC_C); callers load it once per
// column, not per output.
float bias_at(uint col) { return HAS_BIAS ? float(bias1[col]) : 0.0; }
vec4 bias4_at(uint col) { return HAS_BIAS ? unpack4(bias4[col / 4]) : vec4(0.0); }

// One output through the epilogue and into C; ci is its index in C (and in
// the residual).
void store1(float acc, float bias, uint ci)
{
  float v = p.alpha * acc + bias;
  if (HAS_RES) v += float(r1[ci]);
  v = act(v);
  if (HAS_BETA) v += p.beta * float(c1[ci]);
  c1[ci] = STYPE(v);
}

// Four consecutive outputs (ci % 4 == 0), when VEC_C.
void store4(vec4 acc, vec4 bias, uint ci)
{
  vec4 v = p.alpha * acc + bias;
  if (HAS_RES) v += unpack4(r4[ci / 4]);
  v = vec4(act(v.x), act(v.y), act(v.z), act(v.w));
  if (HAS_BETA) v += p.beta * unpack4(c4[ci / 4]);
  c4[ci / 4] = pack4(v);
}

// Element (row, kk) of op(A) and (kk, col) of op(B), in storage order.
uint a_index(uint row, uint kk) { return TRANS_A ? kk * p.lda + row : row * p.lda + kk; }
uint b_index(uint kk, uint col) { return TRANS_B ? col * p.ldb + kk : kk * p.ldb + col; }

#ifndef DCR_GEMM_TILED

// Tile: TM rows × (TN · subgroup size) columns per workgroup (= subgroup);
// each lane owns TN consecutive columns and all TM rows. Per K step of 4 a
// lane loads TM / SG vec4 of A and TN vec4 of B and does 4·TM·TN FMAs:
// loads dominate on lavapipe, so bigger tiles are faster but compile slower
// (see pick_subgroup in dcr-op-gemm.c). TN must be a multiple of 4.
layout(constant_id = 3) const uint TM = 32;
layout(constant_id = 4) const uint TN = 8;

const uint SG = gl_WorkGroupSize.x;
const uint AQ = (TM + SG - 1) / SG;  // A loads per lane per step
// Transposed A ([K, M], M contiguous) is loaded as vec4 along M: lane l
// reads k = l % 4 of rows 4·(l / 4)..+3 of each group of SG rows, and the
// subgroup regroups it with one scalar shuffle per element.
#define VEC_AT (TRANS_A && VEC_A && SG % 4 == 0)

void main()
{
  const uint lane = gl_SubgroupInvocationID;
  const uint m0 = (gl_WorkGroupID.x + p.m_base) * TM;
  const uint n0 = gl_WorkGroupID.y * (TN * SG) + lane * TN;
  const uint z = gl_WorkGroupID.z + p.z_base;
  const uint aoff = z * p.sa, boff = z * p.sb, coff = z * p.sc;
  const uint m_last = p.m - 1, n_last = p.n - 1;

  // Rows this lane loads for the subgroup, and the columns it owns; both
  // clamped so that tails load valid memory (the stores are masked).
  uint arow[AQ];
  [[unroll]] for (uint q = 0; q < AQ; q++)
    arow[q] = VEC_AT ? min(m0 + q * SG + 4 * (lane / 4), p.m - 4) : min(m0 + q * SG + lane, m_last);
  uint bcol[TN];
  [[unroll]] for (uint j = 0; j < TN; j++)
    bcol[j] = min(n0 + j, n_last);
  // Vector loads along N need whole groups of 4 inside the matrix.
  uint bcol4[TN / 4];
  [[unroll]] for (uint j = 0; j < TN / 4; j++)
    bcol4[j] = min(n0 + 4 * j, p.n - 4);

  float acc[TM][TN];
  [[unroll]] for (uint r = 0; r < TM; r++)
    [[unroll]] for (uint j = 0; j < TN; j++)
      acc[r][j] = 0.0;

  const uint k4 = p.k & ~3u;
  for (uint kk = 0; kk < k4; kk += 4)
    {
      vec4 av[AQ];
      [[unroll]] for (uint q = 0; q < AQ; q++)
        {
          if (VEC_AT)
            av[q] = unpack4(a4[(aoff + (kk + lane % 4) * p.lda + arow[q]) / 4]);
          else if (VEC_A && !TRANS_A)
            av[q] = unpack4(a4[(aoff + arow[q] * p.lda + kk) / 4]);
          else
            av[q] = vec4(float(a1[aoff + a_index(arow[q], kk)]), float(a1[aoff + a_index(arow[q], kk + 1)]),
                         float(a1[aoff + a_index(arow[q], kk + 2)]), float(a1[aoff + a_index(arow[q], kk + 3)]));
        }
      // bv[j] holds op(B)[kk..kk+3][column j]
      vec4 bv[TN];
      if (VEC_B && !TRANS_B)
        {
          [[unroll]] for (uint c = 0; c < 4; c++)
            [[unroll]] for (uint j = 0; j < TN / 4; j++)
              {
                vec4 v = unpack4(b4[(boff + (kk + c) * p.ldb + bcol4[j]) / 4]);
                bv[4 * j][c] = v.x;
                bv[4 * j + 1][c] = v.y;
                bv[4 * j + 2][c] = v.z;
                bv[4 * j + 3][c] = v.w;
              }
        }
      else
        {
          [[unroll]] for (uint j = 0; j < TN; j++)
            {
              if (VEC_B && TRANS_B)
                bv[j] = unpack4(b4[(boff + bcol[j] * p.ldb + kk) / 4]);
              else
                bv[j] = vec4(float(b1[boff + b_index(kk, bcol[j])]), float(b1[boff + b_index(kk + 1, bcol[j])]),
                             float(b1[boff + b_index(kk + 2, bcol[j])]), float(b1[boff + b_index(kk + 3, bcol[j])]));
            }
        }
      [[unroll]] for (uint r = 0; r < TM; r++)
        {
          vec4 ar;
          if (VEC_AT)
            {
              // row r sits in load r / SG of lanes 4·((r % SG) / 4) + c, component r % 4
              const uint src = 4 * ((r % SG) / 4);
              [[unroll]] for (uint c = 0; c < 4; c++)
                ar[c] = subgroupShuffle(av[r / SG][r % 4], src + c);
            }
          else
            ar = subgroupShuffle(av[r / SG], r % SG);
          [[unroll]] for (uint j = 0; j < TN; j++)
            acc[r][j] = fma(ar.w, bv[j].w, fma(ar.z, bv[j].z, fma(ar.y, bv[j].y, fma(ar.x, bv[j].x, acc[r][j]))));
        }
    }
  // K % 4 tail, one k at a time with scalar loads (row of A: lane's own, as
  // in the non-transposed case).
  for (uint kk = k4; kk < p.k; kk++)
    {
      float av[AQ];
      [[unroll]] for (uint q = 0; q < AQ; q++)
        av[q] = float(a1[aoff + a_index(min(m0 + q * SG + lane, m_last), kk)]);
      float bv[TN];
      [[unroll]] for (uint j = 0; j < TN; j++)
        bv[j] = float(b1[boff + b_index(kk, bcol[j])]);
      [[unroll]] for (uint r = 0; r < TM; r++)
        {
          float ar = subgroupShuffle(av[r / SG], r % SG);
          [[unroll]] for (uint j = 0; j < TN; j++)
            acc[r][j] = fma(ar, bv[j], acc[r][j]);
        }
    }

  float bias[TN];
  [[unroll]] for (uint j = 0; j < TN; j += 4)
    {
      // whole groups of 4 lie inside N when VEC_C; bcol is clamped
      vec4 bq = VEC_C ? bias4_at(bcol4[j / 4]) : vec4(bias_at(bcol[j]), bias_at(bcol[j + 1]),
                                                      bias_at(bcol[j + 2]), bias_at(bcol[j + 3]));
      bias[j] = bq.x; bias[j + 1] = bq.y; bias[j + 2] = bq.z; bias[j + 3] = bq.w;
    }
  [[unroll]] for (uint r = 0; r < TM; r++)
    {
      const uint row = m0 + r;
      if (row >= p.m)
        break;
      const uint rbase = coff + row * p.n;
      [[unroll]] for (uint j = 0; j < TN; j += 4)
        {
          const uint col = n0 + j;
          if (VEC_C)
            {
              if (col < p.n)
                store4(vec4(acc[r][j], acc[r][j + 1], acc[r][j + 2], acc[r][j + 3]),
                       vec4(bias[j], bias[j + 1], bias[j + 2], bias[j + 3]), rbase + col);
            }
          else
            {
              [[unroll]] for (uint u = 0; u < 4; u++)
                if (col + u < p.n)
                  store1(acc[r][j + u], bias[j + u], rbase + col + u);
            }
        }
    }
}

#else /* DCR_GEMM_TILED */

// Block tile BM × BN, K step BK; each thread computes TM × TN outputs as
// two (TM/2 × TN/2) quadrants half a block apart, so that its shared-memory
// reads are contiguous vec4s without bank conflicts.
layout(constant_id = 3) const uint BM = 128;
layout(constant_id = 4) const uint BN = 128;
layout(constant_id = 5) const uint BK = 8;
layout(constant_id = 6) const uint TM = 8;
layout(constant_id = 7) const uint TN = 8;

const uint NT = gl_WorkGroupSize.x;     // (BM / TM) · (BN / TN)
const uint TX = BN / TN;                // threads across N
const uint LA = BM * BK / NT;           // A elements each thread stages per tile
const uint LB = BK * BN / NT;

// One vec4 of padding per k row keeps the staging stores off a single bank.
shared vec4 sa4[2][BK][BM / 4 + 1];
shared vec4 sb4[2][BK][BN / 4 + 1];

float la[LA];
float lb[LB];

// Fetch tile (k0) of A and B into registers, zero outside the matrices.
// Element e of a thread's share runs along the stored contiguous dimension
// across consecutive threads, so global loads coalesce.
void fetch(uint m0, uint n0, uint k0, uint aoff, uint boff)
{
  const uint t = gl_LocalInvocationID.x;
  if (VEC_A)
    {
      // LA is a multiple of 4 here; each group of 4 is one aligned vec4.
      [[unroll]] for (uint e = 0; e < LA / 4; e++)
        {
          const uint i = (e * NT + t) * 4;
          uint row, kk;
          if (TRANS_A) { row = i % BM; kk = i / BM; } else { kk = i % BK; row = i / BK; }
          row += m0; kk += k0;
          vec4 v = vec4(0.0);
          if (row < p.m && kk < p.k)
            v = unpack4(a4[(aoff + a_index(row, kk)) / 4]);
          la[4 * e] = v.x; la[4 * e + 1] = v.y; la[4 * e + 2] = v.z; la[4 * e + 3] = v.w;
        }
    }
  else
    {
      [[unroll]] for (uint e = 0; e < LA; e++)
        {
          const uint i = e * NT + t;
          uint row, kk;
          if (TRANS_A) { row = i % BM; kk = i / BM; } else { kk = i % BK; row = i / BK; }
          row += m0; kk += k0;
          la[e] = row < p.m && kk < p.k ? float(a1[aoff + a_index(row, kk)]) : 0.0;
        }
    }
  if (VEC_B)
    {
      [[unroll]] for (uint e = 0; e < LB / 4; e++)
        {
          const uint i = (e * NT + t) * 4;
          uint col, kk;
          if (TRANS_B) { kk = i % BK; col = i / BK; } else { col = i % BN; kk = i / BN; }
          col += n0; kk += k0;
          vec4 v = vec4(0.0);
          if (col < p.n && kk < p.k)
            v = unpack4(b4[(boff + b_index(kk, col)) / 4]);
          lb[4 * e] = v.x; lb[4 * e + 1] = v.y; lb[4 * e + 2] = v.z; lb[4 * e + 3] = v.w;
        }
    }
  else
    {
      [[unroll]] for (uint e = 0; e < LB; e++)
        {
          const uint i = e * NT + t;
          uint col, kk;
          if (TRANS_B) { kk = i % BK; col = i / BK; } else { col = i % BN; kk = i / BN; }
          col += n0; kk += k0;
          lb[e] = col < p.n && kk < p.k ? float(b1[boff + b_index(kk, col)]) : 0.0;
        }
    }
}

// Registers → shared buffer `s`, stored [k][m] and [k][n]. A vec4 along M
// (transposed A) or N (plain B) goes in whole; one along K is spread over
// four k rows, which the padding keeps on distinct banks.
void stage(uint s)
{
  const uint t = gl_LocalInvocationID.x;
  if (VEC_A && TRANS_A)
    [[unroll]] for (uint e = 0; e < LA / 4; e++)
      {
        const uint i = (e * NT + t) * 4;
        sa4[s][i / BM][(i % BM) / 4] = vec4(la[4 * e], la[4 * e + 1], la[4 * e + 2], la[4 * e + 3]);
      }
  else
    {
      const uint w = VEC_A ? 4 : 1;
      [[unroll]] for (uint e = 0; e < LA; e++)
        {
          const uint i = ((e / w) * NT + t) * w + e % w;
          uint row, kk;
          if (TRANS_A) { row = i % BM; kk = i / BM; } else { kk = i % BK; row = i / BK; }
          sa4[s][kk][row / 4][row % 4] = la[e];
        }
    }
  if (VEC_B && !TRANS_B)
    [[unroll]] for (uint e = 0; e < LB / 4; e++)
      {
        const uint i = (e * NT + t) * 4;
        sb4[s][i / BN][(i % BN) / 4] = vec4(lb[4 * e], lb[4 * e + 1], lb[4 * e + 2], lb[4 * e + 3]);
      }
  else
    {
      const uint wb = VEC_B ? 4 : 1;
      [[unroll]] for (uint e = 0; e < LB; e++)
        {
          const uint i = ((e / wb) * NT + t) * wb + e % wb;
          uint col, kk;
          if (TRANS_B) { kk = i % BK; col = i / BK; } else { col = i % BN; kk = i / BN; }
          sb4[s][kk][col / 4][col % 4] = lb[e];
        }
    }
}

void main()
{
  const uint t = gl_LocalInvocationID.x;
  const uint tx = t % TX, ty = t / TX;
  const uint m0 = (gl_WorkGroupID.x + p.m_base) * BM;
  const uint n0 = gl_WorkGroupID.y * BN;
  const uint z = gl_WorkGroupID.z + p.z_base;
  const uint aoff = z * p.sa, boff = z * p.sb, coff = z * p.sc;

  float acc[TM][TN];
  [[unroll]] for (uint r = 0; r < TM; r++)
    [[unroll]] for (uint j = 0; j < TN; j++)
      acc[r][j] = 0.0;

  fetch(m0, n0, 0, aoff, boff);
  stage(0);
  barrier();

  const uint ntiles = (p.k + BK - 1) / BK;
  for (uint tile = 0; tile < ntiles; tile++)
    {
      const uint s = tile & 1;
      // Global loads of the next tile overlap the math on this one.
      if (tile + 1 < ntiles)
        fetch(m0, n0, (tile + 1) * BK, aoff, boff);
      [[unroll]] for (uint kk = 0; kk < BK; kk++)
        {
          float ar[TM], br[TN];
          [[unroll]] for (uint h = 0; h < 2; h++)
            {
              const uint rb = h * (BM / 2) + ty * (TM / 2);
              const uint cb = h * (BN / 2) + tx * (TN / 2);
              if ((TM / 2) % 4 == 0)
                [[unroll]] for (uint q = 0; q < TM / 8; q++)
                  {
                    vec4 v = sa4[s][kk][rb / 4 + q];
                    ar[h * (TM / 2) + 4 * q] = v.x; ar[h * (TM / 2) + 4 * q + 1] = v.y;
                    ar[h * (TM / 2) + 4 * q + 2] = v.z; ar[h * (TM / 2) + 4 * q + 3] = v.w;
                  }
              else
                [[unroll]] for (uint q = 0; q < TM / 2; q++)
                  ar[h * (TM / 2) + q] = sa4[s][kk][(rb + q) / 4][(rb + q) % 4];
              if ((TN / 2) % 4 == 0)
                [[unroll]] for (uint q = 0; q < TN / 8; q++)
                  {
                    vec4 v = sb4[s][kk][cb / 4 + q];
                    br[h * (TN / 2) + 4 * q] = v.x; br[h * (TN / 2) + 4 * q + 1] = v.y;
                    br[h * (TN / 2) + 4 * q + 2] = v.z; br[h * (TN / 2) + 4 * q + 3] = v.w;
                  }
              else
                [[unroll]] for (uint q = 0; q < TN / 2; q++)
                  br[h * (TN / 2) + q] = sb4[s][kk][(cb + q) / 4][(cb + q) % 4];
            }
          [[unroll]] for (uint r = 0; r < TM; r++)
            [[unroll]] for (uint j = 0; j < TN; j++)
              acc[r][j] = fma(ar[r], br[j], acc[r][j]);
        }
      if (tile + 1 < ntiles)
        {
          // The other buffer was last read before the previous barrier.
          stage(s ^ 1);
          barrier();
        }
    }

  // Column j of the thread's TN: half j / (TN / 2), offset j % (TN / 2).
  float bias[TN];
  [[unroll]] for (uint j = 0; j < TN; j++)
    bias[j] = bias_at(min(n0 + (j / (TN / 2)) * (BN / 2) + tx * (TN / 2) + j % (TN / 2), p.n - 1));
  [[unroll]] for (uint r = 0; r < TM; r++)
    {
      const uint row = m0 + (r / (TM / 2)) * (BM / 2) + ty * (TM / 2) + r % (TM / 2);
      if (row >= p.m)
        continue;
      const uint rbase = coff + row * p.n;
      [[unroll]] for (uint h = 0; h < 2; h++)
        {
          const uint cb = n0 + h * (BN / 2) + tx * (TN / 2);
          const uint a = h * (TN / 2);
          if (VEC_C && (TN / 2) % 4 == 0)
            {
              [[unroll]] for (uint j = 0; j < TN / 2; j += 4)
                if (cb + j < p.n)
                  store4(vec4(acc[r][a + j], acc[r][a + j + 1], acc[r][a + j + 2], acc[r][a + j + 3]),
                         vec4(bias[a + j], bias[a + j + 1], bias[a + j + 2], bias[a + j + 3]), rbase + cb + j);
            }
          else
            {
              [[unroll]] for (uint j = 0; j < TN / 2; j++)
                if (cb + j < p.n)
                  store1(acc[r][a + j], bias[a + j], rbase + cb + j);
            }
        }
    }
}

#endif
