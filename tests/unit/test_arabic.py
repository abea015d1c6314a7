"""assistant.arabic: normalization, language detection, BM25 tokens."""

from __future__ import annotations

import pytest

from assistant.arabic import STOPWORDS, arabic_question_opening, arabic_share, detect_language, has_arabic, lexical_tokens, normalize

# --------------------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("مُحَمَّدٌ", "محمد"),  # damma, fatha, shadda, tanween
        ("الْحُكُومَةِ", "الحكومه"),  # sukun + kasra, and ة → ه
        ("هٰذا", "هذا"),  # superscript (dagger) alef
        ("كِتَابًا", "كتابا"),  # tanween fath
    ],
)
def test_normalize_strips_tashkeel(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_strips_tatweel() -> None:
    assert normalize("الحكـــومـة") == "الحكومه"
    assert "\u0640" not in normalize("سـوريـا")
    assert normalize("سـوريـا") == "سوريا"


@pytest.mark.parametrize(("raw", "expected"), [("أحمد", "احمد"), ("إسلام", "اسلام"), ("آمن", "امن")])
def test_normalize_unifies_alef_forms(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_alef_maqsura_and_taa_marbuta() -> None:
    assert normalize("مستشفى") == "مستشفي"
    assert normalize("إلى") == "الي"
    assert normalize("مدرسة") == "مدرسه"
    # The spelling variants seen in real news collapse to one form.
    assert normalize("الدولى") == normalize("الدولي")
    assert normalize("الحكومة") == normalize("الحكومه")


def test_normalize_arabic_indic_digits() -> None:
    assert normalize("٠١٢٣٤٥٦٧٨٩") == "0123456789"
    assert normalize("في ٢٣ آذار ٢٠١٩") == "في 23 اذار 2019"


def test_normalize_extended_persian_digits() -> None:
    assert normalize("۰۱۲۳۴۵۶۷۸۹") == "0123456789"


@pytest.mark.parametrize("mark", ["\u200e", "\u200f", "\u061c", "\ufeff"])
def test_normalize_removes_bidi_marks(mark: str) -> None:
    assert normalize(f"{mark}دمشق{mark} 2020{mark}") == "دمشق 2020"


def test_normalize_removes_all_bidi_marks_together() -> None:
    raw = "\ufeff\u200fقال\u200e \u061cالمتحدث\u200f"
    assert normalize(raw) == "قال المتحدث"


def test_normalize_leaves_latin_spaces_and_punctuation_alone() -> None:
    text = "NATO said: 'Hello, World!' (2020)\nline two"
    assert normalize(text) == text


def test_normalize_is_idempotent() -> None:
    raw = "\u200fأَعْلَنَ الـتحالف الدولى في ٢٨ تموز إلى المدينة\u200e"
    once = normalize(raw)
    assert normalize(once) == once
    assert once == "اعلن التحالف الدولي في 28 تموز الي المدينه"


# --------------------------------------------------------------------------- language


def test_has_arabic() -> None:
    assert has_arabic("قال المتحدث")
    assert has_arabic("The spokesman قال")
    assert not has_arabic("The spokesman said")
    assert not has_arabic("")
    assert not has_arabic("12345 !?")


def test_arabic_share_bounds() -> None:
    assert arabic_share("مرحبا") == 1.0
    assert arabic_share("hello") == 0.0
    assert arabic_share("") == 0.0
    assert arabic_share("ab جد") == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ما هي آخر تطورات الحملة الأمنية في دير الزور؟", "ar"),
        ("What did the coalition spokesman say about Deir ez-Zor?", "en"),
        # Mixed: mostly Arabic with an English name or acronym.
        ("ماذا قال المتحدث باسم NATO عن الحملة؟", "ar"),
        ("ماذا قال Myles Caggins عن قوات سوريا الديمقراطية؟", "ar"),
        # Mixed: mostly English with one Arabic word.
        ("What does the word قسد stand for in Syrian politics?", "en"),
        # Tashkeel and bidi marks do not change the verdict.
        ("\u200fمَا الَّذِي حَدَثَ؟\u200f", "ar"),
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


# --------------------------------------------------------------------------- lexical tokens


@pytest.mark.parametrize("word", ["التي", "الذي", "هذه", "ذلك", "قد", "كان", "عن", "مع", "هل", "متى"])
def test_lexical_tokens_drop_stop_words(word: str) -> None:
    assert lexical_tokens(word) == []
    assert lexical_tokens(f"{word} {word}") == []


def test_lexical_tokens_stop_words_matched_after_normalization() -> None:
    # "إلى" / "أيضاً" are stop words; the hamza-less spellings must be dropped too.
    assert lexical_tokens("إلى") == []
    assert lexical_tokens("الى") == []
    assert lexical_tokens("أيضا ايضا") == []
    assert all(normalize(w) == w for w in STOPWORDS)


def test_lexical_tokens_keep_content_words_in_order() -> None:
    tokens = lexical_tokens("هذه الحكومة التي قد أعلنت ذلك في دمشق")
    government, damascus = lexical_tokens("الحكومة"), lexical_tokens("دمشق")
    assert government and damascus
    # Content words survive (stemmed), in text order; the stop words contribute nothing.
    assert set(government) <= set(tokens) and set(damascus) <= set(tokens)
    assert max(tokens.index(t) for t in government) < min(tokens.index(t) for t in damascus)
    for stop in ("هذه", "التي", "قد", "ذلك"):
        assert stop not in tokens
    assert tokens == lexical_tokens("الحكومة أعلنت في دمشق")


@pytest.mark.parametrize(
    "forms",
    [
        ("المتحدث", "متحدث", "والمتحدث"),
        ("الحكومة", "حكومة", "الحكومه", "والحكومة"),
        ("التحالف", "تحالف"),
        ("الحُكُومَة", "الحكومة"),  # tashkeel does not matter
    ],
)
def test_lexical_tokens_stem_inflections_to_same_tokens(forms: tuple[str, ...]) -> None:
    tokens = [lexical_tokens(f) for f in forms]
    assert tokens[0], forms[0]
    assert all(t == tokens[0] for t in tokens), dict(zip(forms, tokens))


def test_lexical_tokens_different_words_stay_different() -> None:
    assert not set(lexical_tokens("الحكومة")) & set(lexical_tokens("المتحدث"))
    assert not set(lexical_tokens("دمشق")) & set(lexical_tokens("بغداد"))


def test_lexical_tokens_latin_lowercased_and_digits_unified() -> None:
    assert lexical_tokens("NATO Reuters COVID") == ["nato", "reuters", "covid"]
    assert lexical_tokens("Twitter twitter TWITTER") == ["twitter"] * 3
    assert lexical_tokens("٢٠٢٠") == lexical_tokens("2020") == ["2020"]


def test_lexical_tokens_ignore_punctuation_and_bidi() -> None:
    assert lexical_tokens("«داعش»،") == lexical_tokens("داعش")
    assert lexical_tokens("\u200fدمشق\u200e!") == lexical_tokens("دمشق")
    assert lexical_tokens("") == []
    assert lexical_tokens("  ،. ؟ ") == []


@pytest.mark.parametrize("word", ["في", "من", "إلى"])
def test_lexical_tokens_drop_most_frequent_prepositions(word: str) -> None:
    assert lexical_tokens(word) == []


@pytest.mark.parametrize(
    "question, opening",
    [
        ("Who is the coalition's spokesman?", "من"),
        ("On what date did Caggins speak?", "في أي"),
        ("In which town was the press conference held?", "في أي"),
        ("How many trucks were in the convoy?", "كم"),
        ("How long did the operation last?", "كم"),
        ("How did the coalition support the SDF?", "كيف"),
        ("Which news agency reported the arrests?", "أي"),
        ("What share of the territory did it give up?", "ما"),
        ("When did the campaign start?", "متى"),
        ("Did the coalition leave Syria?", "هل"),
        ("  where were they trained?", "أين"),
        ("Besides al-Baghdadi, which spokesman was killed?", ""),
        ("Whoever said that?", ""),
    ],
)
def test_an_english_question_word_gives_its_arabic_opening(question, opening):
    assert arabic_question_opening(question) == opening
