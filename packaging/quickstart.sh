#!/usr/bin/env bash
# quickstart.sh — one command from a fresh Debian 12 machine to a result.
#   packaging/quickstart.sh run    install packages, build, run the main job
#   packaging/quickstart.sh test   install packages, build, run every test headless,
#                                  then the same suite in an ASan + UBSan build
#                                  (build-asan) and 30 s of each libFuzzer target
#                                  (build-fuzz, clang); what CI runs (.ci/run)
#   packaging/quickstart.sh test-asan   only the ASan + UBSan part
#   packaging/quickstart.sh test-fuzz   only the fuzzing part
# Build folders: DCR_BUILD_DIR (build), DCR_ASAN_BUILD_DIR (build-asan),
# DCR_FUZZ_BUILD_DIR (build-fuzz).
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
  clang libclang-rt-14-dev llvm
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

# tests: N passed, N failed, N skipped — from a build folder's test log
# (testlog-SETUP.json for `meson test --setup SETUP`)
summarise() {
  /usr/bin/python3 - "$1/meson-logs/testlog${3:+-$3}.json" "$2" <<'PY'
import json, os, sys
if not os.path.exists(sys.argv[1]):
    sys.exit(print('%s: not run (no %s)' % (sys.argv[2], sys.argv[1])))
counts = {'OK': 0, 'FAIL': 0, 'SKIP': 0}
for line in open(sys.argv[1]):
    r = json.loads(line).get('result', 'FAIL')
    counts['OK' if r in ('OK', 'EXPECTEDFAIL') else 'SKIP' if r == 'SKIP' else 'FAIL'] += 1
print('%s: %d passed, %d failed, %d skipped' % (sys.argv[2], counts['OK'], counts['FAIL'], counts['SKIP']))
PY
}

# The whole default suite in an ASan + UBSan (+ LeakSanitizer) build.
# tests/meson.build sets ASAN/LSAN/UBSAN_OPTIONS (driver-internal leaks
# suppressed through tests/lsan.supp); instrumented code runs slower, hence
# the multiplier.
test_asan() {
  local asan="${DCR_ASAN_BUILD_DIR:-build-asan}" rc=0
  # Without the Khronos validation layer: the plain suite runs every test
  # under it already, it checks the same Vulkan calls in both builds, and
  # under ASan it made the suite about half again slower.
  if [ ! -f "$asan/build.ninja" ]; then
    # no -Dwerror: GCC 12 gives false stringop warnings on instrumented code
    meson setup "$asan" -Db_sanitize=address,undefined -Dvalidation=false || return 1
  else
    meson configure "$asan" -Dvalidation=false || return 1
  fi
  ninja -C "$asan" || return 1
  # Mesa's shader cache of the plain suite, when it ran first: the same
  # shaders on the same driver, so its compiled code is reused instead of
  # compiled again by an LLVM whose every allocation goes through ASan
  # (a cold cache made single tests several times slower).
  local shaders=()
  [ -d "$build/tests/cache/mesa_shader_cache" ] && shaders=("MESA_SHADER_CACHE_DIR=$(cd "$build/tests/cache" && pwd)")
  env "${shaders[@]}" xvfb-run -a -s "-screen 0 1280x1024x24" dbus-run-session -- \
    meson test -C "$asan" --print-errorlogs --num-processes 2 --timeout-multiplier 3 || rc=$?
  summarise "$asan" "tests (ASan + UBSan)"
  return $rc
}

# Every libFuzzer target over its corpus once (every fixed crasher), then
# 30 s of fresh mutations each; a crash, sanitizer report,
# leak, timeout or excess memory fails it (the input is kept in
# $fuzz/tests/fuzz/scratch-TARGET/crash-*).
test_fuzz() {
  local fuzz="${DCR_FUZZ_BUILD_DIR:-build-fuzz}" rc=0 targets=()
  if [ ! -f "$fuzz/build.ninja" ]; then
    CC=clang meson setup "$fuzz" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dgui=false ||
      return 1
  fi
  for t in png jpeg exif safetensors bank model-json; do targets+=("tests/fuzz/fuzz-$t"); done
  ninja -C "$fuzz" "${targets[@]}" || return 1
  meson test -C "$fuzz" --no-rebuild --print-errorlogs --setup full --suite fuzz-corpus --suite fuzz || rc=$?
  summarise "$fuzz" "fuzzing" full
  return $rc
}

case "$mode" in
  run)
    install_packages "${packages[@]}"
    configure_and_build
    "$build/app/dcr" smoke
    # The main job on the shipped default model: the app on a sample when
    # there is a display, otherwise a batch report of every bundled sample.
    if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$build/app/dcr-forensics" ]; then
      # the partly regenerated sample: the verdict and the tile map of where
      sample=$(ls data/samples/fake-partial-*.png data/samples/*fake*.png 2>/dev/null | head -n 1)
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
    # then the sanitizers: the same suite under ASan + UBSan, and fuzzing
    test_asan || status=1
    test_fuzz || status=1
    summarise "$build" "tests"
    summarise "${DCR_ASAN_BUILD_DIR:-build-asan}" "tests (ASan + UBSan)"
    summarise "${DCR_FUZZ_BUILD_DIR:-build-fuzz}" "fuzzing" full
    exit $status
    ;;
  test-asan)
    install_packages "${packages[@]}" "${test_packages[@]}"
    test_asan
    ;;
  test-fuzz)
    install_packages "${packages[@]}" "${test_packages[@]}"
    test_fuzz
    ;;
  *)
    echo "usage: $0 run|test|test-asan|test-fuzz" >&2
    exit 2
    ;;
esac
