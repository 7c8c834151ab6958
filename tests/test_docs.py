"""The documentation site: every public name has an API entry, and `mkdocs build --strict` passes.

The API pages in `docs/api/` list the public names one per line as `::: jaxcoll.NAME`
(mkdocstrings renders each from its docstring). The list of public names comes from the package
as it is imported now, so a name added to `jaxcoll` without an entry fails here.
"""

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

import jaxcoll

ROOT = Path(__file__).resolve().parents[1]
API_PAGES = sorted((ROOT / "docs" / "api").glob("*.md"))
ENTRY = re.compile(r"^:::[ \t]+jaxcoll\.(\w+)[ \t]*$", re.MULTILINE)  # options may follow
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers", "mkdocs_jupyter")


def _public_names():
    """Non-underscore callables and classes at the top level of `jaxcoll` (not modules)."""
    names = set(getattr(jaxcoll, "__all__", ())) | set(dir(jaxcoll))
    return sorted(
        name
        for name in names
        if not name.startswith("_")
        and callable(getattr(jaxcoll, name))
        and not isinstance(getattr(jaxcoll, name), types.ModuleType)
    )


def _entries():
    """{page name: [NAME, ...]} of the `::: jaxcoll.NAME` lines of the API pages."""
    return {page.name: ENTRY.findall(page.read_text(encoding="utf-8")) for page in API_PAGES}


def test_every_public_name_has_one_api_entry():
    entries = _entries()
    listed = Counter(name for names in entries.values() for name in names)
    public = _public_names()
    assert len(public) > 40, public  # the package's API, not an empty import
    missing = [name for name in public if name not in listed]
    assert not missing, (
        f"public names with no API entry: {missing}; add a line `::: jaxcoll.NAME` to the "
        "page of docs/api/ for its topic"
    )
    twice = [name for name, n in listed.items() if n > 1]
    assert not twice, f"listed on more than one API page: {twice}"
    unknown = [
        name
        for name in listed
        if name not in public and importlib.util.find_spec(f"jaxcoll.{name}") is None
    ]
    assert not unknown, f"API entries for names jaxcoll does not export: {unknown}"


def test_public_docstrings_have_no_control_characters():
    # a LaTeX command in a non-raw docstring: "\rho" holds a carriage return, "\tilde" a tab
    bad = {}
    for name in _public_names():
        obj = getattr(jaxcoll, name)
        docs = {name: obj.__doc__}
        if isinstance(obj, type):
            for attr, member in vars(obj).items():
                if not attr.startswith("_"):
                    docs[f"{name}.{attr}"] = getattr(member, "__doc__", None)
        for where, doc in docs.items():
            if doc and (found := sorted(set(re.findall(r"[\x00-\x09\x0b-\x1f]", doc)))):
                bad[where] = found
    assert not bad, f"control characters in docstrings (make them r-strings): {bad}"


def test_mkdocs_build_strict(tmp_path):
    absent = [p for p in DOCS_PACKAGES if importlib.util.find_spec(p) is None]
    if absent:
        pytest.skip(
            f"documentation tools not installed ({', '.join(absent)}); "
            'pip install -e ".[test]" installs them'
        )
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]

    # each API entry was rendered from its docstring, on the page that lists it (a public
    # module such as `jaxcoll.figures` as its members)
    for page, names in _entries().items():
        html = (site / "api" / page.removesuffix(".md") / "index.html").read_text(encoding="utf-8")
        for name in names:
            assert re.search(rf'id="jaxcoll\.{name}[".]', html), (page, name)
    # every notebook is a page, rendered without executing it (the stored notebooks have no
    # outputs, so neither has the page)
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        html = (site / "notebooks" / nb.stem / "index.html").read_text(encoding="utf-8")
        first = json.loads(nb.read_text(encoding="utf-8"))["cells"][0]["source"]
        title = "".join(first).splitlines()[0].lstrip("# ").strip()
        assert title.split(" ", 1)[1] in html, nb.name
        assert not re.search(r'class="[^"]*\bjp-OutputArea-output\b', html), nb.name
    # the README's displayed equations reached the physics page as MathJax input, none raw
    physics = (site / "physics" / "index.html").read_text(encoding="utf-8")
    assert '<div class="arithmatex">' in physics
    assert "$$" not in physics


def _architecture_groups():
    """{module file name: index of its group} from the tables of docs/architecture.md."""
    groups, index = {}, -1
    for line in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            index += 1
        elif line.startswith("| `"):
            for name in re.findall(r"`(\w+\.py)`", line.split("|")[1]):
                assert name not in groups, f"{name} is listed twice in docs/architecture.md"
                groups[name] = index
    return groups


def test_architecture_page_lists_every_module_in_import_order():
    """docs/architecture.md names each module once, and no module imports from a later group."""
    groups = _architecture_groups()
    modules = sorted(p.name for p in (ROOT / "jaxcoll").glob("*.py") if p.name != "__init__.py")
    assert len(modules) > 20, modules
    assert sorted(groups) == modules, (
        f"docs/architecture.md lists {sorted(set(groups) - set(modules))} that do not exist and "
        f"misses {sorted(set(modules) - set(groups))}"
    )
    upward = []
    for name in modules:
        tree = ast.parse((ROOT / "jaxcoll" / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [a.name for a in node.names]
                for target in targets:
                    dep = f"{target}.py"
                    if dep in groups and groups[dep] > groups[name]:
                        upward.append(f"{name} imports {dep}")
    assert not upward, f"imports from a later group of docs/architecture.md: {upward}"


def test_docstrings_hold_no_control_characters():
    r"""A LaTeX command in a non-raw docstring turns into a control character (`"\tilde"` starts
    with a tab, `"\beta"` with a backspace) and renders wrongly on the site."""
    bad = []
    for path in sorted((ROOT / "jaxcoll").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=False) or ""
                if re.search(r"[\x00-\x08\x0b-\x1f]", doc):
                    bad.append(f"{path.name}:{getattr(node, 'name', 'module')}")
    assert not bad, f"docstrings with control characters (use r-strings): {bad}"
