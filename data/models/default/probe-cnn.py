#!/usr/bin/python3
"""probe-cnn.py — a research probe, not part of the product: the learned
forensic CNN (engine/dcr-cnn.h) retrained alone in PyTorch, to compare
shapes and training data before changing `dcr train-cnn`'s arguments.

The same 64-px crops on the 8-px grid as `dcr train-cnn` (a crop of a
partial fake is fake when its centre lies in the rectangle), BCE on each
crop's mean logit, AdamW (lr 2e-3, weight decay 0.01), batch 64; each test
image is scored as dcr does, by the mean of its 4 highest 48-px block means.
Prints the AUC on the validation photos, the seen generators, their JPEG
q85 copies and the held-out family.

Usage: SEED=N probe-cnn.py MODE/SHAPE/EPOCHS ...
  SHAPE: W1:W2:W3 (3x3 layers of those widths, strides 2, 2, 1) or
  train-cnn's --arch (e.g. 8:3:2,16:3:2,32:3:2: width:kernel:stride each);
  MODE A: the benchmark's files as train-cnn takes them (PNG + JPEG copies);
  MODE B: the PNG files only, each re-encoded as JPEG q 60-95 (p 0.5) every
          epoch, 8 crops an image; MODE C: A plus such a re-encoding of the
          PNGs (q 75-95, p 0.5).
  e.g. probe-cnn.py A/8:16:16/30 A/16:32:32/30   (1.5-2 min each, 2 cores)
$DCR_BENCHMARK_DIR: the benchmark (default data/benchmark/generated).
$TRAIN: the training folders, comma-separated (default: train-default.sh's,
train/real,train/real-jpeg,train/resampled,train/fake).
The eighth session's results are in MODEL_CARD.md (JPEG, blind spots).
"""
import csv, io, os, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image
SEED = int(os.environ.get('SEED', '1')); torch.set_num_threads(2); torch.manual_seed(SEED); rng = np.random.default_rng(SEED)
B = os.environ.get('DCR_BENCHMARK_DIR') or os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'benchmark', 'generated')
man = {r['file']: r for r in csv.DictReader(open(B + '/manifest.csv'))}
def load(rel): return np.asarray(Image.open(os.path.join(B, rel)).convert('RGB'))
def rect(rel):
    p = man[rel]['partial']
    return tuple(map(int, p.split(','))) if p else None
# $TRAIN: the training folders (default: those of train-default.sh; add
# train/fake-anime4k and train/fake-ncnn for the other two families)
TRAIN = os.environ.get('TRAIN', 'train/real,train/real-jpeg,train/resampled,train/fake').split(',')
train = [(f, 1 if r['label'] == 'fake' else 0) for f, r in man.items()
         if r['split'] == 'train' and os.path.dirname(f) in TRAIN]
imgs = {f: load(f) for f, _ in train}
def jpeg(a, q):
    b = io.BytesIO(); Image.fromarray(a).save(b, 'JPEG', quality=int(q), subsampling=2); b.seek(0)
    return np.asarray(Image.open(b).convert('RGB'))
def arch_of(shape):
    if ',' in shape:
        return [tuple(map(int, l.split(':'))) for l in shape.split(',')]
    return [(int(w), 3, s) for w, s in zip(shape.split(':'), (2, 2, 1))]
class Net(nn.Module):
    def __init__(s, arch):
        super().__init__()
        cin = [3] + [w for w, _, _ in arch]
        s.c = nn.ModuleList([nn.Conv2d(ci, w, k, st) for ci, (w, k, st) in zip(cin, arch)])
        s.o = nn.Conv2d(arch[-1][0], 1, 1)
        s.stride = int(np.prod([st for _, _, st in arch]))
    def forward(s, x):  # x: N,3,H,W in 0..255
        x = x / 32.0; x = x - F.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
        for c in s.c: x = F.relu(c(x))
        return s.o(x)
def crops(mode, n_per=int(os.environ.get('NPER', '4')), size=int(os.environ.get('CROP', '64'))):
    X, Y = [], []
    for f, lab in train:
        if mode == 'B' and f.endswith('.jpg'): continue
        a = imgs[f]
        if mode == 'B' and rng.random() < 0.5: a = jpeg(a, rng.integers(60, 96))
        if mode == 'C' and f.endswith('.png') and rng.random() < 0.5: a = jpeg(a, rng.integers(75, 96))
        if mode == 'B': n_per = 8
        r = rect(f)
        for _ in range(n_per):
            y0 = 8 * rng.integers(0, (a.shape[0] - size) // 8 + 1); x0 = 8 * rng.integers(0, (a.shape[1] - size) // 8 + 1)
            l = lab
            if r:
                cx, cy = x0 + size / 2, y0 + size / 2
                l = 1 if (r[0] <= cx < r[0] + r[2] and r[1] <= cy < r[1] + r[3]) else 0
            X.append(a[y0:y0 + size, x0:x0 + size]); Y.append(l)
    return torch.tensor(np.stack(X)).permute(0, 3, 1, 2).float(), torch.tensor(Y).float()
def score(net, a):
    with torch.no_grad():
        m = net(torch.tensor(a).permute(2, 0, 1)[None].float())[0, 0].numpy()
    bs = max(1, round(48 / net.stride)); h, w = m.shape[0] // bs, m.shape[1] // bs
    blocks = m[:h * bs, :w * bs].reshape(h, bs, w, bs).mean((1, 3)).ravel()
    return np.sort(blocks)[-4:].mean()
def auc(s, y):
    s, y = np.array(s), np.array(y); pos, neg = s[y == 1], s[y == 0]
    r = np.argsort(np.argsort(np.concatenate([neg, pos])))
    return (r[len(neg):].sum() - len(pos) * (len(pos) - 1) / 2) / (len(pos) * len(neg))
def files(d): return sorted(os.path.join(d, f) for f in os.listdir(os.path.join(B, d)))
tests = {'val': [(f, 0) for f in files('val/real') + files('val/resampled')] + [(f, 1) for f in files('val/fake')],
         'seen': [(f, 0) for f in files('test/real')] + [(f, 1) for f in files('test/fake')],
         'jpeg85': [(f, 0) for f in files('test-jpeg85/real')] + [(f, 1) for f in files('test-jpeg85/fake')],
         'heldout': [(f, 0) for f in files('test/real')] + [(f, 1) for f in files('test-heldout/fake')],
         'j85held': [(f, 0) for f in files('test-jpeg85/real')] + [(f, 1) for f in files('test-jpeg85-heldout/fake')],
         # resampled (label 0) against the seen fakes, PNG and JPEG q85: can it tell generation from resampling?
         'resvfake': [(f, 0) for f in files('test-resampled/real')] + [(f, 1) for f in files('test/fake')],
         'j85resvfake': [(f, 0) for f in files('test-jpeg85-resampled/real')] + [(f, 1) for f in files('test-jpeg85/fake')],
         # the other two families (unseen unless $TRAIN names them)
         'a4k': [(f, 0) for f in files('test/real')] + [(f, 1) for f in files('test-anime4k/fake')],
         'ncnn': [(f, 0) for f in files('test/real')] + [(f, 1) for f in files('test-ncnn/fake')],
         'j85ncnn': [(f, 0) for f in files('test-jpeg85/real')] + [(f, 1) for f in files('test-jpeg85-ncnn/fake')]}
tests['valjpg'] = [(f, l) for f, l in tests['val'] if f.endswith('.jpg')]
timgs = {f: load(f) for t in tests.values() for f, _ in t}
for mode, width, epochs in [(m, w, int(e)) for m, w, e in (a.split('/') for a in sys.argv[1:])]:
    torch.manual_seed(SEED)
    net = Net(arch_of(width)); opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=0.01); t0 = time.time()
    for ep in range(epochs):
        X, Y = crops(mode); perm = torch.randperm(len(Y))
        for i in range(0, len(Y), 64):
            idx = perm[i:i + 64]
            loss = F.binary_cross_entropy_with_logits(net(X[idx]).mean((1, 2, 3)), Y[idx])
            opt.zero_grad(); loss.backward(); opt.step()
    res = {k: auc([score(net, timgs[f]) for f, _ in v], [l for _, l in v]) for k, v in tests.items()}
    print(mode, width, epochs, '%.0fs' % (time.time() - t0), ' '.join('%s %.3f' % kv for kv in res.items()), flush=True)
