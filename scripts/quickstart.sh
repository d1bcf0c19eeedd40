#!/usr/bin/env bash
# Quick start: install what is missing, build (Release), and predict the dense vs dynamic
# latency of ResNet-101 on the V100 profile at density 0.5 and granularity 4-4-2-1. It builds
# everything `cmake --install build --prefix PREFIX` installs (the CLI, the libraries, the CUDA
# backend and the Python module where they are built), not the tests or benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLASNET_BUILD_TESTS=OFF -DLASNET_BUILD_BENCH=OFF \
  >/dev/null
cmake --build build -j "$(nproc)"
./build/cli/lasnet predict examples/resnet101.json --hw v100 --density 0.5 \
  --granularity 4-4-2-1 --per stage
echo
echo "quickstart: the binary is $PWD/build/cli/lasnet; put it on PATH with"
echo "  export PATH=\"$PWD/build/cli:\$PATH\"   or   cmake --install build --prefix ~/.local"
