"""Filters and sources on the command line (issue 15), with the real model over the news fixtures: `rag search`,
`rag ask` and `rag chat` (with `/filter`) keep to the filter and show outlet, date and link; `rag index info`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import rag

DUAL_USE = "ماذا قالت ماو نينغ عن تصدير المواد ذات الاستخدام المزدوج؟"
MARKET = "متى يفتح سوق الخضار الجديد؟"


def _json(*args: str) -> dict:  # type: ignore[type-arg]
    done = rag(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_search_keeps_to_dates_and_shows_sources(news_index: Path) -> None:
    result = _json("search", DUAL_USE, "--since", "2024-06", "--until", "2024", "--index", str(news_index), "--json")
    assert result["filter"] == {"since": "2024-06-01", "until": "2024-12-31", "outlets": [], "articles": []}
    hits = result["hits"]
    assert hits and all("2024-06-01" <= h["published"][:10] <= "2024-12-31" for h in hits)
    first = hits[0]  # feed-005 or feed-006: the same sentence in two outlets, one passage naming the other
    twins = {
        "feed-005": ("وكالة الأنباء الشرقية", "2024-06-30", None),
        "feed-006": ("إذاعة الساحل", "2024-07-01", "https://example.net/sahel/dual-use"),
    }
    assert (first["outlet"], first["published"], first["url"]) == twins[first["article_id"]]  # null when unknown
    other = next(a for a in twins if a != first["article_id"])
    assert first["also_reported_by"] == [twins[other][0]] and other not in {h["article_id"] for h in hits}
    text = rag("search", DUAL_USE, "--outlet", "إذاعة الساحل", "-k", "2", "--index", str(news_index))
    assert text.returncode == 0, text.stderr
    assert "(filter: outlet إذاعة الساحل)" in text.stdout
    assert "إذاعة الساحل · 2024-07-01 · https://example.net/sahel/dual-use" in text.stdout
    assert "وكالة الأنباء الشرقية" not in text.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--since", "2030-01-01"], "No article matches the filter (published since 2030-01-01): its outlets are"),
        (["--outlet", "BBC"], "No outlet 'BBC' in the index: its outlets are إذاعة الساحل (4)"),
        (["--since", "21/03/2024"], "--since '21/03/2024' is not a date: write YYYY-MM-DD"),
        (["--article", "nope"], "No article 'nope' in the index"),
    ],
)
def test_a_filter_that_keeps_nothing_is_an_error(news_index: Path, args: list[str], needle: str) -> None:
    done = rag("search", DUAL_USE, *args, "--index", str(news_index))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: ") and needle in done.stderr and done.stderr.count("\n") == 1


def test_ask_json_citations_carry_outlet_date_and_link(news_index: Path) -> None:
    result = _json("ask", MARKET, "--outlet", "صحيفة الوادي", "--index", str(news_index), "--json")
    assert result["filter"]["outlets"] == ["صحيفة الوادي"] and not result["refused"]
    cites = result["citations"]
    assert cites and {"outlet", "published", "url", "also_reported_by", "title"} <= set(cites[0])
    assert cites[0]["article_id"] == "feed-001" and cites[0]["outlet"] == "صحيفة الوادي"
    assert (cites[0]["published"], cites[0]["url"]) == ("2023-03-21", "https://example.org/wadi/market")
    dated = _json("ask", MARKET, "--until", "2022-12-31", "--index", str(news_index), "--json")
    assert all(c["published"] <= "2022-12-31" for c in dated["citations"])  # only market.txt is that old


def test_chat_filter_command(news_index: Path) -> None:
    lines = "\n".join(
        ["/filter outlet 'إذاعة الساحل'", DUAL_USE, "/filter since 2030", "/filter off", DUAL_USE, "/quit"]
    )
    done = rag("chat", "--json", "--index", str(news_index), stdin=lines + "\n")
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["filter"]["outlets"] == ["إذاعة الساحل"]
    assert {c["outlet"] for c in first["citations"]} == {"إذاعة الساحل"} and first["citations"][0][
        "article_id"
    ] == "feed-006"
    assert "(filter: outlet إذاعة الساحل)" in done.stderr
    assert "error: No article matches the filter (outlet إذاعة الساحل · published since 2030-01-01)" not in done.stderr
    assert "error: No article matches the filter (published since 2030-01-01 · outlet إذاعة الساحل)" in done.stderr
    assert second["filter"] is None and second["citations"][0]["article_id"] in ("feed-005", "feed-006")
    assert len(second["citations"][0]["also_reported_by"]) == 1


def test_index_info_counts_outlets_and_dates(news_index: Path) -> None:
    info = _json("index", "info", "--index", str(news_index), "--json")
    assert info["outlets"] == {"إذاعة الساحل": 4, "صحيفة الوادي": 3, "وكالة الأنباء الشرقية": 1}
    assert info["published"] == {"first": "2022-01-10", "last": "2024-11-05", "undated": 2}
    text = rag("index", "info", "--index", str(news_index))
    assert "published: 2022-01-10 to 2024-11-05, 2 undated" in text.stdout
