"""Serving the API in a thread on loopback for the tests (uvicorn, real HTTP), and reading server-sent events."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from .pagetools import ROOT, free_port


@contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """`app` on 127.0.0.1 and a free port, in a thread; yields its base URL once it listens, stops it after."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the API did not start within 10 s")
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def serve_command(env: dict[str, str], log: Path, timeout: float = 120) -> Iterator[str]:
    """`rag serve` as a process of its own on 127.0.0.1 and a free port (with the whole environment `env`, its
    output in `log`); yields its URL once it answers, fails with its log if it dies or is not up in `timeout` s."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli.main", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"rag serve did not come up in {timeout:.0f} s: {log.read_text()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sse_events(lines: Iterator[str]) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a server-sent event stream."""
    events, name = [], "message"
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
            name = "message"
    return events
