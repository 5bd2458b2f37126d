"""The lexical leg: Arabic-aware normalization, light stemming and BM25 over chunks."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError
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
    """Folded words of a text, stop words and one-letter tokens dropped."""
    return [w for w in _WORD.findall(fold(text)) if len(w) > 1 and w not in STOPWORDS]


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
        return [g for w in words(text) for g in _ngrams(w)]


# Words repeat (Zipf): analysing each distinct word once makes a large build's lexical pass several times faster.
_stem = lru_cache(maxsize=1 << 18)(stem)


@lru_cache(maxsize=1 << 18)
def _ngrams(word: str) -> tuple[str, ...]:
    return tuple(ngrams(word))


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
    )

    def __init__(self, model: Any, analyzer: Analyzer) -> None:
        self.model = model
        self.analyzer = analyzer
        self.n = int(model.scores["num_docs"])
        self._indptr = model.scores["indptr"]
        self._data = model.scores["data"]

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

        return cls(bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False), analyzer)

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
