#version 450
// Depthwise 2-D convolution (groups == Cin, Cout = Cin·multiplier): each
// invocation computes TP output pixels along a row for 4 channels (VEC, when
// the multiplier is 1 and C % 4 == 0) or one channel. The kernel geometry is
// specialised so the input window of a row lives in registers and is reused by
// neighbouring output pixels.
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#define T4 f16vec4
#else
#define T float
#define T4 vec4
#endif

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 3) const uint KH = 3;
layout(constant_id = 4) const uint KW = 3;
layout(constant_id = 5) const uint SH = 1;
layout(constant_id = 6) const uint SW = 1;
layout(constant_id = 7) const uint DH = 1;
layout(constant_id = 8) const uint DW = 1;
layout(constant_id = 9) const uint TP = 7;       // output pixels per invocation (along W)
layout(constant_id = 10) const bool VEC = true;
const uint WN = (TP - 1) * SW + (KW - 1) * DW + 1; // input columns one row of the tile reads

layout(std430, binding = 0) readonly buffer X { T x[]; };
layout(std430, binding = 0) readonly buffer X4 { T4 x4[]; };
layout(std430, binding = 1) readonly buffer Wt { T w[]; };
layout(std430, binding = 2) readonly buffer B { T bias[]; };
layout(std430, binding = 2) readonly buffer B4 { T4 bias4[]; };
layout(std430, binding = 3) readonly buffer R { T res[]; };
layout(std430, binding = 3) readonly buffer R4 { T4 res4[]; };
layout(std430, binding = 4) writeonly buffer Y { T y[]; };
layout(std430, binding = 4) writeonly buffer Y4 { T4 y4[]; };

layout(push_constant) uniform P {
    uint H, W, C;        // input
    uint Ho, Wo, Cout;
    uint mult;           // Cout / C
    int PT, PL;
    uint n0;             // first image of this dispatch
    uint act, has_bias, has_res; // epilogue: DcrAct (none/relu/relu6), bias and residual present
} p;

vec4 act(vec4 v) {
    if (p.act == 1u) return max(v, vec4(0.0));
    if (p.act == 2u) return clamp(v, vec4(0.0), vec4(6.0));
    return v;
}

void main() {
    uint ow0 = gl_GlobalInvocationID.y * TP;
    uint oh = gl_GlobalInvocationID.z % p.Ho;
    uint n = p.n0 + gl_GlobalInvocationID.z / p.Ho;
    if (ow0 >= p.Wo)
        return;
    int iwbase = int(ow0 * SW) - p.PL;

    if (VEC) {
        uint c4 = gl_GlobalInvocationID.x;
        uint c = c4 * 4;
        if (c >= p.Cout)
            return;
        vec4 acc[TP];
        for (uint i = 0; i < TP; i++)
            acc[i] = vec4(0.0);
        for (uint ky = 0; ky < KH; ky++) {
            int ih = int(oh * SH) - p.PT + int(ky * DH);
            if (ih < 0 || ih >= int(p.H))
                continue;
            uint rowbase = (n * p.H + uint(ih)) * p.W;
            vec4 win[WN];
            for (uint j = 0; j < WN; j++) {
                int iw = iwbase + int(j);
                win[j] = iw >= 0 && iw < int(p.W) ? vec4(x4[(rowbase + uint(iw)) * (p.C >> 2) + c4]) : vec4(0.0);
            }
            for (uint kx = 0; kx < KW; kx++) {
                uint k = ky * KW + kx;
                vec4 wv = vec4(float(w[c * KH * KW + k]), float(w[(c + 1) * KH * KW + k]),
                               float(w[(c + 2) * KH * KW + k]), float(w[(c + 3) * KH * KW + k]));
                for (uint i = 0; i < TP; i++)
                    acc[i] = fma(win[i * SW + kx * DW], wv, acc[i]);
            }
        }
        vec4 bv = p.has_bias != 0u ? vec4(bias4[c4]) : vec4(0.0);
        for (uint i = 0; i < TP; i++) {
            uint ow = ow0 + i;
            if (ow >= p.Wo)
                break;
            uint o4 = ((n * p.Ho + oh) * p.Wo + ow) * (p.Cout >> 2) + c4;
            vec4 v = acc[i] + bv;
            if (p.has_res != 0u)
                v += vec4(res4[o4]);
            y4[o4] = T4(act(v));
        }
    } else {
        uint c = gl_GlobalInvocationID.x;
        if (c >= p.Cout)
            return;
        uint ci = c / p.mult;
        float acc[TP];
        for (uint i = 0; i < TP; i++)
            acc[i] = 0.0;
        for (uint ky = 0; ky < KH; ky++) {
            int ih = int(oh * SH) - p.PT + int(ky * DH);
            if (ih < 0 || ih >= int(p.H))
                continue;
            uint rowbase = (n * p.H + uint(ih)) * p.W;
            float win[WN];
            for (uint j = 0; j < WN; j++) {
                int iw = iwbase + int(j);
                win[j] = iw >= 0 && iw < int(p.W) ? float(x[(rowbase + uint(iw)) * p.C + ci]) : 0.0;
            }
            for (uint kx = 0; kx < KW; kx++) {
                float wv = float(w[c * KH * KW + ky * KW + kx]);
                for (uint i = 0; i < TP; i++)
                    acc[i] = fma(win[i * SW + kx * DW], wv, acc[i]);
            }
        }
        float bv = p.has_bias != 0u ? float(bias[c]) : 0.0;
        for (uint i = 0; i < TP; i++) {
            uint ow = ow0 + i;
            if (ow >= p.Wo)
                break;
            uint o = ((n * p.Ho + oh) * p.Wo + ow) * p.Cout + c;
            float v = acc[i] + bv;
            if (p.has_res != 0u)
                v += float(res[o]);
            y[o] = T(act(vec4(v)).x);
        }
    }
}
