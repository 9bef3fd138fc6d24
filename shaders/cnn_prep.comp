#version 450
// The forensic CNN's fixed preprocessing (definition: engine/dcr-cnn.h):
// q = p − the mean of p over the 5 × 5 box around each pixel, p = x / 32,
// valid positions only, of the window (top, left, h, w) of n 8-bit RGB
// images of H × W pixels stored back to back (bytes, read as words).
//
// One workgroup per tile of 16 output rows × 64 output columns of one image
// (workgroup x: the column tile; y: the image's row tiles one after
// another, strided when there are more than the dispatch holds). It first
// copies the tile's 20 × 68 pixels into shared memory, packed RGB, two
// buffer words a pixel; then invocation x walks down output column x with
// the 5-wide horizontal sums of the last five rows in registers. The sums
// are exact integers, so q = (25·centre − Σ) / 800 has one rounding. (On
// lavapipe every buffer and shared-memory access is the cost: 75 byte
// loads per output pixel took 4× the time of this.)
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Img { uint img[]; };
layout(std430, binding = 1) writeonly buffer Q { float q[]; };

layout(push_constant) uniform P {
    uint H, W;        // image size
    uint top, left;   // window origin
    uint oh, ow;      // output rows and columns (h − 4, w − 4)
    uint tiles;       // n · row tiles per image
} p;

const uint TW = 64, TH = 16, RW = TW + 4, RH = TH + 4;

shared uint px[RH * RW];

ivec3 unpack(uint v) {
    return ivec3(v & 0xffu, (v >> 8) & 0xffu, v >> 16);
}

ivec3 hsum(uint r, uint x) {
    uint o = r * RW + x;
    return unpack(px[o]) + unpack(px[o + 1u]) + unpack(px[o + 2u]) + unpack(px[o + 3u]) + unpack(px[o + 4u]);
}

void main() {
    uint x = gl_LocalInvocationID.x, j0 = gl_WorkGroupID.x * TW;
    uint tpi = (p.oh + TH - 1) / TH;
    // the region's valid columns
    uint cols = min(RW, p.ow + 4 - j0);
    for (uint tile = gl_WorkGroupID.y; tile < p.tiles; tile += gl_NumWorkGroups.y) {
        uint im = tile / tpi, i0 = (tile % tpi) * TH;
        uint rows = min(RH, p.oh + 4 - i0);
        uint base = im * p.H * p.W * 3u + ((p.top + i0) * p.W + p.left + j0) * 3u;
        barrier();
        for (uint r = 0; r < rows; r++)
            for (uint c = x; c < cols; c += TW) {
                uint o = base + (r * p.W + c) * 3u, i = o >> 2, s = (o & 3u) * 8u;
                uint v = img[i] >> s;
                if (s > 8u)
                    v |= img[i + 1u] << (32u - s);
                px[r * RW + c] = v & 0xffffffu;
            }
        barrier();
        uint j = j0 + x;
        if (j < p.ow) {
            ivec3 h0 = hsum(0u, x), h1 = hsum(1u, x), h2 = hsum(2u, x), h3 = hsum(3u, x);
            for (uint i = 0; i + 4u < rows; i++) {
                ivec3 h4 = hsum(i + 4u, x);
                ivec3 s = h0 + h1 + h2 + h3 + h4;
                ivec3 centre = unpack(px[(i + 2u) * RW + x + 2u]);
                vec3 v = vec3(25 * centre - s) / 800.0;
                uint out_i = ((im * p.oh + i0 + i) * p.ow + j) * 3u;
                q[out_i] = v.x;
                q[out_i + 1u] = v.y;
                q[out_i + 2u] = v.z;
                h0 = h1;
                h1 = h2;
                h2 = h3;
                h3 = h4;
            }
        }
    }
}
