#!/usr/bin/env bash
# tests/gpu/bench.sh — issue 12's one GPU run: DCR through Vulkan against
# PyTorch on the same NVIDIA GPU, correctness included, in under 9 minutes.
#
# On the build machine:   ninja -C build && tests/gpu/prepare.sh build build-gpu-bundle
# On the GPU machine (from the repository root, as root, no network needed;
# python3 with torch, torchvision, numpy and transformers):
#                         bash tests/gpu/bench.sh build-gpu-bundle
# Check it anywhere first (small shapes, the tiny golden weights, the CPU
# for PyTorch, nothing unpacked into /):
#                         DCR_GPU_BENCH_SMOKE=1 PYTHON=/usr/bin/python3 bash tests/gpu/bench.sh build-gpu-bundle
#
# Steps (each under its own timeout; a failing step is reported and the run
# goes on):
#  1. Vulkan: the bundle's libraries on LD_LIBRARY_PATH of DCR's binaries
#     (not of Python's); the Debian Vulkan loader and libglvnd (NVIDIA's ICD,
#     libGLX_nvidia, needs it) unpacked into / with dpkg -x as
#     ../shared/tools/vkprobe/gl-first.sh does, where the system lacks them; an ICD manifest for libGLX_nvidia written if
#     none is found. `dcr devices`.
#  2. The GPU kernels against their CPU references: test-op-gemm's
#     cooperative-matrix suites (skipped, saying why, without
#     VK_NV_cooperative_matrix) and test-retrieval's GEMV.
#  3. Weights: tests/golden/make-backbone-golden.py --full writes a random
#     torchvision ResNet-50 and a random ViT-L/14 vision tower with float64
#     PyTorch features of the same weights; test-backbone-resnet/-clip
#     full-size compare the engine with them (f32 and f16).
#  4. `dcr bench backbone`: ResNet-50 b1/b32/b256 f16 and f32, ViT-L/14
#     b1/b128 f16; `dcr bench ops --filter retrieval` (1M × 1024 f16 among
#     them).
#  5. tests/gpu/torch-peer.py on the same shapes, eager, then torch.compile
#     for ResNet-50 f16 b256. Then, with the time left, diagnostics: the
#     other cooperative-matrix tiles and the f16 staged tiles on the big
#     cases, the 1M × 1024 retrieval profiled and with $DCR_GEMV_RPS=4,
#     DCR_PROFILE of the big cases and of batch 1, the fallback kernels, the
#     default backbone, `dcr scan` over images prepare.sh carried, and
#     `dcr bench ops`, all of it.
#  6. The ratio table against issue 12's targets (also summary.md).
# Budget: DCR_GPU_BENCH_BUDGET seconds (480); steps that would start past it
# are skipped, and DCR_GPU_BENCH_SKIP="NAME …" leaves steps out.
# Logs and JSON go to $OUT (the device tool's output folder: results.tar.gz,
# summary.md and bench.log, rewritten after every step) or /tmp/dcr-gpu-bench.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUNDLE=${1:-build-gpu-bundle}
case $BUNDLE in /*) ;; *) BUNDLE=$ROOT/$BUNDLE ;; esac
SMOKE=${DCR_GPU_BENCH_SMOKE:-0}
PY=${PYTHON:-python3}
BUDGET=${DCR_GPU_BENCH_BUDGET:-480}   # seconds for the whole run
WORK=${DCR_GPU_BENCH_WORK:-/tmp/dcr-gpu-bench-work}
# The device tool returns at most 8 files from $OUT: the steps write to
# $WORK/res, and the end packs it into $OUT/results.tar.gz beside
# summary.md and bench.log.
RES=$WORK/res
[ -z "${OUT:-}" ] && RES=/tmp/dcr-gpu-bench
rm -rf "$RES"
mkdir -p "$RES" "$WORK"
finish() {
  [ -n "${OUT:-}" ] || return 0
  tar czf "$OUT/results.tar.gz" -C "$RES" . 2>/dev/null
  cp "$RES/bench.log" "$OUT/" 2>/dev/null
  cp "$RES/summary.md" "$OUT/" 2>/dev/null
  return 0
}
trap finish EXIT
LOG=$RES/bench.log
: >"$LOG"
say() { printf '\n=== [%3ds] %s\n' "$SECONDS" "$*" | tee -a "$LOG"; }
left() { echo $((BUDGET - SECONDS)); }
# step NAME TIMEOUT CMD… — runs CMD with its output in $RES/NAME.txt (and the log)
STATUS=()
# DCR_GPU_BENCH_SKIP="NAME …": steps left out (a second run that measures
# only what changed keeps the device time for that)
SKIP=" ${DCR_GPU_BENCH_SKIP:-} "
step() {
  local name=$1 t=$2; shift 2
  if [[ $SKIP == *" $name "* ]]; then
    echo "skipped: DCR_GPU_BENCH_SKIP" >"$RES/$name.txt"; STATUS+=("$name: skipped (asked)"); return 0
  fi
  local l; l=$(left)
  [ "$t" -gt "$l" ] && t=$l
  if [ "$t" -lt 5 ]; then
    echo "skipped: no time left" | tee "$RES/$name.txt" >>"$LOG"; STATUS+=("$name: skipped (time)"); return 1
  fi
  say "$name (timeout ${t}s): $*"
  timeout -k 5 "$t" "$@" >"$RES/$name.txt" 2>"$RES/$name.err"
  local rc=$?
  cat "$RES/$name.txt" >>"$LOG"; tail -n 30 "$RES/$name.err" >>"$LOG"
  STATUS+=("$name: rc=$rc")
  echo "--- $name: rc=$rc" | tee -a "$LOG"
  finish  # $OUT keeps what is done, should the run be cut short
  [ $rc -ne 0 ] && { tail -n 5 "$RES/$name.txt"; tail -n 10 "$RES/$name.err"; }
  return $rc
}

[ -x "$BUNDLE/bin/dcr" ] || { echo "bench.sh: no $BUNDLE/bin/dcr: run tests/gpu/prepare.sh on the build machine" >&2; exit 2; }
DCR=$BUNDLE/bin/dcr

say "system"
{ uname -srm; (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"); nproc; uptime
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  $PY -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>&1
  [ -f "$BUNDLE/MANIFEST" ] && head -1 "$BUNDLE/MANIFEST"; } 2>&1 | tee -a "$LOG"

say "Vulkan setup"
lib_path() { ldconfig -p 2>/dev/null | awk -v l="$1" '$1 == l && /x86-64/ {print $NF; exit}'; }
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; done
if [ "$SMOKE" != 1 ]; then
  # only what the system lacks: the loader, and libglvnd (libGLdispatch) for libGLX_nvidia
  DEBS=()
  [ -z "$(lib_path libvulkan.so.1)" ] && DEBS+=("$BUNDLE"/debs/libvulkan1_*.deb)
  [ -z "$(lib_path libGLdispatch.so.0)" ] && DEBS+=("$BUNDLE"/debs/gl/*.deb)
  if [ ${#DEBS[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      for f in "${DEBS[@]}"; do echo "dpkg -x $(basename "$f") /" | tee -a "$LOG"; dpkg -x "$f" /; done
      ldconfig
    else
      for f in "${DEBS[@]}"; do dpkg -x "$f" "$WORK/root"; done
      export LD_LIBRARY_PATH="$WORK/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      echo "not root: ${DEBS[*]##*/} unpacked under $WORK/root" | tee -a "$LOG"
    fi
  fi
fi
# The bundle's Debian libraries for DCR's binaries only: Python and PyTorch
# keep the system's.
E=(env LD_LIBRARY_PATH="$BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
gpu_visible() { "${E[@]}" "$DCR" devices --json 2>/dev/null | grep -q '"type" : "discrete GPU"\|"type" : "integrated GPU"'; }
if [ "$SMOKE" != 1 ] && ! gpu_visible && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  icd=
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
           /usr/share/vulkan/icd.d/nvidia_icd.json \
           $(find /usr/local/nvidia /usr/share /etc /opt -maxdepth 6 -name 'nvidia_icd*.json' 2>/dev/null); do
    [ -f "$f" ] && { icd=$f; break; }
  done
  if [ -z "$icd" ]; then
    glx=$(lib_path libGLX_nvidia.so.0)
    [ -z "$glx" ] && glx=$(find /usr/local/nvidia /usr/lib /usr/lib64 -maxdepth 3 -name libGLX_nvidia.so.0 2>/dev/null | head -1)
    if [ -n "$glx" ]; then
      icd=$WORK/nvidia_icd.json
      printf '{ "file_format_version": "1.0.0", "ICD": { "library_path": "%s", "api_version": "1.3.0" } }\n' "$glx" >"$icd"
    fi
  fi
  [ -n "$icd" ] && export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
  echo "ICD: ${icd:-none found}" | tee -a "$LOG"
fi
export XDG_CACHE_HOME=$WORK/cache DCR_SOURCE_ROOT=$ROOT
unset DCR_DEVICE DCR_GEMM_KERNEL DCR_GEMM_TILE DCR_RETRIEVAL_GEMV DCR_NO_COOPMAT
step devices 30 "${E[@]}" "$DCR" devices
"${E[@]}" "$DCR" devices --json >"$RES/devices.json" 2>/dev/null
VK_OK=1
if [ "$SMOKE" != 1 ] && ! gpu_visible; then
  # DCR's figures would be lavapipe's: keep the time for the diagnostics and the PyTorch peer
  VK_OK=0
  echo "bench.sh: no GPU visible to Vulkan: skipping DCR's steps; VK_LOADER_DEBUG follows" | tee -a "$LOG"
  "${E[@]}" VK_LOADER_DEBUG=error,warn,driver "$DCR" devices 2>&1 | head -40 | tee -a "$LOG"
  { ldconfig -p | grep -i -E 'vulkan|GLX_nvidia|GLdispatch'; ls -l /usr/local/nvidia/lib64 /usr/local/nvidia/share/vulkan/icd.d 2>&1 | head -40
    find / -xdev -name 'nvidia_icd*.json' 2>/dev/null | head; } 2>&1 | tee -a "$LOG"
  [ "${DCR_GPU_BENCH_PEER_WITHOUT_VK:-0}" = 1 ] || { echo "bench.sh: stopping early, so that the device time is kept for a rerun" | tee -a "$LOG"; exit 3; }
fi

if [ "$SMOKE" = 1 ]; then
  RB=1,2 CB=1,2 REP=2 RETF="--quick"
else
  RB=1,32,256 CB=1,128 REP=10 RETF=""
fi

if [ "$VK_OK" = 1 ]; then
# 2. kernels against their references
KT=()
for t in coop-small coop-medium coop-large8; do
  KT+=(-p /op-gemm/coopmat-$t/f16 -p /op-gemm/coopmat-$t/conv-f16)
done
step kernels 120 "${E[@]}" "$BUNDLE/bin/test-op-gemm" "${KT[@]}" -p /op-gemm/coopmat-emu-coop-small/f16 \
  -p /op-gemm/tiled-large/multi-tile -p /op-gemm/coopmat-emu-coop-small/conv-f16
if [ $? -ne 0 ] && grep -q '"coopmat_gemm_f16" : true' "$RES/devices.json"; then
  # wrong cooperative-matrix results would void every f16 figure: time the fallback kernels instead
  export DCR_NO_COOPMAT=1
  echo "bench.sh: the coopmat kernels failed their tests: DCR_NO_COOPMAT=1 from here on" | tee -a "$LOG" "$RES/coopmat-disabled.txt"
fi
# the tiles only $DCR_GEMM_TILE picks, each on its own (a failure aborts a GLib test binary)
TILES_OK=()
for t in coop-large coop-k64 coop-wide coop-tall; do
  step kernels-$t 40 "${E[@]}" "$BUNDLE/bin/test-op-gemm" -p /op-gemm/coopmat-$t/f16 -p /op-gemm/coopmat-$t/conv-f16 &&
    ! grep -q SKIP "$RES/kernels-$t.txt" && TILES_OK+=($t)
done
# f16 staged tiles ($DCR_COOPMAT_SHARED=f16) against the uvec2 ones
SH16_OK=0
step kernels-sh16 40 "${E[@]}" "$BUNDLE/bin/test-op-gemm" -p /op-gemm/coopmat-sh16-coop-small/f16 \
  -p /op-gemm/coopmat-sh16-coop-small/conv-f16 -p /op-gemm/coopmat-sh16-coop-large8/f16 \
  -p /op-gemm/coopmat-sh16-coop-large8/conv-f16 && ! grep -q SKIP "$RES/kernels-sh16.txt" && SH16_OK=1
step retrieval-test 90 "${E[@]}" "$BUNDLE/bin/test-retrieval" -p /retrieval/gemv -p /retrieval/odd-sizes

# 3. weights and the correctness check
if [ "$SMOKE" = 1 ]; then
  RESNET=$ROOT/tests/golden/resnet_tiny.safetensors CLIPW=$ROOT/tests/golden/clip_tiny.safetensors
  step correct-resnet 120 "${E[@]}" "$BUNDLE/bin/test-backbone-resnet" -p /backbone/resnet/golden-f16
  step correct-clip 120 "${E[@]}" "$BUNDLE/bin/test-backbone-clip" -p /backbone/clip/golden-f16
else
  G=$WORK/golden
  RESNET=$G/resnet50.safetensors CLIPW=$G/clip-vit-l14/model.safetensors
  if [ ! -f "$G/clip-vit-l14_ref.safetensors" ]; then
    step weights 150 "$PY" tests/golden/make-backbone-golden.py --full "$G"
  fi
  step correct-resnet 90 "${E[@]}" DCR_GOLDEN_FULL_DIR="$G" "$BUNDLE/bin/test-backbone-resnet" -p /backbone/resnet/full-size
  step correct-clip 90 "${E[@]}" DCR_GOLDEN_FULL_DIR="$G" "$BUNDLE/bin/test-backbone-clip" -p /backbone/clip/full-size
fi

# 4. dcr bench
step dcr-resnet-f16 90 "${E[@]}" "$DCR" bench backbone --backbone "resnet50:$RESNET" --dtype f16 --batch $RB --repeats $REP --json
step dcr-resnet-f32 90 "${E[@]}" "$DCR" bench backbone --backbone "resnet50:$RESNET" --dtype f32 --batch $RB --repeats $REP --json
step dcr-clip-f16 90 "${E[@]}" "$DCR" bench backbone --backbone "clip-vit-l14:$CLIPW" --dtype f16 --batch $CB --repeats 5 --json
step dcr-retrieval 120 "${E[@]}" "$DCR" bench ops --filter retrieval --repeats 20 $RETF --json
fi

# 5. the PyTorch peer
PEER=(tests/gpu/torch-peer.py)
[ "$SMOKE" = 1 ] && PEER+=(--smoke)
: >"$RES/torch.jsonl"
step torch-resnet 90 "$PY" "${PEER[@]}" resnet --batches $RB --out "$RES/torch.jsonl"
step torch-clip 90 "$PY" "${PEER[@]}" clip --batches $CB --out "$RES/torch.jsonl"
step torch-retrieval 60 "$PY" "${PEER[@]}" retrieval --rows 1000000 --dim 1024 --queries 1,64 --out "$RES/torch.jsonl"
CB256=256; [ "$SMOKE" = 1 ] && CB256=2
step torch-compile 240 "$PY" "${PEER[@]}" resnet-compile --dtypes f16 --batches $CB256 --out "$RES/torch.jsonl"

# 5b. Diagnostics for the next round of tuning, with what time is left:
# where the GPU time goes (DCR_PROFILE, in the .err files), the
# cooperative-matrix kernels against the fallback, the shipped default
# backbone, and `dcr scan` end to end over carried images, if any.
if [ "$VK_OK" = 1 ]; then
  # The other cooperative-matrix tiles one by one ($DCR_GEMM_TILE) on the two
  # big cases (DCR_GPU_BENCH_SWEEP=0 leaves them out)
  SB=256; SC=128; [ "$SMOKE" = 1 ] && SB=2 SC=2
  if [ "${DCR_GPU_BENCH_SWEEP:-1}" = 1 ] && [ -z "${DCR_NO_COOPMAT:-}" ]; then
    for t in "${TILES_OK[@]}"; do
      step sweep-resnet-$t 40 "${E[@]}" DCR_GEMM_TILE=$t "$DCR" bench backbone --backbone "resnet50:$RESNET" --dtype f16 --batch $SB --repeats 5 --json
    done
    for t in "${TILES_OK[@]}"; do
      [ $t = coop-tall ] && continue  # ViT's M (tokens) is not the long side there
      step sweep-clip-$t 40 "${E[@]}" DCR_GEMM_TILE=$t "$DCR" bench backbone --backbone "clip-vit-l14:$CLIPW" --dtype f16 --batch $SC --repeats 2 --json
    done
  fi
  if [ "$SH16_OK" = 1 ] && [ -z "${DCR_NO_COOPMAT:-}" ]; then
    step sweep-resnet-sh16 40 "${E[@]}" DCR_COOPMAT_SHARED=f16 "$DCR" bench backbone --backbone "resnet50:$RESNET" --dtype f16 --batch 1,$SB --repeats 5 --json
    step sweep-clip-sh16 40 "${E[@]}" DCR_COOPMAT_SHARED=f16 "$DCR" bench backbone --backbone "clip-vit-l14:$CLIPW" --dtype f16 --batch 1,$SC --repeats 2 --json
  fi
  # the 1M × 1024 cases with where their GPU time goes (GEMV against top-k;
  # 8 cases did not finish in 72 s on 2026-11-30), and the GEMV at four rows
  # per subgroup and round
  RF="vit-l bank 1M"; [ "$SMOKE" = 1 ] && RF=small
  step profile-retrieval 90 "${E[@]}" DCR_PROFILE=1 "$DCR" bench ops --filter "$RF" --repeats 20 $RETF --json
  step retrieval-rps4 60 "${E[@]}" DCR_GEMV_RPS=4 "$DCR" bench ops --filter "$RF" --repeats 20 $RETF --json
  PB=256; PC=128; [ "$SMOKE" = 1 ] && PB=2 PC=2
  step profile-resnet-f16 60 "${E[@]}" DCR_PROFILE=1 "$DCR" bench backbone --backbone "resnet50:$RESNET" --dtype f16 --batch $PB --repeats 3 --json
  step profile-resnet-b1 40 "${E[@]}" DCR_PROFILE=1 "$DCR" bench backbone --backbone "resnet50:$RESNET" --dtype f16 --batch 1 --repeats 20 --json
  step profile-clip-b1 40 "${E[@]}" DCR_PROFILE=1 "$DCR" bench backbone --backbone "clip-vit-l14:$CLIPW" --dtype f16 --batch 1 --repeats 20 --json
  step profile-clip-f16 60 "${E[@]}" DCR_PROFILE=1 "$DCR" bench backbone --backbone "clip-vit-l14:$CLIPW" --dtype f16 --batch $PC --repeats 2 --json
  step nocoopmat-resnet-f16 60 "${E[@]}" DCR_NO_COOPMAT=1 "$DCR" bench backbone --backbone "resnet50:$RESNET" --dtype f16 --batch 1,$PB --repeats 5 --json
  step dcr-default 60 "${E[@]}" "$DCR" bench backbone --dtype f16 --batch 1,32,$PB --repeats 10 --json
  SCAN=$BUNDLE/scan
  # scan_step NAME BATCH [VAR=VALUE…]: `dcr scan` of the carried images, timed with its start-up
  scan_step() {
    local name=$1 b=$2; shift 2
    step "$name" 90 "${E[@]}" "$@" bash -c 't0=$EPOCHREALTIME; "$1" scan --json --batch "$4" "$2"/* >"$3"; rc=$?;
      t1=$EPOCHREALTIME; echo "scan --batch $4: $(ls "$2" | wc -l) images in $(awk "BEGIN{print $t1 - $t0}") s, rc=$rc"
      exit $rc' _ "$DCR" "$SCAN" "$RES/$name.json" "$b"
  }
  if [ -d "$SCAN" ]; then
    scan_step scan-b16 16
    scan_step scan-b64-profile 64 DCR_PROFILE=1
  fi
fi
[ "$VK_OK" = 1 ] && step ops-all 60 "${E[@]}" "$DCR" bench ops --repeats 5 --json

# 6. the table
say "summary"
"$PY" - "$RES" "$SMOKE" <<'EOF' | tee "$RES/summary.md" | tee -a "$LOG"
import json, os, sys
res, smoke = sys.argv[1], sys.argv[2] == '1'

def load(name):
    try:
        return json.load(open(os.path.join(res, name + '.txt')))
    except Exception:
        return None

def bb(name, batch):
    j = load(name)
    for r in (j or {}).get('results', []):
        if r['batch'] == batch:
            return r
    return None

torch_rows = []
try:
    torch_rows = [json.loads(l) for l in open(os.path.join(res, 'torch.jsonl')) if l.strip()]
except Exception:
    pass

def peer(what, dtype, mode, **kw):
    for r in torch_rows:
        if r['what'].startswith(what) and r['dtype'] == dtype and r['mode'] == mode and \
                all(r.get(k) == v for k, v in kw.items()):
            return r
    return None

try:
    dev = json.load(open(os.path.join(res, 'devices.json')))
except Exception:
    dev = []
if smoke:
    print('SMOKE RUN: tiny weights and shapes, PyTorch on the CPU; the figures mean nothing')
if os.path.exists(os.path.join(res, 'coopmat-disabled.txt')):
    print('COOPMAT DISABLED: its kernel tests failed (kernels.txt); DCR ran the fallback kernels')
print('device (Vulkan):', ', '.join('%s [%s%s]' % (d['name'], d['driver_info'],
      ', coopmat GEMM' if d.get('coopmat_gemm_f16') else '') for d in dev if d.get('selected')))
print()
print('| case | DCR (Vulkan) | PyTorch | ratio | target |')
print('|---|---|---|---|---|')
RB = [1, 2] if smoke else [1, 32, 256]
rows = []
for dt in ('f16', 'f32'):
    for b in RB:
        d, t = bb('dcr-resnet-' + dt, b), peer('resnet50', dt, 'eager', batch=b)
        tgt = ''
        if dt == 'f16' and b == 1:
            tgt = 'latency ≤ 0.25× eager'
        rows.append(('ResNet-50 %s b%d' % (dt, b), d, t, tgt, 'img/s'))
cb = 2 if smoke else 256
d, t = bb('dcr-resnet-f16', cb), peer('resnet50', 'f16', 'compile', batch=cb)
rows.append(('ResNet-50 f16 b%d vs torch.compile' % cb, d, t, '≥ 1.0× torch.compile', 'img/s'))
for b in ([1, 2] if smoke else [1, 128]):
    d, t = bb('dcr-clip-f16', b), peer('clip', 'f16' if not smoke else 'f32', 'eager', batch=b)
    rows.append(('ViT-L/14 f16 b%d (all hidden states)' % b, d, t, '≥ 1.0× eager' if b == 128 else '', 'img/s'))
for label, d, t, tgt, unit in rows:
    ds = '%.1f img/s (%.2f ms)' % (d['img_per_s'], d['median_ms']) if d else 'n/a'
    ts = '%.1f img/s (%.2f ms)' % (t['img_per_s'], t['median_ms']) if t else 'n/a'
    if d and t:
        ratio = d['img_per_s'] / t['img_per_s']
        rs = '%.2f× speed' % ratio
        if 'latency' in tgt:
            rs += ', %.2f× latency' % (d['median_ms'] / t['median_ms'])
    else:
        rs = 'n/a'
    print('| %s | %s | %s | %s | %s |' % (label, ds, ts, rs, tgt))
ops = load('dcr-retrieval') or {}
for r in ops.get('results', []):
    if '1024' not in r['shape'] or r['dtype'] != 'f16':
        continue
    n = int(r['shape'].split('x')[0])
    b = int(r['shape'].split('B=')[1].split()[0])
    t = peer('retrieval', 'f16' if not smoke else 'f32', 'eager', rows=n if not smoke else 10000, queries=b)
    ts = '%.3f ms' % t['median_ms'] if t else 'n/a'
    ratio = '%.2f× time' % (r['median_ms'] / t['median_ms']) if t else 'n/a'
    tgt = '≤ 0.5 ms' if n == 1000000 and b == 1 else ''
    print('| retrieval %s f16 (GPU timestamps, median; min %.3f) | %.3f ms | %s | %s | %s |'
          % (r['shape'].split(' (')[0], r['min_ms'], r['median_ms'], ts, ratio, tgt))
print()
print('Correctness (engine vs PyTorch float64 features of the same weights):')
for name in ['kernels'] + ['kernels-' + t for t in ('coop-large', 'coop-k64', 'coop-wide', 'coop-tall', 'sh16')] + ['retrieval-test', 'correct-resnet', 'correct-clip']:
    try:
        txt = open(os.path.join(res, name + '.txt')).read()
    except Exception:
        txt = ''
    oks = [l.split(' # SKIP')[0] + (' (skipped)' if ' # SKIP' in l else '')
           for l in txt.splitlines() if l.startswith('ok ') or l.startswith('not ok ')]
    print('  %s: %s' % (name, '; '.join(oks) if oks else 'no result (see %s.err)' % name))
print()
print('Diagnostics (img/s median, ms median):')
for name in ('nocoopmat-resnet-f16', 'dcr-default', 'profile-resnet-f16', 'profile-resnet-b1', 'profile-clip-b1', 'profile-clip-f16'):
    j = load(name)
    rs = (j or {}).get('results', [])
    print('  %s: %s' % (name, ', '.join('b%d %.1f (%.2f ms)' % (r['batch'], r['img_per_s'], r['median_ms']) for r in rs) or 'n/a'))
sweep = [n[:-4] for n in sorted(os.listdir(res)) if n.startswith('sweep-') and n.endswith('.txt')]
if sweep:
    print()
    print('Cooperative-matrix tiles other than the default ($DCR_GEMM_TILE; sh16: f16 staged tiles), img/s median:')
    for name in sweep:
        j = load(name)
        rs = (j or {}).get('results', [])
        print('  %s: %s' % (name, ', '.join('b%d %.1f (%.2f ms)' % (r['batch'], r['img_per_s'], r['median_ms']) for r in rs) or 'n/a'))
for name in ('profile-retrieval', 'retrieval-rps4'):
    j = load(name)
    if j:
        print('  %s:' % name)
        for r in j.get('results', []):
            print('    %s %s %s: median %.3f ms, min %.3f ms' % (r['op'], r['dtype'], r['shape'], r['median_ms'], r['min_ms']))
for name in ('scan-b16', 'scan-b64-profile'):
    try:
        print('  ' + open(os.path.join(res, name + '.txt')).read().strip())
    except Exception:
        pass
for name in ('profile-resnet-f16', 'profile-resnet-b1', 'profile-clip-b1', 'profile-clip-f16', 'profile-retrieval', 'scan-b64-profile'):
    try:
        lines = [l.rstrip() for l in open(os.path.join(res, name + '.err')) if l.strip()]
        i = max(k for k, l in enumerate(lines) if l.startswith('DCR_PROFILE:'))
        print('  %s, top pipelines:' % name)
        for l in lines[i:i + 9]:
            print('    ' + l)
    except Exception:
        pass
EOF
say "steps"
printf '%s\n' "${STATUS[@]}" | tee -a "$LOG"
echo "total ${SECONDS}s; logs in $RES" | tee -a "$LOG"
