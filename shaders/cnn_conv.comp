#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
// One of the forensic CNN's thin layers after the first (definition:
// engine/dcr-cnn.h): a K × K convolution, stride S, no padding, CI → CO
// channels (CI a multiple of 4, at most 16; CO at most 16), bias, ReLU when
// act = 1, NHWC f32 [n, ih, iw, CI] → [n, oh, ow, CO]; with NEXT, followed
// in registers by the next layer when that is a 1 × 1 CO → 1 convolution
// (stride 1; bias; ReLU when next_act = 1), written instead: [n, oh, ow, 1].
//
// The same plan as shaders/cnn_stem.comp: invocation x computes output
// column x of a run of `rows` output rows of one image, walking down, each
// output row reading only its S new input rows (all K at the run's start,
// or when S ≥ K) into a K × K window of registers; the weights are copied
// once per invocation into registers (on lavapipe every buffer access with
// a per-invocation address costs about a scalar load per lane, and an
// implicit GEMM with shared memory several), so the inner loop is FMAs.
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint K = 3;    // kernel side
layout(constant_id = 4) const uint S = 1;    // stride
layout(constant_id = 5) const uint CI4 = 4;  // input channels / 4
layout(constant_id = 6) const uint CO = 16;  // output channels
layout(constant_id = 7) const uint SG = 0;   // the subgroup size when it has shuffles, else 0
layout(constant_id = 8) const bool NEXT = false; // fused: the next layer, 1 × 1 CO → 1, follows

layout(std430, binding = 0) readonly buffer X { vec4 x4[]; };     // [n, ih, iw, CI]
layout(std430, binding = 1) readonly buffer Wt { vec4 w4[]; };    // [CO, K, K, CI]
layout(std430, binding = 2) readonly buffer B { float bias[]; };  // [CO]
layout(std430, binding = 3) writeonly buffer Y { float y[]; };    // [n, oh, ow, CO]
layout(std430, binding = 3) writeonly buffer Y4 { vec4 y4[]; };   // the same, CO % 4 = 0
layout(std430, binding = 4) readonly buffer NW { float nw[]; };   // NEXT: its weights [1, 1, 1, CO]
layout(std430, binding = 5) readonly buffer NB { float nb[]; };   // NEXT: its bias [1]

layout(push_constant) uniform P {
    uint ih, iw;  // input rows and columns
    uint oh, ow;  // output rows and columns
    uint runs;    // n · row runs per image
    uint rows;    // output rows a run
    uint act;     // 1: ReLU
    uint next_act; // NEXT: 1: ReLU after the next layer
} p;

vec4 xw[K][K][CI4];  // the input window of the current output row

// Input row r of image im from column c0 into window row k.
void load_row(uint im, uint r, uint c0, uint k) {
    uint o = ((im * p.ih + r) * p.iw + c0) * CI4;
    [[unroll]] for (uint kx = 0; kx < K; kx++)
        [[unroll]] for (uint c = 0; c < CI4; c++)
            xw[k][kx][c] = x4[o + kx * CI4 + c];
}

void main() {
    // the invocations past the last column work on it too, without
    // writing: every lane must take part in the weights' shuffles
    bool live = gl_GlobalInvocationID.x < p.ow;
    uint ox = min(gl_GlobalInvocationID.x, p.ow - 1u);
    const uint NW = CO * K * K * CI4;
    vec4 wr[NW];
    if (SG == 0u || gl_SubgroupSize != SG) {
        [[unroll]] for (uint i = 0; i < NW; i++)
            wr[i] = w4[i];
    } else {
        // one load a lane for SG weight vectors, shared by shuffles
        uint lane = gl_SubgroupInvocationID;
        [[unroll]] for (uint i = 0; i < NW; i += SG) {
            vec4 v = w4[min(i + lane, NW - 1u)];
            [[unroll]] for (uint j = 0; j < SG; j++)
                if (i + j < NW)
                    wr[i + j] = subgroupShuffle(v, j);
        }
    }
    float br[CO], nwr[CO];
    [[unroll]] for (uint co = 0; co < CO; co++) {
        br[co] = bias[co];
        if (NEXT)
            nwr[co] = nw[co];
    }
    float nbr = NEXT ? nb[0] : 0.0;
    uint rpi = (p.oh + p.rows - 1u) / p.rows, c0 = ox * S;
    for (uint run = gl_WorkGroupID.y; run < p.runs; run += gl_NumWorkGroups.y) {
        uint im = run / rpi, oy0 = (run % rpi) * p.rows, oy1 = min(oy0 + p.rows, p.oh);
        if (S < K) {
            // the input rows the first output row shares with the one above it
            [[unroll]] for (uint k = 0; k + S < K; k++)
                load_row(im, oy0 * S + k, c0, k + S);
        }
        for (uint oy = oy0; oy < oy1; oy++) {
            uint r0 = oy * S;
            if (S >= K) {
                [[unroll]] for (uint k = 0; k < K; k++)
                    load_row(im, r0 + k, c0, k);
            } else {
                [[unroll]] for (uint k = 0; k + S < K; k++)
                    [[unroll]] for (uint kx = 0; kx < K; kx++)
                        [[unroll]] for (uint c = 0; c < CI4; c++)
                            xw[k][kx][c] = xw[k + S][kx][c];
                [[unroll]] for (uint k = K - S; k < K; k++)
                    load_row(im, r0 + k, c0, k);
            }
            float o[CO];
            [[unroll]] for (uint co = 0; co < CO; co++) {
                vec4 acc = vec4(0.0);
                [[unroll]] for (uint ky = 0; ky < K; ky++)
                    [[unroll]] for (uint kx = 0; kx < K; kx++)
                        [[unroll]] for (uint c = 0; c < CI4; c++)
                            acc = fma(wr[((co * K + ky) * K + kx) * CI4 + c], xw[ky][kx][c], acc);
                float v = br[co] + ((acc.x + acc.y) + (acc.z + acc.w));
                o[co] = p.act == 1u ? max(v, 0.0) : v;
            }
            uint out_i = ((im * p.oh + oy) * p.ow + ox) * CO;
            if (!live) {
            } else if (NEXT) {
                // the next layer's one output channel instead of these CO
                float v = nbr;
                [[unroll]] for (uint co = 0; co < CO; co++)
                    v = fma(nwr[co], o[co], v);
                y[out_i / CO] = p.next_act == 1u ? max(v, 0.0) : v;
            } else if (CO % 4u == 0u) {
                [[unroll]] for (uint co = 0; co < CO; co += 4u)
                    y4[(out_i + co) >> 2] = vec4(o[co], o[co + 1u], o[co + 2u], o[co + 3u]);
            } else {
                [[unroll]] for (uint co = 0; co < CO; co++)
                    y[out_i + co] = o[co];
            }
        }
    }
}
