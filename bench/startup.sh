#!/usr/bin/env bash
# Start-to-exit time of one `lasnet predict` process (the dynamic ResNet-101 query of the README)
# and of `lasnet hw list`: what a script calling the CLI in a loop pays per query. With hyperfine
# (Debian package hyperfine) the figures are its median and mean; without it, a loop of RUNS
# processes gives the mean.
#   bench/startup.sh [LASNET] [OUT.json]   (defaults: build/cli/lasnet, no JSON)
#   RUNS=200 WARMUP=10 to change the run counts.
# Also shows which shared libraries the binary maps: a CUDA build must map no CUDA library here.
set -euo pipefail
cd "$(dirname "$0")/.."
lasnet=${1:-build/cli/lasnet}
out=${2:-}
runs=${RUNS:-200}
warmup=${WARMUP:-10}
predict="$lasnet predict examples/resnet101.json --hw v100 --density 0.5 --granularity 4-4-2-1"
hw="$lasnet hw list"
echo "startup: $lasnet; CUDA libraries opened by one predict:"
if command -v strace >/dev/null 2>&1; then
  strace -f -e trace=openat $predict 2>&1 >/dev/null | grep -Ei 'libcuda|libcublas|libcudart' \
    | grep -v ENOENT || echo "  none"
else
  LD_DEBUG=libs $predict 2>&1 >/dev/null | grep -Ei 'calling init:.*(cuda|cublas)' || echo "  none"
fi
if command -v hyperfine >/dev/null 2>&1; then
  hyperfine -N --warmup "$warmup" --runs "$runs" ${out:+--export-json "$out"} "$predict" "$hw"
else
  for command in "$predict" "$hw"; do
    for _ in $(seq "$warmup"); do $command >/dev/null; done
    start=$(date +%s%N)
    for _ in $(seq "$runs"); do $command >/dev/null; done
    echo "$command: mean $(( ($(date +%s%N) - start) / runs / 1000 )) us over $runs runs"
  done
fi
