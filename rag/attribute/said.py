"""Who said what, when: one person's statements as a time line, from the statements found at index time.

A person asked for in English or Arabic is matched to the speakers the index holds: Arabic by its words (every
word of the shorter name in the longer, spelling variants by sound: سيرغي / سيرجي), English by sound
("Mao Ning" / ماو نينغ, "Patrushev" / نيكولاي باتروشيف) or, for countries and bodies, by the gazetteer (China /
الصين, the Kremlin / الكرملين); when nothing matches, the English name's Arabic rendering is tried. With a topic
(ABOUT), only the statements close to it are kept: each statement's sentence is compared with the topic (and its
Arabic rendering) by the embedding model; those within `margin` of the closest and above `floor` are kept. The
filters (dates, outlets) apply. The time line runs by publication date (undated articles last), then by article
and place in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.answer.verify import unheld_words
from rag.embed.embedder import Embedder
from rag.errors import RagError
from rag.index.lexical import STOPWORDS
from rag.retrieve.retriever import Retriever
from rag.text.arabic import ARABIC_WORD, detect_language, fold, for_embedding, has_arabic
from rag.text.names import (
    GAZETTEER,
    NOT_NAMES,
    Name,
    NameMatcher,
    arabic_sound,
    bare_word,
    distance,
    english_names,
    latin_sound,
    places_in,
)
from rag.types import Filter, Statement

WORD_MARGIN = 0.01  # an English word's Arabic counterparts: this close to the closest (see _glossary)
GLOSSARY_PASSAGES = 10  # passages the topic retrieves, whose words join the person's as candidates
MAX_WORDS = 4000  # distinct Arabic words compared with a topic's, at most
SOUND = 0.34  # the name matcher's distance bound (rag/text/names.py)
_CONTENT = re.compile(r"[\u0621-\u064a]{4,}")  # an Arabic content word (no marks), as the verifier reads them


@dataclass(frozen=True, slots=True)
class Said:
    """One statement on the time line: the sentence verbatim and where it was published."""

    statement: Statement
    text: str
    title: str
    outlet: str | None
    published: str | None
    url: str | None
    score: float | None = None  # closeness to the topic (None without one)


@dataclass(frozen=True, slots=True)
class Timeline:
    """A person's statements, by date."""

    person: str  # as asked
    speakers: tuple[str, ...]  # the speakers it matched, as the index names them
    about: str | None
    said: tuple[Said, ...]
    left_out: int = 0  # the person's statements not about the topic
    terms: tuple[str, ...] = ()  # the Arabic words the topic was looked for by


def _words(name: str) -> list[str]:
    """A name's words for matching: Arabic folded, without ال; English lower case, titles and "the" left out."""
    if has_arabic(name):
        return [w.removeprefix("ال") if len(w) > 4 else w for w in ARABIC_WORD.findall(fold(name))]
    return [w for w in re.findall(r"[A-Za-z][A-Za-z'’\-]*", name.lower()) if w not in NOT_NAMES]


def _arabic_match(a: str, b: str) -> bool:
    return a == b or (len(a) > 2 and len(b) > 2 and distance(arabic_sound(a), arabic_sound(b)) <= SOUND / 2)


def _english_match(word: str, arabic: Sequence[str], j: int) -> bool:
    """An English word sounds like the Arabic word j, or j and j+1 written together ("Jinping" / جين بينج)."""
    target = latin_sound(word)
    if not target:
        return False
    forms = [arabic_sound(arabic[j])]
    if j + 1 < len(arabic):
        forms.append(arabic_sound(arabic[j]) + arabic_sound(arabic[j + 1]))
    return any(distance(target, f) <= SOUND for f in forms)


def matches(person: str, speaker: str) -> bool:
    """Does a person asked for name this speaker? Every word of the shorter name matches one of the longer
    ("Patrushev" / نيكولاي باتروشيف, "ماو" / ماو نينغ)."""
    asked, theirs = _words(person), _words(speaker)
    if not asked or not theirs:
        return False
    if has_arabic(person):
        short, long = (asked, theirs) if len(asked) <= len(theirs) else (theirs, asked)
        return all(any(_arabic_match(a, b) for b in long) for a in short)
    whole = " ".join(asked)
    places = [f for key in (whole, whole.removesuffix("s")) for f in GAZETTEER.get(key, ())]
    if places:  # a country or a body: its Arabic forms (China / الصين, the Kremlin / الكرملين)
        return " ".join(theirs) in places
    hits_asked = all(any(_english_match(w, theirs, j) for j in range(len(theirs))) for w in asked)
    hits_theirs = all(any(_english_match(w, theirs, j) for w in asked) for j in range(len(theirs)))
    return hits_asked or (hits_theirs and len(theirs) < len(asked))


def speakers_of(retriever: Retriever, person: str) -> list[str]:
    """The speakers of the index a person names (most statements first), trying an English name's Arabic
    rendering when its sound matches nobody."""
    index = retriever.index
    if not index.records.has_statements:
        raise RagError(
            f"The index in {index.path.parent} was built before statements were found: run `rag index update` "
            "(it embeds nothing again)."
        )
    every = index.records.speakers()
    found = [name for name, _, _ in every if matches(person, name)]
    if not found and detect_language(person) == "en" and retriever.translator is not None:
        rendered = retriever.translator.render(f"Who is {person}?").arabic or ""
        name = re.sub(r"^\s*(من هو|من هي|من هم|من)\s+", "", rendered).strip(" ؟?")
        if name:
            found = [s for s, _, _ in every if matches(name, s)]
    return list(dict.fromkeys(found))


def said(
    retriever: Retriever,
    person: str,
    about: str | None = None,
    scope: Filter | None = None,
) -> Timeline:
    """`person`'s statements as a time line, only those about `about` when given, within the filter."""
    person = person.strip()
    if not person:
        raise RagError('Name a person: rag said PERSON [ABOUT], e.g. rag said "Mao Ning" "dual-use exports".')
    index = retriever.index
    speakers = speakers_of(retriever, person)
    statements = index.records.statements_by(speakers) if speakers else []
    where = retriever.where(scope)
    if where is not None:
        kept = set(where.articles)
        statements = [s for s in statements if s.article_id in kept]
    rows = [_row(retriever, s) for s in statements]
    terms: tuple[str, ...] = ()
    left_out = 0
    if about and about.strip() and rows:
        rows, left_out, terms = _about(retriever, rows, about.strip())
    rows.sort(key=lambda r: (r.published is None, (r.published or "")[:10], r.statement.article_id, r.statement.start))
    return Timeline(person, tuple(speakers), about, tuple(rows), left_out, terms)


def _about(retriever: Retriever, rows: list[Said], about: str) -> tuple[list[Said], int, tuple[str, ...]]:
    """The statements about the topic, and the Arabic words it was looked for by. Every person or place the topic
    names must be mentioned (Taiwan, NATO / الناتو, START / ستارت: by the gazetteer or by sound), and every other
    word of it held: an Arabic topic's own content words; for an English one, each word's Arabic counterparts, the
    words closest to it by meaning (the embedding model as a glossary: "sanctions" / العقوبات، عقوبات) among the
    words of the person's statements and of the passages the topic retrieves (so that a topic the person never
    spoke of finds its true counterparts elsewhere, not the nearest of the person's own words). The embedded
    1.5B model's renderings of a bare topic are too often wrong to use."""
    english = detect_language(about) == "en"
    names = places_in(about) + (english_names(about) if english else [])
    names += [Name(w, w.lower()) for w in re.findall(r"\b[A-Z]{3,}\b", about) if w.lower() not in GAZETTEER]
    matcher = NameMatcher()
    if english:
        senses = _glossary(retriever, rows, about, names)
        needed = 1  # e5 finds one counterpart well, rarely every one ("alliance" lands on العلاقة)
    else:
        senses = [(w,) for w in _content(about) if not any(matcher.mentions(n, w) for n in names)]
        needed = (len(senses) + 1) // 2  # half of them: لقاء / سيلتقي share no letters the verifier counts
    kept = []
    for row in rows:
        if not all(matcher.mentions(n, row.text) for n in names):
            continue
        held = sum(any(not unheld_words(w, row.text) for w in words) for words in senses)
        if held >= min(needed, len(senses)):
            kept.append(_scored(row, held / len(senses) if senses else 1.0))
    terms = tuple(w for words in senses for w in words)
    return kept, len(rows) - len(kept), terms


def _content(text: str) -> list[str]:
    """The Arabic content words of a text (four letters or more, not stop words), as written."""
    return list(dict.fromkeys(w for w in _CONTENT.findall(for_embedding(text)) if _is_content(w)))


def _is_content(word: str) -> bool:
    folded = fold(word)
    return folded not in STOPWORDS and bare_word(folded) not in STOPWORDS


def _glossary(retriever: Retriever, rows: list[Said], about: str, names: list[Name]) -> list[tuple[str, ...]]:
    """Each English content word of a topic (names apart) with its Arabic counterparts, closest first. Closeness
    is the cosine less half the Arabic word's closeness to common English news words (a word close to everything,
    such as بلاده or العلاقة, is a hub, not a translation: cross-domain similarity local scaling)."""
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'’\-]+", about) if w.lower() not in STOPWORDS | NOT_NAMES]
    words = [w for w in words if not any(w.lower() in n.key.split() for n in names) and not w.isupper()]
    if not words:
        return []
    plain = Retriever(retriever.index, retriever.embedder, retriever.weights)  # no rendering: see above
    texts = [r.text for r in rows] + [h.chunk.text for h in plain.search(about, GLOSSARY_PASSAGES)]
    arabic = list(dict.fromkeys(w for t in texts for w in _content(t)))[:MAX_WORDS]
    if not arabic:
        return [() for _ in words]
    vectors = retriever.embedder.embed_documents(arabic)
    probes = _probes(retriever.embedder)
    hubness = np.sort(vectors @ probes.T, axis=1)[:, -10:].mean(axis=1)
    senses = []
    for cosines in retriever.embedder.embed_queries(words) @ vectors.T:
        scores = 2 * cosines - hubness
        best = float(scores.max())
        order = np.argsort(-scores)
        senses.append(tuple(arabic[i] for i in order if scores[i] >= best - WORD_MARGIN))
    return senses


_PROBED: dict[int, np.ndarray] = {}


def _probes(embedder: Embedder) -> np.ndarray:
    """The probe words' vectors, embedded once per embedding model."""
    if id(embedder) not in _PROBED:
        _PROBED[id(embedder)] = embedder.embed_queries(PROBES)
    return _PROBED[id(embedder)]


# Common words of English news: an Arabic word close to many of them is close to everything (a hub).
PROBES = """government country people state president minister said talks meeting war peace relations policy
    military economy trade security week year official report visit support cooperation world region leader foreign
    agreement power conflict statement news city company market water plan project law court election party army
    """.split()


def _row(retriever: Retriever, s: Statement) -> Said:
    article = retriever.index.articles[s.article_id]
    return Said(s, article.text[s.start : s.end], article.title, article.outlet, article.published, article.url)


def _scored(row: Said, score: float) -> Said:
    return Said(row.statement, row.text, row.title, row.outlet, row.published, row.url, round(score, 4))


def other_statements(retriever: Retriever, article_id: str) -> list[Said]:
    """Every statement of an article, in text order (the time line's "the article's other statements")."""
    return [_row(retriever, s) for s in retriever.index.records.statements_of(article_id)]


def timeline_json(t: Timeline) -> dict[str, object]:
    """`rag said --json`: the person, the speakers matched, the topic and the statements by date."""
    return {
        "person": t.person,
        "speakers": list(t.speakers),
        "about": t.about,
        "terms": list(t.terms),
        "left_out": t.left_out,
        "statements": [
            {
                "speaker": r.statement.speaker,
                "role": r.statement.role,
                "kind": r.statement.kind,
                "sentence": r.text,
                "cue": r.statement.cue,
                "article": r.statement.article_id,
                "start": r.statement.start,
                "end": r.statement.end,
                "title": r.title,
                "outlet": r.outlet,
                "published": r.published,
                "url": r.url,
                "score": r.score,
            }
            for r in t.said
        ],
    }
