"""Prompting and answering: numbered sources, citation parsing, refusals, streaming."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.answer.pipeline import AnswerRules, AnswerStream, ask, is_refusal, parse_citations
from rag.answer.prompts import REFUSAL_AR, REFUSAL_EN, build_messages
from rag.index.build import build_index
from rag.index.store import load_index
from rag.retrieve.retriever import Retriever
from rag.text.arabic import detect_language
from rag.types import Chunk, Evidence, Filter, Hit

from .conftest import FakeChat, FakeEmbedder
from .helpers import FAKE_SPEC


def _hits(n: int) -> list[Hit]:
    return [
        Hit(Chunk(id=f"a{i}:0-5", article_id=f"a{i}", text=f"نص {i}", start=0, end=5), score=1.0 - i / 10)
        for i in range(1, n + 1)
    ]


def _evidence(question: str) -> Evidence:
    hits = tuple(_hits(3))
    return Evidence(question, hits, tuple(h.chunk.text for h in hits), tuple(((0, 2),) for _ in hits))


@pytest.mark.parametrize(
    ("text", "n", "numbers", "cleaned"),
    [
        ("Mao said it [1].", 3, [1], "Mao said it [1]."),
        ("A [1][2]. B [2].", 3, [1, 2], "A [1][2]. B [2]."),
        ("A [1, 3].", 3, [1, 3], "A [1][3]."),
        ("قالت ماو ذلك [١].", 3, [1], "قالت ماو ذلك [١]".replace("[١]", "[1]") + "."),
        ("A [٢، ١].", 3, [2, 1], "A [2][1]."),
        ("A [7]. B [2].", 3, [2], "A. B [2]."),  # unknown numbers are dropped
        ("A [0] [4, 1].", 3, [1], "A [1]."),
        ("see [note] and [x1]", 3, [], "see [note] and [x1]"),  # not citations
    ],
)
def test_parse_citations(text: str, n: int, numbers: list[int], cleaned: str) -> None:
    got_text, got_numbers = parse_citations(text, n)
    assert got_numbers == numbers
    assert got_text == cleaned


def test_refusal_phrases() -> None:
    assert is_refusal(REFUSAL_EN)
    assert is_refusal("The articles do not say")
    assert is_refusal(REFUSAL_AR)
    assert not is_refusal("Mao Ning said China controls dual-use exports by law [1].")


def test_language_detection() -> None:
    assert detect_language("What did Mao Ning say?") == "en"
    assert detect_language("ماذا قالت ماو نينغ عن تايوان؟") == "ar"
    assert detect_language("ماذا قال Putin عن START؟") == "ar"


def test_prompt_numbers_sources_and_names_language_and_refusal() -> None:
    passages = [h.chunk.text for h in _hits(3)]
    messages = build_messages("ماذا قالت ماو؟", passages)
    system, user = messages[0]["content"], messages[1]["content"]
    assert "Arabic" in system and REFUSAL_AR in system
    assert '<passage n="1">' in user and '<passage n="3">' in user and "نص 2" in user and "ماذا قالت ماو؟" in user
    en = build_messages("What did Mao say?", passages)
    assert "English" in en[0]["content"] and REFUSAL_EN in en[0]["content"]
    assert "publication date" not in en[0]["content"]  # no passage is dated: no rule about dates


def test_prompt_gives_each_passage_its_outlet_and_date() -> None:
    passages = [h.chunk.text for h in _hits(3)]
    about = [("Al Jazeera", "2023-03-21"), (None, None), ('Bad "outlet" <x>', None)]
    system, user = (m["content"] for m in build_messages("When did Al Jazeera report it?", passages, about))
    assert '<passage n="1" outlet="Al Jazeera" published="2023-03-21">' in user
    assert '<passage n="2">' in user and '<passage n="3" outlet="Bad  outlet   x ">' in user
    assert "On 21 March 2023, Al Jazeera reported" in system


def test_the_answer_model_reads_outlet_and_date(tmp_path: Path) -> None:
    chat = FakeChat("قالت ماو نينغ ذلك [1].")
    news = Path(__file__).parent / "fixtures" / "news"
    build_index(news, tmp_path / "ix", FakeEmbedder(), FAKE_SPEC)
    retriever = Retriever(load_index(tmp_path / "ix", FAKE_SPEC), FakeEmbedder())
    stream = ask(
        "ماذا قالت ماو نينغ عن الاستخدام المزدوج؟", retriever, chat, AnswerRules(k=2), scope=Filter(since="2024-06-30")
    )
    assert stream.answer.citations and stream.answer.citations[0].also  # feed-005 and feed-006: one passage
    user = chat.messages[1]["content"]
    assert 'published="2024-06-30">' in user or 'published="2024-07-01">' in user
    assert 'outlet="وكالة الأنباء الشرقية"' in user or 'outlet="إذاعة الساحل"' in user


def test_stream_yields_pieces_and_builds_answer() -> None:
    chat = FakeChat("China controls dual-use exports by law [2][9].")
    stream = AnswerStream(_evidence("What did Mao Ning say?"), chat)
    pieces = list(stream)
    assert len(pieces) > 1 and "".join(pieces) == chat.reply
    answer = stream.answer
    assert answer.text == "China controls dual-use exports by law [2]."
    assert [c.n for c in answer.citations] == [2]
    assert answer.citations[0].chunk.article_id == "a2"
    assert answer.citations[0].highlights == ((0, 2),)
    assert not answer.refused and answer.model == "fake-llm"


def test_refusal_has_no_citations() -> None:
    answer = AnswerStream(_evidence("What about Taiwan?"), FakeChat(f"{REFUSAL_EN} [1]")).answer
    assert answer.refused and answer.citations == ()


def test_quote_answer_names_outlet_and_date() -> None:
    from rag.answer.pipeline import render_quotes
    from rag.types import Article, KeyQuote

    chunk = Chunk(id="a:0-4", article_id="a", text="نص.", start=0, end=4)
    quote = KeyQuote(n=1, chunk=chunk, start=0, end=4, text="نص.", score=0.9)
    dated = {"a": Article(id="a", title="t", outlet="BBC", text="نص.", sha256="", published="2024-06-30T10:00:00")}
    assert render_quotes("What?", (quote,), dated).endswith("> نص. [1] (BBC, 2024-06-30)")
    bare = {"a": Article(id="a", title="t", outlet=None, text="نص.", sha256="")}
    assert render_quotes("What?", (quote,), bare).endswith("> نص. [1]")
