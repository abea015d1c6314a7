"""Stage 7, answer: question (+ history) → streamed text → ``Answer`` with verified citations.

One code path: ``stream()`` yields text deltas and then the final ``Answer``; ``ask()`` drains it.
Small local models rarely refuse on their own and often answer English questions in Arabic, so
three decisions are made in code, not left to the model:
- refusal: no LLM call when the best passage is far from the question (``answer.min_dense_score``,
  per language: cross-lingual similarities run lower); then an evidence check asks the model
  whether the passages state the answer and refuses when P(yes) < ``answer.min_answerable``
  (the prompt prefix is shared with the answer prompt, so the model server's cache makes the
  answer call cheap afterwards); finally an answer that no shown passage supports is refused
  (with ``answer.strict_support``, only what the answer adds to the question counts as support);
- language: an answer in the wrong language is translated back by the model;
- citations: markers are validated and, when missing, attached by matching (see cite.py).
The streamed deltas are the model's raw text; the final ``Answer.text`` is authoritative.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import numpy as np

from assistant.arabic import detect_language, lexical_tokens, normalize
from assistant.chunk import sentence_spans
from assistant.cite import answer_support, cite, strip_markers, to_citation
from assistant.config import AnswerSettings
from assistant.embed import Embedder
from assistant.llm import ChatBackend, Message, ResolvedBackend
from assistant.models import Answer, Passage, Timings
from assistant.prompts import LANGUAGE_NAMES, Prompts
from assistant.retrieve import Retriever, check_question

History = list[dict] | list[tuple[str, str]] | None


class Answerer:
    def __init__(self, retriever: Retriever, embedder: Embedder, backend: ResolvedBackend, settings: AnswerSettings, prompts: Prompts):
        self.retriever = retriever
        self.embedder = embedder
        self.resolved = backend
        self.settings = settings
        self.prompts = prompts

    @property
    def llm(self) -> ChatBackend | None:
        return self.resolved.backend

    # --- the one code path --------------------------------------------------------------------
    def stream(self, question: str, history: History = None, top_k: int | None = None) -> Iterator[str | Answer]:
        started = time.perf_counter()
        question = check_question(question, self.retriever.settings.max_question_chars)
        language = detect_language(question)
        notes = [self.resolved.note] if self.resolved.note else []
        standalone = self.condense(question, _history_messages(history)) if history else question

        passages = self.passages(standalone, language, top_k)
        retrieval_ms = _ms(started)

        evidence = None  # the evidence check's P(yes), once asked

        def finish(text: str, citations=(), refused=False, first_token_ms=None) -> Answer:
            return Answer(
                text=text,
                language=language,
                citations=list(citations),
                refused=refused,
                timings=Timings(retrieval_ms=retrieval_ms, first_token_ms=first_token_ms, total_ms=_ms(started)),
                model=self.resolved.label,
                notes=notes,
                question=standalone,
                evidence=evidence,
            )

        refusal = self.prompts.localized("refusal", language)
        best = max((p.dense_score or 0.0 for p in passages), default=0.0)
        floor = self.settings.min_dense_score[language]
        if best < floor:
            notes.append(f"refused: the best passage's similarity {best:.3f} is below {floor:.3f}")
            yield refusal
            yield finish(refusal, refused=True)
            return

        if self.llm is None:
            text, citations = self.extractive(standalone, passages, language)
            yield text
            yield finish(text, citations)
            return

        if self.settings.min_answerable > 0:
            evidence = self.llm.yes_probability(self._messages(standalone, passages, self.prompts.text("verify_instruction"), language))
            notes.append(f"evidence check: P(the passages answer the question) = {evidence:.2f}")
            if evidence < self.settings.min_answerable:
                notes.append(f"refused: the model's P(passages answer the question) = {evidence:.2f} < {self.settings.min_answerable:.2f}")
                yield refusal
                yield finish(refusal, refused=True)
                return

        first_token_ms = None
        pieces: list[str] = []
        for delta in self.llm.stream(self._messages(standalone, passages, self._answer_instruction(language), language)):
            if first_token_ms is None:
                first_token_ms = _ms(started)
            pieces.append(delta)
            yield delta
        raw = "".join(pieces).strip()

        if self._is_refusal(raw, language):
            notes.append("the model said the passages do not answer the question")
            yield finish(refusal, refused=True, first_token_ms=first_token_ms)
            return
        if raw and detect_language(strip_markers(raw)) != language:
            notes.append(f"the model answered in {LANGUAGE_NAMES[detect_language(strip_markers(raw))]}; translated")
            raw = self._translate_answer(raw, language)
        # Strict: what the answer adds to the question must be in the passage it cites.
        asked = standalone if self.settings.strict_support else ""
        cited = cite(raw, passages, lambda sentence, p: answer_support(sentence, p, asked), self.settings.min_support)
        if not cited.citations:
            notes.append("no passage supports the generated answer; refused")
            yield finish(refusal, refused=True, first_token_ms=first_token_ms)
            return
        if cited.dropped:
            notes.append(f"removed unsupported or invalid citation markers: {sorted(set(cited.dropped))}")
        yield finish(cited.text, cited.citations, first_token_ms=first_token_ms)

    def ask(self, question: str, history: History = None, top_k: int | None = None) -> Answer:
        for item in self.stream(question, history, top_k):
            if isinstance(item, Answer):
                return item
        raise RuntimeError("the answer stream ended without an Answer")  # a bug, not a user error

    # --- pieces -------------------------------------------------------------------------------
    def condense(self, question: str, history: list[Message]) -> str:
        """A standalone question: the model's rewrite, or, when it only repeats the question (the
        1.5B model often does), the previous question followed by this one."""
        turns = [m for m in history if m.role in ("user", "assistant")][-2 * self.settings.history_turns :]
        previous = [m.content for m in turns if m.role == "user"]
        with_context = f"{previous[-1]} {question}" if previous else question
        if not turns or self.llm is None:
            return with_context
        transcript = "\n".join(f"{m.role}: {strip_markers(m.content)}" for m in turns)
        rewritten = self.llm.complete([Message("user", self.prompts.render("condense", history=transcript, question=question))])
        lines = rewritten.strip().strip('"«»').splitlines()
        rewritten = lines[0].strip() if lines else ""
        unchanged = _norm_words(rewritten) == _norm_words(question)
        return with_context if len(rewritten) < 3 or unchanged else rewritten

    def passages(self, question: str, language: str, top_k: int | None = None) -> list[Passage]:
        """The passages shown to the model for a standalone question."""
        return self.retriever.search(question, top_k=top_k or self.settings.passages, lexical_query=self.arabic_query(question, language))

    def answer_messages(self, question: str) -> list[Message]:
        """The answer prompt for a standalone question, as the model gets it (to measure its size)."""
        language = detect_language(question)
        return self._messages(question, self.passages(question, language), self._answer_instruction(language), language)

    def arabic_query(self, question: str, language: str, force: bool = False) -> str | None:
        """For BM25: an Arabic rendering of a non-Arabic question (when enabled, or forced)."""
        if language == "ar" or not (self.settings.translate_queries or force) or self.llm is None:
            return None
        translated = self.llm.complete([Message("user", self.prompts.render("translate_query", question=question))])
        return translated.strip() or None

    def _messages(self, question: str, passages: list[Passage], instruction: str, language: str) -> list[Message]:
        """System prompt, numbered passages and question, then the instruction. Everything before
        the instruction is identical for the evidence check and the answer, so the model server
        reuses its prompt cache for the second call."""
        shown = "\n\n".join(
            self.prompts.render("passage", n=str(i), title=p.title or p.doc_id, date=f" ({p.date})" if p.date else "", text=p.text)
            for i, p in enumerate(passages, start=1)
        )
        user = self.prompts.render("answer_user", passages=shown, question=question, instruction=instruction)
        # The refusal sentence sits in the system prompt: placed in the final instruction, it made
        # the 1.5B model refuse 60% of answerable questions on the eval set.
        system = self.prompts.render("answer_system", refusal=self.prompts.localized("refusal", language))
        return [Message("system", system), Message("user", user)]

    def _answer_instruction(self, language: str) -> str:
        return self.prompts.render("answer_instruction", language_name=LANGUAGE_NAMES[language])

    def _translate_answer(self, answer: str, language: str) -> str:
        prompt = self.prompts.render("translate_answer", answer=answer, language_name=LANGUAGE_NAMES[language])
        translated = self.llm.complete([Message("user", prompt)]).strip()
        return translated if translated and detect_language(strip_markers(translated)) == language else answer

    def _is_refusal(self, text: str, language: str) -> bool:
        if not text:
            return True
        said = set(lexical_tokens(strip_markers(text)))
        refusal_terms = [set(lexical_tokens(self.prompts.localized("refusal", lang))) for lang in ("ar", "en")]
        # The refusal sentence (in either language) makes up most of what the model said.
        return any(terms and len(said & terms) / len(terms) >= 0.6 and len(said) <= 2 * len(terms) for terms in refusal_terms)

    def extractive(self, question: str, passages: list[Passage], language: str) -> tuple[str, list]:
        """No model: quote the sentences closest to the question, with their passage numbers."""
        candidates: list[tuple[int, str]] = []
        for n, p in enumerate(passages, start=1):
            for span in sentence_spans(p.text, max_chars=10_000):
                candidates.append((n, p.text[span.start : span.end]))
        q = self.embedder.embed_queries([question])[0]
        vectors = self.embedder.embed_passages([s for _, s in candidates])
        terms = set(lexical_tokens(question))
        scores = vectors @ q + np.array([0.1 * len(terms & set(lexical_tokens(s))) / max(len(terms), 1) for _, s in candidates])
        best = [candidates[i] for i in np.argsort(-scores)[: self.settings.extractive_sentences]]
        quoted = " ".join(f"«{s.rstrip('.')}» [{n}]" for n, s in best)
        text = f"{self.prompts.localized('extractive', language)} {quoted}"
        numbers = list(dict.fromkeys(n for n, _ in best))
        return text, [to_citation(n, passages[n - 1]) for n in numbers]


def _norm_words(text: str) -> list[str]:
    return re.findall(r"\w+", normalize(text).lower())


def _history_messages(history: History) -> list[Message]:
    messages = []
    for turn in history or []:
        if isinstance(turn, dict):
            messages.append(Message(str(turn.get("role", "user")), str(turn.get("content", ""))))
        else:
            role, content = turn
            messages.append(Message(role, content))
    return messages


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000

