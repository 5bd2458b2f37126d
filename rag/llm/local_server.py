"""The embedded answer server: llama-cpp-python's OpenAI-compatible server on 127.0.0.1, started once and shared."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import LLMError, ModelNotInstalledError
from rag.llm.gate import pid_alive
from rag.provision.paths import gguf_path, llm_installed

log = logging.getLogger(__name__)

SERVER_START_SECONDS = 180.0
SERVER_NICE = 10  # the embedded server's niceness: short work (search, the page) goes first on a busy CPU


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
