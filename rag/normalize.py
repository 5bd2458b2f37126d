"""Text normalization applied before embedding (stored text and offsets are never changed)."""

from __future__ import annotations

import re

# Arabic short vowels, shadda, sukun, dagger alef (U+064B-U+0652, U+0670) and tatweel (U+0640).
# e5's tokenizer splits a word like "حذّر" (with shadda) into rare pieces; without marks it finds "حذر".
_MARKS = re.compile("[\u064b-\u0652\u0670\u0640]")


def for_embedding(text: str) -> str:
    """The text the embedding model sees: Arabic diacritics and tatweel removed."""
    return _MARKS.sub("", text)
