"""The eval suite's pure parts (assistant.eval.suite): dataset loading, the threshold gate, the
calibration, and the answer scoring it uses from assistant.eval.metrics (the eval's contains rule;
SQuAD exact match and F1 with MLQA's normalization)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import InputError
from assistant.eval.metrics import contains_answer, exact_match, squad_f1, squad_normalize
from assistant.eval.suite import calibrate, calibration_markdown, check_thresholds, load_dataset

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- load_dataset
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qa.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_project_dataset_loads():
    items = load_dataset(REPO / "evals" / "qa.yaml")
    assert len(items) >= 45
    assert {item.language for item in items} == {"ar", "en"}
    assert any(not item.answerable for item in items)


def test_minimal_items_take_defaults_and_extra_fields_are_ignored(tmp_path):
    (item,) = load_dataset(write(tmp_path, "- id: q1\n  question: Who?\n  difficulty: hard\n"))
    assert (item.answers, item.sources, item.answerable) == ([], [], True)
    assert item.language == "en"  # detected when lang is not given


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- id: q1\n  question: [unclosed\n", "not valid YAML"),
        ("id: q1\nquestion: Who?\n", "non-empty YAML list"),
        ("[]\n", "non-empty YAML list"),
        ("- id: q1\n  question: Who?\n- id: q2\n", "item 2: question"),
        ("- id: q1\n  question: Who?\n  answers: Caggins\n", "item 1: answers"),
        ("- id: q1\n  question: Who?\n- id: q1\n  question: What?\n", "duplicate item ids: q1"),
    ],
)
def test_a_bad_dataset_is_an_input_error_that_says_where(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        load_dataset(write(tmp_path, text))


def test_missing_dataset_is_named(tmp_path):
    with pytest.raises(InputError, match="no such dataset"):
        load_dataset(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- check_thresholds
def report(**sections) -> dict:
    return {"metrics": {"n_items": 10, **sections}}


FULL = report(
    retrieval={"hit_at_1": 0.8, "hit_at_5": 0.95, "mrr": 0.86},
    answer={"accuracy": 0.5, "f1": 0.1, "language_match": 1.0, "faithfulness": None},
    citations={"precision": 0.75, "coverage": 1.0},
    refusal={"accuracy": 0.8, "unanswerable_refused": 0.4, "answerable_refused": 0.1},
)


def test_metrics_at_or_beyond_their_bounds_pass():
    thresholds = {"retrieval.hit_at_1": 0.8, "answer.accuracy": 0.4, "refusal.answerable_refused": 0.1}
    assert check_thresholds(FULL, thresholds) == []


def test_a_lower_bound_fails_below_and_names_the_metric():
    (failure,) = check_thresholds(FULL, {"retrieval.mrr": 0.9})
    assert failure == "retrieval.mrr = 0.860 is below its threshold 0.900"


def test_answerable_refused_is_an_upper_bound():
    assert check_thresholds(FULL, {"refusal.answerable_refused": 0.2}) == []
    (failure,) = check_thresholds(FULL, {"refusal.answerable_refused": 0.05})
    assert failure == "refusal.answerable_refused = 0.100 is above its threshold 0.050"


@pytest.mark.parametrize("name", ["retrieval.hit_at_10", "answr.accuracy", "n_items.x", "accuracy"])
def test_an_unknown_metric_name_fails(name):
    assert check_thresholds(FULL, {name: 0.5}) == [f"{name}: no such metric"]


def test_answer_metrics_are_skipped_under_retrieval_only():
    retrieval_only = report(retrieval={"hit_at_1": 0.8, "hit_at_5": 0.95, "mrr": 0.86})
    thresholds = {"retrieval.hit_at_1": 0.7, "answer.accuracy": 0.9, "refusal.answerable_refused": 0.0}
    assert check_thresholds(retrieval_only, thresholds, retrieval_only=True) == []
    # the same report in a full run lacks them: that is a failure, not a silent pass
    assert len(check_thresholds(retrieval_only, thresholds)) == 2


def test_a_metric_that_could_not_be_computed_is_skipped():
    """None: e.g. faithfulness without a judge, or no unanswerable items in the dataset."""
    assert check_thresholds(FULL, {"answer.faithfulness": 0.9}) == []


def test_the_committed_thresholds_name_real_metrics():
    from assistant.config import load_settings

    thresholds = load_settings(REPO / "config.yaml").eval.thresholds
    assert thresholds, "config.yaml must set eval.thresholds"
    assert all(not failure.endswith("no such metric") for failure in check_thresholds(FULL, thresholds))


# --------------------------------------------------------------------------- answer scoring
@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Pittsburgh Steelers.", "pittsburgh steelers"),
        ("a cat, an owl and the dog!", "cat owl and dog"),
        ("بيتسبرغ ستيلرز [1].", "بيتسبرغ ستيلرز"),
        ("«القاهرةُ»، عاصمةُ مِصر؟", "قاهره عاصمه مصر"),  # tashkeel, ta marbuta, Arabic punctuation
        ("أُسِّسَت عام ١٩٤٨؛ في إسرائيل", "اسست عام 1948 في اسراييل"),  # hamza forms, Arabic-Indic digits
        ("جاريد ألين", "جاريد ين"),  # MLQA removes every "ال", also after hamza folding
        ("  spaced\tout \n text ", "spaced out text"),
    ],
)
def test_squad_normalize(text, normalized):
    assert squad_normalize(text) == normalized


def test_exact_match_after_normalization():
    assert exact_match("القاهرة.", ["قاهرة"]) == 1.0  # the article and the ta marbuta
    assert exact_match("The Broncos", ["Denver Broncos", "broncos"]) == 1.0
    assert exact_match("عاصمة مصر هي القاهرة [1]", ["القاهرة"]) == 0.0  # a sentence is not a span


def test_f1_is_token_overlap_with_the_best_gold():
    # prediction tokens: عاصمه مصر هي قاهره (4); gold: قاهره (1) -> P 1/4, R 1 -> F1 0.4
    assert squad_f1("عاصمة مصر هي القاهرة [1]", ["لندن", "القاهرة"]) == pytest.approx(0.4)
    assert squad_f1("Denver Broncos", ["the Broncos"]) == pytest.approx(2 / 3)
    assert squad_f1("٣٩ عاماً", ["39"]) == pytest.approx(2 / 3)
    assert squad_f1("nothing shared", ["Steelers"]) == 0.0
    assert squad_f1("", ["Steelers"]) == 0.0


def test_contains_answer_finds_a_gold_answer_inside_a_sentence():
    assert contains_answer("تحدث العقيد مايلز كاغينز [1].", ["Caggins", "كاغينز"])
    assert contains_answer("He was 39 years old [2].", ["٣٩"])
    assert not contains_answer("He was 38 [2].", ["39"])


# --------------------------------------------------------------------------- min_answerable calibration
def row(answerable: bool, evidence: float | None, refused: bool = False, correct: bool = False) -> dict:
    """An eval row with what the calibration reads (the rest as a refused-or-answered row has it)."""
    return {
        "answerable": answerable,
        "evidence": evidence,
        "refused": refused,
        "correct": correct,
        "language": "ar",
        "answer_language": "ar",
        "first_hit_rank": 1,
        "f1": 0.0,
        "citations": [],
        "citation_hits": 0,
        "timings": None,
    }


def test_calibration_counts_what_each_threshold_would_refuse():
    rows = [
        row(True, 0.80, correct=True),
        row(True, 0.62, correct=True),
        row(True, 0.41),
        row(True, None, refused=True),  # refused before the check (similarity floor): at every threshold
        row(False, 0.52),
        row(False, 0.30),
        {**row(True, None), "error": "timed out"},  # a failed item says nothing about thresholds
    ]

    result = calibrate(rows, max_wrongly_refused=0.5)

    by_t = {r["min_answerable"]: r for r in result["table"]}
    assert by_t[0.05] == {"min_answerable": 0.05, "unanswerable_refused": 0.0, "answerable_refused": 0.25, "accuracy": 0.5, "refusal_accuracy": 0.5}
    assert by_t[0.35]["unanswerable_refused"] == 0.5 and by_t[0.35]["answerable_refused"] == 0.25
    assert by_t[0.45]["answerable_refused"] == 0.5 and by_t[0.45]["accuracy"] == 0.5
    assert by_t[0.55] == {"min_answerable": 0.55, "unanswerable_refused": 1.0, "answerable_refused": 0.5, "accuracy": 0.5, "refusal_accuracy": 4 / 6}
    assert by_t[0.65]["answerable_refused"] == 0.75 and by_t[0.65]["accuracy"] == 0.25
    assert result["recommended"] == 0.6, "the highest threshold with at most half the answerable questions refused"
    assert result["without_evidence"] == 1
    assert "set answer.min_answerable: 0.6" in calibration_markdown(result)


def test_calibration_without_a_fitting_threshold_says_so():
    result = calibrate([row(True, None, refused=True), row(False, 0.9)], max_wrongly_refused=0.1)

    assert result["recommended"] is None
    assert calibration_markdown(result).rstrip().endswith("<= 0.1: none")
