#version 450
// Top-k (k ≤ 32) along rows, ties to the lower index. One subgroup takes one
// (row, chunk) task: each lane keeps a sorted top-K of its share of the
// chunk in registers, then K rounds of butterfly max/min pick the subgroup's
// best. No shared memory, no barriers.
// After each insertion round the lanes agree on a threshold, the best K-th
// value of any lane: the chunk's K-th best is at least that, so smaller
// values are skipped without touching the lists.
// Long rows are split into chunks whose candidates go to scratch and are
// merged by a second dispatch of this shader (HAS_IN_IDX: indices carried).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define S1 float16_t
#define S4 f16vec4
#else
#define S1 float
#define S4 vec4
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint K = 1;
layout(constant_id = 4) const bool HAS_IN_IDX = false;
layout(constant_id = 5) const bool WRITE_VALUES = true;
layout(constant_id = 6) const bool VEC4 = false;   // rows, strides, offsets and chunks are multiples of 4

layout(std430, binding = 0) readonly buffer XV { S1 xv[]; };
layout(std430, binding = 0) readonly buffer XV4 { S4 xv4[]; };
layout(std430, binding = 1) readonly buffer XI { uint xi[]; };
layout(std430, binding = 1) readonly buffer XI4 { uvec4 xi4[]; };
layout(std430, binding = 2) writeonly buffer OV { S1 ov[]; };
layout(std430, binding = 3) writeonly buffer OI { uint oi[]; };

layout(push_constant) uniform P {
    uint rows, n, n_chunks, chunk_len;
    uint in_rs, in_v_off, in_i_off;       // input row stride and element offsets
    uint out_rs, out_v_off, out_i_off;    // output row stride and element offsets
    uint index_base;
} p;

#define NEG_INF uintBitsToFloat(0xff800000u)
#define NAN uintBitsToFloat(0x7fc00000u)
#define NO_INDEX 0xffffffffu

float lv[K];
uint li[K];

// Butterfly max / min over the lanes (a power of two) with shuffle-xor:
// lavapipe compiles them to vector permutes where its subgroupMax/Min loop
// over the lanes. The loops count k so that they unroll.
float sg_max(float v, uint lanes) {
    [[unroll]] for (uint k = 0; k < 7; k++)
        if ((1u << k) < lanes)
            v = max(v, subgroupShuffleXor(v, 1u << k));
    return v;
}
uint sg_min(uint v, uint lanes) {
    [[unroll]] for (uint k = 0; k < 7; k++)
        if ((1u << k) < lanes)
            v = min(v, subgroupShuffleXor(v, 1u << k));
    return v;
}

// (v, i) ranks before (w, j): larger value, or equal value and lower index.
// NaN ranks before nothing, so it is never inserted.
bool better(float v, uint i, float w, uint j) {
    return v > w || (v == w && i < j);
}

void consider(float v, uint id, float thr) {
    if (v >= thr && better(v, id, lv[K - 1], li[K - 1])) {
        // one bubble pass with constant indices keeps the list in
        // registers (a dynamic index would send it to scratch memory)
        [[unroll]] for (uint j = 0; j < K; j++) {
            if (better(v, id, lv[j], li[j])) {
                float tv = lv[j];
                uint ti = li[j];
                lv[j] = v;
                li[j] = id;
                v = tv;
                id = ti;
            }
        }
    }
}

// Four entries from element e on (VEC4), or entry e and three NaNs.
vec4 load4(uint e) {
    return VEC4 ? vec4(xv4[e / 4]) : vec4(float(xv[e]), NAN, NAN, NAN);
}

void main() {
    uint lane = gl_SubgroupInvocationID;
    uint lanes = subgroupBallotBitCount(subgroupBallot(true));
    uint first = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID;
    uint stride = gl_NumWorkGroups.x * gl_NumSubgroups;
    uint tasks = p.rows * p.n_chunks;

    for (uint task = first; task < tasks; task += stride) {
        uint row = task / p.n_chunks, chunk = task % p.n_chunks;
        uint begin = chunk * p.chunk_len, end = min(p.n, begin + p.chunk_len);
        uint vbase = p.in_v_off + row * p.in_rs, ibase = p.in_i_off + row * p.in_rs;

        [[unroll]] for (uint j = 0; j < K; j++) {
            lv[j] = NEG_INF;
            li[j] = NO_INDEX;
        }
        // Rounds: every lane scans on until it meets a value that beats its
        // K-th best (and the shared threshold), then the lanes that found one
        // insert it. lavapipe runs both sides of every branch (masked), so
        // the K-step insertion must sit outside the scan loop: a loop is the
        // only construct it leaves as soon as no lane needs it.
        float thr = NEG_INF;
        uint width = VEC4 ? 4 * lanes : lanes;
        uint pos = begin + (VEC4 ? 4 * lane : lane);
        for (;;) {
            // Scan four steps at a time, stop at the first group of four
            // that holds a candidate.
            float kv = max(lv[K - 1], thr);
            for (; pos + 3 * width < end; pos += 4 * width) {
                vec4 v0 = load4(vbase + pos), v1 = load4(vbase + pos + width);
                vec4 v2 = load4(vbase + pos + 2 * width), v3 = load4(vbase + pos + 3 * width);
                if (any(greaterThanEqual(max(max(v0, v1), max(v2, v3)), vec4(kv))))
                    break;
            }
            // The tail, one step at a time.
            if (pos + 3 * width >= end)
                for (; pos < end; pos += width)
                    if (any(greaterThanEqual(load4(vbase + pos), vec4(kv))))
                        break;
            bool found = pos < end;
            if (subgroupBallotBitCount(subgroupBallot(found)) == 0)
                break;
            if (found) {
                // insert the first step that holds a candidate, resume after it
                uint q = pos;
                [[unroll]] for (uint u = 3; u > 0; u--) {
                    uint r = pos + (u - 1) * width;
                    if (r < end && any(greaterThanEqual(load4(vbase + r), vec4(kv))))
                        q = r;
                }
                vec4 v = load4(vbase + q);
                uvec4 id = HAS_IN_IDX ? (VEC4 ? xi4[(ibase + q) / 4] : uvec4(xi[ibase + q], NO_INDEX, NO_INDEX, NO_INDEX))
                                      : uvec4(p.index_base + q) + uvec4(0, 1, 2, 3);
                consider(v.x, id.x, thr);
                if (VEC4) {
                    consider(v.y, id.y, thr);
                    consider(v.z, id.z, thr);
                    consider(v.w, id.w, thr);
                }
                pos = q + width;
            }
            // the chunk's K-th best is at least any lane's K-th best
            thr = sg_max(lv[K - 1], lanes);
        }

        uint obase = row * p.out_rs + chunk * K;
        for (uint j = 0; j < K; j++) {
            float bv = sg_max(lv[0], lanes);
            uint bi = sg_min(lv[0] == bv ? li[0] : NO_INDEX, lanes);
            if (lane == 0) {
                if (WRITE_VALUES)
                    ov[p.out_v_off + obase + j] = S1(bv);
                oi[p.out_i_off + obase + j] = bi;
            }
            if (lv[0] == bv && li[0] == bi) {
                [[unroll]] for (uint q = 0; q < K - 1; q++) {
                    lv[q] = lv[q + 1];
                    li[q] = li[q + 1];
                }
                lv[K - 1] = NEG_INF;
                li[K - 1] = NO_INDEX;
            }
        }
    }
}
