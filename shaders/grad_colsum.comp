#version 450
// Column reductions of backward passes over a [rows, cols] gradient: the
// bias gradient Σ_r dy (MODE 0) and layer norm's parameter gradients
// dγ = Σ_r dy·x̂, dβ = Σ_r dy from the per-row (mean, rstd) the row pass
// saved (MODE 1). A workgroup owns LX columns; its LY row slices are summed
// in shared memory, so tall thin gradients still spread over threads.
layout(local_size_x_id = 0, local_size_y_id = 1) in;

layout(constant_id = 3) const uint MODE = 0;

layout(std430, binding = 0) readonly buffer DY { float dy[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer S { vec2 stats[]; }; // (mean, rstd) per row
layout(std430, binding = 3) buffer O0 { float out0[]; };
layout(std430, binding = 4) buffer O1 { float out1[]; };
// flags: bit 0 accumulate, bit 1 write out0 (db or dγ), bit 2 write out1 (dβ)
layout(push_constant) uniform P { uint rows; uint cols; uint flags; } p;

shared vec2 red[gl_WorkGroupSize.x * gl_WorkGroupSize.y];

void main() {
    uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y;
    uint col = gl_WorkGroupID.x * gl_WorkGroupSize.x + lx;
    vec2 s = vec2(0.0);
    if (col < p.cols) {
        for (uint r = ly; r < p.rows; r += gl_WorkGroupSize.y) {
            float g = dy[r * p.cols + col];
            if (MODE == 1u) {
                vec2 st = stats[r];
                s += vec2(g * (x[r * p.cols + col] - st.x) * st.y, g);
            } else {
                s.x += g;
            }
        }
    }
    uint slot = ly * gl_WorkGroupSize.x + lx;
    red[slot] = s;
    barrier();
    for (uint h = gl_WorkGroupSize.y / 2u; h > 0u; h >>= 1) {
        if (ly < h)
            red[slot] += red[slot + h * gl_WorkGroupSize.x];
        barrier();
    }
    if (ly == 0u && col < p.cols) {
        s = red[slot];
        bool accum = (p.flags & 1u) != 0u;
        if ((p.flags & 2u) != 0u)
            out0[col] = accum ? out0[col] + s.x : s.x;
        if ((p.flags & 4u) != 0u)
            out1[col] = accum ? out1[col] + s.y : s.y;
    }
}
