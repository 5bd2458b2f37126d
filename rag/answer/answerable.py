"""Answerability: how likely the best key quote answers the question, as a calibrated probability.

Signals of one question's best key quote (its key sentence and the adjacent sentence given as context, "the window"):
    quote      its key-quote score (rag/answer/quotes.py),
    margin     how far it scores above the next quote,
    dense      the best passage's dense score (question and passage vectors),
    lexical    the best passage's BM25 share,
    coverage   the share of the question's terms (idf-weighted; Arabic 4-grams, of the rendering for an English
               question) the window holds,
    names      the share of the question's names the window mentions, matched by sound (1 when it names none),
    numbers    the share of the question's numbers the window writes (1 when it writes none),
    kind       1 when the question asks for a kind of answer the window does not hold (how many / كم: a number
               the question does not write itself; when / متى: a date; where / أين: a place), else 0 (a person
               asked for is not read: most are named without the title people_in needs),
    unseen     the share of the question's Arabic content words (of the rendering, for an English question) that
               no retrieved passage holds ("population" in a question about Beijing over articles that never
               give it),
    absent     the same share for the window alone,
    rendered   1 when an English question was searched with its Arabic rendering.
A logistic model per question language mixes them into the probability that the quote answers; the weights are
fitted on XQuAD with half of its articles withheld from the index, and with half of each article's paragraphs
withheld (near-topic questions) (scripts/fit_answerable.py, docs/answer-or-abstain.md). Every answer gets one of
three outcomes from it: an answer, the closest passages (uncertain), or a refusal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from rag.answer.quotes import MONTHS
from rag.text.arabic import ARABIC_WORD, detect_language, fold, numbers
from rag.text.names import Name, NameMatcher, arabic_names, bare_word, english_names
from rag.types import Article, Hit, KeyQuote

FEATURES = (
    "quote",
    "margin",
    "dense",
    "lexical",
    "coverage",
    "names",
    "numbers",
    "kind",
    "unseen",
    "absent",
    "rendered",
)

_ASKS_NUMBER = re.compile(
    r"\b(how (many|much|long|old|far|often|large|big|tall)|what (percentage|percent|proportion|number|amount|age)"
    r"|how much)\b|(^|\s)(كم|بكم)(\s|$)|(ما|ما هو|ما هي) (عدد|نسبة|مقدار|قيمة|حجم|مساحة|طول|عمر)",
    re.IGNORECASE,
)
_ASKS_DATE = re.compile(
    r"\b(when|what (year|date|day|month|century|decade)|which (year|date|day|month|century)|in what year)\b"
    r"|(^|\s)متى(\s|$)|(أي|اي|في أي|في اي) (عام|سنة|تاريخ|يوم|شهر|قرن)",
    re.IGNORECASE,
)
_ASKS_PLACE = re.compile(
    r"\b(where|in (what|which) (country|city|state|province|region|town))\b|(^|\s)(أين|اين)(\s|$)"
    r"|(أي|اي|في أي|في اي) (دولة|بلد|مدينة|ولاية|مقاطعة|منطقة)",
    re.IGNORECASE,
)
_ASKS_PERSON = re.compile(
    r"\b(who|whom|whose|what (is|was) the name of|which (person|man|woman|minister|official|leader|president|"
    r"spokes\w*|king|emperor|scientist|player|author|writer|general|officer|diplomat|politician)s?)\b"
    r"|^\s*(و)?(من|من هو|من هي|من هم)\s|ما اسم|ما هو اسم|(أي|اي) (وزير|مسؤول|رئيس|شخص|دبلوماسي)",
    re.IGNORECASE,
)
# Words that introduce a person in Arabic news ("المتحدثة باسم وزارة الخارجية الصينية ماو نينغ"), folded, without ال.
_TITLES = frozenset(
    fold(w)
    for w in (
        "رئيس رئيسة وزير وزيرة نائب سيد سيدة متحدث متحدثة ناطق دبلوماسي دبلوماسيين زعيم مسؤول مدير مديرة أمين سفير"
        " ملك أمير شيخ جنرال قائد مستشار مستشارة مبعوث كبير نظيره نظيرته بابا إمبراطور كاتب شاعر عالم مهندس دكتور"
        " مؤسس لاعب مدرب ممثل مغني فنان محافظ عمدة مندوب"
    ).split()
)
# Beyond the months (rag/answer/quotes.py, writes_number): the words a date answer is written with.
_DATE_WORDS = re.compile(r"الاثنين|الثلاثاء|الأربعاء|الخميس|الجمعة|السبت|الأحد|القرن|عام|سنة|الأسبوع|الشهر")
# The kinds the kind signal reads (a person is too often named without a title to tell, measured on XQuAD).
_KINDS = ("number", "date", "place")
_PLACE_WORDS = re.compile(r"مدينة|مقاطعة|ولاية|دولة|منطقة|عاصمة|جزيرة|نهر|إقليم|اقليم|بلدة|قرية|شمال|جنوب|شرق|غرب")


# Arabic function words and question words (folded), left out of the content words a question asks about.
_FUNCTION = frozenset(
    fold(w)
    for w in (
        "من في على إلى الى عن ما ماذا لماذا متى كم أين اين هل كيف أي اي الذي التي الذين هو هي هم هذا هذه ذلك تلك"
        " مع بعد قبل بين عند كان كانت يكون تكون قد لقد لم لن لا إن ان أن أو او ثم كل بعض غير عدد اسم ما هو"
        " ما هي قال قالت يقول تقول وفقا حسب خلال منذ حتى أيضا ايضا التى الى"
    ).split()
)
_QUESTION_LEAD = re.compile(r"^(و|ف)?(ما|ماذا|من|متى|كم|أين|اين|هل|كيف|لماذا|أي|اي)$")


@dataclass(frozen=True, slots=True)
class Signals:
    """What the answerability estimate reads of one question and its best key quote (see the module docstring)."""

    quote: float = 0.0
    margin: float = 0.0
    dense: float = 0.0
    lexical: float = 0.0
    coverage: float = 0.0
    names: float = 1.0
    numbers: float = 1.0
    kind: float = 0.0
    unseen: float = 0.0
    absent: float = 0.0
    rendered: float = 0.0

    def vector(self) -> list[float]:
        """The signals in FEATURES order."""
        return [getattr(self, k) for k in FEATURES]

    def as_json(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class Calibration:
    """A logistic model over the signals: p = 1 / (1 + exp(-(bias + sum(weights * signals))))."""

    bias: float
    weights: tuple[float, ...]  # in FEATURES order

    def probability(self, signals: Signals) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, signals.vector(), strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


# Fitted by scripts/fit_answerable.py on all 48 XQuAD articles, half of them withheld from the index
# (docs/answer-or-abstain.md has the two-fold figures, fitted on one half of the articles and measured on the other).
CALIBRATIONS: dict[str, Calibration] = {
    "ar": Calibration(
        -26.7928, (-6.1911, 19.2506, 35.9741, -0.1356, 3.4522, 0.5097, 0.4948, -0.6481, -0.7783, -1.6345, 0.0)
    ),
    "en": Calibration(
        -46.3825, (-3.8856, 48.4427, 60.1274, -0.3192, -1.1307, 0.5896, 0.8174, -0.6971, -0.5280, -0.1171, 0.0520)
    ),
}


@dataclass(frozen=True, slots=True)
class Assessment:
    """The estimate for one answer: the probability that its best key quote answers, and what it read."""

    confidence: float
    signals: Signals
    lang: str  # which calibration was used

    def outcome(self, answer_min: float, closest_min: float) -> str:
        """The outcome its confidence gets (`outcome_of`)."""
        return outcome_of(self.confidence, answer_min, closest_min)


def outcome_of(confidence: float, answer_min: float, closest_min: float) -> str:
    """ "answer" at or above `answer_min`, "closest" at or above `closest_min`, else "refused"."""
    if confidence >= answer_min:
        return "answer"
    return "closest" if confidence >= closest_min else "refused"


def asks_for(question: str) -> str | None:
    """The kind of answer a question asks for: "number", "date", "place", "person", or None (another kind, or
    unknown)."""
    kinds = (("date", _ASKS_DATE), ("number", _ASKS_NUMBER), ("place", _ASKS_PLACE), ("person", _ASKS_PERSON))
    for kind, pattern in kinds:
        if pattern.search(question):
            return kind
    return None


def people_in(text: str) -> list[str]:
    """The people an Arabic text introduces by a title (folded): "قالت المتحدثة باسم وزارة الخارجية الصينية ماو
    نينغ" -> ["ماو نينغ"]. After a title, up to four words with ال (or باسم, وزارة ...) are passed over; the name is
    the next one to three words without ال that are not function words. An English text's capitalised names."""
    if detect_language(text) == "en":
        return [n.key for n in english_names(text)]
    words = [w.strip('،,.:;«»"“”()') for w in fold(text).split()]
    found = []
    for i, w in enumerate(words):
        if not _is_title(w):
            continue
        j, skipped = i + 1, 0
        while j < len(words) and skipped < 4 and (not words[j] or _described(words[j])):
            skipped += bool(words[j])
            j += 1
        name: list[str] = []
        while j < len(words) and len(name) < 3 and words[j] and not _described(words[j]):
            if words[j] in _FUNCTION or not ARABIC_WORD.fullmatch(words[j]) or _is_title(words[j]):
                break
            name.append(words[j])
            j += 1
        if name:
            found.append(" ".join(name))
    return list(dict.fromkeys(found))


def _is_title(word: str) -> bool:
    """A folded word that is a title, with or without و, ب, ل or ال in front."""
    forms = {word, bare_word(word), word[1:] if word[:1] in "وبلف" else word}
    return any(f in _TITLES or (f.startswith("ال") and f[2:] in _TITLES) for f in forms)


def _described(word: str) -> bool:
    """A word between a title and the name: with ال, or one of باسم, وزارة, مجلس (folded)."""
    return word.startswith(("ال", "لل", "وال", "بال")) or word in ("باسم", "وزاره", "مجلس", "لوزاره", "لمجلس")


def holds_kind(kind: str, text: str, asked: str = "") -> bool:
    """True when the text holds an answer of that kind: a number the question (`asked`) does not write itself, or
    a number word, for a number; such a number, a month or a date word for a date; a place of the gazetteer or a
    place word for a place; a person introduced by a title that the question does not name, for a person."""
    if kind == "person":
        own = set(ARABIC_WORD.findall(fold(asked))) | {w.lower() for w in re.findall(r"[A-Za-z]+", asked)}
        return any(not (set(p.split()) & own) for p in people_in(text))
    if kind in ("number", "date"):
        new_number = bool(numbers(text) - numbers(asked))  # "How many drones in 2022?" is not answered by "2022"
        if kind == "date":
            return new_number or bool(MONTHS.search(text) or _DATE_WORDS.search(text))
        return new_number or bool(re.search(r"\b(ألف|آلاف|مليون|ملايين|مليار|مئة|مائة|عشر|ثلاث|أربع|خمس)", text))
    if kind == "place":
        return bool(arabic_names(text)) or bool(_PLACE_WORDS.search(text))
    return True


def content_words(text: str) -> list[str]:
    """The Arabic content words of a question (folded): what it asks about."""
    out = []
    for w in ARABIC_WORD.findall(fold(text)):
        if w in _FUNCTION or _QUESTION_LEAD.match(w) or bare_word(w) in _FUNCTION or len(w) < 3:
            continue
        out.append(w)
    return list(dict.fromkeys(out))


def missing_words(text: str, passages: str) -> list[str]:
    """The content words of an Arabic text (a question, or an English question's rendering) that none of the
    passages holds, as the text writes them: what the articles found do not mention."""
    words = set(content_words(text))
    out = []
    for raw in re.findall(r"[\u0621-\u064a\u0640\u064b-\u0652\u0670]+", text):
        if fold(raw) in words and _unheld([fold(raw)], passages) == 1.0 and raw not in out:
            out.append(raw)
    return out


def _stem(word: str) -> str:
    return re.sub(r"(ات|ون|ين|ه|ي)$", "", word) if len(word) > 4 else word


def _unheld(words: Sequence[str], text: str) -> float:
    """The share of `words` a text does not hold: neither the word nor, when four letters or more are left, the
    word without its leading clitics occurs (each less a final ه/ي/ات/ون/ين)."""
    if not words:
        return 0.0
    folded = fold(text)
    missing = 0
    for w in words:
        bare = bare_word(w)
        held = _stem(w) in folded or (len(bare) >= 4 and _stem(bare) in folded)
        missing += not held
    return missing / len(words)


@dataclass(frozen=True, slots=True)
class Question:
    """What the window signals need of a question, worked out once per question."""

    text: str  # the question, with its rendering
    lang: str
    names: tuple[Name, ...]  # the names it mentions (English: capitalised; Arabic: the gazetteer's places)
    numbers: frozenset[str]
    kind: str | None  # what it asks for (asks_for)
    words: tuple[str, ...]  # its Arabic content words (of the rendering, for an English question)
    coverage: Callable[[str], float]  # the share of its terms a text holds

    @classmethod
    def of(cls, question: str, rendering: str | None, coverage: Callable[[str], float]) -> Question:
        lang = detect_language(question)
        return cls(
            text=f"{question} {rendering or ''}",
            lang=lang,
            names=tuple(english_names(question) if lang == "en" else arabic_names(question)),
            numbers=frozenset(numbers(question)),
            kind=asks_for(question) or (asks_for(rendering) if rendering else None),
            words=tuple(content_words(question if lang == "ar" else rendering or "")),
            coverage=coverage,
        )


@dataclass(frozen=True, slots=True)
class Window:
    """The signals of one quote's window (its key sentence and context sentence) for a question."""

    coverage: float
    names: float
    numbers: float
    kind: float
    absent: float


def window_signals(q: Question, window: str, matcher: NameMatcher) -> Window:
    """How much of the question a window holds: its terms, names, numbers, the kind of answer and content words."""
    written = numbers(window)
    return Window(
        coverage=q.coverage(window),
        names=sum(matcher.mentions(n, window) for n in q.names) / len(q.names) if q.names else 1.0,
        numbers=len(q.numbers & written) / len(q.numbers) if q.numbers else 1.0,
        kind=float(q.kind in _KINDS and not holds_kind(q.kind, window, q.text)),
        absent=_unheld(q.words, window),
    )


def window_of(quote: KeyQuote, articles: Mapping[str, Article]) -> str:
    """The quote's text as the article writes it (its window)."""
    article = articles.get(quote.chunk.article_id)
    return article.text[quote.start : quote.end] if article is not None else quote.text


def signals_of(
    question: str,
    rendering: str | None,
    hits: Sequence[Hit],
    quotes: Sequence[KeyQuote],
    articles: Mapping[str, Article],
    coverage: Callable[[str], float],
    matcher: NameMatcher | None = None,
) -> Signals:
    """The signals of the best key quote (`coverage(text)`: the share of the question's terms a text holds)."""
    if not quotes or not hits:
        return Signals()
    best = quotes[0]
    q = Question.of(question, rendering, coverage)
    w = window_signals(q, window_of(best, articles), matcher or NameMatcher())
    return Signals(
        quote=best.score,
        margin=min(max(best.score - quotes[1].score, 0.0), 1.0) if len(quotes) > 1 else 1.0,
        dense=max(h.dense for h in hits),
        lexical=max(h.lexical for h in hits),
        coverage=w.coverage,
        names=w.names,
        numbers=w.numbers,
        kind=w.kind,
        unseen=_unheld(q.words, " ".join(h.chunk.text for h in hits)),
        absent=w.absent,
        rendered=float(rendering is not None),
    )


def assess(signals: Signals, question: str, calibrations: Mapping[str, Calibration] | None = None) -> Assessment:
    """The calibrated probability that the best key quote answers the question."""
    lang = detect_language(question)
    table = calibrations or CALIBRATIONS
    calibration = table.get(lang, table["en"])
    return Assessment(round(calibration.probability(signals), 4), signals, lang)
