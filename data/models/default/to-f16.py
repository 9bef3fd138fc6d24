#!/usr/bin/python3
"""to-f16.py IN OUT — rewrites a safetensors file with its F32 tensors stored
as F16, metadata kept (IN and OUT may be the same file; OUT is replaced
whole). dcr reads F16 weights into F32, so this halves the shipped heads'
size; train-default.sh evaluates the F16 file it ships. Fails, leaving OUT
as it was, if a weight does not fit F16."""
import json, os, struct, sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
with open(src, 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
meta = header.pop('__metadata__', None)
out_header, blobs, off = {}, [], 0
for name, t in sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0]):
    a, b = t['data_offsets']
    raw = data[a:b]
    dtype = t['dtype']
    if dtype == 'F32':
        x = np.frombuffer(raw, dtype='<f4')
        h = x.astype('<f2')
        if not np.all(np.isfinite(h)):
            sys.exit(f'to-f16: {name} overflows F16')
        raw, dtype = h.tobytes(), 'F16'
    out_header[name] = dict(dtype=dtype, shape=t['shape'], data_offsets=[off, off + len(raw)])
    blobs.append(raw)
    off += len(raw)
if meta is not None:
    out_header['__metadata__'] = meta
hb = json.dumps(out_header, separators=(',', ':')).encode()
hb += b' ' * (-len(hb) % 8)
with open(dst + '.tmp', 'wb') as f:
    f.write(struct.pack('<Q', len(hb)) + hb + b''.join(blobs))
os.replace(dst + '.tmp', dst)
