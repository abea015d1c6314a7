"""A story across outlets (issue 34), the parts without an index: where the outlets' answers
differ (``ask --by-source``) and the timeline's optional summaries (with the fake model)."""

from __future__ import annotations


# --- ask --by-source: where the outlets' answers differ ------------------------------------------
def test_numbers_given_by_some_outlets_and_not_others_are_disagreements():
    from assistant.by_source import SourceAnswer, disagreements

    def said(source: str, text: str, refused: bool = False) -> SourceAnswer:
        return SourceAnswer(source=source, text=text, language="ar", refused=refused)

    found = disagreements([
        said("Enab Baladi", "اعتقلت قسد 31 شخصا [1]"),
        said("Syria TV", "اعتقلت قسد ثلاثين شخصا [1]"),  # spelled out: 30
        said("Al-Modon", "اعتقلت قسد عددا من الأشخاص [1]"),  # no number: says nothing against either
        said("Asharq", "لا تتضمن المقالات إجابة 99", refused=True),  # a refusal counts for nothing
    ])
    assert [(d.value, d.sources, d.others) for d in found] == [("30", ["Syria TV"], ["Enab Baladi"]), ("31", ["Enab Baladi"], ["Syria TV"])]
    assert disagreements([said("A", "بلغ العدد 1,500 [1]"), said("B", "بلغ العدد 1500 [1]")]) == []  # the same number
    assert disagreements([said("A", "31 [1]")]) == []


def test_names_differ_only_when_the_question_asks_for_one_and_the_answers_share_no_name_word():
    from assistant.by_source import asks_for_name, disagreements, SourceAnswer
    from assistant.models import Citation

    def said(source: str, text: str, passage: str) -> SourceAnswer:
        cite = Citation(n=1, doc_id=source, title="t", chunk_id=f"{source}#0", text=passage, start=0, end=len(passage), score=0.9)
        return SourceAnswer(source=source, text=text, language="ar", citations=[cite])

    question = "من هو المتحدث باسم التحالف؟"
    one = said("Enab Baladi", "المتحدث باسم التحالف هو مايلز كاغينز [1]", "قال المتحدث باسم التحالف مايلز كاغينز إن …")
    two = said("Syria TV", "المتحدث باسم التحالف هو ريان ديلون [1]", "أعلن ريان ديلون، المتحدث باسم التحالف، أن …")
    same = said("Al-Modon", "إنه العقيد مايلز كاغينز [1]", "العقيد مايلز كاغينز، المتحدث باسم التحالف")
    found = disagreements([one, two, same], question)
    assert [(d.kind, d.value, d.sources, d.others) for d in found] == [
        ("name", "مايلز كاغينز", ["Enab Baladi"], ["Syria TV"]),
        ("name", "ريان ديلون", ["Syria TV"], ["Enab Baladi", "Al-Modon"]),
        ("name", "العقيد مايلز كاغينز", ["Al-Modon"], ["Syria TV"]),
    ]
    # A hashtag's words count apart, and a name with the article ("السيرجي") is the same name.
    tagged = said("Al Arabiya", "السيرجي_سكريبال (66 عاما) [1]", "ويرقد العميل المزدوج، #سيرجي_سكريبال (66 عاما)")
    plain = said("CNN", "إنه سيرغي سكريبال [1]", "العميل المزدوج الروسي السابق سيرغي سكريبال")
    assert disagreements([tagged, plain], question) == []
    # A name the model wrote that is in none of its passages is not taken as the outlet's claim.
    assert disagreements([one, said("Syria TV", "المتحدث هو ريان ديلون [1]", "أعلن التحالف أن …")], question) == []
    # Not a question for a name: different people in the answers are not a disagreement.
    assert disagreements([one, two], "ماذا قال المتحدث باسم التحالف؟") == []
    assert asks_for_name("Who is the coalition's spokesman?") and asks_for_name("ما اسم المتحدث؟")
    assert not asks_for_name("من أين انطلقت القافلة؟") and not asks_for_name("When did it start?")
    # English answers: a capitalized word counts as a name even though the passages are Arabic.
    english = [SourceAnswer(source=s, text=t, language="en") for s, t in [("A", "The spokesman is Colonel Miles Caggins [1]."),
                                                                            ("B", "It was Ryan Dillon [1].")]]
    # (not the first word of a sentence, capitalized whatever it is)
    assert [(d.value, d.sources) for d in disagreements(english, "Who is the coalition spokesman?")] == [
        ("Colonel Miles Caggins", ["A"]), ("Ryan Dillon", ["B"])]


# --- the timeline's optional summaries ---------------------------------------------------------
def _timeline():
    from assistant.models import Citation
    from assistant.timeline import Timeline, TimelineLine, TimelinePeriod

    cite = Citation(n=1, doc_id="a", title="t", chunk_id="a#0", text="أعلن التحالف تحركه إلى الحسكة.", start=0, end=30, score=0.9)
    line = TimelineLine(source="Enab Baladi", sources=["Enab Baladi", "Al-Modon"], date="2020-07-29", text=cite.text, doc_id="a",
                        chunk_id="a#0", score=0.9, citation=cite)
    period = TimelinePeriod(date="2020-07-29", unit="day", lines=[line], articles=2, doc_ids=["a", "b"])
    return Timeline(query="تحرك التحالف", periods=[period, period.model_copy(deep=True)], articles=2, floor=0.8)


def test_summaries_are_one_line_per_period_from_its_lines_only():
    from assistant.prompts import Prompts
    from assistant.timeline import summarize
    from tests.unit.test_answer_gates import FakeLLM
    from assistant.llm import ChatBackend

    llm = FakeLLM(["تحرك التحالف إلى الحسكة.\nسطر زائد", "  \nيوم ثان."])
    timeline = _timeline()
    summarize(timeline, ChatBackend("fake", llm, explain=lambda exc: None), Prompts())
    assert [p.summary for p in timeline.periods] == ["تحرك التحالف إلى الحسكة.", "يوم ثان."]  # the first line only
    prompt = llm.prompts[0][-1].content
    assert "Enab Baladi / Al-Modon: أعلن التحالف تحركه إلى الحسكة." in prompt and "in Arabic" in prompt and "on 2020-07-29" in prompt


def test_without_a_model_the_timeline_says_why_there_are_no_summaries():
    from assistant.prompts import Prompts
    from assistant.timeline import summarize

    timeline = _timeline()
    summarize(timeline, None, Prompts())
    assert all(p.summary is None for p in timeline.periods) and "no language model" in timeline.notes[0]
