#!/usr/bin/env bash
# On a machine with a network: build the wheels run_gpu_checks.sh installs on a GPU
# machine that has none. The three pydotcompute packages (pure Python), and the test
# dependencies such a machine lacks, with theirs (pure-Python wheels, any Python 3).
#
#   benchmarks/gpu/build_wheels.sh OUT_DIR [--packages-only]
#
# --packages-only: the three packages only, offline (hatchling must be installed here).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?give the folder to write the wheels to}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$OUT" \
  packages/core packages/stages packages/gpu-triton
if [[ "${2:-}" != "--packages-only" ]]; then
  # What the GPU machine lacks (it has pytest, pytest-benchmark, hypothesis, numpy...).
  "$PY" -m pip wheel -q -w "$OUT" "pytest-asyncio>=0.24" "pytest-timeout>=2.3" "hatchling>=1.24"
fi
ls "$OUT"
