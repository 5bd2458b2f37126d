"""Helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rag.index.build import BuildReport, build_index
from rag.types import IndexSpec

from .conftest import TEST_LLM_PORT, FakeEmbedder

FAKE_SPEC = IndexSpec("fake-embedder", chunk_tokens=60, chunk_overlap=10)  # what build_fake writes


def rag(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the `rag` command line as a user does, against the tests' own answer server port."""
    full_env = {**os.environ, "RAG_LLM_PORT": str(TEST_LLM_PORT), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def build_fake(data: Path, index: Path, embedder: FakeEmbedder | None = None) -> BuildReport:
    """An index of `data` built with the fake embedder and FAKE_SPEC's chunk sizes."""
    return build_index(data, index, embedder or FakeEmbedder(), FAKE_SPEC)
