"""How often the follow-up rewrite changes a question that already stands alone, and what skipping it saves.

Each question of tests/fixtures/followups.jsonl is asked after one earlier turn (the question before it in the
file, with a short answer), and rewritten by the answer model as a follow-up would be (rag/retrieve/followup.py).
Reported: for the questions labelled standalone, how often the rewrite changed them (beyond case and spacing) and
the median seconds a rewrite took; for both labels, how often `reads_as_followup` agrees with the label (the
rule that decides whether a question is rewritten at all).

Usage: .venv/bin/python scripts/bench_followup.py [--json]   (starts the embedded answer model; about 5 minutes)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import get_settings  # noqa: E402
from rag.llm.client import make_chat_model  # noqa: E402
from rag.retrieve.followup import Turn, reads_as_followup, rewrite  # noqa: E402

CASES = ROOT / "tests" / "fixtures" / "followups.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    cases = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    chat = make_chat_model(get_settings())
    changed, seconds, agree = 0, [], 0
    standalone = [c for c in cases if not c["followup"]]
    for case in cases:
        agree += reads_as_followup(case["question"]) == case["followup"]
    for case in standalone:
        history = (Turn(case["after"], "It was reported in the articles [1]."),)
        t0 = time.perf_counter()
        rewritten = rewrite(case["question"], history, chat)  # what asking every question would do
        seconds.append(time.perf_counter() - t0)
        changed += _plain(rewritten) != _plain(case["question"])
    out = {
        "standalone_questions": len(standalone),
        "rewrite_changed_standalone": round(changed / len(standalone), 3),
        "rewrite_seconds_p50": round(statistics.median(seconds), 2),
        "rule_agrees_with_label": round(agree / len(cases), 3),
        "cases": len(cases),
    }
    print(json.dumps(out, indent=2) if args.json else "\n".join(f"{k:>28}  {v}" for k, v in out.items()))


def _plain(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip("?؟. ")


if __name__ == "__main__":
    main()
