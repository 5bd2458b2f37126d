"""The `rag` command line: thin wrappers around the rag functions."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rag.answer.prompts import CLOSEST_INTROS, UNCERTAIN_INTROS
from rag.answer.render import also_reported_by, safe_url, source_text
from rag.config import Settings, get_settings
from rag.errors import IndexBusyError, LLMError, RagError
from rag.types import Answer, Article, Chunk, Citation, Evidence, Filter, Hit, KeyQuote, Skipped

if TYPE_CHECKING:
    from rag.answer.pipeline import AnswerPipeline, AnswerStream
    from rag.embed.embedder import Embedder

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
app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(llm_app, name="llm")

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


def _emit(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


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
    from rag.index.manifest import read_manifest
    from rag.index.store import holdings
    from rag.index.stores import backend

    s = _settings(index_dir=index)
    m = read_manifest(s.index_dir)
    info: dict[str, Any] = {
        "articles": len(m.articles),
        "chunks": m.chunks,
        "sentences": m.sentences,
        "model": m.model,
        "dim": m.dim,
        "built_at": m.built_at,
        "store": m.kind,
        **backend(m.kind).describe(m.store, s.index_dir),
    }
    info |= holdings(s.index_dir)
    if as_json:
        _emit(info)
    else:
        for key, value in info.items():
            if key == "outlets":
                value = ", ".join(f"{name} ({n})" for name, n in value.items()) or "none known"
            elif key == "published":
                value = (
                    f"{value['first']} to {value['last']}, {value['undated']} undated" if value["first"] else "no dates"
                )
            typer.echo(f"{key:>9}: {value}")


def _chunk_json(c: Chunk) -> dict[str, Any]:
    return {"article_id": c.article_id, "chunk_id": c.id, "start": c.start, "end": c.end, "text": c.text}


def _source_json(article_id: str, also: tuple[str, ...], articles: Mapping[str, Article]) -> dict[str, Any]:
    """Where a passage comes from: title, outlet, date, link (null when unknown), and who else carried it."""
    article = articles.get(article_id)
    return {
        "title": article.title if article else None,
        "outlet": article.outlet if article else None,
        "published": article.published if article else None,
        "url": safe_url(article.url) if article else None,  # a web address only (http, https)
        "also_reported_by": also_reported_by(article, also, articles),
    }


def _hit_json(rank: int, hit: Hit, articles: Mapping[str, Article]) -> dict[str, Any]:
    scores = {"score": round(hit.score, 4), "dense": round(hit.dense, 4), "lexical": round(hit.lexical, 4)}
    return {"rank": rank, **scores, **_chunk_json(hit.chunk), **_source_json(hit.chunk.article_id, hit.also, articles)}


def _filter(since: str | None, until: str | None, outlet: list[str] | None, article: list[str] | None) -> Filter:
    from rag.retrieve.filters import make_filter

    return make_filter(since, until, outlet or (), article or ())


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
    from rag.embed.embedder import use_query_threads
    from rag.retrieve.retriever import load_retriever

    s = _settings(index_dir=index, top_k=k)
    scope = _filter(since, until, outlet, article)
    retriever = load_retriever(s, scope=scope)
    use_query_threads(s.query_threads)
    query = retriever.query(question, scope)
    hits = retriever.search(query, s.top_k)
    rendering, skipped = query.rendering, query.skipped
    articles = retriever.index.articles
    if as_json:
        hits_json = [_hit_json(i, h, articles) for i, h in enumerate(hits, 1)]
        _emit(
            {
                "query": question,
                "filter": _filter_json(scope),
                "translation": rendering,
                "translation_skipped": skipped,
                "hits": hits_json,
            }
        )
        return
    if scope.active:
        typer.echo(f"(filter: {scope.describe()})")
    if rendering:
        typer.echo(f"(also searched as: {rendering})\n")
    else:
        _searched_without(skipped)
    for i, h in enumerate(hits, 1):
        typer.echo(f"[{i}] {h.score:.3f} {h.chunk.id}")
        about = source_text(articles.get(h.chunk.article_id), h.also, articles)
        typer.echo(f"{about}\n{h.chunk.text}\n" if about else f"{h.chunk.text}\n")


def _filter_json(scope: Filter) -> dict[str, Any] | None:
    if not scope.active:
        return None
    return {
        "since": scope.since,
        "until": scope.until,
        "outlets": list(scope.outlets),
        "articles": list(scope.articles),
    }


def _citation_json(c: Citation, articles: Mapping[str, Article]) -> dict[str, Any]:
    return {
        "n": c.n,
        **_chunk_json(c.chunk),
        **_source_json(c.chunk.article_id, c.also, articles),
        "supported": c.supported,
        "quote": c.quote,
        "support": round(c.support, 4),
    }


def _quote_json(q: KeyQuote) -> dict[str, Any]:
    return {
        "n": q.n,
        "quote": q.text,
        "score": q.score,
        "start": q.start,
        "end": q.end,
        "article_id": q.chunk.article_id,
    }


def _answer_json(a: Answer, evidence: Evidence, articles: Mapping[str, Article], scope: Filter) -> dict[str, Any]:
    return {
        "question": a.question,
        "filter": _filter_json(scope),
        "standalone_question": a.standalone,
        "answer": a.text,
        "mode": a.mode,
        "outcome": a.outcome,
        "confidence": a.confidence,
        "signals": dict(a.signals),
        "refused": a.refused,
        "refused_by": a.refused_by,
        "unsupported": a.unsupported,
        "citations": [_citation_json(c, articles) for c in a.citations],
        "key_quotes": [_quote_json(q) for q in a.key_quotes],
        "closest": _quote_json(a.closest) if a.closest else None,
        "model": a.model,
        "translation": evidence.translation,
        "translation_skipped": evidence.translation_skipped,
        "timings": {
            "search": round(a.search_seconds, 3),
            "first_text": None if a.first_text_seconds is None else round(a.first_text_seconds, 3),
            "waited": round(a.waited_seconds, 3),
            "total": round(a.seconds, 3),
        },
    }


UNSUPPORTED_WARNING = "⚠ No cited passage supports this answer: read the sources before trusting it."


def _source_line(
    n: int, chunk: Chunk, articles: Mapping[str, Article], also: tuple[str, ...] = (), mark: str = ""
) -> str:
    """[n] id (offsets) title [mark], then, indented, outlet · date · link · also reported by … when known."""
    article = articles.get(chunk.article_id)
    line = f"[{n}] {chunk.article_id} ({chunk.start}-{chunk.end}) {article.title if article else ''}{mark}"
    about = source_text(article, also, articles)
    return f"{line}\n    {about}" if about else line


def _print_citations(a: Answer, articles: Mapping[str, Article]) -> None:
    """Each cited passage, marked "unverified" (with the reason) when it does not support its sentence; in
    generate mode the key quotes follow, and the closest passage when the model abstained."""
    if a.unsupported:
        typer.echo(UNSUPPORTED_WARNING + "\n")
    if a.mode == "quote":
        mark = " (quoted verbatim)" if a.outcome == "answer" else " (closest passage, verbatim: it may not answer)"
        for c in a.citations:
            typer.echo(_source_line(c.n, c.chunk, articles, c.also, mark))
        typer.echo()
        return
    if a.outcome == "closest" and a.closest is None:  # an answer the estimate doubts and no citation verified
        typer.echo(f"⚠ {UNCERTAIN_INTROS['en']}\n")
    for c in a.citations:
        mark = "" if c.supported is None else " ✓ supported" if c.supported else f" ⚠ unverified: {c.reason}"
        typer.echo(_source_line(c.n, c.chunk, articles, c.also, mark))
        typer.echo(f"    quote: {c.quote}\n" if c.quote else f"    {c.chunk.text}\n")
    if a.closest is not None:
        typer.echo(f"{CLOSEST_INTROS['en']}\n> {a.closest.text} [{a.closest.n}]")
        typer.echo(_source_line(a.closest.n, a.closest.chunk, articles, a.hits[a.closest.n - 1].also) + "\n")
    elif a.key_quotes and not a.refused:
        typer.echo("Key quote from the articles (verbatim):")
        best = a.key_quotes[0]
        typer.echo(f"> {best.text} [{best.n}]\n")


def _say_waiting(ahead: int) -> None:
    """On stderr, while a question queues for the answer model (busy with other people's questions)."""
    if ahead:
        typer.echo(f"waiting for the answer model: {ahead} ahead", err=True)


def _searched_without(reason: str | None) -> None:
    """On stderr, why an English question was searched without its Arabic rendering (nothing when it was not)."""
    if reason:
        typer.echo(f"(searched without the Arabic rendering: {reason})\n", err=True)


def _stream_answer(stream: AnswerStream, articles: Mapping[str, Article]) -> Answer:
    _searched_without(stream.evidence.translation_skipped)
    for delta in stream:
        typer.echo(delta, nl=False)
    typer.echo("\n")
    a = stream.answer
    _print_citations(a, articles)
    return a


def _pipeline(s: Settings, scope: Filter | None = None) -> tuple[AnswerPipeline, Mapping[str, Article]]:
    """The answer pipeline over the live index (the answer model connects when first needed; a filter is checked
    before the embedding model loads); its articles."""
    from rag.answer.pipeline import AnswerPipeline
    from rag.embed.embedder import use_query_threads
    from rag.llm.client import make_chat_model
    from rag.retrieve.retriever import load_retriever

    retriever = load_retriever(s, scope=scope)
    use_query_threads(s.query_threads)
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
    s = _settings(index_dir=index, answer_k=k)
    scope = _filter(since, until, outlet, article)
    pipeline, articles = _pipeline(s, scope)
    stream = pipeline.ask(question, on_wait=_say_waiting, scope=scope)
    try:
        if as_json:
            _emit(_answer_json(stream.answer, stream.evidence, articles, scope))
        else:
            if scope.active:
                typer.echo(f"(filter: {scope.describe()})\n")
            _stream_answer(stream, articles)
    except LLMError:
        _print_retrieved(stream.evidence, articles, as_json)
        raise


def _print_retrieved(evidence: Evidence, articles: Mapping[str, Article], as_json: bool) -> None:
    """When the answer model fails: the passages that were found, so the question is not wasted."""
    if as_json:
        hits = [_hit_json(i, h, articles) for i, h in enumerate(evidence.hits, 1)]
        _emit({"question": evidence.question, "answer": None, "passages": hits})
        return
    typer.echo("\n\nThe answer model failed; the passages found for the question:\n")
    for i, h in enumerate(evidence.hits, 1):
        typer.echo(_source_line(i, h.chunk, articles, h.also))
        typer.echo(f"    {h.chunk.text}\n")


CHAT_HELP = (
    "Commands: /sources (what the last answer searched and read), /filter (which articles to search: "
    "/filter since 2024-01 outlet BBC; /filter off), /new (forget the conversation), /quit."
)


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
    from rag.index.versions import live_version
    from rag.retrieve.filters import parse_filter_command
    from rag.retrieve.followup import Turn

    s = _settings(index_dir=index, answer_k=k)
    scope = _filter(since, until, outlet, article)
    pipeline, articles = _pipeline(s, scope)  # a filter that keeps nothing is an error before the first question
    pipeline.retriever.warm_up()  # before the prompt: the first question is as quick as the next ones
    history: list[Turn] = []
    last: Answer | None = None
    version = live_version(s.index_dir)
    typer.echo(f"Ask about the articles in {s.index_dir}. {CHAT_HELP}", err=as_json)
    for line in sys.stdin:
        question = line.strip()
        if not question:
            continue
        if live_version(s.index_dir) != version:  # a build or update switched versions: answer from the new one
            from rag.retrieve.retriever import load_retriever

            retriever = load_retriever(s, pipeline.retriever.embedder, pipeline.retriever.translator)
            pipeline = pipeline.over(retriever)
            articles = retriever.index.articles
            version = live_version(s.index_dir)
            typer.echo(f"(index updated: {len(retriever.index.articles)} articles)", err=as_json)
        if question in ("/quit", "/exit"):
            break
        if question == "/new":
            history, last = [], None
            typer.echo("(new conversation)", err=as_json)
            continue
        if question == "/sources":
            _print_sources(last, articles)
            continue
        if question == "/filter" or question.startswith("/filter "):
            try:
                wanted = parse_filter_command(question, scope)
                pipeline.retriever.where(wanted)  # checked now: a filter that keeps nothing is refused here
            except RagError as exc:
                typer.echo(f"error: {exc}", err=True)
                continue
            scope = wanted
            typer.echo(f"(filter: {scope.describe() or 'none, every article is searched'})", err=as_json)
            continue
        stream = None
        try:
            stream = pipeline.ask(question, tuple(history), on_wait=_say_waiting, scope=scope)
            if show_search and stream.evidence.question != question:
                typer.echo(f"(searched as: {stream.evidence.question})", err=as_json)
            if as_json:
                last = stream.answer
                typer.echo(json.dumps(_answer_json(last, stream.evidence, articles, scope), ensure_ascii=False))
            else:
                if scope.active:
                    typer.echo(f"(filter: {scope.describe()})\n")
                last = _stream_answer(stream, articles)
        except RagError as exc:
            if as_json:
                typer.echo(json.dumps({"question": question, "answer": None, "error": str(exc)}, ensure_ascii=False))
            elif stream is not None and isinstance(exc, LLMError):
                _print_retrieved(stream.evidence, articles, as_json=False)
            typer.echo(f"error: {exc}", err=True)
            continue
        history.append(Turn(question, last.text))


def _print_sources(a: Answer | None, articles: Mapping[str, Article]) -> None:
    if a is None:
        typer.echo("(no answer yet)")
        return
    typer.echo(f"searched as: {a.standalone or a.question}")
    for i, h in enumerate(a.hits, 1):
        typer.echo(f"{_source_line(i, h.chunk, articles, h.also)}\n    score {h.score:.3f}: {h.chunk.text}")


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
    query_lang: Annotated[str, typer.Option("--query-lang", help="XQuAD question language: en or ar.")] = "en",
    limit_articles: Annotated[
        int | None, typer.Option("--limit-articles", min=1, help="Use only the first N XQuAD articles.")
    ] = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure retrieval (recall@1/5/10, MRR) and, with --answers, the answers; with --withheld, whether the answers
    know when the articles do not answer."""
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
        lang = query_lang if query_lang in data.questions or squad is None else next(iter(data.questions))
        if lang not in data.questions:
            raise RagError(f"--query-lang must be en or ar, not {query_lang!r}.")
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

        embedder = embedder_for(s)
        report, seconds, found = evaluate_xquad(
            data, lang, embedder, s, make_translator(s), progress=not as_json, quotes=quotes
        )
        result = {**report.as_json(), **found, "articles": len(data.articles), "index_seconds": round(seconds, 1)}
    if as_json:
        _emit(result)
    else:
        for key, value in result.items():
            typer.echo(f"{key:>20}  {value}")


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
        _emit({"ok": not failed, "checks": results})
    if failed:
        raise typer.Exit(1)


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
