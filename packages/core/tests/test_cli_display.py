"""The CLI's tables work without rich (plain text) and with it."""

from __future__ import annotations

import io
import json
import sys

import pytest
from pydotcompute.cli import Output, print_report


def test_plain_tables_when_rich_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # makes `import rich.console` fail
    stream = io.StringIO()
    Output(stream).table("Stages", ["stage", "distribution"], [["compute", "pydotcompute-stages"]])
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Stages"
    assert lines[1].split() == ["stage", "distribution"]
    assert lines[2].split() == ["compute", "pydotcompute-stages"]
    assert lines[1].index("distribution") == lines[2].index("pydotcompute-stages")  # aligned


def test_rich_tables() -> None:
    stream = io.StringIO()
    Output(stream).table("Backends", ["backend"], [["numpy"]])
    assert "Backends" in stream.getvalue() and "numpy" in stream.getvalue()


def test_rich_shows_brackets_as_written_not_as_markup() -> None:
    stream = io.StringIO()
    Output(stream).table("Under [pipeline]", ["[key]"], [["[stages.a.params]"], ["[bold]x"]])
    text = stream.getvalue()
    assert "Under [pipeline]" in text and "[key]" in text
    assert "[stages.a.params]" in text and "[bold]x" in text


def test_the_json_report_has_no_nan(capsys: pytest.CaptureFixture[str]) -> None:
    print_report(
        {"pipeline": "p", "seconds": float("nan"), "stages": {"a": {"x": float("inf")}}}, True
    )
    assert json.loads(capsys.readouterr().out) == {
        "pipeline": "p",
        "seconds": None,
        "stages": {"a": {"x": None}},
    }


def test_the_report_says_when_workers_restarted_and_messages_were_dead_lettered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def stage(name: str, restarts: int, held: int, evicted: int = 0) -> dict[str, object]:
        return {
            "stage": name,
            "stage_type": "compute",
            "workers": 1,
            "backend": "numpy",
            "records_in": 10,
            "records_out": 10 - held,
            "records_failed": 0,
            "records_per_s": 100.0,
            "messages_processed": 10 - held,
            "messages_dropped": 0,
            "ring_records_dropped": evicted,
            "messages_rejected": 0,
            "records_rejected": 0,
            "messages_expired": 0,
            "messages_dead_lettered": held,
            "restarts": restarts,
            "input_queue_depth": 0,
            "state": "active",
        }

    report = {
        "pipeline": "p",
        "stages": {"a": stage("a", 0, 0), "b": stage("b", 2, 2), "c": stage("c", 0, 0, 7)},
        "records_fed": 10,
        "mode": "per-message",
        "results": 8,
        "seconds": 0.1,
        "records_per_s": 100.0,
    }
    print_report(report, False)
    out = capsys.readouterr().out
    assert "stage 'b': 2 worker restarts; 2 messages held by a crashed" in out
    assert "stage 'c': 7 records evicted from its device rings (drop_oldest)" in out
    assert "stage 'a':" not in out and "stage 'c': 0 worker" not in out


def big_report(stage_name: str = "normalize_and_center") -> dict[str, object]:
    """A report of a long run: hundreds of millions of records, a long stage name."""
    big = 123_456_789
    stage = {
        "stage": stage_name,
        "stage_type": "preprocess",
        "workers": 16,
        "backend": "triton",
        "records_in": big,
        "records_out": big,
        "records_failed": 12,
        "records_per_s": 12_345_678.0,
        "messages_processed": 30_141,
        "messages_dropped": 0,
        "ring_records_dropped": 0,
        "messages_rejected": 3_456,
        "records_rejected": 0,
        "messages_expired": 0,
        "messages_dead_lettered": 0,
        "restarts": 0,
        "input_queue_depth": 4096,
        "state": "finished",
    }
    return {
        "pipeline": "p",
        "stages": {stage_name: stage},
        "records_fed": big,
        "mode": "columnar",
        "results": big,
        "seconds": 10.0,
        "records_per_s": 12_345_678.0,
    }


@pytest.mark.parametrize("renderer", ["rich", "plain"])
def test_the_report_fits_100_columns_with_its_main_columns(
    renderer: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if renderer == "plain":
        monkeypatch.setitem(sys.modules, "rich.console", None)
    print_report(big_report(), False)  # stdout is not a terminal: laid out for 100
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 100, "\n".join(lines)
    text = "\n".join(lines)
    # Figures stay whole (a long stage name may fold in rich's table to make room).
    row = next(line for line in lines if "123,456,789" in line)
    assert row.count("123,456,789") == 2 and "12,345,678" in row and "finished" in row
    assert "normalize_and" in text
    for column in ("records in", "records out", "failed", "records/s", "dropped", "rejected"):
        assert column in text
    for wide_only in ("backend", "triton", "queue depth", "messages"):
        assert wide_only not in text


@pytest.mark.parametrize("renderer", ["rich", "plain"])
def test_wide_shows_every_column(
    renderer: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if renderer == "plain":
        monkeypatch.setitem(sys.modules, "rich.console", None)
    print_report(big_report(), False, wide=True)
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if "records in" in line)
    for column in ("type", "workers", "backend", "messages", "queue depth", "state"):
        assert column in header
    for shown in ("preprocess", "16", "triton", "4096", "finished"):
        assert shown in text
    # Nothing folded: every figure whole on one line.
    row = next(line for line in text.splitlines() if "triton" in line)
    assert row.count("123,456,789") == 2 and "normalize_and_center" in row and "30,141" in row
