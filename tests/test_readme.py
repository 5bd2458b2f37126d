"""The README and docs/ stay true: every setting is documented with its default, every command is documented, every
link leads somewhere, the two commands come first and the README stays short enough to read."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic_core import PydanticUndefined

from rag.cli.main import app
from rag.config import Settings
from rag.index.stores.milvus import MilvusOptions, lite_path

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        env = field.validation_alias.choices[0] if field.validation_alias else f"RAG_{name.upper()}"  # type: ignore[union-attr]
        assert f"`{env}`" in CONFIGURATION, f"{env} is missing from the table in docs/configuration.md"


def test_two_commands_come_first() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block


def test_ci_calls_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _documented_defaults() -> dict[str, str]:
    """Each setting's environment variable -> the "default" cell of docs/configuration.md."""
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `([A-Z_]+)` \| ([^|]*) \|", CONFIGURATION, re.M)}


def _shown(value: object) -> str:
    """A default as the README writes it: true/false, 300 for 300.0, paths as written."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_every_documented_default_is_the_code_default(monkeypatch: pytest.MonkeyPatch) -> None:
    cells = _documented_defaults()
    computed = {}  # defaults that depend on other settings, checked below
    for name, field in Settings.model_fields.items():
        env = field.validation_alias.choices[0] if field.validation_alias else f"RAG_{name.upper()}"  # type: ignore[union-attr]
        cell = cells[env]
        if field.default is None or field.default is PydanticUndefined:
            computed[env] = (cell, field)
            continue
        literal = re.fullmatch(r"`([^`]*)`", cell)
        assert literal, f"{env}: docs/configuration.md's default {cell!r} should be the value, in backticks"
        assert literal.group(1) == _shown(field.default), (
            f"{env}: docs/configuration.md says {cell}, the code {field.default!r}"
        )
    for env in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RAG_LLM_MODEL", "RAG_LLM_CONCURRENCY", "RAG_CACHE_DIR"):
        monkeypatch.delenv(env, raising=False)
    assert computed.pop("OPENAI_API_KEY")[0] == computed.pop("OPENAI_BASE_URL")[0] == "unset"
    cell, field = computed.pop("RAG_MODELS_DIR")
    assert Path(cell.strip("`")).expanduser() == field.default_factory()  # type: ignore[misc]
    cell, field = computed.pop("RAG_LLM_THREADS")
    assert cell == "number of CPUs" and field.default_factory() == (os.cpu_count() or 2)  # type: ignore[misc]
    models = Path("/somewhere")
    assert computed.pop("RAG_CACHE_DIR")[0] == "`$RAG_MODELS_DIR`" and Settings(models_dir=models).cache == models
    embedded, endpoint = Settings(), Settings(openai_api_key="sk-x")
    cell = computed.pop("RAG_LLM_CONCURRENCY")[0]
    assert cell == f"`{embedded.answer_concurrency}` embedded, `{endpoint.answer_concurrency}` endpoint"
    cell = computed.pop("RAG_LLM_MODEL")[0]
    assert cell == f"`{endpoint.answer_model}` with a key, `{embedded.answer_model}` embedded"
    assert computed.pop("RAG_MILVUS_TOKEN")[0] == "unset"
    cell = computed.pop("RAG_MILVUS_URI")[0]
    lite = lite_path(MilvusOptions.of(Settings().store_options).uri, models)
    assert cell == "`$RAG_INDEX_DIR/milvus.db` (Milvus Lite)" and lite == str(models / "milvus.db")
    assert not computed, f"settings whose computed default this test does not check yet: {sorted(computed)}"


def test_the_readme_stays_short() -> None:
    lines = README.count("\n")
    assert lines <= 250, f"README.md has {lines} lines: move the detail into a page under docs/ and link it"


def _anchor(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _links(page: Path) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))


def test_every_link_leads_to_a_page_and_heading_that_exist() -> None:
    broken = []
    for page in PAGES:
        for link in _links(page):
            if re.match(r"[a-z]+://", link):
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such file)")
            elif anchor and target.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), re.M)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.relative_to(ROOT)}: {link} (no such heading)")
    assert not broken, "broken links: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in _links(ROOT / "README.md")}
    orphans = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not orphans, f"pages under docs/ the README does not link: {orphans}"


def test_every_docs_page_the_code_names_exists() -> None:
    named = set()
    for source in [ROOT / "app.py", *(ROOT / "rag").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        named |= set(re.findall(r"docs/[\w.-]+\.md", source.read_text(encoding="utf-8")))
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert named and not missing, f"the code points readers to pages that do not exist: {missing}"


def _commands(group: Any, prefix: str = "rag") -> list[str]:
    """Every leaf command of a click group (typer may vendor its own click: groups are told by their commands)."""
    names = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            names += _commands(command, f"{prefix} {name}")
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_command_is_documented() -> None:
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    commands = _commands(typer.main.get_command(app))
    missing = [c for c in commands if f"`{c}" not in cli]
    assert len(commands) >= 10 and not missing, f"commands missing from docs/cli.md: {missing}"
