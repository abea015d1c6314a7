"""Known-item search with and without outlet and date filters (``assistant bench known-item``).

A user who remembers reading something ("that Al Arabiya piece in February 2018 about …") asks
with a few of its words, and knows the outlet and the month. Here the question is the first
``words`` words of an article's title (the whole title is too easy: it is indexed with every
passage of its article), and the answer is that article: recall@1 is the share of questions whose article ranks first, asked
once over the whole archive and once restricted to the article's outlet and publication month.

The archive is sampled systematically (every k-th record, so that every outlet is in it) and
ingested through the product's own path into a store that is kept and reused (``--store``): a
rerun embeds nothing again. Questions are every m-th sampled article that has a title, an outlet
and a date.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.eval.archive import archive_articles, machine
from assistant.eval.metrics import first_relevant_rank, percentile, retrieval_metrics
from assistant.models import Article, Filters


def _sample(data: Path, settings: Settings, every: int, limit: int) -> list[Article]:
    return list(itertools.islice(itertools.islice(archive_articles(data, settings), 0, None, every), limit))


def run_known_item_bench(
    settings: Settings, data: Path, limit: int, every: int, questions: int, store: Path, words: int = 0,
    progress: bool = False, stop=None,
) -> dict:
    """``words``: how many of the title's first words are asked (0: the whole title)."""
    update = {"mode": "persistent", "path": store / "chroma", "lexical_cache": store / "lexical", "collection": "bench-known-item"}
    settings = settings.model_copy(update={"store": settings.store.model_copy(update=update)})
    assistant = Assistant(settings)
    articles = _sample(data, settings, every, limit)
    started = time.perf_counter()
    report = assistant.ingest_articles(iter(articles), progress=progress, stop=stop, total=len(articles))
    ingest_s = time.perf_counter() - started
    documents = {d.doc_id: d for d in assistant.documents()}
    askable = [d for a in articles if (d := documents.get(a.doc_id)) and d.title and d.source and d.date]
    step = max(1, len(askable) // questions) if questions else 1
    asked = askable[::step][:questions]

    ranks: dict[str, list[int | None]] = {"all": [], "filtered": []}
    times: dict[str, list[float]] = {"all": [], "filtered": []}
    outside = 0  # passages a filtered search returned from other outlets or months (must be 0)
    for doc in asked:
        month = doc.date[:7]
        filters = Filters(sources=[doc.source], since=month, until=month)
        for kind, active in (("all", None), ("filtered", filters)):
            t0 = time.perf_counter()
            question = " ".join(doc.title.split()[:words]) if words else doc.title
            passages = assistant.search(question, top_k=10, filters=active)
            times[kind].append((time.perf_counter() - t0) * 1000)
            ranks[kind].append(first_relevant_rank([p.doc_id for p in passages], [doc.doc_id]))
            if active is not None:
                outside += sum(1 for p in passages if p.source != doc.source or not p.date.startswith(month))
    return {
        "data": str(data),
        "sample": {"every": every, "limit": limit, "articles": len(articles), "indexed": len(documents),
                   "outlets": len({d.source for d in documents.values() if d.source}),
                   "dated_share": round(sum(1 for d in documents.values() if d.date) / max(1, len(documents)), 3)},
        "ingest": {"seconds": round(ingest_s, 1), "added": len(report.added), "unchanged": len(report.unchanged),
                   "interrupted": report.interrupted},
        "questions": len(asked),
        "title_words": words or "all",
        "without_filter": {**retrieval_metrics(ranks["all"]), "p50_ms": _p(times["all"], 50), "p95_ms": _p(times["all"], 95)},
        "with_filter": {**retrieval_metrics(ranks["filtered"]), "p50_ms": _p(times["filtered"], 50), "p95_ms": _p(times["filtered"], 95)},
        "passages_outside_the_filter": outside,
        "machine": machine(),
    }


def _p(values: list[float], pct: int) -> float | None:
    return round(percentile(values, pct), 1) if values else None


def format_known_item_table(result: dict) -> str:
    s = result["sample"]
    lines = [
        f"known-item search on {result['data']}: every {s['every']}th article, {s['indexed']} indexed "
        f"({s['outlets']} outlets, {s['dated_share']:.0%} dated); {result['questions']} titles asked "
        f"({result['title_words']} of their first words)",
        "",
        "| | hit@1 | hit@5 | MRR | p50 / p95 ms |",
        "|---|---|---|---|---|",
    ]
    for label, key in (("whole archive", "without_filter"), ("outlet and month", "with_filter")):
        m = result[key]
        lines.append(f"| {label} | {_f(m['hit_at_1'])} | {_f(m['hit_at_5'])} | {_f(m['mrr'])} | {m['p50_ms']} / {m['p95_ms']} |")
    lines.append("")
    lines.append(f"passages outside the filter: {result['passages_outside_the_filter']}; ingest {result['ingest']['seconds']} s "
                 f"({result['ingest']['added']} added, {result['ingest']['unchanged']} already indexed)")
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
