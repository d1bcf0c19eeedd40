#!/usr/bin/env bash
# The held-out protocol of issue 4 in one device call: build lasnet with CUDA, time the kernels
# over the ResNet-50 training set and calibrate the measured H100 profile, then time the held-out
# specs and validate the calibrated profile against them. Everything lands in $OUT:
#   run.log          device, clocks, build tail, the calibration fit and the validation table
#   results.tar.gz   measurements (JSON), calibrated profile, fit report, validation JSON/CSV/SVG
# The measurement files let every fit and report be redone off the GPU (--measurements FILE).
# Usage (repo root, on the GPU machine): OUT=/some/dir profiler/scripts/device_validate.sh
#   GPU_TAG=h100          suffix of the result files (calibration_measurements_<tag>.json, ...)
#   BASE_PROFILE=h100     the profile to calibrate: a name or file, or "measure" to run
#                         `lasnet profile` first (its profile and log land in results/)
#   CAL_EXTRA_SPECS=...   more specs timed with the training set (e.g. the kernel probes of
#                         profiler/probes/); their timings are saved with ResNet-50's, and the
#                         fit here uses them all: docs/profiler.md says which fits use what
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder for the results}"
build=${BUILD_DIR:-build-device}
batch=${BATCH:-1,128}
density=${DENSITY:-0.3,0.5,0.8}
tag=${GPU_TAG:-h100}
base=${BASE_PROFILE:-h100}
read -r -a extra_specs <<<"${CAL_EXTRA_SPECS:-}"
res="$OUT/results"
mkdir -p "$res"
log="$OUT/run.log"
exec > >(tee -a "$log") 2>&1
# Whatever happens, what was written comes back as one archive.
trap 'tar -C "$OUT" -czf "$OUT/results.tar.gz" results && rm -rf "$res"' EXIT

echo "== device ($(date -u +%FT%TZ)), source commit ${LASNET_COMMIT:-unknown}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv || true

echo "== build"
t0=$(date +%s)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLASNET_CUDA=ON -DLASNET_CUDA_ARCHITECTURES=90a \
  -DLASNET_BUILD_BENCH=OFF >"$res/build.log" 2>&1
cmake --build "$build" -j "$(nproc)" --target lasnet lasnet_profiler_gpu_tests test_kernels_gpu \
  >>"$res/build.log" 2>&1 || { tail -40 "$res/build.log"; exit 1; }
echo "built in $(( $(date +%s) - t0 )) s"
lasnet=$build/cli/lasnet

echo "== GPU tests: the kernels against their CPU references, the profiler's timing"
t0=$(date +%s)
timeout "${KERNEL_TEST_TIMEOUT:-180}" "$build/tests/kernels/test_kernels_gpu" >"$res/test_kernels_gpu.log" 2>&1 \
  && echo "kernels GPU tests passed" || echo "kernels GPU tests FAILED or timed out (status $?)"
tail -4 "$res/test_kernels_gpu.log"
"$build/tests/profiler/lasnet_profiler_gpu_tests" 2>&1 | tail -4
echo "tests took $(( $(date +%s) - t0 )) s"

if [ "$base" = measure ]; then
  echo "== profile the GPU"
  "$lasnet" profile --name "$tag" --out "$res/$tag.json" --report "$res/profile_$tag.txt" 2>&1 \
    | grep -v '^profile \['
  base="$res/$tag.json"
fi

echo "== calibrate on ResNet-50 shapes (batch $batch, density $density, every S)"
t0=$(date +%s)
cal_cmd=("$lasnet" calibrate examples/resnet50.json "${extra_specs[@]}" --hw "$base"
  --batch "$batch" --density "$density" --granularity all --name "$tag-calibrated"
  --save-measurements "$res/calibration_measurements_$tag.json"
  --report "$res/calibration_$tag.json" --out "$res/$tag-calibrated.json")
echo "command: ${cal_cmd[*]}"
"${cal_cmd[@]}"
echo "calibrated in $(( $(date +%s) - t0 )) s"

echo "== validate on the held-out specs"
t0=$(date +%s)
val_cmd=("$lasnet" validate examples/resnet101.json examples/regnety_400mf.json
  examples/regnety_800mf.json examples/mobilenetv2.json --hw "$res/$tag-calibrated.json"
  --batch "$batch" --density "$density" --granularity all
  --save-measurements "$res/validation_measurements_$tag.json"
  --json "$res/validation_$tag.json" --csv "$res/validation_$tag.csv"
  --svg "$res/validation_$tag.svg" --out "$res/validation_$tag.txt")
echo "command: ${val_cmd[*]}"
"${val_cmd[@]}"
cat "$res/validation_$tag.txt"
echo "validated in $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv || true
