"""Every figure of a run_gpu_checks.sh run in one JSON, and a summary on stdout.

Reads the environment report, the tests' JUnit XML and pytest-benchmark's JSON; writes
``{"environment", "tests", "figures", "targets"}``: each figure a flat
``{"benchmark", "name", "value"}`` row (nested figures are dotted names), each target of
issue 11 with the figure it reads and whether it was met (None under the interpreter,
whose figures mean nothing). Exit status 1 when an input is missing or unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# (what, benchmark name, figure name, comparison, threshold): issue 11's targets on an H200.
TARGETS = [
    ("minmax_normalize >= 80% of copy bandwidth, 65,536 x 1,024",
     "test_kernel_bandwidth[minmax_normalize-1024]", "fraction_of_copy", ">=", 0.8),
    ("fused kernel >= 80% of copy bandwidth, 65,536 x 1,024",
     "test_kernel_bandwidth[normalize_stats-1024]", "fraction_of_copy", ">=", 0.8),
    ("pipeline >= 1e9 records/s at width 64, input on the device",
     "test_guide_pipeline_end_to_end[64]", "records_per_s.fused", ">=", 1e9),
    ("pipeline >= 70% of host-to-device bandwidth, input from the host, width 1,024",
     "test_guide_pipeline_end_to_end[1024]", "host_input_fraction_of_h2d", ">=", 0.7),
    ("pipeline faster than torch.compile, width 64",
     "test_guide_pipeline_end_to_end[64]", "speedup_over_torch_compile", ">", 1.0),
    ("pipeline faster than torch.compile, width 1,024",
     "test_guide_pipeline_end_to_end[1024]", "speedup_over_torch_compile", ">", 1.0),
]  # fmt: skip


def flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [
            row for k, v in value.items() for row in flatten(f"{prefix}.{k}" if prefix else k, v)
        ]
    return [(prefix, value)]


def test_counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environment", type=Path, required=True)
    parser.add_argument("--tests", type=Path, required=True)
    parser.add_argument("--bench", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args(argv)
    problems = [
        f"{p} is missing" for p in (args.environment, args.tests, args.bench) if not p.exists()
    ]
    if problems:
        print("summary: " + "; ".join(problems))
        return 1
    environment = json.loads(args.environment.read_text())
    tests = test_counts(args.tests)
    benchmarks = json.loads(args.bench.read_text())["benchmarks"]
    figures = [
        {"benchmark": b["name"], "name": name, "value": value}
        for b in benchmarks
        for name, value in [("median_s", b["stats"]["median"]), *flatten("", b["extra_info"])]
    ]
    by_key = {(f["benchmark"], f["name"]): f["value"] for f in figures}
    interpreted = bool(environment.get("interpreted"))
    targets = []
    for what, bench, name, op, threshold in TARGETS:
        value = by_key.get((bench, name))
        met = None
        if value is not None and not interpreted:
            met = value >= threshold if op == ">=" else value > threshold
        targets.append(
            {"target": what, "benchmark": bench, "figure": name, "value": value, "met": met}
        )
    report = {
        "environment": environment,
        "tests": tests,
        "seconds": args.seconds,
        "figures": figures,
        "targets": targets,
    }
    args.out.write_text(json.dumps(report, indent=1))

    print(f"tests: {tests['passed']} passed, {tests['failures'] + tests['errors']} failed, "
          f"{tests['skipped']} skipped")  # fmt: skip
    for b in benchmarks:
        e = b["extra_info"]
        if "table_over_best" in e:
            print(f"{b['name']:48s} table tile {e['table_tile']}, best {e['best_tile']} "
                  f"(table x{e['table_over_best']:.2f} the best's time)")  # fmt: skip
        elif "fraction_of_copy" in e and "ratio_to_fused" not in e:
            peak = e["fraction_of_peak"]
            print(f"{b['name']:48s} {e['bandwidth_bytes_per_s'] / 1e9:9.1f} GB/s  "
                  f"{100 * e['fraction_of_copy']:5.1f}% of copy  "
                  f"{'-' if peak is None else f'{100 * peak:5.1f}%'} of peak")  # fmt: skip
        elif "ratio_to_fused" in e:
            ratios = ", ".join(f"{k} x{v:.2f}" for k, v in e["ratio_to_fused"].items())
            print(f"{b['name']:48s} time vs fused: {ratios}")
        elif "records_per_s" in e and isinstance(e["records_per_s"], dict):
            r = e["records_per_s"]
            compile_speedup = e.get("speedup_over_torch_compile")
            print(
                f"{b['name']:48s} fused {r['fused'] / 1e6:9.1f} M rec/s | no rings "
                f"{r['apart_by_reference'] / 1e6:.1f} | rings {r['apart_device_rings'] / 1e6:.1f} | "
                f"from host {r['fused_input_from_host'] / 1e6:.1f} "
                f"({100 * e['host_input_fraction_of_h2d']:.0f}% of H2D) | "
                f"x{e['speedup_over_torch_eager']:.2f} eager, "
                + (
                    "torch.compile failed"
                    if compile_speedup is None
                    else f"x{compile_speedup:.2f} torch.compile"
                )
            )
        for name, error in (e.get("errors") or {}).items():
            print(f"{'':48s} {name} did not run: {error[:200]}")
    for t in targets:
        state = {True: "MET", False: "MISSED", None: "n/a"}[t["met"]]
        print(f"target {state:6s} {t['target']} ({t['figure']} = {t['value']})")
    if interpreted:
        print("(interpreter run: the figures prove the plumbing only)")
    if args.seconds is not None:
        print(f"took {args.seconds:.0f} s")
    print(f"every figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
