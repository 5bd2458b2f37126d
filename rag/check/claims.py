"""Checking a claim against the archive: supported, contradicted, not found, or mixed when the articles disagree.

The claim is searched like a question, without its negation ("China has not sent weapons" looks for what the
articles say about sending weapons, whichever way they say it) and without the answer model's rendering. Every
sentence of the passages found that is close to it (cosine at least `floor`, and within `margin` of the closest) is
read with the sentences around it, by the citation verifier's checks and a word test:
- **for**: the sentence says what the claim says: every number the claim states is written there, every person and
  place it names is mentioned nearby, its content words are said in the sentence (Arabic: the verifier's letter
  test; English: each word's Arabic counterparts, found by the embedding model among the passages' words, see
  `_unsaid`), and the clause closest to the claim is negated (or denied) exactly when the claim is; a claim about
  what someone said needs a sentence the index attributes to them (the statements found at index time); a
  question never counts;
- **against**: it speaks of the same thing and says otherwise: a different figure of the same thing where the claim
  has one ("19 شخصا", not "12 people"), or the claim's words negated (or the claim's negation affirmed);
- otherwise it is only **closest**: it shares words with the claim but does not say it (a name missing, a word
  unsaid, a figure it never states); such a sentence never makes a claim supported.

The verdict is `supported` when sentences are for it and none against, `contradicted` when sentences are against
it and none for, `mixed` when both (the outlets, or one outlet's articles, disagree), `not found` when neither.
Copies of one sentence in several articles (wire copies) count once, with the others as "also reported by".
What this cannot see: who does what (a bag of words: "Mao Ning said China will send troops" against a sentence
where NATO members send them, beside one of Mao's); a claim that says the opposite in other words ("prices rose"
where the article says they fell) is `not found`, not `contradicted`; figures written in words (خمسين) are not
compared. Figures: docs/newsroom.md "Claim check".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from rag.answer.render import also_reported_by, where_published
from rag.answer.verify import CitationVerifier, affirmed, unheld_words, window
from rag.attribute.said import is_content, light_root, probe_vectors, speakers_of, word_vectors
from rag.errors import RagError
from rag.index.lexical import STOPWORDS
from rag.retrieve.retriever import Retriever
from rag.text.arabic import ascii_digits, detect_language, fold, for_embedding, has_arabic, numbers
from rag.text.names import GAZETTEER, NOT_NAMES, english_names
from rag.types import Article, Chunk, Filter

PASSAGES = 10  # passages searched for sentences close to the claim
FLOOR = 0.78  # a sentence this close to the claim (cosine) is about the same thing
MARGIN = 0.05  # ... when also within this of the closest sentence found
CLOSEST = 3  # sentences shown when nothing is for or against
CONFIDENT = 0.88  # an Arabic word this close to an English one (twice the cosine less its hubness) translates it
HELD_MARGIN = 0.05  # a sentence says such a word when one of its words is this close to the closest translation
TOLERANT = 0.86  # a sentence this close to the claim may leave one translated word unmatched (word vectors miss)
DROP = 0.02  # a word with no translation found whose removal brings the claim this much closer is not said

_WE = re.compile(r"(?:^|[\s\"“«(])(?:نحن|إننا|اننا|لقد\s+\w+نا|\w{2,}نا)(?=$|[\s،,.:؛\"”»)])|\b(?:we|our)\b", re.I)
# A denial negates what it reports ("نفت الصين أن تكون قد قدمت أسلحة" says China did not)
_DENIAL = re.compile(
    r"(?:^|[\s\"“«(])[وف]?(?:نفى|نفت|تنفي|ينفي|نفي|أنكر|أنكرت|تنكر|ينكر)(?=\s)|\b(?:denied|denies|deny)\b", re.I
)
_QUESTION = re.compile(r"[?؟]\s*[\"”»’']?\s*$|^\s*[\"“«]?\s*(?:هل|أين|متى|لماذا|كيف)\s")
_WORD = re.compile(r"[\u0621-\u064a]{2,}")

# English words that carry no claim of their own (Arabic says them with particles the word test cannot see)
_FUNCTION = frozenset(
    "until during after before since over under more than about into upon within also just only still already ago "
    "per percent".split()
)
# The units figures come in, English with their Arabic forms (folded): "20 percent" and "8 في المئة" compare.
_UNITS = {
    "percent": ("الميه", "بالميه", "%"),
    "million": ("مليون", "ملايين"),
    "billion": ("مليار", "مليارات"),
    "thousand": ("الف", "الاف"),
    "people": ("شخص", "شخصا", "اشخاص"),
    "dollars": ("دولار",),
    "dinars": ("دينار",),
    "hectares": ("هكتار",),
    "years": ("عام", "عاما", "سنوات", "سنه"),
}

# "Mao Ning said (that) …", "ذكرت الصين أن …": a claim about what someone said is checked against their statements
_EN_SPEAKER = re.compile(
    r"^\s*(?P<who>(?:the\s+)?[A-Z][\w'’.\-]*(?:\s+[\w'’.\-]+){0,5}?)\s+(?:has\s+|had\s+)?(?:said|says|told|tells|"
    r"stated|states|announced|warned|claimed|confirmed|added|stressed|denied|declared)\b"
)
_AR_SPEAKER = re.compile(
    r"^\s*(?:و)?(?:قال|قالت|ذكر|ذكرت|أكد|أكدت|أعلن|أعلنت|صرح|صرحت|أضاف|أضافت|حذر|حذرت|نفى|نفت)\s+"
    r"(?P<who>.+?)\s+(?:إن|أن|أنه|أنها|إنه|إنها|من|عن)(?=\s|$)"
)

VERDICTS = ("supported", "contradicted", "mixed", "not found")
VERDICT_TEXT = {  # what the page and the command line say first
    "supported": "Supported: the articles say it.",
    "contradicted": "Contradicted: the articles say otherwise.",
    "mixed": "Mixed: the articles disagree.",
    "not found": "Not found: the articles do not say it (nor the opposite).",
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One sentence of the archive read against the claim: its stance (for, against, closest), why, and where it
    was published."""

    stance: str  # "for" | "against" | "closest"
    sentence: str
    article_id: str
    chunk_id: str  # the passage it stands in (the page's link opens it)
    start: int
    end: int
    title: str
    outlet: str | None
    published: str | None
    url: str | None
    score: float  # cosine of the claim with the sentence
    reason: str = ""  # why it is against or only closest
    also: tuple[str, ...] = ()  # other articles carrying the same sentence (wire copies)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The checker's verdict on one claim, with the sentences for and against it (and the closest when none)."""

    claim: str
    verdict: str  # one of VERDICTS
    support: tuple[Evidence, ...]
    against: tuple[Evidence, ...]
    closest: tuple[Evidence, ...] = ()
    scope: Filter | None = None


@dataclass(frozen=True, slots=True)
class _Words:
    """An English claim's content words against the passages' Arabic words: for each word translated there (some
    Arabic word at least CONFIDENT close), its closeness to every passage word; for each other, the claim's vector
    without it (the removal test); and the words of its names."""

    vocabulary: dict[str, int]
    known: tuple[tuple[str, np.ndarray], ...] = ()
    unknown: tuple[tuple[str, np.ndarray], ...] = ()
    named: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Claim:
    """A claim as every sentence is read against it: its text, its vector (without its negation), its English
    words (None for an Arabic claim), and who it says said it with the index's names for them."""

    text: str
    vector: np.ndarray
    words: _Words | None
    speaker: str = ""
    said_by: frozenset[str] = frozenset()


_Candidate = tuple[float, Chunk, tuple[int, int], np.ndarray]  # cosine, its passage, sentence span, its vector


class ClaimChecker:
    """Checks claims against one index (see the module docstring)."""

    def __init__(
        self, retriever: Retriever, verifier: CitationVerifier, floor: float = FLOOR, margin: float = MARGIN
    ) -> None:
        # searched without the answer model's rendering: the claim's own vector finds Arabic sentences, and a
        # verdict must not depend on a 1.5B model's translation
        self.retriever = Retriever(retriever.index, retriever.embedder, retriever.weights)
        self.verifier = verifier
        self.floor = floor
        self.margin = margin

    def check(self, claim: str, scope: Filter | None = None) -> Verdict:
        """The verdict on one claim (only from the articles `scope` keeps)."""
        claim = " ".join(claim.split())
        if not claim:
            raise RagError('The claim is empty: write the statement to check, e.g. rag check "China sent weapons".')
        about = affirmed(claim) or claim
        query = self.retriever.query(about, scope)  # no rendering: its vector is the claim's own
        vector = query.vector
        index = self.retriever.index
        seen: dict[tuple[str, int], _Candidate] = {}
        texts = []
        for hit in self.retriever.search(query, PASSAGES):
            texts.append(hit.chunk.text)
            spans, vectors = index.units_of(hit.chunk)
            for span, v in zip(spans, vectors, strict=True):
                seen.setdefault((hit.chunk.article_id, span[0]), (float(v @ vector), hit.chunk, span, v))
        if not seen:
            return Verdict(claim, "not found", (), (), (), scope)
        ranked = sorted(seen.values(), key=lambda c: -c[0])
        speaker = claim_speaker(claim) or ""
        said_by = frozenset(speakers_of(self.retriever, speaker)) if speaker else frozenset()
        c = _Claim(claim, vector, self._words(claim, about, texts), speaker, said_by)
        best = ranked[0][0]
        close = [c for c in ranked if c[0] >= max(self.floor, best - self.margin)]
        read = _once([self._read(c, candidate) for candidate in close])
        support = tuple(e for e in read if e.stance == "for")
        against = tuple(e for e in read if e.stance == "against")
        if support and against:
            verdict = "mixed"
        elif support or against:
            verdict = "supported" if support else "contradicted"
        else:
            verdict = "not found"
        closest: tuple[Evidence, ...] = ()
        if verdict == "not found":
            nearest = _once([self._read(c, candidate) for candidate in ranked[:CLOSEST]])
            closest = tuple(e if e.stance == "closest" else replace(e, stance="closest") for e in nearest)
        return Verdict(claim, verdict, support, against, closest, scope)

    def _words(self, claim: str, about: str, texts: list[str]) -> _Words | None:
        """The content words of an English claim against the passages' Arabic words (the embedding model as a
        glossary, hub-corrected as in rag/attribute/said.py); None for an Arabic claim."""
        if detect_language(claim) != "en":
            return None
        found = [
            w for w in re.findall(r"[A-Za-z][A-Za-z'’\-]+", about) if w.lower() not in STOPWORDS | NOT_NAMES | _FUNCTION
        ]
        found = list(dict.fromkeys(re.sub(r"['’]s?$", "", w) for w in found))
        arabic = list(dict.fromkeys(w for t in texts for w in _words_of(t)))
        named = frozenset(w for n in english_names(claim) for w in n.text.split())
        if not found or not arabic:
            return _Words({}, named=named)
        embedder = self.retriever.embedder
        vectors = word_vectors(embedder, arabic)
        hubness = np.sort(vectors @ probe_vectors(embedder).T, axis=1)[:, -10:].mean(axis=1)
        known, unknown = [], []
        for word, cosines in zip(found, embedder.embed_queries(found) @ vectors.T, strict=True):
            scores = 2 * cosines - hubness
            if float(scores.max()) >= CONFIDENT:
                known.append((word, scores))
            elif word not in named:  # a name is checked as a name (by sound, or the gazetteer)
                unknown.append(word)
        dropped = [re.sub(rf"\b{re.escape(w)}\b", " ", about) for w in unknown]
        drop_vectors = list(embedder.embed_queries([for_embedding(d) for d in dropped])) if dropped else []
        vocabulary = {w: i for i, w in enumerate(arabic)}
        return _Words(vocabulary, tuple(known), tuple(zip(unknown, drop_vectors, strict=True)), named)

    def _read(self, c: _Claim, candidate: _Candidate) -> Evidence:
        """One sentence read against the claim: its stance and why, and where it was published."""
        score, chunk, span, sentence_vector = candidate
        article = self.retriever.index.articles[chunk.article_id]
        text = article.text
        sentence = text[span[0] : span[1]].strip()
        around = text[slice(*window(text, span))]  # a speaker is often named in the sentence before
        stance, reason = self._stance(c, sentence, around, article.title, float(score), sentence_vector)
        if stance != "closest" and _QUESTION.search(sentence):
            stance, reason = "closest", "it asks, it does not say"
        if stance != "closest" and c.said_by and not self._spoken(chunk.article_id, span, c.said_by):
            stance, reason = "closest", f"{c.speaker} is not the one who says it there"
        return Evidence(
            stance,
            sentence,
            chunk.article_id,
            chunk.id,
            span[0],
            span[1],
            article.title,
            article.outlet,
            article.published,
            article.url,
            round(score, 4),
            reason,
        )

    def _spoken(self, article_id: str, span: tuple[int, int], said_by: frozenset[str]) -> bool:
        """Whether the sentence at `span` is a statement of one of `said_by` (the statements found at index time)."""
        return any(
            st.speaker in said_by and st.start < span[1] and span[0] < st.end
            for st in self.retriever.index.records.statements_of(article_id)
        )

    def _stance(
        self, c: _Claim, sentence: str, around: str, title: str, score: float, sentence_vector: np.ndarray
    ) -> tuple[str, str]:
        """("for" | "against" | "closest", why) for one sentence (`around`: with its neighbours)."""
        claim, words = c.text, c.words
        if words is None:  # Arabic: every content word in the sentence, or (a speaker, a place) one just before
            unsaid = _arabic_unheld(claim, sentence, around)
        else:
            names = self.verifier.names
            mentioned = {w for n in english_names(claim) if names.mentions(n, around) for w in n.text.split()}
            unsaid = _unsaid(words, sentence, score, sentence_vector, mentioned)
        stated = numbers(claim)
        missing = stated - numbers(around)
        absent = self._absent(claim, around, title, words)
        if c.said_by and words is not None:
            # the speaker checked by the statements, what else the claim names is said in the sentence itself, but
            # the reported subject where the speaker says "we" ("Mao Ning said China …": «لقد سيطرنا»)
            spared = set(c.speaker.split())
            if _WE.search(sentence):
                spared |= set(_reported_subject(claim).split())
            absent += [
                n.text
                for n in self.verifier.names.missing_english(claim, sentence)
                if not spared & set(n.text.split()) and n.text not in absent
            ]
        if absent:
            return "closest", f"it does not mention {', '.join(absent)}"
        tolerated = int(score >= TOLERANT)
        # a figure of the same thing ("19 شخصا" where the claim has "12 people"): the outlets may say it in other
        # words ("ارتفع عدد الضحايا" for "أودت بحياة"), so two of the claim's words may go unsaid
        rival = [
            (o, m)
            for m in sorted(missing)
            for o in sorted(numbers(sentence) - stated)
            if _same_unit(claim, m, sentence, o, words)
        ]
        if rival and len(unsaid) <= 2 + tolerated:
            return "against", "; ".join(f"it states {o}, not {m}" for o, m in rival[:2])
        if len(unsaid) > tolerated:
            return "closest", f"it does not say {', '.join(unsaid)}"
        if missing:
            other = numbers(sentence) - stated
            if other:
                return "against", f"it states {', '.join(sorted(other))}, not {', '.join(sorted(missing))}"
            return "closest", f"it does not state {', '.join(sorted(missing))}"
        return self._polarity(claim, sentence, c.vector)

    def _polarity(self, claim: str, sentence: str, vector: np.ndarray) -> tuple[str, str]:
        """ "for" when the sentence's clause closest to the claim is negated (or denied) exactly when the claim is,
        else "against" and why."""
        flipped = self.verifier.polarity(claim, sentence, vector).replace("the passage ", "it ", 1)
        denied = bool(_DENIAL.search(sentence)) and not _DENIAL.search(claim)  # "نفت الصين … أن بكين تمد روسيا"
        if denied and not flipped:
            return "against", "it denies it"
        if flipped and not denied:  # "it negates it: «clause»": the clause only when it is not the whole sentence
            said, _, clause = flipped.partition(": «")
            return "against", said if clause.rstrip("»").strip() == sentence.strip() else flipped
        return "for", ""

    def _absent(self, claim: str, around: str, title: str, words: _Words | None) -> list[str]:
        """What an English claim names that the window does not mention (an Arabic claim's names are among its
        words). A name that is not a place of the gazetteer and not matched by sound counts as mentioned when one of
        its words is translated in the window or the article's title ("Schools in the Green Valley": الوادي الأخضر
        in the title of the article whose sentence names the schools)."""
        if words is None:
            return []
        known = dict(words.known)
        where = [w for w in _words_of(f"{title}\n{around}") if w in words.vocabulary]
        out = []
        for name in self.verifier.names.missing_english(claim, around):
            translated = [known[w] for w in name.text.split() if w in known]
            if name.key in GAZETTEER or not any(_said(scores, words, where) for scores in translated):
                out.append(name.text)
        return out


def _said(scores: np.ndarray, words: _Words, present: list[str]) -> bool:
    """Whether one of the `present` Arabic words is within HELD_MARGIN of an English word's closest counterpart."""
    at = [words.vocabulary[w] for w in present]
    return bool(at) and float(scores[at].max()) >= float(scores.max()) - HELD_MARGIN


def _unsaid(words: _Words, sentence: str, score: float, sentence_vector: np.ndarray, mentioned: set[str]) -> list[str]:
    """The English claim's words the sentence does not say. A translated word is said when the sentence holds a word
    within HELD_MARGIN of its closest counterpart among all the passages' words (NEAR_MARGIN when the sentence is
    less close to the claim than TOLERANT: more must be said word for word; an English sentence: a word of the
    same stem); a word without a translation, unless taking it out of the claim brings the claim DROP closer to the
    sentence. Words of a name mentioned nearby are left to the name check."""
    english = detect_language(sentence) == "en"
    stems = {w.lower()[:5] for w in re.findall(r"[A-Za-z]+", sentence)}
    present = [words.vocabulary[w] for w in _words_of(sentence) if w in words.vocabulary]
    if english:
        every = [w for w, _ in words.known] + [w for w, _ in words.unknown]
        return [w for w in every if w not in mentioned and w.lower()[:5] not in stems]
    out = []
    for word, scores in words.known:
        if word not in mentioned and (not present or float(scores[present].max()) < float(scores.max()) - HELD_MARGIN):
            out.append(word)
    out += [w for w, v in words.unknown if w not in mentioned and float(v @ sentence_vector) - score >= DROP]
    return out


def _unit(text: str, number: str) -> str | None:
    """The word after a number in a text ("12 شخصا" -> شخصا, "15 في المئة" -> المئة, "20 percent" -> percent)."""
    plain = re.sub(r"(?<=\d),(?=\d{3})", "", ascii_digits(text))
    m = re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])\s+(?:(?:في|of|per)\s+)?([^\s\d.,،:;؛\"“”«»()]+)", plain)
    return m.group(1) if m else None


def _same_unit(claim: str, ours: str, sentence: str, theirs: str, words: _Words | None) -> bool:
    """Whether the claim's number `ours` and the sentence's `theirs` count the same thing: the words after them are
    one word (Arabic: in letters or stem; English: the same stem) or translate each other (e5, as for the claim's
    other words)."""
    a, b = _unit(claim, ours), _unit(sentence, theirs)
    if not a or not b:
        return False
    if has_arabic(a) and has_arabic(b):
        return not unheld_words(a, b) or (light_root(a) != "" and light_root(a) == light_root(b))
    if not has_arabic(a) and not has_arabic(b):
        return a.lower()[:5] == b.lower()[:5]
    if fold(b) in _UNITS.get(a.lower(), ()):
        return True
    if words is None or b not in words.vocabulary:
        return False
    scores = dict(words.known).get(re.sub(r"['’]s?$", "", a))
    return scores is not None and float(scores[words.vocabulary[b]]) >= float(scores.max()) - HELD_MARGIN


def _words_of(text: str) -> list[str]:
    """A text's Arabic content words of two letters or more (سد، نهر), as written."""
    return list(dict.fromkeys(w for w in _WORD.findall(for_embedding(text)) if is_content(w)))


def _arabic_unheld(claim: str, sentence: str, around: str) -> list[str]:
    """An Arabic claim's content words that the sentence does not hold, but one held by the sentences around it
    (the speaker named in the sentence before)."""
    missing = unheld_words(claim, sentence)
    nearby = [w for w in missing if not unheld_words(w, around)]
    return [w for w in missing if w not in nearby] + nearby[2:]


def _once(read: list[Evidence]) -> list[Evidence]:
    """One piece of evidence per sentence text: copies (wire copies) become the first one's `also`."""
    kept: dict[tuple[str, str], Evidence] = {}
    for e in read:
        key = (e.stance, fold(" ".join(e.sentence.split())))
        if key in kept:
            kept[key] = replace(kept[key], also=(*kept[key].also, e.article_id))
        else:
            kept[key] = e
    return list(kept.values())


def claim_speaker(claim: str) -> str | None:
    """Who a claim says said it ("Mao Ning" in "Mao Ning said China …", الصين in "ذكرت الصين أنها …"), or None."""
    m = _EN_SPEAKER.match(claim) or _AR_SPEAKER.match(claim)
    if m is None:
        return None
    who = m.group("who").strip()
    if has_arabic(who):
        return who if len(who.split()) <= 4 else None
    named = english_names(who)  # "Union leader Youssef Omran": the name; "China": the country
    return named[-1].text if named else None


def _reported_subject(claim: str) -> str:
    """The first name after an English claim's reporting verb ("China" in "Mao Ning said China has …"), or ""."""
    m = _EN_SPEAKER.match(claim)
    if m is None:
        return ""
    named = english_names(re.sub(r"^\s*(?:that\s+)?", "", claim[m.end() :]))
    return named[0].text if named else ""


def sections(v: Verdict) -> list[tuple[str, tuple[Evidence, ...]]]:
    """The verdict's sentences as every front end shows them: for, against, and the closest (not evidence)."""
    parts = (("For", v.support), ("Against", v.against), ("Closest (not evidence)", v.closest))
    return [(title, rows) for title, rows in parts if rows]


def published_line(e: Evidence, articles: Mapping[str, Article]) -> str:
    """date · outlet · title of a sentence's article, and the outlets that carried the same sentence."""
    others = also_reported_by(articles.get(e.article_id), e.also, articles)
    also = f" · also reported by {', '.join(others)}" if others else ""
    return where_published(e.published, e.outlet, e.title) + also


def checker_for(retriever: Retriever) -> ClaimChecker:
    """The claim checker over the retriever's index and model."""
    return ClaimChecker(retriever, CitationVerifier(retriever.index, retriever.embedder))


def verdict_json(v: Verdict) -> dict[str, object]:
    """`rag check --json`: the verdict and the sentences for and against it (the closest when not found)."""

    def one(e: Evidence) -> dict[str, object]:
        return {
            "sentence": e.sentence,
            "article": e.article_id,
            "chunk": e.chunk_id,
            "start": e.start,
            "end": e.end,
            "title": e.title,
            "outlet": e.outlet,
            "published": e.published,
            "url": e.url,
            "score": e.score,
            "reason": e.reason,
            "also": list(e.also),
        }

    return {
        "claim": v.claim,
        "verdict": v.verdict,
        "for": [one(e) for e in v.support],
        "against": [one(e) for e in v.against],
        "closest": [one(e) for e in v.closest],
    }
