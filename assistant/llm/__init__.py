"""The language model behind answers, chosen by ``llm.provider``.

Every backend is a llama-index ``LLM`` wrapped in ``ChatBackend``, which streams text deltas and
turns transport failures into errors that say what to do. ``extractive`` has no model at all
(``resolve_backend`` returns None and the answer stage quotes sentences instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from assistant.config import Settings
from assistant.errors import BackendUnavailableError


@dataclass
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


YES = ("yes", "نعم")


class ChatBackend:
    """A chat model that streams; ``name`` says which one (shown with every answer)."""

    def __init__(
        self,
        name: str,
        llm,
        explain: Callable[[Exception], Exception | None],
        yes_no_kwargs: dict | None = None,
    ):
        self.name = name
        self._llm = llm
        self._explain = explain  # maps a backend exception to a user-facing error, or None
        # Extra request arguments for a one-token yes/no reply with token probabilities, when the
        # backend supports them (the OpenAI-compatible llama.cpp server does).
        self._yes_no_kwargs = yes_no_kwargs

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
        with self._errors():
            for response in self._llm.stream_chat(_chat(messages)):
                if response.delta:
                    yield response.delta

    def yes_probability(self, messages: list[Message]) -> float:
        """P(the reply is "yes"): from the first token's probabilities when the backend reports
        them, else 1.0 or 0.0 from the reply's first word."""
        with self._errors():
            if self._yes_no_kwargs is not None:
                response = self._llm.chat(_chat(messages), **self._yes_no_kwargs)
                if response.logprobs:
                    first = response.logprobs[0]
                    yes = sum(math.exp(p.logprob) for p in first if p.token.strip().lower() in YES)
                    no = sum(math.exp(p.logprob) for p in first if p.token.strip().lower() in ("no", "لا"))
                    return yes / (yes + no) if yes + no else 0.0
                reply = response.message.content or ""
            else:
                reply = "".join(self.stream(messages))
        words = reply.strip().lower().split()
        return 1.0 if words and words[0].strip(".!,:") in YES else 0.0

    def complete(self, messages: list[Message]) -> str:
        return "".join(self.stream(messages))


def _chat(messages: list[Message]):
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
        from assistant.llm.ollama import make_ollama

        backend = make_ollama(settings.llm)
        return ResolvedBackend(backend, backend.name)
    if provider == "embedded":
        from assistant.llm.embedded import make_embedded

        backend = make_embedded(settings.llm)
        return ResolvedBackend(backend, backend.name)

    # auto
    from assistant.llm.ollama import make_ollama

    notes = []
    try:
        backend = make_ollama(settings.llm)
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
