"""Scraped-page furniture as data: which lines of a saved news page are not the article, and whose page it is.

`RULES` is the table; `clean_text` only interprets it. To teach the reader a new site's furniture, add a row
(and a line of a real page to tests/test_articles.py), not code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["line", "pattern", "block", "next", "end", "prefix"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of furniture: how it is recognised, how much of the page it takes away, and a line it removes."""

    kind: Kind  # line: this exact line; pattern: a line matching `match`; block: from `match` to a line matching
    # `until`, both dropped; next: this exact line and the one after it; end: this line and everything after it;
    # prefix: `match` is cut from the start of a line, the rest kept
    match: str
    why: str  # what it is, and where it was seen
    example: str  # a line of a real page it removes (tests/test_articles.py checks every row against its example)
    until: str = ""


RULES: tuple[Rule, ...] = (
    Rule("line", "[ad_1]", "ad slot marker", "[ad_1]"),
    Rule("line", "[ad_2]", "ad slot marker", "[ad_2]"),
    Rule("line", "المصدر", "a lone 'source' label", "المصدر"),
    Rule("line", "Open toolbar", "accessibility toolbar (Asharq)", "Open toolbar"),
    Rule("line", "Resize text", "accessibility toolbar (Asharq)", "Resize text"),
    Rule("line", "شارك القصة", "'share the story' button (Asharq)", "شارك القصة"),
    Rule("line", "اقرأ أيضاً:", "'read also' label (Asharq)", "اقرأ أيضاً:"),
    Rule("line", "اقرأ أيضا:", "'read also' label", "اقرأ أيضا:"),
    Rule("line", "الحلقات", "podcast 'episodes' label (BBC)", "الحلقات"),
    Rule("line", "إعلان", "a lone 'advertisement' label between paragraphs", "إعلان"),
    Rule("line", "Advertisement", "a lone 'advertisement' label between paragraphs", "Advertisement"),
    Rule("next", "التعليق على الصورة،", "photo caption label and the caption after it (BBC)", "التعليق على الصورة،"),
    Rule(
        "pattern",
        r"^Google News\b.*",
        "'follow us on Google News' (Asharq)",
        "Google News تابعوا أخبار الشرق عبر Google News",
    ),
    Rule(
        "pattern",
        r"(?i).*(ملف تعريف الارتباط|كوكيز|\bcookies?\b).*",
        "cookie notice, in any case (Asharq)",
        "نستخدم في موقعنا ملف تعريف الارتباط (كوكيز)، لعدة أسباب",
    ),
    Rule("pattern", r"^صدر الصورة،.*", "photo credit (BBC)", "صدر الصورة، EPA"),
    Rule(
        "pattern",
        r".*\s[-–]\s*(REUTERS|AFP|AP|EPA|Getty Images|Reuters)$",
        "caption ending in a photo credit (Asharq)",
        "الرئيس الصيني شي جين بينج يستقبل نظيره الروسي فلاديمير بوتين في بكين. 4 فبراير 2022 - REUTERS",
    ),
    Rule(
        "pattern",
        r"^(يتم توفير المقال من قبل مزود محتوى خارجي|القطاعات:|يوفر SeaPRwire).*",
        "wire service boilerplate (SeaPRwire)",
        "القطاعات: العنوان الرئيسي، الأخبار اليومية",
    ),
    Rule(
        "block",
        r"^تخطى .*وواصل القراءة$",
        "related stories and podcast promos, up to their end line (BBC)",
        "تخطى قصص مقترحة وواصل القراءة",
        until=r".*نهاية$",
    ),
    Rule("end", "More Stories", "a news site's footer list of other stories, to the end", "More Stories"),
    Rule(
        "prefix",
        r"^\((SeaPRwire)\)\s*[–-]\s*",
        "dateline before the first paragraph (SeaPRwire)",
        "(SeaPRwire) – ",
    ),
)

OUTLETS: tuple[tuple[str, str], ...] = (  # (pattern on the raw page, outlet name), most specific first
    (r"SeaPRwire", "SeaPRwire"),
    (r"(?i)أخبار الشرق|الشرق الأوسط|Asharq", "Asharq"),
    (r"بي بي سي|تخطى قصص مقترحة|صدر الصورة|BBC", "BBC"),
    (r"(?i)الجزيرة|Al Jazeera", "Al Jazeera"),
)

_QUOTES = '"“”«»'
_LINES = {r.match for r in RULES if r.kind == "line"}
_NEXT = {r.match for r in RULES if r.kind == "next"}
_END = {r.match for r in RULES if r.kind == "end"}
_PATTERNS = [re.compile(r.match) for r in RULES if r.kind == "pattern"]
_BLOCKS = [(re.compile(r.match), re.compile(r.until)) for r in RULES if r.kind == "block"]
_PREFIXES = [re.compile(r.match) for r in RULES if r.kind == "prefix"]
_OUTLETS = [(re.compile(pattern), name) for pattern, name in OUTLETS]


def is_author_bio(line: str) -> bool:
    """Spam author bios: a quoted line of several very short sentences ("Pop culture fan. Web nerd. ...")."""
    body = line.strip().strip(_QUOTES).strip()
    if line.strip()[:1] not in _QUOTES:
        return False
    sentences = [s for s in re.split(r"[.!؟]", body) if s.strip()]
    if len(sentences) < 4:
        return False
    return sum(len(s.split()) for s in sentences) / len(sentences) <= 5


def clean_text(raw: str) -> str:
    """The article without its page furniture (`RULES`, and spam author bios), one paragraph a line."""
    lines = [ln.strip() for ln in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    kept: list[str] = []
    block_end: re.Pattern[str] | None = None
    skip_next = False
    for line in lines:
        if not line:
            continue
        if line in _END:
            break
        if block_end is not None:
            if block_end.match(line):
                block_end = None
            continue
        block_end = next((end for start, end in _BLOCKS if start.match(line)), None)
        if block_end is not None:
            continue
        if skip_next:
            skip_next = False
            continue
        if line in _NEXT:
            skip_next = True
            continue
        if line in _LINES or any(p.match(line) for p in _PATTERNS) or is_author_bio(line):
            continue
        for prefix in _PREFIXES:
            line = prefix.sub("", line)
        kept.append(line)
    return "\n".join(kept)


def detect_outlet(raw: str) -> str | None:
    """The outlet the page names (`OUTLETS`), if any."""
    return next((name for pattern, name in _OUTLETS if pattern.search(raw)), None)
