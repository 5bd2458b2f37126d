"""Bad input never stops the build nor corrupts the index: each file is indexed correctly or skipped by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import RagError
from rag.index.build import build_index, update_index
from rag.index.store import load_index
from rag.ingest.articles import MAX_ARTICLE_BYTES
from rag.types import IndexSpec

from .conftest import FakeEmbedder

SPEC = IndexSpec(FakeEmbedder.name, chunk_tokens=60, chunk_overlap=0)
GOOD = "وصل وزير الخارجية الروسي إلى بكين يوم الاثنين. وناقش الوزيران الوضع في أوكرانيا."
ARABIC_TEXT = "قالت المتحدثة إن الصين تسيطر على تصدير البنود ذات الاستخدام المزدوج وفقا للقانون."


def _build(tmp_path: Path, name: str, data: bytes):  # type: ignore[no-untyped-def]
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "good.txt").write_text(GOOD, encoding="utf-8")
    (folder / name).write_bytes(data)
    report = build_index(folder, tmp_path / "index", FakeEmbedder(), SPEC)
    index = load_index(tmp_path / "index", SPEC)
    assert "good" in index.articles  # the good article is always indexed
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    return index, skipped


def test_empty_file_is_skipped(tmp_path: Path) -> None:
    _, skipped = _build(tmp_path, "empty.txt", b"  \n")
    assert skipped == {"empty.txt": "the file is empty"}


def test_invalid_utf8_is_skipped(tmp_path: Path) -> None:
    _, skipped = _build(tmp_path, "latin1.txt", "café olé".encode("latin-1"))
    assert "not valid UTF-8" in skipped["latin1.txt"] and "offset 3" in skipped["latin1.txt"]


def test_binary_file_is_skipped(tmp_path: Path) -> None:
    _, skipped = _build(tmp_path, "photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert "binary" in skipped["photo.txt"]


def test_utf16_with_bom_is_indexed(tmp_path: Path) -> None:
    index, skipped = _build(tmp_path, "utf16.txt", ARABIC_TEXT.encode("utf-16"))
    assert not skipped and index.articles["utf16"].text == ARABIC_TEXT


def test_huge_file_is_skipped_with_its_size(tmp_path: Path) -> None:
    big = (ARABIC_TEXT + "\n").encode() * (50 * 2**20 // len(ARABIC_TEXT.encode()))
    assert len(big) > MAX_ARTICLE_BYTES
    _, skipped = _build(tmp_path, "dump.txt", big)
    assert "MB limit" in skipped["dump.txt"] and "split it" in skipped["dump.txt"]


def test_one_megabyte_line_is_chunked(tmp_path: Path) -> None:
    line = " ".join(f"كلمة{i % 97}" for i in range(150_000))
    assert len(line.encode()) > 2**20 and "\n" not in line
    index, skipped = _build(tmp_path, "one-line.txt", line.encode())
    assert not skipped
    chunks = [c for c in index.chunks if c.article_id == "one-line"]
    assert len(chunks) > 100 and all(len(c.text.split()) <= 60 for c in chunks)
    text = index.articles["one-line"].text
    assert all(text[c.start : c.end] == c.text for c in chunks)


@pytest.mark.parametrize("name", ["تقرير الأحد.txt", "report with spaces.txt"])
def test_names_with_spaces_or_arabic_letters(tmp_path: Path, name: str) -> None:
    index, skipped = _build(tmp_path, name, ARABIC_TEXT.encode())
    assert not skipped and index.articles[name[:-4]].text == ARABIC_TEXT
    assert any(c.id.startswith(name[:-4] + ":") for c in index.chunks)


def test_html_page_saved_as_txt_is_reduced_to_its_text(tmp_path: Path) -> None:
    page = (
        "<!DOCTYPE html><html><head><title>خبر</title><style>p{color:red}</style>"
        "<script>alert('x')</script></head><body><h1>عنوان الخبر الرئيسي هنا اليوم</h1>"
        f"<p>{ARABIC_TEXT}</p><p>الجملة الثانية &amp; الأخيرة.</p></body></html>"
    )
    index, skipped = _build(tmp_path, "page.txt", page.encode())
    text = index.articles["page"].text
    assert not skipped and ARABIC_TEXT in text and "الجملة الثانية & الأخيرة." in text
    assert "<" not in text and "alert" not in text and "color" not in text


def test_a_folder_of_bad_files_keeps_the_stored_index(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "good.txt").write_text(GOOD, encoding="utf-8")
    build_index(folder, tmp_path / "index", FakeEmbedder(), SPEC)
    (folder / "good.txt").unlink()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "bin.txt").write_bytes(b"\x00\x01\x02")
    for run in (build_index, update_index):
        with pytest.raises(RagError) as err:
            run(folder, tmp_path / "index", FakeEmbedder(), SPEC)
        assert "empty.txt" in str(err.value) and "bin.txt" in str(err.value)
    assert list(load_index(tmp_path / "index", SPEC).articles) == ["good"]


def test_html_that_defeats_regular_expressions(tmp_path: Path) -> None:
    """`>` inside an attribute, an unclosed comment at the end, a stray `<`, and no </head>."""
    page = (
        "<!doctype html><html><head><title>عنوان الصفحة</title><meta content='a > b'>"
        f'<body><svg><title>Share icon</title></svg><p data-x="1 > 0" title="x>y">{ARABIC_TEXT}</p>'
        "<p>السعر 5 < 7 دولارات &lt;تقريبا&gt; كما قال.</p><!-- a comment that never ends <p>hidden</p>"
    )
    index, skipped = _build(tmp_path, "page.txt", page.encode())
    text = index.articles["page"].text
    assert not skipped and ARABIC_TEXT in text.split("\n")
    assert "السعر 5 < 7 دولارات <تقريبا> كما قال." in text
    assert '0"' not in text and "x>y" not in text and "a > b" not in text and "hidden" not in text
    assert text.split("\n")[0] == "عنوان الصفحة" and "Share icon" not in text  # not an icon's <title>
