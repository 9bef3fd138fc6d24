#!/bin/sh
# test-cli-bank.sh — `dcr bank` as a user meets it, on the synthetic images
# of tests/make-dcr-images.py: create + add a folder, list in JSON, skip
# duplicates on re-add, disable/enable/pin/note, clear errors for a missing
# id or bank, export and import into a second bank, the audit log, a
# bank of another backbone refused, and dedup / prune (listing, --json,
# --apply with pinned prototypes kept, undo by enable). TAP output.
#   test-cli-bank.sh DCR PYTHON MAKE-IMAGES
dcr="$1"; py="$2"; make_images="$3"
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
check() { desc="$1"; shift; if "$@"; then ok "$desc"; else notok "$desc"; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
d="$tmp/data"; b="$tmp/a.dcrbank"
# a private feature cache, so the counts below do not depend on earlier runs
. "$(dirname "$0")/dcr-test-cache.sh"
private_cache "$tmp/cache"

"$py" "$make_images" "$d" 3
check "synthetic images written" [ -f "$d/real/scene00-0.png" ]
count() { "$dcr" bank list "$1" --json | "$py" -c 'import json,sys; r=json.load(sys.stdin); print(len(r), sum(p["enabled"] for p in r), sum(p["pinned"] for p in r))'; }

"$dcr" bank add "$b" "$d/real" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "add to a missing bank without --create exits 1" [ $rc -eq 1 ] && grep -q "a.dcrbank: no such bank.*--create" "$tmp/err"
"$dcr" bank add --create "$b" "$d/real" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "add --create exits 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err"
check "add reports what it added" grep -q ': 6 added, 0 skipped' "$tmp/out"
check "add shows progress" grep -q 'features of .*6/6' "$tmp/err"
check "list --json has every image" [ "$(count "$b")" = "6 6 0" ]
# each prototype's thumbnail: a PNG no larger than 128 px a side
"$py" - "$b" >"$tmp/thumbs" 2>&1 <<'EOF2'
import io, sqlite3, struct, sys
rows = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True).execute('SELECT thumbnail FROM prototypes').fetchall()
sizes = [struct.unpack('>II', t[16:24]) for (t,) in rows if t and t[:8] == b'\x89PNG\r\n\x1a\n']
print(len(rows), len(sizes), max(max(s) for s in sizes) if sizes else 0)
EOF2
check "every added prototype has a PNG thumbnail of at most 128 px" sh -c '[ "$(cut -d" " -f1,2 "$1")" = "6 6" ] && [ "$(cut -d" " -f3 "$1")" -le 128 ]' sh "$tmp/thumbs"
"$dcr" bank list "$b" --json >"$tmp/list.json"
"$py" - "$tmp/list.json" "$d/real" >"$tmp/check" 2>&1 <<'EOF'
import hashlib, json, sys
for p in json.load(open(sys.argv[1])):
    for k in ('id', 'enabled', 'pinned', 'retrievals', 'added', 'source', 'sha256', 'note'):
        assert k in p, k
    assert p['source'].startswith(sys.argv[2] + '/'), p
    assert p['sha256'] == hashlib.sha256(open(p['source'], 'rb').read()).hexdigest(), p
EOF
rc=$?; sed 's/^/# /' "$tmp/check"
check "list --json: fields and the files' SHA-256" [ $rc -eq 0 ]

"$dcr" bank add -q "$b" "$d/real" "$d/real" >"$tmp/out" 2>&1
check "re-adding skips duplicates" grep -q ': 0 added, 12 skipped' "$tmp/out" && [ "$(count "$b")" = "6 6 0" ]

"$dcr" bank disable "$b" 2 3 >/dev/null
check "disable changes the enabled count" [ "$(count "$b")" = "6 4 0" ]
"$dcr" bank enable "$b" 3 >/dev/null && "$dcr" bank pin "$b" 1 >/dev/null
check "enable and pin" [ "$(count "$b")" = "6 5 1" ]
"$dcr" bank info "$b" --check >"$tmp/out" 2>&1; rc=$?
check "info --check" [ $rc -eq 0 ] && grep -q '^prototypes: 6 (5 enabled, 1 pinned)' "$tmp/out" && \
  grep -q '^integrity: ok' "$tmp/out" && grep -q '^backbone: mobilenet_v2' "$tmp/out"
"$dcr" bank note "$b" 4 "from camera A" && "$dcr" bank list "$b" | grep -q 'from camera A'
check "note" [ $? -eq 0 ]

"$dcr" bank remove "$b" 6 99 >/dev/null 2>"$tmp/err"; rc=$?
check "remove of a missing id exits 1 naming the bank and id" [ $rc -eq 1 ] && \
  grep -q 'a.dcrbank: there is no prototype 99' "$tmp/err"
check "a failed remove changes nothing" [ "$(count "$b")" = "6 5 1" ]
"$dcr" bank remove "$b" 6 >/dev/null
check "remove" [ "$(count "$b")" = "5 4 1" ]
"$dcr" bank remove "$b" six >/dev/null 2>&1
check "a bad id is a usage error" [ $? -eq 2 ]
"$dcr" bank remove "$b" >/dev/null 2>&1
check "remove without ids is a usage error" [ $? -eq 2 ]
"$dcr" bank list "$tmp/none.dcrbank" >/dev/null 2>"$tmp/err"
check "a missing bank exits 1 naming it" [ $? -eq 1 ] && grep -q 'none.dcrbank: no such bank' "$tmp/err"

"$dcr" bank export "$b" "$tmp/copy.dcrbank" >/dev/null
check "export" [ "$(count "$tmp/copy.dcrbank")" = "5 4 1" ]
"$dcr" bank add -q --create "$tmp/b2.dcrbank" "$d/test-real" >/dev/null
"$dcr" bank import "$tmp/b2.dcrbank" "$tmp/copy.dcrbank" >"$tmp/out" 2>&1; rc=$?
check "import into a second bank" [ $rc -eq 0 ] && grep -q '5 prototypes imported' "$tmp/out" && \
  [ "$(count "$tmp/b2.dcrbank" | cut -d' ' -f1)" = "$((5 + $(ls "$d/test-real" | wc -l)))" ]
"$dcr" bank import "$tmp/b2.dcrbank" "$tmp/copy.dcrbank" >"$tmp/out" 2>&1
check "importing again skips duplicates" grep -q ' 0 prototypes imported' "$tmp/out"

"$dcr" bank audit "$b" --json >"$tmp/audit.json"
"$py" - "$tmp/audit.json" >"$tmp/check" 2>&1 <<'EOF'
import json, sys
a = [e['action'] for e in json.load(open(sys.argv[1]))]
print(a)
for x in ('add', 'disable', 'enable', 'remove'):
    assert x in a, x
assert a[0] == 'remove' and a[-1] == 'add'
EOF
rc=$?; sed 's/^/# /' "$tmp/check"
check "audit --json shows the actions, newest first" [ $rc -eq 0 ]
"$dcr" bank audit "$b" --limit 1 >"$tmp/out"
check "audit text, --limit" [ "$(wc -l <"$tmp/out")" -eq 1 ] && grep -q 'remove *6' "$tmp/out"

# a bank of another backbone: refused by add and by import
cp "$b" "$tmp/other.dcrbank"
"$py" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE meta SET value = ? WHERE key = ?", ("resnet50@000000000000", "backbone_id")); c.commit()' \
  "$tmp/other.dcrbank"
"$dcr" bank add "$tmp/other.dcrbank" "$d/fake" >/dev/null 2>"$tmp/err"; rc=$?
check "add to a bank of another backbone exits 1" [ $rc -eq 1 ] && grep -q 'other.dcrbank.*resnet50@000000000000' "$tmp/err"
"$dcr" bank import "$b" "$tmp/other.dcrbank" >/dev/null 2>"$tmp/err"; rc=$?
check "import of a bank of another backbone exits 1" [ $rc -eq 1 ] && grep -q 'resnet50@000000000000' "$tmp/err"
check "the refused bank is unchanged" [ "$(count "$tmp/other.dcrbank")" = "5 4 1" ]

# near-duplicates: three photos of different scenes and a byte-different
# copy of one (same pixels: a text chunk added), so the copy is the pair
mkdir "$tmp/dup"
cp "$d/real/scene00-0.png" "$d/real/scene01-0.png" "$d/real/scene02-1.png" "$tmp/dup/"
"$py" - "$d/real/scene00-0.png" "$tmp/dup/zcopy.png" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
def chunk(t, x):
    return struct.pack('>I', len(x)) + t + x + struct.pack('>I', zlib.crc32(t + x) & 0xffffffff)
i = data.rindex(b'IEND') - 4
open(sys.argv[2], 'wb').write(data[:i] + chunk(b'tEXt', b'Comment\x00copy') + data[i:])
EOF
c="$tmp/c.dcrbank"
"$dcr" bank add -q --create "$c" "$tmp/dup" >/dev/null
"$dcr" bank dedup "$c" --json >"$tmp/dedup.json" 2>"$tmp/err"; rc=$?
"$py" - "$tmp/dedup.json" >"$tmp/check" 2>&1 <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(r)
# ids follow the sorted file names: scene00-0 is 1, zcopy 4
assert [(p['a'], p['b']) for p in r['pairs']] == [(1, 4)], r['pairs']
assert r['pairs'][0]['similarity'] > 0.999
assert r['groups'] == [[1, 4]] and r['redundant'] == [4] and r['applied'] is None
EOF
rcp=$?; sed 's/^/# /' "$tmp/check"
check "dedup --json finds the copy, changes nothing" eval '[ $rc -eq 0 ] && [ $rcp -eq 0 ] && [ "$(count "$c")" = "4 4 0" ]'
"$dcr" bank dedup "$c" >"$tmp/out" 2>&1
check "dedup lists the pair with its sources" grep -q '^ *1 *4 *1.0000 .*scene00-0.png .*zcopy.png' "$tmp/out" && \
  grep -q '1 near-duplicate pair (cosine ≥ 0.98) in 1 group; 1 redundant: 4' "$tmp/out"
"$dcr" bank pin "$c" 4 >/dev/null
"$dcr" bank dedup "$c" --apply -q >"$tmp/out" 2>&1
check "dedup --apply keeps the pinned copy, disables the other" [ "$(count "$c")" = "4 3 1" ] && \
  grep -q 'disabled 1 prototype (undo: dcr bank enable .*c.dcrbank 1)' "$tmp/out" && \
  [ "$("$dcr" bank list "$c" --json | "$py" -c 'import json,sys; print([p["id"] for p in json.load(sys.stdin) if not p["enabled"]])')" = "[1]" ]
"$dcr" bank audit "$c" --limit 1 >"$tmp/out"
check "the dedup is in the audit log" grep -q 'disable *1$' "$tmp/out"
"$dcr" bank enable "$c" 1 >/dev/null
check "enable undoes it" [ "$(count "$c")" = "4 4 1" ]
"$dcr" bank dedup "$c" --threshold 1.5 >/dev/null 2>"$tmp/err"
check "a threshold above 1 is a usage error" [ $? -eq 2 ] && grep -q 'threshold' "$tmp/err"

"$dcr" bank prune "$c" --keep 2 --json >"$tmp/prune.json" 2>"$tmp/err"; rc=$?
"$py" - "$tmp/prune.json" >"$tmp/check" 2>&1 <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(r)
assert r['enabled'] == 4 and r['pinned'] == 1 and len(r['kept']) == 2 and len(r['dropped']) == 2
# the pinned copy is picked first; its twin (distance 0) is never the farthest
assert r['kept'][0] == 4 and 1 in r['dropped'] and r['radius'] > 0
assert sorted(r['kept'] + r['dropped']) == [1, 2, 3, 4]
EOF
rcp=$?; sed 's/^/# /' "$tmp/check"
check "prune --keep 2 --json: pinned first, the copy goes, nothing changed" \
  eval '[ $rc -eq 0 ] && [ $rcp -eq 0 ] && [ "$(count "$c")" = "4 4 1" ]'
"$dcr" bank prune "$c" --keep 2 --apply --remove -q >"$tmp/out" 2>&1
check "prune --apply --remove leaves two" [ "$(count "$c")" = "2 2 1" ] && grep -q 'removed 2 prototypes' "$tmp/out"
"$dcr" bank prune "$c" >/dev/null 2>"$tmp/err"
check "prune without --keep is a usage error" [ $? -eq 2 ] && grep -q -- '--keep' "$tmp/err"
"$dcr" bank dedup "$tmp/none.dcrbank" >/dev/null 2>"$tmp/err"
check "dedup of a missing bank exits 1 naming it" [ $? -eq 1 ] && grep -q 'none.dcrbank: no such bank' "$tmp/err"

"$dcr" bank frobnicate "$b" >/dev/null 2>&1
check "an unknown bank command is a usage error" [ $? -eq 2 ]
"$dcr" bank list >/dev/null 2>&1
check "list without a bank is a usage error" [ $? -eq 2 ]
"$dcr" bank list "$b" --create >/dev/null 2>&1
check "an option of another command is a usage error" [ $? -eq 2 ]

echo "1..$n"
[ $fail -eq 0 ]
