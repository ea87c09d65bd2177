"""The documentation runs as written.

For every page under docs/ (in the order the page gives them, in a fresh temp dir):

* every ```python block runs, all of a page's blocks in one namespace; a ```text block
  right after a ```python block is that block's output, and must be what it prints;
* every ```toml block is valid TOML, and one with ``[stages...]`` is a pipeline that
  validates against the installed stages (and examples/plugin's ``clip``);
* every ``$ pydotcompute ...`` line of a ```console block runs; the lines under it are
  its output: each must appear in what it printed, and only a command shown failing
  (an ``error:`` line under it) may exit non-zero.

Other ```text blocks are output samples. The generated reference pages (docs/hooks.py)
are checked to cover every stage setting and every command.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cli_helpers import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)


@dataclass
class Block:
    lang: str
    body: str
    line: int  # where it starts in its page

    def where(self, page: Path) -> str:
        return f"{page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        indent = len(m["indent"])
        body = "".join(line[indent:] for line in m["body"].splitlines(keepends=True))
        lang = m["info"].strip().split(" ")[0] if m["info"].strip() else ""
        found.append(Block(lang, body, text.count("\n", 0, m.start()) + 1))
    return found


def load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOOKS = load_hooks()


def page_id(page: Path) -> str:
    return str(page.relative_to(DOCS))


def test_the_site_has_the_pages_the_nav_names() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    named = set(re.findall(r":\s+([\w/-]+\.md)\s*$", nav, flags=re.M))
    assert named, "mkdocs.yml names no pages"
    assert {n for n in named if not (DOCS / n).is_file()} == set()
    assert {page_id(p) for p in PAGES} <= named, "a page under docs/ is not in the nav"


def test_every_kind_of_block_is_known() -> None:
    known = {"python", "toml", "console", "text", "mermaid"}
    strays = [
        f"{b.where(p)}: ```{b.lang}" for p in PAGES for b in blocks_of(p) if b.lang not in known
    ]
    assert strays == []


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_page_runs_as_written(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", plugin_path(tmp_path))
    # One module per page, as a script would be: dataclasses look their module up.
    module = ModuleType("docs_page_" + re.sub(r"\W", "_", page_id(page)))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    blocks = blocks_of(page)
    for i, block in enumerate(blocks):
        if block.lang == "python":
            printed = run_python(block, page, namespace)
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            if after is not None and after.lang == "text":
                assert printed.strip() == after.body.strip(), (
                    f"{block.where(page)} prints something else than {after.where(page)} shows"
                )
        elif block.lang == "toml":
            check_toml(block, page)
        elif block.lang == "console":
            run_console(block, page, tmp_path)


def run_python(block: Block, page: Path, namespace: dict[str, Any]) -> str:
    out = io.StringIO()
    code = compile("\n" * (block.line) + block.body, str(page), "exec")
    with contextlib.redirect_stdout(out):
        exec(code, namespace)
    return out.getvalue()


def check_toml(block: Block, page: Path) -> None:
    try:
        data = tomllib.loads(block.body)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{block.where(page)}: not TOML: {exc}")
    if "stages" in data:
        from pydotcompute import Pipeline

        Pipeline.from_toml_text(block.body, source=block.where(page)).validate(
            HOOKS.example_plugins()
        )


def plugin_path(tmp_path: Path) -> str:
    """A path on which examples/plugin is installed (its source, and the metadata of
    its entry point), as if `pip install ./examples/plugin` had run."""
    site = tmp_path.parent / f"{tmp_path.name}-site"
    info = site / "pydotcompute_example_clip-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pydotcompute-example-clip\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text("[pydotcompute]\nclip = pydotcompute_example_clip\n")
    (info / "RECORD").write_text("")
    parts = [str(site), str(ROOT / "examples" / "plugin" / "src")]
    return os.pathsep.join([*parts, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


def console_commands(body: str) -> list[tuple[str, list[str]]]:
    """Each ``$ `` line with the output lines under it."""
    commands: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
    return commands


def run_console(block: Block, page: Path, cwd: Path) -> None:
    examples = cwd / "examples"
    if not examples.exists():
        examples.symlink_to(ROOT / "examples")
    for command, expected in console_commands(block.body):
        argv = shlex.split(command, comments=True)
        if not argv or argv[0] != "pydotcompute":
            continue  # pip install and the like: not run here
        done = subprocess.run(
            [sys.executable, "-m", "pydotcompute.cli", *argv[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=cwd,
        )
        said = done.stdout + done.stderr
        shows_failure = any(line.startswith("error:") for line in expected)
        assert (done.returncode != 0) == shows_failure, (
            f"{block.where(page)}: `{command}` exited {done.returncode}:\n{said}"
        )
        for line in expected:
            assert line.strip() in said, (
                f"{block.where(page)}: `{command}` did not print {line.strip()!r}:\n{said}"
            )


# -- the generated reference ---------------------------------------------------------


def test_the_pipeline_file_reference_covers_every_setting() -> None:
    from pydotcompute.cli import toml_value
    from pydotcompute.pipeline import STAGE_SETTINGS

    page = (DOCS / "reference" / "pipeline-file.md").read_text()
    assert "<!-- pydotcompute: settings -->" in page
    text = HOOKS.expand(page)
    for setting in STAGE_SETTINGS.values():
        assert f"### `{setting.name}` {{#{setting.name}}}" in text
        assert (
            f"| [`{setting.name}`](#{setting.name}) | `{toml_value(setting.default)}` | {setting.accepts} |"
            in text
        )
        assert setting.doc[1:] in text
    assert text.count("\n### `") == len(STAGE_SETTINGS)


def test_the_cli_reference_covers_every_command_and_option() -> None:
    from pydotcompute.cli import command_parser

    page = (DOCS / "reference" / "cli.md").read_text()
    assert "<!-- pydotcompute: cli -->" in page
    text = HOOKS.expand(page)
    subcommands = HOOKS._subcommands(command_parser())
    assert {"run", "validate", "graph", "settings", "stages", "demo"} <= set(subcommands)
    for name, sub in subcommands.items():
        assert f"## `pydotcompute {name}`" in text
        for action in sub.parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in text, (name, option)


def test_every_example_pipeline_is_pictured() -> None:
    pictured = set()
    for page in PAGES:
        pictured |= set(re.findall(r"<!-- pydotcompute: graph (\S+) -->", page.read_text()))
    examples = {f"examples/{p.name}" for p in (ROOT / "examples").glob("*.toml")}
    assert pictured >= examples


def test_a_picture_is_the_graph_command_s_mermaid() -> None:
    from cli_helpers import pydotcompute

    drawn = HOOKS.expand("<!-- pydotcompute: graph examples/dag.toml -->")
    command = pydotcompute("graph", str(ROOT / "examples" / "dag.toml"))
    assert drawn == f"```mermaid\n{command.stdout}```"


def test_an_unknown_marker_fails_the_build() -> None:
    with pytest.raises(ValueError, match="unknown docs marker"):
        HOOKS.expand("<!-- pydotcompute: nonsense -->")


def test_ci_runs_the_readme_test_command_and_it_builds_the_docs() -> None:
    """CI's entry point runs the README's test command verbatim, and that command builds
    the site (nox -s docs: mkdocs build --strict)."""
    readme = (ROOT / "README.md").read_text()
    (command,) = [line for line in readme.splitlines() if "nox -s tests " in line]
    assert command.endswith("nox -s tests tests-interpreter docs")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci


def test_the_readme_links_every_page_of_the_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\]\((docs/[\w/.-]+\.md)\)", readme))
    guide = {
        f"docs/{page_id(p)}"
        for p in PAGES
        if page_id(p).startswith(("guide/", "reference/", "extending/"))
    }
    assert guide <= linked


def test_sphinx_roles_of_the_docstrings_read_as_plain_code() -> None:
    html = (
        "see :class:<code>~pydotcompute.pipeline.PipelinePlan</code> and "
        ":meth:<code>send</code>, not <code>:class:</code>"
    )
    assert HOOKS.plain_roles(html) == (
        "see <code>PipelinePlan</code> and <code>send</code>, not <code>:class:</code>"
    )
