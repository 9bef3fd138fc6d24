#version 450
// 2-D convolution, direct: each invocation computes TP output pixels along a
// row for TC output channels of one group. The fallback for any stride,
// padding, dilation and grouping, and for devices without subgroup broadcast.
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#define T4 f16vec4
#else
#define T float
#define T4 vec4
#endif

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 3) const uint TP = 4;       // output pixels per invocation (along W)
layout(constant_id = 4) const uint TC = 4;       // output channels per invocation (1 or 4, within a group)
layout(constant_id = 5) const bool VEC = true;   // Cin/groups % 4 == 0

layout(std430, binding = 0) readonly buffer X { T x[]; };
layout(std430, binding = 0) readonly buffer X4 { T4 x4[]; };
layout(std430, binding = 1) readonly buffer Wt { T w[]; };
layout(std430, binding = 1) readonly buffer Wt4 { T4 w4[]; };
layout(std430, binding = 2) readonly buffer B { T bias[]; };
layout(std430, binding = 3) readonly buffer R { T res[]; };
layout(std430, binding = 4) writeonly buffer Y { T y[]; };

layout(push_constant) uniform P {
    uint H, W, Cin;
    uint Ho, Wo, Cout;
    uint KH, KW, SH, SW, DH, DW;
    int PT, PL;
    uint cin_g, cout_g;
    uint n0;           // first image of this dispatch
    uint act, has_bias, has_res; // epilogue: DcrAct (none/relu/relu6), bias and residual present
} p;

float act(float v) {
    if (p.act == 1u) return max(v, 0.0);
    if (p.act == 2u) return clamp(v, 0.0, 6.0);
    return v;
}

void main() {
    uint co0 = gl_GlobalInvocationID.x * TC;
    uint ow0 = gl_GlobalInvocationID.y * TP;
    if (co0 >= p.Cout || ow0 >= p.Wo)
        return;
    uint oh = gl_GlobalInvocationID.z % p.Ho;
    uint n = p.n0 + gl_GlobalInvocationID.z / p.Ho;
    uint cbase = (co0 / p.cout_g) * p.cin_g;
    uint ksize = p.KH * p.KW * p.cin_g;

    float acc[TP][TC];
    for (uint i = 0; i < TP; i++)
        for (uint q = 0; q < TC; q++)
            acc[i][q] = 0.0;

    for (uint ky = 0; ky < p.KH; ky++) {
        int ih = int(oh * p.SH) - p.PT + int(ky * p.DH);
        if (ih < 0 || ih >= int(p.H))
            continue;
        uint rowbase = (n * p.H + uint(ih)) * p.W;
        for (uint kx = 0; kx < p.KW; kx++) {
            int xoff[TP];
            for (uint i = 0; i < TP; i++) {
                int iw = int((ow0 + i) * p.SW) - p.PL + int(kx * p.DW);
                xoff[i] = iw >= 0 && iw < int(p.W) ? int((rowbase + uint(iw)) * p.Cin + cbase) : -1;
            }
            uint woff = (ky * p.KW + kx) * p.cin_g;
            if (VEC) {
                for (uint c = 0; c < p.cin_g; c += 4) {
                    vec4 b[TC];
                    for (uint q = 0; q < TC; q++)
                        b[q] = vec4(w4[((co0 + q) * ksize + woff + c) >> 2]);
                    for (uint i = 0; i < TP; i++) {
                        vec4 a = xoff[i] >= 0 ? vec4(x4[(uint(xoff[i]) + c) >> 2]) : vec4(0.0);
                        for (uint q = 0; q < TC; q++)
                            acc[i][q] += dot(a, b[q]);
                    }
                }
            } else {
                for (uint c = 0; c < p.cin_g; c++) {
                    float b[TC];
                    for (uint q = 0; q < TC; q++)
                        b[q] = float(w[(co0 + q) * ksize + woff + c]);
                    for (uint i = 0; i < TP; i++) {
                        float a = xoff[i] >= 0 ? float(x[uint(xoff[i]) + c]) : 0.0;
                        for (uint q = 0; q < TC; q++)
                            acc[i][q] = fma(a, b[q], acc[i][q]);
                    }
                }
            }
        }
    }

    for (uint i = 0; i < TP; i++) {
        uint ow = ow0 + i;
        if (ow >= p.Wo)
            break;
        uint o = ((n * p.Ho + oh) * p.Wo + ow) * p.Cout + co0;
        for (uint q = 0; q < TC; q++) {
            float v = acc[i][q];
            if (p.has_bias != 0u)
                v += float(bias[co0 + q]);
            if (p.has_res != 0u)
                v += float(res[o + q]);
            y[o + q] = T(act(v));
        }
    }
}
