#!/usr/bin/env bash
# flatpak-offline-proof.sh — builds, bundles, installs and runs the Flatpak
# with no GNOME runtime and no network for the build (issue 10):
#   1. debootstraps two Debian 12 roots (packages from the configured Debian
#      mirror, cached under the work folder): a runtime (GTK 4, libadwaita,
#      the Vulkan loader + Mesa's drivers, libpng, libjpeg, SQLite,
#      json-glib, gexiv2, fonts) and an SDK (that + compilers, meson, ninja,
#      the -dev packages, glslc, spirv-val, appstream-compose);
#   2. turns each into a Flatpak runtime (its /usr as files/, its /etc as
#      files/etc, a metadata file), exports both into a local repository
#      (flatpak build-export, build-update-repo) and installs them into a
#      temporary user installation (FLATPAK_USER_DIR);
#   3. derives a manifest from packaging/io.github.dcrforensics.DcrForensics.json
#      for that runtime — the same app module and finish-args, without the
#      shaderc module (Debian's SDK has glslc) — and runs flatpak-builder
#      on a copy of the working tree, with no network in the build sandbox;
#   4. makes a bundle (flatpak build-bundle), installs it, runs the app
#      under Xvfb on a sample image, screenshots the window and checks the
#      screenshot shows an analysis.
# Needs root (debootstrap), flatpak, flatpak-builder, bwrap, debootstrap,
# Xvfb and python3 with PIL. Every step logs to the work folder and is
# skipped when its result is already there (rerun = only what changed:
# the app build and what follows always rerun). Exits non-zero on failure.
#   packaging/flatpak-offline-proof.sh [clean]
# Environment: DCR_FLATPAK_WORK (default /var/tmp/dcr-flatpak),
#   DCR_DEBIAN_MIRROR (default: the first deb.debian.org-style URI in apt's sources),
#   DCR_FLATPAK_WAIT (seconds to wait for the analysis, default 240).
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="${DCR_FLATPAK_WORK:-/var/tmp/dcr-flatpak}"
app_id=io.github.dcrforensics.DcrForensics
rt_id=io.github.dcrforensics.DebianPlatform
sdk_id=io.github.dcrforensics.DebianSdk
branch=12
suite=bookworm
wait_s="${DCR_FLATPAK_WAIT:-240}"

if [ "${1:-}" = clean ]; then
  rm -rf "$work"
  exit 0
fi

mkdir -p "$work/logs"
start=$(date +%s)
log() { printf '[%s +%4ss] %s\n' "$(date -u +%H:%M:%S)" "$(( $(date +%s) - start ))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
# run LOGNAME CMD…: runs CMD with its output in logs/LOGNAME.log; on failure
# shows the log's tail and stops.
run() {
  local name="$1"; shift
  if ! "$@" >"$work/logs/$name.log" 2>&1; then
    tail -n 30 "$work/logs/$name.log" | sed 's/^/    /' >&2
    die "$name (full log: $work/logs/$name.log)"
  fi
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)"
# The host tools (Debian packages): flatpak-builder runs eu-strip (elfutils)
# on the host to split debug info.
missing=()
for t in debootstrap:debootstrap flatpak:flatpak flatpak-builder:flatpak-builder bwrap:bubblewrap \
         eu-strip:elfutils Xvfb:xvfb xvfb-run:xvfb dbus-run-session:dbus git:git ostree:ostree; do
  command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  run apt-install apt-get install -y --no-install-recommends "${missing[@]}"
fi
py=/usr/bin/python3
"$py" -c 'import PIL' 2>/dev/null || die "$py has no PIL (python3-pil)"

mirror="${DCR_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
           grep -o -E 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi

runtime_packages=(
  libgtk-4-1 libadwaita-1-0 libglib2.0-0 libglib2.0-bin gsettings-desktop-schemas
  dbus-x11 # dconf-service needs a dbus-session-bus; debootstrap does not pick one of the alternatives
  libvulkan1 mesa-vulkan-drivers libgl1-mesa-dri libegl1 libegl-mesa0 libgl1
  libpng16-16 libjpeg62-turbo libsqlite3-0 zlib1g libjson-glib-1.0-0 libgexiv2-2
  libcairo2 libpango-1.0-0 libpangocairo-1.0-0
  fonts-cantarell fonts-dejavu-core adwaita-icon-theme hicolor-icon-theme librsvg2-common shared-mime-info
)
sdk_packages=(
  "${runtime_packages[@]}"
  build-essential meson ninja-build pkg-config python3
  libglib2.0-dev libgtk-4-dev libadwaita-1-dev libvulkan-dev libpng-dev libjpeg-dev libsqlite3-dev
  zlib1g-dev libjson-glib-dev libgexiv2-dev libcairo2-dev libpango1.0-dev
  glslc glslang-tools spirv-tools appstream-util desktop-file-utils
)

# --- 1. Debian roots ---------------------------------------------------------
# debootstrap NAME PACKAGES…: a minbase Debian 12 root in $work/NAME.root
debian_root() {
  local name="$1"; shift
  local root="$work/$name.root"
  local want; want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
  if [ -f "$root/.dcr-done" ] && [ "$(cat "$root/.dcr-done")" = "$want" ]; then
    log "$name root: already there ($root)"
    return
  fi
  rm -rf "$root"
  mkdir -p "$work/debs"
  log "$name root: debootstrap $suite from $mirror (packages cached in $work/debs)"
  run "debootstrap-$name" debootstrap --variant=minbase --cache-dir="$work/debs" \
    --include="$(IFS=,; echo "$*")" "$suite" "$root" "$mirror"
  # No apt lists, logs, caches or docs in a runtime.
  rm -rf "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/* \
         "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info
  printf '%s' "$want" >"$root/.dcr-done"
}
debian_root runtime "${runtime_packages[@]}"
debian_root sdk "${sdk_packages[@]}"

# --- 2. Flatpak runtime and SDK in a local repository ------------------------
export FLATPAK_USER_DIR="$work/flatpak-user"
repo="$work/repo"
# flatpak_runtime NAME ID: $work/NAME.root → $work/NAME.flatpak (usr/ = the
# root's /usr, usr/etc = its /etc; hard links, the same file system), then
# exported into $repo as runtime/ID/x86_64/$branch.
flatpak_runtime() {
  local name="$1" id="$2"
  local root="$work/$name.root" dir="$work/$name.flatpak"
  if [ -f "$dir/.dcr-done" ] && [ "$root/.dcr-done" -ot "$dir/.dcr-done" ]; then
    log "$name: runtime $id//$branch already exported"
    return
  fi
  log "$name: making runtime $id//$branch and exporting it into $repo"
  rm -rf "$dir"; mkdir -p "$dir"
  # build-export --runtime takes usr/ (exported as files/)
  cp -al "$root/usr" "$dir/usr"
  cp -al "$root/etc" "$dir/usr/etc"
  # flatpak regenerates ld.so.cache with the runtime's bin/ldconfig, which
  # Debian keeps in sbin.
  ln -sf ../sbin/ldconfig "$dir/usr/bin/ldconfig"
  rm -f "$dir/usr/etc/ld.so.cache" "$dir/usr/etc/machine-id"
  cat >"$dir/metadata" <<META
[Runtime]
name=$id
runtime=$rt_id/x86_64/$branch
sdk=$sdk_id/x86_64/$branch
META
  run "export-$name" flatpak build-export --runtime --files=usr --no-update-summary \
    --subject="Debian 12 $name root for the DCR Forensics offline proof" "$repo" "$dir" "$branch"
  touch "$dir/.dcr-done"
}
mkdir -p "$repo"
[ -f "$repo/config" ] || ostree init --mode=archive-z2 --repo="$repo"
flatpak_runtime runtime "$rt_id"
flatpak_runtime sdk "$sdk_id"
run update-repo flatpak build-update-repo "$repo"

log "installing $rt_id and $sdk_id into FLATPAK_USER_DIR=$FLATPAK_USER_DIR"
run remote-add flatpak --user remote-add --if-not-exists --no-gpg-verify dcr-local "file://$repo"
run install-runtimes flatpak --user install -y --noninteractive --or-update dcr-local \
  "runtime/$rt_id/x86_64/$branch" "runtime/$sdk_id/x86_64/$branch"

# --- 3. The app, built offline -----------------------------------------------
# The working tree as git sees it (tracked and untracked, not ignored): no
# build directories, whoever made them.
log "copying the working tree into $work/src"
rm -rf "$work/src"; mkdir -p "$work/src"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
   xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
   tar --null -T - -cf - | tar -xf - -C "$work/src") || die "cannot copy the working tree"

manifest="$work/$app_id.json"
"$py" - "$src/packaging/$app_id.json" "$manifest" "$rt_id" "$sdk_id" "$branch" "$work/src" <<'PY' ||
import json, sys
src, out, rt, sdk, branch, tree = sys.argv[1:]
m = json.load(open(src))
m['//'] = ('Derived by packaging/flatpak-offline-proof.sh from ' + src.rsplit('/', 1)[-1] +
           ' for a runtime exported from Debian 12: the same app module and finish-args; no shaderc module '
           '(the Debian SDK has glslc and spirv-val); the app sources are a copy of the working tree.')
m['runtime'], m['sdk'], m['runtime-version'] = rt, sdk, branch
app = m['modules'][-1]
assert app['name'] == 'dcr-forensics', app['name']
m['modules'] = [app]
app['sources'] = [{'type': 'dir', 'path': tree}]
json.dump(m, open(out, 'w'), indent=2)
PY
  die "cannot derive the manifest"

log "flatpak-builder (no network, no downloads): log in $work/logs/flatpak-builder.log"
rm -rf "$work/app-repo"
(cd "$work" && run flatpak-builder nice -n 10 flatpak-builder --user --disable-download --force-clean \
   --state-dir="$work/fb-state" --repo="$work/app-repo" "$work/app-build" "$manifest")
log "flatpak build-bundle → $work/$app_id.flatpak"
run build-bundle flatpak build-bundle "$work/app-repo" "$work/$app_id.flatpak" "$app_id"
log "installing the bundle"
run install-bundle flatpak --user install -y --noninteractive --reinstall --bundle "$work/$app_id.flatpak"

# --- 4. Run it ---------------------------------------------------------------
sample=$(ls "$src"/data/samples/*fake*.png | head -n1)
[ -f "$sample" ] || die "no data/samples/*fake*.png"
# The sandbox sees no host files (an analyst's come through the portal): the
# app is handed the copy of the sample that it installs itself.
sample="/app/share/dcr-forensics/samples/$(basename "$sample")"
log "dcr scan inside the sandbox: $(basename "$sample")"
run scan sh -c 'flatpak --user run --command=dcr "$1" scan --json "$2" >"$3"' sh "$app_id" "$sample" "$work/scan.json"
verdict=$(grep -o -m1 -E '"verdict" *: *"[a-z]+"' "$work/scan.json" | sed 's/.*"\([a-z]*\)"$/\1/') || true
[ -n "$verdict" ] || die "no verdict in $work/scan.json"
log "dcr scan verdict: $verdict"

shots="$work/screen"; rm -rf "$shots"; mkdir -p "$shots"
png="$work/screenshot.png"; rm -f "$png"
log "running the app under Xvfb on $(basename "$sample") (waiting up to ${wait_s}s for the analysis)"
cat >"$work/run-app.sh" <<SH
#!/bin/sh
# Xvfb's -fbdir keeps the screen as an XWD file: the screenshot needs no X client.
flatpak --user run "$app_id" "$sample" >"$work/logs/app.log" 2>&1 &
pid=\$!
"$py" "$src/packaging/flatpak-screenshot.py" "$shots/Xvfb_screen0" "$png" "$wait_s"
rc=\$?
kill \$pid 2>/dev/null; wait \$pid 2>/dev/null
exit \$rc
SH
chmod +x "$work/run-app.sh"
run xvfb xvfb-run -a -s "-screen 0 1280x1024x24 -fbdir $shots" dbus-run-session -- "$work/run-app.sh"
cat "$work/logs/xvfb.log" >&2
log "PASSED in $(( $(date +%s) - start ))s: screenshot $png"
