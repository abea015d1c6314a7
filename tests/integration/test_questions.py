"""Bad questions (issue 20) through the real retriever over the seeded index, the ``Assistant`` API
and the ``assistant`` command line (a subprocess, as in test_cli.py). The answer logic for the same
cases, with a fake model, is in tests/unit/test_questions.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from assistant.answer import exchange
from assistant.assistant import Assistant
from assistant.config import RetrievalSettings
from assistant.errors import InputError
from assistant.prompts import Prompts

from .helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
EVAL = {item["id"]: item for item in yaml.safe_load((REPO / "evals" / "qa.yaml").read_text(encoding="utf-8"))}
LIMIT = RetrievalSettings().max_question_chars
EXTRACTIVE = {"llm": {"provider": "extractive"}}  # a real backend without a model: fast, no server
EMPTY = "the question is empty: type a question about the indexed articles"
NO_WORDS = "the question has no words, only punctuation or symbols: type a question about the indexed articles"
TOO_LONG = f"the question is {LIMIT + 1} characters long; the limit is {LIMIT} (retrieval.max_question_chars). Ask a shorter question."


def dirty(question: str) -> str:
    """``question`` as pasted from a web page: marks around it, zero-width characters and a bidi
    override inside its words, a line break and a tab between them."""
    words = question.split(" ")
    words = [w[:2] + "\u200c" + w[2:] if len(w) > 3 else w for w in words]
    words[1] = "\u202e" + words[1] + "\u202c"
    return "\ufeff\u200f" + " ".join(words[:2]) + "\n" + "\t".join(words[2:]) + "\u2066\u200b\u2069"


@pytest.fixture
def seeded(seeded_settings_factory) -> Assistant:
    return Assistant(seeded_settings_factory(**EXTRACTIVE))


def top_ids(passages) -> list[str]:
    return [p.chunk_id for p in passages]


# --------------------------------------------------------------------------- the command line
@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize(
    ("question", "message"),
    [("؟؟؟", NO_WORDS), ("...", NO_WORDS), ("\u200f\u200b\u202e\u2066", EMPTY), ("س" * (LIMIT + 1), TOO_LONG)],
    ids=["arabic-question-marks", "dots", "invisible-only", "over-the-limit"],
)
def test_cli_rejects_a_bad_question_with_one_line(config_factory, tmp_path, command, question, message):
    config_factory(**EXTRACTIVE)
    result = run_cli(tmp_path, command, question)
    assert result.returncode == 1, result.stdout
    assert result.stderr == f"error: {message}\n"  # one line, no traceback
    assert result.stdout == ""


@pytest.mark.slow
def test_cli_search_cleans_invisible_characters(seeded_settings_factory, tmp_path):
    seeded_settings_factory(**EXTRACTIVE)
    question = EVAL["ar-spokesman"]["question"]
    clean = run_cli(tmp_path, "search", question, "--json")
    pasted = run_cli(tmp_path, "search", dirty(question), "--json")
    assert clean.returncode == 0 and pasted.returncode == 0, clean.stderr + pasted.stderr
    assert [p["chunk_id"] for p in json.loads(pasted.stdout)] == [p["chunk_id"] for p in json.loads(clean.stdout)]


# --------------------------------------------------------------------------- the Python API
@pytest.mark.slow
@pytest.mark.parametrize("question", ["؟؟؟", "\u200f\n\u200b", "x" * (LIMIT + 1)])
def test_api_rejects_a_bad_question_in_search_ask_and_stream(seeded, question):
    for call in (seeded.search, seeded.ask, lambda q: next(iter(seeded.stream(q)))):
        with pytest.raises(InputError):
            call(question)


@pytest.mark.slow
@pytest.mark.parametrize("item", ["ar-spokesman", "ar-presser-place", "en-spokesman-name", "en-hawar-agency"])
def test_invisible_characters_retrieve_the_same_passages_as_the_clean_question(seeded, item):
    question = EVAL[item]["question"]
    assert dirty(question) != question
    assert top_ids(seeded.search(dirty(question))) == top_ids(seeded.search(question))
    answer = seeded.ask(dirty(question))
    assert answer.question == question


@pytest.mark.slow
def test_a_mixed_script_question_is_answered_from_the_right_article(seeded):
    # The example: the Arabic name and its English acronym in one question.
    passages = seeded.search("ما هي قوات سوريا الديمقراطية SDF؟")
    assert "قوات سوريا الديمقراطية" in passages[0].text or "قسد" in passages[0].text
    # An eval question with "قسد" written as "SDF": still its gold article first, as the original.
    item = EVAL["ar-presser-place"]
    mixed = item["question"].replace("قسد", "SDF")
    assert mixed != item["question"]
    for question in (item["question"], mixed):
        assert seeded.search(question)[0].doc_id in item["sources"], question
    answer = seeded.ask(mixed)
    assert answer.language == "ar" and not answer.refused, answer.notes
    assert {c.doc_id for c in answer.citations} & set(item["sources"])
    assert not any("looks" in note for note in answer.notes)


# The eval set's spokesman question, as a French and a Persian speaker would ask it.
THIRD_LANGUAGE = [
    ("Qui est le porte-parole officiel de la coalition internationale ?", "French", "en"),
    ("سخنگوی رسمی ائتلاف بین‌المللی کیست؟", "Persian", "ar"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("question", "name", "language"), THIRD_LANGUAGE)
def test_a_question_in_a_third_language_is_retrieved_and_told_the_languages(seeded, question, name, language):
    sources = set(EVAL["ar-spokesman"]["sources"])
    assert {p.doc_id for p in seeded.search(question)[:3]} & sources  # the multilingual embedder finds it
    answer = seeded.ask(question)
    assert answer.language == language
    assert f"the question looks {name}; the assistant answers in Arabic and English" in " ".join(answer.notes)
    if answer.refused:
        assert answer.text.endswith(Prompts().localized("languages", language))
    else:
        assert {c.doc_id for c in answer.citations} & sources, answer.text


@pytest.mark.slow
def test_a_follow_up_after_a_long_question_is_not_rejected_for_its_length(seeded_settings_factory):
    first = EVAL["ar-presser-place"]["question"]
    follow_up = "ومن تحدث فيه باسم التحالف؟"
    # The first question fits the limit; the extractive backend condenses the follow-up by putting
    # the first question before it, which used to exceed the limit and reject the follow-up.
    limit = len(first) + 5
    assert len(f"{first} {follow_up}") > limit
    assistant = Assistant(seeded_settings_factory(**EXTRACTIVE, retrieval={"max_question_chars": limit}))
    first_answer = assistant.ask(first)
    answer = assistant.ask(follow_up, history=exchange(first, first_answer.text))
    assert len(answer.question) <= limit and answer.question.endswith(follow_up)
    assert answer.question.startswith(first.split(" ")[0])
