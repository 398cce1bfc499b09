"""MkDocs hook: the pages and files of the site that are made at build time, so they never go stale.

* ``figures/*.png``: the committed figures, served from the repository's ``figures/`` (no copy
  committed under ``docs/``);
* ``notebooks/*.ipynb``: the notebooks, rendered by mkdocs-jupyter. By default the clean committed
  ones (no outputs: what ``make docs-check`` and CI render); with ``LORA_THEORY_DOCS_NOTEBOOKS=DIR``
  the executed copies in DIR (``make docs`` executes them into ``build/docs-notebooks/``);
* ``performance/benchmark-notes.md``: ``benchmarks/NOTES.md`` as it stands;
* ``reference/cli.md``: every ``lora-theory`` subcommand's ``--help``, from the argparse parser;
* ``reference/api/index.md``: the names ``lora_theory`` re-exports, each linked to its
  documentation, with its one-line summary;
* ``theory/claims-registry.md``: every claim of ``lora_theory.CLAIMS`` and every statement of
  ``lora_theory.claims.STATEMENTS``.

It also drops mkdocs-jupyter's MathJax loader (nothing to typeset: the suite's math is plain
text) and turns the Sphinx roles of the docstrings (``:func:`~lora_theory.engine.train```) into
plain code in the rendered API pages.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_ENV = "LORA_THEORY_DOCS_NOTEBOOKS"
HELP_COLUMNS = "100"


def _notebook_source(path: Path) -> Path:
    executed = os.environ.get(NOTEBOOKS_ENV)
    if not executed:
        return path
    copy = (ROOT / executed / path.name).resolve()
    if not copy.is_file():
        raise PluginError(f"{NOTEBOOKS_ENV}={executed}: no executed copy {copy} of {path.name} (run `make docs`)")
    return copy


def _cli_reference() -> str:
    from lora_theory.cli import build_parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS  # argparse wraps at the terminal's width: fix it
    try:
        parser = build_parser()
        (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parts = [
            "# Command line reference\n",
            "Generated at build time from the parser itself (`lora_theory.cli.build_parser()`): each "
            "section is the command's `--help`. The guide to the commands is "
            "[Training from the command line](../usage/cli.md).\n",
            "## lora-theory\n",
            "```text\n" + parser.format_help().rstrip() + "\n```\n",
        ]
        for name, sub in subparsers.choices.items():
            parts.append(f"## lora-theory {name}\n")
            parts.append("```text\n" + sub.format_help().rstrip() + "\n```\n")
        return "\n".join(parts)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return _plain(doc.split("\n\n")[0].replace("\n", " ").strip())


def _shown(tilde: str, path: str) -> str:
    """Sphinx's rendering of a role's target: ``~a.b.c`` shows ``c``, ``a.b.c`` the whole path."""
    return path.rsplit(".", 1)[-1] if tilde else path


def _plain(text: str) -> str:
    """Docstring markup to table-safe Markdown: Sphinx roles to code, ``x`` to `x`, no pipes."""
    text = re.sub(r":[a-z]+:`(~?)([\w.]+)`", lambda m: f"`{_shown(*m.groups())}`", text)
    return text.replace("``", "`").replace("|", "\\|")


def _defining_module(name: str, obj) -> str | None:
    """The public module whose ``__all__`` lists ``name`` as this very object (for constants)."""
    import sys

    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("lora_theory.") or any(p.startswith("_") for p in module_name.split(".")):
            continue
        if name in getattr(module, "__all__", ()) and getattr(module, name, None) is obj:
            return module_name
    return None


def _api_index() -> str:
    import lora_theory as lt

    rows = []
    for name, obj in vars(lt).items():
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        module = getattr(obj, "__module__", None) if (inspect.isclass(obj) or callable(obj)) else None
        if module and module.startswith("lora_theory"):
            target = f"{module}.{getattr(obj, '__qualname__', name)}"
            kind = "class" if inspect.isclass(obj) else "function"
            rows.append(f"| [`lt.{name}`][{target}] | {kind} | {_summary(obj)} |")
        else:
            where = _defining_module(name, obj)
            rows.append(f"| `lt.{name}` | {type(obj).__name__} | {f'defined in `{where}`' if where else ''} |")
    # the subpackages that lora_theory/__init__.py imports by name (`from . import theory as theory`)
    source = (ROOT / "lora_theory" / "__init__.py").read_text()
    subpackages = re.findall(r"^from \. import (\w+) as \1$", source, flags=re.M)
    return "\n".join(
        [
            "# Python API",
            "",
            "Everything below is re-exported by `lora_theory` (`import lora_theory as lt`), name by name, and "
            "documented in the module that defines it (the pages of this section, one per module; each "
            "module's `__all__` is its public API). This table is generated from the package at build "
            "time. The guide is [Python API](../../usage/python-api.md).",
            "",
            "Subpackages importable as attributes: " + ", ".join(f"`lt.{n}`" for n in subpackages) + ".",
            "",
            "| name | kind | summary |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )


def _claims_registry() -> str:
    from lora_theory.claims import CLAIMS, STATEMENTS

    out = [
        "# Claims registry",
        "",
        "Generated at build time from `lora_theory.CLAIMS` (one record per claim, `lora_theory/claims/claimN.py`) "
        "and `lora_theory.claims.STATEMENTS` (one record per statement of the papers, "
        "`lora_theory/claims/_statements.py`). The measured numbers are on [Claims](claims.md).",
        "",
        "## Statements",
        "",
        "`[unverified]`: transcribed from a summary or an abstract, not the theorem's text.",
        "",
        "| statement | summary | checked by |",
        "|---|---|---|",
    ]
    for st in STATEMENTS:
        claims = ", ".join(c.id for c in CLAIMS if st.id in c.covers)
        check = f"claim {claims}" if claims else _plain(st.unchecked or "-")
        flag = " `[unverified]`" if not st.verified else ""
        out.append(f"| {st.id}{flag} | {_plain(st.summary)} | {check} |")
    for claim in CLAIMS:
        out += [
            "",
            f"## Claim {claim.id}: {claim.paper} {claim.theorem}",
            "",
            f"**Statement.** {_plain(claim.statement)}",
            "",
            f"**Measured.** {_plain(claim.measured)}",
            "",
            f"**Prediction.** {_plain(claim.prediction)}",
            "",
            f"**Verdict rule.** {_plain(claim.verdict_rule)}",
            "",
            f"**Statements covered.** {', '.join(claim.covers) or '-'}",
            "",
            f"**Module.** `lora_theory.claims.claim{claim.id}`; `lt.run_claim({claim.id!r}, 'quick')` runs it.",
            "",
            "| parameter | quick | full |",
            "|---|---|---|",
        ]
        for key in dict.fromkeys([*claim.quick, *claim.full]):
            quick, full = (_plain(repr(size[key])) if key in size else "" for size in (claim.quick, claim.full))
            out.append(f"| `{key}` | {quick} | {full} |")
    return "\n".join(out) + "\n"


@event_priority(100)  # before mkdocs-jupyter's on_files, so that it renders the notebooks added here
def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    for png in sorted((ROOT / "figures").glob("*.png")):
        files.append(File.generated(config, f"figures/{png.name}", abs_src_path=str(png)))
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        source = _notebook_source(notebook)
        files.append(File.generated(config, f"notebooks/{notebook.name}", abs_src_path=str(source)))
    notes = (ROOT / "benchmarks" / "NOTES.md").read_text()
    files.append(File.generated(config, "performance/benchmark-notes.md", content=notes))
    files.append(File.generated(config, "reference/cli.md", content=_cli_reference()))
    files.append(File.generated(config, "reference/api/index.md", content=_api_index()))
    files.append(File.generated(config, "theory/claims-registry.md", content=_claims_registry()))
    return files


_ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|exc|obj|const):<code>(~?)([\w.]+)</code>")


def _role(match: re.Match) -> str:
    return f"<code>{_shown(*match.groups())}</code>"


def on_page_content(html: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri.startswith("reference/api/"):
        return _ROLE.sub(_role, html)
    return html


_MATHJAX = re.compile(r"<script data-mkdocs-jupyter-mathjax=.*?</script>\n?", re.S)


@event_priority(-100)  # after mkdocs-jupyter's on_post_page, which adds the loader to every page
def on_post_page(output: str, *, page: Page, config: MkDocsConfig) -> str:
    """Drop mkdocs-jupyter's MathJax loader (it fetches MathJax from a CDN on the notebook pages).

    The suite writes its math as plain text, and the notebooks' Markdown cells hold no TeX, so
    there is nothing to typeset: without the loader the site makes no request outside itself.
    """
    return _MATHJAX.sub("", output)
