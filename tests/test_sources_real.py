"""Following sources as a desk does: `rag sources` and `rag watch` on the command line against fixture feeds on a
loopback HTTP server, the real embedding model and index; the schedule as a long-running process; the page's
Watchlist in chromium."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import TEST_LLM_PORT
from .feedsite import Site, Story, json_feed, rss, serving
from .helpers import rag
from .pagetools import ARTIFACTS, serve_page
from .test_sources import seed_stories

MATCHING = "What did Mao Ning say about dual-use exports?"
QUOTE = "سيطرنا دائما على تصدير البنود"
NOT_MATCHING = ("What did Mao Ning say about Taiwan?", "Who won the 2022 World Cup?")


@pytest.fixture
def desk(tmp_path: Path) -> dict[str, str]:
    """An empty data folder, index and state of the test's own; no pause between requests to the loopback site."""
    return {
        "RAG_DATA_DIR": str(tmp_path / "data"),
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "RAG_STATE_DIR": str(tmp_path / "state"),
        "RAG_SOURCES_DELAY": "0",
    }


def _publish(site: Site) -> list[Story]:
    stories = seed_stories()
    for s in stories:
        site.page(s)
    # the Mao Ning story (seed 0) comes again through the second feed, from another outlet at another address
    copy = Story("/wire/mao-ning.html", stories[0].title, stories[0].paragraphs, outlet="Gulf Wire", published=None)
    site.page(copy)
    site.add("/rss.xml", rss("SeaPRwire", site.base, stories[1:3]), "application/rss+xml", etag='"a"')
    site.add("/feed.json", json_feed("Gulf Wire", site.base, [stories[0], *stories[3:], copy]), "application/json")
    return stories


def test_feeds_to_index_to_watch_hits_once(real_embedder, desk: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    with serving() as site:
        stories = _publish(site)
        for question in (MATCHING, *NOT_MATCHING):
            made = rag("watch", "add", question, env=desk)
            assert made.returncode == 0, made.stderr
        added = rag("sources", "add", site.url("/rss.xml"), env=desk)
        assert added.returncode == 0 and "(rss 'SeaPRwire', 2 items now)" in added.stdout, added.stderr

        first = rag("sources", "pull", "--json", env=desk)
        assert first.returncode == 0, first.stderr
        one = json.loads(first.stdout)
        assert len(one["pull"]["stored"]) == 2 and len(one["update"]["added"]) == 2
        assert one["watch_hits"] == []  # the Mao Ning story has not arrived

        assert rag("sources", "add", site.url("/feed.json"), env=desk).returncode == 0
        second = rag("sources", "pull", "--json", env=desk)
        assert second.returncode == 0, second.stderr
        two = json.loads(second.stdout)
        assert len(two["pull"]["stored"]) == 3 and two["pull"]["duplicates"] == 1
        assert sorted(two["update"]["added"]) == sorted(two["pull"]["stored"])
        hits = two["watch_hits"]
        assert [h["watch_id"] for h in hits] == [1], hits
        mao = hits[0]["article_id"]
        assert QUOTE in hits[0]["quote"]

        third = rag("sources", "pull", env=desk)
        assert third.returncode == 0, third.stderr
        assert "0 new article(s)" in third.stdout and "Index:" not in third.stdout
        assert all(site.requests[s.path] == 1 for s in stories)  # no page fetched twice
        assert site.requests["/wire/mao-ning.html"] == 1

    info = json.loads(rag("index", "info", "--json", env=desk).stdout)
    assert info["articles"] == 5
    listed = json.loads(rag("watch", "list", "--json", env=desk).stdout)
    assert [len(w["hits"]) for w in listed] == [1, 0, 0]  # the matching article exactly once, the others never
    assert listed[0]["hits"][0]["article_id"] == mao and listed[0]["new"] == 1
    sources = rag("sources", "list", env=desk).stdout
    assert "[1] rss" in sources and "[2] jsonfeed" in sources and "not modified" in sources
    # Checking the whole archive again records nothing twice.
    again = rag("watch", "run", env=desk)
    assert again.returncode == 0 and "0 new hit(s)" in again.stdout, again.stdout + again.stderr
    data = Path(desk["RAG_DATA_DIR"])
    sidecar = json.loads((data / f"{mao}.json").read_text(encoding="utf-8"))
    assert sidecar["outlet"] == "SeaPRwire" and sidecar["published"].startswith("2023-03-20")
    assert (data / "raw" / f"{mao}.html").is_file()


def test_pull_every_runs_rounds_until_stopped(real_embedder, desk: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The schedule as a supervisor runs it: rounds on time, a new item picked up by the next round, SIGTERM stops
    it cleanly."""
    with serving() as site:
        stories = _publish(site)
        one, two = (rss("SeaPRwire", site.base, stories[:n]).encode() for n in (1, 2))
        site.add("/rss.xml", one, "application/rss+xml", later=[one, two])  # the second round finds one more
        assert rag("sources", "add", site.url("/rss.xml"), env=desk).returncode == 0
        env = {**os.environ, **desk, "HF_HUB_OFFLINE": "1", "RAG_LLM_PORT": str(TEST_LLM_PORT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli.main", "sources", "pull", "--every", "10s"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and sum(x.startswith("Pulled ") for x in lines) < 2:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
        finally:
            proc.send_signal(signal.SIGTERM)  # as systemd stops it
            out, _ = proc.communicate(timeout=60)
        lines.append(out)
    text = "".join(lines)
    rounds = [x for x in text.splitlines() if x.startswith("Pulled ")]
    assert len(rounds) >= 2, text
    assert "1 new article(s)" in rounds[0] and "1 new article(s)" in rounds[1], text
    assert proc.returncode in (0, 130), text
    assert "Traceback" not in text


def test_watchlist_page_shows_new_hits_once(browser, real_embedder, desk: dict[str, str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with serving() as site:
        _publish(site)
        assert rag("watch", "add", MATCHING, env=desk).returncode == 0
        assert rag("sources", "add", site.url("/feed.json"), env=desk).returncode == 0
        pulled = rag("sources", "pull", env=desk)
        assert pulled.returncode == 0 and "watch [1]" in pulled.stdout, pulled.stdout + pulled.stderr
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    with serve_page({**desk, "RAG_LLM_PORT": str(TEST_LLM_PORT), "HF_HUB_OFFLINE": "1"}) as url:
        page.goto(url)
        tab = page.get_by_text("Watchlist · 1 new")
        tab.wait_for(timeout=120_000)
        tab.click()
        page.get_by_role("heading", name=MATCHING).wait_for(timeout=60_000)
        hit = page.locator("blockquote.rag-watch")
        hit.first.wait_for(timeout=60_000)
        assert hit.count() == 1
        assert QUOTE in hit.inner_text() and "● new" in hit.inner_text()
        assert "also reported by Gulf Wire" in hit.inner_text()
        page.screenshot(path=str(ARTIFACTS / "watchlist.png"), full_page=True)
        link = hit.locator("a").first.get_attribute("href") or ""
        assert link.startswith("?article=") and "hl=" in link

        page.reload()  # looked at: no longer new
        tab = page.get_by_text("Watchlist", exact=True)  # no "· 1 new" any more
        tab.wait_for(timeout=120_000)
        tab.click()
        page.locator("blockquote.rag-watch").first.wait_for(timeout=60_000)
        assert "● new" not in page.locator("blockquote.rag-watch").inner_text()
