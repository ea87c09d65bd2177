#!/usr/bin/env bash
# On a CUDA machine (no network needed): run the gpu-marked tests of pydotcompute-triton
# and the GPU benchmarks, then print a compact summary. Logs and JSON go to OUT_DIR.
#
#   benchmarks/gpu/run_gpu_checks.sh [OUT_DIR]     (default: /tmp/pydotcompute-gpu)
#   PYTHON=python3        interpreter to use
#   WHEELS=/path/wheels   install missing modules from these wheels (pip --no-index)
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
OUT=${1:-/tmp/pydotcompute-gpu}
mkdir -p "$OUT"
unset TRITON_INTERPRET  # the gpu tests need compiled kernels
export PYTHONPATH="packages/core/src:packages/gpu-triton/src${PYTHONPATH:+:$PYTHONPATH}"

missing() {  # pip names of the modules that do not import
  "$PY" - <<'PYEOF'
import importlib.util
mods = {"torch": "torch", "triton": "triton", "numpy": "numpy", "pluggy": "pluggy",
        "msgpack": "msgpack", "pytest": "pytest", "pytest_benchmark": "pytest-benchmark"}
print(" ".join(pip for mod, pip in mods.items() if importlib.util.find_spec(mod) is None))
PYEOF
}
need=$(missing)
if [[ -n "$need" && -n "${WHEELS:-}" ]]; then
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" $need
  need=$(missing)
fi
if [[ -n "$need" ]]; then
  echo "MISSING python modules: $need (set WHEELS=<dir of wheels> to install them offline)"
  exit 2
fi
command -v cc >/dev/null || command -v gcc >/dev/null \
  || echo "WARNING: no C compiler on PATH; Triton needs one to build its launcher"

"$PY" -c 'import torch, triton; print("device:", torch.cuda.get_device_name() if torch.cuda.is_available() else "NO CUDA DEVICE", "| torch", torch.__version__, "| triton", triton.__version__)'

# A minimal pytest configuration: the project's markers, warnings as errors, nothing else
# (the root pyproject also wants pytest-asyncio and pytest-timeout).
INI="$OUT/pytest.ini"
printf '[pytest]\nmarkers =\n    gpu: CUDA\n    interpreter: interpreter\n    slow: slow\n    compile_check: compile\nfilterwarnings = error\n' >"$INI"
common=(-c "$INI" --rootdir . -p no:cacheprovider -p no:asyncio -q)

"$PY" -m pytest "${common[@]}" packages/gpu-triton/tests/test_gpu_device.py -m gpu -rfEs \
  --junitxml "$OUT/gpu-tests.xml" >"$OUT/gpu-tests.log" 2>&1
tests_rc=$?
"$PY" -m pytest "${common[@]}" benchmarks/gpu -o 'python_files=bench_*.py' -W default \
  --benchmark-json "$OUT/bench.json" --benchmark-columns=median,rounds \
  >"$OUT/bench.log" 2>&1
bench_rc=$?

echo "== gpu tests (exit $tests_rc): $(tail -n 1 "$OUT/gpu-tests.log")"
[[ $tests_rc -ne 0 ]] && grep -E '^(FAILED|ERROR)' "$OUT/gpu-tests.log" | head -n 20
echo "== benchmarks (exit $bench_rc)"
[[ $bench_rc -ne 0 ]] && tail -n 20 "$OUT/bench.log"
[[ -s "$OUT/bench.json" ]] && "$PY" - "$OUT/bench.json" <<'PYEOF'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    e, name = b["extra_info"], b["name"]
    if "fraction_of_peak" in e:
        print(f"{name:38s} {e['bandwidth_bytes_per_s'] / 1e9:8.1f} GB/s  "
              f"{100 * e['fraction_of_peak']:5.1f}% of {e['peak_bytes_per_s'] / 1e12:.2f} TB/s "
              f"[{e['peak_source']}]")
    elif "records_per_s" in e:
        print(f"{name:38s} {e['records_per_s'] / 1e6:8.1f} M records/s  "
              f"{1e6 * e['seconds_per_batch']:7.1f} us/batch  ({e['pipeline']})")
PYEOF
echo "logs: $OUT"
exit $(( tests_rc != 0 || bench_rc != 0 ))
