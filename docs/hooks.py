"""Build-time hooks of the documentation site (mkdocs.yml: `hooks:`).

Three things the pages take from the repository rather than from copies, so that the site
cannot drift from it:

- `<!-- readme: HEADING -->` on a line of its own is replaced by the README section under the
  `## HEADING` (up to the next `## `); `<!-- readme: intro -->` by everything above the first
  `## `. Every README section must appear on some page: one left out is a warning, which
  `mkdocs build --strict` turns into an error.
- `<!-- cli-help -->` is replaced by the `--help` of the `jaxcoll` command and of each of its
  subcommands, produced by the console script that `pyproject.toml` declares.
- The notebooks in `notebooks/` are served as pages under `notebooks/` (mkdocs-jupyter renders
  them, without executing them).

And one rendering rule: a list may follow a paragraph line directly, as on GitHub and as the
docstrings write `**Arguments:**` followed by `- ...` (Python-Markdown wants a blank line).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import sys
import tomllib
from pathlib import Path

from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority, get_plugin_logger
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
log = get_plugin_logger("jaxcoll")

README_DIRECTIVE = re.compile(r"^<!-- readme: (.+?) -->[ \t]*$", re.MULTILINE)
CLI_DIRECTIVE = re.compile(r"^<!-- cli-help -->[ \t]*$", re.MULTILINE)
INTRO = "intro"

LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,2}\.)\s+\S")

_used: set[str] = set()


class _ListsAfterParagraphs(Preprocessor):
    """Insert the blank line Python-Markdown needs before a list that follows a paragraph line
    (outside code fences and `$$` display math)."""

    def run(self, lines):
        out = []
        fence = None
        in_math = False
        previous = ""
        for line in lines:
            stripped = line.lstrip()
            if fence is None and stripped.startswith(("```", "~~~")):
                fence = stripped[:3]
            elif fence is not None and stripped.startswith(fence):
                fence = None
            elif fence is None:
                if (
                    not in_math
                    and LIST_ITEM.match(line)
                    and previous.strip()
                    and not LIST_ITEM.match(previous)
                    and not previous.startswith((" ", "\t"))
                ):
                    out.append("")
                in_math ^= line.count("$$") % 2 == 1
            out.append(line)
            previous = line
        return out


class ListsAfterParagraphs(Extension):
    def extendMarkdown(self, md):
        # before the normalisation of whitespace and the HTML block stash (priority 30)
        md.preprocessors.register(_ListsAfterParagraphs(md), "jaxcoll_lists", 35)


def readme_sections(text: str | None = None) -> dict[str, str]:
    """The README split at its `## ` headings: {heading: section text, heading line included},
    with the text above the first heading under `"intro"`."""
    if text is None:
        text = (ROOT / "README.md").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {INTRO: []}
    current = INTRO
    fence = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        elif fence is not None and stripped.startswith(fence):
            fence = None
        elif fence is None and line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
        sections[current].append(line)
    return {name: "\n".join(lines).strip() + "\n" for name, lines in sections.items()}


def _cli_help() -> str:
    """`jaxcoll --help` and `jaxcoll COMMAND --help` for every subcommand, as Markdown."""
    script = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]["jaxcoll"]
    module, _, name = script.partition(":")
    if str(ROOT) not in sys.path:  # document this source tree, installed or not
        sys.path.insert(0, str(ROOT))
    main = getattr(importlib.import_module(module), name)

    def run(*argv: str) -> str:
        out = io.StringIO()
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: make it reproducible
        try:
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                main([*argv, "--help"])
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        return out.getvalue().rstrip()

    top = run()
    # argparse lists the subcommands, indented by four spaces, under the COMMAND positional
    commands = re.findall(r"^    ([a-z][\w-]*)(?:\s|$)", top, re.MULTILINE)
    if not commands:
        raise PluginError(f"no subcommands found in `jaxcoll --help`:\n{top}")
    parts = ["## `jaxcoll`", "", "```text", top, "```"]
    for command in commands:
        parts += ["", f"## `jaxcoll {command}`", "", "```text", run(command), "```"]
    return "\n".join(parts) + "\n"


@event_priority(100)  # before mkdocstrings hands the extensions to its docstring renderer
def on_config(config, **kwargs):
    config.markdown_extensions.append(ListsAfterParagraphs())
    return config


def on_pre_build(config, **kwargs):
    _used.clear()


@event_priority(100)  # before mkdocs-jupyter turns .ipynb files into notebook pages
def on_files(files, config, **kwargs):
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{path.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    sections = readme_sections()

    def include(match: re.Match) -> str:
        name = match.group(1).strip()
        if name not in sections:
            raise PluginError(
                f"{page.file.src_uri}: README.md has no section {name!r}; it has {sorted(sections)}"
            )
        _used.add(name)
        return sections[name]

    markdown = README_DIRECTIVE.sub(include, markdown)
    if CLI_DIRECTIVE.search(markdown):
        markdown = CLI_DIRECTIVE.sub(lambda _: _cli_help(), markdown)
    return markdown


def on_post_build(config, **kwargs):
    missing = [name for name in readme_sections() if name not in _used]
    if missing:
        log.warning(
            "README sections on no page of the site (add `<!-- readme: NAME -->` to a page "
            "in docs/): %s",
            missing,
        )
