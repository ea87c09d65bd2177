"""Pipelines in TOML: one ``[stages.NAME]`` table per stage.

.. code-block:: toml

    [pipeline]                 # optional
    name = "guide"
    dtype = "float32"          # input values read as float16/32/64 (default: float64 for
                               # JSON/CSV, an .npy array's own float dtype)
    batch_size = 1024          # any stage setting: its default for every stage
    backend = "numpy"

    [stages.preprocess]        # the table name is the stage's name
    stage = "preprocess"       # the registered stage it runs (default: the name)

    [stages.compute]
    inputs = ["preprocess"]    # default: the stage defined just before; [] = a source
    workers = 4                # stage settings (`pydotcompute settings` lists them all)
    queue_size = 1024
    backpressure = "block"     # block, reject or drop_oldest
    batch_size = 512
    backend = "numpy"
    restart = { max_restarts = 3, window = 60.0, backoff = 0.05 }   # default "never"
    ring_rows = 262144         # a device ring per upstream worker (default "auto": by reference)

    [stages.compute.params]    # the stage's own parameters (or params = {...})
    stats = ["mean", "std"]

Keys other than ``stage``, ``inputs`` and ``params`` are stage settings, and keys of
``[pipeline]`` other than ``name``, ``description`` and ``dtype`` (the pipeline's own
input dtype, see :class:`~pydotcompute.Pipeline`) are their defaults: the loader
passes them on, and validation checks them against
:data:`~pydotcompute.pipeline.STAGE_SETTINGS`, located by line.

The file's text is scanned alongside :mod:`tomllib` to find the line of every table
header and key, so each error names the file and line (``tomllib`` itself keeps no
positions).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from os import PathLike, fspath
from typing import Any

from ..errors import PipelineValidationError, UnknownParameterError
from ._definition import Pipeline
from ._plan import StageSpec
from ._settings import STRUCTURE_KEYS

__all__ = ["TomlLines", "load_pipeline", "parse_pipeline"]

_TOP_LEVEL = ("pipeline", "stages")
#: Keys of [pipeline] that describe the pipeline; the others are settings' defaults.
_DESCRIPTION_KEYS = ("name", "description")

_BARE = r"[A-Za-z0-9_\-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_TABLE_RE = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]\s*(?:#.*)?$")
_ARRAY_RE = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]\s*(?:#.*)?$")
_ASSIGN_RE = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART_RE = re.compile(_KEY)
_DECODE_LINE_RE = re.compile(r"at line (\d+)")


def _parts(dotted: str) -> tuple[str, ...]:
    out = []
    for match in _PART_RE.finditer(dotted):
        part = match.group(0)
        if part[0] in "\"'":
            part = part[1:-1]
        out.append(part)
    return tuple(out)


class TomlLines:
    """Line numbers (1-based) of the table headers and keys of a TOML document.

    A line-based scan: it understands table and array-of-tables headers, dotted and
    quoted keys, and skips the inside of multi-line strings. Ask with the full key
    path, e.g. ``("stages", "compute", "params", "stats")``; the first occurrence wins.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = _ARRAY_RE.match(line) or _TABLE_RE.match(line)
            if header:
                table = _parts(header.group(1))
                self._lines.setdefault(table, number)
                continue
            assign = _ASSIGN_RE.match(line)
            if assign:
                self._lines.setdefault(table + _parts(assign.group(1)), number)
                rest = line[assign.end() :]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        in_string = quote
                        break

    def line(self, *path: str) -> int | None:
        """The line of ``path``; else of its first descendant (a table only named by
        ``[a.b]`` headers); else of its nearest known ancestor; else None."""
        key = tuple(path)
        if key in self._lines:
            return self._lines[key]
        below = [n for k, n in self._lines.items() if k[: len(key)] == key]
        if below:
            return min(below)
        while key:
            key = key[:-1]
            if key in self._lines:
                return self._lines[key]
        return None


def load_pipeline(path: str | PathLike[str]) -> Pipeline:
    """Read the pipeline file at ``path``.

    Raises:
        PipelineValidationError: not UTF-8 text (a binary file), not valid TOML, or
            ``[pipeline]`` or ``stages`` not a table (file and line named). Every other
            problem (an unknown top-level key, a stage that is not a table, the stages
            themselves) is reported by ``Pipeline.validate``, all at once.
        OSError: the file cannot be read.
    """
    name = fspath(path)
    with open(name, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineValidationError(
            f"not a TOML text file (byte {data[exc.start]:#04x} at offset {exc.start} "
            "is not UTF-8)",
            source=name,
            line=data.count(b"\n", 0, exc.start) + 1,
        ) from None
    return parse_pipeline(text, source=name)


def parse_pipeline(text: str, *, source: str = "<string>") -> Pipeline:
    """Parse pipeline TOML ``text``; ``source`` names it in errors. See :func:`load_pipeline`."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at_line = _DECODE_LINE_RE.search(str(exc))
        raise PipelineValidationError(
            f"not valid TOML: {exc}", source=source, line=int(at_line.group(1)) if at_line else None
        ) from None
    lines = TomlLines(text)

    def fail(
        cls: type[PipelineValidationError], problem: str, *path: str, stage: str | None = None
    ) -> PipelineValidationError:
        return cls(problem, stage=stage, source=source, line=lines.line(*path))

    # Problems that leave the rest readable are kept for validation to report with
    # the stages' own; only a file whose shape cannot be read further raises here.
    found: list[PipelineValidationError] = []
    for key in document:
        if key not in _TOP_LEVEL:
            found.append(
                fail(
                    UnknownParameterError,
                    f"unknown top-level key {key!r}: a pipeline file holds a [pipeline] table "
                    "and [stages.NAME] tables",
                    key,
                )
            )
    header = document.get("pipeline", {})
    if not isinstance(header, Mapping):
        raise fail(PipelineValidationError, "[pipeline] must be a table", "pipeline")
    name = header.get("name", _stem(source))
    if not isinstance(name, str):
        found.append(
            fail(
                PipelineValidationError,
                f"[pipeline] name must be a string, got {name!r}",
                "pipeline",
                "name",
            )
        )
        name = _stem(source)
    defaults = {k: v for k, v in header.items() if k not in _DESCRIPTION_KEYS}
    default_lines = {k: line for k in defaults if (line := lines.line("pipeline", k)) is not None}
    pipeline = Pipeline(name, defaults=defaults, source=source, default_lines=default_lines)

    stages = document.get("stages", {})
    if isinstance(stages, list):
        raise fail(
            PipelineValidationError,
            "stages are tables named after the stage: write [stages.NAME], not [[stages]]",
            "stages",
        )
    if not isinstance(stages, Mapping):
        raise fail(
            PipelineValidationError, "stages must be a table of [stages.NAME] tables", "stages"
        )
    for stage_name, table in stages.items():
        if not isinstance(table, Mapping):
            found.append(
                fail(
                    PipelineValidationError,
                    f"stages.{stage_name} must be a table ([stages.{stage_name}])",
                    "stages",
                    stage_name,
                    stage=stage_name,
                )
            )
            continue
        pipeline.add_spec(_spec(stage_name, table, lines))
    pipeline.source_problems.extend(found)
    return pipeline


def _spec(stage_name: str, table: Mapping[str, Any], lines: TomlLines) -> StageSpec:
    """The stage ``[stages.<stage_name>]`` as written, with the line of each key."""
    locations = {"": lines.line("stages", stage_name)}
    for key in table:
        locations[key] = lines.line("stages", stage_name, key)
    params = table.get("params", {})
    if isinstance(params, Mapping):
        for key in params:
            locations[f"params.{key}"] = lines.line("stages", stage_name, "params", key)
    inputs = table.get("inputs")
    return StageSpec(
        name=stage_name,
        stage=table.get("stage", stage_name),
        inputs=tuple(inputs) if isinstance(inputs, list) else inputs,
        settings={k: v for k, v in table.items() if k not in STRUCTURE_KEYS},
        params=params,
        locations={k: v for k, v in locations.items() if v is not None},
    )


def _stem(source: str) -> str:
    base = source.replace("\\", "/").rsplit("/", 1)[-1]
    return base[: -len(".toml")] if base.endswith(".toml") else base or "pipeline"
