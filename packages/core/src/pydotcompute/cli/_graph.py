"""``pydotcompute graph``: a picture of a validated pipeline, as Mermaid, DOT or SVG.

The picture is drawn from the plan, not the file, so it shows what would run: every
stage with its type, workers and backend; the pipeline's input feeding the sources and
the sinks feeding its output; on each edge, the queue in front of the stage it enters
(its size and backpressure); and each fused chain as a box around its stages, joined by
edges with no queue. SVG is DOT laid out by Graphviz's ``dot`` program, when it is on
``PATH``.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from typing import Final

from ..pipeline import PipelinePlan, PlannedStage
from ..runtime import RestartPolicy

__all__ = [
    "GRAPH_FORMATS",
    "GraphvizError",
    "PipelineGraph",
    "pipeline_dot",
    "pipeline_graph",
    "pipeline_mermaid",
    "render_svg",
]

GRAPH_FORMATS: Final = ("mermaid", "dot", "svg")

#: How a user without Graphviz gets it (said in the error, on one line).
GRAPHVIZ_HINT: Final = (
    "install Graphviz (https://graphviz.org/download/: `apt install graphviz`, "
    "`brew install graphviz`, `conda install graphviz` or `winget install graphviz`), "
    "or draw with --format mermaid or --format dot"
)
#: Seconds Graphviz gets to lay out one pipeline (a few stages take milliseconds).
_DOT_TIMEOUT_S: Final = 60.0


class GraphvizError(Exception):
    """SVG was asked for, and Graphviz's ``dot`` is missing or failed (the message
    says which, and how to get it)."""


@dataclasses.dataclass(frozen=True)
class Node:
    """One box of the picture: a stage, or the pipeline's input or output."""

    id: str  #: safe in both languages: letters, digits and underscores
    lines: tuple[str, ...]  #: the label, first line the name
    kind: str  #: "stage", "input" or "output"


@dataclasses.dataclass(frozen=True)
class Edge:
    source: str  #: node id
    target: str  #: node id
    label: str  #: "" for none
    fused: bool  #: inside a fused chain: no queue between the two


@dataclasses.dataclass(frozen=True)
class Group:
    """A fused chain: these stages run one after the other in the same workers."""

    id: str
    label: str
    members: tuple[str, ...]  #: node ids, in order


@dataclasses.dataclass(frozen=True)
class PipelineGraph:
    """What every format draws: the same nodes, edges and fused groups."""

    name: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    groups: tuple[Group, ...]


INPUT_ID: Final = "pipeline_input"
OUTPUT_ID: Final = "pipeline_output"


def pipeline_graph(plan: PipelinePlan) -> PipelineGraph:
    """The nodes, edges and fused groups of ``plan``, ready to draw."""
    ids = {stage.name: f"s{i}" for i, stage in enumerate(plan.stages)}
    nodes = [Node(INPUT_ID, ("input",), "input")]
    nodes += [Node(ids[s.name], _stage_lines(s), "stage") for s in plan.stages]
    if plan.sinks:
        nodes.append(Node(OUTPUT_ID, ("output",), "output"))
    edges: list[Edge] = []
    for stage in plan.stages:
        fused = bool(stage.inputs) and plan.group_of(stage.name) == plan.group_of(stage.inputs[0])
        queue = "fused: no queue" if fused else _queue_label(stage)
        for upstream in stage.inputs or (None,):
            source = INPUT_ID if upstream is None else ids[upstream]
            edges.append(Edge(source, ids[stage.name], queue, fused))
    edges += [Edge(ids[s.name], OUTPUT_ID, "", False) for s in plan.sinks]
    groups = tuple(
        Group(
            f"fused_{i}",
            f"fused: one set of workers runs {' -> '.join(group)}",
            tuple(ids[name] for name in group),
        )
        for i, group in enumerate(g for g in plan.groups if len(g) > 1)
    )
    return PipelineGraph(plan.name, tuple(nodes), tuple(edges), groups)


def _stage_lines(stage: PlannedStage) -> tuple[str, ...]:
    workers = "1 worker" if stage.workers == 1 else f"{stage.workers} workers"
    lines = [stage.name]
    if stage.definition.name != stage.name:
        lines.append(f"stage: {stage.definition.name}")
    lines.append(f"{workers} on {stage.backend_name}")
    if stage.restart != RestartPolicy.never():
        policy = stage.restart
        lines.append(f"restart: {policy.max_restarts} in {policy.window:g} s")
    return tuple(lines)


def _queue_label(stage: PlannedStage) -> str:
    per = " per worker" if stage.workers > 1 else ""
    return f"queue {stage.queue_size}{per}, {stage.backpressure.value}"


# -- Mermaid -----------------------------------------------------------------------------


def pipeline_mermaid(plan: PipelinePlan) -> str:
    """``plan`` as a Mermaid flowchart (GitHub and mkdocs-material draw these)."""
    graph = pipeline_graph(plan)
    grouped = {member: group for group in graph.groups for member in group.members}
    out = ["flowchart LR", f"    %% pipeline {_mermaid_text(graph.name)}"]
    for node in graph.nodes:
        if node.id not in grouped:
            out.append(f"    {_mermaid_node(node)}")
    for group in graph.groups:
        out.append(f'    subgraph {group.id}["{_mermaid_text(group.label)}"]')
        out += [f"        {_mermaid_node(n)}" for n in graph.nodes if n.id in group.members]
        out.append("    end")
    for edge in graph.edges:
        arrow = "-.->" if edge.fused else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        out.append(f"    {edge.source} {arrow}{label} {edge.target}")
    return "\n".join(out) + "\n"


def _mermaid_node(node: Node) -> str:
    text = "<br/>".join(
        f"<b>{_mermaid_text(line)}</b>" if i == 0 and node.kind == "stage" else _mermaid_text(line)
        for i, line in enumerate(node.lines)
    )
    opening, closing = ("[", "]") if node.kind == "stage" else ("([", "])")
    return f'{node.id}{opening}"{text}"{closing}'


def _mermaid_text(text: str) -> str:
    """``text`` as Mermaid shows it inside quotes: entity codes for what it would read
    as syntax or markup (a stage's name is whatever its TOML table says)."""
    escapes = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}
    return "".join(escapes.get(char, char) for char in text).replace("\n", " ")


# -- DOT and SVG ------------------------------------------------------------------------


def pipeline_dot(plan: PipelinePlan) -> str:
    """``plan`` in Graphviz's DOT language."""
    graph = pipeline_graph(plan)
    grouped = {member for group in graph.groups for member in group.members}
    out = [
        f"digraph {_dot_string(graph.name)} {{",
        "    rankdir=LR;",
        '    graph [fontname="Helvetica"];',
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in graph.nodes:
        if node.id not in grouped:
            out.append(f"    {_dot_node(node)}")
    for group in graph.groups:
        out.append(f"    subgraph cluster_{group.id} {{")
        out.append(f"        label={_dot_string(group.label)}; style=dashed;")
        out += [f"        {_dot_node(n)}" for n in graph.nodes if n.id in group.members]
        out.append("    }")
    for edge in graph.edges:
        attributes = [f"label={_dot_string(edge.label)}"] if edge.label else []
        if edge.fused:
            attributes.append("style=dashed")
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        out.append(f"    {edge.source} -> {edge.target}{suffix};")
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_node(node: Node) -> str:
    shape = "" if node.kind == "stage" else ", shape=oval"
    # \n centres each line; a backslash of the user's own text is doubled first.
    label = _dot_string("\n".join(node.lines))
    return f"{node.id} [label={label}{shape}];"


def _dot_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def render_svg(dot_source: str) -> str:
    """``dot_source`` laid out by Graphviz as SVG.

    Raises:
        GraphvizError: ``dot`` is not on ``PATH``, or it failed (its own message given).
    """
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizError(
            f"--format svg needs Graphviz's `dot` program, not found on PATH: {GRAPHVIZ_HINT}"
        )
    try:
        done = subprocess.run(
            [dot, "-Tsvg"],
            input=dot_source,
            capture_output=True,
            text=True,
            timeout=_DOT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphvizError(f"Graphviz's dot ({dot}) could not run: {exc}") from exc
    if done.returncode != 0 or not done.stdout:
        said = " ".join(done.stderr.split()) or f"exit status {done.returncode}, no output"
        raise GraphvizError(f"Graphviz's dot ({dot}) failed: {said}")
    return done.stdout
