"""The UI's script API through ``gradio_client``: ``/ask`` returns the ``Answer`` as JSON, and is the
only endpoint exposed (the page's own events are private)."""

from __future__ import annotations

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from assistant.models import Answer

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
    # The spokesman's article (the same answer the Python API gives; see tests/e2e).
    assert "000_f059682764c3eed9" in {c.doc_id for c in answer.citations}, answer.citations


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_raises_the_friendly_error(client: Client, question: str):
    with pytest.raises(AppError) as error:
        client.predict(question, None, api_name="/ask")
    message = str(error.value)
    assert message == "the question is empty: type a question about the indexed articles"
    assert "Traceback" not in message
