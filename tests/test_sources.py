"""`rag sources`: fixture feeds and pages on a loopback HTTP server (tests/feedsite.py), the real fetcher, parser
and store; no model (the index update and the watches: tests/test_sources_real.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.ingest.articles import read_folder
from rag.sources.feeds import NotAFeedError, read_listing
from rag.sources.fetch import Fetcher, FetchError, Politeness
from rag.sources.pull import RAW_FOLDER, inspect, pull
from rag.sources.store import MAX_TRIES, SourceStore, normal_url
from rag.state.db import StateDB
from tests.feedsite import Site, Story, atom, json_feed, rss, serving, sitemap

SEEDS = Path(__file__).resolve().parent.parent / "data"
FAST = Politeness(delay=0.0, timeout=2.0, retries=1)


def seed_stories() -> list[Story]:
    """The five seed articles as pages of three outlets."""
    outlets = ["SeaPRwire", "RT Arabic", "BBC Arabic", "Asharq Al-Awsat", "Al Sharq"]
    stories = []
    for n, path in enumerate(sorted(SEEDS.glob("*.txt"))):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if len(line.split()) > 3]
        stories.append(
            Story(
                path=f"/news/{n}.html",
                title=f"خبر رقم {n}: " + " ".join(lines[0].split()[:8]),
                paragraphs=lines,
                outlet=outlets[n],
                published=f"2023-03-2{n}T10:00:00+00:00",
                author=f"مراسل {n}",
            )
        )
    return stories


@pytest.fixture
def site():  # type: ignore[no-untyped-def]
    with serving() as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> SourceStore:
    return SourceStore(StateDB(tmp_path / "state"))


def follow(store: SourceStore, fetcher: Fetcher, url: str, outlet: str | None = None) -> None:
    listing = inspect(fetcher, url)
    store.add(url, listing.kind, listing.title, outlet)


def publish_all(site: Site, stories: list[Story]) -> None:
    for s in stories:
        site.page(s)
    site.add("/rss.xml", rss("SeaPRwire – World", site.base, stories[:2]), "application/rss+xml", etag='"r1"')
    site.add("/atom.xml", atom("BBC Arabic", site.base, stories[2:4]), "application/atom+xml",
             last_modified="Tue, 21 Mar 2023 10:00:00 GMT")  # fmt: skip
    site.add("/feed.json", json_feed("Al Sharq", site.base, stories[4:]), "application/feed+json")


def test_every_kind_of_source_lands_once_with_its_metadata(site: Site, store: SourceStore, tmp_path: Path) -> None:
    stories = seed_stories()
    publish_all(site, stories)
    site.add("/sitemap.xml", sitemap(site.base, stories[:3]), "application/xml")  # three already in feeds
    data = tmp_path / "data"
    with Fetcher(FAST) as fetcher:
        for path in ("/rss.xml", "/atom.xml", "/feed.json", "/sitemap.xml"):
            follow(store, fetcher, site.url(path))
        kinds = [s.kind for s in store.sources()]
        assert kinds == ["rss", "atom", "jsonfeed", "sitemap"]
        first = pull(data, store, fetcher)
    assert len(first.stored) == 5 and first.failed == 0, first.notes
    assert all(site.requests[s.path] == 1 for s in stories)  # each page fetched once, the sitemap's too
    folder = read_folder(data)
    assert not folder.skipped and len(folder.articles) == 5
    by_url = {a.url: a for a in folder.articles}
    for s in stories:
        a = by_url[site.url(s.path)]
        assert a.title == s.title
        assert a.published == s.published
        assert a.language == "ar"
        assert a.author == s.author
        assert s.paragraphs[1][:40] in a.text  # the article's body, extracted
        assert "جميع الحقوق محفوظة" not in a.text  # the footer is not
        assert (data / RAW_FOLDER / f"{a.id}.html").read_bytes().startswith(b"<!doctype html>")
        assert a.outlet == s.outlet  # the page's og:site_name, not the feed's title
    # A second pull: the feeds answer 304 or list nothing new; no page is fetched again, nothing stored.
    with Fetcher(FAST) as fetcher:
        second = pull(data, store, fetcher)
    assert second.stored == [] and second.items == 0
    assert all(site.requests[s.path] == 1 for s in stories)
    assert site.requests["/rss.xml"] == 3  # add, pull, pull (the last answered 304)
    statuses = {s.url.rsplit("/", 1)[1]: s.status for s in store.sources()}
    assert statuses["rss.xml"] == "not modified" and statuses["atom.xml"] == "not modified"
    assert statuses["feed.json"] == "ok"
    assert len(read_folder(data).articles) == 5


def test_the_same_story_from_two_feeds_is_stored_once(site: Site, store: SourceStore, tmp_path: Path) -> None:
    stories = seed_stories()[:2]
    copy = Story("/other/story-0", stories[0].title, stories[0].paragraphs, outlet="Gulf Mirror")  # same text
    moved = Story("/amp/1.html", stories[1].title, stories[1].paragraphs[:-1] + ["تحديث."], outlet="RT Arabic",
                  canonical=stories[1].path)  # fmt: skip
    for s in (*stories, copy, moved):
        site.page(s)
    site.add("/a.xml", rss("Feed A", site.base, stories), "application/rss+xml")
    site.add("/b.xml", rss("Feed B", site.base, [copy, moved]), "application/rss+xml")
    data = tmp_path / "data"
    with Fetcher(FAST) as fetcher:
        follow(store, fetcher, site.url("/a.xml"))
        follow(store, fetcher, site.url("/b.xml"), outlet="Gulf Mirror")
        report = pull(data, store, fetcher)
    assert len(report.stored) == 2 and report.duplicates == 2
    assert len(read_folder(data).articles) == 2
    first = store.item(site.url(stories[0].path))
    assert first is not None and first.state == "stored"
    dup = store.item(site.url(copy.path))
    assert dup is not None and dup.state == "duplicate" and dup.article_id == first.article_id
    assert [name for name, _ in store.also_reported_by(first.article_id)] == ["Gulf Mirror"]


def test_bad_sources_and_items_are_notes_and_nothing_stored_is_lost(
    site: Site, store: SourceStore, tmp_path: Path
) -> None:
    stories = seed_stories()
    good = stories[:2]
    for s in good:
        site.page(s)
    site.add("/feed.xml", rss("Good", site.base, good), "application/rss+xml")
    data = tmp_path / "data"
    with Fetcher(FAST) as fetcher:
        follow(store, fetcher, site.url("/feed.xml"))
        pull(data, store, fetcher)
    before = {p.name: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert len(before) == 6

    # The feed turns into an HTML error page, then 404, then 503: notes, and the articles stay.
    bad = [
        Story("/n/no-date", "خبر بلا تاريخ", stories[2].paragraphs, published=None),
        Story("/n/bad-date", "خبر بتاريخ خاطئ", stories[3].paragraphs, published="yesterday-ish"),
        Story("/n/missing", "صفحة مفقودة", ["x"]),
        Story("/n/broken", "خطأ في الخادم", ["x"]),
        Story("/n/loop", "حلقة", ["x"]),
        Story("/n/huge", "ضخم", ["x"]),
        Story("/n/slow", "بطيء", ["x"]),
        Story("/n/empty", "فارغ", ["x"]),
    ]
    site.page(bad[0])
    site.page(bad[1])
    site.add("/n/broken", "oops", status=500)
    site.add("/n/loop", "", status=302, location="/n/loop")
    site.add("/n/huge", "<html><body>" + "كلمة " * 400_000 + "</body></html>")
    site.add("/n/slow", "<html></html>", delay=5)
    site.add("/n/empty", "<!doctype html><html><body><p>قريبا</p></body></html>")
    site.add("/feed.xml", rss("Good", site.base, good + bad), "application/rss+xml")
    rules = Politeness(delay=0.0, timeout=1.0, retries=1, max_bytes=1_000_000)
    notes: list[str] = []
    with Fetcher(rules) as fetcher:
        report = pull(data, store, fetcher, on_note=notes.append)
    assert len(report.stored) == 2 and report.failed == 6, notes
    text = "\n".join(notes)
    for needle in (
        "/n/missing: the server answered 404",
        "/n/broken: the server answered 500 (2 tries)",
        "/n/loop: more than 5 redirects",
        "bytes, over the 1,000,000-byte limit; skipped",
        "/n/slow: no answer within 1 s (2 tries)",
        "/n/empty: no article text on the page",
        "/n/no-date: it has no date and the page gives none; stored without a date",
        "/n/bad-date: its date 'yesterday-ish' could not be read and the page gives none",
    ):
        assert needle in text, (needle, text)
    assert all(n.startswith(f"source {site.url('/feed.xml')}: item ") for n in notes)
    after = {p.name: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert {k: v for k, v in after.items() if k in before} == before
    undated = [a for a in read_folder(data).articles if a.title in ("خبر بلا تاريخ", "خبر بتاريخ خاطئ")]
    assert len(undated) == 2 and all(a.published is None for a in undated)
    failed = store.item(site.url("/n/missing"))
    assert failed is not None and failed.state == "failed" and failed.tries == 1
    # A failed item is tried again on the next pulls, MAX_TRIES times in all.
    with Fetcher(rules) as fetcher:
        for _ in range(MAX_TRIES):
            pull(data, store, fetcher)
    assert site.requests["/n/missing"] == MAX_TRIES

    for body, kind in (("<html><body>nothing</body></html>", "text/plain"), ("just words", "text/plain"),
                       ('{"version": "1"}', "application/json")):  # fmt: skip
        site.add("/feed.xml", body, kind)
        notes.clear()
        with Fetcher(rules) as fetcher:
            report = pull(data, store, fetcher, on_note=notes.append)
        assert report.stored == [] and notes, body
        assert notes[0].startswith(f"source {site.url('/feed.xml')}: ") and "nothing stored was changed" in notes[0]
    for status in (404, 503):
        site.add("/feed.xml", "gone", status=status)
        notes.clear()
        with Fetcher(rules) as fetcher:
            pull(data, store, fetcher, on_note=notes.append)
        assert f"the server answered {status}" in notes[0]
        assert store.sources()[0].status == "failed"
    after = {p.name: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert {k: v for k, v in after.items() if k in before} == before


def test_add_refuses_what_is_not_a_source(site: Site, store: SourceStore) -> None:
    site.add("/x.txt", "plain words, not a feed", "text/plain")
    with Fetcher(FAST) as fetcher:
        with pytest.raises(RagError, match="Cannot add .*/x.txt: neither XML, a JSON Feed nor an HTML page"):
            inspect(fetcher, site.url("/x.txt"))
        with pytest.raises(RagError, match="Cannot add .*/nowhere: .*404"):
            inspect(fetcher, site.url("/nowhere"))
        with pytest.raises(RagError, match="not an http"):
            inspect(fetcher, "ftp://example.com/feed")
        site.page(seed_stories()[0])
        follow(store, fetcher, site.url("/news/0.html"))
        with pytest.raises(RagError, match="already a source"):
            follow(store, fetcher, site.url("/news/0.html"))


def test_a_page_source_is_fetched_once_and_robots_txt_is_obeyed(site: Site, store: SourceStore, tmp_path: Path) -> None:
    stories = seed_stories()
    site.page(stories[0])
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    site.page(Story("/private/1.html", "سري", stories[1].paragraphs))
    data = tmp_path / "data"
    with Fetcher(FAST) as fetcher:
        follow(store, fetcher, site.url(stories[0].path))
        assert store.sources()[0].kind == "page"
        with pytest.raises(RagError, match="robots.txt does not allow"):
            inspect(fetcher, site.url("/private/1.html"))
        assert len(pull(data, store, fetcher).stored) == 1
        assert pull(data, store, fetcher).stored == []
    assert site.requests["/private/1.html"] == 0
    assert site.requests["/robots.txt"] == 1  # once per fetcher
    assert site.requests[stories[0].path] == 2  # to add it, then to store it; never again


def test_conditional_get_and_politeness_pause() -> None:
    waits: list[float] = []
    clock = iter(float(n) / 10 for n in range(1000))
    with serving() as site:
        site.add("/f.xml", rss("T", "http://x", []), "application/rss+xml", etag='"v1"', last_modified="Tue, 21 Mar")
        with Fetcher(Politeness(delay=2.0), sleep=waits.append, clock=lambda: next(clock)) as fetcher:
            first = fetcher.get(site.url("/f.xml"))
            again = fetcher.get(site.url("/f.xml"), first.etag, first.last_modified)
    assert first.status == 200 and first.etag == '"v1"'
    assert again.not_modified and again.body == b""
    assert waits and all(0 < w <= 2.0 for w in waits)  # paused between requests to one host


def test_listings_parse_each_format() -> None:
    stories = [Story("/a", "عنوان", ["نص"], published="2024-01-02T03:04:05+00:00", author="كاتب"),
               Story("/b", "بلا تاريخ", ["نص"], published=None)]  # fmt: skip
    base = "http://site.test"
    for kind, body in (("rss", rss("T", base, stories)), ("atom", atom("T", base, stories)),
                       ("jsonfeed", json_feed("T", base, stories)), ("sitemap", sitemap(base, stories))):  # fmt: skip
        listing = read_listing(body.encode(), "", base + "/feed")
        assert listing.kind == kind
        assert [i.url for i in listing.items] == [base + "/a", base + "/b"]
        assert listing.items[0].published and listing.items[0].published.startswith("2024-01-02")
        assert listing.items[1].published is None and listing.items[1].date_note == "it has no date"
    index = '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>/s1.xml</loc></sitemap>'
    listing = read_listing((index + "</sitemapindex>").encode(), "application/xml", base + "/index.xml")
    assert listing.kind == "sitemap-index" and listing.children == (base + "/s1.xml",)
    with pytest.raises(NotAFeedError):
        read_listing(b"<?xml version='1.0'?><nothing/>", "application/xml", base)
    entity = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><urlset><url><loc>&x;</loc>'
    assert "root:" not in json.dumps([i.url for i in _safe(entity + b"</url></urlset>")])


def _safe(body: bytes) -> tuple:  # type: ignore[type-arg]
    try:
        return read_listing(body, "application/xml", "http://site.test/").items
    except NotAFeedError:
        return ()


def test_normal_url_drops_tracking_and_fragments() -> None:
    assert normal_url("HTTPS://Example.COM/a/b/?utm_source=x&id=3#top") == "https://example.com/a/b?id=3"
    assert normal_url("http://example.com") == "http://example.com/"


def test_fetch_error_names_the_address() -> None:
    with Fetcher(Politeness(delay=0, timeout=0.5, retries=0)) as fetcher:
        with pytest.raises(FetchError, match=r"http://127.0.0.1:9: its robots.txt could not be read .*cannot connect"):
            fetcher.get("http://127.0.0.1:9/x")


def test_newest_items_first_at_most_max_items_and_a_repeated_address_once(
    site: Site, store: SourceStore, tmp_path: Path
) -> None:
    stories = seed_stories()
    for s in stories:
        site.page(s)
    listed = [stories[4], stories[4], *stories[:4]]  # the newest (2023-03-24) listed twice
    site.add("/feed.xml", rss("T", site.base, listed), "application/rss+xml", etag='"same"')  # never changes
    data = tmp_path / "data"
    with Fetcher(FAST) as fetcher:
        follow(store, fetcher, site.url("/feed.xml"))
        first = pull(data, store, fetcher, max_items=2)
        second = pull(data, store, fetcher, max_items=2)
    assert first.items == 2 and second.items == 2
    dates = [a.published for a in read_folder(data).articles]
    assert sorted(d or "" for d in dates) == [s.published for s in stories[1:]]  # 24, 23 then 22, 21
    assert site.requests[stories[4].path] == 1 and site.requests[stories[0].path] == 0
    assert store.sources()[0].note == "1 more item(s) next pull"  # and no 304 for the unchanged feed meanwhile
    with Fetcher(FAST) as fetcher:
        assert pull(data, store, fetcher, max_items=2).items == 1
        assert pull(data, store, fetcher, max_items=2).items == 0  # all in: now the feed may answer 304
        assert pull(data, store, fetcher, max_items=2).items == 0
    assert store.sources()[0].status == "not modified"


def test_one_pull_at_a_time_and_periods(tmp_path: Path) -> None:
    import threading

    from rag.sources.follow import one_round_at_a_time, period_seconds

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with one_round_at_a_time(tmp_path):
            held.set()
            release.wait(10)

    other = threading.Thread(target=hold)
    other.start()
    held.wait(10)
    try:
        with pytest.raises(RagError, match="Another `rag sources pull` is running"):
            with one_round_at_a_time(tmp_path):
                pass
    finally:
        release.set()
        other.join()
    with one_round_at_a_time(tmp_path):  # free again
        pass
    assert [period_seconds(p) for p in ("15m", "90s", "1h", "1d", "2")] == [900, 90, 3600, 86400, 120]
    for bad in ("5s", "soon", "-1m"):
        with pytest.raises(RagError, match="--every"):
            period_seconds(bad)
