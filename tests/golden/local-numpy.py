#!/usr/bin/python3
"""local-numpy.py — an independent NumPy implementation of the local (tiled)
forensic feature (engine/dcr-op-local.h), residuals by array slicing and the
phase-grid DFTs by numpy.fft; writes local-numpy.h, the golden values
test-op-local.c checks the engine's reference against.
Run: /usr/bin/python3 tests/golden/local-numpy.py"""
import numpy as np

from residual_golden import write_header

MARGIN, WINDOW, DILATIONS = 6, 512, (1, 2, 3, 4, 6)



def features(img):
    H, W, _ = img.shape
    wh, ww = min(H, WINDOW), min(W, WINDOW)
    top, left = (H - wh) // 2, (W - ww) // 2
    nh, nw = (wh - 2 * MARGIN) // 24 * 24, (ww - 2 * MARGIN) // 24 * 24
    th, tw = (48 if nh >= 48 else 24), (48 if nw >= 48 else 24)
    rgb = img.astype(np.float32)
    chans = [rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114),
             rgb[..., 0] - rgb[..., 1], rgb[..., 2] - rgb[..., 1]]
    i0, j0 = top + MARGIN, left + MARGIN
    out = []
    for x in chans:
        x = x.astype(np.float64)

        def h(d, dj=0):
            return (x[i0:i0 + nh, j0 + dj - d:j0 + dj - d + nw] - 2 * x[i0:i0 + nh, j0 + dj:j0 + dj + nw]
                    + x[i0:i0 + nh, j0 + dj + d:j0 + dj + d + nw])

        def v(d, di=0):
            return (x[i0 + di - d:i0 + di - d + nh, j0:j0 + nw] - 2 * x[i0 + di:i0 + di + nh, j0:j0 + nw]
                    + x[i0 + di + d:i0 + di + d + nh, j0:j0 + nw])

        energy = [h(d) ** 2 + v(d) ** 2 for d in DILATIONS]
        ch, cv = h(1) * h(1, dj=1), v(1) * v(1, di=1)
        values = []
        for ty in range(nh // th):
            for tx in range(nw // tw):
                sl = (slice(ty * th, (ty + 1) * th), slice(tx * tw, (tx + 1) * tw))
                n = th * tw
                e = [en[sl].sum() / n for en in energy]
                t = [np.log(e[0] + 0.01)] + [np.log((e[k] + 0.001) / (e[0] + 0.001)) for k in range(1, 5)]
                e1 = energy[0][sl]
                for q in (2, 3, 4):
                    g = np.zeros((q, q))
                    for r in range(q):
                        for s in range(q):
                            g[r, s] = e1[r::q, s::q].sum()  # tile sides are multiples of 12
                    G = np.fft.fft2(g / (g.mean() + 1e-9))
                    for u in range(q):
                        for w in range(q):
                            if (u, w) != (0, 0) and not (((q - u) % q, (q - w) % q) < (u, w)):
                                t.append(abs(G[u, w]) / q ** 2)
                t.append(ch[sl].sum() / ((h(1)[sl] ** 2).sum() + 1e-6))
                t.append(cv[sl].sum() / ((v(1)[sl] ** 2).sum() + 1e-6))
                values.append(t)
        values = np.array(values)
        out += list(values.mean(0)) + list(values.max(0)) + list(values.min(0)) + list(values.std(0))
    return np.array(out)


CASES = [('48x48 one tile', 48, 48, 3), ('100x60 seed 7', 60, 100, 7), ('300x97 seed 11', 97, 300, 11),
         ('540x520 window', 520, 540, 5)]


def main():
    write_header(__file__, 'local-numpy', 'LocalNumpyCase', 'DCR_LOCAL_DIM', CASES, features, '%.9e')


if __name__ == '__main__':
    main()
