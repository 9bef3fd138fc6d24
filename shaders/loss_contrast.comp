#version 450
// The per-row and final passes of the contrastive losses; the logit and
// gradient matrix products around them are dcr_op_gemm calls. The scratch
// buffer W holds a [rows, cols] logit matrix, then per-row slots.
//   STAGE 0 (one subgroup per row): softmax statistics and the row's loss;
//     SupCon (MODE 0): W_ij = z_i·z_j/τ becomes ∂L/∂W_ij (grad_scale folded
//       in), so dz = (W + Wᵀ)·z/τ;
//     InfoNCE (MODE 1): W_ij = q_i·queue_j/τ becomes p_ij, and the positive
//       logit q_i·k⁺_i/τ is computed here; its probability goes to the
//       positives slot.
//   STAGE 1 (one invocation per (row, channel)): InfoNCE's k⁺ terms of dq
//     and dk; the first invocation averages the row losses into loss[0].
// SupCon is Khosla et al.'s L_out as in the official SupConLoss: the anchor
// itself is left out of the denominator, anchors without a positive
// contribute 0 and still count in the mean over all anchors.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_ballot : require

layout(local_size_x_id = 0, local_size_y_id = 1) in;

layout(constant_id = 3) const uint MODE = 0;
layout(constant_id = 4) const uint STAGE = 0;

layout(std430, binding = 0) readonly buffer A { float a[]; };     // z or q [rows, d]
layout(std430, binding = 1) readonly buffer KP { float kpos[]; }; // k⁺ [rows, d]
layout(std430, binding = 2) readonly buffer LB { int labels[]; };
layout(std430, binding = 3) buffer W { float w[]; };
layout(std430, binding = 4) buffer DA { float da[]; };
layout(std430, binding = 5) buffer DB { float db[]; };
layout(std430, binding = 6) buffer Loss { float loss[]; };
// loss_scale: SupCon's τ/base_τ; off_pos, off_loss: the per-row slots in W;
// flags (InfoNCE's final stage): bit 0 write dq, bit 1 dq already holds the
// queue term, bit 2 write dk
layout(push_constant) uniform P {
    uint rows; uint d; uint cols;
    float inv_temp; float loss_scale; float grad_scale;
    uint off_pos; uint off_loss; uint flags;
} p;

void rows_stage() {
    uint lane = gl_SubgroupInvocationID;
    uint lanes = subgroupBallotBitCount(subgroupBallot(true));
    uint stride = gl_NumWorkGroups.x * gl_NumSubgroups;
    for (uint i = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID; i < p.rows; i += stride) {
        uint base = i * p.cols;
        float l0 = 0.0, m = -1.0 / 0.0;
        if (MODE == 1u) {
            for (uint c = lane; c < p.d; c += lanes)
                l0 += a[i * p.d + c] * kpos[i * p.d + c];
            l0 = subgroupAdd(l0) * p.inv_temp;
            m = l0;
        }
        for (uint j = lane; j < p.cols; j += lanes)
            if (MODE == 1u || j != i)
                m = max(m, w[base + j]);
        m = subgroupMax(m);

        int yi = MODE == 0u ? labels[i] : 0;
        vec3 s = vec3(0.0); // Σ e^(w − m), positives, Σ w over positives
        for (uint j = lane; j < p.cols; j += lanes) {
            if (MODE == 0u && j == i)
                continue;
            float wj = w[base + j];
            s.x += exp(wj - m);
            if (MODE == 0u && labels[j] == yi)
                s.yz += vec2(1.0, wj);
        }
        s = subgroupAdd(s);
        if (MODE == 1u)
            s.x += exp(l0 - m);
        // only a SupCon anchor alone in its batch has nothing to sum (s.x = 0),
        // and it has no positive either
        float lse = m + log(max(s.x, 1e-38));

        if (MODE == 0u) {
            bool any = s.y > 0.0;
            float inv_pos = any ? 1.0 / s.y : 0.0;
            float g = p.grad_scale * p.loss_scale / float(p.rows);
            for (uint j = lane; j < p.cols; j += lanes) {
                float v = 0.0;
                if (any && j != i)
                    v = g * (exp(w[base + j] - lse) - (labels[j] == yi ? inv_pos : 0.0));
                w[base + j] = v;
            }
            if (subgroupElect())
                w[p.off_loss + i] = any ? -p.loss_scale * (s.z * inv_pos - lse) : 0.0;
        } else {
            for (uint j = lane; j < p.cols; j += lanes)
                w[base + j] = exp(w[base + j] - lse);
            if (subgroupElect()) {
                w[p.off_pos + i] = exp(l0 - lse);
                w[p.off_loss + i] = lse - l0;
            }
        }
    }
}

void final_stage() {
    uint c = gl_GlobalInvocationID.x, i = gl_GlobalInvocationID.y;
    if (c == 0u && i == 0u) {
        float s = 0.0;
        for (uint r = 0; r < p.rows; r++)
            s += w[p.off_loss + r];
        loss[0] = s / float(p.rows);
    }
    if (MODE != 1u || i >= p.rows || c >= p.d)
        return;
    float k = p.inv_temp * p.grad_scale / float(p.rows);
    float p0m1 = w[p.off_pos + i] - 1.0;
    uint idx = i * p.d + c;
    if ((p.flags & 1u) != 0u) {
        float g = k * p0m1 * kpos[idx];
        da[idx] = (p.flags & 2u) != 0u ? da[idx] + g : g;
    }
    if ((p.flags & 4u) != 0u)
        db[idx] = k * p0m1 * a[idx];
}

void main() {
    if (STAGE == 0u)
        rows_stage();
    else
        final_stage();
}
