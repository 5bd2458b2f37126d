"""Measured figures for the README: build time, search latency, answer latency (medians), each with a baseline;
`rag sources pull` over 250 and 1,000 fixture items (scripts/bench_sources.py: items/s, peak memory).

Run with `make bench` (or `.venv/bin/python scripts/bench.py [--json]`). Needs `rag models install`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer.pipeline import AnswerRules, ask  # noqa: E402
from rag.config import get_settings  # noqa: E402
from rag.embed.embedder import embedder_for  # noqa: E402
from rag.eval.evaluate import evaluate_questions, load_questions  # noqa: E402
from rag.index.build import build_index  # noqa: E402
from rag.llm.client import OpenAIChat  # noqa: E402
from rag.llm.local_server import _served_models, ensure_local_server, stop_local_server  # noqa: E402
from rag.retrieve.retriever import RetrievalWeights, Retriever, load_retriever  # noqa: E402
from rag.retrieve.translate import QueryTranslator  # noqa: E402

QUESTIONS = load_questions(ROOT / "tests" / "seed_questions.jsonl")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def ask_in_page(page: Any, turn: int, question: str) -> tuple[float, Any]:
    """Ask the `turn`-th question (from 0) of the page's chat; when it was sent (perf_counter) and its answer's
    message, once the answer shows text of its own (not "Searching…" or "Starting…")."""
    box = page.get_by_placeholder("Ask about the articles…")
    box.wait_for(timeout=180_000)
    box.fill(question)
    t0 = time.perf_counter()
    box.press("Enter")
    answer = page.locator("[data-testid='stChatMessage']").nth(2 * turn + 1)
    md = answer.locator("[data-testid='stMarkdownContainer']").first
    md.wait_for(timeout=300_000)
    while not md.inner_text().strip() or md.inner_text().startswith(("Searching", "Starting")):
        time.sleep(0.02)
    return t0, answer


def page_latency(index_dir: Path, data_dir: Path) -> dict[str, float]:
    """Time to first answer text and to the finished answer in the real page (chromium), seed questions.

    The page reads the index this benchmark built, not the working copy's `index/` (which may be stale).
    """
    from playwright.sync_api import sync_playwright

    from rag.llm.local_server import _served_models
    from tests.pagetools import CHROMIUM, CHROMIUM_ARGS, serve_page

    settings = get_settings()
    started_here = _served_models(settings.llm_port) is None
    ensure_local_server(settings)
    first, full = [], []
    try:
        env = {"RAG_INDEX_DIR": str(index_dir), "RAG_DATA_DIR": str(data_dir)}
        with serve_page(env) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url)
            for i, q in enumerate(QUESTIONS):
                t0, answer = ask_in_page(page, i, q.question)
                first.append(time.perf_counter() - t0)
                answer.get_by_text("Answered by").wait_for(timeout=300_000)
                full.append(time.perf_counter() - t0)
            browser.close()
    finally:
        if started_here:
            stop_local_server(settings)
    return {"page_first_token_s": round(median(first), 2), "page_full_answer_s": round(median(full), 2)}


# A three-question conversation: an English question, a standalone one the articles do not answer, and a follow-up
# (the only one the answer model rewrites, rag/retrieve/followup.py).
CONVERSATION = (
    "What did Mao Ning say about dual-use exports?",
    "What is the population of Beijing?",
    "What else did she say?",
)


def conversation_latency(index_dir: Path, data_dir: Path) -> dict[str, float | list[float]]:
    """Time to first answer text of each question of CONVERSATION, asked in turn in one chat of the real page
    (chromium), quote mode on the embedded model, with an empty rendering cache: the answer server this function
    starts on its own port and cache folder renders every English question afresh."""
    from playwright.sync_api import sync_playwright

    from tests.pagetools import CHROMIUM, CHROMIUM_ARGS, free_port, serve_page

    with tempfile.TemporaryDirectory(prefix="rag-bench-cache-") as cache:
        port = free_port()
        settings = get_settings(cache_dir=Path(cache), llm_port=port)
        ensure_local_server(settings)
        first: list[float] = []
        try:
            env = {"RAG_INDEX_DIR": str(index_dir), "RAG_DATA_DIR": str(data_dir), "RAG_CACHE_DIR": cache,
                   "RAG_LLM_PORT": str(port), "RAG_ANSWER_MODE": "quote"}  # fmt: skip
            with serve_page(env) as url, sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.goto(url)
                for i, question in enumerate(CONVERSATION):
                    t0, md = ask_in_page(page, i, question)
                    first.append(time.perf_counter() - t0)
                    md.get_by_text("Answered by").or_(md.get_by_text("do not say")).first.wait_for(timeout=300_000)
                browser.close()
        finally:
            stop_local_server(settings)
    return {"conversation_first_text_s": [round(t, 2) for t in first],
            "conversation_first_text_p50_s": round(median(first), 2)}  # fmt: skip


XQUAD = ROOT.parent / "shared" / "bench" / "xquad"
NEWS = ROOT / "tests" / "fixtures" / "news"
OUTLETS = ("Outlet A", "Outlet B", "Outlet C")


def filtered_search(embedder, settings, tmp: Path, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Search latency with and without a filter, over the 48 XQuAD articles (given invented outlets and dates:
    three outlets in turn, a date every 15 days from 2023-01-01) plus the news fixtures; Arabic questions (no
    answer model), medians over the same questions in one run. The filters are resolved once and kept, as the
    page and `rag chat` do (what resolving costs is printed too), and recall@5 is compared on the questions
    whose article the filter keeps."""
    import shutil
    from datetime import date, timedelta

    from rag.eval.evaluate import load_xquad
    from rag.types import Filter

    data = load_xquad(XQUAD)
    folder = tmp / "news-bench"
    shutil.copytree(NEWS, folder)
    lines = []
    for i, a in enumerate(data.articles):
        published = (date(2023, 1, 1) + timedelta(days=15 * i)).isoformat()
        meta = {"id": a.id, "text": a.text, "title": a.title, "outlet": OUTLETS[i % 3], "published": published}
        lines.append(json.dumps(meta, ensure_ascii=False))
    (folder / "xquad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    index_dir = tmp / "news-bench-index"
    build_index(folder, index_dir, embedder, settings.index_spec)
    retriever = load_retriever(get_settings(index_dir=index_dir, translate_queries=False), embedder)
    questions = data.questions["ar"][::4]  # 1 in 4 of the 1,190 questions
    gold = {qid: data.gold[qid][0] for qid, _ in questions}
    scopes = {
        "unfiltered": None,
        "since": Filter(since="2024-01-01"),
        "outlet": Filter(outlets=("Outlet B",)),
        "since_outlet": Filter(since="2024-01-01", outlets=("Outlet B",)),
    }
    out: dict[str, float] = {
        "filter_bench_articles": len(retriever.index.articles),
        "filter_bench_questions": len(questions),
    }
    resolve = []
    for scope in scopes.values():
        if scope is not None:
            t0 = time.perf_counter()
            retriever.index.where(scope)
            resolve.append(time.perf_counter() - t0)
    out["filter_resolve_ms"] = round(1000 * median(resolve), 2)
    times: dict[str, list[float]] = {name: [] for name in scopes}
    found: dict[str, list[str]] = {}
    for i in range(repeat):
        for qid, question in questions:
            for j, (name, scope) in enumerate(scopes.items()):  # interleaved: the same machine state for each
                text = question + " " * (i * len(scopes) + j + 1)  # every search embeds its question anew
                t0 = time.perf_counter()
                hits = retriever.search(text, 5, scope)
                times[name].append(time.perf_counter() - t0)
                if i == 0:
                    found[f"{name}:{qid}"] = [h.chunk.article_id for h in hits]
    base = median(times["unfiltered"])
    for name, scope in scopes.items():
        out[f"search_{name}_ms"] = round(1000 * median(times[name]), 1)
        if scope is not None:
            out[f"search_{name}_vs_unfiltered"] = round(median(times[name]) / base, 2)
            kept = set(retriever.index.where(scope).articles)  # type: ignore[union-attr]
            asked = [qid for qid, _ in questions if gold[qid] in kept]
            for label, key in ((name, name), (f"{name}_unfiltered", "unfiltered")):
                hits = sum(gold[qid] in found[f"{key}:{qid}"] for qid in asked)
                out[f"recall@5_{label}"] = round(hits / len(asked), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeat", type=int, default=3, help="builds and search rounds to take medians over")
    parser.add_argument("--no-llm", action="store_true", help="skip the answer-latency part")
    parser.add_argument("--page", action="store_true", help="also time answers in the chat page, in chromium")
    parser.add_argument("--no-sources", action="store_true", help="skip the `rag sources pull` part")
    args = parser.parse_args()
    out: dict[str, float | int | str | list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        # --no-llm: no answer model at all, so English questions are not translated either
        s = get_settings(index_dir=index_dir, data_dir=ROOT / "data", translate_queries=False if args.no_llm else None)
        server_was_up = _served_models(s.llm_port) is not None

        # 1. Build: the whole CLI command (process start, model load, build) and the build alone.
        cli = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "rag.cli.main",
                    "index",
                    "build",
                    "--data",
                    str(s.data_dir),
                    "--index",
                    str(index_dir),
                ],
                check=True,
                capture_output=True,
            )
            cli.append(time.perf_counter() - t0)
        out["build_cli_s"] = round(median(cli), 2)
        embedder = embedder_for(s)
        builds = []
        for _ in range(args.repeat):
            report = build_index(s.data_dir, index_dir, embedder, s.index_spec)
            builds.append(report.seconds)
        out["build_in_process_s"] = round(median(builds), 2)
        out["articles"], out["chunks"] = report.articles, report.chunks

        # 2. Search latency (question in, passages out), ours vs plain chunk-level dense retrieval.
        retriever = load_retriever(s, embedder)
        baseline = Retriever(retriever.index, embedder, RetrievalWeights(sentence_weight=0.0))
        if retriever.translator is not None and not args.no_llm:
            # English questions are translated once by the answer model, then cached: time a cold translator,
            # and warm the retriever's so the search figures below are retrieval alone.
            cold = QueryTranslator(retriever.translator.connect, retriever.translator.model)
            times = []
            for q in QUESTIONS:
                t0 = time.perf_counter()
                if cold.arabic(q.question) is not None:
                    times.append(time.perf_counter() - t0)
                retriever.query(q.question)  # warms the translator's cache
            out["translation_ms"] = round(1000 * median(times), 1) if times else None
        for name, r in (("search", retriever), ("search_baseline_dense", baseline)):
            times = []
            for _ in range(args.repeat):
                for q in QUESTIONS:
                    t0 = time.perf_counter()
                    r.search(q.question, 5)
                    times.append(time.perf_counter() - t0)
            out[f"{name}_ms"] = round(1000 * median(times), 1)
            out[f"{name}_recall@5"] = round(evaluate_questions(QUESTIONS, r).recall[5], 3)
        out.update(filtered_search(embedder, s, Path(tmp), args.repeat))

        # 3. Answer latency with the embedded model: focused passages (ours) vs whole chunks (baseline).
        if not args.no_llm:
            settings = s
            try:
                url = ensure_local_server(settings)
                chat = OpenAIChat(settings.answer_model, url, None, settings.llm_timeout, settings.llm_max_tokens)
                for label, sentences in (("answer", settings.context_sentences), ("answer_baseline_whole_chunks", 0)):
                    first, full = [], []
                    for q in QUESTIONS:
                        t0 = time.perf_counter()
                        stream = ask(q.question, retriever, chat, AnswerRules(k=settings.answer_k, sentences=sentences))
                        t_first = None
                        for _ in stream:
                            if t_first is None:
                                t_first = time.perf_counter() - t0
                        full.append(time.perf_counter() - t0)
                        first.append(t_first if t_first is not None else full[-1])
                    out[f"{label}_first_token_s"] = round(median(first), 2)
                    out[f"{label}_full_s"] = round(median(full), 2)
            finally:
                if not server_was_up:
                    stop_local_server(settings)
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if args.page:
            out.update(page_latency(index_dir, s.data_dir))
            out.update(conversation_latency(index_dir, s.data_dir))
        if not args.no_sources:
            from scripts.bench_sources import sources_figures

            out.update(sources_figures(Path(tmp)))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for key, value in out.items():
        print(f"{key:>40}  {value}")


if __name__ == "__main__":
    main()
