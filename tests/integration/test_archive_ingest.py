"""An archive of a few hundred articles through `assistant ingest`: Ctrl-C halfway, resume, rerun.

The archive is a .jsonl.gz of 24 articles, ~3.7 chunks each, written in batches of 24 chunks
(``ingest.batch_chunks``), so that the ingest writes four batches: Ctrl-C comes once the first is
written, the one being written finishes, the rest is left. By default
the articles are built from the seeds' paragraphs (five per article, each article with its own
title), so the test needs nothing outside the repository. Set ASSISTANT_TEST_ARCHIVE to a JSON
Lines archive of real news (e.g. the ANT corpus) to run it on its first articles instead (their
texts cut to ~1,500 characters, to keep embedding short).

Checks: the interrupted run exits 130 with every written article whole; the rerun embeds only
what was missing; a third run changes nothing; Chroma and BM25 hold the same chunks, and every
chunk is found by dense search with its own vector and by BM25 with its own text.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import signal
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.config import load_settings

from .helpers import TEST_BATCH_CHUNKS, ingest_until_first_batch, write_jsonl_gz

REPO = Path(__file__).resolve().parents[2]
ARTICLES = 24
TEXT_CHARS = 1500


def _seed_articles(count: int = ARTICLES) -> list[dict]:
    paragraphs = [
        line.strip()
        for path in sorted((REPO / "seeds").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()[1:]
        if len(line.strip()) > 80
    ]
    return [
        {
            "id": f"synthetic-{i:03d}",
            "title": f"خبر رقم {i}: " + " ".join(paragraphs[i % len(paragraphs)].split()[:6]),
            "text": "\n".join(paragraphs[(i * 7 + k * 3) % len(paragraphs)] for k in range(5)),
        }
        for i in range(count)
    ]


def _real_articles(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in itertools.islice(f, ARTICLES)]
    return [{"id": r["id"], "title": r.get("title") or "", "text": r["text"][:TEXT_CHARS], "source": r.get("source") or ""} for r in records]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    given = os.environ.get("ASSISTANT_TEST_ARCHIVE")
    records = _real_articles(Path(given)) if given else _seed_articles()
    return write_jsonl_gz(tmp_path_factory.mktemp("archive") / "archive.jsonl.gz", records), records


def _interrupt_after_first_batch(cwd: Path, archive: Path) -> tuple[int, str]:
    """Run `assistant ingest --progress`, send SIGINT once a batch is written, and return
    (exit code, stderr)."""
    process, stderr = ingest_until_first_batch(cwd, archive)
    process.send_signal(signal.SIGINT)
    _out, rest = process.communicate(timeout=600)
    return process.returncode, (stderr + rest).decode("utf-8", errors="replace")


@pytest.mark.slow
def test_interrupted_archive_ingest_resumes_without_duplicates(config_factory, tmp_path, archive):
    path, records = archive
    config_factory(ingest={"batch_chunks": TEST_BATCH_CHUNKS})

    code, stderr = _interrupt_after_first_batch(tmp_path, path)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "Run the same command again" in stderr

    assistant = Assistant(load_settings(tmp_path / "config.yaml"))
    first_chunks = assistant.chunk_count()
    status = assistant.status()
    assert 0 < status.documents < len(records), "stopped halfway, not before or after everything"
    assert status.incomplete_documents == [], "every article written before the stop is whole"

    resumed = assistant.ingest([path])
    assert not resumed.interrupted and resumed.errors == []
    assert len(resumed.unchanged) == status.documents, "articles written before the stop are not embedded again"
    assert len(resumed.added) == len(records) - status.documents
    assert resumed.replaced == []
    total = assistant.chunk_count()
    assert resumed.chunks_written == total - first_chunks, "only the missing chunks were embedded"

    again = assistant.ingest([path])
    assert (len(again.unchanged), again.added, again.replaced, again.chunks_written) == (len(records), [], [], 0)

    # No duplicate and nothing missing: each article has exactly the chunks chunking gives it.
    documents = assistant.documents()
    assert len(documents) == len(records) and all(d.complete for d in documents)
    assert sum(d.chunks for d in documents) == total

    # Dense and BM25 agree, in this process and in a fresh one (the saved BM25 snapshot).
    for reader in (assistant, Assistant(load_settings(tmp_path / "config.yaml"))):
        stored = list(reader.index.vectors.iter_chunks())
        assert sorted(reader.index.lexical().chunk_ids) == sorted(c.chunk_id for c in stored)
    vectors = assistant.index.vectors.collection.get(include=["embeddings"])
    for chunk_id, vector in zip(vectors["ids"], vectors["embeddings"]):
        assert assistant.index.dense_search(vector, 1)[0][0] == chunk_id, "every chunk is reachable by its own vector"
    for chunk in stored[::7]:
        found = [cid for cid, _ in assistant.index.lexical_search(chunk.meta["title"] + "\n" + chunk.text, 3)]
        assert chunk.chunk_id in found
