#!/usr/bin/env bash
# One device call for the depthwise / grouped 3x3 kernels: build, the CPU tests, the GPU tests of
# these kernels (full set) and a quick pass of every other GPU test case, compute-sanitizer
# memcheck + racecheck on the quick set of the grouped tests, bench_grouped (old direct kernel vs
# new, with floors) and the PyTorch/cuDNN baseline (torch_grouped.py). Logs and JSON go to $OUT
# (8 files at most: build, tests, memcheck, racecheck, bench logs, grouped.json,
# torch_grouped.json, summary.txt). Stage time limits keep the call inside its budget.
# Usage, from the repository root:  OUT=out bench/kernels/device_run_grouped.sh
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
B=${BUILD_DIR:-build-dev}
S="$OUT/summary.txt"
{ nvidia-smi -L; nvcc --version | tail -1; date -u; } >"$OUT/build.log" 2>&1
t0=$SECONDS
cmake -S . -B "$B" -DLASNET_CUDA=ON -DLASNET_GPU_TESTS=ON -DLASNET_CUDA_ARCHITECTURES=90 \
  -DCMAKE_BUILD_TYPE=Release >>"$OUT/build.log" 2>&1
if ! cmake --build "$B" -j16 --target test_kernels_reference test_kernels_gpu bench_grouped \
  >>"$OUT/build.log" 2>&1; then
  grep -E "error" "$OUT/build.log" | head -30
  exit 1
fi
echo "build $((SECONDS - t0)) s" | tee -a "$S"
exe() { find "$B" -name "$1" -type f -perm -u+x | head -1; }
GPU=$(exe test_kernels_gpu)
stage() {  # name, time limit, command...
  local name=$1 limit=$2 t=$SECONDS
  shift 2
  timeout "$limit" "$@"
  local rc=$?
  echo "$name rc=$rc $((SECONDS - t)) s" | tee -a "$S"
}
stage "reference tests" 30 "$(exe test_kernels_reference)" >"$OUT/tests.log" 2>&1
stage "gpu tests grouped (full)" ${T_FULL:-130} "$GPU" -tc="GPU: grouped*,GPU: legacy*" \
  >>"$OUT/tests.log" 2>&1
grep -E "test cases|assertions" "$OUT/tests.log" | tail -2 | tee -a "$S"
stage "bench_grouped" ${T_BENCH:-100} "$(exe bench_grouped)" --out "$OUT/grouped.json" \
  --runs 50 --warmup 5 >"$OUT/bench.log" 2>&1
for tool in memcheck racecheck; do
  skip_large=0
  [[ $tool == racecheck ]] && skip_large=1  # the 17424-row case: memcheck only
  LASNET_GPU_TEST_SKIP_LARGE=$skip_large LASNET_GPU_TEST_QUICK=1 stage "$tool" ${T_SAN:-60} \
    compute-sanitizer --tool $tool \
    --error-exitcode 9 "$GPU" -tc="GPU: grouped*" >"$OUT/$tool.log" 2>&1
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/$tool.log" | tail -1 | tee -a "$S"
done
PYTHONUNBUFFERED=1 stage "torch" ${T_TORCH:-45} python3 bench/kernels/torch_grouped.py \
  --out "$OUT/torch_grouped.json" --runs 50 >>"$OUT/bench.log" 2>&1
LASNET_GPU_TEST_QUICK=1 LASNET_GPU_TEST_SKIP_LARGE=1 stage "gpu tests other cases (quick)" \
  ${T_QUICK:-30} "$GPU" -tce="GPU: grouped*,GPU: legacy*" >>"$OUT/tests.log" 2>&1
grep -E "test cases|assertions" "$OUT/tests.log" | tail -2 | tee -a "$S"
grep -E "^(regnety|mobilenet)" "$OUT/bench.log" | head -110
cat "$S"
