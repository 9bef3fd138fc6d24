#version 450
// Backward of the pointwise ops the heads train through: activations
// (dx = dy·act'(x)) and, built with -DDCR_ABSDIFF, d = |a − b| where a may be
// broadcast along one axis of b (a [R, 1, D] against b [R, K, D]).
// Storage is f32 or, with -DDCR_FP16, f16; arithmetic is always f32.
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define T float16_t
#else
#define T float
#endif

layout(local_size_x_id = 0) in;

#ifndef DCR_ABSDIFF

layout(constant_id = 3) const uint ACT = 0;      // DcrAct

layout(std430, binding = 0) readonly buffer X { T x[]; };
layout(std430, binding = 1) readonly buffer DY { T dy[]; };
layout(std430, binding = 2) buffer DX { T dx[]; };
layout(push_constant) uniform P { uint n; uint accum; } p; // accum: dx += … instead of dx = …

// Φ(x) = ½·erfc(−x/√2) with Abramowitz–Stegun 7.1.26 for erfc (|error| ≤
// 1.5e-7). GLSL has no erf; taking the erfc branch for the far tail keeps
// Φ accurate where 1 + erf would cancel.
float normal_cdf(float x) {
    float a = abs(x) * 0.70710678118654752;
    float t = 1.0 / (1.0 + 0.3275911 * a);
    float poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    float half_erfc = 0.5 * poly * exp(-a * a);
    return x >= 0.0 ? 1.0 - half_erfc : half_erfc;
}

float grad(float xv, float g) {
    if (ACT == 1u) // relu: the mask is the same whether x is the input or the output
        return xv > 0.0 ? g : 0.0;
    if (ACT == 2u) // relu6, as PyTorch's hardtanh_backward: open interval
        return (xv > 0.0 && xv < 6.0) ? g : 0.0;
    if (ACT == 3u) // exact gelu: Φ(x) + x·φ(x)
        return g * (normal_cdf(xv) + xv * 0.3989422804014327 * exp(-0.5 * xv * xv));
    if (ACT == 4u) { // quick gelu: x·σ(1.702x)
        float s = 1.0 / (1.0 + exp(-1.702 * xv));
        return g * (s + 1.702 * xv * s * (1.0 - s));
    }
    return g;
}

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        float v = grad(float(x[i]), float(dy[i]));
        if (p.accum != 0u)
            v += float(dx[i]);
        dx[i] = T(v);
    }
}

#else

layout(std430, binding = 0) readonly buffer A { T a[]; };
layout(std430, binding = 1) readonly buffer B { T b[]; };
layout(std430, binding = 2) readonly buffer DD { T dd[]; };
layout(std430, binding = 3) buffer DA { T da[]; };
layout(std430, binding = 4) buffer DB { T db[]; };
// n_a = R·D elements of a; b and dd are [R, K, D].
// flags: bit 0 write da, bit 1 write db, bit 2 accumulate
layout(push_constant) uniform P { uint n_a; uint k; uint d; uint flags; } p;

void main() {
    bool write_a = (p.flags & 1u) != 0u, write_b = (p.flags & 2u) != 0u, accum = (p.flags & 4u) != 0u;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint e = gl_GlobalInvocationID.x; e < p.n_a; e += stride) {
        uint r = e / p.d, c = e - r * p.d;
        float av = float(a[e]);
        float sum = 0.0;
        for (uint j = 0; j < p.k; j++) {
            uint i = (r * p.k + j) * p.d + c;
            // sign() is 0 at a == b: the subgradient PyTorch's abs uses
            float g = sign(av - float(b[i])) * float(dd[i]);
            sum += g;
            if (write_b)
                db[i] = T(accum ? float(db[i]) - g : -g);
        }
        if (write_a)
            da[e] = T(accum ? float(da[e]) + sum : sum);
    }
}

#endif
