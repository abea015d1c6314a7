"""Ingest throughput against the embedder's own ceiling (``assistant bench ingest``).

Ingests the first N articles of a JSON Lines archive into a throwaway store through the product's
own path (``Assistant.ingest_articles``: read → clean → chunk → look up → embed → Chroma → BM25),
then embeds the same chunk texts again with nothing else running: the embedder's ceiling. On a
CPU the embedder is the wall, so ingest words/s over ceiling words/s says how much the rest of the
pipeline costs. "Words" are the whitespace-separated words of the texts given to the embedder
(title line plus passage, and each sentence with its title when ``embedding.sentences`` is on),
the same texts in both measurements.

The ceiling can be measured on a systematic sample of the chunks (every k-th text) to save time;
the report says which share. The embedding model is loaded before either clock starts.

With ``ray_workers`` the same articles are then ingested again with ``ingest.engine: ray``, once
per worker count, each into its own throwaway store: their words/s next to the local engine's, in
one run. A Ray run's clock includes starting Ray and its workers (reported apart as well).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
import time
from pathlib import Path

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.errors import InputError
from assistant.eval.archive import archive_articles, folder_mb, machine
from assistant.eval.latency import peak_rss_mb
from assistant.ingest import prepare
from assistant.store import indexed_text, sentence_rows


def run_ingest_bench(
    settings: Settings,
    data: Path,
    limit: int | None,
    ceiling_share: float = 0.25,
    keep: Path | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
    ray_workers: tuple[int, ...] = (),
) -> dict:
    """``keep``: build the store in this folder and leave it (e.g. for ``bench retrieval``);
    otherwise a temporary folder is removed at the end. ``ray_workers``: worker counts to ingest
    the same articles with on the Ray engine afterwards."""
    folder = keep or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    if keep and keep.exists():
        # Only an earlier bench store is replaced: never a folder that holds anything else.
        if not {p.name for p in keep.iterdir()} <= {"chroma", "lexical"}:
            raise InputError(f"--keep {keep}: the folder exists and is not an earlier bench store; give a new or empty one")
        shutil.rmtree(keep)
    store = {"mode": "persistent", "path": folder / "chroma", "lexical_cache": folder / "lexical", "collection": "bench-ingest"}
    settings = settings.model_copy(update={"store": settings.store.model_copy(update=store)})
    local = settings.ingest.model_copy(update={"engine": "local"})  # the reference, whatever the config says
    settings = settings.model_copy(update={"ingest": local})
    assistant = Assistant(settings)
    try:
        assistant.embedder.embed_passages(["warm-up"])  # the model loads before the clock starts
        # Streamed from the archive inside the clock, as `assistant ingest` reads it.
        report = assistant.ingest_articles(
            itertools.islice(archive_articles(data, settings), limit), progress=progress, stop=stop, total=limit
        )
        rss = peak_rss_mb()
        store_mb = folder_mb(folder)

        # The same texts the ingest embedded (preparing is deterministic): each passage, then its
        # sentences when embedding.sentences is on. Words counted alike.
        written = set(report.added) | set(report.replaced)
        texts = []
        for article in itertools.islice(archive_articles(data, settings), limit):
            prepared = prepare(article, settings) if article.doc_id in written else None
            if prepared is not None:
                texts += [indexed_text(prepared.meta["title"], c.text, settings.embedding.include_title) for c in prepared.chunks]
                texts += sentence_rows([prepared], settings)[1]
        words = sum(len(t.split()) for t in texts)
        step = max(1, round(1 / ceiling_share))
        sample = texts[::step]
        # Given to the embedder in calls as large as the ingest's (a write batch's passages and
        # sentences): an embedder that sorts a call's texts by length pads less in larger calls.
        per_call = max(settings.embedding.batch_size, round(len(texts) * settings.ingest.batch_chunks / max(1, report.chunks_written)))
        started = time.perf_counter()
        for i in range(0, len(sample), per_call):
            assistant.embedder.embed_passages(sample[i : i + per_call])
        ceiling_seconds = time.perf_counter() - started
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)

    engines = [_engine_run(settings, data, limit, workers, written, words, progress, stop) for workers in ray_workers]

    seconds = report.seconds
    ceiling = sum(len(t.split()) for t in sample) / ceiling_seconds if ceiling_seconds else 0.0
    stages = dict(report.stage_seconds)
    stages["other"] = max(0.0, seconds - sum(stages.values()))
    words_per_s = words / seconds if seconds else 0.0
    return {
        "data": str(data),
        "articles": len(written),
        "chunks": report.chunks_written,
        "words": words,
        "seconds": round(seconds, 2),
        "articles_per_s": round(len(written) / seconds, 3) if seconds else 0.0,
        "chunks_per_s": round(report.chunks_written / seconds, 3) if seconds else 0.0,
        "words_per_s": round(words_per_s, 1),
        "ceiling_words_per_s": round(ceiling, 1),
        "embedded_texts": len(texts),  # passages, and their sentences when embedding.sentences is on
        "ceiling_sample": {"texts": len(sample), "share": round(len(sample) / len(texts), 3) if texts else 0.0,
                           "seconds": round(ceiling_seconds, 2)},
        "ratio": round(words_per_s / ceiling, 3) if ceiling else 0.0,
        "peak_rss_mb": round(rss, 1),
        "store_mb": round(store_mb, 1),
        "stages": {name: {"seconds": round(s, 2), "share": round(s / seconds, 4) if seconds else 0.0} for name, s in stages.items()},
        "interrupted": report.interrupted,
        "skipped": len(report.skipped),
        "machine": machine(),
        "embedding": {"model": assistant.embedder.model_id, "batch_size": settings.embedding.batch_size},
        "engines": [
            {**run, "vs_local": round(run["words_per_s"] / words_per_s, 3) if words_per_s else 0.0} for run in engines
        ],
    }


def _engine_run(
    settings: Settings, data: Path, limit: int | None, workers: int, written: set[str], words: int,
    progress: bool, stop: threading.Event | None,
) -> dict:
    """The same articles ingested with the Ray engine and ``workers`` workers, into a new store."""
    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-ray-"))
    try:
        store = settings.store.model_copy(update={"path": folder / "chroma", "lexical_cache": folder / "lexical"})
        ingest = settings.ingest.model_copy(
            update={"engine": "ray", "ray": settings.ingest.ray.model_copy(update={"workers": workers})}
        )
        assistant = Assistant(settings.model_copy(update={"store": store, "ingest": ingest}))
        report = assistant.ingest_articles(
            itertools.islice(archive_articles(data, settings), limit), progress=progress, stop=stop, total=limit
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if set(report.added) != written and not report.interrupted:
        raise RuntimeError(f"the Ray engine wrote {len(report.added)} articles, the local one {len(written)}")
    seconds = report.seconds
    return {
        "engine": "ray",
        "workers": workers,
        "cpus_per_worker": settings.ingest.ray.cpus_per_worker,
        "address": settings.ingest.ray.address or "local instance",
        "articles": len(report.added),
        "chunks": report.chunks_written,
        "seconds": round(seconds, 2),
        "startup_seconds": round(report.stage_seconds.get("workers", 0.0), 2),
        "words_per_s": round(words / seconds, 1) if seconds else 0.0,
        "interrupted": report.interrupted,
    }


def format_ingest_table(result: dict) -> str:
    lines = [
        f"{result['articles']} articles, {result['chunks']} chunks, {result['words']} words in {result['seconds']:.1f} s",
        f"  {result['articles_per_s']:.2f} articles/s, {result['chunks_per_s']:.2f} chunks/s, {result['words_per_s']:.0f} words/s",
        f"  embedder ceiling: {result['ceiling_words_per_s']:.0f} words/s "
        f"(on {result['ceiling_sample']['texts']} of the {result['embedded_texts']} texts embedded, passages and sentences)",
        f"  ratio (ingest / ceiling): {result['ratio']:.3f}",
        f"  peak RSS {result['peak_rss_mb']:.0f} MB, store {result['store_mb']:.1f} MB on disk",
        "  time per stage:",
    ]
    for name, stage in sorted(result["stages"].items(), key=lambda kv: -kv[1]["seconds"]):
        lines.append(f"    {name:<8} {stage['seconds']:9.2f} s  {stage['share']:6.1%}")
    if result["engines"]:
        lines += ["", f"{'engine':<22} {'seconds':>8} {'of which start':>15} {'words/s':>8} {'vs local':>9}",
                  f"{'local':<22} {result['seconds']:8.1f} {0.0:15.1f} {result['words_per_s']:8.0f} {1.0:9.3f}"]
        for run in result["engines"]:
            name = f"ray, {run['workers']} worker{'s' if run['workers'] > 1 else ''}"
            lines.append(f"{name:<22} {run['seconds']:8.1f} {run['startup_seconds']:15.1f} {run['words_per_s']:8.0f} {run['vs_local']:9.3f}")
    return "\n".join(lines)
