"""Names across scripts: does an Arabic text mention the person or place an English (or Arabic) text names?

English names are found by their capital letters; Arabic has none, so in Arabic text a name is a word the
gazetteer lists. A name is matched against an Arabic text by sound: both sides are written in one rough
phonetic alphabet (consonant classes that transliteration confuses share a letter: p/b, v/f, g/j/k/q, s/z/sh/
ch/x, t/ط, d/ض/ذ; long-vowel letters ا و ي kept as A U I; English vowels and h dropped to a cheap gap), then
compared by an edit distance in which a vowel costs little. "Patrushev" meets باتروشيف, "Fujian" فوجيان,
"Jinping" جين بينغ (two Arabic words); "Taiwan" meets nothing in an article that never names it.
Names that are not transliterated (China / الصين, Egypt / مصر) come from a small gazetteer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rag.text.arabic import ARABIC_WORD, fold

# Exonyms and other names whose Arabic form is not a transliteration (folded Arabic, without "ال").
GAZETTEER: dict[str, tuple[str, ...]] = {
    "china": ("صين", "صيني", "صينيه", "بكين"),
    "chinese": ("صين", "صيني", "صينيه"),
    "egypt": ("مصر",),
    "egyptian": ("مصر", "مصري", "مصريه"),
    "germany": ("المانيا",),
    "german": ("المانيا", "الماني", "المانيه"),
    "india": ("هند",),
    "indian": ("هند", "هندي", "هنديه"),
    "greece": ("يونان",),
    "greek": ("يونان", "يوناني"),
    "japan": ("يابان",),
    "japanese": ("يابان", "ياباني", "يابانيه"),
    "united states": ("ولايات متحده", "امريكا", "امريكي", "امريكيه", "واشنطن"),
    "us": ("ولايات متحده", "امريكا", "امريكي", "امريكيه", "واشنطن"),
    "usa": ("ولايات متحده", "امريكا", "امريكي", "امريكيه"),
    "america": ("امريكا", "امريكي", "ولايات متحده"),
    "american": ("امريكا", "امريكي", "امريكيه", "ولايات متحده"),
    "united kingdom": ("مملكه متحده", "بريطانيا"),
    "uk": ("مملكه متحده", "بريطانيا", "بريطاني"),
    "britain": ("بريطانيا", "بريطاني", "مملكه متحده"),
    "british": ("بريطانيا", "بريطاني", "بريطانيه"),
    "united nations": ("امم متحده",),
    "un": ("امم متحده",),
    "european union": ("اتحاد اوروبي",),
    "eu": ("اتحاد اوروبي",),
    "nato": ("ناتو", "اطلسي"),
    "west": ("غرب", "غربي", "غربيه"),
    "western": ("غرب", "غربي", "غربيه"),
    "middle east": ("شرق اوسط",),
    "netherlands": ("هولندا",),
    "switzerland": ("سويسرا",),
    "spain": ("اسبانيا",),
    "france": ("فرنسا",),
    "french": ("فرنسا", "فرنسي", "فرنسيه"),
    "turkey": ("تركيا",),
    "turkish": ("تركيا", "تركي", "تركيه"),
    "morocco": ("مغرب",),
    "algeria": ("جزاير",),
    "jordan": ("اردن",),
    "lebanon": ("لبنان",),
    "iraq": ("عراق",),
    "gulf": ("خليج",),
    "saudi": ("سعوديه", "سعودي"),
    "africa": ("افريقيا",),
    "asia": ("اسيا",),
    "europe": ("اوروبا", "اوروبي"),
    "european": ("اوروبا", "اوروبي", "اوروبيه"),
    "kremlin": ("كرملين",),
    "islam": ("اسلام",),
    "islamic": ("اسلام", "اسلامي", "اسلاميه"),
    "muslim": ("مسلم", "مسلمين", "مسلمون"),
    "christian": ("مسيحي", "مسيحيه"),
    # Countries, regions and cities news names often (their Arabic names, to find them in Arabic questions).
    "taiwan": ("تايوان",),
    "korea": ("كوريا",),
    "north korea": ("كوريا",),
    "south korea": ("كوريا",),
    "iran": ("ايران",),
    "israel": ("اسرائيل",),
    "palestine": ("فلسطين",),
    "syria": ("سوريا",),
    "yemen": ("يمن",),
    "afghanistan": ("افغانستان",),
    "pakistan": ("باكستان",),
    "kazakhstan": ("كازاخستان",),
    "uzbekistan": ("اوزبكستان",),
    "belarus": ("بيلاروسيا",),
    "poland": ("بولندا",),
    "italy": ("ايطاليا",),
    "canada": ("كندا",),
    "brazil": ("برازيل",),
    "mexico": ("مكسيك",),
    "australia": ("استراليا",),
    "vietnam": ("فيتنام",),
    "philippines": ("فلبين",),
    "indonesia": ("اندونيسيا",),
    "ukraine": ("اوكرانيا",),
    "russia": ("روسيا",),
    "moscow": ("موسكو",),
    "beijing": ("بكين",),
    "washington": ("واشنطن",),
    "hong kong": ("هونغ",),
    "xinjiang": ("شينجيانغ",),
    "crimea": ("قرم",),
    "kyiv": ("كييف",),
    "kiev": ("كييف",),
    "libya": ("ليبيا",),
    "sudan": ("سودان",),
    "ethiopia": ("اثيوبيا",),
    "nigeria": ("نيجيريا",),
    "qatar": ("قطر",),
    "kuwait": ("كويت",),
    "bahrain": ("بحرين",),
    "tunisia": ("تونس",),
    "cuba": ("كوبا",),
    "venezuela": ("فنزويلا",),
    "argentina": ("ارجنتين",),
    "serbia": ("صربيا",),
    "sweden": ("سويد",),
    "norway": ("نرويج",),
    "finland": ("فنلندا",),
    "denmark": ("دنمارك",),
    "austria": ("نمسا",),
    "belgium": ("بلجيكا",),
    "portugal": ("برتغال",),
    "armenia": ("ارمينيا",),
    "azerbaijan": ("اذربيجان",),
    "mongolia": ("منغوليا",),
    "myanmar": ("ميانمار",),
    "thailand": ("تايلاند",),
    "singapore": ("سنغافوره",),
    "malaysia": ("ماليزيا",),
    "nepal": ("نيبال",),
    "bangladesh": ("بنغلاديش",),
    "shanghai": ("شنغهاي",),
    "tokyo": ("طوكيو",),
    "london": ("لندن",),
    "paris": ("باريس",),
    "berlin": ("برلين",),
    "brussels": ("بروكسل",),
    "tehran": ("طهران",),
    "cairo": ("قاهره",),
    "baghdad": ("بغداد",),
    "damascus": ("دمشق",),
    "ankara": ("انقره",),
    "istanbul": ("اسطنبول",),
    "kabul": ("كابل",),
    "delhi": ("دلهي",),
    "seoul": ("سيول",),
    "pyongyang": ("بيونغ",),
    "geneva": ("جنيف",),
    "vienna": ("فيينا",),
    "rome": ("روما",),
    "madrid": ("مدريد",),
    "fujian": ("فوجيان",),
}

# Capitalised English words that are not names (titles, institutions, days, months, question words).
NOT_NAMES = frozenset(
    """
    i a an the what which who whom whose when where why how did does do is are was were has have had can could
    will would should may might must shall in on at to for from by with and or but of about after before during
    he she it they we you his her its their our this that these those there here if then than so as not no
    yes mr mrs ms dr sir president minister ministry prime foreign affairs secretary general spokesman
    spokeswoman spokesperson deputy chairman chief head council security state department government
    party communist republic people's army navy force forces war treaty agreement summit day week month year new
    according however meanwhile although while since because after before both all some many most last next
    first second third other another earlier later
    monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
    september october november december according said says say told also however meanwhile
    """.split()
)

_COMMON_NOUN = re.compile(r"(s|ers|tion|ment|ing|ity|ies)$")
_LATIN_NAME = re.compile(r"\b[A-Z][A-Za-z'’\-]*(?:\s+(?:[A-Z][A-Za-z'’\-]*))*")
_CLITICS = ("وال", "بال", "كال", "فال", "لل", "ال", "و", "ب", "ل", "ف", "ك")

# The phonetic alphabet: consonant classes (upper-case letters) and three vowel letters A, I, U.
_LATIN_DIGRAPHS = (
    ("ce", "Si"),
    ("ci", "Si"),
    ("cy", "Si"),
    ("sh", "S"),
    ("ch", "S"),
    ("zh", "S"),
    ("kh", "K"),
    ("gh", "K"),
    ("ph", "F"),
    ("th", "T"),
    ("dh", "D"),
    ("ck", "K"),
    ("qu", "K"),
    ("ng", "NK"),
    ("ee", "I"),
    ("oo", "U"),
    ("ou", "U"),
    ("ow", "U"),
    ("aw", "U"),
    ("ey", "I"),
    ("ay", "aI"),
)
_LATIN = {
    "b": "B",
    "p": "B",
    "f": "F",
    "v": "F",
    "w": "U",
    "t": "T",
    "d": "D",
    "k": "K",
    "q": "K",
    "g": "K",
    "j": "K",
    "c": "K",
    "x": "S",
    "s": "S",
    "z": "S",
    "l": "L",
    "m": "M",
    "n": "N",
    "r": "R",
    "y": "I",
    "a": "a",
    "e": "i",
    "i": "i",
    "o": "u",
    "u": "u",
    "h": "",
}
_ARABIC = {
    "ب": "B",
    "پ": "B",
    "ف": "F",
    "ڤ": "F",
    "ت": "T",
    "ط": "T",
    "ث": "T",
    "د": "D",
    "ض": "D",
    "ذ": "D",
    "ك": "K",
    "ق": "K",
    "غ": "K",
    "ج": "K",
    "خ": "K",
    "س": "S",
    "ص": "S",
    "ز": "S",
    "ش": "S",
    "ظ": "S",
    "ل": "L",
    "م": "M",
    "ن": "N",
    "ر": "R",
    "ا": "A",
    "و": "U",
    "ي": "I",
    "ه": "",
    "ح": "",
    "ع": "",
    "ء": "",
}
_VOWELS = frozenset("aiuAIU")


def latin_sound(word: str) -> str:
    """An English (Latin-script) word in the phonetic alphabet: lower-case a/i/u are written vowels."""
    w = word.lower()
    for a, b in _LATIN_DIGRAPHS:
        w = w.replace(a, b)
    out = "".join(_LATIN.get(ch, ch if ch.isupper() else "") for ch in w)
    return re.sub(r"(.)\1+", r"\1", out)  # doubled letters sound once


def arabic_sound(word: str) -> str:
    """A folded Arabic word in the phonetic alphabet (تش, as in تشي for "chi", is one sound)."""
    w = word.replace("تش", "ش")
    out = "".join(_ARABIC.get(ch, "") for ch in w)
    return re.sub(r"(.)\1+", r"\1", out)


def _cost(a: str, b: str) -> float:
    if a == b or (a.upper() == b.upper() and a in _VOWELS and b in _VOWELS):
        return 0.0
    if a in _VOWELS and b in _VOWELS:
        return 0.3
    return 1.0


def _gap(ch: str) -> float:
    return 0.3 if ch in _VOWELS else 1.0


def distance(a: str, b: str) -> float:
    """Edit distance of two sounds, vowels cheap, divided by the longer one's consonant count (min 1)."""
    prev = [0.0]
    for ch in b:
        prev.append(prev[-1] + _gap(ch))
    for x in a:
        cur = [prev[0] + _gap(x)]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + _gap(x), cur[j - 1] + _gap(y), prev[j - 1] + _cost(x, y)))
        prev = cur
    consonants = max(sum(ch not in _VOWELS for ch in a), sum(ch not in _VOWELS for ch in b), 1)
    return prev[-1] / consonants


@dataclass(frozen=True, slots=True)
class Name:
    """A name a text mentions: as written, and the key it is matched by."""

    text: str
    key: str  # lower-case English words, or a folded Arabic gazetteer form


def _variants(key: str) -> tuple[str, ...]:
    """A name and its singular ("Americans" -> "american")."""
    return (key, key[:-1]) if key.endswith("s") and len(key) > 3 else (key,)


def english_names(text: str) -> list[Name]:
    """The names an English text mentions: runs of capitalised words (titles, days, function words and words
    that often start a sentence left out)."""
    names: list[Name] = []
    for m in _LATIN_NAME.finditer(text):
        words = [w.strip("'’-") for w in m.group(0).split()]
        words = [re.sub(r"['’]s$", "", w) for w in words]
        whole = " ".join(w.lower() for w in words)
        if any(v in GAZETTEER for v in _variants(whole)):
            names.append(Name(" ".join(words), whole))
            continue
        kept = [w for w in words if w and w.lower() not in NOT_NAMES and not _unsounded(w)]
        at_start = m.start() == 0 or bool(re.search(r"[.!?؟:\"“]\s*$", text[: m.start()]))
        if at_start and kept and kept[0] == words[0] and _COMMON_NOUN.search(kept[0]):
            kept = kept[1:]  # "Lawmakers worry ...": a plural or a common ending starting the sentence
        if kept:
            names.append(Name(" ".join(kept), " ".join(w.lower() for w in kept)))
    return names


def _unsounded(word: str) -> bool:
    """Roman numerals and acronyms (XLIX, AFC): Arabic writes them in Latin letters or translates them; they
    are left unchecked unless the gazetteer lists them."""
    return word.lower() not in GAZETTEER and (word.isupper() or bool(re.fullmatch(r"[IVXLCDM]+", word)))


def arabic_names(text: str) -> list[Name]:
    """The gazetteer's places an Arabic text names (by their first, noun form: تايوان, روسيا), keyed by entry;
    Arabic has no capitals to find other names by."""
    written = ARABIC_WORD.findall(fold(text))
    words = set(written) | {bare_word(w) for w in written if len(w) > 4}
    found: dict[str, Name] = {}
    for key, forms in GAZETTEER.items():
        form = forms[0]
        if " " not in form and form in words and form not in {n.text for n in found.values()}:
            found[key] = Name(form, key)
    return list(found.values())


def places_in(text: str) -> list[Name]:
    """The places of the gazetteer a question names, English or Arabic: their Arabic forms are known, so their
    absence from the passages is certain (other names are matched by sound, which can miss a translation)."""
    return [n for n in english_names(text) if any(v in GAZETTEER for v in _variants(n.key))] + arabic_names(text)


def bare_word(word: str) -> str:
    """A folded Arabic word without its leading clitics (و, ب, ل, ف, ك, ال) when enough of it is left."""
    for c in _CLITICS:
        if word.startswith(c) and len(word) - len(c) >= 2:
            return word[len(c) :]
    return word


@lru_cache(maxsize=64)
def _arabic_words(text: str) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """A folded Arabic text's words as written and bare (clitics off, which may also cut a name's first
    letter: both are kept), joined for phrase search, and the sounds of either."""
    written = ARABIC_WORD.findall(fold(text))
    bare = [bare_word(w) for w in written]
    return (
        " ".join(written),
        " ".join(bare),
        tuple(arabic_sound(w) for w in bare),
        tuple(arabic_sound(w) for w in written),
    )


class NameMatcher:
    """Finds whether a text mentions a name (see the module docstring); `threshold` bounds the distance."""

    def __init__(self, threshold: float = 0.34) -> None:
        self.threshold = threshold

    def mentions(self, name: Name, text: str) -> bool:
        """True when `text` (Arabic or English) mentions `name`."""
        folded = fold(text)
        if name.key in folded or name.text.lower() in folded:
            return True
        as_written, bare, sounds, written = _arabic_words(text)
        for key in _variants(name.key):
            for form in GAZETTEER.get(key, ()):
                if any(re.search(rf"(^| ){re.escape(form)}( |$)", t) for t in (bare, as_written)):
                    return True
        if not re.search(r"[A-Za-z]", name.key) or name.key in GAZETTEER:
            return False
        # A person is often named by one of their names ("Mao" for Mao Ning): one word mentioned is enough.
        return any(
            self._sounded(v, sounds) or self._sounded(v, written) for w in name.key.split() for v in _variants(w)
        )

    def _sounded(self, word: str, sounds: tuple[str, ...]) -> bool:
        """An English word matches one Arabic word, or two adjacent ones written together (جين بينغ)."""
        target = latin_sound(word)
        if not target:
            return True
        for i, s in enumerate(sounds):
            if distance(target, s) <= self.threshold:
                return True
            if i + 1 < len(sounds) and distance(target, s + sounds[i + 1]) <= self.threshold:
                return True
        return False

    def missing_english(self, text: str, passage: str) -> list[Name]:
        """The capitalised names of an English text that `passage` does not mention."""
        return [n for n in english_names(text) if not self.mentions(n, passage)]
