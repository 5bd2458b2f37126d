"""The page's filters and sources (issue 15), headless (AppTest) over the news fixtures with the real model: the
sidebar's date range and outlets change the answer's sources, the filter is shown above the answer, and every
citation shows outlet, date and a link to the original."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from rag.answer.render import escape_markdown, isolated
from rag.llm import client

from .conftest import FakeChat
from .test_app import APP, TIMEOUT

DUAL_USE = "ماذا قالت ماو نينغ عن تصدير المواد ذات الاستخدام المزدوج؟"
MARKET = "ماذا حدث لأسعار الطماطم في السوق؟"


@pytest.fixture
def page(news_index: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("RAG_INDEX_DIR", str(news_index))
    monkeypatch.setenv("RAG_ANSWER_MODE", "quote")
    monkeypatch.setattr(client, "make_chat_model", lambda settings: FakeChat("never asked"))
    st.cache_resource.clear()
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def _ask(page: AppTest, question: str) -> dict:  # type: ignore[type-arg]
    page.chat_input[0].set_value(question).run()
    assert not page.exception
    return page.session_state.messages[-1]  # type: ignore[no-any-return]


def _outlets(record: dict) -> set[str]:  # type: ignore[type-arg]
    return {s["outlet"] for s in record["sources"]}


def test_sidebar_offers_the_dates_and_outlets(page: AppTest) -> None:
    dates = page.sidebar.date_input(key="dates")
    assert dates.label == "Published between" and dates.value == ()  # empty: no date filter
    assert "2022-01-10 to 2024-11-05" in dates.help and "2 undated" in dates.help
    outlets = page.sidebar.multiselect(key="outlets")
    assert outlets.options == ["إذاعة الساحل (4)", "صحيفة الوادي (3)", "وكالة الأنباء الشرقية (1)"]
    assert outlets.value == []


def test_outlet_choice_changes_the_sources(page: AppTest) -> None:
    everything = _ask(page, DUAL_USE)
    assert everything["filter"] == "" and not everything.get("error")
    first = everything["sources"][0]
    assert first["article_id"] in ("feed-005", "feed-006") and "also reported by" in first["html"]
    page.sidebar.multiselect(key="outlets").select("إذاعة الساحل").run()
    one = _ask(page, DUAL_USE)
    assert one["filter"] == "outlet إذاعة الساحل" and _outlets(one) == {"إذاعة الساحل"}
    assert one["sources"][0]["article_id"] == "feed-006"
    assert any(c.value.startswith("Filter") and "outlet إذاعة الساحل" in c.value for c in page.chat_message[3].caption)
    page.sidebar.multiselect(key="outlets").unselect("إذاعة الساحل").select("وكالة الأنباء الشرقية").run()
    other = _ask(page, DUAL_USE)
    assert _outlets(other) == {"وكالة الأنباء الشرقية"} and other["sources"][0]["article_id"] == "feed-005"


def test_date_range_changes_the_sources_and_citations_show_date_and_link(page: AppTest) -> None:
    page.sidebar.date_input(key="dates").set_value((date(2022, 1, 10), date(2022, 12, 31))).run()
    old = _ask(page, MARKET)
    assert old["filter"] == "published 2022-01-10 to 2022-12-31"
    assert {s["article_id"] for s in old["sources"]} == {"market"}
    source = old["sources"][0]
    assert (source["outlet"], source["published"], source["url"]) == (
        "صحيفة الوادي",
        "2022-01-10",
        "https://example.org/wadi/tomatoes",
    )
    assert '<time datetime="2022-01-10" dir="ltr">2022-01-10</time>' in source["html"]
    assert 'href="https://example.org/wadi/tomatoes"' in source["html"]
    assert 'href="https://example.org/wadi/tomatoes"' in old["quotes"][0]["html"]  # the quote names it too
    labels = [p.proto.popover.label for p in page.chat_message[1].get("popover")]
    assert any(
        escape_markdown("صحيفة الوادي · ") + isolated(escape_markdown("2022-01-10")) in label for label in labels
    )  # on the citation itself
    page.sidebar.date_input(key="dates").set_value((date(2024, 1, 1), date(2024, 11, 5))).run()
    new = _ask(page, MARKET)  # no article of 2024 speaks of tomatoes: never an answer
    assert new["outcome"] != "answer" and all(s["published"] >= "2024-01-01" for s in new.get("sources", []))
    library = _ask(page, "ماذا افتتحت مكتبة المدينة؟")
    assert library["sources"] and all(s["published"] >= "2024-01-01" for s in library["sources"])


def test_a_filter_that_keeps_nothing_says_so(page: AppTest) -> None:
    page.sidebar.date_input(key="dates").set_value((date(2022, 1, 10), date(2022, 12, 31))).run()
    page.sidebar.multiselect(key="outlets").select("إذاعة الساحل").run()
    record = _ask(page, MARKET)
    assert record["error"].startswith("No article matches the filter (published 2022-01-10 to 2022-12-31")
    assert not record.get("sources")
    assert any("No article matches the filter" in e.value for e in page.chat_message[1].error)


def test_the_full_article_shows_its_metadata(page: AppTest) -> None:
    source = _ask(page, MARKET)["sources"][0]
    page.query_params["article"] = source["article_id"]
    page.query_params["chunk"] = source["chunk_id"]
    page.run()
    heading = " ".join(h.proto.body for h in page.get("html"))  # the title block above the article
    assert source["outlet"] in heading and source["published"] in heading
    assert source["url"] == "https://example.org/wadi/tomatoes"  # market.json's link: the check below always runs
    assert f'href="{source["url"]}"' in heading


def test_asked_what_she_said_the_page_shows_her_statements_and_who_an_article_quotes(page: AppTest) -> None:
    record = _ask(page, DUAL_USE)
    assert "Answered by the statements of ماو نينغ" in record["meta"] and record["lead"].startswith("ما قاله ماو نينغ")
    assert len(record["quotes"]) == 1 and record["sources"][0]["quoted_count"] == 1
    assert "ماو نينغ" in record["sources"][0]["quoted"] and "<script" not in record["sources"][0]["quoted"]
    bridge = _ask(page, "ماذا قال المحافظ عن الجسر؟")  # an office the article names in full
    assert bridge["lead"].startswith("ما قاله المحافظ (محافظ الوادي الأخضر) عن «الجسر»"), bridge["lead"]
