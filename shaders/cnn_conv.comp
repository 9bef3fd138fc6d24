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
// The output channels go in groups of 4 (CO a multiple of 4, else all at
// once), one group after another over the run, so only one group's weights
// live in registers: with all 2,304 of a 3 × 3 16 → 16 layer's, lavapipe's
// LLVM took 40–70 s to compile the pipeline on a fresh install's first
// scan; in groups ~3 s. Reading the input rows again for each group costs
// ~0.5 ms per 256² image more there (1.4 against 0.9). With NEXT, each
// group adds its share of the 1 × 1 layer's sum to the output (the same
// sums in the same order), and the last applies next_act.
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
layout(std430, binding = 3) buffer Y { float y[]; };              // [n, oh, ow, CO] (NEXT: read back)
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

const uint CG = CO % 4u == 0u ? 4u : CO;  // output channels a group
const uint NG = CO / CG;                   // groups

void main() {
    // the invocations past the last column work on it too, without
    // writing: every lane must take part in the weights' shuffles
    bool live = gl_GlobalInvocationID.x < p.ow;
    uint ox = min(gl_GlobalInvocationID.x, p.ow - 1u);
    const uint NW = CG * K * K * CI4;  // one group's weight vectors
    float nbr = NEXT ? nb[0] : 0.0;
    uint rpi = (p.oh + p.rows - 1u) / p.rows, c0 = ox * S;
    for (uint run = gl_WorkGroupID.y; run < p.runs; run += gl_NumWorkGroups.y) {
        uint im = run / rpi, oy0 = (run % rpi) * p.rows, oy1 = min(oy0 + p.rows, p.oh);
        [[dont_unroll]] for (uint g = 0; g < NG; g++) {
            vec4 wr[NW];
            uint w0 = g * NW;
            if (SG == 0u || gl_SubgroupSize != SG) {
                [[unroll]] for (uint i = 0; i < NW; i++)
                    wr[i] = w4[w0 + i];
            } else {
                // one load a lane for SG weight vectors, shared by shuffles
                uint lane = gl_SubgroupInvocationID;
                [[unroll]] for (uint i = 0; i < NW; i += SG) {
                    vec4 v = w4[w0 + min(i + lane, NW - 1u)];
                    [[unroll]] for (uint j = 0; j < SG; j++)
                        if (i + j < NW)
                            wr[i + j] = subgroupShuffle(v, j);
                }
            }
            float br[CG], nwr[CG];
            [[unroll]] for (uint c = 0; c < CG; c++) {
                br[c] = bias[g * CG + c];
                if (NEXT)
                    nwr[c] = nw[g * CG + c];
            }
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
                float o[CG];
                [[unroll]] for (uint co = 0; co < CG; co++) {
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
                    // this group's share of the next layer's one output channel
                    uint i = out_i / CO;
                    float v = g == 0u ? nbr : y[i];
                    [[unroll]] for (uint co = 0; co < CG; co++)
                        v = fma(nwr[co], o[co], v);
                    y[i] = g + 1u == NG && p.next_act == 1u ? max(v, 0.0) : v;
                } else if (CG % 4u == 0u) {
                    [[unroll]] for (uint co = 0; co < CG; co += 4u)
                        y4[(out_i + g * CG + co) >> 2] = vec4(o[co], o[co + 1u], o[co + 2u], o[co + 3u]);
                } else {
                    [[unroll]] for (uint co = 0; co < CG; co++)
                        y[out_i + co] = o[co];
                }
            }
        }
    }
}
