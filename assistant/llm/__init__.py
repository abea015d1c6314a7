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

from assistant.config import Settings
from assistant.errors import BackendUnavailableError


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


class ChatBackend:
    """A chat model that streams; ``name`` says which one (shown with every answer)."""

    def __init__(
        self,
        name: str,
        llm,
        explain: Callable[[Exception], Exception | None],
        yes_no: Callable[[list[Message]], YesNoReply] | None = None,
        count_tokens: Callable[[list[Message]], int] | None = None,
        turn: threading.Lock | None = None,
    ):
        self.name = name
        self._llm = llm
        self._explain = explain  # maps a backend exception to a user-facing error, or None
        # Asks for a one-token reply with its token probabilities, where the backend's API can
        # (llama.cpp's OpenAI-compatible server; Ollama since 0.12.11); else the reply is streamed.
        self._yes_no = yes_no
        self._count_tokens = count_tokens  # the prompt's size in the model's own tokens, where the API tells
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

    def stream(self, messages: list[Message]) -> Iterator[str]:
        with self._turn, self._errors():
            for response in self._llm.stream_chat(chat_messages(messages)):
                if response.delta:
                    yield response.delta

    def yes_probability(self, messages: list[Message]) -> float:
        """P(the reply is "yes"): from the first token's probabilities when the backend reports
        them, else 1.0 or 0.0 from the reply's first word."""
        if self._yes_no:
            with self._turn, self._errors():
                reply = self._yes_no(messages)
        else:
            reply = YesNoReply("".join(self.stream(messages)), [])
        yes = sum(math.exp(logprob) for token, logprob in reply.alternatives if token.strip().lower() in YES)
        no = sum(math.exp(logprob) for token, logprob in reply.alternatives if token.strip().lower() in NO)
        if yes + no:
            return yes / (yes + no)
        words = reply.text.strip().lower().split()
        return 1.0 if words and words[0].strip(".!,:") in YES else 0.0

    def prompt_tokens(self, messages: list[Message]) -> int | None:
        """How many tokens the model reads for ``messages`` (None when the backend cannot count)."""
        if self._count_tokens is None:
            return None
        with self._errors():
            return self._count_tokens(messages)

    def complete(self, messages: list[Message]) -> str:
        return "".join(self.stream(messages))


def chat_messages(messages: list[Message]):
    """The messages as llama-index ``ChatMessage``s."""
    from llama_index.core.llms import ChatMessage

    return [ChatMessage(role=m.role, content=m.content) for m in messages]


@dataclass
class ResolvedBackend:
    backend: ChatBackend | None  # None: extractive answers
    label: str
    note: str = ""  # e.g. why auto fell back


def resolve_backend(settings: Settings) -> ResolvedBackend:
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

    # auto
    notes = []
    try:
        backend = _ollama(settings)
        return ResolvedBackend(backend, backend.name)
    except BackendUnavailableError as exc:
        notes.append(f"Ollama not used ({exc})")
    from assistant.llm.embedded import EmbeddedUnavailable, make_embedded

    try:
        backend = make_embedded(settings.llm)
        return ResolvedBackend(backend, backend.name, "; ".join(notes))
    except EmbeddedUnavailable as exc:
        notes.append(f"embedded model not used ({exc})")
    return ResolvedBackend(None, "extractive", "; ".join(notes))


def _ollama(settings: Settings) -> ChatBackend:
    from assistant.llm.ollama import make_ollama

    return make_ollama(settings.llm.ollama, settings.llm.temperature, settings.llm.max_tokens)
