"""Names across scripts and the verifier's polarity and word checks (no model)."""

from __future__ import annotations

import pytest

from rag.answer.verify import affirmed, clauses, negated, unheld_words
from rag.text.names import Name, NameMatcher, english_names, latin_sound

PASSAGE = (
    "عقد نيكولاي باتروشيف ويانغ جيتشي اجتماعا في مقاطعة فوجيان، بعد لقاء الرئيس فلاديمير بوتين في أوزبكستان "
    "مع الزعيم الصيني شي جين بينغ. وقال ميدفيديف إن الولايات المتحدة ..."
)


@pytest.mark.parametrize(
    "name", ["Patrushev", "Yang Jiechi", "Fujian", "Uzbekistan", "Xi Jinping", "Medvedev", "Putin"]
)
def test_transliterated_names_are_found(name: str) -> None:
    assert NameMatcher().mentions(Name(name, name.lower()), PASSAGE)


@pytest.mark.parametrize("name", ["Taiwan", "Shanghai", "Kazakhstan", "Macron", "Lavrov"])
def test_names_the_passage_never_writes_are_not(name: str) -> None:
    assert not NameMatcher().mentions(Name(name, name.lower()), PASSAGE)


def test_exonyms_come_from_the_gazetteer() -> None:
    m = NameMatcher()
    assert m.missing_english("China and the United States", PASSAGE) == []
    assert [n.text for n in m.missing_english("India and Egypt", PASSAGE)] == ["India", "Egypt"]


def test_english_names_skip_titles_question_words_and_sentence_starting_plurals() -> None:
    names = [n.text for n in english_names("What did President Putin tell Foreign Minister Lavrov on Monday?")]
    assert names == ["Putin", "Lavrov"]
    assert [n.text for n in english_names("Lawmakers worry that ByteDance could sell.")] == ["ByteDance"]
    assert [n.text for n in english_names("Who won Super Bowl XLIX?")] == ["Super Bowl"]


def test_sounds_fold_spelling_differences() -> None:
    assert latin_sound("Medvedev") == latin_sound("Metvedev".replace("t", "d"))
    assert latin_sound("Patrushev").startswith("BaTRuS")


def test_negation_in_english_and_arabic() -> None:
    assert negated("China does not export dual-use goods.")
    assert negated("China didn't export them.")
    assert not negated("China controls dual-use exports.")
    assert negated("ذكرت الصين أنها لم تقدم أسلحة")
    assert negated("الصين ليست طرفا في الأزمة")
    assert not negated("لقد سيطرنا دائما على تصدير البنود، مثل الطائرات بدون طيار")  # drones, not a negation
    assert affirmed("China does not export dual-use goods.") == "China does export dual-use goods."
    assert affirmed("قالت إن الصين لا تصدر البنود") == "قالت إن الصين تصدر البنود"


def test_clauses_and_unheld_words() -> None:
    sentence = "“لقد سيطرنا دائما على تصدير البنود ذات الاستخدام المزدوج وفقا للقانون”، قالت ماو، مشيرة إلى العناصر"
    assert clauses(sentence)[0] == "لقد سيطرنا دائما على تصدير البنود ذات الاستخدام المزدوج وفقا للقانون"
    assert unheld_words("سيطرت الصين على تصدير البنود", sentence) == ["الصين"]
    assert unheld_words("عقدوا اجتماعا في مدينة شنغهاي", PASSAGE) == ["مدينه", "شنغهاي"]
