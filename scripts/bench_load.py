"""Load benchmark: N people asking at once (`make bench-load`), on loopback only, bounded in count and time.

Each asker is a `rag chat --json` process (the CLI). All askers are started and loaded first; then they arrive at
random (seeded) moments within `--spread` seconds, as people pressing Enter, and stay for the whole run: each
asks `--questions` seed questions one after another (a new conversation each time). Per N the table shows:
answers completed out of asked, lost (an error or no answer), p50/p95 of the time to the answer's first text,
to the whole answer, of the search (measured inside the askers) and of the time queued for the answer model,
and the wall time. Two answer models:

- embedded: the real embedded server (llama-cpp-python), in generate mode (quote answers never ask the model);
- stub: an OpenAI-compatible stub on loopback answering after a fixed delay, to show our side adds no errors.

The API row (`--only api`): one `rag serve` process on the embedded model, N askers each holding an API key of
its own, each asking its questions as one saved chat over `POST /v1/ask` streamed (server-sent events); lost
answers, errors of the state database (and its integrity check and turn count afterwards), first text and whole
answer p50/p95 as the client sees them.

English questions' Arabic renderings are computed once before the runs and cached (as for any repeated
question), so every row's search time is the same work; a rendering not cached while the model is busy is
skipped, not waited for (see docs/many-readers.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import get_settings  # noqa: E402
from rag.eval.evaluate import load_questions  # noqa: E402
from rag.llm.local_server import ensure_local_server, stop_local_server  # noqa: E402
from tests.apitools import serve_command  # noqa: E402
from tests.pagetools import free_port, serve_page  # noqa: E402
from tests.stub_llm import StubLLM  # noqa: E402

QUESTIONS = [q.question for q in load_questions(ROOT / "tests" / "seed_questions.jsonl") if q.answerable]
READY = "Ask about the articles"


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of xs; nan when empty."""
    if not xs:
        return math.nan
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


class Asker:
    """One `rag chat --json` process: started and loaded, then given its questions, its answers collected."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli.main", "chat", "--json"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.stderr: list[str] = []
        self.stdout: list[str] = []
        self.ready = threading.Event()
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))
            if READY in line:
                self.ready.set()
        self.ready.set()  # it exited: do not wait for it

    def ask(self, questions: list[str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n/new\n".join(questions) + "\n")
        self.proc.stdin.close()

    def answers(self, deadline: float) -> list[dict[str, Any]]:
        """Its JSON answers, waiting until it exits or the deadline passes (then it is killed)."""
        try:
            self.proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._readers:
            t.join(timeout=10)
        rows = []
        for line in self.stdout:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows


def run(n: int, per_asker: int, env: dict[str, str], budget: float, spread: float) -> dict[str, Any]:
    """N askers, `per_asker` questions each, arriving at random moments within `spread` seconds; the table row."""
    askers = [Asker(env) for _ in range(n)]
    for a in askers:
        a.ready.wait(timeout=300)
    arrivals = sorted((random.Random(n * 1000 + i).uniform(0, spread), i) for i in range(n))
    t0 = time.monotonic()
    for at, i in arrivals:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        askers[i].ask([QUESTIONS[(i * per_asker + j) % len(QUESTIONS)] for j in range(per_asker)])
    rows = [r for a in askers for r in a.answers(t0 + budget)]
    wall = time.monotonic() - t0
    done = [r for r in rows if r.get("answer")]
    timings = [r["timings"] for r in done]
    errors = sorted({r["error"][:160] for r in rows if r.get("error")})
    return {
        "askers": n,
        "asked": n * per_asker,
        "answered": len(done),
        "lost": n * per_asker - len(done),
        "errors": errors,
        "waiting_lines": sum("waiting for the answer model" in line for a in askers for line in a.stderr),
        "first_text": [t["first_text"] for t in timings if t["first_text"] is not None],
        "total": [t["total"] for t in timings],
        "search": [t["search"] for t in timings],
        "waited": [t["waited"] for t in timings],
        "skipped_renderings": sum(bool(r.get("translation_skipped")) for r in done),
        "wall": wall,
    }


def run_page(n: int, per_asker: int, url: str, budget: float, spread: float) -> dict[str, Any]:
    """N browser sessions (chromium contexts) on one page server, driven from one thread by polling."""
    from playwright.sync_api import sync_playwright

    from tests.pagetools import CHROMIUM, CHROMIUM_ARGS

    first: list[float] = []
    total: list[float] = []
    errors: set[str] = set()
    waited_shown = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages = []
        for _ in range(n):
            page = browser.new_context().new_page()
            page.goto(url)
            page.get_by_placeholder("Ask about the articles…").wait_for(timeout=300_000)
            pages.append(page)
        todo = {i: [QUESTIONS[(i * per_asker + j) % len(QUESTIONS)] for j in range(per_asker)] for i in range(n)}
        arrivals = {i: random.Random(n * 1000 + i).uniform(0, spread) for i in range(n)}
        state: dict[int, dict[str, Any]] = {i: {"asked": 0, "sent": None, "first": None} for i in range(n)}
        t0 = time.monotonic()
        while time.monotonic() < t0 + budget and any(st["asked"] < per_asker or st["sent"] for st in state.values()):
            for i, page in enumerate(pages):
                st = state[i]
                now = time.monotonic()
                if st["sent"] is None:
                    if st["asked"] < per_asker and now >= t0 + arrivals[i]:
                        box = page.get_by_placeholder("Ask about the articles…")
                        box.fill(todo[i][st["asked"]])
                        box.press("Enter")
                        st["sent"], st["first"] = time.monotonic(), None
                    continue
                message = page.locator("[data-testid='stChatMessage']").nth(2 * st["asked"] + 1)
                if not message.count():
                    continue
                text = message.inner_text()
                if "Waiting for the answer model:" in text:
                    waited_shown += 1
                shown = [t for t in message.locator("[data-testid='stMarkdownContainer']").all_inner_texts()]
                if st["first"] is None and any(t.strip() and not t.strip().endswith("…") for t in shown):
                    st["first"] = now - st["sent"]
                failed = message.locator("[data-testid='stAlertContentError']").count() > 0  # not a warning
                if "Answered by" in text or failed:
                    if "Answered by" in text:
                        first.append(st["first"] if st["first"] is not None else now - st["sent"])
                        total.append(now - st["sent"])
                    else:
                        errors.add(text[:160])
                    st["asked"] += 1
                    st["sent"] = None
                    page.get_by_placeholder("Ask about the articles…").wait_for(timeout=60_000)
            time.sleep(0.1)
        wall = time.monotonic() - t0
        browser.close()
    return {
        "askers": n,
        "asked": n * per_asker,
        "answered": len(total),
        "lost": n * per_asker - len(total),
        "errors": sorted(errors),
        "waiting_shown": waited_shown,
        "first_text": first,
        "total": total,
        "search": [],
        "waited": [],
        "wall": wall,
    }


def run_api(n: int, per_asker: int, env: dict[str, str], budget: float, spread: float) -> dict[str, Any]:
    """N API askers (threads, a key each) on one `rag serve`, each asking its questions as one saved chat."""
    import sqlite3

    import httpx

    from rag.state.db import StateDB
    from rag.state.keys import KeyStore

    with tempfile.TemporaryDirectory(prefix="rag-bench-api-") as state:
        keys = [KeyStore(StateDB(Path(state))).add(f"asker-{i}") for i in range(n)]
        with serve_command({**env, "RAG_STATE_DIR": state}, Path(state) / "serve.log", timeout=300) as url:
            first: list[float] = []
            total: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            t0 = time.monotonic()

            def asker(i: int) -> None:
                time.sleep(random.Random(n * 1000 + i).uniform(0, spread))
                chat = None
                headers = {"Authorization": f"Bearer {keys[i]}"}
                for j in range(per_asker):
                    question = QUESTIONS[(i * per_asker + j) % len(QUESTIONS)]
                    body: dict[str, Any] = {"question": question, "stream": True}
                    body |= {"chat": chat} if chat else {"save": True}
                    sent, shown, answer = time.monotonic(), None, None
                    try:
                        timeout = max(10.0, t0 + budget - sent)
                        with httpx.stream("POST", f"{url}/v1/ask", json=body, headers=headers, timeout=timeout) as r:
                            if r.status_code != 200:
                                r.read()
                                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:160]}")
                            event = ""
                            for line in r.iter_lines():
                                if line.startswith("event: "):
                                    event = line[7:]
                                elif line.startswith("data: ") and event == "text" and shown is None:
                                    shown = time.monotonic() - sent
                                elif line.startswith("data: ") and event in ("answer", "error"):
                                    answer = json.loads(line[6:])
                        if not answer or answer.get("error") or not answer.get("answer"):
                            raise RuntimeError(str((answer or {}).get("error") or "no answer")[:160])
                        chat = answer["chat"]["id"]
                        with lock:
                            total.append(time.monotonic() - sent)
                            first.append(shown if shown is not None else total[-1])
                    except Exception as exc:  # noqa: BLE001 - counted as a lost answer, its message kept
                        with lock:
                            errors.append(str(exc)[:160])

            threads = [threading.Thread(target=asker, args=(i,)) for i in range(n)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(timeout=budget + 60)
            wall = time.monotonic() - t0
        with sqlite3.connect(Path(state) / "state.db") as db:
            sound = db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            saved = db.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    db_errors = sum("state database" in e for e in errors) + (not sound) + abs(saved - len(total))
    return {
        "askers": n,
        "asked": n * per_asker,
        "answered": len(total),
        "lost": n * per_asker - len(total),
        "db_errors": db_errors,
        "errors": sorted(set(errors)),
        "first_text": first,
        "total": total,
        "search": [],
        "waited": [],
        "wall": wall,
    }


def idle_search(env: dict[str, str]) -> list[float]:
    """Cache the English questions' Arabic renderings (computed once, with the model idle), then the baseline:
    search times of one asker alone asking every question, twice, each time in a new process (a process keeps
    a question's vectors, so a repeat there would cost nothing), in quote mode (the model is not asked)."""
    times: list[float] = []
    for timed in (False, True, True):
        asker = Asker({**env, "RAG_ANSWER_MODE": "quote"})
        asker.ready.wait(timeout=300)
        asker.ask(QUESTIONS)
        rows = asker.answers(time.monotonic() + 600)
        if timed:
            times += [r["timings"]["search"] for r in rows if r.get("answer")]
    return times


def table(name: str, rows: list[dict[str, Any]], idle: list[float] | None = None) -> str:
    head = (
        f"\n{name}\n"
        "| askers | answered | lost | first text p50 / p95 (s) | answer p50 / p95 (s) | search p50 / p95 (ms) "
        "| queued p95 (s) | wall (s) |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [head]

    def two(xs: list[float], scale: float = 1.0, digits: int = 1) -> str:
        return f"{scale * pct(xs, 50):.{digits}f} / {scale * pct(xs, 95):.{digits}f}" if xs else "–"

    if "db_errors" in rows[0]:
        lines[0] = lines[0].replace("| lost |", "| lost | database errors |").replace("|---|---|", "|---|---|---|", 1)
    for r in rows:
        queued = f"{pct(r['waited'], 95):.1f}" if r["waited"] else "–"
        lost = f"{r['lost']} | {r['db_errors']}" if "db_errors" in r else str(r["lost"])
        lines.append(
            f"| {r['askers']} | {r['answered']}/{r['asked']} | {lost} | {two(r['first_text'])} "
            f"| {two(r['total'])} | {two(r['search'], 1000, 0)} | {queued} | {r['wall']:.0f} |"
        )
    if idle and rows[0]["search"]:
        lines.append(
            f"idle search (one asker alone, all {len(QUESTIONS)} questions, twice, no model asked): "
            f"p50 {1000 * pct(idle, 50):.0f} ms, p95 {1000 * pct(idle, 95):.0f} ms"
        )
        for r in rows:
            lines.append(
                f"search p95 with {r['askers']} askers: {pct(r['search'], 95) / pct(idle, 95):.2f}x the idle p95"
            )
    for r in rows:
        for e in r["errors"]:
            lines.append(f"error with {r['askers']} askers: {e}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--askers", default="1,2,4,8", help="comma-separated numbers of concurrent askers")
    parser.add_argument("--questions", type=int, default=3, help="questions per asker")
    parser.add_argument("--stub-delay", type=float, default=2.0, help="seconds the stub endpoint takes per answer")
    parser.add_argument(
        "--only",
        choices=["embedded", "page", "api", "stub"],
        help="only the CLI on the embedded model, the page, the API, or the stub",
    )
    parser.add_argument("--budget", type=float, default=900.0, help="most seconds one row may take")
    parser.add_argument(
        "--spread",
        type=float,
        default=5.0,
        help="askers arrive at random moments within this many seconds (0 = at once)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    counts = [int(x) for x in args.askers.split(",")]
    out: dict[str, list[dict[str, Any]]] = {}
    idle: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-load-") as cache:
        base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "RAG_LLM_MODEL")}
        base.update({"RAG_CACHE_DIR": cache, "HF_HUB_OFFLINE": "1", "RAG_ANSWER_MODE": "generate"})
        if args.only in (None, "embedded", "page", "api"):
            port = free_port()
            env = {**base, "RAG_LLM_PORT": str(port)}
            settings = get_settings(cache_dir=Path(cache), llm_port=port)
            ensure_local_server(settings)
            try:
                idle = idle_search(env)
                if args.only in (None, "embedded"):
                    out["embedded"] = []
                    for n in counts:
                        out["embedded"].append(run(n, args.questions, env, args.budget, args.spread))
                        print(table("embedded answer model (generate mode)", out["embedded"][-1:]), flush=True)
                if args.only in (None, "page"):
                    out["page"] = []
                    with serve_page({**env, "RAG_INDEX_DIR": str(settings.index_dir)}) as url:
                        for n in counts:
                            out["page"].append(run_page(n, args.questions, url, args.budget, args.spread))
                            print(table("chat page (generate mode)", out["page"][-1:]), flush=True)
                if args.only in (None, "api"):
                    out["api"] = []
                    for n in counts if args.only == "api" else sorted({1, max(counts)}):  # 1: the baseline
                        out["api"].append(run_api(n, args.questions, env, args.budget, args.spread))
                        print(table("API (generate mode)", out["api"][-1:]), flush=True)
            finally:
                stop_local_server(settings)
        if args.only in (None, "stub"):
            with StubLLM("ok", delay=args.stub_delay) as stub:
                env = {**base, "OPENAI_BASE_URL": stub.url, "RAG_LLM_MODEL": "stub", "RAG_TRANSLATE_QUERIES": "false"}
                out["stub"] = [run(n, args.questions, env, args.budget, args.spread) for n in counts]
                busiest = stub.busiest
    if "embedded" in out:
        print(
            table(
                "Embedded answer model (real llama-cpp-python server, generate mode), concurrency 1",
                out["embedded"],
                idle,
            )
        )
    if "page" in out:
        print(
            table(
                "Chat page in chromium, one browser context per asker, one page server, embedded model "
                "(times seen by the browser; the page shows no search time)",
                out["page"],
            )
        )
    if "api" in out:
        print(
            table(
                "API: `rag serve`, one API key per asker, each asker's questions one saved chat, /v1/ask streamed, "
                "embedded model (times seen by the client)",
                out["api"],
            )
        )
    if "stub" in out:
        print(
            table(
                f"OpenAI-compatible stub answering after {args.stub_delay:.1f} s, concurrency 4 "
                f"(most requests in flight at once: {busiest}); renderings off",
                out["stub"],
            )
        )
    if args.json:
        print(json.dumps({**out, "idle_search": idle}))


if __name__ == "__main__":
    main()
