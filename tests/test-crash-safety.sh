#!/bin/sh
# test-crash-safety.sh — kill -9 at random points of `dcr bank add` (and of
# `dcr report`, when built): after every kill the bank opens, passes its
# integrity check and holds every prototype committed before, the killed
# add's images all or none; a killed report's folder is complete (every file,
# checksums right) or absent. Suite 'slow'. TAP output.
#   test-crash-safety.sh DCR PYTHON MAKE-IMAGES [TRIALS]   (kill trials of each command)
dcr="$1"; py="$2"; make_images="$3"; trials="${4:-50}"
n_img=$((trials + 2))  # two for the bank's first adds
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
check() { desc="$1"; shift; if "$@"; then ok "$desc"; else notok "$desc"; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/dcr-test-cache.sh"
private_cache "$tmp/cache"
b="$tmp/b.dcrbank"

# One folder of one fresh image per trial (made by cropping the synthetic
# photos differently, so no two are duplicates).
"$py" "$make_images" "$tmp/src" 2 >/dev/null
"$py" - "$tmp/src/real" "$tmp/in" "$n_img" <<'PY'
import os, struct, sys, zlib
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def read_png(p):  # the 64×64 RGB files of make-dcr-images.py: one IDAT, filter 0
    d = open(p, 'rb').read(); i, idat = 8, b''
    while i < len(d):
        ln, t = struct.unpack('>I4s', d[i:i + 8]); idat += d[i + 8:i + 8 + ln] if t == b'IDAT' else b''; i += 12 + ln
    raw = zlib.decompress(idat); return [raw[y * 193 + 1:(y + 1) * 193] for y in range(64)]
def chunk(t, x): return struct.pack('>I', len(x)) + t + x + struct.pack('>I', zlib.crc32(t + x))
srcs = [read_png(os.path.join(src, f)) for f in sorted(os.listdir(src))]
for i in range(n):
    rows = srcs[i % len(srcs)]; ox, oy = i % 17, (i // 17) % 17
    px = b''.join(b'\0' + rows[oy + y][ox * 3:(ox + 40) * 3] for y in range(40))
    os.makedirs(os.path.join(out, '%03d' % i))
    open(os.path.join(out, '%03d' % i, 'img.png'), 'wb').write(
        b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 40, 40, 8, 2, 0, 0, 0))
        + chunk(b'IDAT', zlib.compress(px)) + chunk(b'IEND', b''))
PY
sources() { "$dcr" bank list "$b" --json 2>/dev/null | "$py" -c \
  'import json,sys; print("\n".join(sorted(p["source"] for p in json.load(sys.stdin))))'; }

"$dcr" bank add --create -q "$b" "$tmp/in/000" >/dev/null 2>"$tmp/err"
check "a bank to add to" [ -s "$b" ] || sed 's/^/# /' "$tmp/err"
# How long an undisturbed add takes: the kills land anywhere in it.
t0=$(date +%s%N); "$dcr" bank add -q "$b" "$tmp/in/001" >/dev/null 2>&1; t1=$(date +%s%N)
span_ms=$(( (t1 - t0) / 1000000 )); echo "# an undisturbed add takes $span_ms ms"
sources >"$tmp/committed"

killed=0; completed=0; bad=0
i=2
while [ $i -lt $n_img ]; do
  dir="$tmp/in/$(printf %03d $i)"
  delay_ms=$(awk -v s="$i" -v m="$span_ms" 'BEGIN { srand(s); printf "%d", rand() * m * 1.1 }')
  "$dcr" bank add -q "$b" "$dir" >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v d="$delay_ms" 'BEGIN { printf "%.3f", d / 1000 }')"
  if kill -9 $pid 2>/dev/null; then killed=$((killed + 1)); else completed=$((completed + 1)); fi
  wait $pid 2>/dev/null
  if ! "$dcr" bank info --check "$b" >"$tmp/info" 2>&1 || ! grep -q '^integrity: ok' "$tmp/info"; then
    bad=$((bad + 1)); echo "# trial $i (kill after $delay_ms ms): the bank fails its check"; sed 's/^/#   /' "$tmp/info"
  fi
  sources >"$tmp/now"
  # every committed prototype is still there; the only new one is this trial's
  extra=$(comm -13 "$tmp/committed" "$tmp/now")
  if [ -n "$(comm -23 "$tmp/committed" "$tmp/now")" ] || { [ -n "$extra" ] && [ "$extra" != "$dir/img.png" ]; }; then
    bad=$((bad + 1)); echo "# trial $i (kill after $delay_ms ms): prototypes lost or unexpected"
  fi
  "$dcr" bank audit "$b" >/dev/null 2>&1 || { bad=$((bad + 1)); echo "# trial $i: audit log unreadable"; }
  cp "$tmp/now" "$tmp/committed"
  i=$((i + 1))
done
echo "# bank add: $trials trials, $killed killed mid-run, $completed finished first, $bad bad"
check "bank add: every kill -9 left a bank with every committed prototype ($killed killed)" [ $bad -eq 0 ]
check "bank add: kills landed while it ran" [ $killed -ge $(( trials / 2 )) ]

if "$dcr" report --help >/dev/null 2>&1; then
  "$dcr" train --real "$tmp/src/real" --fake "$tmp/src/fake" --bank "$tmp/rb.dcrbank" --bank-from-reals --k 2 \
    --hidden 8 --head-hidden 8 --batch 4 --epochs 1 --seed 3 --out "$tmp/m.safetensors" >/dev/null 2>&1
  rep() { "$dcr" report -q --model "$tmp/m.safetensors" --bank "$tmp/rb.dcrbank" --out "$1" "$tmp/in/000" "$tmp/in/001"; }
  # the shortest of three undisturbed runs (the first also fills caches;
  # a loaded machine stretches one run): kills then land inside a run
  span_ms=
  for r in 1 2 3; do
    rm -rf "$tmp/rep-ref"
    t0=$(date +%s%N); rep "$tmp/rep-ref" >/dev/null 2>"$tmp/err"; t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    if [ -z "$span_ms" ] || [ $ms -lt $span_ms ]; then span_ms=$ms; fi
  done
  check "an undisturbed report" [ -f "$tmp/rep-ref/report.json" ] || sed 's/^/# /' "$tmp/err"
  echo "# an undisturbed report takes $span_ms ms (shortest of 3)"
  files=$(cd "$tmp/rep-ref" && ls | sort | tr '\n' ' ')
  killed=0; complete=0; absent=0; bad=0
  i=0
  while [ $i -lt "$trials" ]; do
    out="$tmp/rep-$i"
    delay_ms=$(awk -v s="$i" -v m="$span_ms" 'BEGIN { srand(s + 1000); printf "%d", rand() * m * 1.1 }')
    rep "$out" >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v d="$delay_ms" 'BEGIN { printf "%.3f", d / 1000 }')"
    kill -9 $pid 2>/dev/null && killed=$((killed + 1))
    wait $pid 2>/dev/null
    if [ ! -e "$out" ]; then
      absent=$((absent + 1))
    elif [ "$(cd "$out" && ls | sort | tr '\n' ' ')" = "$files" ] && (cd "$out" && sha256sum -c --quiet report.sha256 >/dev/null 2>&1); then
      complete=$((complete + 1))
    else
      bad=$((bad + 1)); echo "# report trial $i (kill after $delay_ms ms): $out is partial: $(ls "$out" | tr '\n' ' ')"
    fi
    rm -rf "$out"
    i=$((i + 1))
  done
  echo "# report: $trials trials, $killed killed mid-run, $complete complete, $absent absent, $bad partial"
  check "report: every kill -9 left the folder complete or absent" [ $bad -eq 0 ]
  check "report: kills landed while it ran" [ $killed -ge $(( trials / 2 )) ]
else
  echo "# dcr report not built: its kill trials skipped"
fi

echo "1..$n"
[ $fail -eq 0 ]
