#version 450
// Softmax along the last dim of scale·x + mask, one subgroup per row: each
// lane keeps a running (max, sum of exp) over its share of the row, the lanes
// merge them with shuffle-xor butterflies, and a second read writes
// exp(v − max) / sum. No shared memory, no barriers. Rows are read in chunks
// of 4 entries (n % 4 == 0: vec4 loads) or of 1. (Holding rows in registers
// instead of reading twice compiles for seconds on lavapipe.)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define S1 float16_t
#define S4 f16vec4
#else
#define S1 float
#define S4 vec4
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 3) const bool VEC4 = false;   // n % 4 == 0
layout(constant_id = 4) const bool HAS_MASK = false;

layout(std430, binding = 0) readonly buffer X { S1 x[]; };
layout(std430, binding = 0) readonly buffer X4 { S4 x4[]; };
layout(std430, binding = 1) readonly buffer M { S1 m[]; };
layout(std430, binding = 1) readonly buffer M4 { S4 m4[]; };
layout(std430, binding = 2) writeonly buffer Y { S1 y[]; };
layout(std430, binding = 2) writeonly buffer Y4 { S4 y4[]; };

layout(push_constant) uniform P { uint rows; uint n; uint mask_rows; float scale; } p;

#define NEG_INF uintBitsToFloat(0xff800000u)

// Butterfly reductions over the lanes (a power of two) with shuffle-xor:
// every lane gets the same bits, and lavapipe compiles them to vector
// permutes where its subgroupAdd/Max loop over the lanes. The loops count k
// so that they unroll.
float sg_sum(float v, uint lanes) {
    [[unroll]] for (uint k = 0; k < 7; k++)
        if ((1u << k) < lanes)
            v += subgroupShuffleXor(v, 1u << k);
    return v;
}
float sg_max(float v, uint lanes) {
    [[unroll]] for (uint k = 0; k < 7; k++)
        if ((1u << k) < lanes)
            v = max(v, subgroupShuffleXor(v, 1u << k));
    return v;
}

// scale·x + mask for chunk c of a row; −inf past the end (and in the unused
// components of a 1-entry chunk), which the max ignores and exp turns to 0.
vec4 logits(uint row, uint mrow, uint c, uint nc) {
    if (c >= nc)
        return vec4(NEG_INF);
    if (VEC4) {
        vec4 v = vec4(x4[row * nc + c]) * p.scale;
        return HAS_MASK ? v + vec4(m4[mrow * nc + c]) : v;
    }
    float v = float(x[row * nc + c]) * p.scale;
    if (HAS_MASK)
        v += float(m[mrow * nc + c]);
    return vec4(v, NEG_INF, NEG_INF, NEG_INF);
}

void store(uint row, uint c, uint nc, vec4 v) {
    if (c >= nc)
        return;
    if (VEC4)
        y4[row * nc + c] = S4(v);
    else
        y[row * nc + c] = S1(v.x);
}

float max4(vec4 v) { return VEC4 ? max(max(v.x, v.y), max(v.z, v.w)) : v.x; }

// exp(v − base), only the used component of a 1-entry chunk.
vec4 exp_from(vec4 v, float base) {
    return VEC4 ? exp(v - base) : vec4(exp(v.x - base), 0.0, 0.0, 0.0);
}

void main() {
    uint lane = gl_SubgroupInvocationID;
    uint lanes = subgroupBallotBitCount(subgroupBallot(true));
    uint first = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
    uint stride = gl_NumWorkGroups.x * gl_NumSubgroups;
    uint nc = VEC4 ? p.n / 4 : p.n;

    for (uint row = first; row < p.rows; row += stride) {
        uint mrow = HAS_MASK ? row % p.mask_rows : 0;
        float mx = NEG_INF, sum = 0.0;
        for (uint c = lane; c < nc; c += lanes) {
            vec4 v = logits(row, mrow, c, nc);
            float nm = max(mx, max4(v));
            if (nm != NEG_INF) {
                // rescale what was summed to the new max (nothing yet if mx is −inf)
                sum = (mx == NEG_INF ? 0.0 : sum * exp(mx - nm)) + dot(exp_from(v, nm), vec4(1.0));
                mx = nm;
            }
        }
        float rmax = sg_max(mx, lanes);
        // A fully masked row has max −inf and sum 0: it is written as zeros.
        float rsum = sg_sum(mx == NEG_INF ? 0.0 : sum * exp(mx - rmax), lanes);
        float inv = rsum > 0.0 ? 1.0 / rsum : 0.0;
        float base = rmax == NEG_INF ? 0.0 : rmax;
        for (uint c = lane; c < nc; c += lanes)
            store(row, c, nc, exp_from(logits(row, mrow, c, nc), base) * inv);
    }
}
