#!/bin/sh
# test-cli-train-cnn.sh — `dcr train-cnn` as a user meets it, on the tiny
# synthetic image set of tests/make-dcr-images.py (fakes carry a periodic
# high-frequency pattern): it trains a small CNN that tells the held-out
# fakes from the reals, writes a file the backbone loads with the run
# recorded in it (with --jpeg, its crops' JPEG round trips); bad manifests,
# unknown folders, a missing output folder,
# crops larger than every image and a malformed --arch exit 1 and write
# nothing; usage errors exit 2. TAP output.
#   test-cli-train-cnn.sh DCR PYTHON MAKE-IMAGES
dcr="$1"; py="$2"; make_images="$3"
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
check() { desc="$1"; shift; if "$@"; then ok "$desc"; else notok "$desc"; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
d="$tmp/data"
"$py" "$make_images" "$d" 6 >/dev/null
weights="$DCR_SOURCE_ROOT/data/models/mobilenet_v2_b10.safetensors"
small="--crop 32 --batch 16 --arch 4:3:1"

"$dcr" train-cnn --real "$d/real" --fake "$d/fake" --val-real "$d/test-real" --val-fake "$d/test-fake" \
  $small --epochs 20 --lr 1e-2 -q --out "$tmp/c.safetensors" >"$tmp/out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/out"
check "train-cnn exits 0 and writes the network" eval '[ $rc -eq 0 ] && [ -s "$tmp/c.safetensors" ]'
check "it counts the images" grep -q '^images: .* real, 0 negatives, .* fakes (0 partial) for training; .* real, .* fakes for validation$' "$tmp/out"
auc=$(sed -n 's/^validation image AUC ([0-9]* fakes, [0-9]* reals): mean \([0-9.]*\),.*/\1/p' "$tmp/out")
check "the held-out fakes are told from the reals (mean column AUC $auc ≥ 0.9)" \
  "$py" -c "import sys; sys.exit(0 if float('${auc:-0}') >= 0.9 else 1)"
"$py" - "$tmp/c.safetensors" >"$tmp/check" 2>&1 <<'EOF'
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
h = json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])
m = h['__metadata__']
assert m['format'] == 'dcr-cnn' and m['version'] == 'cnn-v1' and m['strides'] == '1,1', m
assert h['layer0.weight']['shape'] == [4, 3, 3, 3] and h['layer1.weight']['shape'] == [1, 1, 1, 4], h
t = json.loads(m['training'])
assert t['command'] == 'dcr train-cnn' and t['options']['arch'] == '4:3:1' and t['options']['crop'] == 32, t
assert t['counts']['fakes'] > 0 and t['counts']['partial_fakes'] == 0 and 0.9 <= t['auc_val_mean'] <= 1, t
EOF
prc=$?
sed 's/^/# /' "$tmp/check"
check "the file records the run (format, shapes, options, counts, AUC)" [ $prc -eq 0 ]
"$dcr" features --json -b "mobilenet_v2+cnn=$tmp/c.safetensors:$weights" "$d/test-fake/scene00.png" \
  >"$tmp/feat" 2>&1
check "the backbone loads it (+cnn=)" grep -q '"backbone" : "mobilenet_v2_b10+cnn-v1@' "$tmp/feat"

# --jpeg: crops through a JPEG round trip; the run is recorded with it
"$dcr" train-cnn --real "$d/real" --fake "$d/fake" $small --epochs 2 --jpeg 0.5:50-90 -q \
  --out "$tmp/j.safetensors" >"$tmp/out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/out"
"$py" - "$tmp/j.safetensors" "$tmp/c.safetensors" >"$tmp/check" 2>&1 <<'EOF'
import json, struct, sys
def opts(p):
    b = open(p, 'rb').read()
    return json.loads(json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])['__metadata__']['training'])['options']
assert opts(sys.argv[1])['jpeg'] == '0.5:50-90', opts(sys.argv[1])
assert 'jpeg' not in opts(sys.argv[2]), opts(sys.argv[2])
EOF
prc=$?
sed 's/^/# /' "$tmp/check"
check "--jpeg trains and is recorded in the file (and only when given)" eval '[ $rc -eq 0 ] && [ $prc -eq 0 ]'

# a manifest: one fake partial, the rest whole (empty `partial`)
f0=$(ls "$d/fake" | head -1)
{ echo "file,generator,partial"; for f in "$d"/fake/*.png; do
    if [ "$(basename "$f")" = "$f0" ]; then echo "fake/$(basename "$f"),synthetic,\"8,8,40,40\""
    else echo "fake/$(basename "$f"),synthetic,"; fi
  done; } >"$d/manifest.csv"
"$dcr" train-cnn --real "$d/real" --fake "$d/fake" --manifest "$d/manifest.csv" $small --epochs 1 -q \
  --out "$tmp/m.safetensors" >"$tmp/out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/out"
check "a manifest's partial rectangle is counted" eval '[ $rc -eq 0 ] && grep -q "fakes (1 partial)" "$tmp/out"'

bad() { # DESC EXPECTED-STATUS ARGS… : exits with the status, writes no file
  desc="$1"; want="$2"; shift 2
  rm -f "$tmp/x.safetensors"
  "$dcr" train-cnn "$@" >"$tmp/out" 2>&1
  got=$?
  sed 's/^/# /' "$tmp/out"
  check "$desc (exit $got)" eval '[ $got -eq $want ] && [ ! -e "$tmp/x.safetensors" ]'
}
sed 's/"8,8,40,40"/"8,8,0,40"/' "$d/manifest.csv" >"$d/bad-rect.csv"
bad "a malformed rectangle" 1 --real "$d/real" --fake "$d/fake" --manifest "$d/bad-rect.csv" $small --out "$tmp/x.safetensors"
echo "file,generator" >"$d/no-partial.csv"
bad "a manifest without partial" 1 --real "$d/real" --fake "$d/fake" --manifest "$d/no-partial.csv" $small --out "$tmp/x.safetensors"
bad "an unknown folder" 1 --real "$d/nowhere" --fake "$d/fake" $small --out "$tmp/x.safetensors"
bad "crops larger than every image" 1 --real "$d/real" --fake "$d/fake" --crop 128 --out "$tmp/x.safetensors"
bad "a malformed --arch" 1 --real "$d/real" --fake "$d/fake" --arch 8:3 --out "$tmp/x.safetensors"
bad "a missing output folder" 1 --real "$d/real" --fake "$d/fake" $small --out "$tmp/none/x.safetensors"
bad "no --out" 2 --real "$d/real" --fake "$d/fake"
bad "an odd crop" 2 --real "$d/real" --fake "$d/fake" --crop 33 --out "$tmp/x.safetensors"
for spec in 1.5:60-95 0.5:90-60 0.5:0-95 0.5:60 x:60-95 0.5:60-101; do
  bad "--jpeg $spec" 2 --real "$d/real" --fake "$d/fake" $small --jpeg "$spec" --out "$tmp/x.safetensors"
done
bad "--val-real without --val-fake" 2 --real "$d/real" --fake "$d/fake" --val-real "$d/test-real" --out "$tmp/x.safetensors"

echo "1..$n"
[ $fail -eq 0 ]
