"""``pydotcompute graph``: every example file drawn in every format this machine has,
each drawing read back and checked against the plan that ``validate --json`` prints
(every stage with its workers and backend, every edge with its queue, every fused
group), and the ways it fails: a bad file, no Graphviz, a Graphviz that fails, an
output that cannot be written."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT, one_error_line, pydotcompute

EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
HAVE_DOT = shutil.which("dot") is not None
FORMATS = [
    "mermaid",
    "dot",
    pytest.param(
        "svg",
        marks=pytest.mark.skipif(
            not HAVE_DOT, reason="Graphviz's dot is not installed (the error path is tested below)"
        ),
    ),
]


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment under which examples/plugin's ``clip`` stage is installed: its source
    on the path, and a distribution's metadata with its entry point (what pip would
    leave), so that clip.toml validates like the other examples."""
    site = tmp_path_factory.mktemp("site")
    info = site / "pydotcompute_example_clip-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pydotcompute-example-clip\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[pydotcompute]\nclip = pydotcompute_example_clip\n")
    (info / "RECORD").write_text("")
    path = [str(site), str(ROOT / "examples" / "plugin" / "src")]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(path)}


@dataclass
class Drawing:
    """What a picture shows, read back from its text: the same shape for every format."""

    nodes: dict[str, list[str]] = field(default_factory=dict)  # id -> label lines
    edges: list[tuple[str, str, str, bool]] = field(default_factory=list)  # src, dst, label, fused
    groups: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> label, members

    def node_named(self, name: str) -> str:
        (found,) = [i for i, lines in self.nodes.items() if lines[0] == name]
        return found


def read_mermaid(text: str) -> Drawing:
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    drawing = Drawing()
    group: str | None = None
    for line in lines[1:]:
        line = line.strip()
        if not line or line.startswith("%%"):
            continue
        if m := re.fullmatch(r'subgraph (\w+)\["(.*)"\]', line):
            group = m[1]
            drawing.groups[group] = (unescape_mermaid(m[2]), [])
        elif line == "end":
            group = None
        elif m := re.fullmatch(r'(\w+)(?:\[|\(\[)"(.*)"(?:\]|\]\))', line):
            text_lines = [unescape_mermaid(re.sub(r"</?b>", "", s)) for s in m[2].split("<br/>")]
            drawing.nodes[m[1]] = text_lines
            if group is not None:
                drawing.groups[group][1].append(m[1])
        elif m := re.fullmatch(r'(\w+) (-->|-\.->)(?:\|"(.*)"\|)? (\w+)', line):
            drawing.edges.append((m[1], m[4], unescape_mermaid(m[3] or ""), m[2] == "-.->"))
        else:
            pytest.fail(f"a Mermaid line not understood: {line!r}")
    return drawing


def unescape_mermaid(text: str) -> str:
    for code, char in {"#quot;": '"', "#lt;": "<", "#gt;": ">", "#amp;": "&", "#35;": "#"}.items():
        text = text.replace(code, char)
    return text


def read_dot(text: str) -> Drawing:
    lines = text.splitlines()
    assert re.fullmatch(r'digraph ".*" \{', lines[0]) and lines[-1] == "}"
    drawing = Drawing()
    group: str | None = None
    quoted = r'"((?:[^"\\]|\\.)*)"'
    for line in lines[1:-1]:
        line = line.strip()
        if re.fullmatch(r"(rankdir=LR|graph \[.*\]|node \[.*\]|edge \[.*\]);", line):
            continue
        if m := re.fullmatch(r"subgraph cluster_(\w+) \{", line):
            group = m[1]
            drawing.groups[group] = ("", [])
        elif m := re.fullmatch(rf"label={quoted}; style=dashed;", line):
            assert group is not None
            drawing.groups[group] = (unescape_dot(m[1]), [])
        elif line == "}":
            group = None
        elif m := re.fullmatch(rf"(\w+) \[label={quoted}(?:, shape=oval)?\];", line):
            drawing.nodes[m[1]] = unescape_dot(m[2]).split("\n")
            if group is not None:
                drawing.groups[group][1].append(m[1])
        elif m := re.fullmatch(rf"(\w+) -> (\w+)(?: \[label={quoted}(, style=dashed)?\])?;", line):
            drawing.edges.append((m[1], m[2], unescape_dot(m[3] or ""), bool(m[4])))
        else:
            pytest.fail(f"a DOT line not understood: {line!r}")
    return drawing


def unescape_dot(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text)


def read_svg(text: str) -> Drawing:
    """Graphviz's SVG: a <g class="node|edge|cluster"> per element, its <title> the id
    (an edge's: "a->b"), its <text>s the label's lines; a fused group's nodes lie
    inside its cluster's box."""
    ns = {"svg": "http://www.w3.org/2000/svg"}
    root = ET.fromstring(text)
    drawing = Drawing()
    boxes: dict[str, tuple[float, float, float, float]] = {}
    where: dict[str, tuple[float, float]] = {}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        title = g.findtext("svg:title", namespaces=ns) or ""
        texts = [t.text or "" for t in g.findall("svg:text", ns)]
        kind = g.get("class")
        if kind == "node":
            drawing.nodes[title] = texts
            first = g.find("svg:text", ns)
            assert first is not None
            where[title] = (float(first.get("x", "nan")), float(first.get("y", "nan")))
        elif kind == "edge":
            source, target = title.split("->")
            path = g.find("svg:path", ns)
            assert path is not None
            dashed = path.get("stroke-dasharray") is not None
            drawing.edges.append((source, target, " ".join(texts), dashed))
        elif kind == "cluster":
            gid = title.removeprefix("cluster_")
            polygon = g.find("svg:polygon", ns)
            assert polygon is not None
            points = [tuple(map(float, p.split(","))) for p in polygon.get("points", "").split()]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            boxes[gid] = (min(xs), min(ys), max(xs), max(ys))
            drawing.groups[gid] = (" ".join(texts), [])
    for gid, (x0, y0, x1, y1) in boxes.items():
        inside = [n for n, (x, y) in where.items() if x0 <= x <= x1 and y0 <= y <= y1]
        drawing.groups[gid][1].extend(sorted(inside, key=lambda n: where[n][0]))
    return drawing


READERS = {"mermaid": read_mermaid, "dot": read_dot, "svg": read_svg}


def check_drawing(drawing: Drawing, plan: dict[str, Any]) -> None:
    """The drawing shows exactly what ``plan`` (``validate --json``) says will run."""
    stages = {s["name"]: s for s in plan["stages"]}
    fused = [g for g in plan["groups"] if len(g) > 1]
    group_of = {name: tuple(g) for g in plan["groups"] for name in g}
    ids = {name: drawing.node_named(name) for name in stages}
    assert drawing.node_named("input") == "pipeline_input"
    expected_nodes = {"pipeline_input": ["input"], "pipeline_output": ["output"]}
    for name, stage in stages.items():
        s = stage["settings"]
        workers = "1 worker" if s["workers"] == 1 else f"{s['workers']} workers"
        kind = [] if stage["stage"] == name else [f"stage: {stage['stage']}"]
        restart = (
            []
            if s["restart"] == "never"
            else [f"restart: {s['restart']['max_restarts']} in {s['restart']['window']:g} s"]
        )
        expected_nodes[ids[name]] = [name, *kind, f"{workers} on {s['backend']}", *restart]
    assert drawing.nodes == expected_nodes

    expected_edges = []
    for name, stage in stages.items():
        s = stage["settings"]
        for upstream in stage["inputs"] or [None]:
            source = "pipeline_input" if upstream is None else ids[upstream]
            if upstream is not None and group_of[upstream] == group_of[name]:
                expected_edges.append((source, ids[name], "fused: no queue", True))
            else:
                per = " per worker" if s["workers"] > 1 else ""
                label = f"queue {s['queue_size']}{per}, {s['backpressure']}"
                expected_edges.append((source, ids[name], label, False))
        if not stage["outputs"]:
            expected_edges.append((ids[name], "pipeline_output", "", False))
    assert sorted(drawing.edges) == sorted(expected_edges)

    shown = sorted((label, members) for label, members in drawing.groups.values())
    assert shown == sorted(
        (f"fused: one set of workers runs {' -> '.join(g)}", [ids[n] for n in g]) for g in fused
    )


def validated(path: Path, env: dict[str, str]) -> dict[str, Any]:
    done = pydotcompute("validate", str(path), "--json", env=env)
    assert done.returncode == 0, done.stderr
    plan: dict[str, Any] = json.loads(done.stdout)
    return plan


def test_the_examples_hold_dags_and_fused_groups() -> None:
    """The examples are worth drawing: a fan-in, a fan-out, and a fused chain are among them."""
    assert {p.name for p in EXAMPLES} >= {"guide.toml", "dag.toml", "fan_out_fan_in.toml"}


@pytest.fixture(scope="module")
def example_plans(plugin_env: dict[str, str]) -> dict[Path, dict[str, Any]]:
    """What ``validate --json`` says of each example (once per example, not per format)."""
    return {path: validated(path, plugin_env) for path in EXAMPLES}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_drawn_as_it_would_run(
    path: Path,
    fmt: str,
    plugin_env: dict[str, str],
    example_plans: dict[Path, dict[str, Any]],
    tmp_path: Path,
) -> None:
    plan = example_plans[path]
    done = pydotcompute("graph", str(path), "--format", fmt, env=plugin_env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    check_drawing(READERS[fmt](done.stdout), plan)
    # -o writes the same drawing to a file, and nothing to stdout.
    out = tmp_path / f"drawing.{fmt}"
    written = pydotcompute("graph", str(path), "--format", fmt, "-o", str(out), env=plugin_env)
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert out.read_text(encoding="utf-8") == done.stdout


def test_mermaid_is_the_default_format() -> None:
    done = pydotcompute("graph", str(ROOT / "examples" / "guide.toml"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("flowchart LR\n")


def test_the_dag_example_fans_out_and_in() -> None:
    """Read against the file itself: normalize feeds center and spread, both feed gather."""
    drawing = read_mermaid(pydotcompute("graph", str(ROOT / "examples" / "dag.toml")).stdout)
    n = drawing.node_named
    pairs = {(a, b) for a, b, _, _ in drawing.edges}
    assert pairs == {
        ("pipeline_input", n("normalize")),
        (n("normalize"), n("center")),
        (n("normalize"), n("spread")),
        (n("center"), n("gather")),
        (n("spread"), n("gather")),
        (n("gather"), "pipeline_output"),
    }
    assert drawing.nodes[n("spread")] == ["spread", "stage: compute", "2 workers on numpy"]


STRANGE = """\
[pipeline]
name = "odd \\"names\\""

[stages.'a "quoted" <b> & #1 \\ back']
stage = "preprocess"
queue_size = 64
backpressure = "drop_oldest"
restart = { max_restarts = 2, window = 30.0 }

[stages."x -> y"]
stage = "compute"
params = { stats = ["mean"] }
"""


@pytest.mark.parametrize("fmt", FORMATS)
def test_names_that_look_like_syntax_are_drawn_as_written(fmt: str, tmp_path: Path) -> None:
    """Stage names are whatever the TOML table says: quotes, brackets, #, & and
    backslashes come out as text, not as Mermaid or DOT syntax; a lossy queue is not
    fused over, and a restart policy is shown."""
    path = tmp_path / "strange.toml"
    path.write_text(STRANGE)
    plan = validated(path, {})
    assert plan["groups"] == [['a "quoted" <b> & #1 \\ back'], ["x -> y"]]
    done = pydotcompute("graph", str(path), "--format", fmt)
    assert done.returncode == 0, done.stderr
    drawing = READERS[fmt](done.stdout)
    check_drawing(drawing, plan)
    first = drawing.node_named('a "quoted" <b> & #1 \\ back')
    assert drawing.nodes[first][-1] == "restart: 2 in 30 s"
    assert ("pipeline_input", first, "queue 64, drop_oldest", False) in drawing.edges


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "svg"])
def test_a_bad_file_is_one_error_line_naming_it(fmt: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert one_error_line(pydotcompute("graph", str(missing), "--format", fmt)) == (
        f"error: {missing}: no such file"
    )
    broken = tmp_path / "broken.toml"
    broken.write_text('[stages.a]\nstage = "preprocess"\n\n[stages.b]\nstage = "nope"\n')
    line = one_error_line(pydotcompute("graph", str(broken), "--format", fmt))
    assert line.startswith(f"error: {broken}:5: stage 'b': ")
    assert "'nope'" in line
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\x00\xff[[[ not toml")
    assert str(garbage) in one_error_line(pydotcompute("graph", str(garbage), "--format", fmt))


def test_several_problems_are_each_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cycle.toml"
    path.write_text(
        '[stages.a]\nstage = "preprocess"\ninputs = ["b"]\n'
        '[stages.b]\nstage = "compute"\ninputs = ["a"]\nworkers = 0\n'
    )
    done = pydotcompute("graph", str(path))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {path}:") for line in lines)
    assert done.stdout == ""


def test_an_unknown_format_is_a_usage_error() -> None:
    done = pydotcompute("graph", str(ROOT / "examples" / "guide.toml"), "--format", "png")
    assert done.returncode == 2
    assert "invalid choice: 'png'" in done.stderr


def path_with_only(tmp_path: Path, programs: dict[str, str]) -> dict[str, str]:
    """An environment whose PATH holds only ``programs`` (name -> shell script)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in programs.items():
        program = bin_dir / name
        program.write_text(f"#!/bin/sh\n{script}\n")
        program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return {"PATH": str(bin_dir)}


def test_svg_without_graphviz_says_how_to_get_it(tmp_path: Path) -> None:
    out = tmp_path / "guide.svg"
    env = path_with_only(tmp_path, {})
    done = pydotcompute(
        "graph", str(ROOT / "examples" / "guide.toml"), "--format", "svg", "-o", str(out), env=env
    )
    line = one_error_line(done)
    assert "Graphviz's `dot` program, not found on PATH" in line
    assert "install Graphviz" in line and "https://graphviz.org/download/" in line
    assert "--format mermaid" in line
    assert "Traceback" not in done.stderr
    assert not out.exists()
    assert done.stdout == ""


def test_a_failing_graphviz_is_one_line_with_its_message(tmp_path: Path) -> None:
    env = path_with_only(
        tmp_path, {"dot": '/bin/cat >/dev/null; echo "Error: layout crashed" >&2; exit 3'}
    )
    line = one_error_line(
        pydotcompute("graph", str(ROOT / "examples" / "guide.toml"), "--format", "svg", env=env)
    )
    assert "Graphviz's dot" in line and "failed: Error: layout crashed" in line


def test_svg_is_what_graphviz_made_of_the_dot_text(tmp_path: Path) -> None:
    """The dot program gets the DOT drawing on stdin and -Tsvg; its output is written as is."""
    seen = tmp_path / "seen.dot"
    env = path_with_only(tmp_path, {"dot": f'/bin/cat >"{seen}"; echo "<svg>$1</svg>"'})
    done = pydotcompute("graph", str(ROOT / "examples" / "dag.toml"), "--format", "svg", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "<svg>-Tsvg</svg>\n"
    dot = pydotcompute("graph", str(ROOT / "examples" / "dag.toml"), "--format", "dot")
    assert seen.read_text() == dot.stdout


def test_an_output_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "g.mmd"
    line = one_error_line(
        pydotcompute("graph", str(ROOT / "examples" / "guide.toml"), "-o", str(target))
    )
    assert line.startswith(f"error: {target}: ")
