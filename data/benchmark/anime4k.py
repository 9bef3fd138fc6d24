#!/usr/bin/python3
"""anime4k.py — the Anime4K ×2 CNN upscalers of the npm package @websr/websr
(MIT; weights in node_modules/@websr/websr/weights/anime4k/), run on the CPU
with numpy, for make-benchmark.py: a generator family unlike the @upscalerjs
ones (a few 3×3 layers on CReLU, a residual over a bilinear upscale).

The arithmetic follows the package's WebGPU layers (src/layers/anime4k/):
  conv2d_tf         3×3 over (R, G, B, 1) in 0–1 → 4 channels
  conv2d_N_tf       3×3 over CReLU(previous) (8 channels) → 4
  S:  conv2d_last_tf  3×3 over CReLU → 4 = one residual at the 2×2 sub-pixels,
                      added to R, G and B (display.ts)
  M:  conv2d_7_tf{,1,2}  1×1 over CReLU of all 7 layers (56 channels) → 4
                      each: the residual of R, G, B (display_3c.ts)
Each 3×3 kernel is 9 (or 18 with CReLU) column-major mat4s in the order of the
offsets (dx, dy) = (−1,−1), (−1,0), (−1,1), (0,−1), …; the sub-pixel (sx, sy)
of an output pixel reads channel sx + 2·sy; the base is a bilinear ×2 (half-
pixel centres). Borders repeat the edge pixels.

Usage (a check): anime4k.py WEIGHTS.json HR.png — downscales HR ×2 (bicubic),
upscales it back and prints PSNR against HR for bilinear and for the network.
"""
import json
import sys

import numpy as np


def _mats(w, n):
    a = np.asarray(w, dtype=np.float32).reshape(n, 4, 4)
    return a.transpose(0, 2, 1)  # column-major mat4 → [out, in]


def _shift(x, dx, dy):
    """x[:, y + dy, x + dx] with the edge pixels repeated."""
    h, w = x.shape[1:]
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode='edge')
    return p[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def _conv3x3(x, layer, crelu):
    n = 18 if crelu else 9
    k = _mats(layer['weights'], n)
    out = np.zeros_like(x[:4]) if x.shape[0] >= 4 else np.zeros((4,) + x.shape[1:], np.float32)
    for i in range(9):
        v = _shift(x, i // 3 - 1, i % 3 - 1)
        if crelu:
            out += np.einsum('oc,chw->ohw', k[i], np.maximum(v, 0)) + np.einsum('oc,chw->ohw', k[i + 9], np.maximum(-v, 0))
        else:
            out += np.einsum('oc,chw->ohw', k[i], v)
    return out + np.asarray(layer['bias'], np.float32)[:, None, None]


def _conv1x1_concat(xs, layer):
    k = _mats(layer['weights'], 2 * len(xs))
    out = np.zeros((4,) + xs[0].shape[1:], np.float32)
    for i, x in enumerate(xs):
        out += np.einsum('oc,chw->ohw', k[2 * i], np.maximum(x, 0)) + np.einsum('oc,chw->ohw', k[2 * i + 1], np.maximum(-x, 0))
    return out + np.asarray(layer['bias'], np.float32)[:, None, None]


def _bilinear2(img):
    """×2, half-pixel centres, edges clamped: [h, w, 3] → [2h, 2w, 3]."""
    h, w = img.shape[:2]

    def axis(n):
        c = (np.arange(2 * n) + 0.5) / 2 - 0.5
        c0 = np.clip(np.floor(c).astype(int), 0, n - 1)
        c1 = np.clip(c0 + 1, 0, n - 1)
        f = np.clip(c - np.floor(c), 0, 1).astype(np.float32)
        f[c < 0] = 0
        return c0, c1, f
    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    rows = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def _depth_to_space(r):
    """[4, h, w] (channel sx + 2·sy) → [2h, 2w]."""
    h, w = r.shape[1:]
    out = np.empty((2 * h, 2 * w), np.float32)
    for sy in range(2):
        for sx in range(2):
            out[sy::2, sx::2] = r[sx + 2 * sy]
    return out


def upscale(weights, rgb):
    """weights: a parsed weights JSON; rgb: uint8 [h, w, 3] → uint8 [2h, 2w, 3]."""
    L = weights['layers']
    x = rgb.astype(np.float32) / 255.0
    inp = np.concatenate([x.transpose(2, 0, 1), np.ones((1,) + x.shape[:2], np.float32)])
    feats = [_conv3x3(inp, L['conv2d_tf'], crelu=False)]
    n = 1
    while f'conv2d_{n}_tf' in L and f'conv2d_{n}_tf1' not in L:
        feats.append(_conv3x3(feats[-1], L[f'conv2d_{n}_tf'], crelu=True))
        n += 1
    base = _bilinear2(x)
    if 'conv2d_last_tf' in L:  # S: one residual for all three channels
        res = _depth_to_space(_conv3x3(feats[-1], L['conv2d_last_tf'], crelu=True))
        out = base + res[:, :, None]
    else:  # M: the 1×1 layers over all of them, one per colour
        last = [f'conv2d_{n}_tf', f'conv2d_{n}_tf1', f'conv2d_{n}_tf2']
        if not all(k in L for k in last):
            raise ValueError('anime4k: unknown network layout: ' + ', '.join(L))
        res = [_depth_to_space(_conv1x1_concat(feats, L[k])) for k in last]
        out = base + np.stack(res, axis=2)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def main():
    from PIL import Image
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    w = json.load(open(sys.argv[1]))
    hr = np.asarray(Image.open(sys.argv[2]).convert('RGB'))
    hr = hr[:hr.shape[0] // 2 * 2, :hr.shape[1] // 2 * 2]
    lr = np.asarray(Image.fromarray(hr).resize((hr.shape[1] // 2, hr.shape[0] // 2), Image.BICUBIC))

    def psnr(a):
        return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - hr) ** 2))
    bil = np.clip(np.rint(_bilinear2(lr.astype(np.float32))), 0, 255).astype(np.uint8)
    bic = np.asarray(Image.fromarray(lr).resize((hr.shape[1], hr.shape[0]), Image.BICUBIC))
    print('bilinear %.2f dB, bicubic %.2f dB, %s %.2f dB' % (psnr(bil), psnr(bic), w.get('name', 'network'),
                                                           psnr(upscale(w, lr))))


if __name__ == '__main__':
    main()
