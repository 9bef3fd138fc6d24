#!/bin/sh
# test-install.sh — `meson install` into a temporary DESTDIR gives a working
# app: the installed `dcr` runs, and the desktop file, AppStream metainfo,
# GSettings schema (which compiles), icons and the default backbone weights
# are where desktops and the engine look for them. TAP output.
#   test-install.sh MESON BUILD-ROOT APP-ID GUI(true|false)
meson="$1"; build="$2"; id="$3"; gui="$4"
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
check() { desc="$1"; shift; if "$@"; then ok "$desc"; else notok "$desc"; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$meson" install -C "$build" --destdir "$tmp/dest" --no-rebuild >"$tmp/log" 2>&1; rc=$?
check "meson install --destdir exits 0" [ $rc -eq 0 ] || tail -5 "$tmp/log" | sed 's/^/# /'
dcr=$(find "$tmp/dest" -path '*/bin/dcr' -type f | head -1)
check "dcr is installed" eval '[ -n "$dcr" ] && [ -x "$dcr" ]'
p=$(dirname "$(dirname "$dcr")")
"$dcr" --version >"$tmp/out" 2>&1
check "the installed dcr runs" grep -q '^dcr [0-9]' "$tmp/out"
[ "$gui" = true ] && check "dcr-forensics is installed" [ -x "$p/bin/dcr-forensics" ]
for f in "share/applications/$id.desktop" "share/metainfo/$id.metainfo.xml" \
         "share/glib-2.0/schemas/$id.gschema.xml" "share/icons/hicolor/scalable/apps/$id.svg" \
         "share/icons/hicolor/symbolic/apps/$id-symbolic.svg" \
         "share/dcr-forensics/models/mobilenet_v2_b10.safetensors" \
         "share/dcr-forensics/models/default/model.safetensors" \
         "share/dcr-forensics/models/default/MODEL_CARD.md" "share/dcr-forensics/models/default/HISTORY.md"; do
  check "installed: $f" [ -s "$p/$f" ]
done
# What a package's post-install step (or flatpak-builder) does; meson skips
# it under DESTDIR.
glib-compile-schemas --strict "$p/share/glib-2.0/schemas" 2>"$tmp/err"
check "the installed schema compiles" [ -s "$p/share/glib-2.0/schemas/gschemas.compiled" ] || sed 's/^/# /' "$tmp/err"
check "the compiled schema has the app's keys" sh -c \
  "gsettings --schemadir '$p/share/glib-2.0/schemas' list-keys '$id' | grep -q model-file"
if command -v desktop-file-validate >/dev/null 2>&1; then
  # its hints go to the TAP log as comments; only its exit status decides
  validate_desktop() { out=$(desktop-file-validate "$1" 2>&1); rc=$?; [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/# /'; return $rc; }
  check "the installed desktop file validates" validate_desktop "$p/share/applications/$id.desktop"
fi
if command -v appstreamcli >/dev/null 2>&1; then
  check "the installed metainfo validates" sh -c \
    "appstreamcli validate --no-net '$p/share/metainfo/$id.metainfo.xml' >'$tmp/as' 2>&1" || sed 's/^/# /' "$tmp/as"
fi

echo "1..$n"
[ $fail -eq 0 ]
