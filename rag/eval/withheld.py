"""The withheld-article protocol: does the product know when the articles do not answer?

Index every other article of a SQuAD-format collection (XQuAD's 24 even-numbered ones by default) with the product's
own build, then ask every question through AnswerPipeline (quote mode, the settings' thresholds). A question about
a withheld article asks for something the index does not hold: the right outcome is a refusal. A question about an
indexed article is answered right when the best key quote holds its gold answer span.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rag.answer.answerable import FEATURES, outcome_of
from rag.answer.pipeline import AnswerPipeline
from rag.config import Settings
from rag.embed.embedder import Embedder
from rag.errors import RagError
from rag.eval.evaluate import XQuAD
from rag.index.build import index_articles
from rag.index.store import load_index
from rag.llm.client import ChatModel
from rag.retrieve.retriever import retriever_for
from rag.retrieve.translate import QueryTranslator


@dataclass(frozen=True, slots=True)
class Row:
    """One question's outcome under the protocol."""

    qid: str
    lang: str  # the question's language ("en" questions searched without a rendering: "en-plain")
    article: int  # position of its article in the collection
    withheld: bool
    gated: bool  # refused before the estimate: off-topic, or a place no retrieved article mentions
    outcome: str  # answer | closest | refused
    confidence: float | None
    signals: tuple[float, ...]  # FEATURES order; empty when no key quote was picked
    right: bool  # the best key quote holds the gold answer (never, for a withheld article)
    right_at3: bool  # one of the three best does


def kept(i: int) -> bool:
    """Whether article i is indexed (even positions) or withheld."""
    return i % 2 == 0


def fold_of(i: int) -> int:
    """The half an article belongs to for two-fold fitting: each half holds indexed and withheld articles."""
    return (i // 2) % 2


class _NoModel:
    """Stands in for the answer model: the protocol runs in quote mode and never asks one."""

    name = "none"

    def stream(self, messages, on_wait=None):  # type: ignore[no-untyped-def]
        raise RagError("The withheld-article protocol runs in quote mode: no answer model is asked.")


def paragraphs_withheld(data: XQuAD) -> tuple[XQuAD, set[str]]:
    """The near-topic variant: every article keeps only its even-numbered paragraphs, so a question about an odd one
    asks about the article's own subject what the index no longer holds. Returns the shortened collection (answer
    offsets moved) and the ids of the questions whose paragraph was withheld."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for aid, start, end in data.gold.values():
        spans.setdefault(aid, [])
        if (start, end) not in spans[aid]:
            spans[aid].append((start, end))
    articles, moved, missing = [], {}, set()
    for article in data.articles:
        text, shift = "", {}
        for j, (a, b) in enumerate(sorted(spans.get(article.id, []))):
            if j % 2 == 0:
                text += "\n\n" if text else ""
                shift[(a, b)] = len(text) - a
                text += article.text[a:b]
        articles.append(replace(article, text=text))
        for qid, (aid, a, b) in data.gold.items():
            if aid != article.id:
                continue
            if (a, b) in shift:
                _, x, y = data.answers[qid]
                moved[qid] = (aid, x + shift[(a, b)], y + shift[(a, b)])
            else:
                moved[qid] = data.answers[qid]
                missing.add(qid)
    return replace(data, articles=articles, answers=moved), missing


def run(
    data: XQuAD,
    langs: Sequence[str],
    embedder: Embedder,
    settings: Settings,
    folder: Path,
    translator: QueryTranslator | None = None,
    progress: bool = False,
    withheld_questions: set[str] | None = None,
) -> list[Row]:
    """Index the kept articles in `folder` (reused when built with the same settings) and ask every question of
    `langs` ("ar", "en", and "en-plain" for English without the rendering). With `withheld_questions` (the
    paragraph variant, `paragraphs_withheld`) every article of `data` is indexed and those questions are the
    withheld ones."""
    spec = replace(settings.index_spec, model=embedder.name)
    options = replace(settings.store_options, scratch=True)
    if not (folder / "current").exists():
        chosen = [a for i, a in enumerate(data.articles) if kept(i) or withheld_questions is not None]
        index_articles(chosen, folder, embedder, spec, options=options)
    index = load_index(folder, spec, options)
    position = {a.id: i for i, a in enumerate(data.articles)}
    quote = settings.model_copy(update={"answer_mode": "quote"})
    chat: ChatModel = _NoModel()  # type: ignore[assignment]
    rows = []
    for lang in langs:
        retriever = retriever_for(index, embedder, settings, translator if lang == "en" else None)
        pipeline = AnswerPipeline(quote, retriever, chat)
        questions = data.questions["en" if lang.startswith("en") else lang]
        for qid, question in _bar(questions, f"questions ({lang})", progress):
            a = pipeline.ask(question).answer
            aid, start, end = data.answers[qid]
            gone = not kept(position[aid]) if withheld_questions is None else qid in withheld_questions
            holds = [q.chunk.article_id == aid and q.start <= start and end <= q.end and not gone for q in a.key_quotes]
            signals = dict(a.signals)
            rows.append(
                Row(
                    qid=qid,
                    lang=lang,
                    article=position[aid],
                    withheld=gone,
                    gated=a.refused_by in ("retrieval", "names"),
                    outcome=a.outcome,
                    confidence=a.confidence,
                    signals=tuple(signals[k] for k in FEATURES) if signals else (),
                    right=bool(holds[:1] and holds[0]),
                    right_at3=any(holds),
                )
            )
    return rows


def _bar(items: Sequence[tuple[str, str]], label: str, on: bool) -> Iterable[tuple[str, str]]:
    if not on:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=label, file=sys.stderr)


def save(rows: Sequence[Row], path: Path) -> None:
    path.write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows), encoding="utf-8")


def load(path: Path) -> list[Row]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        d["signals"] = tuple(d["signals"])
        out.append(Row(**d))
    return out


def outcome_at(row: Row, confidence: float | None, answer_min: float, closest_min: float) -> str:
    """The outcome a row gets with another confidence (a gate's refusal stays a refusal)."""
    if confidence is None or not row.signals or row.gated:
        return "refused"
    return outcome_of(confidence, answer_min, closest_min)


def report(
    rows: Sequence[Row],
    answer_min: float,
    closest_min: float,
    confidence: Callable[[Row], float | None] | None = None,
) -> dict[str, float | int]:
    """The protocol's figures for one question language (`confidence`: another estimate to score the rows by)."""
    score = confidence or (lambda r: r.confidence)
    indexed = [r for r in rows if not r.withheld]
    withheld = [r for r in rows if r.withheld]
    got = {r.qid + r.lang: outcome_at(r, score(r), answer_min, closest_min) for r in rows}

    def share(group: Sequence[Row], test: Callable[[Row], bool]) -> float:
        return round(sum(test(r) for r in group) / len(group), 4) if group else 0.0

    answered = [r for r in rows if got[r.qid + r.lang] == "answer"]
    shown = [r for r in rows if got[r.qid + r.lang] in ("answer", "closest")]
    ranked = sorted(rows, key=lambda r: -(score(r) or 0.0))
    risks, right = [], 0
    for k, r in enumerate(ranked, 1):
        right += r.right
        risks.append(1 - right / k)
    return {
        "questions": len(rows),
        "indexed_right": share(indexed, lambda r: got[r.qid + r.lang] == "answer" and r.right),
        "indexed_wrong": share(indexed, lambda r: got[r.qid + r.lang] == "answer" and not r.right),
        "indexed_closest": share(indexed, lambda r: got[r.qid + r.lang] == "closest"),
        "indexed_refused": share(indexed, lambda r: got[r.qid + r.lang] == "refused"),
        "withheld_answered": share(withheld, lambda r: got[r.qid + r.lang] == "answer"),
        "withheld_closest": share(withheld, lambda r: got[r.qid + r.lang] == "closest"),
        "precision": round(sum(r.right for r in answered) / len(answered), 4) if answered else 0.0,
        "shown_right": share(indexed, lambda r: got[r.qid + r.lang] != "refused" and r.right_at3),
        "withheld_shown": share(withheld, lambda r: got[r.qid + r.lang] != "refused"),
        "shown_precision": round(sum(r.right_at3 for r in shown) / len(shown), 4) if shown else 0.0,
        "risk_coverage_area": round(sum(risks) / len(risks), 4) if risks else 0.0,
        "ece": expected_calibration_error(rows, score),
    }


def reliability(
    rows: Sequence[Row], score: Callable[[Row], float | None], bins: int = 10
) -> list[tuple[str, int, float, float]]:
    """Per confidence bin: (bin, questions, mean confidence, share whose best quote answers)."""
    table = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [r for r in rows if (c := score(r)) is not None and (lo <= c < hi or (b == bins - 1 and c == 1.0))]
        if members:
            mean = sum(score(r) or 0.0 for r in members) / len(members)
            table.append(
                (
                    f"{lo:.1f}-{hi:.1f}",
                    len(members),
                    round(mean, 3),
                    round(sum(r.right for r in members) / len(members), 3),
                )
            )
    return table


def expected_calibration_error(rows: Sequence[Row], score: Callable[[Row], float | None]) -> float:
    """The count-weighted mean gap between confidence and the share right, over ten bins."""
    table = reliability(rows, score)
    n = sum(count for _, count, _, _ in table)
    return round(sum(count * abs(mean - right) for _, count, mean, right in table) / n, 4) if n else math.nan
