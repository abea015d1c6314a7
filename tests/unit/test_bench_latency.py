"""Question choice and statistics of ``assistant bench latency`` (assistant/eval/latency.py)."""

from __future__ import annotations

import pytest

from assistant.errors import InputError
from assistant.eval.latency import _stats, format_latency_table, pick_questions, run_latency_bench
from assistant.eval.suite import EvalItem


def item(qid: str, question: str, answerable: bool = True) -> EvalItem:
    return EvalItem(id=qid, question=question, answerable=answerable)


ITEMS = [
    item("en-1", "Who is the spokesman?"),
    item("ar-1", "من هو المتحدث؟"),
    item("ar-un", "ما عاصمة أستراليا؟", answerable=False),
    item("ar-2", "أين عقد المؤتمر؟"),
    item("en-2", "Where was the briefing?"),
    item("en-3", "When did the raid start?"),
]


def test_answerable_questions_alternate_languages_arabic_first_after_a_warm_up_question():
    assert pick_questions(ITEMS, 10) == ["من هو المتحدث؟", "Who is the spokesman?", "أين عقد المؤتمر؟", "Where was the briefing?", "When did the raid start?"]
    assert pick_questions(ITEMS, 2) == ["من هو المتحدث؟", "Who is the spokesman?", "أين عقد المؤتمر؟"]


def test_a_dataset_without_answerable_questions_is_an_input_error():
    with pytest.raises(InputError, match="no answerable question"):
        pick_questions([item("un", "What is the capital of Australia?", answerable=False)], 5)


def test_stats_ignore_missing_values():
    assert _stats([None, None]) == {"n": 0, "median": None, "p95": None}
    assert _stats([None, 7.0]) == {"n": 1, "median": 7.0, "p95": 7.0}
    stats = _stats([float(v) for v in range(1, 101)] + [None])
    assert stats["n"] == 100 and stats["median"] == 50.5 and stats["p95"] == pytest.approx(95.05)


def test_table_says_when_a_figure_is_not_available():
    summary = {
        "retrieval_ms": _stats([20.0, 30.0]),
        "compress_ms": _stats([400.0, 500.0]),
        "first_token_ms": _stats([None]),
        "total_ms": _stats([100.0, 300.0]),
        "prompt_tokens": _stats([700.0, 760.0]),
        "cached_tokens": _stats([500.0, 520.0]),
        "read_tokens": _stats([None]),
    }
    table = format_latency_table({"n_questions": 2, "model": "ollama:x", "warmup_ms": 1500.0, "summary": summary, "peak_rss_mb": 812.4})
    lines = table.splitlines()
    assert lines[0] == "2 questions answered by ollama:x (a warm-up question before them, loading the model: 1.5 s)"
    assert lines[2].split() == ["retrieval", "(ms)", "2", "25", "30"]
    assert lines[3].split() == ["compression", "(ms)", "2", "450", "495"]
    assert lines[4].split() == ["first", "token", "(ms)", "0", "n/a", "n/a"]
    assert lines[6].split() == ["prompt", "tokens", "sent", "2", "730", "757"]
    assert lines[7].split() == ["reused", "from", "cache", "2", "510", "519"]
    assert lines[8].split() == ["read", "by", "the", "model", "0", "n/a", "n/a"]
    assert lines[-1] == "peak memory (RSS): 812 MB"


def test_one_question_cannot_be_both_warm_up_and_timed():
    with pytest.raises(InputError, match="two answerable questions"):
        run_latency_bench(None, ["من هو المتحدث؟"])  # refused before any question is asked
