#!/usr/bin/env bash
# Builds everything and runs the whole test suite with CTest. GPU tests are registered only
# where a CUDA device answers; elsewhere they are skipped, and this script says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${LASNET_TEST_BUILD_DIR:-build-test}
gpu_tests=OFF
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  gpu_tests=ON
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLASNET_WERROR=ON \
  -DLASNET_GPU_TESTS=$gpu_tests ${LASNET_CMAKE_ARGS:-}
cmake --build "$build" -j "$(nproc)"
if [ "$gpu_tests" = OFF ]; then
  echo "=================================================================="
  echo "test.sh: no CUDA device here: GPU tests are SKIPPED (not registered)."
  echo "test.sh: CPU references, predictor, scheduler and CLI tests run."
  echo "=================================================================="
fi
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
