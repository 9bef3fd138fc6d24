#version 450
// 2-D max / average pooling over NHWC (one invocation per output pixel and
// channel quad, or channel when C % 4 != 0), and global average pooling
// [N,H,W,C] → [N,C] (one invocation per image and channel quad/channel).
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#define T4 f16vec4
#else
#define T float
#define T4 vec4
#endif

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 3) const uint MODE = 0;     // 0 max, 1 average incl. padding, 2 average excl. padding, 3 global average
layout(constant_id = 4) const bool VEC = true;   // C % 4 == 0

layout(std430, binding = 0) readonly buffer X { T x[]; };
layout(std430, binding = 0) readonly buffer X4 { T4 x4[]; };
layout(std430, binding = 1) writeonly buffer Y { T y[]; };
layout(std430, binding = 1) writeonly buffer Y4 { T4 y4[]; };

layout(push_constant) uniform P {
    uint H, W, C;
    uint Ho, Wo;
    uint KH, KW, SH, SW;
    int PT, PL;
    uint n0;            // first image of this dispatch
    float scale;        // 1/(KH·KW) for an average that counts the padding
} p;

vec4 load(uint pix, uint c) {
    if (VEC)
        return vec4(x4[(pix * p.C + c) >> 2]);
    return vec4(float(x[pix * p.C + c]));
}

void store(uint pix, uint c, vec4 v) {
    if (VEC)
        y4[(pix * p.C + c) >> 2] = T4(v);
    else
        y[pix * p.C + c] = T(v.x);
}

void main() {
    uint c = gl_GlobalInvocationID.x * (VEC ? 4 : 1);
    if (c >= p.C)
        return;
    if (MODE == 3) {
        uint n = p.n0 + gl_GlobalInvocationID.y;
        uint hw = p.H * p.W;
        vec4 s = vec4(0.0);
        for (uint i = 0; i < hw; i++)
            s += load(n * hw + i, c);
        store(n, c, s / float(hw));
        return;
    }
    uint ow = gl_GlobalInvocationID.y;
    if (ow >= p.Wo)
        return;
    uint oh = gl_GlobalInvocationID.z % p.Ho;
    uint n = p.n0 + gl_GlobalInvocationID.z / p.Ho;
    int ih0 = int(oh * p.SH) - p.PT, iw0 = int(ow * p.SW) - p.PL;
    // the window clipped to the image; padding never wins a max and adds 0 to a sum
    uint y0 = uint(max(ih0, 0)), y1 = uint(min(ih0 + int(p.KH), int(p.H)));
    uint x0 = uint(max(iw0, 0)), x1 = uint(min(iw0 + int(p.KW), int(p.W)));
    // A max starts from the window's first pixel: from a -FLT_MAX splat, lavapipe
    // (Mesa 22.3) miscompiles the f16 vec4 variant (components y, z, w come out 0).
    vec4 acc = MODE == 0 ? load((n * p.H + y0) * p.W + x0, c) : vec4(0.0);
    for (uint iy = y0; iy < y1; iy++)
        for (uint ix = x0; ix < x1; ix++) {
            vec4 v = load((n * p.H + iy) * p.W + ix, c);
            acc = MODE == 0 ? max(acc, v) : acc + v;
        }
    if (MODE == 1)
        acc *= p.scale;
    else if (MODE == 2)
        acc /= float((y1 - y0) * (x1 - x0));
    store((n * p.Ho + oh) * p.Wo + ow, c, acc);
}
