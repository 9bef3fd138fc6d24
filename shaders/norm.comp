#version 450
// Normalisation along the last dim, one subgroup per row: lanes stride over
// the row and combine with shuffle-xor butterflies, so there is no shared
// memory and no barrier (lavapipe runs barriers as coroutine switches, and
// its subgroupAdd loops over the lanes).
// MODE 0: layer norm (mean and variance, gamma, beta);
// MODE 1: L2 normalise, x / max(‖x‖, eps).
// The row is read twice: once for the statistics, once to write. (Holding
// it in registers instead saves one read but, unrolled over a 1024-wide row,
// compiles for seconds on lavapipe, and measured no faster there.)
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
layout(constant_id = 3) const uint MODE = 0;
layout(constant_id = 4) const bool VEC4 = false;   // d % 4 == 0: vec4 loads

// Scalar and vec4 views of the same bindings.
layout(std430, binding = 0) readonly buffer X { S1 x[]; };
layout(std430, binding = 0) readonly buffer X4 { S4 x4[]; };
layout(std430, binding = 1) readonly buffer G { S1 g[]; };
layout(std430, binding = 1) readonly buffer G4 { S4 g4[]; };
layout(std430, binding = 2) readonly buffer Bt { S1 bt[]; };
layout(std430, binding = 2) readonly buffer Bt4 { S4 bt4[]; };
layout(std430, binding = 3) writeonly buffer Y { S1 y[]; };
layout(std430, binding = 3) writeonly buffer Y4 { S4 y4[]; };

layout(push_constant) uniform P {
    uint rows, d;
    float eps;
    uint affine;   // bit 0: gamma, bit 1: beta (push flags, not variants: fewer pipelines)
} p;

// Butterfly sum over the lanes (a power of two); every lane gets the same
// bits. The loop counts k so that it unrolls.
float sg_sum(float v, uint lanes) {
    [[unroll]] for (uint k = 0; k < 7; k++)
        if ((1u << k) < lanes)
            v += subgroupShuffleXor(v, 1u << k);
    return v;
}

float row_scale(float ss) {
    return MODE == 0 ? inversesqrt(ss / float(p.d) + p.eps) : 1.0 / max(sqrt(ss), p.eps);
}

void main() {
    uint lane = gl_SubgroupInvocationID;
    // Count the lanes that really run: some drivers report a subgroup size
    // larger than the hardware one they picked.
    uint lanes = subgroupBallotBitCount(subgroupBallot(true));
    uint first = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
    uint stride = gl_NumWorkGroups.x * gl_NumSubgroups;

    // Statistics: per-lane Welford, merged with Chan's formula, so there is
    // no cancellation however far the mean is from 0.
    for (uint row = first; row < p.rows; row += stride) {
        uint b = row * p.d;
        float cnt = 0.0, mean = 0.0, m2 = 0.0;
        uint w = VEC4 ? 4 : 1;
        for (uint i = lane * w; i < p.d; i += lanes * w) {
            vec4 v4 = VEC4 ? vec4(x4[(b + i) / 4]) : vec4(float(x[b + i]), 0.0, 0.0, 0.0);
            if (MODE == 0) {
                // merge this chunk's (w, mean, M2) in: one division per chunk
                float mc = VEC4 ? 0.25 * (v4.x + v4.y + v4.z + v4.w) : v4.x;
                vec4 dc = v4 - mc;
                float m2c = VEC4 ? dot(dc, dc) : 0.0;
                float n = cnt + float(w), delta = mc - mean, f = float(w) / n;
                mean += delta * f;
                m2 += m2c + delta * delta * cnt * f;
                cnt = n;
            } else {
                m2 += dot(v4, v4);
            }
        }
        if (MODE == 0) {
            [[unroll]] for (uint k = 0; k < 7; k++) {
                if ((1u << k) < lanes) {
                    float cb = subgroupShuffleXor(cnt, 1u << k), mb = subgroupShuffleXor(mean, 1u << k);
                    float m2b = subgroupShuffleXor(m2, 1u << k);
                    float n = cnt + cb, delta = mb - mean;
                    float f = n > 0.0 ? cb / n : 0.0;
                    mean += delta * f;
                    m2 += m2b + delta * delta * cnt * f;
                    cnt = n;
                }
            }
            // The merge order differs per lane: take lane 0's bits everywhere.
            mean = subgroupShuffle(mean, 0);
            m2 = subgroupShuffle(m2, 0);
        } else {
            m2 = sg_sum(m2, lanes);
        }
        float shift = MODE == 0 ? mean : 0.0;
        float scale = row_scale(m2);
        if (VEC4) {
            for (uint i = lane * 4; i < p.d; i += lanes * 4) {
                vec4 v = (vec4(x4[(b + i) / 4]) - shift) * scale;
                if ((p.affine & 1) != 0)
                    v *= vec4(g4[i / 4]);
                if ((p.affine & 2) != 0)
                    v += vec4(bt4[i / 4]);
                y4[(b + i) / 4] = S4(v);
            }
        } else {
            for (uint i = lane; i < p.d; i += lanes) {
                float v = (float(x[b + i]) - shift) * scale;
                if ((p.affine & 1) != 0)
                    v *= float(g[i]);
                if ((p.affine & 2) != 0)
                    v += float(bt[i]);
                y[b + i] = S1(v);
            }
        }
    }
}
