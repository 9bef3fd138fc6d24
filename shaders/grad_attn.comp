#version 450
// Backward of scaled dot-product attention for the DCR heads' small case:
// a few queries per (batch, head). A task is one (batch, head); one
// subgroup walks its queries in order, so every dK/dV element is
// accumulated by the same lane across queries and no atomics are needed.
// The softmax is recomputed: a first pass over the keys gets its running
// max, sum and Σ p·(dout·v) online; the second recomputes each score and
// applies it.
//   out_i = Σ_j p_ij v_j,  p_i = softmax_j(scale · q_i·k_j)
//   ds_ij = p_ij (dout_i·v_j − Σ_l p_il dout_i·v_l)
//   dq_i = scale Σ_j ds_ij k_j,  dk_j = scale Σ_i ds_ij q_i,  dv_j = Σ_i p_ij dout_i
// Layout: q [B, Lq, H·dh], k [B, Lk, H·dh], v [B, Lk, H·dv], dout [B, Lq, H·dv].
// As attention.comp: lanes split the head dims (vec4 chunks when both are
// multiples of 4), dot products end in subgroup adds, and per-lane arrays
// are indexed by unrolled loops only so they stay in registers — no shared
// memory, no barriers (lavapipe runs those as coroutine switches).
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in; // the subgroup size
layout(constant_id = 3) const uint CQ = 1;        // q/k chunks per lane: ≥ chunks(dh) / SG
layout(constant_id = 4) const uint CV = 1;        // v chunks per lane: ≥ chunks(dv) / SG
layout(constant_id = 5) const bool VEC4 = true;   // dh and dv are multiples of 4

const uint SG = gl_WorkGroupSize.x;

// scalar and vec4 views of each binding
layout(std430, binding = 0) readonly buffer Q1 { float q1[]; };
layout(std430, binding = 0) readonly buffer Q4 { vec4 q4[]; };
layout(std430, binding = 1) readonly buffer K1 { float k1[]; };
layout(std430, binding = 1) readonly buffer K4 { vec4 k4[]; };
layout(std430, binding = 2) readonly buffer V1 { float v1[]; };
layout(std430, binding = 2) readonly buffer V4 { vec4 v4[]; };
layout(std430, binding = 3) readonly buffer O1 { float o1[]; };
layout(std430, binding = 3) readonly buffer O4 { vec4 o4[]; };
layout(std430, binding = 4) buffer DQ1 { float dq1[]; };
layout(std430, binding = 4) buffer DQ4 { vec4 dq4[]; };
layout(std430, binding = 5) buffer DK1 { float dk1[]; };
layout(std430, binding = 5) buffer DK4 { vec4 dk4[]; };
layout(std430, binding = 6) buffer DV1 { float dv1[]; };
layout(std430, binding = 6) buffer DV4 { vec4 dv4[]; };
// flags: bit 0 write dq, bit 1 dk, bit 2 dv, bit 3 accumulate
layout(push_constant) uniform P {
    uint batch; uint lq; uint lk; uint heads; uint dh; uint dv; float scale; uint flags;
} p;

#define NAN uintBitsToFloat(0x7fc00000u)

// chunk loads and stores at element e (a multiple of 4 with VEC4)
#define LD(buf, e) (VEC4 ? buf##4[(e) / 4] : vec4(buf##1[e], 0.0, 0.0, 0.0))
#define ST(buf, e, val) { if (VEC4) buf##4[(e) / 4] = (val); else buf##1[e] = (val).x; }

void main() {
    uint lane = gl_SubgroupInvocationID;
    uint cw = VEC4 ? 4u : 1u;
    uint nq = p.dh / cw, nv = p.dv / cw; // chunks per row
    // A driver that splits the workgroup into several subgroups gets NaN
    // rather than silently wrong sums.
    bool fits = gl_NumSubgroups == 1u && subgroupBallotBitCount(subgroupBallot(true)) == SG;
    float poison = fits ? 0.0 : NAN;
    uint qk_row = p.heads * p.dh, v_row = p.heads * p.dv;
    bool accum = (p.flags & 8u) != 0u;

    for (uint task = gl_WorkGroupID.x; task < p.batch * p.heads; task += gl_NumWorkGroups.x) {
        uint b = task / p.heads, h = task - b * p.heads;
        for (uint i = 0; i < p.lq; i++) {
            uint qe = (b * p.lq + i) * qk_row + h * p.dh;
            uint oe = (b * p.lq + i) * v_row + h * p.dv;
            vec4 qr[CQ], orow[CV], dqr[CQ];
            [[unroll]] for (uint u = 0; u < CQ; u++) {
                uint c = lane + u * SG;
                qr[u] = c < nq ? LD(q, qe + c * cw) : vec4(0.0);
                dqr[u] = vec4(0.0);
            }
            [[unroll]] for (uint u = 0; u < CV; u++) {
                uint c = lane + u * SG;
                orow[u] = c < nv ? LD(o, oe + c * cw) : vec4(0.0);
            }

            // pass 1: max, Σ e^(s − m) and Σ e^(s − m)·(dout·v), online
            float m = -1.0 / 0.0, z = 0.0, cs = 0.0;
            for (uint j = 0; j < p.lk; j++) {
                uint ke = (b * p.lk + j) * qk_row + h * p.dh, ve = (b * p.lk + j) * v_row + h * p.dv;
                float s = 0.0, dp = 0.0;
                [[unroll]] for (uint u = 0; u < CQ; u++) {
                    uint c = lane + u * SG;
                    if (c < nq)
                        s += dot(qr[u], LD(k, ke + c * cw));
                }
                [[unroll]] for (uint u = 0; u < CV; u++) {
                    uint c = lane + u * SG;
                    if (c < nv)
                        dp += dot(orow[u], LD(v, ve + c * cw));
                }
                s = subgroupAdd(s) * p.scale;
                dp = subgroupAdd(dp);
                float mn = max(m, s), a = exp(m - mn), e = exp(s - mn);
                z = z * a + e;
                cs = cs * a + e * dp;
                m = mn;
            }
            float cbar = cs / z, inv_z = 1.0 / z;

            // pass 2: each key's p and ds, applied to dq, dk, dv
            bool first = i == 0u && !accum;
            for (uint j = 0; j < p.lk; j++) {
                uint ke = (b * p.lk + j) * qk_row + h * p.dh, ve = (b * p.lk + j) * v_row + h * p.dv;
                vec4 kr[CQ];
                float s = 0.0, dp = 0.0;
                [[unroll]] for (uint u = 0; u < CQ; u++) {
                    uint c = lane + u * SG;
                    kr[u] = c < nq ? LD(k, ke + c * cw) : vec4(0.0);
                    s += dot(qr[u], kr[u]);
                }
                [[unroll]] for (uint u = 0; u < CV; u++) {
                    uint c = lane + u * SG;
                    if (c < nv)
                        dp += dot(orow[u], LD(v, ve + c * cw));
                }
                s = subgroupAdd(s) * p.scale;
                dp = subgroupAdd(dp);
                float pj = exp(s - m) * inv_z + poison;
                float ds = pj * (dp - cbar);
                [[unroll]] for (uint u = 0; u < CQ; u++) {
                    uint c = lane + u * SG;
                    dqr[u] += ds * kr[u];
                    if ((p.flags & 2u) != 0u && c < nq) {
                        uint e = ke + c * cw;
                        vec4 g = (p.scale * ds) * qr[u];
                        ST(dk, e, first ? g : LD(dk, e) + g);
                    }
                }
                if ((p.flags & 4u) != 0u) {
                    [[unroll]] for (uint u = 0; u < CV; u++) {
                        uint c = lane + u * SG;
                        if (c < nv) {
                            uint e = ve + c * cw;
                            vec4 g = pj * orow[u];
                            ST(dv, e, first ? g : LD(dv, e) + g);
                        }
                    }
                }
            }
            if ((p.flags & 1u) != 0u) {
                [[unroll]] for (uint u = 0; u < CQ; u++) {
                    uint c = lane + u * SG;
                    if (c < nq) {
                        uint e = qe + c * cw;
                        vec4 g = p.scale * dqr[u] + poison;
                        ST(dq, e, accum ? LD(dq, e) + g : g);
                    }
                }
            }
        }
    }
}
