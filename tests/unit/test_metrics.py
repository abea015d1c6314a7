"""The metrics shared by the eval suite and the benchmarks (assistant.eval.metrics), and the
model-error policy of their runs (assistant.eval.errors)."""

from __future__ import annotations

import statistics

import pytest

from assistant.errors import BackendUnavailableError
from assistant.eval.errors import MAX_ERRORS_IN_A_ROW, ModelErrors
from assistant.eval.metrics import (
    answer_defects,
    answer_normalize,
    first_relevant_rank,
    hit_at,
    mean_reciprocal_rank,
    median,
    percentile,
    retrieval_metrics,
    share,
    words,
)


# --------------------------------------------------------------------------- retrieval
def test_rank_is_among_distinct_articles():
    # passages of a, a, a, b: b is the second article retrieved, not the fourth passage
    assert first_relevant_rank(["a", "a", "a", "b"], {"b"}) == 2
    assert first_relevant_rank(["b", "a", "b"], {"b"}) == 1
    assert first_relevant_rank(["a", "c", "a", "c", "b"], {"b", "x"}) == 3


def test_no_source_article_retrieved_has_no_rank():
    assert first_relevant_rank(["a", "a", "c"], {"b"}) is None
    assert first_relevant_rank([], {"b"}) is None
    assert first_relevant_rank(["a"], set()) is None


def test_hit_at_k_is_the_share_of_questions_ranked_k_or_better():
    ranks = [1, 2, 5, 6, None]
    assert hit_at(ranks, 1) == pytest.approx(1 / 5)
    assert hit_at(ranks, 5) == pytest.approx(3 / 5)
    assert hit_at([], 5) is None


def test_mrr_counts_zero_past_rank_ten():
    assert mean_reciprocal_rank([1, 2, None, 10]) == pytest.approx((1 + 1 / 2 + 0 + 1 / 10) / 4)
    assert mean_reciprocal_rank([11]) == 0.0
    assert mean_reciprocal_rank([1, 11]) == pytest.approx(0.5)
    assert mean_reciprocal_rank([]) is None


def test_retrieval_metrics_names():
    assert retrieval_metrics([1, 3, None, 11]) == {"hit_at_1": 0.25, "hit_at_5": 0.5, "mrr": pytest.approx((1 + 1 / 3) / 4)}
    assert retrieval_metrics([]) == {"hit_at_1": None, "hit_at_5": None, "mrr": None}


# --------------------------------------------------------------------------- aggregates
@pytest.mark.parametrize("values", [[7], [3, 1], [5, 1, 4], [10, 20, 30, 40], [2.5, 0.1, 7.25, 3.0, 1.5, 9.75]])
def test_median_is_the_50th_percentile_and_the_usual_median(values):
    assert median(values) == percentile(values, 50) == pytest.approx(statistics.median(values))


def test_percentiles_interpolate_inclusively():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([4.0], 95) == 4.0
    assert percentile([], 95) == 0.0
    assert median([]) is None


def test_share_of_flags():
    assert share([True, False, True, True]) == 0.75
    assert share([]) is None


def test_answer_normalize_keeps_words_only():
    assert words("a-b, c_d 12") == ["a", "b", "c_d", "12"]
    assert answer_normalize("«القاهرةُ»، [1] The City!") == "القاهره the city"


# --------------------------------------------------------------------------- model errors
class FakeAssistant:
    """Answers every question but those in ``failing`` (with BackendUnavailableError)."""

    def __init__(self, failing: set[str]):
        self.failing = failing
        self.asked: list[str] = []

    def ask(self, question: str) -> str:
        self.asked.append(question)
        if question in self.failing:
            raise BackendUnavailableError(f"no answer to {question}")
        return f"answer to {question}"


def run(assistant: FakeAssistant, questions: list[str]) -> tuple[list, ModelErrors]:
    """The loop of the eval and the benchmarks: ask until the policy stops the run."""
    errors = ModelErrors(len(questions))
    answers = []
    for q in questions:
        if errors.stopped:
            break
        answers.append(errors.ask(assistant, q.upper(), q))
    return answers, errors


def test_three_failures_in_a_row_stop_the_run_and_say_what_was_not_run():
    questions = ["q1", "q2", "q3", "q4", "q5", "q6"]
    assistant = FakeAssistant({"q2", "q3", "q4"})

    answers, errors = run(assistant, questions)

    assert MAX_ERRORS_IN_A_ROW == 3
    assert assistant.asked == ["q1", "q2", "q3", "q4"]
    assert answers == ["answer to q1", None, None, None]
    assert errors.stopped and errors.last == "no answer to q4"
    assert errors.errors == [
        "Q2: no answer to q2",
        "Q3: no answer to q3",
        "Q4: no answer to q4",
        "stopped after 3 model errors in a row; 2 item(s) not run",
    ]


def test_a_success_between_failures_resets_the_count():
    questions = ["q1", "q2", "q3", "q4", "q5", "q6"]
    assistant = FakeAssistant({"q1", "q2", "q4", "q5"})

    answers, errors = run(assistant, questions)

    assert assistant.asked == questions, "every question was asked"
    assert answers == [None, None, "answer to q3", None, None, "answer to q6"]
    assert not errors.stopped
    assert [e.split(":")[0] for e in errors.errors] == ["Q1", "Q2", "Q4", "Q5"]


def test_failures_on_the_last_questions_stop_nothing():
    questions = ["q1", "q2", "q3"]
    answers, errors = run(FakeAssistant(set(questions)), questions)

    assert answers == [None, None, None]
    assert not errors.stopped and len(errors.errors) == 3, "nothing was left to stop"


# --- visible defects of an answer (issue 19), as the eval counts them --------------------------
class _Cited:
    def __init__(self, n: int, text: str, title: str = ""):
        self.n, self.text, self.title = n, text, title


@pytest.mark.parametrize(
    ("text", "language", "defects"),
    [
        ("ال المتحدث الرسمي باسم التحالف هو مايلز كيغينز [1].", "ar", ["bare_article"]),
        ("المتحدث الرسمي باسم التحالف هو مايلز كيغينز [1].", "ar", []),
        ("The coalition fought Dاعsh in Deir ez-Zor [1].", "en", ["mixed_script_word", "arabic_outside_parentheses"]),
        ("The spokesman is قسد's ally [1].", "en", ["arabic_outside_parentheses"]),
        ("The spokesman is Myles Caggins (مايلز كيغينز) [1].", "en", []),
        # The marker cuts "1.5": the sentence it closes says "1", which the passage does not.
        ("عدد سكان مدينة الحسكة هو 1 [1].5 مليون.", "ar", ["marker_inside_number", "invented_number_cited"]),
        ("The town has 1.5 million people [1]. It grew [1].", "en", []),
    ],
    ids=["bare-article", "clean-ar", "mixed-word", "arabic-outside", "name-in-parentheses", "marker-in-number", "clean-en"],
)
def test_answer_defects_of_the_text(text, language, defects):
    assert answer_defects(text, language, citations=[_Cited(1, "The town has 1.5 million people, officials said.")]) == defects


def test_a_number_neither_the_question_nor_its_passage_holds_is_a_defect():
    passage = _Cited(1, "ولم تذكر السلطات عدد سكان المدينة.", "الحسكة")
    assert answer_defects("عدد سكان مدينة الحسكة هو 1000000 [1].", "ar", "ما عدد سكان مدينة الحسكة؟", [passage]) == ["invented_number_cited"]
    said = _Cited(1, "يبلغ عدد سكان المدينة مليون نسمة.", "الحسكة")
    assert answer_defects("عدد سكان مدينة الحسكة هو 1000000 [1].", "ar", "ما عدد سكان مدينة الحسكة؟", [said]) == []
