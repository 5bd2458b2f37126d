"""The embedded answer server: llama-cpp-python's OpenAI-compatible server on 127.0.0.1, started once and shared."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import LLMCrashedError, LLMError, ModelNotInstalledError, RagError
from rag.llm.gate import pid_alive
from rag.provision.paths import gguf_path, llm_installed

log = logging.getLogger(__name__)

SERVER_START_SECONDS = 180.0
CRASH_REPORT = "The embedded answer model"  # how every crash report starts (the page shows those as warnings)
RESTART_WINDOW = 600.0  # a second crash within this many seconds of an automatic restart stops the restarts
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
    """True while `pid` is a running llama-cpp-python server or its runner (not a zombie, nor a process that
    reused a dead server's pid)."""
    if not pid_alive(pid):
        return False
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False  # ended, not yet reaped by the process that started it
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return True  # no /proc to look in: trust the pid
    return not cmdline or b"llama_cpp.server" in cmdline  # empty while it is being exec'd


def _our_server(settings: Settings) -> int | None:
    """The pid of the server we started on the settings' port, while it runs."""
    pid = _state(settings).get("pid")
    return pid if isinstance(pid, int) and _is_server(pid) else None


def _interrupts(settings: Settings) -> bool:
    """True when the server on the port is one we started before questions queued (it interrupts answers)."""
    return not _state(settings).get("queues") and _our_server(settings) is not None


def _run_file(settings: Settings) -> Path:
    return settings.cache / f"llm-server-{settings.llm_port}.run.json"


def _log_file(settings: Settings) -> Path:
    return settings.cache / f"llm-server-{settings.llm_port}.log"


def _run(settings: Settings, runner: int) -> dict[str, Any]:
    """What the runner of pid `runner` wrote about the server it runs ({} when nothing, or another runner's)."""
    try:
        run = json.loads(_run_file(settings).read_text())
    except (OSError, ValueError):
        return {}
    return run if isinstance(run, dict) and run.get("runner") == runner else {}


@dataclass(frozen=True)
class Crash:
    """How the embedded server we started ended when nobody asked it to."""

    returncode: int | None  # negative: the signal that killed it; None: its runner died too, the cause is unknown
    uptime: float  # seconds between its start and its end
    ready: bool  # it had passed its start-up check (a one-token answer)
    log: Path
    log_from: int  # where this run's lines start in the log

    def describe(self) -> str:
        """'The embedded answer model crashed (signal 11, SIGSEGV) 18 s after it started; last lines of LOG: …'."""
        from rag.provision.runtime import describe_exit

        if self.returncode is None:
            how = "died (cause unknown)"
        else:
            how = f"{'crashed' if self.returncode < 0 else 'exited'} ({describe_exit(self.returncode)})"
        when = f"{self.uptime:.0f} s after it started" if self.ready else "during its start-up check (one token)"
        tail = log_tail(self.log, self.log_from)
        last = f"; last lines of {self.log}: {tail}" if tail else f"; see {self.log}"
        return f"{CRASH_REPORT} {how} {when}{last}; see docs/answer-model.md for CPU requirements."


_ROUTINE = re.compile(r"^llama_perf_|^INFO: ")  # timings and uvicorn's start-up and access lines: no clue to a crash


def log_tail(log: Path, start: int = 0, lines: int = 3, width: int = 300) -> str:
    """The last non-empty lines written to `log` from byte `start` on, joined with ' | ' (at most `width` chars)."""
    try:
        with log.open("rb") as f:
            f.seek(max(start, f.seek(0, os.SEEK_END) - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    kept = [" ".join(line.split()) for line in text.splitlines() if line.strip() and not _ROUTINE.search(line)]
    kept = kept[-lines:]
    joined = " | ".join(kept)
    return joined if len(joined) <= width else "…" + joined[-width:]


def _crash(settings: Settings, wait: float = 0.0) -> Crash | None:
    """The crash of the server we started (None while it runs, or when it was stopped, or never started).

    `wait`: a caller that just saw a refused connection gives the runner this long to write down the end."""
    state = _state(settings)
    pid = state.get("pid")
    if not isinstance(pid, int):
        return None
    deadline = time.monotonic() + wait
    while True:
        run = _run(settings, pid)
        ended = "returncode" in run or not _is_server(pid)
        if not ended and isinstance(run.get("server"), int) and _is_server(run["server"]):
            return None  # the server itself runs: nothing to wait for
        if ended or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if not ended or run.get("stopped"):
        return None
    started = float(run.get("started") or state.get("started") or time.time())
    return Crash(
        run.get("returncode") if isinstance(run.get("returncode"), int) else None,
        float(run.get("ended") or time.time()) - started,
        bool(state.get("ready")),
        _log_file(settings),
        int(state.get("log_from", 0)),
    )


def crash_error(settings: Settings, wait: float = 3.0) -> LLMCrashedError | None:
    """After a failed request: the crash of the embedded server, handled (restarted once), or None when it runs.

    Restarting is decided under the start lock, so that of several processes finding the same crash one
    restarts and the others say the same."""
    state = _state(settings)
    if isinstance(state.get("gave_up"), str):
        return LLMCrashedError(state["gave_up"])
    crash = _crash(settings, wait)
    return _handle(settings, crash) if crash is not None else None


def _handle(settings: Settings, crash: Crash) -> LLMCrashedError:
    """Restart after a first crash; after a second within RESTART_WINDOW, stop restarting and keep saying why."""
    from filelock import FileLock

    with FileLock(settings.cache / f"llm-server-{settings.llm_port}.lock"):
        state = _state(settings)
        if isinstance(state.get("gave_up"), str):
            return LLMCrashedError(state["gave_up"])
        if _crash(settings) is None:  # another process handled it meanwhile (restarted it, or it was stopped)
            again = state.get("restarted_after") if isinstance(state.get("pid"), int) else None
            return LLMCrashedError(str(again), restarted=True) if again else LLMCrashedError(crash.describe())
        message = crash.describe()
        restarted = state.get("restarted_at")
        if not crash.ready or (isinstance(restarted, float) and time.time() - restarted < RESTART_WINDOW):
            again = f"crashed again within {RESTART_WINDOW / 60:.0f} minutes of its restart"
            why = "it crashed before it could answer" if not crash.ready else again
            fix = "run `rag doctor`, then `rag llm start` to try again."
            return _give_up(settings, f"{message} Not restarted ({why}): {fix}")
        restart_note = f"{message} It was restarted: ask again."
        try:
            _start(settings, {"restarted_at": time.time(), "restarted_after": restart_note})
        except LLMCrashedError as exc:
            return exc
        except RagError as exc:
            return LLMCrashedError(f"{message} Restarting it failed: {exc}")
        log.warning("%s", restart_note)
        return LLMCrashedError(restart_note, restarted=True)


def server_status(settings: Settings) -> tuple[str, str]:
    """The embedded server's state, from its state files only (no request), for the page and `rag doctor`:
    ("ok" | "warning" | "error", one line). A crash is an error until the server runs again, then a warning
    for RESTART_WINDOW seconds."""
    state = _state(settings)
    if isinstance(state.get("gave_up"), str):
        return "error", state["gave_up"]
    pid = state.get("pid")
    if not isinstance(pid, int):
        return "ok", "not started (the first question that needs it starts it)"
    crash = _crash(settings)
    if crash is not None:
        return "error", crash.describe() + " It is restarted at the next question."
    if not state.get("ready"):
        return "ok", f"starting (pid {pid})"
    since = time.strftime("%H:%M:%S", time.localtime(float(state["ready"])))
    restarted = state.get("restarted_at")
    if isinstance(restarted, float) and time.time() - restarted < RESTART_WINDOW:
        return "warning", f"running again (pid {pid}, ready since {since}). {state.get('restarted_after', '')}"
    return "ok", f"running (pid {pid}, ready since {since})"


def ensure_local_server(settings: Settings, retry_crashed: bool = False) -> str:
    """Start the embedded answer server on 127.0.0.1 unless it already runs; return its base URL.

    A server is ready only once it has answered a one-token completion. A server of ours that crashed is
    restarted once (the caller gets LLMCrashedError saying so); after a second crash, or a crash before it
    could answer, it is not restarted until `retry_crashed` (`rag llm start`)."""
    port, name = settings.llm_port, settings.answer_model
    base_url = f"http://127.0.0.1:{port}/v1"
    state = _state(settings)
    if isinstance(state.get("gave_up"), str):
        if not retry_crashed:
            raise LLMCrashedError(state["gave_up"])
        _state_file(settings).unlink(missing_ok=True)
    served = _served_models(port)
    if served is not None and name in served and _interrupts(settings):
        log.warning("Restarting the embedded answer server on port %d so that questions queue.", port)
        stop_local_server(settings)
        served = _served_models(port)
    if served is not None:
        return _reuse(served, settings)
    crashed = crash_error(settings, wait=0.0)
    if crashed is not None:
        raise crashed
    if not llm_installed(settings.models_dir):
        raise ModelNotInstalledError(
            f"The embedded answer model is not in {settings.models_dir}: run `rag models install`."
        )
    settings.cache.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    # One starter at a time; the others reuse its server. Nothing under the lock may take it again (filelock
    # refuses a second lock on the same file in one thread), so no call back into this function here.
    with FileLock(settings.cache / f"llm-server-{port}.lock"):
        served = _served_models(port)
        if served is not None:  # started by the process that held the lock before us
            return _reuse(served, settings)
        pid = _our_server(settings)
        if pid is not None:  # ours, but too busy (or still starting) to list its models in time: never start another
            deadline = time.monotonic() + SERVER_START_SECONDS
            while time.monotonic() < deadline and _is_server(pid):
                if _served_models(port) is not None:
                    return base_url
                time.sleep(0.5)
            if _crash(settings) is None:
                raise LLMError(
                    f"The embedded answer server (pid {pid}) does not answer on port {port}: see "
                    f"{_log_file(settings)}, or run `rag llm stop` and ask again."
                )
        elif _crash(settings) is None:
            return _start(settings, {})
    # it crashed while we waited for the lock: handled (under the lock, which a FileLock cannot take twice)
    raise crash_error(settings, wait=0.0) or LLMError(f"The embedded answer server ended: see {_log_file(settings)}.")


def _reuse(served: list[str], settings: Settings) -> str:
    """The base URL of the server already listening on our port, if it serves our model."""
    port = settings.llm_port
    if settings.answer_model not in served:
        raise LLMError(f"Port {port} is used by another server (serving {served}): set RAG_LLM_PORT to a free port.")
    return f"http://127.0.0.1:{port}/v1"


def _start(settings: Settings, extra: dict[str, Any]) -> str:
    """Start a new server (call with the start lock held) and wait until it answers a one-token completion."""
    port, name = settings.llm_port, settings.answer_model
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        raise ModelNotInstalledError(
            "llama-cpp-python is missing: run `make install` (or pip install 'llama-cpp-python[server]')."
        ) from exc
    from rag.provision.runtime import RuntimeProblem, check_cpu, chosen_runtime, lib_env

    try:
        chosen = chosen_runtime(settings.llm_runtime)
        lib = chosen[1] if chosen else None
        check_cpu(lib=lib)
    except RuntimeProblem as exc:
        raise LLMError(str(exc)) from exc
    extra = {**extra, "runtime": chosen[0].name if chosen else "portable"}
    log_path = _log_file(settings)
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
    # Its parent, the runner, stays to write down how it ends (a signal is known only to the parent).
    cmd = [sys.executable, "-m", "rag.llm.runner", str(_run_file(settings)), "--", *cmd]
    with log_path.open("ab") as out:  # the server keeps its own copy of the handle
        log_from = out.tell()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True, env=lib_env(lib)
        )
    _lower_priority(proc.pid)
    state = {"pid": proc.pid, "port": port, "model": name, "queues": True, "started": time.time(), "log_from": log_from}
    state.update(extra)
    _state_file(settings).write_text(json.dumps(state))
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None or _crash(settings) is not None:
            break
        if _served_models(port) is not None and _one_token(port, name, deadline - time.monotonic()):
            _state_file(settings).write_text(json.dumps({**state, "ready": time.time()}))
            return f"http://127.0.0.1:{port}/v1"
        time.sleep(0.5)
    else:
        stop_local_server(settings)
        raise LLMError(f"The embedded answer server did not start within {SERVER_START_SECONDS:.0f} s: see {log_path}.")
    crash = _crash(settings, wait=3.0)
    if crash is None:  # it ended as asked (someone ran `rag llm stop` meanwhile)
        raise LLMError(f"The embedded answer server was stopped while it started: see {log_path}.")
    raise _give_up(settings, f"{crash.describe()} Not restarted (it crashed before it could answer): run `rag doctor`.")


def _give_up(settings: Settings, message: str) -> LLMCrashedError:
    """Stop restarting: every later call says `message`, until `rag llm start` or `rag llm stop`."""
    _state_file(settings).write_text(json.dumps({"gave_up": message, "port": settings.llm_port}))
    return LLMCrashedError(message)


def _one_token(port: int, model: str, timeout: float) -> bool:
    """True once the server has generated one token for a real chat completion (False: not yet, or it failed).

    The completion asked is an Arabic rendering of an English question: the server keeps the last prompt it read,
    so the first English question's rendering then reads only its own words, not the 112 tokens of instructions
    and examples before them (about 1.5 s on 2 cores)."""
    from rag.retrieve.translate import translation_messages

    messages = translation_messages("Who spoke?")
    body = json.dumps({"model": model, "messages": messages, "max_tokens": 1, "temperature": 0}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions", body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=max(timeout, 1.0)) as r:
            return bool(json.loads(r.read())["choices"])
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return False


def _lower_priority(pid: int) -> None:
    """Nice the server's whole session too: with the kernel's autogroup scheduling (Debian's default) a process's
    nice value only counts inside its session, so `nice` alone would not let searches go first."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(SERVER_NICE))
    except OSError:
        pass  # no autogroups here: the nice value is enough


def stop_local_server(settings: Settings) -> bool:
    """Stop the embedded answer server this tool started; True if one was running."""
    state = _state(settings)
    _state_file(settings).unlink(missing_ok=True)  # a stop also forgets a crash that stopped the restarts
    pid = state.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(50):
        if not _is_server(pid):  # gone, or a zombie of ours (its command line is empty)
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True
