"""The live index and its answer pipeline for a long-running server: loaded once, reloaded when a build or update
makes a new version, shared by every request (the retriever and the pipeline are thread-safe, as for the page)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from rag.answer.pipeline import AnswerPipeline
from rag.config import Settings
from rag.embed.embedder import Embedder
from rag.index.versions import live_version
from rag.llm.client import ChatModel
from rag.retrieve.retriever import Retriever, load_retriever


class Archive:
    """The answer pipeline over the live index version (`pipeline()`); the embedding model and the answer model are
    made once (by the given factories, else the settings')."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | Callable[[], Embedder] | None = None,
        chat: ChatModel | Callable[[], ChatModel] | None = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._chat = chat
        self._lock = threading.Lock()
        self._pipeline: AnswerPipeline | None = None
        self._version: str | None = None

    def embedder(self) -> Embedder:
        from rag.embed.embedder import embedder_for

        if self._embedder is None:
            self._embedder = embedder_for(self.settings)
        elif not hasattr(self._embedder, "embed_query"):
            self._embedder = self._embedder()  # type: ignore[operator]
        return self._embedder  # type: ignore[return-value]

    def _chat_model(self) -> ChatModel | Callable[[], ChatModel]:
        if self._chat is not None:
            return self._chat
        from rag.llm.client import make_chat_model

        settings = self.settings
        return lambda: make_chat_model(settings)

    def pipeline(self) -> AnswerPipeline:
        """The pipeline over the live version (loaded now when a build or update made a new one)."""
        return self.current()[0]

    def current(self) -> tuple[AnswerPipeline, str | None]:
        """The pipeline over the live version, and that version's name."""
        version = live_version(self.settings.index_dir)
        with self._lock:
            if self._pipeline is None or version != self._version:
                from rag.embed.embedder import use_query_threads

                retriever = load_retriever(self.settings, self.embedder())
                use_query_threads(self.settings.query_threads)
                retriever.warm_up()
                self._pipeline = (
                    self._pipeline.over(retriever)
                    if self._pipeline is not None
                    else AnswerPipeline(self.settings, retriever, self._chat_model())
                )
                self._version = version
            return self._pipeline, self._version

    @property
    def retriever(self) -> Retriever:
        return self.pipeline().retriever
