"""Generating: any OpenAI-compatible endpoint through the `openai` client, or the embedded local server."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from .config import Settings
from .errors import LLMError, ModelNotInstalledError
from .gate import ModelGate, OnWait, gate_for, pid_alive
from .models import gguf_path, llm_installed

log = logging.getLogger(__name__)

SERVER_START_SECONDS = 180.0
SERVER_NICE = 10  # the embedded server's niceness: short work (search, the page) goes first on a busy CPU


class ChatModel(Protocol):
    """What the pipeline needs from an answer model."""

    name: str
    endpoint: str

    def stream(self, messages: list[dict[str, str]], on_wait: OnWait | None = None) -> Iterator[str]:
        """Yield the answer text as it is generated; `on_wait` hears how many requests are ahead while queued."""
        ...


class OpenAIChat:
    """Chat completions, streamed, from an OpenAI-compatible endpoint.

    Retries are the `openai` client's own (`retries` of them, exponential backoff from 0.5 s with jitter, or the
    server's `Retry-After`): a refused connection, a timeout, HTTP 408/409/429 or a 5xx before the answer starts.
    What the client does not do is ours: a stream cut after text was shown is reported, never retried (the reader
    would see the start twice), and messages name the endpoint and the fix; the API key never appears in them.

    With a `gate`, the request first waits its turn (given up when no request ahead finishes for `queue_timeout`
    seconds, default `timeout`; 0 = fail at once with ModelBusyError when the model is busy), so concurrent
    questions queue instead of colliding; the client's retries happen within that turn.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        max_tokens: int,
        retries: int = 2,
        gate: ModelGate | None = None,
        queue_timeout: float | None = None,
    ) -> None:
        from openai import OpenAI

        self.name = model
        self.endpoint = base_url or "https://api.openai.com/v1"
        self.max_tokens = max_tokens
        self.attempts = retries + 1
        self.gate = gate
        self.queue_timeout = timeout if queue_timeout is None else queue_timeout
        self._key = api_key or ""
        # Local servers ignore the key, but the client insists on one.
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=retries)

    def stream(self, messages: list[dict[str, str]], on_wait: OnWait | None = None) -> Iterator[str]:
        """Yield the answer text as it is generated; `on_wait` hears how many requests are ahead while queued."""
        import httpx
        import openai

        shown = False
        try:
            with self._turn(on_wait):
                response = self.client.chat.completions.create(
                    model=self.name,
                    messages=messages,  # type: ignore[arg-type]
                    stream=True,
                    temperature=0.0,
                    max_tokens=self.max_tokens,
                )
                finished = False
                for event in response:
                    choices = getattr(event, "choices", None)
                    if not choices:
                        continue
                    if choices[0].delta and choices[0].delta.content:
                        shown = True
                        yield choices[0].delta.content
                    finished = finished or bool(choices[0].finish_reason)
                if not finished:
                    raise self._cut("ended its stream before the answer was finished", shown)
        except openai.APITimeoutError as exc:
            raise self._failed("timed out", "try again, or raise RAG_LLM_TIMEOUT.", shown) from exc
        except openai.APIConnectionError as exc:
            fix = "check OPENAI_BASE_URL, or that the server is running."
            raise self._failed("cannot be reached", fix, shown) from exc
        except openai.AuthenticationError as exc:
            raise LLMError(f"The answer model at {self.endpoint} refused the API key: check OPENAI_API_KEY.") from exc
        except openai.APIStatusError as exc:
            why = f"failed with HTTP {exc.status_code}"
            if exc.status_code in (408, 409, 429) or exc.status_code >= 500:  # the ones the client retried
                raise self._failed(why, _FIX_RETRY, shown) from exc
            raise LLMError(
                f"The answer model at {self.endpoint} {why}: {self._clean(str(exc.message))}. "
                "Check RAG_LLM_MODEL and OPENAI_BASE_URL."
            ) from exc
        except (httpx.HTTPError, openai.APIError) as exc:  # the connection dropped mid-stream
            raise self._cut(f"dropped the connection ({type(exc).__name__})", shown) from exc

    def _turn(self, on_wait: OnWait | None) -> AbstractContextManager[None]:
        """This request's turn at the model, held while the client tries and retries."""
        return self.gate.turn(self.queue_timeout, on_wait) if self.gate is not None else nullcontext()

    def _failed(self, why: str, fix: str, shown: bool) -> LLMError:
        """The error for a request the client gave up on after its retries."""
        if shown:
            return self._cut(why, shown)
        return LLMError(f"The answer model at {self.endpoint} {self._clean(why)} ({self.attempts} attempts): {fix}")

    def _cut(self, why: str, shown: bool) -> LLMError:
        """The error for a stream that stopped early: after text, the start stays shown and is not repeated."""
        if shown:
            return LLMError(
                f"The answer from {self.endpoint} was cut off mid-answer ({self._clean(why)}): "
                "ask again; the passages found are below."
            )
        return LLMError(f"The answer model at {self.endpoint} {self._clean(why)}: {_FIX_RETRY}")

    def _clean(self, text: str) -> str:
        """The text with the API key masked, should a server echo it back."""
        return text.replace(self._key, "***") if len(self._key) >= 4 else text


_FIX_RETRY = "try again later; if it keeps failing, check the server's log."


# ------------------------------------------------------------ local server


def _state_file(settings: Settings) -> Path:
    return settings.cache / f"llm-server-{settings.llm_port}.json"


def _served_models(port: int) -> list[str] | None:
    """Model ids served on 127.0.0.1:port, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as r:
            return [m["id"] for m in json.loads(r.read())["data"]]
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None


def _state(settings: Settings) -> dict[str, Any]:
    """What we wrote when we started the server on the settings' port ({} when nothing, or unreadable)."""
    try:
        state = json.loads(_state_file(settings).read_text())
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _is_server(pid: int) -> bool:
    """True while `pid` is a running llama-cpp-python server (not a process that reused a dead server's pid)."""
    if not pid_alive(pid):
        return False
    try:
        return b"llama_cpp.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc to look in: trust the pid


def _our_server(settings: Settings) -> int | None:
    """The pid of the server we started on the settings' port, while it runs."""
    pid = _state(settings).get("pid")
    return pid if isinstance(pid, int) and _is_server(pid) else None


def _interrupts(settings: Settings) -> bool:
    """True when the server on the port is one we started before questions queued (it interrupts answers)."""
    return not _state(settings).get("queues") and _our_server(settings) is not None


def ensure_local_server(settings: Settings) -> str:
    """Start the embedded answer server on 127.0.0.1 unless it already runs; return its base URL."""
    port, name = settings.llm_port, settings.answer_model
    base_url = f"http://127.0.0.1:{port}/v1"
    served = _served_models(port)
    if served is not None and name in served and _interrupts(settings):
        log.warning("Restarting the embedded answer server on port %d so that questions queue.", port)
        stop_local_server(settings)
        served = _served_models(port)
    if served is not None:
        if name in served:
            return base_url
        raise LLMError(f"Port {port} is used by another server (serving {served}): set RAG_LLM_PORT to a free port.")
    if not llm_installed(settings.models_dir):
        raise ModelNotInstalledError(
            f"The embedded answer model is not in {settings.models_dir}: run `rag models install`."
        )
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        raise ModelNotInstalledError(
            "llama-cpp-python is missing: run `make install` (or pip install 'llama-cpp-python[server]')."
        ) from exc
    settings.cache.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(settings.cache / f"llm-server-{port}.lock"):  # one starter at a time; the others reuse its server
        if _served_models(port) is not None:
            return ensure_local_server(settings)
        log_path = settings.cache / f"llm-server-{port}.log"
        pid = _our_server(settings)
        if pid is not None:  # ours, but too busy (or still starting) to list its models in time: never start another
            deadline = time.monotonic() + SERVER_START_SECONDS
            while time.monotonic() < deadline and _is_server(pid):
                if _served_models(port) is not None:
                    return base_url
                time.sleep(0.5)
            raise LLMError(
                f"The embedded answer server (pid {pid}) does not answer on port {port}: see {log_path}, or run "
                "`rag llm stop` and ask again."
            )
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf_path(settings.models_dir)),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            str(settings.llm_threads),
            "--n_ctx",
            str(settings.llm_context),
            "--model_alias",
            name,
            # Queue, never interrupt: by default a new request cuts off the answer being streamed.
            "--interrupt_requests",
            "false",
        ]
        # Niced, so searches and the page stay quick while an answer is generated on the same cores.
        if shutil.which("nice"):
            cmd = ["nice", "-n", str(SERVER_NICE), *cmd]
        with log_path.open("ab") as out:  # the server keeps its own copy of the handle
            proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
        _lower_priority(proc.pid)
        state = {"pid": proc.pid, "port": port, "model": name, "queues": True}
        _state_file(settings).write_text(json.dumps(state))
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LLMError(f"The embedded answer server exited with code {proc.returncode}: see {log_path}.")
            if _served_models(port) is not None:
                return base_url
            time.sleep(0.5)
        proc.terminate()
        raise LLMError(f"The embedded answer server did not start within {SERVER_START_SECONDS:.0f} s: see {log_path}.")


def _lower_priority(pid: int) -> None:
    """Nice the server's whole session too: with the kernel's autogroup scheduling (Debian's default) a process's
    nice value only counts inside its session, so `nice` alone would not let searches go first."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(SERVER_NICE))
    except OSError:
        pass  # no autogroups here: the nice value is enough


def stop_local_server(settings: Settings) -> bool:
    """Stop the embedded answer server this tool started; True if one was running."""
    state = _state_file(settings)
    try:
        pid = int(json.loads(state.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    state.unlink(missing_ok=True)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


class LazyChat:
    """An answer model that connects (and starts the embedded server) only when it is first asked something."""

    def __init__(self, connect: Callable[[], ChatModel], name: str, endpoint: str = "") -> None:
        self.connect = connect
        self.name = name
        self.endpoint = endpoint
        self._chat: ChatModel | None = None
        self._lock = threading.Lock()

    def stream(self, messages: list[dict[str, str]], on_wait: OnWait | None = None) -> Iterator[str]:
        """Yield the answer text as it is generated (connecting first if needed)."""
        with self._lock:
            if self._chat is None:
                self._chat = self.connect()
        yield from self._chat.stream(messages, on_wait)


def make_chat_model(settings: Settings, queue_timeout: float | None = None) -> ChatModel:
    """The configured answer model; starts the embedded server when no endpoint is configured.

    Requests queue for their turn (RAG_LLM_CONCURRENCY at once) as long as the line moves: a wait gives up when
    no request ahead finishes for `queue_timeout` seconds, by default RAG_LLM_TIMEOUT; 0 = never wait
    (ModelBusyError when the model is busy).
    """
    if settings.openai_base_url and not settings.llm_model:
        raise LLMError("OPENAI_BASE_URL is set but RAG_LLM_MODEL is not: set RAG_LLM_MODEL to the model it serves.")
    base_url = ensure_local_server(settings) if settings.uses_embedded_llm else settings.answer_base_url
    endpoint = base_url or "https://api.openai.com/v1"
    return OpenAIChat(
        settings.answer_model,
        base_url,
        settings.api_key,
        settings.llm_timeout,
        settings.llm_max_tokens,
        retries=settings.llm_retries,
        gate=gate_for(settings.cache, endpoint, settings.answer_model, settings.answer_concurrency),
        queue_timeout=queue_timeout,
    )
