"""CPU performance at the floor (issue 12): every comparison side by side in one run.

- columnar, end to end as the CLI runs it (``pydotcompute run examples/guide.toml
  --synthetic 1000000 --json``, a subprocess, by wall time and by its report's own
  figures) against bare NumPy doing the same two operations on the same 4,096-row chunks
  (target: at least 0.9x) and against Bytewax's batched dataflow (target: ahead of it):
  wall time against each as a script in a fresh interpreter (``floor_script.py``), the
  report's run time against each in this process;
- per-message, one record per message through the Python API, against Bytewax's
  per-record dataflow (target: at least 3x);
- echo p50 round trip against two bare ``asyncio.Queue``\\ s and one task, in the same
  process on the same loop, on asyncio's loop and on uvloop's (target: at most 1.5x);
- the guide's host-relayed pipeline: the runtime's cost per message against the cost of
  the guide's own stage code (target: at most 40% of it).

Contenders alternate round by round (see ``_floor_rounds``); each checks that it computed
what the others did. Figures, ratios and targets are in each benchmark's extra_info and
in the summary printed at the end; the targets are reported, not asserted. Run:

    pytest benchmarks/bench_floor.py -o python_files='bench_*.py' --benchmark-only

PYDOTCOMPUTE_FLOOR_ROUNDS (3) sets the rounds of the columnar and per-message comparisons
(the relay gets 2 x that - 1); PYDOTCOMPUTE_FLOOR_PER_MESSAGE_RECORDS (200,000) the
per-message records. The columnar figures always use 1,000,000 records.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvloop
from _floor_columnar import (
    CHUNK,
    WIDTH,
    bare_numpy,
    bytewax_batched,
    cli_command,
    cli_results_total,
    cli_round,
    run_cli,
    script_round,
    synthetic_chunks,
)
from _floor_echo import bare_asyncio, p50_us, pings, runtime_echo
from _floor_per_message import bytewax_per_record, guide_pipeline, pipeline_per_message
from _floor_relay import host_relayed, stage_code_alone
from _floor_report import Figure, Ratio, install_summary, report
from _floor_rounds import Round, check_same_results, contender_info, median_seconds, side_by_side
from bench_core import PIPELINE_MESSAGES, ROUND_TRIPS
from bench_stages_pipeline import _discovered_plugins
from guide_pipeline import make_inputs

ROUNDS = int(os.environ.get("PYDOTCOMPUTE_FLOOR_ROUNDS", "3"))
ECHO_ROUNDS = 5  # a round is a fraction of a second
# A relay round is about a second, and its ratio is a small difference of two figures of
# this noisy machine: more rounds.
RELAY_ROUNDS = 2 * ROUNDS - 1
CLI_RECORDS = 1_000_000
PER_MESSAGE_RECORDS = int(os.environ.get("PYDOTCOMPUTE_FLOOR_PER_MESSAGE_RECORDS", "200000"))
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest) -> None:
    install_summary(request.config)


def _rate(records: int, rounds: list[Round]) -> str:
    return f"{records / median_seconds(rounds):,.0f} records/s"


def test_columnar_cli(benchmark: Any, tmp_path: Path) -> None:
    cli_total, check_wall = cli_results_total(CLI_RECORDS, tmp_path)
    drawn = list(synthetic_chunks(CLI_RECORDS))
    reports: list[dict[str, Any]] = []

    def cli() -> Round:
        timed, cli_report = cli_round(CLI_RECORDS)
        reports.append(cli_report)
        return timed

    def start_up() -> Round:
        wall, _ = run_cli(1)
        return Round(wall, 1, None)

    script_runs: dict[str, list[Round]] = {"numpy_script_run": [], "bytewax_script_run": []}

    def script(engine: str) -> Round:
        wall, own = script_round(engine, CLI_RECORDS)
        script_runs[f"{engine}_script_run"].append(own)
        return wall

    results = side_by_side(
        benchmark,
        ("cli", cli),
        {
            "numpy_drawing": lambda: bare_numpy(synthetic_chunks(CLI_RECORDS)),
            "numpy_drawn": lambda: bare_numpy(drawn),
            "bytewax_batched": lambda: bytewax_batched(CLI_RECORDS),
            "numpy_script": lambda: script("numpy"),
            "bytewax_script": lambda: script("bytewax"),
            "cli_start_up": start_up,
        },
        ROUNDS,
    )
    start_up_rounds = results.pop("cli_start_up")
    results["cli_check_run_writing_npy"] = [Round(check_wall, CLI_RECORDS, cli_total)]
    check_same_results(results, rel=1e-9)
    in_run = [Round(r["seconds"], r["results"], None) for r in reports]

    cli_s = median_seconds(results["cli"])
    in_run_s = median_seconds(in_run)
    drawing_s = median_seconds(results["numpy_drawing"])
    bytewax_s = median_seconds(results["bytewax_batched"])
    numpy_script_s = median_seconds(results["numpy_script"])
    bytewax_script_s = median_seconds(results["bytewax_script"])
    contenders = {
        name: contender_info(rounds, "records", CLI_RECORDS)
        for name, rounds in {**results, **script_runs}.items()
    }
    contenders["cli_report"] = contender_info(in_run, "records", CLI_RECORDS)
    contenders["cli_start_up"] = contender_info(start_up_rounds)
    benchmark.extra_info.update(
        command=" ".join(cli_command(CLI_RECORDS)),
        records=CLI_RECORDS,
        width=WIDTH,
        chunk=CHUNK,
        rounds=ROUNDS,
        contenders=contenders,
        cli_report_per_stage={
            name: stage["records_per_s"] for name, stage in reports[-1]["stages"].items()
        },
    )
    report(
        benchmark,
        "columnar, 1M x 64 float32",
        [
            Figure(
                "CLI, wall time (subprocess, start to exit)", _rate(CLI_RECORDS, results["cli"])
            ),
            Figure("CLI, its report's own run time", _rate(CLI_RECORDS, in_run)),
            Figure(
                "CLI start-up and exit (--synthetic 1, wall)",
                f"{median_seconds(start_up_rounds):.3f} s",
            ),
            Figure("bare NumPy script, wall", _rate(CLI_RECORDS, results["numpy_script"])),
            Figure(
                "bare NumPy script, its own run time",
                _rate(CLI_RECORDS, script_runs["numpy_script_run"]),
            ),
            Figure("Bytewax script, wall", _rate(CLI_RECORDS, results["bytewax_script"])),
            Figure(
                "Bytewax script, its own run time",
                _rate(CLI_RECORDS, script_runs["bytewax_script_run"]),
            ),
            Figure(
                "bare NumPy in process, drawing the chunks",
                _rate(CLI_RECORDS, results["numpy_drawing"]),
            ),
            Figure(
                "bare NumPy in process, chunks drawn beforehand",
                _rate(CLI_RECORDS, results["numpy_drawn"]),
            ),
            Figure(
                "Bytewax in process, drawing the chunks",
                _rate(CLI_RECORDS, results["bytewax_batched"]),
            ),
        ],
        [
            Ratio.floor(
                "CLI wall / bare NumPy script wall",
                numpy_script_s / cli_s,
                0.9,
                "records/s end to end: each a fresh interpreter, start to exit",
            ),
            Ratio.floor(
                "CLI wall / Bytewax script wall",
                bytewax_script_s / cli_s,
                1.0,
                "records/s end to end: each a fresh interpreter, start to exit",
            ),
            Ratio.floor(
                "CLI report / bare NumPy in process",
                drawing_s / in_run_s,
                0.9,
                "records/s: the CLI's own run time vs NumPy's loop in this process",
            ),
            Ratio.floor(
                "CLI report / Bytewax in process",
                bytewax_s / in_run_s,
                1.0,
                "records/s: the CLI's own run time vs Bytewax's run in this process",
            ),
            Ratio.floor(
                "CLI wall / bare NumPy in process",
                drawing_s / cli_s,
                0.9,
                "records/s: CLI wall time (start-up included) vs NumPy's loop alone",
            ),
        ],
    )


def test_per_message_api(benchmark: Any) -> None:
    x = np.concatenate(list(synthetic_chunks(PER_MESSAGE_RECORDS)))
    pipeline = guide_pipeline()
    plugins = _discovered_plugins()
    results = side_by_side(
        benchmark,
        ("pydotcompute", lambda: pipeline_per_message(pipeline, x, plugins)),
        {"bytewax_per_record": lambda: bytewax_per_record(x)},
        ROUNDS,
    )
    # Row means reduced one row at a time (Bytewax) or stacked may differ in the last bit.
    check_same_results(results, rel=1e-6)
    ours_s = median_seconds(results["pydotcompute"])
    bytewax_s = median_seconds(results["bytewax_per_record"])
    benchmark.extra_info.update(
        records=PER_MESSAGE_RECORDS,
        width=WIDTH,
        rounds=ROUNDS,
        contenders={
            name: contender_info(rounds, "records", PER_MESSAGE_RECORDS)
            for name, rounds in results.items()
        },
    )
    report(
        benchmark,
        f"per-message, {PER_MESSAGE_RECORDS:,} x 64",
        [
            Figure(
                "pipeline, one message per record (API)",
                _rate(PER_MESSAGE_RECORDS, results["pydotcompute"]),
            ),
            Figure("Bytewax per-record", _rate(PER_MESSAGE_RECORDS, results["bytewax_per_record"])),
        ],
        [
            Ratio.floor(
                "pipeline / Bytewax per-record",
                bytewax_s / ours_s,
                3.0,
                "records/s: the pipeline vs Bytewax, one record per message",
            ),
        ],
    )


@pytest.mark.parametrize("loop", list(LOOPS))
def test_echo_round_trip(benchmark: Any, loop: str) -> None:
    sent = pings(ROUND_TRIPS)
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        results = side_by_side(
            benchmark,
            ("runtime", lambda: runner.run(runtime_echo(sent))),
            {"bare_asyncio": lambda: runner.run(bare_asyncio(sent))},
            ECHO_ROUNDS,
        )
    check_same_results(results, rel=0.0)
    ours, floor = p50_us(results["runtime"]), p50_us(results["bare_asyncio"])
    benchmark.extra_info.update(
        loop=loop,
        round_trips_per_round=ROUND_TRIPS,
        rounds=ECHO_ROUNDS,
        contenders={
            name: {
                "p50_us": round(p50_us(rounds), 2),
                "p99_us": round(
                    float(np.percentile(np.concatenate([r.samples for r in rounds]), 99)) * 1e6, 2
                ),
            }
            for name, rounds in results.items()
        },
    )
    report(
        benchmark,
        f"echo round trip, {loop}",
        [
            Figure("runtime echo kernel", f"p50 {ours:.1f} us"),
            Figure("bare asyncio: two Queues, one task", f"p50 {floor:.1f} us"),
        ],
        [Ratio.ceiling("runtime p50 / bare p50", ours / floor, 1.5, "p50 round trip, same loop")],
    )


def test_host_relayed_runtime_cost(benchmark: Any) -> None:
    inputs = make_inputs(PIPELINE_MESSAGES, width=64)
    results = side_by_side(
        benchmark,
        ("host_relayed", lambda: host_relayed(inputs)),
        {"stage_code_alone": lambda: stage_code_alone(inputs)},
        RELAY_ROUNDS,
    )
    check_same_results(results, rel=1e-12)
    pipeline_us = median_seconds(results["host_relayed"]) / PIPELINE_MESSAGES * 1e6
    stage_us = median_seconds(results["stage_code_alone"]) / PIPELINE_MESSAGES * 1e6
    runtime_us = pipeline_us - stage_us
    benchmark.extra_info.update(
        messages=PIPELINE_MESSAGES,
        rounds=RELAY_ROUNDS,
        contenders={
            name: contender_info(rounds, "messages", PIPELINE_MESSAGES)
            for name, rounds in results.items()
        },
        pipeline_us_per_message=round(pipeline_us, 2),
        stage_code_us_per_message=round(stage_us, 2),
        runtime_us_per_message=round(runtime_us, 2),
    )
    report(
        benchmark,
        f"guide pipeline, host-relayed, {PIPELINE_MESSAGES:,} messages",
        [
            Figure("host-relayed pipeline", f"{pipeline_us:.1f} us/message"),
            Figure("the guide's stage code alone", f"{stage_us:.1f} us/message"),
            Figure("the runtime (the difference)", f"{runtime_us:.1f} us/message"),
        ],
        [
            Ratio.ceiling(
                "runtime cost / stage code cost",
                runtime_us / stage_us,
                0.4,
                "us per message: (pipeline - stage code) / stage code",
            ),
        ],
    )
