"""Search filters (issue 15): dates, outlets and articles applied inside both legs before the top k, a filter
that keeps nothing says so, near-duplicates name the other outlets, the recency preference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.errors import NothingMatchesError, RagError
from rag.index.build import build_index
from rag.index.store import VectorIndex, holdings, load_index
from rag.retrieve.filters import day, make_filter, parse_filter_command
from rag.retrieve.retriever import RetrievalWeights, Retriever
from rag.types import Filter, IndexSpec

from .conftest import FakeEmbedder

NEWS = Path(__file__).parent / "fixtures" / "news"
SPEC = IndexSpec(FakeEmbedder.name, chunk_tokens=40, chunk_overlap=0)
QUESTION = "ماذا قالت ماو نينغ عن تصدير المواد ذات الاستخدام المزدوج؟"
FILLERS = 300  # undated articles of one more outlet, all about the question: they fill an unfiltered pool


def _filler(n: int) -> str:
    rng = np.random.default_rng(n)  # words of their own, so that no two fillers are near-duplicates
    letters = list("ابتثجحخدذرزسشصضطظعغفقكلمنهوي")
    words = " ".join("".join(rng.choice(letters, 5)) for _ in range(15))
    text = f"قالت ماو نينغ إن تصدير المواد ذات الاستخدام المزدوج يخضع لرقابة. {words}."
    return json.dumps({"id": f"wire-{n:03d}", "text": text, "outlet": "Filler Wire"}, ensure_ascii=False)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> VectorIndex:
    data = tmp_path_factory.mktemp("news")
    shutil.copytree(NEWS, data, dirs_exist_ok=True)
    (data / "wire.jsonl").write_text("\n".join(_filler(n) for n in range(FILLERS)) + "\n", encoding="utf-8")
    folder = tmp_path_factory.mktemp("index")
    build_index(data, folder, FakeEmbedder(), SPEC)
    return load_index(folder, SPEC)


def _published(index: VectorIndex, article_id: str) -> str | None:
    return index.articles[article_id].published


@pytest.mark.parametrize("weight", [0.0, 0.4, 1.0])  # dense leg only, both, lexical leg carrying the score
def test_dates_and_outlets_hold_on_both_legs(index: VectorIndex, weight: float) -> None:
    retriever = Retriever(index, FakeEmbedder(), RetrievalWeights(lexical_weight=weight))
    unfiltered = retriever.search(QUESTION, 5)
    assert sum(not h.chunk.article_id.startswith("wire-") for h in unfiltered) <= 1  # the fillers crowd the rest out
    since = retriever.search(QUESTION, 5, Filter(since="2024-01-01"))
    assert since and all((_published(index, h.chunk.article_id) or "")[:10] >= "2024-01-01" for h in since)
    assert "feed-005" in {h.chunk.article_id for h in since} or "feed-006" in {h.chunk.article_id for h in since}
    until = retriever.search(QUESTION, 5, Filter(until="2023-12-31"))
    assert until and all("2000" < (_published(index, h.chunk.article_id) or "")[:10] <= "2023-12-31" for h in until)
    outlet = retriever.search(QUESTION, 5, Filter(outlets=("إذاعة الساحل",)))
    assert outlet and {index.articles[h.chunk.article_id].outlet for h in outlet} == {"إذاعة الساحل"}
    both = retriever.search(QUESTION, 5, Filter(since="2024-01-01", outlets=("وكالة الأنباء الشرقية",)))
    assert [h.chunk.article_id for h in both] == ["feed-005"]


def test_k_passages_come_back_when_k_exist(index: VectorIndex) -> None:
    retriever = Retriever(index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.4))
    dated = [a for a in index.articles if _published(index, a)]
    chunks = sum(len(index.records.positions_of(a)) for a in dated)
    assert chunks >= 6  # the dated fixtures, fewer than the 50 candidates the fillers take unfiltered
    hits = retriever.search(QUESTION, 6, Filter(since="2000-01-01"))
    assert len(hits) == 6 and all(_published(index, h.chunk.article_id) for h in hits)
    # more than the filter holds: all of it (one passage per chunk, the two duplicates collapsed), no more
    everything = retriever.search(QUESTION, 50, Filter(since="2000-01-01"))
    assert len(everything) == chunks - 1 and {h.chunk.article_id for h in everything} <= set(dated)


def test_outlet_names_ignore_case_and_articles_filter(index: VectorIndex) -> None:
    retriever = Retriever(index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.4))
    hits = retriever.search(QUESTION, 3, Filter(outlets=("filler wire",)))
    assert len(hits) == 3 and all(h.chunk.article_id.startswith("wire-") for h in hits)
    only = retriever.search(QUESTION, 3, Filter(articles=("feed-001", "harbour")))
    assert {h.chunk.article_id for h in only} <= {"feed-001", "harbour"} and only


def test_a_filter_that_keeps_nothing_says_so(index: VectorIndex) -> None:
    retriever = Retriever(index, FakeEmbedder())
    with pytest.raises(NothingMatchesError) as err:
        retriever.search(QUESTION, 3, Filter(since="2030-01-01"))
    message = str(err.value)
    assert "published since 2030-01-01" in message and "2022-01-10 to 2024-11-05" in message
    assert f"{FILLERS + 2} undated" in message  # the fillers, notes.md and feed-004 (its date is not ISO)
    with pytest.raises(NothingMatchesError, match="No outlet 'BBC'.*Filler Wire \\(300\\)"):
        retriever.search(QUESTION, 3, Filter(outlets=("BBC",)))
    with pytest.raises(NothingMatchesError, match="outlet Filler Wire"):  # no filler is dated
        retriever.search(QUESTION, 3, Filter(since="2023-01-01", outlets=("Filler Wire",)))
    with pytest.raises(RagError, match="No article 'nope'"):
        retriever.search(QUESTION, 3, Filter(articles=("nope",)))


def test_duplicates_name_the_other_outlets(index: VectorIndex) -> None:
    retriever = Retriever(index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.4))
    hits = retriever.search(QUESTION, 3, Filter(since="2024-01-01"))
    ids = [h.chunk.article_id for h in hits]
    assert ids[0] == "feed-005" and "feed-006" not in ids  # the same text twice: one passage
    assert hits[0].also == ("feed-006",)
    alone = retriever.search(QUESTION, 3, Filter(articles=("feed-006",)))
    assert [h.chunk.article_id for h in alone] == ["feed-006"] and alone[0].also == ()


def test_recency_prefers_the_newer_and_is_off_by_default(index: VectorIndex) -> None:
    default = Retriever(index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.4))
    assert default.weights.recency_half_life == 0
    recent = Retriever(index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.4, recency_half_life=30.0))
    pair = Filter(articles=("feed-005", "feed-006"))
    assert default.search(QUESTION, 3, pair)[0].chunk.article_id == "feed-005"  # the same text: the first kept
    hits = recent.search(QUESTION, 3, pair)
    assert [h.chunk.article_id for h in hits] == ["feed-006"] and hits[0].also == ("feed-005",)  # a day newer
    positions = np.array([index.records.positions_of(a)[0] for a in ("feed-002", "feed-006", "market", "notes")])
    slow = Retriever(index, FakeEmbedder(), RetrievalWeights(recency_half_life=365.0))._recency(positions)
    assert np.allclose(slow, [1.0, 0.5 ** (127 / 365), 0.5 ** (1030 / 365), 0.5 ** (1030 / 365)], rtol=1e-5)


def test_typed_filters() -> None:
    assert day("2024") == "2024-01-01" and day("2024", end=True) == "2024-12-31"
    assert day("2024-02", end=True) == "2024-02-29" and day("2023-3-7") == "2023-03-07"
    with pytest.raises(RagError, match="--since '21/03/2024' is not a date: write YYYY-MM-DD"):
        make_filter(since="21/03/2024")
    with pytest.raises(RagError, match="--until '2024-13' is not a date"):
        make_filter(until="2024-13")
    with pytest.raises(RagError, match="after --until"):
        make_filter(since="2024-05-01", until="2024-04")
    f = make_filter("2023", "2024-06", [" BBC ", "BBC", "Asharq"], ["a1"])
    assert f == Filter("2023-01-01", "2024-06-30", ("BBC", "Asharq"), ("a1",)) and f.active
    assert f.describe() == "published 2023-01-01 to 2024-06-30 · outlets BBC, Asharq · article a1"
    assert not Filter().active and Filter().describe() == ""


def test_filter_command_of_rag_chat() -> None:
    f = parse_filter_command('/filter since 2024 outlet "Al Jazeera" outlet BBC', Filter())
    assert f == Filter(since="2024-01-01", outlets=("Al Jazeera", "BBC"))
    g = parse_filter_command("/filter --until 2024-03", f)  # other fields kept
    assert g == Filter(since="2024-01-01", until="2024-03-31", outlets=("Al Jazeera", "BBC"))
    assert parse_filter_command("/filter off", g) == Filter()
    assert parse_filter_command("/filter", g) == g
    for bad in ("/filter outlet", "/filter colour blue", '/filter outlet "BBC'):
        with pytest.raises(RagError, match="/filter since DATE"):
            parse_filter_command(bad, Filter())


def test_holdings_for_index_info(index: VectorIndex) -> None:
    found = holdings(index.path.parent)
    assert found["outlets"] == {
        "Filler Wire": FILLERS,
        "إذاعة الساحل": 4,
        "صحيفة الوادي": 3,
        "وكالة الأنباء الشرقية": 1,
    }
    assert found["published"] == {"first": "2022-01-10", "last": "2024-11-05", "undated": FILLERS + 2}
