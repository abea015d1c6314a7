"""BM25 over normalized, ISRI-stemmed Arabic (bm25s), derived from the Chroma collection.

Chroma holds the texts; this index is rebuilt from them whenever the collection's generation
counter moved, and cached on disk between runs. So the two indexes cannot drift apart: a crash
mid-ingest leaves at worst a stale cache, which the next open detects and rebuilds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bm25s
import numpy as np

from assistant.arabic import lexical_tokens


class LexicalIndex:
    def __init__(self, k1: float, b: float):
        self.k1, self.b = k1, b
        self.ids: list[str] = []
        self._bm25: bm25s.BM25 | None = None
        self._vocab: dict[str, int] = {}

    @classmethod
    def build(cls, ids: list[str], texts: list[str], k1: float, b: float) -> "LexicalIndex":
        index = cls(k1, b)
        index.ids = list(ids)
        if ids:
            index._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
            index._bm25.index([lexical_tokens(t) for t in texts], show_progress=False)
            index._vocab = index._bm25.vocab_dict
        return index

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score), best first; only chunks sharing a term with the query."""
        if self._bm25 is None:
            return []
        tokens = [t for t in lexical_tokens(query) if t in self._vocab]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # --- on-disk cache -----------------------------------------------------------------------
    def save(self, folder: Path, state: dict) -> None:
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps(self.ids), encoding="utf-8")
        (tmp / "state.json").write_text(json.dumps({**state, "k1": self.k1, "b": self.b}), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)

    @classmethod
    def load(cls, folder: Path, state: dict, k1: float, b: float) -> "LexicalIndex | None":
        """The cached index if it was built for exactly this state, else None."""
        try:
            saved = json.loads((folder / "state.json").read_text(encoding="utf-8"))
            if saved != {**state, "k1": k1, "b": b}:
                return None
            index = cls(k1, b)
            index.ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
            if index.ids:
                index._bm25 = bm25s.BM25.load(str(folder / "bm25"), show_progress=False, verbosity=0)
                index._vocab = index._bm25.vocab_dict
            return index
        except (OSError, ValueError, KeyError):
            return None
