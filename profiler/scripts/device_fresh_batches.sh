#!/usr/bin/env bash
# A check on timings no fit or model change has seen: the held-out specs at batch sizes that no
# calibration or earlier validation measured, validated against the committed calibrated
# profiles as they are. Everything lands in $OUT (run.log, results.tar.gz).
# Usage (repo root, on the GPU machine): OUT=/some/dir profiler/scripts/device_fresh_batches.sh
#   GPU_TAG=h200   which committed profiles to check (<tag>-calibrated.json, and the
#                  ResNet-50-only fit bench/results/<tag>-calibrated-resnet50.json if present)
#   BATCH=16,64    the batch sizes
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder for the results}"
build=${BUILD_DIR:-build-device}
tag=${GPU_TAG:-h200}
batch=${BATCH:-16,64}
res="$OUT/results"
mkdir -p "$res"
exec > >(tee -a "$OUT/run.log") 2>&1
trap 'tar -C "$OUT" -czf "$OUT/results.tar.gz" results && rm -rf "$res"' EXIT
echo "== device ($(date -u +%FT%TZ)), source commit ${LASNET_COMMIT:-unknown}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv || true
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLASNET_CUDA=ON -DLASNET_CUDA_ARCHITECTURES=90a \
  -DLASNET_BUILD_BENCH=OFF -DLASNET_BUILD_TESTS=OFF >"$res/build.log" 2>&1
cmake --build "$build" -j "$(nproc)" --target lasnet >>"$res/build.log" 2>&1 ||
  { tail -40 "$res/build.log"; exit 1; }
lasnet=$build/cli/lasnet
specs=(examples/resnet101.json examples/regnety_400mf.json examples/regnety_800mf.json
  examples/mobilenetv2.json)
grid=(--batch "$batch" --density 0.3,0.5,0.8 --granularity all)
echo "== validate hardware_profiles/$tag-calibrated.json at batch $batch (timings saved)"
"$lasnet" validate "${specs[@]}" --hw "hardware_profiles/$tag-calibrated.json" "${grid[@]}" \
  --save-measurements "$res/fresh_measurements_$tag.json" --out "$res/fresh_$tag.txt"
cat "$res/fresh_$tag.txt"
if [ -f "bench/results/$tag-calibrated-resnet50.json" ]; then
  echo "== the ResNet-50-only fit on the same timings"
  "$lasnet" validate "${specs[@]}" --hw "bench/results/$tag-calibrated-resnet50.json" "${grid[@]}" \
    --measurements "$res/fresh_measurements_$tag.json" --out "$res/fresh_${tag}_resnet50.txt"
  sed -n '/^level/,/^network/p;/^targets/,/^$/p' "$res/fresh_${tag}_resnet50.txt"
fi
