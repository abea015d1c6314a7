"""The answer stage's prompt budget, reply grammar, token usage and warm-up, with an in-process fake
model inside the real ``ChatBackend`` (the embedded model's own behaviour is in tests/e2e)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

from assistant.answer import Answerer
from assistant.compress import estimate_tokens
from assistant.config import AnswerSettings
from assistant.llm import Capabilities, ChatBackend, Message, ResolvedBackend, YesNoReply
from assistant.models import SPAN_GAP, Answer, Passage
from assistant.prompts import Prompts

from tests.unit.test_answer_gates import FakeRetriever
from tests.unit.test_compress import KeywordEmbedder

ANSWER = "قال الناطق الرسمي باسم التحالف العقيد مايلز كيغينز إن العمليات مستمرة."
FILLER = " ".join(f"وتحدث السكان في الحي رقم {i} عن انقطاع الكهرباء والماء لساعات طويلة." for i in range(30))
ARTICLE = f"{FILLER} {ANSWER} {FILLER}"
LONG = Passage(
    chunk_id="a#0", doc_id="a", title="مؤتمر", text=ARTICLE, start=100, end=100 + len(ARTICLE), score=1.0, dense_score=0.9
)
TIMINGS = {"prompt_n": 40, "cache_n": 300, "predicted_n": 12}


@dataclass
class GrammarLLM:
    """Replies ``reply`` word by word, each chunk with llama.cpp-like timings on the last one;
    records the prompts and the request options it was given."""

    reply: str
    prompts: list[list] = field(default_factory=list)
    options: list[dict] = field(default_factory=list)

    def stream_chat(self, messages, **options):
        self.prompts.append(messages)
        self.options.append(options)
        words = self.reply.split(" ")
        for i, word in enumerate(words):
            last = i == len(words) - 1
            yield SimpleNamespace(delta=(" " if i else "") + word, raw=SimpleNamespace(timings=TIMINGS if last else None))


def make(reply: str, prompt_tokens: int, count_text=None) -> tuple[Answerer, GrammarLLM, list]:
    llm = GrammarLLM(reply)
    checks: list[list[Message]] = []

    def yes_no(messages):
        checks.append(messages)
        return YesNoReply("yes", [("yes", math.log(0.9)), ("no", math.log(0.1))], {"prompt_n": 300, "cache_n": 99, "predicted_n": 1})

    capabilities = Capabilities(
        yes_no=yes_no, count_text=count_text, grammar=lambda g: {"extra_body": {"grammar": g}}, timings=lambda raw: raw.timings
    )
    backend = ChatBackend("fake", llm, lambda exc: None, capabilities)
    answerer = Answerer(
        FakeRetriever([LONG]), KeywordEmbedder("كيغينز"), ResolvedBackend(backend, "fake"), AnswerSettings(prompt_tokens=prompt_tokens), Prompts()
    )
    return answerer, llm, checks


def ask(answerer: Answerer, question: str) -> tuple[list[str], Answer]:
    items = list(answerer.stream(question))
    return items[:-1], items[-1]


def test_a_long_passage_is_cut_to_the_budget_and_the_citation_points_at_what_was_shown():
    answerer, llm, checks = make(f"{ANSWER} [1]", prompt_tokens=400)
    _, answer = ask(answerer, "من هو الناطق باسم التحالف؟")
    prompt = llm.prompts[0][1].content
    assert ANSWER in prompt and len(prompt) < len(ARTICLE)
    assert checks[0][1].content.split("Question:")[0] == prompt.split("Question:")[0]  # the evidence check saw the same passages
    assert sum(estimate_tokens(m.content) for m in llm.prompts[0]) <= 400
    [citation] = answer.citations
    assert ANSWER in citation.text and citation.spans
    article = "x" * 100 + ARTICLE  # the chunk starts 100 characters into its article
    assert SPAN_GAP.join(article[a:b] for a, b in citation.spans) == citation.text
    assert answer.timings.compress_ms > 0


def test_the_models_own_tokenizer_counts_when_the_backend_has_one():
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return len(text.split())  # a "tokenizer" of words: many more sentences fit than by estimate

    answerer, llm, _ = make(f"{ANSWER} [1]", prompt_tokens=400, count_text=count)
    ask(answerer, "من هو الناطق باسم التحالف؟")
    assert ANSWER in counted
    assert sum(len(m.content.split()) for m in llm.prompts[0]) <= 400 < sum(estimate_tokens(m.content) for m in llm.prompts[0])


def test_no_budget_shows_whole_passages():
    answerer, llm, _ = make(f"{ANSWER} [1]", prompt_tokens=0)
    ask(answerer, "من هو الناطق باسم التحالف؟")
    assert ARTICLE in llm.prompts[0][1].content


def test_the_reply_follows_its_language_grammar_and_its_leading_space_is_not_streamed():
    answerer, llm, _ = make(f" {ANSWER} [1]", prompt_tokens=0)
    deltas, answer = ask(answerer, "من هو الناطق باسم التحالف؟")
    assert llm.options[0] == {"extra_body": {"grammar": Prompts().grammar("answer", "ar")}}
    assert deltas[0] == ANSWER.split(" ")[0] and answer.text.startswith(ANSWER.split(" ")[0])


def test_usage_sums_the_evidence_check_and_the_answer():
    answerer, _, _ = make(f"{ANSWER} [1]", prompt_tokens=0)
    _, answer = ask(answerer, "من هو الناطق باسم التحالف؟")
    assert answer.usage.model_dump() == {"prompt_tokens": 399 + 340, "cached_tokens": 99 + 300, "generated_tokens": 13, "calls": 2}
    assert answer.usage.read_tokens == 300 + 40


def test_warm_up_has_the_model_read_the_system_prompt_every_answer_begins_with():
    answerer, llm, checks = make(f"{ANSWER} [1]", prompt_tokens=0)
    answerer.warm_up()
    ask(answerer, "من هو الناطق باسم التحالف؟")
    warm, first = checks
    assert warm[0].content == first[0].content and warm[0].role == "system"
