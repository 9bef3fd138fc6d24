#!/usr/bin/python3
# mobilenet_v2_ref.py — the trusted reference for DCR's default backbone: a
# PyTorch forward pass of data/models/mobilenet_v2_b10.safetensors written from
# the Keras MobileNetV2 definition (not from the converter's metadata), on the
# synthetic inputs of data/models/mobilenet-v2-common.mjs.
#
#   /usr/bin/python3 tests/golden/mobilenet_v2_ref.py [--check-only]
#
# Writes tests/golden/mobilenet_v2_ref.safetensors (pooled tap outputs, fp32)
# and compares with the original tfjs model's outputs that
# data/models/tfjs-reference.mjs wrote, when they are present.
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, '..', '..'))
WEIGHTS = os.path.join(ROOT, 'data', 'models', 'mobilenet_v2_b10.safetensors')
OUT = os.path.join(HERE, 'mobilenet_v2_ref.safetensors')
TFJS_POOLED = os.path.join(HERE, 'mobilenet_v2_tfjs.safetensors')
TFJS_BLOCK10 = os.path.join(HERE, 'tmp', 'mobilenet_v2_tfjs_block10.safetensors')

SIZE = 224
NUM_IMAGES = 4
BN_EPS = 1e-3  # Keras BatchNormalization in MobileNetV2
TAPS = ['block_2', 'block_5', 'block_8', 'block_10']
# Keras Applications MobileNetV2 (alpha 1.0): (expansion t, channels c, repeats n, first stride s),
# cut after block 10 (the first of the three 96-channel blocks).
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 1, 1)]

# The same text as SYNTHETIC_DOC in data/models/mobilenet-v2-common.mjs.
SYNTHETIC_DOC = (
    'uint8 HWC 224x224x3, image k at (y, x, c): '
    'k=0 c==0 ? x : c==1 ? y : (x+y)>>1; '
    'k=1 lowbias32((y*224+x)*3+c) & 255 with lowbias32(v): v^=v>>16; v*=0x7feb352d; v^=v>>15; v*=0x846ca68b; '
    'v^=v>>16 (uint32); '
    'k=2 ((x>>4)^(y>>4))&1 ? 230-40c : 20+60c; '
    'k=3 ((x*x + 2*y*y + 5000c) >> 6) & 255; '
    'network input = v/127.5 - 1 in float32')

DTYPES = {'F32': np.float32, 'F16': np.float16, 'F64': np.float64}


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    base = 8 + n
    tensors = {}
    for name, h in header.items():
        a, b = h['data_offsets']
        arr = np.frombuffer(raw[base + a:base + b], dtype=DTYPES[h['dtype']])
        tensors[name] = arr.reshape(h['shape']).copy()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header = {'__metadata__': meta}
    off = 0
    blobs = []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype='<f4')
        header[name] = {'dtype': 'F32', 'shape': list(arr.shape), 'data_offsets': [off, off + arr.nbytes]}
        off += arr.nbytes
        blobs.append(arr.tobytes())
    js = json.dumps(header, separators=(',', ':')).encode()
    js += b' ' * (-len(js) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(js)) + js + b''.join(blobs))
    os.replace(tmp, path)


def lowbias32(v):
    v &= 0xFFFFFFFF
    v ^= v >> 16
    v = (v * 0x7FEB352D) & 0xFFFFFFFF
    v ^= v >> 15
    v = (v * 0x846CA68B) & 0xFFFFFFFF
    return v ^ (v >> 16)


def synthetic_image(k):
    """The integer formulas of data/models/mobilenet-v2-common.mjs, uint8 HWC."""
    y, x = np.meshgrid(np.arange(SIZE, dtype=np.int64), np.arange(SIZE, dtype=np.int64), indexing='ij')
    img = np.zeros((SIZE, SIZE, 3), dtype=np.int64)
    for c in range(3):
        if k == 0:
            img[..., c] = x if c == 0 else y if c == 1 else (x + y) >> 1
        elif k == 1:
            idx = ((y * SIZE + x) * 3 + c).ravel()
            img[..., c] = np.array([lowbias32(int(i)) & 255 for i in idx]).reshape(SIZE, SIZE)
        elif k == 2:
            img[..., c] = np.where(((x >> 4) ^ (y >> 4)) & 1, 230 - 40 * c, 20 + 60 * c)
        elif k == 3:
            img[..., c] = ((x * x + 2 * y * y + 5000 * c) >> 6) & 255
    assert img.min() >= 0 and img.max() <= 255
    return img.astype(np.uint8)


def keras_same_pad(size, k, s):
    """TensorFlow's 'same': total = max((ceil(size/s) - 1)*s + k - size, 0), the odd pixel after."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class Net:
    def __init__(self, w):
        self.w = {k: torch.from_numpy(v) for k, v in w.items()}
        self.used = set()

    def t(self, name):
        if name not in self.w:
            sys.exit(f'{WEIGHTS}: tensor {name} missing')
        self.used.add(name)
        return self.w[name]

    def conv(self, x, name, stride, groups=1):
        w = self.t(name + '.weight')           # [Cout, KH, KW, Cin/groups]
        w = w.permute(0, 3, 1, 2).contiguous()  # torch's [Cout, Cin/groups, KH, KW]
        k = w.shape[2]
        ph = keras_same_pad(x.shape[2], k, stride)
        pw = keras_same_pad(x.shape[3], k, stride)
        x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
        return F.conv2d(x, w, stride=stride, groups=groups)

    def bn(self, x, name):
        return F.batch_norm(x, self.t(name + '.running_mean'), self.t(name + '.running_var'),
                            self.t(name + '.weight'), self.t(name + '.bias'), training=False, eps=BN_EPS)

    def forward(self, x):
        taps = {}
        x = F.hardtanh(self.bn(self.conv(x, 'Conv1', 2), 'bn_Conv1'), 0.0, 6.0)
        block = 0
        cin = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                stride = s if i == 0 else 1
                prefix = 'expanded_conv' if block == 0 else f'block_{block}'
                h = x
                if t != 1:
                    h = F.hardtanh(self.bn(self.conv(h, prefix + '_expand', 1), prefix + '_expand_BN'), 0.0, 6.0)
                h = self.conv(h, prefix + '_depthwise', stride, groups=h.shape[1])
                h = F.hardtanh(self.bn(h, prefix + '_depthwise_BN'), 0.0, 6.0)
                h = self.bn(self.conv(h, prefix + '_project', 1), prefix + '_project_BN')
                x = x + h if stride == 1 and cin == c else h
                cin = c
                if f'block_{block}' in TAPS:
                    taps[f'block_{block}'] = x
                block += 1
        return taps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--check-only', action='store_true', help='compare, do not rewrite the golden file')
    args = ap.parse_args()

    # Keras pads 'same' stride-2 convs on the bottom/right only; the shipped
    # topology spells that out as ZeroPadding2D ((0,1),(0,1)) — the two agree.
    assert keras_same_pad(SIZE, 3, 2) == (0, 1) and keras_same_pad(SIZE // 2, 3, 2) == (0, 1)
    assert keras_same_pad(SIZE, 3, 1) == (1, 1)

    torch.set_grad_enabled(False)
    weights, wmeta = read_safetensors(WEIGHTS)
    if wmeta.get('bn_eps') != '0.001':
        sys.exit(f'{WEIGHTS}: bn_eps {wmeta.get("bn_eps")!r}, expected 0.001')
    net = Net(weights)
    imgs = np.stack([synthetic_image(k) for k in range(NUM_IMAGES)])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    taps = net.forward(x)
    unused = set(weights) - net.used
    if unused:
        sys.exit(f'{WEIGHTS}: tensors the network does not use: {sorted(unused)}')
    if tuple(taps['block_10'].shape[1:]) != (96, 14, 14):
        sys.exit(f'block_10 output shape {tuple(taps["block_10"].shape)}')

    # The same network in float64, to tell rounding from real disagreement.
    net64 = Net({k: v.astype(np.float64) for k, v in weights.items()})
    taps64 = net64.forward(x.double())

    pooled = {f'{t}.pooled': taps[t].mean(dim=(2, 3)).numpy() for t in TAPS}
    print(f'block_10 feature map: NHWC [{NUM_IMAGES}, 14, 14, 96]')
    for t in TAPS:
        d = (taps[t].double() - taps64[t]).abs().max().item()
        print(f'{t:9s} pooled {pooled[t + ".pooled"].shape}, fp32 vs fp64 max |diff| {d:.2e}')

    ok = True
    if os.path.exists(TFJS_POOLED):
        ref, tmeta = read_safetensors(TFJS_POOLED)
        if tmeta.get('inputs') != SYNTHETIC_DOC:
            sys.exit(f'{TFJS_POOLED} was made from different synthetic inputs')
        for name, want in ref.items():
            got = pooled[name]
            d = np.abs(got - want).max()
            scale = np.abs(want).max()
            print(f'tfjs original vs torch, {name:16s} max |diff| {d:.3e} (max |value| {scale:.3f})')
            ok &= bool(d <= 1e-4 + 1e-4 * scale)
    else:
        print(f'{TFJS_POOLED} not found: run data/models/tfjs-reference.mjs to cross-check')
    if os.path.exists(TFJS_BLOCK10):
        ref, _ = read_safetensors(TFJS_BLOCK10)
        want = ref['block_10.output']                           # NHWC
        got = taps['block_10'].permute(0, 2, 3, 1).numpy()
        d = np.abs(got - want).max()
        print(f'tfjs original vs torch, block_10 full map [{NUM_IMAGES},14,14,96] max |diff| {d:.3e} '
              f'(max |value| {np.abs(want).max():.3f}, mean |diff| {np.abs(got - want).mean():.2e})')
        ok &= bool(d <= 1e-3)

    if not args.check_only:
        meta = {
            'format': 'dcr-mobilenet-v2-b10-golden',
            'producer': f'tests/golden/mobilenet_v2_ref.py, torch {torch.__version__}, fp32 CPU',
            'weights': 'data/models/mobilenet_v2_b10.safetensors',
            'inputs': SYNTHETIC_DOC,
            'images': str(NUM_IMAGES),
            'taps': ','.join(TAPS),
            'pooled': 'mean over H and W of each block output, [images, channels]',
            'block_10_output_shape': '[14, 14, 96]',
        }
        write_safetensors(OUT, pooled, meta)
        print(f'wrote {OUT} ({os.path.getsize(OUT)} bytes)')
    if not ok:
        sys.exit('torch reference and the original tfjs model disagree')


if __name__ == '__main__':
    main()
