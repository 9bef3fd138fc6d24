#version 450
// Image preprocessing in one pass: u8 RGB interleaved [H, W, 3] → resize
// (bilinear; with ANTIALIAS, the triangle filter widened by the scale factor
// when downscaling, as PIL and torch's antialias=True) → crop window → (v /
// divisor − mean) / std → slice n of an NHWC [N, OH, OW, 3] float tensor.
// One invocation per output pixel; the separable taps are computed on the fly.
// Workgroup z is image z of a batch of same-sized images stored one after
// another (img_bytes apart), written to slices n, n + 1, …
#extension GL_EXT_control_flow_attributes : require
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#else
#define T float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 3) const bool ANTIALIAS = true;
// WALK > 0 (antialiased, both scales ≤ 1.5, so at most 4 taps an axis):
// invocation x computes output column x of WALK output rows (workgroup y:
// the run), walking down: the rows of horizontal taps it has filtered stay
// in registers while the next output row still needs them (at 256 → 224
// an output row needs 1.14 new input rows, not 3), and the column's tap
// weights are computed once. Each input row's 4 pixels are 12 bytes, read
// as 4 words.
layout(constant_id = 4) const uint WALK = 0;

// the image as 32-bit words: no 8-bit storage needed (the op pads the buffer to 4 bytes)
layout(std430, binding = 0) readonly buffer Img { uint img[]; };
layout(std430, binding = 1) writeonly buffer Y { T y[]; };

layout(push_constant) uniform P {
    uint last_word;      // index of the image's last word (WALK)
    uint H, W;           // input image
    uint RH, RW;         // resized size (before the crop)
    uint top, left;      // crop window origin in the resized image
    uint OH, OW;         // output size
    uint out0;           // first output element in the bound range (the batch slice)
    float scale_y, scale_x; // input / resized
    float divisor;
    float mean0, mean1, mean2;
    float std0, std1, std2;
    uint img_bytes;      // bytes from one input image to the next
} p;

// one pixel's 3 bytes: one 32-bit load, two when they straddle a word
vec3 pixel(uint iy, uint ix) {
    uint o = gl_WorkGroupID.z * p.img_bytes + (iy * p.W + ix) * 3, s = (o & 3) * 8;
    uint v = img[o >> 2] >> s;
    if (s > 8)
        v |= img[(o >> 2) + 1] << (32 - s);
    return vec3(float(v & 0xff), float((v >> 8) & 0xff), float((v >> 16) & 0xff));
}

// Triangle-filter taps of output index i along an axis (torch's
// _compute_indices_weights_aa, PIL's precompute_coeffs): [lo, lo + n).
void aa_span(uint i, float scale, uint size, out int lo, out int n, out float support, out float center,
             out float invscale) {
    support = scale >= 1.0 ? scale : 1.0;
    invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    center = scale * (float(i) + 0.5);
    lo = max(int(center - support + 0.5), 0);
    n = min(int(center + support + 0.5), int(size)) - lo;
}

float tri(float x) {
    return max(1.0 - abs(x), 0.0);
}

// The horizontal taps of input row r: pixels x0 … x0 + 3 (columns past
// the image clamp to the last word; their weights are 0).
vec3 hrow(uint r, uint x0, vec4 wx) {
    uint o = gl_WorkGroupID.z * p.img_bytes + (r * p.W + x0) * 3, i = o >> 2, sh = (o & 3) * 8;
    uint w[4], a[3];
    [[unroll]] for (uint t = 0; t < 4; t++)
        w[t] = img[min(i + t, p.last_word)];
    [[unroll]] for (uint t = 0; t < 3; t++)
        a[t] = sh == 0 ? w[t] : (w[t] >> sh) | (w[t + 1] << (32 - sh));
    vec3 v = vec3(0.0);
    [[unroll]] for (uint j = 0; j < 4; j++) {
        vec3 px;
        [[unroll]] for (uint c = 0; c < 3; c++) {
            uint b = 3 * j + c;
            px[c] = float((a[b >> 2] >> ((b & 3) * 8)) & 0xff);
        }
        v += wx[j] * px;
    }
    return v;
}

void store(uint ox, uint oy, vec3 v) {
    vec3 mean = vec3(p.mean0, p.mean1, p.mean2), sd = vec3(p.std0, p.std1, p.std2);
    vec3 o = (v / p.divisor - mean) / sd;
    uint base = p.out0 + ((gl_WorkGroupID.z * p.OH + oy) * p.OW + ox) * 3;
    y[base] = T(o.x);
    y[base + 1] = T(o.y);
    y[base + 2] = T(o.z);
}

void walk() {
    uint ox = gl_GlobalInvocationID.x;
    if (ox >= p.OW)
        return;
    int x0, nx;
    float sx, cx, ix;
    aa_span(ox + p.left, p.scale_x, p.W, x0, nx, sx, cx, ix);
    vec4 wx = vec4(0.0);
    [[unroll]] for (int j = 0; j < 4; j++)
        wx[j] = j < nx ? tri((float(j + x0) - cx + 0.5) * ix) : 0.0;
    float tx = (wx.x + wx.y) + (wx.z + wx.w);
    // hw[k]: the filtered input row base + k, valid for k < have
    vec3 hw[4];
    int base = 0, have = 0;
    uint oy1 = min((gl_WorkGroupID.y + 1) * WALK, p.OH);
    for (uint oy = gl_WorkGroupID.y * WALK; oy < oy1; oy++) {
        int y0, ny;
        float sy, cy, iy;
        aa_span(oy + p.top, p.scale_y, p.H, y0, ny, sy, cy, iy);
        // drop the rows above y0 (it never moves up)
        if (y0 - base >= have)
            have = 0;
        for (; base < y0 && have > 0; base++, have--) {
            hw[0] = hw[1];
            hw[1] = hw[2];
            hw[2] = hw[3];
        }
        base = y0;
        [[unroll]] for (int k = 0; k < 4; k++)
            if (k >= have && k < ny)
                hw[k] = hrow(uint(y0 + k), uint(x0), wx);
        have = max(have, ny);
        vec3 v = vec3(0.0);
        float ty = 0.0;
        [[unroll]] for (int k = 0; k < 4; k++) {
            float wy = k < ny ? tri((float(k + y0) - cy + 0.5) * iy) : 0.0;
            ty += wy;
            v += wy * hw[k];
        }
        store(ox, oy, v / (ty * tx));
    }
}

void main() {
    if (WALK > 0) {
        walk();
        return;
    }
    uint ox = gl_GlobalInvocationID.x, oy = gl_GlobalInvocationID.y;
    if (ox >= p.OW || oy >= p.OH)
        return;
    uint ry = oy + p.top, rx = ox + p.left;
    vec3 v = vec3(0.0);
    if (ANTIALIAS) {
        int y0, ny, x0, nx;
        float sy, cy, iy, sx, cx, ix;
        aa_span(ry, p.scale_y, p.H, y0, ny, sy, cy, iy);
        aa_span(rx, p.scale_x, p.W, x0, nx, sx, cx, ix);
        float ty = 0.0, tx = 0.0;
        for (int j = 0; j < nx; j++)
            tx += tri((float(j + x0) - cx + 0.5) * ix);
        // one weight per tap and a load per pixel: computing a weight per
        // byte cost several times the memory accesses it saved
        for (int k = 0; k < ny; k++) {
            float wy = tri((float(k + y0) - cy + 0.5) * iy);
            ty += wy;
            if (wy == 0.0)
                continue;
            vec3 row = vec3(0.0);
            for (int j = 0; j < nx; j++)
                row += tri((float(j + x0) - cx + 0.5) * ix) * pixel(uint(k + y0), uint(j + x0));
            v += wy * row;
        }
        v /= ty * tx;
    } else {
        // align_corners=False bilinear: source = scale·(i + 0.5) − 0.5, clamped at 0
        float sy = max(p.scale_y * (float(ry) + 0.5) - 0.5, 0.0);
        float sx = max(p.scale_x * (float(rx) + 0.5) - 0.5, 0.0);
        uint y0 = uint(sy), x0 = uint(sx);
        uint y1 = min(y0 + 1, p.H - 1), x1 = min(x0 + 1, p.W - 1);
        float ly = sy - float(y0), lx = sx - float(x0);
        v = (1.0 - ly) * ((1.0 - lx) * pixel(y0, x0) + lx * pixel(y0, x1))
            + ly * ((1.0 - lx) * pixel(y1, x0) + lx * pixel(y1, x1));
    }
    store(ox, oy, v);
}
