"""The lexical leg, query translation and the hybrid fusion, with fake models."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexMismatchError, LLMError, RagError
from rag.index.build import index_articles
from rag.index.lexical import BM25, STOPWORDS, Analyzer, BM25Writer, ngrams, stem, words
from rag.index.store import load_index
from rag.retrieve.retriever import RetrievalWeights, Retriever
from rag.retrieve.translate import QueryTranslator
from rag.text.arabic import fold
from rag.types import Article, IndexSpec

from .conftest import FakeChat, FakeEmbedder
from .helpers import FAKE_SPEC


def test_fold_unifies_arabic_spellings() -> None:
    # hamza forms of alef, alef maqsura, ta marbuta, diacritics, tatweel and Arabic-Indic digits
    assert fold("أحمد إلى آخر مدرسةٌ") == fold("احمد الي اخر مدرسه")
    assert fold("الـــصين") == fold("الصين")
    assert fold("عام ٢٠٢٤") == "عام 2024"
    assert fold("Mao NING") == "mao ning"


def test_words_are_the_words_of_the_folded_text() -> None:
    """`words` folds run by run (cached); it must equal folding the whole text first and splitting it."""
    texts = [
        "حذّر الرئيسُ ـ من ٣٥ قتيلاً في مدرسةٌ، وقال: «إلى آخر يوم»",
        "İstanbul ÉCOLE a\u0640b x \u0651 y ـــ ٣٫٥ مليون Mao NING's 2024-2025",
        "الـــصين\nو\u064bالهند; e5_small x",
        "",
    ]
    for text in texts:
        whole = [w for w in re.findall(r"\w+", fold(text)) if len(w) > 1 and w not in STOPWORDS]
        assert words(text) == whole
        assert Analyzer("ngram").terms(text) == [g for w in whole for g in ngrams(w)]
    assert words("حذّر") == ["حذر"]  # the shadda inside the word does not cut it


def test_stem_and_ngrams() -> None:
    assert stem("والصادرات") == "صادر"
    assert stem("بالصين") == "صين"
    assert stem("exports") == "export"
    assert ngrams("سلام") == ["#سلا", "سلام", "لام#"]
    assert ngrams("من") == ["#من#"]


@pytest.mark.parametrize("kind", ["ngram", "stem"])
def test_bm25_ranks_the_document_with_the_rare_terms_first(kind: str) -> None:
    docs = [
        "قال المتحدث إن الحكومة ستدرس الأمر.",
        "قالت ماو نينغ إن الصين تعارض تصدير المواد ذات الاستخدام المزدوج.",
        "أعلنت الحكومة عن ميزانية جديدة للتعليم.",
    ]
    bm25 = BM25.build(docs, Analyzer(kind))
    scores = bm25.scores("ماذا قالت ماو نينغ عن الإستخدام المزدوج؟")  # hamza on alef differs from the text
    assert int(np.argmax(scores)) == 1
    assert scores[2] == 0.0
    assert bm25.scores("كلمات لا توجد").max() == 0.0


@pytest.mark.parametrize("kind", ["ngram", "stem"])
def test_saved_postings_score_as_built(tmp_path: Path, kind: str) -> None:
    docs = [
        "قالت ماو نينغ إن الصين تعارض تصدير المواد ذات الاستخدام المزدوج.",
        "حذر ميدفيديف من عواقب تزويد أوكرانيا بالأسلحة.",
        "أعلنت الحكومة عن ميزانية جديدة للتعليم والصحة.",
        "",
    ]
    built = BM25.build(docs, Analyzer(kind))
    built.save(tmp_path)
    loaded = BM25.load(tmp_path, Analyzer(kind))
    for query in ("ماذا قالت ماو نينغ عن الاستخدام المزدوج؟", "الأسلحة لأوكرانيا", "ميزانية التعليم"):
        assert np.allclose(loaded.scores(query), built.scores(query))
        assert loaded.scores(query).max() > 0 and loaded.ceiling(query) == pytest.approx(built.ceiling(query))
        assert loaded.scores(query).max() <= loaded.ceiling(query) + 1e-6
    assert loaded.idf("zzzz") > loaded.idf(Analyzer(kind).terms("الصين")[0])  # unknown terms are the rarest
    assert loaded.scores("").max() == 0.0 and loaded.n == 4


@pytest.mark.parametrize("kind", ["ngram", "stem"])
def test_postings_written_batch_by_batch_equal_bm25s_own(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    words = (
        "الصين روسيا أوكرانيا ماو نينغ الاستخدام المزدوج الأسلحة الميزانية التعليم الصحة قالت أعلنت حذر 2023".split()
    )
    rng = random.Random(kind)
    docs = [" ".join(rng.choices(words, k=rng.randint(0, 40))) for _ in range(300)]
    built = BM25.build(docs, Analyzer(kind))
    monkeypatch.setattr(BM25Writer, "SLICE", 97)  # several sorting steps, cut mid-document
    writer = BM25Writer(tmp_path, Analyzer(kind))
    for a in range(0, len(docs), 64):
        writer.add(docs[a : a + 64])
    assert set(writer.close()) >= {"data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"}
    assert not list(tmp_path.glob("*.tmp"))
    written = BM25.load(tmp_path, Analyzer(kind))
    assert written.n == built.n == 300
    for term, i in written.model.vocab_dict.items():  # the same postings, bit for bit
        j = built.model.vocab_dict[term]
        a, b = written.model.scores["indptr"][i : i + 2]
        c, d = built.model.scores["indptr"][j : j + 2]
        assert np.array_equal(written.model.scores["indices"][a:b], built.model.scores["indices"][c:d]), term
        assert np.array_equal(written.model.scores["data"][a:b], built.model.scores["data"][c:d]), term
    for query in ("ماو نينغ والاستخدام المزدوج", "الأسلحة لأوكرانيا 2023", "التعليم"):
        assert np.allclose(written.scores(query), built.scores(query), rtol=1e-5)
        assert written.ceiling(query) == pytest.approx(built.ceiling(query))
    names = {i: t for t, i in written.model.vocab_dict.items()}
    assert any(not d for d in docs)  # a document without terms is among them
    for i, doc in enumerate(docs):  # each document's kept term ids are its text's distinct terms
        kept = written.term_set(i)
        assert kept is not None and {names[t] for t in kept} == set(Analyzer(kind).terms(doc)), i
    assert built.term_set(0) is None  # postings bm25s wrote itself keep no term sets


def test_the_index_loads_its_postings_instead_of_rebuilding_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    articles = [Article("a", "A", None, "قالت ماو نينغ إن الصين تعارض التصدير. وقال المتحدث ذلك.", "1")]
    index_articles(articles, tmp_path, FakeEmbedder(), FAKE_SPEC)
    assert (tmp_path / "current" / "lexical" / "data.csc.index.npy").exists()

    def no_rebuild(*args: object, **kwargs: object) -> BM25:
        raise AssertionError("BM25 rebuilt at load")

    monkeypatch.setattr(BM25, "build", no_rebuild)
    monkeypatch.setattr(BM25Writer, "add", no_rebuild)
    index = load_index(tmp_path, FAKE_SPEC)
    retriever = Retriever(index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.5))
    assert retriever.bm25 is index.lexical and index.lexical.scores("ماو نينغ").max() > 0
    with pytest.raises(IndexMismatchError, match="lexical_terms='ngram' but the settings say 'stem'"):
        load_index(tmp_path, replace(FAKE_SPEC, lexical_terms="stem"))


def test_a_corrupt_postings_file_is_caught_by_its_checksum(tmp_path: Path) -> None:
    articles = [Article("a", "A", None, "قالت ماو نينغ إن الصين تعارض التصدير. وقال المتحدث ذلك.", "1")]
    index_articles(articles, tmp_path, FakeEmbedder(), FAKE_SPEC)
    data = tmp_path / "current" / "lexical" / "data.csc.index.npy"
    data.write_bytes(data.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(IndexMismatchError, match="lexical/data.csc.index.npy is corrupt"):
        load_index(tmp_path, FAKE_SPEC)


def test_unknown_analyzer_names_the_setting() -> None:
    with pytest.raises(RagError, match="RAG_LEXICAL_TERMS"):
        Analyzer("bigram")


# ------------------------------------------------------------------ translation


class BrokenChat:
    name = "broken"
    endpoint = "fake://"

    def stream(self, messages: list[dict[str, str]], on_wait: object = None) -> Iterator[str]:
        raise LLMError("cannot be reached")
        yield ""


def test_translator_caches_on_disk_and_skips_arabic(tmp_path: Path) -> None:
    chat = FakeChat("ماذا قالت ماو نينغ؟\nextra line")
    calls = []
    cache = tmp_path / "cache.jsonl"

    def connect() -> FakeChat:
        calls.append(1)
        return chat

    t = QueryTranslator(connect, "fake-llm", cache)
    assert t.arabic("ماذا قالت ماو نينغ؟") is None and not calls  # Arabic questions are not translated
    assert t.arabic("What did Mao Ning say?") == "ماذا قالت ماو نينغ؟"
    assert "Translate: What did Mao Ning say?" in chat.messages[-1]["content"]
    assert t.arabic("What did Mao Ning say?") == "ماذا قالت ماو نينغ؟" and len(calls) == 1
    again = QueryTranslator(lambda: BrokenChat(), "fake-llm", cache)  # a new process reads the cache
    assert again.arabic("What did Mao Ning say?") == "ماذا قالت ماو نينغ؟"
    other_model = QueryTranslator(lambda: BrokenChat(), "other-llm", cache)
    assert other_model.arabic("What did Mao Ning say?") is None
    assert json.loads(cache.read_text(encoding="utf-8").splitlines()[0])["model"] == "fake-llm"


def test_translator_failure_or_non_arabic_reply_gives_none(tmp_path: Path) -> None:
    assert QueryTranslator(lambda: BrokenChat(), "broken").arabic("Who won?") is None
    assert QueryTranslator(lambda: FakeChat("The answer is 42."), "fake").arabic("Who won?") is None
    assert QueryTranslator(lambda: FakeChat("أсколько نقطة؟"), "fake").arabic("How many points?") == "نقطة؟"


# ------------------------------------------------------------------ fusion and hygiene

ARTICLES = [
    Article("a", "A", "X", "تعارض الصين تصدير المواد ذات الاستخدام المزدوج. وقالت ماو نينغ ذلك أمس.", ""),
    Article("b", "B", "X", "أعلنت الحكومة عن ميزانية جديدة للتعليم والصحة في البلاد.", ""),
    Article("c", "C", "X", "تعارض الصين تصدير المواد ذات الاستخدام المزدوج. وقالت ماو نينغ ذلك أمس.", ""),
    Article("d", "D", "X", "قالت ماو نينغ إن بكين ستواصل الحوار. ماو نينغ تحدثت عن التجارة.", ""),
]


@pytest.fixture
def small_index(tmp_path: Path):  # type: ignore[no-untyped-def]
    index_articles(ARTICLES, tmp_path / "index", FakeEmbedder(), IndexSpec(FakeEmbedder.name, 60, 0))
    return load_index(tmp_path / "index", IndexSpec(FakeEmbedder.name, 60, 0))


def test_lexical_leg_finds_what_the_dense_leg_misses(small_index) -> None:  # type: ignore[no-untyped-def]
    # The hamza form differs from the text's, so the hashing embedder only matches "في" (in b);
    # the lexical leg folds the spelling and ignores the stop word.
    question = "الإستخدام في"
    dense = Retriever(small_index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.0)).search(question, 1)
    hybrid = Retriever(small_index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.6)).search(question, 1)
    assert dense[0].chunk.article_id == "b"
    assert hybrid[0].chunk.article_id in {"a", "c"} and hybrid[0].lexical == pytest.approx(1.0, abs=1e-5)


def test_near_duplicates_collapse_and_article_cap(small_index) -> None:  # type: ignore[no-untyped-def]
    r = Retriever(small_index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.3))
    ids = [h.chunk.article_id for h in r.search("ماو نينغ الاستخدام المزدوج", 4)]
    assert len(ids) == 3 and len({"a", "c"} & set(ids)) == 1  # a and c are the same text: one is kept
    loose = Retriever(small_index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.3, duplicate_overlap=1.01))
    assert len(loose.search("ماو نينغ الاستخدام المزدوج", 4)) == 4


def test_duplicates_are_found_the_same_from_kept_term_ids_as_from_the_texts(  # type: ignore[no-untyped-def]
    small_index, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = Retriever(small_index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.3))
    questions = ["ماو نينغ الاستخدام المزدوج", "الصين", "أوكرانيا الأسلحة", "الميزانية"]
    assert small_index.lexical.term_set(0) is not None
    kept = [r.search(q, 3) for q in questions]
    monkeypatch.setattr(BM25, "term_set", lambda self, doc: None)  # an index version written before them
    assert [r.search(q, 3) for q in questions] == kept
    assert {h.chunk.article_id for h in kept[0]} & {"a", "c"} and any(h.also in (("a",), ("c",)) for h in kept[0])


def test_translation_feeds_both_legs(small_index) -> None:  # type: ignore[no-untyped-def]
    translator = QueryTranslator(lambda: FakeChat("ماذا قالت ماو نينغ عن الحوار مع بكين؟"), "fake")
    r = Retriever(small_index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.3), translator=translator)
    query = r.query("What did Mao Ning say about dialogue with Beijing?")
    hits = r.search(query, 2)
    assert query.rendering is not None and query.rendering in query.lexical and len(query.vectors) == 2
    assert hits[0].chunk.article_id == "d"
    plain = Retriever(small_index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.3))
    assert plain.search("What did Mao Ning say about dialogue with Beijing?", 1)[0].lexical == 0.0


def test_a_rendered_question_weighs_bm25_by_its_own_weight(small_index) -> None:  # type: ignore[no-untyped-def]
    # An Arabic question's terms are the asker's own (lexical_weight); an English one's come from the answer
    # model's rendering (rendered_lexical_weight), a weaker clue.
    translator = QueryTranslator(lambda: FakeChat("ماذا قالت ماو نينغ عن الحوار مع بكين؟"), "fake")
    english, arabic = "What did Mao Ning say about dialogue with Beijing?", "الإستخدام في"

    def retriever(arabic_weight: float, rendered_weight: float) -> Retriever:
        return Retriever(
            small_index,
            FakeEmbedder(),
            RetrievalWeights(lexical_weight=arabic_weight, rendered_lexical_weight=rendered_weight),
            translator=translator,
        )

    arabic_only, rendered_only = retriever(0.6, 0.0), retriever(0.0, 0.6)
    assert all(h.lexical == 0.0 for h in arabic_only.search(english, 3))
    assert rendered_only.search(english, 1)[0].lexical > 0.0
    assert arabic_only.search(arabic, 1)[0].chunk.article_id in {"a", "c"}  # BM25 folds the hamza (test above)
    assert rendered_only.search(arabic, 1)[0].chunk.article_id == "b"  # dense only
    for hit in retriever(0.6, 0.2).search(english, 3):  # the fused score is (1 - 0.2) dense' + 0.2 lexical
        assert hit.score <= 0.8 + 0.2 * hit.lexical + 1e-6 and hit.score >= 0.2 * hit.lexical - 1e-6
    assert RetrievalWeights(lexical_weight=0.3).rendered_lexical == 0.3  # one weight


def test_a_rendering_far_from_the_question_is_dropped(small_index) -> None:  # type: ignore[no-untyped-def]
    translator = QueryTranslator(lambda: FakeChat("ماذا أعتذر مبدوا؟"), "fake")
    question = "What did Medvedev warn about?"
    strict = Retriever(
        small_index,
        FakeEmbedder(),
        RetrievalWeights(lexical_weight=0.3, translation_min_similarity=0.99),
        translator=translator,
    )
    query = strict.query(question)
    assert query.rendering is None and query.lexical == "" and len(query.vectors) == 1
    loose = Retriever(small_index, FakeEmbedder(), RetrievalWeights(lexical_weight=0.3), translator=translator)
    query = loose.query(question)
    assert query.rendering == "ماذا أعتذر مبدوا؟" and len(query.vectors) == 2
