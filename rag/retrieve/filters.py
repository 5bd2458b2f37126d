"""Search filters: which articles a question searches, from the CLI's options, `/filter` in `rag chat` and the page.

A `Filter` (rag/types.py) is resolved against an index by `VectorIndex.where_filter` (dates and outlets through
the records' SQL, before either leg searches); this module only reads and writes what people type.
"""

from __future__ import annotations

import calendar
import re
import shlex
from collections.abc import Iterable
from datetime import date

from rag.errors import RagError
from rag.types import Filter

_DAY = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")
FILTER_HELP = (
    "/filter since DATE until DATE outlet NAME article ID (any of them; outlet and article repeat; dates are "
    "YYYY-MM-DD, YYYY-MM or YYYY), /filter off to search everything again, /filter alone to show the filter."
)


def day(value: str, *, end: bool = False, name: str = "--since") -> str:
    """An ISO day from YYYY-MM-DD, YYYY-MM or YYYY; a month or year counts from its first day, or to its last
    day when it ends a range (`end`)."""
    m = _DAY.match(value.strip())
    try:
        if m is None:
            raise ValueError
        year, month, dom = int(m[1]), int(m[2] or (12 if end else 1)), m[3]
        last = calendar.monthrange(year, month)[1]
        return date(year, month, int(dom) if dom else (last if end else 1)).isoformat()
    except ValueError:
        raise RagError(
            f"{name} {value!r} is not a date: write YYYY-MM-DD (e.g. 2023-03-21), YYYY-MM or YYYY."
        ) from None


def make_filter(
    since: str | None = None,
    until: str | None = None,
    outlets: Iterable[str] = (),
    articles: Iterable[str] = (),
) -> Filter:
    """A filter from what was typed: dates checked (since not after until), names stripped, repeats dropped."""
    first = day(since, name="--since") if since else None
    last = day(until, end=True, name="--until") if until else None
    if first and last and first > last:
        raise RagError(f"--since {since} is after --until {until}: swap them.")
    return Filter(
        since=first,
        until=last,
        outlets=tuple(dict.fromkeys(o.strip() for o in outlets if o.strip())),
        articles=tuple(dict.fromkeys(a.strip() for a in articles if a.strip())),
    )


def parse_filter_command(text: str, current: Filter) -> Filter:
    """The filter after a `/filter …` line of `rag chat` (see FILTER_HELP): each field given replaces the
    current one (outlets and articles: all those given on the line), `off` clears all, nothing keeps it."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise RagError(f"Cannot read {text!r} ({exc}): close the quotes. {FILTER_HELP}") from None
    words = words[1:] if words and words[0] == "/filter" else words
    if words in (["off"], ["none"], ["clear"]):
        return Filter()
    fields: dict[str, list[str]] = {}
    keys = {"since", "until", "outlet", "article"}
    i = 0
    while i < len(words):
        key = words[i].lstrip("-").lower()
        if key not in keys or i + 1 >= len(words):
            raise RagError(f"Cannot read {words[i]!r} in {text!r}. {FILTER_HELP}")
        fields.setdefault(key, []).append(words[i + 1])
        i += 2
    for key in ("since", "until"):
        if len(fields.get(key, [])) > 1:
            raise RagError(f"{key} is given twice in {text!r}: give it once.")
    return make_filter(
        fields["since"][0] if "since" in fields else current.since,
        fields["until"][0] if "until" in fields else current.until,
        fields.get("outlet", current.outlets),
        fields.get("article", current.articles),
    )
