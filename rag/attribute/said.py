"""Who said what, when: one person's statements as a time line, from the statements found at index time.

A person asked for in English or Arabic is matched to the speakers the index holds: Arabic by its words (every
word of the shorter name in the longer, spelling variants by sound: سيرغي / سيرجي), English by sound
("Mao Ning" / ماو نينغ, "Patrushev" / نيكولاي باتروشيف) or, for countries and bodies, by the gazetteer (China /
الصين, the Kremlin / الكرملين); when nothing matches, the English name's Arabic rendering is tried.

With a topic (ABOUT), only the statements about it are kept: every person or place the topic names must be
mentioned (Taiwan, NATO / الناتو, START / ستارت: by the gazetteer or by sound), and its other words held, each by
one of the Arabic words that stand for it, found by the embedding model among the words of the person's statements
and of the passages the topic retrieves (`_senses`): for an English topic one of its words ("sanctions" /
العقوبات), for an Arabic one every word, or all but one of three or more (لقاء also as يلتقي، التقى). A topic the
person never spoke of shows nothing ("What did Mao Ning say about Taiwan?"). The filters (dates, outlets) apply.
The time line runs by publication date (undated articles last), then by article and place in it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.answer.render import where_published
from rag.answer.verify import unheld_words
from rag.embed.embedder import SHORT_CALL, Embedder
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

WORD_MARGIN = 0.02  # an English word's Arabic counterparts: this close to the closest (see _senses)
FORM_MARGIN = 0.07  # an Arabic word's other forms: this close to its closeness to itself (see _senses)
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
    """The statements about the topic, and the Arabic words it was looked for by (see the module docstring)."""
    english = detect_language(about) == "en"
    names = places_in(about) + (english_names(about) if english else [])
    names += [Name(w, w.lower()) for w in re.findall(r"\b[A-Z]{3,}\b", about) if w.lower() not in GAZETTEER]
    matcher = NameMatcher()
    if english:
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z'’\-]+", about) if w.lower() not in STOPWORDS | NOT_NAMES]
        words = [w for w in words if not any(w.lower() in n.key.split() for n in names) and not w.isupper()]
    else:
        words = [w for w in _content(about) if not any(matcher.mentions(n, w) for n in names)]
    senses = _senses(retriever, rows, about, words, english)
    # every word held, but one of three or more (المواد for البنود)
    needed = len(senses) - (len(senses) >= 3)
    kept = []
    for row in rows:
        if not all(matcher.mentions(n, row.text) for n in names):
            continue
        roots = {light_root(w) for w in _CONTENT.findall(fold(row.text))} - {""}
        held = sum(any(not unheld_words(w, row.text) or light_root(w) in roots for w in forms) for forms in senses)
        if held >= min(needed, len(senses)):
            kept.append(_scored(row, held / len(senses) if senses else 1.0))
    terms = tuple(dict.fromkeys(w for forms in senses for w in forms))
    return kept, len(rows) - len(kept), terms


_PREFIXES = ("وال", "بال", "لل", "ال", "و", "ف", "ب", "ل")  # clitics, longest first
_STEMS = ("است", "ت", "ي", "م", "ن", "س")  # verb and noun prefixes (تصدير، يستخدم، مستخدم)
_ENDINGS = ("ات", "ها", "هم", "نا", "ون", "ين", "ان", "يه", "ه", "ي")  # plural, possessive and adjective endings


def light_root(word: str) -> str:
    """A folded word's consonant skeleton without its affixes: تصدير and صادرات are صدر, الاستخدام and يستخدمون
    are خدم (a light stem: different words may share one, the same word's forms mostly do); "" when under
    three letters are left."""
    w = fold(word)
    for p in _PREFIXES:
        if w.startswith(p) and len(w) - len(p) >= 3:
            w = w[len(p) :]
            break
    for p in _STEMS:
        if w.startswith(p) and len(w) - len(p) >= 3:
            w = w[len(p) :]
    for e in _ENDINGS:
        if w.endswith(e) and len(w) - len(e) >= 3:
            w = w[: -len(e)]
            break
    skeleton = re.sub("[اويى]", "", w)
    return skeleton if len(skeleton) >= 3 else ""


def _content(text: str) -> list[str]:
    """The Arabic content words of a text (four letters or more, not stop words), as written."""
    return list(dict.fromkeys(w for w in _CONTENT.findall(for_embedding(text)) if is_content(w)))


def is_content(word: str) -> bool:
    folded = fold(word)
    return folded not in STOPWORDS and bare_word(folded) not in STOPWORDS


def _senses(
    retriever: Retriever, rows: list[Said], about: str, words: list[str], english: bool
) -> list[tuple[str, ...]]:
    """Each word of a topic with the Arabic words that stand for it, closest first, found by the embedding model
    among the words of the person's statements and of the passages the topic retrieves (without a rendering: the
    1.5B model's are too often wrong). Closeness is twice the cosine less the Arabic word's closeness to common
    English news words (a word close to everything, such as بلاده or العلاقة, is a hub, not a translation:
    cross-domain similarity local scaling). An English word's counterparts are those within WORD_MARGIN of the
    closest; an Arabic word's, itself and those within FORM_MARGIN of its closeness to itself (its other forms:
    لقاء / يلتقي، التقى; a word no candidate comes near stands alone)."""
    if not words:
        return []
    plain = Retriever(retriever.index, retriever.embedder, retriever.weights)  # no rendering: see above
    texts = [r.text for r in rows] + [h.chunk.text for h in plain.search(about, GLOSSARY_PASSAGES)]
    arabic = list(dict.fromkeys(w for t in texts for w in _content(t)))[:MAX_WORDS]
    own = [] if english else [w for w in words if w not in arabic]
    arabic += own  # an Arabic topic word is compared with itself too
    if not arabic:
        return [() for _ in words]
    vectors = word_vectors(retriever.embedder, arabic)
    hubness = np.sort(vectors @ probe_vectors(retriever.embedder).T, axis=1)[:, -10:].mean(axis=1)
    senses = []
    for word, cosines in zip(words, retriever.embedder.embed_queries(words) @ vectors.T, strict=True):
        scores = 2 * cosines - hubness
        order = np.argsort(-scores)
        if english:
            floor = float(scores.max()) - WORD_MARGIN
            senses.append(tuple(arabic[i] for i in order if scores[i] >= floor))
        else:
            floor = float(scores[arabic.index(word)]) - FORM_MARGIN
            senses.append((word, *(arabic[i] for i in order if scores[i] >= floor and arabic[i] != word)))
    return senses


_WORDS: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()  # (embedder, word) -> its passage vector
WORD_CACHE = 20_000  # words kept (1.5 KB each): a page session's questions share most of their candidates


def word_vectors(embedder: Embedder, words: list[str]) -> np.ndarray:
    """The words' vectors as passages, from the cache where it has them."""
    missing = [w for w in words if (id(embedder), w) not in _WORDS]
    # a short call at a time: words are a few tokens each, which the question encoder embeds many times faster
    # than a bulk call through torch (the first who-said question of a process: 4.1 s -> 0.3 s on 2 cores)
    for a in range(0, len(missing), SHORT_CALL):
        part = missing[a : a + SHORT_CALL]
        for w, v in zip(part, embedder.embed_documents(part), strict=True):
            _WORDS[(id(embedder), w)] = v
    if missing:
        while len(_WORDS) > WORD_CACHE:
            _WORDS.popitem(last=False)
    for w in words:
        _WORDS.move_to_end((id(embedder), w))
    return np.stack([_WORDS[(id(embedder), w)] for w in words])


_PROBED: dict[int, np.ndarray] = {}


def probe_vectors(embedder: Embedder) -> np.ndarray:
    """The probe words' vectors, embedded once per embedding model."""
    if id(embedder) not in _PROBED:
        parts = range(0, len(PROBES), SHORT_CALL)  # short calls, as `word_vectors`
        _PROBED[id(embedder)] = np.concatenate([embedder.embed_queries(PROBES[a : a + SHORT_CALL]) for a in parts])
    return _PROBED[id(embedder)]


# Common words of English news: an Arabic word close to many of them is close to everything (a hub).
PROBES = """government country people state president minister said talks meeting war peace relations policy
    military economy trade security week year official report visit support cooperation world region leader foreign
    agreement power conflict statement news city company market water plan project law court election party army
    """.split()


_EN_SAID = re.compile(
    r"^\s*what\s+(?:has|have|had|did|does|do)\s+(?P<person>.+?)\s+(?:say|said|tell|told|state|stated|announce|"
    r"announced|declare|declared|warn|warned|claim|claimed|stress|stressed)"
    r"(?:\s+(?:about|on|regarding|concerning|of)(?:\s+(?P<about>.+?))?)?\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_AR_SAID = re.compile(
    r"^\s*(?:ماذا|ما الذي|بماذا|ما الذي)\s+(?:قال|قالت|قالوا|يقول|تقول|صرح|صرّح|صرحت|أعلن|أعلنت|أكد|أكدت|ذكر|ذكرت|"
    r"حذر|حذّر|حذرت)\s+(?P<person>.+?)(?:\s+(?:عن|بشأن|حول|في شأن)\s+(?P<about>.+?))?\s*[؟?.!]*\s*$"
)


_NOT_A_NAME = {fold(w) for w in "في من على إلى مع خلال أمام لدى عند بعد قبل to in at with during before after".split()}


def said_question(question: str) -> tuple[str, str | None] | None:
    """(person, topic) when a question asks what someone said ("What has Lavrov said about NATO?", "ماذا قالت ماو
    نينغ عن تصدير البنود؟", "What did Medvedev warn about?"), else None: also when more than a name stands before
    the topic ("ماذا قال شي جين بينغ لبايدن في المكالمة الهاتفية؟" asks about one call, not a time line)."""
    m = _EN_SAID.match(question) or _AR_SAID.match(question)
    if m is None:
        return None
    about = (m.group("about") or "").strip() or None
    person = m.group("person").strip()
    if len(person.split()) > 5 or any(w in _NOT_A_NAME for w in fold(person).split()):
        return None
    if about and detect_language(about) == "en":
        about = re.sub(r"^(?:the)\s+", "", about, flags=re.IGNORECASE)
    return (person, about) if person else None


_EN_SAID_AGAIN = re.compile(
    r"^\s*(?:and\s+|so\s+)?what\s+(?:else\s+)?(?:has|have|had|did|does|do)\s+(?:he|she|they)\s+"
    r"(?P<verb>say|said|tell|told|state|stated|announce|announced|declare|declared|warn|warned|claim|claimed|stress|"
    r"stressed)(?P<rest>(?:\s+(?:about|on|regarding|concerning|of)(?:\s+.+?)?)?)(?:\s+else)?\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_BASE = {"said": "say", "told": "tell", "stated": "state", "announced": "announce", "declared": "declare",
         "warned": "warn", "claimed": "claim", "stressed": "stress"}  # fmt: skip
_AR_SAID_AGAIN = re.compile(
    r"^\s*و?(?:ماذا|ما الذي|بماذا)\s+(?P<verb>قال|قالت|قالوا|يقول|تقول|صرح|صرّح|صرحت|أعلن|أعلنت|أكد|أكدت|ذكر|ذكرت|"
    r"حذر|حذّر|حذرت)(?:\s+(?:أيضا|أيضاً|كذلك|أيضًا))?(?P<rest>(?:\s+(?:عن|بشأن|حول|في شأن)\s+.+?)?)"
    r"(?:\s+(?:أيضا|أيضاً|كذلك|أيضًا))?\s*[؟?.!]*\s*$"
)


def said_followup(question: str, last_question: str) -> str | None:
    """A follow-up to a who-said question that names the speaker only by a pronoun, with the speaker put back:
    after "What did Mao Ning say about dual-use exports?", "What else did she say?" is "What did Mao Ning say?" and
    "And what did she say about Taiwan?" is "What did Mao Ning say about Taiwan?" (Arabic alike: "وماذا قالت
    أيضا؟", "وماذا قالت عن تايوان؟"). None when the last question was not a who-said one or this is not such a
    follow-up: the answer model rewrites those. Found by rule, not by the 1.5B model, whose rewrite of "What else
    did she say?" came back unchanged (docs/figures.md)."""
    last = said_question(last_question)
    if last is None:
        return None
    person = last[0]
    m = _EN_SAID_AGAIN.match(question)
    if m is not None:
        rest = (m.group("rest") or "").strip()
        verb = m.group("verb").lower()
        verb = _BASE.get(verb, verb)
        return f"What did {person} {verb}{' ' + rest if rest else ''}?"
    m = _AR_SAID_AGAIN.match(question)
    if m is not None:
        rest = (m.group("rest") or "").strip()
        return f"ماذا {m.group('verb')} {person}{' ' + rest if rest else ''}؟"
    return None


def _row(retriever: Retriever, s: Statement) -> Said:
    article = retriever.index.articles[s.article_id]
    return Said(s, article.text[s.start : s.end], article.title, article.outlet, article.published, article.url)


def _scored(row: Said, score: float) -> Said:
    return Said(row.statement, row.text, row.title, row.outlet, row.published, row.url, round(score, 4))


def other_statements(retriever: Retriever, article_id: str) -> list[Said]:
    """Every statement of an article, in text order (the time line's "the article's other statements")."""
    return [_row(retriever, s) for s in retriever.index.records.statements_of(article_id)]


def timeline_summary(t: Timeline) -> str:
    """The line above a time line (or in its place when it is empty), for every front end."""
    who = f"{t.person} ({', '.join(t.speakers)})" if t.speakers else t.person
    topic = f" about «{t.about}»" if t.about else ""
    if not t.speakers:
        return f"No statement by {t.person} in the articles: nobody quoted there has that name."
    if not t.said:
        return f"The articles hold no statement by {who}{topic} ({t.left_out} on other subjects)."
    shown = len(wire_copies(t.said))
    extra = len(t.said) - shown
    copies = f" (and {extra} wire cop{'y' if extra == 1 else 'ies'}, shown once)" if extra else ""
    others = f"; {t.left_out} more on other subjects" if t.left_out else ""
    return f"{who}{topic}: {shown} statement(s){copies}{others}"


def said_line(r: Said, others: Sequence[str] = ()) -> str:
    """date · outlet · title of a statement's article, who said it (with their title), and the outlets that
    carried the same sentence (`others`)."""
    speaker = r.statement.speaker + (f" ({r.statement.role})" if r.statement.role else "")
    return f"{where_published(r.published, r.outlet, r.title)} · {speaker}" + (
        f" · also reported by {', '.join(others)}" if others else ""
    )


def wire_copies(rows: Sequence[Said]) -> dict[int, tuple[str, ...]]:
    """The statements to show (by id), each with the other articles that carry the same sentence (a wire copy:
    the first published is shown)."""
    first: dict[str, Said] = {}
    others: dict[str, list[str]] = {}
    for r in rows:
        key = " ".join(fold(r.text).split())
        if key in first:
            others[key].append(r.statement.article_id)
        else:
            first[key], others[key] = r, []
    return {id(r): tuple(others[k]) for k, r in first.items()}


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
