"""The frozen dataclasses that flow through every pipeline stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Article:
    """A cleaned article: `text` is what is chunked and what offsets point into."""

    id: str  # file stem, e.g. "000_5016804d4a167ba4", or a feed line's "id"
    title: str
    outlet: str | None
    text: str
    sha256: str  # of the raw file bytes (and its sidecar's), or of the feed line
    published: str | None = None  # ISO date or date-time, as declared (rag/ingest/metadata.py); None = unknown
    url: str | None = None  # the original's address
    language: str | None = None  # as declared (a language tag such as "ar"); None = not declared
    author: str | None = None


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """What an index is built with; an index built with another spec is refused until rebuilt."""

    model: str  # the embedding model's name
    chunk_tokens: int  # chunk size, in the embedding model's tokens
    chunk_overlap: int  # overlap between neighbouring chunks, in tokens
    lexical_terms: str = "ngram"  # what the BM25 leg indexes: "ngram" (character 4-grams) or "stem"
    store: str = "faiss"  # where the vectors live: "faiss" (files in the index folder) or "milvus"
    chunk_vectors: str = "own"  # "own" (the chunk embedded too) or "pooled" (from the chunk's sentence vectors)


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """What the vector stores may read of the settings (by setting name, e.g. FAISS `ann_min_chunks`, Milvus
    `milvus_uri`): each backend reads its own. These do not make an index stale (the server may move, the
    approximate index is chosen by size). `scratch`: a throwaway index in a temporary folder, which keeps
    everything inside that folder (Milvus: a Milvus Lite file there, whatever the settings' server)."""

    values: Mapping[str, Any] = field(default_factory=dict, repr=False)
    scratch: bool = False

    def get(self, name: str, default: Any = None) -> Any:
        """The setting `name`, or `default` when it is unset."""
        value = self.values.get(name)
        return default if value is None else value


@dataclass(frozen=True, slots=True)
class Skipped:
    """A data file that was not indexed, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of an article; `article.text[start:end] == text`."""

    id: str  # stable: "<article_id>:<start>-<end>"
    article_id: str
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Filter:
    """Which articles a question searches (rag/retrieve/filters.py): all of them when nothing is set.

    Dates are ISO days, both ends included, compared with the day an article was published (an undated article
    is outside any date range); outlets match by name, ignoring case; several outlets or articles mean any of them.
    """

    since: str | None = None
    until: str | None = None
    outlets: tuple[str, ...] = ()
    articles: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.outlets or self.articles)

    def describe(self) -> str:
        """The filter in words, as shown above an answer: "published since 2023-01-01 · outlet BBC" ("" for none)."""
        parts = []
        if self.since and self.until:
            parts.append(f"published {self.since} to {self.until}")
        elif self.since or self.until:
            parts.append(f"published since {self.since}" if self.since else f"published until {self.until}")
        for label, values in (("outlet", self.outlets), ("article", self.articles)):
            if values:
                parts.append(f"{label}{'s' if len(values) > 1 else ''} {', '.join(values)}")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True, eq=False)
class Query:
    """One question as every step of its answer sees it, built once (`Retriever.query`): the search, the reading,
    the key-quote picker, the estimate and the evidence all read this one record, so they cannot disagree.

    `text` is the question searched (a follow-up's standalone form); `rendering` its Arabic rendering for an
    English question (None for Arabic, without a translator, or when it was dropped as too far from the question),
    `skipped` why an English question went without one (the answer model was busy, failed, ...); `vectors` the
    (unit vector, weight) of the question and of its rendering; `lexical` the words BM25 matches ("" when none:
    English words alone only match stray Latin in Arabic articles); `scope` the articles searched."""

    text: str
    language: str
    vectors: tuple[tuple[np.ndarray, float], ...]
    rendering: str | None = None
    skipped: str | None = None
    lexical: str = ""
    scope: Filter | None = None

    @property
    def vector(self) -> np.ndarray:
        """The question's own vector (not its rendering's)."""
        return self.vectors[0][0]


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk, its fused score, its dense score (cosine mix) and lexical score (share of the query's
    best possible BM25 score), and the other articles whose near-identical passages were collapsed into it."""

    chunk: Chunk
    score: float
    dense: float = 0.0
    lexical: float = 0.0
    also: tuple[str, ...] = ()  # ids of the articles (other than its own) whose duplicate passages it stands for


@dataclass(frozen=True, slots=True)
class Citation:
    """A passage the answer cites as [n]."""

    n: int
    chunk: Chunk
    highlights: tuple[tuple[int, int], ...] = ()  # article offsets to highlight: the quote, else what was read
    supported: bool | None = None  # None: not verified (no verifier)
    quote: str = ""  # the passage's sentence that best matches the answer sentence citing it
    support: float = 0.0  # that match's cosine
    reason: str = ""  # why the citation is not supported
    also: tuple[str, ...] = ()  # the cited hit's collapsed duplicates: other articles that carry the passage


@dataclass(frozen=True, slots=True)
class KeyQuote:
    """A sentence of a retrieved passage that answers the question, verbatim from its article."""

    n: int  # the number of the passage it comes from, as cited ([n])
    chunk: Chunk
    start: int  # article offsets of the quote: its key sentence and the adjacent sentence given as context
    end: int
    text: str
    score: float  # the key-quote score of its key sentence (rag/answer/quotes.py)
    focus: tuple[int, int] = (0, 0)  # article offsets of the key sentence, the one highlighted


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the answer model reads for one question: the hits, and the part of each it is shown."""

    question: str
    hits: tuple[Hit, ...]
    passages: tuple[str, ...]  # the text of each hit given to the model
    highlights: tuple[tuple[tuple[int, int], ...], ...]  # per hit, article offsets of those sentences
    query: Query | None = None  # the question as it was searched (None: evidence made without a search)
    search_seconds: float = 0.0  # how long finding the passages took

    @property
    def translation(self) -> str | None:
        """The Arabic rendering of an English question that was also searched."""
        return self.query.rendering if self.query is not None else None

    @property
    def translation_skipped(self) -> str | None:
        """Why an English question was searched without its rendering."""
        return self.query.skipped if self.query is not None else None


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished answer with the passages it cites."""

    question: str
    text: str
    refused: bool
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    model: str
    seconds: float = field(default=0.0)
    standalone: str | None = None  # a follow-up rewritten with the conversation, as it was searched
    refused_by: str | None = None  # "retrieval" (no passage close enough), "confidence" (the key quotes are unlikely
    # to answer), "names" (the question names a place no retrieved article mentions) or "model" (the answer model
    # abstained: the outcome is "closest" when there are key quotes to show)
    mode: str = "generate"  # which mode answered: "quote" (key quotes verbatim) or "generate" (the answer model)
    key_quotes: tuple[KeyQuote, ...] = ()  # the best sentences of the passages for the question, best first
    closest: KeyQuote | None = None  # generate mode: the model abstained; this key quote is shown as the closest
    search_seconds: float = 0.0  # from the question to the passages found (seconds counts from the question too)
    first_text_seconds: float | None = None  # from the question to the first text of the answer
    waited_seconds: float = 0.0  # time spent queued for the answer model (busy with other questions)
    outcome: str = "answer"  # "answer", "closest" (the articles may not answer: the closest passages) or "refused"
    confidence: float | None = None  # the probability that the best key quote answers (rag/answer/answerable.py)
    signals: tuple[tuple[str, float], ...] = ()  # what that estimate read, by name
    speakers: tuple[str, ...] = ()  # a who-said-what answer: the speakers whose statements it shows (by date)

    @property
    def unsupported(self) -> bool:
        """True for an answer (not a refusal) that no verified citation supports, or that cites nothing."""
        if self.refused:
            return False
        return not any(c.supported is not False for c in self.citations)


@dataclass(frozen=True, slots=True)
class Sentence:
    """A sentence of a chunk, embedded on its own so a single matching sentence can lift its chunk."""

    chunk: int  # position of its chunk in the index
    start: int  # offsets in the article text
    end: int


@dataclass(frozen=True, slots=True)
class Statement:
    """A sentence that reports what a speaker said (rag/attribute/statements.py), found at index time.

    `start`/`end` are the sentence's article offsets; `speaker` is the person, role or body resolved within the
    article ("ماو نينغ" for "قالت ماو" after "المتحدثة باسم وزارة الخارجية الصينية ماو نينغ"), `role` the titles
    written beside a person's name ("" when none), `kind` "person", "role" (an unnamed office holder: "مدير
    الميناء") or "org" (a body, a country, an outlet), `cue` the reporting words as written ("قالت", "وفقا ل")."""

    article_id: str
    start: int
    end: int
    speaker: str
    role: str = ""
    kind: str = "person"
    cue: str = ""
