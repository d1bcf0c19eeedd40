#!/usr/bin/env bash
# compute-sanitizer memcheck and racecheck over the FULL GPU test set of lasnet::kernels
# (test_kernels_gpu): one sanitizer run per test case and tool, so that a slow case (racecheck
# of the large, 128-row, wgmma and 16-channel cases takes many minutes) neither hides the others
# nor loses their logs when it is cut off. Nothing is skipped unless asked: LASNET_GPU_TEST_QUICK
# and LASNET_GPU_TEST_SKIP_LARGE are unset unless --quick / --skip-large.
#
# Usage: kernels/scripts/sanitize.sh [options] TEST_BINARY LOG_DIR
#   TEST_BINARY  the test_kernels_gpu executable (e.g. build/tests/kernels/test_kernels_gpu)
#   LOG_DIR      created if missing; gets memcheck/<case>.log, racecheck/<case>.log and
#                summary.txt (one line per run as it finishes: tool, status, seconds, the
#                tool's summary line, doctest's counts, the case); existing logs are overwritten
# Options:
#   --tools LIST     memcheck,racecheck (default both)
#   --filter PAT     only test cases whose name matches PAT (grep -E), e.g. 'union|wgmma'
#   --jobs N         runs at once (default 2; they share the GPU)
#   --timeout S      per run (default 3600); a run cut off is listed as TIMEOUT
#   --quick          LASNET_GPU_TEST_QUICK=1 (the reduced set)
#   --skip-large     LASNET_GPU_TEST_SKIP_LARGE=1 (what the racecheck of device_run.sh skips)
# Exit status: 0 if every run passed (0 errors, 0 hazards), 1 if any failed or timed out, 2 for
# a usage error. Needs compute-sanitizer on PATH (or $CUDA_HOME/bin, /usr/local/cuda/bin).
set -euo pipefail

die() {
  echo "sanitize.sh: $*" >&2
  exit 2
}
tools="memcheck,racecheck" filter="" jobs=2 timeout_s=3600 quick=0 skip_large=0
while (($# > 0)); do
  case $1 in
    --tools) tools=${2:?}; shift 2 ;;
    --filter) filter=${2:?}; shift 2 ;;
    --jobs) jobs=${2:?}; shift 2 ;;
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --quick) quick=1; shift ;;
    --skip-large) skip_large=1; shift ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
(($# == 2)) || die "usage: sanitize.sh [options] TEST_BINARY LOG_DIR"
bin=$(realpath "$1") dir=$2
[[ -x $bin ]] || die "$bin is not an executable"
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs wants a positive integer"
for t in ${tools//,/ }; do
  [[ $t =~ ^(memcheck|racecheck)$ ]] || die "unknown tool '$t' (memcheck, racecheck)"
done
san=$(command -v compute-sanitizer || true)
for d in "${CUDA_HOME:-/usr/local/cuda}/bin" /usr/local/cuda/bin; do
  [[ -z $san && -x $d/compute-sanitizer ]] && san=$d/compute-sanitizer
done
[[ -n $san ]] || die "compute-sanitizer not found"
mkdir -p "$dir"
dir=$(realpath "$dir")

# The test cases, as doctest lists them.
mapfile -t cases < <("$bin" --list-test-cases --no-version 2>/dev/null |
  grep -v -e '^\[doctest\]' -e '^=*$' | sed -e 's/[[:space:]]*$//' | grep -v '^$' |
  { if [[ -n $filter ]]; then grep -E -- "$filter" || true; else cat; fi; })
((${#cases[@]} > 0)) || die "no test case of $bin matches '${filter:-.}'"

env_args=()
((quick)) && env_args+=(LASNET_GPU_TEST_QUICK=1)
((skip_large)) && env_args+=(LASNET_GPU_TEST_SKIP_LARGE=1)

# run_one TOOL CASE: one sanitizer run, its log, and its line for summary.txt (in a part file).
run_one() {
  local tool=$1 name=$2
  local slug
  slug=$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '_' | tr -s '_' | cut -c1-80)
  mkdir -p "$dir/$tool"
  local log=$dir/$tool/$slug.log
  # doctest splits -tc at commas: match any character there instead.
  local pattern=${name//,/?}
  local start=$SECONDS status rc=0
  {
    echo "# $tool: $name"
    echo "# $(date -u +%FT%TZ) $san --tool $tool --error-exitcode 1 $bin -tc=$pattern ${env_args[*]}"
  } >"$log"
  env -u LASNET_GPU_TEST_QUICK -u LASNET_GPU_TEST_SKIP_LARGE "${env_args[@]}" \
    timeout "$timeout_s" "$san" --tool "$tool" --error-exitcode 1 "$bin" "-tc=$pattern" \
    >>"$log" 2>&1 || rc=$?
  # A pattern that selected no case would pass vacuously.
  if ((rc == 0)) && ! grep -qE '^\[doctest\] test cases: +[1-9]' "$log"; then rc=3; fi
  case $rc in
    0) status=PASS ;;
    3) status=NO_CASE ;;
    124) status=TIMEOUT ;;
    *) status="FAIL($rc)" ;;
  esac
  # The tool's own verdict, and doctest's, for the summary line.
  local verdict
  verdict=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tail -1 | sed 's/^=* *//')
  local tests
  tests=$(grep -E '^\[doctest\] (test cases|assertions):' "$log" | tr -s ' ' |
    sed 's/\[doctest\] //' | paste -sd ' ' || true)
  # One short append per run (atomic), so a call cut off keeps the lines of finished runs.
  printf '%-9s %-11s %6ss  %s | %s | %s\n' "$tool" "$status" $((SECONDS - start)) \
    "${verdict:-no summary}" "${tests:-no doctest summary}" "$name" | tee -a "$dir/summary.txt"
}

echo "sanitize.sh: ${#cases[@]} test case(s) x ${tools}, ${jobs} at a time, logs in $dir"
{
  echo "# compute-sanitizer over $bin ($(date -u +%FT%TZ)); env: ${env_args[*]:-full set}"
  echo "# $("$san" --version 2>/dev/null | tail -1 || true)"
} >"$dir/summary.txt"
pids=()
for tool in ${tools//,/ }; do
  for name in "${cases[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
    run_one "$tool" "$name" &
    pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p" || true; done

echo "# finished $(date -u +%FT%TZ)" >>"$dir/summary.txt"
if grep -v '^#' "$dir/summary.txt" | grep -qvE '^(memcheck|racecheck) +PASS '; then
  echo "sanitize.sh: some runs failed or timed out (summary.txt)" >&2
  exit 1
fi
