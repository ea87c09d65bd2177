"""The ``pydotcompute`` command-line tool.

``pydotcompute stages``           installed stages and backends, and broken plugins
``pydotcompute settings``         the settings every stage takes: defaults and meaning
``pydotcompute validate FILE``    check a pipeline file and show each stage's settings
``pydotcompute run FILE``         run a pipeline over JSONL / CSV / .npy / Parquet / Arrow input
``pydotcompute graph FILE``       draw a pipeline file (Mermaid, DOT, or SVG through Graphviz)
``pydotcompute demo``             run the guide's preprocess -> compute pipeline

Exit status (see :mod:`._exits`): 0 every record ran cleanly; 1 the run finished but
some input records were bad or failed in a stage (every good record is still processed
and written); 2 usage or input error (a bad pipeline file, input or option, or an output
that cannot be written); 3 the run broke (an internal error or a stage's kernel failed),
one line on stderr and the traceback in a log file; 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import json
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final
from uuid import UUID

import numpy as np
import numpy.typing as npt

from ..dataflow import (
    REQUIRED,
    StageError,
    ids_to_array,
    record_count,
    record_ids_for_rows,
    row_indices,
)
from ..errors import (
    InvalidArgumentError,
    PipelineResourceWarning,
    PipelineRunError,
    PipelineValidationError,
    PipelineValidationErrors,
    RingKernelError,
)
from ..pipeline import (
    DEFAULT_METRICS_ADDRESS,
    ENGINES,
    STAGE_SETTINGS,
    AnyRun,
    MetricsServer,
    Pipeline,
    PipelinePlan,
    PipelineRun,
    PlannedStage,
    RayUnavailableError,
    import_ray,
    new_run_id,
    open_run,
    records_from_array,
)
from ..plugins import PluginManager, get_plugin_manager
from ._allocator import keep_freed_memory
from ._display import Output, Progress, print_report, toml_value
from ._exits import (
    EXIT_CODES_HELP,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    Interrupt,
    log_traceback,
    sigterm_as_interrupt,
)
from ._files import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    STREAMED_FORMATS,
    InputData,
    InputFileError,
    ResultWriter,
    check_output_path,
    format_of,
    npy_output_problem,
    ragged_records,
    read_input,
    routes_by_key,
)
from ._graph import GRAPH_FORMATS, GraphvizError, pipeline_dot, pipeline_mermaid, render_svg
from ._loop import loop_name, run_on_loop
from ._synthetic import synthetic_chunks
from ._table_input import TableInput

__all__ = ["main"]

_MAX_SHOWN_ERRORS: Final = 20
#: After an interrupt, how long the records in flight get by default to finish before
#: the workers are stopped (what they computed is still written).
_INTERRUPT_DRAIN_S: Final = 10.0

#: The guide's pipeline ("Building Pipelines": preprocess -> compute), as TOML.
GUIDE_PIPELINE_TOML: Final = """\
[pipeline]
name = "guide"

[stages.preprocess]
stage = "preprocess"

[stages.compute]
stage = "compute"
inputs = ["preprocess"]
[stages.compute.params]
stats = ["mean"]
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool with ``argv`` (default: the process's arguments); return the exit status."""
    parser = command_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with sigterm_as_interrupt():
            status: int = args.handler(args)
    except KeyboardInterrupt as exc:  # outside a run (which handles both signals itself)
        signum = exc.args[0] if exc.args else signal.SIGINT
        print(f"{signal.Signals(signum).name}: interrupted", file=sys.stderr)
        return 128 + signum
    except Exception as exc:
        # Whatever the user can cause is reported by the handlers; this is a bug, so
        # its traceback goes to a file for the report, not to the terminal.
        print(
            f"internal error: {type(exc).__name__}: {exc} (traceback in {log_traceback(exc)})",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return status


def command_parser() -> argparse.ArgumentParser:
    """The ``pydotcompute`` command's argument parser: every subcommand and option (the
    docs' CLI reference is generated from it)."""
    parser = argparse.ArgumentParser(
        prog="pydotcompute",
        description="Streaming compute pipelines built from ring kernels.",
        epilog=EXIT_CODES_HELP,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    stages = sub.add_parser("stages", help="list installed stages and backends")
    stages.add_argument("--json", action="store_true", help="print JSON for scripts")
    stages.set_defaults(handler=_cmd_stages)

    settings = sub.add_parser("settings", help="list the settings every stage takes")
    shape = settings.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print JSON for scripts")
    shape.add_argument(
        "--markdown", action="store_true", help="print the Markdown table the README holds"
    )
    settings.set_defaults(handler=_cmd_settings)

    validate = sub.add_parser(
        "validate", help="check a pipeline file without running it; show its stages' settings"
    )
    validate.add_argument("pipeline", help="pipeline TOML file")
    validate.add_argument("--json", action="store_true", help="print the plan as JSON")
    validate.set_defaults(handler=_cmd_validate)

    run = sub.add_parser("run", help="run a pipeline file over an input")
    run.add_argument("pipeline", help="pipeline TOML file")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "-i",
        "--input",
        help="input file: .jsonl, .csv, .npy, or .parquet, .arrow (Arrow IPC file or "
        "stream), .arrows, read a row group or record batch at a time (the arrow extra)",
    )
    source.add_argument("--synthetic", type=_positive, metavar="N", help="N random records instead")
    run.add_argument("--width", type=_positive, default=64, help="values per synthetic record (64)")
    run.add_argument("--seed", type=int, default=0, help="seed of the synthetic records (0)")
    run.add_argument("--input-format", choices=INPUT_FORMATS, help="override the input extension")
    run.add_argument(
        "-o",
        "--output",
        help=(
            "output file (default: none): .jsonl, one line per result in completion order, "
            "each with its record's id; or .npy, the results of one sink, in input order "
            "where each record gives one result (a record without a result has no row; the "
            "report counts them), else in completion order; or .parquet, .arrow (IPC file), "
            ".arrows (IPC stream), written as results come, in completion order, with an id "
            "column (the arrow extra)"
        ),
    )
    run.add_argument(
        "--output-format", choices=OUTPUT_FORMATS, help="override the output extension"
    )
    run.add_argument(
        "--mode",
        choices=("columnar", "per-message"),
        default="columnar",
        help="feed RecordBatches (default) or one message per record",
    )
    run.add_argument("--batch", type=_positive, default=4096, help="records per RecordBatch (4096)")
    run.add_argument(
        "--engine",
        choices=ENGINES,
        help="where the stages run: in this process (local) or as Ray actors (ray; the ray "
        "extra); default: the file's [pipeline] engine, else local",
    )
    run.add_argument(
        "--address",
        metavar="ADDRESS",
        help="engine ray: the Ray cluster to join (auto, HOST:PORT); default: a local Ray "
        "started and stopped with the run",
    )
    run.add_argument(
        "--drain-timeout",
        type=_seconds,
        default=_INTERRUPT_DRAIN_S,
        metavar="S",
        help=f"after Ctrl-C or SIGTERM, seconds the records in flight get to finish "
        f"({_INTERRUPT_DRAIN_S:g})",
    )
    run.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics of every stage and worker at "
        "http://ADDRESS:PORT/metrics while the run lasts (0: a free port, printed on "
        "stderr); needs pydotcompute[metrics]",
    )
    run.add_argument(
        "--metrics-address",
        default=DEFAULT_METRICS_ADDRESS,
        metavar="ADDRESS",
        help=f"where --metrics-port listens ({DEFAULT_METRICS_ADDRESS}: this machine only)",
    )
    _add_report_options(run)
    run.set_defaults(handler=_cmd_run)

    graph = sub.add_parser(
        "graph",
        help="draw a pipeline file: stages, workers, backends, queues, fused groups",
    )
    graph.add_argument("pipeline", help="pipeline TOML file")
    graph.add_argument(
        "--format",
        choices=GRAPH_FORMATS,
        default="mermaid",
        help="mermaid (default), dot (Graphviz's language), or svg (needs Graphviz's dot)",
    )
    graph.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    graph.set_defaults(handler=_cmd_graph)

    demo = sub.add_parser("demo", help="run the guide's preprocess -> compute pipeline")
    demo.add_argument("--records", type=_positive, default=1000, help="records to send (1000)")
    demo.add_argument("--width", type=_positive, default=64, help="values per record (64)")
    demo.add_argument("--show", type=int, default=5, help="results to print (5)")
    _add_report_options(demo)
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument(
        "--wide",
        action="store_true",
        help="show every column of the per-stage report (default: the main ones, to fit "
        "100 columns)",
    )
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show the live progress display even when stderr is not a terminal",
    )
    progress.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no live progress display"
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, got {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# -- stages ------------------------------------------------------------------------------


def _cmd_stages(args: argparse.Namespace) -> int:
    pm = get_plugin_manager()
    listing = stages_listing(pm)
    if args.json:
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    out = Output(sys.stdout)
    out.table(
        "Stages",
        ["stage", "distribution", "parameters", "summary"],
        [
            [s["name"], s["distribution"], ", ".join(s["params"]) or "-", s["summary"]]
            for s in listing["stages"]
        ],
    )
    out.table(
        "Backends",
        ["backend", "distribution"],
        [[b["name"], b["distribution"]] for b in listing["backends"]],
    )
    problems = listing["broken_plugins"] + listing["conflicts"]
    if problems:
        out.table(
            "Broken plugins (skipped)",
            ["distribution", "entry point", "problem"],
            [[p["distribution"], p["entry_point"], p["problem"]] for p in listing["broken_plugins"]]
            + [["-", "-", c["problem"]] for c in listing["conflicts"]],
        )
    return EXIT_OK


def stages_listing(pm: PluginManager) -> dict[str, Any]:
    """What ``pydotcompute stages`` shows, as JSON-ready data."""
    stages = []
    for name, provided in pm.stages().items():
        definition = provided.definition
        stages.append(
            {
                "name": name,
                "distribution": provided.distribution,
                "summary": definition.summary,
                "accepts": definition.accepts,
                "emits": definition.emits,
                "params": {
                    key: {
                        "type": param.describe(),
                        "default": None if param.default is REQUIRED else _plain(param.default),
                        "required": param.default is REQUIRED,
                        "doc": param.doc,
                    }
                    for key, param in definition.params.items()
                },
            }
        )
    backends = [{"name": n, "distribution": p.distribution} for n, p in pm.backends().items()]
    return {
        "stages": stages,
        "backends": backends,
        "broken_plugins": [
            {"distribution": e.distribution, "entry_point": e.entry_point, "problem": e.reason}
            for e in pm.load_errors
        ],
        "conflicts": [
            {"kind": e.kind, "name": e.name, "providers": e.providers, "problem": str(e)}
            for e in pm.conflicts.values()
        ],
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# -- validate ----------------------------------------------------------------------------


def _cmd_settings(args: argparse.Namespace) -> int:
    listing = settings_listing()
    if args.json:
        print(json.dumps(listing, indent=2))
    elif args.markdown:
        print(settings_markdown())
    else:
        Output(sys.stdout).table(
            "Stage settings (per stage, or as [pipeline] defaults)",
            ["setting", "default", "accepts", "what it does"],
            [[s["name"], toml_value(s["default"]), s["accepts"], s["doc"]] for s in listing],
        )
    return EXIT_OK


def settings_listing() -> list[dict[str, Any]]:
    """What ``pydotcompute settings --json`` shows: each stage setting, in table order."""
    return [
        {"name": s.name, "default": s.default, "accepts": s.accepts, "doc": s.doc}
        for s in STAGE_SETTINGS.values()
    ]


def settings_markdown() -> str:
    """The stage settings as the Markdown table in packages/core/README.md."""
    lines = ["| setting | default | accepts | what it does |", "|---|---|---|---|"]
    for s in STAGE_SETTINGS.values():
        lines.append(f"| `{s.name}` | `{toml_value(s.default)}` | {s.accepts} | {s.doc} |")
    return "\n".join(lines)


def _plan_file(path: str) -> PipelinePlan | None:
    """The plan of the pipeline file at ``path``; None once every problem is printed to
    stderr, one per line. Resource warnings are not printed here: they are on the plan."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PipelineResourceWarning)
            return Pipeline.from_toml(path).validate()
    except PipelineValidationErrors as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
    except (PipelineValidationError, OSError) as exc:
        print(f"error: {_describe(exc, path)}", file=sys.stderr)
    return None


def _cmd_validate(args: argparse.Namespace) -> int:
    plan = _plan_file(args.pipeline)
    if plan is None:
        return EXIT_USAGE
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(plan_listing(plan), indent=2))
        return EXIT_OK
    print(f"{args.pipeline}: pipeline {plan.name!r} is valid:")
    for stage in plan.stages:
        inputs = ", ".join(stage.inputs) or "(pipeline input)"
        print(
            f"  {stage.name}: {stage.definition.name} x{stage.workers} on {stage.backend_name}, "
            f"inputs: {inputs}"
        )
        shown = _shown_settings(stage)
        print("    " + ", ".join(f"{k} = {toml_value(v)}" for k, v in shown.items()))
    fused = [group for group in plan.groups if len(group) > 1]
    for group in fused:
        print(f"  fused, one worker runs: {' -> '.join(group)}")
    return EXIT_OK


def plan_listing(plan: PipelinePlan) -> dict[str, Any]:
    """What ``pydotcompute validate --json`` shows: each stage as validation resolved it,
    and the warnings about settings far beyond the machine."""
    return {
        "pipeline": plan.name,
        "warnings": [str(warning) for warning in plan.warnings],
        # The stages as they run: a fused chain in one set of workers, the rest alone.
        "groups": [list(group) for group in plan.groups],
        "stages": [
            {
                "name": stage.name,
                "stage": stage.definition.name,
                "inputs": list(stage.inputs),
                "outputs": list(stage.outputs),
                "settings": _shown_settings(stage),
                "params": {k: _plain(v) for k, v in stage.params.items()},
            }
            for stage in plan.stages
        ],
    }


def _shown_settings(stage: PlannedStage) -> dict[str, Any]:
    """Every setting of ``stage`` as it would be written in a pipeline file."""
    return {name: setting.show(stage.settings[name]) for name, setting in STAGE_SETTINGS.items()}


def _describe(exc: BaseException, path: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror or exc}"
    return str(exc)


# -- graph -------------------------------------------------------------------------------


def _cmd_graph(args: argparse.Namespace) -> int:
    plan = _plan_file(args.pipeline)
    if plan is None:
        return EXIT_USAGE
    try:
        if args.format == "mermaid":
            text = pipeline_mermaid(plan)
        else:
            text = pipeline_dot(plan)
            if args.format == "svg":
                text = render_svg(text)
    except GraphvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        print(f"error: {_describe(exc, args.output)}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


# -- run ---------------------------------------------------------------------------------


class _Source:
    """The records a run feeds: a file's good records, or synthetic ones. ``label(row)``
    names a record in output, ``labels(rows)`` names many at once."""

    def __init__(
        self,
        count: int,
        chunks: Callable[[int], Iterator[tuple[int, npt.NDArray[np.float32], Any]]],
        label: Callable[[int], Any],
        labels: Callable[[npt.NDArray[np.int64]], list[Any]],
        data: InputData | None = None,
        table: TableInput | None = None,
    ) -> None:
        self.count = count
        self.chunks = chunks
        self.label = label
        self.labels = labels
        self.data = data
        #: A Parquet or Arrow input, fed as it is read (it makes its own messages).
        self.table = table


def _file_source(data: InputData) -> _Source:
    def chunks(size: int) -> Iterator[tuple[int, npt.NDArray[np.float32], Any]]:
        for lo in range(0, len(data), size):
            hi = min(lo + size, len(data))
            values = data.values
            assert values is not None  # ragged data is fed by ragged_records
            yield lo, values[lo:hi], None if data.keys is None else data.keys[lo:hi]

    return _Source(len(data), chunks, data.label, data.labels, data)


def _synthetic_source(count: int, width: int, seed: int) -> _Source:
    # numpy loads numpy.random on first use (about 17 ms here): load it with the source,
    # not while the run's first chunk is drawn.
    importlib.import_module("numpy.random")

    def chunks(size: int) -> Iterator[tuple[int, npt.NDArray[np.float32], Any]]:
        for lo, values in synthetic_chunks(count, width, seed, size):
            yield lo, values, None

    return _Source(count, chunks, lambda row: row, lambda rows: rows.tolist())


def _messages(
    source: _Source, columnar: bool, batch: int, run_id: int, dtype: str | None = None
) -> Iterator[Any]:
    if source.data is not None and source.data.ragged is not None:
        yield from ragged_records(source.data, run_id)
        return
    if source.table is not None:
        yield from source.table.messages(
            columnar=columnar, batch_size=batch, run_id=run_id, dtype=dtype
        )
        return
    for lo, values, keys in source.chunks(batch):
        yield from records_from_array(
            values,
            columnar=columnar,
            batch_size=batch,
            keys=keys,
            run_id=run_id,
            start=lo,
            dtype=dtype,
        )


def _labeler(
    source: _Source, run_id: int
) -> tuple[Callable[[Any], list[Any]], Callable[[Any], Any]]:
    """``label(ids)`` -> output ids, ``row_of(ids)`` -> input rows (-1: not an input record)."""
    mine = record_ids_for_rows(0, 1, run_id)[0, 0]

    def row_of(ids: Any) -> npt.NDArray[np.int64]:
        arr = np.asarray(ids, dtype=np.uint64).reshape(-1, 2)
        rows = row_indices(arr)
        rows[(arr[:, 0] != mine) | (rows >= source.count)] = -1
        return rows

    def label(ids: Any) -> list[Any]:
        arr = np.asarray(ids, dtype=np.uint64).reshape(-1, 2)
        rows = row_of(arr)
        if (rows >= 0).all():
            return source.labels(rows)
        out: list[Any] = []
        for i, row in enumerate(rows.tolist()):
            if row >= 0:
                out.append(source.label(row))
            else:
                hi, lo = arr[i].tolist()
                out.append(str(UUID(int=(hi << 64) | lo)))
        return out

    return label, row_of


def _cmd_run(args: argparse.Namespace) -> int:
    keep_freed_memory()
    try:
        loop_name()  # a bad PYDOTCOMPUTE_LOOP is a usage error, before anything is read
    except InvalidArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.output is not None:
        try:  # before reading anything: the output must not overwrite what is read
            check_output_path(args.output, args.pipeline, *([args.input] if args.input else []))
        except InputFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    server: MetricsServer | None = None
    if args.metrics_port is not None:
        try:  # before anything is read or written: a port in use runs nothing
            server = MetricsServer(args.metrics_port, args.metrics_address)
        except RingKernelError as exc:
            print(f"error: --metrics-port: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        return _plan_and_run(args, server)
    finally:
        if server is not None:  # the run closes it too; not every path gets that far
            server.close()


def _plan_and_run(args: argparse.Namespace, server: MetricsServer | None) -> int:
    plan = _plan_file(args.pipeline)
    if plan is None:
        return EXIT_USAGE
    plan = _on_engine(args, plan, server)
    if plan is None:
        return EXIT_USAGE
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.output is not None:
        try:
            fmt = format_of(args.output, args.output_format, OUTPUT_FORMATS)
            problem = npy_output_problem(plan) if fmt == "npy" else None
            if problem is not None:
                raise InputFileError(args.output, problem)
        except InputFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    input_errors: list[Any] = []
    streamed = args.input is not None and _streamed(args.input, args.input_format)
    if streamed:
        try:
            table = TableInput(
                args.input,
                format_of(args.input, args.input_format, INPUT_FORMATS),
                require_key=routes_by_key(plan),
                one_width=args.mode == "columnar",
                dtype=plan.dtype,
            )
        except InputFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        input_errors = table.errors  # filled while the run reads the file
        source = _Source(table.count, _no_chunks, table.label, table.labels, table=table)
    elif args.input is not None:
        try:
            data = read_input(
                args.input,
                args.input_format,
                require_key=routes_by_key(plan),
                one_width=args.mode == "columnar",
                dtype=plan.dtype,
            )
        except InputFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        input_errors = list(data.errors)
        source = _file_source(data)
        _show_input_errors(input_errors)
    else:
        source = _synthetic_source(args.synthetic, args.width, args.seed)
    run_id = new_run_id()
    label, row_of = _labeler(source, run_id)
    writer: ResultWriter | None = None
    # From here on a signal ends the run gracefully, even one before the run starts.
    interrupt = Interrupt(
        lambda signum: _announce_interrupt(signum, args.drain_timeout),
        lambda: _save_at_once(writer),
    )
    try:
        if args.output is not None:
            try:
                writer = ResultWriter(
                    args.output,
                    args.output_format,
                    label=label,
                    row_of=row_of,
                    input_rows=source.count,
                )
            except (InputFileError, OSError) as exc:
                print(f"error: {_describe(exc, args.output)}", file=sys.stderr)
                return EXIT_USAGE
        messages = _messages(source, args.mode == "columnar", args.batch, run_id, plan.dtype)
        return _run_and_report(
            args, plan, messages, source, input_errors, writer, interrupt, server
        )
    finally:
        interrupt.restore()


def _streamed(path: str, fmt: str | None) -> bool:
    """Whether the input is read a piece at a time while the run goes (Parquet, Arrow)."""
    try:
        return format_of(path, fmt, INPUT_FORMATS) in STREAMED_FORMATS
    except InputFileError:
        return False  # read_input says what is wrong with it


def _no_chunks(size: int) -> Iterator[tuple[int, npt.NDArray[np.float32], Any]]:
    raise AssertionError("a streamed input makes its own messages")


def _run_and_report(
    args: argparse.Namespace,
    plan: PipelinePlan,
    messages: Iterator[Any],
    source: _Source,
    input_errors: list[Any],
    writer: ResultWriter | None,
    interrupt: Interrupt,
    server: MetricsServer | None = None,
) -> int:
    report: dict[str, Any] | None = None
    broke: RingKernelError | None = None
    unwritable: InputFileError | None = None
    try:
        report = run_on_loop(
            _drive(
                plan,
                messages,
                source.count,
                writer,
                _wants_progress(args),
                args.mode,
                interrupt=interrupt,
                drain_s=args.drain_timeout,
                metrics=server,
            )
        )
    except InputFileError as exc:  # the output failed mid-run (a full disk...)
        unwritable = exc
    except (PipelineRunError, RingKernelError) as exc:
        broke = exc
    finally:
        if source.table is not None:  # its good records, now that it is read
            source.count = source.table.good
            if writer is not None:
                writer.input_rows = source.count
        # After a failed write, closing fails the same way: one line says it.
        written = writer is None or _close_writer(writer, quiet=unwritable is not None)
    if unwritable is not None:
        print(f"error: {unwritable}; the run was stopped", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(broke, RayUnavailableError):  # the cluster asked for: the user's to fix
        print(f"error: {broke}", file=sys.stderr)
        return EXIT_USAGE
    if broke is not None:
        print(f"error: {broke} (traceback in {log_traceback(broke)})", file=sys.stderr)
        return EXIT_INTERNAL
    if not written:
        return EXIT_USAGE
    if source.table is not None:
        _show_input_errors(input_errors)  # found as the file was read
        if source.table.failure is not None:
            kept = "" if writer is None else f"; the results before it are in {writer.path}"
            print(f"error: {source.table.failure}; the run stopped there{kept}", file=sys.stderr)
            return EXIT_USAGE
    assert report is not None
    report["input"] = {
        "path": args.input,
        "synthetic": args.synthetic,
        "records": source.count,
        "bad_records": len(input_errors),
        "errors": [e.to_dict() for e in input_errors],
    }
    report["output"] = args.output
    if writer is not None:
        # .npy: input records with no row (they failed in a stage, or were not computed
        # before an interrupt); the rows keep input order with these left out.
        report["output_missing"] = writer.missing
        report["output_missing_ids"] = [source.label(row) for row in writer.first_missing.tolist()]
    print_report(report, args.json, wide=args.wide)
    if interrupt.signum is not None:
        return interrupt.exit_status
    clean = not input_errors and report["stage_errors"] == 0
    return EXIT_OK if clean else EXIT_PARTIAL


def _close_writer(writer: ResultWriter, *, quiet: bool = False) -> bool:
    """Finish the output file; False (the problem printed unless ``quiet``) if it
    could not be written."""
    try:
        writer.close()
    except (InputFileError, OSError) as exc:
        if not quiet:
            print(f"error: {_describe(exc, writer.path)}", file=sys.stderr)
        return False
    return True


def _announce_interrupt(signum: int, drain_s: float) -> None:
    name = signal.Signals(signum).name
    print(
        f"{name}: interrupted: no more input is fed; the records in flight get up to "
        f"{drain_s:g} s to finish, then what was computed is written; "
        f"{name} again exits at once",
        file=sys.stderr,
    )


def _save_at_once(writer: ResultWriter | None) -> None:
    """On a second signal, at once: JSON Lines keep every line written so far; an
    ``.npy`` array, written whole at the end or not at all, is not written."""
    if writer is None:
        return
    if writer.format == "npy":
        print(f"{writer.path}: not written (no time to build the array)", file=sys.stderr)
        with contextlib.suppress(FileNotFoundError):  # already gone: nothing to remove
            os.unlink(writer.path)
        return
    try:
        writer.close()
    except (InputFileError, OSError, RuntimeError, ValueError) as exc:
        # RuntimeError/ValueError: the signal came in the middle of a write to the file.
        print(f"{writer.path}: not finished: {exc}", file=sys.stderr)
    else:
        print(f"{writer.path}: the results written so far stay", file=sys.stderr)


def _wants_progress(args: argparse.Namespace) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    return not args.json and sys.stderr.isatty()


def _show_input_errors(errors: Sequence[Any]) -> None:
    for error in errors[:_MAX_SHOWN_ERRORS]:
        print(f"bad record skipped: {error}", file=sys.stderr)
    if len(errors) > _MAX_SHOWN_ERRORS:
        print(f"... and {len(errors) - _MAX_SHOWN_ERRORS} more bad records", file=sys.stderr)


async def _drive(
    plan: PipelinePlan,
    messages: Iterator[Any],
    total: int,
    writer: ResultWriter | None,
    progress: bool,
    mode: str,
    on_result: Callable[[Any], None] | None = None,
    interrupt: Interrupt | None = None,
    drain_s: float = _INTERRUPT_DRAIN_S,
    metrics: MetricsServer | None = None,
) -> dict[str, Any]:
    """Run ``plan`` over ``messages``, writing results; return the report data.
    ``metrics``: the endpoint to serve the run's Prometheus metrics on.

    With ``interrupt``, SIGINT/SIGTERM stop the feeding; what is in flight gets
    ``drain_s`` seconds to come out (and be written); then the workers are stopped, and
    the results they computed that were not read yet are written too.

    Raises:
        InputFileError: writing a result to the output failed.
    """
    results = 0
    stage_errors = 0
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    abandoned = False
    unwritable: InputFileError | None = None
    async with _open_run(plan, metrics) as run:
        if run.metrics_url is not None:
            print(f"serving metrics at {run.metrics_url}", file=sys.stderr, flush=True)
        display = Progress(run, total) if progress else None
        watcher = loop.create_task(display.watch()) if display else None

        def take(msg: Any) -> None:
            nonlocal results, stage_errors, unwritable
            count = record_count(msg)
            if type(msg) is StageError:
                stage_errors += count
            results += count
            if writer is not None and unwritable is None:
                try:
                    writer.write(msg)
                except OSError as exc:
                    # Stop as after an interrupt: the run ends with nothing left
                    # behind, and the caller reports the one problem.
                    unwritable = InputFileError(writer.path, f"cannot write: {exc.strerror or exc}")
                    stop_feeding()
                except InputFileError as exc:  # a result the output's table cannot hold
                    unwritable = exc
                    stop_feeding()
            if on_result is not None:
                on_result(msg)
            if display is not None:
                display.results = results

        async def consume() -> None:
            async for msg in run.process(_until(messages, stop)):
                take(msg)

        consumer = loop.create_task(consume())

        def give_up() -> None:
            nonlocal abandoned
            if not consumer.done():
                abandoned = True
                consumer.cancel()

        def stop_feeding(signum: int = 0) -> None:
            if not stop.is_set():
                stop.set()
                loop.call_later(drain_s, give_up)

        if interrupt is not None:
            interrupt.install(loop, stop_feeding)
        try:
            await consumer
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not abandoned or (current is not None and current.cancelling()):
                raise
        finally:
            if not consumer.done():
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)
            if abandoned:
                # Past the bound the stages stop; what they computed is still written.
                for msg in await run.stop_and_collect():
                    take(msg)
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            if display is not None:
                display.stop()
        seconds = time.perf_counter() - started
    if unwritable is not None:
        raise unwritable
    telemetry = run.telemetry()
    signum = None if interrupt is None else interrupt.signum
    return {
        "pipeline": plan.name,
        "engine": plan.engine,
        "mode": mode,
        "loop": "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio",
        "interrupted": signum is not None,
        "signal": None if signum is None else signal.Signals(signum).name,
        # Interrupted: the records in flight did not all come out within the bound.
        "in_flight_abandoned": abandoned,
        "messages_left_behind": 0 if run.report is None else run.report.leftover_count,
        "records_fed": run.records_fed,
        "records_rejected_at_input": run.records_rejected_at_input,
        "results": results,
        "stage_errors": stage_errors,
        "seconds": seconds,
        "records_per_s": run.records_fed / seconds if seconds > 0 else 0.0,
        "stages": {name: t.to_dict() for name, t in telemetry.items()},
    }


def _on_engine(
    args: argparse.Namespace, plan: PipelinePlan, server: MetricsServer | None
) -> PipelinePlan | None:
    """``plan`` on the engine (and Ray cluster) the command line chose over the file's;
    None: a usage error, said on stderr."""
    engine = args.engine or plan.engine
    if engine != "ray":
        if args.address is not None:
            print("error: --address is for engine ray (--engine ray)", file=sys.stderr)
            return None
        return dataclasses.replace(plan, engine=engine)
    if server is not None:
        print("error: --metrics-port serves the local engine's runs only", file=sys.stderr)
        return None
    try:
        import_ray()  # before anything is read: a missing extra is said at once
    except RayUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    address = plan.address if args.address is None else args.address
    return dataclasses.replace(plan, engine=engine, address=address)


def _open_run(plan: PipelinePlan, metrics: MetricsServer | None) -> AnyRun:
    if plan.engine == "ray":
        return open_run(plan, relax_gc=True)
    return PipelineRun(plan, relax_gc=True, metrics_server=metrics)


def _until(messages: Iterator[Any], stop: asyncio.Event) -> Iterator[Any]:
    """``messages`` until ``stop`` is set (then the run's input ends, and it drains)."""
    for msg in messages:
        if stop.is_set():
            return
        yield msg


# -- demo --------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        plan = Pipeline.from_toml_text(GUIDE_PIPELINE_TOML, source="<guide pipeline>").validate()
    except PipelineValidationError as exc:
        print(
            f"error: {exc}\nthe demo runs the stages of pydotcompute-stages: "
            "pip install pydotcompute-stages",
            file=sys.stderr,
        )
        return EXIT_USAGE
    source = _synthetic_source(args.records, args.width, seed=0)
    run_id = new_run_id()
    label, _ = _labeler(source, run_id)
    shown: list[str] = []

    def show(msg: Any) -> None:
        if len(shown) < args.show and hasattr(msg, "result"):
            (row,) = label(ids_to_array([msg.correlation_id]))
            shown.append(
                f"record {row}: result {msg.result:.6f} (correlation_id {msg.correlation_id})"
            )

    if not args.json:
        print(
            "The guide's pipeline: RawData-style records -> preprocess (min-max normalize) "
            "-> compute (mean), one message per record, kernel-to-kernel routes."
        )
    messages = _messages(source, columnar=False, batch=4096, run_id=run_id)
    try:
        report = run_on_loop(
            _drive(plan, messages, source.count, None, _wants_progress(args), "per-message", show)
        )
    except (PipelineRunError, RingKernelError) as exc:
        print(f"error: {exc} (traceback in {log_traceback(exc)})", file=sys.stderr)
        return EXIT_INTERNAL
    if not args.json:
        for line in shown:
            print(line)
    print_report(report, args.json, wide=args.wide)
    return EXIT_OK if report["stage_errors"] == 0 else EXIT_PARTIAL
