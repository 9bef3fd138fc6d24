#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
// A dense convolution of few input channels (CI ≤ 4) into at most 32, f32
// NHWC: x [n, H, W, CI], weights [CO, K, K, CI], optional bias, zero padding
// (PT, PL before; whatever is past the input after), stride S, dilation 1,
// activation none / ReLU / ReLU6 → y [n, Ho, Wo, CO]. Made for MobileNetV2's
// first layer (3 × 3 / 2, 3 → 32), where the implicit GEMM wastes most of
// its tile on K = 27.
//
// The plan of shaders/cnn_conv.comp: invocation x computes output column x
// of a run of `rows` output rows of one image, walking down; each output
// row reads only its S new input rows (all K at the run's start, or when
// S ≥ K) into a K × K window of registers, and the weights sit in
// registers, copied once per invocation (one load a lane, shared by
// shuffles): on lavapipe every buffer access with a per-invocation address
// costs about a scalar load per lane, so the inner loop is only FMAs.
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint K = 3;   // kernel side
layout(constant_id = 4) const uint S = 2;   // stride
layout(constant_id = 5) const uint CI = 3;  // input channels (1 … 4)
layout(constant_id = 6) const uint CO = 32; // output channels (1 … 32)
layout(constant_id = 7) const uint SG = 0;  // the subgroup size when it has shuffles, else 0

layout(std430, binding = 0) readonly buffer X { float x[]; };     // [n, H, W, CI]
layout(std430, binding = 1) readonly buffer Wt { float wt[]; };   // [CO, K, K, CI]
layout(std430, binding = 2) readonly buffer B { float bias[]; };  // [CO] (has_bias)
layout(std430, binding = 3) writeonly buffer Y { float y[]; };    // [n, Ho, Wo, CO]
layout(std430, binding = 3) writeonly buffer Y4 { vec4 y4[]; };   // the same, CO % 4 = 0

layout(push_constant) uniform P {
    uint H, W;        // input rows and columns
    uint Ho, Wo;      // output rows and columns
    int PT, PL;       // padding before (top, left)
    uint runs;        // n · row runs per image
    uint rows;        // output rows a run
    uint act;         // 0 none, 1 ReLU, 2 ReLU6
    uint has_bias;
} p;

float xw[K][K][CI];  // the input window of the current output row

// Input row r (may lie in the padding) of image im, columns c0 … c0 + K − 1,
// into window row k.
void load_row(uint im, int r, int c0, uint k) {
    bool row_in = r >= 0 && r < int(p.H);
    uint o = (im * p.H + uint(max(r, 0))) * p.W;
    [[unroll]] for (uint kx = 0; kx < K; kx++) {
        int c = c0 + int(kx);
        bool in_ = row_in && c >= 0 && c < int(p.W);
        uint base = (o + uint(clamp(c, 0, int(p.W) - 1))) * CI;
        [[unroll]] for (uint ci = 0; ci < CI; ci++)
            xw[k][kx][ci] = in_ ? x[base + ci] : 0.0;
    }
}

void main() {
    // the invocations past the last column work on it too, without
    // writing: every lane must take part in the weights' shuffles
    bool live = gl_GlobalInvocationID.x < p.Wo;
    uint ox = min(gl_GlobalInvocationID.x, p.Wo - 1u);
    const uint NW = CO * K * K * CI;
    float wr[NW];
    if (SG == 0u || gl_SubgroupSize != SG) {
        [[unroll]] for (uint i = 0; i < NW; i++)
            wr[i] = wt[i];
    } else {
        uint lane = gl_SubgroupInvocationID;
        [[unroll]] for (uint i = 0; i < NW; i += SG) {
            float v = wt[min(i + lane, NW - 1u)];
            [[unroll]] for (uint j = 0; j < SG; j++)
                if (i + j < NW)
                    wr[i + j] = subgroupShuffle(v, j);
        }
    }
    float br[CO];
    [[unroll]] for (uint co = 0; co < CO; co++)
        br[co] = p.has_bias != 0u ? bias[co] : 0.0;
    uint rpi = (p.Ho + p.rows - 1u) / p.rows;
    int c0 = int(ox * S) - p.PL;
    for (uint run = gl_WorkGroupID.y; run < p.runs; run += gl_NumWorkGroups.y) {
        uint im = run / rpi, oy0 = (run % rpi) * p.rows, oy1 = min(oy0 + p.rows, p.Ho);
        if (S < K) {
            // the input rows the first output row shares with the one above it
            [[unroll]] for (uint k = 0; k + S < K; k++)
                load_row(im, int(oy0 * S + k) - p.PT, c0, k + S);
        }
        for (uint oy = oy0; oy < oy1; oy++) {
            int r0 = int(oy * S) - p.PT;
            if (S >= K) {
                [[unroll]] for (uint k = 0; k < K; k++)
                    load_row(im, r0 + int(k), c0, k);
            } else {
                [[unroll]] for (uint k = 0; k + S < K; k++)
                    [[unroll]] for (uint kx = 0; kx < K; kx++)
                        [[unroll]] for (uint ci = 0; ci < CI; ci++)
                            xw[k][kx][ci] = xw[k + S][kx][ci];
                [[unroll]] for (uint k = K - S; k < K; k++)
                    load_row(im, r0 + int(k), c0, k);
            }
            float o[CO];
            [[unroll]] for (uint co = 0; co < CO; co++) {
                float acc = br[co];
                [[unroll]] for (uint ky = 0; ky < K; ky++)
                    [[unroll]] for (uint kx = 0; kx < K; kx++)
                        [[unroll]] for (uint ci = 0; ci < CI; ci++)
                            acc = fma(wr[((co * K + ky) * K + kx) * CI + ci], xw[ky][kx][ci], acc);
                o[co] = p.act == 1u ? max(acc, 0.0) : p.act == 2u ? clamp(acc, 0.0, 6.0) : acc;
            }
            if (live) {
                uint out_i = ((im * p.Ho + oy) * p.Wo + ox) * CO;
                if (CO % 4u == 0u) {
                    [[unroll]] for (uint co = 0; co < CO; co += 4u)
                        y4[(out_i + co) >> 2] = vec4(o[co], o[co + 1u], o[co + 2u], o[co + 3u]);
                } else {
                    [[unroll]] for (uint co = 0; co < CO; co++)
                        y[out_i + co] = o[co];
                }
            }
        }
    }
}
