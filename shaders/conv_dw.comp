#version 450
// Depthwise 2-D convolution (groups == Cin, Cout = Cin·multiplier): each
// invocation computes a TH × TP block of output pixels for 4 channels (VEC,
// when the multiplier is 1 and C % 4 == 0) or one channel. The kernel geometry
// is specialised and the loops unrolled, so every input row of the block is
// loaded once into registers and reused by all output pixels that need it —
// loads are what a depthwise convolution spends its time on.
#extension GL_EXT_control_flow_attributes : require
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
layout(constant_id = 9) const uint TP = 7;       // output pixels per invocation along W
layout(constant_id = 10) const bool VEC = true;
layout(constant_id = 11) const uint TH = 4;      // output rows per invocation
const uint WN = (TP - 1) * SW + (KW - 1) * DW + 1; // input columns the block reads
const uint HN = (TH - 1) * SH + (KH - 1) * DH + 1; // input rows the block reads

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
    uint row_blocks;     // ceil(Ho / TH)
    uint act, has_bias, has_res; // epilogue: DcrAct (none/relu/relu6), bias and residual present
} p;

vec4 act(vec4 v) {
    if (p.act == 1u) return max(v, vec4(0.0));
    if (p.act == 2u) return clamp(v, vec4(0.0), vec4(6.0));
    return v;
}

void main() {
    uint ow0 = gl_GlobalInvocationID.y * TP;
    uint oh0 = (gl_GlobalInvocationID.z % p.row_blocks) * TH;
    uint n = p.n0 + gl_GlobalInvocationID.z / p.row_blocks;
    uint c = gl_GlobalInvocationID.x * (VEC ? 4 : 1);
    if (ow0 >= p.Wo || c >= p.Cout)
        return;
    uint ci = VEC ? c : c / p.mult;          // input channel
    uint cstride = VEC ? p.C >> 2 : p.C;     // pixel stride in loaded units
    uint cidx = VEC ? c >> 2 : ci;
    int ih0 = int(oh0 * SH) - p.PT, iw0 = int(ow0 * SW) - p.PL;

    // the taps, one vec4 per tap (4 channels, or the one channel splatted)
    vec4 wt[KH * KW];
    [[unroll]] for (uint k = 0; k < KH * KW; k++) {
        if (VEC)
            wt[k] = vec4(float(w[c * KH * KW + k]), float(w[(c + 1) * KH * KW + k]),
                         float(w[(c + 2) * KH * KW + k]), float(w[(c + 3) * KH * KW + k]));
        else
            wt[k] = vec4(float(w[c * KH * KW + k]));
    }
    // input columns of the block: outside the image they read column 0 and are zeroed
    uint col[WN];
    bool colok[WN];
    [[unroll]] for (uint j = 0; j < WN; j++) {
        int iw = iw0 + int(j);
        colok[j] = iw >= 0 && iw < int(p.W);
        col[j] = colok[j] ? uint(iw) : 0u;
    }

    vec4 acc[TH][TP];
    [[unroll]] for (uint t = 0; t < TH; t++)
        [[unroll]] for (uint i = 0; i < TP; i++)
            acc[t][i] = vec4(0.0);

    [[unroll]] for (uint dy = 0; dy < HN; dy++) {
        int ih = ih0 + int(dy);
        bool rowok = ih >= 0 && ih < int(p.H);
        uint rowbase = (n * p.H + uint(rowok ? ih : 0)) * p.W;
        vec4 win[WN];
        [[unroll]] for (uint j = 0; j < WN; j++) {
            uint idx = (rowbase + col[j]) * cstride + cidx;
            vec4 v = VEC ? vec4(x4[idx]) : vec4(float(x[idx]));
            win[j] = rowok && colok[j] ? v : vec4(0.0);
        }
        // every output row t whose kernel row ky = (dy − t·SH)/DH is a tap
        [[unroll]] for (uint t = 0; t < TH; t++) {
            int kyd = int(dy) - int(t * SH);
            if (kyd < 0 || kyd % int(DH) != 0 || kyd / int(DH) >= int(KH))
                continue;
            uint ky = uint(kyd) / DH;
            [[unroll]] for (uint kx = 0; kx < KW; kx++)
                [[unroll]] for (uint i = 0; i < TP; i++)
                    acc[t][i] = fma(win[i * SW + kx * DW], wt[ky * KW + kx], acc[t][i]);
        }
    }

    vec4 bv = vec4(0.0);
    if (p.has_bias != 0u)
        bv = VEC ? vec4(bias4[c >> 2]) : vec4(float(bias[c]));
    [[unroll]] for (uint t = 0; t < TH; t++) {
        uint oh = oh0 + t;
        if (oh >= p.Ho)
            break;
        [[unroll]] for (uint i = 0; i < TP; i++) {
            uint ow = ow0 + i;
            if (ow >= p.Wo)
                break;
            uint o = ((n * p.Ho + oh) * p.Wo + ow) * p.Cout + c;
            vec4 v = acc[t][i] + bv;
            if (VEC) {
                if (p.has_res != 0u)
                    v += vec4(res4[o >> 2]);
                y4[o >> 2] = T4(act(v));
            } else {
                if (p.has_res != 0u)
                    v.x += float(res[o]);
                y[o] = T(act(v).x);
            }
        }
    }
}
