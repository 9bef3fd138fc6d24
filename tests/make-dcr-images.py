#!/usr/bin/env python3
# make-dcr-images.py — writes a tiny synthetic detection dataset as PNGs
# (standard library only): "scenes" are smooth colour fields with a few
# discs, real photos are a scene with small brightness changes and noise,
# fakes are a photo with a periodic high-frequency pattern laid over it
# (the kind of upsampling trace generators leave). Also a pairs CSV
# (fake,real) and a held-out set of new photos and fakes of the same scenes.
#
#   make-dcr-images.py OUTDIR [SCENES]
import os, random, struct, sys, zlib

W = H = 64


def png(path, px):
    raw = b''.join(b'\x00' + bytes(px[y * W * 3:(y + 1) * W * 3]) for y in range(H))
    def chunk(t, d):
        c = struct.pack('>I', len(d)) + t + d
        return c + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    data = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', W, H, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw, 6)) + chunk(b'IEND', b''))
    with open(path, 'wb') as f:
        f.write(data)


def scene(rng):
    c0 = [rng.uniform(30, 220) for _ in range(3)]
    gx = [rng.uniform(-1.5, 1.5) for _ in range(3)]
    gy = [rng.uniform(-1.5, 1.5) for _ in range(3)]
    discs = [(rng.uniform(0, W), rng.uniform(0, H), rng.uniform(5, 16), [rng.uniform(0, 255) for _ in range(3)])
             for _ in range(3)]
    px = []
    for y in range(H):
        for x in range(W):
            v = [c0[c] + gx[c] * (x - 32) + gy[c] * (y - 32) for c in range(3)]
            for (cx, cy, r, col) in discs:
                if (x - cx) ** 2 + (y - cy) ** 2 < r * r:
                    v = col
            px.extend(v)
    return px


def photo(rng, s):
    gain, bias = rng.uniform(0.92, 1.08), rng.uniform(-8, 8)
    return [max(0, min(255, int(v * gain + bias + rng.gauss(0, 3)))) for v in s]


def fake(rng, p):
    amp = rng.uniform(35, 50)
    out = []
    for y in range(H):
        for x in range(W):
            t = amp if (x + y) % 2 == 0 else -amp
            for c in range(3):
                out.append(max(0, min(255, int(p[(y * W + x) * 3 + c] + t))))
    return out


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    rng = random.Random(1234)
    for d in ('real', 'fake', 'test-real', 'test-fake'):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    pairs = ['fake,real']
    for i in range(n):
        s = scene(rng)
        for j in range(2):
            p = photo(rng, s)
            real = 'real/scene%02d-%d.png' % (i, j)
            png(os.path.join(out, real), p)
            fk = 'fake/scene%02d-%d-fake.png' % (i, j)
            png(os.path.join(out, fk), fake(rng, p))
            pairs.append('%s,%s' % (fk, real))
        png(os.path.join(out, 'test-real/scene%02d.png' % i), photo(rng, s))
        png(os.path.join(out, 'test-fake/scene%02d.png' % i), fake(rng, photo(rng, s)))
    with open(os.path.join(out, 'pairs.csv'), 'w') as f:
        f.write('\n'.join(pairs) + '\n')


if __name__ == '__main__':
    main()
