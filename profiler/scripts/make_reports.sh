#!/usr/bin/env bash
# Redoes the calibration and the validation report of issue 4 from committed H100 timings, on
# any machine (no GPU): the fit and every comparison are host code. The timings come from
# profiler/scripts/device_validate.sh on the H100 (bench/results/*_measurements_h100.json).
# Usage: profiler/scripts/make_reports.sh [BUILD_DIR]   (default build; lasnet must be built)
set -euo pipefail
cd "$(dirname "$0")/../.."
lasnet=${1:-build}/cli/lasnet
r=bench/results
set -x
"$lasnet" calibrate examples/resnet50.json --hw h100 --batch 1,128 --density 0.3,0.5,0.8 \
  --granularity all --name h100-calibrated \
  --measurements "$r/calibration_measurements_h100.json" \
  --report "$r/calibration_h100.json" --out hardware_profiles/h100-calibrated.json --force \
  > "$r/calibration_h100.txt"
"$lasnet" validate examples/resnet101.json examples/regnety_400mf.json \
  examples/regnety_800mf.json examples/mobilenetv2.json --hw hardware_profiles/h100-calibrated.json \
  --batch 1,128 --density 0.3,0.5,0.8 --granularity all \
  --measurements "$r/validation_measurements_h100.json" \
  --json "$r/validation_h100.json" --svg "$r/validation_h100.svg" \
  --out "$r/validation_h100.txt" --force
# The same timings against the uncalibrated measured profile, for the before/after comparison.
"$lasnet" validate examples/resnet101.json examples/regnety_400mf.json \
  examples/regnety_800mf.json examples/mobilenetv2.json --hw h100 \
  --batch 1,128 --density 0.3,0.5,0.8 --granularity all \
  --measurements "$r/validation_measurements_h100.json" \
  --json "$r/validation_h100_uncalibrated.json" --out "$r/validation_h100_uncalibrated.txt" --force
