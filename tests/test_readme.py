"""The README stays true: every setting is documented, the two commands come first."""

from __future__ import annotations

from rag.config import Settings

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
