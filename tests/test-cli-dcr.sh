#!/bin/sh
# test-cli-dcr.sh — the detector commands as a user meets them, on a tiny
# synthetic image set (tests/make-dcr-images.py): `dcr train` builds a bank
# from the reals, a model with its threshold and band, resumes from its
# checkpoint; `dcr scan` tells held-out reals from fakes with its evidence
# in JSON, walks folders, reports non-images as {file, error} with exit status 1, reads
# evidence without changing it and refuses a model of another backbone;
# `dcr eval` gives the metrics. TAP output.
#   test-cli-dcr.sh DCR PYTHON MAKE-IMAGES
dcr="$1"; py="$2"; make_images="$3"
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
check() { desc="$1"; shift; if "$@"; then ok "$desc"; else notok "$desc"; fi; }
tmp=$(mktemp -d); trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
d="$tmp/data"

"$py" "$make_images" "$d" 6
check "synthetic images written" eval '[ -f "$d/real/scene00-0.png" ] && [ -f "$d/pairs.csv" ]'

train() {
  "$dcr" train --real "$d/real" --fake "$d/fake" --pairs "$d/pairs.csv" --bank "$d/bank.dcrbank" \
    --bank-from-reals --k 3 --hidden 32 --head-hidden 16 --batch 8 --lr 3e-3 --seed 5 "$@"
}
train --epochs 25 --out "$d/m.safetensors" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "train exits 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err"
check "train writes the model" [ -s "$d/m.safetensors" ]
check "train builds the bank from the reals" grep -q '12 real prototypes added' "$tmp/err"
check "train reports epochs with loss and validation AUC" grep -q '^epoch 25/25  loss .*val AUC' "$tmp/err"
check "train states the threshold and band, once" eval '[ "$(grep -c "^threshold: .*inconclusive band" "$tmp/out")" -eq 1 ]'
check "train writes a checkpoint" [ -s "$d/m.safetensors.checkpoint" ]

# the same run again: features come from the cache, the bank is not duplicated
train --epochs 2 --out "$tmp/again.safetensors" >/dev/null 2>"$tmp/err"; rc=$?
check "a second run reuses the bank" grep -q '0 real prototypes added .*12 already there' "$tmp/err"
# resume: a checkpoint after 2 of 4 epochs continues with epoch 3
train --epochs 2 --out "$tmp/r.safetensors" --checkpoint "$tmp/r.ck" >/dev/null 2>&1
train --epochs 2 --out "$tmp/r.safetensors" --checkpoint "$tmp/r.ck" --resume >"$tmp/out" 2>"$tmp/err"; rc=$?
check "resume of a finished run exits 0" [ $rc -eq 0 ]
train --epochs 4 --out "$tmp/r.safetensors" --checkpoint "$tmp/r.ck" --resume >"$tmp/out" 2>"$tmp/err"; rc=$?
check "resume continues at epoch 3" grep -q '^epoch 3/4' "$tmp/err"
check "resume does not repeat epoch 1" sh -c "! grep -q '^epoch 1/4' '$tmp/err'"
train --epochs 4 --seed 6 --out "$tmp/r.safetensors" --checkpoint "$tmp/r.ck" --resume >"$tmp/out" 2>"$tmp/err"; rc=$?
check "resume refuses a checkpoint of another seed" [ $rc -eq 1 ] && grep -q 'seed' "$tmp/err"

# augmented views: made (and cached) per training image, recorded in the model
nfeat() { find "$tmp/cache" -name '*.feat' | wc -l; }
. "$(dirname "$0")/dcr-test-cache.sh"
suite_cache="${XDG_CACHE_HOME:-}"
private_cache "$tmp/cache"
train --epochs 2 --augment views=1,jpeg=1:70-70 --out "$tmp/aug.safetensors" \
  --checkpoint "$tmp/aug.ck" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "train --augment exits 0" [ $rc -eq 0 ]
check "train --augment computes the views" grep -q 'view 1/1 of .*/real' "$tmp/err"
check "train --augment states the augmentation" grep -q 'augmented views: views=1,.*jpeg=1:70-70' "$tmp/err"
check "the model records the augmentation" grep -aq 'augment[^,]*views=1,crop=' "$tmp/aug.safetensors"
nreal=$(ls "$d/real" "$d/fake" | grep -c '\.png$')
check "one cached feature per image and one per view ($nreal images)" [ "$(nfeat)" -eq $((2 * nreal)) ]
train --epochs 2 --augment views=1,jpeg=1:70-70 --out "$tmp/aug2.safetensors" \
  --checkpoint "$tmp/aug2.ck" >/dev/null 2>&1
check "a second --augment run takes every view from the cache" [ "$(nfeat)" -eq $((2 * nreal)) ]
if [ -n "$suite_cache" ]; then export XDG_CACHE_HOME="$suite_cache"; else unset XDG_CACHE_HOME; fi
# groups: the files of a scene are one group; a sample never meets its own group in the bank
{ echo "file,group"; for f in "$d"/real/*.png "$d"/fake/*.png; do
    b=$(basename "$f"); echo "$(basename "$(dirname "$f")")/$b,${b%%-*}"; done; } >"$d/groups.csv"
train --epochs 2 --groups "$d/groups.csv" --out "$tmp/g.safetensors" --checkpoint "$tmp/g.ck" >/dev/null 2>"$tmp/err"; rc=$?
check "train --groups exits 0" [ $rc -eq 0 ]
check "train --groups counts files and groups" grep -q '^dcr: 24 files in 6 groups from ' "$tmp/err"
printf 'file,group\nreal/scene00-0.png\n' >"$tmp/bad-groups.csv"
train --epochs 2 --groups "$tmp/bad-groups.csv" --out "$tmp/g.safetensors" --checkpoint "$tmp/g.ck" >/dev/null 2>"$tmp/err"
check "a malformed groups CSV exits 1 naming the line" [ $? -eq 1 ] && grep -q 'bad-groups.csv:2: expected "file,group"' "$tmp/err"
"$dcr" train --real "$d/real" --fake "$d/fake" --augment views=1,blur=2 --out "$tmp/x.safetensors" >/dev/null 2>"$tmp/err"
check "a bad --augment is a usage error that says why" [ $? -eq 2 ] && grep -q 'augmentation "blur"' "$tmp/err"

# scan: evidence read-only, hashes unchanged
chmod a-w "$d"/test-real/*.png "$d"/test-fake/*.png
sha256sum "$d"/test-real/*.png "$d"/test-fake/*.png >"$tmp/before"
printf 'not an image' >"$tmp/notes.txt"
"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --json \
  "$d"/test-real/*.png "$d"/test-fake/*.png "$tmp/notes.txt" >"$tmp/scan.json" 2>"$tmp/err"; rc=$?
check "scan with a non-image exits 1" [ $rc -eq 1 ]
sha256sum "$d"/test-real/*.png "$d"/test-fake/*.png >"$tmp/after"
check "scan leaves the evidence untouched" cmp -s "$tmp/before" "$tmp/after"
"$py" - "$tmp/scan.json" "$d" "$(dirname "$make_images")/../data/models/default/detail-threshold.py" >"$tmp/check" 2>&1 <<'EOF'
import hashlib, importlib.util, json, sys
spec = importlib.util.spec_from_file_location('dt', sys.argv[3])
dt_mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(dt_mod); detail = dt_mod.detail
res = json.load(open(sys.argv[1]))
need = ['file', 'sha256', 'width', 'height', 'verdict', 'p_fake', 'anomaly', 'threshold', 'prototypes',
        'top_channels', 'attention', 'model', 'bank', 'device', 'ms', 'detail']
right = 0
for r in res[:-1]:
    missing = [k for k in need if k not in r]
    assert not missing, 'missing %s in %s' % (missing, r['file'])
    assert r['sha256'] == hashlib.sha256(open(r['file'], 'rb').read()).hexdigest(), r['file']
    assert (r['width'], r['height']) == (64, 64)
    assert r['verdict'] in ('real', 'fake', 'inconclusive')
    assert 0 <= r['p_fake'] <= 1 and 0 <= r['anomaly'] <= 1
    assert len(r['prototypes']) == 3 and len(r['attention']) == 3
    assert abs(sum(r['attention']) - 1) < 1e-4
    p = r['prototypes']
    assert all(p[i]['similarity'] >= p[i + 1]['similarity'] for i in range(2))
    assert all(q['source'].startswith(sys.argv[2] + '/real/') for q in p)
    assert len(r['top_channels']) == 10
    assert all(c['tap'].startswith('block') or c['tap'] in ('residual', 'local', 'tiles', 'cnn') for c in r['top_channels'])
    mags = [c['magnitude'] for c in r['top_channels']]
    assert mags == sorted(mags, reverse=True)
    truth = 'fake' if '/test-fake/' in r['file'] else 'real'
    right += r['verdict'] == truth
    # the fine-detail caution: the engine's measure is the one the threshold
    # was calibrated with (data/models/default/detail-threshold.py)
    dt = r['detail']
    assert set(dt) == {'value', 'low', 'threshold'}, dt
    want = detail(r['file'])
    assert abs(dt['value'] - want) <= 1e-3 * max(1, want), (r['file'], dt, want)
    assert dt['low'] == (dt['value'] < dt['threshold'])
    # a real photo's nearest prototype is a photo of its own scene
    if truth == 'real':
        scene = r['file'].rsplit('/', 1)[1][:7]
        assert p[0]['source'].rsplit('/', 1)[1].startswith(scene), (r['file'], p[0]['source'])
last = res[-1]
assert set(last) == {'file', 'error'} and last['file'].endswith('notes.txt'), last
print('right', right, 'of', len(res) - 1)
assert right >= len(res) - 1 - 2
EOF
rc=$?
sed 's/^/# /' "$tmp/check"
check "scan JSON: every field, sensible values, held-out verdicts right" [ $rc -eq 0 ]
check "scan names the unreadable file on stderr" grep -q 'notes.txt' "$tmp/err"

"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" "$d/test-fake/scene00.png" >"$tmp/out" 2>&1; rc=$?
check "scan text output" [ $rc -eq 0 ] && grep -q 'scene00.png: \(fake\|real\|inconclusive\) (p_fake' "$tmp/out"

# an image with no fine detail (a smooth gradient) carries the caution, in text and in JSON
"$py" -c "
import sys; from PIL import Image
im = Image.new('RGB', (64, 64)); im.putdata([(2 * x + y, 100, 150) for y in range(64) for x in range(64)]); im.save(sys.argv[1])
" "$tmp/smooth.png"
"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" "$tmp/smooth.png" >"$tmp/out" 2>&1; rc=$?
check "scan cautions on an image with little fine detail" [ $rc -eq 0 ] && grep -q 'caution: little fine detail (0.00' "$tmp/out"
"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --json "$tmp/smooth.png" >"$tmp/smooth.json" 2>"$tmp/err"
check "scan JSON marks it low" "$py" -c "
import json, sys; r = json.load(open(sys.argv[1]))[0]['detail']; assert r['low'] and r['value'] < 1e-3, r" "$tmp/smooth.json"

# scan walks folders: files in name order, nested folders too; a link to a folder is not followed, a file named
# twice is scanned once, a missing path gets its reason and the rest go on; an empty folder says so
mkdir -p "$tmp/walk/sub" "$tmp/walk-empty"
cp "$d/test-real/scene00.png" "$tmp/walk/b.png"
cp "$d/test-fake/scene00.png" "$tmp/walk/sub/a.png"
ln -s "$d/test-real" "$tmp/walk/link"
"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --json "$tmp/walk" "$tmp/walk/b.png" \
  "$tmp/missing.png" >"$tmp/walk.json" 2>"$tmp/err"; rc=$?
"$py" - "$tmp/walk.json" "$tmp/scan.json" "$tmp" "$d" >"$tmp/check" 2>&1 <<'EOF'
import json, sys
res, alone, tmp, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4]
files = [r['file'] for r in res]
assert files == [tmp + '/walk/b.png', tmp + '/walk/link', tmp + '/walk/sub/a.png', tmp + '/missing.png'], files
assert 'symbolic link to a folder' in res[1]['error'], res[1]
assert 'No such file' in res[3]['error'] and 'p_fake' not in res[3], res[3]
by = {r['file']: r for r in alone}
for got, src in [(res[0], d + '/test-real/scene00.png'), (res[2], d + '/test-fake/scene00.png')]:
    assert got['sha256'] == by[src]['sha256'], got['file']
    assert abs(got['p_fake'] - by[src]['p_fake']) < 1e-5, (got['p_fake'], by[src]['p_fake'])
EOF
prc=$?; sed 's/^/# /' "$tmp/check"
check "scan walks folders in name order, once per file, links to folders not followed" \
  eval '[ $rc -eq 1 ] && [ $prc -eq 0 ] && grep -q "missing.png: No such file" "$tmp/err"'
# a batch of mixed sizes in the order given: scan puts same-sized images in neighbouring slots (one dispatch an op
# for them) and answers in the caller's order, every result what the image gets in a batch of its own
mkdir -p "$tmp/mixed"
"$py" - "$d" "$tmp/mixed" <<'EOF'
import glob, sys
from PIL import Image
src = sorted(glob.glob(sys.argv[1] + '/test-real/*.png')) + sorted(glob.glob(sys.argv[1] + '/test-fake/*.png'))
for i, f in enumerate(src[:7]):
    im = Image.open(f).convert('RGB')
    w, h = im.size
    im.crop((0, 0, w - 8 * (i % 3), h - 4 * (i % 2))).save('%s/%02d.png' % (sys.argv[2], i))
EOF
"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --json --batch 4 "$tmp/mixed" >"$tmp/mixed4.json" 2>&1; rc=$?
"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --json --batch 1 "$tmp/mixed" >"$tmp/mixed1.json" 2>&1; rc1=$?
"$py" - "$tmp/mixed4.json" "$tmp/mixed1.json" >"$tmp/check" 2>&1 <<'EOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert [r['file'] for r in a] == [r['file'] for r in b] == sorted(r['file'] for r in a) and len(a) == 7, a
assert len({(r['width'], r['height']) for r in a}) >= 4, [(r['width'], r['height']) for r in a]
strip = lambda r: {k: v for k, v in r.items() if k != 'ms'}
for x, y in zip(a, b):
    assert json.dumps(strip(x), sort_keys=True) == json.dumps(strip(y), sort_keys=True), (x['file'], x, y)
EOF
prc=$?; sed 's/^/# /' "$tmp/check"
check "scan of mixed sizes: results in the order given, each as in a batch of one" \
  eval '[ $rc -eq 0 ] && [ $rc1 -eq 0 ] && [ $prc -eq 0 ]'
"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" "$tmp/walk-empty" >/dev/null 2>"$tmp/err"; rc=$?
check "scan of an empty folder exits 1 and says so" eval '[ $rc -eq 1 ] && grep -q "no files in the folder given" "$tmp/err"'
"$dcr" features --json "$tmp/walk" >"$tmp/walkf.json" 2>"$tmp/err"; rc=$?
"$py" -c 'import json, sys; r = json.load(open(sys.argv[1]))["images"]
assert [(i["file"], "features" in i, "error" in i) for i in r] == [(sys.argv[2] + "/walk/b.png", True, False),
    (sys.argv[2] + "/walk/link", False, True), (sys.argv[2] + "/walk/sub/a.png", True, False)], r' \
  "$tmp/walkf.json" "$tmp" >"$tmp/check" 2>&1; prc=$?
sed 's/^/# /' "$tmp/check"
check "features walks folders as scan does" eval '[ $rc -eq 1 ] && [ $prc -eq 0 ]'

# `dcr bench scan` times scan's own pipeline over the files (its figures are BENCHMARKS.md's; here only that it
# counts what scan scans, walks as scan walks, and refuses a file scan could not read rather than time fewer)
"$dcr" bench scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --repeats 3 --batch 4 --json \
  "$d/test-real" "$d/test-fake/scene00.png" >"$tmp/bench.json" 2>"$tmp/err"; rc=$?
nreal=$(ls "$d"/test-real/*.png | wc -l)
"$py" -c 'import json, math, sys; r = json.load(open(sys.argv[1])); n = int(sys.argv[2]) + 1
assert r["files"] == n and r["images"] == n and r["batch"] == 4, r
assert len(r["passes_s"]) == 3 and all(p > 0 for p in r["passes_s"]), r
assert r["min_s"] == min(r["passes_s"]) and r["median_s"] == sorted(r["passes_s"])[1], r
assert math.isclose(r["img_per_s"], n / r["median_s"]) and math.isclose(r["best_img_per_s"], n / r["min_s"]), r
assert r["model"] == sys.argv[3] and r["processors"] >= 1 and r["first_pass_s"] > 0 and r["setup_s"] > 0, r
assert r["device"] and r["backbone"] and r["date"], r' "$tmp/bench.json" "$nreal" "$d/m.safetensors" \
  >"$tmp/check" 2>&1; prc=$?
sed 's/^/# /' "$tmp/check"; [ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err"
check "bench scan: every file counted, 3 timed passes, median and best from them" eval '[ $rc -eq 0 ] && [ $prc -eq 0 ]'
"$dcr" bench scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --repeats 1 "$d/test-fake/scene00.png" \
  >"$tmp/out" 2>"$tmp/err"; rc=$?
check "bench scan prints a table" eval '[ $rc -eq 0 ] && grep -q "^1 images (1 files)" "$tmp/out" && grep -q "^median .* img/s; best" "$tmp/out"'
"$dcr" bench scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --repeats 1 "$d/test-fake/scene00.png" \
  "$tmp/notes.txt" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "bench scan refuses a file scan cannot read (exit 1, named)" \
  eval '[ $rc -eq 1 ] && grep -q "1 of 2 files could not be scanned (the first: .*notes.txt" "$tmp/err" && [ ! -s "$tmp/out" ]'
"$dcr" bench scan --repeats 0 "$d/test-fake/scene00.png" >/dev/null 2>&1; rc=$?
"$dcr" bench scan >/dev/null 2>&1; rc2=$?
check "bench scan usage errors exit 2" eval '[ $rc -eq 2 ] && [ $rc2 -eq 2 ]'

"$dcr" eval --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --real "$d/test-real" --fake "$d/test-fake" \
  --json >"$tmp/eval.json" 2>"$tmp/err"; rc=$?
check "eval exits 0" [ $rc -eq 0 ]
"$py" - "$tmp/eval.json" <<'EOF' >"$tmp/check" 2>&1
import json, sys
m = json.load(open(sys.argv[1]))
for k in ('acc', 'ap', 'auc', 'eer', 'tpr_at_fpr5', 'confusion', 'threshold', 'n_real', 'n_fake'):
    assert k in m, k
c = m['confusion']
assert m['n_real'] == 6 and m['n_fake'] == 6 and c['tp'] + c['fn'] == 6 and c['tn'] + c['fp'] == 6
assert abs(m['acc'] - (c['tp'] + c['tn']) / 12) < 1e-9
print('auc', m['auc'])
assert m['auc'] > 0.8
EOF
rc=$?
sed 's/^/# /' "$tmp/check"
check "eval JSON: metrics and confusion matrix, AUC above chance" [ $rc -eq 0 ]
"$dcr" eval --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --real "$d/test-real" --fake "$d/test-fake" \
  >"$tmp/out" 2>&1
check "eval text output" grep -q '^AP .* ROC AUC .* EER .* TPR@5%FPR' "$tmp/out"

# per-generator breakdown: half the fakes listed by basename, half by full path
{ echo "file,generator"; i=0; for f in "$d"/test-fake/*.png; do
    if [ $((i % 2)) -eq 0 ]; then echo "$(basename "$f"),gen-a"; else echo "\"$f\",gen-b"; fi; i=$((i + 1)); done
} >"$tmp/manifest.csv"
"$dcr" eval --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --real "$d/test-real" --fake "$d/test-fake" \
  --manifest "$tmp/manifest.csv" --json >"$tmp/evalg.json" 2>"$tmp/err"; rc=$?
check "eval --manifest exits 0" [ $rc -eq 0 ]
"$py" - "$tmp/evalg.json" <<'EOF' >"$tmp/check" 2>&1
import json, sys
m = json.load(open(sys.argv[1]))
g = m['generators']
assert [x['generator'] for x in g] == ['gen-a', 'gen-b'], g
assert m['n_fake_unlisted'] == 0 and [x['n_fake'] for x in g] == [3, 3], m
# each generator's fakes against all reals: the fakes' calls add up to the overall ones
assert sum(x['tp'] for x in g) == m['confusion']['tp'] and sum(x['fn'] for x in g) == m['confusion']['fn'], m
for x in g:
    acc = (x['tp'] + m['confusion']['tn']) / (3 + m['n_real'])
    assert abs(x['acc'] - acc) < 1e-9, (x, acc)
    assert 0 <= x['auc'] <= 1
EOF
rc=$?
sed 's/^/# /' "$tmp/check"
check "eval --manifest JSON: per-generator metrics consistent with the totals" [ $rc -eq 0 ]
"$dcr" eval --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --real "$d/test-real" --fake "$d/test-fake" \
  --manifest "$tmp/manifest.csv" >"$tmp/out" 2>&1
check "eval --manifest text output" grep -q '^  gen-b .* ROC AUC' "$tmp/out"

# set_meta SRC DST KEY VALUE: a copy of model SRC with one metadata value changed
set_meta() {
  "$py" - "$@" <<'EOF'
import json, struct, sys
src, dst, key, value = sys.argv[1:]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
h['__metadata__'][key] = value
t = json.dumps(h).encode()
t += b' ' * (-len(t) % 8)
open(dst, 'wb').write(struct.pack('<Q', len(t)) + t + b[8 + n:])
EOF
}

# a model with a decision of its own for JPEG files (dcr train chooses one on the validation JPEGs; here it
# is written into the model's metadata): every JPEG inconclusive, PNGs as before
set_meta "$d/m.safetensors" "$tmp/mj.safetensors" jpeg_decision "0.5,0,1"
"$py" - "$d" "$tmp" <<'EOF'
import os, sys
from PIL import Image
for c in ('real', 'fake'):
    os.makedirs('%s/jpg-%s' % (sys.argv[2], c))
    for f in sorted(os.listdir('%s/test-%s' % (sys.argv[1], c))):
        Image.open('%s/test-%s/%s' % (sys.argv[1], c, f)).save('%s/jpg-%s/%s.jpg' % (sys.argv[2], c, f[:-4]), quality=95)
EOF
"$dcr" scan --model "$tmp/mj.safetensors" --bank "$d/bank.dcrbank" --json "$d/test-fake/scene00.png" \
  "$tmp/jpg-fake/scene00.jpg" >"$tmp/scanj.json" 2>"$tmp/err"; rc=$?
"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --json "$d/test-fake/scene00.png" \
  >"$tmp/scan1.json" 2>>"$tmp/err"; rc1=$?
"$dcr" eval --model "$tmp/mj.safetensors" --bank "$d/bank.dcrbank" --real "$tmp/jpg-real" --fake "$tmp/jpg-fake" \
  --json >"$tmp/evalj.json" 2>>"$tmp/err"; rc2=$?
"$dcr" eval --model "$tmp/mj.safetensors" --bank "$d/bank.dcrbank" --real "$d/test-real" --fake "$d/test-fake" \
  --json >"$tmp/evalp.json" 2>>"$tmp/err"; rc3=$?
"$py" - "$tmp/scanj.json" "$tmp/scan1.json" "$tmp/evalj.json" "$tmp/evalp.json" "$tmp/eval.json" \
  >"$tmp/check" 2>&1 <<'EOF'
import json, sys
png, jpg = json.load(open(sys.argv[1]))
one, = json.load(open(sys.argv[2]))
assert one['decision'] == 'single', one['decision']
assert png['decision'] == 'other' and png['threshold'] == one['threshold'], (png, one)
assert png['inconclusive_band'] == one['inconclusive_band'] and png['verdict'] == one['verdict']
assert jpg['decision'] == 'jpeg' and jpg['threshold'] == 0.5 and jpg['inconclusive_band'] == [0, 1], jpg
assert jpg['verdict'] == 'inconclusive', jpg
ej, ep, e0 = (json.load(open(f)) for f in sys.argv[3:6])
assert ej['n_jpeg'] == 12 and ej['jpeg_threshold'] == 0.5 and ej['inconclusive'] == 12, ej
assert ep['n_jpeg'] == 0 and 'jpeg_threshold' not in ep, ep
assert (ep['acc'], ep['confusion'], ep['inconclusive']) == (e0['acc'], e0['confusion'], e0['inconclusive'])
EOF
prc=$?
[ $prc -eq 0 ] || sed 's/^/# /' "$tmp/check" "$tmp/err"
check "a model's JPEG decision: JPEG files follow it in scan and eval, PNGs keep the model's own" \
  eval '[ $rc -eq 0 ] && [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ] && [ $prc -eq 0 ]'
# refused DESC MODEL KEY VALUE PATTERN: MODEL with its metadata KEY set to VALUE is refused by scan (exit 1,
# PATTERN in the message)
refused() {
  set_meta "$2" "$tmp/bad-meta.safetensors" "$3" "$4"
  "$dcr" scan --model "$tmp/bad-meta.safetensors" --bank "$d/bank.dcrbank" "$d/test-real/scene00.png" \
    >/dev/null 2>"$tmp/err"
  rc=$? pat=$5
  check "$1" eval '[ $rc -eq 1 ] && grep -q "$pat" "$tmp/err"'
}
refused "a model with a JPEG decision outside its band is refused" "$d/m.safetensors" jpeg_decision "0.5,0.6,0.9" \
  "JPEG decision"
"$dcr" scan --model "$tmp/mj.safetensors" --bank "$d/bank.dcrbank" "$tmp/jpg-fake/scene00.jpg" >"$tmp/out" 2>&1
check "scan text output names the JPEG decision" \
  grep -q "scene00.jpg: inconclusive (p_fake .*); the model's decision for JPEG files: threshold 0.50, band \[0.00, 1.00)" "$tmp/out"
"$dcr" eval --model "$tmp/mj.safetensors" --bank "$d/bank.dcrbank" --real "$tmp/jpg-real" --fake "$tmp/jpg-fake" \
  >"$tmp/out" 2>&1
check "eval text output names the JPEG threshold and band" \
  eval 'grep -q "JPEG files: at the model.s JPEG threshold 0.5000" "$tmp/out" && grep -q "JPEG files \[0.0000, 1.0000))" "$tmp/out"'

# a score fusion of its own for JPEG files (dcr train --jpeg-fusion fits one on the validation JPEGs; here it
# is written into the metadata of the model, whose shared fusion dcr train fitted): the JPEG one gives every
# file judged as JPEG p_fake σ(5) = 0.9933; PNGs keep their score
set_meta "$tmp/mj.safetensors" "$tmp/mf.safetensors" fusion_jpeg "0,0,5"
"$dcr" scan --model "$tmp/mf.safetensors" --bank "$d/bank.dcrbank" --json "$d/test-fake/scene00.png" \
  "$tmp/jpg-fake/scene00.jpg" "$tmp/jpg-real/scene00.jpg" >"$tmp/scanf.json" 2>"$tmp/err"; rc=$?
"$py" - "$tmp/scanf.json" "$tmp/scan1.json" >"$tmp/check" 2>&1 <<'EOF'
import json, math, sys
png, jf, jr = json.load(open(sys.argv[1]))
one, = json.load(open(sys.argv[2]))
assert png['decision'] == 'other' and abs(png['p_fake'] - one['p_fake']) < 1e-6, (png['p_fake'], one['p_fake'])
for j in (jf, jr):
    assert j['decision'] == 'jpeg' and abs(j['p_fake'] - 1 / (1 + math.exp(-5))) < 1e-6, j['p_fake']
    assert j['verdict'] == 'inconclusive', j['verdict']
EOF
prc=$?
[ $prc -eq 0 ] || sed 's/^/# /' "$tmp/check" "$tmp/err"
check "a model's score fusion for JPEG files: JPEG files get it, PNGs keep the shared one" \
  eval '[ $rc -eq 0 ] && [ $prc -eq 0 ]'
refused "a model with a malformed JPEG fusion is refused" "$tmp/mj.safetensors" fusion_jpeg "0,x,5" \
  "score fusion for JPEG files"

# PNGs saved from JPEGs (quality 85): their pixels carry the JPEG's 8×8 grid, so the JPEG decision judges
# them, in scan (from the pixels) and in eval (from the feature cache, written by the first run, read by the
# second)
"$py" - "$d" "$tmp" <<'EOF'
import io, os, sys
from PIL import Image
for c in ('real', 'fake'):
    os.makedirs('%s/jpgpng-%s' % (sys.argv[2], c))
    for f in sorted(os.listdir('%s/test-%s' % (sys.argv[1], c))):
        b = io.BytesIO()
        Image.open('%s/test-%s/%s' % (sys.argv[1], c, f)).save(b, 'JPEG', quality=85)
        Image.open(b).save('%s/jpgpng-%s/%s' % (sys.argv[2], c, f))
EOF
"$dcr" scan --model "$tmp/mj.safetensors" --bank "$d/bank.dcrbank" --json "$d/test-fake/scene00.png" \
  "$tmp/jpgpng-fake/scene00.png" "$tmp/jpg-fake/scene00.jpg" >"$tmp/scant.json" 2>"$tmp/err"; rc=$?
"$dcr" eval --model "$tmp/mj.safetensors" --bank "$d/bank.dcrbank" --real "$tmp/jpgpng-real" \
  --fake "$tmp/jpgpng-fake" --json >"$tmp/evalt1.json" 2>>"$tmp/err"; rc2=$?
"$dcr" eval --model "$tmp/mj.safetensors" --bank "$d/bank.dcrbank" --real "$tmp/jpgpng-real" \
  --fake "$tmp/jpgpng-fake" --json >"$tmp/evalt2.json" 2>>"$tmp/err"; rc3=$?
"$py" - "$tmp/scant.json" "$tmp/evalt1.json" "$tmp/evalt2.json" "$tmp/evalp.json" >"$tmp/check" 2>&1 <<'EOF'
import json, sys
png, past, jpg = json.load(open(sys.argv[1]))
assert png['decision'] == 'other' and png['jpeg_trace']['found'] is False, png
assert png['jpeg_trace']['contrast'] < 0.1 and png['jpeg_trace']['blocks'] == 49, png['jpeg_trace']
t = past['jpeg_trace']
assert t['found'] is True and t['origin'] == [0, 0] and t['contrast'] >= 0.1 and t['blocks'] == 49, t
assert past['decision'] == 'jpeg' and past['threshold'] == 0.5 and past['verdict'] == 'inconclusive', past
assert jpg['jpeg_trace'] is None and jpg['decision'] == 'jpeg', jpg
e1, e2, ep = (json.load(open(f)) for f in sys.argv[2:5])
for e in (e1, e2):
    assert e['n_jpeg'] == 12 and e['n_jpeg_trace'] == 12 and e['inconclusive'] == 12, e
assert ep['n_jpeg_trace'] == 0, ep
EOF
prc=$?
[ $prc -eq 0 ] || sed 's/^/# /' "$tmp/check" "$tmp/err"
check "a PNG with an earlier JPEG's grid is judged by the JPEG decision in scan and eval (cached too)" \
  eval '[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ] && [ $prc -eq 0 ]'
"$dcr" scan --model "$tmp/mj.safetensors" --bank "$d/bank.dcrbank" "$tmp/jpgpng-fake/scene00.png" >"$tmp/out" 2>&1
check "scan text output names an earlier JPEG's grid" \
  grep -q "scene00.png: inconclusive (p_fake .*); the pixels carry the 8×8 grid of an earlier JPEG compression (origin 0,0; margin [0-9.]*); the model's decision for JPEG files" "$tmp/out"

# refusals: a model of another backbone, no model at all, an empty bank
set_meta "$d/m.safetensors" "$tmp/other.safetensors" backbone mobilenet_v2_b10@000000000000
"$dcr" scan --model "$tmp/other.safetensors" --bank "$d/bank.dcrbank" "$d/test-real/scene00.png" \
  >/dev/null 2>"$tmp/err"; rc=$?
check "a model of another backbone is refused" [ $rc -eq 1 ] && grep -q 'trained on features of backbone' "$tmp/err"
DCR_DATA_DIR="$tmp/none" "$dcr" scan --bank "$d/bank.dcrbank" "$d/test-real/scene00.png" >/dev/null 2>"$tmp/err"
rc=$?
# $DCR_DATA_DIR replaces the search for the shipped model: none there
check "no model: says how to train one" [ $rc -eq 1 ] && grep -q 'dcr train' "$tmp/err"
"$dcr" scan --model "$d/m.safetensors" --bank "$tmp/missing.dcrbank" "$d/test-real/scene00.png" >/dev/null 2>"$tmp/err"
check "a missing bank exits 1" [ $? -eq 1 ]
"$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" >/dev/null 2>&1
check "scan without files is a usage error" [ $? -eq 2 ]
mkdir -p "$tmp/no-reals"
"$dcr" eval --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --real "$tmp/no-reals" --fake "$d/test-fake" \
  >"$tmp/out" 2>"$tmp/err"; rc=$?
check "eval with no real images exits 1 and says why, no NaN metrics" \
  eval '[ $rc -eq 1 ] && grep -q "no real images could be read under .*no-reals" "$tmp/err" && ! grep -q nan "$tmp/out"'
"$dcr" train --real "$d/real" --out "$tmp/x.safetensors" >/dev/null 2>&1
check "train without --fake is a usage error" [ $? -eq 2 ]
"$dcr" train --real "$d/real" --fake "$d/fake" --jpeg-fusion --single-decision --out "$tmp/x.safetensors" \
  >/dev/null 2>"$tmp/err"; rc=$?
check "--jpeg-fusion with --single-decision is a usage error that says why" \
  eval '[ $rc -eq 2 ] && grep -q "leave out --single-decision" "$tmp/err" && [ ! -e "$tmp/x.safetensors" ]'
"$dcr" train --real "$d/real" --fake "$d/fake" --band-edges lowest --out "$tmp/x.safetensors" \
  >/dev/null 2>"$tmp/err"; rc=$?
check "an unknown --band-edges rule is a usage error that names the two" \
  eval '[ $rc -eq 2 ] && grep -q "first-break.*most-calls" "$tmp/err" && [ ! -e "$tmp/x.safetensors" ]'

# the forensic CNN's evidence: a backbone with a small random CNN (tests/cnn-ref.py), a model trained
# for it, and a 200 × 150 picture with a patch of high-frequency texture; its columns, block means and
# block rectangles as the script's own pure-Python forward pass gives them
cnn_ref="$(dirname "$make_images")/cnn-ref.py"
"$py" "$cnn_ref" make-cnn "$tmp/cnn.safetensors" 5
"$py" "$cnn_ref" make-png "$tmp/patch.png" 200 150 1
cnn_spec="mobilenet_v2+residual+local+cnn=$tmp/cnn.safetensors:$DCR_SOURCE_ROOT/data/models/mobilenet_v2_b10.safetensors"
train --epochs 2 --backbone "$cnn_spec" --bank "$tmp/cnn.dcrbank" --out "$tmp/cnn-m.safetensors" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "train with a CNN backbone fuses the CNN's top-block score" [ $rc -eq 0 ] && grep -q 'CNN top-block score' "$tmp/out"
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err"
"$py" "$cnn_ref" ref "$tmp/cnn.safetensors" "$tmp/patch.png" >"$tmp/cnn-ref.json"
"$dcr" scan --backbone "$cnn_spec" --model "$tmp/cnn-m.safetensors" --bank "$tmp/cnn.dcrbank" --json --tile-map \
  "$tmp/patch.png" >"$tmp/cnn-scan.json" 2>"$tmp/err"; rc=$?
"$dcr" scan --backbone "$cnn_spec" --model "$tmp/cnn-m.safetensors" --bank "$tmp/cnn.dcrbank" --json \
  "$tmp/patch.png" >"$tmp/cnn-scan-nomap.json" 2>>"$tmp/err"
"$py" - "$tmp/cnn-scan.json" "$tmp/cnn-ref.json" "$tmp/cnn-scan-nomap.json" >"$tmp/check" 2>&1 <<'EOF'
import json, math, sys
r = json.load(open(sys.argv[1]))[0]
ref = json.load(open(sys.argv[2]))
nomap = json.load(open(sys.argv[3]))[0]
sig = lambda x: 1 / (1 + math.exp(-x))
close = lambda a, b: abs(a - b) <= 1e-4 * (1 + abs(b))
c = r['cnn']
assert set(c) == {'mean', 'top', 'max', 'p_top'}, c
for k in ('mean', 'top', 'max'):
    assert close(c[k], ref[k]), (k, c[k], ref[k])
assert close(c['p_top'], sig(c['top'])), c
m = r['cnn_map']
assert len(m) == ref['nbh'] * ref['nbw'] == 8, m
for got, want, rect in zip(m, ref['blocks'], ref['rects']):
    assert [got[k] for k in 'xywh'] == rect, (got, rect)
    assert close(got['score'], want) and close(got['p'], sig(got['score'])), (got, want)
    assert 0 <= got['x'] and got['x'] + got['w'] <= 200 and 0 <= got['y'] and got['y'] + got['h'] <= 150, got
# the textured patch (x 100-147, y 50-97) is in the highest block
best = max(m, key=lambda b: b['score'])
assert (best['x'], best['y']) == (98, 50) and close(best['score'], c['max']), best
# no map without --tile-map; the tile head's evidence only with a tile head
assert 'cnn_map' not in nomap and close(nomap['cnn']['top'], c['top']), nomap
assert 'tiles' not in r, r
print('cnn', c)
EOF
prc=$?
sed 's/^/# /' "$tmp/check"
check "scan JSON with a CNN: its logits, p_top and block map equal the reference" eval '[ $rc -eq 0 ] && [ $prc -eq 0 ]'
"$dcr" scan --backbone "$cnn_spec" --model "$tmp/cnn-m.safetensors" --bank "$tmp/cnn.dcrbank" "$tmp/patch.png" \
  >"$tmp/out" 2>&1
check "scan text output names the CNN's score" grep -q 'patch.png: .*, CNN top blocks p=0\.97)' "$tmp/out"
"$dcr" scan --help >"$tmp/out" 2>&1
check "scan --help: --tile-map covers the CNN's blocks" grep -q 'forensic CNN' "$tmp/out"

# the shipped default model and bank on the bundled samples (no -m, no --bank)
"$dcr" scan --json "$DCR_SOURCE_ROOT"/data/samples/*.png >"$tmp/default.json" 2>"$tmp/err"
rc=$?
"$py" - "$tmp/default.json" >"$tmp/check" 2>&1 <<'EOF'
import json, math, sys
res = json.load(open(sys.argv[1]))
assert len(res) == 7, len(res)
for r in res:
    assert r['verdict'] in ('real', 'fake', 'inconclusive'), r
    # the shipped backbone has the tile head: its evidence and the heads' own P(fake)
    assert set(r['tiles']) == {'score', 'max'} and 0 <= r['p_heads'] <= 1, r
    # and the shipped forensic CNN: its three logits and σ of the top blocks (no map without --tile-map)
    c = r['cnn']
    assert set(c) == {'mean', 'top', 'max', 'p_top'} and c['max'] >= c['top'], c
    assert abs(c['p_top'] - 1 / (1 + math.exp(-c['top']))) < 1e-6 and 'cnn_map' not in r, r
    assert r['model']['path'].endswith('models/default/model.safetensors'), r['model']
    assert r['prototypes'] and r['prototypes'][0]['source'].endswith('-real.png'), r['prototypes'][0]
EOF
prc=$?
check "the shipped model and bank scan the bundled samples" eval '[ $rc -eq 0 ] && [ $prc -eq 0 ]'
sed 's/^/# /' "$tmp/check"

echo "1..$n"
[ $fail -eq 0 ]
