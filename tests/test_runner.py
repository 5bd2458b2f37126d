"""The server's runner writes down how its child ended (fast: a small Python child stands in for the server)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from rag.llm.local_server import log_tail
from rag.provision.runtime import describe_exit


def _run(tmp_path: Path, code: str) -> tuple[subprocess.Popen[bytes], Path]:
    run_file = tmp_path / "run.json"
    proc = subprocess.Popen([sys.executable, "-m", "rag.llm.runner", str(run_file), "--", sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while not run_file.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc, run_file


def test_a_child_killed_by_a_signal_is_recorded_with_it(tmp_path: Path) -> None:
    proc, run_file = _run(tmp_path, "import os, signal, time; time.sleep(0.3); os.kill(os.getpid(), signal.SIGSEGV)")
    assert proc.wait(20) == 128 + 11  # the runner exits as a shell reports a signal
    record = json.loads(run_file.read_text())
    assert record["returncode"] == -11 and record["stopped"] is False and record["runner"] == proc.pid
    assert record["ended"] >= record["started"] and describe_exit(record["returncode"]) == "signal 11, SIGSEGV"


def test_a_stopped_child_is_not_a_crash(tmp_path: Path) -> None:
    proc, run_file = _run(tmp_path, "import time; time.sleep(60)")
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    record = json.loads(run_file.read_text())
    assert record["stopped"] is True and record["returncode"] == -15


def test_an_exit_code_is_recorded(tmp_path: Path) -> None:
    proc, run_file = _run(tmp_path, "raise SystemExit(3)")
    assert proc.wait(20) == 3
    assert json.loads(run_file.read_text())["returncode"] == 3 and describe_exit(3) == "exit code 3"


def test_the_log_tail_leaves_out_timings_and_access_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("earlier run\n")
    start = log.stat().st_size
    with log.open("a") as f:
        f.write("llama_model_load: loaded\nggml_abort: bad tensor\n\nllama_perf_context_print: eval time = 1 ms\n")
        f.write('INFO:     127.0.0.1:4242 - "POST /v1/chat/completions HTTP/1.1" 200 OK\nINFO:     Started server\n')
    assert log_tail(log, start) == "llama_model_load: loaded | ggml_abort: bad tensor"
    assert log_tail(log, start, lines=1) == "ggml_abort: bad tensor"
    assert log_tail(tmp_path / "missing.log") == ""
