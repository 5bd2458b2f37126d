"""How well watches alert: XQuAD questions as watches, half of its articles arriving as new ones.

All 48 Arabic XQuAD articles are indexed; the 24 odd ones are "new" (what a pull brought), and each question (the
first of every second paragraph, Arabic and English) is a watch checked against them exactly as `rag sources pull`
checks it (rag/sources/watch.py `answering`), in quote mode without the answer model writing: English without its
Arabic rendering, and with `--renderings` also with it, as the product searches it when the answer model is there.
A question about a new article should alert on that article; a question about an old one should alert on nothing.
Reported per language, at several confidence floors in the same run (RAG_WATCH_CONFIDENCE is 0.75), against a
bare-similarity baseline that alerts on the article of the best passage among the new ones.

Usage: .venv/bin/python scripts/bench_watch.py [--renderings] [--json]   (1.5 min on 2 cores; 10 with renderings)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer.pipeline import AnswerPipeline  # noqa: E402
from rag.config import get_settings  # noqa: E402
from rag.embed.embedder import embedder_for  # noqa: E402
from rag.eval.evaluate import load_xquad  # noqa: E402
from rag.eval.withheld import _NoModel, kept  # noqa: E402
from rag.index.build import index_articles  # noqa: E402
from rag.index.store import load_index  # noqa: E402
from rag.retrieve.retriever import retriever_for  # noqa: E402
from rag.retrieve.translate import make_translator  # noqa: E402
from rag.sources.watch import Watch, answering  # noqa: E402
from rag.types import Filter  # noqa: E402

XQUAD = ROOT.parent / "shared" / "bench" / "xquad"
FLOORS = (0.6, 0.75, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--renderings", action="store_true", help="also English with its Arabic rendering (starts the answer model)"
    )
    args = parser.parse_args()
    settings = get_settings()
    data = load_xquad(XQUAD)
    embedder = embedder_for(settings)
    quote = settings.model_copy(update={"answer_mode": "quote"})
    new_ids = tuple(a.id for i, a in enumerate(data.articles) if not kept(i))
    paragraphs: dict[tuple[str, int], str] = {}  # (article, paragraph start) -> its first question id
    for qid, (aid, start, _end) in data.gold.items():
        paragraphs.setdefault((aid, start), qid)
    chosen = {qid for n, qid in enumerate(paragraphs.values()) if n % 2 == 0}
    out: dict[str, object] = {"new_articles": len(new_ids), "articles": len(data.articles)}
    with tempfile.TemporaryDirectory() as tmp:
        spec = replace(settings.index_spec, model=embedder.name)
        options = replace(settings.store_options, scratch=True)
        index_articles(data.articles, Path(tmp), embedder, spec, options=options)
        index = load_index(Path(tmp), spec, options)
        langs = ("ar", "en", "en+rendering") if args.renderings else ("ar", "en")
        for lang in langs:
            translator = make_translator(settings) if lang == "en+rendering" else None
            pipeline = AnswerPipeline(quote, retriever_for(index, embedder, settings, translator), _NoModel())  # type: ignore[arg-type]
            rows = []
            for qid, question in data.questions[lang[:2]]:
                if qid not in chosen:
                    continue
                gold = data.gold[qid][0]
                watch = Watch(0, question, "", None)
                hits = answering(pipeline, watch, new_ids, 0.0)
                scope = Filter(articles=new_ids)
                best = pipeline.retriever.search(pipeline.retriever.query(question, scope), 1)
                rows.append((gold in new_ids, gold, [(h.article_id, h.confidence) for h in hits],
                             best[0].chunk.article_id if best else None))  # fmt: skip
            out[lang] = figures(rows)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{out['articles']} articles, {out['new_articles']} of them new")
    for lang in ("ar", "en", "en+rendering"):
        block = out.get(lang)
        if block is None:
            continue
        assert isinstance(block, dict)
        print(f"{lang}: {block['about_new']} questions about new articles, {block['about_old']} about old ones")
        for name, f in block["by_floor"].items():
            print(f"  {name:>22}  {json.dumps(f)}")


def figures(rows: list[tuple[bool, str, list[tuple[str, float | None]], str | None]]) -> dict[str, object]:
    about_new = [r for r in rows if r[0]]
    about_old = [r for r in rows if not r[0]]
    by_floor: dict[str, dict[str, float | int]] = {}
    for floor in FLOORS:
        alerts = [(r, [a for a, c in r[2] if c is None or c >= floor]) for r in rows]
        by_floor[f"confidence >= {floor}"] = _rates(alerts, len(about_new), len(about_old))
    baseline = [(r, [r[3]] if r[3] else []) for r in rows]
    by_floor["bare similarity"] = _rates(baseline, len(about_new), len(about_old))
    return {"about_new": len(about_new), "about_old": len(about_old), "by_floor": by_floor}


def _rates(alerts: list, n_new: int, n_old: int) -> dict[str, float | int]:  # type: ignore[type-arg]
    right = sum(r[1] in hits for r, hits in alerts if r[0])
    hits_all = sum(len(hits) for _, hits in alerts)
    right_hits = sum(sum(h == r[1] for h in hits) for r, hits in alerts)
    old_alerted = sum(bool(hits) for r, hits in alerts if not r[0])
    return {
        "found": round(right / n_new, 3) if n_new else 0.0,  # questions about a new article alerted on it
        "precision": round(right_hits / hits_all, 3) if hits_all else 1.0,  # alerts on the question's own article
        "old_alerted": round(old_alerted / n_old, 3) if n_old else 0.0,  # questions about old articles that alerted
        "alerts": hits_all,
    }


if __name__ == "__main__":
    main()
