"""Prompting and answering: numbered sources, citation parsing, refusals, streaming."""

from __future__ import annotations

import pytest

from rag.answer.pipeline import AnswerStream, is_refusal, parse_citations
from rag.answer.prompts import REFUSAL_AR, REFUSAL_EN, build_messages
from rag.text.arabic import detect_language
from rag.types import Chunk, Evidence, Hit

from .conftest import FakeChat


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
