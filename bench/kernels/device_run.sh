#!/usr/bin/env bash
# Builds lasnet::kernels on a GPU machine and runs, as STAGES says (default all): the CPU and
# GPU tests ("test"), compute-sanitizer memcheck + racecheck on the reduced GPU test set
# ("sanitize"), the benchmark ("bench", BENCH_ARGS) and the PyTorch/cuDNN comparison ("torch",
# TORCH_ARGS), then the target table (summarize.py). Logs and JSON go to $OUT (at most 8 files:
# build, gpu_tests, memcheck, racecheck and bench logs, kernels.json, torch.json, summary.txt).
# PREBUILT=DIR runs the binaries in DIR (test_kernels_reference, test_kernels_gpu, bench_kernels,
# built elsewhere with the same CUDA; shared libraries they lack in DIR/lib) instead of building.
# PARALLEL_CHECKS=1 runs the GPU tests and both sanitizers at the same time (correctness only;
# nothing is timed while they run).
# Usage, from the repository root:
#   OUT=out bench/kernels/device_run.sh [CMAKE_SOURCE_DIR]
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
SRC=${1:-.}
B=${BUILD_DIR:-build-dev}
STAGES=${STAGES:-test sanitize bench torch}  # torch runs before bench: bench may be cut short
{ nvidia-smi -L; nvcc --version | tail -1; } >"$OUT/build.log" 2>&1
if [[ -n ${PREBUILT:-} ]]; then
  echo "prebuilt binaries from $PREBUILT" >>"$OUT/build.log"
  export LD_LIBRARY_PATH="$PREBUILT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  exe() { echo "$PREBUILT/$1"; }
else
  cmake -S "$SRC" -B "$B" -DLASNET_CUDA=ON -DLASNET_GPU_TESTS=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    >>"$OUT/build.log" 2>&1
  if ! cmake --build "$B" -j16 --target test_kernels_reference test_kernels_gpu bench_kernels \
    >>"$OUT/build.log" 2>&1; then
    tail -60 "$OUT/build.log"
    exit 1
  fi
  exe() { find "$B" -name "$1" -type f -perm -u+x | head -1; }
fi
has() { [[ " $STAGES " == *" $1 "* ]]; }
run_tests() {
  "$(exe test_kernels_reference)" >"$OUT/gpu_tests.log" 2>&1
  echo "reference tests rc=$?" >"$OUT/test.rc"
  timeout ${TEST_TIMEOUT:-300} "$(exe test_kernels_gpu)" >>"$OUT/gpu_tests.log" 2>&1
  echo "gpu tests rc=$?" >>"$OUT/test.rc"
}
run_sanitizer() {
  local tool=$1 skip_large=0
  [[ $tool == racecheck ]] && skip_large=1  # racecheck of the 25088-row shape takes minutes
  LASNET_GPU_TEST_SKIP_LARGE=$skip_large LASNET_GPU_TEST_QUICK=1 \
    timeout ${SAN_TIMEOUT:-150} compute-sanitizer --tool $tool \
    --error-exitcode 9 "$(exe test_kernels_gpu)" >"$OUT/$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1)" \
    >"$OUT/$tool.rc"
}
checks=()
has test && checks+=(run_tests)
has sanitize && checks+=("run_sanitizer memcheck" "run_sanitizer racecheck")
if [[ ${PARALLEL_CHECKS:-0} == 1 ]]; then
  for c in "${checks[@]}"; do $c & done
  wait
else
  for c in "${checks[@]}"; do $c; done
fi
for f in test memcheck racecheck; do
  if [[ -f $OUT/$f.rc ]]; then
    tee -a "$OUT/summary.txt" <"$OUT/$f.rc"
    rm -f "$OUT/$f.rc"
  fi
done
has test && tail -4 "$OUT/gpu_tests.log"
if has torch; then
  PYTHONUNBUFFERED=1 timeout ${TORCH_TIMEOUT:-200} python3 bench/kernels/torch_dense.py \
    --out "$OUT/torch.json" ${TORCH_ARGS:-} >>"$OUT/bench.log" 2>&1
  echo "torch rc=$?" | tee -a "$OUT/summary.txt"
fi
if has bench; then
  timeout ${BENCH_TIMEOUT:-300} "$(exe bench_kernels)" --out "$OUT/kernels.json" ${BENCH_ARGS:-} \
    >>"$OUT/bench.log" 2>&1
  echo "bench rc=$?" | tee -a "$OUT/summary.txt"
fi
if [[ -f $OUT/kernels.json && -f $OUT/torch.json ]]; then
  python3 bench/kernels/summarize.py "$OUT/kernels.json" "$OUT/torch.json" >>"$OUT/summary.txt" 2>&1
fi
cat "$OUT/summary.txt"
