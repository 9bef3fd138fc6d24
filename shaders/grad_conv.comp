#version 450
// Backward of a 2-D convolution over NHWC tensors (groups 1, f32):
// x [N, H, W, Cin], w [Cout, KH, KW, Cin], dy [N, Ho, Wo, Cout].
//
// DCR_CONV_DX (grad_conv_dx): dx[n, i, j, c] = Σ dy[n, oy, ox, o]·w[o, ky, kx, c]
// over the (ky, kx) whose output position oy = (i + pt − ky·dh)/sh,
// ox = (j + pl − kx·dw)/sw is integral and in range. One invocation per TP
// input pixels of a row and block of TC channels (a grid-stride loop).
//
// otherwise (grad_conv_dw): dw[o, ky, kx, c] = Σ_{n, oy, ox} dy[n, oy, ox, o]·x[n, iy, ix, c].
// One workgroup per (TO output channels, ky, kx, TC input channels); its
// lanes stride over the N·Ho output rows with TO×TC accumulators each and
// add them up in shared memory at the end. The workgroups with
// ky = kx = 0 and the first channel block also sum db[o] = Σ dy (flag bit 2).
layout(local_size_x_id = 0) in;

layout(constant_id = 3) const uint TO = 1; // output channels per lane (dw)
layout(constant_id = 4) const uint TC = 1; // input channels per lane
layout(constant_id = 5) const uint TP = 1; // input columns per lane (dx)

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) buffer O0 { float out0[]; }; // dx or dw
layout(std430, binding = 4) buffer O1 { float out1[]; }; // db (dw pass)

// flags: bit 0 accumulate into out0, bit 1 accumulate into out1, bit 2 write db
layout(push_constant) uniform P {
    uint N, H, W, Cin, Ho, Wo, Cout, KH, KW, SH, SW, DH, DW;
    int PT, PL;
    uint cblocks; // ceil(Cin / TC)
    uint oblocks; // ceil(Cout / TO) (dw)
    uint flags;
} p;

#ifdef DCR_CONV_DX

// A lane owns TP input columns j = r + sw·(q·TP + t), t < TP, of row
// i = ry + sh·a: columns of one residue r mod sw meet the same kernel
// columns kx at consecutive ox, so each weight load serves TP pixels. The
// residues (ry, r) vary slowest, so that neighbouring lanes take the same
// kernel taps (on a CPU device a SIMD vector runs the union of its lanes').
void main() {
    uint per_res = (p.W + p.SW - 1u) / p.SW; // columns of residue 0, the most
    uint qgroups = (per_res + TP - 1u) / TP;
    uint arows = (p.H + p.SH - 1u) / p.SH;   // rows of residue 0, the most
    uint items = p.SH * p.SW * p.N * arows * qgroups * p.cblocks;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint wstep = p.KH * p.KW * p.Cin;
    bool accum = (p.flags & 1u) != 0u;
    for (uint it = gl_GlobalInvocationID.x; it < items; it += stride) {
        uint cb = it % p.cblocks, t0 = it / p.cblocks;
        uint q = t0 % qgroups;
        t0 /= qgroups;
        uint a = t0 % arows;
        t0 /= arows;
        uint n = t0 % p.N;
        t0 /= p.N;
        uint r = t0 % p.SW, ry = t0 / p.SW;
        uint i = ry + p.SH * a;
        if (i >= p.H)
            continue;
        uint c0 = cb * TC;
        float acc[TP * TC];
        for (uint u = 0u; u < TP * TC; u++)
            acc[u] = 0.0;
        for (uint ky = 0u; ky < p.KH; ky++) {
            int ty = int(i) + p.PT - int(ky * p.DH);
            if (ty < 0 || ty % int(p.SH) != 0)
                continue;
            uint oy = uint(ty) / p.SH;
            if (oy >= p.Ho)
                continue;
            for (uint kx = 0u; kx < p.KW; kx++) {
                // tx = base + sw·(q·TP + t) must be a multiple of sw: base = sw·m
                int base = int(r) + p.PL - int(kx * p.DW);
                int m = base >= 0 ? base / int(p.SW) : -((-base + int(p.SW) - 1) / int(p.SW));
                if (base != m * int(p.SW))
                    continue;
                int ox0 = m + int(q * TP);
                uint dyrow = (n * p.Ho + oy) * p.Wo;
                uint wo = (ky * p.KW + kx) * p.Cin + c0;
                for (uint o = 0u; o < p.Cout; o++, wo += wstep) {
                    float wv[TC];
                    for (uint u = 0u; u < TC; u++)
                        wv[u] = c0 + u < p.Cin ? w[wo + u] : 0.0;
                    for (uint t = 0u; t < TP; t++) {
                        int ox = ox0 + int(t);
                        float g = ox >= 0 && ox < int(p.Wo) ? dy[(dyrow + uint(ox)) * p.Cout + o] : 0.0;
                        for (uint u = 0u; u < TC; u++)
                            acc[t * TC + u] += g * wv[u];
                    }
                }
            }
        }
        for (uint t = 0u; t < TP; t++) {
            uint j = r + p.SW * (q * TP + t);
            if (j >= p.W)
                continue;
            uint xo = ((n * p.H + i) * p.W + j) * p.Cin + c0;
            for (uint u = 0u; u < TC; u++)
                if (c0 + u < p.Cin)
                    out0[xo + u] = accum ? out0[xo + u] + acc[t * TC + u] : acc[t * TC + u];
        }
    }
}

#else

const uint NACC = TO * TC + TO; // dw tile, then db
shared float red[gl_WorkGroupSize.x * NACC];

void main() {
    uint lane = gl_LocalInvocationID.x;
    uint g = gl_WorkGroupID.x;
    uint cb = g % p.cblocks;
    uint t = g / p.cblocks;
    uint kx = t % p.KW;
    t /= p.KW;
    uint ky = t % p.KH;
    uint ob = t / p.KH;
    uint c0 = cb * TC, o0 = ob * TO;
    bool own_db = (p.flags & 4u) != 0u && cb == 0u && kx == 0u && ky == 0u;

    float acc[TO * TC];
    float dbacc[TO];
    for (uint u = 0u; u < TO * TC; u++)
        acc[u] = 0.0;
    for (uint v = 0u; v < TO; v++)
        dbacc[v] = 0.0;

    // lanes take whole output rows (n, oy); the columns ox whose input
    // column is inside the image are the same range for every row
    int offy = int(ky * p.DH) - p.PT, offx = int(kx * p.DW) - p.PL;
    int sw = int(p.SW);
    int lo = offx >= 0 ? 0 : (-offx + sw - 1) / sw;
    int hi = int(p.W) - 1 - offx < 0 ? 0 : min(int(p.Wo), (int(p.W) - 1 - offx) / sw + 1);
    uint rows = p.N * p.Ho;
    for (uint row = lane; row < rows; row += gl_WorkGroupSize.x) {
        uint oy = row % p.Ho, n = row / p.Ho;
        uint dyrow = row * p.Wo * p.Cout + o0;
        if (own_db)
            for (uint ox = 0u; ox < p.Wo; ox++)
                for (uint v = 0u; v < TO; v++)
                    dbacc[v] += o0 + v < p.Cout ? dy[dyrow + ox * p.Cout + v] : 0.0;
        int iy = int(oy * p.SH) + offy;
        if (iy < 0 || iy >= int(p.H))
            continue;
        uint xrow = (n * p.H + uint(iy)) * p.W;
        for (int ox = lo; ox < hi; ox++) {
            float gv[TO];
            uint dyo = dyrow + uint(ox) * p.Cout;
            for (uint v = 0u; v < TO; v++)
                gv[v] = o0 + v < p.Cout ? dy[dyo + v] : 0.0;
            uint xo = (xrow + uint(ox * sw + offx)) * p.Cin + c0;
            float xv[TC];
            for (uint u = 0u; u < TC; u++)
                xv[u] = c0 + u < p.Cin ? x[xo + u] : 0.0;
            for (uint v = 0u; v < TO; v++)
                for (uint u = 0u; u < TC; u++)
                    acc[v * TC + u] += gv[v] * xv[u];
        }
    }

    for (uint u = 0u; u < TO * TC; u++)
        red[lane * NACC + u] = acc[u];
    for (uint v = 0u; v < TO; v++)
        red[lane * NACC + TO * TC + v] = dbacc[v];
    barrier();
    for (uint a = lane; a < NACC; a += gl_WorkGroupSize.x) {
        float s = 0.0;
        for (uint l = 0u; l < gl_WorkGroupSize.x; l++)
            s += red[l * NACC + a];
        if (a < TO * TC) {
            uint v = a / TC, u = a % TC;
            if (o0 + v < p.Cout && c0 + u < p.Cin) {
                uint wi = ((o0 + v) * p.KH + ky) * p.KW * p.Cin + kx * p.Cin + c0 + u;
                out0[wi] = (p.flags & 1u) != 0u ? out0[wi] + s : s;
            }
        } else if (own_db) {
            uint v = a - TO * TC;
            if (o0 + v < p.Cout)
                out1[o0 + v] = (p.flags & 2u) != 0u ? out1[o0 + v] + s : s;
        }
    }
}

#endif
