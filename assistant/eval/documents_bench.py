"""How well, and at what cost, PDFs are read (``assistant bench documents FOLDER``).

FOLDER holds PDFs and a ``sources.json`` naming, for each PDF, the plain-text file it was made
from (tests/fixtures/documents is such a folder; its build.py makes it). For each PDF, each reader's
text is compared with its source by ``text_match`` (difflib's ratio after NFKC and whitespace
folding): the assistant's own reader (assistant.documents) and, as far as they are installed,
PDFium's plain text (pypdfium2), pypdf and pdfminer.six, as other tools read the same files.

With ``ingest``, the cost: the PDFs are ingested into a throwaway store, and so are their sources
as .txt, one PDF per source (the same text is not indexed twice); both through the product's whole
path with the configured embedder, its model loaded before either clock starts. The ratio of the two
times is what reading PDFs adds.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.documents import read_pdf
from assistant.errors import InputError
from assistant.eval.archive import machine
from assistant.eval.metrics import text_match

MANIFEST = "sources.json"
PAGES = 10**6


def _assistant(path: Path) -> str:
    return "\n".join(read_pdf(path, PAGES, ocr=False).paragraphs)


def _pypdfium2(path: Path) -> str:
    import pypdfium2

    document = pypdfium2.PdfDocument(str(path))
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


def _pypdf(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def _pdfminer(path: Path) -> str:
    from pdfminer.high_level import extract_text

    return extract_text(str(path))


READERS: dict[str, Callable[[Path], str]] = {"assistant": _assistant, "pypdfium2": _pypdfium2, "pypdf": _pypdf, "pdfminer.six": _pdfminer}


def _installed(name: str) -> bool:
    module = {"pypdfium2": "pypdfium2", "pypdf": "pypdf", "pdfminer.six": "pdfminer"}.get(name)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def load_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder} has no {MANIFEST} naming each PDF's source text ({{\"a.pdf\": \"a.txt\", ...}})")
    return json.loads(path.read_text(encoding="utf-8"))


def run_documents_bench(settings: Settings, folder: Path, ingest: bool = False) -> dict:
    manifest = load_manifest(folder)
    readers = [name for name in READERS if _installed(name)]
    rows = []
    for pdf, source in manifest.items():
        truth = (folder / source).read_text(encoding="utf-8")
        row = {"pdf": pdf, "source": source}
        for name in readers:
            started = time.perf_counter()
            try:
                row[name] = round(text_match(READERS[name](folder / pdf), truth), 3)
            except Exception as exc:  # a reader that fails on a file scores 0, with why
                row[name] = 0.0
                row[f"{name}_error"] = str(exc)[:200]
            row[f"{name}_s"] = round(time.perf_counter() - started, 3)
        rows.append(row)
    result = {"folder": str(folder), "readers": readers, "rows": rows, "machine": machine()}
    if ingest:
        result["ingest"] = _ingest_times(settings, folder, manifest)
    return result


def _ingest_times(settings: Settings, folder: Path, manifest: dict[str, str]) -> dict:
    """Seconds to ingest one PDF per source, and to ingest those sources as .txt."""
    pairs: dict[str, str] = {}
    for pdf, source in manifest.items():
        pairs.setdefault(source, pdf)
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="bench-documents-") as tmp:
        root = Path(tmp)
        for kind in ("txt", "pdf"):
            files = root / f"{kind}-files"
            files.mkdir()
            for source, pdf in pairs.items():
                name = Path(pdf).stem
                shutil.copy(folder / (source if kind == "txt" else pdf), files / f"{name}.{kind}")
            store = settings.store.model_copy(update={"path": root / f"{kind}-store" / "chroma", "lexical_cache": root / f"{kind}-store" / "lexical"})
            assistant = Assistant(settings.model_copy(update={"store": store}))
            assistant.embedder.embed_queries(["warm up"])  # the model is loaded before the clock starts
            started = time.perf_counter()
            report = assistant.ingest([files])
            seconds[kind] = round(time.perf_counter() - started, 2)
            seconds[f"{kind}_added"] = len(report.added)
            seconds[f"{kind}_chunks"] = report.chunks_written
    seconds["ratio"] = round(seconds["pdf"] / seconds["txt"], 3)
    return seconds


def format_documents_table(result: dict) -> str:
    readers = result["readers"]
    lines = [
        "| PDF | source | " + " | ".join(readers) + " |",
        "|---|---|" + "---|" * len(readers),
    ]
    for row in result["rows"]:
        lines.append(f"| {row['pdf']} | {row['source']} | " + " | ".join(f"{row[name]:.3f}" for name in readers) + " |")
    missing = [name for name in READERS if name not in readers]
    if missing:
        lines.append(f"\n(not installed, so not compared: {', '.join(missing)})")
    ingest = result.get("ingest")
    if ingest:
        lines.append(
            f"\nIngest of {ingest['pdf_added']} PDFs: {ingest['pdf']} s ({ingest['pdf_chunks']} passages); "
            f"of their sources as .txt: {ingest['txt']} s ({ingest['txt_chunks']} passages); PDF / text = {ingest['ratio']}"
        )
    return "\n".join(lines)
