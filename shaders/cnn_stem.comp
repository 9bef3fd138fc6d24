#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
// The forensic CNN's stem (definition: engine/dcr-cnn.h): its fixed
// preprocessing fused with its first convolution (K × K, stride S, 3 → CO
// channels, bias, ReLU when act = 1), so q never goes through memory. Reads
// the window (top, left, h, w) of n 8-bit RGB images of H × W pixels stored
// back to back (bytes, read as words); writes the layer's output NHWC f32
// [n, oh, ow, CO].
//
// Invocation x computes output column x of a run of `rows` output rows of one
// image (workgroup x: the column tile; y: the images' row runs one after
// another, strided when there are more than the dispatch holds), walking
// down: each output row needs S new q rows (all K at the run's start, or
// when S ≥ K), each q row one new pixel row of K + 4 pixels, whose 5-wide
// horizontal sums go through a 5-row window in registers, as in
// shaders/cnn_prep.comp. No shared memory and no barriers: on lavapipe each
// buffer or shared-memory access with a per-invocation address costs about
// a scalar load per lane, so everything else lives in registers and the
// weights are read at constant (uniform) offsets. The sums are exact
// integers and q = (25·centre − Σ) / 800 is rounded once, the same value as
// cnn_prep's.
layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint K = 3;   // kernel side (1 … 7)
layout(constant_id = 4) const uint S = 2;   // stride (1 … 4)
layout(constant_id = 5) const uint CO = 8;  // output channels (1 … 16)
layout(constant_id = 6) const uint SG = 0;  // the subgroup size when it has shuffles, else 0

const uint NP = K + 4u;              // pixels of a row one output column reads
const uint NA = (3u * NP + 3u) / 4u; // aligned words holding their bytes

layout(std430, binding = 0) readonly buffer Img { uint img[]; };
layout(std430, binding = 1) readonly buffer Wt { float wt[]; };   // [CO, K, K, 3]
layout(std430, binding = 2) readonly buffer B { float bias[]; };  // [CO]
layout(std430, binding = 3) writeonly buffer Y { float y[]; };    // [n, oh, ow, CO]
layout(std430, binding = 3) writeonly buffer Y4 { vec4 y4[]; };  // the same, CO % 4 = 0

layout(push_constant) uniform P {
    uint H, W;        // image size
    uint top, left;   // window origin
    uint oh, ow;      // output rows and columns
    uint runs;        // n · row runs per image
    uint rows;        // output rows a run
    uint last_word;   // index of the images' last word
    uint act;         // 1: ReLU
} p;

ivec3 hs[5][K];   // horizontal 5-sums of the last five pixel rows
ivec3 ctr[3][K];  // the centre pixels of the last three pixel rows
vec3 qw[K][K];    // the q rows of the current output row

// Loads pixel row r (window-relative) of image im from column c0: its
// horizontal sums and centre pixels become the newest in the windows.
void load_row(uint im, uint r, uint c0) {
    uint o = im * p.H * p.W * 3u + ((p.top + r) * p.W + p.left + c0) * 3u;
    uint i = o >> 2, sh = (o & 3u) * 8u;
    uint a[NA];
    uint prev = img[i];
    [[unroll]] for (uint t = 0; t < NA; t++) {
        uint next = img[min(i + t + 1u, p.last_word)];
        a[t] = sh == 0u ? prev : (prev >> sh) | (next << (32u - sh));
        prev = next;
    }
    ivec3 px[NP];
    [[unroll]] for (uint c = 0; c < NP; c++) {
        uint b = 3u * c;
        px[c] = ivec3((a[b >> 2] >> ((b & 3u) * 8u)) & 0xffu, (a[(b + 1u) >> 2] >> (((b + 1u) & 3u) * 8u)) & 0xffu,
                      (a[(b + 2u) >> 2] >> (((b + 2u) & 3u) * 8u)) & 0xffu);
    }
    [[unroll]] for (uint j = 0; j < K; j++) {
        [[unroll]] for (uint s = 0; s < 4u; s++)
            hs[s][j] = hs[s + 1u][j];
        ctr[0][j] = ctr[1][j];
        ctr[1][j] = ctr[2][j];
        hs[4][j] = px[j] + px[j + 1u] + px[j + 2u] + px[j + 3u] + px[j + 4u];
        ctr[2][j] = px[j + 2u];
    }
}

// The q row of the five pixel rows in the window into qw[row].
void q_row(uint row) {
    [[unroll]] for (uint j = 0; j < K; j++) {
        ivec3 s = hs[0][j] + hs[1][j] + hs[2][j] + hs[3][j] + hs[4][j];
        qw[row][j] = vec3(25 * ctr[0][j] - s) / 800.0;
    }
}

void main() {
    // the invocations past the last column work on it too, without
    // writing: every lane must take part in the weights' shuffles
    bool live = gl_GlobalInvocationID.x < p.ow;
    uint ox = min(gl_GlobalInvocationID.x, p.ow - 1u);
    // the weights, once per invocation (read at uniform offsets, but on
    // lavapipe a buffer load costs the same per lane whatever its offset)
    const uint NW = CO * K * K * 3u;
    float wr[NW];
    if (SG == 0u || gl_SubgroupSize != SG) {
        [[unroll]] for (uint i = 0; i < NW; i++)
            wr[i] = wt[i];
    } else {
        // one load a lane for SG weights, shared by shuffles
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
        br[co] = bias[co];
    uint rpi = (p.oh + p.rows - 1u) / p.rows, c0 = ox * S;
    for (uint run = gl_WorkGroupID.y; run < p.runs; run += gl_NumWorkGroups.y) {
        uint im = run / rpi, oy0 = (run % rpi) * p.rows, oy1 = min(oy0 + p.rows, p.oh);
        if (S < K) {
            // the q rows the first output row shares with the one above it
            [[unroll]] for (uint a = 0; a < 4u; a++)
                load_row(im, oy0 * S + a, c0);
            [[unroll]] for (uint k = 0; k + S < K; k++) {
                load_row(im, oy0 * S + 4u + k, c0);
                q_row(k + S);
            }
        }
        for (uint oy = oy0; oy < oy1; oy++) {
            uint r0 = oy * S; // the output row's first q row = its first pixel row
            if (S >= K) {
                [[unroll]] for (uint a = 0; a < 4u; a++)
                    load_row(im, r0 + a, c0);
                [[unroll]] for (uint k = 0; k < K; k++) {
                    load_row(im, r0 + 4u + k, c0);
                    q_row(k);
                }
            } else {
                [[unroll]] for (uint k = 0; k + S < K; k++)
                    [[unroll]] for (uint j = 0; j < K; j++)
                        qw[k][j] = qw[k + S][j];
                [[unroll]] for (uint k = K - S; k < K; k++) {
                    load_row(im, r0 + 4u + k, c0);
                    q_row(k);
                }
            }
            uint out_i = ((im * p.oh + oy) * p.ow + ox) * CO;
            float o[CO];
            [[unroll]] for (uint co = 0; co < CO; co++) {
                float acc = br[co];
                [[unroll]] for (uint ky = 0; ky < K; ky++)
                    [[unroll]] for (uint kx = 0; kx < K; kx++) {
                        uint wi = ((co * K + ky) * K + kx) * 3u;
                        vec3 q = qw[ky][kx];
                        acc = fma(wr[wi], q.x, acc);
                        acc = fma(wr[wi + 1u], q.y, acc);
                        acc = fma(wr[wi + 2u], q.z, acc);
                    }
                o[co] = p.act == 1u ? max(acc, 0.0) : acc;
            }
            if (!live) {
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
