"""The Chroma collection: chunk vectors, texts and metadata. The single source of truth.

``PersistentClient`` on disk by default, ``HttpClient`` against a ``chroma run`` server when
``store.mode: http``. Chroma's default embedding function is never used (it downloads an ONNX
model): every add and query passes vectors. The collection metadata records the embedding model
that built it and a generation counter bumped on every write (the BM25 index follows it).
A second collection, ``<collection>-sentences``, holds the vectors of each chunk's sentences
(``embedding.sentences``), with the chunk id in their metadata. They are only fetched by chunk
id, to rescore dense candidates, and are written before their chunk, so that a chunk present
means its sentences are too.

Chroma's on-disk store is not process-safe: a process keeps its HNSW index in memory and does not
see vectors another process added (chroma-core/chroma#3792), and one that reads while another
writes can fail or crash. Every call on a store on disk holds its lock file
(``assistant.store.locking``: other processes wait, this process's threads share it), and a
persistent store whose generation moved under this process is reopened before it is queried or
written.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import chromadb
import httpx
import numpy as np
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import InternalError, NotFoundError

from assistant.config import Settings
from assistant.errors import AssistantError, BackendUnavailableError, IndexMismatchError
from assistant.store.locking import store_lock

PAGE = 1000
SENTENCES = "-sentences"  # suffix of the sentence-vector collection's name

# Per cached Chroma System (one per path and process): the generation of each collection that its
# in-memory HNSW has seen. A store opened later in the same process shares the System, so the view
# belongs to the System, not to the store.
_VIEWS: "weakref.WeakKeyDictionary[object, dict[str, int]]" = weakref.WeakKeyDictionary()


@dataclass
class StoredChunk:
    chunk_id: str
    text: str
    meta: dict


@dataclass
class ChunkSentences:
    """A chunk's stored sentence vectors, in article order, with each sentence's article offsets."""

    spans: list[tuple[int, int]]
    vectors: np.ndarray  # (n, dim)


def connect(settings: Settings) -> chromadb.api.ClientAPI:
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    store = settings.store
    if store.mode == "http":
        try:
            return chromadb.HttpClient(host=store.host, port=store.port, settings=chroma_settings)
        except Exception as exc:  # chromadb raises plain ValueError/Exception on connect failures
            raise BackendUnavailableError(
                f"cannot reach the Chroma server at http://{store.host}:{store.port} ({exc}). "
                f"Start it with `chroma run --path DATA_DIR --host {store.host} --port {store.port}`, "
                "or set store.mode: persistent in config.yaml."
            ) from None
    path = writable_folder(settings)
    try:
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as exc:  # noqa: BLE001 - chromadb raises plain exceptions (SQLite, Rust) for a bad folder
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AssistantError(f"cannot open the Chroma store in {path} (store.path): {first_line}; {FOLDER_FIX}") from None


FOLDER_FIX = "set store.path in the config to a folder this user can write, or fix its permissions"


def writable_folder(settings: Settings) -> Path:
    """The on-disk store's folder, created if missing; a clear error if this user cannot write it."""
    path = settings.resolve(settings.store.path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # read-only parent, or a file where a folder should be
        raise AssistantError(f"cannot create the Chroma folder {path} (store.path): {exc.strerror or exc}; {FOLDER_FIX}") from None
    # Chroma's own failure on a read-only folder is a long SQLite message, or none until the first write.
    if not os.access(path, os.W_OK | os.X_OK):
        raise AssistantError(f"the Chroma folder {path} (store.path) is not writable; {FOLDER_FIX}")
    return path


def drop_collection(settings: Settings) -> None:
    """Delete the configured collection, whatever embedding model built it."""
    client = connect(settings)
    names = [c.name for c in client.list_collections()]
    for name in (settings.store.collection, settings.store.collection + SENTENCES):
        if name in names:
            client.delete_collection(name)
    if settings.store.mode == "persistent":
        _VIEWS.get(client._system, {}).pop(settings.store.collection, None)  # a new one starts afresh


def describe_location(settings: Settings) -> str:
    if settings.store.mode == "http":
        return f"chroma server http://{settings.store.host}:{settings.store.port}"
    return str(settings.resolve(settings.store.path))


def _server_call(method):
    """A Chroma call, under the store's lock when the store is on disk. A server that goes away
    after connecting is a BackendUnavailableError, not a traceback. Should an on-disk store still
    fail a read with Chroma's InternalError ("Error finding id", seen before reads took the lock,
    while an ingest ran beside `assistant timeline`), it is reloaded and the call made once more,
    else the user is told what to do."""

    @functools.wraps(method)
    def wrapper(self: "ChromaStore", *args, **kwargs):
        on_disk = self.settings.store.mode == "persistent"
        try:
            with self._held():
                try:
                    return method(self, *args, **kwargs)
                except InternalError:
                    if not on_disk:
                        raise
                    self._reopen()
                    return method(self, *args, **kwargs)
        except InternalError as exc:
            if not on_disk:
                raise
            raise AssistantError(
                f"the index at {self.location} changed while it was being read, or is damaged ({exc}). If "
                "another process is writing to it (an ingest), run the command again; if it fails with nothing "
                "else running, the index is damaged: rebuild it (`assistant ingest --rebuild PATH...`)."
            ) from None
        except (httpx.TransportError, ConnectionError) as exc:
            raise BackendUnavailableError(
                f"lost the connection to the {self.location} ({exc}). Is `chroma run` still running?"
            ) from None
        except NotFoundError:
            raise AssistantError(
                f"the collection '{self.settings.store.collection}' at {self.location} was deleted "
                "(by a rebuild in another process?). Run the command again."
            ) from None

    return wrapper


class ChromaStore:
    def __init__(self, settings: Settings, embedding_model: str):
        self.settings = settings
        self.embedding_model = embedding_model
        self.location = describe_location(settings)
        # On disk, every Chroma call holds the store's lock file (found once here, not per call).
        self._lock = None
        if settings.store.mode == "persistent":
            writable_folder(settings)  # its own error, before the lock file in it is taken
            self._lock = store_lock(settings)
        with self._held():  # Chroma loads the store from disk, and may create the collection
            self._open()
        built_with = (self.collection.metadata or {}).get("embedding_model")
        if built_with != embedding_model:
            raise IndexMismatchError(
                f"the index '{settings.store.collection}' at {self.location} was built with the embedding model "
                f"'{built_with}', but the configuration uses '{embedding_model}'. Vectors from different "
                "models cannot be compared. Re-index with `assistant ingest --rebuild PATH...`, "
                "or point store.collection at another collection name."
            )

    def _held(self):
        """The store's lock file held for a Chroma call on disk; nothing for a server."""
        return self._lock.held() if self._lock else contextlib.nullcontext()

    def _open(self) -> None:
        store = self.settings.store
        self.client = connect(self.settings)
        self.collection = self.client.get_or_create_collection(
            store.collection,
            configuration={
                "hnsw": {
                    "space": "cosine",
                    "ef_search": store.hnsw_ef_search,
                    "ef_construction": store.hnsw_ef_construction,
                }
            },
            metadata={"embedding_model": self.embedding_model, "generation": 0},
            embedding_function=None,
        )
        self.sentences = self._sentence_collection()
        self._apply_ef_search(store.hnsw_ef_search)
        self._views = self._views_of_system()
        self._views.setdefault(store.collection, self.generation)

    @_server_call
    def _sentence_collection(self):
        return self.client.get_or_create_collection(
            self.settings.store.collection + SENTENCES,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedding_model": self.embedding_model},
            embedding_function=None,
        )

    @_server_call
    def _apply_ef_search(self, ef_search: int) -> None:
        """ef_search is a query-time setting, but Chroma keeps the value a collection was created
        with: set the configured one on an existing collection, before this process first queries
        it (a process that has already loaded the HNSW index keeps the old value)."""
        hnsw = (self.collection.configuration or {}).get("hnsw") or {}
        if hnsw.get("ef_search") not in (None, ef_search):
            self.collection.modify(configuration={"hnsw": {"ef_search": ef_search}})

    # --- bookkeeping -------------------------------------------------------------------------
    @_server_call
    def _metadata(self) -> dict:
        """The collection metadata as stored now (another process may have written since)."""
        self.collection = self.client.get_collection(self.settings.store.collection, embedding_function=None)
        return dict(self.collection.metadata or {})

    @property
    def generation(self) -> int:
        return int(self._metadata().get("generation", 0))

    @_server_call
    def bump_generation(self) -> int:
        """Count one more write; returns the new generation. Called under the index's write lock,
        so that no two processes count the same write."""
        meta = self._metadata()
        self.reopen_if_moved(int(meta.get("generation", 0)))  # write on top of every earlier write
        meta["generation"] = int(meta.get("generation", 0)) + 1
        self.collection.modify(metadata=meta)
        self._views[self.settings.store.collection] = meta["generation"]
        return meta["generation"]

    def _views_of_system(self) -> dict[str, int]:
        if self.settings.store.mode != "persistent":
            return {}  # a Chroma server is one process: every client sees every write
        return _VIEWS.setdefault(self.client._system, {})

    def reopen_if_moved(self, generation: int) -> None:
        """Reload a persistent store that another process wrote to since this process last looked,
        so that its vectors are found. ``generation``: the collection's generation now."""
        name = self.settings.store.collection
        if self._views.get(name, generation) != generation:
            self._reopen()
        self._views[name] = generation

    def _reopen(self) -> None:
        # A new client on the same path would get the same cached, stale System. Forget it (queries
        # under way in other threads keep it; it is freed with its last client), so that the new
        # client loads the index from disk.
        SharedSystemClient._identifier_to_system.pop(self.client._identifier, None)
        self.client = connect(self.settings)
        self.collection = self.client.get_collection(self.settings.store.collection, embedding_function=None)
        self.sentences = self._sentence_collection()
        self._views = self._views_of_system()

    @_server_call
    def count(self) -> int:
        return self.collection.count()

    # --- reads -------------------------------------------------------------------------------
    def iter_chunks(self, with_text: bool = True) -> Iterator[StoredChunk]:
        include = ["metadatas", "documents"] if with_text else ["metadatas"]
        offset = 0
        while True:
            page = self._page(offset, include)
            ids = page["ids"]
            if not ids:
                return
            docs = page.get("documents") or [""] * len(ids)
            for chunk_id, text, meta in zip(ids, docs, page["metadatas"]):
                yield StoredChunk(chunk_id, text or "", dict(meta or {}))
            offset += len(ids)

    @_server_call
    def _page(self, offset: int, include: list[str]) -> dict:
        return self.collection.get(limit=PAGE, offset=offset, include=include)

    @_server_call
    def get(self, chunk_ids: list[str]) -> dict[str, StoredChunk]:
        if not chunk_ids:
            return {}
        page = self.collection.get(ids=chunk_ids, include=["metadatas", "documents"])
        return {i: StoredChunk(i, d or "", dict(m or {})) for i, d, m in zip(page["ids"], page["documents"], page["metadatas"])}

    def chunks_of(self, doc_ids: list[str], with_text: bool = True) -> list[StoredChunk]:
        return self.chunks_where("doc_id", doc_ids, with_text) if doc_ids else []

    @_server_call
    def chunks_where(self, key: str, values: list[str], with_text: bool = True) -> list[StoredChunk]:
        """The chunks whose metadata ``key`` is one of ``values`` (one query)."""
        include = ["metadatas", "documents"] if with_text else ["metadatas"]
        page = self.collection.get(where={key: {"$in": values}}, include=include)
        if not with_text:
            return [StoredChunk(i, "", dict(m or {})) for i, m in zip(page["ids"], page["metadatas"])]
        return [StoredChunk(i, d or "", dict(m or {})) for i, d, m in zip(page["ids"], page["documents"], page["metadatas"])]

    @_server_call
    def query(self, vector: np.ndarray, k: int, where: dict | None = None) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity), best first, among the chunks matching ``where`` (a
        metadata filter) if given. No count() first: Chroma 1.5 returns what it has when asked
        for more, and counting cost 10 ms per query at 100k chunks."""
        self.reopen_if_moved(self.generation)
        result = self.collection.query(
            query_embeddings=[vector.tolist()], n_results=k, where=where, include=["distances"]
        )
        return [(cid, 1.0 - float(dist)) for cid, dist in zip(result["ids"][0], result["distances"][0])]

    @_server_call
    def ids_where(self, where: dict) -> set[str]:
        """The ids of the chunks matching a metadata filter (ids only, page by page)."""
        ids: set[str] = set()
        offset = 0
        while True:
            page = self.collection.get(where=where, limit=PAGE, offset=offset, include=[])
            ids.update(page["ids"])
            if len(page["ids"]) < PAGE:
                return ids
            offset += PAGE

    def iter_sentences(self) -> Iterator[tuple[str, dict]]:
        """(id, metadata) of every stored sentence vector, page by page."""
        offset = 0
        while True:
            page = self._sentence_page(offset)
            if not page["ids"]:
                return
            yield from zip(page["ids"], (dict(m or {}) for m in page["metadatas"]))
            offset += len(page["ids"])

    @_server_call
    def _sentence_page(self, offset: int) -> dict:
        return self.sentences.get(limit=PAGE, offset=offset, include=["metadatas"])

    @_server_call
    def sentence_vectors(self, chunk_ids: list[str]) -> dict[str, ChunkSentences]:
        """Chunk id -> its sentences' spans and vectors, for the chunks that have them."""
        if not chunk_ids:
            return {}
        page = self.sentences.get(where={"chunk_id": {"$in": chunk_ids}}, include=["embeddings", "metadatas"])
        grouped: dict[str, list] = {}
        for meta, vector in zip(page["metadatas"], page["embeddings"]):
            grouped.setdefault(meta["chunk_id"], []).append(((int(meta["start"]), int(meta["end"])), vector))
        sentences = {}
        for cid, rows in grouped.items():
            rows.sort(key=lambda row: row[0])
            sentences[cid] = ChunkSentences([span for span, _ in rows], np.asarray([v for _, v in rows], dtype=np.float32))
        return sentences

    @_server_call
    def whole_chunk_vectors(self, chunk_ids: list[str]) -> dict[str, ChunkSentences]:
        """Chunk id -> the chunk's own vector as its one sentence (what a chunk of one sentence has
        instead of sentence vectors)."""
        if not chunk_ids:
            return {}
        page = self.collection.get(ids=chunk_ids, include=["embeddings", "metadatas"])
        return {
            cid: ChunkSentences([(int(meta["start"]), int(meta["end"]))], np.asarray([vector], dtype=np.float32))
            for cid, meta, vector in zip(page["ids"], page["metadatas"], page["embeddings"])
        }

    # --- writes ------------------------------------------------------------------------------
    @_server_call
    def upsert(self, ids: list[str], vectors: np.ndarray, texts: list[str], metas: list[dict]) -> None:
        for i in range(0, len(ids), PAGE):
            self.collection.upsert(
                ids=ids[i : i + PAGE],
                embeddings=vectors[i : i + PAGE],
                documents=texts[i : i + PAGE],
                metadatas=metas[i : i + PAGE],
            )

    @_server_call
    def delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), PAGE):
            self.collection.delete(ids=ids[i : i + PAGE])

    @_server_call
    def upsert_sentences(self, ids: list[str], vectors: np.ndarray, metas: list[dict]) -> None:
        for i in range(0, len(ids), PAGE):
            self.sentences.upsert(ids=ids[i : i + PAGE], embeddings=vectors[i : i + PAGE], metadatas=metas[i : i + PAGE])

    @_server_call
    def delete_sentence_ids(self, ids: list[str]) -> None:
        for i in range(0, len(ids), PAGE):
            self.sentences.delete(ids=ids[i : i + PAGE])

    @_server_call
    def delete_sentences(self, chunk_ids: list[str]) -> None:
        """Delete the sentence vectors of these chunks."""
        for i in range(0, len(chunk_ids), PAGE):
            self.sentences.delete(where={"chunk_id": {"$in": chunk_ids[i : i + PAGE]}})
