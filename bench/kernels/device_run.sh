#!/usr/bin/env bash
# Builds lasnet::kernels on a GPU machine and runs, as STAGES says (default all): the CPU and
# GPU tests ("test"), compute-sanitizer memcheck + racecheck on the reduced GPU test set
# ("sanitize"), the benchmark ("bench", BENCH_ARGS) and the PyTorch/cuDNN comparison ("torch",
# TORCH_ARGS), then the target table (summarize.py). Logs and JSON go to $OUT (at most 8 files:
# build, gpu_tests, memcheck, racecheck and bench logs, kernels.json, torch.json, summary.txt).
# Usage, from the repository root:
#   OUT=out bench/kernels/device_run.sh [CMAKE_SOURCE_DIR]
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
SRC=${1:-.}
B=${BUILD_DIR:-build-dev}
STAGES=${STAGES:-test sanitize bench torch}  # torch runs before bench: bench may be cut short
{ nvidia-smi -L; nvcc --version | tail -1; } >"$OUT/build.log" 2>&1
cmake -S "$SRC" -B "$B" -DLASNET_CUDA=ON -DLASNET_GPU_TESTS=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  >>"$OUT/build.log" 2>&1
if ! cmake --build "$B" -j16 --target test_kernels_reference test_kernels_gpu bench_kernels \
  >>"$OUT/build.log" 2>&1; then
  tail -60 "$OUT/build.log"
  exit 1
fi
exe() { find "$B" -name "$1" -type f -perm -u+x | head -1; }
has() { [[ " $STAGES " == *" $1 "* ]]; }
if has test; then
  "$(exe test_kernels_reference)" >"$OUT/gpu_tests.log" 2>&1
  echo "reference tests rc=$?" | tee -a "$OUT/summary.txt"
  timeout ${TEST_TIMEOUT:-300} "$(exe test_kernels_gpu)" >>"$OUT/gpu_tests.log" 2>&1
  echo "gpu tests rc=$?" | tee -a "$OUT/summary.txt"
  tail -4 "$OUT/gpu_tests.log"
fi
if has sanitize; then
  for tool in memcheck racecheck; do
    skip_large=0
    [[ $tool == racecheck ]] && skip_large=1  # racecheck of the 25088-row shape takes minutes
    LASNET_GPU_TEST_SKIP_LARGE=$skip_large LASNET_GPU_TEST_QUICK=1 \
      timeout ${SAN_TIMEOUT:-150} compute-sanitizer --tool $tool \
      --error-exitcode 9 "$(exe test_kernels_gpu)" >"$OUT/$tool.log" 2>&1
    echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1)" |
      tee -a "$OUT/summary.txt"
  done
fi
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
