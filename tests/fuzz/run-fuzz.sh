#!/bin/sh
# run-fuzz.sh — fuzzes one target for SECONDS, new inputs in SCRATCH (the
# committed corpus is only read); a crash, leak or sanitizer report leaves
# its input in SCRATCH and fails the test (exit status 1: libFuzzer's own,
# 77, would read as "skipped" to meson).
#   run-fuzz.sh TARGET SCRATCH CORPUS SECONDS
target="$1"; scratch="$2"; corpus="$3"; seconds="$4"
mkdir -p "$scratch" || exit 1
exec "$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -error_exitcode=1 \
  -artifact_prefix="$scratch/" -print_final_stats=1 "$scratch" "$corpus"
