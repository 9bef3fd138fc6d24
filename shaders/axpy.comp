#version 450
// y = a*x + y over n floats: the smallest kernel that proves a device computes
// (used by `dcr smoke` and the runtime tests, not by the model).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Y { float y[]; };
layout(push_constant) uniform P { uint n; float a; } p;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < p.n)
        y[i] = p.a * x[i] + y[i];
}
