"""Verifying citations: does the cited passage hold a sentence that says what the answer's sentence says?

Each answer sentence with [n] markers is a claim. It is embedded (as a query, across languages) and compared
with the sentences of passage n that the answer model read (all of them when it read the whole passage). A
citation is supported when its best sentence
- scores at least `floor` (cosine), and
- is within `margin` of the best sentence anywhere in the index (the cited passage is where the claim is
  best found, not a weaker neighbour), and
- says what the claim says, not its opposite, in the words around it (the "window": the sentence with the
  sentences just before and after it in the article):
  - polarity: the claim is negated ("does not", لم، ليس ...) exactly when the clause of the sentence closest
    to it is (the sentence is chosen with the negation taken out of the claim, so that "China does not export
    dual-use goods" is compared with the sentence about dual-use exports, not with another negated one);
  - numbers: every number or year the claim states is written in the window;
  - names: every person or place the claim names is mentioned in the window (across scripts, rag/text/names.py);
    for an Arabic claim every content word shares its letters with the window.
The best sentence is the citation's quote, and the one the page highlights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag.embed.embedder import Embedder
from rag.index.lexical import STOPWORDS
from rag.index.store import VectorIndex
from rag.text.arabic import detect_language, fold, for_embedding, has_arabic, numbers
from rag.text.names import Name, NameMatcher, bare_word, english_names
from rag.text.sentences import article_sentences, split_sentences
from rag.types import Chunk

_MARKER = re.compile(r"\[(\d+)\]")

# Negations, English and Arabic (folded; "الطائرات بدون طيار", drones, is not one).
_NEGATION_EN = re.compile(r"\b(not|never|no|none|nor|neither|nothing|nobody|without|cannot)\b|n['’]t\b", re.I)
_PARTICLES_AR = "لا|لم|لن|ليس|ليست|ليسوا|لست|لسنا|عدم"  # taken out by `affirmed`; غير, بدون, دون stay there
_NEGATION_AR = re.compile(rf"(^|[\s\"“”«(])[وف]?({_PARTICLES_AR}|غير|بدون|دون)(?=$|[\s،,.:؛\"”»)])")
_IDIOMS = re.compile(r"بدون طيار|دون طيار")
_CLAUSE_END = re.compile(r"\s*[،,;؛:]\s*|\s*[\"“”«»]\s*")
_AR_WORD = re.compile(r"[\u0621-\u064a]{4,}")


def negated(text: str) -> bool:
    """True when the text negates what it says (English or Arabic)."""
    folded = _IDIOMS.sub(" ", fold(text))
    return bool(_NEGATION_EN.search(text) or _NEGATION_AR.search(f" {folded} "))


def affirmed(text: str) -> str:
    """The text with its negation words taken out: what it is about, whichever way it says it."""
    out = _NEGATION_EN.sub(" ", text)
    out = re.sub(rf"(^|\s)[وف]?({_PARTICLES_AR})(?=\s|$)", " ", out)
    return re.sub(r"\s+", " ", out).strip()


def clauses(text: str) -> list[str]:
    """A sentence cut at commas, semicolons, colons and quotation marks (clauses of at least three words)."""
    return [c for c in _CLAUSE_END.split(text) if len(c.split()) >= 3] or [text]


def _grams(word: str) -> set[str]:
    return {word[i : i + 4] for i in range(len(word) - 3)}


def _skeleton(word: str) -> str:
    return re.sub("[اويه]", "", word)


def unheld_words(claim: str, window: str) -> list[str]:
    """The content words of an Arabic claim the window does not hold: neither a four-letter run in common with
    one of its words nor the same consonants (تصدر / تصدير). A name or a thing the window never mentions."""
    words = {bare_word(w) for w in re.findall(r"[\u0621-\u064a]{2,}", fold(window))}
    grams = set().union(*(_grams(w) for w in words)) if words else set()
    skeletons = {_skeleton(w) for w in words}
    out = []
    for w in _AR_WORD.findall(fold(claim)):
        b = bare_word(w)
        if w in STOPWORDS or b in STOPWORDS or len(b) < 3:
            continue
        if not (_grams(b) & grams or _skeleton(b) in skeletons):
            out.append(w)
    return out


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
    for piece in filter(None, (p.strip() for p in split_sentences(text))):
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

    def __init__(
        self,
        index: VectorIndex,
        embedder: Embedder,
        floor: float = 0.75,
        margin: float = 0.04,
        names: NameMatcher | None = None,
        agreement_weight: float = 0.05,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.floor = floor
        self.margin = margin
        self.names = names or NameMatcher()
        self.agreement_weight = agreement_weight

    def verify(
        self, text: str, chunks: dict[int, Chunk], read: dict[int, tuple[tuple[int, int], ...]] | None = None
    ) -> dict[int, Support]:
        """Support of each cited passage number (keys of `chunks`) by the claims of `text` that cite it; `read`
        holds, per number, the article spans of the sentences the model was shown (none = the whole passage)."""
        claims = [c for c in split_claims(text) if any(n in chunks for n in c.cites)]
        if not claims:
            return {}
        # Each claim is placed by what it is about: its words without their negation.
        vectors = self.embedder.embed_queries([for_embedding(affirmed(c.text) or c.text) for c in claims])
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
        text = self.index.articles[chunk.article_id].text
        # e5 tells apart the sentences of one passage by hundredths; what the claim names, counts and (in
        # Arabic) words decides between sentences that close.
        windows = [text[slice(*window(text, span))] for span in spans]
        agreement = [self._agreement(claim.text, text[a:b], w) for (a, b), w in zip(spans, windows, strict=True)]
        chosen = scores + self.agreement_weight * np.array(agreement)
        i = int(chosen.argmax())
        score = float(scores[i])
        a, b = spans[i]
        missing = numbers(claim.text) - numbers(windows[i])
        if missing:  # the most specific reason first: a wrong figure is the commonest invented detail
            reason = f"the passage does not state {', '.join(sorted(missing))}"
        elif score < self.floor:
            reason = f"no sentence of the passage is close to the claim ({score:.2f} < {self.floor:.2f})"
        elif score < anywhere - self.margin:
            reason = f"another passage matches the claim better ({anywhere:.2f} vs {score:.2f})"
        else:
            reason = self._contradiction(claim.text, text, (a, b), windows[i], vector)
        return Support(n=n, supported=not reason, score=score, quote=text[a:b].strip(), span=(a, b), reason=reason)

    def _agreement(self, claim: str, sentence: str, window: str) -> float:
        """Share of what the claim counts and (in Arabic) says in words that the sentence holds, and of what it
        names that the window holds (a speaker is often named in the sentence before)."""
        nums = numbers(claim)
        names = english_names(claim)
        words = _AR_WORD.findall(fold(claim)) if detect_language(claim) == "ar" else []
        total = len(nums) + len(names) + len(words)
        if not total:
            return 0.0
        held = len(nums & numbers(sentence)) + sum(self.names.mentions(n, window) for n in names)
        held += len(words) - len(unheld_words(claim, sentence)) if words else 0
        return held / total

    def _contradiction(self, claim: str, article: str, span: tuple[int, int], window: str, vector) -> str:  # type: ignore[no-untyped-def]
        """Why the sentence at `span` (its `window`: with its neighbours) does not say what the claim says ("" when
        it does); a missing number is reported by the caller, before the scores."""
        absent = self.absent(claim, window)
        if absent:
            return f"the passage does not mention {', '.join(dict.fromkeys(absent))}"
        return self.polarity(claim, article[span[0] : span[1]], vector)

    def absent(self, claim: str, window: str) -> list[str]:
        """What the claim names (and, in Arabic, says in words) that the window never mentions."""
        out = [m.text for m in self.names.missing_english(claim, window)]
        if detect_language(claim) == "ar":
            out += unheld_words(claim, window)
        return list(dict.fromkeys(out))

    def polarity(self, claim: str, sentence: str, vector) -> str:  # type: ignore[no-untyped-def]
        """ "" when the sentence's clause closest to the claim (`vector`: the claim without its negation) is
        negated exactly when the claim is; else why not ("the passage negates it: «…»")."""
        parts = clauses(sentence)
        clause = parts[0]
        if len(parts) > 1:
            clause_vectors = self.embedder.embed_documents([for_embedding(c) for c in parts])
            clause = parts[int((clause_vectors @ vector).argmax())]
        if negated(claim) != negated(clause):
            said = "negates" if negated(clause) else "affirms"
            return f"the passage {said} it: «{clause.strip()}»"
        return ""


def window(article: str, span: tuple[int, int]) -> tuple[int, int]:
    """The article span of the sentence holding `span` with the sentences just before and after it."""
    sentences = article_sentences(article)
    at = [k for k, (a, b) in enumerate(sentences) if a <= span[0] < b or span[0] <= a < span[1]]
    if not at:
        return span
    lo, hi = max(at[0] - 1, 0), min(at[-1] + 1, len(sentences) - 1)
    return min(sentences[lo][0], span[0]), max(sentences[hi][1], span[1])


def outlets_named(text: str, outlets: Iterable[str], by_sound: bool = False) -> list[str]:
    """The outlets (of the index) a text names: a Latin name as whole words, any case ("Al Jazeera", "BBC"); an
    Arabic one folded ("إذاعة الساحل"); with `by_sound`, a Latin name (not an acronym) written in Arabic too
    ("الجزيرة" for Al Jazeera). An Arabic outlet named in English ("Sahel Radio") is not recognised."""
    folded = " ".join(fold(text).split())
    arabic = has_arabic(text)
    matcher = NameMatcher()
    named = []
    for outlet in outlets:
        if not outlet.strip():
            continue
        if has_arabic(outlet):
            if " ".join(fold(outlet).split()) in folded:
                named.append(outlet)
        elif re.search(rf"(?<![A-Za-z]){re.escape(outlet)}(?![A-Za-z])", text, re.IGNORECASE):
            named.append(outlet)
        elif by_sound and arabic and not outlet.isupper() and matcher.mentions(Name(outlet, outlet.lower()), text):
            named.append(outlet)
    return named


def misattributed(text: str, carried: Mapping[int, Sequence[str]], outlets: Iterable[str]) -> dict[int, str]:
    """Why a citation's passage does not carry what the answer attributes to an outlet: for every sentence of
    `text` that names one of `outlets` ("According to the BBC, … [2]"), each passage it cites must come from one of
    the outlets it names (`carried`: the outlets of the passage's article and of its copies)."""
    known = list(outlets)
    reasons: dict[int, str] = {}
    for claim in split_claims(text):
        named = outlets_named(claim.text, known)
        if not named:
            continue
        for n in claim.cites:
            own = [o for o in carried.get(n, ()) if o]
            if n in carried and not set(named) & set(own):
                source = ", ".join(own) if own else "an article of no known outlet"
                reasons.setdefault(
                    n, f"the answer attributes it to {', '.join(named)}, but the passage is from {source}"
                )
    return reasons
