"""What the floor benchmarks report: each comparison's figures and its ratios against
issue 12's targets, in the benchmark's extra_info (so they land in the saved JSON) and in
one summary table printed at the end of the run.

The targets are reported, never asserted: a benchmark measures, it does not pass or fail
on speed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

_PLUGIN_NAME = "pydotcompute-floor-summary"


@dataclass(frozen=True)
class Ratio:
    """One measured ratio and issue 12's target for it."""

    name: str
    value: float
    target: float
    at_least: bool  #: the target is a floor (True) or a ceiling (False)
    means: str  #: what is divided by what

    @classmethod
    def floor(cls, name: str, value: float, target: float, means: str) -> Ratio:
        """A ratio that should be at least ``target``."""
        return cls(name, value, target, True, means)

    @classmethod
    def ceiling(cls, name: str, value: float, target: float, means: str) -> Ratio:
        """A ratio that should be at most ``target``."""
        return cls(name, value, target, False, means)

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.at_least else self.value <= self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio": round(self.value, 3),
            "target": self.target,
            "target_is": "at least" if self.at_least else "at most",
            "met": self.met,
            "means": self.means,
        }


@dataclass(frozen=True)
class Figure:
    """One contender's headline figure, as the summary shows it."""

    contender: str
    shown: str  #: e.g. "912,345 records/s" or "p50 12.3 us"


_figures: list[tuple[str, Figure]] = []
_ratios: list[tuple[str, Ratio]] = []


def report(benchmark: Any, comparison: str, figures: list[Figure], ratios: list[Ratio]) -> None:
    """Put ``ratios`` in ``benchmark``'s extra_info (the first as ``ratio``/``target``)
    and keep the figures and ratios for the summary."""
    first = ratios[0]
    benchmark.extra_info.update(
        comparison=comparison,
        ratio=round(first.value, 3),
        target=first.target,
        target_met=first.met,
        ratios={r.name: r.to_dict() for r in ratios},
    )
    _figures.extend((comparison, f) for f in figures)
    _ratios.extend((comparison, r) for r in ratios)


class _Summary:
    """Prints the run's figures and ratios after pytest-benchmark's own tables."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not _ratios:
            return
        # Wide enough for the "means" column even when the output is piped.
        width = max(140, terminalreporter.config.get_terminal_writer().fullwidth)
        console = Console(file=io.StringIO(), width=width)
        figures = Table(title="Floor figures (medians of rounds)")
        for column in ("comparison", "contender", "figure"):
            figures.add_column(column)
        for comparison, figure in _figures:
            figures.add_row(comparison, figure.contender, figure.shown)
        ratios = Table(title="Floor ratios against issue 12's targets (reported, not asserted)")
        for column in ("comparison", "ratio", "measured", "target", "met", "means"):
            ratios.add_column(column)
        for comparison, ratio in _ratios:
            bound = ">=" if ratio.at_least else "<="
            ratios.add_row(
                comparison,
                ratio.name,
                f"{ratio.value:.3f}",
                f"{bound} {ratio.target:g}",
                "yes" if ratio.met else "no",
                ratio.means,
            )
        console.print(figures)
        console.print(ratios)
        terminalreporter.write_sep("=", "floor benchmarks (issue 12)")
        output = console.file
        assert isinstance(output, io.StringIO)
        terminalreporter.write(output.getvalue())


def install_summary(config: pytest.Config) -> None:
    """Have this run print the summary table at its end (once, however often called)."""
    if not config.pluginmanager.has_plugin(_PLUGIN_NAME):
        config.pluginmanager.register(_Summary(), _PLUGIN_NAME)
