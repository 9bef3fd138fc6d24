#version 450
// Binary cross-entropy, mean over all n elements, value and gradient in one
// single-workgroup pass (n is a batch of anomaly scores):
//   MODE 0, on probabilities: PyTorch's BCELoss — logs clamped at −100, and
//           its gradient (p − t) / max(p(1 − p), 1e-12);
//   MODE 1, on logits: BCEWithLogitsLoss — max(z, 0) − z·t + log1p(e^−|z|),
//           gradient σ(z) − t.
layout(local_size_x_id = 0) in; // a power of two

layout(constant_id = 3) const uint MODE = 0;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer T { float target[]; };
layout(std430, binding = 2) buffer DX { float dx[]; };
layout(std430, binding = 3) buffer Loss { float loss[]; };
layout(push_constant) uniform P { uint n; float grad_scale; uint has_grad; } p;

shared float red[gl_WorkGroupSize.x];

float reduce_sum(float v) {
    uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();
    for (uint h = gl_WorkGroupSize.x / 2u; h > 0u; h >>= 1) {
        if (t < h)
            red[t] += red[t + h];
        barrier();
    }
    return red[0];
}

// log(1 + v) without losing v when it is far below 1 (GLSL has no log1p):
// the rounding of 1 + v cancels in log(u)·v/(u − 1).
float log1p_(float v) {
    float u = 1.0 + v;
    return u == 1.0 ? v : log(u) * (v / (u - 1.0));
}

void main() {
    uint t = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    float inv = 1.0 / float(p.n);
    float acc = 0.0;
    for (uint i = t; i < p.n; i += L) {
        float v = x[i], y = target[i];
        float l, g;
        if (MODE == 0u) {
            // GLSL leaves log(0) undefined: the clamp is spelled out
            float log_p = v > 0.0 ? max(log(v), -100.0) : -100.0;
            float log_q = 1.0 - v > 0.0 ? max(log1p_(-v), -100.0) : -100.0;
            l = -(y * log_p + (1.0 - y) * log_q);
            g = (v - y) / max((1.0 - v) * v, 1e-12);
        } else {
            l = max(v, 0.0) - v * y + log1p_(exp(-abs(v)));
            float e = exp(-abs(v));
            float s = v >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            g = s - y;
        }
        acc += l;
        if (p.has_grad != 0u)
            dx[i] = g * inv * p.grad_scale;
    }
    acc = reduce_sum(acc);
    if (t == 0u)
        loss[0] = acc * inv;
}
