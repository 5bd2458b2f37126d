"""Helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from pathlib import Path

from rag.index.build import BuildReport, build_index
from rag.types import IndexSpec

from .conftest import TEST_LLM_PORT, FakeEmbedder

FAKE_SPEC = IndexSpec("fake-embedder", chunk_tokens=60, chunk_overlap=10)  # what build_fake writes


def rag(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 600,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the `rag` command line as a user does, against the tests' own answer server port: in this process
    (`rag.cli.main.main` with its arguments, environment and standard streams; no torch reload), or as a process
    of its own with `process=True` where the process boundary is what a test checks (exit by signal, file locks
    held by another process, logs of a fresh interpreter, concurrent commands)."""
    full_env = {"RAG_LLM_PORT": str(TEST_LLM_PORT), "HF_HUB_OFFLINE": "1", **(env or {})}
    if process:
        unit = os.environ.get("RAG_TEST_UNIT")
        assert not unit, f"{unit} starts `rag` as a process: run it in this process, or mark the test integration"
        return subprocess.run(
            [sys.executable, "-m", "rag.cli.main", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **full_env},
            timeout=timeout,
        )
    return _in_process(list(args), full_env, stdin)


def _in_process(args: list[str], env: dict[str, str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    """`rag ARGS` through its entry point in this process: what it prints, and its exit code (an exception that
    escapes is printed as a traceback with code 1, as the interpreter would)."""
    from rag.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_argv, saved_stdin = dict(os.environ), sys.argv, sys.stdin
    os.environ.update(env)
    sys.argv = ["rag", *args]
    sys.stdin = io.StringIO(stdin or "")
    code: int = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            except Exception:  # noqa: BLE001 - reported as the interpreter would, for the test to read
                traceback.print_exc()
                code = 1
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv, sys.stdin = saved_argv, saved_stdin
    return subprocess.CompletedProcess(["rag", *args], code, out.getvalue(), err.getvalue())


def build_fake(data: Path, index: Path, embedder: FakeEmbedder | None = None) -> BuildReport:
    """An index of `data` built with the fake embedder and FAKE_SPEC's chunk sizes."""
    return build_index(data, index, embedder or FakeEmbedder(), FAKE_SPEC)
