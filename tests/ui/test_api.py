"""The UI's script API through ``gradio_client``: ``/ask`` returns the ``Answer`` as JSON, and is the
only endpoint exposed (the page's own events are private)."""

from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from assistant.models import Answer
from assistant.prompts import Prompts

pytestmark = pytest.mark.slow  # the embedded model answers


@pytest.fixture(scope="module")
def client(ui_server) -> Client:
    return Client(ui_server.url, verbose=False)


def test_only_ask_is_exposed(client: Client):
    endpoints = client.view_api(print_info=False, return_format="dict")
    assert set(endpoints["named_endpoints"]) == {"/ask"}
    assert endpoints["unnamed_endpoints"] == {}


def test_ask_returns_a_cited_answer_in_the_question_language(client: Client):
    result = client.predict("Who is the coalition spokesman?", None, api_name="/ask")
    answer = Answer.model_validate(result)
    assert answer.language == "en"
    assert answer.model.startswith("embedded:"), answer.model
    assert answer.question == "Who is the coalition spokesman?"
    assert not answer.refused, answer.notes
    assert answer.citations, answer.text
    assert all(f"[{c.n}]" in answer.text for c in answer.citations), answer.text
    # An article naming the spokesman (the three that do; the same answer the Python API gives, see tests/e2e).
    spokesman_docs = {"000_f059682764c3eed9", "001_85a3b68c139dd4d8", "003_e7f47d77941dc1b4"}
    assert {c.doc_id for c in answer.citations} & spokesman_docs, answer.citations


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_raises_the_friendly_error(client: Client, question: str):
    with pytest.raises(AppError) as error:
        client.predict(question, None, api_name="/ask")
    message = str(error.value)
    assert message == "the question is empty: type a question about the indexed articles"
    assert "Traceback" not in message


# --------------------------------------------------------------------------- bad questions (issue 20)
@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("؟؟؟", "the question has no words, only punctuation or symbols: type a question about the indexed articles"),
        ("!!", "the question has no words, only punctuation or symbols: type a question about the indexed articles"),
        ("\u200f\u200b\n\u202e", "the question is empty: type a question about the indexed articles"),
    ],
    ids=["arabic-question-marks", "exclamation-marks", "invisible-only"],
)
def test_a_question_without_words_raises_the_friendly_error(client: Client, question: str, message: str):
    with pytest.raises(AppError) as error:
        client.predict(question, None, api_name="/ask")
    assert str(error.value) == message


def test_a_question_over_the_limit_raises_the_length_message(client: Client, ui_server):
    limit = ui_server.settings.retrieval.max_question_chars
    with pytest.raises(AppError) as error:
        client.predict("س" * (limit + 1), None, api_name="/ask")
    assert str(error.value) == (
        f"the question is {limit + 1} characters long; the limit is {limit} (retrieval.max_question_chars). Ask a shorter question."
    )


def test_the_question_box_stops_at_the_length_limit(client: Client, ui_server):
    (box,) = [c for c in client.config["components"] if c.get("props", {}).get("elem_id") == "question"]
    assert box["type"] == "textbox"
    assert box["props"]["max_length"] == ui_server.settings.retrieval.max_question_chars


def test_a_french_question_is_answered_in_english_or_told_the_languages(client: Client):
    result = client.predict("Qui est le porte-parole officiel de la coalition internationale ?", None, api_name="/ask")
    answer = Answer.model_validate(result)
    assert answer.language == "en"
    assert any(note.startswith("the question looks French; the assistant answers in Arabic and English") for note in answer.notes)
    if answer.refused:
        assert answer.text.endswith(Prompts().localized("languages", "en"))
    else:
        assert answer.citations, answer.text


# --------------------------------------------------------------------------- outlet and date filters
def test_filters_limit_what_the_answer_may_draw_from(client: Client):
    """The seeds have no outlet and no date: filtered by either, nothing matches, and the answer
    says so without asking the model; a malformed date is the same message as on the command line."""
    question = "Who is the coalition spokesman?"
    for sources, since, until, described in [
        (["Enab Baladi"], None, None, "from Enab Baladi"),
        (None, "2020-07", "2020-07", "dated 2020-07-01 to 2020-07-31"),
    ]:
        answer = Answer.model_validate(client.predict(question, None, sources, since, until, api_name="/ask"))
        assert answer.refused and not answer.citations
        assert f"refused: no indexed article matches the filters ({described})" in answer.notes
        assert answer.usage is None  # no model call
    with pytest.raises(AppError) as error:
        client.predict(question, None, None, "last July", None, api_name="/ask")
    assert str(error.value) == "'last July' is not a date: write YYYY, YYYY-MM or YYYY-MM-DD"
