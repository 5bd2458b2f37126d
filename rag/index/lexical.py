"""The lexical leg: Arabic-aware normalization, light stemming and BM25 over chunks."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

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
            return [stem(w) for w in words(text)]
        return [g for w in words(text) for g in ngrams(w)]


class BM25:
    """Okapi BM25 over a fixed list of documents (rebuilt with the index; a few ms per thousand chunks)."""

    def __init__(self, documents: Sequence[str], analyzer: Analyzer, k1: float = 1.2, b: float = 0.75) -> None:
        self.analyzer = analyzer
        counts = [Counter(analyzer.terms(d)) for d in documents]
        self.n = len(counts)
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float32)
        avg = float(lengths.mean()) if self.n and lengths.mean() > 0 else 1.0
        norm = k1 * (1 - b + b * lengths / avg)
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for doc, c in enumerate(counts):
            for term, tf in c.items():
                ids, weights = postings.setdefault(term, ([], []))
                ids.append(doc)
                weights.append(tf * (k1 + 1) / (tf + norm[doc]))
        self._postings = {
            t: (np.array(ids, dtype=np.int64), np.array(ws, dtype=np.float32) * self._idf(len(ids)))
            for t, (ids, ws) in postings.items()
        }

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def idf(self, term: str) -> float:
        """How rare a term is among the documents (a term no document holds is the rarest of all)."""
        hit = self._postings.get(term)
        return self._idf(len(hit[0]) if hit is not None else 0)

    def ceiling(self, query: str) -> float:
        """An upper bound of any document's score: each known query term at its best weight in the corpus.

        Dividing by it gives the share of the query's weight a document matches, so a document that shares
        only a number with a long question stays low, where dividing by the best score would lift it to 1.
        """
        return float(sum(self._postings[t][1].max() for t in set(self.analyzer.terms(query)) if t in self._postings))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for the query (0 where no term matches)."""
        out = np.zeros(self.n, dtype=np.float32)
        for term in set(self.analyzer.terms(query)):
            hit = self._postings.get(term)
            if hit is not None:
                out[hit[0]] += hit[1]
        return out
