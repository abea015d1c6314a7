"""The ingest pipeline: read → clean → chunk → embed → store, idempotent.

Unchanged articles (same content hash, complete in the index) are skipped; a changed article's
chunks are replaced; articles are written whole, in batches, so an interrupted ingest leaves every
article either old, new, or marked incomplete for the next run to fix.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from assistant.chunk import chunk_article
from assistant.clean import clean_article
from assistant.config import Settings, megabytes
from assistant.embed import Embedder
from assistant.errors import InputError
from assistant.models import Article, IngestReport
from assistant.read import Skipped, read_paths
from assistant.store import ArticleChunks, Index, indexed_text

# Chunks embedded and written per batch (articles are never split across batches).
WRITE_BATCH = 256


def content_hash(article: Article, settings: Settings) -> str:
    shaping = {
        "title": article.title,
        "text": article.text,
        "source": article.source,
        "url": article.url,
        "date": article.date,
        "chunking": settings.chunking.model_dump(),
        "include_title": settings.embedding.include_title,
    }
    return hashlib.sha1(json.dumps(shaping, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def prepare(article: Article, settings: Settings) -> ArticleChunks | None:
    """Clean and chunk one article; None when nothing is left after cleaning."""
    cleaned = clean_article(article, settings.cleaning)
    if not cleaned.text.strip():
        return None
    chunks = chunk_article(cleaned.doc_id, cleaned.text, settings.chunking)
    meta = {"title": cleaned.title, "source": cleaned.source, "url": cleaned.url, "date": cleaned.date}
    return ArticleChunks(cleaned.doc_id, meta, chunks, content_hash(cleaned, settings))


def ingest(
    paths: list[str | Path],
    settings: Settings,
    index: Index,
    embedder: Embedder,
    progress: bool = False,
) -> IngestReport:
    """Ingest files and folders; every path must exist (checked before anything is written)."""
    if not paths:
        raise InputError("give at least one file or folder to ingest")
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(missing)} (nothing was ingested)")

    report = IngestReport()
    max_bytes = megabytes(settings.ingest.max_file_mb)

    def articles() -> Iterator[Article]:
        items = read_paths(paths, settings.ingest.extensions, max_bytes)
        for item in tqdm(items, desc="reading", unit="file", disable=not progress):
            if isinstance(item, Skipped):
                report.skip(item.path, item.reason, item.error)
                continue
            report.files_read += 1
            for skipped in item.skipped:
                report.skip(skipped.path, skipped.reason, skipped.error)
            yield from item.articles

    return ingest_articles(articles(), settings, index, embedder, progress, report)


def ingest_articles(
    articles: Iterable[Article],
    settings: Settings,
    index: Index,
    embedder: Embedder,
    progress: bool = False,
    report: IngestReport | None = None,
) -> IngestReport:
    """Clean, chunk, embed and store articles; unchanged ones are skipped, changed ones replaced."""
    started = time.perf_counter()
    report = report or IngestReport()
    states = index.doc_states()
    todo: list[ArticleChunks] = []
    origin: dict[str, str] = {}
    for article in articles:
        report.articles_seen += 1
        where = article.path or article.doc_id
        if article.doc_id in origin:
            report.skip(where, f"duplicate doc id '{article.doc_id}' (already read from {origin[article.doc_id]})")
            continue
        origin[article.doc_id] = where
        prepared = prepare(article, settings)
        if prepared is None:
            report.skip(where, "no article text left after cleaning")
            continue
        state = states.get(prepared.doc_id)
        if state is not None and state.complete and state.doc_hashes == {prepared.doc_hash}:
            report.unchanged.append(prepared.doc_id)
            continue
        (report.replaced if state is not None else report.added).append(prepared.doc_id)
        todo.append(prepared)

    total = sum(len(a.chunks) for a in todo)
    with tqdm(total=total, desc="embedding", unit="chunk", disable=not progress or total == 0) as bar:
        batch: list[ArticleChunks] = []
        size = 0
        for position, article in enumerate(todo):
            batch.append(article)
            size += len(article.chunks)
            if size >= WRITE_BATCH or position == len(todo) - 1:
                _write(batch, settings, index, embedder, states, report)
                bar.update(size)
                batch, size = [], 0
    report.seconds = time.perf_counter() - started
    return report


def _write(batch: list[ArticleChunks], settings: Settings, index: Index, embedder: Embedder, states: dict, report: IngestReport) -> None:
    include_title = settings.embedding.include_title
    texts = [indexed_text(a.meta["title"], c.text, include_title) for a in batch for c in a.chunks]
    vectors = embedder.embed_passages(texts)
    stale = [cid for a in batch if a.doc_id in states for cid in states[a.doc_id].chunk_ids]
    index.write(batch, vectors, stale)
    report.chunks_written += len(texts)
    new_ids = {c.chunk_id for a in batch for c in a.chunks}
    report.chunks_deleted += sum(1 for cid in stale if cid not in new_ids)
