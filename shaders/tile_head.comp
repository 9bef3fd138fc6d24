#version 450
// The tile head ("tiles-v1", definition: engine/dcr-tile-head.h) of one
// image: the per-column median of the 69 tile values over the image's tiles,
// the small MLP's logit of every tile on its values relative to that median,
// and the two backbone columns from the logits (the mean of the min(4, n)
// largest, the largest).
//
// One workgroup per image (workgroup z: image z of a batch, its scratch
// slot acc_stride, its logits lg_stride and its feature row out_stride after
// the first image's), 128 invocations, three steps between barriers:
//  (a) invocation j < 69 gathers column j (≤ 100 values) into registers and
//      finds its median by rank counting: the value at sorted position p is
//      the x_t with #{x < x_t} ≤ p < #{x ≤ x_t}, which is exact with ties;
//      then it writes the column's z = (x − med − mean)·inv_std to shared
//      memory;
//  (b) the hidden layer as a register-blocked product: invocation i takes a
//      block of KT tiles (tb = i % TB) and the blocks of KH hidden units
//      hb = g, g + G, … (g = i / TB), and per input j loads KT values of z
//      and KH weights for KT·KH products (on lavapipe each load from a
//      per-invocation address is a scalar load per lane, so loads, not
//      products, set the time); each invocation's share of its tiles'
//      logits goes to shared memory, and invocation t < n sums the shares in
//      order (g = 0, 1, …) into its logit, into shared memory and, when
//      asked, to the logits buffer;
//  (c) invocation 0 selects the largest logits and writes the columns.
// Shared memory: about 29 KiB.
// Storage of y f32 or, with -DDCR_FP16, f16; arithmetic f32.
#extension GL_EXT_control_flow_attributes : require
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
    uint acc_stride, lg_stride, out_stride;
} p;

const uint NACC = 153, NVAL = 23, STRIDE = NACC + NVAL, NIN = 3 * NVAL, MAXT = 100, TOPK = 4;
const uint LOCAL = 128, KT = 8, KH = 16;
// tiles rounded up to whole blocks of KT
const uint MAXTP = (MAXT + KT - 1) / KT * KT;

shared float logit[MAXT];
// z[j][t] during (b) (zero past n), then each invocation's shares of its KT
// tiles' logits (G·TB ≤ LOCAL of them)
shared float zs[NIN * MAXTP];

// x[t][j] of the header: value v = j % 23 of channel c = j / 23 of tile t
float tile_value(uint t, uint j) {
    return acc[gl_WorkGroupID.z * p.acc_stride + (t * 3 + j / NVAL) * STRIDE + NACC + j % NVAL];
}

void main() {
    uint i = gl_LocalInvocationID.x, n = p.ntiles;

    // (a) the medians, and z
    const uint MEAN = 0, INV_STD = NIN, W1 = 2 * NIN;
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
        float m = (n & 1) != 0 ? hi : 0.5 * (lo + hi), mu = w[MEAN + i], is = w[INV_STD + i];
        uint tp = (n + KT - 1) / KT * KT;
        for (uint t = 0; t < tp; t++)
            zs[i * MAXTP + t] = t < n ? ((tile_value(t, i) - m) - mu) * is : 0.0;
    }
    barrier();

    // (b) the logits
    uint b1 = W1 + p.hidden * NIN, w2 = b1 + p.hidden, b2 = w2 + p.hidden;
    uint TB = (n + KT - 1) / KT, HB = (p.hidden + KH - 1) / KH, G = min(LOCAL / TB, HB);
    uint tb = i % TB, g = i / TB;
    float part[KT];
    [[unroll]] for (uint k = 0; k < KT; k++)
        part[k] = 0.0;
    if (g < G) {
        for (uint hb = g; hb < HB; hb += G) {
            // hidden units past the width repeat the last one and are not used
            uint hq[KH], wo[KH];
            float a[KT][KH];
            [[unroll]] for (uint q = 0; q < KH; q++) {
                hq[q] = min(hb * KH + q, p.hidden - 1);
                wo[q] = W1 + hq[q] * NIN;
                float bh = w[b1 + hq[q]];
                [[unroll]] for (uint k = 0; k < KT; k++)
                    a[k][q] = bh;
            }
            for (uint j = 0; j < NIN; j++) {
                float z[KT], wj[KH];
                [[unroll]] for (uint k = 0; k < KT; k++)
                    z[k] = zs[j * MAXTP + tb * KT + k];
                [[unroll]] for (uint q = 0; q < KH; q++)
                    wj[q] = w[wo[q] + j];
                [[unroll]] for (uint k = 0; k < KT; k++)
                    [[unroll]] for (uint q = 0; q < KH; q++)
                        a[k][q] += wj[q] * z[k];
            }
            [[unroll]] for (uint q = 0; q < KH; q++)
                if (hb * KH + q < p.hidden) {
                    float oh = w[w2 + hq[q]];
                    [[unroll]] for (uint k = 0; k < KT; k++)
                        part[k] += oh * max(a[k][q], 0.0);
                }
        }
    }
    barrier();
    if (g < G)
        [[unroll]] for (uint k = 0; k < KT; k++)
            zs[(g * TB + tb) * KT + k] = part[k];
    barrier();
    if (i < n) {
        float s = w[b2];
        uint tb = i / KT, k = i % KT;
        for (uint g = 0; g < G; g++)
            s += zs[(g * TB + tb) * KT + k];
        logit[i] = s;
        if (p.write_logits != 0)
            lg[p.lg0 + gl_WorkGroupID.z * p.lg_stride + i] = s;
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
        uint o = p.out0 + gl_WorkGroupID.z * p.out_stride;
        y[o] = T(sum / float(k));
        y[o + 1] = T(top);
    }
}
