#version 450
// fp16 2-D convolution as an implicit GEMM on cooperative matrices
// (GL_NV_cooperative_matrix), for groups == 1: rows = output pixels
// (N·Ho·Wo), columns = output channels, reduction k = (ky·KW + kx)·Cin + c.
// The tiles, staging and epilogue are gemm_coopmat.comp's: op(A) is the
// im2col of x [N, H, W, Cin] gathered while staging (zeros outside the image
// and past the edges), op(B) the weights [Cout, KH, KW, Cin] read
// K-contiguous (gemm's TRANS_B layout). Same bindings and push constants as
// conv_igemm.comp (its tile counters unused), epilogue y = act(acc + bias +
// residual). DCR_COOPMAT_EMU: the fragment operations as plain loops, for
// tests on devices without cooperative matrices.
// Each thread stages the same four k of several rows (the host keeps
// THREADS a multiple of BK/4 and BM, BN multiples of THREADS/(BK/4)), so an
// output pixel's position is decoded once, before the K loop, and a k's
// (ky, kx, c) once per K step for all of the thread's rows. As in
// gemm_coopmat.comp, the next K step is read into registers before the
// current step's multiply-adds, and the staged tiles are uvec2 arrays.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#ifndef DCR_COOPMAT_EMU
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#endif

layout(local_size_x_id = 0) in;

layout(constant_id = 3) const uint BM = 128;  // block rows (output pixels)
layout(constant_id = 4) const uint BN = 128;  // block columns (output channels)
layout(constant_id = 5) const uint BK = 32;   // K step (multiple of 16)
layout(constant_id = 6) const uint WM = 64;   // rows per subgroup (multiple of 16)
layout(constant_id = 7) const uint WN = 64;   // columns per subgroup (multiple of 16)
layout(constant_id = 8) const uint SG_SIZE = 32;  // the device's subgroup size (sizes the scratch)
layout(constant_id = 9) const bool VEC = false;   // Cin % 4 == 0: loads of four channels

layout(std430, binding = 0) readonly buffer X1 { float16_t x1[]; };
layout(std430, binding = 0) readonly buffer X4 { f16vec4 x4[]; };
layout(std430, binding = 1) readonly buffer W1 { float16_t w1[]; };
layout(std430, binding = 1) readonly buffer W4 { f16vec4 w4[]; };
layout(std430, binding = 2) readonly buffer Bias1 { float16_t bias1[]; };
layout(std430, binding = 3) readonly buffer R1 { float16_t r1[]; };
layout(std430, binding = 4) writeonly buffer Y1 { float16_t y1[]; };

layout(push_constant) uniform P {
  uint M;            // N·Ho·Wo
  uint H, W, Cin;
  uint Ho, Wo, Cout;
  uint KH, KW, SH, SW, DH, DW;
  int PT, PL;
  uint cin_g, cout_g;
  uint tiles_per_group, row_tiles;  // conv_igemm's; unused here
  uint act, has_bias, has_res;
} p;

void store1(float acc, uint col, uint ci)
{
  float v = acc;
  if (p.has_bias != 0u) v += float(bias1[col]);
  if (p.has_res != 0u) v += float(r1[ci]);
  if (p.act == 1u) v = max(v, 0.0);
  else if (p.act == 2u) v = clamp(v, 0.0, 6.0);
  y1[ci] = float16_t(v);
}

const uint THREADS = gl_WorkGroupSize.x;
const uint NWN = BN / WN;
const uint FM = WM / 16, FN = WN / 16;
const uint PAD = 8;
const uint A_LD = BK + PAD;   // op(A) staged [BM][BK + PAD], row-major
const uint B_LD = BK + PAD;   // op(B) staged [BN][BK + PAD], column-major (K contiguous)
#ifdef DCR_SHARED_F16
// Variant (DCR_COOPMAT_SHARED=f16), as in gemm_coopmat.comp.
const uint SU = 1;
shared float16_t sa[BM * (BK + PAD)];
shared float16_t sb[BN * (BK + PAD)];
void put_a(uint at, f16vec4 v) { sa[at] = v.x; sa[at + 1] = v.y; sa[at + 2] = v.z; sa[at + 3] = v.w; }
void put_b(uint at, f16vec4 v) { sb[at] = v.x; sb[at + 1] = v.y; sb[at + 2] = v.z; sb[at + 3] = v.w; }
float sa_get(uint i) { return float(sa[i]); }
float sb_get(uint i) { return float(sb[i]); }
#else
const uint SU = 4;  // f16 elements per array element
shared uvec2 sa[BM * (BK + PAD) / 4];
shared uvec2 sb[BN * (BK + PAD) / 4];
uvec2 pack4(f16vec4 v) { return uvec2(packFloat2x16(v.xy), packFloat2x16(v.zw)); }
void put_a(uint at, f16vec4 v) { sa[at / 4] = pack4(v); }
void put_b(uint at, f16vec4 v) { sb[at / 4] = pack4(v); }
float sa_get(uint i) { return float(unpackFloat2x16(sa[i >> 2][(i >> 1) & 1u])[i & 1u]); }
float sb_get(uint i) { return float(unpackFloat2x16(sb[i >> 2][(i >> 1) & 1u])[i & 1u]); }
#endif
shared float scratch[(THREADS / SG_SIZE) * 256];

uint sa_at(uint r, uint kk) { return r * A_LD + kk; }
uint sb_at(uint kk, uint c) { return c * B_LD + kk; }

const uint KQ = BK / 4;              // groups of four along a staged row
const uint RPR = THREADS / KQ;       // rows staged per round
const uint A_PER = BM / RPR, B_PER = BN / RPR;
f16vec4 ra[A_PER];                   // the K step being fetched
f16vec4 rb[B_PER];
int ihb[A_PER], iwb[A_PER];          // top-left input position of each row's window
uint nhb[A_PER];                     // n·H of each row's image
uint tid, kq, row0, n0, ksize;

void decode_rows(uint m0)
{
  [[unroll]] for (uint i = 0; i < A_PER; i++)
    {
      uint m = m0 + row0 + i * RPR;
      if (m < p.M)
        {
          uint ow = m % p.Wo, t = m / p.Wo;
          uint oh = t % p.Ho, n = t / p.Ho;
          ihb[i] = int(oh * p.SH) - p.PT;
          iwb[i] = int(ow * p.SW) - p.PL;
          nhb[i] = n * p.H;
        }
      else
        {
          ihb[i] = -0x40000000;  // every tap falls outside the image
          iwb[i] = 0;
          nhb[i] = 0;
        }
    }
}

f16vec4 tap(uint i, uint ky, uint kx, uint c)
{
  int ih = ihb[i] + int(ky * p.DH), iw = iwb[i] + int(kx * p.DW);
  if (ih < 0 || ih >= int(p.H) || iw < 0 || iw >= int(p.W))
    return f16vec4(0.0hf);
  uint xo = ((nhb[i] + uint(ih)) * p.W + uint(iw)) * p.Cin + c;
  return x4[xo / 4];
}

void fetch(uint k0)
{
  uint k = k0 + 4 * kq;
  if (VEC)
    {
      // four channels of one (ky, kx): one load per row
      bool in_k = k < ksize;
      uint c = k % p.Cin, t = k / p.Cin;
      uint kx = t % p.KW, ky = t / p.KW;
      [[unroll]] for (uint i = 0; i < A_PER; i++)
        ra[i] = in_k ? tap(i, ky, kx, c) : f16vec4(0.0hf);
    }
  else
    {
      [[unroll]] for (uint i = 0; i < A_PER; i++)
        ra[i] = f16vec4(0.0hf);
      [[unroll]] for (uint u = 0; u < 4; u++)
        {
          uint ku = k + u;
          if (ku >= ksize)
            break;
          uint c = ku % p.Cin, t = ku / p.Cin;
          uint kx = t % p.KW, ky = t / p.KW;
          [[unroll]] for (uint i = 0; i < A_PER; i++)
            {
              int ih = ihb[i] + int(ky * p.DH), iw = iwb[i] + int(kx * p.DW);
              if (ih >= 0 && ih < int(p.H) && iw >= 0 && iw < int(p.W))
                ra[i][u] = x1[((nhb[i] + uint(ih)) * p.W + uint(iw)) * p.Cin + c];
            }
        }
    }
  [[unroll]] for (uint i = 0; i < B_PER; i++)
    {
      uint col = n0 + row0 + i * RPR;
      f16vec4 v = f16vec4(0.0hf);
      if (col < p.Cout)
        {
          uint base = col * ksize + k;
          if (VEC && k + 3 < ksize)
            v = w4[base / 4];
          else
            [[unroll]] for (uint u = 0; u < 4; u++)
              if (k + u < ksize)
                v[u] = w1[base + u];
        }
      rb[i] = v;
    }
}

void stash()
{
  [[unroll]] for (uint i = 0; i < A_PER; i++)
    put_a(sa_at(row0 + i * RPR, 4 * kq), ra[i]);
  [[unroll]] for (uint i = 0; i < B_PER; i++)
    put_b(sb_at(4 * kq, row0 + i * RPR), rb[i]);
}

void main()
{
  tid = gl_LocalInvocationID.x;
  kq = tid % KQ;
  row0 = tid / KQ;
  const uint sg = gl_SubgroupID;
  const uint lane = gl_SubgroupInvocationID;
  const uint sgs = gl_SubgroupSize;
  const uint m0 = (gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x) * BM;
  n0 = gl_WorkGroupID.y * BN;
  ksize = p.KH * p.KW * p.Cin;
  const uint wm0 = (sg / NWN) * WM, wn0 = (sg % NWN) * WN;
  if (m0 >= p.M)
    return;  // whole workgroup: the z split's last slice may overshoot
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

  decode_rows(m0);
  fetch(0);
  for (uint k0 = 0; k0 < ksize; k0 += BK)
    {
      stash();
      barrier();
      if (k0 + BK < ksize)
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
            coopMatLoadNV(fa[i], sa, sa_at(wm0 + i * 16, ks) / SU, A_LD / SU, false);
          [[unroll]] for (uint j = 0; j < FN; j++)
            {
              fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> fb;
              coopMatLoadNV(fb, sb, sb_at(ks, wn0 + j * 16) / SU, B_LD / SU, true);
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
            if (row < p.M && col < p.Cout)
              store1(scratch[so + el], col, row * p.Cout + col);
          }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
      }
}
