"""``assistant bench squad`` without --retrieval-only: the answer benchmark, end to end through the
CLI, on three XQuAD paragraphs (one question each) answered by the extractive backend (no model),
or by a fake Ollama that never answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.eval.metrics import contains_answer, exact_match, squad_f1

from .helpers import FakeOllama, ollama_llm_overrides, run_cli

pytestmark = pytest.mark.slow  # loads the embedding model

XQUAD = Path(__file__).resolve().parents[2] / "evals" / "xquad"
BRONCOS_LOST = "56beb7953aeaaa14008c92ab"  # Who lost to the Broncos in the divisional round? بيتسبرغ ستيلرز
MANNING_AGE = "56beb86b3aeaaa14008c92bd"  # How old was Peyton Manning when he played in Super Bowl 50? 39


def tiny_squad(source: Path, target: Path) -> Path:
    """The first article's first three paragraphs of ``source``, with their first question only."""
    data = json.loads(source.read_text(encoding="utf-8"))
    article = data["data"][0]
    paragraphs = [{**p, "qas": p["qas"][:1]} for p in article["paragraphs"][:3]]
    target.write_text(json.dumps({"version": data.get("version", "1.1"), "data": [{**article, "paragraphs": paragraphs}]}, ensure_ascii=False), encoding="utf-8")
    return target


@pytest.fixture
def bench_cwd(config_factory, tmp_path) -> Path:
    config_factory(llm={"provider": "extractive"})
    tiny_squad(XQUAD / "xquad.ar.json", tmp_path / "ar.json")
    tiny_squad(XQUAD / "xquad.en.json", tmp_path / "en.json")
    return tmp_path


def run_bench(cwd: Path, *args: str) -> dict:
    result = run_cli(cwd, "bench", "squad", "--data", "ar.json", *args, "--json", "bench.json")
    assert result.returncode == 0, result.stderr
    assert "EM" in result.stdout and "F1" in result.stdout and "contains" in result.stdout
    assert "3 questions over 3 paragraphs" in result.stdout and "answered by extractive" in result.stdout
    return json.loads((cwd / "bench.json").read_text(encoding="utf-8"))


def check_scores(result: dict) -> dict[str, dict]:
    """Every row is scored by the functions it claims; the metrics are the rows' means."""
    rows = {r["id"]: r for r in result["items"]}
    assert len(rows) == result["n_questions"] == 3 and result["n_contexts"] == 3
    for r in rows.values():
        assert not r["refused"], r
        assert r["exact_match"] == exact_match(r["answer"], r["gold"]) == 0.0  # a quoted sentence is no span
        assert r["f1"] == squad_f1(r["answer"], r["gold"])
        assert r["contains"] == contains_answer(r["answer"], r["gold"])
        assert r["paragraph_rank"] == 1 and r["cited"]
    metrics = result["metrics"]
    for name in ("exact_match", "f1", "contains"):
        assert metrics[name] == pytest.approx(sum(r[name] for r in rows.values()) / 3)
    assert metrics["refused"] == 0.0 and metrics["hit_at_1"] == metrics["hit_at_5"] == metrics["mrr"] == 1.0
    assert {"index_s", "query_p50_ms", "query_p95_ms"} <= set(result["timings"])
    assert result["config"]["llm"]["provider"] == "extractive"
    return rows


def test_arabic_questions_are_answered_and_scored(bench_cwd):
    rows = check_scores(run_bench(bench_cwd))

    assert rows[BRONCOS_LOST]["gold"] == ["بيتسبرغ ستيلرز"]
    assert rows[BRONCOS_LOST]["contains"] and 0 < rows[BRONCOS_LOST]["f1"] < 1
    assert rows[MANNING_AGE]["contains"]


def test_english_questions_are_scored_against_the_questions_files_answers(bench_cwd):
    rows = check_scores(run_bench(bench_cwd, "--questions", "en.json"))

    assert rows[BRONCOS_LOST]["question"] == "Who lost to the Broncos in the divisional round?"
    assert rows[BRONCOS_LOST]["gold"] == ["Pittsburgh Steelers"]  # not the Arabic file's answer
    assert rows[MANNING_AGE]["contains"], "the quoted Arabic sentence carries the number 39"


def test_retriever_choice_is_for_retrieval_only_runs(bench_cwd):
    result = run_cli(bench_cwd, "bench", "squad", "--data", "ar.json", "--retriever", "bm25")
    assert result.returncode == 2
    assert "--retrieval-only" in result.stderr


def test_questions_the_model_fails_on_score_zero_and_fail_the_run(bench_cwd, config_factory, fake_chat_ollama: FakeOllama):
    """A model that times out costs its questions, not the whole run: the rows say why, the
    table says how many, the exit code is 1."""
    fake_chat_ollama.hang_chat = True
    config_factory(**ollama_llm_overrides(fake_chat_ollama.host, request_timeout=1.5))

    result = run_cli(bench_cwd, "bench", "squad", "--data", "ar.json", "--json", "bench.json")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "3 question(s) failed and scored 0" in result.stdout and "did not answer within" in result.stdout
    report = json.loads((bench_cwd / "bench.json").read_text(encoding="utf-8"))
    assert len(report["errors"]) == 3 and all("error" in r and r["f1"] == 0.0 for r in report["items"])
    assert report["metrics"]["contains"] == 0.0 and report["metrics"]["hit_at_1"] == 1.0


def test_unanswerable_mode_leaves_the_asked_paragraphs_out_of_the_index(bench_cwd):
    """Of the three paragraphs, the second (#1) is held out and only its question is asked: the
    index has the other two, and the gold paragraph is never retrieved."""
    data = json.loads((bench_cwd / "ar.json").read_text(encoding="utf-8"))
    held_out = data["data"][0]["paragraphs"][1]

    result = run_cli(bench_cwd, "bench", "squad", "--data", "ar.json", "--unanswerable", "--json", "bench.json")

    assert result.returncode == 0, result.stderr
    assert "1 questions over 2 paragraphs" in result.stdout and "unanswerable questions refused" in result.stdout
    report = json.loads((bench_cwd / "bench.json").read_text(encoding="utf-8"))
    assert report["unanswerable"] is True
    assert [r["id"] for r in report["items"]] == [held_out["qas"][0]["id"]]
    assert report["items"][0]["paragraph_rank"] is None and report["metrics"]["hit_at_5"] == 0.0
    assert report["metrics"]["refused"] == float(report["items"][0]["refused"])


def test_unanswerable_mode_needs_answers(bench_cwd):
    result = run_cli(bench_cwd, "bench", "squad", "--data", "ar.json", "--unanswerable", "--retrieval-only")
    assert result.returncode == 2
    assert "--unanswerable" in result.stderr and "Traceback" not in result.stderr
