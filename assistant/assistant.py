"""The ``Assistant`` facade: wires the stages from the typed config.

Heavy parts (the embedding model, the Chroma client) are created on first use, so that
``assistant status`` or a config error does not pay for loading a model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from assistant.answer import Answerer, History
from assistant.config import Settings, load_settings
from assistant.embed import Embedder, make_embedder, model_id_for
from assistant.ingest import ingest
from assistant.llm import resolve_backend
from assistant.models import Answer, Article, DocumentInfo, IndexStatus, IngestReport, Passage
from assistant.prompts import Prompts
from assistant.retrieve import Mode, Retriever
from assistant.store import Index


class Assistant:
    def __init__(self, settings: Settings):
        self.settings = settings

    @classmethod
    def from_config(cls, path: str | os.PathLike | None = None, **overrides: Any) -> "Assistant":
        """Load ``config.yaml`` (or ``path`` / $ASSISTANT_CONFIG); ``overrides`` are nested dicts."""
        return cls(load_settings(path, **overrides))

    @cached_property
    def embedder(self) -> Embedder:
        return make_embedder(self.settings.embedding)

    @cached_property
    def index(self) -> Index:
        return Index(self.settings, model_id_for(self.settings.embedding))

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.index, self.embedder, self.settings.retrieval)

    @cached_property
    def answerer(self) -> Answerer:
        prompts = Prompts(self.settings.resolve(self.settings.answer.prompts_dir) if self.settings.answer.prompts_dir else None)
        return Answerer(self.retriever, self.embedder, resolve_backend(self.settings), self.settings.answer, prompts)

    def stream(self, question: str, history: History = None, top_k: int | None = None) -> Iterator[str | Answer]:
        """Text deltas as the model writes them, then the final ``Answer`` (the authoritative text)."""
        return self.answerer.stream(question, history, top_k)

    def ask(self, question: str, history: History = None, top_k: int | None = None) -> Answer:
        """``history``: earlier turns as ``{"role": "user"|"assistant", "content": ...}`` dicts."""
        return self.answerer.ask(question, history, top_k)

    def ingest(self, paths: list[str | Path], progress: bool = False, rebuild: bool = False) -> IngestReport:
        if rebuild:
            self.rebuild()
        return ingest(paths, self.settings, self.index, self.embedder, progress=progress)

    def rebuild(self) -> None:
        """Drop the collection (whatever model built it) and start an empty one."""
        from assistant.store.chroma import connect

        client = connect(self.settings)
        if self.settings.store.collection in [c.name for c in client.list_collections()]:
            client.delete_collection(self.settings.store.collection)
        self.__dict__.pop("index", None)
        self.__dict__.pop("retriever", None)

    def search(self, question: str, top_k: int | None = None, mode: Mode | None = None) -> list[Passage]:
        return self.retriever.search(question, top_k=top_k, mode=mode)

    def remove(self, doc_ids: list[str]) -> dict[str, int]:
        return self.index.remove(doc_ids)

    def status(self) -> IndexStatus:
        return self.index.status()

    def documents(self) -> list[DocumentInfo]:
        return self.index.documents()

    def article(self, doc_id: str) -> Article | None:
        """An indexed article's cleaned text and metadata (what citations' offsets point into)."""
        return self.index.article(doc_id)
