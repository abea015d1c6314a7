"""Arabic text helpers shared by every stage: normalization for matching, language detection,
and the tokenizer behind the BM25 index. Normalized text is for matching only, never for display.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nltk.stem.isri import ISRIStemmer

_TASHKEEL = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_TATWEEL = "\u0640"
_BIDI = re.compile("[\u200e\u200f\u061c\ufeff\u202a-\u202e\u2066-\u2069]")
_TRANSLATE = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ة": "ه",
        "ؤ": "و",
        "ئ": "ي",
        **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + d): str(d) for d in range(10)},  # Extended (Persian) digits
    }
)
_ARABIC_LETTER = re.compile("[\u0621-\u064a\u0671-\u06d3\u06fa-\u06ff]")
_LATIN_LETTER = re.compile("[A-Za-z]")
_WORD = re.compile(r"[\w]+", re.UNICODE)


def normalize(text: str) -> str:
    """Strip tashkeel, tatweel and bidi marks; unify alef/yaa/taa-marbuta forms and digits."""
    text = _BIDI.sub("", text)
    text = _TASHKEEL.sub("", text).replace(_TATWEEL, "")
    return text.translate(_TRANSLATE)


def has_arabic(text: str) -> bool:
    return _ARABIC_LETTER.search(text) is not None


def arabic_share(text: str) -> float:
    """Share of Arabic-script letters among Arabic and Latin letters (0 when there are none)."""
    arabic = len(_ARABIC_LETTER.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    return arabic / (arabic + latin) if arabic + latin else 0.0


def detect_language(text: str) -> str:
    """'ar' when most letters are Arabic script, else 'en'."""
    return "ar" if arabic_share(text) >= 0.5 else "en"


_STEMMER = ISRIStemmer()
# Frequent function words (prepositions, conjunctions, pronouns, question words), normalized.
# Not ISRI's own list, which drops content words such as "اليوم" and "مساء".
STOPWORDS = frozenset(
    normalize(w)
    for w in """
    في من إلى الى على عن مع حتى منذ بين عند لدى نحو خلال ضد دون غير بعد قبل فوق تحت
    و ف ثم أو أم بل لكن لكنه ولكن إن أن ان كان كانت يكون تكون قد لقد لم لن لا ما ماذا
    متى أين كيف كم هل لماذا أي أية من هو هي هم هن هما نحن أنا أنت انت أنتم
    هذا هذه ذلك تلك هؤلاء أولئك الذي التي الذين اللذين اللتين اللواتي اللاتي
    التى الذى فيه فيها منه منها عليه عليها إليه إليها اليه اليها له لها لهم به بها
    كما إذا اذا إذ لو أيضا ايضا وقد وكان وكانت وهو وهي وفي ومن وأن وان وإن ولا
    the a an of in on at to for and or is are was were be by with from that this what who which when where how
    """.split()
)


@lru_cache(maxsize=500_000)
def stem(word: str) -> str:
    """ISRI root/stem of one normalized Arabic word; Latin words and numbers are lowercased."""
    if not has_arabic(word):
        return word.lower()
    stemmed = _STEMMER.stem(word)
    return stemmed or word


# Light stemming: strip one common prefix group and one suffix, keep at least 2 letters.
_PREFIXES = ("وال", "بال", "فال", "كال", "لل", "ال")
_SUFFIXES = ("ها", "ات", "ون", "ين", "ان", "يه", "ه", "ي")


@lru_cache(maxsize=500_000)
def light_stem(word: str) -> str:
    if not has_arabic(word):
        return word.lower()
    for prefix in _PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 2:
            word = word[len(prefix):]
            break
    else:
        if word[:1] in ("و", "ف", "ب") and len(word) > 3:
            word = word[1:]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            return word[: -len(suffix)]
    return word


def lexical_tokens(text: str) -> list[str]:
    """Terms for BM25: each normalized non-stop word as its ISRI stem and as its light stem.

    ISRI reduces words to roots and conflates too much; light stemming keeps the pattern but
    misses broken plurals. Indexing both lets a query match on either, which ranked XQuAD-ar
    paragraphs first more often than either stem alone (docs/experiments.md).
    """
    terms = []
    for word in _WORD.findall(normalize(text)):
        word = word.replace("_", "").lower()
        if not word or word in STOPWORDS:
            continue
        terms.append(stem(word))
        if has_arabic(word):
            terms.append("~" + light_stem(word))
    return terms
