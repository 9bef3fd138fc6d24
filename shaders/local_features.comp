#version 450
// The local forensic feature from the tiles' values t0…t22 that
// local_stats.comp leaves after each tile's accumulators (definition:
// engine/dcr-op-local.h): per channel and value, its mean, maximum, minimum
// and population standard deviation over the tiles. One invocation per
// (channel, value), one pass over the tiles (Welford's update); workgroup z
// is image z of a batch (accumulators in_stride apart, rows out_stride).
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#else
#define T float
#endif

layout(local_size_x = 96) in;

layout(std430, binding = 0) readonly buffer Acc { float acc[]; };
layout(std430, binding = 1) writeonly buffer Y { T y[]; };

layout(push_constant) uniform P {
    uint in0;     // first accumulator of the image in the bound range
    uint out0;    // first output element (the feature row's local column)
    uint ntiles;
    uint in_stride, out_stride;
} p;

const uint NACC = 153, NVAL = 23, STRIDE = NACC + NVAL, PER_CHANNEL = 4 * NVAL;

void main() {
    uint c = gl_LocalInvocationID.x / 32, v = gl_LocalInvocationID.x % 32;
    if (v >= NVAL)
        return;
    float mean = 0.0, m2 = 0.0, mx = -3.402823466e38, mn = 3.402823466e38;
    for (uint t = 0; t < p.ntiles; t++) {
        float x = acc[p.in0 + gl_WorkGroupID.z * p.in_stride + (t * 3 + c) * STRIDE + NACC + v];
        float d = x - mean;
        mean += d / float(t + 1);
        m2 += d * (x - mean);
        mx = max(mx, x);
        mn = min(mn, x);
    }
    uint o = p.out0 + gl_WorkGroupID.z * p.out_stride + c * PER_CHANNEL + v;
    y[o] = T(mean);
    y[o + NVAL] = T(mx);
    y[o + 2 * NVAL] = T(mn);
    y[o + 3 * NVAL] = T(sqrt(max(m2, 0.0) / float(p.ntiles)));
}
