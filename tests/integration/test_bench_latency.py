"""``assistant bench latency`` through the CLI on the seeded index, answered by a fake Ollama
(real client, Ollama's wire protocol) and by the extractive backend."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from .helpers import FakeOllama, ollama_llm_overrides, run_cli

pytestmark = pytest.mark.slow  # loads the embedding model

DATASET = Path(__file__).resolve().parents[2] / "evals" / "qa.yaml"


def test_times_each_question_after_a_warm_up(fake_chat_ollama: FakeOllama, seeded_settings_factory, tmp_path):
    fake_chat_ollama.verify_top_logprobs = {"yes": math.log(0.9), "no": math.log(0.1)}
    fake_chat_ollama.chat_reply = lambda body: "المتحدث الرسمي باسم التحالف الدولي هو العقيد مايلز كيغينز [1]."
    seeded_settings_factory(**ollama_llm_overrides(fake_chat_ollama.host), eval={"dataset": str(DATASET)})

    result = run_cli(tmp_path, "bench", "latency", "--limit", "3", "--json", "latency.json")

    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "latency.json").read_text(encoding="utf-8"))
    assert report["model"].startswith("ollama:") and report["n_questions"] == 3
    # An Arabic warm-up question, then three others in turn, each checked for evidence then answered.
    assert [r["language"] for r in report["items"]] == ["en", "ar", "en"]
    asked = [r["messages"][-1]["content"] for r in fake_chat_ollama.evidence_requests]
    assert len(asked) == 4 and not any(r["question"] in asked[0] for r in report["items"])
    # Before them, loading had the model read the system prompt that begins every answer prompt.
    [load] = [r for r in fake_chat_ollama.chat_requests if r["messages"][-1]["content"] == "?"]
    assert load["messages"][0] == fake_chat_ollama.evidence_requests[0]["messages"][0]
    assert report["load_ms"] > 0 and report["first_question"]["total_ms"] > 0
    for row in report["items"]:
        assert 0 < row["retrieval_ms"] <= row["first_token_ms"] <= row["total_ms"]
        assert row["prompt_tokens"] is None and row["cached_tokens"] is None  # Ollama does not report its cache
    summary = report["summary"]
    assert summary["total_ms"]["n"] == 3 and summary["prompt_tokens"] == {"n": 0, "median": None, "p95": None}
    assert sorted(r["total_ms"] for r in report["items"])[1] == summary["total_ms"]["median"]
    assert report["peak_rss_mb"] > 100  # the embedding model alone is bigger
    assert "prompt tokens sent" in result.stdout and "n/a" in result.stdout and "peak memory (RSS)" in result.stdout


def test_an_empty_index_is_reported_not_timed(config_factory, tmp_path):
    config_factory(llm={"provider": "extractive"}, eval={"dataset": str(DATASET)})

    result = run_cli(tmp_path, "bench", "latency", "--limit", "2")

    assert result.returncode == 1
    assert "index is empty" in result.stderr and "assistant ingest" in result.stderr
    assert "Traceback" not in result.stderr
