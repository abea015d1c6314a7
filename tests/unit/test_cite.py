"""Citation validation (assistant.cite) and refusal detection (Answerer._is_refusal) on hand-made
model outputs. No model: passages are built by hand from sentences of the seed articles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.answer import Answerer
from assistant.cite import answer_support, attributions_as_markers, cite, cited_sentences, lexical_support
from assistant.config import AnswerSettings
from assistant.llm import ResolvedBackend
from assistant.models import Passage
from assistant.prompts import Prompts

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def seed_path(prefix: str) -> Path:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path


def seed_passage(prefix: str, opening: str, chunk_id: str, score: float, title: str | None = None) -> Passage:
    """The seed line starting with ``opening``, with its offsets in the seed file's text."""
    path = seed_path(prefix)
    text = path.read_text(encoding="utf-8")
    start = text.index(opening)
    end = text.find("\n", start)
    end = len(text) if end == -1 else end
    return Passage(
        chunk_id=chunk_id,
        doc_id=path.stem,
        title=text.splitlines()[0] if title is None else title,
        source=f"seeds/{path.name}",
        date="2020-07-29",
        text=text[start:end],
        start=start,
        end=end,
        score=score,
        dense_score=0.9,
        bm25_score=12.5,
    )


# «وقال الناطق الرسمي باسم التحالف الدولي العقيد، مايلز كيغينز، ...» (the Rmeilan press conference)
SPOKESMAN = seed_passage("000", "وقال الناطق الرسمي باسم التحالف الدولي العقيد، مايلز كيغينز", "000:0003", 2.5)
# «فمنذ 23 ديسمبر 2019 ... استقدم "التحالف الدولي" مئات الشاحنات ... آبار النفط والغاز» (unrelated to the spokesman)
TRUCKS = seed_passage("004", "فمنذ 23 ديسمبر 2019", "004:0001", 1.25)
# «وأعلن المتحدث الرسمي للتحالف العقيد مايلز كاغينز ...» (another outlet, another spelling)
KAGGINS = seed_passage("003", "وأعلن المتحدث الرسمي للتحالف العقيد مايلز كاغينز", "003:0000", 0.75, title="")

SPOKESMAN_ANSWER = "المتحدث الرسمي باسم التحالف الدولي هو العقيد مايلز كيغينز"  # + marker + "."
TRUCKS_ANSWER = "استقدم التحالف مئات الشاحنات إلى المناطق التي تحتوي على آبار النفط والغاز"
UNSUPPORTED_ANSWER = "الطقس مشمس وجميل في باريس اليوم."

MARKER = re.compile(r"\[(\d+)\]")


def always(sentence: str, passage: Passage) -> float:
    """A support function that accepts every marker: isolates marker parsing from matching."""
    return 1.0


def numbers(cited) -> list[int]:
    return [c.n for c in cited.citations]


def assert_tidy(text: str, passages: list[Passage]) -> None:
    """Every remaining marker names a shown passage; no stray brackets or spacing left behind."""
    assert all(1 <= int(n) <= len(passages) for n in MARKER.findall(text)), text
    assert "[]" not in text and "【" not in text and "】" not in text, text
    assert "  " not in text, text
    assert not re.search(r"\s[.،,؟?!]", text), text
    assert text == text.strip()


def test_the_passages_are_what_the_tests_assume():
    """Sanity of the fixtures: the spokesman sentence is supported by its passages, not the trucks one."""
    sentence = SPOKESMAN_ANSWER + "."
    assert "مايلز كيغينز" in SPOKESMAN.text and "كاغينز" in KAGGINS.text and "الشاحنات" in TRUCKS.text
    assert lexical_support(sentence, SPOKESMAN) >= 0.3
    assert lexical_support(sentence, KAGGINS) >= 0.3
    assert lexical_support(sentence, TRUCKS) < 0.3
    assert lexical_support(TRUCKS_ANSWER, TRUCKS) >= 0.3 > lexical_support(TRUCKS_ANSWER, SPOKESMAN)


# --------------------------------------------------------------------------- markers the model wrote
def test_valid_marker_is_kept():
    answer = f"{SPOKESMAN_ANSWER} [1]."

    cited = cite(answer, [SPOKESMAN, TRUCKS])

    assert cited.text == answer
    assert numbers(cited) == [1]
    assert cited.dropped == []


@pytest.mark.parametrize("marker", ["[١]", "[۱]", "【1】", "【١】", "[ 1 ]", "[٠١]"], ids=["arabic-indic", "extended", "lenticular", "lenticular-arabic", "spaces", "leading-zero"])
def test_marker_forms_are_normalized(marker):
    cited = cite(f"{SPOKESMAN_ANSWER} {marker}.", [SPOKESMAN, TRUCKS])

    assert cited.text == f"{SPOKESMAN_ANSWER} [1]."
    assert numbers(cited) == [1] and cited.dropped == []


@pytest.mark.parametrize(
    ("marker", "text_marker", "expected"),
    [
        ("[1, 2]", "[1][2]", [1, 2]),
        ("[1,2]", "[1][2]", [1, 2]),
        ("[١،٢]", "[1][2]", [1, 2]),
        ("[۱، ۲]", "[1][2]", [1, 2]),
        ("[1; 2]", "[1][2]", [1, 2]),
        ("[1][2]", "[1][2]", [1, 2]),
        ("【1】【2】", "[1][2]", [1, 2]),
        ("[2, 1]", "[2][1]", [2, 1]),
        ("[1, 1]", "[1]", [1]),
        ("[١، 1]", "[1]", [1]),
        ("[2, ٢, 1]", "[2][1]", [2, 1]),
    ],
)
def test_marker_lists_are_parsed_and_duplicates_collapse(marker, text_marker, expected):
    cited = cite(f"{SPOKESMAN_ANSWER} {marker}.", [SPOKESMAN, TRUCKS], support=always)

    assert cited.text == f"{SPOKESMAN_ANSWER} {text_marker}."
    assert numbers(cited) == expected
    assert cited.dropped == []


def test_the_same_passage_cited_twice_is_one_citation():
    answer = f"{SPOKESMAN_ANSWER} [1]. وهو العقيد مايلز كيغينز الناطق باسم التحالف [١]."

    cited = cite(answer, [SPOKESMAN, TRUCKS])

    assert numbers(cited) == [1]
    assert cited.text.count("[1]") == 2


def test_adjacent_duplicate_markers_keep_one_citation():
    cited = cite(f"{SPOKESMAN_ANSWER} [1][1].", [SPOKESMAN, TRUCKS])

    assert numbers(cited) == [1] and cited.dropped == []


@pytest.mark.parametrize(("marker", "text_marker"), [("[1][1]", "[1]"), ("[2][1][2]", "[2][1]"), ("[1] [1]", "[1]")])
def test_adjacent_duplicate_markers_collapse_in_the_text(marker, text_marker):
    cited = cite(f"{SPOKESMAN_ANSWER} {marker}.", [SPOKESMAN, TRUCKS], support=always)

    assert cited.text == f"{SPOKESMAN_ANSWER} {text_marker}."


def test_a_list_keeps_only_the_passages_that_support_the_sentence():
    cited = cite(f"{SPOKESMAN_ANSWER} [١، ٢، ٣].", [SPOKESMAN, TRUCKS, KAGGINS])

    assert cited.text == f"{SPOKESMAN_ANSWER} [1][3]."
    assert numbers(cited) == [1, 3]
    assert cited.dropped == [2]


@pytest.mark.parametrize(
    ("answer", "dropped"),
    [
        (f"{SPOKESMAN_ANSWER} [0] وقال [7] إنه مستمر بدعم قوات سوريا الديمقراطية.", [0, 7]),
        (f"{SPOKESMAN_ANSWER} [7].", [7]),
        (f"[0] {SPOKESMAN_ANSWER} [7].", [0, 7]),
        (f"{SPOKESMAN_ANSWER} [0, 7].", [0, 7]),
        (f"{SPOKESMAN_ANSWER} 【٠】 [۷].", [0, 7]),
    ],
)
def test_out_of_range_markers_are_removed_and_reported(answer, dropped):
    passages = [SPOKESMAN, TRUCKS]

    cited = cite(answer, passages)

    assert "[0]" not in cited.text and "[7]" not in cited.text
    assert sorted(cited.dropped) == dropped
    assert_tidy(cited.text, passages)
    # Nothing valid survived, so the sentence is cited by matching: the spokesman passage.
    assert numbers(cited) == [1]
    assert cited.text.endswith("[1].")


def test_out_of_range_next_to_a_valid_marker():
    cited = cite(f"{SPOKESMAN_ANSWER} [1][7].", [SPOKESMAN, TRUCKS])

    assert cited.text == f"{SPOKESMAN_ANSWER} [1]."
    assert numbers(cited) == [1] and cited.dropped == [7]


def test_marker_on_an_unsupported_sentence_is_dropped():
    """A sentence about the trucks and oil fields cites the spokesman passage: wrong, so dropped; the
    sentence is then cited by matching, with the passage that does support it."""
    cited = cite(f"{TRUCKS_ANSWER} [1].", [SPOKESMAN, TRUCKS])

    assert cited.dropped == [1]
    assert numbers(cited) == [2]
    assert cited.text == f"{TRUCKS_ANSWER} [2]."


def test_unsupported_marker_next_to_a_valid_one_is_just_removed():
    answer = f"{SPOKESMAN_ANSWER} [1]. {TRUCKS_ANSWER} [1]."

    cited = cite(answer, [SPOKESMAN, TRUCKS])

    assert cited.dropped == [1]
    assert numbers(cited) == [1]
    assert cited.text == f"{SPOKESMAN_ANSWER} [1]. {TRUCKS_ANSWER}."


def test_a_marker_citing_the_wrong_passage_among_several():
    answer = f"{SPOKESMAN_ANSWER} [2]. {TRUCKS_ANSWER} [2]."

    cited = cite(answer, [SPOKESMAN, TRUCKS])

    assert cited.dropped == [2]
    assert numbers(cited) == [2]
    assert cited.text == f"{SPOKESMAN_ANSWER}. {TRUCKS_ANSWER} [2]."


@pytest.mark.parametrize(
    ("answer", "expected_text", "expected"),
    [
        (f"{SPOKESMAN_ANSWER}. [1]", f"{SPOKESMAN_ANSWER} [1].", [1]),
        (f"{SPOKESMAN_ANSWER}.[1]", f"{SPOKESMAN_ANSWER} [1].", [1]),
        (f"{SPOKESMAN_ANSWER} [1]. {TRUCKS_ANSWER}.[2]", f"{SPOKESMAN_ANSWER} [1]. {TRUCKS_ANSWER} [2].", [1, 2]),
        (f"{SPOKESMAN_ANSWER}.[1] {TRUCKS_ANSWER}.[2]", f"{SPOKESMAN_ANSWER} [1]. {TRUCKS_ANSWER} [2].", [1, 2]),
    ],
    ids=["space-after-stop", "right-after-stop", "second-sentence", "both-sentences"],
)
def test_marker_after_the_final_punctuation_belongs_to_its_sentence(answer, expected_text, expected):
    cited = cite(answer, [SPOKESMAN, TRUCKS])

    assert numbers(cited) == expected
    assert cited.dropped == []
    assert cited.text == expected_text


@pytest.mark.parametrize(
    "junk",
    ["[a]", "[]", "[1", "1]", "[", "]", "[-1]", "[1-]", "[,]", "【】", "[١", "[ ]", "[1.5]", "[99999999999999999999]", "[1][", "[[1]]"],
)
def test_malformed_markers_never_cite_a_missing_passage(junk):
    passages = [SPOKESMAN, TRUCKS]

    cited = cite(f"{SPOKESMAN_ANSWER} {junk}.", passages)

    assert all(1 <= c.n <= len(passages) for c in cited.citations)
    assert all(1 <= int(n) <= len(passages) for n in MARKER.findall(cited.text)), cited.text
    assert SPOKESMAN_ANSWER in cited.text


@pytest.mark.parametrize("answer", [f"{SPOKESMAN_ANSWER} [1].", f"{SPOKESMAN_ANSWER} [a] [1", "[]", ""])
def test_no_passages_no_citations(answer):
    cited = cite(answer, [])

    assert cited.citations == []
    assert MARKER.findall(cited.text) == []


# --------------------------------------------------------------------------- no markers: matching
def test_missing_marker_is_attached_before_the_final_punctuation():
    cited = cite(f"{SPOKESMAN_ANSWER}.", [TRUCKS, SPOKESMAN])

    assert cited.text == f"{SPOKESMAN_ANSWER} [2]."
    assert numbers(cited) == [2] and cited.dropped == []


def test_each_sentence_gets_the_passage_that_supports_it():
    answer = f"{SPOKESMAN_ANSWER}. {TRUCKS_ANSWER}!"

    cited = cite(answer, [SPOKESMAN, TRUCKS])

    assert cited.text == f"{SPOKESMAN_ANSWER} [1]. {TRUCKS_ANSWER} [2]!"
    assert numbers(cited) == [1, 2]


@pytest.mark.parametrize(("ending", "expected"), [("", " [1]"), ("؟", " [1]؟"), ("...", " [1]..."), ("\n", " [1]")])
def test_attached_marker_placement(ending, expected):
    cited = cite(f"{SPOKESMAN_ANSWER}{ending}", [SPOKESMAN, TRUCKS])

    assert cited.text == f"{SPOKESMAN_ANSWER}{expected}"


@pytest.mark.parametrize("answer", [UNSUPPORTED_ANSWER, "The weather is nice in Paris today.", f"{UNSUPPORTED_ANSWER} [a]"])
def test_unsupported_answer_gets_no_citation(answer):
    cited = cite(answer, [SPOKESMAN, TRUCKS])

    assert cited.citations == []
    assert cited.text == answer.strip()
    assert MARKER.findall(cited.text) == []


def test_one_fact_per_line_keeps_its_lines():
    answer = f"- {SPOKESMAN_ANSWER} [1]\n- {TRUCKS_ANSWER} [2]"

    cited = cite(answer, [SPOKESMAN, TRUCKS])

    assert cited.text == answer
    assert numbers(cited) == [1, 2]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (f"{SPOKESMAN_ANSWER} [1].\n{TRUCKS_ANSWER} [2].", f"{SPOKESMAN_ANSWER} [1].\n{TRUCKS_ANSWER} [2]."),
        (f"{SPOKESMAN_ANSWER} [1].\n\n{TRUCKS_ANSWER} [2].", f"{SPOKESMAN_ANSWER} [1].\n\n{TRUCKS_ANSWER} [2]."),
        (f"{SPOKESMAN_ANSWER}.\n\n{TRUCKS_ANSWER}.", f"{SPOKESMAN_ANSWER} [1].\n\n{TRUCKS_ANSWER} [2]."),
    ],
    ids=["line", "paragraph", "paragraph-attached"],
)
def test_line_breaks_after_a_full_stop_are_kept(answer, expected):
    cited = cite(answer, [SPOKESMAN, TRUCKS])

    assert numbers(cited) == [1, 2]
    assert cited.text == expected


def test_citation_fields_are_copied_from_the_passage():
    cited = cite(f"{SPOKESMAN_ANSWER} [2]. {TRUCKS_ANSWER} [1].", [TRUCKS, SPOKESMAN])

    assert numbers(cited) == [2, 1]
    for citation in cited.citations:
        passage = [TRUCKS, SPOKESMAN][citation.n - 1]
        assert citation.doc_id == passage.doc_id
        assert citation.chunk_id == passage.chunk_id
        assert (citation.start, citation.end) == (passage.start, passage.end)
        assert citation.text == passage.text
        assert citation.title == passage.title
        assert citation.score == passage.score
        assert citation.source == passage.source and citation.date == passage.date
    spokesman = cited.citations[0]
    assert spokesman.doc_id == seed_path("000").stem
    assert seed_path("000").read_text(encoding="utf-8")[spokesman.start : spokesman.end] == spokesman.text


# --------------------------------------------------------------------------- refusal detection
@pytest.fixture(scope="module")
def answerer() -> Answerer:
    """Only the prompts matter to _is_refusal; the other collaborators are merely stored."""
    return Answerer(retriever=None, embedder=None, backends=ResolvedBackend(None, "extractive"), settings=AnswerSettings(), prompts=Prompts())


REFUSAL_AR = Prompts().localized("refusal", "ar")
REFUSAL_EN = Prompts().localized("refusal", "en")
LONG_ANSWER = (
    "لكن المقالات تذكر أن الناطق الرسمي باسم التحالف الدولي هو العقيد مايلز كيغينز [1]، وأنه قال في مؤتمر صحفي "
    "عقد في قاعدة رميلان إن التحالف تحرك من الغرب شرقاً إلى دير الزور والحسكة، مشيراً إلى استمرار دعم قوات سوريا "
    "الديمقراطية عسكرياً عبر تبادل المعلومات الاستخباراتية وتنفيذ الضربات الجوية [1]."
)


def test_refusal_sentences_are_the_prompt_files():
    assert REFUSAL_AR == "لا تتضمن المقالات المفهرسة إجابة عن هذا السؤال."
    assert REFUSAL_EN == "The indexed articles do not contain an answer to this question."


@pytest.mark.parametrize("language", ["ar", "en"])
@pytest.mark.parametrize(
    "text",
    [REFUSAL_AR, REFUSAL_EN, f"{REFUSAL_AR} [1]", REFUSAL_AR.rstrip("."), f"«{REFUSAL_AR}»", ""],
    ids=["arabic", "english", "with-marker", "no-stop", "quoted", "empty"],
)
def test_refusals_are_detected(answerer, text, language):
    assert answerer._is_refusal(text, language) is True


@pytest.mark.parametrize(
    "text",
    [
        f"{REFUSAL_AR} {LONG_ANSWER}",
        f"{SPOKESMAN_ANSWER} [1].",
        "The coalition's spokesman is Colonel Myles Caggins [1].",
        f"{TRUCKS_ANSWER} [2].",
    ],
    ids=["refusal-then-answer", "arabic-answer", "english-answer", "trucks-answer"],
)
def test_answers_are_not_refusals(answerer, text):
    assert answerer._is_refusal(text, "ar") is False
    assert answerer._is_refusal(text, "en") is False


def test_cited_sentences_pair_each_sentence_with_its_markers():
    """What the faithfulness judge checks: a trailing marker belongs to the sentence before it,
    lists and Arabic-Indic digits are read, stray markers between sentences are no sentence."""
    answer = "تحدث العقيد كاغينز.[١] وقال إن العملية استمرت أربعة أيام [1, 2]؟ [3]\nLine without a marker"
    assert cited_sentences(answer) == [
        ("تحدث العقيد كاغينز.", [1]),
        ("وقال إن العملية استمرت أربعة أيام؟", [1, 2, 3]),
        ("Line without a marker", []),
    ]


# --------------------------------------------------------------------------- strict support
SPOKESMAN_Q = "من هو المتحدث الرسمي باسم التحالف الدولي؟"


def test_strict_support_counts_only_what_the_answer_adds_to_the_question():
    restated = "المتحدث الرسمي باسم التحالف الدولي هو المتحدث الرسمي."
    assert answer_support(restated, SPOKESMAN) >= 0.3  # every word is in the passage...
    assert answer_support(restated, SPOKESMAN, asked=SPOKESMAN_Q) == 0.0  # ...but it only restates the question
    assert answer_support(f"{SPOKESMAN_ANSWER}.", SPOKESMAN, asked=SPOKESMAN_Q) == 1.0  # the name is the new part
    assert answer_support(f"{SPOKESMAN_ANSWER}.", TRUCKS, asked=SPOKESMAN_Q) == 0.0


def test_strict_support_wants_an_added_number_in_the_passage():
    question = "كم شاحنة أدخل التحالف منذ 23 ديسمبر 2019؟"
    assert "500" not in TRUCKS.text and "23" in TRUCKS.text
    invented = "أدخل التحالف منذ 23 ديسمبر 2019 نحو 500 شاحنة."
    assert answer_support(invented, TRUCKS) == 0.0  # a number the passage lacks: unsupported, however many words match
    assert answer_support(invented.replace(" نحو 500 شاحنة", " مئات الشاحنات"), TRUCKS) >= 0.3  # the question's words carry it
    assert answer_support(invented, TRUCKS, asked=question) < 0.3


@pytest.mark.parametrize(
    ("sentence", "without", "strict"),
    [
        # A number the passage lacks makes the sentence unsupported (a number the question gives is no evidence).
        ("Since 23 December 2019 the coalition brought 500 trucks.", 0.0, 0.0),
        # A sentence without numbers cannot be checked across scripts: supported...
        ("The coalition brought hundreds of trucks since 23 December 2019.", 1.0, 1.0),
        # ...unless it only restates the question.
        ("The coalition did bring trucks into Syria since 23 December 2019.", 1.0, 0.0),
    ],
)
def test_strict_support_of_english_sentences(sentence, without, strict):
    question = "How many trucks did the coalition bring into Syria since 23 December 2019?"
    assert answer_support(sentence, TRUCKS) == pytest.approx(without)
    assert answer_support(sentence, TRUCKS, asked=question) == strict


def test_strict_support_refuses_citations_to_a_restated_question():
    restated = "المتحدث الرسمي باسم التحالف الدولي هو المتحدث الرسمي [1]."

    def strict(sentence, passage):
        return answer_support(sentence, passage, asked=SPOKESMAN_Q)

    assert numbers(cite(restated, [SPOKESMAN, TRUCKS], support=answer_support)) == [1]
    assert cite(restated, [SPOKESMAN, TRUCKS], support=strict).citations == []


# --------------------------------------------------------------------------- attributions in words
TRUCKS_EN = "The coalition brought hundreds of trucks into Syria from 23 December 2019"
TRUCKS_EN_LOWER = "t" + TRUCKS_EN[1:]  # after "According to …, "


@pytest.mark.parametrize(
    "answer",
    [
        f"According to passage [2], {TRUCKS_EN_LOWER}.",
        f"According to passage 2, {TRUCKS_EN_LOWER}.",
        f"{TRUCKS_EN}, as stated in passage [2].",
        f"{TRUCKS_EN}, according to passage [2].",
        f"{TRUCKS_EN}. This is stated in passage [2].",
        f"{TRUCKS_EN}. This information can be found in passage 2.",
    ],
    ids=["leading", "leading-bare-number", "as-stated", "according-to", "sentence", "sentence-bare-number"],
)
def test_attributions_in_words_become_markers(answer):
    """The embedded model writes "According to passage [1], …" in about one English answer in five."""
    cited = cite(answer, [SPOKESMAN, TRUCKS], support=answer_support)

    assert cited.text == f"{TRUCKS_EN} [2]."
    assert numbers(cited) == [2]
    assert cited.dropped == []


def test_an_attribution_is_checked_like_a_marker():
    """Attributed to the wrong passage: the marker is dropped, the right one attached by matching."""
    cited = cite(f"According to passage [1], {TRUCKS_EN_LOWER}.", [SPOKESMAN, TRUCKS], support=answer_support)

    assert cited.dropped == [1]
    assert numbers(cited) == [2]
    assert cited.text.endswith("2019 [2].") and "passage" not in cited.text


def test_an_attribution_without_a_number_is_removed_and_the_marker_attached():
    cited = cite(f"According to the passages, {TRUCKS_EN_LOWER}.", [SPOKESMAN, TRUCKS], support=answer_support)

    assert cited.text == f"{TRUCKS_EN} [2]."
    assert numbers(cited) == [2]


@pytest.mark.parametrize(
    "answer",
    [
        f"{SPOKESMAN_ANSWER} [1].",
        "He spoke in passage 3 of the speech, according to Reuters.",
        "According to officials, 100 trucks crossed.",
        "The passage of 2 convoys was reported.",
    ],
)
def test_text_that_is_not_an_attribution_is_left_alone(answer):
    assert attributions_as_markers(answer) == answer


def test_an_attribution_sentence_between_lines_keeps_the_line_break():
    answer = f"{SPOKESMAN_ANSWER}. This is stated in passage [1].\n{TRUCKS_ANSWER} [2]."

    assert attributions_as_markers(answer) == f"{SPOKESMAN_ANSWER} [1].\n{TRUCKS_ANSWER} [2]."
    assert numbers(cite(answer, [SPOKESMAN, TRUCKS])) == [1, 2]
