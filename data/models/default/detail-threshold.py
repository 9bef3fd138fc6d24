#!/usr/bin/python3
"""detail-threshold.py — the line under which an image has "little fine detail" (engine/dcr-detail.h,
DCR_DETAIL_LOW): a percentile of the detail of the real crops the shipped model was trained and validated on.

Usage: detail-threshold.py BENCHMARK_DIR [PERCENTILE (5)] [FOLDER…]
Detail, as dcr_detail_measure computes it: on the luma 0.299R + 0.587G + 0.114B of the centred
min(H, 512) × min(W, 512) window, the mean over the pixels at least one from its edges of (|h| + |v|) / 2,
h and v the second differences along a row and down a column. Prints the percentile, the median, and with
extra folders (relative to BENCHMARK_DIR) the median of each of their photos.
"""
import collections
import glob
import os
import re
import sys

import numpy as np
from PIL import Image


def detail(path):
    a = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32)
    h, w = a.shape[:2]
    wh, ww = min(h, 512), min(w, 512)
    t, l = (h - wh) // 2, (w - ww) // 2
    a = a[t:t + wh, l:l + ww]
    y = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    c = y[1:-1, 1:-1]
    hh = np.abs(y[1:-1, :-2] - 2 * c + y[1:-1, 2:])
    vv = np.abs(y[:-2, 1:-1] - 2 * c + y[2:, 1:-1])
    return float((hh + vv).mean() / 2)


def main():
    data = sys.argv[1]
    pct = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    reals = sorted(glob.glob(os.path.join(data, 'train/real/*.png')) + glob.glob(os.path.join(data, 'val/real/*.png')))
    if not reals:
        sys.exit(f'detail-threshold: no PNGs under {data}/train/real or val/real')
    v = np.array([detail(f) for f in reals])
    print('%d training and validation reals: %gth percentile %.2f, median %.2f' % (len(v), pct, np.percentile(v, pct), np.median(v)))
    for folder in sys.argv[3:]:
        by = collections.defaultdict(list)
        for f in sorted(glob.glob(os.path.join(data, folder, '*.png'))):
            m = re.match(r'^(.*)-s(768|1024)-', os.path.basename(f))
            by[m.group(1) if m else '?'].append(detail(f))
        print(folder + ': ' + ', '.join('%s %.2f' % (p, np.median(x)) for p, x in sorted(by.items(), key=lambda kv: np.median(kv[1]))))


if __name__ == '__main__':
    main()
