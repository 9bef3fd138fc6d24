#!/usr/bin/python3
"""forensic-numpy.py — an independent NumPy implementation of the forensic
residual feature (engine/dcr-op-forensic.h), with numpy.fft for the phase-grid
DFTs; writes forensic-numpy.h, the golden values test-op-forensic.c checks the
engine's reference against. Run: /usr/bin/python3 tests/golden/forensic-numpy.py"""
import numpy as np

from residual_golden import write_header

PERIOD, MARGIN, WINDOW = 24, 6, 512
SCALES = dict(level=0.4, shape=4.0, corr=5.0, energy=70.0, pcorr=70.0)  # dcr_forensic_scales_v1



def features(img):
    H, W, _ = img.shape
    wh, ww = min(H, WINDOW), min(W, WINDOW)
    top, left = (H - wh) // 2, (W - ww) // 2
    nh, nw = (wh - 2 * MARGIN) // PERIOD * PERIOD, (ww - 2 * MARGIN) // PERIOD * PERIOD
    rgb = img.astype(np.float32)
    chans = [rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114),
             rgb[..., 0] - rgb[..., 1], rgb[..., 2] - rgb[..., 1]]
    out = []
    n = nh * nw / PERIOD ** 2
    N = n * PERIOD ** 2
    for g in chans:
        g = g.astype(np.float64)
        h = np.zeros_like(g)
        v = np.zeros_like(g)
        h[:, 1:-1] = g[:, :-2] - 2 * g[:, 1:-1] + g[:, 2:]
        v[1:-1, :] = g[:-2, :] - 2 * g[1:-1, :] + g[2:, :]
        i0, j0 = top + MARGIN, left + MARGIN
        A = lambda a, di=0, dj=0: a[i0 + di:i0 + di + nh, j0 + dj:j0 + dj + nw]
        hs, vs = A(h), A(v)
        terms = [hs * hs, vs * vs, np.abs(hs), np.abs(vs)]
        terms += [hs * A(h, 0, L) for L in range(1, 5)]
        terms += [vs * A(v, L, 0) for L in range(1, 5)]
        terms.append(hs * vs)
        acc = np.stack([t.reshape(nh // PERIOD, PERIOD, nw // PERIOD, PERIOD).sum(axis=(0, 2)) for t in terms])
        S = acc.sum(axis=(1, 2))
        out.append(np.log((S[0] + S[1]) / N + 1e-2) * SCALES['level'])
        out.append(S[2] ** 2 / (N * S[0] + 1e-6) * SCALES['shape'])
        out.append(S[3] ** 2 / (N * S[1] + 1e-6) * SCALES['shape'])
        out += [S[4 + L] / (S[0] + 1e-6) * SCALES['corr'] for L in range(4)]
        out += [S[8 + L] / (S[1] + 1e-6) * SCALES['corr'] for L in range(4)]
        out.append(S[12] / np.sqrt(S[0] * S[1] + 1e-6) * SCALES['corr'])
        for q in (2, 3, 4, 8):
            fold = lambda a: a.reshape(PERIOD // q, q, PERIOD // q, q).sum(axis=(0, 2))
            e = fold(acc[0] + acc[1]) + 1e-3 * n * (PERIOD // q) ** 2
            r = fold(acc[4] + acc[8]) / e
            E = np.fft.fft2(e / e.mean()) / q ** 2
            R = np.fft.fft2(r) / q ** 2
            for u in range(q):
                for w in range(q):
                    cu, cw = (-u) % q, (-w) % q
                    if (u, w) == (0, 0) or (cu, cw) < (u, w):
                        continue
                    out.append(abs(E[u, w]) * SCALES['energy'])
                    out.append(abs(R[u, w]) * SCALES['pcorr'])
    return np.array(out)


CASES = [('61x50 seed 3', 50, 61, 3), ('300x97 seed 11', 97, 300, 11), ('540x520 window', 520, 540, 5)]


def main():
    write_header(__file__, 'forensic-numpy', 'ForensicNumpyCase', 'DCR_FORENSIC_DIM', CASES, features, '%.9g')


if __name__ == '__main__':
    main()
