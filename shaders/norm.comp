#version 450
// Normalisation along the last dim, one subgroup per row: lanes stride over
// the row and combine with subgroup reductions, so there is no shared memory
// and no barrier (lavapipe runs barriers as coroutine switches).
// MODE 0: layer norm (two-pass mean and variance, gamma, beta);
// MODE 1: L2 normalise, x / max(‖x‖, eps).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_ballot : require
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
layout(constant_id = 4) const bool VEC4 = false;   // d % 4 == 0: vec4 loads and stores
layout(constant_id = 5) const bool HAS_GAMMA = false;
layout(constant_id = 6) const bool HAS_BETA = false;

// Scalar and vec4 views of the same bindings.
layout(std430, binding = 0) readonly buffer X { S1 x[]; };
layout(std430, binding = 0) readonly buffer X4 { S4 x4[]; };
layout(std430, binding = 1) readonly buffer G { S1 g[]; };
layout(std430, binding = 1) readonly buffer G4 { S4 g4[]; };
layout(std430, binding = 2) readonly buffer Bt { S1 bt[]; };
layout(std430, binding = 2) readonly buffer Bt4 { S4 bt4[]; };
layout(std430, binding = 3) writeonly buffer Y { S1 y[]; };
layout(std430, binding = 3) writeonly buffer Y4 { S4 y4[]; };

layout(push_constant) uniform P { uint rows; uint d; float eps; } p;

void main() {
    uint lane = gl_SubgroupInvocationID;
    // Count the lanes that really run: some drivers report a subgroup size
    // larger than the hardware one they picked.
    uint lanes = subgroupBallotBitCount(subgroupBallot(true));
    uint first = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
    uint stride = gl_NumWorkGroups.x * gl_NumSubgroups;
    float inv_d = 1.0 / float(p.d);

    for (uint row = first; row < p.rows; row += stride) {
        float shift = 0.0, scale;
        if (VEC4) {
            uint n4 = p.d / 4, b4 = row * n4;
            vec4 acc = vec4(0.0);
            if (MODE == 0) {
                for (uint i = lane; i < n4; i += lanes)
                    acc += vec4(x4[b4 + i]);
                shift = subgroupAdd(acc.x + acc.y + acc.z + acc.w) * inv_d;
                acc = vec4(0.0);
            }
            for (uint i = lane; i < n4; i += lanes) {
                vec4 v = vec4(x4[b4 + i]) - shift;
                acc += v * v;
            }
            float ss = subgroupAdd(acc.x + acc.y + acc.z + acc.w);
            scale = MODE == 0 ? inversesqrt(ss * inv_d + p.eps) : 1.0 / max(sqrt(ss), p.eps);
            for (uint i = lane; i < n4; i += lanes) {
                vec4 v = (vec4(x4[b4 + i]) - shift) * scale;
                if (HAS_GAMMA)
                    v *= vec4(g4[i]);
                if (HAS_BETA)
                    v += vec4(bt4[i]);
                y4[b4 + i] = S4(v);
            }
        } else {
            uint b = row * p.d;
            float acc = 0.0;
            if (MODE == 0) {
                for (uint i = lane; i < p.d; i += lanes)
                    acc += float(x[b + i]);
                shift = subgroupAdd(acc) * inv_d;
                acc = 0.0;
            }
            for (uint i = lane; i < p.d; i += lanes) {
                float v = float(x[b + i]) - shift;
                acc += v * v;
            }
            float ss = subgroupAdd(acc);
            scale = MODE == 0 ? inversesqrt(ss * inv_d + p.eps) : 1.0 / max(sqrt(ss), p.eps);
            for (uint i = lane; i < p.d; i += lanes) {
                float v = (float(x[b + i]) - shift) * scale;
                if (HAS_GAMMA)
                    v *= float(g[i]);
                if (HAS_BETA)
                    v += float(bt[i]);
                y[b + i] = S1(v);
            }
        }
    }
}
