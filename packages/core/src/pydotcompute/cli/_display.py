"""What the command-line tool shows: tables (rich when installed, plain text
otherwise), the live progress display, and the final per-stage report."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from typing import IO, Any, Final

from ..pipeline import PipelineRun, StageTelemetry
from ._files import nan_to_null

__all__ = ["Output", "Progress", "print_report"]

_REFRESH_S: Final = 0.25


def print_report(report: dict[str, Any], as_json: bool) -> None:
    """Print a run's report on stdout: the per-stage telemetry table and a summary, or
    (``as_json``) the whole report as JSON, NaN and infinities as null."""
    if as_json:
        print(json.dumps(nan_to_null(report), indent=2))
        return
    out = Output(sys.stdout)
    out.table(
        f"Pipeline {report['pipeline']!r}: per-stage telemetry",
        [
            "stage",
            "type",
            "workers",
            "backend",
            "records in",
            "records out",
            "failed",
            "records/s",
            "messages",
            "dropped",
            "rejected",
            "queue depth",
            "state",
        ],
        [
            [
                t["stage"],
                t["stage_type"],
                str(t["workers"]),
                t["backend"],
                f"{t['records_in']:,}",
                f"{t['records_out']:,}",
                f"{t['records_failed']:,}",
                f"{t['records_per_s']:,.0f}",
                f"{t['messages_processed']:,}",
                f"{t['messages_dropped']:,}",
                f"{t['messages_rejected'] + t['records_rejected']:,}",
                str(t["input_queue_depth"]),
                t["state"],
            ]
            for t in report["stages"].values()
        ],
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
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


class Output:
    """Tables on a stream: rich when installed, plain aligned text otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        try:
            from rich.console import Console
        except ImportError:  # rich is the `cli` extra
            self._console: Any = None
        else:
            self._console = Console(file=stream, soft_wrap=False, width=max(_width(stream), 160))

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        if self._console is not None:
            from rich.table import Table
            from rich.text import Text

            # Text, not markup: cells such as "[stages.NAME.params]" are shown as written.
            table = Table(title=Text(title), title_justify="left")
            for column in columns:
                table.add_column(Text(column), overflow="fold")
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


def _width(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 160


class Progress:
    """A live display on stderr: records fed / results, and per-stage throughput and
    queue depth, refreshed every quarter second."""

    def __init__(self, run: PipelineRun, total: int) -> None:
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
