#version 450
// 2-D convolution as an implicit GEMM (rows = output pixels, columns = output
// channels, reduction = KH·KW·Cin/groups) with register tiles: each lane of a
// subgroup loads TM/SG input pixels and TN weight rows, and the pixels reach
// the other lanes through subgroupShuffle with a constant lane — no shared
// memory, no barriers. On lavapipe (one subgroup = one SIMD register) every
// per-lane load is a loop over the lanes while such a shuffle is one vector
// permute, so the tile is shaped to load little and shuffle freely.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
// f16 storage moves 2- and 4-vectors as packed 32-bit words: lavapipe pays per
// loaded or stored component, so a uvec2 costs half an f16vec4.
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#define T2 uint
#define T4 uvec2
#define LD2(a) unpackHalf2x16(a)
#define LD4(a) vec4(unpackHalf2x16((a).x), unpackHalf2x16((a).y))
#define ST2(v) packHalf2x16(v)
#define ST4(v) uvec2(packHalf2x16((v).xy), packHalf2x16((v).zw))
#else
#define T float
#define T2 vec2
#define T4 vec4
#define LD2(a) (a)
#define LD4(a) (a)
#define ST2(v) (v)
#define ST4(v) (v)
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint SG = 8;       // subgroup size the tile is laid out for
layout(constant_id = 4) const uint TM = 32;      // output pixels per subgroup, a multiple of SG
layout(constant_id = 5) const uint TN = 8;       // output channels per lane
layout(constant_id = 6) const bool VEC = true;   // Cin/groups % 4 == 0: vec4 loads along channels
layout(constant_id = 7) const uint VW = 4;       // epilogue vector width (4, 2, 1), dividing TN and Cout/groups
const uint RPL = TM / SG;                        // pixels each lane loads

layout(std430, binding = 0) readonly buffer X { T x[]; };
layout(std430, binding = 0) readonly buffer X4 { T4 x4[]; };
layout(std430, binding = 1) readonly buffer Wt { T w[]; };
layout(std430, binding = 1) readonly buffer Wt4 { T4 w4[]; };
layout(std430, binding = 2) readonly buffer B { T bias[]; };
layout(std430, binding = 2) readonly buffer B2 { T2 bias2[]; };
layout(std430, binding = 2) readonly buffer B4 { T4 bias4[]; };
layout(std430, binding = 3) readonly buffer R { T res[]; };
layout(std430, binding = 3) readonly buffer R2 { T2 res2[]; };
layout(std430, binding = 3) readonly buffer R4 { T4 res4[]; };
layout(std430, binding = 4) writeonly buffer Y { T y[]; };
layout(std430, binding = 4) writeonly buffer Y2 { T2 y2[]; };
layout(std430, binding = 4) writeonly buffer Y4 { T4 y4[]; };

layout(push_constant) uniform P {
    uint M;            // N·Ho·Wo
    uint H, W, Cin;
    uint Ho, Wo, Cout;
    uint KH, KW, SH, SW, DH, DW;
    int PT, PL;
    uint cin_g, cout_g;
    uint tiles_per_group; // column tiles of SG·TN channels in one group
    uint row_tiles;       // ceil(M / TM)
    uint act, has_bias, has_res; // epilogue: DcrAct (none/relu/relu6), bias and residual present
} p;

vec4 act(vec4 v) {
    if (p.act == 1u) return max(v, vec4(0.0));
    if (p.act == 2u) return clamp(v, vec4(0.0), vec4(6.0));
    return v;
}

void main() {
    uint lane = gl_SubgroupInvocationID;
    uint rt = (gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_NumSubgroups + gl_SubgroupID;
    if (rt >= p.row_tiles)
        return;
    uint g = gl_WorkGroupID.y / p.tiles_per_group;
    uint nl0 = (gl_WorkGroupID.y % p.tiles_per_group) * (SG * TN) + lane * TN;
    uint m0 = rt * TM;

    // the pixels this lane loads: top-left input corner of each window
    uint pix[RPL];
    int ih0[RPL], iw0[RPL];
    [[unroll]] for (uint i = 0; i < RPL; i++) {
        uint m = m0 + i * SG + lane;
        uint mm = min(m, p.M - 1);
        uint ow = mm % p.Wo, t = mm / p.Wo;
        uint oh = t % p.Ho, n = t / p.Ho;
        pix[i] = n * p.H * p.W;
        ih0[i] = m < p.M ? int(oh * p.SH) - p.PT : -0x40000000; // an invalid row never comes back in range
        iw0[i] = int(ow * p.SW) - p.PL;
    }
    // the weight rows this lane reads (clamped; channels past the group are not stored)
    uint ksize = p.KH * p.KW * p.cin_g;
    uint wrow[TN];
    [[unroll]] for (uint j = 0; j < TN; j++)
        wrow[j] = (g * p.cout_g + min(nl0 + j, p.cout_g - 1)) * ksize;
    uint cbase = g * p.cin_g;

    float acc[TM][TN];
    [[unroll]] for (uint r = 0; r < TM; r++)
        [[unroll]] for (uint j = 0; j < TN; j++)
            acc[r][j] = 0.0;

    for (uint ky = 0; ky < p.KH; ky++)
        for (uint kx = 0; kx < p.KW; kx++) {
            // Pixels outside the image read the group's first channels of pixel 0
            // and are zeroed by a select: a load under a condition would cost a
            // branch per lane on lavapipe.
            uint xoff[RPL];
            bool ok[RPL];
            [[unroll]] for (uint i = 0; i < RPL; i++) {
                int ih = ih0[i] + int(ky * p.DH), iw = iw0[i] + int(kx * p.DW);
                ok[i] = ih >= 0 && ih < int(p.H) && iw >= 0 && iw < int(p.W);
                xoff[i] = ok[i] ? (pix[i] + uint(ih) * p.W + uint(iw)) * p.Cin + cbase : cbase;
            }
            uint woff = (ky * p.KW + kx) * p.cin_g;
            if (VEC) {
                for (uint c = 0; c < p.cin_g; c += 4) {
                    vec4 a[RPL];
                    [[unroll]] for (uint i = 0; i < RPL; i++) {
                        vec4 v = LD4(x4[(xoff[i] + c) >> 2]);
                        a[i] = ok[i] ? v : vec4(0.0);
                    }
                    vec4 b[TN];
                    [[unroll]] for (uint j = 0; j < TN; j++)
                        b[j] = LD4(w4[(wrow[j] + woff + c) >> 2]);
                    [[unroll]] for (uint r = 0; r < TM; r++) {
                        vec4 av = subgroupShuffle(a[r / SG], r % SG);
                        [[unroll]] for (uint j = 0; j < TN; j++)
                            acc[r][j] += dot(av, b[j]);
                    }
                }
            } else {
                for (uint c = 0; c < p.cin_g; c++) {
                    float a[RPL];
                    [[unroll]] for (uint i = 0; i < RPL; i++) {
                        float v = float(x[xoff[i] + c]);
                        a[i] = ok[i] ? v : 0.0;
                    }
                    float b[TN];
                    [[unroll]] for (uint j = 0; j < TN; j++)
                        b[j] = float(w[wrow[j] + woff + c]);
                    [[unroll]] for (uint r = 0; r < TM; r++) {
                        float av = subgroupShuffle(a[r / SG], r % SG);
                        [[unroll]] for (uint j = 0; j < TN; j++)
                            acc[r][j] = fma(av, b[j], acc[r][j]);
                    }
                }
            }
        }

    // Epilogue in VW-wide pieces: stores, too, go lane by lane on a CPU device,
    // and one visit per lane moves VW channels.
    uint nb = g * p.cout_g + nl0;
    const uint NV = TN / VW;
    vec4 bv[NV];
    [[unroll]] for (uint q = 0; q < NV; q++) {
        uint n = nb + q * VW;
        bool use = p.has_bias != 0u && nl0 + q * VW < p.cout_g;
        if (VW == 4)
            bv[q] = use ? LD4(bias4[n >> 2]) : vec4(0.0);
        else if (VW == 2)
            bv[q] = use ? vec4(LD2(bias2[n >> 1]), 0.0, 0.0) : vec4(0.0);
        else
            bv[q] = use ? vec4(float(bias[n])) : vec4(0.0);
    }
    [[unroll]] for (uint r = 0; r < TM; r++) {
        uint m = m0 + r;
        if (m >= p.M)
            break;
        [[unroll]] for (uint q = 0; q < NV; q++) {
            if (nl0 + q * VW >= p.cout_g)
                break;
            uint o = m * p.Cout + nb + q * VW;
            vec4 v = bv[q];
            [[unroll]] for (uint k = 0; k < VW; k++)
                v[k] += acc[r][q * VW + k];
            if (VW == 4) {
                if (p.has_res != 0u)
                    v += LD4(res4[o >> 2]);
                y4[o >> 2] = ST4(act(v));
            } else if (VW == 2) {
                if (p.has_res != 0u)
                    v.xy += LD2(res2[o >> 1]);
                y2[o >> 1] = ST2(act(v).xy);
            } else {
                if (p.has_res != 0u)
                    v.x += float(res[o]);
                y[o] = T(act(v).x);
            }
        }
    }
}
