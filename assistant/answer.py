"""Stage 7, answer: question (+ history) → streamed text → ``Answer`` with verified citations.

One code path: ``stream()`` yields text deltas and then the final ``Answer``; ``ask()`` drains it.
Small local models rarely refuse on their own and often answer English questions in Arabic, so
three decisions are made in code, not left to the model:
- refusal, by four gates in turn, each a method that says why it refuses (or None):
  ``similarity_gate`` (no model call when the best passage is far from the question;
  ``answer.min_dense_score``, per language, since cross-lingual similarities run lower),
  ``evidence_gate`` (the model's P(the passages state the answer) < ``answer.min_answerable``;
  the prompt prefix is shared with the answer prompt, so the server's cache makes the answer
  call cheap afterwards), ``model_refusal_gate`` (the model said so itself) and ``support_gate``
  (no shown passage supports the answer; with ``answer.strict_support`` only what the answer
  adds to the question counts);
- language: an answer in the wrong language is translated back by the model. With
  ``answer.through_arabic`` an English question is translated into Arabic by the model, read and
  answered in Arabic, and the cited answer translated back (its markers kept). A question in another
  language (``arabic.other_language``: French, Persian, ...) still gets an answer when the passages
  allow, in Arabic or English by its script, with a note; its refusal says which languages are answered;
- citations: markers are validated and, when missing, attached by matching (see cite.py).
The streamed deltas are the model's raw text; the final ``Answer.text`` is authoritative.
Before the model reads anything, the passages are cut to the answer prompt's token budget
(compress.py), and the model's replies follow a grammar per language where the backend allows
(``prompts/answer.*.gbnf``: the question's script, the other one only in parentheses).
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

import numpy as np

from assistant.arabic import arabic_question_opening, detect_language, lexical_tokens, normalize, other_language
from assistant.chunk import sentence_spans
from assistant.cite import Cited, answer_support, cite, strip_markers, to_citation
from assistant.compress import compress, estimate_tokens, sentence_scores
from assistant.config import AnswerSettings
from assistant.dates import transliterated_months
from assistant.embed import Embedder, off_topic_floor
from assistant.errors import BackendUnavailableError
from assistant.llm import BackendSource, ChatBackend, Message, ResolvedBackend
from assistant.models import Answer, Filters, Passage, Timings, TokenUsage
from assistant.prompts import LANGUAGE_NAMES, Prompts
from assistant.retrieve import Retriever, check_question, clean_question

History = list[dict] | list[tuple[str, str]] | None


def exchange(question: str, answer_text: str) -> list[dict]:
    """One answered exchange as the chat messages that ``history`` takes."""
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer_text}]


def answered_exchange(question: str, answer: Answer) -> list[dict]:
    """An exchange this assistant answered, for the history of the next question: the standalone
    question it was answered as, which carries what a follow-up referred to (so that a third
    question still knows who "he" is when the second one only said "his rank")."""
    return exchange(answer.question or question, answer.text)


@dataclass
class Turn:
    """One question on its way to an ``Answer``: what each step has learned so far."""

    question: str  # standalone: a follow-up is condensed with the history
    language: str  # the question's, and so the answer's: "ar" or "en"
    started: float
    asked_in: str | None = None  # the language the question is in, when neither Arabic nor English
    notes: list[str] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    retrieval_ms: float = 0.0
    compress_ms: float = 0.0
    evidence: float | None = None  # the evidence check's P(yes), once asked
    first_token_ms: float | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)  # the model's tokens, where it reports them
    # The backend that answers this question, the whole way through (auto may switch between questions).
    resolved: ResolvedBackend = field(default_factory=lambda: ResolvedBackend(None, "extractive"))
    # answer.through_arabic: the question in Arabic, as the model reads and answers it.
    arabic_question: str | None = None

    @property
    def llm(self) -> ChatBackend | None:
        return self.resolved.backend

    @property
    def reader_question(self) -> str:
        """The question as the model reads it."""
        return self.arabic_question or self.question

    @property
    def reader_language(self) -> str:
        """The language the model reads and answers in."""
        return "ar" if self.arabic_question else self.language


class Answerer:
    def __init__(self, retriever: Retriever, embedder: Embedder, backends: BackendSource, settings: AnswerSettings, prompts: Prompts):
        self.retriever = retriever
        self.embedder = embedder
        self.backends = backends  # each question takes the current backend (auto: looked at again now and then)
        self.settings = settings
        self.prompts = prompts

    @property
    def resolved(self) -> ResolvedBackend:
        """The backend that would answer a question asked now."""
        return self.backends.current()

    @property
    def llm(self) -> ChatBackend | None:
        return self.resolved.backend

    # --- the one code path --------------------------------------------------------------------
    def stream(
        self, question: str, history: History = None, top_k: int | None = None, filters: Filters | None = None
    ) -> Iterator[str | Answer]:
        try:
            yield from self._stream(question, history, top_k, filters)
        except BackendUnavailableError:
            self.backends.failed()  # auto looks for another backend at the next question
            raise

    def _stream(self, question: str, history: History, top_k: int | None, filters: Filters | None) -> Iterator[str | Answer]:
        turn = self.start(question, history)
        turn.passages = self.passages(turn.question, turn.language, top_k, filters, turn.llm)
        turn.retrieval_ms = _ms(turn.started)

        refusal = self.filters_gate(turn.passages, filters) or self.similarity_gate(turn.passages, turn.language)
        if refusal is None and turn.llm is not None:
            self.compress(turn)
            self.through_arabic(turn)
            if self.settings.min_answerable > 0:
                refusal = self.evidence_gate(self.check_evidence(turn))
        if refusal is not None:  # refused before any text was generated: the refusal is the text
            yield self.refusal_text(turn)
            yield self.refuse(turn, refusal)
            return

        if turn.llm is None:
            text, citations = self.extractive(turn.question, turn.passages, turn.language)
            yield text
            yield self.finish(turn, text, citations)
            return

        raw = yield from self.generate(turn)
        refusal = self.model_refusal_gate(raw, turn.reader_language)
        if refusal is not None:
            yield self.refuse(turn, refusal)
            return
        if not turn.arabic_question:
            raw = self.in_question_language(turn, raw)
        cited = self.cite(turn, raw)
        refusal = self.support_gate(cited)
        if refusal is not None:
            yield self.refuse(turn, refusal)
            return
        if cited.dropped:
            turn.notes.append(f"removed unsupported or invalid citation markers: {sorted(set(cited.dropped))}")
        text = cited.text
        if turn.arabic_question and detect_language(strip_markers(text)) != turn.language:
            text = yield from self.translated_answer(turn, cited)
        yield self.finish(turn, text, cited.citations)

    def ask(
        self, question: str, history: History = None, top_k: int | None = None, filters: Filters | None = None
    ) -> Answer:
        for item in self.stream(question, history, top_k, filters):
            if isinstance(item, Answer):
                return item
        raise RuntimeError("the answer stream ended without an Answer")  # a bug, not a user error

    def warm_up(self) -> None:
        """Load the model and have it read the system prompt that begins every answer prompt: it
        stays in the model server's prompt cache, so the first question reads only what follows."""
        llm = self.llm
        if llm is not None:
            system = self.prompts.render("answer_system", refusal=self.refusal("ar"))
            llm.yes_probability([Message("system", system), Message("user", "?")])

    # --- steps --------------------------------------------------------------------------------
    def start(self, question: str, history: History) -> Turn:
        """The checked question, its language, and the standalone form of a follow-up."""
        started = time.perf_counter()
        question = check_question(question, self.retriever.settings.max_question_chars)
        resolved = self.backends.current()
        standalone = self.condense(question, _history_messages(history), resolved.backend) if history else question
        notes = [resolved.note] if resolved.note else []
        language, asked_in = detect_language(question), other_language(question)
        if asked_in:  # still answered from the passages, in the supported language closest in script
            notes.append(f"the question looks {asked_in}; the assistant answers in Arabic and English, here in {LANGUAGE_NAMES[language]}")
        return Turn(question=standalone, language=language, started=started, notes=notes, asked_in=asked_in, resolved=resolved)

    def compress(self, turn: Turn) -> None:
        """The passages cut to the sentences that bear on the question, so that the whole answer
        prompt fits ``answer.prompt_tokens`` (counted by the model's tokenizer where the backend
        has one, else estimated; 0 shows whole passages)."""
        if not self.settings.prompt_tokens or not turn.passages:
            return
        started = time.perf_counter()
        count = turn.llm.text_tokens if turn.llm.can.count_text else estimate_tokens
        # The prompt without passages. It runs before answer.through_arabic translates the question,
        # so the budget is the question's as asked.
        bare = Turn(question=turn.question, language=turn.language, started=started)
        fixed = sum(count(m.content) for m in self._messages(bare, self._answer_instruction(turn.language)))
        budget = self.settings.prompt_tokens - fixed
        turn.passages = compress(
            turn.question, turn.passages, self.embedder, budget, count, lambda p: self._passage(0, p, ""),
            stored=self.retriever.stored_sentences, as_indexed=self.retriever.as_indexed,
        )
        turn.compress_ms = _ms(started)

    def check_evidence(self, turn: Turn) -> float:
        """The model's P(the passages state the answer), kept in the turn and its notes."""
        turn.evidence = turn.llm.yes_probability(self._messages(turn, self.prompts.text("verify_instruction")), turn.usage)
        turn.notes.append(f"evidence check: P(the passages answer the question) = {turn.evidence:.2f}")
        return turn.evidence

    def generate(self, turn: Turn) -> Generator[str, None, str]:
        """Stream the model's answer, in the reply format of its language (``prompts/answer.*.gbnf``,
        where the backend can follow one); returns its whole text."""
        pieces: list[str] = []
        messages = self._messages(turn, self._answer_instruction(turn.reader_language))
        for delta in turn.llm.stream(messages, self.prompts.grammar("answer", turn.reader_language), turn.usage):
            if turn.first_token_ms is None:
                turn.first_token_ms = _ms(turn.started)
            if not pieces:
                delta = delta.lstrip()  # the reply format may begin with a space
                if not delta:
                    continue
            pieces.append(delta)
            yield delta
        return "".join(pieces).strip()

    def through_arabic(self, turn: Turn) -> None:
        """answer.through_arabic: the model translates a question that is not in Arabic, with the
        (compressed) passages in view so that it writes their names, and opening with the Arabic
        for its question word (prompts/question.ar.gbnf); the evidence check and the answer then
        read the Arabic question. The passages and what comes before the question are the same
        prompt prefix as theirs, so the model server reads them once."""
        if not self.settings.through_arabic or turn.language == "ar" or turn.llm is None:
            return
        grammar = self.prompts.grammar("question", "ar").replace("{opening}", arabic_question_opening(turn.question))
        messages = self._messages(turn, self.prompts.text("translate_question"), reader_language="ar")
        reply = turn.llm.complete(messages, grammar, turn.usage).strip()
        arabic = reply.splitlines()[0].strip() if reply else ""
        if arabic and detect_language(arabic) == "ar":
            turn.arabic_question = arabic
            turn.notes.append(f"read and answered in Arabic, then translated: {arabic}")
        else:
            turn.notes.append("the question could not be translated into Arabic; read as asked")

    def translated_answer(self, turn: Turn, cited: Cited) -> Generator[str, None, str]:
        """The cited Arabic answer in the question's language, streamed after a blank line (the
        deltas so far were the Arabic); its markers are the Arabic answer's, whatever the model
        dropped or invented. Untranslatable: the Arabic answer, with a note."""
        arabic = transliterated_months(cited.text)
        prompt = self.prompts.render("translate_cited_answer", answer=arabic)
        pieces: list[str] = []
        yield "\n\n"
        for delta in turn.llm.stream([Message("user", prompt)], self.prompts.grammar("answer", turn.language), turn.usage):
            if not pieces and not (delta := delta.lstrip()):
                continue
            pieces.append(delta)
            yield delta
        translated = "".join(pieces).strip()
        turn.notes.append(f"the answer in Arabic: {cited.text}")
        if not translated or detect_language(strip_markers(translated)) != turn.language:
            turn.notes.append(f"the Arabic answer could not be translated into {LANGUAGE_NAMES[turn.language]}")
            return cited.text
        return with_markers(copied_asides(translated, arabic), [c.n for c in cited.citations])

    def in_question_language(self, turn: Turn, raw: str) -> str:
        """An answer in the other language, translated back by the model."""
        said = detect_language(strip_markers(raw)) if raw else turn.language
        if said == turn.language:
            return raw
        turn.notes.append(f"the model answered in {LANGUAGE_NAMES[said]}; translated")
        return self._translate_answer(turn.llm, raw, turn.language, turn.usage)

    def cite(self, turn: Turn, raw: str) -> Cited:
        """Markers checked against the passages shown; missing ones attached by matching. A number
        in neither the question nor the cited passage leaves a sentence unsupported. With
        ``strict_support`` only what the answer adds to the question counts as support."""
        asked = turn.reader_question if self.settings.strict_support else ""
        support = lambda sentence, p: answer_support(sentence, p, asked, question=turn.reader_question)  # noqa: E731
        return cite(raw, turn.passages, support, self.settings.min_support)

    def refusal(self, language: str) -> str:
        return self.prompts.localized("refusal", language)

    def refusal_text(self, turn: Turn) -> str:
        """The refusal the user reads; for a question in another language it also says which
        languages the assistant answers in (the model's prompt keeps the plain sentence)."""
        refusal = self.refusal(turn.language)
        return f"{refusal} {self.prompts.localized('languages', turn.language)}" if turn.asked_in else refusal

    def refuse(self, turn: Turn, reason: str) -> Answer:
        turn.notes.append(reason)
        return self.finish(turn, self.refusal_text(turn), refused=True)

    def finish(self, turn: Turn, text: str, citations=(), refused: bool = False) -> Answer:
        return Answer(
            text=text,
            language=turn.language,
            citations=list(citations),
            refused=refused,
            timings=Timings(
                retrieval_ms=turn.retrieval_ms, compress_ms=turn.compress_ms, first_token_ms=turn.first_token_ms, total_ms=_ms(turn.started)
            ),
            model=turn.resolved.label,
            notes=turn.notes,
            question=turn.question,
            evidence=turn.evidence,
            usage=turn.usage if turn.usage.calls else None,
        )

    # --- refusal gates: each returns why it refuses, or None to go on ---------------------------
    @staticmethod
    def filters_gate(passages: list[Passage], filters: Filters | None) -> str | None:
        """No article matches the outlet or date filters."""
        if passages or filters is None or not filters.active:
            return None
        return f"refused: no indexed article matches the filters ({filters.describe()})"

    def similarity_gate(self, passages: list[Passage], language: str) -> str | None:
        """Off-topic: the best passage is far from the question (no model call at all)."""
        best = max((p.dense_score or 0.0 for p in passages), default=0.0)
        floors = self.settings.min_dense_score
        floor = floors[language] if floors is not None else off_topic_floor(self.embedder.model_id, language)
        return f"refused: the best passage's similarity {best:.3f} is below {floor:.3f}" if best < floor else None

    def evidence_gate(self, evidence: float) -> str | None:
        """The model's own P(the passages state the answer), asked before it answers."""
        bound = self.settings.min_answerable
        return f"refused: the model's P(passages answer the question) = {evidence:.2f} < {bound:.2f}" if evidence < bound else None

    def model_refusal_gate(self, raw: str, language: str) -> str | None:
        """The model said (in either language) that the passages do not answer."""
        return "the model said the passages do not answer the question" if self._is_refusal(raw, language) else None

    @staticmethod
    def support_gate(cited: Cited) -> str | None:
        """No shown passage supports any sentence of the answer."""
        return "no passage supports the generated answer; refused" if not cited.citations else None

    # --- pieces -------------------------------------------------------------------------------
    def condense(self, question: str, history: list[Message], llm: ChatBackend | None) -> str:
        """A standalone question: the model's rewrite, or, when it only repeats the question (the
        1.5B model often does), the previous question followed by this one. Either stays within
        ``retrieval.max_question_chars``: the user typed only this question, which passed the check."""
        limit = self.retriever.settings.max_question_chars
        turns = [m for m in history if m.role in ("user", "assistant")][-2 * self.settings.history_turns :]
        previous = [m.content for m in turns if m.role == "user"]
        with_context = _with_context(previous[-1], question, limit) if previous else question
        if not turns or llm is None:
            return with_context
        transcript = "\n".join(f"{m.role}: {strip_markers(m.content)}" for m in turns)
        rewritten = llm.complete([Message("user", self.prompts.render("condense", history=transcript, question=question))])
        lines = rewritten.strip().strip('"«»').splitlines()
        rewritten = lines[0].strip() if lines else ""
        unchanged = _norm_words(rewritten) == _norm_words(question)
        return with_context if len(rewritten) < 3 or len(rewritten) > limit or unchanged else rewritten

    def passages(
        self, question: str, language: str, top_k: int | None = None, filters: Filters | None = None, llm: ChatBackend | None = None
    ) -> list[Passage]:
        """The passages shown to the model for a standalone question (``llm`` may translate it for BM25)."""
        lexical_query = self.arabic_query(question, language, llm)
        return self.retriever.search(question, top_k=top_k or self.settings.passages, lexical_query=lexical_query, filters=filters)

    def answer_messages(self, question: str, filters: Filters | None = None) -> list[Message]:
        """The answer prompt for a standalone question, as the model gets it (passages compressed)."""
        language = detect_language(question)
        resolved = self.backends.current()
        passages = self.passages(question, language, filters=filters, llm=resolved.backend)
        turn = Turn(question=question, language=language, started=time.perf_counter(), passages=passages, resolved=resolved)
        if turn.llm is not None:
            self.compress(turn)
        return self._messages(turn, self._answer_instruction(language))

    def arabic_query(self, question: str, language: str, llm: ChatBackend | None, force: bool = False) -> str | None:
        """For BM25: an Arabic rendering of a non-Arabic question by ``llm`` (when enabled, or forced)."""
        if language == "ar" or not (self.settings.translate_queries or force) or llm is None:
            return None
        translated = llm.complete([Message("user", self.prompts.render("translate_query", question=question))])
        return translated.strip() or None

    def _messages(self, turn: Turn, instruction: str, reader_language: str | None = None) -> list[Message]:
        """System prompt, numbered passages and question, then the instruction. Everything before
        the instruction is identical for the evidence check and the answer, so the model server
        reuses its prompt cache for the second call (and up to the question, for the translation
        of answer.through_arabic before them: ``reader_language`` is then the one they will read)."""
        shown = "\n\n".join(self._passage(i, p, p.text) for i, p in enumerate(turn.passages, start=1))
        user = self.prompts.render("answer_user", passages=shown, question=turn.reader_question, instruction=instruction)
        # The refusal sentence sits in the system prompt: placed in the final instruction, it made
        # the small model refuse most answerable questions (docs/experiments.md).
        system = self.prompts.render("answer_system", refusal=self.refusal(reader_language or turn.reader_language))
        return [Message("system", system), Message("user", user)]

    def _passage(self, n: int, p: Passage, text: str) -> str:
        return self.prompts.render("passage", n=str(n), title=p.title or p.doc_id, date=f" ({p.date})" if p.date else "", text=text)

    def _answer_instruction(self, language: str) -> str:
        return self.prompts.render("answer_instruction", language_name=LANGUAGE_NAMES[language])

    def _translate_answer(self, llm: ChatBackend, answer: str, language: str, usage: TokenUsage | None = None) -> str:
        prompt = self.prompts.render("translate_answer", answer=answer, language_name=LANGUAGE_NAMES[language])
        translated = llm.complete([Message("user", prompt)], self.prompts.grammar("answer", language), usage).strip()
        return translated if translated and detect_language(strip_markers(translated)) == language else answer

    def _is_refusal(self, text: str, language: str) -> bool:
        if not text:
            return True
        said = set(lexical_tokens(strip_markers(text)))
        refusal_terms = [set(lexical_tokens(self.refusal(lang))) for lang in LANGUAGE_NAMES]
        # The refusal sentence (in either language) makes up most of what the model said.
        return any(terms and len(said & terms) / len(terms) >= 0.6 and len(said) <= 2 * len(terms) for terms in refusal_terms)

    def extractive(self, question: str, passages: list[Passage], language: str) -> tuple[str, list]:
        """No model: quote the sentences closest to the question, with their passage numbers."""
        candidates: list[tuple[int, str]] = []
        for n, p in enumerate(passages, start=1):
            for span in sentence_spans(p.text, max_chars=10_000):
                candidates.append((n, p.text[span.start : span.end]))
        scores = sentence_scores(question, [s for _, s in candidates], self.embedder)
        best = [candidates[i] for i in np.argsort(-scores)[: self.settings.extractive_sentences]]
        quoted = " ".join(f"«{s.rstrip('.')}» [{n}]" for n, s in best)
        text = f"{self.prompts.localized('extractive', language)} {quoted}"
        numbers = list(dict.fromkeys(n for n, _ in best))
        return text, [to_citation(n, passages[n - 1]) for n in numbers]


def with_markers(text: str, numbers: list[int]) -> str:
    """``text`` citing exactly ``numbers``: markers of other numbers removed, missing ones added
    before the final full stop."""
    keep = set(numbers)
    text = re.sub(r"\s*\[(\d+)\]", lambda m: m.group(0) if int(m.group(1)) in keep else "", text).strip()
    missing = "".join(f"[{n}]" for n in sorted(keep) if f"[{n}]" not in text)
    if not missing:
        return text
    end = len(text) - 1 if text.endswith((".", "!", "?")) else len(text)
    return f"{text[:end].rstrip()} {missing}{text[end:]}"


_ARABIC_ASIDE = re.compile(r"\s*\(([^()A-Za-z]*[\u0600-\u06FF][^()A-Za-z]*)\)")


def copied_asides(translated: str, arabic: str) -> str:
    """``translated`` keeping only the Arabic in parentheses that ``arabic`` holds word for word:
    a name the translator copied, not one it made up."""
    source = f" {' '.join(_norm_words(arabic))} "
    return _ARABIC_ASIDE.sub(lambda m: m.group(0) if f" {' '.join(_norm_words(m.group(1)))} " in source else "", translated)


def _with_context(previous: str, question: str, limit: int) -> str:
    """The previous question, then this one, in at most ``limit`` characters: the previous one is
    cut at a word to make room (its start usually names what the follow-up refers to)."""
    previous = clean_question(previous)
    room = limit - len(question) - 1
    if len(previous) > room:
        cut = previous[: max(room, 0) + 1]
        previous = cut.rsplit(" ", 1)[0] if " " in cut else cut[:-1]
    return f"{previous} {question}".strip()


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

