#version 450
// Fused multi-head attention, softmax(Q·Kᵀ·scale)·V with an online softmax
// (running max and sum, as flash attention): no Lq×Lk matrix in memory, one
// subgroup per workgroup, no shared memory and no barriers.
//
// Written for lavapipe, where memory access is per-lane scalar code and
// every per-lane value is a SIMD register: lanes exchange data with
// subgroupShuffle and reduce with subgroupShuffleXor butterflies (compiled to
// vector permutes; lavapipe's subgroupBroadcast and subgroupAdd loop over
// the lanes and cost ~20× more), and every per-lane array is indexed from
// unrolled loops only, so it stays in registers (a dynamic index sends the
// array to per-lane scratch memory and costs ~10×).
//
// Default kernel (tile): a task is QB queries of one (batch, head). For each
// block of KL·SG keys, Q·Kᵀ is a register-blocked GEMM (each lane holds KL
// keys; the Q rows are loaded one per lane and shuffled to all, as in
// gemm.comp). For P·V each lane owns CL vec4 column chunks of the QB×d
// output tile and takes each probability from the lane that holds its key.
// Every K and V element loaded serves QB queries. Needs d % 4 == 0.
//
// DCR_ATTN_SPLIT: a task is one query; the lanes split the head dim and q·k
// is a butterfly sum per key. For few queries (the DCR head: Lq = 1,
// d = 512) and any d.
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
layout(constant_id = 3) const uint QB = 16;       // tile: queries per task
layout(constant_id = 4) const uint KL = 2;        // tile: keys per lane per block
layout(constant_id = 5) const uint CL = 2;        // column chunks per lane: ≥ chunks / SG
layout(constant_id = 6) const bool VEC4 = true;   // split: d % 4 == 0 (the tile kernel needs it)
layout(constant_id = 7) const bool WEIGHTS = false; // also write the softmax weights (a second pass
                                                    // over the keys; a variant, so that the code is
                                                    // only compiled where it is used)

const uint SG = gl_WorkGroupSize.x;               // = the subgroup size
const uint AQ = (QB + SG - 1) / SG;               // tile: Q rows each lane loads per step

layout(std430, binding = 0) readonly buffer Q1 { S1 q1[]; };
layout(std430, binding = 0) readonly buffer Q4 { S4 q4[]; };
layout(std430, binding = 1) readonly buffer K1 { S1 k1[]; };
layout(std430, binding = 1) readonly buffer K4 { S4 k4[]; };
layout(std430, binding = 2) readonly buffer V1 { S1 v1[]; };
layout(std430, binding = 2) readonly buffer V4 { S4 v4[]; };
layout(std430, binding = 3) writeonly buffer O1 { S1 o1[]; };
layout(std430, binding = 3) writeonly buffer O4 { S4 o4[]; };
layout(std430, binding = 4) writeonly buffer W { S1 w[]; };

layout(push_constant) uniform P {
    uint batch, lq, lk, heads, d;
    uint q_rs, k_rs, v_rs;      // row strides (elements)
    uint q_off, k_off, v_off;   // column offsets (elements): a fused qkv has 0, H·d, 2·H·d
    uint n_qblocks;
    float scale;                // softmax scale · log2(e): exp2 below
} p;

#define NEG_INF uintBitsToFloat(0xff800000u)
#define NAN uintBitsToFloat(0x7fc00000u)

// Butterfly reductions over the SG lanes; every lane gets the same bits.
// (The loops count k, not o <<= 1: Mesa cannot find the trip count of a
// shift-stepped loop, leaves it rolled, and then every unrolled loop around
// it, so the register arrays they index go to scratch memory.)
float sg_sum(float v) {
    [[unroll]] for (uint k = 0; k < 7; k++)
        if ((1u << k) < SG)
            v += subgroupShuffleXor(v, 1u << k);
    return v;
}
float sg_max(float v) {
    [[unroll]] for (uint k = 0; k < 7; k++)
        if ((1u << k) < SG)
            v = max(v, subgroupShuffleXor(v, 1u << k));
    return v;
}

#ifndef DCR_ATTN_SPLIT

// s[i][t] = scale · q(q0 + i) · k(kb + t·SG + lane); keys past Lk get −inf.
void scores(inout float s[QB][KL], uint b, uint h, uint q0, uint kb, uint lane) {
    uint d4 = p.d / 4;
    uint qrow[AQ];
    [[unroll]] for (uint a = 0; a < AQ; a++)
        qrow[a] = (b * p.lq + min(q0 + a * SG + lane, p.lq - 1)) * (p.q_rs / 4) + (p.q_off + h * p.d) / 4;
    uint krow[KL];
    [[unroll]] for (uint t = 0; t < KL; t++)
        krow[t] = (b * p.lk + min(kb + t * SG + lane, p.lk - 1)) * (p.k_rs / 4) + (p.k_off + h * p.d) / 4;
    [[unroll]] for (uint i = 0; i < QB; i++)
        [[unroll]] for (uint t = 0; t < KL; t++)
            s[i][t] = 0.0;
    for (uint c = 0; c < d4; c++) {
        vec4 qv[AQ], kv[KL];
        [[unroll]] for (uint a = 0; a < AQ; a++)
            qv[a] = vec4(q4[qrow[a] + c]);
        [[unroll]] for (uint t = 0; t < KL; t++)
            kv[t] = vec4(k4[krow[t] + c]);
        [[unroll]] for (uint i = 0; i < QB; i++) {
            vec4 qi = subgroupShuffle(qv[i / SG], i % SG);
            [[unroll]] for (uint t = 0; t < KL; t++)
                s[i][t] = fma(qi.w, kv[t].w, fma(qi.z, kv[t].z, fma(qi.y, kv[t].y, fma(qi.x, kv[t].x, s[i][t]))));
        }
    }
    [[unroll]] for (uint t = 0; t < KL; t++) {
        bool valid = kb + t * SG + lane < p.lk;
        [[unroll]] for (uint i = 0; i < QB; i++)
            s[i][t] = valid ? s[i][t] * p.scale : NEG_INF;
    }
}

void main() {
    uint lane = gl_SubgroupInvocationID;
    // The tiles assume the workgroup is one subgroup of SG lanes; a driver
    // that splits it gets NaN rather than silently wrong sums.
    bool fits = subgroupBallotBitCount(subgroupBallot(true)) == SG && p.d <= 4 * CL * SG;
    uint tasks = p.batch * p.heads * p.n_qblocks;
    uint d4 = p.d / 4;

    for (uint task = gl_WorkGroupID.x; task < tasks; task += gl_NumWorkGroups.x) {
        uint qb = task % p.n_qblocks, bh = task / p.n_qblocks;
        uint h = bh % p.heads, b = bh / p.heads;
        uint q0 = qb * QB;

        vec4 acc[QB][CL];
        float m[QB], l[QB];
        [[unroll]] for (uint i = 0; i < QB; i++) {
            [[unroll]] for (uint u = 0; u < CL; u++)
                acc[i][u] = vec4(0.0);
            m[i] = NEG_INF;
            l[i] = 0.0;
        }

        for (uint kb = 0; kb < p.lk; kb += KL * SG) {
            float s[QB][KL];
            scores(s, b, h, q0, kb, lane);

            // online softmax: new running max, rescale what was summed so far
            [[unroll]] for (uint i = 0; i < QB; i++) {
                float bm = s[i][0];
                [[unroll]] for (uint t = 1; t < KL; t++)
                    bm = max(bm, s[i][t]);
                float mn = max(m[i], sg_max(bm));
                float alpha = exp2(m[i] - mn);
                m[i] = mn;
                float ps = 0.0;
                [[unroll]] for (uint t = 0; t < KL; t++) {
                    s[i][t] = exp2(s[i][t] - mn);
                    ps += s[i][t];
                }
                l[i] = l[i] * alpha + ps;   // this lane's share; summed at the end
                [[unroll]] for (uint u = 0; u < CL; u++)
                    acc[i][u] *= alpha;
            }

            // P·V: the probability of key kb + t·SG + o comes from lane o.
            // o is the loop and t the unrolled level inside it (an unrolled
            // loop around a loop stays rolled, and s[i][t] would go to
            // scratch). Branch-free: keys past Lk have probability 0 and
            // load row Lk − 1.
            uint nk = min(KL * SG, p.lk - kb);
            for (uint o = 0; o < min(SG, nk); o++) {
                [[unroll]] for (uint t = 0; t < KL; t++) {
                    uint key = min(kb + t * SG + o, p.lk - 1);
                    uint vrow = (b * p.lk + key) * (p.v_rs / 4) + (p.v_off + h * p.d) / 4;
                    vec4 vv[CL];
                    [[unroll]] for (uint u = 0; u < CL; u++)
                        vv[u] = vec4(v4[vrow + min(lane + u * SG, d4 - 1)]);
                    [[unroll]] for (uint i = 0; i < QB; i++) {
                        float pb = subgroupShuffle(s[i][t], o);
                        [[unroll]] for (uint u = 0; u < CL; u++)
                            acc[i][u] = fma(vec4(pb), vv[u], acc[i][u]);
                    }
                }
            }
        }

        [[unroll]] for (uint i = 0; i < QB; i++) {
            l[i] = fits ? 1.0 / sg_sum(l[i]) : NAN;
            if (q0 + i < p.lq) {
                uint orow = (b * p.lq + q0 + i) * (p.heads * d4) + h * d4;
                [[unroll]] for (uint u = 0; u < CL; u++) {
                    uint c = lane + u * SG;
                    if (c < d4)
                        o4[orow + c] = S4(acc[i][u] * l[i]);
                }
            }
        }

        if (WEIGHTS) {
            // the normalised weights need the final max and sum: recompute the scores
            for (uint kb = 0; kb < p.lk; kb += KL * SG) {
                float s[QB][KL];
                scores(s, b, h, q0, kb, lane);
                [[unroll]] for (uint i = 0; i < QB; i++) {
                    uint wrow = ((b * p.heads + h) * p.lq + q0 + i) * p.lk;
                    [[unroll]] for (uint t = 0; t < KL; t++) {
                        uint key = kb + t * SG + lane;
                        if (q0 + i < p.lq && key < p.lk)
                            w[wrow + key] = S1(exp2(s[i][t] - m[i]) * l[i]);
                    }
                }
            }
        }
    }
}

#else // DCR_ATTN_SPLIT

vec4 ld_q(uint e) { return VEC4 ? vec4(q4[e / 4]) : vec4(float(q1[e]), 0.0, 0.0, 0.0); }
vec4 ld_k(uint e) { return VEC4 ? vec4(k4[e / 4]) : vec4(float(k1[e]), 0.0, 0.0, 0.0); }
vec4 ld_v(uint e) { return VEC4 ? vec4(v4[e / 4]) : vec4(float(v1[e]), 0.0, 0.0, 0.0); }

// scale · q · k for the key whose row starts at element ke (all lanes get it).
float score(vec4 qr[CL], uint ke, uint lane, uint nc, uint cw) {
    float part = 0.0;
    [[unroll]] for (uint u = 0; u < CL; u++) {
        uint c = lane + u * SG;
        if (c < nc)
            part += dot(qr[u], ld_k(ke + c * cw));
    }
    return sg_sum(part);
}

void main() {
    uint lane = gl_SubgroupInvocationID;
    uint cw = VEC4 ? 4 : 1;
    uint nc = p.d / cw;                  // column chunks
    bool fits = subgroupBallotBitCount(subgroupBallot(true)) == SG && nc <= CL * SG;
    uint tasks = p.batch * p.heads * p.lq;

    for (uint task = gl_WorkGroupID.x; task < tasks; task += gl_NumWorkGroups.x) {
        uint i = task % p.lq, bh = task / p.lq;
        uint h = bh % p.heads, b = bh / p.heads;
        uint qe = (b * p.lq + i) * p.q_rs + p.q_off + h * p.d;

        vec4 qr[CL], acc[CL];
        [[unroll]] for (uint u = 0; u < CL; u++) {
            uint c = lane + u * SG;
            qr[u] = c < nc ? ld_q(qe + c * cw) * p.scale : vec4(0.0);
            acc[u] = vec4(0.0);
        }
        float m = NEG_INF, l = 0.0;
        for (uint j = 0; j < p.lk; j++) {
            uint ke = (b * p.lk + j) * p.k_rs + p.k_off + h * p.d;
            uint ve = (b * p.lk + j) * p.v_rs + p.v_off + h * p.d;
            float s = score(qr, ke, lane, nc, cw);
            float mn = max(m, s);
            float alpha = exp2(m - mn), pj = exp2(s - mn);
            m = mn;
            l = l * alpha + pj;
            [[unroll]] for (uint u = 0; u < CL; u++) {
                uint c = lane + u * SG;
                if (c < nc)
                    acc[u] = acc[u] * alpha + pj * ld_v(ve + c * cw);
            }
        }
        float inv = fits ? 1.0 / l : NAN;
        uint oe = (b * p.lq + i) * (p.heads * p.d) + h * p.d;
        [[unroll]] for (uint u = 0; u < CL; u++) {
            uint c = lane + u * SG;
            if (c < nc) {
                vec4 r = acc[u] * inv;
                if (VEC4)
                    o4[oe / 4 + c] = S4(r);
                else
                    o1[oe + c] = S1(r.x);
            }
        }
        if (WEIGHTS) {
            uint wrow = ((b * p.heads + h) * p.lq + i) * p.lk;
            for (uint j = 0; j < p.lk; j++) {
                float s = score(qr, (b * p.lk + j) * p.k_rs + p.k_off + h * p.d, lane, nc, cw);
                if (lane == 0)
                    w[wrow + j] = S1(exp2(s - m) * inv);
            }
        }
    }
}

#endif
