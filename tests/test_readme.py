"""The README stays true: every setting is documented with its default, the two commands come first."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic_core import PydanticUndefined

from rag.config import Settings
from rag.index.milvus import lite_path

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        env = field.validation_alias.choices[0] if field.validation_alias else f"RAG_{name.upper()}"  # type: ignore[union-attr]
        assert f"`{env}`" in README, f"{env} is missing from the README's configuration table"


def test_two_commands_come_first() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block


def test_ci_calls_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _documented_defaults() -> dict[str, str]:
    """Each setting's environment variable -> the README's "default" cell."""
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `([A-Z_]+)` \| ([^|]*) \|", README, re.M)}


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
        assert literal, f"{env}: the README's default {cell!r} should be the value, in backticks"
        assert literal.group(1) == _shown(field.default), f"{env}: README says {cell}, the code {field.default!r}"
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
    lite = lite_path(Settings().store_options.milvus_uri, models)
    assert cell == "`$RAG_INDEX_DIR/milvus.db` (Milvus Lite)" and lite == str(models / "milvus.db")
    assert not computed, f"settings whose computed default this test does not check yet: {sorted(computed)}"
