"""Arabic text helpers shared by every stage: normalization for matching, language detection,
and the tokenizer behind the BM25 index. Normalized text is for matching only, never for display.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nltk.stem.isri import ISRIStemmer

_TASHKEEL = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_TATWEEL = "\u0640"
# Invisible formatting characters. Bidi: LRM, RLM, ALM, the BOM, embeddings, overrides and isolates;
# zero width: space, non-joiner, joiner, word joiner.
BIDI_CHARS = "\u200e\u200f\u061c\ufeff\u202a-\u202e\u2066-\u2069"
ZERO_WIDTH_CHARS = "\u200b-\u200d\u2060"
_BIDI = re.compile(f"[{BIDI_CHARS}]")
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


# Letters of other languages written in Arabic script that Arabic spelling does not use (a Persian
# keyboard types ک and ی where Arabic has ك and ي). Urdu and Kurdish use the Persian ones too, so
# their own letters are looked for first.
_SCRIPT_LETTERS = {"Urdu": "ٹڈڑںے", "Kurdish": "ەێۆڵڕ", "Persian": "پچژگکی"}
_NON_ARABIC_LETTER = re.compile(f"[{''.join(_SCRIPT_LETTERS.values())}]")
# Frequent function words of the languages a question in Latin script most likely comes in besides
# English. Words that also appear in transliterated Arabic names ("al-", "el-") are left out.
_FUNCTION_WORDS = {
    language: frozenset(words.split())
    for language, words in {
        "English": "the a an of in on at to for and or is are was were be been by with from about after "
        "what who whom whose which when where why how did does do has have had there it he she they",
        "French": "le la les un une des du de et est sont qui que quoi quel quelle quels quelles où quand "
        "comment pourquoi dans sur pour par avec ce cette se il elle ils elles au aux a été",
        "Spanish": "la los las un una unos del de y es son qué quién quiénes cuál cuándo dónde cómo por para "
        "con en fue ha se",
        "German": "der die das ein eine und ist sind wer was wann wo wie warum von mit im auf für den dem des hat wurde",
        "Italian": "il lo la gli le un una di del della e è sono chi che cosa quando dove come perché per con nel",
        "Portuguese": "o a os as um uma do da dos das de e é são quem que quando onde como por para com no na foi",
        "Turkish": "ve bir bu ne kim nerede nasıl neden hangi ile için mi mı mu mü",
    }.items()
}


def other_language(text: str) -> str | None:
    """The name of the language other than Arabic and English that ``text`` looks written in, else None.

    A transparent heuristic for short questions: in Arabic script, the letters Arabic does not use
    (at least two, and a tenth of the letters, so a foreign name in an Arabic question does not
    count); in Latin script, which language's function words it has most of (a tie is English).
    Names alone ("Deir ez-Zor", "SDF") have no function words and count as English.
    """
    if detect_language(text) == "ar":
        others = _NON_ARABIC_LETTER.findall(text)
        if len(others) < 2 or len(others) < 0.1 * len(_ARABIC_LETTER.findall(text)):
            return None
        return next(name for name, letters in _SCRIPT_LETTERS.items() if any(c in letters for c in others))
    words = [w.lower() for w in _WORD.findall(text)]
    counts = {language: sum(w in vocabulary for w in words) for language, vocabulary in _FUNCTION_WORDS.items()}
    best = max(counts, key=counts.get)  # dicts keep order: English wins a tie
    return None if best == "English" or counts[best] == 0 else best


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


# The Arabic opening of an English question, by its question word: the translation of an English
# question is made to begin with it (prompts/question.ar.gbnf). First match wins.
_QUESTION_OPENINGS = [
    (re.compile(r"^(on|in|at|during) (what|which)\b"), "في أي"),
    (re.compile(r"^from (what|which)\b"), "من أي"),
    (re.compile(r"^to (what|which)\b"), "إلى أي"),
    (re.compile(r"^(who|whom|whose)\b"), "من"),
    (re.compile(r"^when\b"), "متى"),
    (re.compile(r"^where\b"), "أين"),
    (re.compile(r"^how (many|much|long|old|far)\b"), "كم"),
    (re.compile(r"^why\b"), "لماذا"),
    (re.compile(r"^how\b"), "كيف"),
    (re.compile(r"^which\b"), "أي"),
    (re.compile(r"^what\b"), "ما"),
    (re.compile(r"^(is|are|was|were|did|does|do|can|could|has|have|had|will|would|should)\b"), "هل"),
]


def arabic_question_opening(question: str) -> str:
    """The Arabic question word an English question begins with ("" when it begins otherwise)."""
    start = question.strip().lower()
    return next((arabic for pattern, arabic in _QUESTION_OPENINGS if pattern.match(start)), "")
