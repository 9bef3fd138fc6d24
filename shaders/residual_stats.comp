#version 450
// Residual statistics of an 8-bit RGB image at its native resolution, summed
// per pixel phase (row mod 24, column mod 24) over a window: the raw
// material of the forensic feature (engine/dcr-op-forensic.h has the exact
// definition). Resampling and neural upscalers leave traces that repeat with
// the scale factor (2, 3, 4) and JPEG with its 8×8 blocks; 24 is their common
// period, so one pass keeps every one of them.
//
// One invocation per phase; its three channels (luma, R−G, B−G) ride in the
// lanes of vec3s, so each pixel is fetched once for all of them. Workgroup z
// is the image of a batch of same-sized images stored one after another
// (img_bytes apart), each with its accumulators acc_stride apart: one
// dispatch for the batch rather than one an image (on lavapipe each dispatch
// costs about as much as a small image's work).
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Img { uint img[]; };
layout(std430, binding = 1) writeonly buffer Acc { float acc[]; };

layout(push_constant) uniform P {
    uint W;          // image width (row stride, pixels)
    uint top, left;  // window origin
    uint nh, nw;     // anchor rows/columns: multiples of PERIOD
    uint out0;       // first element of the first image's accumulators in the bound range
    uint img_bytes;  // bytes from one image to the next
    uint acc_stride; // accumulators from one image to the next
} p;

const uint PERIOD = 24, MARGIN = 6, PHASES = PERIOD * PERIOD, NACC = 13, LAGS = 4;

vec3 to_channels(uint v) {
    vec3 rgb = vec3(float(v & 0xff), float((v >> 8) & 0xff), float((v >> 16) & 0xff));
    return vec3(dot(rgb, vec3(0.299, 0.587, 0.114)), rgb.r - rgb.g, rgb.b - rgb.g);
}

// the 3 bytes starting at bit s (0, 8, 16 or 24) of word w, in the low 24
// bits (the next word is read only when the bytes reach into it)
uint word_at(uint w, uint s) {
    uint lo = img[w] >> s;
    return s > 8 ? lo | (img[w + 1] << (32 - s)) : lo;
}

vec3 channels(uint y, uint x) {
    uint o = gl_WorkGroupID.z * p.img_bytes + (y * p.W + x) * 3;
    return to_channels(word_at(o >> 2, (o & 3) * 8));
}

void main() {
    uint ph = gl_GlobalInvocationID.x;
    if (ph >= PHASES)
        return;
    uint pi = ph / PERIOD, pj = ph - pi * PERIOD;
    vec3 s[NACC];
    [[unroll]] for (uint k = 0; k < NACC; k++)
        s[k] = vec3(0.0);
    for (uint a = pi; a < p.nh; a += PERIOD) {
        uint i = p.top + MARGIN + a;
        for (uint b = pj; b < p.nw; b += PERIOD) {
            uint j = p.left + MARGIN + b;
            // row[k] = x(i, j − 1 + k), col[k] = x(i − 1 + k, j)
            vec3 row[LAGS + 3], col[LAGS + 3];
            {
                // the row's 21 consecutive bytes, as 6 aligned words: a memory
                // access costs far more than picking bytes apart on a CPU device
                uint o = gl_WorkGroupID.z * p.img_bytes + (i * p.W + j - 1) * 3, w0 = o >> 2, sh = (o & 3) * 8;
                uint raw[7], a[6];
                [[unroll]] for (uint k = 0; k < 7; k++)
                    raw[k] = img[w0 + k];
                [[unroll]] for (uint k = 0; k < 6; k++)
                    a[k] = sh == 0 ? raw[k] : (raw[k] >> sh) | (raw[k + 1] << (32 - sh));
                [[unroll]] for (uint k = 0; k < LAGS + 3; k++) {
                    uint b = 3 * k, wi = b >> 2, bs = (b & 3) * 8;
                    uint v = bs == 0 ? a[wi] : (a[wi] >> bs) | (a[wi + 1] << (32 - bs));
                    row[k] = to_channels(v);
                }
            }
            col[1] = row[1];
            col[0] = channels(i - 1, j);
            [[unroll]] for (uint k = 2; k < LAGS + 3; k++)
                col[k] = channels(i - 1 + k, j);
            vec3 h0 = row[0] - 2.0 * row[1] + row[2];
            vec3 v0 = col[0] - 2.0 * col[1] + col[2];
            s[0] += h0 * h0;
            s[1] += v0 * v0;
            s[2] += abs(h0);
            s[3] += abs(v0);
            [[unroll]] for (uint l = 1; l <= LAGS; l++) {
                s[3 + l] += h0 * (row[l] - 2.0 * row[l + 1] + row[l + 2]);
                s[7 + l] += v0 * (col[l] - 2.0 * col[l + 1] + col[l + 2]);
            }
            s[12] += h0 * v0;
        }
    }
    [[unroll]] for (uint c = 0; c < 3; c++)
        [[unroll]] for (uint k = 0; k < NACC; k++)
            acc[p.out0 + gl_WorkGroupID.z * p.acc_stride + (c * NACC + k) * PHASES + ph] = s[k][c];
}
