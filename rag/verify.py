"""Verifying citations: does the cited passage hold a sentence that says what the answer's sentence says?

Each answer sentence with [n] markers is a claim. It is embedded (as a query, across languages) and compared
with the sentences of passage n that the answer model read (all of them when it read the whole passage). A
citation is supported when its best sentence
- scores at least `floor` (cosine), and
- is within `margin` of the best sentence anywhere in the index (the cited passage is where the claim is
  best found, not a weaker neighbour), and
- holds every number the claim states (a wrong figure is the commonest invented detail).
The best sentence is the citation's quote, and the one the page highlights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .embedding import Embedder
from .normalize import for_embedding
from .store import VectorIndex
from .text import numbers
from .types import Chunk

_SENTENCE_END = re.compile(r"(?<=[.!?؟。])\s+|\n+")
_MARKER = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Claim:
    """One sentence of an answer and the passage numbers it cites."""

    text: str  # without its [n] markers
    cites: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Support:
    """How well passage n supports the claims that cite it."""

    n: int
    supported: bool
    score: float  # cosine of the best claim with its best sentence in the passage
    quote: str  # that sentence
    span: tuple[int, int]  # its article offsets
    reason: str = ""  # why it is not supported


def split_claims(text: str) -> list[Claim]:
    """The answer's sentences with their citation numbers; a stray "[2]." after a full stop joins the sentence
    before it."""
    claims: list[Claim] = []
    for piece in filter(None, (p.strip() for p in _SENTENCE_END.split(text))):
        cites = tuple(dict.fromkeys(int(n) for n in _MARKER.findall(piece)))
        bare = _MARKER.sub("", piece).strip()
        if not re.search(r"\w", bare) and claims:
            last = claims[-1]
            claims[-1] = Claim(last.text, tuple(dict.fromkeys(last.cites + cites)))
        elif re.search(r"\w", bare):
            claims.append(Claim(re.sub(r"\s+([.,،؟!])", r"\1", bare), cites))
    return claims


class CitationVerifier:
    """Checks every [n] of an answer against passage n (see the module docstring)."""

    def __init__(self, index: VectorIndex, embedder: Embedder, floor: float = 0.75, margin: float = 0.04) -> None:
        self.index = index
        self.embedder = embedder
        self.floor = floor
        self.margin = margin

    def verify(
        self, text: str, chunks: dict[int, Chunk], read: dict[int, tuple[tuple[int, int], ...]] | None = None
    ) -> dict[int, Support]:
        """Support of each cited passage number (keys of `chunks`) by the claims of `text` that cite it; `read`
        holds, per number, the article spans of the sentences the model was shown (none = the whole passage)."""
        claims = [c for c in split_claims(text) if any(n in chunks for n in c.cites)]
        if not claims:
            return {}
        vectors = self.embedder.embed_queries([for_embedding(c.text) for c in claims])
        best: dict[int, Support] = {}
        for claim, vector in zip(claims, vectors, strict=True):
            anywhere = self.index.best_unit_score(vector)
            for n in claim.cites:
                if n not in chunks:
                    continue
                support = self._check(n, chunks[n], (read or {}).get(n, ()), claim, vector, anywhere)
                if n not in best or (support.supported, support.score) > (best[n].supported, best[n].score):
                    best[n] = support
        return best

    def _check(  # type: ignore[no-untyped-def]
        self, n: int, chunk: Chunk, read: tuple[tuple[int, int], ...], claim: Claim, vector, anywhere: float
    ) -> Support:
        spans, vectors = self.index.units_of(chunk)
        shown = [i for i, span in enumerate(spans) if span in read]
        if shown:  # only what the model read can support what it wrote
            spans, vectors = tuple(spans[i] for i in shown), vectors[shown]
        scores = vectors @ vector
        i = int(scores.argmax())
        score = float(scores[i])
        text = self.index.articles[chunk.article_id].text
        a, b = spans[i]
        missing = numbers(claim.text) - numbers(chunk.text)
        if missing:
            reason = f"the passage does not state {', '.join(sorted(missing))}"
        elif score < self.floor:
            reason = f"no sentence of the passage is close to the claim ({score:.2f} < {self.floor:.2f})"
        elif score < anywhere - self.margin:
            reason = f"another passage matches the claim better ({anywhere:.2f} vs {score:.2f})"
        else:
            reason = ""
        return Support(n=n, supported=not reason, score=score, quote=text[a:b].strip(), span=(a, b), reason=reason)
