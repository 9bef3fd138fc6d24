#!/bin/sh
# test-malformed-cli.sh — a sample (~50) of the malformed-input suite through
# the `dcr` tool as an analyst would meet it: `dcr features FILE` on broken
# images, `dcr scan --model FILE` on broken models and `dcr features
# --backbone …+tiles=FILE:…` on broken tile heads. Each must exit 1 with a
# message naming the file — never crash (a signal gives 128 + n). The whole
# suite runs in-process in test-malformed. TAP output.
#   test-malformed-cli.sh DCR MANIFEST.tsv
dcr="$1"; manifest="$2"; dir=$(dirname "$manifest")
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

run_case() { # DESC FILE COMMAND…
  desc="$1"; file="$2"; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  base=$(basename "$file")
  if [ $rc -eq 1 ] && grep -qF "$base" "$tmp/err"; then
    ok "$desc"
  else
    notok "$desc (exit $rc)"
    sed 's/^/# /' "$tmp/err" | head -5
  fi
}

# Every 70th refused image, the bombs and the EXIF oddities that must fail,
# and every 12th refused model.
awk -F '\t' '$1 == "image" && $2 == "error" && (NR % 70 == 0 || $4 ~ /^bomb|app1-cut|zeros-0/)' "$manifest" \
  >"$tmp/images"
awk -F '\t' '$1 == "model" && $2 == "error" && NR % 12 == 0' "$manifest" >"$tmp/models"
awk -F '\t' '$1 == "tile-head" && $2 == "error" && NR % 4 == 0' "$manifest" >"$tmp/heads"
awk -F '\t' '$1 == "cnn" && $2 == "error" && NR % 4 == 0' "$manifest" >"$tmp/cnns"
weights="${DCR_SOURCE_ROOT:-$(dirname "$0")/..}/data/models/mobilenet_v2_b10.safetensors"
good=$(awk -F '\t' '$1 == "image" && $2 == "ok" { print $3; exit }' "$manifest")

while IFS="$(printf '\t')" read -r kind expect file what; do
  run_case "features on $what" "$file" "$dcr" features "$dir/$file"
done <"$tmp/images"
while IFS="$(printf '\t')" read -r kind expect file what; do
  run_case "scan --model $what" "$file" "$dcr" scan --model "$dir/$file" "$dir/$good"
done <"$tmp/models"

while IFS="$(printf '\t')" read -r kind expect file what; do
  run_case "features --backbone …+tiles=$what" "$file" "$dcr" features \
    --backbone "mobilenet_v2+residual+local+tiles=$dir/$file:$weights" "$dir/$good"
done <"$tmp/heads"
while IFS="$(printf '\t')" read -r kind expect file what; do
  run_case "features --backbone …+cnn=$what" "$file" "$dcr" features \
    --backbone "mobilenet_v2+residual+local+cnn=$dir/$file:$weights" "$dir/$good"
done <"$tmp/cnns"

echo "1..$n"
[ $n -ge 40 ] || { echo "# only $n cases sampled"; exit 1; }
[ $fail -eq 0 ]
