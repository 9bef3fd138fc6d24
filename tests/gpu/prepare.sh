#!/usr/bin/env bash
# tests/gpu/prepare.sh — packs what tests/gpu/bench.sh needs on a GPU machine
# that has no network and none of the build's libraries: the stripped `dcr`
# and the test binaries that check the GPU paths, every shared library they
# load apart from glibc and the Vulkan loader (taken from this Debian 12
# build machine; the GPU machine's glibc is at least as new), and the Debian
# 12 .debs of the Vulkan loader and of libglvnd that NVIDIA's Vulkan ICD
# (libGLX_nvidia) needs, unpacked there the way
# ../shared/tools/vkprobe/gl-first.sh does.
#
#   tests/gpu/prepare.sh [BUILD_DIR] [BUNDLE_DIR] [IMAGE…]   # defaults: build, build-gpu-bundle
#
# IMAGEs, if given, are copied into BUNDLE_DIR/scan for bench.sh's
# end-to-end `dcr scan` timing (mind the device tool's 64 MiB: 20 MB of
# images at most).
#
# BUNDLE_DIR (ignored by git, as every build* folder) then holds bin/, lib/,
# debs/ and MANIFEST; carry it to the GPU machine with the working tree (the
# device tool's `carry: ["build-gpu-bundle"]`; about 30 MB) and run
# `bash tests/gpu/bench.sh build-gpu-bundle` there. The .debs come from
# ../shared/tools/vkprobe/debs when that exists (checked with its SHA256SUMS),
# else from `apt-get download` (Debian 12 mirrors).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-build}
BUNDLE=${2:-build-gpu-bundle}
shift $(($# < 2 ? $# : 2))
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
case $BUNDLE in /*) ;; *) BUNDLE=$ROOT/$BUNDLE ;; esac
BINS=(app/dcr tests/test-op-gemm tests/test-retrieval tests/test-backbone-resnet tests/test-backbone-clip)
for b in "${BINS[@]}"; do
  [ -x "$BUILD/$b" ] || { echo "prepare: $BUILD/$b is missing: ninja -C $BUILD ${BINS[*]}" >&2; exit 1; }
done

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/bin" "$BUNDLE/lib" "$BUNDLE/debs/gl"
for b in "${BINS[@]}"; do
  cp "$BUILD/$b" "$BUNDLE/bin/"
  strip --strip-debug "$BUNDLE/bin/$(basename "$b")" 2>/dev/null || true
done

# Libraries: everything ldd resolves except glibc's own and the Vulkan loader.
for b in "$BUNDLE"/bin/*; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  while read -r lib; do
    case $(basename "$lib") in
      libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libvulkan.so.*) continue ;;
    esac
    cp -L "$lib" "$BUNDLE/lib/"
  done

if [ $# -gt 0 ]; then
  mkdir -p "$BUNDLE/scan"
  cp -- "$@" "$BUNDLE/scan/"
  kb=$(du -sk "$BUNDLE/scan" | cut -f1)
  [ "$kb" -le 20480 ] || { echo "prepare: $kb KiB of images: 20 MB at most" >&2; exit 1; }
fi

# The Vulkan loader and libglvnd .debs.
VKPROBE=$ROOT/../shared/tools/vkprobe
if [ -f "$VKPROBE/SHA256SUMS" ] && [ -d "$VKPROBE/debs/gl" ]; then
  (cd "$VKPROBE" && sha256sum --quiet -c <(grep -E 'debs/(libvulkan1_|gl/)' SHA256SUMS))
  cp "$VKPROBE"/debs/libvulkan1_*.deb "$BUNDLE/debs/"
  cp "$VKPROBE"/debs/gl/*.deb "$BUNDLE/debs/gl/"
else
  (cd "$BUNDLE/debs" && apt-get download libvulkan1)
  (cd "$BUNDLE/debs/gl" && apt-get download libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2)
fi

{
  echo "built from: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree), $(date -u +%FT%TZ)"
  echo "build dir: $BUILD"
  (cd "$BUNDLE" && find bin lib debs -type f | sort | xargs sha256sum)
  [ -d "$BUNDLE/scan" ] && echo "scan: $(ls "$BUNDLE/scan" | wc -l) images"
} >"$BUNDLE/MANIFEST"
du -sh "$BUNDLE"
echo "prepare: $BUNDLE ready; on the GPU machine: bash tests/gpu/bench.sh ${BUNDLE#"$ROOT"/}"
