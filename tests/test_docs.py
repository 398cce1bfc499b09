"""The documentation site's API pages cover the public API (mkdocs.yml, docs/reference/api/).

* every function and class that ``lora_theory`` re-exports, and every one in a public module's
  ``__all__``, has a docstring whose first line is its one-line summary (mkdocstrings renders it,
  and the generated API index shows that line);
* every public module (no ``_`` in its dotted path) is rendered by a ``::: module`` directive of a
  page under ``docs/reference/api/`` (``lora_theory`` itself by the index the docs' hook generates).

``make docs-check`` (``mkdocs build --strict``) checks the rest: links, anchors, docstring syntax.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import lora_theory as lt

ROOT = Path(__file__).resolve().parent.parent
API_PAGES = ROOT / "docs" / "reference" / "api"


def _public_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "lora_theory").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts):  # private modules, and __main__ (which would run the CLI)
            continue
        names.append(".".join(parts))
    return names


MODULES = _public_modules()


def _public_objects():
    """(where, name, object) for every function and class of the public API, defined in the package."""
    found = {}
    namespaces = [("lora_theory", {n: getattr(lt, n) for n in vars(lt) if not n.startswith("_")})]
    for name in MODULES:
        module = importlib.import_module(name)
        namespaces.append((name, {n: getattr(module, n) for n in getattr(module, "__all__", ())}))
    for where, names in namespaces:
        for name, obj in names.items():
            if not (inspect.isfunction(obj) or inspect.isclass(obj) or callable(obj)) or inspect.ismodule(obj):
                continue
            if not getattr(obj, "__module__", "").startswith("lora_theory"):
                continue
            found.setdefault(id(obj), (where, name, obj))
    return sorted(found.values(), key=lambda t: (t[0], t[1]))


OBJECTS = _public_objects()


def test_the_public_api_is_found():
    names = {name for _, name, _ in OBJECTS}
    assert {"simulate", "train", "RunConfig", "make_problem", "initialise", "precgd", "run_claim"} <= names


@pytest.mark.parametrize("where, name, obj", OBJECTS, ids=[f"{w}.{n}" for w, n, _ in OBJECTS])
def test_public_object_has_a_summary_line(where, name, obj):
    doc = inspect.getdoc(obj)
    assert doc, f"{where}.{name} has no docstring"
    first = doc.splitlines()[0].strip()
    assert first, f"{where}.{name}: the docstring's first line is empty"
    if inspect.isclass(obj):  # a dataclass or NamedTuple without a docstring gets its signature as one
        assert not first.startswith(f"{obj.__name__}("), f"{where}.{name}: no docstring (only the generated signature)"


def test_every_public_module_has_an_api_page():
    rendered = {
        m.group(1)
        for page in API_PAGES.glob("*.md")
        for m in re.finditer(r"^::: ([\w.]+)", page.read_text(), flags=re.M)
    }
    missing = [m for m in MODULES if m not in rendered and m != "lora_theory"]  # the package: the generated index
    assert not missing, f"public modules without a `::: module` line under docs/reference/api/: {missing}"
