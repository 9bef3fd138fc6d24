#!/usr/bin/env python3
# make-malformed.py — writes the malformed-input suite (issue 11): valid
# variants (16-bit, palette + tRNS, interlaced, gray + alpha, CMYK and
# progressive JPEG, EXIF orientations 1–8), and from them truncations at many
# offsets, wrong magic, zero bytes, random corruption, decompression bombs,
# oversized and looping EXIF, safetensors with NaN/Inf, mismatched shapes and
# header-length overflow. Generated at test time, never committed.
#
#   make-malformed.py OUTDIR            the suite + OUTDIR/manifest.tsv
#   make-malformed.py --seeds CORPUSDIR small valid seeds for tests/fuzz/corpus
#
# manifest.tsv: KIND <tab> EXPECT <tab> FILE <tab> WHAT, where KIND is how the
# file is read (image, exif, safetensors, model, bank) and EXPECT is ok (must
# load), error (must fail with a message naming the file) or any (either, but
# never a crash). Standard library plus PIL (JPEG variants; skipped without it).
import io, json, math, os, random, sqlite3, struct, sys, zlib

try:
    from PIL import Image
except ImportError:  # the JPEG variants need an encoder; PNG is written by hand
    Image = None

# ---------------------------------------------------------------- PNG writer


def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)


CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def pack_row(samples, depth):
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b''.join(struct.pack('>H', s) for s in samples)
    out, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        bits += depth
        if bits == 8:
            out.append(acc)
            acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return bytes(out)


def png(w, h, ctype=2, depth=8, interlace=False, plte=None, trns=None, exif=None, sample=None):
    """A PNG whose sample (x, y, c) is sample(x, y, c) (default: a gradient)."""
    ch = CHANNELS[ctype]
    top = (1 << depth) - 1
    if sample is None:
        sample = lambda x, y, c: ((x * 37 + y * 11 + c * 71) % (top + 1)) if ctype != 3 else (x + y) % (top + 1)

    def rows(x0, y0, dx, dy):
        raw = bytearray()
        for y in range(y0, h, dy):
            xs = range(x0, w, dx)
            if len(xs) == 0:
                continue
            raw += b'\x00' + pack_row([sample(x, y, c) for x in xs for c in range(ch)], depth)
        return raw

    raw = b''.join(rows(*p) for p in ADAM7) if interlace else rows(0, 0, 1, 1)
    out = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, int(interlace)))
    if exif is not None:
        out += chunk(b'eXIf', exif)
    if plte is not None:
        out += chunk(b'PLTE', plte)
    if trns is not None:
        out += chunk(b'tRNS', trns)
    return out + chunk(b'IDAT', zlib.compress(bytes(raw), 6)) + chunk(b'IEND', b'')


def png_header_only(w, h, idat):
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', idat) + chunk(b'IEND', b''))


def zeros_deflate(n_bytes, row=None):
    """A zlib stream of n_bytes zeros built from one repeated full-flush
    block, so gigabytes of output cost a few MB and no time to make."""
    block = 1 << 20
    c = zlib.compressobj(9)
    first = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    n = n_bytes // block
    # the Adler-32 of n_bytes zeros is 1 + n_bytes·2^16 (mod 65521), i.e. (n mod 65521) << 16 | 1
    tail = c.flush(zlib.Z_FINISH)[:-4] + struct.pack('>I', (((n * block) % 65521) << 16) | 1)
    return first + again * (n - 1) + tail


# ---------------------------------------------------------------- EXIF (TIFF)


def tiff(le=True, orientation=None, make=None, count_override=None, extra_ifd_entries=0, loop=False,
         huge_value=False):
    e = '<' if le else '>'
    entries = []
    strings = b''
    base = 8 + 2 + 12 * (2 + extra_ifd_entries) + 4
    if orientation is not None:
        entries.append((0x0112, 3, 1, struct.pack(e + 'HH', orientation, 0)))
    if make is not None:
        s = make + b'\0'
        if huge_value:
            entries.append((0x010f, 2, 0x7ffffff0, struct.pack(e + 'I', base)))
        else:
            entries.append((0x010f, 2, len(s), struct.pack(e + 'I', base + len(strings))))
        strings += s
    for i in range(extra_ifd_entries):
        entries.append((0x9000 + i, 7, 4, b'abcd'))
    n = count_override if count_override is not None else len(entries)
    ifd = struct.pack(e + 'H', n)
    for tag, typ, cnt, val in entries:
        ifd += struct.pack(e + 'HHI', tag, typ, cnt) + val
    ifd += struct.pack(e + 'I', 8 if loop else 0)  # next IFD: itself when looping
    return (b'II' if le else b'MM') + struct.pack(e + 'HI', 42, 8) + ifd + strings


def exif_app1(t):
    return b'Exif\0\0' + t

# ---------------------------------------------------------------- JPEG


def jpeg(w, h, mode='RGB', **save):
    if Image is None:
        return None
    img = Image.new(mode, (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            if mode == 'L':
                px[x, y] = (x * 9 + y * 5) % 256
            elif mode == 'CMYK':
                px[x, y] = ((x * 9) % 256, (y * 7) % 256, (x + y) % 256, 40)
            else:
                px[x, y] = ((x * 9) % 256, (y * 7) % 256, (x * y) % 256)
    buf = io.BytesIO()
    img.save(buf, 'JPEG', **save)
    return buf.getvalue()


def jpeg_with_app1(base, payload):
    """Inserts an APP1 segment right after SOI (payload up to 65533 bytes)."""
    return base[:2] + b'\xff\xe1' + struct.pack('>H', len(payload) + 2) + payload + base[2:]


def jpeg_sof_size(base, w, h):
    """Rewrites the frame header's dimensions."""
    i = 2
    while i + 4 <= len(base):
        marker, seglen = base[i + 1], struct.unpack('>H', base[i + 2:i + 4])[0]
        if marker in (0xc0, 0xc1, 0xc2):
            return base[:i + 5] + struct.pack('>HH', h, w) + base[i + 9:]
        i += 2 + seglen
    raise ValueError('no SOF')

# ---------------------------------------------------------------- safetensors


def safetensors(tensors, metadata=None, header_len=None, pad_header=True):
    """tensors: [(name, dtype, shape, bytes)]"""
    hdr, data = {}, b''
    for name, dtype, shape, raw in tensors:
        hdr[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        hdr['__metadata__'] = metadata
    h = json.dumps(hdr).encode()
    if pad_header:
        h += b' ' * (-len(h) % 8)
    n = len(h) if header_len is None else header_len
    return struct.pack('<Q', n) + h + data


def raw_st(header, data):
    return struct.pack('<Q', len(header)) + header + data


D, H, HH = 4, 4, 4


def model_params(gate=False):
    p = [('fusion.query_layer.weight', [H, D]), ('fusion.query_layer.bias', [H]),
         ('fusion.key_layer.weight', [H, D]), ('fusion.key_layer.bias', [H]),
         ('fusion.value_layer.weight', [H, D]), ('fusion.value_layer.bias', [H]),
         ('fusion.out_layer.weight', [D, H]), ('fusion.out_layer.bias', [D])]
    if gate:
        p += [('fusion.gate.0.weight', [D, 2 * D]), ('fusion.gate.0.bias', [D])]
    return p + [('classifier.weight', [2, D]), ('classifier.bias', [2]),
                ('residual_head.head.0.weight', [HH, D]), ('residual_head.head.0.bias', [HH]),
                ('residual_head.head.3.weight', [1, HH]), ('residual_head.head.3.bias', [1])]


def model_meta(**over):
    m = {'format': 'dcr-model', 'version': '1', 'backbone': 'fuzz@000000000000', 'dim': str(D), 'k': '2',
         'hidden': str(H), 'head_hidden': str(HH), 'gate': 'false', 'dropout': '0.3', 'threshold': '0.5',
         'band_lo': '0.4', 'band_hi': '0.6'}
    m.update(over)
    return {k: v for k, v in m.items() if v is not None}


def f32(values):
    return struct.pack('<%df' % len(values), *values)


def model(gate=False, meta=None, shape_fix=None, value_fix=None, dtype='F32'):
    ts = []
    for i, (name, shape) in enumerate(model_params(gate)):
        if shape_fix and name in shape_fix:
            shape = shape_fix[name]
        n = math.prod(shape)
        vals = [((i * 7 + j * 3) % 11 - 5) / 20 for j in range(n)]
        if value_fix and name in value_fix:
            vals[n // 2] = value_fix[name]
        raw = f32(vals)
        if dtype == 'F16':
            raw = struct.pack('<%de' % n, *vals)
        ts.append((name, dtype, shape, raw))
    return safetensors(ts, meta if meta is not None else model_meta(gate='true' if gate else 'false'))


TILE_NIN = 69


def tile_head(hidden=3, meta=None, shape_fix=None, value_fix=None):
    """A tile head (engine/dcr-tile-head.h): mean, std [69], w1 [H, 69], b1 [H], w2 [1, H], b2 [1]."""
    shapes = [('mean', [TILE_NIN]), ('std', [TILE_NIN]), ('w1', [hidden, TILE_NIN]), ('b1', [hidden]),
              ('w2', [1, hidden]), ('b2', [1])]
    ts = []
    for i, (name, shape) in enumerate(shapes):
        if shape_fix and name in shape_fix:
            shape = shape_fix[name]
        n = math.prod(shape)
        vals = [1.0 + j % 3 if name == 'std' else ((i * 5 + j * 3) % 13 - 6) / 25 for j in range(n)]
        if value_fix and name in value_fix:
            vals[n // 2] = value_fix[name]
        ts.append((name, 'F32', shape, f32(vals)))
    m = {'format': 'dcr-tile-head', 'version': 'tiles-v1', 'training': '{}'}
    if meta:
        m.update(meta)
    return safetensors(ts, {k: v for k, v in m.items() if v is not None})


def cnn(layers=((8, 3, 3), (16, 3, 8), (1, 1, 16)), strides='2,2,1', meta=None, value_fix=None, drop=(), extra=()):
    """A forensic CNN (engine/dcr-cnn.h): layer{l}.weight [cout, k, k, cin], layer{l}.bias [cout] for
    layers given as (cout, k, cin); metadata format, version, strides."""
    ts = []
    for l, (cout, k, cin) in enumerate(layers):
        for name, shape in (('layer%d.weight' % l, [cout, k, k, cin]), ('layer%d.bias' % l, [cout])):
            if name in drop:
                continue
            n = math.prod(shape)
            vals = [((l * 7 + j * 3) % 13 - 6) / 25 for j in range(n)]
            if value_fix and name in value_fix:
                vals[n // 2] = value_fix[name]
            ts.append((name, 'F32', shape, f32(vals)))
    for name, shape in extra:
        ts.append((name, 'F32', shape, f32([0.5] * math.prod(shape))))
    m = {'format': 'dcr-cnn', 'version': 'cnn-v1', 'strides': strides, 'training': '{}'}
    if meta:
        m.update(meta)
    return safetensors(ts, {k: v for k, v in m.items() if v is not None})

# ---------------------------------------------------------------- the suite


class Suite:
    def __init__(self, out):
        self.out, self.rows, self.n = out, [], 0

    def add(self, kind, expect, ext, data, what):
        self.n += 1
        name = '%04d-%s.%s' % (self.n, ''.join(c if c.isalnum() or c in '-_' else '-' for c in what)[:48], ext)
        with open(os.path.join(self.out, name), 'wb') as f:
            f.write(data)
        self.rows.append('%s\t%s\t%s\t%s' % (kind, expect, name, what))

    def write_manifest(self):
        with open(os.path.join(self.out, 'manifest.tsv'), 'w') as f:
            f.write('\n'.join(self.rows) + '\n')


def valid_images():
    """(name, ext, bytes, data_end): data_end is where a cut must be an error."""
    pal = bytes(v for i in range(16) for v in (i * 16, 255 - i * 16, (i * 40) % 256))
    imgs = [
        ('png-rgb8', 'png', png(23, 17)),
        ('png-rgba8', 'png', png(9, 13, ctype=6)),
        ('png-gray8', 'png', png(16, 5, ctype=0)),
        ('png-gray-alpha8', 'png', png(7, 7, ctype=4)),
        ('png-gray-alpha16', 'png', png(5, 6, ctype=4, depth=16)),
        ('png-rgb16', 'png', png(11, 6, depth=16)),
        ('png-rgba16', 'png', png(6, 4, ctype=6, depth=16)),
        ('png-gray16', 'png', png(8, 8, ctype=0, depth=16)),
        ('png-gray1', 'png', png(13, 5, ctype=0, depth=1)),
        ('png-gray2', 'png', png(13, 5, ctype=0, depth=2)),
        ('png-gray4', 'png', png(13, 5, ctype=0, depth=4)),
        ('png-palette4', 'png', png(10, 10, ctype=3, depth=4, plte=pal)),
        ('png-palette8-trns', 'png', png(12, 9, ctype=3, depth=8, plte=pal, trns=bytes(range(0, 256, 32)))),
        ('png-gray-trns', 'png', png(6, 6, ctype=0, trns=struct.pack('>H', 37))),
        ('png-rgb-trns', 'png', png(6, 6, ctype=2, trns=struct.pack('>HHH', 1, 2, 3))),
        ('png-interlaced-rgb8', 'png', png(19, 21, interlace=True)),
        ('png-interlaced-palette2', 'png', png(9, 11, ctype=3, depth=2, plte=pal[:12], interlace=True)),
        ('png-interlaced-gray-alpha16', 'png', png(10, 3, ctype=4, depth=16, interlace=True)),
        ('png-1x1', 'png', png(1, 1)),
    ]
    for o in range(1, 9):
        imgs.append(('png-exif-orientation%d' % o, 'png', png(6, 4, exif=tiff(le=o % 2 == 0, orientation=o))))
    if Image is not None:
        imgs += [
            ('jpeg-rgb-baseline', 'jpg', jpeg(24, 16, quality=90)),
            ('jpeg-gray', 'jpg', jpeg(17, 9, 'L')),
            ('jpeg-progressive', 'jpg', jpeg(33, 20, progressive=True)),
            ('jpeg-cmyk', 'jpg', jpeg(16, 16, 'CMYK')),
            ('jpeg-444', 'jpg', jpeg(12, 12, subsampling=0)),
            ('jpeg-optimized', 'jpg', jpeg(20, 8, optimize=True)),
            ('jpeg-q20-odd', 'jpg', jpeg(31, 29, quality=20)),
        ]
        base = jpeg(8, 6)
        for o in range(1, 9):
            imgs.append(('jpeg-exif-orientation%d' % o, 'jpg',
                         jpeg_with_app1(base, exif_app1(tiff(le=o % 2 == 1, orientation=o, make=b'TestCam')))))
    return [(n, e, b) for n, e, b in imgs if b is not None]


def cut_must_fail(ext, data, off):
    """Cutting before the last chunk (PNG IEND) or the EOI marker (JPEG)
    loses image data or structure, which must be reported."""
    return off < (len(data) - 12 if ext == 'png' else len(data) - 2)


def build(out):
    os.makedirs(out, exist_ok=True)
    s = Suite(out)
    rng = random.Random(11)
    imgs = valid_images()
    for name, ext, data in imgs:
        s.add('image', 'ok', ext, data, name)

    # Truncations: every offset of the small ones, ~40 spread offsets of the rest.
    for name, ext, data in imgs:
        offs = sorted(set(range(1, len(data))) if len(data) <= 120 else
                      set([1, 2, 3, 4, 7, 8, 9, 16, 24, 33, len(data) - 1, len(data) - 2, len(data) - 12]
                          + [rng.randrange(1, len(data)) for _ in range(28)]))
        for off in offs:
            s.add('image', 'error' if cut_must_fail(ext, data, off) else 'any', ext, data[:off],
                  '%s-cut%d' % (name, off))

    # Random corruption: bytes flipped inside the file (header CRCs catch some,
    # the decoders the rest); whatever happens, no crash.
    for name, ext, data in imgs:
        for i in range(8):
            b = bytearray(data)
            for _ in range(1 + i):
                b[rng.randrange(len(b))] = rng.randrange(256)
            s.add('image', 'any', ext, bytes(b), '%s-flip%d' % (name, i))

    # Wrong magic and zero bytes.
    for name, ext, data in imgs[:12]:
        b = bytearray(data)
        b[rng.randrange(1, 3)] ^= 0x20
        s.add('image', 'error', ext, bytes(b), '%s-bad-magic' % name)
    for n in (0, 1, 2, 7, 8, 64, 4096):
        s.add('image', 'error', 'png', bytes(n), 'zeros-%d' % n)
        s.add('image', 'error', 'jpg', b'\xff' * n, 'ff-bytes-%d' % n)
    for what, data in [('gif-magic', b'GIF89a' + bytes(40)), ('text', b'hello, this is not an image\n'),
                       ('pdf', b'%PDF-1.4\n' + bytes(100)), ('bmp', b'BM' + bytes(60)),
                       ('webp', b'RIFF\x10\x00\x00\x00WEBPVP8 ' + bytes(20)), ('tiff', b'II*\0' + bytes(60))]:
        s.add('image', 'error', 'png', data, what)

    # Decompression bombs: the header alone must stop them.
    small = zlib.compress(bytes(64))
    s.add('image', 'error', 'png', png_header_only(100000, 100000, small), 'bomb-png-header-100000x100000')
    s.add('image', 'error', 'png', png_header_only(0x7fffffff, 1, small), 'bomb-png-width-2p31')
    s.add('image', 'error', 'png', png_header_only(0, 10, small), 'png-width-zero')
    s.add('image', 'error', 'png', png_header_only(0x80000000, 0x80000000, small), 'png-header-2p31-square')
    # > 4 GiB of zeros behind a 65536 × 65536 gray header (4 MiB on disk).
    s.add('image', 'error', 'png', png_header_only(65536, 65537, zeros_deflate((65536 + 1) * 65537 + (1 << 20))),
          'bomb-png-inflates-to-4GiB')
    # The same kind of stream behind a small header: refused as a bomb before
    # libpng would inflate it to its end (test-malformed times every case).
    # A few extra bytes, as some encoders leave, are still fine.
    s.add('image', 'ok', 'png', png_header_only(8, 8, zlib.compress(bytes(72 + 4000))), 'png-extra-idat-4000')
    s.add('image', 'error', 'png', png_header_only(64, 64, zeros_deflate(1 << 30)), 'bomb-png-1GiB-extra-idat')
    s.add('image', 'error', 'png', png_header_only(64, 64, zeros_deflate(5 << 30)), 'bomb-png-5GiB-extra-idat')
    if Image is not None:
        base = jpeg(8, 8)
        for w, h in [(100000 % 65536, 65535), (65535, 65535), (0, 8), (8, 0), (30000, 30000)]:
            s.add('image', 'error', 'jpg', jpeg_sof_size(base, w, h), 'bomb-jpeg-sof-%dx%d' % (w, h))
        prog = jpeg(16, 16, progressive=True)
        s.add('image', 'error', 'jpg', jpeg_sof_size(prog, 60000, 60000), 'bomb-jpeg-progressive-60000')
        # Many scans of a progressive JPEG: progressive data repeated up to the limit.
        body = prog[prog.index(b'\xff\xda'):-2]
        s.add('image', 'any', 'jpg', prog[:prog.index(b'\xff\xda')] + body * 200 + b'\xff\xd9',
              'jpeg-progressive-scans-x200')

        # EXIF in JPEG: orientations outside 1–8, oversized, looping, lying counts.
        for o in (0, 9, 255, 65535):
            s.add('image', 'ok', 'jpg', jpeg_with_app1(base, exif_app1(tiff(orientation=o))), 'jpeg-exif-orient%d' % o)
        big = exif_app1(tiff(orientation=6, make=b'A' * 65000))
        s.add('image', 'ok', 'jpg', jpeg_with_app1(base, big), 'jpeg-exif-oversized-65k')
        s.add('image', 'ok', 'jpg', jpeg_with_app1(base, exif_app1(tiff(orientation=3, loop=True))), 'jpeg-exif-loop')
        s.add('image', 'ok', 'jpg', jpeg_with_app1(base, exif_app1(tiff(orientation=3, count_override=65535))),
              'jpeg-exif-count-65535')
        s.add('image', 'ok', 'jpg', jpeg_with_app1(base, exif_app1(tiff(make=b'Cam', huge_value=True))),
              'jpeg-exif-huge-string')
        many = jpeg_with_app1(base, exif_app1(tiff(orientation=2)))
        for _ in range(40):
            many = jpeg_with_app1(many, exif_app1(tiff(orientation=5, make=b'B' * 1500)))
        s.add('image', 'ok', 'jpg', many, 'jpeg-exif-41-app1-segments')
        s.add('image', 'error', 'jpg', base[:2] + b'\xff\xe1\xff\xff' + b'Exif\0\0II*\0', 'jpeg-app1-cut')

    # Raw EXIF blocks through dcr_exif_parse: never fails, never reads outside.
    blocks = [tiff(le=le, orientation=o, make=b'Make') for le in (True, False) for o in range(1, 9)]
    blocks += [tiff(orientation=1, loop=True), tiff(count_override=0xffff), tiff(make=b'X', huge_value=True),
               tiff(orientation=1, extra_ifd_entries=200), exif_app1(tiff(orientation=8, make=b'Z' * 300))]
    for i, b in enumerate(blocks):
        s.add('exif', 'any', 'exif', b, 'exif-block%d' % i)
        for off in range(1, len(b), max(1, len(b) // 12)):
            s.add('exif', 'any', 'exif', b[:off], 'exif-block%d-cut%d' % (i, off))
    for n in (0, 1, 7, 8, 65536):
        s.add('exif', 'any', 'exif', bytes(n), 'exif-zeros-%d' % n)

    # Model weights (safetensors).
    good = model()
    s.add('model', 'ok', 'safetensors', good, 'model-valid')
    s.add('model', 'ok', 'safetensors', model(gate=True), 'model-valid-gate')
    s.add('model', 'ok', 'safetensors', model(dtype='F16'), 'model-valid-f16')
    for name, _ in model_params()[::2]:
        for v, vn in ((float('nan'), 'nan'), (float('inf'), 'inf'), (float('-inf'), 'neginf')):
            s.add('model', 'error', 'safetensors', model(value_fix={name: v}), 'model-%s-%s' % (vn, name))
    for name, shape in model_params(gate=True):
        for bad in ([*shape[:-1], shape[-1] + 1], shape + [1], [max(1, math.prod(shape))][:1] if len(shape) > 1 else [1, shape[0]]):
            s.add('model', 'error', 'safetensors', model(gate=True, meta=model_meta(gate='true'), shape_fix={name: bad}),
                  'model-shape-%s-%s' % (name, 'x'.join(map(str, bad))))
    for key, val in [('format', None), ('format', 'other'), ('version', '2'), ('version', '0'), ('version', 'x'),
                     ('dim', '0'), ('dim', '5'), ('dim', '99999999999'), ('k', '0'), ('k', '33'), ('hidden', '0'),
                     ('gate', 'maybe'), ('gate', None), ('dropout', '1'), ('dropout', 'nan'), ('threshold', 'inf'),
                     ('threshold', '0.7'), ('band_lo', '-0.1'), ('band_hi', '1.5'), ('backbone', ''),
                     ('backbone', None), ('head_hidden', '-1')]:
        s.add('model', 'error', 'safetensors', model(meta=model_meta(**{key: val})), 'model-meta-%s-%s' % (key, val))
    for off in sorted(set([1, 4, 7, 8, 9, 20, len(good) - 1, len(good) - 4] +
                          [rng.randrange(1, len(good)) for _ in range(40)])):
        s.add('model', 'error', 'safetensors', good[:off], 'model-cut%d' % off)
    # score fusion in the model's metadata (dcr-model.h)
    s.add('model', 'ok', 'safetensors', model(meta=model_meta(fusion='0.5,0.25,-1', fusion_column='3')), 'model-fusion')
    for fusion, col in [('0.5,0.25', '3'), ('0.5,x,1', '3'), ('nan,1,1', '3'), ('1,1,inf', '3'), ('1,1,1', '4'),
                        ('1,1,1', '-1'), ('1,1,1', None), ('', '0'), ('1,,1', '0')]:
        s.add('model', 'error', 'safetensors', model(meta=model_meta(fusion=fusion, fusion_column=col)),
              'model-fusion-%s-%s' % (fusion.replace(',', '_') or 'empty', col))
    # a decision of its own for JPEG files (dcr-model.h): threshold, band low, band high
    s.add('model', 'ok', 'safetensors', model(meta=model_meta(jpeg_decision='0.6,0.1,0.9')), 'model-jpeg-decision')
    for jd in ['0.6,0.1', '0.6,0.1,0.9,1', '0.6,x,0.9', 'nan,0.1,0.9', '0.6,0.1,inf', '0.6,0.7,0.9', '0.6,0.1,0.5',
               '0.6,-0.1,0.9', '0.6,0.1,1.5', '', '0.6,,0.9']:
        s.add('model', 'error', 'safetensors', model(meta=model_meta(jpeg_decision=jd)),
              'model-jpeg-decision-%s' % (jd.replace(',', '_') or 'empty'))

    # Tile heads (engine/dcr-tile-head.h).
    th = tile_head()
    s.add('tile-head', 'ok', 'safetensors', th, 'tile-head-valid')
    s.add('tile-head', 'ok', 'safetensors', tile_head(hidden=256), 'tile-head-valid-256')
    for name in ('mean', 'std', 'w1', 'b1', 'w2', 'b2'):
        for v, vn in ((float('nan'), 'nan'), (float('inf'), 'inf')):
            s.add('tile-head', 'error', 'safetensors', tile_head(value_fix={name: v}), 'tile-head-%s-%s' % (vn, name))
    for v in (0.0, -1.0):
        s.add('tile-head', 'error', 'safetensors', tile_head(value_fix={'std': v}), 'tile-head-std-%g' % v)
    for name, bad in [('mean', [68]), ('std', [70]), ('w1', [3, 68]), ('w1', [4, 69]), ('b1', [3, 1]), ('w2', [3]),
                      ('w2', [1, 4]), ('b2', [2]), ('b1', [0])]:
        s.add('tile-head', 'error', 'safetensors', tile_head(shape_fix={name: bad}),
              'tile-head-shape-%s-%s' % (name, 'x'.join(map(str, bad))))
    s.add('tile-head', 'error', 'safetensors', tile_head(hidden=257), 'tile-head-hidden-257')
    for key, val in [('format', None), ('format', 'dcr-model'), ('version', None), ('version', 'tiles-v2')]:
        s.add('tile-head', 'error', 'safetensors', tile_head(meta={key: val}), 'tile-head-meta-%s-%s' % (key, val))
    for off in sorted(set([1, 7, 8, 9, len(th) - 1, len(th) - 4] + [rng.randrange(1, len(th)) for _ in range(20)])):
        s.add('tile-head', 'error', 'safetensors', th[:off], 'tile-head-cut%d' % off)

    # Forensic CNNs (engine/dcr-cnn.h); their own generator, so the cases after them stay as they were.
    crng = random.Random(13)
    cn = cnn()
    s.add('cnn', 'ok', 'safetensors', cn, 'cnn-valid')
    s.add('cnn', 'ok', 'safetensors', cnn(layers=((1, 1, 3),), strides='1'), 'cnn-valid-1x1')
    s.add('cnn', 'ok', 'safetensors', cnn(layers=((64, 7, 3), (1, 7, 64)), strides='4,4'), 'cnn-valid-limits')
    for name in ('layer0.weight', 'layer1.bias', 'layer2.weight'):
        for v, vn in ((float('nan'), 'nan'), (float('inf'), 'inf'), (float('-inf'), 'ninf')):
            s.add('cnn', 'error', 'safetensors', cnn(value_fix={name: v}), 'cnn-%s-%s' % (vn, name))
    for key, val in [('format', None), ('format', 'dcr-tile-head'), ('version', None), ('version', 'cnn-v2'),
                     ('strides', None), ('strides', ''), ('strides', '2,2'), ('strides', '2,2,1,1'),
                     ('strides', '2,,1'), ('strides', '2,x,1'), ('strides', '2 2 1'), ('strides', '-2,2,1'),
                     ('strides', '2,2,0'), ('strides', '2,5,1'), ('strides', '2,2,99999999999'),
                     ('strides', '4,3,3')]:
        s.add('cnn', 'error', 'safetensors', cnn(meta={key: val}), 'cnn-meta-%s-%s' % (key, val))
    for layers, what in [(((8, 3, 4), (16, 3, 8), (1, 1, 16)), 'cin0-4'), (((8, 3, 3), (16, 3, 7), (1, 1, 16)), 'chain'),
                         (((8, 3, 3), (16, 3, 8), (2, 1, 16)), 'cout-last-2'),
                         (((65, 3, 3), (16, 3, 65), (1, 1, 16)), 'channels-65'),
                         (((8, 9, 3), (16, 3, 8), (1, 1, 16)), 'kernel-9'),
                         (((8, 0, 3), (16, 3, 8), (1, 1, 16)), 'kernel-0'),
                         (((0, 3, 3), (16, 3, 0), (1, 1, 16)), 'channels-0'),
                         (((4, 1, 3),) * 6 + ((1, 1, 4),), 'layers-7')]:
        st = ','.join(['1'] * len(layers))
        s.add('cnn', 'error', 'safetensors', cnn(layers=layers, strides=st), 'cnn-shape-%s' % what)
    s.add('cnn', 'error', 'safetensors', cnn(layers=((4, 7, 3), (4, 7, 4), (4, 7, 4), (1, 7, 4)), strides='4,4,4,4'),
          'cnn-window-too-large')
    for name in ('layer0.weight', 'layer1.bias', 'layer2.bias'):
        s.add('cnn', 'error', 'safetensors', cnn(drop=(name,)), 'cnn-missing-%s' % name)
    s.add('cnn', 'error', 'safetensors', cnn(extra=(('head.scale', [4]),)), 'cnn-extra-tensor')
    s.add('cnn', 'error', 'safetensors', cnn(extra=(('layer3.bias', [1]),)), 'cnn-extra-layer3-bias')
    s.add('cnn', 'error', 'safetensors', cnn(drop=('layer1.weight', 'layer1.bias')), 'cnn-gap')
    for off in sorted(set([1, 7, 8, 9, len(cn) - 1, len(cn) - 4] + [crng.randrange(1, len(cn)) for _ in range(20)])):
        s.add('cnn', 'error', 'safetensors', cn[:off], 'cnn-cut%d' % off)
    hlen = struct.unpack('<Q', good[:8])[0]
    for n, what in [(2 ** 64 - 1, 'u64max'), (2 ** 63, '2p63'), (2 ** 32 + hlen, '2p32-plus'), (hlen + 1, 'plus1'),
                    (hlen - 1, 'minus1'), (0, 'zero'), (len(good), 'file-length'), (100 * 2 ** 20, '100MiB')]:
        s.add('model', 'error', 'safetensors', struct.pack('<Q', n) + good[8:], 'st-header-length-%s' % what)
    one = [('w', 'F32', [2, 2], f32([1, 2, 3, 4]))]
    st_cases = [
        ('st-bad-json', struct.pack('<Q', 16) + b'{"w": {"dtype": ' + b'\0' * 16),
        # a closing bracket of the wrong kind, then more data (fuzz-safetensors, fifth session: json-glib leaked)
        ('st-mismatched-bracket', raw_st(b'{"d": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}, "i": '
                                         b'{"dtype": "I8", "shape": [2], "data_offsets": \'[8, 12\'}}[1], ',
                                         bytes(8))),
        ('st-json-array', safetensors([]).replace(b'{}', b'[]')),
        ('st-bad-dtype', safetensors([('w', 'F33', [2, 2], f32([1, 2, 3, 4]))])),
        ('st-negative-shape', safetensors([('w', 'F32', [-2, -2], f32([1, 2, 3, 4]))])),
        ('st-shape-overflow', safetensors([('w', 'F32', [2 ** 62, 2 ** 62], f32([1, 2, 3, 4]))])),
        ('st-numel-mismatch', safetensors([('w', 'F32', [3, 2], f32([1, 2, 3, 4]))])),
        ('st-nine-dims', safetensors([('w', 'F32', [1] * 9, f32([1]))])),
        ('st-duplicate-name', raw_st(b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                                     b'"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', f32([1, 2]))),
        ('st-metadata-not-string', safetensors(one, {'a': 1})),
        ('st-offsets-past-end', safetensors(one)[:-4]),
        ('st-offsets-reversed', raw_st(b'{"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 0]}}',
                                       f32([1, 2, 3, 4]))),
        ('st-offsets-huge', raw_st(b'{"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": '
                                   b'[9223372036854775000, 9223372036854775016]}}', f32([1, 2, 3, 4]))),
        ('st-offsets-overlap', raw_st(b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
                                      b'"b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}', f32([1, 2, 3]))),
        ('st-gap', safetensors(one) + b'junk'),
        ('st-nan-f16', safetensors([('w', 'F16', [2], b'\x00\x7e\x00\x3c')])),
        ('st-inf-bf16', safetensors([('w', 'BF16', [2], b'\x80\x7f\x80\x3f')])),
        ('st-nan-f64', safetensors([('w', 'F64', [1], struct.pack('<d', float('nan')))])),
    ]
    for what, data in st_cases:
        s.add('safetensors', 'error', 'safetensors', data, what)
    s.add('safetensors', 'ok', 'safetensors', safetensors(one, {'note': 'fine'}), 'st-valid')
    # No tensors at all (found by fuzz-model-json: undefined behaviour in the reader, fixed).
    s.add('safetensors', 'ok', 'safetensors', raw_st(b'{}', b''), 'st-empty-header')
    s.add('model', 'error', 'safetensors', raw_st(b'{}', b''), 'model-empty-header')
    for n in (0, 1, 7, 8, 16):
        s.add('safetensors', 'error', 'safetensors', bytes(n), 'st-zeros-%d' % n)

    # Banks that are not banks.
    s.add('bank', 'error', 'dcrbank', b'', 'bank-empty')
    s.add('bank', 'error', 'dcrbank', b'SQLite format 3\0' + bytes(84), 'bank-sqlite-header-only')
    s.add('bank', 'error', 'dcrbank', bytes(rng.randrange(256) for _ in range(4096)), 'bank-random')
    for what, sql in [('bank-no-meta', 'CREATE TABLE t (x);'),
                      ('bank-meta-empty', 'CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);'),
                      ('bank-schema-99', "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                                         "INSERT INTO meta VALUES ('schema_version', '99');"),
                      ('bank-schema-x', "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                                        "INSERT INTO meta VALUES ('schema_version', 'x');")]:
        path = os.path.join(out, 'tmp.sqlite')
        if os.path.exists(path):
            os.unlink(path)
        db = sqlite3.connect(path)
        db.executescript(sql)
        db.close()
        data = open(path, 'rb').read()
        os.unlink(path)
        s.add('bank', 'error', 'dcrbank', data, what)
        s.add('bank', 'error', 'dcrbank', data[:len(data) // 2], what + '-cut')
    s.write_manifest()
    return s.n


def seeds(corpus):
    """Small valid inputs that start the fuzzers on the interesting paths."""
    def put(target, name, data):
        d = os.path.join(corpus, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)
    for name, ext, data in valid_images():
        if ext == 'png':
            put('png', name + '.png', data)
        else:
            put('jpeg', name + '.jpg', data)
    for o in (1, 6, 8):
        put('exif', 'tiff-le-o%d' % o, tiff(le=True, orientation=o, make=b'Cam'))
        put('exif', 'tiff-be-o%d' % o, tiff(le=False, orientation=o, make=b'Cam'))
    put('exif', 'app1-loop', exif_app1(tiff(orientation=3, loop=True)))
    put('safetensors', 'model.safetensors', model())
    put('safetensors', 'f16.safetensors', safetensors([('h', 'F16', [3], b'\x00\x3c\x00\xc0\x00\x00'),
                                                       ('b', 'BF16', [1, 1], b'\x80\x3f')], {'k': 'v'}))
    put('safetensors', 'f64-i8.safetensors', safetensors([('d', 'F64', [1], struct.pack('<d', 2.5)),
                                                          ('i', 'I8', [2], b'\x01\xff')]))
    for gate in (False, True):
        hdr = model(gate=gate)
        n = struct.unpack('<Q', hdr[:8])[0]
        put('model-json', 'model-gate-%s.json' % ('on' if gate else 'off'), hdr[8:8 + n])


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--seeds':
        seeds(sys.argv[2])
    elif len(sys.argv) == 2:
        print('%d cases in %s' % (build(sys.argv[1]), sys.argv[1]))
    else:
        sys.exit('usage: make-malformed.py OUTDIR | --seeds CORPUSDIR')
