"""Chats that survive a reload and a restart of the page, with their exports: the real page in chromium, the real
index and answer model, the chats in a state folder of the test's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import TEST_LLM_PORT
from .pagetools import ARTIFACTS, serve_page

QUESTION = "What did Mao Ning say about dual-use exports?"
QUOTE = "سيطرنا دائما على تصدير البنود"


def _env(index: Path, state: Path) -> dict[str, str]:
    return {
        "RAG_INDEX_DIR": str(index),
        "RAG_STATE_DIR": str(state),
        "RAG_LLM_PORT": str(TEST_LLM_PORT),
        "HF_HUB_OFFLINE": "1",
    }


def _answered(page):  # type: ignore[no-untyped-def]
    """The first answer, once laid out whole (its meta line comes last)."""
    assistant = page.locator("[data-testid='stChatMessage']").nth(1)
    assistant.wait_for(timeout=300_000)
    assistant.get_by_text("Answered by").wait_for(state="visible", timeout=300_000)
    return assistant


def _export(page, label: str, into: Path) -> Path:  # type: ignore[no-untyped-def]
    """Click an export button of the sidebar's "This chat" and save the download."""
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name=label).click()
    path = into / info.value.suggested_filename
    info.value.save_as(path)
    return path


def test_a_chat_survives_reload_and_restart_and_exports_what_was_answered(  # type: ignore[no-untyped-def]
    browser, real_index: Path, llm_server: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    with serve_page(_env(real_index, state)) as url:
        page.goto(url)
        box = page.get_by_placeholder("Ask about the articles…")
        box.wait_for(timeout=120_000)
        box.fill(QUESTION)
        box.press("Enter")
        assistant = _answered(page)
        shown = assistant.locator("blockquote.rag-quote [dir='rtl']").first.inner_text()
        assert QUOTE in shown
        page.wait_for_url(re.compile(r"[?&]chat="), timeout=30_000)
        chat_id = re.search(r"[?&]chat=([^&]+)", page.url).group(1)  # type: ignore[union-attr]

        page.reload()
        again = _answered(page)
        assert QUESTION in page.locator("[data-testid='stChatMessage']").nth(0).inner_text()
        assert again.locator("blockquote.rag-quote [dir='rtl']").first.inner_text() == shown
        sidebar = page.locator("[data-testid='stSidebar']")
        # the sidebar's chat list can render a moment after the answer (is_visible() does not wait: it failed once)
        sidebar.get_by_role("button", name=QUESTION[:38]).wait_for(state="visible", timeout=30_000)

        sidebar.get_by_text("This chat", exact=True).click()
        markdown = _export(page, "Export as Markdown", tmp_path).read_text(encoding="utf-8")
        exported = json.loads(_export(page, "Export as JSON", tmp_path).read_text(encoding="utf-8"))
        page.screenshot(path=str(ARTIFACTS / "chat-saved.png"))

    # the exports hold what the page showed: the question, the quote verbatim, the citation with its outlet
    flat = " ".join(shown.split())
    assert f"## 1. {QUESTION}" in markdown
    assert flat in " ".join(markdown.split())
    assert "[1] " in markdown and "SeaPRwire" in markdown
    assert exported["chat"]["id"] == chat_id and len(exported["turns"]) == 1
    turn = exported["turns"][0]
    assert turn["question"] == QUESTION and turn["outcome"] == "answer" and turn["index_version"]
    assert flat in " ".join(turn["answer"]["answer"].split())
    assert turn["answer"]["citations"][0]["outlet"] == "SeaPRwire" == turn["sources"][0]["outlet"]
    assert turn["sources"][0]["status"] == ""  # the article is unchanged

    with serve_page(_env(real_index, state)) as url:  # a new page server (another port), the same state folder
        page.goto(url)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_role("button", name=QUESTION[:38]).click()
        again = _answered(page)
        assert again.locator("blockquote.rag-quote [dir='rtl']").first.inner_text() == shown
        assert f"chat={chat_id}" in page.url
        page.goto(f"{url}/?chat={chat_id}")  # and straight from the link
        assert _answered(page).locator("blockquote.rag-quote [dir='rtl']").first.inner_text() == shown
    page.close()
