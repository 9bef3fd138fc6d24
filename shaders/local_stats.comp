#version 450
// The local forensic feature's per-tile part (definition:
// engine/dcr-op-local.h): per tile of the window and channel, the residual
// energies at dilations 1, 2, 3, 4, 6, the dilation-1 energy per phase mod 12
// and the lag-1 neighbour products (the 153 accumulators), then the tile's
// 23 values t0…t22 from them.
//
// One workgroup per tile. It first copies the tile's anchors and their 6-pixel
// margin (at most 60 × 60 pixels, packed RGB) into shared memory. Every
// accumulator is a sum of a horizontal and a vertical part (E_k = Σ h_d² +
// Σ v_d², …), so the statistics take two passes: one invocation per anchor
// column walks down the column, then one per anchor row walks along the row,
// twelve pixels at a time so that the phase is a constant, the pixels
// sliding through registers: each pixel is read from shared memory once a
// pass (on a CPU device every such read costs a scalar load per lane; the
// single pass that read the ten row neighbours of every anchor took about
// twice as long). The three channels (luma, R−G, B−G) ride in the lanes of
// vec3s. The partial sums are reduced in the same shared memory, and the
// tile's values computed from the totals.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 48) in;

layout(std430, binding = 0) readonly buffer Img { uint img[]; };
layout(std430, binding = 1) writeonly buffer Acc { float acc[]; };

layout(push_constant) uniform P {
    uint W;          // image width (row stride, pixels)
    uint top, left;  // window origin
    uint th, tw;     // tile sides in anchors (24 or 48)
    uint ntw;        // tiles per row
    uint out0;       // first element of the first image's accumulators in the bound range
    uint img_bytes;  // workgroup z is image z of a batch: bytes from one image to the next
    uint acc_stride; // and accumulators
} p;

const uint MARGIN = 6, PH = 12, NDIL = 5, NACC = 153, NVAL = 23, STRIDE = NACC + NVAL;
const uint TMAX = 48, SPAN = TMAX + 2 * MARGIN;
// partial sums per invocation (vec3 each): the vertical pass's P by row
// phase, the horizontal pass's P by column phase, E[5], Ch, Cv, Sh, Sv
const uint NRED = 2 * PH + NDIL + 4, TOT = NRED * 3 * TMAX;

// the phase grids of the DFT values: q × q cells for q = 2, 3, 4
const uint NCELL = 4 + 9 + 16, CELL = TOT + 3 * NACC;
// 21 KB: the pixels (14.4 KB); then the partial sums [NRED·3][48], from TOT
// on the tile's totals [3][NACC], from CELL on its grid cells [3][NCELL]
const uint SHARED = CELL + 3 * NCELL > SPAN * SPAN ? CELL + 3 * NCELL : SPAN * SPAN;
shared uint sh[SHARED];

vec3 pixel(uint r, uint c) {
    uint v = sh[r * SPAN + c];
    vec3 rgb = vec3(float(v & 0xff), float((v >> 8) & 0xff), float(v >> 16));
    return vec3(dot(rgb, vec3(0.299, 0.587, 0.114)), rgb.r - rgb.g, rgb.b - rgb.g);
}

float total(uint c, uint k) {
    return uintBitsToFloat(sh[TOT + c * NACC + k]);
}

// cos, sin of 2π·m/12
const float COS12[12] = float[12](1.0, 0.86602540378, 0.5, 0.0, -0.5, -0.86602540378,
                                  -1.0, -0.86602540378, -0.5, 0.0, 0.5, 0.86602540378);
const float SIN12[12] = float[12](0.0, 0.5, 0.86602540378, 1.0, 0.86602540378, 0.5,
                                  0.0, -0.5, -0.86602540378, -1.0, -0.86602540378, -0.5);

// t5…t20: the period and frequency of each DFT value (one of each conjugate
// pair of the non-zero frequencies, row-major)
const uint DQ[16] = uint[16](2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4);
const uint DU[16] = uint[16](0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 2, 2, 2);
const uint DV[16] = uint[16](1, 0, 1, 1, 0, 1, 2, 1, 2, 0, 1, 2, 3, 0, 1, 2);

float tile_value(uint c, uint v, float n) {
    float e0 = total(c, 0) / n;
    if (v == 0)
        return log(e0 + 0.01);
    if (v < NDIL)
        return log((total(c, v) / n + 0.001) / (e0 + 0.001));
    if (v >= NVAL - 2) {
        uint k = v - (NVAL - 2);
        return total(c, NACC - 4 + k) / (total(c, NACC - 2 + k) + 1e-6);
    }
    uint q = DQ[v - NDIL], u = DU[v - NDIL], w = DV[v - NDIL];
    uint first = CELL + c * NCELL + (q == 2 ? 0 : q == 3 ? 4 : 13), step = PH / q;
    float sum = 0.0;
    vec2 G = vec2(0.0);
    for (uint r = 0; r < q; r++)
        for (uint s = 0; s < q; s++) {
            float g = uintBitsToFloat(sh[first + r * q + s]);
            uint m = ((u * r + w * s) % q) * step;
            sum += g;
            G += g * vec2(COS12[m], -SIN12[m]);
        }
    float mean = sum / float(q * q);
    return length(G) / (mean + 1e-9) / float(q * q);
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint tile = gl_WorkGroupID.y * p.ntw + gl_WorkGroupID.x;
    uint rows = p.th + 2 * MARGIN, cols = p.tw + 2 * MARGIN;
    // the region's first pixel: anchor (a0, b0) less the margin
    uint y0 = p.top + gl_WorkGroupID.y * p.th, x0 = p.left + gl_WorkGroupID.x * p.tw;
    // (q + ½)/cols in float is exact enough for q < 3600 and avoids an
    // integer division per pixel
    float inv_cols = 1.0 / float(cols);
    for (uint q = lid; q < rows * cols; q += TMAX) {
        uint r = uint((float(q) + 0.5) * inv_cols), c = q - r * cols;
        uint o = gl_WorkGroupID.z * p.img_bytes + ((y0 + r) * p.W + x0 + c) * 3, i = o >> 2, s = (o & 3) * 8;
        uint v = img[i] >> s;
        if (s > 8)
            v |= img[i + 1] << (32 - s);
        sh[r * SPAN + c] = v & 0xffffff;
    }
    barrier();

    vec3 Pv[PH], Ph[PH], E[NDIL], C[4];
    [[unroll]] for (uint k = 0; k < PH; k++) {
        Pv[k] = vec3(0.0);
        Ph[k] = vec3(0.0);
    }
    [[unroll]] for (uint k = 0; k < NDIL; k++)
        E[k] = vec3(0.0);
    [[unroll]] for (uint k = 0; k < 4; k++)
        C[k] = vec3(0.0);
    const uint dil[NDIL] = uint[NDIL](1, 2, 3, 4, 6);
    // w[k] = the pixel k − 6 places from the anchor along the walk
    vec3 w[13];
    // the vertical pass: invocation = anchor column, walking down
    if (lid < p.tw) {
        uint cs = lid + MARGIN;
        [[unroll]] for (uint k = 0; k < 12; k++)
            w[k] = pixel(k, cs);
        for (uint ab = 0; ab < p.th; ab += PH) {
            [[unroll]] for (uint s = 0; s < PH; s++) {
                w[12] = pixel(ab + s + 2 * MARGIN, cs);
                vec3 x = w[6];
                [[unroll]] for (uint k = 0; k < NDIL; k++) {
                    uint d = dil[k];
                    vec3 v = w[6 - d] - 2.0 * x + w[6 + d];
                    E[k] += v * v;
                }
                vec3 v1 = w[5] - 2.0 * x + w[7];
                Pv[s] += v1 * v1;
                C[1] += v1 * (x - 2.0 * w[7] + w[8]);
                C[3] += v1 * v1;
                [[unroll]] for (uint k = 0; k < 12; k++)
                    w[k] = w[k + 1];
            }
        }
    }
    // the horizontal pass: invocation = anchor row, walking right
    if (lid < p.th) {
        uint rs = lid + MARGIN;
        [[unroll]] for (uint k = 0; k < 12; k++)
            w[k] = pixel(rs, k);
        for (uint ab = 0; ab < p.tw; ab += PH) {
            [[unroll]] for (uint s = 0; s < PH; s++) {
                w[12] = pixel(rs, ab + s + 2 * MARGIN);
                vec3 x = w[6];
                [[unroll]] for (uint k = 0; k < NDIL; k++) {
                    uint d = dil[k];
                    vec3 h = w[6 - d] - 2.0 * x + w[6 + d];
                    E[k] += h * h;
                }
                vec3 h1 = w[5] - 2.0 * x + w[7];
                Ph[s] += h1 * h1;
                C[0] += h1 * (x - 2.0 * w[7] + w[8]);
                C[2] += h1 * h1;
                [[unroll]] for (uint k = 0; k < 12; k++)
                    w[k] = w[k + 1];
            }
        }
    }
    barrier();
    [[unroll]] for (uint c = 0; c < 3; c++) {
        [[unroll]] for (uint k = 0; k < PH; k++) {
            sh[(k * 3 + c) * TMAX + lid] = floatBitsToUint(Pv[k][c]);
            sh[((PH + k) * 3 + c) * TMAX + lid] = floatBitsToUint(Ph[k][c]);
        }
        [[unroll]] for (uint k = 0; k < NDIL; k++)
            sh[((2 * PH + k) * 3 + c) * TMAX + lid] = floatBitsToUint(E[k][c]);
        [[unroll]] for (uint k = 0; k < 4; k++)
            sh[((2 * PH + NDIL + k) * 3 + c) * TMAX + lid] = floatBitsToUint(C[k][c]);
    }
    barrier();
    uint base = p.out0 + gl_WorkGroupID.z * p.acc_stride + tile * 3 * STRIDE;
    // P[pi·12 + pj]: the vertical sums at row phase pi of the columns ≡ pj
    // (mod 12) and the horizontal sums at column phase pj of the rows ≡ pi
    for (uint o = lid; o < 3 * PH * PH; o += TMAX) {
        uint c = o / (PH * PH), ph = o - c * PH * PH, pi = ph / PH, pj = ph - pi * PH;
        float t = 0.0;
        [[unroll]] for (uint x = 0; x < TMAX; x += PH)
            t += uintBitsToFloat(sh[(pi * 3 + c) * TMAX + pj + x])
                 + uintBitsToFloat(sh[((PH + pj) * 3 + c) * TMAX + pi + x]);
        uint k = NDIL + ph;
        sh[TOT + c * NACC + k] = floatBitsToUint(t);
        acc[base + c * STRIDE + k] = t;
    }
    // E_k, Ch, Cv, Sh, Sv: the sums over all invocations
    if (lid < (NDIL + 4) * 3) {
        uint v = lid / 3, c = lid - v * 3, k = v < NDIL ? v : NACC - 4 + (v - NDIL);
        float t = 0.0;
        for (uint x = 0; x < TMAX; x++)
            t += uintBitsToFloat(sh[((2 * PH + v) * 3 + c) * TMAX + x]);
        sh[TOT + c * NACC + k] = floatBitsToUint(t);
        acc[base + c * STRIDE + k] = t;
    }
    barrier();
    // the phase grids: cell (r, s) of period q sums P over pi ≡ r, pj ≡ s (mod q)
    for (uint o = lid; o < 3 * NCELL; o += TMAX) {
        uint c = o / NCELL, m = o - c * NCELL;
        uint q = m < 4 ? 2 : m < 13 ? 3 : 4, cm = m - (q == 2 ? 0 : q == 3 ? 4 : 13);
        uint r = cm / q, s = cm - r * q;
        float g = 0.0;
        for (uint pi = r; pi < PH; pi += q)
            for (uint pj = s; pj < PH; pj += q)
                g += total(c, NDIL + pi * PH + pj);
        sh[CELL + o] = floatBitsToUint(g);
    }
    barrier();
    float n = float(p.th * p.tw);
    for (uint o = lid; o < 3 * NVAL; o += TMAX) {
        uint c = o / NVAL, v = o - c * NVAL;
        acc[base + c * STRIDE + NACC + v] = tile_value(c, v, n);
    }
}
