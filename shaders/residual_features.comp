#version 450
// The forensic feature from the per-phase residual statistics of
// residual_stats.comp (definition: engine/dcr-op-forensic.h): per channel,
// the residual level and shape, its correlations with neighbours at lags
// 1–4, and how residual energy and neighbour correlation vary with the pixel
// phase at periods 2, 3, 4 and 8 (2-D DFT magnitudes of the folded phase
// grids, which do not depend on where the window starts). One invocation
// per channel of one image; written into a row of the feature tensor.
#extension GL_EXT_control_flow_attributes : require
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#else
#define T float
#endif

layout(local_size_x = 4) in;

layout(std430, binding = 0) readonly buffer Acc { float acc[]; };
layout(std430, binding = 1) writeonly buffer Y { T y[]; };

layout(push_constant) uniform P {
    uint in0;          // first accumulator of the image in the bound range
    uint out0;         // first output element (the feature row's forensic column)
    float n;           // anchors per phase
    float sc_level, sc_shape, sc_corr, sc_energy, sc_pcorr;
} p;

const uint PERIOD = 24, PHASES = PERIOD * PERIOD, NACC = 13, PER_CHANNEL = 110;
const float EPS_LEVEL = 1e-2, EPS_DIV = 1e-6, EPS_ENERGY = 1e-3;
const float TWO_PI = 6.28318530717958647692;

float a(uint c, uint k, uint ph) {
    return acc[p.in0 + (c * NACC + k) * PHASES + ph];
}

uint o;
void put(float v) {
    y[o++] = T(v);
}

void main() {
    uint c = gl_GlobalInvocationID.x;
    if (c >= 3)
        return;
    o = p.out0 + c * PER_CHANNEL;
    float S[NACC];
    [[unroll]] for (uint k = 0; k < NACC; k++)
        S[k] = 0.0;
    for (uint ph = 0; ph < PHASES; ph++)
        [[unroll]] for (uint k = 0; k < NACC; k++)
            S[k] += a(c, k, ph);
    float N = p.n * float(PHASES);
    put(log((S[0] + S[1]) / N + EPS_LEVEL) * p.sc_level);
    put(S[2] * S[2] / (N * S[0] + EPS_DIV) * p.sc_shape);
    put(S[3] * S[3] / (N * S[1] + EPS_DIV) * p.sc_shape);
    [[unroll]] for (uint l = 0; l < 4; l++)
        put(S[4 + l] / (S[0] + EPS_DIV) * p.sc_corr);
    [[unroll]] for (uint l = 0; l < 4; l++)
        put(S[8 + l] / (S[1] + EPS_DIV) * p.sc_corr);
    put(S[12] / sqrt(S[0] * S[1] + EPS_DIV) * p.sc_corr);

    const uint periods[4] = uint[4](2, 3, 4, 8);
    [[unroll]] for (uint pi = 0; pi < 4; pi++) {
        uint q = periods[pi];
        float e[64], r[64];
        for (uint i = 0; i < q * q; i++) {
            e[i] = 0.0;
            r[i] = 0.0;
        }
        for (uint ph = 0; ph < PHASES; ph++) {
            uint gi = ((ph / PERIOD) % q) * q + (ph % PERIOD) % q;
            e[gi] += a(c, 0, ph) + a(c, 1, ph);
            r[gi] += a(c, 4, ph) + a(c, 8, ph);
        }
        float cells = float(PHASES / (q * q)), mean = 0.0;
        for (uint i = 0; i < q * q; i++) {
            e[i] += EPS_ENERGY * p.n * cells;
            r[i] /= e[i];
            mean += e[i];
        }
        mean /= float(q * q);
        for (uint i = 0; i < q * q; i++)
            e[i] /= mean;
        // one of each conjugate pair of the non-DC frequencies, in (u, v) order
        for (uint u = 0; u < q; u++)
            for (uint v = 0; v < q; v++) {
                uint cu = (q - u) % q, cv = (q - v) % q;
                if ((u == 0 && v == 0) || cu < u || (cu == u && cv < v))
                    continue;
                vec2 E = vec2(0.0), R = vec2(0.0);
                for (uint i = 0; i < q; i++)
                    for (uint j = 0; j < q; j++) {
                        float ang = TWO_PI * float((u * i + v * j) % q) / float(q);
                        vec2 w = vec2(cos(ang), -sin(ang));
                        E += e[i * q + j] * w;
                        R += r[i * q + j] * w;
                    }
                float inv = 1.0 / float(q * q);
                put(length(E) * inv * p.sc_energy);
                put(length(R) * inv * p.sc_pcorr);
            }
    }
}
