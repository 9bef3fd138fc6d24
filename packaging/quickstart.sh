#!/usr/bin/env bash
# quickstart.sh — one command from a fresh Debian 12 machine to a result.
#   packaging/quickstart.sh run    install packages, build, run the main job
#   packaging/quickstart.sh test   install packages, build, run every test headless
#   packaging/quickstart.sh test-asan   the same in an ASan + UBSan build (build-asan;
#                                       slower: not part of `test`, see HARDENING.md)
# Packages are installed with apt-get (as root, or through sudo) only when
# missing. Nothing is downloaded at build or run time.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-run}"
build="${DCR_BUILD_DIR:-build}"

packages=(
  build-essential meson ninja-build pkg-config
  libglib2.0-dev libjson-glib-dev libgtk-4-dev libadwaita-1-dev
  libvulkan-dev glslc glslang-tools spirv-tools mesa-vulkan-drivers vulkan-tools
  libpng-dev libjpeg-dev libsqlite3-dev libgexiv2-dev
  desktop-file-utils appstream fonts-dejavu-core
)
test_packages=(
  vulkan-validationlayers xvfb xauth dbus valgrind strace flatpak-builder poppler-utils
  python3 python3-numpy python3-pil python3-torch python3-torchvision
)

install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "quickstart: installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

configure_and_build() {
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dwerror=true
  fi
  ninja -C "$build"
}

case "$mode" in
  run)
    install_packages "${packages[@]}"
    configure_and_build
    "$build/app/dcr" smoke
    # The main job on the shipped default model: the app on a sample when
    # there is a display, otherwise a batch report of every bundled sample.
    if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$build/app/dcr-forensics" ]; then
      sample=$(ls data/samples/*fake*.png | head -n 1)
      echo "quickstart: opening $sample in DCR Forensics"
      GSETTINGS_SCHEMA_DIR="$build/data" exec "$build/app/dcr-forensics" "$sample"
    fi
    out="${DCR_REPORT_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/dcr-forensics/reports/quickstart-$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$(dirname "$out")"
    "$build/app/dcr" report --out "$out" --case quickstart --exhibit "bundled samples" data/samples/*.png
    echo "quickstart: no display; the report of data/samples is $out/report.pdf (also report.csv, report.json)"
    ;;
  test)
    install_packages "${packages[@]}" "${test_packages[@]}"
    configure_and_build
    status=0
    # GTK needs a display and a session bus; tests pin everything else
    # (settings, caches, renderer) themselves (tests/meson.build).
    xvfb-run -a -s "-screen 0 1280x1024x24" dbus-run-session -- \
      meson test -C "$build" --print-errorlogs --num-processes 2 || status=$?
    /usr/bin/python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {'OK': 0, 'FAIL': 0, 'SKIP': 0}
for line in open(sys.argv[1]):
    r = json.loads(line).get('result', 'FAIL')
    counts['OK' if r in ('OK', 'EXPECTEDFAIL') else 'SKIP' if r == 'SKIP' else 'FAIL'] += 1
print('tests: %d passed, %d failed, %d skipped' % (counts['OK'], counts['FAIL'], counts['SKIP']))
PY
    exit $status
    ;;
  test-asan)
    install_packages "${packages[@]}" "${test_packages[@]}"
    asan="${DCR_ASAN_BUILD_DIR:-build-asan}"
    if [ ! -f "$asan/build.ninja" ]; then
      # no -Dwerror: GCC 12 gives false stringop warnings on instrumented code
      meson setup "$asan" -Db_sanitize=address,undefined
    fi
    ninja -C "$asan"
    # tests/meson.build sets ASAN/LSAN/UBSAN_OPTIONS (driver leaks suppressed
    # through tests/lsan.supp); instrumented code runs slower, hence the multiplier.
    xvfb-run -a -s "-screen 0 1280x1024x24" dbus-run-session -- \
      meson test -C "$asan" --print-errorlogs --num-processes 2 --timeout-multiplier 3
    ;;
  *)
    echo "usage: $0 run|test|test-asan" >&2
    exit 2
    ;;
esac
