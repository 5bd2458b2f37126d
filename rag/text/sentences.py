"""What a sentence is, once: the index's sentences, the key quotes and the verifier's claims all split here.

A sentence ends at . ! ? ؟ or 。 (any run of them, with the closing quotes or brackets that follow) when a space, a
line end or the end of the text comes next and no comma follows ("”. ، وفقا لبيان" goes on), and at every line end.
So a point inside "8.8", "3.5 مليون", "U.S" or "example.com" does not end one, and neither does the point after an
initial or a title ("U.S. officials", "J. Smith", "Mr. Lavrov"), though one after a lower-case word does.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Titles and abbreviations whose point does not end a sentence (compared without their point, lower case).
ABBREVIATIONS = frozenset("mr mrs ms dr prof st gen sen rep gov lt col sgt capt jr sr vs e.g i.e al".split())
# A mark, with closing quotes or brackets, before a space, unless a comma comes next ("… مضطرب”. ، وفقا لبيان …":
# a scraped quote's point, the sentence goes on).
_END = re.compile(r"[.!?؟。]+[\"'”’»)\]]*(?=\s|$)(?!\s*[،,])|\n")
_WORD_BEFORE = re.compile(r"(\S*)\Z")


def _is_abbreviation(text: str, mark: re.Match[str]) -> bool:
    """True when the point is an initial's or a title's ("U.S.", "J.", "Mr."), not a sentence's end."""
    if mark.group() != ".":
        return False
    found = _WORD_BEFORE.search(text, max(0, mark.start() - 64), mark.start())  # not from 0: O(n) per mark
    word = found.group(1) if found else ""
    last = word.rsplit(".", 1)[-1]
    return (len(last) == 1 and last.isupper()) or word.lower() in ABBREVIATIONS


def _ends(text: str) -> list[int]:
    ends = [m.end() for m in _END.finditer(text) if not _is_abbreviation(text, m)]
    return ends if ends and ends[-1] == len(text) else [*ends, len(text)]


def sentence_spans(text: str, min_words: int = 3) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, surrounding spaces trimmed; sentences of fewer than `min_words`
    words (headings, "yes") are left out."""
    spans, start = [], 0
    for end in _ends(text):
        piece = text[start:end]
        a = start + len(piece) - len(piece.lstrip())
        b = start + len(piece.rstrip())
        if b > a and len(text[a:b].split()) >= min_words:
            spans.append((a, b))
        start = end
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, every one however short."""
    return [text[a:b] for a, b in sentence_spans(text, min_words=1)]


@lru_cache(maxsize=512)
def article_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """Every sentence of an article, one-word fragments included, split once: key quotes complete a cut sentence
    from it and the verifier reads the sentences around a citation's."""
    return tuple(sentence_spans(text, min_words=1))
