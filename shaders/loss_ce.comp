#version 450
// Cross-entropy on logits [B, C] with integer labels, mean over the rows
// whose label is in [0, C) (others are ignored, as PyTorch's ignore_index):
// the loss value and its gradient softmax − onehot in one pass. One
// workgroup does the whole batch so the mean needs no second dispatch; the
// DCR classifier has C = 2 and batches of at most a few thousand rows.
layout(local_size_x_id = 0) in; // a power of two

layout(std430, binding = 0) readonly buffer Z { float logits[]; };
layout(std430, binding = 1) readonly buffer Y { int labels[]; };
layout(std430, binding = 2) buffer DZ { float dlogits[]; };
layout(std430, binding = 3) buffer Loss { float loss[]; };
layout(push_constant) uniform P { uint rows; uint classes; float grad_scale; uint has_grad; } p;

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
    float r = red[0];
    barrier();
    return r;
}

bool valid(int y) {
    return y >= 0 && uint(y) < p.classes;
}

void main() {
    uint t = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    float cnt = 0.0;
    for (uint r = t; r < p.rows; r += L)
        cnt += valid(labels[r]) ? 1.0 : 0.0;
    cnt = reduce_sum(cnt);
    float inv = cnt > 0.0 ? 1.0 / cnt : 0.0;
    float g_inv = p.grad_scale * inv;
    bool has_grad = p.has_grad != 0u;

    float acc = 0.0;
    for (uint r = t; r < p.rows; r += L) {
        uint base = r * p.classes;
        int y = labels[r];
        if (!valid(y)) {
            if (has_grad)
                for (uint j = 0; j < p.classes; j++)
                    dlogits[base + j] = 0.0;
            continue;
        }
        float m = logits[base];
        for (uint j = 1; j < p.classes; j++)
            m = max(m, logits[base + j]);
        float z = 0.0;
        for (uint j = 0; j < p.classes; j++)
            z += exp(logits[base + j] - m);
        float lse = m + log(z);
        acc += lse - logits[base + uint(y)];
        if (has_grad)
            for (uint j = 0; j < p.classes; j++) {
                float pj = exp(logits[base + j] - lse);
                dlogits[base + j] = (pj - (j == uint(y) ? 1.0 : 0.0)) * g_inv;
            }
    }
    acc = reduce_sum(acc);
    if (t == 0u)
        loss[0] = acc * inv;
}
