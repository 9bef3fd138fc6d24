#version 450
// Top-k (k ≤ 32) along rows, ties to the lower index. One subgroup takes one
// (row, chunk) task: each lane keeps a sorted top-K of its strided share in
// registers (insertion only when a value beats the lane's K-th best, which
// is rare after the first few hundred elements), then K rounds of subgroup
// max/min pick the subgroup's best. No shared memory, no barriers.
// Long rows are split into chunks whose candidates go to scratch and are
// merged by a second dispatch of this shader (HAS_IN_IDX: indices carried).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_ballot : require
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define S1 float16_t
#else
#define S1 float
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 3) const uint K = 1;
layout(constant_id = 4) const bool HAS_IN_IDX = false;
layout(constant_id = 5) const bool WRITE_VALUES = true;

layout(std430, binding = 0) readonly buffer XV { S1 xv[]; };
layout(std430, binding = 1) readonly buffer XI { uint xi[]; };
layout(std430, binding = 2) writeonly buffer OV { S1 ov[]; };
layout(std430, binding = 3) writeonly buffer OI { uint oi[]; };

layout(push_constant) uniform P {
    uint rows, n, n_chunks, chunk_len;
    uint in_rs, in_v_off, in_i_off;       // input row stride and element offsets
    uint out_rs, out_v_off, out_i_off;    // output row stride and element offsets
    uint index_base;
} p;

#define NEG_INF uintBitsToFloat(0xff800000u)
#define NO_INDEX 0xffffffffu

// (v, i) ranks before (w, j): larger value, or equal value and lower index.
// NaN ranks before nothing, so it is never inserted.
bool better(float v, uint i, float w, uint j) {
    return v > w || (v == w && i < j);
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

        float lv[K];
        uint li[K];
        for (uint j = 0; j < K; j++) {
            lv[j] = NEG_INF;
            li[j] = NO_INDEX;
        }
        for (uint i = begin + lane; i < end; i += lanes) {
            float v = float(xv[vbase + i]);
            uint id = HAS_IN_IDX ? xi[ibase + i] : p.index_base + i;
            if (better(v, id, lv[K - 1], li[K - 1])) {
                // one bubble pass with constant indices keeps the list in registers
                for (uint j = 0; j < K; j++) {
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

        uint obase = row * p.out_rs + chunk * K;
        for (uint j = 0; j < K; j++) {
            float bv = subgroupMax(lv[0]);
            uint bi = subgroupMin(lv[0] == bv ? li[0] : NO_INDEX);
            if (lane == 0) {
                if (WRITE_VALUES)
                    ov[p.out_v_off + obase + j] = S1(bv);
                oi[p.out_i_off + obase + j] = bi;
            }
            if (lv[0] == bv && li[0] == bi) {
                for (uint q = 0; q + 1 < K; q++) {
                    lv[q] = lv[q + 1];
                    li[q] = li[q + 1];
                }
                lv[K - 1] = NEG_INF;
                li[K - 1] = NO_INDEX;
            }
        }
    }
}
