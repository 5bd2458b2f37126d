"""Saved questions: after every update, the new articles that answer one are recorded for it, once.

An article answers a watch when the question asked of that article alone gets an answer, not merely the closest
passages: the answer-or-abstain estimate (rag/answer/answerable.py) puts its best key quote in the "answer" tier,
with a confidence of at least RAG_WATCH_CONFIDENCE, the passage is on topic and every place the question names is
in the article. The candidates are the articles of the question's best passages among the new ones, so a watch
costs a search and a few estimates, however many articles arrive."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.answer.pipeline import AnswerPipeline
from rag.errors import NothingMatchesError, RagError
from rag.state.chats import now
from rag.state.db import StateDB
from rag.types import Filter

CANDIDATE_HITS = 12  # passages searched among the new articles, per watch
CANDIDATE_ARTICLES = 5  # articles among them asked the question one by one
MAX_QUESTION = 500


@dataclass(frozen=True, slots=True)
class Watch:
    """A saved question, its hits so far and how many of them are new since `owner` last looked."""

    id: int
    question: str
    created: str
    checked: str | None  # when articles were last checked against it
    hits: int = 0
    new: int = 0


@dataclass(frozen=True, slots=True)
class WatchHit:
    """An article that answers a watch: when it was found, the estimate's confidence and the key quote."""

    watch_id: int
    article_id: str
    found: str
    confidence: float | None
    chunk_id: str | None
    start: int
    end: int
    quote: str
    new: bool = False  # found after the reader last looked


class WatchStore:
    """The watches of the state database; "last looked" is kept per reader (`owner`, as for chats)."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def add(self, question: str) -> Watch:
        text = " ".join(question.split())
        if not text:
            raise RagError('An empty watch: give a question or a claim, e.g. `rag watch add "Who met Wang Yi?"`.')
        if len(text) > MAX_QUESTION:
            raise RagError(f"A watch of {len(text)} characters: keep it under {MAX_QUESTION}, one question or claim.")
        with self.db.connect() as conn:
            if conn.execute("SELECT 1 FROM watches WHERE question = ?", (text,)).fetchone():
                raise RagError(f"Already watched: {text!r} (`rag watch list`).")
            conn.execute("INSERT INTO watches (question, created) VALUES (?, ?)", (text, now()))
        return next(w for w in self.watches() if w.question == text)

    def watches(self, owner: str = "") -> list[Watch]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT w.*, (SELECT COUNT(*) FROM watch_hits h WHERE h.watch_id = w.id) AS hits, "
                "(SELECT COUNT(*) FROM watch_hits h WHERE h.watch_id = w.id AND h.found > COALESCE("
                "(SELECT seen FROM watch_seen s WHERE s.watch_id = w.id AND s.owner = ?), '')) AS new "
                "FROM watches w ORDER BY w.id",
                (owner,),
            ).fetchall()
        return [Watch(r["id"], r["question"], r["created"], r["checked"], r["hits"], r["new"]) for r in rows]

    def get(self, ref: str | int) -> Watch:
        for watch in self.watches():
            if str(watch.id) == str(ref) or watch.question == ref:
                return watch
        raise RagError(f"No watch {ref!r}: `rag watch list` shows their numbers.")

    def remove(self, ref: str | int) -> Watch:
        watch = self.get(ref)
        with self.db.connect() as conn:
            conn.execute("DELETE FROM watches WHERE id = ?", (watch.id,))
        return watch

    def hits(self, watch_id: int, owner: str = "") -> list[WatchHit]:
        """The watch's hits, newest first; `new` marks those found since `owner` last looked."""
        with self.db.connect() as conn:
            seen = conn.execute(
                "SELECT seen FROM watch_seen WHERE watch_id = ? AND owner = ?", (watch_id, owner)
            ).fetchone()
            rows = conn.execute(
                "SELECT * FROM watch_hits WHERE watch_id = ? ORDER BY found DESC, article_id", (watch_id,)
            ).fetchall()
        since = seen["seen"] if seen else ""
        return [
            WatchHit(
                r["watch_id"], r["article_id"], r["found"], r["confidence"], r["chunk_id"], r["start"], r["end"],
                r["quote"], r["found"] > since,
            )
            for r in rows
        ]  # fmt: skip

    def looked(self, owner: str, watch_ids: Iterable[int] | None = None) -> None:
        """`owner` has seen every hit so far (of the given watches, default all)."""
        ids = [w.id for w in self.watches()] if watch_ids is None else list(watch_ids)
        stamp = now()
        with self.db.connect() as conn:
            conn.executemany(
                "INSERT INTO watch_seen (owner, watch_id, seen) VALUES (?, ?, ?) "
                "ON CONFLICT (owner, watch_id) DO UPDATE SET seen = excluded.seen",
                [(owner, i, stamp) for i in ids],
            )

    def record(self, hits: Sequence[WatchHit], checked: Sequence[int]) -> int:
        """Keep the hits not kept before (an article answers a watch once); mark the watches checked. How many
        were new."""
        with self.db.connect() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO watch_hits (watch_id, article_id, found, confidence, chunk_id, start, end, "
                "quote) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(h.watch_id, h.article_id, h.found, h.confidence, h.chunk_id, h.start, h.end, h.quote) for h in hits],
            )
            added = conn.total_changes - before
            conn.executemany("UPDATE watches SET checked = ? WHERE id = ?", [(now(), i) for i in checked])
        return added


def answering(
    pipeline: AnswerPipeline, watch: Watch, article_ids: Sequence[str] | None, least: float = 0.0
) -> list[WatchHit]:
    """The articles among `article_ids` (None: the whole index) that answer `watch` (see the module docstring)
    with a confidence of at least `least` (a who-said-what answer, which shows statements, has none)."""
    if article_ids is not None and not article_ids:
        return []
    retriever = pipeline.retriever
    if article_ids is not None:  # those the index holds (one skipped by the update is no reason to check none)
        article_ids = [a for a in article_ids if a in retriever.index.articles]
        if not article_ids:
            return []
    scope = Filter(articles=tuple(article_ids)) if article_ids is not None else None
    try:
        hits = retriever.search(retriever.query(watch.question, scope), CANDIDATE_HITS)
    except NothingMatchesError:  # the articles left the index meanwhile
        return []
    candidates = list(dict.fromkeys(h.chunk.article_id for h in hits))[:CANDIDATE_ARTICLES]
    found: list[WatchHit] = []
    for aid in candidates:
        stream = pipeline.ask(watch.question, scope=Filter(articles=(aid,)))
        if stream.off_topic or stream.unmentioned or stream.tier != "answer" or not stream.strong_quotes:
            continue
        best = stream.strong_quotes[0]
        confidence = stream.assessment.confidence if stream.assessment is not None else None
        if confidence is not None and confidence < least:
            continue
        found.append(WatchHit(watch.id, aid, now(), confidence, best.chunk.id, best.start, best.end, best.text))
    return found


def check_watches(
    pipeline: AnswerPipeline, store: WatchStore, article_ids: Sequence[str] | None, only: int | None = None
) -> list[WatchHit]:
    """Check the watches (or watch `only`) against `article_ids` (None: every article) and keep the new hits;
    returns the hits recorded now (an article already recorded for a watch is not returned again)."""
    watches = [w for w in store.watches() if only is None or w.id == only]
    recorded: list[WatchHit] = []
    for watch in watches:
        before = {h.article_id for h in store.hits(watch.id)}
        found = answering(pipeline, watch, article_ids, pipeline.settings.watch_confidence)
        hits = [h for h in found if h.article_id not in before]
        store.record(hits, [watch.id])
        recorded.extend(hits)
    return recorded
