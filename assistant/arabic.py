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
# ISRI's own list, normalized the way tokens are, plus a few frequent news function words.
STOPWORDS = frozenset(normalize(w) for w in _STEMMER.stop_words) | frozenset(
    normalize(w) for w in ("التي", "الذي", "الذين", "ذلك", "تلك", "هذا", "هذه", "كان", "قد", "او", "ان", "عن", "مع")
)


@lru_cache(maxsize=500_000)
def stem(word: str) -> str:
    """ISRI root/stem of one normalized Arabic word; Latin words and numbers are lowercased."""
    if not has_arabic(word):
        return word.lower()
    stemmed = _STEMMER.stem(word)
    return stemmed or word


def lexical_tokens(text: str) -> list[str]:
    """Tokens for BM25: normalized, stop words removed, ISRI-stemmed."""
    tokens = []
    for word in _WORD.findall(normalize(text)):
        word = word.replace("_", "")
        if not word or word in STOPWORDS:
            continue
        tokens.append(stem(word))
    return tokens
