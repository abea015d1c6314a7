"""Retrieval benchmark on SQuAD-v1.1-format data (XQuAD, ARCD, MLQA, TyDi GoldP).

Every paragraph becomes an article; a question is a hit at k when its paragraph is among the
first k distinct articles retrieved. ``questions`` may name a parallel SQuAD file whose questions
(matched by id) replace the data file's, e.g. English questions over Arabic paragraphs.
The index is built with the real pipeline (clean → chunk → embed → Chroma + BM25) in its own
store, so the numbers measure what the product does.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.errors import InputError
from assistant.ingest import ingest_articles
from assistant.models import Article

MODES = ("dense", "bm25", "hybrid")
PASSAGES_PER_QUERY = 30  # enough passages to rank the first 10 distinct paragraphs


@dataclass
class Question:
    qid: str
    text: str
    answers: list[str]
    gold: str  # doc id of the paragraph


def load_squad(data: Path, questions: Path | None = None) -> tuple[dict[str, str], list[Question]]:
    """(paragraphs by doc id, questions). Identical paragraphs are indexed once."""
    squad = _read_json(data)
    replacement: dict[str, str] = {}
    if questions is not None:
        for article in _read_json(questions)["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    replacement[qa["id"]] = qa["question"]
    contexts: dict[str, str] = {}
    by_text: dict[str, str] = {}
    items: list[Question] = []
    for article in squad["data"]:
        for number, paragraph in enumerate(article["paragraphs"]):
            text = paragraph["context"]
            doc_id = by_text.setdefault(text, f"{article.get('title', 'doc')}#{number}")
            contexts.setdefault(doc_id, text)
            for qa in paragraph["qas"]:
                if questions is not None and qa["id"] not in replacement:
                    continue
                answers = [a["text"] for a in qa.get("answers", [])]
                items.append(Question(qa["id"], replacement.get(qa["id"], qa["question"]), answers, doc_id))
    if questions is not None and not items:
        raise InputError(f"no question id in {questions} matches one in {data}")
    return contexts, items


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not SQuAD JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{path} is not in SQuAD v1.1 format (no top-level 'data' list)")
    return data


def bench_settings(settings: Settings, store_dir: Path) -> Settings:
    """The same settings, with a private persistent store for the benchmark index."""
    store = settings.store.model_copy(
        update={"mode": "persistent", "path": store_dir / "chroma", "lexical_cache": store_dir / "lexical", "collection": "bench-squad"}
    )
    return settings.model_copy(update={"store": store})


def run_retrieval_bench(
    settings: Settings,
    data: Path,
    questions: Path | None = None,
    modes: tuple[str, ...] = MODES,
    limit: int | None = None,
    store_dir: Path | None = None,
    progress: bool = True,
    translate_queries: bool = False,
) -> dict:
    contexts, items = load_squad(data, questions)
    if limit:
        items = items[:limit]
    with tempfile.TemporaryDirectory(prefix="bench-squad-") as tmp:
        assistant = Assistant(bench_settings(settings, Path(store_dir or tmp)))
        articles = (Article(doc_id=doc_id, title="", text=text, source=data.name) for doc_id, text in contexts.items())
        started = time.perf_counter()
        ingest_articles(articles, assistant.settings, assistant.index, assistant.embedder, progress=progress)
        assistant.index.lexical()  # BM25 build is part of indexing
        index_s = time.perf_counter() - started
        n_chunks = assistant.index.vectors.count()

        lexical_queries: dict[str, str | None] = {}
        if translate_queries:  # English → Arabic through the LLM, for the BM25 side
            from assistant.arabic import detect_language

            for q in tqdm(items, desc="translate", unit="q", disable=not progress):
                lexical_queries[q.qid] = assistant.answerer.arabic_query(q.text, detect_language(q.text), force=True)

        results: dict[str, dict] = {}
        for mode in modes:
            assistant.search(items[0].text, mode=mode)  # warm up (model load, caches)
            hits1 = hits5 = 0
            reciprocal = 0.0
            latencies: list[float] = []
            for q in tqdm(items, desc=f"{mode:>6}", unit="q", disable=not progress):
                t0 = time.perf_counter()
                passages = assistant.retriever.search(
                    q.text, top_k=PASSAGES_PER_QUERY, mode=mode, lexical_query=lexical_queries.get(q.qid)
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                ranked = list(dict.fromkeys(p.doc_id for p in passages))
                if q.gold in ranked:
                    rank = ranked.index(q.gold) + 1
                    hits1 += rank == 1
                    hits5 += rank <= 5
                    reciprocal += 1.0 / rank if rank <= 10 else 0.0
            n = len(items)
            results[mode] = {
                "metrics": {"recall_at_1": hits1 / n, "recall_at_5": hits5 / n, "mrr": reciprocal / n},
                "timings": {"query_p50_ms": _percentile(latencies, 50), "query_p95_ms": _percentile(latencies, 95)},
            }
    primary = "hybrid" if "hybrid" in results else modes[0]
    return {
        "dataset": str(data),
        "questions_file": str(questions) if questions else None,
        "n_questions": len(items),
        "n_contexts": len(contexts),
        "n_chunks": n_chunks,
        "metrics": results[primary]["metrics"],
        "timings": {"index_s": index_s, **results[primary]["timings"]},
        "primary_retriever": primary,
        "translated_queries": translate_queries,
        "retrievers": results,
        "config": {
            "embedding_model": assistant.index.vectors.embedding_model,
            "retrieval": settings.retrieval.model_dump(),
            "chunking": settings.chunking.model_dump(),
        },
    }


def _percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def format_table(result: dict) -> str:
    lines = [
        f"{result['n_questions']} questions over {result['n_contexts']} paragraphs "
        f"({result['n_chunks']} chunks; indexing took {result['timings']['index_s']:.1f}s)",
        f"{'retriever':<10}{'R@1':>8}{'R@5':>8}{'MRR':>8}{'p50 ms':>10}{'p95 ms':>10}",
    ]
    for mode, r in result["retrievers"].items():
        m, t = r["metrics"], r["timings"]
        lines.append(
            f"{mode:<10}{m['recall_at_1']:>8.3f}{m['recall_at_5']:>8.3f}{m['mrr']:>8.3f}"
            f"{t['query_p50_ms']:>10.1f}{t['query_p95_ms']:>10.1f}"
        )
    return "\n".join(lines)
