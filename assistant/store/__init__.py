"""Stage 5, store: the Chroma collection plus the BM25 index derived from it, kept in step.

Each chunk's metadata carries its article's fields and a ``doc_hash`` of everything that shaped
the chunks (text, title, chunking and embedding settings) plus ``n_chunks``. An article is
complete when all its stored chunks share one ``doc_hash`` and there are ``n_chunks`` of them;
anything else (an interrupted ingest) is rewritten by the next ingest.

Chroma is the source of truth. Every write bumps the collection's generation counter before and
after. The BM25 index follows the writes this process makes, in place, and is saved with the
generation it matches. When it does not match (another process wrote, or a crash came between
Chroma and the save), it is brought up to date from Chroma: only chunks it lacks, or whose
``doc_hash`` changed, are tokenized again.

Writes and BM25 rebuilds take the store's lock file (one at a time, across threads and processes),
so that two processes on one store, such as ``assistant serve`` and a CLI ingest, never count the
same generation or save over each other's snapshot; on disk, reads take it too
(``assistant.store.locking``).
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.chunk import chunk_sentences
from assistant.config import Settings
from assistant.models import Article, Chunk, DocumentInfo, Filters, IndexCheck, IndexStatus
from assistant.store.chroma import ChromaStore, ChunkSentences, StoredChunk, drop_collection
from assistant.store.lexical import LexicalIndex
from assistant.store.locking import store_lock
from assistant.timing import StageTimer

# Chunks fetched from Chroma per call when the BM25 index catches up.
CATCH_UP_PAGE = 500
# Problems listed one by one by check(); the rest are counted.
CHECK_LIST_MAX = 50


def drop_index(settings: Settings) -> None:
    """Delete the collection (whatever model built it), between two other processes' writes."""
    with store_lock(settings).writing():
        drop_collection(settings)


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

    def add(self, stored: StoredChunk) -> None:
        """Count one of the article's stored chunks."""
        self.doc_hashes.add(stored.meta.get("doc_hash", ""))
        self.chunk_ids.append(stored.chunk_id)
        self.n_chunks = int(stored.meta.get("n_chunks", 0))
        self.meta = stored.meta


@dataclass
class SentenceVectors:
    """Vectors of chunks' sentences, with metadata ``chunk_id``, ``doc_id``, ``start``, ``end``."""

    ids: list[str]
    vectors: np.ndarray
    metas: list[dict]


@dataclass
class ArticleChunks:
    """An article ready to be written: its metadata, chunks and content hash."""

    doc_id: str
    meta: dict
    chunks: list[Chunk]
    doc_hash: str


def sentence_id(chunk_id: str, number: int) -> str:
    return f"{chunk_id}:s{number}"


def expected_sentences(chunk: Chunk, settings: Settings) -> dict[str, tuple[int, int]]:
    """Sentence vector id -> article offsets, of the sentence vectors this chunk should have: none
    when ``embedding.sentences`` is off or the chunk is one sentence."""
    if not settings.embedding.sentences:
        return {}
    return {sentence_id(chunk.chunk_id, n): span for n, span in enumerate(chunk_sentences(chunk))}


def sentence_rows(articles: list[ArticleChunks], settings: Settings) -> tuple[list[str], list[str], list[dict]]:
    """(ids, texts to embed, metadata) of the sentences of the articles' chunks; none when
    ``embedding.sentences`` is off. A sentence is embedded with its title, as its chunk is."""
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict] = []
    for article in articles:
        for chunk in article.chunks:
            for sid, (start, end) in expected_sentences(chunk, settings).items():
                ids.append(sid)
                sentence = chunk.text[start - chunk.start : end - chunk.start]
                texts.append(indexed_text(article.meta["title"], sentence, settings.embedding.include_title))
                metas.append({"chunk_id": chunk.chunk_id, "doc_id": article.doc_id, "start": start, "end": end})
    return ids, texts, metas


def stored_article_chunks(stored: list[StoredChunk]) -> list[ArticleChunks]:
    """Stored chunks (with their text) grouped back into articles, for rewriting what derives from
    them."""
    by_doc: dict[str, list[StoredChunk]] = defaultdict(list)
    for chunk in stored:
        by_doc[chunk.meta["doc_id"]].append(chunk)
    return [
        ArticleChunks(doc_id, chunks[0].meta, [_chunk_of(c) for c in chunks], chunks[0].meta.get("doc_hash", ""))
        for doc_id, chunks in by_doc.items()
    ]


def _chunk_of(stored: StoredChunk) -> Chunk:
    m = stored.meta
    return Chunk(chunk_id=stored.chunk_id, doc_id=m["doc_id"], index=int(m.get("chunk_index", 0)), text=stored.text,
                 start=int(m["start"]), end=int(m["end"]))


@dataclass
class SentenceGaps:
    """Where the sentence-vector collection and the chunks disagree."""

    chunk_ids: list[str] = field(default_factory=list)  # chunks with missing or stale sentence vectors
    orphans: list[str] = field(default_factory=list)  # sentence vectors of no stored chunk
    problems: list[str] = field(default_factory=list)


def expect_sentences(expected: dict[str, tuple[str, tuple[int, int]]], stored: StoredChunk, settings: Settings) -> None:
    """Add a stored chunk's (with its text) sentence vectors to ``expected``: id -> (chunk id, offsets)."""
    if "doc_id" in stored.meta:
        for sid, span in expected_sentences(_chunk_of(stored), settings).items():
            expected[sid] = (stored.chunk_id, span)


class Index:
    def __init__(self, settings: Settings, embedding_model: str):
        self.settings = settings
        self.vectors = ChromaStore(settings, embedding_model)
        self._lexical: LexicalIndex | None = None
        self._lexical_generation: int | None = None  # the Chroma generation _lexical matches
        # The BM25 index is updated in place: one thread at a time (the UI serves several).
        # Lock order: the write lock first, then this one.
        self._lexical_lock = threading.RLock()
        self._lock = store_lock(settings)

    # --- state -------------------------------------------------------------------------------
    def doc_states(self, doc_ids: Iterable[str] | None = None) -> dict[str, DocState]:
        """What the index holds of each article: of ``doc_ids`` only (one query), or of all."""
        states: dict[str, DocState] = defaultdict(DocState)
        stored_chunks = (
            self.vectors.iter_chunks(with_text=False) if doc_ids is None else self.vectors.chunks_of(list(doc_ids), with_text=False)
        )
        for stored in stored_chunks:
            states[stored.meta["doc_id"]].add(stored)
        return dict(states)

    def documents(self) -> list[DocumentInfo]:
        return sorted(
            (
                DocumentInfo(
                    doc_id=doc_id,
                    title=state.meta.get("title", ""),
                    source=state.meta.get("source", ""),
                    date=state.meta.get("date", ""),
                    author=state.meta.get("author", ""),
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

    def check(self) -> IndexCheck:
        """Compare Chroma with the BM25 index chunk by chunk, check that every article is whole, and
        that every chunk has exactly the sentence vectors it should. Under the write lock, so that
        no write lands between the reads."""
        problems: list[str] = []
        with self._writing():
            lexical = self.lexical()
            with self._lexical_lock:
                in_bm25 = {cid: lexical.version(cid) for cid in lexical.chunk_ids}
            states: dict[str, DocState] = defaultdict(DocState)
            in_chroma = 0
            expected: dict[str, tuple[str, tuple[int, int]]] = {}
            for stored in self.vectors.iter_chunks(with_text=True):
                expect_sentences(expected, stored, self.settings)
                in_chroma += 1
                doc_hash = stored.meta.get("doc_hash", "")
                doc_id = stored.meta.get("doc_id")
                if doc_id is None:
                    problems.append(f"chunk {stored.chunk_id} has no doc_id (not written by the assistant)")
                else:
                    states[doc_id].add(stored)
                if stored.chunk_id not in in_bm25:
                    problems.append(f"chunk {stored.chunk_id} is in Chroma but not in BM25")
                elif in_bm25.pop(stored.chunk_id) != doc_hash:
                    problems.append(f"chunk {stored.chunk_id}: BM25 holds another version than Chroma")
            gaps = self._sentence_gaps(expected)
        problems += [f"chunk {cid} is in BM25 but not in Chroma" for cid in sorted(in_bm25)]
        problems += gaps.problems
        for doc_id, state in sorted(states.items()):
            if len(state.doc_hashes) > 1:
                problems.append(f"article {doc_id} mixes chunks of {len(state.doc_hashes)} versions")
            elif len(state.chunk_ids) != state.n_chunks:
                problems.append(f"article {doc_id} has {len(state.chunk_ids)} of its {state.n_chunks} chunks")
        return IndexCheck(chunks=in_chroma, articles=len(states), problems=problems[:CHECK_LIST_MAX], problem_count=len(problems))

    def _sentence_gaps(self, expected: dict[str, tuple[str, tuple[int, int]]]) -> SentenceGaps:
        """Compare the stored sentence vectors with ``expected`` (what each stored chunk's text and
        the configured chunking give it, see ``expect_sentences``), by id and by offsets."""
        totals = Counter(chunk_id for chunk_id, _ in expected.values())
        expected = dict(expected)
        gaps = SentenceGaps()
        stale: set[str] = set()
        orphans_of: Counter[str] = Counter()
        for sid, meta in self.vectors.iter_sentences():
            chunk_id, span = expected.pop(sid, (None, None))
            if chunk_id is None:
                gaps.orphans.append(sid)
                orphans_of[meta.get("chunk_id", "?")] += 1
            elif span != (int(meta.get("start", -1)), int(meta.get("end", -1))):
                stale.add(chunk_id)
                gaps.problems.append(f"sentence vector {sid} is for other offsets than its chunk's sentence")
        missing = Counter(chunk_id for chunk_id, _ in expected.values())
        for chunk_id, count in sorted(missing.items()):
            gaps.problems.append(f"chunk {chunk_id} lacks {count} of its {totals[chunk_id]} sentence vectors")
        for chunk_id, count in sorted(orphans_of.items()):
            gaps.problems.append(f"{count} sentence vector(s) for chunk {chunk_id} that it does not have (not in Chroma, or not its sentences)")
        gaps.chunk_ids = sorted(stale | set(missing))
        return gaps

    def repair_sentences(self, embed) -> int:
        """Write the sentence vectors that check() finds missing or stale again, from the stored
        chunks' text, and delete those of no chunk. ``embed``: texts -> (n, dim) passage vectors.
        Returns the sentence vectors written."""
        with self._writing():
            expected: dict[str, tuple[str, tuple[int, int]]] = {}
            for stored in self.vectors.iter_chunks(with_text=True):
                expect_sentences(expected, stored, self.settings)
            gaps = self._sentence_gaps(expected)
            if not gaps.chunk_ids and not gaps.orphans:
                return 0
            ids, texts, metas = [], [], []
            for start in range(0, len(gaps.chunk_ids), CATCH_UP_PAGE):
                fetched = list(self.vectors.get(gaps.chunk_ids[start : start + CATCH_UP_PAGE]).values())
                for part, more in zip((ids, texts, metas), sentence_rows(stored_article_chunks(fetched), self.settings)):
                    part.extend(more)
            vectors = embed(texts) if texts else None
            first = self.vectors.bump_generation()
            self.vectors.delete_sentence_ids(gaps.orphans)
            self.vectors.delete_sentences(gaps.chunk_ids)
            if vectors is not None:
                self.vectors.upsert_sentences(ids, vectors, metas)
            last = self.vectors.bump_generation()
        self._follow(first, last, [], [], [], [])  # the chunks did not change: BM25 stays as it is
        self.save_lexical()
        return len(ids)

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
            author=meta.get("author", ""),
        )

    # --- writes ------------------------------------------------------------------------------
    def write(
        self, articles: list[ArticleChunks], vectors: np.ndarray, stale_ids: list[str], timer: StageTimer | None = None,
        sentences: SentenceVectors | None = None,
    ) -> None:
        """Delete the articles' superseded chunks, then upsert their chunks. In this order: upserting
        first left the new chunk of an edited article unreachable by Chroma 1.5's HNSW query in about
        1 run in 20 (upstream chroma-core/chroma#7758; 0 in 180 runs this way; docs/experiments.md).
        An interruption in between leaves the article incomplete, and the next ingest rewrites it.
        ``sentences``: the chunks' sentence vectors, written before the chunks (the old chunks'
        sentences are deleted first), so that a stored chunk has its sentences."""
        timer = timer or StageTimer()
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
        keep = set(ids)
        removed = [i for i in stale_ids if i not in keep]
        with timer("store"), self._writing():
            # Bump before and after: a crash in between leaves a generation no BM25 snapshot matches.
            first = self.vectors.bump_generation()
            self.vectors.delete(removed)
            self.vectors.delete_sentences(stale_ids)
            if sentences is not None and sentences.ids:
                self.vectors.upsert_sentences(sentences.ids, sentences.vectors, sentences.metas)
            self.vectors.upsert(ids, vectors, texts, metas)
            last = self.vectors.bump_generation()
        with timer("lexical"):
            include_title = self.settings.embedding.include_title
            self._follow(first, last, removed, ids, [m["doc_hash"] for m in metas],
                         [indexed_text(m.get("title", ""), t, include_title) for t, m in zip(texts, metas)])

    def remove(self, doc_ids: list[str]) -> dict[str, int]:
        """Delete articles from both indexes; returns chunks removed per doc id found."""
        found: dict[str, int] = defaultdict(int)
        self.lexical()  # so that it can follow this write instead of being rebuilt after it
        with self._writing():
            ids = []
            for stored in self.vectors.chunks_of(doc_ids, with_text=False):
                found[stored.meta["doc_id"]] += 1
                ids.append(stored.chunk_id)
            if not ids:
                return {}
            first = self.vectors.bump_generation()
            self.vectors.delete(ids)
            self.vectors.delete_sentences(ids)
            last = self.vectors.bump_generation()
        self._follow(first, last, ids, [], [], [])
        self.save_lexical()
        return dict(found)

    def _follow(self, first: int, last: int, removed: list[str], ids: list[str], versions: list[str], texts: list[str]) -> None:
        """Apply this process's write to the BM25 index in memory, if no other write came between
        (else it is left stale, and brought up to date from Chroma when next needed)."""
        with self._lexical_lock:
            if self._lexical is not None and self._lexical_generation == first - 1 and last == first + 1:
                self._lexical.remove(removed)
                self._lexical.add(ids, versions, texts)
                self._lexical_generation = last
            else:
                self._lexical_generation = None  # stale: the next lexical() catches it up from Chroma

    # --- search ------------------------------------------------------------------------------
    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        return self.vectors.query(vector, k, filters.where() if filters else None)

    def lexical_search(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """BM25's top ``k`` among the chunks ``filters`` admit (Chroma says which), so that a
        filtered question still gets ``k`` candidates."""
        where = filters.where() if filters else None
        allowed = self.vectors.ids_where(where) if where else None
        index = self.lexical()
        with self._lexical_lock:
            return index.search(query, k, allowed)

    def sentence_vectors(self, chunk_ids: list[str], whole_chunks: bool = False) -> dict[str, ChunkSentences]:
        """The chunks' stored sentence vectors; with ``whole_chunks``, a chunk without them (one
        sentence, or ``embedding.sentences`` off) gets its own vector as its one sentence."""
        found = self.vectors.sentence_vectors(chunk_ids)
        if whole_chunks:
            found.update(self.vectors.whole_chunk_vectors([cid for cid in chunk_ids if cid not in found]))
        return found

    def chunk_vectors(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
        """The chunks' own (passage) vectors."""
        return {cid: item.vectors[0] for cid, item in self.vectors.whole_chunk_vectors(chunk_ids).items()}

    def fetch(self, chunk_ids: list[str]) -> dict[str, StoredChunk]:
        return self.vectors.get(chunk_ids)

    @property
    def collection_id(self) -> str:
        return str(self.vectors.collection.id)

    @property
    def follow_state_path(self) -> Path:
        """Where ``assistant ingest --follow`` keeps its feeds' state (local, like BM25's cache)."""
        return self._lexical_folder / "follow.json"

    # --- the BM25 index ----------------------------------------------------------------------
    @property
    def _lexical_folder(self) -> Path:
        return self.settings.resolve(self.settings.store.lexical_cache) / self.settings.store.collection

    def _lexical_state(self, generation: int) -> dict:
        return {
            "collection": self.settings.store.collection,
            # A rebuilt collection restarts at generation 0: its id tells it from the dropped one.
            "collection_id": str(self.vectors.collection.id),
            "store": self.vectors.location,
            "generation": generation,
            "include_title": self.settings.embedding.include_title,
        }

    def _writing(self):
        """Hold the store's lock as its writer: one writer or BM25 builder at a time, across processes."""
        return self._lock.writing()

    def _current_lexical(self, generation: int) -> tuple[LexicalIndex | None, tuple[LexicalIndex, dict] | None]:
        """(the BM25 index for ``generation`` from memory or the snapshot, else None; the snapshot)."""
        if self._lexical is not None and self._lexical_generation == generation:
            return self._lexical, None
        r = self.settings.retrieval
        loaded = LexicalIndex.load(self._lexical_folder, r.bm25_k1, r.bm25_b)
        if loaded is not None and loaded[1] == self._lexical_state(generation):
            self._lexical, self._lexical_generation = loaded[0], generation
            return self._lexical, None
        return None, loaded

    def lexical(self) -> LexicalIndex:
        """The BM25 index for the collection as it is now: in memory, the saved snapshot, or either
        brought up to date from Chroma (then saved)."""
        with self._lexical_lock:
            current, _ = self._current_lexical(self.vectors.generation)
        if current is not None:
            return current
        # One builder at a time: another thread or process may be catching up already, and may
        # have saved the snapshot by the time this one gets the lock.
        with self._writing(), self._lexical_lock:
            generation = self.vectors.generation
            current, loaded = self._current_lexical(generation)
            if current is not None:
                return current
            # Start from what is closest (this process's index, else the snapshot of the same
            # collection, else nothing) and fetch only what changed.
            r = self.settings.retrieval
            same_collection = {k: v for k, v in self._lexical_state(generation).items() if k != "generation"}
            if self._lexical is not None:
                base = self._lexical
            elif loaded is not None and {k: v for k, v in loaded[1].items() if k != "generation"} == same_collection:
                base = loaded[0]
            else:
                base = LexicalIndex(r.bm25_k1, r.bm25_b)
            self._lexical = self._catch_up(base)
            self._lexical_generation = generation
            self.save_lexical()
            return self._lexical

    def rebuild_lexical(self) -> None:
        """Drop the BM25 index and derive it again from Chroma (the repair for check()'s findings)."""
        with self._writing(), self._lexical_lock:
            r = self.settings.retrieval
            self._lexical = self._catch_up(LexicalIndex(r.bm25_k1, r.bm25_b))
            self._lexical_generation = self.vectors.generation
            self.save_lexical()

    def _catch_up(self, index: LexicalIndex) -> LexicalIndex:
        in_chroma: set[str] = set()
        todo: list[str] = []
        for stored in self.vectors.iter_chunks(with_text=False):
            in_chroma.add(stored.chunk_id)
            if index.version(stored.chunk_id) != stored.meta.get("doc_hash", ""):
                todo.append(stored.chunk_id)
        index.remove([cid for cid in list(index.row_of) if cid not in in_chroma])
        include_title = self.settings.embedding.include_title
        for start in range(0, len(todo), CATCH_UP_PAGE):
            fetched = self.vectors.get(todo[start : start + CATCH_UP_PAGE]).values()
            index.add(
                [c.chunk_id for c in fetched],
                [c.meta.get("doc_hash", "") for c in fetched],
                [indexed_text(c.meta.get("title", ""), c.text, include_title) for c in fetched],
            )
        return index

    def save_lexical(self) -> None:
        """Save the BM25 index with the generation it matches (a stale one is caught up on load)."""
        with self._writing(), self._lexical_lock:
            if self._lexical is not None and self._lexical_generation is not None:
                self._lexical.save(self._lexical_folder, self._lexical_state(self._lexical_generation))

    # --- copies under another id (read-only; used by ingest) ---------------------------------
    def doc_ids_with_text_hash(self, hashes: Iterable[str]) -> dict[str, list[str]]:
        """Text hash (chunk metadata ``text_hash``, see ``assistant.ingest.text_hash``) -> the doc
        ids that hold it, sorted. One query. Articles written before that key existed lack it."""
        wanted = sorted(set(hashes))
        if not wanted:
            return {}
        found: dict[str, set[str]] = defaultdict(set)
        for stored in self.vectors.chunks_where("text_hash", wanted, with_text=False):
            found[stored.meta["text_hash"]].add(stored.meta["doc_id"])
        return {digest: sorted(ids) for digest, ids in found.items()}
