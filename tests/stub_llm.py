"""A misbehaving OpenAI-compatible chat server on 127.0.0.1, for the endpoint-failure tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = ["China controls", " dual-use exports", " by law [1]."]


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    event = {
        "id": "stub",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "stub",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(event)}\n\n".encode()


class StubLLM:
    """Misbehaves on the first `failures` requests, then answers normally.

    Modes: "status:N" (HTTP N with a JSON error that echoes the Authorization header), "stall" (no reply for
    `stall` seconds), "cut" (two pieces of the answer, then the connection drops mid-body), "truncate" (two
    pieces, then a clean end without a finish reason), "ok". `delay` seconds pass before every reply (a slow
    endpoint); `busiest` is the most requests it has had in flight at once. `retry_after` (seconds) is sent as
    the `Retry-After` header with an HTTP error; `answer` replaces the pieces of the answer.
    """

    def __init__(
        self,
        mode: str,
        failures: int = 1_000_000,
        stall: float = 5.0,
        delay: float = 0.0,
        retry_after: str | None = None,
        answer: list[str] | None = None,
    ) -> None:
        self.mode = mode
        self.answer = answer or ANSWER  # the pieces streamed as the answer
        self.retry_after = retry_after
        self.times: list[float] = []  # when each request arrived (time.monotonic())
        self.failures = failures
        self.stall = stall
        self.delay = delay
        self.requests = 0
        self.in_flight = 0
        self.busiest = 0
        self.auth: list[str] = []
        self._count = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.requests += 1
                stub.times.append(time.monotonic())
                stub.auth.append(self.headers.get("Authorization", ""))
                mode = stub.mode if stub.requests <= stub.failures else "ok"
                with stub._count:
                    stub.in_flight += 1
                    stub.busiest = max(stub.busiest, stub.in_flight)
                try:
                    time.sleep(stub.delay)
                    stub.reply(self, mode)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with stub._count:
                        stub.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reply(self, h: BaseHTTPRequestHandler, mode: str) -> None:
        if mode.startswith("status:"):
            body = json.dumps(
                {"error": {"message": f"stub failure for {h.headers.get('Authorization')}", "type": "server_error"}}
            ).encode()
            h.send_response(int(mode.split(":")[1]))
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            if self.retry_after is not None:
                h.send_header("Retry-After", self.retry_after)
            h.end_headers()
            h.wfile.write(body)
            return
        if mode == "stall":
            time.sleep(self.stall)
            return
        pieces = [_chunk(p) for p in self.answer]
        if mode in ("cut", "truncate"):
            body = b"".join(pieces[:2])
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Content-Length", str(len(body) + (10_000 if mode == "cut" else 0)))
            h.end_headers()
            h.wfile.write(body)
            h.wfile.flush()
            h.close_connection = True
            return
        body = b"".join(pieces) + _chunk(None, "stop") + b"data: [DONE]\n\n"
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def __enter__(self) -> StubLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
