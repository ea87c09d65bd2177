"""Issue 14, how ``pydotcompute`` ends, through the real command: SIGINT and SIGTERM
write what was computed and print the report marked interrupted (130/143), a second
signal exits at once; user mistakes are one line with status 2; an internal error is
one line with status 3 and its traceback in a log file."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from cli_helpers import GUIDE, one_error_line, pydotcompute
from pydotcompute.cli import main
from pydotcompute.errors import StageFailedError

#: Far more than any test waits for: each is interrupted long before the end.
LONG_RUN = ["run", GUIDE, "--synthetic", "100000000", "--width", "4", "--batch", "512"]
#: Time enough for everything in flight to finish on a loaded machine: these tests check
#: that what was fed is finished and written, not how long that takes.
PATIENT = ["--drain-timeout", "300"]
#: For the second-signal tests: a graceful stop that takes long enough (deep queues of
#: per-message records to finish) for a second signal to arrive during it, not after it.
SLOW_DRAIN_TOML = """
[pipeline]
name = "slow-drain"
queue_size = 100000

[stages.preprocess]

[stages.compute]
params = { stats = ["mean"] }
"""
SLOW_DRAIN_WIDTH = 4


def slow_drain_run(tmp_path: Path) -> list[str]:
    path = tmp_path / "slow_drain.toml"
    path.write_text(SLOW_DRAIN_TOML)
    width = str(SLOW_DRAIN_WIDTH)
    return [
        *("run", str(path), "--synthetic", "100000000", "--mode", "per-message"),
        *("--width", width, "--batch", "512"),
    ]


WAIT_S = 60.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class Command:
    """The command running in the background, its stderr read line by line."""

    def __init__(self, *argv: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pydotcompute.cli", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr_lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.put(line)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert self.proc.poll() is None, f"the command ended before {what}"
            assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
            time.sleep(0.02)

    def wait_for_stderr(self, pattern: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not any(re.search(pattern, line) for line in self.stderr):
            try:
                self.stderr.append(self.stderr_lines.get(timeout=deadline - time.monotonic()))
            except (queue.Empty, ValueError):
                pytest.fail(f"stderr never said {pattern!r}: {self.stderr}")

    def finish(self) -> tuple[int, str, str]:
        # Not communicate(): it would close stderr under the reader thread.
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(timeout=WAIT_S)
        self._reader.join(WAIT_S)
        self.proc.stdout.close()
        if self.proc.stderr is not None:  # read to its end by the reader thread
            self.proc.stderr.close()
        while not self.stderr_lines.empty():
            self.stderr.append(self.stderr_lines.get())
        return self.proc.returncode, out, "".join(self.stderr)

    def cpu_seconds(self) -> float:
        """CPU time the command has used (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def command() -> Iterator[Callable[..., Command]]:
    started: list[Command] = []

    def start(*argv: str) -> Command:
        started.append(Command(*argv))
        return started[-1]

    yield start
    for c in started:  # a failed test leaves no run behind
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.communicate()


def expected_means(count: int, width: int = 4, batch: int = 512) -> npt.NDArray[np.float64]:
    """What the guide pipeline computes for the first ``count`` synthetic records
    (seed 0): each record min-max normalized, then its mean."""
    rng = np.random.default_rng(0)
    out = []
    for lo in range(0, count, batch):
        rows = rng.random((min(batch, count - lo), width), dtype=np.float32).astype(np.float64)
        low, high = rows.min(axis=1, keepdims=True), rows.max(axis=1, keepdims=True)
        out.append(((rows - low) / (high - low)).mean(axis=1))
    return np.concatenate(out) if out else np.zeros(0)


def jsonl_lines(path: Path) -> list[str]:
    """Complete lines of a JSON Lines file being written."""
    text = path.read_text() if path.exists() else ""
    return text.splitlines()[: text.count("\n")]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigint_writes_the_npy_rows_computed_and_the_report_says_interrupted(
    tmp_path: Path, command: Callable[..., Command]
) -> None:
    out = tmp_path / "r.npy"
    run = command(*LONG_RUN, *PATIENT, "--json", "-o", str(out))
    # The output is opened just before the run; then it computes for a while.
    run.wait_for(lambda: out.exists() and run.cpu_seconds() > 1.5, "computing")
    run.proc.send_signal(signal.SIGINT)
    status, stdout, stderr = run.finish()

    assert status == 130, stderr
    assert "Traceback" not in stderr
    assert "SIGINT: interrupted" in stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True
    assert report["signal"] == "SIGINT"
    assert report["in_flight_abandoned"] is False  # every record fed was finished
    rows = np.load(out)
    # Only real results: one row per result, no placeholder, in input order.
    assert rows.shape == (report["results"], 1)
    assert report["results"] == report["records_fed"] > 0
    assert report["output_missing"] == 100_000_000 - report["results"]
    assert report["output_missing_ids"][0] == report["results"]
    assert not np.isnan(rows).any()
    np.testing.assert_allclose(rows[:, 0], expected_means(len(rows)), rtol=1e-5, atol=1e-6)


def test_sigterm_writes_the_jsonl_results_and_exits_143(
    tmp_path: Path, command: Callable[..., Command]
) -> None:
    out = tmp_path / "r.jsonl"
    run = command(*LONG_RUN, *PATIENT, "-o", str(out))
    run.wait_for(lambda: len(jsonl_lines(out)) > 0, "results in the output")
    run.proc.send_signal(signal.SIGTERM)
    status, stdout, stderr = run.finish()

    assert status == 143, stderr
    assert "Traceback" not in stderr
    assert "interrupted by SIGTERM" in stdout  # the report, as text
    results = [json.loads(line) for line in out.read_text().splitlines()]
    summary = re.search(r"([\d,]+) records in \(columnar\), ([\d,]+) result", stdout)
    assert summary is not None, stdout
    fed, written = (int(n.replace(",", "")) for n in summary.groups())
    assert len(results) == written == fed  # what was fed was finished and written
    ids = [r["id"] for r in results]
    assert sorted(ids) == list(range(len(ids)))
    means = expected_means(len(ids))
    np.testing.assert_allclose([r["mean"] for r in results], means[ids], rtol=1e-5, atol=1e-6)


def test_past_the_drain_bound_the_computed_results_are_still_written(
    tmp_path: Path, command: Callable[..., Command]
) -> None:
    out = tmp_path / "r.jsonl"
    run = command(*LONG_RUN, "--drain-timeout", "0", "--json", "-o", str(out))
    run.wait_for(lambda: len(jsonl_lines(out)) > 0, "results in the output")
    run.proc.send_signal(signal.SIGTERM)
    status, stdout, stderr = run.finish()

    assert status == 143, stderr
    assert "Traceback" not in stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True and report["in_flight_abandoned"] is True
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == report["results"]
    # Every result the sink sent is written, those nobody had read yet included.
    assert report["results"] >= report["stages"]["compute"]["records_out"] > 0
    ids = [r["id"] for r in results]
    assert len(set(ids)) == len(ids)
    means = expected_means(max(ids) + 1)
    np.testing.assert_allclose([r["mean"] for r in results], means[ids], rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigterm_while_the_input_is_read_is_one_line_and_143(
    tmp_path: Path, command: Callable[..., Command]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("[1, 2, 3, 4]\n" * 3_000_000)  # seconds of reading
    run = command("run", GUIDE, "-i", str(src))
    run.wait_for(lambda: run.cpu_seconds() > 1.5, "reading")  # past the imports
    run.proc.send_signal(signal.SIGTERM)
    status, stdout, stderr = run.finish()
    assert status == 143, stderr
    assert stderr.strip() == "SIGTERM: interrupted"
    assert stdout == ""


@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT)],
    ids=["int-then-term", "term-then-int"],
)
def test_a_second_signal_exits_at_once_keeping_the_jsonl_written(
    tmp_path: Path, command: Callable[..., Command], first: int, second: int
) -> None:
    out = tmp_path / "r.jsonl"
    run = command(*slow_drain_run(tmp_path), "--json", "-o", str(out))
    run.wait_for(lambda: len(jsonl_lines(out)) > 0, "results in the output")
    run.wait_for(lambda: run.cpu_seconds() > 1.5, "the queues filling")
    # The second signal right behind the first, so it always lands inside the graceful
    # stop (waiting for the first's message would race a stop that happens to finish
    # fast). Two different signals: the kernel merges a pending signal with a second of
    # the same kind, and either one counts as the second.
    run.proc.send_signal(first)
    run.proc.send_signal(second)
    status, stdout, stderr = run.finish()

    # The kernel delivers two pending signals in its own order: whichever the command
    # took second is the one it names, and its number decides the status.
    again = re.search(r"(SIGINT|SIGTERM) again: exiting at once", stderr)
    assert again is not None, stderr
    assert {again.group(1)} < {signal.Signals(first).name, signal.Signals(second).name}
    assert status == 128 + signal.Signals[again.group(1)], stderr
    assert "Traceback" not in stderr
    assert stdout == ""  # no report: it did not wait for one
    # What was written stays, whole lines of real results.
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert results
    ids = [r["id"] for r in results]
    np.testing.assert_allclose(
        [r["mean"] for r in results],
        expected_means(max(ids) + 1, width=SLOW_DRAIN_WIDTH)[ids],
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_second_signal_leaves_no_half_npy(
    tmp_path: Path, command: Callable[..., Command]
) -> None:
    out = tmp_path / "r.npy"
    run = command(*slow_drain_run(tmp_path), "-o", str(out))
    run.wait_for(out.exists, "the output opened")
    run.wait_for(lambda: run.cpu_seconds() > 1.5, "the queues filling")
    run.proc.send_signal(signal.SIGINT)
    run.proc.send_signal(signal.SIGTERM)  # right behind the first (see above)
    status, _, stderr = run.finish()

    again = re.search(r"(SIGINT|SIGTERM) again: exiting at once", stderr)
    assert again is not None, stderr  # whichever came second (see above) decides
    assert status == 128 + signal.Signals[again.group(1)], stderr
    assert "Traceback" not in stderr
    assert f"{out}: not written" in stderr
    assert not out.exists()  # an array is written whole or not at all


# -- one line and status 2 for what the user can cause ------------------------------


@pytest.mark.parametrize("subcommand", [["validate"], ["run", "--synthetic", "3"]])
def test_binary_garbage_in_a_pipeline_file_is_one_line(
    tmp_path: Path, subcommand: list[str]
) -> None:
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(bytes(range(256)) * 3)
    line = one_error_line(pydotcompute(subcommand[0], str(garbage), *subcommand[1:]))
    assert str(garbage) in line
    assert "not a TOML text file" in line


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["jsonl", "npy"])
def test_a_full_disk_on_output_is_one_line(fmt: str) -> None:
    done = pydotcompute(
        "run", GUIDE, "--synthetic", "20000", "-o", "/dev/full", "--output-format", fmt
    )
    line = one_error_line(done)
    assert "/dev/full" in line
    assert "No space left on device" in line


def test_the_help_documents_every_exit_status() -> None:
    done = pydotcompute("--help")
    text = " ".join(done.stdout.split())
    for status in ("0 every record", "1 the run finished", "2 usage", "3 the run broke"):
        assert status in text
    assert "130" in text and "143" in text


# -- status 3: a bug is one line, its traceback in a log file -----------------------


def test_an_internal_error_is_one_line_and_its_traceback_goes_to_a_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(plan: Any) -> Any:
        raise RuntimeError("the listing broke")

    # The CLI's own code path fails, as a bug in it would.
    monkeypatch.setattr("pydotcompute.cli._command.plan_listing", broken)
    status = main(["validate", GUIDE, "--json"])

    captured = capsys.readouterr()
    assert status == 3
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    found = re.fullmatch(
        r"internal error: RuntimeError: the listing broke \(traceback in (.+)\)", lines[0]
    )
    assert found is not None, lines[0]
    log = Path(found.group(1))
    try:
        text = log.read_text()
        assert "Traceback (most recent call last)" in text
        assert "the listing broke" in text and "broken" in text
    finally:
        log.unlink()
    assert "Traceback" not in captured.err + captured.out


def test_a_failed_kernel_is_status_3_naming_the_stage_with_its_traceback_logged(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    async def failing_run(*args: Any, **kwargs: Any) -> Any:
        try:
            raise ZeroDivisionError("in the stage's code")
        except ZeroDivisionError as exc:
            raise StageFailedError("compute", "compute-0", exc) from exc

    # The run itself breaks, as when a stage's kernel loop raises.
    monkeypatch.setattr("pydotcompute.cli._command._drive", failing_run)
    out = tmp_path / "o.jsonl"
    status = main(["run", GUIDE, "--synthetic", "3", "-o", str(out)])

    captured = capsys.readouterr()
    assert status == 3
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and "'compute'" in lines[0]
    found = re.search(r"\(traceback in (.+)\)$", lines[0])
    assert found is not None, lines[0]
    log = Path(found.group(1))
    try:
        assert "ZeroDivisionError: in the stage's code" in log.read_text()
    finally:
        log.unlink()
    assert "Traceback" not in captured.err
