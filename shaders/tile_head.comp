#version 450
// The tile head ("tiles-v1", definition: engine/dcr-tile-head.h) of one
// image: the per-column median of the 69 tile values over the image's tiles,
// the small MLP's logit of every tile on its values relative to that median,
// and the two backbone columns from the logits (the mean of the min(4, n)
// largest, the largest).
//
// One workgroup per image, 128 invocations, three steps between barriers:
//  (a) invocation j < 69 gathers column j (≤ 100 values) into registers and
//      finds its median by rank counting: the value at sorted position p is
//      the x_t with #{x < x_t} ≤ p < #{x ≤ x_t}, which is exact with ties;
//  (b) invocation t < n computes z = (x − med − mean)·inv_std on the fly and
//      the tile's logit (weights read from the packed buffer, which every
//      invocation reads in the same order), into shared memory and, when
//      asked, to the logits buffer;
//  (c) invocation 0 selects the largest logits and writes the columns.
// Storage of y f32 or, with -DDCR_FP16, f16; arithmetic f32.
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#else
#define T float
#endif

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer Acc { float acc[]; };   // the image's local scratch slot
layout(std430, binding = 1) readonly buffer W { float w[]; };       // DCR_TILES_PACKED(hidden)
layout(std430, binding = 2) writeonly buffer L { float lg[]; };     // the image's logits (when write_logits)
layout(std430, binding = 3) writeonly buffer Y { T y[]; };

layout(push_constant) uniform P {
    uint ntiles;        // 1…100
    uint hidden;        // 1…256
    uint lg0;           // first logit in the bound range
    uint out0;          // first output element (the feature row's tiles column)
    uint write_logits;  // 0: binding 2 is a placeholder, never written
} p;

const uint NACC = 153, NVAL = 23, STRIDE = NACC + NVAL, NIN = 3 * NVAL, MAXT = 100, TOPK = 4;

shared float med[NIN];
shared float logit[MAXT];

// x[t][j] of the header: value v = j % 23 of channel c = j / 23 of tile t
float tile_value(uint t, uint j) {
    return acc[(t * 3 + j / NVAL) * STRIDE + NACC + j % NVAL];
}

void main() {
    uint i = gl_LocalInvocationID.x, n = p.ntiles;

    // (a) the medians
    if (i < NIN) {
        float col[MAXT];
        for (uint t = 0; t < n; t++)
            col[t] = tile_value(t, i);
        // n odd: position n/2 twice; n even: positions n/2 − 1 and n/2
        uint plo = (n - 1) / 2, phi = n / 2;
        float lo = 0.0, hi = 0.0;
        uint found = 0;
        for (uint t = 0; t < n && found != 3; t++) {
            float v = col[t];
            uint lt = 0, le = 0;
            for (uint s = 0; s < n; s++) {
                lt += col[s] < v ? 1 : 0;
                le += col[s] <= v ? 1 : 0;
            }
            if (lt <= plo && plo < le) {
                lo = v;
                found |= 1;
            }
            if (lt <= phi && phi < le) {
                hi = v;
                found |= 2;
            }
        }
        med[i] = (n & 1) != 0 ? hi : 0.5 * (lo + hi);
    }
    barrier();

    // (b) the logits
    if (i < n) {
        const uint MEAN = 0, INV_STD = NIN, W1 = 2 * NIN;
        uint b1 = W1 + p.hidden * NIN, w2 = b1 + p.hidden, b2 = w2 + p.hidden;
        float z[NIN];
        for (uint j = 0; j < NIN; j++)
            z[j] = ((tile_value(i, j) - med[j]) - w[MEAN + j]) * w[INV_STD + j];
        float s = w[b2];
        for (uint h = 0; h < p.hidden; h++) {
            float a = w[b1 + h];
            uint row = W1 + h * NIN;
            for (uint j = 0; j < NIN; j++)
                a += w[row + j] * z[j];
            s += w[w2 + h] * max(a, 0.0);
        }
        logit[i] = s;
        if (p.write_logits != 0)
            lg[p.lg0 + i] = s;
    }
    barrier();

    // (c) the columns: the min(4, n) largest by repeated selection
    if (i == 0) {
        uint k = min(TOPK, n);
        uint picked[TOPK] = uint[TOPK](MAXT, MAXT, MAXT, MAXT);
        float sum = 0.0, top = 0.0;
        for (uint q = 0; q < k; q++) {
            uint best = MAXT;
            for (uint t = 0; t < n; t++) {
                bool taken = false;
                for (uint r = 0; r < q; r++)
                    taken = taken || picked[r] == t;
                if (!taken && (best == MAXT || logit[t] > logit[best]))
                    best = t;
            }
            picked[q] = best;
            sum += logit[best];
            if (q == 0)
                top = logit[best];
        }
        y[p.out0] = T(sum / float(k));
        y[p.out0 + 1] = T(top);
    }
}
