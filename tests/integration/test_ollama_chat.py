"""llm.provider: ollama (and auto) through the REAL ``ollama`` client and llama-index's Ollama
integration, over HTTP, against the fake server in helpers.py speaking Ollama's ``/api/tags``,
``/api/show`` and streamed ``/api/chat`` protocol. Nothing in the package is monkeypatched: the fake
decides what the "model" says from the request it receives, and records every request body.
"""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path

import pytest

from assistant.arabic import detect_language
from assistant.assistant import Assistant
from assistant.compress import estimate_tokens
from assistant.cite import strip_markers
from assistant.errors import BackendUnavailableError
from assistant.models import Answer
from assistant.prompts import Prompts

from .helpers import CHAT_MODEL, FakeOllama, free_port, ollama_llm_overrides, run_cli

pytestmark = pytest.mark.slow  # starts a (fake) server and loads the embedding model

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
SPOKESMAN_Q = "من هو المتحدث الرسمي باسم التحالف الدولي؟"
SPOKESMAN_Q_EN = "Who is the official spokesman of the international coalition?"
# The seeds that name the coalition's spokesman (spelled كيغينز in one outlet, كاغينز in others).
KIGGINS_DOCS = {p.stem for p in SEEDS.glob("*.txt") if re.search("كيغينز|كاغينز", p.read_text(encoding="utf-8"))}

PROMPTS = Prompts()
REFUSAL_AR = (REPO / "prompts" / "refusal.ar.txt").read_text(encoding="utf-8").strip()
# How the fake recognizes the assistant's request to translate an answer: the prompt's fixed opening.
TRANSLATE_MARK = PROMPTS.text("translate_answer").split("{")[0].strip()
# A join limit for calls that must not hang CI (generous: the machine may be loaded).
JOIN_LIMIT_S = 300


# --------------------------------------------------------------------------- what the fake "model" says
def last_user(body: dict) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def shown_passages(user_message: str) -> dict[int, str]:
    """The numbered passages of the answer prompt (prompts/passage.txt: ``[n] title (date)\\ntext``)."""
    blocks = re.split(r"(?m)^\[(\d+)\] ", user_message)
    return {int(n): text for n, text in zip(blocks[1::2], blocks[2::2])}


def kiggins_number(body: dict) -> int:
    """The number of the first shown passage that names the spokesman."""
    numbers = [n for n, text in sorted(shown_passages(last_user(body)).items()) if re.search("كيغينز|كاغينز", text)]
    assert numbers, f"no passage about the spokesman was shown to the model:\n{last_user(body)[:2000]}"
    return numbers[0]


def arabic_pieces(n: int) -> list[str]:
    """A canned Arabic answer, streamed in several pieces."""
    return ["المتحدث الرسمي ", "باسم التحالف الدولي ", "هو العقيد ", f"مايلز كيغينز [{n}]", "."]


def spokesman_reply(body: dict) -> list[str]:
    return arabic_pieces(kiggins_number(body))


def english_translation(body: dict) -> str:
    """The reply to the assistant's translate-the-answer request: the answer's marker, in English.

    The prompt's instructions mention "[1]" as an example; the answer (and its marker) comes last.
    """
    markers = re.findall(r"\[\d+\]", last_user(body))
    return f"The official spokesman of the international coalition is Colonel Myles Caggins {markers[-1] if markers else ''}."


def translating_reply(body: dict):
    """Answers in Arabic whatever the question's language (as small models often do); translates on request."""
    if TRANSLATE_MARK in last_user(body):
        return english_translation(body)
    return spokesman_reply(body)


def run_with_limit(call, limit: float = JOIN_LIMIT_S):
    """Run ``call()`` in a thread; fail (instead of hanging CI) when it is still running after ``limit``."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"the call did not return within {limit} s")
    return outcome


def assert_clean_failure(result) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr


# --------------------------------------------------------------------------- the fake itself
def test_fake_speaks_the_real_clients_protocol(fake_chat_ollama):
    """The fake's wire format is what the real ``ollama`` client and llama-index's Ollama parse."""
    import ollama
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.ollama import Ollama

    fake_chat_ollama.chat_reply = lambda body: ["مرحبا ", "بك"]
    client = ollama.Client(host=fake_chat_ollama.host, timeout=30)

    assert [m.model for m in client.list().models] == [CHAT_MODEL]
    assert client.show(CHAT_MODEL).modelinfo["qwen2.context_length"] == 32768
    with pytest.raises(ollama.ResponseError) as caught:
        client.show("missing-model")
    assert caught.value.status_code == 404
    assert client.chat(model=CHAT_MODEL, messages=[{"role": "user", "content": "x"}]).message.content == "مرحبا بك"

    # context_window=-1 makes llama-index ask /api/show for the model's context length.
    llm = Ollama(model=CHAT_MODEL, base_url=fake_chat_ollama.host, context_window=-1, request_timeout=30)
    deltas = [r.delta for r in llm.stream_chat([ChatMessage(role="user", content="x")]) if r.delta]
    assert deltas == ["مرحبا ", "بك"]
    assert fake_chat_ollama.chat_requests[-1]["options"]["num_ctx"] == 32768
    assert fake_chat_ollama.show_requests and fake_chat_ollama.show_requests[-1]["model"] == CHAT_MODEL


# --------------------------------------------------------------------------- answering
def test_arabic_answer_streams_then_cites(fake_chat_ollama, seeded_settings_factory):
    fake = fake_chat_ollama
    fake.chat_reply = spokesman_reply
    settings = seeded_settings_factory(**ollama_llm_overrides(fake.host, context_window=4096, keep_alive="7m"))
    assistant = Assistant(settings)

    items = list(assistant.stream(SPOKESMAN_Q))

    *deltas, answer = items
    assert isinstance(answer, Answer)
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert len(fake.chat_requests) == 1
    body = fake.chat_requests[0]
    n = kiggins_number(body)
    assert deltas == arabic_pieces(n), "the deltas are the model's pieces, in order"

    assert answer.model == f"ollama:{CHAT_MODEL}"
    assert answer.refused is False
    assert answer.language == "ar"
    assert f"مايلز كيغينز [{n}]" in answer.text
    assert answer.citations, answer
    assert {c.doc_id for c in answer.citations} <= KIGGINS_DOCS, answer.citations
    assert [c.n for c in answer.citations] == [n]
    assert answer.timings.first_token_ms is not None

    # What went over the wire.
    assert body["model"] == CHAT_MODEL
    assert body["stream"] is True
    assert body["options"]["num_ctx"] == settings.llm.ollama.context_window == 4096
    assert body["options"]["temperature"] == settings.llm.temperature
    assert body["options"]["num_predict"] == settings.llm.max_tokens
    assert body["keep_alive"] == "7m"
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user"]
    assert REFUSAL_AR in body["messages"][0]["content"], "the system prompt gives the refusal sentence"
    user = body["messages"][1]["content"]
    assert "[1]" in user and SPOKESMAN_Q in user
    # Passages cut to the prompt budget, estimated from the characters (Ollama has no tokenizer endpoint).
    assert 1 <= len(shown_passages(user)) <= settings.answer.passages
    assert sum(estimate_tokens(m["content"]) for m in body["messages"]) <= settings.answer.prompt_tokens

    # ask() is the same code path, drained.
    again = assistant.ask(SPOKESMAN_Q)
    assert again.text == answer.text
    assert [c.chunk_id for c in again.citations] == [c.chunk_id for c in answer.citations]
    assert len(fake.chat_requests) == 2


def test_refusal_from_the_model_becomes_the_refusal_sentence(fake_chat_ollama, seeded_settings_factory):
    fake = fake_chat_ollama
    half = len(REFUSAL_AR) // 2
    fake.chat_reply = lambda body: [REFUSAL_AR[:half], REFUSAL_AR[half:]]
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake.host)))

    answer = assistant.ask(SPOKESMAN_Q)

    assert len(fake.chat_requests) == 1, "the question passes the evidence gate: the model is asked"
    assert answer.refused is True
    assert answer.text == REFUSAL_AR
    assert answer.citations == []
    assert answer.model == f"ollama:{CHAT_MODEL}"


@pytest.mark.parametrize("strict", [False, True])
def test_strict_support_refuses_an_answer_that_restates_the_question(fake_chat_ollama, seeded_settings_factory, strict):
    """The model "answers" with the question's own words, citing the spokesman's passage: every word
    is in that passage, so the default support keeps it; strict support counts only what the
    answer adds to the question (nothing) and refuses."""
    fake = fake_chat_ollama
    fake.chat_reply = lambda body: ["المتحدث الرسمي باسم التحالف الدولي ", f"هو المتحدث الرسمي [{kiggins_number(body)}]."]
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake.host), answer={"strict_support": strict}))

    answer = assistant.ask(SPOKESMAN_Q)

    assert answer.refused is strict, answer
    if strict:
        assert answer.text == REFUSAL_AR and answer.citations == []
        assert "no passage supports the generated answer; refused" in answer.notes
    else:
        assert [c.doc_id for c in answer.citations] and {c.doc_id for c in answer.citations} <= KIGGINS_DOCS


def test_english_question_answered_in_arabic_is_translated(fake_chat_ollama, seeded_settings_factory):
    """With the default answer settings: the model answers in Arabic, the assistant has it translate."""
    fake = fake_chat_ollama
    fake.chat_reply = translating_reply
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake.host)))

    answer = assistant.ask(SPOKESMAN_Q_EN)

    assert [TRANSLATE_MARK in last_user(b) for b in fake.chat_requests] == [False, True]
    answer_request, translate_request = (last_user(b) for b in fake.chat_requests)
    assert SPOKESMAN_Q_EN in answer_request and "Answer in English" in answer_request
    n = kiggins_number(fake.chat_requests[0])
    assert f"مايلز كيغينز [{n}]" in translate_request and "English" in translate_request
    assert answer.language == "en"
    assert detect_language(strip_markers(answer.text)) == "en"
    assert f"Myles Caggins [{n}]" in answer.text
    assert any("translat" in note for note in answer.notes), answer.notes
    assert answer.refused is False, answer.notes
    assert [c.n for c in answer.citations] == [n] and answer.citations[0].doc_id in KIGGINS_DOCS


def test_english_question_reaches_the_model_with_default_settings(fake_chat_ollama, seeded_settings_factory):
    fake = fake_chat_ollama
    fake.chat_reply = translating_reply
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake.host)))

    answer = assistant.ask(SPOKESMAN_Q_EN)

    assert fake.chat_requests, f"the model was never asked: {answer.notes}"
    assert answer.refused is False, answer.notes


def test_translated_answer_keeps_its_supported_citation(fake_chat_ollama, seeded_settings_factory):
    fake = fake_chat_ollama
    fake.chat_reply = translating_reply
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake.host)))

    answer = assistant.ask(SPOKESMAN_Q_EN)

    assert len(fake.chat_requests) == 2, "answered, then translated"
    assert answer.refused is False, answer.notes
    assert answer.language == "en" and "Myles Caggins [" in answer.text
    assert answer.citations and {c.doc_id for c in answer.citations} <= KIGGINS_DOCS


# --------------------------------------------------------------------------- failures
def test_unknown_model_says_how_to_pull_it(fake_chat_ollama, seeded_settings_factory):
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake_chat_ollama.host, model="missing-model")))

    with pytest.raises(BackendUnavailableError) as caught:
        assistant.ask(SPOKESMAN_Q)

    assert "ollama pull missing-model" in str(caught.value)
    assert fake_chat_ollama.tags_calls >= 1
    assert fake_chat_ollama.chat_requests == [], "the probe fails before any generation"


def test_model_removed_mid_session_says_how_to_pull_it(fake_chat_ollama, seeded_settings_factory):
    """The probe passed, then /api/chat answers 404: the error still names the fix."""
    fake = fake_chat_ollama
    fake.chat_reply = spokesman_reply
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake.host)))
    assert assistant.ask(SPOKESMAN_Q).refused is False

    fake.models.clear()
    with pytest.raises(BackendUnavailableError) as caught:
        assistant.ask(SPOKESMAN_Q)

    assert f"ollama pull {CHAT_MODEL}" in str(caught.value)
    # The second question got as far as the evidence check, which met the 404.
    assert [b["model"] for b in fake.evidence_requests] == [CHAT_MODEL, CHAT_MODEL]
    assert len(fake.chat_requests) == 1


def test_evidence_check_no_means_refusal_without_generation(fake_chat_ollama, seeded_settings_factory):
    """The model says the passages do not answer the question: refused, no answer is generated."""
    fake = fake_chat_ollama
    fake.chat_reply = spokesman_reply
    fake.verify_reply = "no"
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake.host)))

    answer = assistant.ask(SPOKESMAN_Q)

    assert answer.refused and answer.text == REFUSAL_AR and answer.citations == []
    assert len(fake.evidence_requests) == 1 and fake.chat_requests == []
    assert any("P(passages answer the question)" in note for note in answer.notes), answer.notes


@pytest.mark.parametrize(
    "top, min_answerable, refused",
    [
        # The most likely single token is "no", but "yes"/"Yes" together are likelier: answered.
        ({"no": math.log(0.40), "yes": math.log(0.35), "Yes": math.log(0.25)}, 0.45, False),
        # The reply would be "yes", but P(yes) = 0.55 / 0.85 = 0.65 is under the bar: refused.
        ({"yes": math.log(0.55), "no": math.log(0.30), "No": math.log(0.15)}, 0.7, True),
    ],
)
def test_evidence_check_uses_token_probabilities(fake_chat_ollama, seeded_settings_factory, top, min_answerable, refused):
    """A server that reports log-probabilities (Ollama >= 0.12.11) gives the evidence check a
    calibrated P(yes) instead of the reply's first word, asked with the answer's own options."""
    fake = fake_chat_ollama
    fake.chat_reply = spokesman_reply
    fake.verify_top_logprobs = top
    settings = seeded_settings_factory(
        **ollama_llm_overrides(fake.host, context_window=4096, keep_alive="7m"), answer={"min_answerable": min_answerable}
    )

    answer = Assistant(settings).ask(SPOKESMAN_Q)

    yes = sum(math.exp(v) for k, v in top.items() if k.lower() == "yes")
    no = sum(math.exp(v) for k, v in top.items() if k.lower() == "no")
    assert f"= {yes / (yes + no):.2f}" in " ".join(answer.notes), answer.notes
    assert answer.refused is refused
    assert len(fake.chat_requests) == (0 if refused else 1)
    [check] = fake.evidence_requests
    assert check["stream"] is False and check["logprobs"] is True and check["top_logprobs"] == 10
    assert check["options"] == {"temperature": settings.llm.temperature, "num_ctx": 4096, "num_predict": 1}
    assert check["keep_alive"] == "7m"
    if not refused:
        assert check["options"]["num_ctx"] == fake.chat_requests[0]["options"]["num_ctx"], "no model reload"


def test_unknown_model_cli_fails_without_traceback(fake_chat_ollama, config_factory, tmp_path):
    config = config_factory(**ollama_llm_overrides(fake_chat_ollama.host, model="missing-model"))

    result = run_cli(tmp_path, "--config", config, "ask", SPOKESMAN_Q)

    assert_clean_failure(result)
    assert "ollama pull missing-model" in result.stderr


def test_nothing_listening_cli_names_the_host(config_factory, tmp_path):
    port = free_port()
    config = config_factory(**ollama_llm_overrides(f"http://127.0.0.1:{port}"))

    result = run_cli(tmp_path, "--config", config, "ask", SPOKESMAN_Q)

    assert_clean_failure(result)
    assert f"127.0.0.1:{port}" in result.stderr


def test_nothing_listening_api_names_the_host(seeded_settings_factory):
    host = f"http://127.0.0.1:{free_port()}"
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(host)))

    with pytest.raises(BackendUnavailableError) as caught:
        assistant.ask(SPOKESMAN_Q)

    assert host in str(caught.value)


def test_hanging_server_times_out(fake_chat_ollama, seeded_settings_factory):
    fake = fake_chat_ollama
    fake.hang_chat = True
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake.host, request_timeout=2)))

    outcome = run_with_limit(lambda: assistant.ask(SPOKESMAN_Q))

    assert fake.wait_hanging(timeout=1), "the request reached /api/chat and was held open"
    error = outcome.get("error")
    assert isinstance(error, BackendUnavailableError), outcome
    assert "request_timeout" in str(error) and "2 s" in str(error)
    assert fake.host in str(error)


def test_cli_ask_json_through_ollama(fake_chat_ollama, seeded_settings_factory, tmp_path):
    fake = fake_chat_ollama
    fake.chat_reply = spokesman_reply
    seeded_settings_factory(**ollama_llm_overrides(fake.host))

    result = run_cli(tmp_path, "ask", SPOKESMAN_Q, "--json")

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["model"] == f"ollama:{CHAT_MODEL}" and answer["refused"] is False
    assert "مايلز كيغينز [" in answer["text"]
    assert answer["citations"] and {c["doc_id"] for c in answer["citations"]} <= KIGGINS_DOCS
    assert len(fake.chat_requests) == 1


# --------------------------------------------------------------------------- provider: auto
def test_auto_uses_ollama_when_it_has_the_model(fake_chat_ollama, seeded_settings_factory):
    fake = fake_chat_ollama
    fake.chat_reply = spokesman_reply
    assistant = Assistant(seeded_settings_factory(**ollama_llm_overrides(fake.host, provider="auto")))

    answer = assistant.ask(SPOKESMAN_Q)

    assert answer.model.startswith("ollama:") and answer.model == f"ollama:{CHAT_MODEL}"
    assert answer.refused is False and answer.citations
    assert not any("Ollama not used" in note for note in answer.notes)
    assert len(fake.chat_requests) == 1


def test_auto_notices_ollama_coming_back_and_going_away_without_a_restart(seeded_settings_factory, monkeypatch):
    """One Assistant, its clock moved by hand: Ollama down (extractive answers), then up (noticed
    only once llm.recheck_s has passed), then down again (noticed at the next question after
    the failed one). Each answer names the backend that gave it."""
    import assistant.llm as llm_module
    import assistant.llm.embedded as embedded

    def not_installed(settings):  # the fallback is extractive here: no slow model load in this test
        raise embedded.EmbeddedUnavailable("not installed in this test")

    monkeypatch.setattr(embedded, "make_embedded", not_installed)
    now = [1000.0]
    monkeypatch.setattr(llm_module, "monotonic", lambda: now[0])
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    overrides = ollama_llm_overrides(host, provider="auto")
    overrides["llm"]["recheck_s"] = 30
    assistant = Assistant(seeded_settings_factory(**overrides))

    down = assistant.ask(SPOKESMAN_Q)
    assert down.model == "extractive" and not down.refused
    assert any("Ollama not used" in note and f"127.0.0.1:{port}" in note for note in down.notes), down.notes

    with FakeOllama({CHAT_MODEL}, spokesman_reply, port=port) as fake:
        now[0] += 29  # within recheck_s: not looked at again
        assert assistant.ask(SPOKESMAN_Q).model == "extractive" and fake.tags_calls == 0
        now[0] += 2
        back = assistant.ask(SPOKESMAN_Q)
        assert back.model == f"ollama:{CHAT_MODEL}" and back.citations and fake.tags_calls == 1
        assert not any("Ollama not used" in note for note in back.notes)
        now[0] += 5
        assert assistant.ask(SPOKESMAN_Q).model == f"ollama:{CHAT_MODEL}" and fake.tags_calls == 1  # kept, not probed
    # Gone again: the next question fails with the reason; the one after falls back at once.
    now[0] += 1
    with pytest.raises(BackendUnavailableError, match="Ollama"):
        assistant.ask(SPOKESMAN_Q)
    after = assistant.ask(SPOKESMAN_Q)
    assert after.model == "extractive" and any("Ollama not used" in note for note in after.notes)


@pytest.mark.parametrize("server", ["down", "hanging"])
def test_auto_falls_back_when_ollama_is_down_or_hangs(server, seeded_settings_factory):
    """Nothing listening, or a server that accepts the connection and never answers: auto answers
    with the next backend and says why, once the probe's timeout is up (not the request's)."""
    import socket

    with socket.socket() as listener:
        if server == "hanging":
            listener.bind(("127.0.0.1", 0))
            listener.listen()  # connections are queued by the kernel and never read
            host = f"http://127.0.0.1:{listener.getsockname()[1]}"
        else:
            host = f"http://127.0.0.1:{free_port()}"
        settings = seeded_settings_factory(
            **ollama_llm_overrides(host, provider="auto", probe_timeout=1, request_timeout=600),
            answer={"min_dense_score": {"ar": 1.0, "en": 1.0}},  # refused before generation: no slow answer
        )
        outcome = run_with_limit(lambda: Assistant(settings).ask("What is the best recipe for chocolate cake?"))

    answer = outcome.get("value")
    assert isinstance(answer, Answer), outcome
    assert answer.model == "extractive" or answer.model.startswith("embedded:")
    assert any("Ollama not used" in note and host.removeprefix("http://") in note for note in answer.notes), answer.notes


def test_auto_falls_back_when_ollama_lacks_the_model(fake_chat_ollama, seeded_settings_factory):
    """Ollama answers but lacks the model: auto picks the embedded model (or extractive) and says why.

    An off-topic question with ``min_dense_score`` at 1.0 is refused before generation, so whichever
    fallback is chosen, no slow local generation runs (loading the embedded model still may).
    """
    fake = fake_chat_ollama
    settings = seeded_settings_factory(
        **ollama_llm_overrides(fake.host, model="missing-model", provider="auto"), answer={"min_dense_score": {"ar": 1.0, "en": 1.0}}
    )

    outcome = run_with_limit(lambda: Assistant(settings).ask("What is the best recipe for chocolate cake?"))

    answer = outcome.get("value")
    assert isinstance(answer, Answer), outcome
    assert not answer.model.startswith("ollama:")
    assert answer.model == "extractive" or answer.model.startswith("embedded:")
    assert any("Ollama not used" in note and "missing-model" in note for note in answer.notes), answer.notes
    assert fake.tags_calls >= 1 and fake.chat_requests == []
