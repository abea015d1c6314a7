"""The ingest pipeline: read → clean → chunk → embed → store, idempotent and streaming.

Articles flow through in batches, never all in memory: an archive of any size is read line by
line. Each batch of articles is looked up in the index (one query), unchanged ones (same content
hash, complete) are skipped, changed ones have their chunks replaced, and chunks are embedded and
written in batches of whole articles. So an interrupted ingest leaves every article old, new, or
marked incomplete for the next run to fix; a rerun embeds only what is missing.

Where the passages are embedded is the engine's business (``ingest.engine``, assistant.embed):
in this process, or on Ray workers with a few batches in flight; either way they come back in
order and are written here, by the same code.

``stop`` (set by the CLI on Ctrl-C) ends the run after the batch being written.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from assistant.chunk import PAGE_STARTS, chunk_article, page_starts
from assistant.clean import clean_article
from assistant.config import Settings, megabytes
from assistant.dates import day_number
from assistant.documents import DocumentRules
from assistant.embed import Embedder, EmbeddingEngine, check_engine, open_engine
from assistant.fetch import FollowState, is_url, read_urls
from assistant.errors import InputError
from assistant.models import Article, IngestReport
from assistant.read import Opened, Skipped, expand_paths, read_paths
from assistant.store import ArticleChunks, DocState, Index, SentenceVectors, indexed_text, sentence_rows
from assistant.timing import StageTimer

# Articles whose index state is fetched in one query.
LOOKUP_BATCH = 64
# Save the BM25 index at least this often during a long ingest (what a crash can cost to redo).
SAVE_EVERY_S = 600.0
# Chunk metadata key holding ``text_hash``: finds an article already indexed under another id.
TEXT_HASH = "text_hash"


def content_hash(article: Article, settings: Settings) -> str:
    shaping = {
        "title": article.title,
        "text": article.text,
        "source": article.source,
        "url": article.url,
        "date": article.date,
        "chunking": settings.chunking.model_dump(),
        "include_title": settings.embedding.include_title,
        "sentences": settings.embedding.sentences,
    }
    if article.date:  # stored as a number too, for date filters (indexes from before lack it)
        shaping["day"] = day_number(article.date)
    if article.author:  # only when there is one, so that other articles keep their hash
        shaping["author"] = article.author
    if article.line_pages:
        shaping["pages"] = page_starts(article.text, article.line_pages)
    return hashlib.sha1(json.dumps(shaping, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def text_hash(article: Article) -> str:
    """The cleaned article's title and text, whitespace ignored: the same article saved under two
    names (or with Windows line ends) has one hash. Unlike ``content_hash``, the file name (the
    source) and the settings do not count."""
    words = " ".join(article.title.split()) + "\n" + " ".join(article.text.split())
    return hashlib.sha1(words.encode("utf-8")).hexdigest()


def prepare(article: Article, settings: Settings) -> ArticleChunks | None:
    """Clean and chunk one article; None when nothing is left after cleaning."""
    cleaned = clean_article(article, settings.cleaning)
    if not cleaned.text.strip():
        return None
    chunks = chunk_article(cleaned.doc_id, cleaned.text, settings.chunking)
    meta = {
        "title": cleaned.title, "source": cleaned.source, "url": cleaned.url, "date": cleaned.date,
        TEXT_HASH: text_hash(cleaned),
    }
    if cleaned.date:  # Chroma metadata has no null: an undated article has no "day"
        meta["day"] = day_number(cleaned.date)
    if cleaned.author:
        meta["author"] = cleaned.author
    if cleaned.line_pages:  # a PDF's: each passage can say which page it is on
        meta[PAGE_STARTS] = page_starts(cleaned.text, cleaned.line_pages)
    return ArticleChunks(cleaned.doc_id, meta, chunks, content_hash(cleaned, settings))


def check_sources(paths: list[str | Path], extensions: list[str]) -> tuple[list[str | Path], list[str]]:
    """``paths`` split into (files and folders, URLs), the files checked with ``check_paths``
    (URLs are checked one by one as they are fetched)."""
    urls = [p for p in paths if is_url(p)]
    files = [p for p in paths if not is_url(p)]
    if files or not urls:
        check_paths(files, extensions)
    return files, urls


def check_paths(paths: list[str | Path], extensions: list[str]) -> None:
    """Raise InputError when ``paths`` hold no file to read at all (each missing, unreadable or
    unsupported): before anything is changed, e.g. before ``--rebuild`` drops the index. When some
    can be read, the others are only reported by the ingest, and the rest is indexed."""
    if not paths:
        raise InputError("give at least one file or folder to ingest")
    files, problems = expand_paths(paths, extensions)
    if not files:
        why = "; ".join(f"{s.path}: {s.reason}" for s in problems[:3]) or f"no article files in {', '.join(map(str, paths))}"
        if len(problems) > 3:
            why += f"; and {len(problems) - 3} more"
        raise InputError(
            f"nothing to ingest ({why}). Give files or folders of {' '.join(extensions)} articles; the index was not changed."
        )


def ingest(
    paths: list[str | Path],
    settings: Settings,
    index: Index,
    embedder: Embedder,
    progress: bool = False,
    stop: threading.Event | None = None,
    follow: bool = False,
) -> IngestReport:
    """``follow``: remember the feeds' ETag/Last-Modified and the pages read (``FollowState``,
    beside the BM25 index), so that a rerun asks only for what changed.

    Ingest files, folders and URLs (pages and feeds, see assistant.fetch). A path that is
    missing or unreadable, or a URL that cannot be read, is reported in the report
    (an error) and the rest of the batch is indexed; only when nothing at all can be read does it
    raise InputError (see ``check_paths``), before anything is written.

    An article with the same title and text as one already indexed (or read earlier in this run)
    under another doc id is skipped and reported, not an error: one copy is indexed."""
    files, urls = check_sources(paths, settings.ingest.extensions)

    report = IngestReport()
    max_bytes = megabytes(settings.ingest.max_file_mb)

    state = FollowState.load(index.follow_state_path, index.collection_id) if follow else None

    def articles() -> Iterator[Article]:
        documents = DocumentRules(settings.ingest.max_pages, settings.ingest.ocr)
        read = read_paths(files, settings.ingest.extensions, max_bytes, documents) if files else iter(())
        for item in itertools.chain(read, read_urls(urls, settings.ingest, state)):
            if isinstance(item, Opened):
                report.files_read += 1
            elif isinstance(item, Skipped):
                report.skip(item.path, item.reason, item.error)
            else:
                yield item

    total = count_articles(files, settings.ingest.extensions) if progress and not urls else None
    report = ingest_articles(
        articles(), settings, index, embedder, progress, report, stop=stop, total=total, skip_same_text=True
    )
    if state is not None and not report.interrupted:  # an interrupted run is redone next time
        state.save()
    return report


def count_articles(paths: list[str | Path], extensions: list[str]) -> int:
    """About how many articles ``paths`` hold (lines of JSON Lines files), for the progress bar."""
    files, _ = expand_paths(paths, extensions)
    total = 0
    for path in files:
        name = path.name.lower()
        if not name.endswith((".jsonl", ".jsonl.gz")):
            total += 1
            continue
        try:
            with (gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb")) as f:
                total += sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
        except (OSError, EOFError):
            pass  # the reader reports the damage
    return total


def ingest_articles(
    articles: Iterable[Article],
    settings: Settings,
    index: Index,
    embedder: Embedder,
    progress: bool = False,
    report: IngestReport | None = None,
    stop: threading.Event | None = None,
    total: int | None = None,
    skip_same_text: bool = False,
) -> IngestReport:
    """Clean, chunk, embed and store articles; unchanged ones are skipped, changed ones replaced.
    ``total``: how many articles to expect (for the progress bar's ETA), when known.
    ``skip_same_text``: skip a new article whose title and text an article with another id already
    has (off for callers that own their ids, e.g. benchmarks whose questions point at each id)."""
    run = _IngestRun(settings, index, embedder, report or IngestReport(), progress, total, stop, skip_same_text)
    try:
        run.consume(articles)
    finally:
        run.finish()
    return run.report


class _IngestRun:
    def __init__(
        self, settings: Settings, index: Index, embedder: Embedder, report: IngestReport, progress: bool, total: int | None,
        stop: threading.Event | None, skip_same_text: bool = False,
    ):
        self.settings, self.index, self.embedder, self.report = settings, index, embedder, report
        self.skip_same_text = skip_same_text
        self.stop = stop or threading.Event()
        self.timer = StageTimer()
        self.started = time.perf_counter()
        self.last_save = self.started
        self.origin: dict[str, str] = {}  # doc id -> where it was read, to report duplicates
        self.kept_text: dict[str, str] = {}  # text hash -> the doc id kept with it in this run
        self.text_of: dict[str, str] = {}  # doc id kept in this run -> its text hash
        self.looking_up: list[ArticleChunks] = []
        self.to_write: list[tuple[ArticleChunks, DocState | None]] = []
        check_engine(settings.ingest)
        self._engine: EmbeddingEngine | None = None  # opened at the first batch to embed
        # Counts articles done (written, unchanged or skipped), so its rate and ETA are real.
        self.bar = tqdm(total=total, desc="ingest", unit="article", disable=not progress, smoothing=0.05)
        with self.timer("lexical"):
            index.lexical()  # loaded now, it follows every write in place

    @property
    def engine(self) -> EmbeddingEngine:
        """Opened when first needed: a rerun with nothing new starts no Ray workers."""
        if self._engine is None:
            remote = self.settings.ingest.engine != "local"
            with self.timer("workers") if remote else contextlib.nullcontext():  # Ray starts workers, loads models
                self._engine = open_engine(self.settings.ingest, self.settings.embedding, self.embedder)
        return self._engine

    def consume(self, articles: Iterable[Article]) -> None:
        stream = iter(articles)
        while not self.stop.is_set():
            with self.timer("read"):
                article = next(stream, None)
            if article is None:
                self.lookup()
                self.write(flush=True)
                break
            self.add(article)
        # What was read but not written is left for the next run.
        self.report.interrupted = self.stop.is_set() and bool(
            self.looking_up or self.to_write or (self._engine and self._engine.pending()) or next(stream, None)
        )

    def add(self, article: Article) -> None:
        report = self.report
        report.articles_seen += 1
        where = article.path or article.doc_id
        if article.doc_id in self.origin:
            report.skip(where, f"duplicate doc id '{article.doc_id}' (already read from {self.origin[article.doc_id]})")
            self.bar.update(1)
            return
        self.origin[article.doc_id] = where
        with self.timer("prepare"):
            prepared = prepare(article, self.settings)
        if prepared is None:
            report.skip(where, "no article text left after cleaning")
            self.bar.update(1)
            return
        self.looking_up.append(prepared)
        if len(self.looking_up) >= LOOKUP_BATCH:
            self.lookup()
            self.write()

    def lookup(self) -> None:
        """Keep the articles that are new or changed, with what the index holds of them."""
        if not self.looking_up:
            return
        with self.timer("lookup"):
            states = self.index.doc_states(a.doc_id for a in self.looking_up)
            held = self._held_texts(states)
        for prepared in self.looking_up:
            state = states.get(prepared.doc_id)
            copy_of = self._copy_of(prepared, held) if state is None and self.skip_same_text else None
            if copy_of is not None:
                self.report.skip(self.origin[prepared.doc_id], f"same title and text as {copy_of}", error=False)
                self.bar.update(1)
                continue
            if self.skip_same_text:
                digest = prepared.meta[TEXT_HASH]
                self.kept_text.setdefault(digest, prepared.doc_id)
                self.text_of[prepared.doc_id] = digest
            if state is not None and state.complete and state.doc_hashes == {prepared.doc_hash}:
                self.report.unchanged.append(prepared.doc_id)
                self.bar.update(1)
                continue
            self.to_write.append((prepared, state))
        self.looking_up = []

    def _held_texts(self, states: dict[str, DocState]) -> dict[str, list[str]]:
        """Text hash -> doc ids the index holds it under, for this batch's new articles. Only new
        ones are checked: a doc id already indexed is always updated, even to a copy of another."""
        if not self.skip_same_text:
            return {}
        wanted = {a.meta[TEXT_HASH] for a in self.looking_up if a.doc_id not in states}
        return self.index.doc_ids_with_text_hash(wanted) if wanted else {}

    def _copy_of(self, prepared: ArticleChunks, held: dict[str, list[str]]) -> str | None:
        """'doc id (where)' of the article this new one copies, or None."""
        digest = prepared.meta[TEXT_HASH]
        first = self.kept_text.get(digest)
        if first is not None:
            return f"{first} ({self.origin[first]})"
        for doc_id in held.get(digest, []):
            # One rewritten in this run no longer has that text. (One rewritten later in the run
            # may lose it too: then this copy is reported here and the next ingest adds it.)
            if self.text_of.get(doc_id, digest) == digest:
                return f"{doc_id} (already in the index)"
        return None

    def write(self, flush: bool = False) -> None:
        batch: list[tuple[ArticleChunks, DocState | None]] = []
        size = 0
        pending = self.to_write
        self.to_write = []
        for position, item in enumerate(pending):
            batch.append(item)
            size += len(item[0].chunks)
            if (size >= self.settings.ingest.batch_chunks or (flush and position == len(pending) - 1)) and not self.stop.is_set():
                self._write_batch(batch)
                batch, size = [], 0
        self.to_write = batch  # a partial batch waits for more articles
        if flush:
            self._write_embedded(keep=0)
        if time.perf_counter() - self.last_save > SAVE_EVERY_S:
            self.save()

    def _write_batch(self, batch: list[tuple[ArticleChunks, DocState | None]]) -> None:
        """Hand the batch's passages to the engine; write the batches it has embedded, keeping at
        most its lookahead in flight (none for the local engine)."""
        articles = [a for a, _ in batch]
        include_title = self.settings.embedding.include_title
        texts = [indexed_text(a.meta["title"], c.text, include_title) for a in articles for c in a.chunks]
        sentence_ids, sentence_texts, sentence_metas = sentence_rows(articles, self.settings)
        engine = self.engine
        with self.timer("embed"):
            engine.submit(texts + sentence_texts, (batch, len(texts), sentence_ids, sentence_metas))
        self._write_embedded(keep=engine.lookahead)

    def _write_embedded(self, keep: int) -> None:
        if self._engine is None:
            return
        embedded = self._engine.finished(keep)
        while not self.stop.is_set():  # after a stop, what is still embedding is left for the next run
            with self.timer("embed"):  # for a Ray engine: waiting for the workers
                done = next(embedded, None)
            if done is None:
                return
            (batch, chunk_count, sentence_ids, sentence_metas), vectors = done
            self._store(batch, vectors[:chunk_count], SentenceVectors(sentence_ids, vectors[chunk_count:], sentence_metas))

    def _store(self, batch: list[tuple[ArticleChunks, DocState | None]], vectors, sentences: SentenceVectors) -> None:
        articles = [a for a, _ in batch]
        stale = [cid for _, state in batch if state is not None for cid in state.chunk_ids]
        self.index.write(articles, vectors, stale, self.timer, sentences)
        for article, state in batch:
            (self.report.replaced if state is not None else self.report.added).append(article.doc_id)
        self.report.chunks_written += len(vectors)
        new_ids = {c.chunk_id for a in articles for c in a.chunks}
        self.report.chunks_deleted += sum(1 for cid in stale if cid not in new_ids)
        elapsed = time.perf_counter() - self.started
        self.bar.set_postfix_str(f"chunks={self.report.chunks_written}, {self.report.chunks_written / elapsed:.1f} chunks/s", refresh=False)
        self.bar.update(len(batch))

    def save(self) -> None:
        with self.timer("lexical"):
            self.index.save_lexical()
        self.last_save = time.perf_counter()

    def finish(self) -> None:
        if self._engine is not None:
            self._engine.close()
        self.bar.close()
        self.save()
        self.report.seconds = time.perf_counter() - self.started
        self.report.stage_seconds = {stage: round(seconds, 3) for stage, seconds in self.timer.seconds.items()}
