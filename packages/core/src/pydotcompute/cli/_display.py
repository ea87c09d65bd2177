"""What the command-line tool shows: tables (rich when installed, plain text
otherwise), the live progress display, and the final per-stage report."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any, Final

from ..pipeline import AnyRun, StageTelemetry
from ._files import nan_to_null

__all__ = ["REPORT_WIDTH", "Output", "Progress", "print_report"]

_REFRESH_S: Final = 0.25


#: The per-stage report's columns: (header, cell of one stage's telemetry, shown by
#: default). The default ones fit a 100-column terminal; ``--wide`` shows them all.
_REPORT_COLUMNS: Final[tuple[tuple[str, Callable[[Mapping[str, Any]], str], bool], ...]] = (
    ("stage", lambda t: str(t["stage"]), True),
    ("type", lambda t: str(t["stage_type"]), False),
    ("workers", lambda t: str(t["workers"]), False),
    ("backend", lambda t: str(t["backend"]), False),
    ("records in", lambda t: f"{t['records_in']:,}", True),
    ("records out", lambda t: f"{t['records_out']:,}", True),
    ("failed", lambda t: f"{t['records_failed']:,}", True),
    ("records/s", lambda t: f"{t['records_per_s']:,.0f}", True),
    ("messages", lambda t: f"{t['messages_processed']:,}", False),
    ("dropped", lambda t: f"{t['messages_dropped']:,}", True),
    ("rejected", lambda t: f"{t['messages_rejected'] + t['records_rejected']:,}", True),
    ("queue depth", lambda t: str(t["input_queue_depth"]), False),
    ("state", lambda t: str(t["state"]), True),
)
#: The width the report is laid out for when stdout is not a terminal.
REPORT_WIDTH: Final = 100
_WIDE_WIDTH: Final = 1000


def print_report(report: dict[str, Any], as_json: bool, *, wide: bool = False) -> None:
    """Print a run's report on stdout: the per-stage telemetry table and a summary, or
    (``as_json``) the whole report as JSON, NaN and infinities as null. The table shows
    the main columns, to fit the terminal (100 columns when stdout is not one), or
    every column when ``wide``."""
    if as_json:
        print(json.dumps(nan_to_null(report), indent=2))
        return
    columns = [c for c in _REPORT_COLUMNS if wide or c[2]]
    width = _width(sys.stdout, REPORT_WIDTH)
    # Wide: laid out for as wide as it takes; a narrower terminal wraps the lines.
    out = Output(sys.stdout, width=max(width, _WIDE_WIDTH) if wide else width)
    out.table(
        f"Pipeline {report['pipeline']!r}: per-stage telemetry",
        [header for header, _, _ in columns],
        [[cell(t) for _, cell, _ in columns] for t in report["stages"].values()],
        whole=True,
    )
    lines = []
    if report.get("interrupted"):
        lines.append(
            f"interrupted by {report['signal']}: the input was cut short; "
            + (
                f"records still in flight were abandoned ({report['messages_left_behind']:,} "
                "messages left behind)"
                if report.get("in_flight_abandoned")
                else "every record fed was finished"
            )
        )
    lines += [
        f"{report['records_fed']:,} records in ({report['mode']}), {report['results']:,} result "
        f"records out in {report['seconds']:.3f} s: {report['records_per_s']:,.0f} records/s"
    ]
    if report.get("stage_errors"):
        lines.append(f"{report['stage_errors']:,} records failed in a stage (written as errors)")
    for t in report["stages"].values():
        # Supervision at work: say so, since what a crashed worker held is not in the output.
        restarts, held = t["restarts"], t["messages_dead_lettered"]
        expired = t["messages_expired"]
        if restarts or held or expired:
            lines.append(
                f"stage {t['stage']!r}: {restarts:,} worker restarts; {held:,} messages held by "
                f"a crashed or stalled worker and {expired:,} expired went to dead letters"
            )
        evicted = t.get("ring_records_dropped", 0)
        if evicted:
            lines.append(
                f"stage {t['stage']!r}: {evicted:,} records evicted from its device rings "
                "(drop_oldest) before it took them"
            )
    if report.get("records_rejected_at_input"):
        lines.append(
            f"{report['records_rejected_at_input']:,} records refused at the input (reject)"
        )
    bad = report.get("input", {}).get("bad_records", 0)
    if bad:
        lines.append(f"{bad:,} bad input records skipped (listed on stderr)")
    if report.get("output"):
        lines.append(f"results written to {report['output']}")
    missing = report.get("output_missing", 0)
    if missing:
        lines.append(
            f"{missing:,} input records have no row in {report['output']} (failed in a stage "
            "or not computed): its rows are in input order with those left out; --json "
            f"lists the first {len(report['output_missing_ids'])} ids"
        )
    for line in lines:
        print(line)


def toml_value(value: Any) -> str:
    """``value`` as a pipeline file would hold it (strings quoted, tables inline): how
    the tool shows settings, so what it prints can be pasted into a file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


class Output:
    """Tables on a stream: rich when installed, plain aligned text otherwise."""

    def __init__(self, stream: IO[str], *, width: int | None = None) -> None:
        """``width``: the columns rich lays tables out in (cells fold to fit); by
        default the terminal's, and at least 160."""
        self.stream = stream
        try:
            from rich.console import Console
        except ImportError:  # rich is the `cli` extra
            self._console: Any = None
        else:
            if width is None:
                width = max(_width(stream), 160)
            self._console = Console(file=stream, soft_wrap=False, width=width)

    def table(
        self, title: str, columns: list[str], rows: list[list[str]], *, whole: bool = False
    ) -> None:
        """Print a table; ``whole``: only the first column folds to fit the width, the
        others (figures) are never broken."""
        if self._console is not None:
            from rich.table import Table
            from rich.text import Text

            # Text, not markup: cells such as "[stages.NAME.params]" are shown as written.
            table = Table(title=Text(title), title_justify="left")
            for i, column in enumerate(columns):
                table.add_column(Text(column), overflow="fold", no_wrap=whole and i > 0)
            for row in rows:
                table.add_row(*(Text(cell) for cell in row))
            self._console.print(table)
            return
        print(title, file=self.stream)
        widths = [
            max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
            for i, c in enumerate(columns)
        ]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)), file=self.stream)
        for row in rows:
            print(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)),
                file=self.stream,
            )
        print(file=self.stream)


def _width(stream: IO[str], default: int = 160) -> int:
    """The terminal's width when ``stream`` is one, else ``default``."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return default


class Progress:
    """A live display on stderr: records fed / results, and per-stage throughput and
    queue depth, refreshed every quarter second."""

    def __init__(self, run: AnyRun, total: int) -> None:
        self.run = run
        self.total = total
        self.results = 0
        self._live: Any = None
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:
            return
        self._live = Live(
            self.render(), console=Console(stderr=True), refresh_per_second=4, transient=True
        )
        self._live.start()

    def render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        fed = self.run.records_fed
        header = Text(
            f"fed {fed:,}/{self.total:,} records   results {self.results:,}", style="bold"
        )
        bar = ProgressBar(
            total=max(self.total, 1), completed=min(self.results, self.total), width=60
        )
        table = Table(box=None, padding=(0, 2))
        for column in ("stage", "workers", "records in", "records/s", "queue depth", "state"):
            table.add_column(column)
        for t in self.run.telemetry().values():
            table.add_row(*_progress_row(t))
        return Group(header, bar, table)

    async def watch(self) -> None:
        while self._live is not None:
            self._live.update(self.render())
            await asyncio.sleep(_REFRESH_S)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _progress_row(t: StageTelemetry) -> list[str]:
    return [
        t.stage,
        str(t.workers),
        f"{t.records_in:,}",
        f"{t.records_per_s:,.0f}",
        str(t.input_queue_depth),
        t.state,
    ]
