"""Key quotes and the answer modes (fast fakes): the picker, quote answers, closest passages, the pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rag.answer.answerable import FEATURES, Calibration
from rag.answer.pipeline import AnswerPipeline, resolve_mode
from rag.answer.prompts import quote_intro
from rag.answer.quotes import QuotePicker
from rag.config import get_settings
from rag.eval.evaluate import Question, evaluate_quotes
from rag.index.build import index_articles
from rag.index.store import load_index
from rag.llm.client import LazyChat
from rag.retrieve.retriever import retriever_for
from rag.text.sentences import sentence_spans
from rag.types import Article, IndexSpec

from .conftest import FakeChat, FakeEmbedder

MEETING = "patrushev and yang jiechi met in fujian province."
ARTICLES = [
    Article(
        "fujian",
        "Fujian",
        "Asharq",
        f"the talks lasted two days. {MEETING} they agreed on more joint military drills.",
        "",
    ),
    Article("trade", "Trade", None, "trade between china and russia reached 190.5 billion dollars in 2022.", ""),
]
QUESTION = "where did patrushev and yang jiechi meet?"


@pytest.fixture
def retriever(tmp_path: Path):  # type: ignore[no-untyped-def]
    index_articles(ARTICLES, tmp_path / "index", FakeEmbedder(), IndexSpec(FakeEmbedder.name, 60, 0))
    index = load_index(tmp_path / "index", IndexSpec(FakeEmbedder.name, 60, 0))
    return retriever_for(index, FakeEmbedder(), get_settings(translate_queries=False))


def estimate(confidence: float) -> dict[str, Calibration]:
    """An answerability model that says `confidence` for every question (the fake embedder's scores are not e5's)."""
    bias = math.log(confidence / (1 - confidence))
    return {lang: Calibration(bias, (0.0,) * len(FEATURES)) for lang in ("en", "ar")}


def _pipeline(retriever, chat: FakeChat, confidence: float = 0.9, **settings):  # type: ignore[no-untyped-def]
    """The pipeline with the off-topic threshold for the fake embedder's scale (its cosines are far lower than
    e5's) and an estimate that says `confidence`."""
    s = get_settings(translate_queries=False, **{"refuse_below": 0.2, **settings})
    return AnswerPipeline(s, retriever, chat, estimate(confidence))


def test_decimal_point_does_not_end_a_sentence() -> None:
    text = "it cost 8.8 million. then it grew 3.5 times? yes"
    assert [text[a:b] for a, b in sentence_spans(text, min_words=1)] == [
        "it cost 8.8 million.",
        "then it grew 3.5 times?",
        "yes",
    ]


def test_picker_quotes_the_answering_sentence_with_its_neighbour(retriever) -> None:  # type: ignore[no-untyped-def]
    query = retriever.query(QUESTION)
    hits = retriever.search(query, 2)
    quotes = QuotePicker(retriever.index, retriever.bm25).pick(query, hits)
    best = quotes[0]
    text = ARTICLES[0].text
    assert text[best.focus[0] : best.focus[1]] == MEETING  # the key sentence
    assert MEETING in best.text and best.text == text[best.start : best.end].strip()
    assert best.start < best.focus[0] or best.end > best.focus[1]  # an adjacent sentence as context
    assert best.chunk.article_id == "fujian" and best.n == 1
    assert [q.score for q in quotes] == sorted((q.score for q in quotes), reverse=True)
    # no quote starts from a sentence that a better quote already holds
    same = [q for q in quotes[1:] if q.chunk.article_id == best.chunk.article_id]
    assert same and all(not (best.start <= q.focus[0] and q.focus[1] <= best.end) for q in same)


def test_quote_mode_answers_with_the_articles_words_and_asks_no_model(retriever) -> None:  # type: ignore[no-untyped-def]
    chat = FakeChat("an invented answer [1]")
    steps: list[str] = []
    answer = _pipeline(retriever, chat, answer_mode="quote").ask(QUESTION, on_step=steps.append).answer
    assert answer.mode == "quote" and not answer.refused and chat.messages == []
    assert "invented" not in answer.text
    assert answer.text.startswith("The sentences of the articles") and MEETING in answer.text
    assert "[1] (Asharq)" in answer.text  # the citation and the outlet
    cite = answer.citations[0]
    assert cite.supported is True and MEETING in cite.quote
    assert cite.highlights == (answer.key_quotes[0].focus,)
    assert steps == ["search", "quotes"]


def test_quote_mode_refuses_when_the_quotes_are_unlikely_to_answer(retriever) -> None:  # type: ignore[no-untyped-def]
    answer = _pipeline(retriever, FakeChat("x"), 0.05, answer_mode="quote").ask(QUESTION).answer
    assert answer.refused and answer.refused_by == "confidence" and not answer.citations
    assert answer.outcome == "refused" and answer.confidence == 0.05
    assert answer.text == "The articles do not say."
    arabic = _pipeline(retriever, FakeChat("x"), 0.05, answer_mode="quote").ask("أين التقيا؟").answer
    assert arabic.text == "لا تذكر المقالات ذلك."


def test_quote_mode_shows_uncertain_quotes_as_the_closest_passages(retriever) -> None:  # type: ignore[no-untyped-def]
    chat = FakeChat("x")
    a = _pipeline(retriever, chat, 0.3, answer_mode="quote").ask(QUESTION).answer
    assert a.outcome == "closest" and not a.refused and a.confidence == 0.3 and chat.messages == []
    assert a.text.startswith("The articles may not answer this. The closest passages:") and MEETING in a.text
    assert len(a.citations) == len(a.key_quotes) >= 2  # the best three quotes, as the closest passages
    assert all(c.supported is None for c in a.citations)  # never marked as supporting
    sure = _pipeline(retriever, chat, 0.9, answer_mode="quote").ask(QUESTION).answer
    assert sure.outcome == "answer" and sure.citations[0].supported is True
    assert quote_intro("ar", "closest") == "قد لا تجيب المقالات عن هذا. أقرب المقاطع:"


def test_generate_mode_keeps_key_quotes_and_offers_the_closest_passage(retriever) -> None:  # type: ignore[no-untyped-def]
    answered = _pipeline(retriever, FakeChat("They met in Fujian [1]."), answer_mode="generate").ask(QUESTION)
    a = answered.answer
    assert a.mode == "generate" and a.text == "They met in Fujian [1]." and MEETING in a.key_quotes[0].text
    assert a.closest is None
    assert a.outcome == "answer" and a.confidence == 0.9
    abstained = _pipeline(retriever, FakeChat("The articles do not say."), answer_mode="generate").ask(QUESTION)
    refused = abstained.answer
    assert refused.outcome == "closest" and refused.refused_by == "model" and not refused.citations
    assert refused.closest is not None and MEETING in refused.closest.text  # shown as the closest passage
    chat = FakeChat("They met in Fujian [1].")
    unlikely = _pipeline(retriever, chat, 0.05, answer_mode="generate").ask(QUESTION).answer
    assert unlikely.outcome == "refused" and unlikely.refused_by == "confidence" and chat.messages == []  # not asked
    uncertain = _pipeline(
        retriever, FakeChat("They met in Fujian [1]."), 0.3, answer_mode="generate", verify_citations=False
    )
    assert uncertain.ask(QUESTION).answer.outcome == "closest"  # between the thresholds and nothing verified


def test_auto_mode_quotes_with_the_embedded_model_and_generates_with_an_endpoint() -> None:
    assert resolve_mode(get_settings()) == "quote"
    assert resolve_mode(get_settings(openai_base_url="http://127.0.0.1:9/v1", llm_model="m")) == "generate"
    assert resolve_mode(get_settings(answer_mode="generate")) == "generate"


def test_lazy_chat_connects_once_on_first_use() -> None:
    made: list[FakeChat] = []

    def connect() -> FakeChat:
        made.append(FakeChat("hello"))
        return made[-1]

    chat = LazyChat(connect, "fake")
    assert made == []
    assert "".join(chat.stream([])) == "hello" and "".join(chat.stream([])) == "hello"
    assert len(made) == 1


def test_quote_accuracy_on_a_question_file(retriever) -> None:  # type: ignore[no-untyped-def]
    questions = [
        Question("q1", QUESTION, "en", ("fujian",), ("fujian province",), (("Fujian",),), True),
        Question("q2", "how much was the trade between china and russia?", "en", ("trade",), ("190.5",), (), True),
        Question("q3", "who won the cup?", "en", (), (), (), False),
    ]
    result = evaluate_quotes(questions, retriever, get_settings(translate_queries=False, answer_k=2))
    assert result == {"quote_accuracy": 1.0, "quote_accuracy@3": 1.0}
    wrong = [Question("q4", QUESTION, "en", ("trade",), ("190.5 billion",), (), True)]
    assert evaluate_quotes(wrong, retriever, get_settings(translate_queries=False, answer_k=2))["quote_accuracy"] == 0
