#version 450
// A whole MobileNetV2 inverted-residual block in one dispatch:
//   y = project(relu6(depthwise3x3(relu6(expand1x1(x))))) + bias (+ x)
// Each lane owns a TH × TP tile of output pixels and walks the expanded
// channels one at a time (a loop, not unrolled): it computes that channel's
// expansion on the input halo of its tile (kept in registers), the depthwise
// 3×3 on it and adds its share to the Cout projection accumulators. The
// expanded and depthwise tensors — six times wider than the block's input and
// output — never reach memory.
//
// Why this shape (lavapipe): every per-lane buffer access is a loop over the
// subgroup's lanes (~13 instructions per 32-bit component) while arithmetic
// is 8-wide and a shuffle with a constant lane is one permute. The unfused
// block stores the expanded tensor, reads it back with the depthwise halo,
// stores the depthwise output and reads it again, and each 1×1 reloads its
// weights per 32 pixels; here the accesses are the input halo, the output
// and one pass over the weights per subgroup, spread over the lanes
// (each lane loads LP/SG of a weight row and the others get it through
// subgroupShuffle). Recomputing the expansion on the tile's halo costs
// arithmetic, which is the cheap part.
//
// Packed weights, one row of LP values per expanded channel m (see
// dcr_mbblock_pack_weights): [0, CIN) expand weights, [CIN, CIN+COUT) the
// project weights w_p[co][m], then expand bias, depthwise bias and the nine
// depthwise taps (ky·3 + kx); zero padding up to LP = a multiple of 4·SG.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T4 f16vec4
#else
#define T4 vec4
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint CIN = 16;   // multiple of 4
layout(constant_id = 4) const uint COUT = 24;  // multiple of 4
layout(constant_id = 5) const uint S = 1;      // depthwise stride (1 or 2)
layout(constant_id = 6) const uint TH = 2;     // output rows per lane
layout(constant_id = 7) const uint TP = 4;     // output columns per lane
layout(constant_id = 8) const uint SG = 8;     // subgroup size
layout(constant_id = 9) const bool RES = false; // add the block input (S == 1, CIN == COUT)
const uint CIN4 = CIN / 4, COUT4 = COUT / 4;
const uint HN = (TH - 1) * S + 3, WN = (TP - 1) * S + 3; // input halo of a tile
const uint NQ = (CIN + COUT + 11 + 3) / 4;               // vec4s of a weight row in use
const uint NW = (NQ + SG - 1) / SG;                      // vec4s each lane loads per row
const uint LP4 = NW * SG;                                // row length in vec4s
const uint OB = CIN + COUT;                              // offset of the scalars

layout(std430, binding = 0) readonly buffer X4 { T4 x4[]; };
layout(std430, binding = 1) readonly buffer W4 { T4 w4[]; };
layout(std430, binding = 2) readonly buffer B4 { T4 bias4[]; };
layout(std430, binding = 3) writeonly buffer Y4 { T4 y4[]; };

layout(push_constant) uniform P {
    uint H, W;           // input
    uint Ho, Wo;         // output
    uint mid;            // expanded channels
    int PT, PL;          // depthwise padding before (top, left)
    uint tiles_w;        // ceil(Wo / TP)
    uint tiles_img;      // tiles per image
    uint tiles;          // N · tiles_img
} p;

void main() {
    uint lane = gl_SubgroupInvocationID;
    uint tile = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_NumSubgroups * SG
                + gl_SubgroupID * SG + lane;
    // lanes past the end still take part in the weight shuffles
    bool live = tile < p.tiles;
    uint t = min(tile, p.tiles - 1u);
    uint n = t / p.tiles_img, r = t % p.tiles_img;
    uint oh0 = (r / p.tiles_w) * TH, ow0 = (r % p.tiles_w) * TP;
    int ih0 = int(oh0 * S) - p.PT, iw0 = int(ow0 * S) - p.PL;

    // the input halo, zero outside the image (a select, not a branch per lane)
    vec4 xh[HN][WN][CIN4];
    bool inb[HN][WN];
    [[unroll]] for (uint dy = 0; dy < HN; dy++) {
        int ih = ih0 + int(dy);
        bool rok = ih >= 0 && ih < int(p.H);
        [[unroll]] for (uint dx = 0; dx < WN; dx++) {
            int iw = iw0 + int(dx);
            bool ok = rok && iw >= 0 && iw < int(p.W);
            inb[dy][dx] = ok;
            uint base = ((n * p.H + uint(ok ? ih : 0)) * p.W + uint(ok ? iw : 0)) * CIN4;
            [[unroll]] for (uint c = 0; c < CIN4; c++) {
                vec4 v = vec4(x4[base + c]);
                xh[dy][dx][c] = ok ? v : vec4(0.0);
            }
        }
    }

    vec4 acc[TH][TP][COUT4];
    [[unroll]] for (uint a = 0; a < TH; a++)
        [[unroll]] for (uint b = 0; b < TP; b++)
            [[unroll]] for (uint q = 0; q < COUT4; q++)
                acc[a][b][q] = vec4(0.0);

    for (uint m = 0; m < p.mid; m++) {
        // this channel's weight row: NW vec4 loads per lane, then shuffles
        vec4 wl[NW];
        [[unroll]] for (uint j = 0; j < NW; j++)
            wl[j] = vec4(w4[m * LP4 + j * SG + lane]);
        vec4 row[NQ];
        [[unroll]] for (uint q = 0; q < NQ; q++)
            row[q] = subgroupShuffle(wl[q / SG], q % SG);
#define WS(k) row[(k) >> 2][(k) & 3u]

        // expansion on the halo; zero padding applies to the expanded tensor
        float e[HN][WN];
        float be = WS(OB);
        [[unroll]] for (uint dy = 0; dy < HN; dy++)
            [[unroll]] for (uint dx = 0; dx < WN; dx++) {
                float s = be;
                [[unroll]] for (uint c = 0; c < CIN4; c++)
                    s += dot(xh[dy][dx][c], row[c]);
                e[dy][dx] = inb[dy][dx] ? clamp(s, 0.0, 6.0) : 0.0;
            }
        float bd = WS(OB + 1u);
        [[unroll]] for (uint a = 0; a < TH; a++)
            [[unroll]] for (uint b = 0; b < TP; b++) {
                float d = bd;
                [[unroll]] for (uint ky = 0; ky < 3; ky++)
                    [[unroll]] for (uint kx = 0; kx < 3; kx++)
                        d += e[a * S + ky][b * S + kx] * WS(OB + 2u + ky * 3u + kx);
                d = clamp(d, 0.0, 6.0);
                [[unroll]] for (uint q = 0; q < COUT4; q++)
                    acc[a][b][q] += d * row[CIN4 + q];
            }
#undef WS
    }

    if (!live)
        return;
    vec4 bv[COUT4];
    [[unroll]] for (uint q = 0; q < COUT4; q++)
        bv[q] = vec4(bias4[q]);
    [[unroll]] for (uint a = 0; a < TH; a++) {
        uint oh = oh0 + a;
        if (oh >= p.Ho)
            break;
        [[unroll]] for (uint b = 0; b < TP; b++) {
            uint ow = ow0 + b;
            if (ow >= p.Wo)
                break;
            uint o = ((n * p.Ho + oh) * p.Wo + ow) * COUT4;
            [[unroll]] for (uint q = 0; q < COUT4; q++) {
                vec4 v = acc[a][b][q] + bv[q];
                if (RES)
                    v += vec4(x4[o + q]);
                y4[o + q] = T4(v);
            }
        }
    }
}
