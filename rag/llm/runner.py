"""The embedded answer server's parent: runs it, and writes down how it ended (standard library only).

`python -m rag.llm.runner RUN_FILE -- COMMAND...` starts COMMAND as its child and waits for it. Only a parent
learns why a process ended (a signal such as SIGSEGV, or an exit code), and the process that started the
server (`rag llm start`, the page, a CLI call) may be long gone when it dies; so this small process stays, and
writes `{"runner", "server", "started"}` to RUN_FILE at once and `"returncode"`, `"ended"` (and `"stopped"`
when it was asked to stop) when the server ends. Any process that finds the server gone reads why there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _write(path: Path, record: dict[str, object]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)  # readers never see half a record


def main(argv: list[str]) -> int:
    """Run the command after `--`, record how it ended in the run file, exit as it did."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m rag.llm.runner RUN_FILE -- COMMAND...", file=sys.stderr)
        return 2
    run_file, command = Path(argv[0]), argv[2:]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True  # the server got the same signal from its process group; wait for it to end
        try:
            child.send_signal(signum)
        except (ProcessLookupError, NameError):
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    child = subprocess.Popen(command)
    record: dict[str, object] = {"runner": os.getpid(), "server": child.pid, "started": time.time()}
    _write(run_file, record)
    while True:
        try:
            returncode = child.wait()
            break
        except InterruptedError:
            continue
    _write(run_file, {**record, "returncode": returncode, "ended": time.time(), "stopped": stopping})
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
