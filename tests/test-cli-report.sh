#!/bin/sh
# test-cli-report.sh — `dcr report` as an analyst meets it: a folder of
# real and fake images mixed with a truncated PNG, a text file named .jpg, a
# zero-byte file and a PNG whose header claims 100000×100000 becomes a report
# directory whose PDF (read back with pdftotext) names every good file's
# SHA-256 and every rejected file with its reason, whose CSV and JSON agree
# with it and with the files, and whose report.sha256 checks; evidence is
# left untouched; an existing folder is refused; SIGINT and SIGTERM mid-batch
# leave no report directory and no temporary one. TAP output.
#   test-cli-report.sh DCR PYTHON MAKE-IMAGES PAGE-PREFIX
dcr="$1"; py="$2"; make_images="$3"; page="$4"
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
check() { desc="$1"; shift; if "$@"; then ok "$desc"; else notok "$desc"; fi; }
tmp=$(mktemp -d); trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
d="$tmp/data"

"$py" "$make_images" "$d" 4
"$dcr" train --real "$d/real" --fake "$d/fake" --pairs "$d/pairs.csv" --bank "$d/bank.dcrbank" \
  --bank-from-reals --k 3 --hidden 32 --head-hidden 16 --batch 8 --lr 3e-3 --seed 5 --epochs 12 \
  --out "$d/m.safetensors" >/dev/null 2>"$tmp/err"
check "a tiny model is trained" [ -s "$d/m.safetensors" ]
[ -s "$d/m.safetensors" ] || sed 's/^/# /' "$tmp/err"

# the evidence: reals at the top, fakes in a subfolder, and four bad files
ev="$tmp/evidence"
mkdir -p "$ev/sub"
cp "$d"/test-real/*.png "$ev/"
for f in "$d"/test-fake/*.png; do cp "$f" "$ev/sub/$(basename "$f" .png)-fake.png"; done
head -c 300 "$d/test-real/scene00.png" >"$ev/truncated.png"
printf 'case notes, not a picture\n' >"$ev/notes.jpg"
: >"$ev/empty.png"
"$py" - "$ev/huge.png" <<'EOF'
import struct, sys, zlib
def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 100000, 100000, 8, 2, 0, 0, 0))
                              + chunk(b'IDAT', zlib.compress(b'\0' * 64)) + chunk(b'IEND', b''))
EOF
chmod -R a-w "$ev"
(cd "$ev" && find . -type f | sort | xargs sha256sum) >"$tmp/before"

out="$tmp/reports/r1"
mkdir -p "$tmp/reports"
"$dcr" report --out "$out" --case "2026-CR-0417" --exhibit "EX-12" --examiner "J. Doe" \
  -m "$d/m.safetensors" --bank "$d/bank.dcrbank" "$ev" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "report exits 0 with rejected inputs" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err"
check "report.pdf, .csv, .json and .sha256 exist" \
  [ -s "$out/report.pdf" ] && [ -s "$out/report.csv" ] && [ -s "$out/report.json" ] && [ -s "$out/report.sha256" ]
check "nothing else in the report folder" [ "$(ls -A "$out" | tr '\n' ' ')" = "report.csv report.json report.pdf report.sha256 " ]
check "report.sha256 verifies with sha256sum -c" sh -c "cd '$out' && sha256sum --quiet -c report.sha256"
check "no temporary folder left" [ -z "$(ls -A "$tmp/reports" | grep -v '^r1$')" ]
(cd "$ev" && find . -type f | sort | xargs sha256sum) >"$tmp/after"
check "evidence untouched" cmp -s "$tmp/before" "$tmp/after"
check "prints images/s" grep -q 'images/s end to end' "$tmp/out"

pdftotext "$out/report.pdf" "$tmp/report.txt"
pdftotext -layout "$out/report.pdf" "$tmp/report-layout.txt"
"$py" - "$out" "$ev" "$tmp/report.txt" "$tmp/report-layout.txt" "$d/m.safetensors" "$d/bank.dcrbank" \
  >"$tmp/check" 2>&1 <<'EOF'
import csv, hashlib, json, math, os, re, sys
out, ev, txt_path, layout_path, model, bank = sys.argv[1:]
sha = lambda p: hashlib.sha256(open(p, 'rb').read()).hexdigest()
text = ' '.join(open(txt_path).read().split())
layout = open(layout_path).read().splitlines()
rows = list(csv.DictReader(open(os.path.join(out, 'report.csv'))))
rep = json.load(open(os.path.join(out, 'report.json')))
items = rep['items']
assert rep['schema'] == 'dcr-report/1'
files = sorted(os.path.join(r, f) for r, _, fs in os.walk(ev) for f in fs)
assert sorted(i['file'] for i in items) == files, 'every file is accounted for'
assert len(rows) == len(items) == 12
s = rep['summary']
assert (s['files'], s['analysed'], s['rejected'], s['changed']) == (12, 8, 4, 0), s
assert s['real'] + s['fake'] + s['inconclusive'] == 8
for k in ('2026-CR-0417', 'EX-12', 'J. Doe'):
    assert k in text, k
assert rep['case'] == {'case_id': '2026-CR-0417', 'exhibit': 'EX-12', 'examiner': 'J. Doe'}
assert rep['model']['sha256'] == sha(model) and sha(model) in text, 'model hash'
assert rep['bank']['sha256'] == sha(bank) and sha(bank) in text, 'bank hash'
assert rep['bank']['size'] == os.path.getsize(bank)
assert rep['device']['name'] and rep['device']['name'] in text
for k in ('intake', 'analysis_start', 'report'):
    assert re.match(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d', rep['times'][k]), k
    t = rep['times'][k][:19].replace('T', ' ') + ' UTC'
    assert t in text, (k, t)
assert 'Limitations' in text and 'evidence, not proof' in text
assert 'threshold' in rep['model'] and rep['model']['threshold_rule'] in text
reasons = {'empty.png': 'empty file', 'notes.jpg': 'not a PNG or JPEG image by its content',
           'truncated.png': 'truncated', 'huge.png': '100000×100000 pixels is over the limit'}
for row, it in zip(rows, items):
    assert row['file'] == it['file'] and row['status'] == it['status'] and row['sha256'] == it['sha256']
    assert it['sha256'] == sha(it['file']) == it['sha256_at_report'] and it['integrity'] == 'unchanged'
    name = os.path.basename(it['file'])
    if it['status'] == 'rejected':
        assert name in reasons, name
        assert reasons[name] in it['reason'], (name, it['reason'])
        assert row['reason'] == it['reason']
        assert it['file'] in text and it['reason'] in text, ('rejected file and reason in the PDF', name)
        continue
    assert it['status'] == 'analysed', it
    assert (it['width'], it['height'], it['format']) == (64, 64, 'PNG')
    # a model with one decision: every file's verdict comes from it
    assert it['decision'] == 'single' and 'jpeg_decision' not in rep['model'], it['decision']
    assert row['verdict'] == it['verdict'] and abs(float(row['p_fake']) - it['p_fake']) < 1e-6
    assert abs(float(row['anomaly']) - it['anomaly']) < 1e-6
    assert len(it['prototypes']) == 3 and row['prototype_ids'] == ';'.join(str(p['id']) for p in it['prototypes'])
    assert len(it['top_channels']) == 10 and len(row['top_channels'].split(';')) == 10
    # the fine-detail caution, in both
    dt = it['detail']
    assert dt['low'] == (dt['value'] < dt['threshold']) and abs(float(row['detail']) - dt['value']) < 1e-3, (dt, row)
    assert row['low_detail'] == ('yes' if dt['low'] else 'no'), row
    # the default backbone has a tile head: its score and its highest tile, inside the image
    t = it['tiles']
    h = t['highest']
    assert 0 <= h['p'] <= 1 and h['w'] > 0 and h['h'] > 0, h
    assert h['x'] >= 0 and h['y'] >= 0 and h['x'] + h['w'] <= it['width'] and h['y'] + h['h'] <= it['height'], h
    # and the shipped forensic CNN: its highest block, inside the image, names the PDF's
    # most suspicious region (the CNN's, not the tile's)
    c = it['cnn']
    b = c['highest']
    assert abs(c['p_top'] - 1 / (1 + math.exp(-c['top']))) < 1e-6, c
    assert 0 <= b['p'] <= 1 and b['w'] > 0 and b['h'] > 0, b
    assert b['x'] >= 0 and b['y'] >= 0 and b['x'] + b['w'] <= it['width'] and b['y'] + b['h'] <= it['height'], b
    assert 'most suspicious region (%d, %d), %.2f' % (b['x'], b['y'], b['p']) in text, (name, b)
    assert 'most suspicious tile' not in text
    assert 0 <= it['p_heads'] <= 1
    assert it['sha256'] in text, name
    # the PDF row: hash, P(fake), anomaly and verdict on one line
    line = [l for l in layout if it['sha256'] in l]
    assert len(line) == 1, name
    f = line[0].split()
    assert f[-3:] == ['%.3f' % it['p_fake'], '%.3f' % it['anomaly'], it['verdict'].upper()], (f, it)
    assert name in text
# the held-out reals and fakes are mostly called right
right = sum(1 for i in items if i['status'] == 'analysed' and i['verdict'] == ('fake' if '/sub/' in i['file'] else 'real'))
print('right', right, 'of 8')
assert right >= 6
EOF
rc=$?
sed 's/^/# /' "$tmp/check"
check "PDF names every hash and every rejection; CSV, JSON and PDF agree" [ $rc -eq 0 ]

# the forensic CNN's evidence (`--backbone` with a small random CNN, tests/cnn-ref.py): report.json's
# "cnn" and the PDF's most suspicious region from its highest block, as the script's own forward pass
# gives them; the Limitations say what the CNN's score is
cnn_ref="$(dirname "$make_images")/cnn-ref.py"
"$py" "$cnn_ref" make-cnn "$tmp/cnn.safetensors" 5
mkdir -p "$tmp/cnn-ev"
"$py" "$cnn_ref" make-png "$tmp/cnn-ev/patch.png" 200 150 1
cp "$d/test-real/scene00.png" "$tmp/cnn-ev/"
cnn_spec="mobilenet_v2+residual+local+cnn=$tmp/cnn.safetensors:$DCR_SOURCE_ROOT/data/models/mobilenet_v2_b10.safetensors"
"$dcr" train --backbone "$cnn_spec" --real "$d/real" --fake "$d/fake" --bank "$tmp/cnn.dcrbank" --bank-from-reals \
  --k 3 --hidden 32 --head-hidden 16 --batch 8 --seed 5 --epochs 2 --out "$tmp/cnn-m.safetensors" >/dev/null 2>"$tmp/err"
check "a tiny model with a CNN backbone is trained" [ -s "$tmp/cnn-m.safetensors" ]
"$dcr" report --out "$tmp/cnn-report" --backbone "$cnn_spec" -m "$tmp/cnn-m.safetensors" --bank "$tmp/cnn.dcrbank" \
  "$tmp/cnn-ev" >/dev/null 2>"$tmp/err"; rc=$?
check "report --backbone with a CNN exits 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err"
pdftotext "$tmp/cnn-report/report.pdf" "$tmp/cnn.txt"
"$py" "$cnn_ref" ref "$tmp/cnn.safetensors" "$tmp/cnn-ev/patch.png" >"$tmp/ref-patch.json"
"$py" "$cnn_ref" ref "$tmp/cnn.safetensors" "$tmp/cnn-ev/scene00.png" >"$tmp/ref-scene.json"
"$py" - "$tmp/cnn-report/report.json" "$tmp/cnn.txt" "$tmp/ref-patch.json" "$tmp/ref-scene.json" \
  >"$tmp/check" 2>&1 <<'EOF'
import json, math, sys
rep = json.load(open(sys.argv[1]))
text = ' '.join(open(sys.argv[2]).read().split())
refs = {'patch.png': json.load(open(sys.argv[3])), 'scene00.png': json.load(open(sys.argv[4]))}
sig = lambda x: 1 / (1 + math.exp(-x))
close = lambda a, b: abs(a - b) <= 1e-4 * (1 + abs(b))
assert len(rep['items']) == 2
for it in rep['items']:
    name = it['file'].rsplit('/', 1)[1]
    ref = refs[name]
    c = it['cnn']
    assert close(c['top'], ref['top']) and close(c['max'], ref['max']), (name, c, ref)
    assert close(c['p_top'], sig(c['top'])), c
    b = max(range(len(ref['blocks'])), key=lambda i: ref['blocks'][i])
    h = c['highest']
    assert [h[k] for k in 'xywh'] == ref['rects'][b], (name, h, ref['rects'][b])
    assert close(h['p'], sig(ref['blocks'][b])), (name, h)
    assert 'tiles' not in it, it
    row = 'most suspicious region (%d, %d), %.2f%s' % (h['x'], h['y'], h['p'], ', outlined' if h['p'] >= 0.5 else '')
    assert row in text, (name, row)
    print(name, c)
# the patch of texture is the highest block of its picture
assert rep['items'][0]['cnn']['highest']['x'] == 98 and rep['items'][0]['cnn']['highest']['y'] == 50
assert 'most suspicious tile' not in text
assert 'super-resolution generators' in text and 'evidence, not proof' in text
EOF
rc=$?
sed 's/^/# /' "$tmp/check"
check "report with a CNN: report.json's cnn and the PDF's most suspicious region equal the reference" [ $rc -eq 0 ]

rm -f "$page"-1.png
pdftoppm -r 110 -png -f 1 -l 1 "$out/report.pdf" "$page"
check "page 1 renders to PNG" [ -s "$page-1.png" ]

"$dcr" report --out "$out" -m "$d/m.safetensors" --bank "$d/bank.dcrbank" "$ev" >/dev/null 2>"$tmp/err"; rc=$?
check "an existing report folder is refused" [ $rc -eq 1 ] && grep -q 'already exists' "$tmp/err"
check "and left as it was" sh -c "cd '$out' && sha256sum --quiet -c report.sha256"
"$dcr" report --out "$tmp/reports/r2" -m "$d/m.safetensors" --bank "$d/bank.dcrbank" "$tmp/nowhere" \
  >/dev/null 2>"$tmp/err"; rc=$?
check "a missing input exits 1 naming it" [ $rc -eq 1 ] && grep -q 'nowhere' "$tmp/err" && [ ! -e "$tmp/reports/r2" ]
"$dcr" report -m "$d/m.safetensors" "$ev" >/dev/null 2>&1
check "no --out is a usage error" [ $? -eq 2 ]
DCR_DATA_DIR="$tmp/none" "$dcr" report --out "$tmp/reports/r3" --bank "$d/bank.dcrbank" "$ev" >/dev/null 2>"$tmp/err"
rc=$?
check "no model: says how to train one, writes nothing" [ $rc -eq 1 ] && grep -q 'dcr train' "$tmp/err" \
  && [ -z "$(ls -A "$tmp/reports" | grep -v '^r1$')" ]

# cancel mid-batch: many files, one per GPU batch, signalled once analysis runs
many="$tmp/many"
mkdir -p "$many"
i=0; while [ $i -lt 150 ]; do cp "$d/test-real/scene0$((i % 4)).png" "$many/img$i.png"; i=$((i + 1)); done
for sig in INT TERM; do
  # emptied here: the background job's own redirection may come after the
  # first grep below, which would then read the previous run's log
  : >"$tmp/err"
  "$dcr" report --out "$tmp/reports/cancel" --batch 1 --decoders 1 -m "$d/m.safetensors" \
    --bank "$d/bank.dcrbank" "$many" >/dev/null 2>"$tmp/err" &
  pid=$!
  t=0; while ! grep -q '^report: analysing' "$tmp/err" && [ $t -lt 600 ]; do
    sleep 0.1; t=$((t + 1)); done
  kill -$sig $pid
  wait $pid; rc=$?
  check "SIG$sig mid-batch exits 1 and says so" [ $rc -eq 1 ] && grep -q 'cancelled' "$tmp/err"
  check "SIG$sig leaves no report and no temporary folder" [ -z "$(ls -A "$tmp/reports" | grep -v '^r1$')" ]
done

echo "1..$n"
[ $fail -eq 0 ]
