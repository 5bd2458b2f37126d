"""The lexical leg: Arabic-aware normalization, light stemming and BM25 over chunks."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError
from rag.files import mapped_rows
from rag.text.arabic import fold

_WORD = re.compile(r"\w+")

# Function words that carry no topic (already folded). BM25's idf would mostly discount them anyway;
# dropping them keeps short questions from matching on "what" and "في". ("على" stays: folded, it is the name Ali.)
STOPWORDS = frozenset(
    """
    في من الي عن ان او ما ماذا متي اين كيف كم لماذا هل التي الذي الذين اللذين هذا هذه ذلك تلك هو هي هم
    كان كانت يكون تكون قد لقد لم لن لا مع بين عند بعد قبل حتي كل بعض اي غير منذ ثم وقد وكان وهو وهي
    the a an of in on at to for from by with and or is are was were be been what which who whom whose when
    where why how did does do that this these those it its as into than there their his her they he she
    """.split()
)

_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال")
_SUFFIXES = ("ها", "ان", "ات", "ون", "ين", "يه", "ه", "ي")


def stem(word: str) -> str:
    """A light stem (Larkey et al.'s Light10): conjunction, article and common suffixes removed."""
    if not ("\u0621" <= word[0] <= "\u064a"):
        return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
    if len(word) >= 4 and word[0] == "و":
        word = word[1:]
    for p in _PREFIXES:
        if word.startswith(p) and len(word) - len(p) >= 2:
            word = word[len(p) :]
            break
    for s in _SUFFIXES:
        if word.endswith(s) and len(word) - len(s) >= 2:
            word = word[: -len(s)]
    return word


def words(text: str) -> list[str]:
    """Folded words of a text, stop words and one-letter tokens dropped.

    The same as the words of `fold(text)`, found faster: folding works character by character and never makes a
    word character of another, so the text is cut into runs of word characters and Arabic marks first, and each
    distinct run is folded and split once (runs repeat: a search's duplicate check and a build fold far less)."""
    return [w for run in _RUN.findall(text) for w in _run_words(run)]


_RUN = re.compile(r"[\w\u064b-\u0652\u0670\u0640]+")  # word characters and what fold removes from inside words


@lru_cache(maxsize=1 << 18)
def _run_words(run: str) -> tuple[str, ...]:
    return tuple(w for w in _WORD.findall(fold(run)) if len(w) > 1 and w not in STOPWORDS)


def ngrams(word: str, n: int = 4) -> list[str]:
    """Character n-grams of a word with boundary marks: "#سلام#" -> "#سلا", "سلام", "لام#"."""
    marked = f"#{word}#"
    return [marked[i : i + n] for i in range(max(1, len(marked) - n + 1))]


class Analyzer:
    """Text to index terms: "ngram" = in-word character 4-grams (the default, best on XQuAD), "stem" = light stems."""

    KINDS = ("ngram", "stem")

    def __init__(self, kind: str = "ngram") -> None:
        if kind not in self.KINDS:
            raise RagError(f"Unknown lexical terms {kind!r}: set RAG_LEXICAL_TERMS to ngram or stem.")
        self.kind = kind

    def terms(self, text: str) -> list[str]:
        """The index terms of a text."""
        if self.kind == "stem":
            return [_stem(w) for w in words(text)]
        found: list[str] = []
        for run in _RUN.findall(text):  # as `words`, a run at a time
            found += _run_grams(run)
        return found


# Words repeat (Zipf): analysing each distinct word once makes a large build's lexical pass several times faster.
_stem = lru_cache(maxsize=1 << 18)(stem)


@lru_cache(maxsize=1 << 18)
def _ngrams(word: str) -> tuple[str, ...]:
    return tuple(ngrams(word))


@lru_cache(maxsize=1 << 18)
def _run_grams(run: str) -> tuple[str, ...]:
    return tuple(g for w in _run_words(run) for g in _ngrams(w))


class BM25:
    """Okapi BM25 (bm25s, Lucene variant: k1 1.2, b 0.75) over the analyzer's terms.

    Built once with the index version and saved in it (`save`, `load`); a search only reads the postings of
    its own terms, so a memory-mapped load costs nothing up front.
    """

    FILES = (
        "data.csc.index.npy",
        "indices.csc.index.npy",
        "indptr.csc.index.npy",
        "vocab.index.json",
        "params.index.json",
        "nonoccurrence_array.index.npy",
        "terms.doc.index.i32",
        "starts.doc.index.npy",
    )

    def __init__(self, model: Any, analyzer: Analyzer) -> None:
        self.model = model
        self.analyzer = analyzer
        self.n = int(model.scores["num_docs"])
        self._indptr = model.scores["indptr"]
        self._data = model.scores["data"]
        self._doc_terms: np.ndarray | None = None  # each document's distinct term ids, one after another
        self._doc_starts: np.ndarray | None = None  # where each document's ids start (n + 1 offsets)
        self._empty = model.vocab_dict.get("")  # the stand-in term of a document without any (None: no such one)

    @classmethod
    def build(cls, documents: Sequence[str], analyzer: Analyzer) -> BM25:
        """Score every document's terms (bm25s stores the scores eagerly)."""
        import bm25s

        model = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        model.index([analyzer.terms(d) or [""] for d in documents], show_progress=False)
        return cls(model, analyzer)

    def save(self, folder: Path) -> list[str]:
        """Write the postings into `folder`; the names of the files written."""
        self.model.save(str(folder), show_progress=False)
        return [name for name in self.FILES if (folder / name).exists()]

    @classmethod
    def load(cls, folder: Path, analyzer: Analyzer, mmap: bool = True) -> BM25:
        """The postings saved in `folder`, memory-mapped by default."""
        import bm25s

        bm25 = cls(bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False), analyzer)
        if (folder / "terms.doc.index.i32").exists() and (folder / "starts.doc.index.npy").exists():
            # plain arrays over the maps: slicing a np.memmap costs more than the slice
            bm25._doc_terms = np.asarray(mapped_rows(folder / "terms.doc.index.i32", np.int32, random=True))
            bm25._doc_starts = np.load(folder / "starts.doc.index.npy")
        return bm25

    def term_set(self, doc: int) -> frozenset[int] | None:
        """The distinct terms of document `doc` as term ids (the same set as its text's `Analyzer.terms`, so
        overlaps between documents come out the same without analysing their texts again); None for a version
        written before they were kept."""
        if self._doc_terms is None or self._doc_starts is None:
            return None
        ids = frozenset(self._doc_terms[int(self._doc_starts[doc]) : int(self._doc_starts[doc + 1])].tolist())
        return frozenset() if self._empty is not None and ids == {self._empty} else ids

    def _ids(self, query: str) -> list[int]:
        vocab = self.model.vocab_dict
        return sorted({vocab[t] for t in self.analyzer.terms(query) if t and t in vocab})

    def _df(self, term_id: int) -> int:
        return int(self._indptr[term_id + 1] - self._indptr[term_id])

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def idf(self, term: str) -> float:
        """How rare a term is among the documents (a term no document holds is the rarest of all)."""
        term_id = self.model.vocab_dict.get(term) if term else None
        return self._idf(self._df(term_id) if term_id is not None else 0)

    def ceiling(self, query: str) -> float:
        """An upper bound of any document's score: each known query term at its best weight in the corpus.

        Dividing by it gives the share of the query's weight a document matches, so a document that shares
        only a number with a long question stays low, where dividing by the best score would lift it to 1.
        """
        best = 0.0
        for i in self._ids(query):
            a, b = int(self._indptr[i]), int(self._indptr[i + 1])
            if b > a:
                best += float(np.max(self._data[a:b]))
        return best

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for the query (0 where no term matches)."""
        ids = self._ids(query)
        if not ids or self.n == 0:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self.model.get_scores_from_ids(ids), dtype=np.float32)


class BM25Writer:
    """Builds the postings `BM25.build` would, document batch by document batch, in bounded memory: the term
    counts go to scratch files in `folder`, and `close` lays them out as bm25s's CSC arrays (a counting sort,
    one slice at a time) with bm25s's own Lucene formulas, so `BM25.load` reads the result. bm25s itself
    needs every document's terms as Python lists at once (about 10 GB for a million chunks)."""

    SLICE = 1 << 22  # postings sorted into place per step

    def __init__(self, folder: Path, analyzer: Analyzer, k1: float = 1.2, b: float = 0.75) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.analyzer = analyzer
        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        self._terms = (folder / "terms.tmp").open("wb")  # int32 term id per posting
        self._counts = (folder / "counts.tmp").open("wb")  # int32 term frequency per posting
        self._lengths: list[np.ndarray] = []  # terms per document
        self._per_doc: list[np.ndarray] = []  # postings per document
        self.n = 0

    def add(self, documents: Sequence[str]) -> None:
        """The next documents, in order."""
        lengths: list[int] = []
        per_doc: list[int] = []
        terms: list[int] = []
        counts: list[int] = []
        for text in documents:
            found = self.analyzer.terms(text) or [""]
            tally: dict[int, int] = {}
            for t in found:
                i = self.vocab.setdefault(t, len(self.vocab))
                tally[i] = tally.get(i, 0) + 1
            lengths.append(len(found))
            per_doc.append(len(tally))
            terms += tally.keys()
            counts += tally.values()
        self._terms.write(np.asarray(terms, dtype=np.int32).tobytes())
        self._counts.write(np.asarray(counts, dtype=np.int32).tobytes())
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self._per_doc.append(np.asarray(per_doc, dtype=np.int64))
        self.n += len(documents)

    def close(self) -> list[str]:
        """Write the postings (bm25s's file names); the names of the files written."""
        import bm25s
        from bm25s.scoring import _score_idf_lucene, _score_tfc_lucene

        self._terms.close()
        self._counts.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        per_doc = np.concatenate(self._per_doc) if self._per_doc else np.zeros(0, np.int64)
        terms = mapped_rows(self.folder / "terms.tmp", np.int32)
        counts = mapped_rows(self.folder / "counts.tmp", np.int32)
        ends = np.cumsum(per_doc)  # a document's postings end where the next one's start
        df = np.zeros(len(self.vocab), dtype=np.int64)
        for a in range(0, len(terms), self.SLICE):
            df += np.bincount(terms[a : a + self.SLICE], minlength=len(self.vocab))
        idf = np.array([_score_idf_lucene(int(d), N=self.n) for d in df], dtype=np.float32)
        avg = float(lengths.mean()) if self.n else 1.0
        indptr = np.zeros(len(self.vocab) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        data = np.lib.format.open_memmap(self.folder / "data.csc.index.npy", "w+", np.float32, (len(terms),))
        indices = np.lib.format.open_memmap(self.folder / "indices.csc.index.npy", "w+", np.int32, (len(terms),))
        free = indptr[:-1].copy()  # next free slot of each term's postings
        for a in range(0, len(terms), self.SLICE):
            t = np.asarray(terms[a : a + self.SLICE])
            d = np.searchsorted(ends, np.arange(a, a + len(t)), side="right").astype(np.int32)
            tf = np.asarray(counts[a : a + self.SLICE]).astype(np.float32)
            score = idf[t] * _score_tfc_lucene(tf, lengths[d], avg, self.k1, self.b)
            order = np.argsort(t, kind="stable")  # documents stay in order within a term
            ts = t[order]
            starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
            runs = np.diff(np.r_[starts, len(ts)])
            slot = free[ts] + (np.arange(len(ts)) - np.repeat(starts, runs))
            indices[slot] = d[order]
            data[slot] = score[order]
            free[ts[starts]] += runs
        data.flush()
        indices.flush()
        del data, indices, terms, counts
        (self.folder / "terms.tmp").replace(self.folder / "terms.doc.index.i32")  # kept for `BM25.term_set`
        np.save(self.folder / "starts.doc.index.npy", np.r_[np.zeros(1, np.int64), ends])
        (self.folder / "counts.tmp").unlink()
        np.save(self.folder / "indptr.csc.index.npy", indptr)
        (self.folder / "vocab.index.json").write_text(json.dumps(self.vocab, ensure_ascii=False))
        params = {"k1": self.k1, "b": self.b, "delta": 0.5, "method": "lucene", "idf_method": "lucene"}
        params |= {"dtype": "float32", "int_dtype": "int32", "num_docs": self.n, "version": bm25s.__version__}
        (self.folder / "params.index.json").write_text(json.dumps(params | {"backend": "numpy"}, indent=4))
        return [name for name in BM25.FILES if (self.folder / name).exists()]
