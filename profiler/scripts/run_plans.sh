#!/usr/bin/env bash
# Issue 23 on the GPU: the scheduler's plans run whole (`lasnet run`) for the shipped specs at
# batch 1 and 128, each plan beside the same network on one stream and dense, with the
# predicted (schedule --trace) and measured (run --trace) timelines, and a summary of predicted
# against measured latency and stream gain.
# Usage (repo root, on the GPU machine): profiler/scripts/run_plans.sh OUTDIR
#   HW=NAME          profile the plans are made with (default: h100-calibrated or
#                    h200-calibrated, from nvidia-smi)
#   SPECS="..."      specs (default: the five shipped: resnet50 resnet101 regnety_400mf
#                    regnety_800mf mobilenetv2)
#   BATCHES="1 128"  batches;  STREAMS="1 2 3 4": schedule --streams values
#   TOLERANCES="0.02 0": schedule --tolerance values (its recommended S, the fastest S)
#   DENSITY=0.5      the plans' density;  RUNS=30: timed CUDA-graph runs per program
#   LASNET=path      a built lasnet (else built here, Release, in $BUILD_DIR or build-device)
#   SKIP_TESTS=1     skip the stem/head and network GPU tests
# Every step logs to OUTDIR/run.log; a failing plan is logged and the next one runs.
set -u
cd "$(dirname "$0")/../.."
out=${1:?usage: run_plans.sh OUTDIR}
mkdir -p "$out"
log="$out/run.log"
exec > >(tee -a "$log") 2>&1
start=$(date +%s)
el() { echo "$(($(date +%s) - start)) s"; }
read -r -a specs <<<"${SPECS:-resnet50 resnet101 regnety_400mf regnety_800mf mobilenetv2}"
read -r -a batches <<<"${BATCHES:-1 128}"
read -r -a stream_counts <<<"${STREAMS:-1 2 3 4}"
# The scheduler's S choices: its recommendation (--tolerance 0.02) and the fastest S (0).
read -r -a tolerances <<<"${TOLERANCES:-0.02 0}"
density=${DENSITY:-0.5}
runs=${RUNS:-30}

echo "== run_plans.sh ($(date -u +%FT%TZ)), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "command: $0 $*  (HW=${HW:-} SPECS=${SPECS:-} BATCHES=${BATCHES:-} STREAMS=${STREAMS:-} TOLERANCES=${TOLERANCES:-} DENSITY=${DENSITY:-} RUNS=${RUNS:-})"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv || true
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | grep -o -i -E 'h100|h200' | tr 'A-Z' 'a-z')
hw=${HW:-${gpu:-h100}-calibrated}
echo "profile: $hw; specs: ${specs[*]}; batches: ${batches[*]}; --streams: ${stream_counts[*]}; density $density; $runs runs"

lasnet=${LASNET:-}
if [ -z "$lasnet" ]; then
  build=${BUILD_DIR:-build-device}
  echo "== build ($build)"
  targets=(lasnet lasnet_gpu)
  [ "${SKIP_TESTS:-0}" = 1 ] || targets+=(lasnet_profiler_gpu_tests test_kernels_gpu)
  if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLASNET_CUDA=ON \
      -DLASNET_CUDA_ARCHITECTURES=90a -DLASNET_BUILD_BENCH=OFF -DLASNET_GPU_TESTS=ON &&
    cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"; } >"$out/build.log" 2>&1; then
    tail -40 "$out/build.log"
    echo "BUILD FAILED"
    exit 1
  fi
  lasnet=$build/cli/lasnet
  echo "built at $(el)"
  if [ "${SKIP_TESTS:-0}" != 1 ]; then
    echo "== GPU tests: stem/head layers, the network runner"
    "$build/tests/kernels/test_kernels_gpu" -tc='GPU stem*,GPU head*' || echo "TEST FAILED: layers"
    "$build/tests/profiler/lasnet_profiler_gpu_tests" -tc='GPU: ResNet-50 whole*' ||
      echo "TEST FAILED: network runner"
    echo "tests at $(el)"
  fi
fi

for name in "${specs[@]}"; do
  spec=examples/$name.json
  for batch in "${batches[@]}"; do
    used=""
    for tol in "${tolerances[@]}"; do
    for k in "${stream_counts[@]}"; do
      tag="${name}_b${batch}_k${k}"
      [ "$tol" = "${tolerances[0]}" ] || tag="${tag}_t${tol}"
      echo "== $tag ($(el))"
      # --graph: priced as `run` launches them, one CUDA graph (the profile's graph launch cost).
      if ! "$lasnet" schedule "$spec" --hw "$hw" --kernels --graph --batch "$batch" --density "$density" \
        --streams "$k" --tolerance "$tol" --plan "$out/$tag.plan.json" \
        --trace "$out/$tag.predicted.trace.json" --force >"$out/$tag.schedule.txt" 2>&1; then
        echo "FAILED: schedule $tag"
        cat "$out/$tag.schedule.txt"
        continue
      fi
      # --streams k tries 1..k and keeps the fewest streams reaching the best latency, and two
      # tolerances may choose the same S: a plan with the streams and S of one already run is
      # the same plan.
      s=$(/usr/bin/python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(str(p["streams"]) + "/" + "-".join(map(str, p["granularity"])))' \
        "$out/$tag.plan.json" 2>/dev/null || echo "?")
      if [[ " $used " == *" $s "* ]]; then
        echo "same plan as before (streams/S $s): not run again"
        continue
      fi
      # The dense network once per spec and batch (with the first plan run).
      dense=(--no-dense)
      [ -n "$used" ] || dense=()
      used="$used $s"
      if "$lasnet" run "$out/$tag.plan.json" --spec "$spec" --hw "$hw" --batch "$batch" \
        --runs "$runs" "${dense[@]}" -o "$out/$tag.run.json" \
        --trace "$out/$tag.measured.trace.json" --force >"$out/$tag.run.txt" \
        2>"$out/$tag.run.err"; then
        cat "$out/$tag.run.txt"
      else
        echo "FAILED: run $tag (status $?)"
        tail -20 "$out/$tag.run.err"
      fi
    done
    done
  done
done

echo "== summary ($(el))"
/usr/bin/python3 profiler/scripts/run_plans_summary.py "$out" | tee "$out/summary.md" ||
  echo "FAILED: summary"
echo "done at $(el)"
