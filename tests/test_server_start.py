"""Starting the embedded server from several processes at once (fast: the server's answers are faked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import LLMError
from rag.llm import local_server


def _settings(tmp_path: Path) -> Settings:
    return Settings(models_dir=tmp_path / "models", cache_dir=tmp_path / "cache", llm_port=8899)


def _answers(monkeypatch: pytest.MonkeyPatch, *replies: list[str] | None) -> list[int]:
    """`_served_models` gives `replies` in turn (the last one from then on); returns a call counter."""
    calls = [0]

    def served(port: int) -> list[str] | None:
        calls[0] += 1
        return replies[min(calls[0], len(replies)) - 1]

    monkeypatch.setattr(local_server, "_served_models", served)
    monkeypatch.setattr(local_server, "llm_installed", lambda models_dir: True)
    monkeypatch.setattr(local_server, "_start", lambda settings, extra: pytest.fail("started a second server"))
    return calls


def test_a_server_started_while_we_waited_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # CI saw this: another process started the server while we waited for the start lock; it then was too busy
    # to list its models again, and going round once more took the same lock in the same thread (filelock: deadlock).
    settings = _settings(tmp_path)
    calls = _answers(monkeypatch, None, [settings.answer_model], None)
    assert local_server.ensure_local_server(settings) == "http://127.0.0.1:8899/v1"
    assert calls[0] == 2


def test_another_program_on_our_port_is_named_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    _answers(monkeypatch, None, ["someone-elses-model"])
    with pytest.raises(LLMError, match="Port 8899 is used by another server .* set RAG_LLM_PORT"):
        local_server.ensure_local_server(settings)
