"""The real page in a real browser: Debian's chromium driven by playwright, real index, real answer model."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index.build import build_index
from rag.types import IndexSpec

from .conftest import DATA, TEST_LLM_PORT
from .helpers import rag
from .pagetools import ARTIFACTS, serve_page

EVIL_ARTICLE = (
    "خبر عن مصنع الطائرات *بدون* طيار في مدينة الاختبار الذي افتتح اليوم.\n"
    "وقال المدير إن المصنع سينتج ألف طائرة <img src=x onerror=alert(1)> كل عام.\n"
    "وأضاف أن <script>window.__xss = 1; alert(2)</script> التصدير سيبدأ العام المقبل **بحسب الخطة**.\n"
)


def _serve(index_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    env = {"RAG_INDEX_DIR": str(index_dir), "RAG_LLM_PORT": str(TEST_LLM_PORT), "HF_HUB_OFFLINE": "1"}
    with serve_page({**env, **(extra_env or {})}) as url:
        yield url


@pytest.fixture(scope="module")
def seed_page(real_index: Path, llm_server: str) -> Iterator[str]:
    yield from _serve(real_index)


@pytest.fixture(scope="module")
def evil_page(real_embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An index holding an article with HTML and a script in it, and an answer endpoint that is down."""
    data = tmp_path_factory.mktemp("evil-data")
    (data / "evil.txt").write_text(EVIL_ARTICLE, encoding="utf-8")
    shutil.copy(DATA / "003_767b0b59c7a3495f.txt", data)
    index_dir = tmp_path_factory.mktemp("evil-index")
    build_index(data, index_dir, real_embedder, IndexSpec(real_embedder.name, 200, 40))
    yield from _serve(index_dir, {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "RAG_LLM_MODEL": "down"})


def _ask(page, question: str) -> None:  # type: ignore[no-untyped-def]
    box = page.get_by_placeholder("Ask about the articles…")
    box.wait_for(timeout=120_000)
    box.fill(question)
    box.press("Enter")


def test_a_rendering_is_shown_whenever_one_was_used(browser, seed_page: str, real_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """Whether one is used depends on the model's run (a rendering too far from the question is dropped), so ask
    the index what it used, from the cache the page filled. (When the page went without one, it says why: then
    the cache holds nothing to compare with.)"""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(seed_page)
    _ask(page, "Mao Ning on dual-use exports")  # searched as passages: with its rendering
    assistant = page.locator("[data-testid='stChatMessage']").nth(1)
    assistant.wait_for(timeout=120_000)
    page.get_by_text("Sources").wait_for(timeout=300_000)
    assistant.get_by_text("Answered by key quotes").wait_for(state="visible", timeout=30_000)
    text = assistant.inner_text()
    if "searched without the Arabic rendering (" not in text:
        index = {"RAG_INDEX_DIR": str(real_settings.index_dir)}
        found = rag("search", "Mao Ning on dual-use exports", "--json", env=index)
        used = json.loads(found.stdout)["translation"]
        shown = "also searched in Arabic as" in text
        assert shown == bool(used), f"rendering used: {used!r}; shown: {shown}"
        assert not used or used in text
    assert assistant.locator("blockquote.rag-quote mark", has_text="الاستخدام المزدوج").first.is_visible()
    page.close()


def test_ask_stream_click_citation_open_article(browser, seed_page: str, real_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(seed_page)
    _ask(page, "What did Mao Ning say about dual-use exports?")
    assistant = page.locator("[data-testid='stChatMessage']").nth(1)
    assistant.wait_for(timeout=120_000)
    page.get_by_text("Sources").wait_for(timeout=300_000)  # shown once the streamed answer is complete
    # the quotes' HTML and the citation buttons can render a moment after the caption above them (seen in CI)
    answer_quote = assistant.locator("blockquote.rag-quote [dir='rtl'] mark", has_text="ذات الاستخدام المزدوج").first
    answer_quote.wait_for(state="visible", timeout=30_000)
    assistant.get_by_role("button", name="[1]").first.wait_for(state="visible", timeout=30_000)
    assistant.get_by_text("Answered by").wait_for(state="visible", timeout=30_000)  # the meta line, laid out last
    assert "[1]" in assistant.inner_text()
    # asked what she said: answered from her statements (found by her name, no rendering searched)
    text = assistant.inner_text()
    assert "What Mao Ning (ماو نينغ) said about «dual-use exports», by date" in text
    assert "Answered by the statements of ماو نينغ" in text and "also searched in Arabic as" not in text
    # the embedded model answers in quote mode: the dual-use sentence itself, right to left, highlighted
    assert "quoted verbatim" in assistant.inner_text()
    assert answer_quote.is_visible()
    assert "سيطرنا دائما على تصدير البنود" in answer_quote.inner_text()
    page.screenshot(path=str(ARTIFACTS / "quote-answer.png"))
    page.locator("[data-testid='stPopover'] button").first.click()
    rtl = page.locator("[dir='rtl']", has_text="الاستخدام المزدوج").first
    rtl.wait_for(state="visible", timeout=30_000)
    assert rtl.is_visible()
    assert page.locator("[dir='rtl'] mark").first.is_visible()
    # the highlighted sentence is the verifier's quote: the one about dual-use exports, and the verdict is shown
    assert page.locator("[dir='rtl'] mark", has_text="الاستخدام المزدوج").first.is_visible()
    assert page.get_by_text("supports the answer").or_(page.get_by_text("Unverified:")).first.is_visible()
    page.screenshot(path=str(ARTIFACTS / "answer-with-citation.png"))
    with page.context.expect_page() as info:
        page.get_by_role("link", name="Open the full article").first.click()
    article = info.value
    article.wait_for_load_state()
    frame = article.frame_locator("iframe").first
    frame.locator("#rag-hl").wait_for(state="visible", timeout=60_000)
    time.sleep(1)  # the scroll into view runs after the frame loads
    mark = frame.locator("mark").first
    assert mark.is_visible()
    box = mark.bounding_box()
    iframe_box = article.locator("iframe").first.bounding_box()
    assert box and iframe_box and iframe_box["y"] <= box["y"] <= iframe_box["y"] + iframe_box["height"]
    article.screenshot(path=str(ARTIFACTS / "full-article.png"))
    page.close()
    article.close()


def test_html_in_articles_is_shown_as_text(browser, evil_page: str) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(evil_page)
    _ask(page, "كم طائرة سينتج المصنع؟")
    page.get_by_text("cannot be reached").wait_for(timeout=120_000)  # the answer model is down ...
    page.get_by_text("Retrieved passages").wait_for(timeout=30_000)  # ... and the sources are still shown
    label = page.locator("[data-testid='stPopover'] button", has_text="مصنع الطائرات").first
    assert "*بدون*" in label.inner_text()  # the title's Markdown is shown as typed
    label.click()
    shown = page.locator("[dir='rtl']", has_text="onerror").first
    shown.wait_for(state="visible", timeout=30_000)
    assert "<img src=x onerror=alert(1)>" in shown.inner_text()
    assert "<script>window.__xss = 1; alert(2)</script>" in shown.inner_text()
    assert "**بحسب الخطة**" in shown.inner_text()
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("window.__xss") is None
    page.screenshot(path=str(ARTIFACTS / "article-html-as-text.png"))
    with page.context.expect_page() as info:
        page.get_by_role("link", name="Open the full article").first.click()
    article = info.value
    article.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    article.wait_for_load_state()
    frame = article.frame_locator("iframe").first
    frame.locator("#rag-hl").wait_for(timeout=60_000)
    assert "<img src=x onerror=alert(1)>" in frame.locator(".rag-text").inner_text()
    assert frame.locator("img").count() == 0
    time.sleep(1)
    assert dialogs == []
    page.close()
    article.close()


@pytest.fixture(scope="module")
def news_page(news_index: Path) -> Iterator[str]:
    """The news fixtures (three outlets, 2022-2024), answered with quotes (Arabic questions: no model asked)."""
    yield from _serve(news_index, {"RAG_ANSWER_MODE": "quote"})


def _ask_from(page, outlet: str, question: str, nth: int):  # type: ignore[no-untyped-def]
    """Choose one outlet in the sidebar, ask, and wait for the answer (the nth chat message) and its sources."""
    box = page.get_by_role("combobox", name="Outlets")
    box.click()
    page.get_by_role("option", name=outlet).click()
    page.keyboard.press("Escape")
    _ask(page, question)
    message = page.locator("[data-testid='stChatMessage']").nth(nth)
    message.get_by_text("Sources").wait_for(timeout=120_000)
    message.locator("blockquote.rag-quote").first.wait_for(state="visible", timeout=30_000)  # st.html renders last
    message.get_by_text("Answered by").wait_for(state="visible", timeout=30_000)  # the meta line comes last
    return message


def _citation_labels(message) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.inner_text() for b in message.locator("[data-testid='stPopover'] button").all()]


def test_sidebar_filters_change_the_sources_and_citations_show_outlet_date_link(browser, news_page: str) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(news_page)
    question = "ماذا قالت ماو نينغ عن تصدير المواد ذات الاستخدام المزدوج؟"
    _ask(page, question)
    first = page.locator("[data-testid='stChatMessage']").nth(1)
    first.get_by_text("Sources").wait_for(timeout=120_000)
    first.locator("blockquote.rag-quote").first.wait_for(state="visible", timeout=30_000)  # st.html renders last
    first.get_by_text("Answered by").wait_for(state="visible", timeout=30_000)  # the meta line comes last
    unfiltered = _citation_labels(first)
    assert unfiltered and "also reported by" in first.inner_text()  # the same sentence in two outlets
    second = _ask_from(page, "وكالة الأنباء الشرقية (1)", question, 3)
    assert "Filter: outlet وكالة الأنباء الشرقية" in second.inner_text()  # shown above the answer
    labels = _citation_labels(second)
    assert labels and all("وكالة الأنباء الشرقية · \u20662024-06-30\u2069" in label for label in labels), labels
    second.locator("[data-testid='stPopover'] button").first.click()
    meta = page.locator(".rag-snippet .rag-meta").last
    meta.wait_for(state="visible", timeout=30_000)
    assert "وكالة الأنباء الشرقية" in meta.inner_text() and "2024-06-30" in meta.inner_text()
    page.screenshot(path=str(ARTIFACTS / "news-filtered-citation.png"))
    page.keyboard.press("Escape")
    # the other outlet: its own article, with a link to the original
    page.get_by_role("combobox", name="Outlets").press("Backspace")  # removes the chosen outlet
    third = _ask_from(page, "إذاعة الساحل (4)", question, 5)
    labels = _citation_labels(third)
    assert labels and all("إذاعة الساحل" in label for label in labels) and labels != unfiltered[: len(labels)]
    third.locator("[data-testid='stPopover'] button").first.click()
    link = page.locator(".rag-snippet a.rag-original").last
    link.wait_for(state="visible", timeout=30_000)
    assert (
        link.get_attribute("href") == "https://example.net/sahel/dual-use" and link.get_attribute("target") == "_blank"
    )
    assert page.get_by_role("link", name="Open the original").last.is_visible()
    page.screenshot(path=str(ARTIFACTS / "news-citation-link.png"))
    page.close()


# Arabic questions (no rendering, no answer model in quote mode) about the seeds' subjects that they do not answer
# (tests/near_topic_seeds.jsonl), and one they answer.
NEAR_TOPIC_AR = [
    "كم عدد الطائرات المسيرة التي صدرتها الصين إلى روسيا؟",
    "ماذا قال باتروشيف عن الأسلحة النووية؟",
    "كم عمر سيرغي لافروف؟",
    "متى عين وانغ يي وزيرا للخارجية؟",
]
DUAL_USE_AR = "ماذا قالت ماو نينغ عن تصدير البنود ذات الاستخدام المزدوج؟"


def test_closest_passages_are_never_dressed_as_an_answer(browser, seed_page: str, real_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    # Which outcome a question gets is the fitted estimate's: ask the CLI first, then check that the page shows it.
    index = {"RAG_INDEX_DIR": str(real_settings.index_dir), "RAG_ANSWER_MODE": "quote"}
    outcomes = {q: json.loads(rag("ask", q, "--json", env=index).stdout)["outcome"] for q in NEAR_TOPIC_AR}
    closest = next((q for q, o in outcomes.items() if o == "closest"), None)
    assert closest is not None, f"none of the near-topic questions gets the closest passages: {outcomes}"
    assert json.loads(rag("ask", DUAL_USE_AR, "--json", env=index).stdout)["outcome"] == "answer"
    page = browser.new_page(viewport={"width": 1280, "height": 2000})  # both answers in one screenshot
    page.goto(seed_page)
    _ask(page, closest)
    uncertain = page.locator("[data-testid='stChatMessage']").nth(1)
    uncertain.get_by_text("Sources").wait_for(timeout=120_000)
    uncertain.get_by_text("Answered by").wait_for(state="visible", timeout=30_000)  # the meta line comes last
    text = uncertain.inner_text()
    assert "قد لا تجيب المقالات عن هذا. أقرب المقاطع:" in text and "closest passages only" in text
    assert "verbatim" not in text.split("Answered by")[-1] and "supports the answer" not in text
    grey = uncertain.locator("blockquote.rag-closest").first
    grey.wait_for(state="visible", timeout=30_000)  # the quotes' HTML can render a moment after the sources
    key = grey.locator("mark").first  # the key sentence is underlined, not highlighted as an answer
    assert key.evaluate("m => getComputedStyle(m).backgroundColor") == "rgba(0, 0, 0, 0)"
    _ask(page, DUAL_USE_AR)
    sure = page.locator("[data-testid='stChatMessage']").nth(3)
    sure.get_by_text("Sources").wait_for(timeout=120_000)
    sure.get_by_text("Answered by").wait_for(state="visible", timeout=30_000)  # the meta line comes last
    # asked what she said: her statements about it, quoted verbatim
    said = sure.inner_text()
    assert "ما قاله ماو نينغ عن «تصدير البنود" in said and "quoted passage(s), verbatim" in said
    assert sure.locator("blockquote.rag-closest").count() == 0
    highlighted = sure.locator("blockquote.rag-quote mark", has_text="الاستخدام المزدوج").first
    highlighted.wait_for(state="visible", timeout=30_000)
    assert highlighted.evaluate("m => getComputedStyle(m).backgroundColor") == "rgb(255, 229, 143)"
    page.screenshot(path=str(ARTIFACTS / "closest-and-answer.png"), full_page=True)
    page.close()
