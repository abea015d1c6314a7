"""End to end with the real embedded model (Qwen2.5-Coder-1.5B through xllamacpp) on the seeds.

One model load per module (~10 s, ~2 GB); each question takes a few seconds on 2 cores.
"""

from __future__ import annotations

import pytest

from assistant.answer import exchange
from assistant.arabic import detect_language, normalize
from assistant.assistant import Assistant
from assistant.cite import strip_markers
from assistant.models import Answer

pytestmark = pytest.mark.slow

SPOKESMAN_FORMS = [normalize(w) for w in ("كيغينز", "كاغينز", "Caggins", "Myles", "مايلز")]


@pytest.fixture(scope="module")
def assistant(tmp_path_factory, seeded_index) -> Assistant:
    import shutil

    from tests.conftest import STORE_DIR, write_config
    from assistant.config import load_settings

    root = tmp_path_factory.mktemp("e2e")
    shutil.copytree(seeded_index.root / STORE_DIR, root / STORE_DIR)
    return Assistant(load_settings(write_config(root, llm={"provider": "embedded"})))


def mentions_spokesman(text: str) -> bool:
    return any(form.lower() in normalize(text).lower() for form in SPOKESMAN_FORMS)


def test_arabic_question_answered_in_arabic_with_a_valid_citation(assistant: Assistant):
    answer = assistant.ask("من هو المتحدث الرسمي باسم التحالف الدولي؟")
    assert answer.model.startswith("embedded:")
    assert not answer.refused, answer.notes
    assert answer.language == "ar" and detect_language(strip_markers(answer.text)) == "ar"
    assert mentions_spokesman(answer.text), answer.text
    assert answer.citations, answer.text
    for citation in answer.citations:
        assert f"[{citation.n}]" in answer.text
        assert mentions_spokesman(citation.text) or citation.doc_id in {"000_f059682764c3eed9", "001_85a3b68c139dd4d8", "003_e7f47d77941dc1b4"}
    assert answer.timings.first_token_ms and answer.timings.total_ms >= answer.timings.first_token_ms


def test_english_question_answered_in_english(assistant: Assistant):
    """English in, English out, citing a passage shown. Whether the 1.5B model transliterates the
    Arabic name right (Caggins) is not asserted: it rarely does (see the README's eval numbers)."""
    answer = assistant.ask("Who is the coalition spokesman?")
    assert not answer.refused, answer.notes
    assert answer.language == "en"
    assert detect_language(strip_markers(answer.text)) == "en", answer.text
    assert answer.citations
    assert all(f"[{c.n}]" in answer.text for c in answer.citations)


def test_unanswerable_question_is_refused(assistant: Assistant):
    answer = assistant.ask("What is the capital of Australia?")
    assert answer.refused
    assert answer.language == "en" and answer.citations == []
    assert "Melbourne" not in answer.text and "Canberra" not in answer.text


def test_stream_yields_deltas_then_the_same_answer_as_ask(assistant: Assistant):
    items = list(assistant.stream("ما هي البلدة التي عقد فيها المؤتمر الصحفي للتحالف؟"))
    deltas, final = items[:-1], items[-1]
    assert isinstance(final, Answer)
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert not final.refused
    assert "رميلان" in final.text


def test_follow_up_question_is_rewritten_by_the_model_into_a_standalone_one(assistant: Assistant):
    """A follow-up with a pronoun is rewritten by the model with the history: the standalone
    question is neither the follow-up nor the fallback (previous question + follow-up) but names
    whom the pronoun stood for, and retrieval finds the spokesman's passages with it. (In Arabic
    the 1.5B model repeats "ما هي رتبته؟" unchanged, so the fallback applies: tests/unit.)"""
    previous = "Who is the coalition spokesman?"
    history = exchange(previous, "The coalition spokesman is Colonel Myles Caggins [1].")
    follow = assistant.ask("What is his rank?", history=history)
    assert follow.question not in ("What is his rank?", f"{previous} What is his rank?"), follow.question
    assert "caggins" in follow.question.lower(), follow.question
    assert follow.language == "en"
    passages = assistant.search(follow.question, top_k=3)
    assert any(mentions_spokesman(p.text) for p in passages), [p.text[:80] for p in passages]


def test_prompt_size_is_counted_as_the_model_reads_it(assistant: Assistant):
    """llama.cpp's own chat template and tokenizer: the count equals the prompt tokens the server
    reports for the same request, and a shorter prompt counts fewer."""
    from assistant.llm import Message, chat_messages

    question = "من هو المتحدث الرسمي باسم التحالف الدولي؟"
    messages = assistant.answer_prompt(question)
    counted = assistant.prompt_tokens(question)
    backend = assistant.answerer.llm  # the backend's own request, to read the server's count
    served = backend._llm.chat(chat_messages(messages))  # llama-index passes on the server's usage
    assert counted == served.additional_kwargs["prompt_tokens"]
    assert 0 < backend.prompt_tokens([messages[0], Message("user", "سؤال قصير")]) < counted
