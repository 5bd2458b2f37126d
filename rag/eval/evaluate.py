"""Evaluating: retrieval recall and MRR on question files and on XQuAD, answer checks on question files."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.answer.pipeline import AnswerPipeline, picker_for
from rag.config import Settings
from rag.embed.embedder import Embedder
from rag.errors import RagError
from rag.index.build import index_articles
from rag.index.store import load_index
from rag.llm.client import ChatModel
from rag.retrieve.retriever import Retriever, retriever_for
from rag.retrieve.translate import QueryTranslator
from rag.text.arabic import detect_language
from rag.types import Article, Chunk

KS = (1, 5, 10)
_QUESTION_FIELDS = {"id", "question", "lang", "articles", "evidence", "answer_all", "answerable"}


@dataclass(frozen=True, slots=True)
class Question:
    """One evaluation question (the `seed_questions.jsonl` format)."""

    id: str
    question: str
    lang: str
    articles: tuple[str, ...]
    evidence: tuple[str, ...]
    answer_all: tuple[tuple[str, ...], ...]
    answerable: bool


@dataclass(frozen=True, slots=True)
class RetrievalReport:
    """Recall@k and MRR over the questions with a gold passage, plus query latency."""

    n: int
    recall: dict[int, float]
    mrr: float
    latency_ms_median: float
    latency_ms_p95: float
    ranks: dict[str, int | None] = field(default_factory=dict)  # question id -> rank of the first good hit

    def as_json(self) -> dict[str, float | int]:
        """The documented JSON keys."""
        out: dict[str, float | int] = {"n": self.n, **{f"recall@{k}": round(v, 4) for k, v in self.recall.items()}}
        out |= {
            "mrr": round(self.mrr, 4),
            "latency_ms_median": self.latency_ms_median,
            "latency_ms_p95": self.latency_ms_p95,
        }
        return out


def load_questions(path: Path) -> list[Question]:
    """Read a question file; a malformed line is an error naming the file and line."""
    if not path.is_file():
        raise RagError(f"Question file {path} does not exist: pass --questions FILE (see shared/eval/README.md).")
    questions = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            missing = _QUESTION_FIELDS - set(row)
            if missing:
                raise ValueError(f"missing {sorted(missing)}")
            questions.append(
                Question(
                    id=str(row["id"]),
                    question=row["question"],
                    lang=row["lang"],
                    articles=tuple(row["articles"]),
                    evidence=tuple(row["evidence"]),
                    answer_all=tuple(tuple(g) for g in row["answer_all"]),
                    answerable=bool(row["answerable"]),
                )
            )
        except (ValueError, TypeError) as exc:
            raise RagError(f"{path}, line {no}: not a question in the seed_questions.jsonl format ({exc}).") from exc
    if not questions:
        raise RagError(f"Question file {path} holds no questions.")
    return questions


def _percentile(xs: Sequence[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def evaluate_retrieval(
    queries: Sequence[tuple[str, str]], retriever: Retriever, is_gold: Callable[[str, Chunk], bool], k: int = 10
) -> RetrievalReport:
    """Rank of the first gold chunk for each (id, question); recall@1/5/10, MRR and latency."""
    ranks: dict[str, int | None] = {}
    times = []
    for qid, text in queries:
        t0 = time.perf_counter()
        hits = retriever.search(text, k)
        times.append(1000 * (time.perf_counter() - t0))
        ranks[qid] = next((i for i, h in enumerate(hits, 1) if is_gold(qid, h.chunk)), None)
    n = len(ranks)
    if not n:
        raise RagError("No answerable questions to evaluate retrieval on.")
    return RetrievalReport(
        n=n,
        recall={k_: sum(1 for r in ranks.values() if r is not None and r <= k_) / n for k_ in KS},
        mrr=sum(1 / r for r in ranks.values() if r) / n,
        latency_ms_median=round(statistics.median(times), 1),
        latency_ms_p95=round(_percentile(times, 0.95), 1),
        ranks=ranks,
    )


def evaluate_questions(questions: list[Question], retriever: Retriever) -> RetrievalReport:
    """Retrieval on a question file: a hit is good when it contains one of the question's evidence strings."""
    by_id = {q.id: q for q in questions}
    answerable = [(q.id, q.question) for q in questions if q.answerable]
    return evaluate_retrieval(answerable, retriever, lambda qid, c: any(e in c.text for e in by_id[qid].evidence))


def evaluate_quotes(questions: list[Question], retriever: Retriever, settings: Settings) -> dict[str, float | int]:
    """Key quotes without the answer model: the share of answerable questions whose best key quote (and one of
    the best 3) contains one of their evidence strings."""
    picker = picker_for(retriever, settings)
    at1 = at3 = 0
    answerable = [q for q in questions if q.answerable]
    for q in answerable:
        query = retriever.query(q.question)
        quotes = picker.pick(query, retriever.search(query, settings.answer_k), count=3)
        holds = [any(e in quote.text for e in q.evidence) for quote in quotes]
        at1 += bool(holds[:1] and holds[0])
        at3 += any(holds)
    n = len(answerable) or 1
    return {"quote_accuracy": round(at1 / n, 4), "quote_accuracy@3": round(at3 / n, 4)}


def evaluate_answers(
    questions: list[Question], retriever: Retriever, chat: ChatModel | Callable[[], ChatModel], settings: Settings
) -> dict[str, float | int]:
    """Answer checks: accuracy (answered, every answer_all group matched), citation precision (cited chunk in one
    of the question's articles) and supported-citation rate (the verifier's verdict), both over the citations of
    answers (the closest passages claim nothing), refusals, closest passages, false answers, language."""
    correct = refusals_right = false_refusals = language_right = cited = cited_right = supported = 0
    closest_answerable = closest_unanswerable = false_answers = 0
    answerable = [q for q in questions if q.answerable]
    pipeline = AnswerPipeline(settings, retriever, chat)
    for q in questions:
        a = pipeline.ask(q.question).answer
        text = a.text.lower()
        language_right += detect_language(a.text) == q.lang
        claims = a.citations if a.outcome == "answer" else ()  # the closest passages claim nothing
        cited += len(claims)
        supported += sum(bool(c.supported) for c in claims)
        if q.answerable:
            false_refusals += a.refused
            closest_answerable += a.outcome == "closest"
            correct += a.outcome == "answer" and all(any(s.lower() in text for s in group) for group in q.answer_all)
            cited_right += sum(c.chunk.article_id in q.articles for c in claims)
        else:
            refusals_right += a.refused and not a.citations
            closest_unanswerable += a.outcome == "closest"
            false_answers += a.outcome == "answer"
    unanswerable = len(questions) - len(answerable)
    return {
        "answer_accuracy": round(correct / len(answerable), 4) if answerable else 0.0,
        "citation_precision": round(cited_right / cited, 4) if cited else 0.0,
        "supported_citations": round(supported / cited, 4) if cited else 0.0,
        "citations": cited,
        "refusal_accuracy": round(refusals_right / unanswerable, 4) if unanswerable else 1.0,
        "false_refusals": false_refusals,
        "closest_answerable": closest_answerable,  # answerable questions shown only the closest passages
        "closest_unanswerable": closest_unanswerable,  # unanswerable ones shown the closest passages (not an answer)
        "false_answers": false_answers,  # unanswerable questions given an answer
        "language_accuracy": round(language_right / len(questions), 4),
        "mode": pipeline.mode,  # type: ignore[dict-item]
    }


# ------------------------------------------------------------------ XQuAD


@dataclass(frozen=True, slots=True)
class XQuAD:
    """Arabic XQuAD articles (paragraphs joined by blank lines), the gold spans and the questions."""

    articles: list[Article]
    gold: dict[str, tuple[str, int, int]]  # question id -> (article id, start, end) of its paragraph
    questions: dict[str, list[tuple[str, str]]]  # language -> [(question id, question)]
    answers: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # question id -> Arabic answer span


def load_xquad(directory: Path, limit_articles: int | None = None) -> XQuAD:
    """Read xquad.ar.json and xquad.en.json (parallel files) from `directory`."""
    try:
        ar = json.loads((directory / "xquad.ar.json").read_text(encoding="utf-8"))["data"]
        en = json.loads((directory / "xquad.en.json").read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise RagError(f"{directory} does not hold xquad.ar.json and xquad.en.json: pass --xquad DIR.") from exc
    return _collection(ar, {"ar": ar, "en": en}, limit_articles)


def load_squad(path: Path, limit_articles: int | None = None) -> XQuAD:
    """Read one SQuAD-format JSON file (`{"data": [{"title", "paragraphs": [{"context", "qas": [{"id",
    "question", "answers": [{"text", "answer_start"}]}]}]}]}`); its questions are keyed by their language."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        first = data[0]["paragraphs"][0]["qas"][0]["question"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise RagError(f"{path} is not a SQuAD-format JSON file with questions ({exc}): pass --squad FILE.") from exc
    return _collection(data, {detect_language(first): data}, limit_articles)


def _collection(
    contexts: list[dict],
    asked: dict[str, list[dict]],
    limit_articles: int | None,  # type: ignore[type-arg]
) -> XQuAD:
    """Articles of joined paragraphs from `contexts`, and the questions of each language's parallel file."""
    articles, gold, answers = [], {}, {}
    questions: dict[str, list[tuple[str, str]]] = {lang: [] for lang in asked}
    try:
        for i, article in enumerate(contexts):
            if limit_articles is not None and i >= limit_articles:
                break
            aid, text = f"xquad-{i:02d}", ""
            for j, p in enumerate(article["paragraphs"]):
                text += "\n\n" if text else ""
                start = len(text)
                context = p["context"]
                shift = start - (len(context) - len(context.lstrip()))  # article offset of the context's character 0
                text += context.strip()
                for k, qa in enumerate(p["qas"]):
                    gold[qa["id"]] = (aid, start, len(text))
                    span = qa["answers"][0]
                    answers[qa["id"]] = (
                        aid,
                        shift + span["answer_start"],
                        shift + span["answer_start"] + len(span["text"]),
                    )
                    for lang, parallel in asked.items():
                        other = parallel[i]["paragraphs"][j]["qas"][k]
                        questions[lang].append((other["id"], other["question"]))
            articles.append(Article(id=aid, title=article.get("title", aid), outlet="XQuAD", text=text, sha256=""))
    except (KeyError, IndexError, TypeError) as exc:
        raise RagError(f"Not a SQuAD-format collection: {exc!r} is missing or misplaced.") from exc
    return XQuAD(articles=articles, gold=gold, questions=questions, answers=answers)


def evaluate_xquad(
    xquad: XQuAD,
    langs: Sequence[str],
    embedder: Embedder,
    settings: Settings,
    translator: QueryTranslator | None = None,
    progress: bool = False,
    quotes: bool = False,
) -> tuple[dict[str, dict[str, float]], float]:
    """Index the Arabic articles once, in a temporary folder, with the product's chunker and embedder, then query
    them in each language of `langs`: per language the retrieval figures and, with `quotes`, the share of
    questions whose gold answer span lies inside the best key quote (@1) or one of the best 3 (@3), among the
    sentences of the `answer_k` passages retrieved; and how long indexing took."""
    for lang in langs:
        if lang not in xquad.questions:
            raise RagError(f"--query-lang must be en, ar or both (ar,en), not {lang!r}.")
    with tempfile.TemporaryDirectory(prefix="rag-xquad-") as tmp:
        spec = replace(settings.index_spec, model=embedder.name)
        options = replace(settings.store_options, scratch=True)  # Milvus: a private Milvus Lite file in `tmp`
        report = index_articles(xquad.articles, Path(tmp), embedder, spec, progress=progress, options=options)
        index = load_index(Path(tmp), spec, options)

        def overlaps_gold(qid: str, chunk: Chunk) -> bool:
            aid, start, end = xquad.gold[qid]
            return chunk.article_id == aid and chunk.start < end and chunk.end > start

        results = {}
        for lang in langs:
            retriever = retriever_for(index, embedder, settings, translator if lang == "en" else None)
            found: dict[str, float] = evaluate_retrieval(xquad.questions[lang], retriever, overlaps_gold).as_json()
            if quotes:
                found |= _quote_accuracy(xquad, lang, retriever, settings)
            results[lang] = found
        return results, report.seconds


def _quote_accuracy(xquad: XQuAD, lang: str, retriever: Retriever, settings: Settings) -> dict[str, float]:
    """The share of questions whose gold answer span lies inside the best key quote, and inside one of the best 3."""
    picker = picker_for(retriever, settings)
    at1 = at3 = 0
    for qid, question in xquad.questions[lang]:
        aid, a, b = xquad.answers[qid]
        query = retriever.query(question)
        best = picker.pick(query, retriever.search(query, settings.answer_k), count=3)
        holds = [q.chunk.article_id == aid and q.start <= a and b <= q.end for q in best]
        at1 += bool(holds[:1] and holds[0])
        at3 += any(holds)
    n = len(xquad.questions[lang]) or 1
    return {"quote_accuracy@1": round(at1 / n, 4), "quote_accuracy@3": round(at3 / n, 4)}
