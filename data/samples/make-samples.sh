#!/bin/sh
# make-samples.sh — copies the bundled samples out of the generated benchmark
# (data/benchmark/make-benchmark.sh must have run): the first crop of each kind
# in file order from the test photos aitzgorri and seeding, renamed for what
# they are. Idempotent; README.md lists what each file is.
# Usage: data/samples/make-samples.sh [BENCHMARK_DIR]   (default: data/benchmark/generated)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${1:-$here/../benchmark/generated}
copy() { # SOURCE (relative to the benchmark) NAME
  [ -f "$data/$1" ] || { echo "make-samples: $data/$1 not found; run data/benchmark/make-benchmark.sh first" >&2; exit 1; }
  cp "$data/$1" "$here/$2"
}
copy test/real/aitzgorri-s1024-0-0-real.png real-aitzgorri-1.png
copy test/real/seeding-s1024-0-768-real.png real-seeding-1.png
copy test/fake/aitzgorri-s1024-0-0-fake-esrgan-thick-x2.png fake-esrgan-thick-x2-aitzgorri-1.png
copy test/fake/seeding-s1024-0-768-fake-esrgan-slim-x3.png fake-esrgan-slim-x3-seeding-1.png
copy test/fake/aitzgorri-s1024-1280-768-fake-esrgan-medium-x3-partial.png fake-partial-esrgan-medium-x3-aitzgorri-1.png
copy test-heldout/fake/aitzgorri-s1024-0-0-fake-div2k-rdn-x2.png fake-div2k-rdn-x2-aitzgorri-1.png
copy test-resampled/real/aitzgorri-s1024-0-0-resampled-lanczos.png resampled-lanczos-aitzgorri-1.png
echo "make-samples: 7 samples in $here"
