"""Issue 13, parts 3 and 5, through the real command: ``pydotcompute run --metrics-port``
serves Prometheus metrics while it runs (scraped over loopback, checked against the final
report); a port in use, a bad port and a missing extra are one clear error; the report
fits 100 columns unless ``--wide``, and a finished run's stages read "finished"."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cli_helpers import GUIDE, ROOT, one_error_line, pydotcompute
from prometheus_client.parser import text_string_to_metric_families

#: Far longer than the test lets it go on: it is interrupted once scraped.
LONG_RUN = ["run", GUIDE, "--synthetic", "100000000", "--width", "4", "--batch", "512"]
WAIT_S = 60.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def stage_values(samples: Samples, name: str) -> dict[str, float]:
    """stage -> value of the per-stage metric ``name``."""
    return {
        dict(labels)["stage"]: v
        for (sample, labels), v in samples.items()
        if sample == "pydotcompute_" + name
    }


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_scrape_during_a_run_agrees_with_its_final_report() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pydotcompute.cli", *LONG_RUN, "--metrics-port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first_line = proc.stderr.readline()
        found = re.match(r"serving metrics at (http://127\.0\.0\.1:\d+/metrics)$", first_line)
        assert found, first_line
        url = found.group(1)
        deadline = time.monotonic() + WAIT_S
        while True:  # until records have gone through every stage
            during = scrape(url)
            records_in = stage_values(during, "stage_records_in_total")
            if records_in and min(records_in.values()) > 0:
                break
            assert time.monotonic() < deadline, f"no records through every stage: {records_in}"
            time.sleep(0.05)
        time.sleep(0.2)
        later = scrape(url)
        assert proc.poll() is None  # scraped while it runs
        # Counters only grow; the run and its stages read as running.
        for name in ("stage_records_in_total", "stage_records_out_total"):
            before, after = stage_values(during, name), stage_values(later, name)
            assert all(after[stage] >= before[stage] for stage in before), name
        assert later["pydotcompute_run_state", (("pipeline", "guide"), ("state", "running"))] == 1
        assert set(stage_values(later, "stage_state")) == {"preprocess", "compute"}
        proc.send_signal(signal.SIGINT)  # ends it gracefully: the report is printed
        out, err = proc.communicate(timeout=WAIT_S * 2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    report = json.loads(out)
    stages = report["stages"]
    assert set(stages) == set(stage_values(later, "stage_records_in_total"))
    fed = later["pydotcompute_run_records_fed_total", (("pipeline", "guide"),)]
    assert 0 < fed <= report["records_fed"]
    for stage, t in stages.items():
        assert 0 < stage_values(later, "stage_records_in_total")[stage] <= t["records_in"]
        assert 0 < stage_values(later, "stage_records_out_total")[stage] <= t["records_out"]
        assert stage_values(later, "stage_workers")[stage] == t["workers"]
        assert stage_values(later, "stage_records_failed_total")[stage] == t["records_failed"] == 0
        assert stage_values(later, "stage_restarts_total")[stage] == t["restarts"] == 0
        # Interrupted, but what was fed drained through: the stream ended everywhere.
        assert t["state"] == "finished"
    assert report["interrupted"] and not report["in_flight_abandoned"]


@pytest.mark.parametrize("output", ["out.jsonl", "out.npy"])
def test_a_port_in_use_is_one_error_line_and_touches_no_output(tmp_path: Path, output: str) -> None:
    out = tmp_path / output
    out.write_bytes(b"a previous run's results")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = pydotcompute(
            "run", GUIDE, "--synthetic", "10", "-o", str(out), "--metrics-port", str(port)
        )
    line = one_error_line(done)
    assert line == (
        f"error: --metrics-port: cannot serve metrics on 127.0.0.1:{port}: "
        "the port is already in use"
    )
    assert done.stdout == ""
    assert out.read_bytes() == b"a previous run's results"  # nothing ran, nothing written


@pytest.mark.parametrize(
    ("port", "problem"),
    [("70000", "must be from 0 to 65535, got 70000"), ("http", "not a port number: 'http'")],
)
def test_a_bad_port_is_a_usage_error(port: str, problem: str) -> None:
    done = pydotcompute("run", GUIDE, "--synthetic", "10", "--metrics-port", port)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(f"error: argument --metrics-port: {problem}")
    assert "Traceback" not in done.stderr


def test_without_prometheus_client_the_error_names_the_extra(tmp_path: Path) -> None:
    hidden = tmp_path / "prometheus_client"
    hidden.mkdir()
    (hidden / "__init__.py").write_text("raise ImportError('prometheus_client is hidden')\n")
    done = pydotcompute(
        "run",
        GUIDE,
        "--synthetic",
        "10",
        "--metrics-port",
        "0",
        env={"PYTHONPATH": str(tmp_path)},
    )
    line = one_error_line(done)
    assert "prometheus-client, which is not installed: pip install 'pydotcompute[metrics]'" in line


def test_the_report_fits_100_columns_and_a_finished_run_reads_finished() -> None:
    done = pydotcompute("run", str(ROOT / "examples" / "dag.toml"), "--synthetic", "1000")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 100, done.stdout
    header = next(line for line in lines if "records in" in line)
    for column in ("stage", "records out", "failed", "records/s", "dropped", "rejected", "state"):
        assert column in header
    rows = [line for line in lines if "finished" in line]
    assert len(rows) == 4  # every stage of the DAG
    assert "active" not in done.stdout and "terminated" not in done.stdout


def test_wide_shows_every_column() -> None:
    done = pydotcompute("run", GUIDE, "--synthetic", "1000", "--wide")
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if "records in" in line)
    for column in ("type", "workers", "backend", "messages", "queue depth", "state"):
        assert column in header
    assert max(len(line.rstrip()) for line in done.stdout.splitlines()) > 100


def test_the_json_report_says_finished() -> None:
    done = pydotcompute("run", GUIDE, "--synthetic", "1000", "--json")
    assert done.returncode == 0, done.stderr
    assert {t["state"] for t in json.loads(done.stdout)["stages"].values()} == {"finished"}
