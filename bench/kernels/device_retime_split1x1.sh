#!/usr/bin/env bash
# The device call that re-timed the kernels after the third round's last plan change (1x1
# split-K only while the split grid fits one wave of block slots): build, the split-K GPU test
# case, batch 1 against the previous commit built in the same call (BASE_SRC, a `git archive` of
# it), the PyTorch/cuDNN blocks and the full benchmark (50 runs).
# Usage, repository root on the GPU machine: OUT=/some/dir COMMIT=$(git rev-parse --short HEAD) \
#   BASE_SRC=dir bench/kernels/device_retime_split1x1.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
S0=$(date +%s)
el() { echo $(( $(date +%s) - S0 )); }
L=$OUT/log.txt
echo "== device $(date -u +%FT%TZ), source commit ${COMMIT:-unknown}" > $L
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv >> $L
CF="-DCMAKE_BUILD_TYPE=Release -DLASNET_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a"
( cmake -S . -B build-dev $CF -DLASNET_GPU_TESTS=ON > $OUT/build.log 2>&1 && \
  cmake --build build-dev -j10 --target test_kernels_gpu bench_kernels >> $OUT/build.log 2>&1
  echo "build rc=$? at $(el) s" >> $L ) &
( cmake -S "$BASE_SRC" -B build-base $CF > $OUT/build_base.log 2>&1 && \
  cmake --build build-base -j6 --target bench_kernels >> $OUT/build_base.log 2>&1
  echo "base build rc=$? at $(el) s" >> $L ) &
wait
X() { find $1 -name "$2" -type f -perm -u+x | head -1; }
B=$(X build-dev bench_kernels)
timeout -k 5 60 $(X build-dev test_kernels_gpu) -tc="*split-K*" > $OUT/gpu_test.log 2>&1; echo "split-K gpu test rc=$?" >> $L; tail -3 $OUT/gpu_test.log >> $L
A="--batches 1 --runs 50 --network 1"
timeout -k 5 60 $(X build-base bench_kernels) --out $OUT/b1_base.json $A > $OUT/b1_base.log 2>&1; echo "b1 base rc=$? at $(el) s" >> $L
timeout -k 5 60 $B --out $OUT/b1_new.json $A > $OUT/b1_new.log 2>&1; echo "b1 new rc=$? at $(el) s" >> $L
PYTHONUNBUFFERED=1 timeout -k 5 100 python3 bench/kernels/torch_dense.py --out $OUT/torch.json > $OUT/torch.log 2>&1; echo "torch rc=$? at $(el) s" >> $L
timeout -k 5 200 $B --out $OUT/kernels.json --runs 50 > $OUT/bench.log 2>&1; echo "bench rc=$? at $(el) s" >> $L
echo "end at $(el) s" >> $L
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv >> $L
cat $L
