#version 450
// The forensic feature from the per-phase residual statistics of
// residual_stats.comp (definition: engine/dcr-op-forensic.h): per channel,
// the residual level and shape, its correlations with neighbours at lags
// 1–4, and how residual energy and neighbour correlation vary with the pixel
// phase at periods 2, 3, 4 and 8 (2-D DFT magnitudes of the folded phase
// grids, which do not depend on where the window starts).
//
// One workgroup of 64 invocations per channel (workgroup id x = channel) and
// image (workgroup id z: the images' accumulators in_stride apart, their
// feature rows out_stride apart), written into a row of the feature tensor. Invocation l = (ly, lx) takes
// the 9 phases (ly + 8m, lx + 8n), which all fall in period-8 cell (ly, lx)
// and in 9 different period-3 cells; its partial sums go to shared memory and
// are summed in fixed order (the grids of periods 2 and 4 from those of 8);
// the 2-D DFTs of the normalised grids go along rows, one (period, row,
// frequency) per invocation, then along columns, one of the 49 frequencies
// per invocation (twiddles from a shared table). No private array is
// indexed by a varying value and nothing is divided by a varying integer:
// on lavapipe each such access or division, like each load from a
// per-invocation address, is a loop over the lanes.
#extension GL_EXT_control_flow_attributes : require
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#else
#define T float
#endif

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Acc { float acc[]; };
layout(std430, binding = 1) writeonly buffer Y { T y[]; };

layout(push_constant) uniform P {
    uint in0;          // first accumulator of the image in the bound range
    uint out0;         // first output element (the feature row's forensic column)
    float n;           // anchors per phase
    float sc_level, sc_shape, sc_corr, sc_energy, sc_pcorr;
    uint in_stride, out_stride;  // from one image to the next
} p;

const uint PERIOD = 24, PHASES = PERIOD * PERIOD, NACC = 13, PER_CHANNEL = 110, NSTAT = 12, NFREQ = 49;
const float EPS_LEVEL = 1e-2, EPS_DIV = 1e-6, EPS_ENERGY = 1e-3;
const float TWO_PI = 6.28318530717958647692;

// rows of 64 partial sums: the 13 accumulators, the period-3 cells of
// energy and correlation, the period-8 cells of both
const uint R_E3 = NACC, R_R3 = R_E3 + 9, R_E8 = R_R3 + 9, R_R8 = R_E8 + 1, ROWS = R_R8 + 1;
shared float part[ROWS * 64];
shared float sum_acc[NACC];
// the grids of periods 2, 3, 4, 8 one after the other, and their twiddles
const uint CELLS = 4 + 9 + 16 + 64, TWIDDLES = 2 + 3 + 4 + 8;
shared float ge[CELLS], gr[CELLS];
shared vec2 tw[TWIDDLES];
shared vec2 xe[CELLS], xr[CELLS];  // the grids transformed along their rows

float a(uint c, uint k, uint ph) {
    return acc[p.in0 + gl_WorkGroupID.z * p.in_stride + (c * NACC + k) * PHASES + ph];
}

uint period(uint pi) {
    return pi == 3 ? 8 : pi + 2;
}
// first cell and first twiddle of period index pi
uint cell0(uint pi) {
    return pi == 0 ? 0 : pi == 1 ? 4 : pi == 2 ? 13 : 29;
}
uint twiddle0(uint pi) {
    return pi == 0 ? 0 : pi == 1 ? 2 : pi == 2 ? 5 : 9;
}

void main() {
    uint c = gl_WorkGroupID.x, l = gl_LocalInvocationID.x;
    uint ly = l / 8, lx = l % 8;

    // partial sums over this invocation's 9 phases
    {
        float s[NACC];
        [[unroll]] for (uint k = 0; k < NACC; k++)
            s[k] = 0.0;
        float e8 = 0.0, r8 = 0.0;
        [[unroll]] for (uint m = 0; m < 3; m++)
            [[unroll]] for (uint n = 0; n < 3; n++) {
                uint py = ly + 8 * m, px = lx + 8 * n, ph = py * PERIOD + px;
                float v[NACC];
                [[unroll]] for (uint k = 0; k < NACC; k++) {
                    v[k] = a(c, k, ph);
                    s[k] += v[k];
                }
                float ev = v[0] + v[1], rv = v[4] + v[8];
                e8 += ev;
                r8 += rv;
                uint cell3 = (py % 3) * 3 + px % 3;
                part[(R_E3 + cell3) * 64 + l] = ev;
                part[(R_R3 + cell3) * 64 + l] = rv;
            }
        [[unroll]] for (uint k = 0; k < NACC; k++)
            part[k * 64 + l] = s[k];
        part[R_E8 * 64 + l] = e8;
        part[R_R8 * 64 + l] = r8;
    }
    barrier();

    // the sums: invocation l < 31 adds up row l; 16 more the period-4
    // cells, 4 more the period-2 cells; every one copies its period-8 cell
    if (l < R_E8) {
        float s = 0.0;
        for (uint i = 0; i < 64; i++)
            s += part[l * 64 + i];
        if (l < NACC)
            sum_acc[l] = s;
        else if (l < R_R3)
            ge[4 + l - R_E3] = s;
        else
            gr[4 + l - R_R3] = s;
    } else if (l < R_E8 + 16 + 4) {
        // q = 4 or 2 (shifts: lavapipe divides a vector lane by lane)
        bool four = l < R_E8 + 16;
        uint q = four ? 4 : 2, cell = four ? l - R_E8 : l - R_E8 - 16, span = four ? 2 : 4;
        uint ci = four ? cell >> 2 : cell >> 1, cj = cell & (q - 1);
        float e = 0.0, r = 0.0;
        for (uint i = 0; i < span; i++)
            for (uint j = 0; j < span; j++) {
                uint c8 = (ci + q * i) * 8 + cj + q * j;
                e += part[R_E8 * 64 + c8];
                r += part[R_R8 * 64 + c8];
            }
        uint at = q == 4 ? 13 + cell : cell;
        ge[at] = e;
        gr[at] = r;
    }
    ge[29 + l] = part[R_E8 * 64 + l];
    gr[29 + l] = part[R_R8 * 64 + l];
    if (l < TWIDDLES) {
        uint pi = l < 2 ? 0 : l < 5 ? 1 : l < 9 ? 2 : 3, k = l - twiddle0(pi);
        float ang = TWO_PI * float(k) / float(period(pi));
        tw[l] = vec2(cos(ang), -sin(ang));
    }
    barrier();

    uint o = p.out0 + gl_WorkGroupID.z * p.out_stride + c * PER_CHANNEL;

    // the 2-D DFTs in two passes: along rows, X[i][v] = Σ_j g[i][j]·w^(vj),
    // every (period, i, v) (those of period 8 first, so that the invocations
    // of one pass run loops of one length), then along columns, below. The
    // grids are normalised as they are read: energy e + ε relative to the
    // mean over the cells, whose sum is the channel's energy sum (S0 + S1)
    // plus ε per cell; correlation r / (e + ε).
    float s01 = sum_acc[0] + sum_acc[1];
    for (uint item = l; item < CELLS; item += 64) {
        uint pi = item < 64 ? 3 : item < 64 + 4 ? 0 : item < 64 + 13 ? 1 : 2;
        uint q = period(pi), g0 = cell0(pi), t0 = twiddle0(pi), cell = item < 64 ? item : item - 64 - g0;
        // cell / q without a division: q = 3 → (cell · 11) >> 5 for cell < 9
        uint i = q == 3 ? (cell * 11) >> 5 : cell >> (q == 2 ? 1 : q == 4 ? 2 : 3), v = cell - i * q;
        float qq = float(q * q), eps = EPS_ENERGY * p.n * (float(PHASES) / qq);
        float mean = (s01 + qq * eps) / qq;
        vec2 E = vec2(0.0), R = vec2(0.0);
        for (uint j = 0, k = 0; j < q; j++) {  // k = v·j mod q
            vec2 w = tw[t0 + k];
            float e = ge[g0 + i * q + j] + eps;
            E += (e / mean) * w;
            R += (gr[g0 + i * q + j] / e) * w;
            k += v;
            k = k >= q ? k - q : k;
        }
        xe[g0 + cell] = E;
        xr[g0 + cell] = R;
    }
    barrier();

    // invocation f < 49: frequency f of one of each conjugate pair of the
    // non-DC frequencies, periods in order and (u, v) in order within one
    if (l < NFREQ) {
        uint f = 0, pi = 0, u = 0, v = 0;
        for (uint qi = 0; qi < 4; qi++) {
            uint q = period(qi);
            for (uint uu = 0; uu < q; uu++)
                for (uint vv = 0; vv < q; vv++) {
                    uint cu = uu == 0 ? 0 : q - uu, cv = vv == 0 ? 0 : q - vv;
                    if ((uu == 0 && vv == 0) || cu < uu || (cu == uu && cv < vv))
                        continue;
                    if (f == l) {
                        pi = qi;
                        u = uu;
                        v = vv;
                    }
                    f++;
                }
        }
        uint q = period(pi), g0 = cell0(pi), t0 = twiddle0(pi);
        vec2 E = vec2(0.0), R = vec2(0.0);
        for (uint i = 0, k = 0; i < q; i++) {  // k = u·i mod q
            vec2 w = tw[t0 + k], xei = xe[g0 + i * q + v], xri = xr[g0 + i * q + v];
            E += vec2(xei.x * w.x - xei.y * w.y, xei.x * w.y + xei.y * w.x);
            R += vec2(xri.x * w.x - xri.y * w.y, xri.x * w.y + xri.y * w.x);
            k += u;
            k = k >= q ? k - q : k;
        }
        float inv = 1.0 / float(q * q);
        y[o + NSTAT + 2 * l] = T(length(E) * inv * p.sc_energy);
        y[o + NSTAT + 2 * l + 1] = T(length(R) * inv * p.sc_pcorr);
    } else if (l == 63) {
        // the level, shape and correlation values
        float S[NACC];
        [[unroll]] for (uint k = 0; k < NACC; k++)
            S[k] = sum_acc[k];
        float N = p.n * float(PHASES);
        y[o] = T(log((S[0] + S[1]) / N + EPS_LEVEL) * p.sc_level);
        y[o + 1] = T(S[2] * S[2] / (N * S[0] + EPS_DIV) * p.sc_shape);
        y[o + 2] = T(S[3] * S[3] / (N * S[1] + EPS_DIV) * p.sc_shape);
        [[unroll]] for (uint k = 0; k < 4; k++)
            y[o + 3 + k] = T(S[4 + k] / (S[0] + EPS_DIV) * p.sc_corr);
        [[unroll]] for (uint k = 0; k < 4; k++)
            y[o + 7 + k] = T(S[8 + k] / (S[1] + EPS_DIV) * p.sc_corr);
        y[o + 11] = T(S[12] / sqrt(S[0] * S[1] + EPS_DIV) * p.sc_corr);
    }
}
