#!/usr/bin/env bash
# One call on a GPU machine: install pydotcompute from wheels, check the machine, run the
# gpu tests and the GPU benchmarks, write every figure to one JSON, print a summary.
# No network needed. Under ten minutes on one H100/H200.
#
#   benchmarks/gpu/run_gpu_checks.sh WHEELS_DIR [--out DIR] [--interpret]
#
#   WHEELS_DIR   wheels built beforehand on a networked machine by build_wheels.sh: the three
#                pydotcompute packages and the test dependencies the GPU machine lacks
#   --out DIR    where logs, the benchmark JSON and gpu-figures.json go
#                (default: /tmp/pydotcompute-gpu)
#   --interpret  the same steps on the CPU under TRITON_INTERPRET=1 at small sizes: proves
#                this script end to end without a GPU (CI runs it; its figures mean nothing)
#   PYTHON=...   the interpreter to use (default: python3)
#
# Exit status: 0 when everything passed, 1 when a test or benchmark failed, 2 when the
# machine is not fit to run them (the message says what is missing).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
OUT=/tmp/pydotcompute-gpu
INTERPRET=0
WHEELS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --interpret) INTERPRET=1 ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "run_gpu_checks.sh: unknown option $1" >&2; exit 2 ;;
    *) WHEELS=$1 ;;
  esac
  shift
done
if [[ -z "$WHEELS" || ! -d "$WHEELS" ]]; then
  echo "run_gpu_checks.sh: give the folder of wheels build_wheels.sh made (got '${WHEELS}')" >&2
  exit 2
fi
WHEELS=$(cd "$WHEELS" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SITE="$OUT/site"  # the wheels are installed here, ahead of everything else on sys.path
rm -rf "$SITE"
export PYTHONPATH="$SITE"
export PYTHONNOUSERSITE=1
if [[ $INTERPRET == 1 ]]; then
  export TRITON_INTERPRET=1
else
  unset TRITON_INTERPRET  # the gpu tests and benchmarks need compiled kernels
fi
started=$(date +%s)
step() { echo "== $*"; }

step "python and its headers"
"$PY" - "$INTERPRET" <<'PYEOF' || exit 2
import os, sys, sysconfig, shutil
interpret = sys.argv[1] == "1"
print("python", sys.version.split()[0], "at", sys.executable)
if sys.version_info < (3, 11):
    sys.exit("python 3.11 or newer is needed")
header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
print("Python.h:", header if os.path.exists(header) else "MISSING", "| C compiler:", compiler or "MISSING")
if not interpret and not os.path.exists(header):
    sys.exit("Triton builds its launcher against Python.h: install the python3-dev package")
if not interpret and compiler is None:
    sys.exit("Triton builds its launcher with a C compiler: install gcc")
PYEOF

step "install from $WHEELS"
# The three packages always (no dependencies: the machine has them, checked below), and
# the test dependencies this interpreter cannot import yet.
"$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" --target "$SITE" \
  pydotcompute pydotcompute-stages pydotcompute-triton >"$OUT/install.log" 2>&1 \
  || { cat "$OUT/install.log"; echo "installing the pydotcompute wheels failed"; exit 2; }
missing=$("$PY" - <<'PYEOF'
import importlib.util
needed = {"pytest": "pytest", "pytest_asyncio": "pytest-asyncio", "pytest_timeout": "pytest-timeout",
          "pytest_benchmark": "pytest-benchmark", "hypothesis": "hypothesis", "hatchling": "hatchling"}
print(" ".join(pip for mod, pip in needed.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
if [[ -n "$missing" ]]; then
  # Without their dependencies first: what the machine has (its pytest, its pluggy) stays;
  # then only what they need and the machine lacks or has too old.
  echo "installing missing test dependencies: $missing"
  "$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" --target "$SITE" $missing \
    >>"$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; echo "installing $missing failed"; exit 2; }
fi
"$PY" benchmarks/gpu/complete_deps.py "$SITE" "$WHEELS" || exit 2

step "what runs"
"$PY" - "$SITE" <<'PYEOF' >"$OUT/environment.json" || { cat "$OUT/environment.json"; exit 2; }
import importlib, json, os, sys
site = sys.argv[1]
info, problems = {}, []
for mod in ("numpy", "pluggy", "msgpack", "torch", "triton", "pytest"):
    try:
        info[mod] = importlib.import_module(mod).__version__
    except Exception as exc:  # report every missing module at once
        problems.append(f"{mod}: {exc}")
import pydotcompute, pydotcompute_triton
from pydotcompute.plugins import create_plugin_manager
for module in (pydotcompute, pydotcompute_triton):
    if not os.path.realpath(module.__file__).startswith(os.path.realpath(site)):
        problems.append(f"{module.__name__} comes from {module.__file__}, not the wheels")
pm = create_plugin_manager()
stages, backends = sorted(pm.stages()), sorted(pm.backends())
for name in ("preprocess", "compute"):
    if name not in stages:
        problems.append(f"stage plugin {name!r} not found (stages: {stages})")
for name in ("torch", "triton"):
    if name not in backends:
        problems.append(f"backend {name!r} not found (backends: {backends})")
import torch
from pydotcompute_triton import triton_unavailable_reason
info.update(stages=stages, backends=backends, python=sys.version.split()[0],
            interpreted=os.environ.get("TRITON_INTERPRET") == "1",
            cuda=torch.cuda.is_available(),
            device=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            triton_unavailable=triton_unavailable_reason())
if info["triton_unavailable"]:
    problems.append(info["triton_unavailable"])
info["problems"] = problems
print(json.dumps(info, indent=1))
sys.exit(1 if problems else 0)
PYEOF
"$PY" - "$OUT/environment.json" <<'PYEOF'
import json, sys
e = json.load(open(sys.argv[1]))
print(f"device {e['device']} | torch {e['torch']} | triton {e['triton']} | "
      f"stages {len(e['stages'])} | backends {', '.join(e['backends'])}")
PYEOF

step "tests"
# Warnings are shown, not errors as in CI: a first run on other torch/Triton versions
# must report every figure, and the warnings are in the logs to read.
common=(-p no:cacheprovider --rootdir "$ROOT" -c "$ROOT/pyproject.toml" -q -rfEs -W default)
if [[ $INTERPRET == 1 ]]; then  # the gpu tests skip here: run the GPU path's CPU proofs
  tests=(packages/gpu-triton/tests/test_fused_kernel.py packages/gpu-triton/tests/test_async_sink.py
         packages/gpu-triton/tests/test_dtypes_kept.py -m "interpreter and not gpu")
else
  tests=(packages/gpu-triton/tests -m gpu)  # the gpu-marked tests all live there
fi
"$PY" -m pytest "${common[@]}" "${tests[@]}" --junitxml "$OUT/tests.xml" >"$OUT/tests.log" 2>&1
tests_rc=$?
tail -n 1 "$OUT/tests.log"

step "benchmarks"
"$PY" -m pytest "${common[@]}" benchmarks/gpu -o 'python_files=bench_*.py' \
  --benchmark-json "$OUT/bench.json" --benchmark-columns=median,rounds >"$OUT/bench.log" 2>&1
bench_rc=$?
tail -n 1 "$OUT/bench.log"

step "figures"
"$PY" benchmarks/gpu/summarize.py --environment "$OUT/environment.json" --tests "$OUT/tests.xml" \
  --bench "$OUT/bench.json" --out "$OUT/gpu-figures.json" --seconds $(( $(date +%s) - started ))
summary_rc=$?
if [[ $tests_rc -ne 0 ]]; then grep -E '^(FAILED|ERROR)' "$OUT/tests.log" | head -n 20; fi
if [[ $bench_rc -ne 0 ]]; then tail -n 30 "$OUT/bench.log"; fi
echo "logs and figures: $OUT"
exit $(( tests_rc != 0 || bench_rc != 0 || summary_rc != 0 ))
