"""Serving the chat page and launching Debian's chromium: shared by the browser tests and the benchmark."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots the browser tests save
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium keeps knocking on this machine's closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_page(env: dict[str, str] | None = None, args: tuple[str, ...] = (), port: int | None = None) -> Iterator[str]:
    """`streamlit run app.py` (with more `args`) on 127.0.0.1 and a free port (or `port`); yields its URL once
    healthy, stops it after."""
    port = port or free_port()
    env = dict(env or {})
    made = None
    if "RAG_STATE_DIR" not in env:  # each page server its own chats: one test's chats never crowd another's sidebar
        env["RAG_STATE_DIR"] = made = tempfile.mkdtemp(prefix="rag-test-state-page-")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        *args,
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the Streamlit page did not come up within 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if made:
            shutil.rmtree(made, ignore_errors=True)
