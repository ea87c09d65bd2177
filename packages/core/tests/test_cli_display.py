"""The CLI's tables work without rich (plain text) and with it."""

from __future__ import annotations

import io
import json
import sys

import pytest
from pydotcompute._cli_display import Output, print_report


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


def test_the_json_report_has_no_nan(capsys: pytest.CaptureFixture[str]) -> None:
    print_report(
        {"pipeline": "p", "seconds": float("nan"), "stages": {"a": {"x": float("inf")}}}, True
    )
    assert json.loads(capsys.readouterr().out) == {
        "pipeline": "p",
        "seconds": None,
        "stages": {"a": {"x": None}},
    }
