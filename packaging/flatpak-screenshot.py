#!/usr/bin/python3
"""flatpak-screenshot.py — waits until the Xvfb screen shows an analysis and
saves it as PNG (for flatpak-offline-proof.sh).

Xvfb started with -fbdir keeps its screen in an XWD file. Every two seconds
this reads it, and is done once the inspect view's verdict band, in one of
the verdict colours (style.css: real #26a269, fake #c01c28, inconclusive
#c88800), covers a band-sized area and two readings agree; it prints which
verdict that is. (The app can show a verdict other than `dcr scan`'s: an
unstable one, which re-encoding flips, is shown as inconclusive.) Exits 1
with the last screen saved if that never happens within the timeout.
    flatpak-screenshot.py XWD-FILE OUT.png TIMEOUT-S
"""
import struct
import sys
import time

from PIL import Image, ImageChops

COLOURS = {'real': (0x26, 0xa2, 0x69), 'fake': (0xc0, 0x1c, 0x28), 'inconclusive': (0xc8, 0x88, 0x00)}
MIN_BAND_PIXELS = 4000  # the band spans the view's width, tens of pixels high


def read_xwd(path):
    with open(path, 'rb') as f:
        data = f.read()
    h = struct.unpack('>25I', data[:100])
    header_size, version, fmt, depth, width, height = h[:6]
    byte_order, bpp, bytes_per_line, ncolors = h[7], h[11], h[12], h[19]
    if version != 7 or fmt != 2 or bpp != 32 or depth != 24:
        raise ValueError('unexpected XWD: version %d format %d depth %d bpp %d' % (version, fmt, depth, bpp))
    off = header_size + ncolors * 12
    raw = data[off:off + bytes_per_line * height]
    mode = 'BGRX' if byte_order == 0 else 'XRGB'
    return Image.frombuffer('RGB', (width, height), raw, 'raw', mode, bytes_per_line, 1)


def band_pixels(img, rgb):
    r, g, b = (c.point(lambda v, t=t: 255 if abs(v - t) <= 3 else 0) for c, t in zip(img.split(), rgb))
    m = ImageChops.multiply(ImageChops.multiply(r, g), b)
    return m.histogram()[255]


def main():
    xwd, out, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    deadline = time.monotonic() + timeout
    last = None
    previous = None
    while time.monotonic() < deadline:
        time.sleep(2)
        try:
            img = read_xwd(xwd)
        except (OSError, ValueError, struct.error) as e:
            print('screen not readable yet: %s' % e)
            continue
        last = img
        counts = {v: band_pixels(img, rgb) for v, rgb in COLOURS.items()}
        verdict = max(counts, key=counts.get)
        if counts[verdict] >= MIN_BAND_PIXELS and counts == previous:
            img.save(out)
            print('verdict band on screen: %s (%d pixels of #%02x%02x%02x); saved %s'
                  % (verdict, counts[verdict], *COLOURS[verdict], out))
            return 0
        previous = counts
    if last is not None:
        last.save(out)
    print('no verdict band on screen after %.0f s; last screen saved as %s' % (timeout, out))
    return 1


if __name__ == '__main__':
    sys.exit(main())
