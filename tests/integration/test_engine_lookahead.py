"""The ingest with an engine that keeps batches in flight, as the Ray engine does, in-process:
the real embedder and Chroma, only the hand-back of vectors is deferred. The same index as the
local engine; a stop while batches are in flight leaves them for the next run."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
import pytest

import assistant.ingest as ingest_module
from assistant.assistant import Assistant
from assistant.models import Article

from .helpers import TEST_BATCH_CHUNKS
from .test_archive_ingest import _seed_articles

pytestmark = pytest.mark.slow
ARTICLES = 20  # three write batches of TEST_BATCH_CHUNKS (~74 chunks)
SMALL_BATCHES = {"ingest": {"batch_chunks": TEST_BATCH_CHUNKS}}


class DeferredEngine:
    """Embeds nothing until the ingest asks for a batch back, so that ``lookahead`` batches are
    really outstanding while the ingest reads and prepares the next ones."""

    def __init__(self, embedder, lookahead: int, on_submit=None):
        self.lookahead = lookahead
        self._embedder = embedder
        self._queued: deque = deque()
        self.submitted = 0
        self.most_in_flight = 0
        self._on_submit = on_submit
        self.closed = False

    def submit(self, texts, batch):
        self._queued.append((texts, batch))
        self.submitted += 1
        self.most_in_flight = max(self.most_in_flight, len(self._queued))
        if self._on_submit:
            self._on_submit(self)

    def finished(self, keep):
        while len(self._queued) > keep:
            texts, batch = self._queued.popleft()
            yield batch, self._embedder.embed_passages(texts)

    def pending(self):
        return len(self._queued)

    def close(self):
        self.closed = True
        self._queued.clear()


def articles() -> list[Article]:
    return [Article(doc_id=r["id"], title=r["title"], text=r["text"]) for r in _seed_articles(ARTICLES)]


def chunks(assistant: Assistant) -> dict[str, tuple]:
    got = assistant.index.vectors.collection.get(include=["embeddings", "documents", "metadatas"])
    return {i: (d, m, np.asarray(e)) for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"])}


def test_batches_in_flight_give_the_same_index_as_the_local_engine(settings_factory, tmp_path, monkeypatch):
    local = Assistant(settings_factory(tmp_path / "local", **SMALL_BATCHES))
    local.ingest_articles(articles())

    engines = []
    monkeypatch.setattr(
        ingest_module, "open_engine", lambda ingest, embedding, embedder: engines.append(DeferredEngine(embedder, 2)) or engines[-1]
    )
    deferred = Assistant(settings_factory(tmp_path / "deferred", **SMALL_BATCHES))
    report = deferred.ingest_articles(articles())

    [engine] = engines
    assert engine.submitted >= 2 and engine.most_in_flight >= 2 and engine.closed
    assert len(report.added) == ARTICLES and not report.interrupted
    ours, theirs = chunks(deferred), chunks(local)
    assert set(ours) == set(theirs)
    for chunk_id, (text, meta, vector) in ours.items():
        assert (text, meta) == theirs[chunk_id][:2]
        np.testing.assert_allclose(vector, theirs[chunk_id][2], atol=1e-6)
    assert sorted(deferred.index.lexical().chunk_ids) == sorted(ours)
    assert deferred.check().ok


def test_a_stop_with_batches_in_flight_leaves_them_for_the_next_run(settings_factory, tmp_path, monkeypatch):
    stop = threading.Event()
    engines = []

    def stop_at_second(engine):  # Ctrl-C while the second batch is embedding and the first was not handed back
        if engine.submitted == 2:
            stop.set()

    monkeypatch.setattr(
        ingest_module, "open_engine",
        lambda ingest, embedding, embedder: engines.append(DeferredEngine(embedder, 2, stop_at_second)) or engines[-1],
    )
    settings = settings_factory(tmp_path, **SMALL_BATCHES)
    first = Assistant(settings).ingest_articles(articles(), stop=stop)
    assert first.interrupted and first.chunks_written == 0 and engines[0].closed

    second = Assistant(settings).ingest_articles(articles())
    assert len(second.added) == ARTICLES and not second.interrupted
    again = Assistant(settings)
    assert again.check().ok and len(again.documents()) == ARTICLES
