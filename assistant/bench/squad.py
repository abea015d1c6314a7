"""Retrieval and answer benchmarks on SQuAD-v1.1-format data (XQuAD, ARCD, MLQA, TyDi GoldP).

Every paragraph becomes an article; a question is a hit at k when its paragraph is among the
first k distinct articles retrieved. ``questions`` may name a parallel SQuAD file whose questions
(matched by id) replace the data file's, e.g. English questions over Arabic paragraphs; their
answers are then the gold answers too. The index is built with the real pipeline (clean → chunk →
embed → Chroma + BM25) in its own store, so the numbers measure what the product does.

The answer benchmark asks the assistant (``Assistant.ask``, as configured) and scores SQuAD exact
match and token F1 (MLQA's normalization plus ours, see ``evaluate.squad_normalize``). Our answers
are sentences with citations, not spans, so EM is near zero by construction; ``contains`` (a gold
answer occurs in the answer: the eval suite's accuracy rule) is the figure to read.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.errors import BackendUnavailableError, InputError
from assistant.evaluate import contains_answer, exact_match, squad_f1
from assistant.ingest import ingest_articles
from assistant.models import Article, Passage

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
    replacement: dict[str, dict] = {}  # qa entries of the questions file, by id
    if questions is not None:
        for article in _read_json(questions)["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    replacement[qa["id"]] = qa
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
                qa = replacement.get(qa["id"], qa)  # question and answers in the questions file's language
                items.append(Question(qa["id"], qa["question"], [a["text"] for a in qa.get("answers", [])], doc_id))
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


@contextmanager
def _bench_assistant(
    settings: Settings, data: Path, contexts: dict[str, str], store_dir: Path | None, progress: bool
) -> Iterator[tuple[Assistant, float]]:
    """An Assistant over the paragraphs, indexed in ``store_dir`` (or a temporary folder), and the
    indexing time in seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-squad-") as tmp:
        assistant = Assistant(bench_settings(settings, Path(store_dir or tmp)))
        articles = (Article(doc_id=doc_id, title="", text=text, source=data.name) for doc_id, text in contexts.items())
        started = time.perf_counter()
        ingest_articles(articles, assistant.settings, assistant.index, assistant.embedder, progress=progress)
        assistant.index.lexical()  # BM25 build is part of indexing
        yield assistant, time.perf_counter() - started


def _rank(passages: list[Passage], gold: str) -> int | None:
    """1-based rank of the gold paragraph among the distinct paragraphs retrieved."""
    ranked = list(dict.fromkeys(p.doc_id for p in passages))
    return ranked.index(gold) + 1 if gold in ranked else None


def _recall(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {
        "recall_at_1": sum(r == 1 for r in ranks) / n,
        "recall_at_5": sum(r is not None and r <= 5 for r in ranks) / n,
        "mrr": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n,
    }


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
    with _bench_assistant(settings, data, contexts, store_dir, progress) as (assistant, index_s):
        n_chunks = assistant.index.vectors.count()

        lexical_queries: dict[str, str | None] = {}
        if translate_queries:  # English → Arabic through the LLM, for the BM25 side
            from assistant.arabic import detect_language

            for q in tqdm(items, desc="translate", unit="q", disable=not progress):
                lexical_queries[q.qid] = assistant.answerer.arabic_query(q.text, detect_language(q.text), force=True)

        results: dict[str, dict] = {}
        for mode in modes:
            assistant.search(items[0].text, mode=mode)  # warm up (model load, caches)
            ranks: list[int | None] = []
            latencies: list[float] = []
            for q in tqdm(items, desc=f"{mode:>6}", unit="q", disable=not progress):
                t0 = time.perf_counter()
                passages = assistant.retriever.search(
                    q.text, top_k=PASSAGES_PER_QUERY, mode=mode, lexical_query=lexical_queries.get(q.qid)
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                ranks.append(_rank(passages, q.gold))
            results[mode] = {"metrics": _recall(ranks), "timings": _latency("query", latencies)}
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
        "config": _config(assistant, settings),
    }


def run_answer_bench(
    settings: Settings,
    data: Path,
    questions: Path | None = None,
    limit: int | None = None,
    store_dir: Path | None = None,
    progress: bool = True,
    unanswerable: bool = False,
) -> dict:
    """Ask the assistant the first ``limit`` questions; SQuAD EM/F1, contains, refusals, and the
    configured retriever's paragraph recall, with one row per question.

    ``unanswerable``: every second paragraph of each article is left out of the index and only
    its questions are asked, so none can be answered while the same article's other paragraphs
    (the same topic, often the same names) are indexed, as in SQuAD 2.0. ``refused`` is then the
    share of unanswerable questions refused: a held-out check of the refusal calibration."""
    contexts, items = load_squad(data, questions)
    if unanswerable:
        held_out = {doc_id for doc_id in contexts if int(doc_id.rsplit("#", 1)[1]) % 2 == 1}
        contexts = {doc_id: text for doc_id, text in contexts.items() if doc_id not in held_out}
        items = [q for q in items if q.gold in held_out]
        store_dir = store_dir / "held-out" if store_dir else None  # never reuse a full index
    if limit:
        items = items[:limit]
    with _bench_assistant(settings, data, contexts, store_dir, progress) as (assistant, index_s):
        n_chunks = assistant.index.vectors.count()
        rows: list[dict] = []
        retrieval_ms: list[float] = []
        for q in tqdm(items, desc="answer", unit="q", disable=not progress):
            t0 = time.perf_counter()
            passages = assistant.retriever.search(q.text, top_k=PASSAGES_PER_QUERY)
            retrieval_ms.append((time.perf_counter() - t0) * 1000)
            row = {"id": q.qid, "question": q.text, "gold": q.answers, "paragraph_rank": _rank(passages, q.gold)}
            try:
                answer = assistant.ask(q.text)
            except BackendUnavailableError as exc:
                # One generation past its timeout on a busy machine must not lose an hour's run:
                # the question scores 0 and the failure is reported.
                rows.append({**row, "error": str(exc), "refused": False, "exact_match": 0.0, "f1": 0.0, "contains": False})
                continue
            answered = not answer.refused
            rows.append(
                {
                    **row,
                    "answer": answer.text,
                    "refused": answer.refused,
                    # a refusal scores 0: every SQuAD question is answerable from its paragraph
                    "exact_match": exact_match(answer.text, q.answers) if answered else 0.0,
                    "f1": squad_f1(answer.text, q.answers) if answered else 0.0,
                    "contains": answered and contains_answer(answer.text, q.answers),
                    "cited": [c.doc_id for c in answer.citations],
                    "model": answer.model,
                    "total_ms": answer.timings.total_ms,
                }
            )
    n = len(rows)
    return {
        "dataset": str(data),
        "questions_file": str(questions) if questions else None,
        "n_questions": n,
        "n_contexts": len(contexts),
        "n_chunks": n_chunks,
        "unanswerable": unanswerable,
        "metrics": {
            "exact_match": sum(r["exact_match"] for r in rows) / n,
            "f1": sum(r["f1"] for r in rows) / n,
            "contains": sum(r["contains"] for r in rows) / n,
            "refused": sum(r["refused"] for r in rows) / n,
            **_recall([r["paragraph_rank"] for r in rows]),
        },
        # query = the whole question → Answer; retrieval alone is also timed
        "timings": {
            "index_s": index_s,
            **_latency("query", [r["total_ms"] for r in rows if "total_ms" in r]),
            **_latency("retrieval", retrieval_ms),
        },
        "models": sorted({r["model"] for r in rows if "model" in r}),
        "errors": [f"{r['id']}: {r['error']}" for r in rows if "error" in r],
        "items": rows,
        "config": _config(assistant, settings),
    }


def _config(assistant: Assistant, settings: Settings) -> dict:
    return {
        "embedding_model": assistant.index.vectors.embedding_model,
        "retrieval": settings.retrieval.model_dump(),
        "chunking": settings.chunking.model_dump(),
        "llm": settings.llm.model_dump(mode="json"),
        "answer": settings.answer.model_dump(mode="json"),
    }


def _latency(name: str, values: list[float]) -> dict[str, float]:
    return {f"{name}_p50_ms": percentile(values, 50), f"{name}_p95_ms": percentile(values, 95)}


def percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _summary(result: dict) -> str:
    return (
        f"{result['n_questions']} questions over {result['n_contexts']} paragraphs "
        f"({result['n_chunks']} chunks; indexing took {result['timings']['index_s']:.1f}s)"
    )


def format_table(result: dict) -> str:
    lines = [
        _summary(result),
        f"{'retriever':<10}{'R@1':>8}{'R@5':>8}{'MRR':>8}{'p50 ms':>10}{'p95 ms':>10}",
    ]
    for mode, r in result["retrievers"].items():
        m, t = r["metrics"], r["timings"]
        lines.append(
            f"{mode:<10}{m['recall_at_1']:>8.3f}{m['recall_at_5']:>8.3f}{m['mrr']:>8.3f}"
            f"{t['query_p50_ms']:>10.1f}{t['query_p95_ms']:>10.1f}"
        )
    return "\n".join(lines)


def format_answer_table(result: dict) -> str:
    m, t = result["metrics"], result["timings"]
    lines = [
        f"{_summary(result)}; answered by {', '.join(result['models']) or 'nothing'}",
        f"{'EM':>7}{'F1':>7}{'contains':>10}{'refused':>9}{'R@1':>7}{'R@5':>7}{'MRR':>7}{'p50 s':>8}{'p95 s':>8}",
        f"{m['exact_match']:>7.3f}{m['f1']:>7.3f}{m['contains']:>10.3f}{m['refused']:>9.3f}"
        f"{m['recall_at_1']:>7.3f}{m['recall_at_5']:>7.3f}{m['mrr']:>7.3f}"
        f"{t['query_p50_ms'] / 1000:>8.1f}{t['query_p95_ms'] / 1000:>8.1f}",
    ]
    if result.get("unanswerable"):
        lines.append("every question's paragraph was left out of the index: refused = unanswerable questions refused")
    if result["errors"]:
        lines.append(f"{len(result['errors'])} question(s) failed and scored 0; the first: {result['errors'][0]}")
    return "\n".join(lines)
