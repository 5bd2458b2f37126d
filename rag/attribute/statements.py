"""Who said what: the sentences of an article that report a speaker's words, each with its speaker resolved within
the article. Rules, not a model (the embedded 1.5B model cannot read Arabic reliably); measured on
tests/fixtures/statements.jsonl (`rag eval --statements`, docs/newsroom.md).

A statement is a sentence whose main assertion reports what someone said, declared, warned, denied: a reporting
verb (قال، أكد، أضاف، أعلن، صرح، ذكر، أشار، حذر، نفى، دعا ... / said, told, added, warned ...) with its speaker,
or a sentence opened by a source (وفقا لـ، بحسب / According to) when nothing else in it speaks. The speaker is
found after the verb (Arabic puts it there: "قال وزير الخارجية الروسي سيرغي لافروف إن"), before it ("بيد أن بوتين
قال إن"), or, when the verb has no subject of its own ("وأضاف أن"), in the sentences before: the person named first
in the same sentence ("لكنه قال"), the speaker of the statement just before, or the last person named in the
sentence before. A speaker is then resolved within the article:
- a short name becomes the article's full one ("قالت ماو" -> ماو نينغ);
- a title without a name becomes the person the article gave that title ("وقال الرئيس الروسي" -> فلاديمير بوتين),
  else the speaker of the statement just before ("كبير الدبلوماسيين"), else the office itself, as the article
  first wrote it in full ("المحافظ" -> محافظ الوادي الأخضر);
- a body (وزارة الخارجية الصينية، الكرملين، الصين) speaks for itself.
Unnamed speakers (بيان رسمي، بعض الخبراء، مسؤولين أمريكيين، officials) make no statement, nor does a negated verb
("ولم يوضح بلينكن"). A sentence that opens a quotation closed by the next sentence's speaker, or goes on with the
quotation of the statement before, is that speaker's too. Titles are kept beside the name (`role`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rag.text.arabic import detect_language, fold
from rag.text.names import GAZETTEER, NOT_NAMES, arabic_sound, distance
from rag.text.sentences import article_sentences
from rag.types import Article, Statement

VERSION = 1  # the rules' version, kept in the manifest: an index found with other rules finds its statements again


def _folded(words: str) -> frozenset[str]:
    return frozenset(fold(w) for w in words.split())


def _with_article(words: str) -> frozenset[str]:
    """The folded words and their forms with ال."""
    base = _folded(words)
    return base | {"ال" + w for w in base if not w.startswith("ال")}


# Reporting verbs (folded), found with or without a leading و or ف.
CUE_VERBS = _folded(
    """
    قال قالت قالا قالوا يقول تقول يقولون قائلا قائلة
    أكد أكدت أكدا أكدوا يؤكد تؤكد مؤكدا مؤكدة
    أضاف أضافت مضيفا مضيفة يضيف تضيف
    أعلن أعلنت أعلنا أعلنوا يعلن تعلن
    صرح صرحت يصرح تصرح
    ذكر ذكرت
    أشار أشارت مشيرا مشيرة
    حذر حذرت محذرا محذرة يحذر تحذر
    شدد شددت يشدد تشدد مشددا مشددة
    أبلغ أبلغت
    نفى نفت ينفي تنفي
    دعا دعت يدعو تدعو
    اعترف اعترفت
    تعهد تعهدت
    أوضح أوضحت موضحا موضحة
    ندد نددت
    أفاد أفادت
    كشف كشفت
    أعرب أعربت
    لمح لمحت يلمح تلمح
    اعتبر اعتبرت
    طالبت
    اتهم اتهمت
    زعم زعمت
    كتب كتبت
    """
)
EN_CUES = frozenset(
    """said says say told tells added adds stated states announced announces warned warns denied denies insisted
    insists noted notes confirmed confirms claimed claims explained explains argued argues stressed stresses
    wrote writes urged urges""".split()
)
_NEGATORS = _folded("لم لن لا ما ليس ولم ولن ولا وما")
_EN_NEGATORS = frozenset("not never n't didn't did't doesn't don't".split())
_SUBORDINATE = _folded("حسبما كما وكما")  # "حسبما أكد الكرملين": a source named in passing
_OVERRIDES = (("مقتبسة", "من"), ("مقتبسا", "من"), ("نقلا", "عن"))  # the words quoted are this speaker's
_OVERRIDES_F = tuple((fold(a), fold(b)) for a, b in _OVERRIDES)
_SOURCE_OPENERS = _folded("وفقا وفق بحسب حسب وبحسب ووفقا")
_ISSUED = (fold("صدر"), fold("عن"))  # "وصدر عن مركز ... أن"

# Titles and offices (a person's), and bodies (they speak for themselves), with and without ال.
PERSON_ROLES = _with_article(
    """
    وزير وزيرة رئيس رئيسة الرئيسان رئيسا نائب نائبة مدير مديرة متحدث متحدثة ناطق ناطقة سكرتير سكرتيرة محافظ
    كبير كبيرة سيد سيدة زعيم زعيمة سفير سفيرة قائد مستشار مستشارة مسؤول مسؤولة أمين عضو مبعوث مبعوثة نظير
    نظيره نظيرها حاكم ملك أمير مندوب مندوبة ممثل ممثلة قاضي جنرال عمدة مراسل مراسلة مفوض مفوضة وزيرا
    دكتور بروفيسور أستاذ مؤرخ
    """
)
BODIES = _with_article(
    """
    وزارة حكومة مجلس صحيفة وكالة مركز مجلة قناة شبكة بلدية منظمة هيئة لجنة حزب جيش شركة بنك جامعة مكتب
    البيت الكرملين بعثة سفارة محكمة برلمان شرطة الأمم الخارجية رابطة اتحاد جمعية مؤسسة نقابة مجموعة دار معهد
    إدارة سلطة مفوضية صندوق برنامج مصلحة الجمارك
    """
)
# Speakers no reader could name: they make no statement.
GENERIC = _with_article(
    """
    بيان بيانات مسؤولون مسؤولين مسؤولو مسؤولي خبراء بعض محللون محللين تجار مصادر جانبان جانبين طرفان طرفين
    تقارير مراقبون مراقبين مشرعون مشرعين سلطات أوساط شهود سكان ناشطون ناشطين بلدان بلدين دولتان دولتين
    كثيرون آخرون وزيران وزيرين أحد عدد متحدثون مصدر تقرير دراسة استطلاع خطاب العديد باحثون باحثين
    أدلة إحصاء إحصاءات أرقام معطيات وثائق
    """
)
_EN_GENERIC = frozenset(
    """officials official experts analysts sources reports critics residents people lawmakers diplomats traders
    witnesses observers some many others authorities""".split()
)
_EN_BODIES = frozenset(
    """ministry government council agency office department commission committee army police company bank
    court parliament embassy newspaper kremlin university centre center party""".split()
)
# Words that end a speaker's name: particles, prepositions, days, adverbs.
STOPS = _folded(
    """
    إن أن أنه أنها أنهما أنهم بأن بأنه بأنها لأن في من على عن مع إلى خلال بعد قبل أمام عبر حول بشأن منذ عند
    لدى حيث الذي التي الذين اللذين يوم اليوم أمس الاثنين الثلاثاء الأربعاء الخميس الجمعة السبت الأحد صباح
    مساء أيضا كذلك صراحة علنا مجددا بدوره بدورها سابقا لاحقا قد لقد آنذاك حينها بينما فيما لكن لكنه إلا أو ثم
    كما حتى إذ إذا هذا هذه ذلك تلك هناك هنا وقد وأن فإن أثناء وسط ضد نحو دون بدون غير بين ما لم لن لا
    عام سنة شهر فيه فيها منه منها عنه عنها له لها به بها عليه عليها إليه إليها رسميا نفسه نفسها نفسهم ذاته ذاتها
    """
)
_PRONOUN_HOSTS = _folded("لكنه لكنها أنه أنها إنه إنها فإنه فإنها وإنه وأنه وهو وهي")
_CONNECTORS = _folded("كما ثم من جانبه جانبها بدوره بدورها وفي حديثه حديثها وبينما بينما ومع")
_PLACES = frozenset(f for forms in GAZETTEER.values() for f in forms)

_TOKEN = re.compile(r"[\w\u0640\u064b-\u0652\u0670'’\-]+|[“”\"«»:،,؛;.()]")
_OPEN_QUOTES = "“«"
_CLOSE_QUOTES = "”»"
_QUOTES = set('“”"«»')


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    key: str  # folded, lower case
    start: int  # offsets in the sentence
    end: int

    @property
    def word(self) -> bool:
        return self.text[0].isalnum() or self.text[0] == "_"


def _tokens(sentence: str) -> list[_Tok]:
    found = list(_TOKEN.finditer(sentence))
    keys = fold("\x00".join(m.group() for m in found)).replace("ـ", "").split("\x00")  # one fold per sentence
    return [_Tok(m.group(), k, m.start(), m.end()) for m, k in zip(found, keys, strict=True)]


def _bare(key: str) -> str:
    """A word without a leading و or ف (conjunctions)."""
    return key[1:] if key[:1] in ("و", "ف") and len(key) > 3 else key


def _among(key: str, words: frozenset[str]) -> bool:
    """The word, or the word after a leading و or ف, is one of `words` ("وسكرتير", but "وزير" is itself)."""
    return key in words or (key[:1] in ("و", "ف") and key[1:] in words)


@dataclass(slots=True)
class _Speaker:
    """A speaker as a sentence names it: the name's words and the title or body's words."""

    name: list[str] = field(default_factory=list)  # words as written
    role: list[str] = field(default_factory=list)
    body: bool = False  # the role words name a body (وزارة ...), a country or an outlet
    titled: bool = False  # joined to a titled speaker: "الرئيسان الصيني شي ... والروسي فلاديمير بوتين"

    @property
    def text(self) -> str:
        return " ".join(self.name)

    @property
    def role_text(self) -> str:
        return " ".join(self.role)


@dataclass(frozen=True, slots=True)
class _Found:
    """What one sentence says of its speakers before resolution."""

    speakers: tuple[_Speaker, ...]
    cue: str
    how: str  # "named" (after or before the verb), "omitted" (no subject: a pronoun), "source" (وفقا لـ)
    cue_at: int  # the cue token's index


class _Person:
    """A person an article names: the fullest name seen and the titles given to it."""

    def __init__(self, words: tuple[str, ...], role: str, at: int) -> None:
        self.words = words
        self.role = role
        self.at = at  # the sentence it was first named in

    @property
    def name(self) -> str:
        return " ".join(self.words)


def _is_prep(key: str) -> bool:
    """A word that starts with a preposition: للصحفيين, لوزير, بالعقوبات, لروسيا (not لافروف)."""
    if key.startswith(("لل", "بال")) and len(key) > 3:
        return True
    if key[:1] in ("ل", "ب") and len(key) > 2:
        rest = key[1:]
        return rest in PERSON_ROLES or rest in BODIES or rest in _PLACES or rest in GENERIC or rest in STOPS
    return False


def _name_like(tok: _Tok, first: bool) -> bool:
    """Could this word be part of a person's name?"""
    k = tok.key
    if not tok.word or k in STOPS or k in GENERIC or k in CUE_VERBS or _bare(k) in CUE_VERBS or _is_prep(k):
        return False
    if k.startswith("ال") or k.isdigit():
        return False
    if k.endswith("ات") or (not first and k.endswith("ه") and len(k) > 3):
        return False  # a plural or a feminine noun (شراكة) after a name
    return True


def _place_at(tokens: Sequence[_Tok], i: int) -> int:
    """How many words from i name a place of the gazetteer with ال (الصين, الولايات المتحدة): 0 when none."""
    k = tokens[i].key
    if not k.startswith("ال"):
        return 1 if k in _PLACES and len(k) > 3 else 0  # روسيا، بريطانيا
    if i + 1 < len(tokens):
        nxt = tokens[i + 1].key
        two = f"{k[2:]} {nxt[2:] if nxt.startswith('ال') else nxt}"
        if two in _PLACES:
            return 2
    return 1 if k[2:] in _PLACES else 0


def _phrase(tokens: Sequence[_Tok], i: int, known: set[tuple[str, ...]]) -> tuple[list[_Speaker], int]:
    """The speakers named from token i on ("وزير الخارجية الروسي سيرغي لافروف", "وانغ يي وباتروشيف"), and where
    the phrase ended. An empty list when the verb has no subject here."""
    speakers: list[_Speaker] = []
    cur = _Speaker()
    j = i
    after_name = trailing = False
    if j < len(tokens) and tokens[j].key not in PERSON_ROLES | BODIES and _among(tokens[j].key, PERSON_ROLES | BODIES):
        t = tokens[j]  # "وسكرتير مجلس الأمن": the title, without its و
        tokens = [*tokens[:j], _Tok(t.text[1:], t.key[1:], t.start + 1, t.end), *tokens[j + 1 :]]
    while j < len(tokens):
        t = tokens[j]
        k = t.key
        if not t.word:
            if t.text in "،," and cur.role and not cur.name:
                j += 1  # "وزير الخارجية الروسي، سيرجي لافروف": the name follows the comma
                continue
            break
        if cur.name or cur.role:
            conj = k.startswith("و") and len(k) > 2 and k not in PERSON_ROLES and k not in BODIES
            rest = k[1:]
            # "وباتروشيف" after a whole name is a second person; "فريدريك وليام" is one name
            if conj and (rest in PERSON_ROLES or rest.startswith("ال") or (len(cur.name) >= 2 and _name_like(t, True))):
                speakers.append(cur)  # "والرئيس الصيني ...", "والروسي ...", "وباتروشيف": a second speaker
                cur = _Speaker(titled=_role_takes_name(speakers[-1]) and bool(speakers[-1].name))
                after_name = trailing = False
                t = _Tok(t.text[1:], rest, t.start + 1, t.end)
                k = rest
        if k == "في" and len(cur.name) == 1 and not after_name and _initial(tokens, j):
            cur.name.append(t.text)  # "سيرجي في لافروف ،": Sergei V. Lavrov
            j += 1
            continue
        if k in STOPS or k in GENERIC and not cur.role and not cur.name or _is_prep(k):
            break
        if after_name:  # a title after the name: "ماو نينغ المتحدثة باسم ..."
            if k in PERSON_ROLES or trailing and (k.startswith("ال") or k in BODIES or k == fold("باسم")):
                cur.role.append(t.text)
                trailing = True
                j += 1
                continue
            break
        places = _place_at(tokens, j) if not cur.role and not cur.name else 0
        if places:  # a country speaks: nothing follows its name
            cur.role.extend(tok.text for tok in tokens[j : j + places])
            cur.body = True
            j += places
            break
        if k in GENERIC and not cur.name:
            return [], j
        if k in PERSON_ROLES or k in BODIES or k == fold("باسم") or (k.startswith("ال") and not cur.name):
            if k in BODIES and not cur.role:
                cur.body = True
            cur.role.append(t.text)
            after_name = trailing = bool(cur.name)  # "ماو نينغ المتحدثة باسم ...": the title goes on
            j += 1
            continue
        if _name_like(t, not cur.name) and len(cur.name) < 3:
            if cur.name and _another(known, [fold(w) for w in cur.name], k):
                break  # "وأبلغ وانغ لافروف": another person, spoken to
            if cur.role and not cur.name and not _role_takes_name(cur):
                break  # "الكرملين لبي بي سي"
            cur.name.append(t.text)
            j += 1
            continue
        if cur.name:
            after_name = True
            continue
        break
    if cur.name or cur.role:
        speakers.append(cur)
    return [s for s in speakers if _valid(s)], j


def _another(known: set[tuple[str, ...]], words: list[str], k: str) -> bool:
    """True when `k` belongs to a name the article gives someone else than the one begun with `words`."""
    holders = [n for n in known if k in n]
    return bool(holders) and not any(set(words) <= set(n) for n in holders)


def _initial(tokens: Sequence[_Tok], j: int) -> bool:
    """ "في" between two names before a comma is an initial (V.), not "in": "سيرجي في لافروف ،"."""
    if j + 2 >= len(tokens):
        return False
    nxt, after = tokens[j + 1], tokens[j + 2]
    return _name_like(nxt, False) and nxt.key not in _PLACES and after.text in "،,"


def _two_people(name: tuple[str, ...], names: set[tuple[str, ...]]) -> bool:
    """True when two other names share out this one's words: ("وانغ", "لافروف") next to ("وانغ",) and
    ("سيرغي", "لافروف")."""
    others = [n for n in names if n != name and set(n) & set(name)]
    return len(name) > 1 and any(not set(a) & set(b) and set(name) <= set(a) | set(b) for a in others for b in others)


def _body_name(s: _Speaker) -> str:
    """A body as named: its words, a misspelt well-known one as the gazetteer writes it ("الكرملن": الكرملين)."""
    text = " ".join(s.role + s.name)
    key = fold(text)
    if len(s.role) == 1 and not s.name and key.startswith("ال") and key[2:] not in _PLACES and len(key) > 5:
        if key.endswith(("ي", "يه")):
            return text  # an adjective (الروسي), not a misspelt name
        sound = arabic_sound(key[2:])
        near = [f for f in _PLACES if " " not in f and distance(sound, arabic_sound(f)) <= 0.2]
        if len(near) == 1:
            return "ال" + near[0]
    return text


def _role_takes_name(s: _Speaker) -> bool:
    """A title or a body's kind is followed by a name ("الرئيس الروسي فلاديمير بوتين", "صحيفة جلوبال تايمز");
    a body already named is not ("الكرملين", "وزارة الخارجية الصينية")."""
    keys = [fold(w) for w in s.role]
    return s.titled or any(k in PERSON_ROLES for k in keys) or bool(keys and keys[0] in BODIES and len(keys) <= 3)


def _valid(s: _Speaker) -> bool:
    """A speaker someone could name: a name, a title, a body, a country (not "الأدلة", "بعض الخبراء")."""
    if s.name:
        return True
    keys = [fold(w) for w in s.role]
    if not keys or keys[0] in GENERIC or all(k.startswith("ال") and k[2:] in GENERIC for k in keys):
        return False
    if s.body or s.titled or any(k in PERSON_ROLES or k in BODIES for k in keys):
        return True
    return _body_name(s) != " ".join(s.role)  # a misspelt country or body (الكرملن)


def _is_body(s: _Speaker) -> bool:
    if s.titled:
        return False
    keys = [fold(w) for w in s.role]
    if s.body or (keys and keys[0] in BODIES):
        return True
    return not s.name and bool(keys) and not any(k in PERSON_ROLES for k in keys)


def _lookback(tokens: Sequence[_Tok], at: int, known: set[tuple[str, ...]]) -> _Speaker | None:
    """The subject written before the verb: "بيد أن بوتين قال", "وكانت الصين قد نفت", "الولايات المتحدة تلمح"."""
    j = at - 1
    while j >= 0 and tokens[j].key in _folded("قد لقد"):
        j -= 1
    if j < 0 or not tokens[j].word:
        return None
    if j >= 1 and tokens[j - 1].key.startswith("ال"):  # a two-word place
        two = f"{tokens[j - 1].key[2:]} {tokens[j].key.removeprefix('ال')}"
        if two in _PLACES and not (j >= 2 and tokens[j - 2].key in STOPS - _folded("أن إن بيد")):
            return _Speaker(role=[tokens[j - 1].text, tokens[j].text], body=True)
    k = tokens[j].key
    before = tokens[j - 1].key if j >= 1 else ""
    if before in STOPS - _folded("أن إن") or _is_prep(k):
        return None  # "في بكين تلمح": not a subject
    if k.startswith("ال") and k[2:] in _PLACES:
        return _Speaker(role=[tokens[j].text], body=True)
    if any(k in n for n in known):
        return _Speaker(name=[tokens[j].text])
    return None


def _cues(tokens: Sequence[_Tok]) -> list[int]:
    """Indexes of reporting verbs that are not negated."""
    out = []
    for i, t in enumerate(tokens):
        if not t.word:
            continue
        if t.key in CUE_VERBS or _bare(t.key) in CUE_VERBS:
            if i and tokens[i - 1].key in _NEGATORS:
                continue
            out.append(i)
    return out


def _find(tokens: Sequence[_Tok], known: set[tuple[str, ...]]) -> _Found | None:
    """The speakers an Arabic sentence (its tokens) names for what it reports, before resolution."""
    found: _Found | None = None
    subordinate: _Found | None = None
    for i in _cues(tokens):
        prev = tokens[i - 1].key if i else ""
        if prev not in _SUBORDINATE and not _main_verb(tokens, i):
            continue  # a verb inside a clause ("شركة صينية تقول إنها", "شيئا يذكر")
        speakers, end = _phrase(tokens, i + 1, known)
        if _adds_to(tokens, i, end):
            continue  # "أضاف غولدنسون إلى هذا الالتباس": added to, not said
        behind = _lookback(tokens, i, known) if i and tokens[i - 1].word else None
        if behind is not None:  # "الصين تنفي تزويد ...": the subject stands before the verb
            speakers, how = [behind], "named"
        elif speakers:
            how = "named"
        elif _has_subject(tokens, i):
            continue  # "أضافت تشريعات جديدة", "وقال بيان رسمي": a subject that is nobody we can name
        else:
            how = "omitted"
        one = _Found(tuple(speakers), tokens[i].text, how, i)
        if prev in _SUBORDINATE:
            subordinate = subordinate or (one if speakers else None)
            continue
        if how == "omitted" and not _may_omit(tokens, i):
            continue  # a verb inside a clause ("تكهنات ... تلمح إلى"): its subject is a noun before it
        found = one
        break
    for i, t in enumerate(tokens[:-1]):  # "مقتبسة من المتحدث ... ماريا زاخاروفا": the quoted words are hers
        if (t.key, tokens[i + 1].key) in _OVERRIDES_F:
            speakers, _ = _phrase(tokens, i + 2, known)
            if speakers:
                return _Found(tuple(speakers), f"{t.text} {tokens[i + 1].text}", "named", i)
        if (_bare(t.key), tokens[i + 1].key) == _ISSUED and found is None:
            speakers, _ = _phrase(tokens, i + 2, known)
            if speakers:
                found = _Found(tuple(speakers), f"{t.text} {tokens[i + 1].text}", "named", i)
    if found is None and tokens and tokens[0].key in _SOURCE_OPENERS and len(tokens) > 1:
        t = tokens[1]
        if t.key.startswith("ل"):  # "وفقا لوزارة", "وفقا للوكالة": the ل comes off
            tokens = [tokens[0], _Tok(t.text[1:], t.key[1:], t.start + 1, t.end), *tokens[2:]]
        speakers, _ = _phrase(tokens, 1, known)
        # a source is a body, an office or a person named in full, not "وفقا لإحصاء 1901"
        if speakers and all(_is_body(x) or len(x.name) > 1 for x in speakers):
            found = _Found(tuple(speakers), tokens[0].text, "source", 0)
    return found or subordinate


_ADD = _folded("أضاف أضافت يضيف تضيف")
_RECOGNISE = _folded("اعترف اعترفت")


def _adds_to(tokens: Sequence[_Tok], i: int, end: int) -> bool:
    """ "أضاف X إلى ..." (added to, unless "إلى أن"), "اعترف X بهيمنة" (recognised, unless "بأن")."""
    if end >= len(tokens):
        return False
    verb, nxt = _bare(tokens[i].key), tokens[end].key
    if verb in _RECOGNISE:
        return nxt.startswith("ب") and nxt not in STOPS
    if verb not in _ADD or nxt != fold("إلى"):
        return False
    return not (end + 1 < len(tokens) and tokens[end + 1].key in _folded("أن أنه أنها"))


def _main_verb(tokens: Sequence[_Tok], i: int) -> bool:
    """A reporting verb that carries the sentence: at its start or after a comma, a quotation or a connector
    ("ومع استمرار الحرب، قال"), joined by و, after a pronoun ("لكنه قال") or after its subject ("بيد أن بوتين
    قال")."""
    if _starts(tokens, i) or tokens[i].key[:1] in ("و", "ف") and _bare(tokens[i].key) in CUE_VERBS:
        return True
    before = tokens[i - 1]
    if not before.word or before.key in _PRONOUN_HOSTS or before.key in _folded("قد لقد"):
        return True
    return before.key.startswith("ال") or (i >= 2 and tokens[i - 2].key in _folded("أن إن بيد لكن"))


def _has_subject(tokens: Sequence[_Tok], i: int) -> bool:
    """The verb is followed by a word that is its subject (a noun we cannot name), not by إن/أن, a preposition,
    a quotation or the end."""
    if i + 1 >= len(tokens):
        return False
    t = tokens[i + 1]
    return t.word and t.key not in STOPS and not _is_prep(t.key)


def _may_omit(tokens: Sequence[_Tok], i: int) -> bool:
    """A verb may go without a subject of its own at the start of a sentence ("وأضاف أن"), after a pronoun
    ("لكنه قال"), or joined by و to what a person did before in the sentence ("... واعترف بأن")."""
    if i == 0 or all(t.key in _CONNECTORS or not t.word for t in tokens[:i]):
        return True
    if tokens[i - 1].key in _PRONOUN_HOSTS:
        return True
    return tokens[i].key.startswith("و") and _bare(tokens[i].key) in CUE_VERBS


# ------------------------------------------------------------------------------------------------- English

_EN_NAME = re.compile(r"[A-Z][\w'’\-]*(?:\s+[A-Z][\w'’\-]*)*")
_EN_TITLES = frozenset(
    """president minister spokesman spokeswoman spokesperson secretary mayor governor director chief head harbour
    harbor master deputy ambassador general chairman chairwoman official leader senator envoy manager
    prime foreign interior defence defense""".split()
)


def _en_find(sentence: str) -> _Found | None:
    """The speaker of an English sentence: "said X", "X said", "X, the spokesman, told", "According to X,"."""
    words = list(re.finditer(r"[\w'’\-]+|[,.;:\"“”]", sentence))
    keys = [w.group().lower() for w in words]
    for i, k in enumerate(keys):
        if k not in EN_CUES or (i and keys[i - 1] in _EN_NEGATORS) or (i > 1 and keys[i - 2] in _EN_NEGATORS):
            continue
        after = sentence[words[i].end() :]
        m = re.match(r"\s+((?:[a-z]+\s+){0,3}?)([A-Z][\w'’\-]*(?:\s+[A-Z][\w'’\-]*)*)", after)
        titles = m.group(1).split() if m else []
        if m and not _en_generic(m.group(2)) and all(w in _EN_TITLES | {"the"} for w in titles):
            return _Found((_Speaker(name=m.group(2).split(), role=m.group(1).split()),), words[i].group(), "named", i)
        before = sentence[: words[i].start()].rstrip(" ,")
        names = list(_EN_NAME.finditer(before))
        if names and before.endswith(names[-1].group()) or (names and re.search(r",\s*$", before)):
            name = names[-1].group()
            if not _en_generic(name) and name.split()[0] not in ("The", "A", "An", "But", "And"):
                return _Found((_Speaker(name=name.split()),), words[i].group(), "named", i)
        if re.search(r"(^|\W)(he|she)\s*$", before, re.I) or re.match(r"\s*(he|she)\b", after, re.I):
            return _Found((), words[i].group(), "omitted", i)
    m = re.match(r"\s*According to\s+(?:the\s+)?([^,]+),", sentence)
    if m:
        source = m.group(1).strip()
        if source.split()[-1].lower() in _EN_BODIES:
            return _Found((_Speaker(role=source.split(), body=True),), "According to", "source", 0)
        if source[:1].isupper() and not _en_generic(source):
            return _Found((_Speaker(name=source.split()),), "According to", "source", 0)
    return None


def _en_generic(name: str) -> bool:
    """Not a speaker's name: "officials", "Monday", "He"."""
    return name.lower() in _EN_GENERIC or all(w.lower() in NOT_NAMES for w in name.split())


# ------------------------------------------------------------------------------------------------- articles


def _persons(sentences: Sequence[Sequence[_Tok]]) -> list[tuple[int, _Speaker]]:
    """Every title followed by a name in the article ("الرئيس الأمريكي جوزيف بايدن"), with its sentence."""
    out = []
    for n, tokens in enumerate(sentences):
        for i, t in enumerate(tokens):
            title = _among(t.key, PERSON_ROLES) or (t.key[:1] in ("ل", "ب") and t.key[1:] in PERSON_ROLES)
            if title and (i == 0 or not _among(tokens[i - 1].key, PERSON_ROLES)):
                if t.key not in PERSON_ROLES and t.key[1:] in PERSON_ROLES:  # "لوزير الخارجية، لافروف": spoken to
                    tokens = [*tokens[:i], _Tok(t.text[1:], t.key[1:], t.start + 1, t.end), *tokens[i + 1 :]]
                speakers, _ = _phrase(tokens, i, set())
                out += [(n, s) for s in speakers if s.name and not _is_body(s)]
    return out


def extract(article: Article) -> list[Statement]:
    """The statements of an article, in sentence order (one per speaker of a sentence)."""
    spans = article_sentences(article.text)
    sentences = [article.text[a:b] for a, b in spans]
    english = (article.language or "").startswith("en") or detect_language(article.text[:2000]) == "en"
    return _English(article, spans, sentences).statements() if english else _Arabic(article, spans, sentences).run()


class _Arabic:
    """One article's statements: find, then resolve each speaker within the article."""

    def __init__(self, article: Article, spans: Sequence[tuple[int, int]], sentences: Sequence[str]) -> None:
        self.article = article
        self.spans = spans
        self.sentences = sentences
        self.tokens = [_tokens(s) for s in sentences]
        self.people: list[_Person] = []  # in order of first mention
        self.mentions: dict[int, list[_Person]] = {}  # sentence -> persons named in it (by title or as speakers)

    def run(self) -> list[Statement]:
        names: list[tuple[tuple[str, ...], str, int]] = [
            (tuple(s.name), s.role_text, n) for n, s in _persons(self.tokens)
        ]
        for n, f in enumerate(_find(t, set()) for t in self.tokens):
            for s in f.speakers if f else ():
                if s.name and not _is_body(s):
                    names.append((tuple(s.name), s.role_text if _role_takes_name(s) else "", n))
        keys = {tuple(fold(w) for w in words) for words, _, _ in names}
        known = {k for k in keys if not _two_people(k, keys)}  # "وأبلغ وانغ لافروف" is Wang and Lavrov
        for words, role, n in names:
            if tuple(fold(w) for w in words) in known:
                self._meet(words, role, n)
        self._complete(known)
        found = [_find(t, known) for t in self.tokens]
        self._index_mentions()
        said: dict[int, list[tuple[str, str, str]]] = {}  # sentence -> (speaker, role, kind)
        cues: dict[int, str] = {}
        for n, f in enumerate(found):
            if f is None:
                continue
            who = self._resolve(n, f, said)
            if who:
                said[n] = who
                cues[n] = f.cue
        self._quotations(said, cues)
        self._headlines(said, cues)
        out = []
        for n in sorted(said):
            a, b = self.spans[n]
            seen = set()
            for speaker, role, kind in said[n]:
                if speaker not in seen:
                    seen.add(speaker)
                    out.append(Statement(self.article.id, a, b, speaker, role, kind, cues[n]))
        return out

    def _meet(self, words: Sequence[str], role: str, n: int) -> None:
        """Remember a person named in sentence n; a longer form of a name seen before replaces it."""
        keys = tuple(fold(w) for w in words)
        for p in self.people:
            have = tuple(fold(w) for w in p.words)
            if set(keys) <= set(have):
                if role and not p.role:
                    p.role = role
                return
            if set(have) <= set(keys):
                p.words = tuple(words)
                p.role = role or p.role
                return
        self.people.append(_Person(tuple(words), role, n))

    def _complete(self, known: set[tuple[str, ...]]) -> None:
        """A person only ever named by one word gets the word written after it elsewhere in the article, when it
        could be a name and is nobody else's ("وانغ" -> "وانغ يي", from a fragment "وانغ يي.")."""
        for p in self.people:
            if len(p.words) != 1:
                continue
            key = fold(p.words[0])
            seen: dict[str, str] = {}
            for tokens in self.tokens:
                for i, t in enumerate(tokens[:-1]):
                    nxt = tokens[i + 1]
                    if t.key == key and _name_like(nxt, False) and not any(nxt.key in n for n in known):
                        after = tokens[i + 2] if i + 2 < len(tokens) else None
                        if after is None or not after.word:
                            seen.setdefault(nxt.key, nxt.text)
            if len(seen) == 1:
                p.words = (p.words[0], *seen.values())

    def _index_mentions(self) -> None:
        for n, tokens in enumerate(self.tokens):
            keys = [t.key for t in tokens]
            here = []
            for p in self.people:
                pk = [fold(w) for w in p.words]
                at = [i for i, k in enumerate(keys) if k in pk or _bare(k) in pk]
                if at:
                    here.append((at[0], p))
            self.mentions[n] = [p for _, p in sorted(here, key=lambda x: x[0])]

    def _person(self, words: Sequence[str]) -> _Person | None:
        """The person a name stands for: the fullest name holding its words, one that ends with them first
        ("بوتين" is فلاديمير بوتين)."""
        keys = [fold(w) for w in words]
        full = [p for p in self.people if set(keys) <= {fold(w) for w in p.words}]
        if not full:
            return None
        return max(full, key=lambda p: (fold(p.words[-1]) == keys[-1], len(p.words), -p.at))

    def _resolve(self, n: int, f: _Found, said: dict[int, list[tuple[str, str, str]]]) -> list[tuple[str, str, str]]:
        if f.how == "omitted":
            return self._omitted(n, f, said)
        out = []
        for s in f.speakers:
            if _is_body(s):
                out.append((_body_name(s), "", "org"))
            elif s.name:
                p = self._person(s.name)
                out.append((p.name, p.role or s.role_text, "person") if p else (s.text, s.role_text, "person"))
            else:
                out.append(self._office(n, s, said))
        return out

    def _omitted(self, n: int, f: _Found, said: dict[int, list[tuple[str, str, str]]]) -> list[tuple[str, str, str]]:
        """The speaker of a verb without a subject: a person named earlier in the sentence, the statement just
        before, or the last person named in the sentence before."""
        tokens = self.tokens[n]
        if f.cue_at > 0:
            before = {t.key for t in tokens[: f.cue_at]} | {_bare(t.key) for t in tokens[: f.cue_at]}
            for p in self.mentions.get(n, []):
                if any(fold(w) in before for w in p.words):
                    return [(p.name, p.role, "person")]
            if not _starts(tokens, f.cue_at):
                return []
        m = self._previous(n)
        if m is None:
            return []
        if m in said:
            return said[m][:1]
        named = self.mentions.get(m, [])
        return [(named[-1].name, named[-1].role, "person")] if named else []

    def _previous(self, n: int) -> int | None:
        """The sentence before n, passing over fragments of fewer than three words ("وانغ يي.")."""
        m = n - 1
        while m >= 0 and len(self.sentences[m].split()) < 3:
            m -= 1
        return m if m >= 0 else None

    def _office(self, n: int, s: _Speaker, said: dict[int, list[tuple[str, str, str]]]) -> tuple[str, str, str]:
        """A title without a name: the person the article gave it, the person who spoke just before, or the
        office itself as the article first wrote it."""
        role = [fold(w).removeprefix("ال") for w in s.role]
        for p in self.people:
            theirs = [fold(w).removeprefix("ال") for w in p.role.split()]
            if theirs and theirs[0] == role[0] and (set(role) <= set(theirs) or set(theirs) <= set(role)):
                return (p.name, p.role, "person")
        m = self._previous(n)
        for back in (m, self._previous(m) if m is not None else None):
            if back is not None and back in said and said[back][0][2] == "person":
                return said[back][0]
        return (self._office_in_full(s), "", "role")

    def _office_in_full(self, s: _Speaker) -> str:
        """ "المحافظ" as the article first wrote it: "محافظ الوادي الأخضر"."""
        head = fold(s.role[0]).removeprefix("ال")
        if len(s.role) == 1:
            for tokens in self.tokens:
                for i, t in enumerate(tokens):
                    if t.key == head and i + 2 < len(tokens) and all(x.word for x in tokens[i + 1 : i + 3]):
                        tail = [x for x in tokens[i + 1 : i + 3] if x.key.startswith("ال")]
                        if len(tail) == 2:
                            return " ".join([t.text, *(x.text for x in tail)])
        return s.role_text

    def _headlines(self, said: dict[int, list[tuple[str, str, str]]], cues: dict[int, str]) -> None:
        """ "مدودف: العقوبات لن تغير سياسة موسكو": a name and a colon open the words of a person the article names
        (the headline may spell the name otherwise: matched by sound)."""
        for n, tokens in enumerate(self.tokens):
            colon = next((i for i, t in enumerate(tokens[:4]) if t.text == ":"), None)
            if n in said or colon is None or colon == 0 or len(tokens) - colon < 4:
                continue
            sounds = [arabic_sound(t.key) for t in tokens[:colon] if t.word]
            for p in self.people:
                theirs = [arabic_sound(fold(w)) for w in p.words]
                if sounds and all(any(distance(a, b) <= 0.34 for b in theirs) for a in sounds):
                    said[n], cues[n] = [(p.name, p.role, "person")], ":"
                    break

    def _quotations(self, said: dict[int, list[tuple[str, str, str]]], cues: dict[int, str]) -> None:
        """A sentence that opens a quotation the next sentence closes with its speaker, or goes on with the quotation
        of the statement before (five words or more in quotation marks), is that speaker's."""
        for n, sentence in enumerate(self.sentences):
            if n in said:
                continue
            text = sentence.strip()
            nxt = n + 1
            if text[:1] in _OPEN_QUOTES + '"' and not any(c in text[1:] for c in _CLOSE_QUOTES + '"'):
                if nxt in said and any(c in self.sentences[nxt] for c in _CLOSE_QUOTES + '"'):
                    said[n], cues[n] = said[nxt], cues[nxt]
                    continue
            quoted = re.findall(r"[“\"«]([^”\"»]+)[”\"»]", text)
            m = self._previous(n)
            if quoted and max(len(q.split()) for q in quoted) >= 5 and m is not None and m in said:
                if any(c in self.sentences[m] for c in _QUOTES) and not _cues(self.tokens[n]):
                    said[n], cues[n] = said[m], cues[m]


def _starts(tokens: Sequence[_Tok], i: int) -> bool:
    """Only connectors, punctuation or a dateline ("بكين-") before token i."""
    return all(
        t.key in _CONNECTORS or not t.word or (n == 0 and t.text.endswith("-")) for n, t in enumerate(tokens[:i])
    )


class _English:
    """An English article's statements."""

    def __init__(self, article: Article, spans: Sequence[tuple[int, int]], sentences: Sequence[str]) -> None:
        self.article = article
        self.spans = spans
        self.sentences = sentences

    def statements(self) -> list[Statement]:
        found = [_en_find(s) for s in self.sentences]
        names: list[list[str]] = [s.name for f in found if f for s in f.speakers if s.name and not s.body]
        out: list[Statement] = []
        last: Statement | None = None
        for n, f in enumerate(found):
            if f is None:
                continue
            a, b = self.spans[n]
            if f.how == "omitted":
                if last is not None:
                    out.append(Statement(self.article.id, a, b, last.speaker, last.role, last.kind, f.cue))
                continue
            for s in f.speakers:
                if s.body:
                    last = Statement(self.article.id, a, b, " ".join(s.role), "", "org", f.cue)
                else:
                    full = max((w for w in names if set(s.name) <= set(w)), key=len, default=s.name)
                    last = Statement(self.article.id, a, b, " ".join(full), " ".join(s.role), "person", f.cue)
                out.append(last)
        return out


def extract_all(articles: Iterable[Article]) -> list[Statement]:
    """The statements of several articles."""
    return [s for a in articles for s in extract(a)]
