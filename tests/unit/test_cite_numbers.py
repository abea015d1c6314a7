"""Numbers in cited answers (assistant.cite): a number the question and the cited passage both lack
was made up, so that passage does not support the sentence; numbers are compared by value however
written; a decimal point is never a sentence end, so a marker never splits "1.5 مليون"."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from assistant import numbers as numbers_module
from assistant.cite import answer_support, attributions_as_markers, cite, cited_sentences, lexical_support, strip_markers
from assistant.models import Passage

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def passage(text: str, chunk_id: str = "p:0000", title: str = "") -> Passage:
    return Passage(chunk_id=chunk_id, doc_id=chunk_id.split(":")[0], title=title, text=text, start=0, end=len(text), score=1.0)


def seed_line(prefix: str, opening: str) -> Passage:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    return passage(next(line for line in lines if line.startswith(opening)), f"{path.stem}:0005", title=lines[0])


# «… استفادة سكان المنطقة … في مدينتي الحسكة ودير الزور …»: about Hasakah's inhabitants, no number.
HASAKAH = seed_line("003", "ولفت كاغينز")
# «فمنذ 23 ديسمبر 2019 … استقدم "التحالف الدولي" مئات الشاحنات …» (numbers, none of them a million)
TRUCKS = seed_line("004", "فمنذ 23 ديسمبر 2019")
POPULATION = passage("يبلغ عدد سكان مدينة الحسكة نحو 1,500,000 نسمة بحسب تقديرات عام 2019، وفق الإحصاءات المحلية.")
POPULATION_IN_WORDS = passage("ويقدر عدد سكان مدينة الحسكة بمليون ونصف نسمة، بحسب الإحصاءات المحلية.")
HASAKAH_Q = "ما عدد سكان مدينة الحسكة؟"


def production(question: str = ""):
    """The support function answer.Answerer.cite passes (``question`` is the strict mode's ``asked``)."""
    return lambda sentence, p: answer_support(sentence, p, question)


def numbers(cited) -> list[int]:
    return [c.n for c in cited.citations]


# --------------------------------------------------------------------------- reading numbers
@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1000000", ["1000000"]),
        ("1,000,000", ["1000000"]),
        ("١٬٠٠٠٬٠٠٠", ["1000000"]),
        ("۱۰۰۰۰۰۰", ["1000000"]),
        ("مليون", ["1000000"]),
        ("1 مليون", ["1000000"]),
        ("one million", ["1000000"]),
        ("2 million", ["2000000"]),
        ("a million", ["1000000"]),
        ("1.5 مليون", ["1500000"]),
        ("١٫٥ مليون", ["1500000"]),
        ("مليون ونصف", ["1500000"]),
        ("ثلاثة ملايين ونصف", ["3500000"]),
        ("one and a half million", ["1500000"]),
        ("a million and a half", ["1500000"]),
        ("نصف مليون", ["500000"]),
        ("half a million", ["500000"]),
        ("ألف", ["1000"]),
        ("الف", ["1000"]),
        ("ثلاثة آلاف", ["3000"]),
        ("ثلاثه الاف", ["3000"]),
        ("ثلاث مئة", ["300"]),
        ("ثلاثمائة وخمسة وعشرون", ["325"]),
        ("خمسة وعشرون ألفا", ["25000"]),
        ("ألفين وتسعة عشر", ["2019"]),
        ("two thousand nineteen", ["2019"]),
        ("twenty-five", ["25"]),
        ("three", ["3"]),
        ("ثلاثة", ["3"]),
        ("١٫٥", ["1.5"]),
        ("23 ديسمبر 2019", ["23", "2019"]),
        ("قتل خمسة وجرح عشرون", ["5", "20"]),
        ("خمسة وستة", ["5", "6"]),
        ("in 2019 three people", ["2019", "3"]),
        ("29.07.2020", ["29", "7", "2020"]),
        ("مليون و500 ألف", ["1500000"]),
        ("بين 2019 و2020", ["2019", "2020"]),
        # Words that are mostly no number: not read.
        ("أحد القادة", []),
        ("one of the leaders", []),
        ("آلاف الأشخاص", []),
        ("thousands of people", []),
        ("مئات الشاحنات", []),
        ("نصف الأراضي", []),
        ("القرن التاسع عشر", []),
        ("يوم الاثنين", []),
        ("لست أدري", []),
    ],
)
def test_numbers_are_read_by_value(text, values):
    assert numbers_module.numbers(text) == [Decimal(v) for v in values]


# --------------------------------------------------------------------------- invented numbers
HASAKAH_INVENTED = "عدد سكان مدينة الحسكة هو 1000000 [1]."


def test_the_passage_shares_the_words_but_not_the_number():
    """Sanity: without its number the Hasakah sentence is supported by the passage's words."""
    assert lexical_support(strip_markers(HASAKAH_INVENTED).replace(" 1000000", " كبير"), HASAKAH) >= 0.3
    assert "1000000" not in HASAKAH.text and "مليون" not in HASAKAH.text


@pytest.mark.parametrize("support", [answer_support, production(), production(HASAKAH_Q), lexical_support], ids=["answer_support", "production", "strict", "lexical"])
def test_the_hasakah_answer_is_refused(support):
    """The small model's answer to a question the passages cannot answer: no citation survives
    (so the answer is refused upstream), neither the model's marker nor one attached by matching."""
    cited = cite(HASAKAH_INVENTED, [HASAKAH, TRUCKS], support=support)

    assert cited.citations == []
    assert cited.dropped == [1]
    assert cited.text == "عدد سكان مدينة الحسكة هو 1000000."


@pytest.mark.parametrize(
    "number",
    ["1000000", "١٠٠٠٠٠٠", "1,000,000", "١٬٠٠٠٬٠٠٠", "مليون", "مليون ونصف", "1.5 مليون", "١٫٥ مليون", "ثلاثة آلاف", "500"],
)
def test_an_invented_number_in_any_form_gets_no_support(number):
    sentence = f"عدد سكان مدينة الحسكة هو {number} [1]."

    assert answer_support(sentence, HASAKAH) == 0.0
    assert lexical_support(sentence, HASAKAH) == 0.0
    assert cite(sentence, [HASAKAH], support=answer_support).citations == []


def test_an_invented_year_gets_no_support():
    sentence = "استفاد سكان مدينة الحسكة من المشاريع والخدمات في عام 2019 [1]."

    assert answer_support(sentence.replace(" في عام 2019", ""), HASAKAH) >= 0.3
    assert answer_support(sentence, HASAKAH) == 0.0


@pytest.mark.parametrize(
    "sentence",
    [
        "The population of Hasakah is one million [1].",
        "The population of Hasakah is 2 million [1].",
        "The population of Hasakah is 1,000,000 [1].",
        "Hasakah's residents benefited from three projects [1].",
        "Hasakah's residents benefited from the projects in 2018 [1].",
    ],
)
def test_an_invented_number_in_an_english_sentence_gets_no_support(sentence):
    assert answer_support(sentence, HASAKAH) == 0.0
    assert cite(sentence, [HASAKAH, TRUCKS], support=answer_support).citations == []


def test_one_invented_number_among_supported_ones_is_enough():
    sentence = "منذ 23 ديسمبر 2019 استقدم التحالف 500 شاحنة إلى آبار النفط والغاز [1]."

    assert answer_support(sentence.replace(" 500 شاحنة", " مئات الشاحنات"), TRUCKS) >= 0.3
    assert answer_support(sentence, TRUCKS) == 0.0
    assert answer_support("Since 23 December 2019 the coalition brought 500 trucks.", TRUCKS) == 0.0


# --------------------------------------------------------------------------- supported numbers
@pytest.mark.parametrize(
    "number",
    ["1500000", "1,500,000", "١٬٥٠٠٬٠٠٠", "۱۵۰۰۰۰۰", "1.5 مليون", "١٫٥ مليون", "١.٥ مليون", "مليون ونصف", "مليون و500 ألف"],
)
@pytest.mark.parametrize("source", [POPULATION, POPULATION_IN_WORDS], ids=["passage-in-figures", "passage-in-words"])
def test_a_supported_number_survives_in_each_written_form(number, source):
    answer = f"عدد سكان مدينة الحسكة {number} نسمة [1]."

    cited = cite(answer, [source, HASAKAH], support=answer_support)

    assert numbers(cited) == [1] and cited.dropped == []
    assert cited.text == answer


@pytest.mark.parametrize("number", ["1.5 million", "1,500,000", "1500000", "one and a half million", "a million and a half"])
@pytest.mark.parametrize("source", [POPULATION, POPULATION_IN_WORDS], ids=["passage-in-figures", "passage-in-words"])
def test_a_supported_number_survives_in_an_english_sentence(number, source):
    answer = f"Hasakah has {number} inhabitants [1]."

    cited = cite(answer, [source, HASAKAH], support=answer_support)

    assert numbers(cited) == [1] and cited.dropped == []
    assert cited.text == answer


@pytest.mark.parametrize("number", ["1.5 مليون", "مليون ونصف", "١٬٥٠٠٬٠٠٠"])
def test_a_number_is_one_term_of_its_value_in_the_lexical_share(number):
    """A short sentence that is mostly its number: "1.5 مليون" matches "1,500,000" as a whole."""
    assert lexical_support(f"السكان {number}.", POPULATION) == 1.0


def test_a_year_the_passage_gives_is_no_invention():
    cited = cite("بلغ عدد سكان مدينة الحسكة 1.5 مليون نسمة عام 2019 [1].", [POPULATION], support=answer_support)

    assert numbers(cited) == [1]


# --------------------------------------------------------------------------- numbers of the question
@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("ماذا استفاد سكان الحسكة في عام 2019؟", "في عام 2019 استفاد سكان مدينة الحسكة من المشاريع والخدمات [1]."),
        ("ماذا استفاد سكان الحسكة في عام ألفين وتسعة عشر؟", "في عام 2019 استفاد سكان مدينة الحسكة من المشاريع والخدمات [1]."),
        ("هل يبلغ عدد سكان الحسكة مليون نسمة؟", "لا يذكر المقال أن عدد سكان مدينة الحسكة 1,000,000 لكنهم استفادوا من المشاريع والخدمات [1]."),
        ("What did Hasakah's residents get in 2019?", "In 2019 Hasakah's residents benefited from services [1]."),
        ("Did one million people in Hasakah benefit?", "In Hasakah 1,000,000 residents benefited from services [1]."),
    ],
)
def test_a_number_of_the_question_does_not_count_against_the_sentence(question, sentence):
    assert answer_support(sentence, HASAKAH) == 0.0  # without the question: made up

    # The question's numbers, by value: in strict mode (asked) and without it (question only).
    assert answer_support(sentence, HASAKAH, asked=question) >= 0.3
    assert answer_support(sentence, HASAKAH, question=question) >= 0.3
    assert numbers(cite(sentence, [HASAKAH, TRUCKS], support=production(question))) == [1]


# --------------------------------------------------------------------------- decimal points
@pytest.mark.parametrize("number", ["1.5", "١.٥", "۱.۵", "١٫٥"], ids=["ascii", "arabic-indic", "persian", "arabic-separator"])
def test_the_marker_goes_after_a_decimal_number(number):
    """The small model's "عدد سكان مدينة الحسكة هو 1 [1].5 مليون.": the decimal point is no sentence end."""
    answer = f"عدد سكان مدينة الحسكة هو {number} مليون."

    attached = cite(answer, [HASAKAH, POPULATION], support=answer_support)
    kept = cite(f"عدد سكان مدينة الحسكة هو {number} مليون [2].", [HASAKAH, POPULATION], support=answer_support)

    assert attached.text == f"عدد سكان مدينة الحسكة هو {number} مليون [2]."
    assert numbers(attached) == [2]
    assert kept.text == attached.text and numbers(kept) == [2] and kept.dropped == []


@pytest.mark.parametrize("number", ["1.5", "١.٥", "١٫٥", "1,500,000", "١٬٥٠٠٬٠٠٠"])
def test_a_number_stays_in_one_sentence(number):
    answer = f"عدد سكان مدينة الحسكة {number} مليون [1]. وتقع على نهر الخابور."

    assert cited_sentences(answer) == [(f"عدد سكان مدينة الحسكة {number} مليون.", [1]), ("وتقع على نهر الخابور.", [])]
    assert strip_markers(answer).startswith(f"عدد سكان مدينة الحسكة {number} مليون.")


def test_a_sentence_still_ends_at_a_full_stop_after_a_number():
    answer = "بلغ عدد سكان مدينة الحسكة 1500000 نسمة عام 2019. 2020 شهد نزوحا [1]."

    assert [s for s, _ in cited_sentences(answer)] == ["بلغ عدد سكان مدينة الحسكة 1500000 نسمة عام 2019.", "2020 شهد نزوحا."]


def test_an_english_decimal_and_an_attribution():
    answer = "The population of Hasakah is 1.5 million. This is stated in passage [2]."

    assert attributions_as_markers(answer) == "The population of Hasakah is 1.5 million [2]."
    cited = cite(answer, [HASAKAH, POPULATION], support=answer_support)
    assert cited.text == "The population of Hasakah is 1.5 million [2]."
    assert numbers(cited) == [2]
