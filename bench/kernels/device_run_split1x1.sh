#!/usr/bin/env bash
# The device call behind bench/results/kernels_h200*.json of 2026-12-03, third round (split-K for
# batch 1's long-K 1x1 convs): build for sm_90a, the CPU-reference and GPU tests, the profiler's
# GPU test, batch 1 against the previous commit built in the same call (BASE_SRC: a `git archive`
# of it; skipped when unset), the PyTorch/cuDNN blocks, the full benchmark (50 runs), and both
# sanitizers on the quick test set plus racecheck of the split-K test case.
# Usage, repository root on the GPU machine: OUT=/some/dir COMMIT=$(git rev-parse --short HEAD) \
#   [BASE_SRC=dir] bench/kernels/device_run_split1x1.sh
#   (results: $OUT/log.txt, kernels.json, torch.json, b1_base.json, b1_new.json, m.tgz)
set -uo pipefail
cd "$(dirname "$0")/../.."
S0=$(date +%s)
el() { echo $(( $(date +%s) - S0 )); }
L=$OUT/log.txt
M=$OUT/m; mkdir -p $M
echo "== device $(date -u +%FT%TZ), source commit ${COMMIT:-unknown}" > $L
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv >> $L
CF="-DCMAKE_BUILD_TYPE=Release -DLASNET_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a"
( cmake -S . -B build-dev $CF -DLASNET_GPU_TESTS=ON > $M/build.log 2>&1 && \
  cmake --build build-dev -j10 --target lasnet_profiler_gpu_tests test_kernels_reference test_kernels_gpu bench_kernels >> $M/build.log 2>&1
  echo "build rc=$? at $(el) s" >> $L ) &
if [ -n "${BASE_SRC:-}" ]; then
  ( cmake -S "$BASE_SRC" -B build-base $CF > $M/build_base.log 2>&1 && \
    cmake --build build-base -j6 --target bench_kernels >> $M/build_base.log 2>&1
    echo "base build rc=$? at $(el) s" >> $L ) &
fi
wait
X() { find $1 -name "$2" -type f -perm -u+x | head -1; }
pack() { tar czf $OUT/m.tgz -C $OUT m; }
G=$(X build-dev test_kernels_gpu); B=$(X build-dev bench_kernels)
timeout -k 5 60 $(X build-dev test_kernels_reference) > $M/gpu_tests.log 2>&1; echo "reference tests rc=$?" >> $L
timeout -k 5 150 $G >> $M/gpu_tests.log 2>&1; echo "gpu tests rc=$? at $(el) s" >> $L
tail -3 $M/gpu_tests.log >> $L
grep -E " b1\." $M/gpu_tests.log | head -12 >> $L
timeout -k 5 100 $(X build-dev lasnet_profiler_gpu_tests) > $M/profiler_gpu_tests.log 2>&1; echo "profiler gpu tests rc=$?" >> $L; tail -1 $M/profiler_gpu_tests.log >> $L
pack
if [ -n "${BASE_SRC:-}" ]; then
  A="--batches 1 --runs 50 --network 1"
  timeout -k 5 60 $(X build-base bench_kernels) --out $OUT/b1_base.json $A > $M/b1_base.log 2>&1; echo "b1 base rc=$? at $(el) s" >> $L
  timeout -k 5 60 $B --out $OUT/b1_new.json $A > $M/b1_new.log 2>&1; echo "b1 new rc=$? at $(el) s" >> $L
fi
PYTHONUNBUFFERED=1 timeout -k 5 100 python3 bench/kernels/torch_dense.py --out $OUT/torch.json > $M/torch.log 2>&1; echo "torch rc=$? at $(el) s" >> $L
timeout -k 5 200 $B --out $OUT/kernels.json --runs 50 > $M/bench.log 2>&1; echo "bench rc=$? at $(el) s" >> $L
pack
if [ $(el) -lt 420 ]; then
  ( LASNET_GPU_TEST_QUICK=1 timeout -k 5 150 compute-sanitizer --tool memcheck --error-exitcode 9 $G > $M/memcheck.log 2>&1; echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' $M/memcheck.log | tail -1)" >> $L ) &
  ( LASNET_GPU_TEST_SKIP_LARGE=1 LASNET_GPU_TEST_QUICK=1 timeout -k 5 150 compute-sanitizer --tool racecheck --error-exitcode 9 $G > $M/racecheck.log 2>&1; echo "racecheck rc=$? $(grep -E 'RACECHECK SUMMARY' $M/racecheck.log | tail -1)" >> $L ) &
  ( timeout -k 5 150 compute-sanitizer --tool racecheck --error-exitcode 9 $G -tc="*split-K*" > $M/racecheck_split.log 2>&1; echo "racecheck split-K test rc=$? $(grep -E 'RACECHECK SUMMARY' $M/racecheck_split.log | tail -1)" >> $L ) &
  wait
fi
echo "end at $(el) s" >> $L
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv >> $L
pack; rm -rf $M
cat $L
