"""Outlet and date filters on a real Chroma and the real embedder: articles carry outlets and dates
in the forms archives write them, and a filtered question gets passages of matching articles only,
from dense search and from BM25 alike, ranked as they rank among all."""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.assistant import Assistant
from assistant.config import load_settings
from assistant.models import Filters
from assistant.retrieve import Retriever
from tests.conftest import SEEDS, write_config

from .helpers import run_cli

pytestmark = pytest.mark.slow

# The seeds' paragraphs make articles of their own: (outlet, the date as the record writes it,
# the ISO date it must be stored as). "" for an article with no outlet or date.
DATED = [
    ("Enab Baladi", "الثلاثاء 28 تموز 2020", "2020-07-28"),
    ("Enab Baladi", "Tue, 14 Jul 2020 09:30:00 +0300", "2020-07-14"),
    ("Enab Baladi", "2020-08-01T00:10:00+03:00", "2020-08-01"),
    ("Asharq Al-Awsat", "٣١ يوليو ٢٠٢٠", "2020-07-31"),
    ("Asharq Al-Awsat", "30 حزيران 2020", "2020-06-30"),
    ("Asharq Al-Awsat", "", ""),
    ("Syria TV", "2019-12-31", "2019-12-31"),
    ("Syria TV", "1 كانون الثاني 2021", "2021-01-01"),
    ("Syria TV", "أمس الثلاثاء، 28 من تموز", ""),  # no year: no date
    ("", "15/07/2020", "2020-07-15"),
]
# Bylines of some articles (record index -> author); the others name none.
AUTHORS = {0: "سلمى العلوي", 7: "Ahmad Hamza"}
QUESTIONS = ["من هو المتحدث الرسمي باسم التحالف الدولي؟", "What did the coalition announce about Deir Ez-Zor?"]
ALL = 500  # more than the chunks: every chunk is a candidate, so rankings are complete


def records() -> list[dict]:
    """Articles of 2-3 consecutive seed paragraphs each, all on the seeds' topics."""
    paragraphs = []
    for path in sorted(SEEDS.glob("*.txt")):
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines()[1:] if len(ln) > 80]
        paragraphs += [lines[i : i + 3] for i in range(0, len(lines), 3)]
    assert len(paragraphs) >= len(DATED), "the seeds hold enough paragraphs"
    out = []
    for n, ((outlet, written, _), body) in enumerate(zip(DATED, paragraphs)):
        record = {"id": f"a{n}", "title": f"مقال {n}", "text": "\n".join(body)}
        if outlet:
            record["source"] = outlet
        if written:
            record["time" if n % 2 else "date"] = written  # archives name the field either way
        if n in AUTHORS:
            record["author"] = AUTHORS[n]
        out.append(record)
    return out


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("filters")
    (root / "articles.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records()), encoding="utf-8")
    config = write_config(root, retrieval={"candidates": ALL}, llm={"provider": "extractive"})
    assistant = Assistant(load_settings(config))
    report = assistant.ingest([root / "articles.jsonl"])
    assert len(report.added) == len(DATED), report
    return root, assistant


def dates_and_outlets(assistant: Assistant) -> dict[str, tuple[str, str]]:
    return {d.doc_id: (d.source, d.date) for d in assistant.documents()}


def admitted(filters: Filters) -> set[str]:
    """The articles a filter admits, by the table above."""
    out = set()
    for n, (outlet, _, iso) in enumerate(DATED):
        if filters.sources and outlet not in filters.sources:
            continue
        if (filters.since or filters.until) and not iso:
            continue
        if filters.since and iso < filters.since.isoformat() or filters.until and iso > filters.until.isoformat():
            continue
        out.add(f"a{n}")
    return out


def test_outlets_and_dates_are_stored_as_iso_dates(indexed):
    _, assistant = indexed
    assert dates_and_outlets(assistant) == {f"a{n}": (outlet, iso) for n, (outlet, _, iso) in enumerate(DATED)}


def test_authors_travel_with_documents_passages_and_citations(indexed):
    _, assistant = indexed
    want = {f"a{n}": AUTHORS.get(n, "") for n in range(len(DATED))}
    assert {d.doc_id: d.author for d in assistant.documents()} == want
    passages = assistant.search(QUESTIONS[0], top_k=ALL)
    assert {p.doc_id for p in passages} == set(want)  # every article, so both bylines are seen
    assert all(p.author == want[p.doc_id] for p in passages)
    answer = assistant.ask(QUESTIONS[0], filters=Filters(sources=["Enab Baladi"], until="2020-07-28"))
    assert answer.citations and {c.doc_id for c in answer.citations} <= {"a0", "a1"}
    assert all(c.author == want[c.doc_id] for c in answer.citations)
    assert assistant.article("a7").author == "Ahmad Hamza"


FILTERS = [
    Filters(sources=["Enab Baladi"]),
    Filters(sources=["Syria TV", "Asharq Al-Awsat"]),
    Filters(since="2020-07", until="2020-07"),
    Filters(since="2020-07-15"),
    Filters(until="2020"),
    Filters(sources=["Asharq Al-Awsat"], since="2020-07"),
]


@pytest.mark.parametrize("mode", ["dense", "bm25"])
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.describe())
def test_a_filtered_search_ranks_the_matching_passages_as_the_whole_ranking_does(indexed, mode, filters):
    _, assistant = indexed
    want = admitted(filters)
    assert want, "each filter admits some articles"
    for question in QUESTIONS if mode == "dense" else QUESTIONS[:1]:  # BM25 reads Arabic questions
        everything = assistant.search(question, top_k=ALL, mode=mode)
        filtered = assistant.search(question, top_k=ALL, mode=mode, filters=filters)
        assert filtered, (question, mode)
        assert {p.doc_id for p in filtered} <= want
        expected = [p.chunk_id for p in everything if p.doc_id in want]
        assert [p.chunk_id for p in filtered] == expected


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: f.describe())
def test_a_filtered_question_still_gets_its_top_k(indexed, filters):
    """The filter applies before each retriever takes its candidates, not to them after: with as
    few candidates as passages asked for, the passages are still all of matching articles."""
    _, assistant = indexed
    top_k = 3
    shallow = Retriever(assistant.index, assistant.embedder, assistant.settings.retrieval.model_copy(update={"candidates": top_k}))
    matching = [p for p in assistant.search(QUESTIONS[0], top_k=ALL, mode="hybrid") if p.doc_id in admitted(filters)]
    filtered = shallow.search(QUESTIONS[0], top_k=top_k, mode="hybrid", filters=filters)
    assert len(filtered) == min(top_k, len(matching))
    assert {p.doc_id for p in filtered} <= admitted(filters)


def test_no_matching_article_is_refused_with_the_reason(indexed):
    _, assistant = indexed
    answer = assistant.ask(QUESTIONS[0], filters=Filters(sources=["Al Jazeera"]))
    assert answer.refused and not answer.citations
    assert any("no indexed article matches the filters (from Al Jazeera)" in note for note in answer.notes), answer.notes
    unfiltered = assistant.ask(QUESTIONS[0])
    assert not unfiltered.refused


def test_the_command_line_filters_and_shows_outlet_and_date(indexed, tmp_path):
    root, _ = indexed
    shutil.copy(root / "config.yaml", tmp_path / "config.yaml")
    for folder in ("chroma", "lexical"):
        if (root / folder).exists():
            shutil.copytree(root / folder, tmp_path / folder)
    result = run_cli(tmp_path, "search", QUESTIONS[0], "--source", "Syria TV", "--since", "2020", "--json")
    assert result.returncode == 0, result.stderr
    passages = json.loads(result.stdout)
    assert passages and {p["doc_id"] for p in passages} == {"a7"}  # Syria TV, 2020 onwards: only a7 (2021)
    shown = run_cli(tmp_path, "search", QUESTIONS[0], "--source", "Syria TV", "--since", "2020")
    assert "Syria TV · Ahmad Hamza · 2021-01-01" in shown.stdout  # outlet · author · date
    status = run_cli(tmp_path, "status")
    assert "— Enab Baladi · سلمى العلوي · 2020-07-28" in status.stdout and "— Enab Baladi · 2020-07-14" in status.stdout
    bad = run_cli(tmp_path, "search", QUESTIONS[0], "--since", "July 2020")
    assert bad.returncode == 1
    assert "'July 2020' is not a date: write YYYY, YYYY-MM or YYYY-MM-DD" in bad.stderr
    backwards = run_cli(tmp_path, "search", QUESTIONS[0], "--since", "2021", "--until", "2020")
    assert backwards.returncode == 1 and "since (2021-01-01) is after until (2020-12-31)" in backwards.stderr
