"""The answer view: every outcome laid out once (what is shown first, the quote blocks, the warnings, the aside,
the sources and their marks, the meta line, the JSON), and front ends that only render it."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

from rag.answer.prompts import CLOSEST_INTROS, UNCERTAIN_INTROS
from rag.answer.verify import misattributed, outlets_named
from rag.answer.view import KEY_QUOTE_INTRO, RETRIEVED, UNSUPPORTED, answer_view, groups_line, retrieved_view
from rag.llm.local_server import CRASH_REPORT
from rag.types import Answer, Article, Chunk, Citation, Evidence, Hit, KeyQuote, Query

ROOT = Path(__file__).resolve().parent.parent
TEXT = "قالت ماو نينغ إن الصين تتحكم في تصدير البنود ذات الاستخدام المزدوج وفقا للقانون. وأضافت أن الصين لم تقدم أسلحة."
CHUNK = Chunk("a:0-111", "a", TEXT, 0, len(TEXT))
OTHER = Chunk("b:0-20", "b", "نص آخر عن التجارة.", 0, 18)
ARTICLES = {
    "a": Article(id="a", title="ماو نينغ", text=TEXT, sha256="", outlet="الجزيرة", published="2023-02-22"),
    "b": Article(id="b", title="التجارة", text=OTHER.text, sha256="", outlet="BBC"),
    "c": Article(id="c", title="نسخة", text=TEXT, sha256="", outlet="RT"),
}
HITS = (Hit(CHUNK, 0.9, also=("c",)), Hit(OTHER, 0.5))
FIRST = TEXT.index(".") + 1
QUOTE = KeyQuote(1, CHUNK, 0, FIRST, TEXT[:FIRST], 0.8, (0, FIRST))
SECOND = KeyQuote(2, OTHER, 0, 18, OTHER.text, 0.3, (0, 18))
QUERY = Query("What did Mao Ning say about dual-use exports?", "en", (), rendering="ماذا قالت ماو نينغ")
EVIDENCE = Evidence(QUERY.text, HITS, (CHUNK.text, OTHER.text), (((0, FIRST),), ()), QUERY)


def _quoted(outcome: str) -> Answer:
    cite = Citation(1, CHUNK, ((0, FIRST),), True if outcome == "answer" else None, QUOTE.text, 0.8, also=("c",))
    text = f"intro line\n\n> {QUOTE.text} [1]"
    return Answer(QUERY.text, text, False, (cite,), HITS, "", mode="quote", key_quotes=(QUOTE, SECOND), outcome=outcome)


def test_a_quote_answer_leads_with_its_intro_and_shows_its_quotes_as_blocks() -> None:
    view = answer_view(_quoted("answer"), EVIDENCE, ARTICLES)
    assert view.lead == "intro line" and not view.lead_warn
    assert [b.quote for b in view.blocks] == [QUOTE] and not view.blocks[0].closest  # only the quote shown
    assert view.blocks[0].source.others == ("RT",)  # the wire copy's outlet
    (source,) = view.sources
    assert source.mark == " (quoted verbatim)" and source.excerpt == "" and source.supported and not source.warn
    assert view.aside is None and view.alerts == () and not view.unsupported
    assert view.meta.startswith("Answered by key quotes in ") and "1 quoted passage(s), verbatim" in view.meta
    assert "also searched in Arabic as «ماذا قالت ماو نينغ»" in view.meta
    citation = view.data["citations"][0]
    assert citation["also_reported_by"] == ["RT"] and citation["outlet"] == "الجزيرة" and citation["supported"]
    assert view.data["key_quotes"][1]["article_id"] == "b" and view.data["translation"] == "ماذا قالت ماو نينغ"


def test_the_closest_passages_are_shown_as_a_warning_never_as_an_answer() -> None:
    view = answer_view(_quoted("closest"), EVIDENCE, ARTICLES)
    assert view.lead_warn and view.blocks[0].closest
    assert view.sources[0].mark == " (closest passage, verbatim: it may not answer)" and not view.sources[0].verdict
    assert "the articles may not answer: closest passages only" in view.meta


def test_a_generated_answer_no_passage_supports_is_flagged() -> None:
    bad = Citation(1, CHUNK, ((0, FIRST),), False, QUOTE.text, 0.2, "190 is not in the passage")
    answer = Answer(QUERY.text, "Trade reached 190 billion [1].", False, (bad,), HITS, "qwen", key_quotes=(QUOTE,))
    view = answer_view(answer, EVIDENCE, ARTICLES)
    assert view.lead == answer.text and view.blocks == () and view.alerts == (UNSUPPORTED,) and view.unsupported
    (source,) = view.sources
    assert source.warn and source.mark == " ⚠ unverified: 190 is not in the passage"
    assert source.verdict.startswith("Unverified: 190 is not in the passage.") and source.excerpt.startswith("quote:")
    assert view.aside is not None and view.aside.intro == KEY_QUOTE_INTRO and not view.aside.warn
    assert "1 cited passage(s), 1 unverified" in view.meta and view.meta.startswith("Answered by qwen")
    assert view.data["unsupported"] is True and view.data["citations"][0]["supported"] is False


def test_an_abstention_shows_the_closest_passage_and_a_doubted_answer_its_warning() -> None:
    abstained = Answer(QUERY.text, "The articles do not say.", True, (), HITS, "qwen", closest=QUOTE, outcome="closest")
    view = answer_view(abstained, EVIDENCE, ARTICLES)
    assert view.aside is not None and view.aside.intro == CLOSEST_INTROS["en"] and view.aside.block.closest
    assert view.data["closest"]["quote"] == QUOTE.text
    doubted = Answer(
        QUERY.text, "Mao Ning said so [1].", False, (), HITS, "qwen", key_quotes=(QUOTE,), outcome="closest"
    )
    view = answer_view(replace(doubted, question="ماذا قالت ماو نينغ؟"), EVIDENCE, ARTICLES)
    assert view.aside is not None and view.aside.warn and view.aside.intro == UNCERTAIN_INTROS["ar"]


def test_a_crash_while_rendering_is_a_notice_above_the_answer() -> None:
    crashed = replace(QUERY, rendering=None, skipped=f"{CRASH_REPORT} (signal 11)")
    view = answer_view(_quoted("answer"), replace(EVIDENCE, query=crashed), ARTICLES)
    assert view.notice is not None and view.notice.startswith("Searched without the Arabic rendering")
    assert "the answer model crashed: see above" in view.meta


def test_when_the_answer_model_fails_the_passages_found_are_the_view() -> None:
    view = retrieved_view(EVIDENCE, ARTICLES)
    assert view.heading == RETRIEVED and [s.chunk for s in view.sources] == [CHUNK, OTHER]
    assert view.sources[0].highlights == ((0, FIRST),) and view.sources[1].excerpt == OTHER.text
    assert view.data["answer"] is None and [p["rank"] for p in view.data["passages"]] == [1, 2]


OUTCOME_WORDS = {"closest", "refused", "unsupported", "supported", "quote", "generate", "outcome", "mode"}


def test_the_page_and_the_cli_decide_nothing_about_outcomes() -> None:
    """No `if`/ternary in app.py or rag/cli/ tests an answer's outcome, mode or support: the view decides."""
    for path in [ROOT / "app.py", *sorted((ROOT / "rag" / "cli").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.If | ast.IfExp | ast.comprehension):
                tests = node.ifs if isinstance(node, ast.comprehension) else [node.test]
                for test in tests:
                    names = {n.attr for n in ast.walk(test) if isinstance(n, ast.Attribute)}
                    names |= {
                        n.value for n in ast.walk(test) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                    }
                    names |= {n.id for n in ast.walk(test) if isinstance(n, ast.Name)}
                    assert not names & OUTCOME_WORDS, f"{path.name}:{test.lineno} decides on {names & OUTCOME_WORDS}"


def test_quotes_from_two_outlets_are_grouped_by_outlet_and_day() -> None:
    """Two key quotes from الجزيرة (with RT's wire copy) and the BBC: grouped, in the JSON too; one outlet: none."""
    two = Citation(2, OTHER, ((0, 18),), True, SECOND.text, 0.3)
    answer = replace(_quoted("answer"), citations=(*_quoted("answer").citations, two))
    view = answer_view(answer, EVIDENCE, ARTICLES)
    assert [(g.outlet, g.published, g.ns, g.also) for g in view.groups] == [
        ("الجزيرة", "2023-02-22", (1,), ("RT",)),
        ("BBC", None, (2,), ()),
    ]
    assert groups_line(view.groups) == "الجزيرة, 2023-02-22: [1] (also reported by RT) · BBC: [2]"
    assert view.data["by_outlet"][1] == {"outlet": "BBC", "published": None, "citations": [2], "also_reported_by": []}
    one = answer_view(_quoted("answer"), EVIDENCE, ARTICLES)
    assert one.groups == () and one.data["by_outlet"] == []


def test_an_attribution_to_the_wrong_outlet_is_flagged() -> None:
    carried = {1: ["الجزيرة", "RT"], 2: ["BBC"]}
    outlets = ["الجزيرة", "BBC", "RT", "Al Jazeera"]
    assert misattributed("According to the BBC, China controls dual-use exports [1].", carried, outlets) == {
        1: "the answer attributes it to BBC, but the passage is from الجزيرة, RT"
    }
    assert misattributed("RT reported that China controls them [1]. The BBC covered trade [2].", carried, outlets) == {}
    assert misattributed("ذكرت الجزيرة أن الصين تتحكم في التصدير [2].", carried, outlets) == {
        2: "the answer attributes it to الجزيرة, but the passage is from BBC"
    }
    assert misattributed("China controls dual-use exports [1][2].", carried, outlets) == {}  # no outlet named
    assert outlets_named("Al Jazeeras and the BBC's report", outlets) == ["BBC"]  # whole words only


def test_the_prompt_asks_for_outlets_when_passages_come_from_several() -> None:
    from rag.answer.prompts import OUTLETS_RULE, build_messages

    two = build_messages("Who said it?", ["a", "b"], [("Al Jazeera", "2023-02-22"), ("BBC", None)])
    one = build_messages("Who said it?", ["a", "b"], [("BBC", "2023-02-22"), ("BBC", None)])
    assert OUTLETS_RULE in two[0]["content"] and OUTLETS_RULE not in one[0]["content"]
