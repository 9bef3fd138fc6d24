#!/bin/sh
# test-evidence.sh — evidence integrity: scan, features and bank add (and
# report, when built) on a read-only evidence folder leave every file there
# as it was (content, size, mtime, no new files), and — under strace when it
# is installed — never open anything there for writing, nor rename, unlink or
# touch it. TAP output.
#   test-evidence.sh DCR PYTHON MAKE-IMAGES
dcr="$1"; py="$2"; make_images="$3"
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
check() { desc="$1"; shift; if "$@"; then ok "$desc"; else notok "$desc"; fi; }
tmp=$(mktemp -d); trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
d="$tmp/data"; ev="$tmp/evidence"

"$py" "$make_images" "$d" 1 >/dev/null
"$dcr" train --real "$d/real" --fake "$d/fake" --bank "$d/bank.dcrbank" --bank-from-reals --k 2 \
  --hidden 8 --head-hidden 8 --batch 4 --epochs 1 --seed 3 --out "$d/m.safetensors" >/dev/null 2>"$tmp/err"
check "a tiny model to scan with" [ -s "$d/m.safetensors" ] || sed 's/^/# /' "$tmp/err"

mkdir -p "$ev/real" "$ev/fake"
cp "$d"/test-real/*.png "$ev/real/"
cp "$d"/test-fake/*.png "$ev/fake/"
printf 'case notes, not an image\n' >"$ev/notes.txt"
printf '\211PNG\r\n\032\n\0\0' >"$ev/broken.png"
# a past mtime, so a rewrite in the same second would still show
find "$ev" -type f -exec touch -d '2020-01-02 03:04:05' {} +
chmod -R a-w "$ev"
snapshot() { (cd "$ev" && find . -print0 | sort -z | xargs -0 stat -c '%n %s %Y %a' && \
              find . -type f -print0 | sort -z | xargs -0 sha256sum); }
snapshot >"$tmp/before"

if command -v strace >/dev/null 2>&1 && strace -qq -o /dev/null true 2>/dev/null; then
  # LeakSanitizer cannot stop the world under ptrace: no leak check in an
  # ASan build while traced (the untraced test runs cover leaks)
  traced() { label="$1"; shift; ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
      strace -f -qq -y -o "$tmp/trace.$label" \
      -e trace=open,openat,openat2,creat,truncate,ftruncate,rename,renameat,renameat2,unlink,unlinkat,utimensat,mkdir,mkdirat,chmod,fchmodat \
      "$@"; }
  have_strace=1
else
  traced() { shift; "$@"; }
  have_strace=0
fi

traced scan "$dcr" scan --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --json "$ev"/real/*.png "$ev"/fake/*.png "$ev/broken.png" "$ev/notes.txt" \
  >"$tmp/scan.json" 2>"$tmp/err"; rc=$?
check "scan of the evidence exits 1 (a non-image and a broken PNG among them)" [ $rc -eq 1 ]
check "scan names the broken file" grep -q 'broken.png' "$tmp/err"
check "scan gave verdicts for the images" grep -q '"verdict"' "$tmp/scan.json"
traced features "$dcr" features "$ev"/real/*.png "$ev"/fake/*.png >/dev/null 2>"$tmp/err"; rc=$?
check "features of the evidence exits 0" [ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err"
traced bank "$dcr" bank add --create "$tmp/b2.dcrbank" "$ev" >/dev/null 2>"$tmp/err"; rc=$?
check "bank add from the evidence folder ran (exit $rc)" eval '[ $rc -le 1 ] && [ -s "$tmp/b2.dcrbank" ]'
if "$dcr" report --help >/dev/null 2>&1; then
  traced report "$dcr" report --model "$d/m.safetensors" --bank "$d/bank.dcrbank" --out "$tmp/report" \
    "$ev" >/dev/null 2>"$tmp/err"; rc=$?
  check "report on the evidence exits 0" [ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err"
fi

snapshot >"$tmp/after"
check "no evidence file changed (content, size, mtime, mode) and none appeared" cmp -s "$tmp/before" "$tmp/after"
cmp -s "$tmp/before" "$tmp/after" || diff "$tmp/before" "$tmp/after" | sed 's/^/# /'

if [ $have_strace -eq 1 ]; then
  for t in "$tmp"/trace.*; do
    # any call on an evidence path (the path itself or a descriptor on it)
    # that can write: write-mode opens, creation, rename, unlink, times, modes
    grep -F "$ev" "$t" | grep -E 'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|^[0-9]+ +(creat|truncate|ftruncate|rename|unlink|utimensat|mkdir|chmod|fchmodat)' \
      >"$t.bad"
    check "$(basename "$t" | sed 's/trace.//'): nothing on the evidence opened for writing or modified" [ ! -s "$t.bad" ]
    sed 's/^/# /' "$t.bad" | head -5
    check "$(basename "$t" | sed 's/trace.//'): the trace saw the evidence read" grep -qF "$ev/" "$t"
  done
else
  echo "# strace not available: skipped the open-flags check"
fi

echo "1..$n"
[ $fail -eq 0 ]
