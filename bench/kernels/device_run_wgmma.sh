#!/usr/bin/env bash
# The device call behind bench/results/kernels_h200*.json of 2026-12-03, second round (the wgmma
# tiles): build for sm_90a, the CPU-reference and GPU tests, the wgmma A/B (--wgmma 1 vs 0, tf32,
# d = 0.5, whole network included), the PyTorch/cuDNN blocks, the full benchmark (50 runs), and
# both sanitizers (the quick test set, and the wgmma test case on its own).
# Usage, repository root on the GPU machine: OUT=/some/dir COMMIT=$(git rev-parse --short HEAD) \
#   bench/kernels/device_run_wgmma.sh   (results: $OUT/log.txt, kernels.json, torch.json, m.tgz)
set -uo pipefail
cd "$(dirname "$0")/../.."
S0=$(date +%s)
el() { echo $(( $(date +%s) - S0 )); }
L=$OUT/log.txt
M=$OUT/m; mkdir -p $M
echo "== device $(date -u +%FT%TZ), source commit ${COMMIT:-unknown}" > $L
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv >> $L
cmake -S . -B build-dev -DCMAKE_BUILD_TYPE=Release -DLASNET_CUDA=ON -DLASNET_GPU_TESTS=ON -DCMAKE_CUDA_ARCHITECTURES=90a > $M/build.log 2>&1 && \
cmake --build build-dev -j16 --target lasnet_profiler_gpu_tests test_kernels_reference test_kernels_gpu bench_kernels >> $M/build.log 2>&1
echo "build rc=$? at $(el) s" >> $L
X() { find build-dev -name "$1" -type f -perm -u+x | head -1; }
pack() { tar czf $OUT/m.tgz -C $OUT m; }
G=$(X test_kernels_gpu)
timeout -k 5 120 $(X test_kernels_reference) > $M/gpu_tests.log 2>&1; echo "reference tests rc=$?" >> $L
timeout -k 5 200 $G >> $M/gpu_tests.log 2>&1; echo "gpu tests rc=$? at $(el) s" >> $L
tail -3 $M/gpu_tests.log >> $L
grep -E "wgmma_" $M/gpu_tests.log | head -12 >> $L
timeout -k 5 100 $(X lasnet_profiler_gpu_tests) > $M/profiler_gpu_tests.log 2>&1; echo "profiler gpu tests rc=$?" >> $L; tail -1 $M/profiler_gpu_tests.log >> $L
pack
B=$(X bench_kernels)
timeout -k 5 90 $B --out $M/ab_wgmma1.json --runs 50 --precisions tf32 --densities 0.5 --network 1 --wgmma 1 > $M/ab1.log 2>&1; echo "ab wgmma=1 rc=$? at $(el) s" >> $L
timeout -k 5 90 $B --out $M/ab_wgmma0.json --runs 50 --precisions tf32 --densities 0.5 --network 1 --wgmma 0 > $M/ab0.log 2>&1; echo "ab wgmma=0 rc=$? at $(el) s" >> $L
pack
PYTHONUNBUFFERED=1 timeout -k 5 100 python3 bench/kernels/torch_dense.py --out $OUT/torch.json > $M/torch.log 2>&1; echo "torch rc=$? at $(el) s" >> $L
timeout -k 5 170 $B --out $OUT/kernels.json --runs 50 > $M/bench.log 2>&1; echo "bench rc=$? at $(el) s" >> $L
pack
if [ $(el) -lt 420 ]; then
  ( LASNET_GPU_TEST_QUICK=1 timeout -k 5 150 compute-sanitizer --tool memcheck --error-exitcode 9 $G > $M/memcheck.log 2>&1; echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' $M/memcheck.log | tail -1)" >> $L ) &
  ( LASNET_GPU_TEST_SKIP_LARGE=1 LASNET_GPU_TEST_QUICK=1 timeout -k 5 150 compute-sanitizer --tool racecheck --error-exitcode 9 $G > $M/racecheck.log 2>&1; echo "racecheck rc=$? $(grep -E 'RACECHECK SUMMARY' $M/racecheck.log | tail -1)" >> $L ) &
  ( timeout -k 5 150 compute-sanitizer --tool racecheck --error-exitcode 9 $G -tc="*wgmma*" > $M/racecheck_wgmma.log 2>&1; echo "racecheck wgmma test rc=$? $(grep -E 'RACECHECK SUMMARY' $M/racecheck_wgmma.log | tail -1)" >> $L ) &
  wait
fi
echo "end at $(el) s" >> $L
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv >> $L
pack; rm -rf $M
cat $L
