"""Answer or abstain, with the real model and index: the three outcomes on the seeds, the withheld-article protocol,
and `rag eval` on a file of unanswerable questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.config import Settings
from rag.eval.evaluate import load_questions

from .conftest import ROOT
from .helpers import rag

SEED_QUESTIONS = ROOT.parent / "shared" / "eval" / "seed_questions.jsonl"
XQUAD = ROOT.parent / "shared" / "bench" / "xquad"
QUOTE = {"RAG_ANSWER_MODE": "quote"}


def _ask(question: str, index: Path) -> dict:  # type: ignore[type-arg]
    done = rag("ask", question, "--json", env={**QUOTE, "RAG_INDEX_DIR": str(index)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_arabic_seed_questions_get_their_outcomes(real_index: Path, real_settings: Settings) -> None:
    # Arabic questions need no rendering: no answer model is asked in quote mode.
    for q in load_questions(SEED_QUESTIONS) + load_questions(ROOT / "tests" / "answer_questions.jsonl"):
        if q.lang != "ar":
            continue
        a = _ask(q.question, real_index)
        assert a["outcome"] in ("answer", "closest", "refused") and a["refused"] == (a["outcome"] == "refused")
        if q.answerable:  # never a false refusal: answered, or at worst the closest passages with the evidence
            assert a["outcome"] != "refused", (q.id, a["confidence"])
            assert any(e in k["quote"] for k in a["key_quotes"] for e in q.evidence), q.id
        else:
            assert a["outcome"] != "answer", (q.id, a["confidence"])
        if a["speakers"]:  # "ماذا قالت ماو نينغ عن ...؟": her statements about it, no estimate needed
            assert a["outcome"] == "answer" and a["confidence"] is None and all(c["supported"] for c in a["citations"])
            continue
        if a["outcome"] == "answer":
            assert a["confidence"] >= real_settings.answer_confidence
            assert all(c["supported"] for c in a["citations"])
        elif a["outcome"] == "closest":
            assert real_settings.closest_confidence <= a["confidence"] < real_settings.answer_confidence
            assert a["answer"].startswith("قد لا تجيب المقالات عن هذا.")
            assert a["citations"] and all(c["supported"] is None for c in a["citations"])
        assert set(a["signals"]) >= {"quote", "dense", "coverage"}


def test_closest_passages_are_labelled_in_the_text_answer(real_index: Path) -> None:
    question = "ماذا قال باتروشيف عن الأسلحة النووية؟"
    outcome = _ask(question, real_index)["outcome"]
    done = rag("ask", question, env={**QUOTE, "RAG_INDEX_DIR": str(real_index)})
    assert done.returncode == 0, done.stderr
    if outcome == "closest":
        assert "قد لا تجيب المقالات عن هذا. أقرب المقاطع:" in done.stdout
        assert (
            "(closest passage, verbatim: it may not answer)" in done.stdout and "(quoted verbatim)" not in done.stdout
        )
    else:
        assert outcome == "refused" and "لا تذكر المقالات ذلك." in done.stdout and "[1]" not in done.stdout


def test_thresholds_move_the_outcome(real_index: Path) -> None:
    question = "أين التقى باتروشيف ويانغ جيتشي؟"
    env = {**QUOTE, "RAG_INDEX_DIR": str(real_index)}
    strict = json.loads(rag("ask", question, "--json", env={**env, "RAG_ANSWER_CONFIDENCE": "1"}).stdout)
    assert strict["outcome"] == "closest"
    none = rag("ask", question, "--json", env={**env, "RAG_ANSWER_CONFIDENCE": "1", "RAG_CLOSEST_CONFIDENCE": "1"})
    assert json.loads(none.stdout)["outcome"] == "refused" and json.loads(none.stdout)["refused_by"] == "confidence"
    easy = json.loads(rag("ask", question, "--json", env={**env, "RAG_ANSWER_CONFIDENCE": "0"}).stdout)
    assert easy["outcome"] == "answer" and "فوجيان" in easy["answer"]


def test_eval_answers_on_unanswerable_questions_only(real_index: Path) -> None:
    done = rag(
        "eval", "--questions", str(ROOT / "tests" / "near_topic_seeds.jsonl"), "--answers", "--json",
        env={**QUOTE, "RAG_INDEX_DIR": str(real_index), "RAG_TRANSLATE_QUERIES": "false"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n"] == 0 and result["false_refusals"] == 0 and result["closest_answerable"] == 0
    refused = round(result["refusal_accuracy"] * 20)
    assert refused + result["closest_unanswerable"] + result["false_answers"] == 20
    plain = rag(
        "eval", "--questions", str(ROOT / "tests" / "near_topic_seeds.jsonl"), env={"RAG_INDEX_DIR": str(real_index)}
    )
    assert plain.returncode == 1 and "only unanswerable questions: pass --answers" in plain.stderr


@pytest.mark.integration
def test_withheld_protocol_on_eight_xquad_articles() -> None:
    done = rag("eval", "--xquad", str(XQUAD), "--withheld", "--query-lang", "ar", "--limit-articles", "8", "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["query_lang"] == "ar" and r["questions"] > 150
    shares = ("indexed_right", "indexed_wrong", "indexed_closest", "indexed_refused")
    assert abs(sum(r[k] for k in shares) - 1) < 0.01
    assert r["withheld_answered"] + r["withheld_closest"] <= 1
    # the estimate knows most questions about withheld articles are not answered by the index
    assert r["withheld_answered"] <= 0.1 and r["indexed_right"] >= 0.5 and r["precision"] >= 0.75
    assert 0 <= r["ece"] <= 0.2 and r["reliability"]
    bad = rag("eval", "--squad", str(XQUAD / "README.md"), "--withheld", "--json")
    assert bad.returncode == 1 and "is not a SQuAD-format JSON file" in bad.stderr and "--squad FILE" in bad.stderr


@pytest.mark.integration
def test_withheld_protocol_on_a_squad_file(tmp_path: Path) -> None:
    squad = tmp_path / "four.json"
    data = json.loads((XQUAD / "xquad.ar.json").read_text(encoding="utf-8"))["data"][:4]
    squad.write_text(json.dumps({"data": data}, ensure_ascii=False), encoding="utf-8")
    done = rag("eval", "--squad", str(squad), "--withheld", "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["query_lang"] == "ar" and r["questions"] == sum(len(p["qas"]) for a in data for p in a["paragraphs"])
