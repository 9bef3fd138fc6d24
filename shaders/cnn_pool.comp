#version 450
// The forensic CNN's columns (definition: engine/dcr-cnn.h) from its logit
// maps: per map, the mean over all cells, the block means of the whole
// t × t blocks (the whole map one block when none fits), the mean of the
// min(4, nb) largest block means and the largest.
//
// One workgroup of 256 invocations per map (workgroup id = map): (a) every
// invocation sums a strided share of the cells, reduced in shared memory;
// (b) invocation b < nb sums block b; (c) invocation 0 selects the largest
// block means and writes the columns to y's row (f32 or, with -DDCR_FP16,
// f16 storage) and, when asked, the block means. Arithmetic f32.
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#else
#define T float
#endif

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer M { float m[]; };     // [n, hm, wm]
layout(std430, binding = 1) writeonly buffer Y { T y[]; };        // rows row0 … from out0
layout(std430, binding = 2) writeonly buffer B { float blk[]; };  // [n, 121] (when write_blocks)

layout(push_constant) uniform P {
    uint hm, wm;        // map size
    uint t;             // block side in cells
    uint nbh, nbw;      // whole blocks (0 × 0: none; the map is one block)
    uint out0;          // first output element (row row0, the first column)
    uint y_stride;      // elements per row of y
    uint write_blocks;  // 0: binding 2 is a placeholder, never written
} p;

const uint MAXB = 121, TOPK = 4;

shared float part[256];
shared float means[MAXB];

void main() {
    uint i = gl_LocalInvocationID.x, img = gl_WorkGroupID.x;
    uint cells = p.hm * p.wm, base = img * cells;

    // (a) the mean of the whole map
    float s = 0.0;
    for (uint c = i; c < cells; c += 256u)
        s += m[base + c];
    part[i] = s;
    barrier();
    for (uint w = 128u; w > 0u; w >>= 1) {
        if (i < w)
            part[i] += part[i + w];
        barrier();
    }
    float all = part[0] / float(cells);

    // (b) the block means
    bool whole = p.nbh > 0u && p.nbw > 0u;
    uint nb = whole ? p.nbh * p.nbw : 1u;
    if (i < nb) {
        float v = all;
        if (whole) {
            uint a = i / p.nbw, b = i % p.nbw;
            float bs = 0.0;
            for (uint yy = 0; yy < p.t; yy++) {
                uint row = base + (a * p.t + yy) * p.wm + b * p.t;
                for (uint xx = 0; xx < p.t; xx++)
                    bs += m[row + xx];
            }
            v = bs / float(p.t * p.t);
        }
        means[i] = v;
        if (p.write_blocks != 0u)
            blk[img * MAXB + i] = v;
    }
    barrier();

    // (c) the columns: the min(4, nb) largest by repeated selection
    if (i == 0u) {
        uint k = min(TOPK, nb);
        uint picked[TOPK] = uint[TOPK](MAXB, MAXB, MAXB, MAXB);
        float sum = 0.0, top = 0.0;
        for (uint q = 0; q < k; q++) {
            uint best = MAXB;
            for (uint b = 0; b < nb; b++) {
                bool taken = false;
                for (uint r = 0; r < q; r++)
                    taken = taken || picked[r] == b;
                if (!taken && (best == MAXB || means[b] > means[best]))
                    best = b;
            }
            picked[q] = best;
            sum += means[best];
            if (q == 0u)
                top = means[best];
        }
        uint o = p.out0 + img * p.y_stride;
        y[o] = T(all);
        y[o + 1u] = T(sum / float(k));
        y[o + 2u] = T(top);
    }
}
