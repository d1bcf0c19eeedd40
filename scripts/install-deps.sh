#!/usr/bin/env bash
# Installs the build dependencies from Debian's packages, only those that are missing.
# Safe to run again; needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(cmake g++ make nlohmann-json3-dev libcli11-dev libfmt-dev libboost-graph-dev
          doctest-dev libbenchmark-dev libonnx-dev libprotobuf-dev pybind11-dev python3-dev
          python3-jsonschema help2man)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all dependencies present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
