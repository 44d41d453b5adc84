#!/usr/bin/env bash
# Installs what flopcut needs on a fresh Debian 12 machine, and only what is missing.
# Usage: tools/install-deps.sh [build|test|demo|bench]   (each level includes the ones before it)
set -euo pipefail
level=${1:-build}

build_pkgs="gcc make pkg-config libonnx-dev protobuf-c-compiler libprotobuf-c-dev libdnnl-dev zlib1g-dev libomp-dev"
test_pkgs="clang libclang-rt-14-dev"
demo_pkgs="dataset-fashion-mnist python3-torch python3-torchvision python3-numpy"

want="$build_pkgs"
case "$level" in
  build) ;;
  test) want="$want $test_pkgs $demo_pkgs" ;;
  demo|bench) want="$want $test_pkgs $demo_pkgs" ;;
  *) echo "install-deps: unknown level '$level' (build|test|demo|bench)" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages:$missing (run as root or install them)" >&2; exit 1
  fi
  echo "install-deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ "$level" != build ]; then
  # The test oracle: ONNX Runtime and the onnx package (backend node tests), from PyPI.
  if ! python3 -c "import onnx, onnxruntime, numpy, pytest" 2>/dev/null; then
    echo "install-deps: installing onnx onnxruntime numpy pytest (pip)"
    python3 -m pip install -q --disable-pip-version-check onnx onnxruntime numpy pytest
  fi
fi
