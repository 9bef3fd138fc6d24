#version 450
// The first coopmat kernel (5563e87), kept for one GPU run beside its successor
// (conv_coopmat.comp: register prefetch, rows decoded once, uvec2 tiles)
// to measure the two in one run ($DCR_COOPMAT_V1=1); to be removed once measured.
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
shared float16_t sa[BM * (BK + PAD)];
shared float16_t sb[BN * (BK + PAD)];
shared float scratch[(THREADS / SG_SIZE) * 256];

uint sa_at(uint r, uint kk) { return r * A_LD + kk; }
uint sb_at(uint kk, uint c) { return c * B_LD + kk; }

// Four consecutive k of output pixel m (k0 % 4 == 0), zero outside the image
// and past K. With VEC the four share (ky, kx) and are one load.
f16vec4 load_a4(uint m, uint k0, uint ksize)
{
  f16vec4 v = f16vec4(0.0hf);
  if (m >= p.M)
    return v;
  uint ow = m % p.Wo, t = m / p.Wo;
  uint oh = t % p.Ho, n = t / p.Ho;
  [[unroll]] for (uint u = 0; u < 4; u++)
    {
      uint k = k0 + u;
      if (k >= ksize || (VEC && u > 0))
        break;
      uint c = k % p.Cin, kk = k / p.Cin;
      uint kx = kk % p.KW, ky = kk / p.KW;
      int ih = int(oh * p.SH + ky * p.DH) - p.PT, iw = int(ow * p.SW + kx * p.DW) - p.PL;
      if (ih < 0 || ih >= int(p.H) || iw < 0 || iw >= int(p.W))
        continue;
      uint xo = ((n * p.H + uint(ih)) * p.W + uint(iw)) * p.Cin + c;
      if (VEC)
        return x4[xo / 4];
      v[u] = x1[xo];
    }
  return v;
}

// Four consecutive k of output channel col's weights.
f16vec4 load_b4(uint col, uint k0, uint ksize)
{
  if (col >= p.Cout)
    return f16vec4(0.0hf);
  uint base = col * ksize + k0;
  if (VEC && k0 + 3 < ksize)
    return w4[base / 4];
  f16vec4 v = f16vec4(0.0hf);
  [[unroll]] for (uint u = 0; u < 4; u++)
    if (k0 + u < ksize)
      v[u] = w1[base + u];
  return v;
}

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint sg = gl_SubgroupID;
  const uint lane = gl_SubgroupInvocationID;
  const uint sgs = gl_SubgroupSize;
  const uint m0 = (gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x) * BM;
  const uint n0 = gl_WorkGroupID.y * BN;
  const uint ksize = p.KH * p.KW * p.Cin;
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

  for (uint k0 = 0; k0 < ksize; k0 += BK)
    {
      for (uint g = tid; g < BM * BK / 4; g += THREADS)
        {
          uint r = g / (BK / 4), kk = 4 * (g % (BK / 4));
          f16vec4 v = load_a4(m0 + r, k0 + kk, ksize);
          [[unroll]] for (uint u = 0; u < 4; u++)
            sa[sa_at(r, kk + u)] = v[u];
        }
      for (uint g = tid; g < BN * BK / 4; g += THREADS)
        {
          uint c = g / (BK / 4), kk = 4 * (g % (BK / 4));
          f16vec4 v = load_b4(n0 + c, k0 + kk, ksize);
          [[unroll]] for (uint u = 0; u < 4; u++)
            sb[sb_at(kk + u, c)] = v[u];
        }
      barrier();

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
                        s += float(sa[sa_at(r, ks + kk)]) * float(sb[sb_at(ks + kk, c)]);
                      acc[i][j][e] += s;
                    }
                }
#else
          fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> fa[FM];
          [[unroll]] for (uint i = 0; i < FM; i++)
            coopMatLoadNV(fa[i], sa, sa_at(wm0 + i * 16, ks), A_LD, false);
          [[unroll]] for (uint j = 0; j < FN; j++)
            {
              fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> fb;
              coopMatLoadNV(fb, sb, sb_at(ks, wn0 + j * 16), B_LD, true);
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
