"""Latency and memory of answering (``assistant bench latency``).

Questions are asked one at a time through ``Assistant.ask``, as configured: by default the eval
set's answerable questions, Arabic and English in turn. First the models are loaded as
``assistant serve`` does at start (``Assistant.warm_up(model=True)``), then one more question is
asked and reported apart, as the first question after a start; it is not one of the timed
questions (llama.cpp would answer a repeated prompt from its cache). Reported:
median and p95 of retrieval, compressing the passages to the prompt budget, time to first token and
total time; the prompt tokens the model was sent for each answer (evidence check, answer and any
translation together) and how many of them it reused from its prompt cache instead of reading them
again, where the backend reports them (the embedded llama.cpp does; Ollama does not); and the process's peak resident memory,
which includes the embedded model (llama.cpp runs in this process). A question the model fails
on is reported with the reason and not timed; the run goes on (``assistant.eval.errors``).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path
from itertools import chain, zip_longest

from assistant.arabic import detect_language
from assistant.assistant import Assistant
from assistant.errors import AssistantError, InputError
from assistant.eval.errors import ModelErrors
from assistant.eval.metrics import median, percentile
from assistant.eval.suite import EvalItem


def pick_questions(items: list[EvalItem], limit: int) -> list[str]:
    """Up to ``limit`` answerable questions, alternating languages (Arabic first): the warm-up
    question, then the timed ones."""
    by_language: dict[str, list[str]] = {}
    for item in items:
        if item.answerable:
            by_language.setdefault(item.language, []).append(item.question)
    ordered = [by_language[lang] for lang in sorted(by_language)]  # "ar" before "en"
    mixed = [q for q in chain.from_iterable(zip_longest(*ordered)) if q is not None]
    if not mixed:
        raise InputError("the dataset has no answerable question to time")
    return mixed[: limit + 1]


def _resident_mb() -> float | None:
    """The process's resident memory now, from Linux's /proc (None elsewhere)."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS. Linux updates that high-water mark lazily, so a
    # reading of the resident memory just before can exceed it by a few pages: the peak is the larger.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return max(peak, _resident_mb() or 0.0)


def rss_mb() -> float:
    """The process's resident memory now (Linux's /proc; elsewhere its peak)."""
    resident = _resident_mb()
    return peak_rss_mb() if resident is None else resident


# A question the model failed on: nothing to time.
METRICS = {
    "retrieval_ms": "retrieval (ms)",
    "compress_ms": "compression (ms)",
    "first_token_ms": "first token (ms)",
    "total_ms": "total (ms)",
    "prompt_tokens": "prompt tokens sent",
    "cached_tokens": "  reused from cache",
    "read_tokens": "  read by the model",
}
_UNTIMED = dict(refused=False, **dict.fromkeys(METRICS))


def run_latency_bench(assistant: Assistant, questions: list[str]) -> dict:
    """``questions[0]`` warms up; the rest are timed (at least one is needed)."""
    if len(questions) < 2:
        raise InputError("the dataset needs two answerable questions: one to warm up, one to time")
    model_errors = ModelErrors(len(questions))
    started = time.perf_counter()
    try:  # what `assistant serve` does as it starts
        assistant.warm_up(model=True)
    except AssistantError as exc:
        model_errors.errors.append(f"warm-up: {exc}")
    load_ms = (time.perf_counter() - started) * 1000
    warmup = model_errors.ask(assistant, "warm-up", questions[0])
    first = warmup.timings if warmup else None
    warmup_ms = (time.perf_counter() - started) * 1000
    model = warmup.model if warmup else None
    rows = []
    for question in questions[1:]:
        if model_errors.stopped:
            break
        answer = model_errors.ask(assistant, question, question)
        if answer is None:  # reported with the reason, not timed
            rows.append({"question": question, "language": detect_language(question), "error": model_errors.last, **_UNTIMED})
            continue
        model = model or answer.model
        usage = answer.usage
        rows.append(
            {
                "question": question,
                "language": answer.language,
                "refused": answer.refused,
                "retrieval_ms": answer.timings.retrieval_ms,
                "compress_ms": answer.timings.compress_ms,
                "first_token_ms": answer.timings.first_token_ms,
                "total_ms": answer.timings.total_ms,
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "cached_tokens": usage.cached_tokens if usage else None,
                "read_tokens": usage.read_tokens if usage else None,
            }
        )
    return {
        "model": model,  # None when the model answered nothing
        "n_questions": len(rows),
        "warmup_ms": warmup_ms,
        "load_ms": load_ms,  # loading the models, and the model reading the system prompt
        # The warm-up question, asked right after: what the first question after `assistant serve` costs.
        "first_question": first.model_dump() if first else None,
        "summary": {name: _stats([r[name] for r in rows]) for name in METRICS},
        "peak_rss_mb": peak_rss_mb(),
        "items": rows,
        "errors": model_errors.errors,
    }


def _stats(values: list[float | None]) -> dict[str, float | None]:
    """Median and p95 of the values that exist (the first token is None for refusals without a
    model call, prompt tokens for backends that cannot count)."""
    present = [v for v in values if v is not None]
    if not present:
        return {"n": 0, "median": None, "p95": None}
    return {"n": len(present), "median": median(present), "p95": percentile(present, 95)}


def format_latency_table(result: dict) -> str:
    lines = [
        f"{result['n_questions']} questions answered by {result['model'] or 'no model'} "
        f"(a warm-up question before them, loading the model: {result['warmup_ms'] / 1000:.1f} s)",
        f"{'':<22}{'n':>4}{'median':>10}{'p95':>10}",
    ]
    for name, label in METRICS.items():
        s = result["summary"].get(name, {"n": 0})
        if s["n"]:
            lines.append(f"{label:<22}{s['n']:>4}{s['median']:>10.0f}{s['p95']:>10.0f}")
        else:
            lines.append(f"{label:<22}{0:>4}{'n/a':>10}{'n/a':>10}")
    first = result.get("first_question")
    if first:
        lines.append(
            f"loading the models: {result['load_ms'] / 1000:.1f} s; the first question after it: "
            f"first token {first['first_token_ms'] / 1000 if first['first_token_ms'] else float('nan'):.1f} s, total {first['total_ms'] / 1000:.1f} s"
        )
    lines.append(f"peak memory (RSS): {result['peak_rss_mb']:.0f} MB")
    if result.get("errors"):
        lines.append(f"Model errors ({len(result['errors'])}): " + "; ".join(result["errors"]))
    return "\n".join(lines)
