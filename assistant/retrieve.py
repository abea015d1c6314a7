"""Stage 6, retrieve: question → passages, by dense search, BM25, or both fused.

Hybrid fuses with weighted reciprocal-rank fusion, and uses BM25 only when the question contains
Arabic script: BM25 over Arabic text cannot match an English question and fusing it in hurts.
Near-duplicate passages (the same paragraph syndicated by two outlets) are dropped after fusion.
"""

from __future__ import annotations

import re
from typing import Literal

from assistant.arabic import has_arabic, normalize
from assistant.config import RetrievalSettings
from assistant.embed import Embedder
from assistant.errors import InputError
from assistant.models import Passage
from assistant.store import Index

Mode = Literal["dense", "bm25", "hybrid"]
_WORDS = re.compile(r"\w+")


def check_question(question: str, max_chars: int) -> str:
    question = question.strip()
    if not question:
        raise InputError("the question is empty: type a question about the indexed articles")
    if len(question) > max_chars:
        raise InputError(
            f"the question is {len(question)} characters long; the limit is {max_chars} "
            "(retrieval.max_question_chars). Ask a shorter question."
        )
    return question


def rrf(rankings: list[tuple[list[tuple[str, float]], float]], k: int) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: sum of weight / (k + rank) over the rankings."""
    fused: dict[str, float] = {}
    for ranking, weight in rankings:
        for rank, (item, _score) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


class Retriever:
    def __init__(self, index: Index, embedder: Embedder, settings: RetrievalSettings):
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def search(self, question: str, top_k: int | None = None, mode: Mode | None = None) -> list[Passage]:
        s = self.settings
        question = check_question(question, s.max_question_chars)
        top_k = top_k or s.top_k
        mode = mode or s.mode
        candidates = max(s.candidates, top_k)

        dense: list[tuple[str, float]] = []
        lexical: list[tuple[str, float]] = []
        if mode in ("dense", "hybrid"):
            dense = self.index.dense_search(self.embedder.embed_queries([question])[0], candidates)
        if mode == "bm25" or (mode == "hybrid" and has_arabic(question)):
            lexical = self.index.lexical_search(question, candidates)

        fused = rrf([(dense, s.dense_weight), (lexical, s.bm25_weight)], s.rrf_k)
        order = sorted(fused, key=lambda cid: -fused[cid])
        dense_at = {cid: (rank, score) for rank, (cid, score) in enumerate(dense, start=1)}
        lexical_at = {cid: (rank, score) for rank, (cid, score) in enumerate(lexical, start=1)}

        passages: list[Passage] = []
        kept_words: list[set[str]] = []
        # Fetch a few more than needed: some may be dropped as near-duplicates.
        window = order[: top_k * 3]
        stored = self.index.fetch(window)
        for cid in window:
            chunk = stored.get(cid)
            if chunk is None:
                continue
            words = set(_WORDS.findall(normalize(chunk.text)))
            if any(_jaccard(words, other) >= s.dedupe_jaccard for other in kept_words):
                continue
            kept_words.append(words)
            meta = chunk.meta
            d_rank, d_score = dense_at.get(cid, (None, None))
            b_rank, b_score = lexical_at.get(cid, (None, None))
            passages.append(
                Passage(
                    chunk_id=cid,
                    doc_id=meta["doc_id"],
                    title=meta.get("title", ""),
                    source=meta.get("source", ""),
                    url=meta.get("url", ""),
                    date=meta.get("date", ""),
                    text=chunk.text,
                    start=int(meta["start"]),
                    end=int(meta["end"]),
                    score=fused[cid],
                    dense_score=d_score,
                    bm25_score=b_score,
                    dense_rank=d_rank,
                    bm25_rank=b_rank,
                )
            )
            if len(passages) == top_k:
                break
        return passages


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
