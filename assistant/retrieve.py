"""Stage 6, retrieve: question → passages, by dense search, BM25, or both fused.

Hybrid fuses the two candidate lists by their scores (z-score normalized per list, then a weighted
sum; min-max and reciprocal-rank fusion are selectable), and uses BM25 only when the question
contains Arabic script: BM25 over Arabic text cannot match an English question and fusing it in
hurts. Z-score is the default because it ranked the gold paragraph first more often than RRF on
XQuAD-ar (`make bench-xquad`; numbers in docs/experiments.md).
Near-duplicate passages (the same paragraph syndicated by two outlets) are dropped after fusion.

Dense candidates are rescored by their best sentence as well: (1 - w) × the passage's similarity +
w × its best sentence's, from the sentence vectors stored beside the chunks. A whole passage's
vector blurs the one sentence an English question is about (``sentence_weight`` 0.3, fitted on
ARCD train; the XQuAD and MLQA numbers: README, "Retrieval, by set"; docs/experiments.md).
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np

from assistant.arabic import BIDI_CHARS, ZERO_WIDTH_CHARS, has_arabic, normalize
from assistant.chunk import PAGE_STARTS, pages_of
from assistant.config import RetrievalSettings
from assistant.embed import Embedder
from assistant.errors import InputError
from assistant.models import Filters, Passage
from assistant.store import ChunkSentences, Index, indexed_text

Mode = Literal["dense", "bm25", "hybrid"]
_WORDS = re.compile(r"\w+")


# Removed from a question: invisible formatting (bidi controls, zero-width characters) that a copy
# from a web page or chat app brings along and that would split or hide words.
_INVISIBLE = re.compile(f"[{BIDI_CHARS}{ZERO_WIDTH_CHARS}]")
# Control characters (newlines and tabs too) and runs of white space become one space.
_SPACES = re.compile(r"[\x00-\x1f\x7f-\x9f\s]+")


def clean_question(question: str) -> str:
    """The question as retrieval and the model get it: no invisible characters, one line."""
    return _SPACES.sub(" ", _INVISIBLE.sub("", question)).strip()


def check_question(question: str, max_chars: int) -> str:
    """The cleaned question, or an ``InputError`` saying why it cannot be asked."""
    question = clean_question(question)
    if not question:
        raise InputError("the question is empty: type a question about the indexed articles")
    if not any(c.isalnum() for c in question):
        raise InputError("the question has no words, only punctuation or symbols: type a question about the indexed articles")
    if len(question) > max_chars:
        raise InputError(
            f"the question is {len(question)} characters long; the limit is {max_chars} "
            "(retrieval.max_question_chars). Ask a shorter question."
        )
    return question


Ranking = list[tuple[str, float]]  # (chunk_id, score), best first


def rrf(rankings: list[tuple[Ranking, float]], k: int) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: sum of weight / (k + rank) over the rankings."""
    fused: dict[str, float] = {}
    for ranking, weight in rankings:
        for rank, (item, _score) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


def score_fusion(rankings: list[tuple[Ranking, float]], method: str) -> dict[str, float]:
    """Weighted sum of per-list normalized scores; an item missing from a list gets its minimum."""
    fused: dict[str, float] = {}
    normalized = []
    for ranking, weight in rankings:
        if not ranking or weight == 0:
            continue
        scores = np.array([score for _, score in ranking], dtype=np.float64)
        if method == "zscore":
            scores = (scores - scores.mean()) / (scores.std() or 1.0)
        else:  # minmax
            spread = scores.max() - scores.min()
            scores = (scores - scores.min()) / spread if spread else np.ones_like(scores)
        normalized.append(({item: float(x) for (item, _), x in zip(ranking, scores)}, float(scores.min()), weight))
    every_item = {item for items, _, _ in normalized for item in items}
    for item in every_item:
        fused[item] = sum(weight * items.get(item, floor) for items, floor, weight in normalized)
    return fused


def fuse(rankings: list[tuple[Ranking, float]], method: str, rrf_k: int) -> dict[str, float]:
    return rrf(rankings, rrf_k) if method == "rrf" else score_fusion(rankings, method)


class Retriever:
    def __init__(self, index: Index, embedder: Embedder, settings: RetrievalSettings):
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def search(
        self,
        question: str,
        top_k: int | None = None,
        mode: Mode | None = None,
        lexical_query: str | None = None,
        filters: Filters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Passage]:
        """``lexical_query``: an Arabic rendering of the question for the BM25 side (hybrid/bm25).
        ``filters``: only passages of matching articles, applied by both retrievers before fusion.
        ``query_vector``: the question's embedding when the caller has it (a benchmark embeds its
        questions in batches, about twice as fast as one at a time)."""
        s = self.settings
        question = check_question(question, s.max_question_chars)
        top_k = top_k or s.top_k
        mode = mode or s.mode
        candidates = max(s.candidates, top_k)

        dense: list[tuple[str, float]] = []
        lexical: list[tuple[str, float]] = []
        if mode in ("dense", "hybrid"):
            query = self.embedder.embed_queries([question])[0] if query_vector is None else query_vector
            dense = self._by_best_sentence(self.index.dense_search(query, candidates, filters), query)
        lexical_text = lexical_query if lexical_query and has_arabic(lexical_query) else question
        if mode == "bm25" or (mode == "hybrid" and has_arabic(lexical_text)):
            lexical = self.index.lexical_search(lexical_text, candidates, filters)

        fused = fuse([(dense, s.dense_weight), (lexical, s.bm25_weight)], s.fusion, s.rrf_k)
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
                    author=meta.get("author", ""),
                    text=chunk.text,
                    start=int(meta["start"]),
                    end=int(meta["end"]),
                    pages=pages_of(meta.get(PAGE_STARTS, ""), [(int(meta["start"]), int(meta["end"]))]),
                    page_starts=meta.get(PAGE_STARTS, ""),
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

    def stored_sentences(self, chunk_ids: list[str]) -> dict[str, ChunkSentences]:
        """The index's sentence vectors of these chunks (a chunk of one sentence: its own vector),
        for scoring sentences without embedding them again."""
        return self.index.sentence_vectors(chunk_ids, whole_chunks=True)

    def as_indexed(self, passage: Passage, sentence: str) -> str:
        """A sentence of ``passage`` in the form the index embeds it (with the title, or not)."""
        return indexed_text(passage.title, sentence, self.index.settings.embedding.include_title)

    def _by_best_sentence(self, dense: Ranking, query: np.ndarray) -> Ranking:
        """Dense candidates rescored with their best sentence's similarity, best first. A chunk
        without sentence vectors (one sentence, or indexed with embedding.sentences off) keeps its
        own similarity."""
        weight = self.settings.sentence_weight
        if not weight or not dense:
            return dense
        sentences = self.index.sentence_vectors([cid for cid, _ in dense])
        rescored = [
            (cid, (1 - weight) * score + weight * float((sentences[cid].vectors @ query).max()) if cid in sentences else score)
            for cid, score in dense
        ]
        return sorted(rescored, key=lambda item: -item[1])


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
