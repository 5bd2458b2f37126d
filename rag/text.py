"""Text helpers shared by the stages: digits and numbers, for English and Arabic."""

from __future__ import annotations

import re

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def ascii_digits(text: str) -> str:
    """Arabic-Indic and Persian digits written as 0-9."""
    return text.translate(_DIGITS)


def numbers(text: str) -> set[str]:
    """The numbers written in a text (Arabic-Indic digits read as 0-9, thousands separators dropped)."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(ascii_digits(text))}
