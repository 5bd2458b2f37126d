"""Reading articles: furniture removed, article sentences, title and outlet kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.ingest.articles import parse_article, read_articles
from rag.ingest.furniture import RULES, Rule, clean_text, detect_outlet

from .conftest import DATA


def _clean(name: str) -> str:
    return clean_text((DATA / f"{name}.txt").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("article", "furniture"),
    [
        ("001_27d9175388c3cb3c", "[ad_1]"),
        ("001_27d9175388c3cb3c", "[ad_2]"),
        ("001_27d9175388c3cb3c", "\nالمصدر"),
        ("004_0a8d004fa50ae198", "Open toolbar"),
        ("004_0a8d004fa50ae198", "Resize text"),
        ("004_0a8d004fa50ae198", "شارك القصة"),
        ("004_0a8d004fa50ae198", "ملف تعريف الارتباط"),  # cookie notice
        ("004_0a8d004fa50ae198", "Google News"),
        ("004_0a8d004fa50ae198", "REUTERS"),  # photo caption with credit
        ("004_0a8d004fa50ae198", "اقرأ أيضاً"),
        ("002_aa184c3cf74723ce", "تخطى قصص مقترحة"),
        ("002_aa184c3cf74723ce", "هل تدعم الصين موسكو خلال الحرب؟"),  # a related-story link inside the block
        ("002_aa184c3cf74723ce", "قصص مقترحة نهاية"),
        ("002_aa184c3cf74723ce", "البودكاست"),
        ("002_aa184c3cf74723ce", "سلة مشترياتك"),  # podcast promo inside the block
        ("002_aa184c3cf74723ce", "صدر الصورة"),  # photo credit
        ("002_aa184c3cf74723ce", "التعليق على الصورة"),
        ("002_aa184c3cf74723ce", "بايدن وبوتين في قمة جمعتهما عام 2021"),  # the caption itself
        ("003_767b0b59c7a3495f", "More Stories"),
        ("003_767b0b59c7a3495f", "إعصار شانشان"),  # a story after "More Stories"
        ("003_767b0b59c7a3495f", "ثقافة البوب"),  # author bio
        ("000_5016804d4a167ba4", "يتم توفير المقال من قبل مزود محتوى خارجي"),  # wire disclaimer
        ("000_5016804d4a167ba4", "(SeaPRwire)"),
    ],
)
def test_furniture_is_removed(article: str, furniture: str) -> None:
    assert furniture not in _clean(article)


@pytest.mark.parametrize(
    ("article", "sentence"),
    [
        ("000_5016804d4a167ba4", "لقد سيطرنا دائما على تصدير البنود ذات الاستخدام المزدوج وفقا للقانون"),
        ("000_5016804d4a167ba4", "وصل وزير الخارجية الروسي سيرغي لافروف إلى بكين"),
        ("001_27d9175388c3cb3c", "بالذكرى الـ75 لعلاقاتهما الدبلوماسية"),
        ("002_aa184c3cf74723ce", "190 مليار دولار"),
        ("002_aa184c3cf74723ce", "معاهدة ستارت الجديدة"),
        ("002_aa184c3cf74723ce", "ماذا نتوقع اليوم"),
        ("003_767b0b59c7a3495f", "مقاطعة فوجيان"),
        ("003_767b0b59c7a3495f", "سينسقون عن كثب في الجمعية العامة للأمم المتحدة"),  # last line before the bio
        ("004_0a8d004fa50ae198", "تحالف عسكري جديد مناهض للولايات المتحدة"),
        ("004_0a8d004fa50ae198", "تحالف مناهض لواشنطن"),  # a sub-heading is article text
    ],
)
def test_article_sentences_are_kept(article: str, sentence: str) -> None:
    assert sentence in _clean(article)


@pytest.mark.parametrize(
    ("article", "outlet"),
    [
        ("000_5016804d4a167ba4", "SeaPRwire"),
        ("001_27d9175388c3cb3c", "Al Jazeera"),
        ("002_aa184c3cf74723ce", "BBC"),
        ("003_767b0b59c7a3495f", None),
        ("004_0a8d004fa50ae198", "Asharq"),
    ],
)
def test_outlet(article: str, outlet: str | None) -> None:
    assert detect_outlet((DATA / f"{article}.txt").read_text(encoding="utf-8")) == outlet


def test_titles_are_real_lines() -> None:
    articles, skipped = read_articles(DATA)
    assert not skipped
    titles = {a.id: a.title for a in articles}
    assert titles["002_aa184c3cf74723ce"].startswith("روسيا وأوكرانيا: وزير الخارجية الصيني يزور موسكو")
    assert titles["001_27d9175388c3cb3c"].startswith("وزير الخارجية الروسي يزور بكين")
    assert all(len(t) <= 121 and len(t.split()) >= 4 for t in titles.values())


def test_empty_and_invalid_files_are_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("هذا نص خبر حقيقي عن الصين وروسيا.\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 na\xefve".encode("latin-1"))
    (tmp_path / "only-ads.txt").write_text("[ad_1]\n[ad_2]\nالمصدر\n", encoding="utf-8")
    articles, skipped = read_articles(tmp_path)
    assert [a.id for a in articles] == ["good"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert set(reasons) == {"empty.txt", "latin1.txt", "only-ads.txt"}
    assert "empty" in reasons["empty.txt"]
    assert "UTF-8" in reasons["latin1.txt"]


def test_bom_is_ignored() -> None:
    article = parse_article("bom", "\ufeffخبر عن الصين وروسيا اليوم.".encode())
    assert article.text.startswith("خبر")


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="does not exist"):
        read_articles(tmp_path / "nope")


BEFORE = "قال المتحدث باسم الوزارة إن المحادثات ستستمر الأسبوع المقبل."
AFTER = "وأضاف أن الجانبين اتفقا على مواصلة التعاون في مجال الطاقة."


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.kind}:{r.why}" for r in RULES])
def test_every_furniture_rule_removes_its_example_and_nothing_else(rule: Rule) -> None:
    """The rules table tests itself: each row's example line goes, the article around it stays."""
    if rule.kind == "prefix":
        assert clean_text(f"{rule.example}{BEFORE}\n{AFTER}") == f"{BEFORE}\n{AFTER}"
        return
    furniture = {
        "next": f"{rule.example}\nنص التعليق على الصورة هنا",  # the label and the caption after it
        "block": f"{rule.example}\nقصة مقترحة أولى\nقصص مقترحة نهاية",  # up to the block's end line
        "end": f"{rule.example}\nقصة أخرى لا علاقة لها بالخبر",  # and everything after it
    }.get(rule.kind, rule.example)
    cleaned = clean_text(f"{BEFORE}\n\n{furniture}\n\n{AFTER}")
    assert cleaned == (BEFORE if rule.kind == "end" else f"{BEFORE}\n{AFTER}")


PAGES = Path(__file__).parent / "fixtures" / "pages"
PAGE_GOLD = json.loads((PAGES / "gold.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(PAGE_GOLD))
def test_a_saved_news_page_keeps_its_article_and_drops_the_site_around_it(name: str) -> None:
    """Saved pages in the shape of Al Jazeera, BBC Arabic and Asharq pages: menus, cookie notices, "read also" and
    "most read" lists, share bars, comments and footers around the article (scripts/html_extractors.py measures
    the extractors on them: the standard library's parser alone leaks 28 of these 35 furniture lines)."""
    gold = PAGE_GOLD[name]
    article = parse_article(name, (PAGES / f"{name}.html").read_bytes())
    assert article.title == gold["title"]
    assert [p for p in gold["body"] if p not in article.text] == []
    leaked = [f for f in gold["furniture"] if f in article.text]
    assert len(leaked) <= 1, leaked
