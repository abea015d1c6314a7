"""The language model behind answers, chosen by ``llm.provider``.

Every backend is a llama-index ``LLM`` wrapped in ``ChatBackend``, which streams text deltas and
turns transport failures into errors that say what to do. ``extractive`` has no model at all
(``resolve_backend`` returns None and the answer stage quotes sentences instead).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from assistant.config import Settings
from assistant.errors import BackendUnavailableError


@dataclass
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


class ChatBackend:
    """A chat model that streams; ``name`` says which one (shown with every answer)."""

    def __init__(self, name: str, llm, explain: Callable[[Exception], Exception | None]):
        self.name = name
        self._llm = llm
        self._explain = explain  # maps a backend exception to a user-facing error, or None

    def stream(self, messages: list[Message]) -> Iterator[str]:
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=m.role, content=m.content) for m in messages]
        try:
            for response in self._llm.stream_chat(chat):
                if response.delta:
                    yield response.delta
        except Exception as exc:
            explained = self._explain(exc)
            if explained is None:
                raise
            raise explained from None

    def complete(self, messages: list[Message]) -> str:
        return "".join(self.stream(messages))


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
