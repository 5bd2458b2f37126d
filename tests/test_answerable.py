"""The answerability estimate's parts (fast, no model): what a question asks for, what a window holds, the outcome."""

from __future__ import annotations

import pytest

from rag.answer.answerable import (
    CALIBRATIONS,
    FEATURES,
    Assessment,
    Calibration,
    Question,
    Signals,
    asks_for,
    assess,
    content_words,
    holds_kind,
    missing_words,
    people_in,
    window_signals,
)
from rag.text.names import NameMatcher

FUJIAN = (
    "عقد نيكولاي ب. باتروشيف ، رئيس مجلس الأمن الروسي ، وكبير الدبلوماسيين الصينيين ، يانغ جيتشي ، اجتماعا في مقاطعة "
    "فوجيان جنوب شرق البلاد"
)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How much was China's trade with Russia in 2022?", "number"),
        ("كم عدد سفن الصيد في ميناء الساحل؟", "number"),
        ("When was Wang Yi appointed foreign minister?", "date"),
        ("متى تأسست مكتبة المدينة؟", "date"),
        ("Where did Patrushev and Yang Jiechi meet?", "place"),
        ("أين التقى باتروشيف ويانغ جيتشي؟", "place"),
        ("Who met Patrushev in Fujian?", "person"),
        ("من التقى باتروشيف في فوجيان؟", "person"),
        ("ما اسم محافظ الوادي الأخضر؟", "person"),
        ("What did Mao Ning say about dual-use exports?", None),
        ("ماذا قالت ماو نينغ عن تصدير البنود؟", None),  # "من" inside a sentence is "from", not "who"
    ],
)
def test_what_a_question_asks_for(question: str, kind: str | None) -> None:
    assert asks_for(question) == kind


def test_people_are_found_after_their_titles() -> None:
    assert people_in(FUJIAN) == ["يانغ جيتشي"]
    assert people_in("قالت المتحدثة باسم وزارة الخاريجية الصينية ماو نينغ للصحفيين") == ["ماو نينغ"]
    assert people_in("وصل وزير الخارجية الروسي سيرغي لافروف إلى بكين") == ["سيرغي لافروف"]
    assert people_in("افتتح محافظ الوادي الأخضر الجسر الجديد الذي يربط ضفتي النهر") == []  # no name after the title
    assert people_in("وقال مدير الميناء إن التوسعة ستضاعف عدد الأرصفة") == []


def test_a_window_holds_the_kind_of_answer_or_not() -> None:
    assert holds_kind("number", "سجلت التجارة رقما قياسيا بقيمة 190 مليار دولار")
    assert not holds_kind("number", "تراجعت أسعار الطماطم في أسواق البلدة هذا الأسبوع")
    assert holds_kind("date", "وقع الاتفاق في مارس")
    assert holds_kind("place", "اجتماعا في مقاطعة فوجيان")
    # the question's own number is not an answer to it: "how many drones in 2022?" over "a record in 2022"
    record = "سجلت تجارة الصين مع موسكو رقما قياسيا في 2022"
    assert not holds_kind("number", record, "How many drones did China export to Russia in 2022?")
    assert holds_kind("number", record, "How many drones did China export to Russia?")
    assert not holds_kind("date", record, "When in 2022 was the record set?")
    # a person the question does not name already: Yang Jiechi, not Patrushev
    assert holds_kind("person", FUJIAN, "من التقى باتروشيف في فوجيان؟")
    assert not holds_kind("person", "وفي حديثه في فوجيان ، قال السيد باتروشيف", "من التقى باتروشيف في فوجيان؟")


def test_window_signals_count_what_the_question_asks_about() -> None:
    q = Question.of("كم بلغت كلفة جسر الوادي الجديد؟", None, lambda text: 0.5)
    assert "كلفه" in q.words and q.kind == "number"
    w = window_signals(q, "افتتح محافظ الوادي الأخضر الجسر الجديد بعد ثلاث سنوات", NameMatcher())
    assert w.absent > 0 and w.coverage == 0.5  # the cost is nowhere in the window
    full = window_signals(q, "بلغت كلفة جسر الوادي الجديد خمسين مليون دينار", NameMatcher())
    assert full.absent == 0 and full.kind == 0
    # a person asked for is not read by the kind signal (XQuAD names most people without a title)
    who = Question.of("من التقى باتروشيف في فوجيان؟", None, lambda text: 0.5)
    assert who.kind == "person"
    assert window_signals(who, "وفي حديثه في فوجيان ، قال السيد باتروشيف", NameMatcher()).kind == 0
    assert content_words("ماذا قالت ماو نينغ عن الأسلحة؟") == ["ماو", "نينغ", "الاسلحه"]


def test_the_estimate_is_a_probability_and_picks_an_outcome() -> None:
    sure = Calibration(4.0, (0.0,) * len(FEATURES))
    assert 0.98 < sure.probability(Signals()) < 0.99
    assert Assessment(0.6, Signals(), "en").outcome(0.5, 0.15) == "answer"
    assert Assessment(0.3, Signals(), "en").outcome(0.5, 0.15) == "closest"
    assert Assessment(0.1, Signals(), "en").outcome(0.5, 0.15) == "refused"
    arabic = assess(Signals(quote=1.2, dense=0.88, coverage=0.9, margin=0.2), "ماذا قالت ماو نينغ؟")
    assert arabic.lang == "ar" and 0.0 <= arabic.confidence <= 1.0
    assert set(CALIBRATIONS) == {"ar", "en"} and all(len(c.weights) == len(FEATURES) for c in CALIBRATIONS.values())
    # the fitted estimate rises with the evidence: a far better quote and passage is likelier to answer
    weak = assess(Signals(quote=0.85, dense=0.76, coverage=0.1, absent=0.8, unseen=0.8), "ماذا قالت ماو نينغ؟")
    assert weak.confidence < arabic.confidence


def test_a_refusal_can_say_what_the_passages_do_not_mention() -> None:
    passages = "قال السيد باتروشيف إن التعاون بين روسيا والصين في مجال الأمن له جذور تاريخية عميقة"
    assert missing_words("ماذا قال باتروشيف عن الأسلحة النووية؟", passages) == ["الأسلحة", "النووية"]
    assert missing_words("ماذا قال باتروشيف عن التعاون؟", passages) == []
