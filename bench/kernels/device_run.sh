#!/usr/bin/env bash
# One device call for the kernels: build lasnet::kernels on the GPU machine (or take prebuilt
# binaries), then run the phases asked for, always in this order, each under a time limit:
#   tests     CPU-reference tests, the kernels' GPU tests, the profiler's GPU test
#   checks    with --parallel-checks: tests and both sanitizers at once, before anything is timed
#   ab        bench_kernels with AB_ARGS twice, a BlockConfig flag at each of two values (--ab)
#   base      bench_kernels with BASE_ARGS in a build of another tree (--base-src/--base-commit),
#             then in this one: the same configurations before and after a change, same call
#   torch     the PyTorch baseline (torch_dense.py, or torch_grouped.py with --grouped): the
#             baseline a user would pick, fp32/tf32/fp16/bf16 at batches 1 and 128, NCHW and
#             channels-last, eager and CUDA-graphed, then torch.compile in the time left before
#             --deadline-s (TORCH_TIMEOUT - 15 s unless --torch-args sets it; docs/kernels.md)
#   bench     the benchmark (bench_kernels, or bench_grouped with --grouped), BENCH_ARGS
#   protocol  profiler/scripts/device_validate.sh, then device_fresh_batches.sh: the profiler's
#             calibration and validation timings (their own build dir; their env: GPU_TAG,
#             BASE_PROFILE, CAL_EXTRA_SPECS; FRESH_BATCH is the fresh call's BATCH)
#   sanitize  compute-sanitizer memcheck and racecheck of the GPU tests in their quick form,
#             in parallel (racecheck skips the large shapes), plus racecheck of --san-case in full
#   summary   the target table: summarize.py kernels.json torch.json (summarize_grouped.py)
# Timings come before the sanitizers so that a call cut short by its allowance keeps them.
#
# Usage, from anywhere in the repository on the GPU machine:
#   OUT=DIR bench/kernels/device_run.sh [options]
# Options:
#   --phases LIST       comma list of the phases above (default tests,torch,bench,sanitize,summary;
#                       --ab and --base-* add their phase)
#   --bench-args ARGS   bench_kernels / bench_grouped options (default "--runs 50")
#   --torch-args ARGS   torch_dense.py / torch_grouped.py options (default none: torch_dense.py's
#                       defaults, every precision at batches 1 and 128)
#   --quick             a smoke run of the timings: torch_dense.py --quick (two blocks and the
#                       network, 10 runs, the networks compiled in the default mode only) and
#                       bench_kernels --runs 10 (unless --bench-args), TORCH_TIMEOUT 120
#   --ab FLAG=A,B       the A/B: `--FLAG A`, then `--FLAG B` (e.g. wgmma=1,0, im2col-conv2=1,0,
#                       library-1x1=0,1, cub-select=0,1); output ab<k>_<FLAG><value>.json
#   --ab-args ARGS      bench_kernels options of the A/B (default "--runs 50 --densities 0.5");
#                       repeat the option for several sets (k = 1, 2, ... in the file names)
#   --base-src DIR      the other tree of the base phase (e.g. a `git archive` of a commit)
#   --base-commit REV   the same, archived here by `git archive REV` (needs the git history on
#                       the GPU machine; else archive it beforehand and pass --base-src)
#   --base-args ARGS    bench_kernels options of the base phase (default "--batches 1 --runs 50
#                       --network 1"); repeatable; outputs base<k>.json (other tree), new<k>.json
#   --tests-filter PAT  run only these GPU test cases in full (doctest -tc), the others quick
#   --no-quick-rest     with --tests-filter: skip the other cases
#   --show PAT          copy the GPU test log's lines matching PAT (grep -E) into log.txt
#   --san-filter PAT    the sanitizers' quick run covers only these test cases
#   --san-case PAT      also racecheck these test cases in full
#   --san-deadline S    skip the sanitizers when more than S seconds have passed
#   --parallel-checks   tests and sanitizers at once, first (= phase "checks", replacing both)
#   --grouped           bench_grouped, torch_grouped.py, summarize_grouped.py
#   --arch A            CUDA architectures (default 90a: the wgmma tiles need it)
#   --build-dir DIR     default build-dev (the base tree builds in DIR-base)
#   --prebuilt DIR      run the binaries in DIR (shared libraries they lack in DIR/lib) instead
#                       of building (not with the base phase)
#   --commit REV        recorded in log.txt and passed on (default: git rev-parse, if any)
# Time limits in seconds (env), per step: TEST_TIMEOUT 200, SAN_TIMEOUT 150, AB_TIMEOUT 90,
#   BASE_TIMEOUT 90, TORCH_TIMEOUT 240 (--grouped 100, --quick 120), BENCH_TIMEOUT 200,
#   PROTOCOL_TIMEOUT 400, FRESH_TIMEOUT 200.
# The dense torch phase's time, estimated (not yet measured) from the H200 call of 2026-12-03
# (device_retime_h200.log: the old script, channels-last eager, 2 precisions, took 33 s): its
# eager and graph variants ~100 s (4 variants x 60 runs of each entry: ~35 s of networks at batch
# 128, ~12 s of blocks, ~6 s at batch 1, plus cudnn.benchmark's searches of ~20 conv shapes per
# layout, precision and batch), then torch.compile until the deadline (a default-mode ResNet-101
# compile is guessed at ~60 s cold: the networks at batch 128 in fp16 and tf32 fit in
# TORCH_TIMEOUT 240). The JSON is rewritten after every entry, so a cut-off keeps the rest. With
# that call's other steps (build 77 s, tests 65 s, bench 89 s, sanitizers 65 s), an issue-21
# call within ~8 minutes is `--phases tests,torch,bench,summary` (~470 s); `--phases torch` with
# TORCH_TIMEOUT=450 gives the compiles the most time.
# The tests phase always runs the reference tests and the profiler's GPU test too. Exit status:
#   0 if every step passed, 1 if one failed (log.txt says which), 2 for a usage error.
# What comes back in $OUT: log.txt (device, clocks, each phase's status and time, test tails),
#   the JSON files named above, kernels.json (grouped.json), torch.json (torch_grouped.json),
#   summary.md (+ summary.json), protocol/ and fresh/ (the two profiler scripts' $OUT), and
#   logs.tgz (every log, re-packed after each phase).
#
# The device calls of the committed results, as this script runs them (docs/kernels.md and
# bench/results/README.md say which files each made; the scripts they ran are in git history at
# ca1a26f under the names given):
#   H100 kernels, 2026-11-25 (device_run.sh, STAGES/PREBUILT/PARALLEL_CHECKS):
#     OUT=out TEST_TIMEOUT=150 SAN_TIMEOUT=150 TORCH_TIMEOUT=100 BENCH_TIMEOUT=200 \
#       bench/kernels/device_run.sh --prebuilt "$PWD/prebuilt" --parallel-checks \
#       --bench-args "--runs 30"   (binaries built elsewhere with LASNET_CUDA_ARCHITECTURES=90)
#   grouped/depthwise kernels, H100, 2026-11-25 (device_run_grouped.sh):
#     OUT=out TEST_TIMEOUT=130 SAN_TIMEOUT=60 BENCH_TIMEOUT=100 TORCH_TIMEOUT=45 \
#       bench/kernels/device_run.sh --grouped --arch 90 \
#       --tests-filter 'GPU: grouped*,GPU: legacy*' --san-filter 'GPU: grouped*' \
#       --bench-args "--runs 50 --warmup 5" --torch-args "--runs 50"
#   im2col A/B, H200, 2026-12-03 (device_run_im2col_ab.sh):
#     OUT=... BENCH_TIMEOUT=170 SAN_TIMEOUT=120 bench/kernels/device_run.sh --ab im2col-conv2=1,0 \
#       --ab-args "--runs 50 --precisions tf32 --densities 0.5 --network 0" --show im2col \
#       --phases tests,ab,torch,bench,sanitize --san-deadline 450
#   wgmma A/B, H200, 2026-12-03 (device_run_wgmma.sh):
#     OUT=... BENCH_TIMEOUT=170 bench/kernels/device_run.sh --ab wgmma=1,0 \
#       --ab-args "--runs 50 --precisions tf32 --densities 0.5 --network 1" --show wgmma_ \
#       --san-case '*wgmma*' --san-deadline 420 --phases tests,ab,torch,bench,sanitize
#   library-1x1 A/B against a base tree, H200, 2026-12-03 (device_run_library1x1_ab.sh; that
#   call ran only the split-K racecheck of the sanitizers, on an uncommitted tree):
#     OUT=... bench/kernels/device_run.sh --phases tests,ab,base,sanitize --ab library-1x1=0,1 \
#       --ab-args "--batches 1 --runs 50 --densities 0.5 --network 1" \
#       --ab-args "--batches 128 --runs 50 --densities 0.5 --network 1" --base-src out/base \
#       --base-args "--batches 1 --runs 50 --densities 0.5 --network 1" \
#       --base-args "--batches 128 --runs 50 --densities 0.5 --network 1" --san-case '*split-K*'
#   split-K 1x1 at batch 1 against the previous commit, H200, 2026-12-03 (device_run_split1x1.sh):
#     OUT=... bench/kernels/device_run.sh --base-commit ca0883c --show ' b1\.' \
#       --san-case '*split-K*' --san-deadline 420 --phases tests,base,torch,bench,sanitize
#   its re-timing, the committed kernels_h200*.json (device_retime_split1x1.sh, then the full grid):
#     OUT=... bench/kernels/device_run.sh --base-commit ca0883c --tests-filter '*split-K*' \
#       --no-quick-rest --phases tests,base,torch,bench,summary
#   the profiler's timings with the kernels' benchmark, H200, 2026-12-03 (an ad-hoc call at
#   628e302, device_retime_h200.log):
#     OUT=... GPU_TAG=h200 BASE_PROFILE=h200 CAL_EXTRA_SPECS="profiler/probes/direct_kernels.json
#       profiler/probes/depthwise_kernels.json" bench/kernels/device_run.sh \
#       --phases tests,torch,bench,protocol,sanitize
set -uo pipefail

die() { echo "device_run.sh: $*" >&2; exit 2; }
phases="tests,torch,bench,sanitize,summary"
bench_args="" torch_args="" ab="" base_src="" base_commit="" quick=0
ab_sets=() base_sets=()
tests_filter="" quick_rest=1 show="" san_filter="" san_case="" san_deadline=""
parallel_checks=0 grouped=0 arch=90a build=build-dev prebuilt="" commit=""
while (($#)); do
  opt=$1
  shift
  case $opt in
    --no-quick-rest) quick_rest=0; continue ;;
    --parallel-checks) parallel_checks=1; continue ;;
    --grouped) grouped=1; continue ;;
    --quick) quick=1; continue ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
  esac
  case $opt in
    --phases | --bench-args | --torch-args | --ab | --ab-args | --base-src | --base-commit | \
      --base-args | --tests-filter | --show | --san-filter | --san-case | --san-deadline | \
      --arch | --build-dir | --prebuilt | --commit)
      (($#)) || die "$opt needs a value" ;;
    *) die "unknown option '$opt' (see the header of this script)" ;;
  esac
  case $opt in
    --phases) phases=$1 ;;
    --bench-args) bench_args=$1 ;;
    --torch-args) torch_args=$1 ;;
    --ab) ab=$1 ;;
    --ab-args) ab_sets+=("$1") ;;
    --base-src) base_src=$1 ;;
    --base-commit) base_commit=$1 ;;
    --base-args) base_sets+=("$1") ;;
    --tests-filter) tests_filter=$1 ;;
    --show) show=$1 ;;
    --san-filter) san_filter=$1 ;;
    --san-case) san_case=$1 ;;
    --san-deadline) san_deadline=$1 ;;
    --arch) arch=$1 ;;
    --build-dir) build=$1 ;;
    --prebuilt) prebuilt=$1 ;;
    --commit) commit=$1 ;;
  esac
  shift
done
: "${OUT:?set OUT to the folder for the results}"
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
[[ -n $prebuilt ]] && prebuilt=$(cd "$prebuilt" && pwd)
[[ -n $base_src ]] && base_src=$(cd "$base_src" && pwd)
cd "$(dirname "$0")/../.." || die "no repository root"
has() { [[ ",$phases," == *",$1,"* ]]; }
IFS=, read -r -a listed <<<"$phases"
for p in "${listed[@]}"; do
  [[ $p =~ ^(tests|checks|ab|base|torch|bench|protocol|sanitize|summary)$ ]] ||
    die "unknown phase '$p' (tests, checks, ab, base, torch, bench, protocol, sanitize, summary)"
done
if [[ -n $ab ]] && ! has ab; then phases+=",ab"; fi
if [[ -n $base_src || -n $base_commit ]] && ! has base; then phases+=",base"; fi
((${#ab_sets[@]})) || ab_sets=("--runs 50 --densities 0.5")
((${#base_sets[@]})) || base_sets=("--batches 1 --runs 50 --network 1")
if ((parallel_checks)) && ! has checks; then phases+=",checks"; fi
if has ab; then
  [[ $ab =~ ^([a-z0-9-]+)=([^,]+),([^,]+)$ ]] || die "--ab wants FLAG=A,B, got '$ab'"
  ab_flag=${BASH_REMATCH[1]} ab_values=("${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}")
fi
if has base; then
  [[ -z $prebuilt ]] || die "the base phase builds; it does not take --prebuilt"
  [[ -n $base_src || -n $base_commit ]] || die "the base phase needs --base-src or --base-commit"
fi
if ((grouped)); then
  bench_exe=bench_grouped bench_json=grouped.json
  torch_py=bench/kernels/torch_grouped.py torch_json=torch_grouped.json
else
  bench_exe=bench_kernels bench_json=kernels.json
  torch_py=bench/kernels/torch_dense.py torch_json=torch.json
fi
[[ -n $commit ]] || commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -z $bench_args ]]; then
  bench_args="--runs 50"
  ((quick)) && bench_args="--runs 10"
fi
if ((grouped)); then
  torch_timeout=${TORCH_TIMEOUT:-100}
else
  # torch_dense.py stops starting compiles that would not end before its deadline, and at it
  # writes what it has and exits 0: 15 s before the phase's limit would kill it.
  torch_timeout=${TORCH_TIMEOUT:-240}
  ((quick)) && torch_timeout=${TORCH_TIMEOUT:-120}
  ((quick)) && torch_args="--quick${torch_args:+ $torch_args}"
  deadline=$((torch_timeout > 30 ? torch_timeout - 15 : torch_timeout * 3 / 4))
  [[ " $torch_args " == *" --deadline-s "* ]] || torch_args+="${torch_args:+ }--deadline-s $deadline"
fi

L=$OUT/log.txt M=$OUT/logs
rm -rf "$M" "$OUT/logs.tgz"
mkdir -p "$M"
t0=$SECONDS
el() { echo $((SECONDS - t0)); }
note() { echo "$*" >>"$L"; }
pack() { tar czf "$OUT/logs.tgz" -C "$OUT" logs; }
# run NAME LIMIT LOG CMD...: one timed step; its status and time go to log.txt.
run() {
  local name=$1 limit=$2 log=$3 rc
  shift 3
  timeout -k 5 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  ((rc == 0)) || : >"$M/failed"  # a file: steps also run in background subshells
  note "$name rc=$rc at $(el) s"
  return $rc
}
smi() { nvidia-smi --query-gpu="$1" --format=csv >>"$L" 2>&1; }

echo "== device $(date -u +%FT%TZ), source commit $commit, phases $phases" >"$L"
smi name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,\
clocks_throttle_reasons.active
nvcc --version 2>/dev/null | tail -1 >>"$L"

# Build (this tree and, for the base phase, the other one, side by side).
cf=(-DCMAKE_BUILD_TYPE=Release -DLASNET_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch")
targets=()
if has tests || has checks || has sanitize; then
  targets+=(test_kernels_reference test_kernels_gpu lasnet_profiler_gpu_tests)
fi
if has ab || has base || has bench; then targets+=("$bench_exe"); fi
jobs=$(nproc)
if has base; then
  if [[ -n $base_commit ]]; then
    base_src=$PWD/$build-base-src
    rm -rf "$base_src" && mkdir -p "$base_src"
    git archive "$base_commit" | tar -x -C "$base_src" ||
      die "cannot archive $base_commit (no git history here? pass --base-src)"
  fi
  (cmake -S "$base_src" -B "$build-base" "${cf[@]}" >"$M/build_base.log" 2>&1 &&
    cmake --build "$build-base" -j $((jobs / 3 + 1)) --target bench_kernels \
      >>"$M/build_base.log" 2>&1
  note "base build ($base_src${base_commit:+, $base_commit}) rc=$? at $(el) s") &
  jobs=$((jobs - jobs / 3))
fi
if [[ -n $prebuilt ]]; then
  note "prebuilt binaries from $prebuilt"
  export LD_LIBRARY_PATH="$prebuilt/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  exe() { echo "$prebuilt/$2"; }
elif ((${#targets[@]})); then
  cmake -S . -B "$build" "${cf[@]}" -DLASNET_GPU_TESTS=ON >"$M/build.log" 2>&1 &&
    cmake --build "$build" -j "$jobs" --target "${targets[@]}" >>"$M/build.log" 2>&1
  rc=$?
  note "build rc=$rc at $(el) s"
  if ((rc != 0)); then
    wait
    grep -E "error" "$M/build.log" | head -30 >>"$L"
    pack
    cat "$L"
    exit 1
  fi
  exe() { find "$1" -name "$2" -type f -perm -u+x | head -1; }
fi
wait
pack

gpu_tests() {
  local G P log=$M/gpu_tests.log
  G=$(exe "$build" test_kernels_gpu)
  run "reference tests" "${TEST_TIMEOUT:-200}" "$log" "$(exe "$build" test_kernels_reference)"
  if [[ -n $tests_filter ]]; then
    run "gpu tests '$tests_filter' (full)" "${TEST_TIMEOUT:-200}" "$log" "$G" -tc="$tests_filter"
    if ((quick_rest)); then
      LASNET_GPU_TEST_QUICK=1 LASNET_GPU_TEST_SKIP_LARGE=1 \
        run "gpu tests, the other cases (quick)" "${TEST_TIMEOUT:-200}" "$log" "$G" \
        -tce="$tests_filter"
    fi
  else
    run "gpu tests" "${TEST_TIMEOUT:-200}" "$log" "$G"
  fi
  grep -E "test cases|assertions" "$log" | tail -4 >>"$L"
  [[ -n $show ]] && grep -E -- "$show" "$log" | head -20 >>"$L"
  P=$(exe "$build" lasnet_profiler_gpu_tests)
  if [[ -x $P ]]; then  # a prebuilt set may lack it
    run "profiler gpu tests" "${TEST_TIMEOUT:-200}" "$M/profiler_gpu_tests.log" "$P"
    tail -2 "$M/profiler_gpu_tests.log" >>"$L"
  else
    note "profiler gpu tests: no lasnet_profiler_gpu_tests, skipped"
  fi
}
# sanitizer NAME TOOL LOG FILTER [ENV...]: compute-sanitizer over the GPU tests (FILTER: -tc).
sanitizer() {
  local name=$1 tool=$2 log=$3 filter=() summary
  [[ -n $4 ]] && filter=(-tc="$4")
  shift 4
  run "$name" "${SAN_TIMEOUT:-150}" "$log" env "$@" compute-sanitizer --tool "$tool" \
    --error-exitcode 9 "$(exe "$build" test_kernels_gpu)" "${filter[@]}"
  summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -1)
  note "  $name: ${summary:-no summary (cut off?)}"
}
sanitizers() {
  sanitizer memcheck memcheck "$M/memcheck.log" "$san_filter" LASNET_GPU_TEST_QUICK=1 &
  sanitizer racecheck racecheck "$M/racecheck.log" "$san_filter" LASNET_GPU_TEST_QUICK=1 \
    LASNET_GPU_TEST_SKIP_LARGE=1 &
  if [[ -n $san_case ]]; then
    sanitizer "racecheck '$san_case' (full)" racecheck "$M/racecheck_case.log" "$san_case" &
  fi
  wait
}

if has checks; then
  gpu_tests &
  sanitizers
  wait
  pack
elif has tests; then
  gpu_tests
  pack
fi
if has ab; then
  k=0
  for s in "${ab_sets[@]}"; do
    k=$((k + 1))
    read -r -a args <<<"$s"
    for v in "${ab_values[@]}"; do
      run "ab$k $ab_flag=$v ($s)" "${AB_TIMEOUT:-90}" "$M/ab${k}_$ab_flag$v.log" \
        "$(exe "$build" bench_kernels)" --out "$OUT/ab${k}_$ab_flag$v.json" "${args[@]}" \
        "--$ab_flag" "$v"
    done
  done
  pack
fi
if has base; then
  k=0
  for s in "${base_sets[@]}"; do
    k=$((k + 1))
    read -r -a args <<<"$s"
    run "base$k ($s)" "${BASE_TIMEOUT:-90}" "$M/base$k.log" \
      "$(exe "$build-base" bench_kernels)" --out "$OUT/base$k.json" "${args[@]}"
    run "new$k ($s)" "${BASE_TIMEOUT:-90}" "$M/new$k.log" \
      "$(exe "$build" bench_kernels)" --out "$OUT/new$k.json" "${args[@]}"
  done
  pack
fi
if has torch; then
  read -r -a args <<<"$torch_args"
  PYTHONUNBUFFERED=1 run "torch ($torch_py${torch_args:+ $torch_args})" "$torch_timeout" \
    "$M/torch.log" python3 "$torch_py" --out "$OUT/$torch_json" "${args[@]}"
  # What torch.compile did (or why not), and a deadline cut-off, in the log's summary.
  grep -E "^torch\.compile |--deadline-s .* passed" "$M/torch.log" | head -20 >>"$L"
  pack
fi
if has bench; then
  read -r -a args <<<"$bench_args"
  run "bench ($bench_exe $bench_args)" "${BENCH_TIMEOUT:-200}" "$M/bench.log" \
    "$(exe "$build" "$bench_exe")" --out "$OUT/$bench_json" "${args[@]}"
  pack
fi
if has protocol; then
  OUT=$OUT/protocol LASNET_COMMIT=$commit run "protocol: device_validate.sh" \
    "${PROTOCOL_TIMEOUT:-400}" "$M/protocol.log" profiler/scripts/device_validate.sh
  OUT=$OUT/fresh LASNET_COMMIT=$commit BATCH=${FRESH_BATCH:-16,64} \
    run "protocol: device_fresh_batches.sh" "${FRESH_TIMEOUT:-200}" "$M/protocol.log" \
    profiler/scripts/device_fresh_batches.sh
  pack
fi
if has sanitize && ! has checks; then
  if [[ -n $san_deadline ]] && (($(el) > san_deadline)); then
    note "sanitizers skipped: $(el) s > --san-deadline $san_deadline"
  else
    sanitizers
  fi
  pack
fi
if has summary && [[ -f $OUT/$bench_json && -f $OUT/$torch_json ]]; then
  if ((grouped)); then
    python3 bench/kernels/summarize_grouped.py "$OUT/$bench_json" "$OUT/$torch_json" \
      >"$OUT/summary.md" 2>>"$M/summary.log"
  else
    python3 bench/kernels/summarize.py "$OUT/$bench_json" "$OUT/$torch_json" \
      --out "$OUT/summary.json" >"$OUT/summary.md" 2>>"$M/summary.log"
  fi
  note "summary rc=$? (summary.md)"
fi
note "end at $(el) s"
smi clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active
pack
failed=0
[[ -f $M/failed ]] && failed=1
rm -rf "$M"
cat "$L"
exit $failed
