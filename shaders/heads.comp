#version 450
// The DCR heads' own pointwise kernels, one per -D variant:
//  DCR_HEADS_DIFF    difference tokens d[b, j, :] = |f[b, :] − r[b, j, :]|
//                    (and d1 = token 0, the nearest prototype's difference);
//  DCR_HEADS_GATHER  the same with r[b, j] read from a bank chunk at the row
//                    retrieval chose (rows outside this chunk are left for
//                    the dispatch of the chunk that holds them);
//  DCR_HEADS_GATE    fused = f + σ(z) ⊙ c, and its backward with
//                    DCR_HEADS_GATE_BWD: dc = dy ⊙ σ(z), dz = dy ⊙ c ⊙ σ'(z).
// Storage f32 or, with -DDCR_FP16, f16; arithmetic f32.
#ifdef DCR_FP16
#extension GL_EXT_shader_16bit_storage : require
#define T float16_t
#else
#define T float
#endif

layout(local_size_x_id = 0) in;

#if defined(DCR_HEADS_DIFF) || defined(DCR_HEADS_GATHER)

layout(constant_id = 3) const bool WRITE_D1 = false;

layout(std430, binding = 0) readonly buffer F { T f[]; };     // [B, D]
layout(std430, binding = 1) readonly buffer R { T r[]; };     // [B, L, D], or a bank chunk [rows, D]
#ifdef DCR_HEADS_GATHER
layout(std430, binding = 2) readonly buffer I { uint idx[]; }; // [B, L] bank positions
layout(std430, binding = 3) writeonly buffer DD { T d[]; };
layout(std430, binding = 4) writeonly buffer D1 { T d1[]; };
#else
layout(std430, binding = 2) writeonly buffer DD { T d[]; };
layout(std430, binding = 3) writeonly buffer D1 { T d1[]; };
#endif

layout(push_constant) uniform P {
    uint batch, tokens, dim;
    uint base, rows;  // the chunk's first bank position and its row count (gather)
} p;

// One row (b, j) of d per workgroup at a time (workgroup (j, b)), its dim
// values spread over the invocations: the row's bank position and chunk test
// are the same for every invocation, and nothing is divided per element or
// per row (lavapipe divides a vector lane by lane).
void main() {
    for (uint b = gl_WorkGroupID.y; b < p.batch; b += gl_NumWorkGroups.y)
        for (uint j = gl_WorkGroupID.x; j < p.tokens; j += gl_NumWorkGroups.x) {
            uint bj = b * p.tokens + j;
#ifdef DCR_HEADS_GATHER
            uint pos = idx[bj];
            if (pos < p.base || pos - p.base >= p.rows)
                continue;
            uint r0 = (pos - p.base) * p.dim;
#else
            uint r0 = bj * p.dim;
#endif
            uint f0 = b * p.dim, d0 = bj * p.dim;
            for (uint c = gl_LocalInvocationID.x; c < p.dim; c += gl_WorkGroupSize.x) {
                float v = abs(float(f[f0 + c]) - float(r[r0 + c]));
                d[d0 + c] = T(v);
                if (WRITE_D1 && j == 0u)
                    d1[f0 + c] = T(v);
            }
        }
}

#elif defined(DCR_HEADS_GATE)

layout(std430, binding = 0) readonly buffer F { T f[]; };
layout(std430, binding = 1) readonly buffer C { T c[]; };
layout(std430, binding = 2) readonly buffer Z { T z[]; };
layout(std430, binding = 3) writeonly buffer Y { T y[]; };
layout(push_constant) uniform P { uint n; } p;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        float g = 1.0 / (1.0 + exp(-float(z[i])));
        y[i] = T(float(f[i]) + g * float(c[i]));
    }
}

#elif defined(DCR_HEADS_GATE_BWD)

layout(std430, binding = 0) readonly buffer C { float c[]; };
layout(std430, binding = 1) readonly buffer Z { float z[]; };
layout(std430, binding = 2) readonly buffer DY { float dy[]; };
layout(std430, binding = 3) buffer DC { float dc[]; };
layout(std430, binding = 4) buffer DZ { float dz[]; };
layout(push_constant) uniform P { uint n; uint accum; } p; // accum: dc, dz += … instead of = …

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        float g = 1.0 / (1.0 + exp(-z[i]));
        float vc = dy[i] * g;
        float vz = dy[i] * c[i] * g * (1.0 - g);
        if (p.accum != 0u) {
            vc += dc[i];
            vz += dz[i];
        }
        dc[i] = vc;
        dz[i] = vz;
    }
}

#else
#error "build heads.comp with one of DCR_HEADS_DIFF, DCR_HEADS_GATHER, DCR_HEADS_GATE, DCR_HEADS_GATE_BWD"
#endif
