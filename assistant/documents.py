"""Stage 1, read, for documents: PDF and Word (.docx) files → Articles, text in logical order.

Word files keep their text in logical order; python-docx reads paragraphs and tables in the order
of the body (a table row is one line, its cells joined by " | "), then the footnotes.

PDFs hold positioned glyphs, not text, and producers write Arabic in different orders: Chromium
(Skia) each word's glyphs left to right, fpdf2 and LibreOffice shaped runs, older tools whole lines
in visual order in presentation forms (ﺍﻟﺤﻜﻮﻣﺔ). The text libraries follow the content stream and
so read some of them backwards (docs/experiments.md, "Arabic PDFs": no library is right on all).
Here the text is rebuilt from where each glyph is (PDFium's character boxes), the same way for
every producer:
- glyphs are grouped into lines by baseline, and a page's columns are found by a gutter that
  no line crosses (read right column first on an Arabic page);
- each line's direction is measured, not assumed: right to left when it has at least as many
  Arabic letters as Latin ones. Its glyphs are read in that direction, runs of Latin letters and
  digits inside Arabic turned back to left to right, and the mirrored glyphs of paired
  punctuation (« », ( ), “ ”) put back;
- words are where the producer put a space or a gap in the stream, not guessed from distances;
- tashkeel joins the letter it sits on; presentation forms are folded back to letters (NFKC);
- lines of one paragraph are joined (a wider gap between lines starts a new one);
- lines that repeat across pages at their top or bottom (running headers, page numbers,
  mastheads) are dropped;
- a page with no text layer goes through Tesseract OCR (Arabic and English) when it is installed;
  without it the page is reported, with the command that installs it, and the other pages are
  indexed.
Each line keeps the page it is on (``Article.line_pages``), so a passage can say "p. 3".
"""

from __future__ import annotations

import ctypes
import io
import re
import shutil
import subprocess
import threading
import unicodedata
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assistant.arabic import BIDI_CHARS, arabic_share, normalize
from assistant.models import Article

# A table row's cells, joined on one line.
CELL_SEPARATOR = " | "
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


class DocumentError(Exception):
    """A document that cannot be read: the message says why, in one line."""


@dataclass(frozen=True)
class DocumentRules:
    """How PDFs are read (``ingest.max_pages``, ``ingest.ocr``)."""

    max_pages: int = 500
    ocr: bool = True


# --- Word ------------------------------------------------------------------------------------
def read_docx(path: Path) -> Article:
    """A .docx file's paragraphs, tables and footnotes, in order, with its title from the
    document's properties (or none: cleaning picks one)."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    from lxml.etree import LxmlError

    try:
        document = docx.Document(str(path))
        lines: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    cells = _distinct_cells(row.cells)
                    if any(cells):
                        lines.append(CELL_SEPARATOR.join(cells))
            else:
                lines.append(block.text)
        lines += _footnotes(document)
        title = (document.core_properties.title or "").strip()
    except (PackageNotFoundError, zipfile.BadZipFile) as exc:
        raise DocumentError(f"not a Word .docx file (not a zip package: an old .doc? save it as .docx) ({_reason(exc)})") from None
    except (KeyError, ValueError) as exc:
        raise DocumentError(f"not a Word .docx file: a zip archive with no Word document in it ({_reason(exc)})") from None
    except (LxmlError, AttributeError, IndexError, TypeError) as exc:  # XML that is not what Word writes
        raise DocumentError(f"a damaged Word file: its XML cannot be read ({_reason(exc)})") from None
    text = "\n".join(lines)
    if not text.strip():
        raise DocumentError("no text in the Word document")
    return Article(doc_id=path.stem, title=title, text=text, source=path.name, path=str(path))


def _distinct_cells(cells) -> list[str]:
    """A row's cell texts, a merged cell (python-docx repeats it for each grid column) once."""
    texts, previous = [], None
    for cell in cells:
        if cell._tc is not previous:
            texts.append(" ".join(p.text for p in cell.paragraphs).strip())
        previous = cell._tc
    return texts


def _footnotes(document) -> list[str]:
    """The footnotes' text, each as "[n] text" (python-docx reads the body only)."""
    for rel in document.part.rels.values():
        if rel.reltype.endswith("/footnotes"):
            from lxml import etree

            root = etree.fromstring(rel.target_part.blob)
            notes = []
            for note in root.iter(f"{_W}footnote"):
                number = int(note.get(f"{_W}id", "0"))
                text = "".join(t.text or "" for t in note.iter(f"{_W}t")).strip()
                if number > 0 and text:  # -1 and 0 are the separator lines
                    notes.append(f"[{number}] {text}")
            return notes
    return []


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def fold_presentation_forms(text: str) -> str:
    """Arabic presentation forms (ﺍﻟﺤﻜﻮﻣﺔ, the lam-alef ligature ﻻ) back to letters; nothing else
    changes (NFKC would also rewrite digits, fractions and full-width Latin)."""
    return re.sub(r"[\uFB50-\uFDFF\uFE70-\uFEFF]+", lambda m: unicodedata.normalize("NFKC", m.group(0)), text)


# --- PDF ---------------------------------------------------------------------------------------
# OCR: Tesseract's command and how it reads a page: Arabic, the page as one block of text (--psm 6),
# rendered at 300 dpi. On a scanned seed page that reads 0.979 of the characters right; adding
# English (ara+eng) gave 0.880, automatic page layout (--psm 3) 0.902 (docs/experiments.md).
OCR_COMMAND = "tesseract"
OCR_ARGUMENTS = ("-l", "ara", "--psm", "6")
OCR_DPI = 300
OCR_TIMEOUT_S = 120
OCR_INSTALL = "sudo apt-get install tesseract-ocr tesseract-ocr-ara"
# Glyphs whose baselines differ by less than this share of their size are on one line.
SAME_LINE = 0.3
# A gap between lines wider than this times the page's usual one starts a new paragraph.
PARAGRAPH_GAP = 1.15
# A line that ends a sentence this far (share of the text's width) short of the line's end ends its paragraph.
SHORT_LINE = 0.15
# A column gutter: at least this wide (points), crossed by at most this share of the lines.
GUTTER_MIN_WIDTH = 8
GUTTER_MAX_CROSSING = 0.05
# Running headers and footers: how many paragraphs at a page's top and bottom are looked at.
FURNITURE_PARAGRAPHS = 2

# A run of Latin letters and digits inside an Arabic line, as read right to left. A percent sign
# before it is part of it; after it, it is the Arabic text's own (UAX #9 makes "35%" after Arabic
# letters an Arabic number, and its sign follows it to the left).
_LTR_RUN = re.compile(r"%?[A-Za-z0-9]+(?:[ .,:/\-'’]+[A-Za-z0-9]+)*")
# Paired punctuation: opening, closing.
_PAIRS = (("(", ")"), ("«", "»"), ("“", "”"), ("[", "]"))
_MIRRORED = str.maketrans("()[]{}«»“”‘’<>", ")(][}{»«”“’‘><")
_SENTENCE_END = tuple(".!?؟:»”\"")
_HYPHEN_CODE = 2  # PDFium's code for a hyphen that breaks a word at a line's end
# PDFium is not thread-safe: one PDF is read at a time in a process (an upload beside an ingest).
_PDFIUM = threading.Lock()


@dataclass
class _Glyph:
    text: str
    left: float
    right: float
    baseline: float
    size: float
    index: int  # its place in the content stream
    word: int  # the stream's word: a space, or a break PDFium inferred, between two glyphs parts them

    @property
    def x(self) -> float:
        return (self.left + self.right) / 2


@dataclass
class _Line:
    text: str  # in logical order
    baseline: float
    size: float
    left: float
    right: float
    rtl: bool


@dataclass
class PdfText:
    """A PDF's text: its paragraphs with the page of each, and the pages it could not read."""

    paragraphs: list[str]
    pages: list[int]
    unread_pages: list[int]  # no text layer, and no OCR to read the image
    scanned_pages: list[int]  # no text layer, read by OCR
    page_count: int


def read_pdf(path: Path, max_pages: int, ocr: bool = True) -> PdfText:
    """The text of a PDF, page by page (see the module's docstring). Raises DocumentError."""
    with _PDFIUM:
        return _read_pdf(path, max_pages, ocr)


def _read_pdf(path: Path, max_pages: int, ocr: bool) -> PdfText:
    import pypdfium2

    data = path.read_bytes()
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise DocumentError(_unopenable(exc, data)) from None
    try:
        count = len(document)
        if count == 0:
            raise DocumentError("the PDF has no pages")
        if count > max_pages:
            raise DocumentError(f"the PDF has {count} pages, over the ingest.max_pages limit of {max_pages}")
        page_paragraphs: list[list[str]] = []
        unread: list[int] = []
        scanned: list[int] = []
        for number in range(count):
            try:
                page = document[number]
            except pypdfium2.PdfiumError as exc:
                raise DocumentError(f"page {number + 1} of the PDF is damaged ({_reason(exc)})") from None
            try:
                glyphs = _page_glyphs(page)
                if glyphs:
                    page_paragraphs.append(_paragraphs(_reading_order(glyphs)))
                elif ocr and ocr_available():
                    page_paragraphs.append(_ocr(page))
                    scanned.append(number + 1)
                else:
                    page_paragraphs.append([])
                    unread.append(number + 1)
            finally:
                page.close()
    finally:
        document.close()
    page_paragraphs = drop_furniture(page_paragraphs)
    paragraphs, pages = [], []
    for number, found in enumerate(page_paragraphs, start=1):
        paragraphs += found
        pages += [number] * len(found)
    return PdfText(paragraphs, pages, unread, scanned, count)


def pdf_article(path: Path, max_pages: int, ocr: bool = True) -> tuple[Article, list[int]]:
    """A PDF as one article (its lines' pages in ``line_pages``), and its pages left unread."""
    text = read_pdf(path, max_pages, ocr)
    if not any(p.strip() for p in text.paragraphs):
        if text.unread_pages:
            why = f"no OCR to read it: {OCR_INSTALL}" if ocr else "ingest.ocr is off"
            raise DocumentError(f"no text layer (a scan or images only), and {why}")
        raise DocumentError("no text found in the PDF" + (" (OCR read nothing on its pages)" if text.scanned_pages else ""))
    lines = [" ".join(p.split()) for p in text.paragraphs]
    article = Article(doc_id=path.stem, title="", text="\n".join(lines), source=path.name, path=str(path), line_pages=text.pages)
    return article, text.unread_pages


def _unopenable(exc: Exception, data: bytes) -> str:
    if b"/Encrypt" in data:
        return "the PDF is encrypted (password-protected): save a copy without the password (e.g. `qpdf --decrypt in.pdf out.pdf`) and add that"
    if re.search(rb"/Count\s+0\b", data) and not re.search(rb"/Count\s+[1-9]", data):
        return "the PDF has no pages"
    return f"damaged, or not a PDF ({_reason(exc).removeprefix('Failed to load document ').strip('().')})"


def _page_glyphs(page) -> list[_Glyph]:
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        glyphs, word = [], 0
        for i in range(textpage.count_chars()):
            code = pdfium_c.FPDFText_GetUnicode(textpage.raw, i)
            char = "-" if code == _HYPHEN_CODE else chr(code) if code else ""
            if pdfium_c.FPDFText_IsGenerated(textpage.raw, i) or not char or char.isspace() or unicodedata.category(char) in ("Cc", "Cs", "Co"):
                word += 1
                continue
            left, _, right, _ = textpage.get_charbox(i, loose=True)
            x, y = ctypes.c_double(), ctypes.c_double()
            pdfium_c.FPDFText_GetCharOrigin(textpage.raw, i, x, y)
            size = pdfium_c.FPDFText_GetFontSize(textpage.raw, i) or 10.0
            glyphs.append(_Glyph(char, left, right, y.value, size, i, word))
        return glyphs
    finally:
        textpage.close()


def _lines(glyphs: list[_Glyph]) -> list[list[_Glyph]]:
    """Glyphs grouped by baseline, top line first."""
    lines: list[list[_Glyph]] = []
    for g in sorted(glyphs, key=lambda g: (-g.baseline, g.index)):
        if lines and abs(lines[-1][0].baseline - g.baseline) <= SAME_LINE * g.size:
            lines[-1].append(g)
        else:
            lines.append([g])
    return lines


def _gutter(lines: list[list[_Glyph]]) -> tuple[float, float] | None:
    """The widest vertical band in the middle of the text that (almost) no line crosses, with
    lines on both sides of it: the gap between two columns; None on a one-column page."""
    left = min(g.left for line in lines for g in line)
    right = max(g.right for line in lines for g in line)
    if right - left < 4 * GUTTER_MIN_WIDTH or len(lines) < 3:
        return None
    width = int(right - left) + 1
    crossing = [0] * width
    for line in lines:
        covered = set()
        for g in line:
            covered.update(range(int(g.left - left), int(g.right - left) + 1))
        for x in covered:
            crossing[min(x, width - 1)] += 1
    allowed = GUTTER_MAX_CROSSING * len(lines)
    best: tuple[int, int] | None = None
    start = None
    for x in range(int(width * 0.25), int(width * 0.75) + 1):
        free = x < width and crossing[x] <= allowed
        if free and start is None:
            start = x
        if (not free or x == int(width * 0.75)) and start is not None:
            if x - start >= GUTTER_MIN_WIDTH and (best is None or x - start > best[1] - best[0]):
                best = (start, x)
            start = None
    if best is None:
        return None
    band = (left + best[0], left + best[1])
    sides = [sum(1 for line in lines if any(g.right <= band[0] + 1 for g in line)), sum(1 for line in lines if any(g.left >= band[1] - 1 for g in line))]
    return band if min(sides) >= 2 else None


def _reading_order(glyphs: list[_Glyph]) -> list[_Line]:
    """The page's lines in reading order: columns one after the other, the right one first on an
    Arabic page."""
    rtl_page = arabic_share("".join(g.text for g in glyphs)) >= 0.5
    lines = _lines(glyphs)
    gutter = _gutter(lines)
    if gutter is None:
        return [_line(line, rtl_page) for line in lines]
    ordered: list[_Line] = []
    first: list[list[_Glyph]] = []
    second: list[list[_Glyph]] = []

    def flush() -> None:
        ordered.extend(_line(line, rtl_page) for line in first + second)
        first.clear()
        second.clear()

    middle = (gutter[0] + gutter[1]) / 2
    for line in lines:
        if any(g.left < gutter[1] and g.right > gutter[0] for g in line):  # spans the page: a headline
            flush()
            ordered.append(_line(line, rtl_page))
            continue
        right_part = [g for g in line if g.x >= middle]
        left_part = [g for g in line if g.x < middle]
        for part, column in ((right_part, first if rtl_page else second), (left_part, second if rtl_page else first)):
            if part:
                column.append(part)
    flush()
    return ordered


def _line(glyphs: list[_Glyph], rtl_page: bool) -> _Line:
    """One line's text in logical order, and where it is."""
    marks = [g for g in glyphs if unicodedata.combining(g.text)]
    bases = [g for g in glyphs if not unicodedata.combining(g.text)]
    letters = "".join(g.text for g in bases)
    rtl = arabic_share(letters) >= 0.5 if re.search(r"[^\W\d_]", letters) else rtl_page
    texts = {id(g): g.text for g in bases}
    for mark in marks:  # tashkeel joins the letter it sits on
        if bases:
            near = min(bases, key=lambda g: (abs(g.x - mark.x), abs(g.index - mark.index)))
            texts[id(near)] += mark.text
    ordered = sorted(bases, key=lambda g: (-g.x, g.index) if rtl else (g.x, g.index))
    out: list[str] = []
    for previous, g in zip([None, *ordered], ordered):
        if previous is not None and g.word != previous.word:
            out.append(" ")
        out.append(texts[id(g)])
    text = "".join(out)
    if rtl:
        # Read right to left, the mirrored glyphs of paired punctuation are turned back, and so
        # are runs of Latin letters and digits, which are written left to right.
        text = _LTR_RUN.sub(lambda m: m.group(0)[::-1], text.translate(_MIRRORED))
    text = fold_presentation_forms(text)
    size = max((g.size for g in glyphs), default=10.0)
    return _Line(" ".join(text.split()), glyphs[0].baseline, size, min(g.left for g in glyphs), max(g.right for g in glyphs), rtl)


def _paragraphs(lines: list[_Line]) -> list[str]:
    """Lines joined into paragraphs. A line starts a new one after a wider gap than the page's
    usual line spacing, a change of size (a heading) or a move up (the next column), and after a
    line that ends a sentence well short of where lines end."""
    gaps = [a.baseline - b.baseline for a, b in zip(lines, lines[1:]) if a.baseline - b.baseline > 0]
    usual = sorted(gaps)[len(gaps) // 2] if gaps else 0.0
    left = min((line.left for line in lines), default=0.0)
    right = max((line.right for line in lines), default=0.0)
    short = SHORT_LINE * (right - left)
    paragraphs: list[str] = []
    previous: _Line | None = None
    for line in lines:
        if not line.text:
            continue
        joined = False
        if previous is not None:
            gap = previous.baseline - line.baseline
            ended = previous.text.endswith(_SENTENCE_END) and (previous.left - left if previous.rtl else right - previous.right) > short
            joined = 0 < gap <= PARAGRAPH_GAP * usual and abs(line.size - previous.size) < 0.15 * line.size and not ended
        if joined and paragraphs[-1].endswith("-") and line.text[:1].islower():
            paragraphs[-1] = paragraphs[-1][:-1] + line.text  # a Latin word hyphenated at the line's end
        elif joined:
            paragraphs[-1] += " " + line.text
        else:
            paragraphs.append(line.text)
        previous = line
    return [paired(p) if arabic_share(p) >= 0.5 else p for p in paragraphs]


def paired(text: str) -> str:
    """Arabic text with its brackets and quotes opening and closing in turn, spaced as printed.
    Producers map a mirrored glyph back to the character it looks like, so a right-to-left
    "(Global Coalition)" reads back as ")Global Coalition)": which one opens is lost, their
    order is not."""
    for opening, closing in _PAIRS:
        turn = iter(range(10**9))
        text = re.sub(f"[{re.escape(opening + closing)}]", lambda _: closing if next(turn) % 2 else opening, text)
    opens = re.escape("".join(o for o, _ in _PAIRS))
    closes = re.escape("".join(c for _, c in _PAIRS))
    # A space read on the inside of a bracket belongs outside it: "الدولي( Global" → "الدولي (Global".
    text = re.sub(f"(?<=\\w)([{opens}])\\s+", r" \1", text)
    text = re.sub(f"\\s+([{closes}])(?=\\w)", r"\1 ", text)
    text = re.sub(f"([{opens}])\\s+", r"\1", text)
    return re.sub(f"\\s+([{closes}])", r"\1", text)


def drop_furniture(pages: list[list[str]]) -> list[list[str]]:
    """Each page's paragraphs without its running header and footer: a paragraph among the first
    or last ``FURNITURE_PARAGRAPHS`` of a page that, numbers aside, is on at least two pages and at
    least half of them (page numbers, mastheads, a document's title on every page)."""
    if len(pages) < 2:
        return pages
    seen: dict[str, set[int]] = {}
    for number, paragraphs in enumerate(pages):
        for text in paragraphs[:FURNITURE_PARAGRAPHS] + paragraphs[-FURNITURE_PARAGRAPHS:]:
            seen.setdefault(_furniture_key(text), set()).add(number)
    repeated = {key for key, where in seen.items() if len(where) >= max(2, len(pages) / 2)}
    kept = []
    for paragraphs in pages:
        edge = set(range(FURNITURE_PARAGRAPHS)) | set(range(len(paragraphs) - FURNITURE_PARAGRAPHS, len(paragraphs)))
        kept.append([p for i, p in enumerate(paragraphs) if not (i in edge and _furniture_key(p) in repeated)])
    return kept


def _furniture_key(text: str) -> str:
    return re.sub(r"\d+", "#", normalize(" ".join(text.split())))


# --- OCR ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def ocr_available() -> bool:
    """Whether Tesseract is installed with Arabic."""
    if shutil.which(OCR_COMMAND) is None:
        return False
    try:
        listed = subprocess.run([OCR_COMMAND, "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "ara" in listed.stdout.split()


def _ocr(page) -> list[str]:
    """A page's paragraphs as Tesseract reads its image (rendered at ``OCR_DPI``)."""
    image = page.render(scale=OCR_DPI / 72, grayscale=True).to_pil()
    png = io.BytesIO()
    image.save(png, "PNG")
    try:
        done = subprocess.run([OCR_COMMAND, "stdin", "stdout", *OCR_ARGUMENTS], input=png.getvalue(), capture_output=True, timeout=OCR_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DocumentError(f"OCR failed on a page with no text layer: {_reason(exc)}") from None
    if done.returncode != 0:
        raise DocumentError(f"OCR failed on a page with no text layer: {_reason(Exception(done.stderr.decode(errors='replace')))}")
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", clean_ocr(done.stdout.decode("utf-8", errors="replace"))) if block.strip()]


def clean_ocr(text: str) -> str:
    """Tesseract's Arabic as text: without the direction marks it puts around runs, with the Arabic
    comma it reads as a Latin one, and without lines that are mostly not letters (specks and
    rules read as digits and brackets)."""
    text = re.sub(f"[{BIDI_CHARS}]", "", text)
    text = re.sub(r"(?<=[\u0600-\u06FF]),", "،", text)
    kept = []
    for line in text.splitlines():
        marks = [c for c in line if not c.isspace()]
        if marks and sum(c.isalpha() for c in marks) < 0.5 * len(marks):
            continue
        kept.append(line)
    return "\n".join(kept)
