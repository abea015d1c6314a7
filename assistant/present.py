"""Plain-text wording shared by the command line and the web UI, so the two say the same thing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from assistant.models import Answer, Citation, IngestReport


def outlet(source: str, doc_id: str) -> str:
    """The outlet an article is from, or "". Without a known outlet, ``source`` is the file the
    article came from: noise next to its id, so it is left out."""
    return "" if source.startswith(doc_id) else source


class Attributed(Protocol):
    """What a byline is made of: an article, a passage, a citation or a library row."""

    doc_id: str
    source: str
    date: str
    author: str


def byline(item: Attributed) -> str:
    """"outlet · author · date · p. 3", each left out when unknown (pages: a PDF's passage)."""
    pages = page_label(getattr(item, "pages", []))
    return " · ".join(x for x in (outlet(item.source, item.doc_id), item.author, item.date, pages) if x)


def page_label(pages: list[int]) -> str:
    """"p. 3", "pp. 2–3" (a run) or "pp. 2, 5": where in a PDF a passage is; "" without pages."""
    if not pages:
        return ""
    if len(pages) == 1:
        return f"p. {pages[0]}"
    run = pages == list(range(pages[0], pages[-1] + 1))
    return f"pp. {pages[0]}–{pages[-1]}" if run else f"pp. {', '.join(map(str, pages))}"


def source_line(c: Citation) -> str:
    """"[n] title — outlet · author · date · p. 3": one cited passage, as a sources list shows it."""
    where = byline(c)
    return f"[{c.n}] {c.title or c.doc_id}{' — ' + where if where else ''}"


SOURCES_HEADING = {"ar": "المصادر:", "en": "Sources:"}


def with_sources(answer: Answer) -> str:
    """The answer's text followed by its sources list, for readers that get plain text only."""
    if not answer.citations:
        return answer.text
    return "\n\n".join([answer.text, "\n".join([SOURCES_HEADING[answer.language], *map(source_line, answer.citations)])])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def ingest_summary(report: IngestReport) -> str:
    return (
        f"Added {len(report.added)}, updated {len(report.replaced)}, unchanged {len(report.unchanged)} "
        f"({_plural(report.chunks_written, 'passage')} written, {report.chunks_deleted} old removed; "
        f"{_plural(report.files_read, 'file')} read in {report.seconds:.1f} s)."
        + (" Stopped early: the rest is done by the next ingest." if report.interrupted else "")
    )


# The folders of an absolute path inside a reason (e.g. "same title and text as x (/tmp/…/x.txt)").
_FOLDERS = re.compile(r"(?<![\w.])/(?:[^/\n()]+/)+")


def skipped_lines(report: IngestReport, names_only: bool = False) -> list[str]:
    """One line per skipped file or record; ``names_only`` for uploads, whose paths are temporary
    (in the reasons too)."""
    if names_only:
        return [f"Skipped {Path(s.path).name}: {_FOLDERS.sub('', s.reason)}" for s in report.skipped]
    return [f"Skipped {s.path}: {s.reason}" for s in report.skipped]
