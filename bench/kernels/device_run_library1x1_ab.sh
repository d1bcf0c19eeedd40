#!/usr/bin/env bash
# The first device call of 2026-12-03, third round, as run (from an ignored out/ folder), on an
# uncommitted tree: c8b7bbd's --library-1x1 option and 1x1 split-K (without the rule's 12-chunk
# and one-wave conditions), plus an in-kernel split-K reduction since dropped (docs/kernels.md,
# third round). It records kernels_h200_library1x1_*.json; it is not something to rerun as is.
# Device call 1 (2026-12-03, third round): split-K in one launch, 1x1 split at batch 1, dense 1x1 by
# our implicit GEMM (A/B --library-1x1 0/1), against the base commit built from out/base.
set -uo pipefail
S0=$(date +%s); el() { echo $(( $(date +%s) - S0 )); }
L=$OUT/log.txt; M=$OUT/m; mkdir -p $M
echo "== device $(date -u +%FT%TZ)" > $L
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv >> $L
CF="-DCMAKE_BUILD_TYPE=Release -DLASNET_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a"
( cmake -S . -B build-dev $CF -DLASNET_GPU_TESTS=ON > $M/build.log 2>&1 && cmake --build build-dev -j10 --target test_kernels_reference test_kernels_gpu bench_kernels >> $M/build.log 2>&1; echo "build rc=$? at $(el) s" >> $L ) &
( cmake -S out/base -B build-base $CF > $M/build_base.log 2>&1 && cmake --build build-base -j6 --target bench_kernels >> $M/build_base.log 2>&1; echo "base build rc=$? at $(el) s" >> $L ) &
wait
X() { find $1 -name "$2" -type f -perm -u+x | head -1; }
G=$(X build-dev test_kernels_gpu); B=$(X build-dev bench_kernels); B0=$(X build-base bench_kernels)
timeout -k 5 60 $(X build-dev test_kernels_reference) > $M/ref_tests.log 2>&1; echo "reference tests rc=$?" >> $L; tail -2 $M/ref_tests.log >> $L
timeout -k 5 150 $G > $M/gpu_tests.log 2>&1; echo "gpu tests rc=$? at $(el) s" >> $L; tail -3 $M/gpu_tests.log >> $L
grep -E "b1\.|FAILED|ERROR" $M/gpu_tests.log | head -30 >> $L
A="--runs 50 --densities 0.5 --network 1"
timeout -k 5 60 $B --out $OUT/b1_lib0.json --batches 1 $A --library-1x1 0 > $M/b1_lib0.log 2>&1; echo "b1 lib0 rc=$? at $(el) s" >> $L
timeout -k 5 60 $B --out $OUT/b1_lib1.json --batches 1 $A --library-1x1 1 > $M/b1_lib1.log 2>&1; echo "b1 lib1 rc=$? at $(el) s" >> $L
timeout -k 5 60 $B0 --out $OUT/b1_base.json --batches 1 $A > $M/b1_base.log 2>&1; echo "b1 base rc=$? at $(el) s" >> $L
timeout -k 5 90 $B --out $OUT/b128_lib0.json --batches 128 $A --granularities 1,2,4,7 --library-1x1 0 > $M/b128_lib0.log 2>&1; echo "b128 lib0 rc=$? at $(el) s" >> $L
timeout -k 5 90 $B --out $OUT/b128_lib1.json --batches 128 $A --library-1x1 1 > $M/b128_lib1.log 2>&1; echo "b128 lib1 rc=$? at $(el) s" >> $L
timeout -k 5 90 $B0 --out $OUT/b128_base.json --batches 128 $A > $M/b128_base.log 2>&1; echo "b128 base rc=$? at $(el) s" >> $L
if [ $(el) -lt 500 ]; then
  timeout -k 5 $(( 570 - $(el) )) compute-sanitizer --tool racecheck --error-exitcode 9 $G -tc="*split-K*" > $M/racecheck.log 2>&1; echo "racecheck split-K test rc=$? $(grep -E 'RACECHECK SUMMARY' $M/racecheck.log | tail -1)" >> $L
fi
echo "end at $(el) s" >> $L
tar czf $OUT/m.tgz -C $OUT m; rm -rf $M
cat $L
