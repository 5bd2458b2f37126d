"""An article's metadata (title, outlet, published, url, language, author) from its sidecar, its front matter or
its HTML page's head, in that order of preference, field by field; what none of them gives stays unknown (the
title and outlet then fall back to the guesses in articles.py)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

FIELDS = ("title", "outlet", "published", "url", "language", "author")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_DATE_HELP = "an ISO date such as 2023-03-21 or 2023-03-21T14:05:00+03:00"


class MetadataError(ValueError):
    """Metadata that cannot be read; the message names the value and how to write it."""


def published_date(value: object) -> str:
    """`value` as an ISO date (2023-03-21) or date-time (2023-03-21T14:05:00+03:00); MetadataError otherwise."""
    if isinstance(value, dt.date):  # YAML reads an unquoted 2023-03-21 as a date (a date-time is a date too)
        return value.isoformat()
    if not isinstance(value, str) or not value.strip():
        raise MetadataError(f"published {value!r} is not {_DATE_HELP}")
    text = value.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text).isoformat()
        return dt.datetime.fromisoformat(text.replace(" ", "T", 1)).isoformat()
    except ValueError:
        raise MetadataError(f"published {value!r} is not {_DATE_HELP}") from None


def clean_fields(raw: Mapping[str, Any], where: str) -> tuple[dict[str, str], list[str]]:
    """The known fields of `raw` as strings (published checked and normalized), and notices naming `where` for
    each value left out (an unknown key, a non-text value, a bad date)."""
    fields: dict[str, str] = {}
    notices: list[str] = []
    for key, value in raw.items():
        if key not in FIELDS:
            notices.append(f"{where}: unknown key {key!r} ignored (known: {', '.join(FIELDS)})")
            continue
        if value is None or value == "":
            continue
        if key == "published":
            try:
                fields[key] = published_date(value)
            except MetadataError as exc:
                notices.append(f"{where}: {exc}; the article is indexed without a date")
            continue
        if not isinstance(value, str | int | float):
            notices.append(f"{where}: {key} should be text, got {type(value).__name__}; ignored")
            continue
        fields[key] = " ".join(str(value).split())
    return fields, notices


def front_matter(text: str) -> tuple[dict[str, Any], str, str | None]:
    """The YAML mapping between `---` lines at the very top of `text`, the text after it, and a problem with it
    (None when it read, or when there is none). A block that is not YAML, or not a mapping, is left in the text."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text, None
    import yaml

    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 2})" if mark is not None else ""
        return {}, text, f"front matter is not valid YAML{line}; it is left in the text"
    if not isinstance(data, dict):
        return {}, text, "front matter is not a list of `key: value` lines; it is left in the text"
    return {str(k): v for k, v in data.items()}, text[match.end() :], None


def json_object(data: bytes, invalid: str, not_object: str) -> dict[str, Any]:
    """The JSON object in `data` (a sidecar file, a feed line); MetadataError with `invalid` (formatted with the
    parser's `error`) when it is not UTF-8 JSON, with `not_object` when it is JSON but not an object."""
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(invalid.format(error=exc)) from None
    if not isinstance(value, dict):
        raise MetadataError(not_object)
    return value


def sidecar(data: bytes) -> dict[str, Any]:
    """A sidecar file's JSON object; MetadataError when it is not one."""
    return json_object(
        data,
        "not valid UTF-8 JSON ({error}); fix it or delete it",
        'not a JSON object ({"published": "2023-03-21", "outlet": "…"}); fix it or delete it',
    )


class _Head(HTMLParser):
    """The metadata a saved news page declares: Open Graph and article tags, <time datetime>, canonical, lang."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, str] = {}

    def _keep(self, key: str, value: str | None) -> None:
        if value and value.strip() and key not in self.found:
            self.found[key] = value.strip()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v for k, v in attrs}
        if tag == "html":
            self._keep("language", a.get("lang"))
        elif tag == "meta":
            name = (a.get("property") or a.get("name") or "").lower()
            key = {
                "og:title": "title",
                "og:site_name": "outlet",
                "article:published_time": "published",
                "og:url": "og_url",
                "author": "author",
                "article:author": "author",
            }.get(name)
            if key:
                self._keep(key, a.get("content"))
        elif tag == "link" and "canonical" in (a.get("rel") or "").lower().split():
            self._keep("url", a.get("href"))
        elif tag == "time":
            self._keep("time", a.get("datetime"))


def html_head(raw: str) -> dict[str, str]:
    """A page's declared metadata: og:title, og:site_name, article:published_time (else the first
    <time datetime>), <link rel="canonical"> (else og:url), <html lang>, the author meta tag."""
    head = _Head()
    try:
        head.feed(raw)
        head.close()
    except Exception:  # noqa: BLE001 - a page the parser chokes on declares nothing we can trust
        return {}
    found = dict(head.found)
    if "published" not in found and "time" in found:
        found["published"] = found["time"]
    if "url" not in found and "og_url" in found:
        found["url"] = found["og_url"]
    found.pop("time", None)
    found.pop("og_url", None)
    return found
