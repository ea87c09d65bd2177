"""``pydotcompute settings``: the stage settings reference, read from the settings table, and
the README's copy of it, which a test keeps equal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pydotcompute.cli import main
from pydotcompute.pipeline import STAGE_SETTINGS

README = Path(__file__).resolve().parents[1] / "README.md"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["settings", *argv]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_json_lists_every_setting_from_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    listing = json.loads(run(capsys, "--json"))
    assert listing == [
        {"name": s.name, "default": s.default, "accepts": s.accepts, "doc": s.doc}
        for s in STAGE_SETTINGS.values()
    ]


def test_the_table_shows_each_setting_and_its_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # plain text
    lines = run(capsys).splitlines()
    assert lines[0] == "Stage settings (per stage, or as [pipeline] defaults)"
    rows = {line.split()[0]: line.split()[1] for line in lines[2:] if line.strip()}
    assert rows == {name: json.dumps(s.default) for name, s in STAGE_SETTINGS.items()}


def test_the_readme_table_is_the_settings_table(capsys: pytest.CaptureFixture[str]) -> None:
    table = run(capsys, "--markdown").strip()
    assert table.count("\n") == len(STAGE_SETTINGS) + 1  # a header, a rule, a row each
    for name, setting in STAGE_SETTINGS.items():
        assert f"| `{name}` | `{json.dumps(setting.default)}` | {setting.accepts} |" in table
    assert table in README.read_text(), (
        "packages/core/README.md's settings table differs from the settings table: "
        "paste the output of `pydotcompute settings --markdown` into it"
    )
