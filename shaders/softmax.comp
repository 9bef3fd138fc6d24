#version 450
// Softmax along the last dim of scale·x + mask, one subgroup per row: each
// lane keeps a running (max, sum of exp) over its strided share of the row
// (one read), the lanes merge them with subgroup max/add, and a second read
// writes exp(v − max) / sum. No shared memory, no barriers.
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

// exp(a − b) where b ≥ a, and 0 when both are −inf (an all-masked prefix).
float exp_below(float a, float b) {
    return b == NEG_INF ? 0.0 : exp(a - b);
}

void main() {
    uint lane = gl_SubgroupInvocationID;
    uint lanes = subgroupBallotBitCount(subgroupBallot(true));
    uint first = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
    uint stride = gl_NumWorkGroups.x * gl_NumSubgroups;

    for (uint row = first; row < p.rows; row += stride) {
        uint mrow = HAS_MASK ? row % p.mask_rows : 0;
        float mx = NEG_INF, sum = 0.0;
        if (VEC4) {
            uint n4 = p.n / 4, b4 = row * n4, mb4 = mrow * n4;
            for (uint i = lane; i < n4; i += lanes) {
                vec4 v = vec4(x4[b4 + i]) * p.scale;
                if (HAS_MASK)
                    v += vec4(m4[mb4 + i]);
                float nm = max(mx, max(max(v.x, v.y), max(v.z, v.w)));
                if (nm != NEG_INF)
                    sum = sum * exp_below(mx, nm) + dot(exp(v - nm), vec4(1.0));
                mx = nm;
            }
        } else {
            uint b = row * p.n, mb = mrow * p.n;
            for (uint i = lane; i < p.n; i += lanes) {
                float v = float(x[b + i]) * p.scale;
                if (HAS_MASK)
                    v += float(m[mb + i]);
                float nm = max(mx, v);
                if (nm != NEG_INF)
                    sum = sum * exp_below(mx, nm) + exp(v - nm);
                mx = nm;
            }
        }
        float rmax = subgroupMax(mx);
        float rsum = subgroupAdd(sum * exp_below(mx, rmax));
        // A fully masked row has rmax = −inf and rsum = 0: write zeros.
        float inv = rsum > 0.0 ? 1.0 / rsum : 0.0;
        if (VEC4) {
            uint n4 = p.n / 4, b4 = row * n4, mb4 = mrow * n4;
            for (uint i = lane; i < n4; i += lanes) {
                vec4 v = vec4(x4[b4 + i]) * p.scale;
                if (HAS_MASK)
                    v += vec4(m4[mb4 + i]);
                y4[b4 + i] = S4(inv > 0.0 ? exp(v - rmax) * inv : vec4(0.0));
            }
        } else {
            uint b = row * p.n, mb = mrow * p.n;
            for (uint i = lane; i < p.n; i += lanes) {
                float v = float(x[b + i]) * p.scale;
                if (HAS_MASK)
                    v += float(m[mb + i]);
                y[b + i] = S1(inv > 0.0 ? exp(v - rmax) * inv : 0.0);
            }
        }
    }
}
