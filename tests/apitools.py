"""Serving the API in a thread on loopback for the tests (uvicorn, real HTTP), and reading server-sent events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from .pagetools import free_port


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
