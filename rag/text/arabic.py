"""Text helpers shared by the stages: Arabic marks and spelling variants, digits and numbers, the language.

Every stage that needs one of these imports it from here: the index, the retriever, the verifier and the
answer must agree on what a folded word, a number or an Arabic question is.
"""

from __future__ import annotations

import re

# Arabic short vowels, shadda, sukun, dagger alef (U+064B-U+0652, U+0670) and tatweel (U+0640).
# e5's tokenizer splits a word like "حذّر" (with shadda) into rare pieces; without marks it finds "حذر".
_MARKS = re.compile("[\u064b-\u0652\u0670\u0640]")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_VARIANTS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"})
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_LATIN = re.compile(r"[A-Za-z]")
ARABIC_WORD = re.compile(r"[\u0621-\u064a]+")  # a run of Arabic letters (of folded text: no marks)


def for_embedding(text: str) -> str:
    """The text the embedding model sees: Arabic diacritics and tatweel removed (offsets are not kept)."""
    return _MARKS.sub("", text)


def ascii_digits(text: str) -> str:
    """Arabic-Indic and Persian digits written as 0-9."""
    return text.translate(_DIGITS)


def fold(text: str) -> str:
    """Spelling variants folded: no diacritics or tatweel, alef/hamza forms -> ا, ى -> ي, ة -> ه, digits -> 0-9."""
    return ascii_digits(for_embedding(text)).translate(_VARIANTS).lower()


def numbers(text: str) -> set[str]:
    """The numbers written in a text (Arabic-Indic digits read as 0-9, thousands separators dropped)."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(ascii_digits(text))}


def has_arabic(text: str) -> bool:
    """True when the text holds at least one Arabic letter."""
    return ARABIC_WORD.search(text) is not None


def detect_language(text: str) -> str:
    """'ar' when Arabic words outnumber Latin ones (names in Latin letters don't flip it), else 'en'."""
    words = text.split()
    arabic = sum(1 for w in words if _ARABIC_SCRIPT.search(w))
    latin = sum(1 for w in words if _LATIN.search(w) and not _ARABIC_SCRIPT.search(w))
    return "ar" if arabic > latin else "en"
