"""One sentence rule for the index, the key quotes and the verifier (rag/text/sentences.py)."""

from __future__ import annotations

import pytest

from rag.answer.verify import split_claims
from rag.text.sentences import sentence_spans, split_sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "it cost 8.8 million. then it grew 3.5 times? yes",
            ["it cost 8.8 million.", "then it grew 3.5 times?", "yes"],
        ),
        ("U.S. officials met Mr. Lavrov. J. Smith agreed!", ["U.S. officials met Mr. Lavrov.", "J. Smith agreed!"]),
        ("See example.com today. Done", ["See example.com today.", "Done"]),
        ("Prices rose, e.g. oil. They fell.", ["Prices rose, e.g. oil.", "They fell."]),
        (
            'قالت: "لقد سيطرنا." ثم أضافت «نعم». وأكد ٣٫٥ مليون.',
            ['قالت: "لقد سيطرنا."', "ثم أضافت «نعم».", "وأكد ٣٫٥ مليون."],
        ),
        ("هل قالت ذلك؟ نعم!\nسطر آخر", ["هل قالت ذلك؟", "نعم!", "سطر آخر"]),
        ("Visit the U.S.", ["Visit the U.S."]),
        ("Wait... what?! Yes.", ["Wait...", "what?!", "Yes."]),
        # A scraped quote's point before a comma: the sentence goes on (never a comma-led key sentence).
        (
            "قال إن الصين “على استعداد للعمل”. ، وفقا لبيان الحكومة الصينية. قال الخبراء ذلك.",
            ["قال إن الصين “على استعداد للعمل”. ، وفقا لبيان الحكومة الصينية.", "قال الخبراء ذلك."],
        ),
    ],
)
def test_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_spans_are_offsets_into_the_text_and_short_ones_can_be_left_out() -> None:
    text = "  Heading\nThe minister spoke at length.  Then left. "
    assert [text[a:b] for a, b in sentence_spans(text)] == ["The minister spoke at length."]
    assert [text[a:b] for a, b in sentence_spans(text, min_words=1)] == [
        "Heading",
        "The minister spoke at length.",
        "Then left.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "U.S. officials met Mr. Lavrov in 2024. The talks lasted 3.5 hours. China said no.",
        'قالت ماو نينغ: "لقد سيطرنا دائما على التصدير." وأضافت أن الصين لا تقدم أسلحة.',
    ],
)
def test_the_verifier_reads_an_answer_in_the_same_sentences_as_the_index(text: str) -> None:
    assert [c.text for c in split_claims(text)] == split_sentences(text)
