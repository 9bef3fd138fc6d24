#!/usr/bin/python3
"""make-feature-norm.py — the default backbone's fixed feature standardisation.

The default backbone's raw feature mixes MobileNetV2's pooled channels
(values of order 1–10) with the residual statistics (each its own scale).
The detector L2-normalises whatever it gets, so columns with a large spread
would drown the rest; standardising every column with the mean and standard
deviation of the benchmark's training images puts them on one footing.

Usage: make-feature-norm.py [--tiles HEAD] [--cnn CNN] DCR OUT.safetensors DIR...
  runs `DCR features --json` with the raw backbone (mobilenet_v2+residual+local on
  the shipped weights, with --tiles the tile head HEAD after it:
  mobilenet_v2+residual+local+tiles=HEAD, with --cnn the learned forensic CNN
  after that: …+cnn=CNN) over every image of the DIRs and
  writes "mean" and "std" [dim] (float32) with metadata "backbone" = the raw
  backbone's id.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np


def main():
    args = sys.argv[1:]
    taps = {'--tiles': '', '--cnn': ''}
    while args[:1] and args[0] in taps and len(args) > 1:
        taps[args[0]] = '+' + args[0][2:] + '=' + os.path.abspath(args[1])
        args = args[2:]
    tiles = taps['--tiles'] + taps['--cnn']
    if len(args) < 3:
        sys.exit(__doc__)
    dcr, out, dirs = args[0], args[1], args[2:]
    here = os.path.dirname(os.path.abspath(__file__))
    weights = os.path.join(here, '..', 'mobilenet_v2_b10.safetensors')
    files = sorted(os.path.join(d, f) for d in dirs for f in os.listdir(d) if not f.startswith('.'))
    rows, backbone = [], None
    for i in range(0, len(files), 256):
        res = subprocess.run([dcr, 'features', '--json', '--batch', '16', '--backbone',
                              'mobilenet_v2+residual+local' + tiles + ':' + os.path.abspath(weights)] + files[i:i + 256],
                             check=True, capture_output=True, text=True)
        d = json.loads(res.stdout)
        backbone = d['backbone']
        rows += [im['features'] for im in d['images'] if 'features' in im]
        print(f'make-feature-norm: {len(rows)}/{len(files)}', file=sys.stderr)
    X = np.array(rows, dtype=np.float64)
    mean = X.mean(0).astype(np.float32)
    # a floor keeps a column that never varies in training from blowing up
    std = np.maximum(X.std(0), 1e-3).astype(np.float32)
    meta = {'backbone': backbone, 'images': str(len(X)),
            'source': 'data/models/default/make-feature-norm.py over ' + ', '.join(os.path.basename(os.path.normpath(d))
                                                                              for d in dirs)}
    n = len(mean) * 4
    header = {'__metadata__': meta,
              'mean': {'dtype': 'F32', 'shape': [len(mean)], 'data_offsets': [0, n]},
              'std': {'dtype': 'F32', 'shape': [len(std)], 'data_offsets': [n, 2 * n]}}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    tmp = out + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + mean.tobytes() + std.tobytes())
    os.replace(tmp, out)
    print(f'make-feature-norm: {out} from {len(X)} images of {backbone}', file=sys.stderr)


if __name__ == '__main__':
    main()
