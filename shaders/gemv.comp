#version 450
// Scores of a few queries against a bank of rows, reading the bank once:
//   s[q, r] = Σ_c x[q, c] · w[r, c]   (x [QB, dim], w [rows, dim], s [QB, ld_s])
// fp32 accumulation, storage f32 or f16 (DCR_FP16). The retrieval search's
// bandwidth-bound path on GPUs for one query or a handful (dcr-retrieval.c);
// a GEMM tile would compute a block of query rows where there is one. A
// subgroup per row, its lanes reading consecutive groups of four (f16: eight)
// elements so that each load instruction is one contiguous stretch of the
// row, then subgroupAdd. A subgroup takes RPS rows at a time and issues all
// their loads before the arithmetic, so that several of a lane's loads are in
// flight at once (one row of 1024 f16 is only four per lane). Rows are walked
// grid-stride, so any number fits the device's grid limit. (On lavapipe, where every per-lane load is a loop over
// the lanes, this and a row-per-lane variant were no faster than the GEMM:
// retrieval keeps the GEMM there.)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require

#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define STYPE float16_t
#define WTYPE uvec4   // eight halves
vec4 unpack4(uvec2 u) { return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); }
#define WPER 8u
#else
#define STYPE float
#define WTYPE vec4
#define WPER 4u
#endif

layout(local_size_x_id = 0) in;  // ids 0–2 are the local size (README)
layout(constant_id = 3) const uint QB = 1;           // queries (1–8)
layout(constant_id = 4) const bool VEC = false;       // dim % WPER == 0: loads of four (f16: eight)
layout(constant_id = 5) const uint SG = 32;           // the subgroup size
layout(constant_id = 6) const uint RPS = 1;           // rows per subgroup and round

layout(std430, binding = 0) readonly buffer X1 { STYPE x1[]; };
layout(std430, binding = 0) readonly buffer XW { WTYPE xw[]; };
layout(std430, binding = 1) readonly buffer W1 { STYPE w1[]; };
layout(std430, binding = 1) readonly buffer WW { WTYPE ww[]; };
layout(std430, binding = 2) writeonly buffer S1 { STYPE s1[]; };

layout(push_constant) uniform P {
  uint rows, dim, ld_s;
} p;

#ifdef DCR_FP16
float dotw(uvec4 a, uvec4 b)
{
  return dot(unpack4(a.xy), unpack4(b.xy)) + dot(unpack4(a.zw), unpack4(b.zw));
}
#else
float dotw(vec4 a, vec4 b) { return dot(a, b); }
#endif

void main()
{
  const uint lane = gl_SubgroupInvocationID;
  const uint n_sg = gl_WorkGroupSize.x / SG;
  const uint stride = gl_NumWorkGroups.x * n_sg * RPS;
  for (uint row0 = (gl_WorkGroupID.x * n_sg + gl_SubgroupID) * RPS; row0 < p.rows; row0 += stride)
    {
      float acc[RPS][QB];
      [[unroll]] for (uint r = 0; r < RPS; r++)
        [[unroll]] for (uint q = 0; q < QB; q++)
          acc[r][q] = 0.0;
      if (VEC)
        {
          const uint nw = p.dim / WPER;
          for (uint g = lane; g < nw; g += SG)
            {
              WTYPE w[RPS];
              [[unroll]] for (uint r = 0; r < RPS; r++)
                w[r] = row0 + r < p.rows ? ww[(row0 + r) * nw + g] : WTYPE(0);
              [[unroll]] for (uint q = 0; q < QB; q++)
                {
                  WTYPE x = xw[q * nw + g];
                  [[unroll]] for (uint r = 0; r < RPS; r++)
                    acc[r][q] += dotw(w[r], x);
                }
            }
        }
      else
        {
          for (uint c = lane; c < p.dim; c += SG)
            [[unroll]] for (uint r = 0; r < RPS; r++)
              if (row0 + r < p.rows)
                {
                  float w = float(w1[(row0 + r) * p.dim + c]);
                  [[unroll]] for (uint q = 0; q < QB; q++)
                    acc[r][q] += w * float(x1[q * p.dim + c]);
                }
        }
      [[unroll]] for (uint r = 0; r < RPS; r++)
        [[unroll]] for (uint q = 0; q < QB; q++)
          {
            float s = subgroupAdd(acc[r][q]);
            if (lane == 0 && row0 + r < p.rows)
              s1[q * p.ld_s + row0 + r] = STYPE(s);
          }
    }
}
