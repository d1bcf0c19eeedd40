#!/usr/bin/env bash
# Redoes the calibrations and the validation reports of issue 4 from committed timings, on any
# machine (no GPU): the fit and every comparison are host code. The timings come from
# profiler/scripts/device_validate.sh (bench/results/*_measurements_<gpu>.json):
#   H100: ResNet-50 training set; the held-out specs.
#   H200: ResNet-50 plus the kernel probes of profiler/probes/ (grouped and depthwise blocks at
#         shapes no shipped spec has); the held-out specs.
# Usage: profiler/scripts/make_reports.sh [BUILD_DIR]   (default build; lasnet must be built)
# The committed reports go to bench/results/ (its README lists them); the others (the text twins
# of the uncalibrated reports, the JSON twins of the ResNet-50-only H200 reports, the
# --split-compute fit) to BUILD_DIR/reports/, outside the tree.
# shellcheck disable=SC2054  # the commas below are lasnet's list syntax, not array separators
set -euo pipefail
cd "$(dirname "$0")/../.."
lasnet=${1:-build}/cli/lasnet
r=bench/results
x=${1:-build}/reports
mkdir -p "$x"
held_out=(examples/resnet101.json examples/regnety_400mf.json examples/regnety_800mf.json
  examples/mobilenetv2.json)
probes=(profiler/probes/direct_kernels.json profiler/probes/depthwise_kernels.json)
grid=(--batch 1,128 --density 0.3,0.5,0.8 --granularity all)
set -x

# calibrate GPU NAME OUT_PROFILE REPORT_JSON REPORT_TXT SPEC...: fit the measured profile of GPU.
calibrate() {
  local gpu=$1 name=$2 out=$3 json=$4 txt=$5
  shift 5
  "$lasnet" calibrate "$@" --hw "$gpu" "${grid[@]}" --name "$name" \
    --measurements "$r/calibration_measurements_$gpu.json" \
    --report "$json" --out "$out" --force >"$txt"
}
# validate GPU PROFILE REPORT_TXT [more validate options]
validate() {
  local gpu=$1 hw=$2 txt=$3
  shift 3
  "$lasnet" validate "${held_out[@]}" --hw "$hw" "${grid[@]}" \
    --measurements "$r/validation_measurements_$gpu.json" --out "$txt" --force "$@"
}

# H100: the issue's protocol (calibrated on ResNet-50 shapes only).
calibrate h100 h100-calibrated hardware_profiles/h100-calibrated.json "$r/calibration_h100.json" \
  "$r/calibration_h100.txt" examples/resnet50.json
validate h100 hardware_profiles/h100-calibrated.json "$r/validation_h100.txt" \
  --json "$r/validation_h100.json" --svg "$r/validation_h100.svg"
# The same timings against the uncalibrated measured profile, for the before/after comparison.
validate h100 h100 "$x/validation_h100_uncalibrated.txt" \
  --json "$r/validation_h100_uncalibrated.json"

# H200: the issue's protocol, then with the kernel probes in the training set (the profile
# shipped for the H200: the probes teach the direct kernels that ResNet-50 lacks).
calibrate h200 h200-calibrated-resnet50 "$r/h200-calibrated-resnet50.json" \
  "$x/calibration_h200_resnet50.json" "$r/calibration_h200_resnet50.txt" examples/resnet50.json
validate h200 "$r/h200-calibrated-resnet50.json" "$r/validation_h200_resnet50.txt" \
  --json "$x/validation_h200_resnet50.json"
calibrate h200 h200-calibrated hardware_profiles/h200-calibrated.json "$r/calibration_h200.json" \
  "$r/calibration_h200.txt" examples/resnet50.json "${probes[@]}"
# The same training set with each class's compute time fitted apart (--split-compute): better
# kernel errors, worse ranking over S (docs/profiler.md), so not the shipped profile.
calibrate h200 h200-calibrated-split "$x/h200-calibrated-split.json" \
  "$x/calibration_h200_split.json" "$x/calibration_h200_split.txt" \
  examples/resnet50.json "${probes[@]}" --split-compute
validate h200 "$x/h200-calibrated-split.json" "$x/validation_h200_split.txt"
validate h200 hardware_profiles/h200-calibrated.json "$r/validation_h200.txt" \
  --json "$r/validation_h200.json" --svg "$r/validation_h200.svg"
validate h200 h200 "$x/validation_h200_uncalibrated.txt" \
  --json "$r/validation_h200_uncalibrated.json"
# Batch 16 and 64 (device_fresh_batches.sh): timings that no fit and no model change had seen,
# against the three H200 fits.
fresh=(--batch 16,64 --density 0.3,0.5,0.8 --granularity all
  --measurements "$r/fresh_measurements_h200.json" --force)
"$lasnet" validate "${held_out[@]}" --hw hardware_profiles/h200-calibrated.json "${fresh[@]}" \
  --out "$r/fresh_h200.txt"
"$lasnet" validate "${held_out[@]}" --hw "$r/h200-calibrated-resnet50.json" "${fresh[@]}" \
  --out "$r/fresh_h200_resnet50.txt"
"$lasnet" validate "${held_out[@]}" --hw "$x/h200-calibrated-split.json" "${fresh[@]}" \
  --out "$x/fresh_h200_split.txt"
