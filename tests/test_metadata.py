"""News metadata (issue 15): sidecars, front matter, page heads and feeds, their precedence, bad dates, and the
index keeping it (stale after a sidecar edit, `update` picks it up without embedding again)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.index.build import build_index, index_is_current, update_index
from rag.index.store import load_index
from rag.ingest.articles import parse_article, read_folder
from rag.ingest.metadata import MetadataError, front_matter, html_head, published_date
from rag.types import IndexSpec

from .conftest import FakeEmbedder

NEWS = Path(__file__).parent / "fixtures" / "news"
DATA = Path(__file__).resolve().parent.parent / "data"
SPEC = IndexSpec(FakeEmbedder.name, chunk_tokens=40, chunk_overlap=0)


@pytest.fixture(scope="module")
def news():  # type: ignore[no-untyped-def]
    folder = read_folder(NEWS)
    return folder, {a.id: a for a in folder.articles}


def test_every_format_is_read(news) -> None:  # type: ignore[no-untyped-def]
    folder, by_id = news
    assert set(by_id) == {
        "market",
        "notes",
        "harbour",
        "bridge",
        "feed-001",
        "feed-002",
        "feed-004",
        "feed-005",
        "feed-006",
    }
    assert folder.sources["market"].endswith("market.txt") and folder.sources["feed-005"].endswith("feed.jsonl:7")
    assert {a.outlet for a in folder.articles if a.id != "notes"} == {
        "صحيفة الوادي",
        "إذاعة الساحل",
        "وكالة الأنباء الشرقية",
    }
    assert {a.published[:4] for a in folder.articles if a.published} == {"2022", "2023", "2024"}


def test_sidecar_beats_front_matter_field_by_field(news) -> None:  # type: ignore[no-untyped-def]
    market = news[1]["market"]
    assert market.outlet == "صحيفة الوادي"  # the sidecar's, over the front matter's "موقع المقدمة"
    assert market.url == "https://example.org/wadi/tomatoes"  # only the sidecar has it
    assert market.title == "عنوان من المقدمة" and market.published == "2022-01-10"  # only the front matter has them
    assert market.text.startswith("تراجعت أسعار الطماطم") and "---" not in market.text  # front matter is not text


def test_page_head_metadata_and_sidecar_over_it(news) -> None:  # type: ignore[no-untyped-def]
    harbour, bridge = news[1]["harbour"], news[1]["bridge"]
    assert (harbour.title, harbour.outlet) == ("بدء أعمال توسعة ميناء الساحل", "إذاعة الساحل")
    assert harbour.published == "2023-08-14T07:00:00+00:00" and harbour.url == "https://example.net/sahel/harbour"
    assert harbour.language == "ar" and "جميع الحقوق" not in harbour.text  # the footer is furniture
    # bridge.htm: <time datetime> and og:url when the page has no article tags; its sidecar's date wins
    assert bridge.published == "2024-02-03" and bridge.outlet == "صحيفة الوادي"
    assert bridge.url == "https://example.org/wadi/bridge" and bridge.title == "افتتاح جسر الوادي الجديد"
    without = parse_article("bridge", (NEWS / "bridge.htm").read_bytes())
    assert without.published == "2024-02-02" and without.outlet is None


def test_markdown_marks_are_removed(news) -> None:  # type: ignore[no-untyped-def]
    notes = news[1]["notes"]
    assert "متحف البلدة" in notes.text and "تاريخ الصيد في الساحل" in notes.text
    assert not any(mark in notes.text for mark in ("**", "#", "](", "*مدير"))
    assert notes.author == "كريم" and notes.published is None  # "next tuesday" is not a date


def test_feed_lines_bad_lines_and_bad_dates(news) -> None:  # type: ignore[no-untyped-def]
    folder, by_id = news
    first = by_id["feed-001"]
    assert (first.title, first.outlet, first.published) == (
        "سوق جديد للخضار في الوادي الأخضر",
        "صحيفة الوادي",
        "2023-03-21",
    )
    assert (first.url, first.language, first.author) == ("https://example.org/wadi/market", "ar", "سلمى حداد")
    assert by_id["feed-002"].published == "2024-11-05T09:30:00+03:00"
    skipped = {Path(s.path).name: s.reason for s in folder.skipped}
    assert set(skipped) == {"feed.jsonl:3", "feed.jsonl:5"} and '"id"' in skipped["feed.jsonl:5"]
    assert by_id["feed-004"].published is None  # "21/03/2024": indexed, without a date, and said so
    bad = [n for n in folder.notices if "21/03/2024" in n]
    assert len(bad) == 1 and "feed.jsonl:4" in bad[0] and "2023-03-21" in bad[0]
    assert any("'colour'" in n and "feed.jsonl:7" in n for n in folder.notices)
    assert any("orphan.json" in n for n in folder.notices)


def test_dates_front_matter_and_head_parsers() -> None:
    assert published_date("2023-03-21") == "2023-03-21"
    assert published_date("2023-03-21 14:05") == "2023-03-21T14:05:00"
    assert published_date("2023-03-21T14:05:00Z") == "2023-03-21T14:05:00+00:00"
    for bad in ("21/03/2023", "2023-13-01", "", 2023):
        with pytest.raises(MetadataError, match="ISO date"):
            published_date(bad)
    assert front_matter("no front matter\n---\n") == ({}, "no front matter\n---\n", None)
    data, rest, problem = front_matter("---\ntitle: [unclosed\n---\nbody")
    assert data == {} and rest.startswith("---") and problem and "YAML" in problem
    assert html_head('<html lang="en"><link rel="canonical stylesheet" href="u"><time datetime="2020-01-01">') == {
        "language": "en",
        "url": "u",
        "published": "2020-01-01",
    }


def test_an_id_used_twice_is_skipped_the_second_time(tmp_path: Path) -> None:
    (tmp_path / "story.txt").write_text("خبر أول عن السوق الجديد في البلدة اليوم.", encoding="utf-8")
    (tmp_path / "story.md").write_text("خبر ثان عن المكتبة الجديدة في البلدة اليوم.", encoding="utf-8")
    folder = read_folder(tmp_path)
    assert [(a.id, a.text) for a in folder.articles] == [("story", "خبر ثان عن المكتبة الجديدة في البلدة اليوم.")]
    ((path, reason),) = [(Path(s.path).name, s.reason) for s in folder.skipped]
    assert path == "story.txt" and "story.md" in reason and "rename" in reason


def test_the_seeds_get_no_invented_metadata() -> None:
    folder = read_folder(DATA)
    assert len(folder.articles) == 5 and not folder.skipped and not folder.notices
    for a in folder.articles:
        assert (a.published, a.url, a.language, a.author) == (None, None, None, None)
        assert a == parse_article(a.id, (DATA / f"{a.id}.txt").read_bytes())  # exactly as before: the file alone


def test_metadata_is_stored_and_a_sidecar_edit_is_picked_up(tmp_path: Path) -> None:
    data, index_dir = tmp_path / "data", tmp_path / "index"
    shutil.copytree(NEWS, data)
    report = build_index(data, index_dir, FakeEmbedder(), SPEC)
    assert report.articles == 9 and any("21/03/2024" in n for n in report.notices)
    stored = load_index(index_dir, SPEC).articles["feed-001"]
    assert (stored.published, stored.url, stored.author) == (
        "2023-03-21",
        "https://example.org/wadi/market",
        "سلمى حداد",
    )
    assert index_is_current(data, index_dir, SPEC)
    (data / "market.json").write_text('{"outlet": "إذاعة الساحل", "published": "2022-01-11"}', encoding="utf-8")
    assert not index_is_current(data, index_dir, SPEC)  # the sidecar's checksum is the index's too
    update = update_index(data, index_dir, FakeEmbedder(), SPEC)
    assert update.changed == ("market",) and update.embedded == 0  # same text: its vectors are kept
    market = load_index(index_dir, SPEC).articles["market"]
    assert (market.outlet, market.published, market.url) == ("إذاعة الساحل", "2022-01-11", None)
    assert index_is_current(data, index_dir, SPEC)
    (data / "orphan.json").unlink()  # a file the build read is gone: stale, though no article changed
    assert not index_is_current(data, index_dir, SPEC)
