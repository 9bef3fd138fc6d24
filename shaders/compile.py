#!/usr/bin/env python3
# Compiles one GLSL compute shader to SPIR-V with glslc and validates it with
# spirv-val, so a shader that the driver would reject fails the build instead.
import subprocess, sys

glslc, spirv_val, src, out, depfile, target = sys.argv[1:7]
defines = sys.argv[7:]
cmd = [glslc, '-O', '--target-env=' + target, '-fshader-stage=compute',
       '-MD', '-MF', depfile, '-o', out, src] + ['-D' + d for d in defines]
subprocess.run(cmd, check=True)
r = subprocess.run([spirv_val, '--target-env', target, out], capture_output=True, text=True)
if r.returncode != 0:
    sys.stderr.write('spirv-val rejected %s (%s):\n%s%s' % (out, src, r.stdout, r.stderr))
    sys.exit(1)
