"""PDF and Word files read into articles (assistant.documents), on the test documents in
tests/fixtures/documents (built by its build.py from the seeds, by five PDF producers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import assistant.documents as documents
from assistant.arabic import normalize
from assistant.chunk import page_starts, pages_of
from assistant.clean import clean_article
from assistant.config import CleaningSettings
from assistant.documents import DocumentError, DocumentRules, drop_furniture, pdf_article, read_docx, read_pdf
from assistant.eval.metrics import character_accuracy, text_match, words
from assistant.read import Skipped, UnreadableFile, iter_file, read_paths

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "documents"
EXTENSIONS = [".txt", ".pdf", ".docx"]
ALL = 10**9
# Each PDF, with the source text it was made from.
PRODUCERS = {
    "chromium": "article", "writer": "article", "word": "article", "fpdf2": "article", "visual": "article",
    "mixed": "mixed", "columns": "columns", "table": "table", "pages": "pages",
}
needs_ocr = pytest.mark.skipif(
    not documents.ocr_available() and not os.environ.get("CI"), reason="Tesseract with Arabic is not installed (CI installs it)"
)


def indexed(name: str, rules: DocumentRules = DocumentRules()) -> str:
    """A document's text as it is indexed: read, cleaned, title first."""
    (article,) = [a for a in iter_file(FIXTURES / name, EXTENSIONS, ALL, rules) if not isinstance(a, Skipped)]
    cleaned = clean_article(article, CleaningSettings())
    return f"{cleaned.title}\n{cleaned.text}"


def source(name: str) -> str:
    return (FIXTURES / f"{name}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(PRODUCERS))
def test_every_producers_pdf_is_indexed_as_its_source_reads(name: str):
    assert text_match(indexed(f"{name}.pdf"), source(PRODUCERS[name])) >= 0.98


def test_the_source_itself_as_text_is_indexed_whole():
    # The same article as .txt, through the same reading and cleaning: what the PDFs are held to.
    assert text_match(indexed_text_file(), source("article")) >= 0.999


def indexed_text_file() -> str:
    (article,) = iter_file(FIXTURES / "article.txt", EXTENSIONS, ALL)
    cleaned = clean_article(article, CleaningSettings())
    return f"{cleaned.title}\n{cleaned.text}"


def test_a_word_file_of_a_seed_article_matches_it():
    assert text_match(indexed("word.docx"), source("article")) >= 0.99


def test_word_tables_are_rows_of_cells_in_order_and_footnotes_follow_the_body():
    lines = read_docx(FIXTURES / "table.docx").text.splitlines()
    assert lines[-5:-1] == ["المحافظة | عدد العمليات | عدد المعتقلين", "دير الزور | 12 | 31", "الحسكة | 8 | 19", "الرقة | 5 | 7"]
    assert lines[-1] == "[1] المصدر: بيان المكتب الإعلامي لقوات سوريا الديمقراطية."


def test_right_to_left_lines_keep_latin_numbers_and_brackets_in_reading_order():
    text = "\n".join(read_pdf(FIXTURES / "mixed.pdf", ALL).paragraphs)
    for phrase in ("منظمة Human Rights Watch في تقرير", "المتحدث باسم المنظمة، John Smith، أن", "(Global Coalition)", "بلغ 65,000 شخص", "1.5 مليون دولار"):
        assert phrase in text


def test_two_columns_are_read_one_after_the_other_right_first():
    def plain(text: str) -> list[str]:  # words only: quotes and tashkeel aside
        return words(normalize(text).replace("ً", ""))

    paragraphs = [" ".join(plain(p)) for p in read_pdf(FIXTURES / "columns.pdf", ALL).paragraphs]
    lines = [plain(line) for line in source("columns").splitlines()[1:]]  # the body, under the two-line title
    # Each source paragraph's first and last words come out, in the source's order.
    found = [
        (next(i for i, p in enumerate(paragraphs) if " ".join(line[:5]) in p), next(i for i, p in enumerate(paragraphs) if " ".join(line[-5:]) in p))
        for line in lines
    ]
    assert [i for pair in found for i in pair] == sorted(i for pair in found for i in pair)
    assert sum(start == end for start, end in found) >= len(lines) - 1  # whole, but where a column breaks one


def test_running_headers_and_page_numbers_are_dropped_and_each_paragraph_keeps_its_page():
    text = read_pdf(FIXTURES / "pages.pdf", ALL)
    assert not any("نشرة الأخبار الأسبوعية" in p or p.startswith("صفحة") for p in text.paragraphs)
    fact = next(i for i, p in enumerate(text.paragraphs) if "محطة مياه البوكمال" in p)
    assert text.pages[fact] == 2 and text.pages[0] == 1 and text.page_count == 2


def test_furniture_is_what_repeats_at_the_edges_of_pages_numbers_aside():
    pages = [["الرأس", "نص أول", "نص ثان", "صفحة 1"], ["الرأس", "نص ثالث", "صفحة 2"], ["الرأس", "نص رابع", "الرأس في المتن", "صفحة 3"]]
    assert drop_furniture(pages) == [["نص أول", "نص ثان"], ["نص ثالث"], ["نص رابع", "الرأس في المتن"]]
    assert drop_furniture([["وحدها", "صفحة 1"]]) == [["وحدها", "صفحة 1"]]  # one page: nothing repeats


def test_a_passage_knows_the_pages_its_offsets_fall_on():
    article, _ = pdf_article(FIXTURES / "pages.pdf", ALL)
    cleaned = clean_article(article, CleaningSettings())
    starts = page_starts(cleaned.text, cleaned.line_pages)
    fact = cleaned.text.index("وأعلن مجلس دير الزور المدني")
    assert pages_of(starts, [(fact, fact + 20)]) == [2]
    assert pages_of(starts, [(0, 10)]) == [1] and pages_of(starts, [(fact - 5, fact + 5)]) == [1, 2]
    assert pages_of("", [(0, 10)]) == []


@needs_ocr
def test_a_scanned_page_is_read_by_ocr_with_at_least_95_percent_of_its_characters_right():
    text_layer = read_pdf(FIXTURES / "chromium.pdf", ALL)
    page_one = "\n".join(p for p, page in zip(text_layer.paragraphs, text_layer.pages) if page == 1)
    scanned = read_pdf(FIXTURES / "scanned.pdf", ALL)  # through the ingest, its passages say p. 1 like any page's
    assert scanned.unread_pages == [] and scanned.scanned_pages == [1] and set(scanned.pages) == {1}
    assert character_accuracy("\n".join(scanned.paragraphs), page_one) >= 0.95


def test_without_ocr_the_text_pages_are_indexed_and_the_scanned_one_is_reported_with_the_install_command(monkeypatch):
    monkeypatch.setattr(documents, "ocr_available", lambda: False)
    items = list(iter_file(FIXTURES / "partly_scanned.pdf", EXTENSIONS, ALL))
    article, skipped = items
    assert set(article.line_pages) == {1, 2} and "محطة مياه البوكمال" in article.text
    assert isinstance(skipped, Skipped) and "page 3 " in skipped.reason and documents.OCR_INSTALL in skipped.reason
    with pytest.raises(UnreadableFile, match="no text layer.*tesseract-ocr-ara"):
        list(iter_file(FIXTURES / "scanned.pdf", EXTENSIONS, ALL))
    with pytest.raises(UnreadableFile, match=r"no text layer \(a scan or images only\), and ingest.ocr is off"):
        list(iter_file(FIXTURES / "scanned.pdf", EXTENSIONS, ALL, DocumentRules(ocr=False)))
    # With OCR turned off in the config, the report says so instead.
    *_, off = iter_file(FIXTURES / "partly_scanned.pdf", EXTENSIONS, ALL, DocumentRules(ocr=False))
    assert "ingest.ocr is off" in off.reason


@pytest.mark.parametrize(
    "name, reason",
    [
        ("encrypted.pdf", "the PDF is encrypted (password-protected)"),
        ("damaged.pdf", "damaged, or not a PDF"),
        ("zero_pages.pdf", "the PDF has no pages"),
        ("not_a_docx.docx", "not a Word .docx file: a zip archive with no Word document in it"),
    ],
)
def test_each_bad_document_is_reported_in_one_line(name: str, reason: str):
    (skipped,) = [item for item in read_paths([FIXTURES / name], EXTENSIONS, ALL) if isinstance(item, Skipped)]
    assert skipped.reason.startswith(reason) and "\n" not in skipped.reason and "Traceback" not in skipped.reason


@needs_ocr
def test_a_blank_scan_is_reported_as_holding_no_text():
    (skipped,) = [item for item in read_paths([FIXTURES / "image_only.pdf"], EXTENSIONS, ALL) if isinstance(item, Skipped)]
    assert skipped.reason == "no text found in the PDF (OCR read nothing on its pages)"


def test_a_pdf_over_the_page_limit_is_refused_before_it_is_read():
    with pytest.raises(DocumentError, match="the PDF has 2 pages, over the ingest.max_pages limit of 1"):
        read_pdf(FIXTURES / "chromium.pdf", max_pages=1)


def test_a_text_file_named_docx_or_pdf_is_reported_not_read_as_text(tmp_path: Path):
    (tmp_path / "note.docx").write_text("نص عادي", encoding="utf-8")
    (tmp_path / "note.pdf").write_text("نص عادي", encoding="utf-8")
    reasons = sorted(item.reason for item in read_paths([tmp_path], EXTENSIONS, ALL) if isinstance(item, Skipped))
    assert reasons[0].startswith("damaged, or not a PDF") and reasons[1].startswith("not a Word .docx file (not a zip package")


def test_a_word_file_with_broken_xml_or_no_text_is_reported_in_one_line(tmp_path: Path):
    import zipfile

    import docx

    with zipfile.ZipFile(FIXTURES / "word.docx") as z:
        parts = {name: z.read(name) for name in z.namelist()}
    parts["word/document.xml"] = b"<w:document broken"
    with zipfile.ZipFile(tmp_path / "broken.docx", "w") as z:
        for name, data in parts.items():
            z.writestr(name, data)
    docx.Document().save(tmp_path / "empty.docx")
    reasons = {Path(s.path).name: s.reason for s in read_paths([tmp_path], EXTENSIONS, ALL) if isinstance(s, Skipped)}
    assert reasons["broken.docx"].startswith("a damaged Word file: its XML cannot be read")
    assert reasons["empty.docx"] == "no text in the Word document"
    assert all("\n" not in reason for reason in reasons.values())
