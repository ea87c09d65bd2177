"""MkDocs hooks: the reference pages are generated from the code, at build time.

A page asks for generated text with a marker on a line of its own:

* ``<!-- pydotcompute: settings -->``: every stage setting, from the settings table
  (``pydotcompute.pipeline.STAGE_SETTINGS``);
* ``<!-- pydotcompute: cli -->``: every command and option, from the argparse parser
  of ``pydotcompute``;
* ``<!-- pydotcompute: graph examples/NAME.toml -->``: that pipeline file drawn as a
  Mermaid flowchart by ``pydotcompute graph``.

The same functions are what ``tests/test_docs.py`` checks, so the pages cannot drift
from the settings, the parser or the examples.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- pydotcompute: (\w+)(?: (\S+))? -->$", re.M)


def settings_reference() -> str:
    """Every stage setting: a summary table, then a section per setting."""
    from pydotcompute.cli import toml_value
    from pydotcompute.pipeline import STAGE_SETTINGS

    lines = [
        "| setting | default | accepts |",
        "|---|---|---|",
        *(
            f"| [`{s.name}`](#{s.name}) | `{toml_value(s.default)}` | {s.accepts} |"
            for s in STAGE_SETTINGS.values()
        ),
        "",
    ]
    for s in STAGE_SETTINGS.values():
        lines += [
            f"### `{s.name}` {{#{s.name}}}",
            "",
            f"{_sentence(s.doc)}",
            "",
            f"- **default:** `{toml_value(s.default)}`",
            f"- **accepts:** {s.accepts}",
            f"- **in a file:** `{s.name} = {toml_value(s.default)}` in `[stages.NAME]`, "
            "or in `[pipeline]` for every stage",
            f"- **in Python:** `pipeline.add_stage(..., {s.name}=...)`, or "
            f"`Pipeline(defaults={{{s.name!r}: ...}})`",
            "",
        ]
    return "\n".join(lines)


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def cli_reference() -> str:
    """Every subcommand of ``pydotcompute``: its usage line and a table of its arguments."""
    from pydotcompute.cli import command_parser

    parser = command_parser()
    lines = [
        f"`{parser.prog}`: {parser.description}",
        "",
        "```text",
        _usage(parser),
        "```",
        "",
        f"{_sentence(parser.epilog or '')}",
        "",
    ]
    for name, sub in _subcommands(parser).items():
        lines += [f"## `pydotcompute {name}` {{#{name}}}", "", _sentence(sub.help_text), ""]
        lines += ["```text", _usage(sub.parser), "```", ""]
        rows = [
            _argument_row(action)
            for action in sub.parser._actions
            if action.help != argparse.SUPPRESS
        ]
        rows = [row for row in rows if row is not None]
        if rows:
            lines += ["| argument | what it does |", "|---|---|", *rows, ""]
    return "\n".join(lines)


class _Subcommand:
    def __init__(self, parser: argparse.ArgumentParser, help_text: str) -> None:
        self.parser = parser
        self.help_text = help_text


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, _Subcommand]:
    found: dict[str, _Subcommand] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found[name] = _Subcommand(sub, helps.get(name, ""))
    return found


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=88)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _argument_row(action: argparse.Action) -> str | None:
    if isinstance(action, argparse._HelpAction):
        return None
    if action.option_strings:
        metavar = "" if action.nargs == 0 else " " + (action.metavar or action.dest.upper())
        names = ", ".join(f"`{option}{metavar}`" for option in action.option_strings)
    else:
        names = f"`{action.metavar or action.dest.upper()}`"
    text = (action.help or "").replace("|", "\\|")
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        text += " (one of: " + ", ".join(f"`{c}`" for c in action.choices) + ")"
    if action.required and action.option_strings:
        text += " (required)"
    return f"| {names} | {text} |"


def example_plugins() -> Any:
    """The installed plugins, plus examples/plugin's ``clip`` stage from its source
    when it is not installed (examples/clip.toml uses it)."""
    from pydotcompute.plugins import create_plugin_manager

    plugins = create_plugin_manager()
    if "clip" not in plugins.stages():
        source = str(ROOT / "examples" / "plugin" / "src")
        if source not in sys.path:
            sys.path.insert(0, source)
        module = importlib.import_module("pydotcompute_example_clip")
        plugins.register_plugin(
            module, distribution="pydotcompute-example-clip", entry_point="clip"
        )
    return plugins


def graph(path: str) -> str:
    """The pipeline file at ``path`` (from the repository root) as a Mermaid fence."""
    from pydotcompute.cli import pipeline_mermaid
    from pydotcompute.pipeline import Pipeline

    plan = Pipeline.from_toml(ROOT / path).validate(example_plugins())
    return f"```mermaid\n{pipeline_mermaid(plan)}```"


def expand(markdown: str) -> str:
    """``markdown`` with every marker replaced by what it asks for."""

    def replace(match: re.Match[str]) -> str:
        kind, argument = match[1], match[2]
        if kind == "settings":
            return settings_reference()
        if kind == "cli":
            return cli_reference()
        if kind == "graph" and argument:
            return graph(argument)
        raise ValueError(f"unknown docs marker {match[0]!r}")

    return MARKER.sub(replace, markdown)


#: A Sphinx cross-reference role as the docstrings write it (``:class:`~a.B```), as
#: mkdocstrings leaves it in the HTML: the role's name before a code span.
SPHINX_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):<code>~?([^<]*)</code>")


def plain_roles(html: str) -> str:
    """The docstrings' Sphinx roles as plain code: ``:class:`~a.b.C``` reads ``C``,
    ``:func:`f``` reads ``f`` (mkdocstrings' Google-style parser leaves them as text)."""

    def replace(match: re.Match[str]) -> str:
        target = match[1]
        shown = target.rsplit(".", 1)[-1] if match[0].find("<code>~") >= 0 else target
        return f"<code>{shown}</code>"

    return SPHINX_ROLE.sub(replace, html)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs calls this for every page, before it turns the Markdown into HTML."""
    return expand(markdown)


def on_page_content(html: str, **kwargs: Any) -> str:
    """MkDocs calls this for every page's HTML (the API reference's docstrings in it)."""
    return plain_roles(html)
