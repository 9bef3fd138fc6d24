#version 450
// MoCo's momentum (EMA) update of the key encoder's parameters from the
// query encoder's: θ_k ← m·θ_k + (1 − m)·θ_q, f32, in place on θ_k. One
// dispatch per parameter tensor; m is a push constant so a recorded step
// can keep it fixed while the queries train.
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer K { float key[]; };
layout(std430, binding = 1) readonly buffer Q { float query[]; };
layout(push_constant) uniform P { uint n; float m; } p;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    float one_minus_m = 1.0 - p.m;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride)
        key[i] = p.m * key[i] + one_minus_m * query[i];
}
