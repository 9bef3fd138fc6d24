#!/bin/sh
# test-cli.sh — the `dcr` tool as a user meets it: device listing, the
# smoke run, and a clear message plus exit status 1 when Vulkan has no
# driver. TAP output.
dcr="$1"
n=0; fail=0
ok() { n=$((n+1)); echo "ok $n - $1"; }
notok() { n=$((n+1)); fail=$((fail+1)); echo "not ok $n - $1"; }
check() { desc="$1"; shift; if "$@"; then ok "$desc"; else notok "$desc"; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$dcr" devices >"$tmp/out" 2>"$tmp/err"; rc=$?
check "devices exits 0" [ $rc -eq 0 ]
check "devices marks the chosen device" grep -q '^\* [0-9]' "$tmp/out"
"$dcr" devices --json >"$tmp/json" 2>&1
check "devices --json lists a selected device" grep -q '"selected" : true' "$tmp/json"
check "devices says which fp16 GEMM kernels run" grep -q 'fp16 GEMM/conv kernels: ' "$tmp/out"
check "devices --json has the coopmat flag" grep -q '"coopmat_gemm_f16" : ' "$tmp/json"

"$dcr" smoke --size 100003 >"$tmp/out" 2>&1; rc=$?
check "smoke passes" [ $rc -eq 0 ]
check "smoke says so" grep -q 'smoke test passed' "$tmp/out"

"$dcr" smoke --device no-such-gpu >"$tmp/out" 2>"$tmp/err"; rc=$?
check "unknown --device exits 1" [ $rc -eq 1 ]
check "unknown --device names it" grep -q 'no-such-gpu' "$tmp/err"

# No driver at all: point the loader at an empty driver list.
echo '{}' >"$tmp/none.json"
VK_DRIVER_FILES="$tmp/none.json" VK_ICD_FILENAMES="$tmp/none.json" "$dcr" devices >"$tmp/out" 2>"$tmp/err"; rc=$?
check "no Vulkan driver exits 1" [ $rc -eq 1 ]
check "no Vulkan driver says what to install" grep -q 'mesa-vulkan-drivers' "$tmp/err"

"$dcr" frobnicate >/dev/null 2>"$tmp/err"; rc=$?
check "unknown command exits 2" [ $rc -eq 2 ]
"$dcr" --version | grep -q '^dcr [0-9]'; check "version" [ $? -eq 0 ]

# A GPU that fails: a clear message and exit status 1, never a crash.
DCR_INJECT_FAULT=device-lost "$dcr" smoke -n 1000 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "lost device exits 1" [ $rc -eq 1 ]
check "lost device is explained" grep -q 'device was lost' "$tmp/err"
DCR_INJECT_FAULT=out-of-memory "$dcr" smoke -n 1000 >"$tmp/out" 2>"$tmp/err"; rc=$?
check "out of GPU memory exits 1" [ $rc -eq 1 ]
check "out of GPU memory is explained" grep -q 'out of device memory' "$tmp/err"

# The benchmark harness runs (its figures are BENCHMARKS.md's, not a test's):
# the dispatch-cost case, which every device can run in well under a second.
"$dcr" bench ops --filter dispatch --repeats 2 >"$tmp/out" 2>&1; rc=$?
check "bench ops exits 0" [ $rc -eq 0 ]
check "bench ops prints the dispatch case" grep -q '^dispatch .*64 dependent dispatches.* ms each' "$tmp/out"

echo "1..$n"
[ $fail -eq 0 ]
