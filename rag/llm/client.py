"""Generating: any OpenAI-compatible endpoint through the `openai` client (the embedded server started on demand)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

from rag.config import Settings
from rag.errors import LLMError, LLMTimeoutError
from rag.llm.gate import ModelBusyError, ModelGate, OnWait, gate_for
from rag.llm.local_server import crash_error, ensure_local_server

log = logging.getLogger(__name__)


class ChatModel(Protocol):
    """What the pipeline needs from an answer model."""

    name: str
    endpoint: str

    def stream(self, messages: list[dict[str, str]], on_wait: OnWait | None = None) -> Iterator[str]:
        """Yield the answer text as it is generated; `on_wait` hears how many requests are ahead while queued."""
        ...


@dataclass(frozen=True, slots=True)
class Queue:
    """Where requests wait their turn at the model: its gate, and how long a wait may go without the line moving
    (None = the request timeout; 0 = fail at once with ModelBusyError when the model is busy)."""

    gate: ModelGate
    timeout: float | None = None


class OpenAIChat:
    """Chat completions, streamed, from an OpenAI-compatible endpoint.

    Retries are the `openai` client's own (`retries` of them, exponential backoff from 0.5 s with jitter, or the
    server's `Retry-After`): a refused connection, a timeout, HTTP 408/409/429 or a 5xx before the answer starts.
    What the client does not do is ours: a stream cut after text was shown is reported, never retried (the reader
    would see the start twice), and messages name the endpoint and the fix; the API key never appears in them.

    With a `queue`, the request first waits its turn at the gate (given up when no request ahead finishes for
    `queue.timeout` seconds, default `timeout`; 0 = fail at once with ModelBusyError when the model is busy), so
    concurrent questions queue instead of colliding; the client's retries happen within that turn.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        max_tokens: int,
        retries: int = 2,
        queue: Queue | None = None,
        diagnose: Callable[[], LLMError | None] | None = None,
    ) -> None:
        from openai import OpenAI

        self.name = model
        self.endpoint = base_url or "https://api.openai.com/v1"
        self.max_tokens = max_tokens
        self.attempts = retries + 1
        self.gate = queue.gate if queue is not None else None
        self.queue_timeout = timeout if queue is None or queue.timeout is None else queue.timeout
        self._key = api_key or ""
        self.diagnose = diagnose  # after a failed request: what happened to the server (the embedded one crashed)
        # Local servers ignore the key, but the client insists on one.
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=retries)

    def stream(self, messages: list[dict[str, str]], on_wait: OnWait | None = None) -> Iterator[str]:
        """Yield the answer text as it is generated; `on_wait` hears how many requests are ahead while queued."""
        try:
            yield from self._stream(messages, on_wait)
        except LLMError as exc:
            quiet = isinstance(exc, ModelBusyError | LLMTimeoutError)  # a live server said so: nothing crashed
            crashed = self.diagnose() if self.diagnose is not None and not quiet else None
            if crashed is not None:
                raise crashed from exc
            raise

    def _stream(self, messages: list[dict[str, str]], on_wait: OnWait | None) -> Iterator[str]:
        import httpx
        import openai

        shown = False
        try:
            with self._turn(on_wait):
                response = self.client.chat.completions.create(
                    model=self.name,
                    messages=messages,  # type: ignore[arg-type]
                    stream=True,
                    temperature=0.0,
                    max_tokens=self.max_tokens,
                )
                finished = False
                for event in response:
                    choices = getattr(event, "choices", None)
                    if not choices:
                        continue
                    if choices[0].delta and choices[0].delta.content:
                        shown = True
                        yield choices[0].delta.content
                    finished = finished or bool(choices[0].finish_reason)
                if not finished:
                    raise self._cut("ended its stream before the answer was finished", shown)
        except openai.APITimeoutError as exc:
            if shown:
                raise self._cut("timed out", shown) from exc
            raise LLMTimeoutError(
                f"The answer model at {self.endpoint} timed out ({self.attempts} attempts): "
                "try again, or raise RAG_LLM_TIMEOUT."
            ) from exc
        except openai.APIConnectionError as exc:
            fix = "check OPENAI_BASE_URL, or that the server is running."
            raise self._failed("cannot be reached", fix, shown) from exc
        except openai.AuthenticationError as exc:
            raise LLMError(f"The answer model at {self.endpoint} refused the API key: check OPENAI_API_KEY.") from exc
        except openai.APIStatusError as exc:
            why = f"failed with HTTP {exc.status_code}"
            if exc.status_code in (408, 409, 429) or exc.status_code >= 500:  # the ones the client retried
                raise self._failed(why, _FIX_RETRY, shown) from exc
            raise LLMError(
                f"The answer model at {self.endpoint} {why}: {self._clean(str(exc.message))}. "
                "Check RAG_LLM_MODEL and OPENAI_BASE_URL."
            ) from exc
        except (httpx.HTTPError, openai.APIError) as exc:  # the connection dropped mid-stream
            raise self._cut(f"dropped the connection ({type(exc).__name__})", shown) from exc

    def _turn(self, on_wait: OnWait | None) -> AbstractContextManager[None]:
        """This request's turn at the model, held while the client tries and retries."""
        return self.gate.turn(self.queue_timeout, on_wait) if self.gate is not None else nullcontext()

    def _failed(self, why: str, fix: str, shown: bool) -> LLMError:
        """The error for a request the client gave up on after its retries."""
        if shown:
            return self._cut(why, shown)
        return LLMError(f"The answer model at {self.endpoint} {self._clean(why)} ({self.attempts} attempts): {fix}")

    def _cut(self, why: str, shown: bool) -> LLMError:
        """The error for a stream that stopped early: after text, the start stays shown and is not repeated."""
        if shown:
            return LLMError(
                f"The answer from {self.endpoint} was cut off mid-answer ({self._clean(why)}): "
                "ask again; the passages found are below."
            )
        return LLMError(f"The answer model at {self.endpoint} {self._clean(why)}: {_FIX_RETRY}")

    def _clean(self, text: str) -> str:
        """The text with the API key masked, should a server echo it back."""
        return text.replace(self._key, "***") if len(self._key) >= 4 else text


_FIX_RETRY = "try again later; if it keeps failing, check the server's log."


class LazyChat:
    """An answer model that connects (and starts the embedded server) only when it is first asked something."""

    def __init__(self, connect: Callable[[], ChatModel], name: str, endpoint: str = "") -> None:
        self.connect = connect
        self.name = name
        self.endpoint = endpoint
        self._chat: ChatModel | None = None
        self._lock = threading.Lock()

    def stream(self, messages: list[dict[str, str]], on_wait: OnWait | None = None) -> Iterator[str]:
        """Yield the answer text as it is generated (connecting first if needed)."""
        with self._lock:
            if self._chat is None:
                self._chat = self.connect()
        yield from self._chat.stream(messages, on_wait)


def make_chat_model(settings: Settings, queue_timeout: float | None = None) -> ChatModel:
    """The configured answer model; starts the embedded server when no endpoint is configured.

    Requests queue for their turn (RAG_LLM_CONCURRENCY at once) as long as the line moves: a wait gives up when
    no request ahead finishes for `queue_timeout` seconds, by default RAG_LLM_TIMEOUT; 0 = never wait
    (ModelBusyError when the model is busy).
    """
    if settings.openai_base_url and not settings.llm_model:
        raise LLMError("OPENAI_BASE_URL is set but RAG_LLM_MODEL is not: set RAG_LLM_MODEL to the model it serves.")
    base_url = ensure_local_server(settings) if settings.uses_embedded_llm else settings.answer_base_url
    endpoint = base_url or "https://api.openai.com/v1"
    gate = gate_for(settings.cache, endpoint, settings.answer_model, settings.answer_concurrency)
    return OpenAIChat(
        settings.answer_model,
        base_url,
        settings.api_key,
        settings.llm_timeout,
        settings.llm_max_tokens,
        retries=settings.llm_retries,
        queue=Queue(gate, queue_timeout),
        diagnose=(lambda: crash_error(settings)) if settings.uses_embedded_llm else None,
    )
