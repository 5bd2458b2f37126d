"""The HTTP API: search, ask (streamed as server-sent events or not), articles, the index, chats and an
OpenAI-compatible chat endpoint, every route over the same answer pipeline and filters as the page and the CLI.

Access: an API key (`Authorization: Bearer KEY`) on every request when the server listens off loopback, and on
loopback too as soon as one key exists; each caller has its limits (running at once, started a minute). Errors are
`{"error": {"message", "type", "code"}}` with a 4xx or 5xx status, the message saying what to fix.
"""


import ipaddress
import json
import threading
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException

from rag.answer.view import hits_json
from rag.config import Settings
from rag.errors import IndexChangedError, IndexMissingError, LLMError, RagError
from rag.index.store import index_info
from rag.retrieve.filters import make_filter
from rag.serve import completions
from rag.serve.answers import Finished, Saving, answer_events, answer_once
from rag.serve.archive import Archive
from rag.serve.limits import Limiter, TooManyRequestsError
from rag.state.chats import ChatNotFoundError, ChatStore
from rag.state.db import StateDB
from rag.state.export import chat_json, chat_markdown
from rag.state.keys import KeyStore
from rag.types import Filter

QUESTION_MAX = 2000  # characters: a question, not a document
Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=QUESTION_MAX)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterIn(Strict):
    """Which articles to search: published since / until a day (YYYY-MM-DD, YYYY-MM or YYYY), of these outlets,
    these article ids (empty = every article)."""

    since: str | None = None
    until: str | None = None
    outlets: list[str] = []
    articles: list[str] = []


class SearchIn(Strict):
    question: Question
    k: int | None = Field(None, ge=1, le=50, description="Passages to return (default RAG_TOP_K).")
    filter: FilterIn | None = None


class AskIn(Strict):
    question: Question
    k: int | None = Field(None, ge=1, le=20, description="Passages the answer reads (default RAG_ANSWER_K).")
    filter: FilterIn | None = None
    stream: bool = Field(False, description="Server-sent events: step, text, then answer (or error).")
    chat: str | None = Field(None, description="A chat of yours to continue (its turns are the history); saved.")
    save: bool = Field(False, description="Save the turn: to `chat`, else to a new chat titled by the question.")


class ChatIn(Strict):
    title: Title


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send more than we read (name, tool_calls, ...)
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Any = None


class CompletionIn(BaseModel):
    """OpenAI's chat request; sampling parameters (temperature, max_tokens, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool = False
    filter: FilterIn | None = None  # ours: `extra_body={"filter": {...}}` in the openai client
    k: int | None = Field(None, ge=1, le=20)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1, localhost and the rest of 127.0.0.0/8."""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """One line per mistake in the request, saying what to change; 400 for a body that is not JSON."""
    lines, status = [], 422
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        kind = e.get("type", "")
        if kind == "json_invalid":
            status = 400
            lines.append(f"The body is not valid JSON ({e.get('ctx', {}).get('error', 'parse error')}): send a JSON "
                         "object, with Content-Type: application/json.")  # fmt: skip
        elif kind == "extra_forbidden":
            lines.append(f"Unknown field {where!r}: remove it (the fields are in the API docs at /docs).")
        elif kind == "missing":
            lines.append(f"Field {where!r} is missing: add it.")
        elif kind == "string_too_long" and where.endswith("question"):
            lines.append(f"The question is longer than {QUESTION_MAX} characters: ask it in fewer words.")
        elif kind == "string_too_short" and where.endswith("question"):
            lines.append("The question is empty: send a question in English or Arabic.")
        else:
            lines.append(f"{where}: {e.get('msg', 'invalid')}.")
    return status, " ".join(lines)


def create_app(settings: Settings, archive: Archive | None = None, db: StateDB | None = None) -> FastAPI:
    """The API over `archive` (the settings' live index by default) and the state database (RAG_STATE_DIR)."""
    archive = archive or Archive(settings)
    db = db or StateDB(settings.state_dir)
    chats, keys = ChatStore(db), KeyStore(db)
    limiter = Limiter(settings.api_concurrent, settings.api_per_minute)
    open_door = is_loopback(settings.api_host)
    app = FastAPI(
        title="News answers API",
        version="1",
        description="Cited answers from the news archive. Send `Authorization: Bearer KEY` (`rag keys add NAME`).",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        return error(status, message, "invalid_request_error")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kinds = {401: "authentication_error", 404: "not_found_error", 405: "invalid_request_error"}
        response = error(exc.status_code, str(exc.detail), kinds.get(exc.status_code, "invalid_request_error"))
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        if isinstance(exc, TooManyRequestsError):
            response = error(429, str(exc), "rate_limit_error")
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        if isinstance(exc, ChatNotFoundError):
            return error(404, str(exc), "not_found_error")
        if isinstance(exc, IndexChangedError | IndexMissingError):
            return error(503, str(exc), "unavailable_error")
        if isinstance(exc, LLMError):
            return error(502, str(exc), "answer_model_error")
        return error(400, str(exc), "invalid_request_error")

    def caller(request: Request) -> str:
        """Who asks: "key:NAME" for a key's holder, "" for the local caller when no key is needed (loopback, and
        no key made yet)."""
        if open_door and not keys.made():  # loopback and no key made yet: the local user (a key sent is ignored)
            return ""
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
        if not key:
            raise HTTPException(
                401,
                "This API needs a key: send the header `Authorization: Bearer KEY` (an operator makes one with "
                "`rag keys add NAME`).",
            )
        name = keys.owner(key)
        if name is None:
            raise HTTPException(401, "The API key sent is unknown or revoked: ask an operator for a key.")
        return f"key:{name}"

    Caller = Annotated[str, Depends(caller)]

    def counted(who: Caller) -> str:
        """A quick request: counted against the caller's minute, refused while its running slots are full."""
        limiter.acquire(who)
        limiter.release(who)
        return who

    Counted = Annotated[str, Depends(counted)]

    def limited(who: str, work: Callable[[], Any]) -> Any:
        limiter.acquire(who)
        try:
            return work()
        finally:
            limiter.release(who)

    def streamed(who: str, body: Iterator[str], media: str) -> StreamingResponse:
        """A streamed reply holding one of the caller's running slots until it ends (or the client leaves)."""
        limiter.acquire(who)
        once = threading.Lock()

        def release() -> None:
            if once.acquire(blocking=False):
                limiter.release(who)

        def guarded() -> Iterator[str]:
            try:
                yield from body
            finally:
                release()

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(guarded(), media_type=media, headers=headers, background=BackgroundTask(release))

    def scope_of(given: FilterIn | None) -> Filter:
        """The filter, checked against the live index (one that keeps nothing is a 400 saying what it holds)."""
        if given is None:
            return Filter()
        scope = make_filter(given.since, given.until, given.outlets, given.articles)
        archive.retriever.index.where(scope)  # raises NothingMatchesError
        return scope

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/index", summary="What the live index holds")
    def index(who: Counted) -> dict[str, Any]:
        return index_info(settings.index_dir)

    @app.get("/v1/articles/{article_id}", summary="One article, whole, with its metadata")
    def article(article_id: str, who: Counted) -> dict[str, Any]:
        found = archive.retriever.index.articles.get(article_id)
        if found is None:
            raise HTTPException(404, f"No article {article_id!r} in the index: /v1/search finds article ids.")
        return {
            "id": found.id,
            "title": found.title,
            "outlet": found.outlet,
            "published": found.published,
            "url": found.url,
            "language": found.language,
            "author": found.author,
            "sha256": found.sha256,
            "text": found.text,
        }

    @app.post("/v1/search", summary="The passages that best match a question")
    def search(body: SearchIn, who: Caller) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            retriever = archive.retriever
            scope = scope_of(body.filter)
            query = retriever.query(body.question, scope)
            hits = retriever.search(query, body.k or settings.top_k)
            searched = (query.rendering, query.skipped)
            return hits_json(body.question, hits, retriever.index.articles, searched, scope)

        return limited(who, run)  # type: ignore[no-any-return]

    def saving_for(body: AskIn, who: str, version: str | None) -> tuple[Saving | None, tuple[Any, ...]]:
        """Where the turn is saved (a new chat made now when `save` is asked without `chat`), and the history."""
        if body.chat:
            return Saving(chats, body.chat, who, version), chats.history(body.chat, who)
        if body.save:
            return Saving(chats, chats.create(who, body.question).id, who, version), ()
        return None, ()

    @app.post("/v1/ask", summary="A cited answer (as `rag ask --json`); server-sent events with stream: true")
    def ask(body: AskIn, who: Caller) -> Any:
        pipeline, version = archive.current()
        scope = scope_of(body.filter)
        if body.chat:
            chats.get(body.chat, who)  # a 404 now, not an event later
        if not body.stream:

            def run() -> dict[str, Any]:
                saving, history = saving_for(body, who, version)
                return answer_once(pipeline, body.question, history, k=body.k, scope=scope, saving=saving).data

            return limited(who, run)

        def events() -> Iterator[str]:
            try:
                saving, history = saving_for(body, who, version)
                for kind, value in answer_events(pipeline, body.question, history, k=body.k, scope=scope,
                                                 saving=saving):  # fmt: skip
                    yield _sse("answer", value.data) if kind == "done" else _sse(kind, {kind: value})
            except RagError as exc:
                yield _sse("error", {"error": {"message": str(exc), "type": type(exc).__name__}})

        return streamed(who, events(), "text/event-stream")

    @app.get("/v1/chats", summary="Your chats, the most recent first")
    def list_chats(who: Counted) -> dict[str, Any]:
        return {"chats": [c.as_json() for c in chats.chats(who)]}

    @app.post("/v1/chats", status_code=201, summary="A new, empty chat")
    def new_chat(body: ChatIn, who: Counted) -> dict[str, Any]:
        return chats.create(who, body.title).as_json()

    @app.get("/v1/chats/{chat_id}", summary="A chat with its turns (each cited passage says if its article changed)")
    def get_chat(chat_id: str, who: Counted) -> dict[str, Any]:
        return chat_json(chats.get(chat_id, who), chats.turns(chat_id, who), archive.retriever.index.articles)

    @app.patch("/v1/chats/{chat_id}", summary="Rename a chat")
    def rename_chat(chat_id: str, body: ChatIn, who: Counted) -> dict[str, Any]:
        return chats.rename(chat_id, who, body.title).as_json()

    @app.delete("/v1/chats/{chat_id}", status_code=204, summary="Delete a chat and its turns")
    def delete_chat(chat_id: str, who: Counted) -> Response:
        chats.delete(chat_id, who)
        return Response(status_code=204)

    @app.get("/v1/chats/{chat_id}/export", summary="A chat as a Markdown or JSON file")
    def export_chat(chat_id: str, who: Counted, format: Literal["markdown", "json"] = "markdown") -> Response:
        chat, turns = chats.get(chat_id, who), chats.turns(chat_id, who)
        articles = archive.retriever.index.articles
        name = f"chat-{chat.id}.{'md' if format == 'markdown' else 'json'}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if format == "json":
            text = json.dumps(chat_json(chat, turns, articles), ensure_ascii=False, indent=2)
            return Response(text, media_type="application/json", headers=headers)
        return PlainTextResponse(chat_markdown(chat, turns, articles), media_type="text/markdown", headers=headers)

    @app.get("/v1/models", summary="OpenAI-compatible: the model the archive answers as")
    def list_models(who: Counted) -> dict[str, Any]:
        return completions.models()

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat: cited answers, [n] markers and `citations`")
    def chat_completions(body: CompletionIn, who: Caller) -> Any:
        question, history = completions.conversation(body.messages)
        if len(question) > QUESTION_MAX:
            raise RagError(f"The question is longer than {QUESTION_MAX} characters: ask it in fewer words.")
        pipeline, _ = archive.current()
        scope = scope_of(body.filter)
        model = body.model or completions.MODEL
        if not body.stream:

            def run() -> dict[str, Any]:
                done = answer_once(pipeline, question, history, k=body.k, scope=scope)
                return completions.completion(done, _text(done), model)

            return limited(who, run)

        def events() -> Iterator[str]:
            try:
                for chunk in completions.chunks(answer_events(pipeline, question, history, k=body.k, scope=scope),
                                                model):  # fmt: skip
                    yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            except RagError as exc:
                yield f"data: {json.dumps({'error': {'message': str(exc), 'type': type(exc).__name__}})}\n\n"
            yield "data: [DONE]\n\n"

        return streamed(who, events(), "text/event-stream")

    app.state.archive, app.state.keys, app.state.open_door = archive, keys, open_door
    return app


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _text(done: Finished) -> str:
    """The answer's text, or the answer model's error when it failed."""
    return done.view.text if not done.error else str(done.data["error"])
