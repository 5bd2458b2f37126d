"""One settings object: the only place that reads the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.types import IndexSpec, StoreOptions

DEFAULT_EMBEDDING_MODEL = "intfloat/multilingual-e5-small"
EMBEDDED_LLM_NAME = "qwen2.5-coder-1.5b-instruct"
OPENAI_DEFAULT_MODEL = "gpt-4o-mini"


def _default_models_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag-news"


class Settings(BaseSettings):
    """Every knob of the product, with its environment variable and default."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", frozen=True)

    data_dir: Path = Field(Path("data"), description="Folder of articles: .txt, .md, .html, .jsonl (RAG_DATA_DIR).")
    index_dir: Path = Field(Path("index"), description="Folder of the built index (RAG_INDEX_DIR).")
    models_dir: Path = Field(
        default_factory=_default_models_dir,
        description="Cache of offline model copies (RAG_MODELS_DIR), default ~/.cache/rag-news.",
    )
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL, description="sentence-transformers model name or path (RAG_EMBEDDING_MODEL)."
    )
    chunk_tokens: int = Field(200, ge=16, le=510, description="Chunk size in embedding-model tokens.")
    chunk_overlap: int = Field(40, ge=0, le=256, description="Overlap between chunks, in tokens.")
    top_k: int = Field(5, ge=1, le=50, description="Passages `rag search` returns (RAG_TOP_K).")
    answer_k: int = Field(
        3, ge=1, le=20, description="Passages given to the answer model and cited by `rag ask` (RAG_ANSWER_K)."
    )
    context_sentences: int = Field(
        2,
        ge=0,
        le=20,
        description="Sentences of each passage the answer model reads, those closest to the question; 0 = all.",
    )
    sentence_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Weight of a chunk's best-matching sentence in its score; the chunk itself gets the rest.",
    )
    lexical_weight: float = Field(
        0.45,
        ge=0.0,
        le=1.0,
        description="Weight of the BM25 leg in the fused score for a question in Arabic, the articles' language "
        "(0 = dense retrieval only).",
    )
    rendered_lexical_weight: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        description="Weight of the BM25 leg for a question in another language, whose Arabic terms come from the "
        "answer model's rendering (0 = dense retrieval only for such questions).",
    )
    lexical_terms: Literal["ngram", "stem"] = Field(
        "ngram", description="BM25 terms: in-word character 4-grams of folded Arabic, or light stems."
    )
    chunk_vectors: Literal["own", "pooled"] = Field(
        "own",
        description="How a chunk's vector is made: own (the chunk embedded as well as each of its sentences) or "
        "pooled (the token-weighted mean of its sentences' vectors: about half the embedding work of a build, "
        "XQuAD English R@1 0.819 vs 0.834). Saved with the index: changing it asks for `rag index build`.",
    )
    ann_min_chunks: int = Field(
        100_000,
        ge=0,
        description="From this many chunks on, a build adds an approximate (IVF) index that proposes candidates; "
        "below it every search is exact (make bench-scale measures both).",
    )
    vector_store: str = Field(
        "faiss",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Where the vectors live: faiss (files in the index folder, embedded) or milvus (a Milvus server "
        "or cluster, or Milvus Lite; RAG_MILVUS_URI), or another kind of the store registry (rag/index/stores/). "
        "Saved with the index: changing it asks for `rag index build`.",
    )
    milvus_uri: str | None = Field(
        None,
        description="The Milvus to use with RAG_VECTOR_STORE=milvus: http://host:19530 (a server or cluster) or a "
        "Milvus Lite file (one process at a time); unset = <index>/milvus.db (Milvus Lite).",
    )
    milvus_token: SecretStr | None = Field(
        None, description="Milvus server credentials (user:password or an API key); unset = none (Milvus Lite)."
    )
    milvus_prefix: str = Field(
        "rag", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Start of this index's Milvus collection names."
    )
    translate_queries: bool = Field(
        True,
        description="Render English questions in Arabic with the answer model (cached) for a second dense "
        "query and the BM25 leg.",
    )
    translation_weight: float = Field(
        0.2, ge=0.0, le=1.0, description="Weight of the Arabic rendering's dense score (the question gets the rest)."
    )
    translation_min_similarity: float = Field(
        0.78,
        ge=0.0,
        le=1.0,
        description="Drop an Arabic rendering whose cosine with the English question is below this (the embedded "
        "model garbles names: 'What did Medvedev warn about?' -> 'ماذا أعتذر مبدوا؟', 0.77).",
    )
    per_article: int = Field(0, ge=0, le=50, description="Most passages from one article in a result (0 = no cap).")
    recency_half_life_days: float = Field(
        0.0,
        ge=0.0,
        description="Prefer recent articles: a passage's score halves for every this many days its article is "
        "older than the index's newest (undated = as old as the oldest); 0 = off.",
    )
    refuse_below: float = Field(
        0.74,
        ge=0.0,
        le=1.0,
        description="Refuse without asking the model when no passage's dense score reaches this (off-topic question).",
    )
    answer_mode: Literal["auto", "quote", "generate"] = Field(
        "auto",
        description="quote = the key sentences of the articles verbatim; generate = the answer model's reply with "
        "its key quotes under it; auto = quote with the embedded model, generate with a configured endpoint.",
    )
    answer_confidence: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Least answerability (the estimated probability that the best key quote answers) to show an "
        "answer; below it the closest passages are shown as exactly that (docs/answer-or-abstain.md).",
    )
    closest_confidence: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description='Least answerability to show the closest passages; below it: "The articles do not say." '
        "(and in generate mode no answer model is asked).",
    )
    quote_count: int = Field(
        1,
        ge=1,
        le=5,
        description="Most key quotes a quote answer shows (1: on the seeds a second quote is from "
        "another article as often as not).",
    )
    quote_margin: float = Field(
        0.03, ge=0.0, le=1.0, description="A further quote is shown when it scores within this of the best."
    )
    cache_dir: Path | None = Field(
        None,
        description="Writable cache (query translations, answer-server state and log); default RAG_MODELS_DIR.",
    )
    verify_citations: bool = Field(True, description="Check every citation against the passage it cites.")
    support_floor: float = Field(
        0.75, ge=0.0, le=1.0, description="Least cosine between an answer sentence and a sentence of its source."
    )
    support_margin: float = Field(
        0.04,
        ge=0.0,
        le=1.0,
        description="How far a cited sentence may score below the best sentence in the index and still support.",
    )
    embed_batch_size: int = Field(16, ge=1, le=256, description="Passages embedded per batch.")
    embed_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="The encoder's precision for passages: auto (bf16 where the CPU computes it natively, AVX512_BF16 "
        "or granted AMX, and a probe at the build's start finds the same vectors within cosine 0.9999 and a real "
        "speed-up; else fp32), fp32 or bf16 (questions too). Recorded in the manifest; no rebuild needed to change it.",
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="Where the embedding model runs: auto (a CUDA GPU when torch sees one, else the CPU), cpu, "
        "cuda or cuda:N.",
    )
    query_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="CPU threads the embedding model uses while answering questions (page, ask, chat, search); "
        "0 = auto: every core for a question embedded alone, one each for questions embedded at the same time "
        "(several threads per search collide); N = always N.",
    )
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY"),
        description="API key of an OpenAI-compatible endpoint; unset = embedded local model.",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp...).",
    )
    llm_model: str | None = Field(
        None,
        description="Answer model name (RAG_LLM_MODEL); defaults to gpt-4o-mini on OpenAI, "
        "the embedded Qwen2.5-Coder-1.5B-Instruct when no endpoint is configured.",
    )
    llm_port: int = Field(8765, ge=1024, le=65535, description="Port of the embedded answer server.")
    llm_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 2, ge=1, description="CPU threads of the embedded answer server."
    )
    llm_context: int = Field(4096, ge=1024, description="Context window of the embedded answer server, in tokens.")
    llm_runtime: str = Field(
        "auto",
        pattern=r"^(auto|portable)$",
        description="Build of the embedded answer server's runtime: auto (the best variant `make install` built "
        "that this CPU runs, e.g. AVX-512, else the portable AVX2 build) or portable (always the AVX2 build).",
    )
    llm_timeout: float = Field(300.0, gt=0, description="Seconds to wait for an answer before giving up.")
    llm_max_tokens: int = Field(400, ge=16, description="Longest answer, in tokens.")
    llm_concurrency: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Most requests sent to the answer model at once, across the page's sessions and CLI calls; "
        "the others wait their turn. Default 1 for the embedded model (it answers one at a time), 4 for an "
        "endpoint.",
    )
    llm_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries by the openai client (backoff or Retry-After) on refusal, timeout, 408/409/429/5xx.",
    )
    state_dir: Path = Field(
        Path("state"),
        description="Folder of what is kept between runs besides the index: the chats and the API keys, in one "
        "SQLite database (state.db) that the page, `rag serve` and `rag keys` share.",
    )
    api_host: str = Field(
        "127.0.0.1",
        description="Address `rag serve` listens on; anything but loopback (127.0.0.1, ::1, localhost) requires "
        "an API key on every request.",
    )
    api_port: int = Field(8600, ge=1, le=65535, description="Port `rag serve` listens on.")
    api_concurrent: int = Field(
        4, ge=1, le=256, description="Most requests one API key (or the keyless local caller) has running at once."
    )
    api_per_minute: int = Field(
        60, ge=1, le=100_000, description="Most requests one API key (or the keyless local caller) starts a minute."
    )
    allowed_users: str = Field(
        "",
        description="With the page's login on (an [auth] section in .streamlit/secrets.toml): the e-mail "
        "addresses (a@desk.org) and domains (@desk.org) let in, comma-separated; empty = anyone the provider "
        "signs in.",
    )
    watch_confidence: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="Least answerability for a new article to count as answering a watch (`rag watch`): higher "
        "than RAG_ANSWER_CONFIDENCE, since an alert nobody asked for costs more than a missed one.",
    )
    sources_delay: float = Field(
        1.0, ge=0, le=600, description="`rag sources pull`: seconds between two requests to one host (a site's "
        "robots.txt Crawl-delay, when longer, wins)."
    )
    sources_timeout: float = Field(20.0, gt=0, le=600, description="`rag sources pull`: seconds one request may take.")
    sources_retries: int = Field(
        2, ge=0, le=10, description="`rag sources pull`: retries of a request that timed out or got 429 or 5xx."
    )
    sources_max_bytes: int = Field(
        5 * 1024 * 1024, ge=10_000, description="`rag sources pull`: the largest feed or page read, in bytes."
    )
    sources_max_items: int = Field(
        100, ge=1, le=100_000, description="`rag sources pull`: new items fetched per source per pull, newest "
        "first (the rest come with the next pulls)."
    )
    sources_user_agent: str = Field(
        "rag-news/0.1 (news archive reader)",
        description="`rag sources pull`: the User-Agent sent, and the name robots.txt rules are read for.",
    )
    translate_timeout: float = Field(
        20.0,
        gt=0,
        description="Seconds to wait for an English question's Arabic rendering before searching without it.",
    )

    @property
    def api_key(self) -> str | None:
        """The API key in clear, for the client only (the settings' repr masks it)."""
        return self.openai_api_key.get_secret_value() if self.openai_api_key else None

    @property
    def cache(self) -> Path:
        """Where the writable cache lives (RAG_CACHE_DIR, else the models folder)."""
        return self.cache_dir or self.models_dir

    @property
    def index_spec(self) -> IndexSpec:
        """What the index must be built with: the embedding model, chunk size and overlap, BM25 terms."""
        return IndexSpec(
            self.embedding_model,
            self.chunk_tokens,
            self.chunk_overlap,
            self.lexical_terms,
            self.vector_store,
            self.chunk_vectors,
        )

    @property
    def store_options(self) -> StoreOptions:
        """The settings the vector stores read (how a build lays out its store, where a Milvus server is)."""
        return StoreOptions({name: getattr(self, name) for name in type(self).model_fields})

    @property
    def uses_embedded_llm(self) -> bool:
        """True when no endpoint is configured and the local model answers."""
        return not self.api_key and not self.openai_base_url

    @property
    def answer_model(self) -> str:
        """The answer model name actually used."""
        if self.llm_model:
            return self.llm_model
        return EMBEDDED_LLM_NAME if self.uses_embedded_llm else OPENAI_DEFAULT_MODEL

    @property
    def answer_concurrency(self) -> int:
        """How many requests go to the answer model at once (RAG_LLM_CONCURRENCY, else 1 embedded, 4 endpoint)."""
        return self.llm_concurrency or (1 if self.uses_embedded_llm else 4)

    @property
    def answer_base_url(self) -> str | None:
        """The base URL of the answer endpoint (None = OpenAI's own)."""
        if self.uses_embedded_llm:
            return f"http://127.0.0.1:{self.llm_port}/v1"
        return self.openai_base_url


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit values (CLI options) taking precedence."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
