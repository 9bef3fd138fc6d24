#version 450
// Pointwise ops over flat tensors: y = act(a ∘ b) for add, mul and |a − b|
// (b broadcast over a's leading dimensions: a is `rows` copies of b's size),
// clamp, and a bare activation. One invocation handles 4 elements when the
// sizes allow; x walks b, y walks the rows (no integer division), and both
// stride so any size fits one dispatch.
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#define T4 f16vec4
#else
#define T float
#define T4 vec4
#endif

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 3) const uint OP = 0;      // 0 add, 1 mul, 2 absdiff, 3 clamp, 4 activation only
layout(constant_id = 4) const uint ACT = 0;     // DcrAct, applied last
layout(constant_id = 5) const bool VEC = true;  // n % 4 == 0 and nb % 4 == 0

layout(std430, binding = 0) readonly buffer A { T a[]; };
layout(std430, binding = 0) readonly buffer A4 { T4 a4[]; };
layout(std430, binding = 1) readonly buffer B { T b[]; };
layout(std430, binding = 1) readonly buffer B4 { T4 b4[]; };
layout(std430, binding = 2) writeonly buffer Y { T y[]; };
layout(std430, binding = 2) writeonly buffer Y4 { T4 y4[]; };

layout(push_constant) uniform P {
    uint nb;    // elements (or quads when VEC) of b, the length of a row of a
    uint rows;  // a and y hold rows · nb
    float lo, hi;
} p;

// erf after Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); GLSL has none
vec4 erf4(vec4 x) {
    vec4 s = sign(x), ax = abs(x);
    vec4 t = 1.0 / (1.0 + 0.3275911 * ax);
    vec4 poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return s * (1.0 - poly * exp(-ax * ax));
}

vec4 act(vec4 v) {
    if (ACT == 1) return max(v, vec4(0.0));
    if (ACT == 2) return clamp(v, vec4(0.0), vec4(6.0));
    if (ACT == 3) return 0.5 * v * (1.0 + erf4(v * 0.70710678118654752));
    if (ACT == 4) return v / (1.0 + exp(-1.702 * v));
    return v;
}

vec4 op(vec4 x, vec4 z) {
    if (OP == 0) return x + z;
    if (OP == 1) return x * z;
    if (OP == 2) return abs(x - z);
    if (OP == 3) return clamp(x, vec4(p.lo), vec4(p.hi));
    return x;
}

void main() {
    uint sx = gl_NumWorkGroups.x * gl_WorkGroupSize.x, sy = gl_NumWorkGroups.y * gl_WorkGroupSize.y;
    for (uint row = gl_GlobalInvocationID.y; row < p.rows; row += sy)
        for (uint bi = gl_GlobalInvocationID.x; bi < p.nb; bi += sx) {
            uint i = row * p.nb + bi;
            if (VEC) {
                vec4 z = OP <= 2 ? vec4(b4[bi]) : vec4(0.0);
                y4[i] = T4(act(op(vec4(a4[i]), z)));
            } else {
                float z = OP <= 2 ? float(b[bi]) : 0.0;
                y[i] = T(act(op(vec4(float(a[i])), vec4(z))).x);
            }
        }
}
