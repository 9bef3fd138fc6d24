#version 450
// Fused optimizer steps on one f32 parameter tensor, in exactly the order of
// PyTorch 1.13's single-tensor implementations. The per-step scalars (bias
// corrections, the first-step flag, the learning rate) come from a small
// hyper buffer the host rewrites before each submit, so one recorded
// training step can be replayed for every batch.
//   MODE 0 AdamW: hyper = [1 − lr·wd, β1, 1 − β1, β2, 1 − β2, lr/(1 − β1^t), √(1 − β2^t), eps]
//   MODE 1 SGD:   hyper = [lr, momentum, 1 − dampening, wd, first step (1/0)]
layout(local_size_x_id = 0) in;

layout(constant_id = 3) const uint MODE = 0;

layout(std430, binding = 0) readonly buffer H { float hyper[]; };
layout(std430, binding = 1) buffer PA { float param[]; };
layout(std430, binding = 2) readonly buffer GR { float grad[]; };
layout(std430, binding = 3) buffer M { float m[]; };     // exp_avg / momentum buffer
layout(std430, binding = 4) buffer V { float v[]; };     // exp_avg_sq
layout(std430, binding = 5) buffer VM { float vmax[]; }; // max_exp_avg_sq
// flags: bit 0 AMSGrad (AdamW), bit 1 momentum, bit 2 Nesterov (SGD)
layout(push_constant) uniform P { uint n; uint flags; } p;

void main() {
    // Read once: the stores below could alias hyper as far as the compiler
    // knows, which would reload it for every element.
    float h[8];
    for (uint k = 0; k < 8u; k++)
        h[k] = hyper[k];
    bool amsgrad = (p.flags & 1u) != 0u, momentum = (p.flags & 2u) != 0u, nesterov = (p.flags & 4u) != 0u;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        float g = grad[i];
        if (MODE == 0u) {
            float w = param[i] * h[0];
            float mi = m[i] * h[1] + h[2] * g;
            float vi = v[i] * h[3] + h[4] * g * g;
            m[i] = mi;
            v[i] = vi;
            if (amsgrad) {
                vi = max(vmax[i], vi);
                vmax[i] = vi;
            }
            float denom = sqrt(vi) / h[6] + h[7];
            param[i] = w - h[5] * (mi / denom);
        } else {
            float w = param[i];
            float d = g + h[3] * w;
            if (momentum) {
                float buf = h[4] != 0.0 ? d : m[i] * h[1] + h[2] * d;
                m[i] = buf;
                d = nesterov ? d + h[1] * buf : buf;
            }
            param[i] = w - h[0] * d;
        }
    }
}
