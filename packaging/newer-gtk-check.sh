#!/usr/bin/env bash
# newer-gtk-check.sh — compiles the app (engine, CLI, GUI) with
# -Dwerror=true against newer GLib / GTK / libadwaita than Debian 12's, in a
# debootstrapped Debian 13 root (GLib 2.84, GTK 4.18, libadwaita 1.7: newer
# than the GNOME 47 runtime's GTK 4.16 / libadwaita 1.6, so a superset of
# its API and deprecations). Issue 10: the code builds against both.
#   pass 1, the tree as it is: app/meson.build's MAX_ALLOWED (GLib 2.74,
#     GTK 4.8, libadwaita 1.2) turns any newer call outside a
#     GTK_CHECK_VERSION / ADW_CHECK_VERSION block into an error;
#   pass 2, MIN_REQUIRED and MAX_ALLOWED raised to the root's versions:
#     anything deprecated up to them is an error (no deprecated calls in the
#     newer versions either; the small guarded blocks, which ignore
#     deprecations on purpose, are the exception).
# Needs root (debootstrap, chroot). The root is cached; rerun = the builds.
#   packaging/newer-gtk-check.sh
# Environment: DCR_FLATPAK_WORK (default /var/tmp/dcr-flatpak), DCR_DEBIAN_MIRROR.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="${DCR_FLATPAK_WORK:-/var/tmp/dcr-flatpak}"
suite=trixie
root="$work/$suite.root"
mkdir -p "$work/logs"
start=$(date +%s)
log() { printf '[%s +%4ss] %s\n' "$(date -u +%H:%M:%S)" "$(( $(date +%s) - start ))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)"
mirror="${DCR_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
           grep -o -E 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
packages=(
  build-essential meson ninja-build pkg-config python3
  libglib2.0-dev libgtk-4-dev libadwaita-1-dev libvulkan-dev libpng-dev libjpeg-dev libsqlite3-dev
  zlib1g-dev libjson-glib-dev libgexiv2-dev libcairo2-dev libpango1.0-dev
  glslc glslang-tools spirv-tools
)
want=$(printf '%s\n' "${packages[@]}" | sort | tr '\n' ' ')
if [ ! -f "$root/.dcr-done" ] || [ "$(cat "$root/.dcr-done")" != "$want" ]; then
  rm -rf "$root"; mkdir -p "$work/debs-$suite/partial"
  log "debootstrap $suite from $mirror (log: $work/logs/debootstrap-$suite.log)"
  debootstrap --variant=minbase --cache-dir="$work/debs-$suite" "$suite" "$root" "$mirror" \
    >"$work/logs/debootstrap-$suite.log" 2>&1 ||
    { tail -n 20 "$work/logs/debootstrap-$suite.log" >&2; die "debootstrap $suite"; }
  # apt in the root, not debootstrap --include: only apt picks a provider
  # for the virtual packages (gir1.2-gio-2.0-dev, dbus-session-bus, …).
  log "apt-get install in the $suite root (log: $work/logs/apt-$suite.log)"
  mount --bind "$work/debs-$suite" "$root/var/cache/apt/archives"
  mount -t proc proc "$root/proc"
  rc=0
  chroot "$root" sh -c "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages[*]}" \
    >"$work/logs/apt-$suite.log" 2>&1 || rc=$?
  umount "$root/proc" "$root/var/cache/apt/archives"
  [ $rc -eq 0 ] || { tail -n 20 "$work/logs/apt-$suite.log" >&2; die "apt-get install in the $suite root"; }
  printf '%s' "$want" >"$root/.dcr-done"
fi
ver() { chroot "$root" pkg-config --modversion "$1"; }
log "in $suite: GLib $(ver glib-2.0), GTK $(ver gtk4), libadwaita $(ver libadwaita-1)"

# The working tree as git sees it (no build directories).
rm -rf "$root/src"; mkdir -p "$root/src"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
   xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
   tar --null -T - -cf - | tar -xf - -C "$root/src") || die "cannot copy the working tree"

build() { # NAME: builds /src in the root into /build-NAME
  log "pass $1: meson setup + ninja app/dcr app/dcr-forensics (log: $work/logs/newer-$1.log)"
  if ! chroot "$root" sh -c "cd /src && rm -rf /build-$1 &&
        meson setup /build-$1 -Dwerror=true -Dvalidation=false &&
        nice -n 10 ninja -C /build-$1 app/dcr app/dcr-forensics" >"$work/logs/newer-$1.log" 2>&1; then
    grep -E 'error|warning' "$work/logs/newer-$1.log" | head -n 40 >&2
    die "pass $1"
  fi
}
build max-allowed

# Pass 2: the root's own versions as MIN_REQUIRED and MAX_ALLOWED (GTK's
# version macros exist for even minors only).
minor() { ver "$1" | cut -d. -f2; }
gtk_minor=$(( $(minor gtk4) / 2 * 2 ))
sed -i -e "s/GLIB_VERSION_2_74/GLIB_VERSION_2_$(( $(minor glib-2.0) / 2 * 2 ))/" \
       -e "s/GDK_VERSION_4_8/GDK_VERSION_4_$gtk_minor/" \
       -e "s/ADW_VERSION_1_2/ADW_VERSION_1_$(minor libadwaita-1)/" "$root/src/app/meson.build"
grep -q "GDK_VERSION_4_$gtk_minor" "$root/src/app/meson.build" || die "cannot raise the version macros"
build deprecations
log "PASSED: no newer API outside version guards, nothing deprecated in GLib $(ver glib-2.0), GTK $(ver gtk4), libadwaita $(ver libadwaita-1)"
