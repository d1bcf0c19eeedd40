#!/usr/bin/env bash
# Redoes the calibrations and the validation reports of issue 4 from committed timings, on any
# machine (no GPU): the fit and every comparison are host code. The timings come from
# profiler/scripts/device_validate.sh (bench/results/*_measurements_<gpu>.json):
#   H100: ResNet-50 training set; the held-out specs.
#   H200: ResNet-50 plus the kernel probes of profiler/probes/ (grouped and depthwise blocks at
#         shapes no shipped spec has); the held-out specs.
# Usage: profiler/scripts/make_reports.sh [BUILD_DIR]   (default build; lasnet must be built)
set -euo pipefail
cd "$(dirname "$0")/../.."
lasnet=${1:-build}/cli/lasnet
r=bench/results
held_out=(examples/resnet101.json examples/regnety_400mf.json examples/regnety_800mf.json
  examples/mobilenetv2.json)
probes=(profiler/probes/direct_kernels.json profiler/probes/depthwise_kernels.json)
grid=(--batch 1,128 --density 0.3,0.5,0.8 --granularity all)
set -x

# calibrate GPU NAME OUT_PROFILE REPORT_BASE SPEC...: fit the measured profile of GPU.
calibrate() {
  local gpu=$1 name=$2 out=$3 report=$4
  shift 4
  "$lasnet" calibrate "$@" --hw "$gpu" "${grid[@]}" --name "$name" \
    --measurements "$r/calibration_measurements_$gpu.json" \
    --report "$report.json" --out "$out" --force >"$report.txt"
}
# validate GPU PROFILE REPORT_BASE [more validate options]
validate() {
  local gpu=$1 hw=$2 report=$3
  shift 3
  "$lasnet" validate "${held_out[@]}" --hw "$hw" "${grid[@]}" \
    --measurements "$r/validation_measurements_$gpu.json" --out "$report.txt" --force "$@"
}

# H100: the issue's protocol (calibrated on ResNet-50 shapes only).
calibrate h100 h100-calibrated hardware_profiles/h100-calibrated.json "$r/calibration_h100" \
  examples/resnet50.json
validate h100 hardware_profiles/h100-calibrated.json "$r/validation_h100" \
  --json "$r/validation_h100.json" --svg "$r/validation_h100.svg"
# The same timings against the uncalibrated measured profile, for the before/after comparison.
validate h100 h100 "$r/validation_h100_uncalibrated" --json "$r/validation_h100_uncalibrated.json"

# H200: the issue's protocol, then with the kernel probes in the training set (the profile
# shipped for the H200: the probes teach the direct kernels that ResNet-50 lacks).
calibrate h200 h200-calibrated-resnet50 "$r/h200-calibrated-resnet50.json" \
  "$r/calibration_h200_resnet50" examples/resnet50.json
validate h200 "$r/h200-calibrated-resnet50.json" "$r/validation_h200_resnet50" \
  --json "$r/validation_h200_resnet50.json"
calibrate h200 h200-calibrated hardware_profiles/h200-calibrated.json "$r/calibration_h200" \
  examples/resnet50.json "${probes[@]}"
# The same training set with each class's compute time fitted apart (--split-compute): better
# kernel errors, worse ranking over S (docs/profiler.md), so not the shipped profile.
calibrate h200 h200-calibrated-split "$r/h200-calibrated-split.json" "$r/calibration_h200_split" \
  examples/resnet50.json "${probes[@]}" --split-compute
validate h200 "$r/h200-calibrated-split.json" "$r/validation_h200_split"
validate h200 hardware_profiles/h200-calibrated.json "$r/validation_h200" \
  --json "$r/validation_h200.json" --svg "$r/validation_h200.svg"
validate h200 h200 "$r/validation_h200_uncalibrated" --json "$r/validation_h200_uncalibrated.json"
# Batch 16 and 64 (device_fresh_batches.sh): timings that no fit and no model change had seen,
# against both H200 fits.
fresh=(--batch 16,64 --density 0.3,0.5,0.8 --granularity all
  --measurements "$r/fresh_measurements_h200.json" --force)
"$lasnet" validate "${held_out[@]}" --hw hardware_profiles/h200-calibrated.json "${fresh[@]}" \
  --out "$r/fresh_h200.txt"
"$lasnet" validate "${held_out[@]}" --hw "$r/h200-calibrated-resnet50.json" "${fresh[@]}" \
  --out "$r/fresh_h200_resnet50.txt"
"$lasnet" validate "${held_out[@]}" --hw "$r/h200-calibrated-split.json" "${fresh[@]}" \
  --out "$r/fresh_h200_split.txt"
