#!/usr/bin/python3
"""test-benchmark-ncnn.py — the benchmark's guards on the ncnn generators
(data/benchmark/ncnn.py), without the programs: repair_lavapipe puts back
the values lavapipe wraps (a negative output written as 255, one over 255
as 0) and leaves true extremes alone; check_output stops the build on an
output that is not an upscale of its input (the noise waifu2x CUNet's CPU
path gave). TAP output. Needs Debian's python3-numpy and python3-pil."""

import numpy as np
from PIL import Image

from benchmark_tap import check, finish  # noqa: E402  (puts data/benchmark on the path)
import ncnn  # noqa: E402


rng = np.random.default_rng(7)
# a low-resolution input: a dark left half, a bright right half, texture
lr = np.zeros((32, 32, 3), np.uint8)
lr[:, :16] = 20
lr[:, 16:] = 235
lr = np.clip(lr.astype(int) + rng.integers(-10, 11, lr.shape), 0, 255).astype(np.uint8)
lr_img = Image.fromarray(lr)
good = np.asarray(lr_img.resize((64, 64), Image.BICUBIC)).copy()
# the true output clamps to 0 in the dark half and to 255 in the bright one
true = good.copy()
true[10:14, 5:9, 2] = 0      # a negative blue, clamped
true[30:33, 50:54, 0] = 255  # a red over 255, clamped
true[40, 3, 1] = 0
# what lavapipe writes: the same values wrapped
wrapped = true.copy()
wrapped[10:14, 5:9, 2] = 255
wrapped[30:33, 50:54, 0] = 0
wrapped[40, 3, 1] = 255
out = wrapped.copy()
count = ncnn.repair_lavapipe(out, lr_img)
check('repair_lavapipe counts the wrapped values', count == 16 + 12 + 1)
check('repair_lavapipe gives back the clamped output', np.array_equal(out, true))
out = true.copy()
check('an output without wrapped values is left as it is',
      ncnn.repair_lavapipe(out, lr_img) == 0 and np.array_equal(out, true))

try:
    ncnn.check_output('test', 'good.png', good, lr_img)
    check('check_output passes an upscale of the input', True)
except SystemExit as e:
    check(f'check_output passes an upscale of the input ({e})', False)
# a GAN-trained upscaler redraws blurred high-contrast stripes with hard
# edges: far from the bicubic upscale, yet a faithful output (Real-CUGAN ×3
# gave 16.5 dB on a crop of plasma's Grey, which the 18 dB floor refused)
x = np.arange(32)
stripes = np.clip(127.5 + 110 * np.sin(2 * np.pi * x / 6), 0, 255).astype(np.uint8)
stripes_img = Image.fromarray(np.repeat(np.repeat(stripes[None, :, None], 32, 0), 3, 2))
soft = np.asarray(stripes_img.resize((64, 64), Image.BICUBIC)).astype(float)
hard = np.clip(np.round(127.5 + 127.5 * np.tanh(3 * (soft - 127.5) / 127.5)), 0, 255).astype(np.uint8)
db = ncnn.psnr(hard, soft.astype(np.uint8))
check(f'the hard-edged upscale is 13-18 dB from the bicubic one ({db:.1f} dB)', 13 < db < 18)
try:
    ncnn.check_output('test', 'stripes.png', hard, stripes_img)
    check('check_output passes a hard-edged upscale of blurred stripes', True)
except SystemExit as e:
    check(f'check_output passes a hard-edged upscale of blurred stripes ({e})', False)
noise = rng.integers(0, 256, good.shape).astype(np.uint8)
try:
    ncnn.check_output('test', 'noise.png', noise, lr_img)
    check('check_output stops the build on noise', False)
except SystemExit as e:
    check('check_output stops the build on noise, naming the file', 'noise.png' in str(e) and 'broken' in str(e))

finish()
