#!/usr/bin/env bash
# Redoes the calibrations and the validation reports from committed timings, on any machine (no
# GPU): the fit and every comparison are host code. The timings come from
# profiler/scripts/device_protocol.sh (each GPU's blind round: bench/results/protocol_*_<gpu>*)
# and, for the H200's earlier rounds, profiler/scripts/device_validate.sh
# (bench/results/*_measurements_h200.json):
#   protocol: random sample A + the kernel probes; random sample B, the shipped specs,
#         torchvision; each fit transferred to the other GPU;
#   H200, earlier: ResNet-50 plus the kernel probes of profiler/probes/ (grouped and depthwise
#         blocks at shapes no shipped spec has); the held-out specs.
# Usage: profiler/scripts/make_reports.sh [BUILD_DIR]   (default build; lasnet must be built)
# The committed reports go to bench/results/ (its README lists them); the others (the text twins
# of the uncalibrated reports, the JSON twins of the ResNet-50-only H200 reports, the
# --split-compute fit) to BUILD_DIR/reports/, outside the tree.
# shellcheck disable=SC2054  # the commas below are lasnet's list syntax, not array separators
# shellcheck disable=SC2046,SC2207  # $(measurements FILE) is meant to split into its options
set -euo pipefail
cd "$(dirname "$0")/../.."
lasnet=${1:-build}/cli/lasnet
r=bench/results
x=${1:-build}/reports
mkdir -p "$x"
held_out=(examples/resnet101.json examples/regnety_400mf.json examples/regnety_800mf.json
  examples/mobilenetv2.json)
probes=(profiler/probes/direct_kernels.json profiler/probes/depthwise_kernels.json)
# The protocol's probes: also the library probe (wide cuBLASLt GEMMs), timed into both GPUs'
# calibration timings after the ninth round (docs/profiler.md, "Ninth round").
protocol_probes=(profiler/probes/depthwise_kernels.json profiler/probes/direct_kernels.json
  profiler/probes/library_kernels.json)
grid=(--batch 1,128 --density 0.3,0.5,0.8 --granularity all)
set -x

# measurements FILE: --measurements FILE, plus --measured-only where FILE was timed before the
# kernels ran separable blocks (MobileNetV2's expansion-1 block, 07edfba): no key of it ends in
# " separable", and the reports leave those blocks out, listed as not covered, as they did then.
measurements() {
  echo --measurements "$1"
  grep -q ' separable' "$1" || echo --measured-only
}

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
    $(measurements "$r/validation_measurements_$gpu.json") --out "$txt" --force "$@"
}

# The blind protocol of issue 19 (profiler/scripts/device_protocol.sh, sampler version 3,
# UNION_FUSION=1), on every GPU it ran on (bench/results/protocol_*_<gpu>*), each with its own
# round's seeds: the H100 the seventeenth round (2026-12-07, A 2026120811, B 2026120813, code and
# model of af8ae58), the H200 the eleventh (2026-12-07, A 2026120751, B 2026120753, code of 16c7a04). The
# measured profile is fitted on random sample A plus the kernel probes (every fusion form, each
# spec's own S) and validated on a disjoint random sample B (uniform masks at every S; clustered
# and varied masks at each spec's S; the fusion forms on B's first 20), on the shipped specs and
# on torchvision's models as imported (bench/specs/torchvision). RegNetY's SE is timed (--se).
# The samples are redrawn from their seeds: `lasnet sample` is a pure function of the seed.
declare -A seed_a=([h100]=2026120821 [h200]=2026120751) seed_b=([h100]=2026120823 [h200]=2026120753)
for gpu in h100 h200; do
  for which in a b; do
    if [ "$which" = a ]; then seed=${seed_a[$gpu]} count=24; else seed=${seed_b[$gpu]} count=48; fi
    "$lasnet" sample --count "$count" --seed "$seed" --runnable --hw hardware_profiles/h100.json \
      --out "$x/samples/$gpu/$which" --force >/dev/null
  done
done
# A GPU's fit also takes an earlier round's timings of the same kernels on that GPU, where
# committed (protocol_prior_measurements_<gpu>.json: the H100's sixteenth round, A 2026120801 and
# B 2026120803 with uniform masks at every S; calibrate merges it after the round's own timings):
# A plus 72 more networks, while the round's own B stays out of the fit (docs/profiler.md,
# "Sixteenth round"). Since the seventeenth round the device call fits the same way
# (device_protocol.sh PRIOR_SEEDS), so this fit is the one its log scores.
declare -A prior_seeds=([h100]="2026120811 2026120813")
protocol() {
  local gpu=$1 s=$x/samples/$1
  local specs=("$s"/a/sample_*.json "${protocol_probes[@]}") fit=(--granularity spec)
  local timings=(--measurements "$r/protocol_calibration_measurements_$gpu.json")
  if [ -f "$r/protocol_prior_measurements_$gpu.json" ]; then
    local prior_a prior_b
    read -r prior_a prior_b <<<"${prior_seeds[$gpu]}"
    "$lasnet" sample --count 24 --seed "$prior_a" --runnable --hw hardware_profiles/h100.json \
      --out "$s/prior_a" --force >/dev/null
    "$lasnet" sample --count 48 --seed "$prior_b" --runnable --hw hardware_profiles/h100.json \
      --out "$s/prior_b" --force >/dev/null
    specs+=("$s"/prior_a/sample_*.json "$s"/prior_b/sample_*.json)
    # Every S of B's blocks; A's are at each spec's S, the only ones timed.
    fit=(--granularity all --measured-only)
    timings+=(--measurements "$r/protocol_prior_measurements_$gpu.json")
  fi
  "$lasnet" calibrate "${specs[@]}" --hw "$r/protocol_profile_$gpu.json" "${fit[@]}" \
    --fusion each/union,gather,scatter --se --name "$gpu-calibrated" "${timings[@]}" \
    --report "$r/protocol_calibration_$gpu.json" --out "$x/$gpu-calibrated.json" --force \
    >"$r/protocol_calibration_$gpu.txt"
  # B with uniform masks at every S; the profile shipped is the one so scored (--record).
  "$lasnet" validate "$s"/b/sample_*.json --hw "$x/$gpu-calibrated.json" --granularity all --se \
    --measurements "$r/protocol_validation_measurements_${gpu}_uniform.json" \
    --svg "$r/protocol_validation_${gpu}_uniform.svg" --record "hardware_profiles/$gpu-calibrated.json" \
    --out "$r/protocol_validation_${gpu}_uniform.txt" --force
  for m in clustered varied; do
    "$lasnet" validate "$s"/b/sample_*.json --hw "$x/$gpu-calibrated.json" --granularity spec --se \
      --masks "$m" --measurements "$r/protocol_validation_measurements_${gpu}_$m.json" \
      --out "$r/protocol_validation_${gpu}_$m.txt" --force
  done
  "$lasnet" validate "$s"/b/sample_000*.json "$s"/b/sample_001*.json --hw "$x/$gpu-calibrated.json" \
    --granularity spec --fusion each/union,gather,scatter --se \
    --measurements "$r/protocol_fusion_measurements_$gpu.json" \
    --out "$r/protocol_fusion_$gpu.txt" --force
  "$lasnet" validate examples/*.json --hw "$x/$gpu-calibrated.json" --batch 1,128 --density 0.5 \
    --granularity all --se $(measurements "$r/protocol_shipped_measurements_$gpu.json") \
    --out "$r/protocol_shipped_$gpu.txt" --force
  "$lasnet" validate bench/specs/torchvision/*.json --hw "$x/$gpu-calibrated.json" --batch 1,32 \
    --density 0.5 --granularity all --se \
    $(measurements "$r/protocol_torchvision_measurements_$gpu.json") \
    --out "$r/protocol_torchvision_$gpu.txt" --force
}
gpus=()
for gpu in h100 h200; do
  [ -f "$r/protocol_calibration_measurements_$gpu.json" ] && gpus+=("$gpu") && protocol "$gpu"
done

# The datasheet GPUs no calibration reaches (the LASNet paper's V100 and TX2, and others) get the
# H100 fit transferred, marked as such (source "transferred"; not validated: no timings of them).
# They keep their own launch figure (--target-launch): the H100's launch cost carries to the
# H200 (docs/profiler.md, "Calibration that travels"), but nothing says what another
# architecture's front end and host take per launch, and the datasheet figure is that guess.
for g in v100 tx2 rtx3090 rtx3060 jetson-nano; do
  "$lasnet" hw transfer --calibration hardware_profiles/h100-calibrated.json --to "$g" \
    --target-launch --name "$g-transferred" --out "hardware_profiles/$g-transferred.json" --force
done

# Calibration that travels: each GPU's fit on sample A applied to every other protocol GPU's
# `lasnet profile` output alone (lasnet hw transfer), scored on that GPU's timings of sample B
# and the shipped specs: no timing of the target GPU in the fit.
for from in "${gpus[@]}"; do
  for to in "${gpus[@]}"; do
    [ "$from" = "$to" ] && continue
    s=$x/samples/$to
    "$lasnet" hw transfer --calibration "hardware_profiles/$from-calibrated.json" \
      --to "$r/protocol_profile_$to.json" --out "$x/$to-from-$from.json" --force
    "$lasnet" validate "$s"/b/sample_*.json --hw "$x/$to-from-$from.json" --granularity all --se \
      --measurements "$r/protocol_validation_measurements_${to}_uniform.json" \
      --out "$r/transfer_${from}_to_$to.txt" --force
    "$lasnet" validate examples/*.json --hw "$x/$to-from-$from.json" --batch 1,128 --density 0.5 \
      --granularity all --se $(measurements "$r/protocol_shipped_measurements_$to.json") \
      --out "$x/transfer_${from}_to_${to}_shipped.txt" --force
  done
done
# The earlier H200 reports below (ResNet-50 and the kernel probes, timed on the kernels of
# 4060e05) are kept up to date with the model; their fit is the shipped H200 profile only where
# the H200 has no protocol round.
if [ -f "$r/protocol_calibration_measurements_h200.json" ]; then
  h200_fit=$x/h200-calibrated-resnet50-probes.json
  record=()
else
  h200_fit=hardware_profiles/h200-calibrated.json
  record=(--record hardware_profiles/h200-calibrated.json)
fi

# H200: the issue's first protocol, then with the kernel probes in the training set (the profile
# shipped for the H200 until it had a protocol round: the probes teach the direct kernels that
# ResNet-50 lacks).
calibrate h200 h200-calibrated-resnet50 "$r/h200-calibrated-resnet50.json" \
  "$x/calibration_h200_resnet50.json" "$r/calibration_h200_resnet50.txt" examples/resnet50.json
validate h200 "$r/h200-calibrated-resnet50.json" "$r/validation_h200_resnet50.txt" \
  --json "$x/validation_h200_resnet50.json"
calibrate h200 h200-calibrated "$h200_fit" "$r/calibration_h200.json" \
  "$r/calibration_h200.txt" examples/resnet50.json "${probes[@]}"
# The same training set with each class's compute time fitted apart (--split-compute): better
# kernel errors, worse ranking over S (docs/profiler.md), so not the shipped profile.
calibrate h200 h200-calibrated-split "$x/h200-calibrated-split.json" \
  "$x/calibration_h200_split.json" "$x/calibration_h200_split.txt" \
  examples/resnet50.json "${probes[@]}" --split-compute
validate h200 "$x/h200-calibrated-split.json" "$x/validation_h200_split.txt"
validate h200 "$h200_fit" "$r/validation_h200.txt" "${record[@]}" \
  --json "$r/validation_h200.json" --svg "$r/validation_h200.svg"
validate h200 h200 "$x/validation_h200_uncalibrated.txt" \
  --json "$r/validation_h200_uncalibrated.json"
# Batch 16 and 64 (device_fresh_batches.sh): timings that no fit and no model change had seen,
# against the three H200 fits.
fresh=(--batch 16,64 --density 0.3,0.5,0.8 --granularity all
  $(measurements "$r/fresh_measurements_h200.json") --force)
"$lasnet" validate "${held_out[@]}" --hw "$h200_fit" "${fresh[@]}" \
  --out "$r/fresh_h200.txt"
"$lasnet" validate "${held_out[@]}" --hw "$r/h200-calibrated-resnet50.json" "${fresh[@]}" \
  --out "$r/fresh_h200_resnet50.txt"
"$lasnet" validate "${held_out[@]}" --hw "$x/h200-calibrated-split.json" "${fresh[@]}" \
  --out "$x/fresh_h200_split.txt"
