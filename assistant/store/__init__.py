"""Stage 5, store: the Chroma collection plus the BM25 index derived from it, kept in step.

Each chunk's metadata carries its article's fields and a ``doc_hash`` of everything that shaped
the chunks (text, title, chunking and embedding settings) plus ``n_chunks``. An article is
complete when all its stored chunks share one ``doc_hash`` and there are ``n_chunks`` of them;
anything else (an interrupted ingest) is rewritten by the next ingest.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from assistant.config import Settings
from assistant.models import Article, Chunk, DocumentInfo, IndexStatus
from assistant.store.chroma import ChromaStore, StoredChunk
from assistant.store.lexical import LexicalIndex


def indexed_text(title: str, text: str, include_title: bool) -> str:
    """What the embedder and BM25 see for a chunk (the stored text stays the exact slice)."""
    return f"{title}\n{text}" if include_title and title else text


@dataclass
class DocState:
    doc_hashes: set[str] = field(default_factory=set)
    chunk_ids: list[str] = field(default_factory=list)
    n_chunks: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.doc_hashes) == 1 and len(self.chunk_ids) == self.n_chunks


@dataclass
class ArticleChunks:
    """An article ready to be written: its metadata, chunks and content hash."""

    doc_id: str
    meta: dict
    chunks: list[Chunk]
    doc_hash: str


class Index:
    def __init__(self, settings: Settings, embedding_model: str):
        self.settings = settings
        self.vectors = ChromaStore(settings, embedding_model)
        self._lexical: LexicalIndex | None = None
        self._lexical_generation: int | None = None

    # --- state -------------------------------------------------------------------------------
    def doc_states(self) -> dict[str, DocState]:
        states: dict[str, DocState] = defaultdict(DocState)
        for stored in self.vectors.iter_chunks(with_text=False):
            state = states[stored.meta["doc_id"]]
            state.doc_hashes.add(stored.meta.get("doc_hash", ""))
            state.chunk_ids.append(stored.chunk_id)
            state.n_chunks = int(stored.meta.get("n_chunks", 0))
            state.meta = stored.meta
        return dict(states)

    def documents(self) -> list[DocumentInfo]:
        return sorted(
            (
                DocumentInfo(
                    doc_id=doc_id,
                    title=state.meta.get("title", ""),
                    source=state.meta.get("source", ""),
                    date=state.meta.get("date", ""),
                    chunks=len(state.chunk_ids),
                    complete=state.complete,
                )
                for doc_id, state in self.doc_states().items()
            ),
            key=lambda d: d.doc_id,
        )

    def status(self, docs: list[DocumentInfo] | None = None) -> IndexStatus:
        """``docs``: the result of documents(), when the caller already has it (saves a scan)."""
        docs = self.documents() if docs is None else docs
        return IndexStatus(
            documents=len(docs),
            chunks=self.vectors.count(),
            embedding_model=self.vectors.embedding_model,
            store=self.vectors.location,
            collection=self.settings.store.collection,
            incomplete_documents=[d.doc_id for d in docs if not d.complete],
        )

    def article(self, doc_id: str) -> Article | None:
        """The cleaned article rebuilt from its stored chunks (offsets match ``Chunk.start/end``).

        Chunks are exact slices of the cleaned text; what lies between two chunks is the
        whitespace between paragraphs, restored as newlines so that later offsets still match.
        """
        stored = sorted(self.vectors.chunks_of([doc_id]), key=lambda c: int(c.meta.get("start", 0)))
        if not stored:
            return None
        text = ""
        for chunk in stored:
            start = int(chunk.meta.get("start", 0))
            if start > len(text):
                text += "\n" * (start - len(text))
            text += chunk.text[len(text) - start :]
        meta = stored[0].meta
        return Article(
            doc_id=doc_id,
            title=meta.get("title", ""),
            text=text,
            source=meta.get("source", ""),
            url=meta.get("url", ""),
            date=meta.get("date", ""),
        )

    # --- writes ------------------------------------------------------------------------------
    def write(self, articles: list[ArticleChunks], vectors: np.ndarray, stale_ids: list[str]) -> None:
        """Delete the articles' superseded chunks, then upsert their chunks. In this order: upserting
        first left the new chunk of an edited article unreachable by Chroma 1.5's HNSW query in about
        1 run in 20 (upstream chroma-core/chroma#7758; 0 in 180 runs this way; docs/experiments.md).
        An interruption in between leaves the article incomplete, and the next ingest rewrites it."""
        ids, texts, metas = [], [], []
        for article in articles:
            for chunk in article.chunks:
                ids.append(chunk.chunk_id)
                texts.append(chunk.text)
                metas.append(
                    {
                        **article.meta,
                        "doc_id": article.doc_id,
                        "chunk_index": chunk.index,
                        "start": chunk.start,
                        "end": chunk.end,
                        "doc_hash": article.doc_hash,
                        "n_chunks": len(article.chunks),
                    }
                )
        # Bump before and after: a crash in between leaves a generation no cache was built for.
        self.vectors.bump_generation()
        keep = set(ids)
        self.vectors.delete([i for i in stale_ids if i not in keep])
        self.vectors.upsert(ids, vectors, texts, metas)
        self.vectors.bump_generation()

    def remove(self, doc_ids: list[str]) -> dict[str, int]:
        """Delete articles from both indexes; returns chunks removed per doc id found."""
        found: dict[str, int] = defaultdict(int)
        ids = []
        for stored in self.vectors.chunks_of(doc_ids):
            found[stored.meta["doc_id"]] += 1
            ids.append(stored.chunk_id)
        if ids:
            self.vectors.bump_generation()
            self.vectors.delete(ids)
            self.vectors.bump_generation()
        return dict(found)

    # --- search ------------------------------------------------------------------------------
    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        return self.vectors.query(vector, k)

    def lexical_search(self, query: str, k: int) -> list[tuple[str, float]]:
        return self.lexical().search(query, k)

    def fetch(self, chunk_ids: list[str]) -> dict[str, StoredChunk]:
        return self.vectors.get(chunk_ids)

    def lexical(self) -> LexicalIndex:
        """The BM25 index for the collection as it is now (loaded from cache or rebuilt)."""
        generation = self.vectors.generation
        if self._lexical is not None and self._lexical_generation == generation:
            return self._lexical
        r = self.settings.retrieval
        cache = self.settings.resolve(self.settings.store.lexical_cache) / self.settings.store.collection
        state = {
            "collection": self.settings.store.collection,
            # A rebuilt collection restarts at generation 0: its id tells it from the dropped one.
            "collection_id": str(self.vectors.collection.id),
            "store": self.vectors.location,
            "generation": generation,
            "count": self.vectors.count(),
            "include_title": self.settings.embedding.include_title,
        }
        index = LexicalIndex.load(cache, state, r.bm25_k1, r.bm25_b)
        if index is None:
            ids, texts = [], []
            include_title = self.settings.embedding.include_title
            for stored in self.vectors.iter_chunks():
                ids.append(stored.chunk_id)
                texts.append(indexed_text(stored.meta.get("title", ""), stored.text, include_title))
            index = LexicalIndex.build(ids, texts, r.bm25_k1, r.bm25_b)
            index.save(cache, state)
        self._lexical, self._lexical_generation = index, generation
        return index
