"""The `rag` command line: thin wrappers around the rag functions."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rag.cli import show
from rag.cli.sources import sources_app, watch_app
from rag.config import Settings, get_settings
from rag.errors import IndexBusyError, LLMError, RagError
from rag.types import Article, Filter, Skipped

if TYPE_CHECKING:
    from rag.answer.pipeline import AnswerPipeline
    from rag.embed.embedder import Embedder
    from rag.retrieve.retriever import Retriever

EXIT_BUSY = 3  # another build or update holds the index

app = typer.Typer(
    help="Ask questions about a folder of news articles, with cited sources.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="Offline copies of the embedding and answer models.", no_args_is_help=True)
index_app = typer.Typer(help="Build and inspect the search index.", no_args_is_help=True)
llm_app = typer.Typer(help="The embedded answer server.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for `rag serve` (kept hashed in RAG_STATE_DIR).", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(llm_app, name="llm")
app.add_typer(keys_app, name="keys")
app.add_typer(sources_app, name="sources")
app.add_typer(watch_app, name="watch")

DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Folder of articles (.txt, .md, .html, .jsonl) [env RAG_DATA_DIR; default data/]."),
]
IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index folder [env RAG_INDEX_DIR; default index/].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
KOpt = Annotated[int | None, typer.Option("-k", "--top-k", help="Passages to retrieve [env RAG_TOP_K; default 5].")]
AnswerKOpt = Annotated[
    int | None, typer.Option("-k", "--top-k", help="Passages the answer model reads [env RAG_ANSWER_K; default 3].")
]
QuestionArg = Annotated[str, typer.Argument(help="The question, in English or Arabic.")]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Only articles published on or after this day (YYYY-MM-DD, YYYY-MM, YYYY)."),
]
UntilOpt = Annotated[
    str | None,
    typer.Option("--until", help="Only articles published on or before this day (YYYY-MM-DD, YYYY-MM, YYYY)."),
]
OutletOpt = Annotated[
    list[str] | None, typer.Option("--outlet", help="Only articles of this outlet (repeat for several; any case).")
]
ArticleOpt = Annotated[list[str] | None, typer.Option("--article", help="Only this article id (repeat for several).")]


def _settings(**overrides: Any) -> Settings:
    try:
        return get_settings(**overrides)
    except ValueError as exc:  # pydantic's ValidationError
        first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": ["?"], "msg": str(exc)}  # type: ignore[attr-defined]
        field = ".".join(str(x) for x in first["loc"])
        raise RagError(f"Invalid setting {field}: {first['msg']}.") from exc


@models_app.command("install")
def models_install() -> None:
    """Make the default embedding and answer models loadable offline (idempotent)."""
    from rag.provision.install import install_e5, install_llm

    s = _settings()
    install_e5(s.models_dir, progress=typer.echo)
    install_llm(s.models_dir, progress=typer.echo)


WaitOpt = Annotated[
    bool, typer.Option("--wait", help="If another build or update is writing the index, wait for it (default: exit 3).")
]


def _writer_embedder(s: Settings, wait: bool) -> Embedder:
    """Checks shared by build and update (data folder, another writer) before the model loads; the embedder."""
    from rag.embed.embedder import embedder_for
    from rag.index.versions import check_not_busy

    if not s.data_dir.is_dir():
        raise RagError(f"Data folder {s.data_dir} does not exist: create it or pass --data DIR.")
    if not wait:
        check_not_busy(s.index_dir)
    return embedder_for(s)


def _write_options(s: Settings, wait: bool) -> dict[str, Any]:
    """The keyword arguments build_index and update_index share."""
    return {
        "progress": True,
        "wait": wait,
        "options": s.store_options,
        "on_wait": lambda msg: typer.echo(msg, err=True),
    }


def _echo_skipped(skipped: tuple[Skipped, ...], notices: tuple[str, ...] = ()) -> None:
    for skip in skipped:
        typer.echo(f"skipped {skip.path}: {skip.reason}", err=True)
    for notice in notices:
        typer.echo(f"note: {notice}", err=True)


@index_app.command("build")
def index_build(
    data: DataOpt = None,
    index: IndexOpt = None,
    if_stale: Annotated[
        bool, typer.Option("--if-stale", help="Only build when the index is missing or out of date.")
    ] = False,
    wait: WaitOpt = False,
) -> None:
    """Rebuild the index from every article in the data folder."""
    from rag.index.build import build_index, index_is_current

    s = _settings(data_dir=data, index_dir=index)
    if if_stale and index_is_current(s.data_dir, s.index_dir, s.index_spec):
        typer.echo(f"Index in {s.index_dir} is up to date.")
        return
    report = build_index(s.data_dir, s.index_dir, _writer_embedder(s, wait), s.index_spec, **_write_options(s, wait))
    _echo_skipped(report.skipped, report.notices)
    typer.echo(
        f"Indexed {report.articles} articles into {report.chunks} chunks in {report.seconds:.1f} s "
        f"({len(report.skipped)} skipped) -> {s.index_dir}"
    )


@index_app.command("update")
def index_update(data: DataOpt = None, index: IndexOpt = None, wait: WaitOpt = False) -> None:
    """Bring the index in line with the data folder: embed new and changed articles, drop removed ones."""
    from rag.index.build import update_index

    s = _settings(data_dir=data, index_dir=index)
    r = update_index(s.data_dir, s.index_dir, _writer_embedder(s, wait), s.index_spec, **_write_options(s, wait))
    _echo_skipped(r.skipped, r.notices)
    for label, ids in (("added", r.added), ("changed", r.changed), ("removed", r.removed)):
        for aid in ids:
            typer.echo(f"{label} {aid}")
    summary = (
        f"{len(r.added)} added, {len(r.changed)} changed, {len(r.removed)} removed, {r.unchanged} unchanged "
        f"({len(r.skipped)} skipped)"
    )
    if r.path is None:
        typer.echo(f"Index in {s.index_dir} is up to date: {summary}.")
    else:
        typer.echo(f"Updated {s.index_dir}: {summary}; {r.embedded} passages embedded in {r.seconds:.1f} s.")


@index_app.command("info")
def index_info(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Show what the index holds."""
    from rag.index.store import index_info as held

    s = _settings(index_dir=index)
    info = held(s.index_dir)
    if as_json:
        show.emit(info)
    else:
        for key, value in info.items():
            if key == "outlets":
                value = ", ".join(f"{name} ({n})" for name, n in value.items()) or "none known"
            elif key == "published":
                value = (
                    f"{value['first']} to {value['last']}, {value['undated']} undated" if value["first"] else "no dates"
                )
            typer.echo(f"{key:>9}: {value}")


def _filter(since: str | None, until: str | None, outlet: list[str] | None, article: list[str] | None) -> Filter:
    from rag.retrieve.filters import make_filter

    return make_filter(since, until, outlet or (), article or ())


def _scoped(s: Settings, scope: Filter) -> tuple[Retriever, Filter]:
    """The live index's retriever (the filter checked before the embedding model loads), one query thread per
    search, and the filter."""
    from rag.embed.embedder import use_query_threads
    from rag.retrieve.retriever import load_retriever

    retriever = load_retriever(s, scope=scope)
    use_query_threads(s.query_threads)
    return retriever, scope


@app.command()
def search(
    question: QuestionArg,
    k: KOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    outlet: OutletOpt = None,
    article: ArticleOpt = None,
) -> None:
    """Show the passages that best match a question (only from the articles the filters keep)."""
    s = _settings(index_dir=index, top_k=k)
    retriever, scope = _scoped(s, _filter(since, until, outlet, article))
    query = retriever.query(question, scope)
    hits = retriever.search(query, s.top_k)
    searched = (query.rendering, query.skipped)
    if as_json:
        from rag.answer.view import hits_json

        show.emit(hits_json(question, hits, retriever.index.articles, searched, scope))
    else:
        show.print_hits(hits, retriever.index.articles, searched, scope)


@app.command()
def said(
    person: Annotated[str, typer.Argument(help="Who: a person, an office or a body, in English or Arabic.")],
    about: Annotated[str | None, typer.Argument(help="Only what they said about this (optional).")] = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    outlet: OutletOpt = None,
    article: ArticleOpt = None,
) -> None:
    """What a person said, as a time line: every sentence the articles quote them in, by date, with its outlet
    (only about ABOUT when given; only from the articles the filters keep)."""
    from rag.attribute.said import said as find
    from rag.attribute.said import timeline_json

    retriever, scope = _scoped(_settings(index_dir=index), _filter(since, until, outlet, article))
    timeline = find(retriever, person, about, scope)
    if as_json:
        show.emit(timeline_json(timeline))
    else:
        show.print_filter(scope)
        show.print_timeline(timeline, retriever.index.articles)


@app.command()
def check(
    claim: Annotated[str, typer.Argument(help="The statement to check, in English or Arabic.")],
    index: IndexOpt = None,
    as_json: JsonOpt = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    outlet: OutletOpt = None,
    article: ArticleOpt = None,
) -> None:
    """Check a claim against the articles: supported, contradicted, not found, or mixed when they disagree, with
    the sentences for and against it (only from the articles the filters keep). Exit code 0 whatever the verdict."""
    from rag.check.claims import checker_for, verdict_json

    retriever, scope = _scoped(_settings(index_dir=index), _filter(since, until, outlet, article))
    verdict = checker_for(retriever).check(claim, scope)
    if as_json:
        show.emit(verdict_json(verdict))
    else:
        show.print_filter(scope)
        show.print_verdict(verdict, retriever.index.articles)


def _pipeline(s: Settings, scope: Filter | None = None) -> tuple[AnswerPipeline, Mapping[str, Article]]:
    """The answer pipeline over the live index (the answer model connects when first needed; a filter is checked
    before the embedding model loads); its articles."""
    from rag.answer.pipeline import AnswerPipeline
    from rag.llm.client import make_chat_model

    retriever, _ = _scoped(s, scope or Filter())
    return AnswerPipeline(s, retriever, lambda: make_chat_model(s)), retriever.index.articles


@app.command()
def ask(
    question: QuestionArg,
    k: AnswerKOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    outlet: OutletOpt = None,
    article: ArticleOpt = None,
) -> None:
    """Answer a question from the articles (only those the filters keep): key quotes verbatim, or a generated
    answer with checked citations."""
    from rag.answer.view import answer_view, retrieved_view

    s = _settings(index_dir=index, answer_k=k)
    scope = _filter(since, until, outlet, article)
    pipeline, articles = _pipeline(s, scope)
    stream = pipeline.ask(question, on_wait=show.say_waiting, scope=scope)
    try:
        if as_json:
            show.emit(dict(answer_view(stream.answer, stream.evidence, articles, scope).data))
        else:
            if scope.active:
                typer.echo(f"(filter: {scope.describe()})\n")
            show.stream_answer(stream, articles, scope)
    except LLMError:
        show.print_retrieved(retrieved_view(stream.evidence, articles), as_json)
        raise


@app.command()
def chat(
    k: AnswerKOpt = None,
    index: IndexOpt = None,
    show_search: Annotated[
        bool, typer.Option("--show-search", help="Print the standalone question each follow-up was searched as.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="One JSON line per answer (as `rag ask --json`, on one line); messages on stderr."),
    ] = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    outlet: OutletOpt = None,
    article: ArticleOpt = None,
) -> None:
    """Ask questions one after another; follow-ups ("And what did she say about weapons?") keep the thread.
    The filters (and `/filter`) choose the articles searched."""
    from rag.cli.chat import ChatLoop

    s = _settings(index_dir=index, answer_k=k)
    scope = _filter(since, until, outlet, article)
    pipeline, articles = _pipeline(s, scope)  # a filter that keeps nothing is an error before the first question
    ChatLoop(s, pipeline, scope, show_search=show_search, as_json=as_json).run(sys.stdin)


@app.command("eval")
def evaluate(
    source: Annotated[
        Path | None,
        typer.Option(
            "--questions",
            "--xquad",
            "--squad",
            help="What to measure on, told by the path: a question file in the seed_questions.jsonl format (.jsonl), "
            "an XQuAD folder (xquad.ar.json, xquad.en.json) or a SQuAD-format JSON file; a collection is indexed "
            "and queried.",
        ),
    ] = None,
    answers: Annotated[
        bool, typer.Option("--answers", help="Also ask the answer model and check the answers (includes --quotes).")
    ] = False,
    quotes: Annotated[
        bool,
        typer.Option("--quotes", help="Also check the key quotes (no answer model): quote_accuracy @1 and @3."),
    ] = False,
    withheld: Annotated[
        bool,
        typer.Option(
            "--withheld",
            help="With --xquad or --squad: index every other article only and ask every question; report answers, "
            "closest passages and refusals (docs/answer-or-abstain.md).",
        ),
    ] = False,
    query_lang: Annotated[
        str,
        typer.Option(
            "--query-lang", help="XQuAD question language: en or ar, or both on one index (ar,en; not --withheld)."
        ),
    ] = "en",
    limit_articles: Annotated[
        int | None, typer.Option("--limit-articles", min=1, help="Use only the first N XQuAD articles.")
    ] = None,
    statements: Annotated[
        Path | None,
        typer.Option(
            "--statements",
            help="An annotated file of sentences and their speakers (tests/fixtures/statements.jsonl): precision, "
            "recall and speaker accuracy of the statements the index found (docs/newsroom.md).",
        ),
    ] = None,
    said_questions: Annotated[
        Path | None,
        typer.Option(
            "--said",
            help="Who-said-what questions (tests/fixtures/said.jsonl): the share whose time line holds what it "
            "must and nothing it must not.",
        ),
    ] = None,
    claims: Annotated[
        list[Path] | None,
        typer.Option(
            "--claims",
            help="Claims with their right verdict (tests/fixtures/claims.jsonl, altered_claims.jsonl; repeatable): "
            "the share judged right, per verdict, and altered claims judged supported.",
        ),
    ] = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure retrieval (recall@1/5/10, MRR) and, with --answers, the answers; with --withheld, whether the answers
    know when the articles do not answer; with --statements and --said, who said what; with --claims, the claim
    check."""
    if statements is not None or said_questions is not None or claims:
        _evaluate_attribution(statements, said_questions, claims or [], index, as_json)
        return
    from rag.embed.embedder import embedder_for
    from rag.eval.evaluate import (
        evaluate_answers,
        evaluate_questions,
        evaluate_quotes,
        evaluate_xquad,
        load_questions,
        load_squad,
        load_xquad,
    )

    if source is None:
        raise RagError("Pass exactly one of --questions FILE, --xquad DIR or --squad FILE.")
    questions = source if source.suffix == ".jsonl" and not source.is_dir() else None
    xquad = source if source.is_dir() else None
    squad = source if questions is None and xquad is None else None
    if withheld and questions is not None:
        raise RagError("--withheld works on a collection: pass --xquad DIR or --squad FILE instead of --questions.")
    s = _settings(index_dir=index)
    result: dict[str, Any]
    if questions is None:  # a collection: its questions in --query-lang (a SQuAD file's own language)
        data = load_squad(squad, limit_articles) if squad is not None else load_xquad(xquad, limit_articles)  # type: ignore[arg-type]
        asked = list(dict.fromkeys(query_lang.split(",")))
        langs = list(
            dict.fromkeys(
                lang if lang in data.questions or squad is None else next(iter(data.questions)) for lang in asked
            )
        )
        unknown = [lang for lang in langs if lang not in data.questions]
        if unknown or (withheld and len(langs) > 1):
            raise RagError(f"--query-lang must be en or ar (or both for retrieval: ar,en), not {query_lang!r}.")
        lang = langs[0]
    if withheld:
        import tempfile

        from rag.eval import withheld as protocol
        from rag.retrieve.translate import make_translator

        with tempfile.TemporaryDirectory(prefix="rag-withheld-") as tmp:
            translator = make_translator(s) if lang == "en" else None
            rows = protocol.run(data, [lang], embedder_for(s), s, Path(tmp), translator, progress=not as_json)
        result = {"query_lang": lang, **protocol.report(rows, s.answer_confidence, s.closest_confidence)}
        result["reliability"] = [list(r) for r in protocol.reliability(rows, lambda r: r.confidence)]
    elif questions is not None:
        from rag.retrieve.retriever import load_retriever

        qs = load_questions(questions)
        retriever = load_retriever(s)
        answerable = any(q.answerable for q in qs)
        if not answerable and not answers:
            raise RagError(f"{questions} holds only unanswerable questions: pass --answers to check the refusals.")
        result = evaluate_questions(qs, retriever).as_json() if answerable else {"n": 0}
        if (quotes or answers) and answerable:
            result |= evaluate_quotes(qs, retriever, s)
        if answers:
            from rag.llm.client import make_chat_model

            result |= evaluate_answers(qs, retriever, lambda: make_chat_model(s), s)  # connected when first needed
    else:
        from rag.retrieve.translate import make_translator

        by_lang, seconds = evaluate_xquad(
            data, langs, embedder_for(s), s, make_translator(s), progress=not as_json, quotes=quotes
        )
        # one language: its figures at the top level; several: one object per language
        figures = by_lang[lang] if len(langs) == 1 else by_lang
        result = {**figures, "articles": len(data.articles), "index_seconds": round(seconds, 1)}
    if as_json:
        show.emit(result)
    else:  # per language figures (--query-lang ar,en) as ar.recall@1, en.recall@1, ...
        flat = {
            f"{key}.{k}" if isinstance(value, dict) else key: v
            for key, value in result.items()
            for k, v in (value.items() if isinstance(value, dict) else [(key, value)])
        }
        for key, value in flat.items():
            typer.echo(f"{key:>22}  {value}")


def _evaluate_attribution(
    statements: Path | None, questions: Path | None, claims: list[Path], index: Path | None, as_json: bool
) -> None:
    """`rag eval --statements FILE`, `--said FILE` and `--claims FILE` on the live index."""
    from rag.eval.attribution import evaluate_claims, evaluate_said, evaluate_statements
    from rag.retrieve.retriever import load_retriever

    for path in (p for p in (statements, questions, *claims) if p is not None):
        if not path.is_file():
            raise RagError(f"{path} is not a file: pass the annotated .jsonl file.")
    retriever = load_retriever(_settings(index_dir=index))
    result: dict[str, Any] = {}
    if statements is not None:
        result["statements"] = evaluate_statements(retriever, statements)
    if questions is not None:
        result["said"] = evaluate_said(retriever, questions)
    for path in claims:
        result[path.stem] = evaluate_claims(retriever, path)
    if as_json:
        show.emit(result)
        return
    for part, figures in result.items():
        for key, value in figures.items():
            if key == "mistakes":
                for m in value:
                    typer.echo(f"{part:>10}  mistake: {m}")
            else:
                typer.echo(f"{part:>10}  {key:>18}  {value}")


@llm_app.command("start")
def llm_start() -> None:
    """Start the embedded answer server on 127.0.0.1 (if not running)."""
    from rag.llm.local_server import ensure_local_server

    s = _settings()
    if not s.uses_embedded_llm:
        typer.echo(f"An endpoint is configured ({s.answer_base_url or 'OpenAI'}): no embedded answer server needed.")
        return
    url = ensure_local_server(s, retry_crashed=True)  # a server that crashed twice is tried again here
    typer.echo(f"Answer server ready at {url} (it answered a one-token completion)")


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """Check what is installed and whether it works: versions, CPU, answer runtime, models, index, answer model,
    a one-token answer and a one-query search; each line OK or what to do (exit code 1 when one fails)."""
    from rag.provision.doctor import diagnose

    s = _settings()
    failed = False
    results = []
    for check in diagnose(s):
        failed = failed or check.ok is False
        if as_json:
            results.append({"check": check.name, "ok": check.ok, "detail": check.detail, "fix": check.fix or None})
            continue
        mark = {True: "OK  ", False: "FAIL", None: "info"}[check.ok]
        typer.echo(f"{mark} {check.name}: {check.detail}" + (f"\n     -> {check.fix}" if check.fix else ""))
    if as_json:
        show.emit({"ok": not failed, "checks": results})
    if failed:
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on [env RAG_API_HOST; default 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port [env RAG_API_PORT; default 8600].")] = None,
    index: IndexOpt = None,
) -> None:
    """Serve the HTTP API: /v1/search, /v1/ask, /v1/articles/ID, /v1/index, /v1/chats and the OpenAI-compatible
    /v1/chat/completions (docs at /docs). Off loopback every request needs a key (`rag keys add NAME`)."""
    import uvicorn

    from rag.serve.api import create_app, is_loopback
    from rag.serve.archive import Archive
    from rag.state.db import StateDB
    from rag.state.keys import KeyStore

    s = _settings(index_dir=index, api_host=host, api_port=port)
    db = StateDB(s.state_dir)
    if not is_loopback(s.api_host) and not KeyStore(db).active():
        raise RagError(
            f"Listening on {s.api_host} lets anyone on that network in: make a key first (`rag keys add NAME`), "
            "or listen on 127.0.0.1."
        )
    archive = Archive(s)
    archive.pipeline()  # the index and the embedding model loaded before the first request
    typer.echo(f"Serving the API on http://{s.api_host}:{s.api_port} (docs at /docs; Ctrl+C stops it)", err=True)
    uvicorn.run(create_app(s, archive, db), host=s.api_host, port=s.api_port, log_level="info")


@keys_app.command("add")
def keys_add(name: Annotated[str, typer.Argument(help="Who or what holds the key, e.g. slack-bot.")]) -> None:
    """Make an API key; it is printed once, as the last word of the output (store it now)."""
    from rag.state.db import StateDB
    from rag.state.keys import KeyStore

    s = _settings()
    key = KeyStore(StateDB(s.state_dir)).add(name)
    typer.echo(f"API key {name!r} made; it is shown this once, so store it now:\n{key}")


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """The API keys: name, first characters, when made, when revoked (never the keys themselves)."""
    from dataclasses import asdict

    from rag.state.db import StateDB
    from rag.state.keys import KeyStore

    found = KeyStore(StateDB(_settings().state_dir)).keys()
    if as_json:
        show.emit([asdict(k) for k in found])
        return
    if not found:
        typer.echo("No API keys: `rag keys add NAME` makes one.")
    for k in found:
        state = f"revoked {k.revoked}" if k.revoked else "active"
        typer.echo(f"{k.name:<24} {k.hint:<12} made {k.created}  {state}")


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name (`rag keys list`).")]) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    from rag.state.db import StateDB
    from rag.state.keys import KeyStore

    KeyStore(StateDB(_settings().state_dir)).revoke(name)
    typer.echo(f"Revoked {name!r}.")


@llm_app.command("stop")
def llm_stop() -> None:
    """Stop the embedded answer server started by this tool."""
    from rag.llm.local_server import stop_local_server

    typer.echo("Stopped." if stop_local_server(_settings()) else "No embedded answer server was running.")


def main() -> None:
    """Entry point: every mistake is one line on stderr starting with "error:"; exit codes as in docs/cli.md."""
    try:
        from typer._click import exceptions as click_errors  # typer >= 0.2x vendors click
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions as click_errors  # type: ignore[no-redef]
    from typer import Abort

    try:
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:  # `rag index`: show the group's help
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click_errors.ClickException as exc:  # unknown option, missing argument, bad value
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "rag"  # type: ignore[attr-defined]
        typer.echo(f"error: {exc.format_message()} (see `{command} --help`)", err=True)
        sys.exit(exc.exit_code)
    except Abort:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except IndexBusyError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BUSY)
    except RagError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
