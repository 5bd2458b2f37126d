"""The `rag` command line, run as a user runs it: real model, real index on disk, real answer server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rag.config import Settings
from rag.index.versions import live_path
from rag.ingest.articles import parse_article

from .conftest import DATA
from .helpers import rag

pytestmark = pytest.mark.integration  # every test here runs the command line, which loads the real models


def _assert_clean_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0]


def test_help_on_every_command() -> None:
    for args in (
        [],
        ["models"],
        ["models", "install"],
        ["index"],
        ["index", "build"],
        ["index", "info"],
        ["index", "update"],
        ["chat"],
        ["search"],
        ["ask"],
        ["eval"],
        ["llm", "start"],
        ["llm", "stop"],
    ):
        done = rag(*args, "--help")
        assert done.returncode == 0, args
        assert "Usage" in done.stdout


def test_missing_index_is_a_clean_error(tmp_path: Path) -> None:
    for args in (["index", "info"], ["search", "Mao Ning"], ["ask", "Mao Ning"]):
        done = rag(*args, "--index", str(tmp_path / "nowhere"))
        _assert_clean_error(done, "No index", f"rag index build --index {tmp_path / 'nowhere'}")


def test_corrupt_index_file_is_a_clean_error(real_index: Path, tmp_path: Path) -> None:
    broken = tmp_path / "index"
    version = live_path(real_index)
    shutil.copytree(version, broken / version.name)  # every file of the version, the BM25 postings' folder too
    (broken / "current").symlink_to(version.name)
    faiss_file = broken / version.name / "chunk_vectors.f32"
    faiss_file.write_bytes(faiss_file.read_bytes()[:1000])
    done = rag("search", "Mao Ning", "--index", str(broken))
    _assert_clean_error(done, "corrupt", "rag index build")


def test_unreadable_data_files_are_reported_and_skipped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "000_5016804d4a167ba4.txt").write_bytes((DATA / "000_5016804d4a167ba4.txt").read_bytes())
    (data / "bad.txt").write_bytes(b"\xfa\xff not utf-8 \xc3\x28")
    (data / "empty.txt").write_bytes(b"")
    done = rag("index", "build", "--data", str(data), "--index", str(tmp_path / "index"))
    assert done.returncode == 0, done.stderr
    assert "bad.txt" in done.stderr and "UTF-8" in done.stderr and "empty.txt" in done.stderr
    assert "Indexed 1 articles" in done.stdout and "2 skipped" in done.stdout
    info = json.loads(rag("index", "info", "--index", str(tmp_path / "index"), "--json").stdout)
    assert info["articles"] == 1


def test_only_unreadable_files_is_a_clean_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "bad.txt").write_bytes(b"\xfa\xff\xfe")
    done = rag("index", "build", "--data", str(data), "--index", str(tmp_path / "index"))
    _assert_clean_error(done, "No readable articles", "bad.txt")
    assert not (tmp_path / "index" / "current").exists()


def test_missing_data_folder_is_a_clean_error(tmp_path: Path) -> None:
    done = rag("index", "build", "--data", str(tmp_path / "nope"), "--index", str(tmp_path / "index"))
    _assert_clean_error(done, "does not exist")


def test_index_info_json(real_index: Path, real_settings: Settings) -> None:
    done = rag("index", "info", "--index", str(real_index), "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert set(info) == {
        "articles",
        "chunks",
        "sentences",
        "model",
        "dim",
        "precision",
        "built_at",
        "store",
        "search",
        "outlets",
        "published",
        "version",
    }
    assert info["outlets"] == {"Al Jazeera": 1, "Asharq": 1, "BBC": 1, "SeaPRwire": 1}  # guessed from the text
    assert info["published"] == {"first": None, "last": None, "undated": 5}  # no date is invented for the seeds
    assert info["articles"] == 5 and info["sentences"] > info["chunks"] > 5 and info["search"] == "exact"
    assert info["store"] == "faiss"
    assert info["model"] == real_settings.embedding_model and info["dim"] == 384
    assert info["precision"] in ("fp32", "bf16")  # what RAG_EMBED_PRECISION=auto chose for this build


def test_search_json(real_index: Path) -> None:
    done = rag(
        "search", "What did Mao Ning say about dual-use exports?", "-k", "3", "--index", str(real_index), "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["query"] == "What did Mao Ning say about dual-use exports?"
    hits = result["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert set(hits[0]) == {
        "rank",
        "score",
        "dense",
        "lexical",
        "article_id",
        "chunk_id",
        "start",
        "end",
        "text",
        "title",
        "outlet",
        "published",
        "url",
        "also_reported_by",
    }
    assert hits[0]["article_id"] == "000_5016804d4a167ba4"
    assert hits[0]["outlet"] == "SeaPRwire" and hits[0]["published"] is None and hits[0]["url"] is None
    assert result["translation"] and hits[0]["lexical"] > 0  # the Arabic rendering fed the BM25 leg
    assert "الاستخدام المزدوج" in hits[0]["text"]
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_empty_question_is_a_clean_error(real_index: Path) -> None:
    _assert_clean_error(rag("search", "  ", "--index", str(real_index)), "empty")


@pytest.mark.parametrize("k", ["0", "-3"])
def test_bad_k_is_a_clean_error(real_index: Path, k: str) -> None:
    _assert_clean_error(rag("search", "Mao", "-k", k, "--index", str(real_index)), "top_k")


# ------------------------------------------------------------ end to end with the embedded answer model


DUAL_USE = "لقد سيطرنا دائما على تصدير البنود ذات الاستخدام المزدوج وفقا للقانون"
GENERATE = {"RAG_ANSWER_MODE": "generate"}


ASK_KEYS = {"question", "filter", "standalone_question", "answer", "mode", "refused", "refused_by", "unsupported"}
ASK_KEYS |= {"outcome", "confidence", "signals", "citations", "key_quotes", "closest", "model", "speakers", "by_outlet"}
ASK_KEYS |= {"translation", "translation_skipped", "timings"}


@pytest.mark.parametrize("question", ["Mao Ning on dual-use exports", "What did Mao Ning say about dual-use exports?"])
def test_ask_dual_use_quotes_the_right_sentence(real_index: Path, llm_server: str, question: str) -> None:
    """The default with the embedded model is a quote answer: the dual-use sentence itself, never a guess; found by
    the key quotes of the passages retrieved, or, asked what she said, among Mao Ning's statements."""
    done = rag("ask", question, "--json", "--index", str(real_index))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert set(answer) == ASK_KEYS
    assert set(answer["timings"]) == {"search", "first_text", "waited", "total"}
    assert 0 < answer["timings"]["search"] <= answer["timings"]["first_text"] <= answer["timings"]["total"]
    assert answer["mode"] == "quote" and not answer["refused"] and answer["model"] == ""
    assert answer["outcome"] == "answer" and answer["translation_skipped"] is None
    if question.startswith("What did"):  # her statements, by date: no estimate, no rendering needed
        assert answer["speakers"] == ["ماو نينغ"] and answer["confidence"] is None and answer["translation"] is None
        assert answer["answer"].startswith("What Mao Ning (ماو نينغ) said about «dual-use exports», by date")
    else:
        assert answer["translation"] and answer["confidence"] >= 0.5  # the model was free: it was rendered
        assert answer["speakers"] == [] and answer["answer"].startswith("The sentences of the articles")
    assert DUAL_USE in answer["key_quotes"][0]["quote"]
    assert {"n", "quote", "score", "start", "end"} <= set(answer["key_quotes"][0])
    assert DUAL_USE in answer["answer"]
    assert answer["filter"] is None
    cited = answer["citations"][0]
    assert cited["article_id"] == "000_5016804d4a167ba4" and cited["supported"] is True
    assert (cited["outlet"], cited["published"], cited["url"]) == ("SeaPRwire", None, None)
    assert DUAL_USE in cited["quote"] and f"[{cited['n']}]" in answer["answer"]
    article = _article(cited["article_id"])
    assert cited["text"] and article[cited["start"] : cited["end"]] == cited["text"]  # offsets into the cleaned text
    quote = answer["key_quotes"][0]
    assert DUAL_USE in article[quote["start"] : quote["end"]]


def test_ask_generate_cites_the_right_article(real_index: Path, llm_server: str) -> None:
    env = GENERATE
    done = rag("ask", "What did Mao Ning say about dual-use exports?", "--json", "--index", str(real_index), env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["mode"] == "generate"
    assert all({"supported", "quote", "support"} <= set(c) for c in answer["citations"])
    assert not answer["refused"]
    assert "000_5016804d4a167ba4" in {c["article_id"] for c in answer["citations"]}
    # Whether the 1.5B model says it right is answer accuracy (`rag eval --answers`); the key quote under it is
    # the sentence that answers, whatever the model wrote.
    assert DUAL_USE in answer["key_quotes"][0]["quote"]
    for c in answer["citations"]:
        assert c["text"] and _article(c["article_id"])[c["start"] : c["end"]] == c["text"]
        assert f"[{c['n']}]" in answer["answer"]


def _article(article_id: str) -> str:
    """The article's cleaned text, which every offset the CLI reports points into."""
    return parse_article(article_id, (DATA / f"{article_id}.txt").read_bytes()).text


@pytest.mark.parametrize("question", ["What did Mao Ning say about Taiwan?", "ماذا قالت ماو نينغ عن تايوان؟"])
@pytest.mark.parametrize("mode", ["quote", "generate"])
def test_ask_taiwan_is_refused_in_both_modes(real_index: Path, llm_server: str, question: str, mode: str) -> None:
    """No seed article names Taiwan: refused before any model call, with no citations, in the question's language."""
    done = rag("ask", question, "--json", "--index", str(real_index), env={"RAG_ANSWER_MODE": mode})
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["refused"] is True and answer["refused_by"] == "names"
    assert answer["citations"] == []
    assert ("Taiwan" if question.isascii() else "تايوان") in answer["answer"]


def test_ask_streams_text_and_lists_sources(real_index: Path, llm_server: str) -> None:
    done = rag("ask", "Where did Patrushev and Yang Jiechi meet?", "--index", str(real_index), env=GENERATE)
    assert done.returncode == 0, done.stderr
    assert re.search(r"\[\d\]", done.stdout)
    assert "003_767b0b59c7a3495f" in done.stdout  # the numbered source list
    assert "supported" in done.stdout or "unverified" in done.stdout  # each source says whether it was verified
    quoted = rag("ask", "Where did Patrushev and Yang Jiechi meet?", "--index", str(real_index))
    assert quoted.returncode == 0, quoted.stderr
    assert "مقاطعة فوجيان" in quoted.stdout and "(quoted verbatim)" in quoted.stdout


def test_unreachable_endpoint_is_a_clean_error(real_index: Path) -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "RAG_LLM_MODEL": "x", "RAG_LLM_TIMEOUT": "5"}
    done = rag("ask", "Mao Ning?", "--index", str(real_index), env=env)
    _assert_clean_error(done, "cannot be reached", "OPENAI_BASE_URL")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask", "--bogus", "x"], "No such option: --bogus"),
        (["search"], "Missing argument"),
        (["eval", "-k", "3"], "No such option: -k"),
    ],
)
def test_usage_mistakes_are_one_line(args: list[str], needle: str) -> None:
    done = rag(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--help" in lines[0] and needle in lines[0]
