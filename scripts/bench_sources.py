"""`rag sources pull` over fixture feeds on loopback: items per second and peak memory at 250 and 1,000 items,
against a baseline measured in the same run (the same pages fetched with httpx alone, no extraction or storing).

Four sources (RSS, Atom, JSON Feed, a sitemap) share the items; each page is an XQuAD Arabic paragraph pair in a
news page's markup. The pull runs as the user runs it (`rag sources pull --no-index`, in a fresh process, which
prints its own peak RSS); the index update after it is the build measured by `make bench` itself. Also timed: a
second pull that finds nothing new.

Usage: .venv/bin/python scripts/bench_sources.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.feedsite import Site, Story, atom, json_feed, rss, serving, sitemap  # noqa: E402

XQUAD = ROOT.parent / "shared" / "bench" / "xquad" / "xquad.ar.json"
SIZES = (250, 1000)
_PULL = (
    "import resource, sys\n"
    "from rag.cli.main import app\n"
    "app(['sources', 'pull', '--no-index', '--json'], standalone_mode=False)\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def paragraphs() -> list[str]:
    data = json.loads(XQUAD.read_text(encoding="utf-8"))
    return [p["context"] for article in data["data"] for p in article["paragraphs"]]


def publish(site: Site, n: int, texts: list[str]) -> list[str]:
    """`n` distinct article pages and four feeds over them; the feeds' paths."""
    stories = []
    for k in range(n):
        a, b = texts[k % len(texts)], texts[(7 * k + 3) % len(texts)]
        day = f"2024-{1 + k % 12:02d}-{1 + k % 28:02d}T{k % 24:02d}:00:00+00:00"
        story = Story(f"/a/{k}.html", f"نشرة رقم {k}: " + " ".join(a.split()[:8]), [f"نشرة رقم {k}: {a}", b],
                      outlet="Bench News", published=day)  # fmt: skip
        site.page(story)
        stories.append(story)
    quarter = n // 4
    parts = [stories[i * quarter : (i + 1) * quarter if i < 3 else n] for i in range(4)]
    site.add("/rss.xml", rss("Bench RSS", site.base, parts[0]), "application/rss+xml")
    site.add("/atom.xml", atom("Bench Atom", site.base, parts[1]), "application/atom+xml")
    site.add("/feed.json", json_feed("Bench JSON", site.base, parts[2]), "application/feed+json")
    site.add("/sitemap.xml", sitemap(site.base, parts[3]), "application/xml")
    return ["/rss.xml", "/atom.xml", "/feed.json", "/sitemap.xml"]


def pull_process(env: dict[str, str]) -> tuple[float, dict[str, object], int]:
    """Seconds, the pull's JSON report and its peak RSS in MB."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PULL], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"rag sources pull failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return seconds, report, round(peak_kb / 1024)


def baseline(site: Site, n: int) -> float:
    """Pages per second fetched with httpx alone, one at a time (what the network side costs)."""
    import httpx

    with httpx.Client() as client:
        t0 = time.perf_counter()
        for k in range(n):
            client.get(site.url(f"/a/{k}.html")).raise_for_status()
        return n / (time.perf_counter() - t0)


def sources_figures(tmp: Path) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    texts = paragraphs()
    for n in SIZES:
        with serving() as site:
            feeds = publish(site, n, texts)
            folder = tmp / f"sources-{n}"
            env = {
                **os.environ,
                "RAG_DATA_DIR": str(folder / "data"),
                "RAG_INDEX_DIR": str(folder / "index"),
                "RAG_STATE_DIR": str(folder / "state"),
                "RAG_SOURCES_DELAY": "0",
                "RAG_SOURCES_MAX_ITEMS": str(n),
                "PYTHONPATH": str(ROOT),
            }
            for path in feeds:
                subprocess.run(
                    [sys.executable, "-m", "rag.cli.main", "sources", "add", site.url(path)],
                    env=env, check=True, capture_output=True,
                )  # fmt: skip
            seconds, report, peak = pull_process(env)
            pulled = report["pull"]
            assert isinstance(pulled, dict)
            stored = len(pulled["stored"])
            if stored != n:
                notes = pulled["notes"]
                raise SystemExit(f"{n} items: {stored} stored, {pulled['duplicates']} duplicates; notes: {notes}")
            out[f"sources_pull_{n}_items_per_s"] = round(n / float(pulled["seconds"]), 1)
            out[f"sources_pull_{n}_process_s"] = round(seconds, 1)
            out[f"sources_pull_{n}_peak_rss_mb"] = peak
            again, report, _ = pull_process(env)
            out[f"sources_repull_{n}_s"] = round(again, 2)
            out[f"sources_baseline_httpx_{n}_pages_per_s"] = round(baseline(site, n), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = sources_figures(Path(tmp))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for key, value in out.items():
        print(f"{key:>44}  {value}")


if __name__ == "__main__":
    main()
