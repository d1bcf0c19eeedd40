#!/usr/bin/env bash
# The blind accuracy protocol (issue 19) in one device call: profile the GPU, draw two disjoint
# random samples of runnable networks (`lasnet sample --runnable`, seeds fixed below before any
# timing), calibrate the measured profile on sample A plus the kernel probes with every fusion
# form, and validate it on sample B (every S per stage, so the ranking over S is scored) and on
# the shipped specs. Nothing of B is seen before the report; a new round draws a new B (change
# SEED_B, never the model, between seeing B and reporting it).
#   run.log          device, clocks, the sample indexes, the fit and the validation tables
#   results.tar.gz   profile, samples, measurements (JSON), calibrated profile, fit report,
#                    validation JSON/CSV/SVG: every fit and report can be redone off the GPU
# Usage (repo root, on the GPU machine): OUT=/some/dir profiler/scripts/device_protocol.sh
#   GPU_TAG=h100|h200   suffix of the result files (default: from nvidia-smi)
#   SEED_A, SEED_B      the samples' seeds (defaults: the tenth round's, 2026120741 and
#                       2026120743; the first round, on sampler version 2, drew 20261206 and
#                       1206001; the second to ninth 2026120602, ...04, ...05, ...06,
#                       ...01 + ...07, ...13 + ...17, ...21 + ...23, ...31 + ...37). A new
#                       round draws new seeds.
#   COUNT_A, COUNT_B    networks per sample (default 24 and 48)
#   MASKS="uniform ..." the mask models validated on B (default all three; uniform at every S,
#                       the others at each spec's own S)
#   SKIP_TESTS=1        skip the GPU tests
#   PRIOR_SEEDS="A/B"   an earlier round's seeds (24 and 48 networks) and PRIOR_MEASUREMENTS its
#                       timings on this GPU and kernels (saved measurement files): the fit that B
#                       is scored on is then this round's A and probes plus those timings (the
#                       method make_reports.sh ships), and the fit on A alone is scored too
#   UNION_FUSION=0      leave out the union form (union,gather,scatter: conv1 once per needed
#                       pixel) from the fusion calibration and validation (default 1, as in the
#                       fifth round; rounds 1-4 predate it)
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder for the results}"
build=${BUILD_DIR:-build-device}
seed_a=${SEED_A:-2026120741}
seed_b=${SEED_B:-2026120743}
count_a=${COUNT_A:-24}
count_b=${COUNT_B:-48}
read -r -a masks <<<"${MASKS:-uniform clustered varied}"
# The fusion forms calibrate and validate time: every form but union, and union where asked.
fusions=each
[ "${UNION_FUSION:-1}" = 1 ] && fusions="each/union,gather,scatter"
tag=${GPU_TAG:-$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | grep -o -i -E 'h100|h200' | tr 'A-Z' 'a-z' || echo gpu)}
res="$OUT/results"
mkdir -p "$res"
log="$OUT/run.log"
exec > >(tee -a "$log") 2>&1
trap 'tar -C "$OUT" -czf "$OUT/results.tar.gz" results && rm -rf "$res"' EXIT
start=$(date +%s)
el() { echo "$(( $(date +%s) - start )) s"; }

echo "== device ($(date -u +%FT%TZ)), source commit ${LASNET_COMMIT:-unknown}"
echo "seeds: sample A $seed_a (x$count_a), sample B $seed_b (x$count_b), masks on B: ${masks[*]}, fusions: $fusions"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv || true

echo "== build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DLASNET_CUDA=ON -DLASNET_CUDA_ARCHITECTURES=90a \
  -DLASNET_BUILD_BENCH=OFF -DLASNET_GPU_TESTS=ON >"$res/build.log" 2>&1
# The GPU backend (lasnet_gpu) is a library of its own that the GPU commands open.
targets=(lasnet lasnet_gpu)
[ "${SKIP_TESTS:-0}" = 1 ] || targets+=(lasnet_profiler_gpu_tests test_kernels_gpu)
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" >>"$res/build.log" 2>&1 \
  || { tail -40 "$res/build.log"; exit 1; }
echo "built at $(el)"
lasnet=$build/cli/lasnet

echo "== profile"
"$lasnet" profile --name "$tag" --out "$res/$tag.json" --report "$res/profile_$tag.txt" 2>&1 \
  | grep -v '^profile \[' || true
echo "profiled at $(el)"

echo "== samples (drawn before any kernel is timed; sized on the shipped H100 profile, so both"
echo "   GPUs time the same networks)"
"$lasnet" sample --count "$count_a" --seed "$seed_a" --runnable --hw hardware_profiles/h100.json \
  --out "$res/sample_a"
"$lasnet" sample --count "$count_b" --seed "$seed_b" --runnable --hw hardware_profiles/h100.json \
  --out "$res/sample_b"
# The fusion forms are validated on B's first 20 networks (every form of every block is 8x the
# configurations; the call has 10 minutes).
fusion_b=("$res"/sample_b/sample_000*.json "$res"/sample_b/sample_001*.json)

echo "== calibrate on sample A + the kernel probes, every fusion form, each spec's own S"
cal=("$lasnet" calibrate "$res"/sample_a/sample_*.json profiler/probes/*.json --hw "$res/$tag.json"
  --granularity spec --fusion "$fusions" --se --name "$tag-calibrated"
  --save-measurements "$res/calibration_measurements_$tag.json"
  --report "$res/calibration_$tag.json" --out "$res/$tag-calibrated.json")
echo "command: ${cal[*]}"
timeout 420 "${cal[@]}" 2>&1 | grep -v '^timing \[' | tail -60 || echo "(status $?)"
echo "calibrated at $(el)"
scored="$res/$tag-calibrated.json"
if [ -n "${PRIOR_SEEDS:-}" ]; then
  # The fit B is scored on: A and the probes plus the earlier round's timings of the same
  # kernels (calibrate merges the files in order, this round's first, and refuses another
  # kernels version), at every S those timings hold.
  read -r -a prior_files <<<"${PRIOR_MEASUREMENTS:?set PRIOR_MEASUREMENTS with PRIOR_SEEDS}"
  prior_specs=()
  for pair in $PRIOR_SEEDS; do
    "$lasnet" sample --count 24 --seed "${pair%/*}" --runnable --hw hardware_profiles/h100.json \
      --out "$res/prior_${pair%/*}"
    "$lasnet" sample --count 48 --seed "${pair#*/}" --runnable --hw hardware_profiles/h100.json \
      --out "$res/prior_${pair#*/}"
    prior_specs+=("$res/prior_${pair%/*}"/sample_*.json "$res/prior_${pair#*/}"/sample_*.json)
  done
  prior=("$lasnet" calibrate "$res"/sample_a/sample_*.json profiler/probes/*.json "${prior_specs[@]}"
    --hw "$res/$tag.json" --granularity all --measured-only --fusion "$fusions" --se
    --name "$tag-calibrated" --measurements "$res/calibration_measurements_$tag.json")
  for f in "${prior_files[@]}"; do prior+=(--measurements "$f"); done
  prior+=(--report "$res/calibration_prior_$tag.json" --out "$res/$tag-calibrated-prior.json")
  echo "== calibrate on A + the probes + the earlier round ($PRIOR_SEEDS): the fit B is scored on"
  echo "command: ${prior[*]}"
  timeout 240 "${prior[@]}" 2>&1 | tail -30 || echo "(status $?)"
  scored="$res/$tag-calibrated-prior.json"
  echo "calibrated (prior) at $(el)"
fi

for m in "${masks[@]}"; do
  mask_args=(--masks "$m" --granularity spec)
  [ "$m" = uniform ] && mask_args=(--granularity all --record "$res/$tag-calibrated-validated.json")
  echo "== validate on sample B (masks $m)"
  val=("$lasnet" validate "$res"/sample_b/sample_*.json --hw "$scored"
    "${mask_args[@]}" --se
    --save-measurements "$res/validation_measurements_${tag}_$m.json"
    --json "$res/validation_${tag}_$m.json" --csv "$res/validation_${tag}_$m.csv"
    --svg "$res/validation_${tag}_$m.svg" --out "$res/validation_${tag}_$m.txt")
  echo "command: ${val[*]}"
  timeout 150 "${val[@]}" 2>&1 | grep -v '^timing \[' | tail -5 || echo "(status $?)"
  head -40 "$res/validation_${tag}_$m.txt" || true
  echo "validated at $(el)"
done
if [ "$scored" != "$res/$tag-calibrated.json" ]; then
  echo "== the fit on A alone, scored on B's timings above (uniform masks, every S)"
  "$lasnet" validate "$res"/sample_b/sample_*.json --hw "$res/$tag-calibrated.json" \
    --granularity all --se --measured-only \
    --measurements "$res/validation_measurements_${tag}_uniform.json" \
    --out "$res/validation_${tag}_uniform_a_only.txt" 2>&1 | tail -3 || echo "(status $?)"
  head -40 "$res/validation_${tag}_uniform_a_only.txt" || true
fi
echo "== validate: the shipped specs (batch 1 and 128, d 0.5, every S)"
timeout 100 "$lasnet" validate examples/*.json --hw "$scored" --batch 1,128 \
  --density 0.5 --granularity all --se --save-measurements "$res/shipped_measurements_$tag.json" \
  --json "$res/shipped_$tag.json" --out "$res/shipped_$tag.txt" 2>&1 | grep -v '^timing \[' | tail -3 || echo "(status $?)"
head -30 "$res/shipped_$tag.txt" || true
echo "shipped at $(el)"
echo "== validate: torchvision's models as lasnet import reads them (bench/specs/torchvision; batch 1"
echo "   and 32, d 0.5, every S; blocks the kernels do not run are listed as not covered)"
timeout 100 "$lasnet" validate bench/specs/torchvision/*.json --hw "$scored" \
  --batch 1,32 --density 0.5 --granularity all --se \
  --save-measurements "$res/torchvision_measurements_$tag.json" --json "$res/torchvision_$tag.json" \
  --csv "$res/torchvision_$tag.csv" --out "$res/torchvision_$tag.txt" 2>&1 | grep -v '^timing \[' | tail -3 || echo "(status $?)"
head -30 "$res/torchvision_$tag.txt" || true
echo "torchvision at $(el)"
echo "== validate: the fusion forms on sample B's first 20 networks at each spec's S"
timeout 120 "$lasnet" validate "${fusion_b[@]}" --hw "$scored" \
  --granularity spec --fusion "$fusions" --se --save-measurements "$res/fusion_measurements_$tag.json" \
  --json "$res/fusion_$tag.json" --out "$res/fusion_$tag.txt" 2>&1 | grep -v '^timing \[' | tail -3 || echo "(status $?)"
head -30 "$res/fusion_$tag.txt" || true
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "== GPU tests: the mask models' kernels and the profiler's timing (the full sets: bench/kernels/device_run.sh)"
  timeout 90 "$build/tests/kernels/test_kernels_gpu" -tc="*masks*,GPU: basic*,GPU: SE*,*large-region*,*one-kernel*,GPU: union*" >"$res/test_kernels_gpu.log" 2>&1 \
    && echo "kernels GPU mask tests passed" || echo "kernels GPU mask tests FAILED or timed out (status $?)"
  tail -3 "$res/test_kernels_gpu.log"
  timeout 60 "$build/tests/profiler/lasnet_profiler_gpu_tests" 2>&1 | tail -3 || echo "(status $?)"
  echo "tests done at $(el)"
fi
echo "end at $(el)"
nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active --format=csv || true
