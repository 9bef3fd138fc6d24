#!/usr/bin/env python3
# cnn-ref.py — an independent reference for the forensic CNN's evidence
# (standard library only, dcr-cnn.h's definitions written out again): a
# small random cnn-v1 file, a test PNG whose pixels it knows, and for a PNG
# it wrote the CNN's three columns, block means and block rectangles, so that
# `dcr scan --json --tile-map` and `dcr report` can be checked against it.
#
#   cnn-ref.py make-cnn OUT SEED      a 3-layer net (3→4 k3 s2, 4→4 k3 s2, 4→1 k1)
#   cnn-ref.py make-png OUT W H SEED  an RGB PNG (rows unfiltered)
#   cnn-ref.py ref CNN PNG            JSON: mean, top, max, nbh, nbw, blocks, rects
import json, math, random, struct, sys, zlib

LAYERS = [(3, 4, 3, 2), (4, 4, 3, 2), (4, 1, 1, 1)]  # cin, cout, k, stride


def make_cnn(out, seed):
    rng = random.Random(seed)
    tensors, blobs, off = {}, b'', 0
    for l, (cin, cout, k, s) in enumerate(LAYERS):
        # the last layer scaled up, so that block means spread on both sides of 0
        bound = math.sqrt(3.0 / (k * k * cin)) * (12 if l == len(LAYERS) - 1 else 1)
        w = [rng.uniform(-bound, bound) for _ in range(cout * k * k * cin)]
        b = [rng.uniform(-0.5, 0.5) for _ in range(cout)]
        for name, vals, shape in ((f'layer{l}.weight', w, [cout, k, k, cin]), (f'layer{l}.bias', b, [cout])):
            data = struct.pack('<%df' % len(vals), *vals)
            tensors[name] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [off, off + len(data)]}
            blobs += data
            off += len(data)
    tensors['__metadata__'] = {'format': 'dcr-cnn', 'version': 'cnn-v1',
                               'strides': ','.join(str(s) for (_, _, _, s) in LAYERS)}
    head = json.dumps(tensors).encode()
    head += b' ' * (-len(head) % 8)
    open(out, 'wb').write(struct.pack('<Q', len(head)) + head + blobs)


def make_png(out, w, h, seed):
    rng = random.Random(seed)
    px = bytearray()
    for y in range(h):
        for x in range(w):
            base = 96 + 60 * math.sin(x / 9.0) * math.cos(y / 13.0)
            if w // 2 <= x < w // 2 + 48 and h // 3 <= y < h // 3 + 48:
                base += 30 * ((x + y) % 2 * 2 - 1)  # a patch of high-frequency texture
            px.extend(max(0, min(255, int(base + c * 20 + rng.randint(-12, 12)))) for c in range(3))
    raw = b''.join(b'\x00' + bytes(px[y * w * 3:(y + 1) * w * 3]) for y in range(h))

    def chunk(t, d):
        c = struct.pack('>I', len(d)) + t + d
        return c + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(out, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                          + chunk(b'IDAT', zlib.compress(raw, 6)) + chunk(b'IEND', b''))


def read_png(path):
    """Only what make_png writes: 8-bit RGB, one IDAT, filter 0 rows."""
    b = open(path, 'rb').read()
    w, h = struct.unpack('>II', b[16:24])
    i, idat = 8, b''
    while i < len(b):
        n = struct.unpack('>I', b[i:i + 4])[0]
        if b[i + 4:i + 8] == b'IDAT':
            idat += b[i + 8:i + 8 + n]
        i += 12 + n
    raw = zlib.decompress(idat)
    rows = []
    for y in range(h):
        r = raw[y * (w * 3 + 1):(y + 1) * (w * 3 + 1)]
        assert r[0] == 0
        rows.append(r[1:])
    return w, h, rows


def read_cnn(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    head = json.loads(b[8:8 + n])
    strides = [int(s) for s in head['__metadata__']['strides'].split(',')]
    layers = []
    for l, s in enumerate(strides):
        ws, bs = head[f'layer{l}.weight'], head[f'layer{l}.bias']
        cout, k, _, cin = ws['shape']
        get = lambda t: list(struct.unpack('<%df' % ((t['data_offsets'][1] - t['data_offsets'][0]) // 4),
                                            b[8 + n + t['data_offsets'][0]:8 + n + t['data_offsets'][1]]))
        layers.append((cin, cout, k, s, get(ws), get(bs)))
    return layers


def ref(cnn_path, png_path):
    layers = read_cnn(cnn_path)
    W, H, rows = read_png(png_path)
    h, w = min(H, 512), min(W, 512)
    top, left = (H - h) // 2 // 8 * 8, (W - w) // 2 // 8 * 8
    p = [[[rows[top + i][(left + j) * 3 + c] / 32.0 for c in range(3)] for j in range(w)] for i in range(h)]
    x = [[[p[i + 2][j + 2][c] - sum(p[i + a][j + b][c] for a in range(5) for b in range(5)) / 25.0
           for c in range(3)] for j in range(w - 4)] for i in range(h - 4)]
    S = 1
    for l, (cin, cout, k, s, wt, bias) in enumerate(layers):
        ih, iw = len(x), len(x[0])
        oh, ow = (ih - k) // s + 1, (iw - k) // s + 1
        y = []
        for i in range(oh):
            row = []
            for j in range(ow):
                cell = []
                for o in range(cout):
                    acc = bias[o]
                    for a in range(k):
                        xr = x[i * s + a]
                        for b in range(k):
                            v = xr[j * s + b]
                            base = ((o * k + a) * k + b) * cin
                            for c in range(cin):
                                acc += wt[base + c] * v[c]
                    if l + 1 < len(layers) and acc < 0:
                        acc = 0.0
                    cell.append(acc)
                row.append(cell)
            y.append(row)
        x = y
        S *= s
    hm, wm = len(x), len(x[0])
    m = [[x[i][j][0] for j in range(wm)] for i in range(hm)]
    t = max(1, round(48 / S))
    mean = sum(map(sum, m)) / (hm * wm)
    nbh, nbw = hm // t, wm // t
    if nbh < 1 or nbw < 1:
        nbh = nbw = 1
        blocks = [mean]
        rects = [[left + 2, top + 2, min(wm * S, w - 2), min(hm * S, h - 2)]]
    else:
        blocks, rects = [], []
        for a in range(nbh):
            for b in range(nbw):
                blocks.append(sum(m[a * t + u][b * t + v] for u in range(t) for v in range(t)) / (t * t))
                x0, y0 = 2 + b * t * S, 2 + a * t * S
                rects.append([left + x0, top + y0, min(x0 + t * S, w) - x0, min(y0 + t * S, h) - y0])
    srt = sorted(blocks, reverse=True)
    k = min(4, len(blocks))
    print(json.dumps({'mean': mean, 'top': sum(srt[:k]) / k, 'max': srt[0], 'nbh': nbh, 'nbw': nbw,
                      'blocks': blocks, 'rects': rects}))


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'make-cnn':
        make_cnn(sys.argv[2], int(sys.argv[3]))
    elif cmd == 'make-png':
        make_png(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == 'ref':
        ref(sys.argv[2], sys.argv[3])
    else:
        sys.exit('usage: cnn-ref.py make-cnn OUT SEED | make-png OUT W H SEED | ref CNN PNG')
