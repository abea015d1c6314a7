"""The language model behind answers, chosen by ``llm.provider``.

Every backend is a llama-index ``LLM`` wrapped in ``ChatBackend``, which streams text deltas and
turns transport failures into errors that say what to do. ``extractive`` has no model at all
(``resolve_backend`` returns None and the answer stage quotes sentences instead).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from time import monotonic
from typing import Protocol

from assistant.config import Settings
from assistant.errors import BackendUnavailableError
from assistant.models import TokenUsage


@dataclass
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


YES = ("yes", "نعم")
NO = ("no", "لا")


@dataclass
class YesNoReply:
    """A one-token reply and, when the backend reports them, the most likely first tokens."""

    text: str
    alternatives: list[tuple[str, float]]  # (token, log-probability)
    timings: dict | None = None  # llama.cpp's timings of the call (see ``ChatBackend.stream``)


@dataclass
class Capabilities:
    """What a backend's server offers beyond plain chat (the embedded llama.cpp: all of it)."""

    # One-token reply with its token probabilities (llama.cpp's OpenAI-compatible server; Ollama since 0.12.11).
    yes_no: Callable[[list[Message]], YesNoReply] | None = None
    # The prompt's size in the model's own tokens: messages (chat template applied), or plain text.
    count_tokens: Callable[[list[Message]], int] | None = None
    count_text: Callable[[str], int] | None = None
    # Request options that make the reply follow a GBNF grammar (llama.cpp), given the grammar.
    grammar: Callable[[str], dict] | None = None
    # The server's timings in a response's raw body: llama.cpp's {"prompt_n", "cache_n", "predicted_n", ...}.
    timings: Callable[[object], dict | None] | None = None


class ChatBackend:
    """A chat model that streams; ``name`` says which one (shown with every answer)."""

    def __init__(
        self,
        name: str,
        llm,
        explain: Callable[[Exception], Exception | None],
        capabilities: Capabilities | None = None,
        turn: threading.Lock | None = None,
    ):
        self.name = name
        self._llm = llm
        self._explain = explain  # maps a backend exception to a user-facing error, or None
        self.can = capabilities or Capabilities()
        # Held for each generation when the model serves one request at a time (the embedded one):
        # callers wait here, untimed, so that request_timeout covers only the model's own work.
        self._turn = turn or nullcontext()

    @contextmanager
    def _errors(self):
        try:
            yield
        except Exception as exc:
            explained = self._explain(exc)
            if explained is None:
                raise
            raise explained from None

    def stream(self, messages: list[Message], grammar: str | None = None, usage: TokenUsage | None = None) -> Iterator[str]:
        """The reply's text deltas. ``grammar`` (GBNF) constrains the reply where the backend can;
        ``usage`` collects the tokens read and reused from the prompt cache, where it reports them."""
        options = self.can.grammar(grammar) if grammar and self.can.grammar else {}
        with self._turn, self._errors():
            for response in self._llm.stream_chat(chat_messages(messages), **options):
                if usage is not None and self.can.timings and (timings := self.can.timings(response.raw)):
                    usage.add(timings)
                if response.delta:
                    yield response.delta

    def yes_probability(self, messages: list[Message], usage: TokenUsage | None = None) -> float:
        """P(the reply is "yes"): from the first token's probabilities when the backend reports
        them, else 1.0 or 0.0 from the reply's first word."""
        if self.can.yes_no:
            with self._turn, self._errors():
                reply = self.can.yes_no(messages)
            if usage is not None and reply.timings:
                usage.add(reply.timings)
        else:
            reply = YesNoReply("".join(self.stream(messages, usage=usage)), [])
        yes = sum(math.exp(logprob) for token, logprob in reply.alternatives if token.strip().lower() in YES)
        no = sum(math.exp(logprob) for token, logprob in reply.alternatives if token.strip().lower() in NO)
        if yes + no:
            return yes / (yes + no)
        words = reply.text.strip().lower().split()
        return 1.0 if words and words[0].strip(".!,:") in YES else 0.0

    def prompt_tokens(self, messages: list[Message]) -> int | None:
        """How many tokens the model reads for ``messages`` (None when the backend cannot count)."""
        if self.can.count_tokens is None:
            return None
        with self._errors():
            return self.can.count_tokens(messages)

    def text_tokens(self, text: str) -> int | None:
        """How many tokens ``text`` is to the model (None when the backend cannot count)."""
        if self.can.count_text is None:
            return None
        with self._errors():
            return self.can.count_text(text)

    def complete(self, messages: list[Message], grammar: str | None = None, usage: TokenUsage | None = None) -> str:
        return "".join(self.stream(messages, grammar, usage))


def chat_messages(messages: list[Message]):
    """The messages as llama-index ``ChatMessage``s."""
    from llama_index.core.llms import ChatMessage

    return [ChatMessage(role=m.role, content=m.content) for m in messages]


@dataclass
class ResolvedBackend:
    backend: ChatBackend | None  # None: extractive answers
    label: str
    note: str = ""  # e.g. why auto fell back

    # A named provider is chosen once: it is its own source of backends.
    def current(self) -> "ResolvedBackend":
        return self

    def failed(self) -> None:
        pass


class BackendSource(Protocol):
    """Where each question's backend comes from: fixed, or ``auto``'s current choice."""

    def current(self) -> ResolvedBackend: ...

    def failed(self) -> None:
        """A call to the current backend failed as unreachable."""


def resolve_backend(settings: Settings) -> BackendSource:
    provider = settings.llm.provider
    if provider == "extractive":
        return ResolvedBackend(None, "extractive")
    if provider == "ollama":
        backend = _ollama(settings)
        return ResolvedBackend(backend, backend.name)
    if provider == "embedded":
        from assistant.llm.embedded import make_embedded

        backend = make_embedded(settings.llm)
        return ResolvedBackend(backend, backend.name)
    return AutoBackend(settings)


class AutoBackend:
    """``llm.provider: auto``: Ollama when its server answers and has the model, else the embedded
    model when it is installed, else extractive answers. Looked at again before a question at most
    every ``llm.recheck_s`` seconds, and at the next question after Ollama could not be
    reached, so that a server that comes back or goes away is noticed without a restart. The
    fallback, once made, is kept: the embedded model loads once per process."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._lock = threading.Lock()  # one look at a time; the others wait for its answer
        self._choice: ResolvedBackend | None = None
        self._looked_at = -math.inf
        self._fallback: ResolvedBackend | None = None

    def current(self) -> ResolvedBackend:
        with self._lock:
            every = self._settings.llm.recheck_s
            if self._choice is None or (every > 0 and monotonic() - self._looked_at >= every):
                self._choice = self._look()
                self._looked_at = monotonic()
            return self._choice

    def failed(self) -> None:
        with self._lock:
            self._looked_at = -math.inf

    def _look(self) -> ResolvedBackend:
        from assistant.llm.ollama import probe

        previous = self._choice
        try:
            if previous is not None and previous.label.startswith("ollama:"):
                probe(self._settings.llm.ollama)  # still there: keep the client
                return previous
            backend = _ollama(self._settings)
            return ResolvedBackend(backend, backend.name)
        except BackendUnavailableError as exc:
            note = f"Ollama not used ({exc})"
        fallback = self._fallback = self._fallback or _local_fallback(self._settings)
        return ResolvedBackend(fallback.backend, fallback.label, "; ".join(n for n in (note, fallback.note) if n))


def _local_fallback(settings: Settings) -> ResolvedBackend:
    """The embedded model if installed, else extractive answers (with why)."""
    from assistant.llm.embedded import EmbeddedUnavailable, make_embedded

    try:
        backend = make_embedded(settings.llm)
        return ResolvedBackend(backend, backend.name)
    except EmbeddedUnavailable as exc:
        return ResolvedBackend(None, "extractive", f"embedded model not used ({exc})")


def _ollama(settings: Settings) -> ChatBackend:
    from assistant.llm.ollama import make_ollama

    return make_ollama(settings.llm.ollama, settings.llm.temperature, settings.llm.max_tokens)
