"""How well statements are found: precision and recall of attributed sentences, and whether each speaker is
resolved right, against an annotated file (tests/fixtures/statements.jsonl: one line per sentence, `speakers` a
list of speakers, each a list of acceptable spellings; an empty list for a sentence that names someone without
reporting their words). Every sentence of the articles counts: one the file does not list is not a statement."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import RagError
from rag.text.arabic import fold
from rag.types import Article, Statement

if TYPE_CHECKING:
    from rag.retrieve.retriever import Retriever


@dataclass(frozen=True, slots=True)
class Annotated:
    """One annotated sentence."""

    article: str
    sentence: str
    speakers: tuple[tuple[str, ...], ...]  # empty: not a statement

    @property
    def statement(self) -> bool:
        return bool(self.speakers)


def load_annotations(path: Path) -> list[Annotated]:
    """The annotated sentences of a file, or an error naming the line at fault."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append(Annotated(row["article"], row["sentence"], tuple(tuple(s) for s in row["speakers"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(
                f"{path}:{n} is not an annotated sentence ({exc}): each line needs article, sentence and speakers "
                '(a list of lists of names, [] for none), e.g. {"article": "a1", "sentence": "…", "speakers": '
                '[["ماو نينغ"]]}.'
            ) from exc
    return rows


def _key(text: str) -> str:
    return " ".join(fold(text).split())


def score(
    annotated: Sequence[Annotated], found: Sequence[Statement], articles: Mapping[str, Article]
) -> dict[str, object]:
    """precision, recall and speaker accuracy (of the annotated statements found), with the mistakes listed."""
    gold = {(a.article, _key(a.sentence)): a for a in annotated}
    missing = sorted({a.article for a in annotated} - set(articles))
    if missing:
        raise RagError(f"The annotations name articles the index does not hold: {', '.join(missing)}.")
    by_sentence: dict[tuple[str, str], list[Statement]] = {}
    for s in found:
        if s.article_id in {a.article for a in annotated}:
            text = articles[s.article_id].text[s.start : s.end]
            by_sentence.setdefault((s.article_id, _key(text)), []).append(s)
    statements = [a for a in annotated if a.statement]
    right_sentences = [k for k in by_sentence if k in gold and gold[k].statement]
    wrong = [k for k in by_sentence if k not in gold or not gold[k].statement]
    speakers_right = 0
    mistakes: list[dict[str, object]] = []
    for k in right_sentences:
        said = {_key(s.speaker) for s in by_sentence[k]}
        want = gold[k].speakers
        ok = len(said) == len(want) and all(any(_key(name) in said for name in names) for names in want)
        speakers_right += ok
        if not ok:
            mistakes.append({"sentence": gold[k].sentence, "speakers": sorted(said), "want": [w[0] for w in want]})
    for k in wrong:
        mistakes.append({"sentence": by_sentence[k][0].speaker + ": " + k[1], "speakers": [], "want": "none"})
    for a in statements:
        if (a.article, _key(a.sentence)) not in by_sentence:
            mistakes.append({"sentence": a.sentence, "speakers": "missed", "want": [w[0] for w in a.speakers]})
    found_n = len(right_sentences) + len(wrong)
    return {
        "statements": len(statements),
        "found": found_n,
        "precision": round(len(right_sentences) / found_n, 4) if found_n else 0.0,
        "recall": round(len(right_sentences) / len(statements), 4) if statements else 0.0,
        "speaker_accuracy": round(speakers_right / len(right_sentences), 4) if right_sentences else 0.0,
        "mistakes": mistakes,
    }


def evaluate_statements(retriever: Retriever, path: Path) -> dict[str, object]:
    """The live index's statements (found when it was built) against an annotated file."""
    index = retriever.index
    annotated = load_annotations(path)
    ids = list(dict.fromkeys(a.article for a in annotated))
    missing = [a for a in ids if a not in index.articles]
    if missing:
        raise RagError(
            f"{path} annotates articles the index in {index.path.parent} does not hold ({', '.join(missing[:3])}): "
            "index the articles it was written for (see docs/newsroom.md)."
        )
    found = [s for a in ids for s in index.records.statements_of(a)]
    return score(annotated, found, {a: index.articles[a] for a in ids})


def evaluate_said(retriever: Retriever, path: Path) -> dict[str, object]:
    """Who-said-what questions (tests/fixtures/said.jsonl: person, about, the sentences the time line must hold
    (`expect`, substrings) and must leave out (`forbid`); none expected: it must be empty): the share answered
    right, and the mistakes."""
    from rag.attribute.said import said

    right = 0
    mistakes: list[dict[str, object]] = []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                rows.append((row["person"], row.get("about"), list(row["expect"]), list(row.get("forbid", []))))
            except (ValueError, KeyError, TypeError) as exc:
                raise RagError(
                    f"{path}:{n} is not a who-said-what question ({exc}): it needs person, about, expect (a list of "
                    "sentence parts, [] when nothing may be shown) and optionally forbid."
                ) from exc
    for person, about, expect, forbid in rows:
        shown = [r.text for r in said(retriever, person, about).said]
        missed = [e for e in expect if not any(e in t for t in shown)]
        wrong = [f for f in forbid if any(f in t for t in shown)] + ([] if expect else shown)
        right += not missed and not wrong
        if missed or wrong:
            mistakes.append({"person": person, "about": about, "missed": missed, "shown_wrongly": wrong})
    return {"questions": len(rows), "said_accuracy": round(right / len(rows), 4) if rows else 0.0, "mistakes": mistakes}


def load_claims(path: Path) -> list[tuple[str, tuple[str, ...], bool]]:
    """(claim, the verdicts that are right, whether it must not be supported) per line: `verdict` names the right one
    (tests/fixtures/claims.jsonl); `kind` "true" means supported, any other kind (an altered claim,
    tests/fixtures/altered_claims.jsonl) contradicted or not found."""
    rows: list[tuple[str, tuple[str, ...], bool]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if "verdict" in row:
                unsupported = row["verdict"] in ("contradicted", "not found")
                rows.append((str(row["claim"]), (str(row["verdict"]),), bool(unsupported)))
            else:
                altered = row["kind"] != "true"
                rows.append((str(row["claim"]), ("contradicted", "not found") if altered else ("supported",), altered))
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(
                f"{path}:{n} is not a claim ({exc}): it needs claim and either verdict (supported, contradicted, "
                'mixed or "not found") or kind ("true", or how it was altered).'
            ) from exc
    return rows


def evaluate_claims(retriever: Retriever, path: Path) -> dict[str, object]:
    """The claim check on a file of claims (`load_claims`): the share judged right, per expected verdict, claims the
    articles do not support judged supported or mixed (the worst mistake: a sentence shown "for" them), and the
    mistakes."""
    from rag.check.claims import checker_for

    checker = checker_for(retriever)
    per: dict[str, list[bool]] = {}
    wrongly_supported = 0
    mistakes: list[dict[str, object]] = []
    rows = load_claims(path)
    for claim, right, altered in rows:
        verdict = checker.check(claim).verdict
        per.setdefault(" or ".join(right), []).append(verdict in right)
        wrongly_supported += altered and verdict in ("supported", "mixed")  # mixed shows sentences "for" it
        if verdict not in right:
            mistakes.append({"claim": claim, "expected": " or ".join(right), "verdict": verdict})
    judged = [ok for oks in per.values() for ok in oks]
    result: dict[str, object] = {
        "claims": len(rows),
        "accuracy": round(sum(judged) / len(judged), 4) if judged else 0.0,
    }
    for expected, oks in per.items():
        result[f"right when {expected}"] = f"{sum(oks)}/{len(oks)}"
    result["unsupported judged supported or mixed"] = wrongly_supported
    result["mistakes"] = mistakes
    return result
