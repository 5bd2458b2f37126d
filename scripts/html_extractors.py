"""Which HTML extractor reads a saved news page best: the standard library's parser or trafilatura.

Runs both on the saved pages in tests/fixtures/pages (gold.json names each page's title, its body paragraphs
and lines of page furniture that must not reach the index) and prints, per page and extractor, how many body
paragraphs survive and how many furniture lines leak. Run: `.venv/bin/python scripts/html_extractors.py`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.ingest.articles import html_to_text, page_text  # noqa: E402
from rag.ingest.furniture import clean_text  # noqa: E402

PAGES = ROOT / "tests" / "fixtures" / "pages"


def main() -> None:
    t0 = time.perf_counter()
    import trafilatura  # noqa: F401 - imported once, before the timings

    print(f"importing trafilatura: {1000 * (time.perf_counter() - t0):.0f} ms (once per process, only for HTML pages)")
    gold = json.loads((PAGES / "gold.json").read_text(encoding="utf-8"))
    rows = []
    totals = {"stdlib html.parser": [0, 0, 0.0], "trafilatura (default)": [0, 0, 0.0]}
    for name, want in gold.items():
        raw = (PAGES / f"{name}.html").read_text(encoding="utf-8")
        for label, extract in (("stdlib html.parser", page_text), ("trafilatura (default)", html_to_text)):
            t0 = time.perf_counter()
            text = clean_text(extract(raw))
            ms = 1000 * (time.perf_counter() - t0)
            body = sum(p in text for p in want["body"])
            leaked = sum(f in text for f in want["furniture"])
            rows.append((name, label, f"{body}/{len(want['body'])}", f"{leaked}/{len(want['furniture'])}", ms))
            totals[label][0] += body
            totals[label][1] += leaked
            totals[label][2] += ms
    n_body = sum(len(w["body"]) for w in gold.values())
    n_furniture = sum(len(w["furniture"]) for w in gold.values())
    print("| page | extractor | body paragraphs kept | furniture lines leaked | ms |")
    print("|---|---|---|---|---|")
    for name, label, body, leaked, ms in rows:
        print(f"| {name} | {label} | {body} | {leaked} | {ms:.1f} |")
    for label, (body, leaked, ms) in totals.items():
        print(f"| all | {label} | {body}/{n_body} | {leaked}/{n_furniture} | {ms:.1f} |")


if __name__ == "__main__":
    main()
