"""`rag said PERSON [ABOUT]` on a real index of the seeds and the news fixtures (real embedding model, FAISS on
disk): the who-said-what questions written before the topic filter was tuned, the time line's order and filters,
the JSON, and `rag eval --statements/--said`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.attribute.said import said
from rag.config import Settings
from rag.eval.attribution import evaluate_said, evaluate_statements
from rag.retrieve.retriever import Retriever, load_retriever

from .conftest import DATA, index_of
from .helpers import rag

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def newsroom(real_settings: Settings, real_embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """An index of the seeds, the news fixtures, the English article and the three news pages."""
    folders = (DATA, FIXTURES / "news", FIXTURES / "english", FIXTURES / "pages")
    return index_of(folders, "newsroom", real_settings, real_embedder, tmp_path_factory)


@pytest.fixture(scope="session")
def retriever(newsroom: Path, real_settings: Settings, real_embedder) -> Retriever:  # type: ignore[no-untyped-def]
    return load_retriever(real_settings.model_copy(update={"index_dir": newsroom}), real_embedder)


def test_who_said_what_questions_get_their_statements_and_nothing_else(retriever: Retriever) -> None:
    """tests/fixtures/said.jsonl: >= 90% of the questions show every statement they must and none they must not
    (a topic a person never spoke of shows nothing)."""
    result = evaluate_said(retriever, FIXTURES / "said.jsonl")
    assert result["questions"] == 16
    assert result["said_accuracy"] >= 0.9, result["mistakes"]


def test_the_stored_statements_meet_the_attribution_bar(retriever: Retriever) -> None:
    result = evaluate_statements(retriever, FIXTURES / "statements.jsonl")
    assert result["precision"] >= 0.9 and result["recall"] >= 0.8 and result["speaker_accuracy"] >= 0.9, result


def test_the_time_line_runs_by_date_and_a_name_in_either_script_finds_the_same_statements(
    retriever: Retriever,
) -> None:
    english = said(retriever, "Mao Ning")
    arabic = said(retriever, "ماو نينغ")
    assert english.speakers == arabic.speakers == ("ماو نينغ",)
    assert [s.statement for s in english.said] == [s.statement for s in arabic.said] and len(english.said) == 9
    dated = [s.published[:10] for s in english.said if s.published]
    assert dated == sorted(dated) and len(dated) == 4
    assert all(s.published is None for s in english.said[len(dated) :])  # undated articles last
    outlets = {s.outlet for s in english.said}
    assert {"Al Jazeera", "SeaPRwire", "إذاعة الساحل"} <= outlets


def test_the_filters_apply(retriever: Retriever) -> None:
    from rag.retrieve.filters import make_filter

    since = said(retriever, "Mao Ning", scope=make_filter("2024-06-01", None, (), ()))
    assert [s.statement.article_id for s in since.said] == ["feed-005", "feed-006"]
    outlet = said(retriever, "Mao Ning", "dual-use exports", scope=make_filter(None, None, ("Al Jazeera",), ()))
    assert [s.statement.article_id for s in outlet.said] == ["aljazeera_style"]


def test_rag_said_prints_json_and_text(newsroom: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    done = rag("said", "Mao Ning", "dual-use exports", "--index", str(newsroom), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"person", "speakers", "about", "terms", "left_out", "statements"}
    assert data["speakers"] == ["ماو نينغ"] and len(data["statements"]) == 4 and data["left_out"] == 5
    first = data["statements"][0]
    keys = {"speaker", "role", "kind", "sentence", "cue", "article", "start", "end", "title", "outlet", "published"}
    assert keys | {"url", "score"} == set(first)
    assert first["published"] == "2024-04-15" and "ذات الاستخدام المزدوج" in first["sentence"]
    text = rag("said", "Mao Ning", "Taiwan", "--index", str(newsroom))
    assert text.returncode == 0 and "The articles hold no statement by Mao Ning" in text.stdout
    nobody = rag("said", "Zelensky", "--index", str(newsroom))
    assert nobody.returncode == 0 and "nobody quoted there has that name" in nobody.stdout


def test_rag_eval_measures_statements_and_said(newsroom: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    done = rag(
        "eval",
        "--statements",
        str(FIXTURES / "statements.jsonl"),
        "--said",
        str(FIXTURES / "said.jsonl"),
        "--index",
        str(newsroom),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["statements"]["statements"] == 69 and result["statements"]["precision"] >= 0.9
    assert result["said"]["said_accuracy"] >= 0.9


def test_asked_what_she_said_the_answer_is_her_statements_by_date_in_quote_mode(
    retriever: Retriever, real_settings: Settings
) -> None:
    from rag.answer.pipeline import AnswerPipeline

    from .conftest import FakeChat

    settings = real_settings.model_copy(update={"answer_mode": "quote"})
    chat = FakeChat("The answer model must not be asked [1].")
    answer = AnswerPipeline(settings, retriever, chat).ask("What did Mao Ning say about dual-use exports?").answer
    assert answer.speakers == ("ماو نينغ",) and answer.outcome == "answer" and chat.messages == []
    assert answer.text.startswith("What Mao Ning (ماو نينغ) said about «dual-use exports», by date")
    articles = [q.chunk.article_id for q in answer.key_quotes]
    assert articles == ["aljazeera_style", "feed-005", "000_5016804d4a167ba4"]  # by date, undated last
    assert answer.hits[1].also == ("feed-006",)  # the same sentence from another outlet: "also reported by"
    assert all(c.supported and "الاستخدام المزدوج" in c.quote for c in answer.citations)
    arabic = AnswerPipeline(settings, retriever, chat).ask("ماذا قالت ماو نينغ عن تصدير البنود ذات الاستخدام المزدوج؟")
    assert arabic.answer.speakers == ("ماو نينغ",) and arabic.answer.text.startswith("ما قاله ماو نينغ عن")
    # a topic she never spoke of, or a person never quoted: the usual pipeline (here the place is unknown: refused)
    taiwan = AnswerPipeline(settings, retriever, chat).ask("What did Mao Ning say about Taiwan?").answer
    assert taiwan.speakers == () and taiwan.refused and taiwan.refused_by == "names"


def test_what_else_she_said_puts_the_speaker_back_without_the_answer_model(  # type: ignore[no-untyped-def]
    retriever: Retriever, real_settings: Settings
) -> None:
    from rag.answer.pipeline import AnswerPipeline
    from rag.retrieve.followup import Turn

    from .conftest import FakeChat

    settings = real_settings.model_copy(update={"answer_mode": "quote"})
    chat = FakeChat("The answer model must not be asked.")
    pipeline = AnswerPipeline(settings, retriever, chat)
    first = pipeline.ask("What did Mao Ning say about dual-use exports?").answer
    history = (Turn(first.question, first.text),)
    steps: list[str] = []
    again = pipeline.ask("What else did she say?", history, on_step=steps.append).answer
    assert chat.messages == [] and "rewrite" not in steps  # no model asked, no "rewriting" shown
    assert again.standalone == "What did Mao Ning say?" and again.speakers == ("ماو نينغ",)
    assert again.outcome == "answer" and len(again.key_quotes) >= len(first.key_quotes)
    arabic = pipeline.ask("وماذا قالت أيضا؟", history).answer
    assert arabic.speakers == ("ماو نينغ",) and chat.messages == []
    # a question about something else in between: "she" is still the last who-said question's speaker
    between = (*history, Turn("What is the population of Beijing?", "The articles do not say."))
    later = pipeline.ask("What else did she say?", between).answer
    assert later.standalone == "What did Mao Ning say?" and chat.messages == []


def test_a_pronoun_follow_up_to_a_who_said_question_names_the_speaker() -> None:
    from rag.attribute.said import said_followup

    last = "What did Mao Ning say about dual-use exports?"
    assert said_followup("What else did she say?", last) == "What did Mao Ning say?"
    assert said_followup("And what did she say about Taiwan?", last) == "What did Mao Ning say about Taiwan?"
    assert said_followup("what else has he said?", last) == "What did Mao Ning say?"
    assert said_followup("What did she warn about?", last) == "What did Mao Ning warn about?"
    arabic = "ماذا قالت ماو نينغ عن تصدير البنود؟"
    assert said_followup("وماذا قالت عن تايوان؟", arabic) == "ماذا قالت ماو نينغ عن تايوان؟"
    assert said_followup("وماذا قالت أيضا؟", arabic) == "ماذا قالت ماو نينغ؟"
    # not such a follow-up, or the last question asked no one: left to the answer model's rewrite
    assert said_followup("What else did the ministry say?", last) is None
    assert said_followup("What is the population of Beijing?", last) is None
    assert said_followup("What else did she say?", "What is the population of Beijing?") is None


def test_asked_what_she_said_the_answer_model_reads_her_statements_in_generate_mode(
    retriever: Retriever, real_settings: Settings
) -> None:
    from rag.answer.pipeline import AnswerPipeline

    from .conftest import FakeChat

    settings = real_settings.model_copy(update={"answer_mode": "generate"})
    chat = FakeChat("Mao Ning said China has always controlled the export of dual-use items according to law [1].")
    answer = AnswerPipeline(settings, retriever, chat).ask("What did Mao Ning say about dual-use exports?").answer
    assert answer.speakers == ("ماو نينغ",) and answer.mode == "generate" and answer.model == "fake-llm"
    prompt = chat.messages[1]["content"]
    assert prompt.count("<passage") == 3 and 'outlet="Al Jazeera"' in prompt and "ماو نينغ:" in prompt
    assert answer.citations and answer.citations[0].supported, answer.citations  # checked as any answer
    assert len(answer.key_quotes) == 3  # her statements, kept beside the model's words


def test_the_page_shows_a_time_line_and_who_else_an_article_quotes(browser, newsroom: Path) -> None:  # type: ignore[no-untyped-def]
    """In chromium: a who-said-what question shows the statements by date from three outlets, the wire copy once
    ("also reported by"), and a citation's popover lists who is quoted in its article."""
    from .conftest import TEST_LLM_PORT
    from .pagetools import ARTIFACTS, serve_page

    env = {"RAG_INDEX_DIR": str(newsroom), "RAG_LLM_PORT": str(TEST_LLM_PORT), "RAG_ANSWER_MODE": "quote"}
    with serve_page({**env, "HF_HUB_OFFLINE": "1"}) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(url)
        box = page.get_by_placeholder("Ask about the articles…")
        box.wait_for(timeout=120_000)
        box.fill("What did Mao Ning say about dual-use exports?")
        box.press("Enter")
        answer = page.locator("[data-testid='stChatMessage']").nth(1)
        answer.get_by_text("Answered by the statements of").wait_for(timeout=300_000)
        quotes = answer.locator("blockquote.rag-quote")
        quotes.nth(2).wait_for(state="visible", timeout=30_000)
        assert quotes.count() == 3
        days = [quotes.nth(i).inner_text() for i in range(3)]
        assert "2024-04-15" in days[0] and "2024-06-30" in days[1] and "SeaPRwire" in days[2]  # by date, undated last
        assert "also reported by إذاعة الساحل" in days[1]  # the same sentence, another outlet
        assert all(quotes.nth(i).locator("mark").first.is_visible() for i in range(3))
        page.screenshot(path=str(ARTIFACTS / "timeline.png"), full_page=True)
        answer.locator("[data-testid='stPopover'] button").first.click()
        page.get_by_text("Who is quoted in this article").first.click()
        listed = page.locator("ul.rag-said").first
        listed.wait_for(state="visible", timeout=30_000)
        assert "ماو نينغ" in listed.inner_text() and "وزارة الخارجية الصينية" in listed.inner_text()
        page.screenshot(path=str(ARTIFACTS / "timeline-quoted.png"), full_page=True)
        page.close()


def test_the_page_shows_who_said_what(browser, newsroom: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The "Who said what" view: AppTest (the time line and its summary; a person never quoted says so), then
    chromium (three statements by date, each with outlet, the article's other statements one click away)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from rag.llm import client

    from .conftest import TEST_LLM_PORT, FakeChat
    from .pagetools import ARTIFACTS, serve_page
    from .test_app import APP, TIMEOUT

    monkeypatch.setenv("RAG_INDEX_DIR", str(newsroom))
    monkeypatch.setattr(client, "make_chat_model", lambda settings, **kw: FakeChat("never asked"))
    st.cache_resource.clear()
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    app.session_state["view"] = "Who said what"
    app.run()
    app.text_input(key="person").input("Mao Ning")
    app.text_input(key="about").input("dual-use exports")
    app.button[0].click().run()
    assert not app.exception
    timeline = app.session_state.timeline
    assert len(timeline.said) == 4  # one a wire copy, shown once
    assert any(m.value.startswith("Mao Ning") and "3 statement" in m.value for m in app.main.markdown)
    app.text_input(key="person").input("Emmanuel Macron")
    app.text_input(key="about").input("")
    app.button[0].click().run()
    assert "nobody quoted there has that name" in app.info[0].value

    env = {"RAG_INDEX_DIR": str(newsroom), "RAG_LLM_PORT": str(TEST_LLM_PORT), "HF_HUB_OFFLINE": "1"}
    with serve_page(env) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 1300})
        page.goto(url)
        page.get_by_text("Who said what").first.click(timeout=120_000)
        page.get_by_placeholder("Mao Ning").fill("ماو نينغ")
        page.get_by_placeholder("dual-use exports").fill("dual-use exports")
        page.get_by_role("button", name="Show the time line").click()
        page.get_by_text("statement(s)").wait_for(timeout=120_000)
        quotes = page.locator("blockquote.rag-quote")
        quotes.nth(2).wait_for(state="visible", timeout=30_000)
        assert quotes.count() == 3
        days = [quotes.nth(i).inner_text() for i in range(3)]
        assert "2024-04-15" in days[0] and "2024-06-30" in days[1] and "undated" in days[2]
        assert "also reported by إذاعة الساحل" in days[1]
        page.get_by_text("The article's other statements").first.click()
        page.locator("ul.rag-said").first.wait_for(state="visible", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "said-view.png"), full_page=True)
        page.close()
