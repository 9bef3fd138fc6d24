#version 450
// Sum / mean / max along the last dim, one subgroup per row (lanes stride the
// row, shuffle-xor butterflies combine them; no shared memory, no barriers).
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
layout(constant_id = 3) const uint OP = 0;        // 0 sum, 1 mean, 2 max
layout(constant_id = 4) const bool VEC4 = false;  // n % 4 == 0

layout(std430, binding = 0) readonly buffer X { S1 x[]; };
layout(std430, binding = 0) readonly buffer X4 { S4 x4[]; };
layout(std430, binding = 1) writeonly buffer Y { S1 y[]; };

layout(push_constant) uniform P { uint rows; uint n; } p;

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

void main() {
    uint lane = gl_SubgroupInvocationID;
    uint lanes = subgroupBallotBitCount(subgroupBallot(true));
    uint first = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
    uint stride = gl_NumWorkGroups.x * gl_NumSubgroups;

    for (uint row = first; row < p.rows; row += stride) {
        float acc = OP == 2 ? NEG_INF : 0.0;
        if (VEC4) {
            uint n4 = p.n / 4, b4 = row * n4;
            vec4 a = vec4(acc);
            for (uint i = lane; i < n4; i += lanes) {
                vec4 v = vec4(x4[b4 + i]);
                a = OP == 2 ? max(a, v) : a + v;
            }
            acc = OP == 2 ? max(max(a.x, a.y), max(a.z, a.w)) : (a.x + a.y) + (a.z + a.w);
        } else {
            uint b = row * p.n;
            for (uint i = lane; i < p.n; i += lanes) {
                float v = float(x[b + i]);
                acc = OP == 2 ? max(acc, v) : acc + v;
            }
        }
        float r = OP == 2 ? sg_max(acc, lanes) : sg_sum(acc, lanes);
        if (OP == 1)
            r /= float(p.n);
        if (lane == 0)
            y[row] = S1(r);
    }
}
