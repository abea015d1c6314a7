"""The eval gate (``assistant eval``) on the seeded index: the committed thresholds pass with the
committed configuration and fail with a broken retriever; the JSON report has every metric's key
(retrieval hit@1/hit@5/MRR, answer accuracy/F1/language match, citation precision/coverage,
refusal rates); the faithfulness judge is an Ollama model (the fake server in helpers.py), checked before
the run, or skipped with a notice."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from assistant.assistant import Assistant
from assistant.config import load_settings
from assistant.eval.errors import MAX_ERRORS_IN_A_ROW
from assistant.eval.suite import load_dataset, make_judge, run_eval

from tests.conftest import SEEDS, STORE_DIR, write_config

from .helpers import CHAT_MODEL, FakeOllama, free_port, ollama_llm_overrides, run_cli

pytestmark = pytest.mark.slow  # loads the embedding model

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "evals" / "qa.yaml"
COMMITTED = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
RETRIEVAL_KEYS = {"hit_at_1", "hit_at_5", "mrr"}
SECTION_KEYS = {
    "retrieval": RETRIEVAL_KEYS,
    "answer": {"accuracy", "f1", "language_match"},
    "citations": {"precision", "coverage"},
    "refusal": {"accuracy", "unanswerable_refused", "answerable_refused"},
}
# A few items of the project's dataset: both languages, answerable and not.
SMALL_IDS = ["ar-spokesman", "ar-presser-place", "en-spokesman-name", "en-presser-town", "ar-un-capital", "en-un-capital"]


@pytest.fixture(scope="module")
def committed_index(tmp_path_factory) -> Path:
    """seeds/ indexed once with the committed configuration (EmbeddingGemma): what the gate is set on."""
    root = tmp_path_factory.mktemp("committed")
    Assistant(load_settings(write_config(root, **committed_config()))).ingest([SEEDS])
    return root


def committed_copy(committed_index: Path, tmp_path: Path, **changes: dict) -> None:
    """A private copy of that index in tmp_path, with config.yaml as committed but for ``changes``."""
    shutil.copytree(committed_index / STORE_DIR, tmp_path / STORE_DIR)
    write_config(tmp_path, **committed_config(**changes))


def committed_config(**changes: dict) -> dict:
    """config.yaml as committed (but the store, which the fixture puts under tmp_path), with the
    sections' keys in ``changes`` replaced."""
    config = copy.deepcopy({key: value for key, value in COMMITTED.items() if key != "store"})
    config.setdefault("eval", {})["dataset"] = str(DATASET)
    for section, values in changes.items():
        config.setdefault(section, {}).update(values)
    return config


@pytest.fixture
def small_dataset(tmp_path) -> Path:
    items = [item for item in yaml.safe_load(DATASET.read_text(encoding="utf-8")) if item["id"] in SMALL_IDS]
    assert len(items) == len(SMALL_IDS), "the small eval set's ids must exist in evals/qa.yaml"
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the gate
def test_a_broken_retriever_fails_the_committed_gate(committed_index, tmp_path):
    """BM25 alone finds nothing for the English questions: retrieval falls below its thresholds."""
    committed_copy(committed_index, tmp_path, retrieval={"mode": "bm25"})

    result = run_cli(tmp_path, "eval", "--retrieval-only", "--json", "out/eval.json")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "gate: retrieval.hit_at_1 = " in result.stderr and "is below its threshold" in result.stderr
    report = json.loads((tmp_path / "out" / "eval.json").read_text(encoding="utf-8"))
    assert report["gate"]["passed"] is False
    assert report["config"]["retrieval"]["mode"] == "bm25"
    assert "Gate: FAILED" in (tmp_path / "out" / "eval.md").read_text(encoding="utf-8")


def test_the_committed_configuration_passes_and_reports_every_retrieval_key(committed_index, tmp_path):
    committed_copy(committed_index, tmp_path)

    result = run_cli(tmp_path, "eval", "--retrieval-only", "--json", "out/eval.json")

    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "eval.json").read_text(encoding="utf-8"))
    assert set(report["metrics"]["retrieval"]) == RETRIEVAL_KEYS
    assert set(report["by_language"]) == {"ar", "en"}
    assert all(set(m["retrieval"]) == RETRIEVAL_KEYS for m in report["by_language"].values())
    assert len(report["items"]) == len(load_dataset(DATASET))
    assert report["config"]["retrieval"] == {**report["config"]["retrieval"], **COMMITTED["retrieval"]}
    assert report["config"]["embedding"]["provider"] == COMMITTED["embedding"]["provider"]
    assert report["gate"] == {"thresholds": COMMITTED["eval"]["thresholds"], "failures": [], "passed": True}
    for name, bound in COMMITTED["eval"]["thresholds"].items():
        section, metric = name.split(".")
        if section == "retrieval":  # answer metrics need the full run (make eval does it)
            assert report["metrics"][section][metric] >= bound
    assert (tmp_path / "out" / "eval.md").read_text(encoding="utf-8").startswith("# Eval report")
    assert "faithfulness judge" not in result.stderr  # no answers, no judge, no notice


def test_a_full_run_writes_every_design_key_and_notes_the_missing_judge(seeded_settings_factory, tmp_path, small_dataset):
    """Answers by the extractive backend (no model), so that this runs in seconds."""
    seeded_settings_factory(llm={"provider": "extractive"})

    result = run_cli(tmp_path, "eval", "--dataset", small_dataset, "--json", "eval.json")

    assert result.returncode == 0, result.stderr
    assert "faithfulness judge not configured; set eval.judge" in result.stderr
    report = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert {"metrics", "by_language", "items", "config"} <= set(report)
    for metrics in [report["metrics"], *report["by_language"].values()]:
        for section, keys in SECTION_KEYS.items():
            assert keys <= set(metrics[section]), section
        assert metrics["answer"]["faithfulness"] is None
    assert report["judge"] is None and report["config"]["llm"]["provider"] == "extractive"
    assert sorted(r["id"] for r in report["items"]) == sorted(SMALL_IDS)
    assert all({"answer", "refused", "citations", "passed", "why"} <= set(r) for r in report["items"])
    assert (tmp_path / "eval.md").exists()


# --------------------------------------------------------------------------- calibration
def test_calibrate_answers_past_the_evidence_check_and_tabulates_thresholds(
    fake_chat_ollama: FakeOllama, seeded_settings_factory, tmp_path, small_dataset
):
    """The model gives every question P(yes) = 0.3, below the default min_answerable (0.40): a
    normal run would refuse them all at the evidence check; --calibrate answers them and reports
    that any threshold above 0.3 refuses every question that reached the check."""
    fake_chat_ollama.verify_top_logprobs = {"no": math.log(0.7), "yes": math.log(0.3)}
    fake_chat_ollama.chat_reply = lambda body: "المتحدث الرسمي باسم التحالف الدولي هو العقيد مايلز كيغينز [1]."
    # Whole passages: the fixed reply names the spokesman, and every passage shown must be able to
    # support it (cut to a question's best sentences, a passage may lose the name, and the support check refuses).
    settings = seeded_settings_factory(**ollama_llm_overrides(fake_chat_ollama.host), answer={"prompt_tokens": 0})
    assert settings.answer.min_answerable == 0.40

    result = run_cli(tmp_path, "eval", "--calibrate", "--dataset", small_dataset, "--json", "calibration.json", timeout=300)

    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "calibration.json").read_text(encoding="utf-8"))
    checked = [r for r in report["items"] if r["evidence"] is not None]
    assert checked and all(r["evidence"] == pytest.approx(0.3) for r in checked)
    answer_requests = [b for b in fake_chat_ollama.chat_requests if "Passages:" in b["messages"][-1]["content"]]  # not translations
    assert len(answer_requests) == len(fake_chat_ollama.evidence_requests) == len(checked), "every checked question was answered"
    assert all(not r["refused"] for r in checked if r["answerable"]), "the check refused nothing"
    table = {row["min_answerable"]: row for row in report["calibration"]["table"]}
    answerable = [r for r in report["items"] if r["answerable"]]
    assert table[0.25]["answerable_refused"] == sum(r["refused"] for r in answerable) / len(answerable)
    assert table[0.35]["answerable_refused"] == sum(r["refused"] or r["evidence"] is not None for r in answerable) / len(answerable)
    assert table[0.35]["accuracy"] == 0.0
    assert "# answer.min_answerable calibration" in result.stdout and "| 0.350 |" in result.stdout
    assert "gate" not in report, "a calibration run is not gated"


def test_calibrate_needs_answers(seeded_settings_factory, tmp_path):
    seeded_settings_factory()

    result = run_cli(tmp_path, "eval", "--calibrate", "--retrieval-only")

    assert result.returncode == 1 and "--calibrate needs the answers" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- the faithfulness judge
@pytest.mark.parametrize(("reply", "faithfulness"), [("yes", 1.0), ("No.", 0.0)])
def test_faithfulness_is_the_share_of_sentences_the_judge_supports(
    seeded_settings_factory, fake_chat_ollama: FakeOllama, small_dataset, reply, faithfulness
):
    fake_chat_ollama.chat_reply = lambda body: reply
    settings = seeded_settings_factory(
        llm={"provider": "extractive"}, eval={"judge": {"provider": "ollama", "host": fake_chat_ollama.host, "model": CHAT_MODEL}}
    )
    judge = make_judge(settings)

    report = run_eval(Assistant(settings), load_dataset(small_dataset), judge=judge)

    answered = [r for r in report["items"] if not r["refused"]]
    assert answered, "the extractive backend answers the answerable items"
    assert report["judge"] == f"ollama:{CHAT_MODEL}"
    assert report["metrics"]["answer"]["faithfulness"] == faithfulness
    for language in {r["language"] for r in answered}:
        assert report["by_language"][language]["answer"]["faithfulness"] == faithfulness
    verdicts = [v for r in answered for v in r["judged"]]
    assert {v["supported"] for v in verdicts} == {faithfulness == 1.0}
    assert not any("judged" in r for r in report["items"] if r["refused"])
    # one chat request per sentence, carrying the sentence and a non-empty passage
    prompts = [body["messages"][-1]["content"] for body in fake_chat_ollama.chat_requests]
    assert len(prompts) == len(verdicts)
    for verdict, prompt in zip(verdicts, prompts):
        assert f"Sentence:\n{verdict['sentence']}\n" in prompt
        assert prompt.split("Passage:\n")[1].split("\n\nSentence:")[0].strip()


@pytest.mark.parametrize("judge_server", ["unreachable", "without the model"])
def test_an_unavailable_judge_stops_the_eval_before_it_runs(config_factory, tmp_path, small_dataset, judge_server):
    with FakeOllama({"some-other-model"}) as other:
        host = other.host if judge_server == "without the model" else f"http://127.0.0.1:{free_port()}"
        config_factory(llm={"provider": "extractive"}, eval={"judge": {"provider": "ollama", "host": host, "model": CHAT_MODEL}})

        result = run_cli(tmp_path, "eval", "--dataset", small_dataset, "--json", "eval.json", timeout=60)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    expected = f"ollama pull {CHAT_MODEL}" if judge_server == "without the model" else "eval.judge.host"
    assert expected in result.stderr
    assert not (tmp_path / "eval.json").exists()
    assert not (tmp_path / "chroma").exists(), "nothing was loaded or created before the check"


# --------------------------------------------------------------------------- a model that fails mid-run
def test_a_model_timeout_fails_its_item_and_the_run_goes_on(fake_chat_ollama: FakeOllama, seeded_settings_factory, tmp_path, small_dataset):
    """Ollama never answers the English questions (each times out after 1 s): those items fail
    with the reason, the others are answered, the report is written, and the exit code is 1."""
    english = [item.question for item in load_dataset(small_dataset) if item.language == "en"]
    fake_chat_ollama.hang_chat = lambda body: any(q in body["messages"][-1]["content"] for q in english)
    fake_chat_ollama.chat_reply = lambda body: "المتحدث الرسمي باسم التحالف الدولي هو العقيد مايلز كيغينز [1]."
    seeded_settings_factory(llm={"provider": "ollama", "ollama": {"host": fake_chat_ollama.host, "model": CHAT_MODEL, "request_timeout": 1}})

    result = run_cli(tmp_path, "eval", "--dataset", small_dataset, "--json", "eval.json", timeout=300)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert sorted(r["id"] for r in report["items"]) == sorted(SMALL_IDS), "every item ran"
    failed = {r["id"] for r in report["items"] if r.get("error")}
    reached_model = {r["id"] for r in report["items"] if r["language"] == "en" and r["answerable"]}
    assert failed == reached_model and failed, report["errors"]
    assert all(r["why"].startswith("model error: ") and not r["passed"] for r in report["items"] if r["id"] in failed)
    assert [e.split(":")[0] for e in report["errors"]] == [r["id"] for r in report["items"] if r["id"] in failed]
    assert any(r["answer"] and not r["refused"] for r in report["items"] if r["language"] == "ar"), "Arabic items answered"
    assert f"model error: {report['errors'][0]}" in result.stderr
    assert "Model errors (2)" in (tmp_path / "eval.md").read_text(encoding="utf-8")


def test_model_errors_in_a_row_stop_the_run(fake_chat_ollama: FakeOllama, seeded_settings_factory, small_dataset):
    fake_chat_ollama.hang_chat = True
    settings = seeded_settings_factory(llm={"provider": "ollama", "ollama": {"host": fake_chat_ollama.host, "model": CHAT_MODEL, "request_timeout": 1}})
    answerable = [item for item in load_dataset(small_dataset) if item.answerable]  # all reach the model
    assert len(answerable) > MAX_ERRORS_IN_A_ROW

    report = run_eval(Assistant(settings), answerable)

    assert [r["id"] for r in report["items"]] == [item.id for item in answerable[:MAX_ERRORS_IN_A_ROW]]
    left = len(answerable) - MAX_ERRORS_IN_A_ROW
    assert report["errors"][-1] == f"stopped after {MAX_ERRORS_IN_A_ROW} model errors in a row; {left} item(s) not run"
    assert report["metrics"]["answer"]["accuracy"] == 0.0
