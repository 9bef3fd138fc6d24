#version 450
// Row-wise backward passes over a [rows, n] tensor, one subgroup per row
// (lanes stride over the row and combine with subgroup reductions: no
// shared memory, no barriers, which lavapipe runs as coroutine switches):
//   MODE 0 softmax:      dx = y ⊙ (dy − Σ dy⊙y)                    (a = y)
//   MODE 1 L2 normalise: y = x / max(‖x‖, eps)                      (a = x)
//   MODE 2 layer norm:   dx from x, γ, dy with (mean, rstd) recomputed
//                        from x, and saved per row for the dγ/dβ pass (a = x)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_ballot : require

layout(local_size_x_id = 0) in;

layout(constant_id = 3) const uint MODE = 0;

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer DY { float dy[]; };
layout(std430, binding = 2) readonly buffer G { float gamma[]; };
layout(std430, binding = 3) buffer DX { float dx[]; };
layout(std430, binding = 4) buffer S { vec2 stats[]; };
// flags: bit 0 accumulate into dx, bit 1 γ given, bit 2 save the stats
layout(push_constant) uniform P { uint rows; uint n; float eps; uint flags; } p;

void store(uint i, float v) {
    dx[i] = (p.flags & 1u) != 0u ? dx[i] + v : v;
}

float gdy(uint row_base, uint j) {
    return dy[row_base + j] * ((p.flags & 2u) != 0u ? gamma[j] : 1.0);
}

void main() {
    uint lane = gl_SubgroupInvocationID;
    // the lanes that really run: some drivers report a subgroup size larger
    // than the one they picked
    uint lanes = subgroupBallotBitCount(subgroupBallot(true));
    uint stride = gl_NumWorkGroups.x * gl_NumSubgroups;
    for (uint row = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID; row < p.rows; row += stride) {
        uint base = row * p.n;
        if (MODE == 0u) {
            float s = 0.0;
            for (uint j = lane; j < p.n; j += lanes)
                s += a[base + j] * dy[base + j];
            s = subgroupAdd(s);
            for (uint j = lane; j < p.n; j += lanes)
                store(base + j, a[base + j] * (dy[base + j] - s));
        } else if (MODE == 1u) {
            vec2 s = vec2(0.0);
            for (uint j = lane; j < p.n; j += lanes) {
                float xv = a[base + j];
                s += vec2(xv * xv, xv * dy[base + j]);
            }
            s = subgroupAdd(s);
            float nrm = sqrt(s.x);
            // PyTorch clamps the norm with clamp_min(eps): below eps the
            // denominator is a constant and the gradient is dy/eps.
            float inv = 1.0 / max(nrm, p.eps);
            float k = nrm >= p.eps ? s.y / s.x : 0.0;
            for (uint j = lane; j < p.n; j += lanes)
                store(base + j, (dy[base + j] - a[base + j] * k) * inv);
        } else {
            float sx = 0.0;
            for (uint j = lane; j < p.n; j += lanes)
                sx += a[base + j];
            float inv_n = 1.0 / float(p.n);
            float mean = subgroupAdd(sx) * inv_n;
            vec3 s = vec3(0.0);
            for (uint j = lane; j < p.n; j += lanes) {
                float xc = a[base + j] - mean, g = gdy(base, j);
                s += vec3(xc * xc, g, g * xc);
            }
            s = subgroupAdd(s);
            float rstd = inversesqrt(s.x * inv_n + p.eps);
            float c1 = s.y * inv_n;               // mean of γ·dy
            float c2 = rstd * rstd * s.z * inv_n; // mean of γ·dy·x̂, over rstd
            for (uint j = lane; j < p.n; j += lanes)
                store(base + j, rstd * (gdy(base, j) - c1 - (a[base + j] - mean) * c2));
            if ((p.flags & 4u) != 0u && subgroupElect())
                stats[row] = vec2(mean, rstd);
        }
    }
}
