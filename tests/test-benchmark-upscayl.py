#!/usr/bin/python3
"""test-benchmark-upscayl.py — the benchmark's ncnn interpreter
(data/benchmark/ncnn_torch.py) and upscayl-bin's border (upscayl.py), without
the package: a small ncnn model written here, with every layer kind the
upscayl models use, against a numpy implementation of the same graph; the
model files' faults (truncated, left-over bytes, unknown layers or weight
tags) refused with a message; upscale_x4's reflected border and crop. TAP
output. Needs Debian's python3-torch, python3-numpy and python3-pil."""
import os
import struct
import tempfile

import numpy as np

from benchmark_tap import check, finish  # noqa: E402  (puts data/benchmark on the path)
import ncnn_torch  # noqa: E402
import upscayl  # noqa: E402


rng = np.random.default_rng(3)
tmp = tempfile.mkdtemp(prefix='dcr-upscayl-test-')

# The graph: conv 3→4 (fp16 weights, leaky ReLU 0.2) split three ways; conv
# 4→2 (fp32 weights, bias); concat → 6; 1×1 conv 6→4 without bias, ReLU;
# 0.2·that + the first conv (Eltwise); PReLU; nearest ×2; conv 4→12; pixel
# shuffle ×2; plus the input nearest ×4 (BinaryOp add) → output, ×4 in all.
PARAM = """7767517
14 18
Input            in    0 1 data
Split            sin   1 2 data d0 d1
Convolution      c0    1 1 d0 a 0=4 1=3 4=1 5=1 6=108 9=2 -23310=1,2.000000e-01
Split            sa    1 3 a a0 a1 a2
Convolution      c1    1 1 a0 b 0=2 1=3 4=1 5=1 6=72
Concat           cat   2 1 a1 b c
Convolution      c2    1 1 c d 0=4 1=1 5=0 6=24 9=1
Eltwise          add0  2 1 d a2 e 0=1 -23301=2,2.000000e-01,1.000000e+00
PReLU            pr    1 1 e f 0=4
Interp           up2   1 1 f g 0=1 1=2.000000e+00 2=2.000000e+00
Convolution      c3    1 1 g h 0=12 1=3 4=1 5=1 6=432
PixelShuffle     ps    1 1 h i 0=2
Interp           up4   1 1 d1 j 0=1 1=4.000000e+00 2=4.000000e+00
BinaryOp         add1  2 1 i j output
"""
w0 = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float16)
b0 = (rng.standard_normal(4) * 0.1).astype(np.float32)
w1 = (rng.standard_normal((2, 4, 3, 3)) * 0.3).astype(np.float32)
b1 = (rng.standard_normal(2) * 0.1).astype(np.float32)
w2 = (rng.standard_normal((4, 6, 1, 1)) * 0.3).astype(np.float16)
slope = np.array([0.1, 0.25, -0.5, 1.0], np.float32)
w3 = (rng.standard_normal((12, 4, 3, 3)) * 0.3).astype(np.float16)
b3 = (rng.standard_normal(12) * 0.1).astype(np.float32)


def blob16(w):
    raw = w.astype('<f2').tobytes()
    return struct.pack('<I', ncnn_torch.FP16_TAG) + raw + b'\0' * (-len(raw) % 4)


BIN = (blob16(w0) + b0.tobytes() + struct.pack('<I', 0) + w1.astype('<f4').tobytes() + b1.tobytes()
       + blob16(w2) + slope.tobytes() + blob16(w3) + b3.tobytes())


def write(name, param, data):
    p, b = os.path.join(tmp, name + '.param'), os.path.join(tmp, name + '.bin')
    with open(p, 'w') as f:
        f.write(param)
    with open(b, 'wb') as f:
        f.write(data)
    return p, b


# numpy reference, written from the layer definitions (not from torch)
def conv(x, w, b, pad):
    c, h, wd = x.shape
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((w.shape[0], h, wd), np.float64)
    for dy in range(k):
        for dx in range(k):
            out += np.einsum('oc,chw->ohw', w[:, :, dy, dx].astype(np.float64), xp[:, dy:dy + h, dx:dx + wd])
    if b is not None:
        out += b[:, None, None]
    return out


def nearest(x, s):
    return x.repeat(s, 1).repeat(s, 2)


def shuffle(x, r):
    c, h, w = x.shape
    return x.reshape(c // (r * r), r, r, h, w).transpose(0, 3, 1, 4, 2).reshape(c // (r * r), h * r, w * r)


def reference(x):
    a = conv(x, w0, b0, 1)
    a = np.where(a > 0, a, 0.2 * a)
    b = conv(a, w1, b1, 1)
    d = np.maximum(conv(np.concatenate([a, b]), w2, None, 0), 0)
    e = 0.2 * d + a
    f = np.where(e > 0, e, slope[:, None, None] * e)
    i = shuffle(conv(nearest(f, 2), w3, b3, 1), 2)
    return i + nearest(x, 4)


x = rng.random((3, 7, 9))
net = ncnn_torch.Net(*write('good', PARAM, BIN))
import torch  # noqa: E402
got = net(torch.from_numpy(x[None]).float())[0].numpy()
want = reference(x)
check('the graph runs to its output blob, 4× the input', got.shape == (3, 28, 36))
err = float(np.abs(got - want).max()) if got.shape == want.shape else float('inf')
check(f'every layer kind matches the numpy reference (max error {err:.2e})', err < 1e-4)


def refused(desc, param, data, words):
    try:
        ncnn_torch.Net(*write('bad', param, data))
        check(desc + ' (accepted)', False)
    except ValueError as e:
        check(desc + f' ({e})', all(w in str(e) for w in words))


refused('a truncated model file is refused', PARAM, BIN[:-20], ['truncated'])
refused('a model file with bytes left over is refused', PARAM, BIN + b'\0' * 8, ['left over'])
refused('an unknown layer is refused by name', PARAM.replace('PReLU            pr', 'Sigmoid          pr'), BIN,
        ['Sigmoid', 'pr'])
refused('an unknown weight tag is refused', PARAM, struct.pack('<I', 0x000D4B38) + BIN[4:], ['tag'])
refused('a file that is not an ncnn param file is refused', 'hello\n1 1\n', BIN, ['not an ncnn param'])

# upscale_x4: the input reflected by PREPAD pixels, run, cropped back. A box
# blur then nearest ×4 shows the border: at the image's edge the blur sees
# the reflected pixels (zero padding, or none, would darken the edge).
BLUR = """7767517
3 3
Input            in    0 1 data
Convolution      c     1 1 data a 0=3 1=3 4=1 5=0 6=81
Interp           up    1 1 a output 0=1 1=4.000000e+00 2=4.000000e+00
"""
wb = np.zeros((3, 3, 3, 3), np.float32)
for c in range(3):
    wb[c, c] = 1.0 / 9
blur = ncnn_torch.Net(*write('blur', BLUR, struct.pack('<I', 0) + wb.tobytes()))
lr = rng.integers(0, 256, (16, 14, 3)).astype(np.uint8)
out = upscayl.upscale_x4(blur, lr)
xp = np.pad(lr.astype(np.float64) / 255, ((1, 1), (1, 1), (0, 0)), mode='reflect')
box = sum(xp[dy:dy + 16, dx:dx + 14] for dy in range(3) for dx in range(3)) / 9
want = np.clip(np.floor(box.repeat(4, 0).repeat(4, 1) * 255 + 0.5), 0, 255).astype(np.uint8)
check('upscale_x4 gives 4H×4W×3 uint8', out.shape == (64, 56, 3) and out.dtype == np.uint8)
diff = int(np.abs(out.astype(int) - want.astype(int)).max()) if out.shape == want.shape else 999
check(f'upscale_x4 reflects the border and crops it back (max difference {diff})', diff <= 1)
X2 = BLUR.replace('1=4.000000e+00 2=4.000000e+00', '1=2.000000e+00 2=2.000000e+00')
try:
    upscayl.upscale_x4(ncnn_torch.Net(*write('x2', X2, struct.pack('<I', 0) + wb.tobytes())), lr)
    check('a model that is not ×4 is refused', False)
except ValueError as e:
    check(f'a model that is not ×4 is refused ({e})', 'not x4' in str(e))

for f in os.listdir(tmp):
    os.unlink(os.path.join(tmp, f))
os.rmdir(tmp)
finish()
