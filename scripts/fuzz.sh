#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan+UBSan) in their own build directory and runs
# each one. Usage:
#   scripts/fuzz.sh [--runs N | --seconds S] [--jobs J] [target...]
# Targets: fuzz_spec fuzz_profile fuzz_predict fuzz_import (default: all, one after another).
# Seeds come from examples/, hardware_profiles/, tests/hardening/inputs/ and tests/data/onnx/tiny/
# and fuzz/ (fuzz_import); each target's growing corpus lives in
# build-fuzz/corpus/TARGET, its log in build-fuzz/logs/TARGET.log, crashes in build-fuzz/crashes/.
# Exit status is non-zero if any target found a crash, a leak, UB or a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${LASNET_FUZZ_BUILD_DIR:-build-fuzz}
limit=(-runs=100000)
jobs=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) limit=(-runs="$2"); shift 2 ;;
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    fuzz_spec|fuzz_profile|fuzz_predict|fuzz_import) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_spec fuzz_profile fuzz_predict fuzz_import)

CXX=${CXX:-clang++} cmake -S fuzz -B "$build" -DCMAKE_CXX_COMPILER="${CXX:-clang++}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

mkdir -p "$build/seeds/spec" "$build/seeds/profile" "$build/seeds/predict" "$build/seeds/import" \
         "$build/logs" "$build/crashes"
cp examples/*.json "$build/seeds/spec/"
cp hardware_profiles/*.json "$build/seeds/profile/"
cp tests/data/onnx/tiny/*.onnx tests/data/onnx/fuzz/*.onnx "$build/seeds/import/"
# Predict seeds: every example spec paired with every profile, "----" between them.
for s in examples/*.json; do
  for p in hardware_profiles/*.json; do
    { cat "$s"; printf '\n----\n'; cat "$p"; } \
      > "$build/seeds/predict/$(basename "$s" .json)--$(basename "$p")"
  done
done
# Regression inputs (past findings) are seeds too, so they stay covered.
if compgen -G "tests/hardening/inputs/*" >/dev/null; then
  cp tests/hardening/inputs/*spec* "$build/seeds/spec/" 2>/dev/null || true
  cp tests/hardening/inputs/*profile* "$build/seeds/profile/" 2>/dev/null || true
  cp tests/hardening/inputs/*predict* "$build/seeds/predict/" 2>/dev/null || true
  cp tests/hardening/inputs/*import* "$build/seeds/import/" 2>/dev/null || true
fi

extra=()
[ "$jobs" -gt 1 ] && extra=(-jobs="$jobs" -workers="$jobs")
status=0
for t in "${targets[@]}"; do
  seeds=$build/seeds/${t#fuzz_}
  corpus=$build/corpus/$t
  mkdir -p "$corpus"
  # The ONNX seeds are binary (tests/data/onnx/tiny: one small graph per block pattern, so
  # thousands of inputs run a second; the real models are the unit tests'): no JSON dictionary.
  if [ "$t" = fuzz_import ]; then opts=(-max_len=8192); else opts=(-max_len=16384 -dict=fuzz/json.dict); fi
  echo "fuzz.sh: $t ${limit[*]} (log: $build/logs/$t.log)"
  # detect_leaks: LeakSanitizer; -timeout: an input taking over 10 s counts as a hang.
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     "$build/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 "${opts[@]}" \
       -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" \
       "${extra[@]}" \
       "$corpus" "$seeds" >"$build/logs/$t.log" 2>&1; then
    grep -E '^(stat::|#[0-9]+ *DONE)' "$build/logs/$t.log" | sed "s/^/  $t: /" || true
    echo "  $t: corpus $(ls "$corpus" | wc -l) files"
  else
    status=1
    echo "fuzz.sh: $t FAILED; tail of $build/logs/$t.log:" >&2
    tail -40 "$build/logs/$t.log" >&2
  fi
done
exit $status
