"""Stage 1, read: files and folders → Articles (raw text, before cleaning).

Plain text and Markdown take their title from the first line (cleaning may pick a better one);
HTML pages go through ``trafilatura``, which keeps the article's main text (no menus, comment
threads, "most read" boxes or share bars) and reads its title, publication date, outlet (site
name), author and canonical URL from the page's metadata (OpenGraph, JSON-LD, ``<time>``); a page
it finds no article in falls back to ``html_to_text``, one line per block; JSON Lines (optionally gzipped) carry one article per line
with ``id``, ``title``, ``text`` and optional ``source`` (or ``outlet``), ``url``, ``author`` and ``date`` (or
``time``, ``published``, ``pubDate``), in any written form (see assistant.dates). PDF and Word
(.docx) files are read by assistant.documents, one article each.
Anything unusable is reported as skipped with the reason, never silently dropped.
"""

from __future__ import annotations

import codecs
import errno
import gzip
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag
from charset_normalizer import from_bytes

from assistant.arabic import arabic_share
from assistant.documents import OCR_INSTALL, DocumentError, DocumentRules, pdf_article, read_docx
from assistant.models import Article


@dataclass
class Skipped:
    path: str
    reason: str
    # False for files inside a folder that are simply not articles (images, READMEs, ...).
    error: bool = True


@dataclass
class FileRead:
    """One file's outcome: the articles it yielded and any records inside it that were skipped."""

    path: Path
    articles: list[Article]
    skipped: list[Skipped]


class UnreadableFile(Exception):
    pass


def expand_paths(paths: list[str | Path], extensions: list[str]) -> tuple[list[Path], list[Skipped]]:
    """Files to read, in a stable order, and the paths that cannot be read at all.

    Symbolic links inside folders are followed after everything else, so that a file is read
    under its own name, and once however many links reach it; a link back into a folder already
    walked (a loop) is reported, not followed.
    """
    walk = _Walk(extensions)
    for raw in paths:
        path = Path(raw)
        if path.is_symlink() and not path.exists():
            walk.problems.append(Skipped(str(path), _broken_link(path)))
        elif not path.exists():
            walk.problems.append(Skipped(str(path), "no such file or folder"))
        elif path.is_dir():
            walk.folder(path)
        elif _kind(path, extensions):
            walk.file(path)
        else:
            walk.problems.append(Skipped(str(path), f"unsupported file type (supported: {', '.join(extensions)})"))
    while walk.links:
        walk.link(walk.links.pop(0))
    return walk.files, walk.problems


def _broken_link(path: Path) -> str:
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python 3.11's word for a loop of links
        return _LINK_LOOP
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _LINK_LOOP
    return f"broken symbolic link (its target {os.readlink(path)} does not exist)"


_LINK_LOOP = "symbolic link loop (the link leads back to itself); remove it or point it at a file"


class _Walk:
    """Depth-first with names sorted (the order of sorting the paths), hidden names skipped, and
    symbolic links set aside in ``links`` for the caller to follow once the real tree is walked."""

    def __init__(self, extensions: list[str]):
        self.extensions = extensions
        self.files: list[Path] = []
        self.problems: list[Skipped] = []
        self.read_from: dict[Path, Path] = {}  # real file -> the path it is read through
        self.walked: dict[Path, Path] = {}  # real folder -> the path it was walked through
        self.links: list[Path] = []  # symbolic links met in folders, followed last

    def file(self, path: Path) -> None:
        real = path.resolve()
        if real in self.read_from:
            # Not an error: the article is read, through the other path.
            self.problems.append(Skipped(str(path), f"same file as {self.read_from[real]} (read once)", error=False))
            return
        self.read_from[real] = path
        self.files.append(path)

    def folder(self, folder: Path) -> None:
        real = folder.resolve()
        if real in self.walked:
            self.problems.append(Skipped(str(folder), f"same folder as {self.walked[real]} (read once)", error=False))
            return
        self.walked[real] = folder
        try:
            entries = sorted(folder.iterdir())
        except OSError as exc:
            self.problems.append(Skipped(str(folder), f"cannot list folder ({exc.strerror or exc})"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                self.links.append(entry)
            elif entry.is_dir():
                self.folder(entry)
            else:
                self.entry(entry)

    def link(self, link: Path) -> None:
        if not link.exists():
            # An article behind a dead link is lost to the user: an error. Anything else is not.
            self.problems.append(Skipped(str(link), _broken_link(link), error=bool(_kind(link, self.extensions))))
            return
        if not link.is_dir():
            self.entry(link)
            return
        target = link.resolve()
        if target == link.parent.resolve() or target in link.parent.resolve().parents:
            self.problems.append(
                Skipped(str(link), f"symbolic link loop (points back to {target}), not followed", error=False)
            )
        else:
            self.folder(link)

    def entry(self, path: Path) -> None:
        if not path.is_file():
            self.problems.append(Skipped(str(path), "not a regular file (a device, socket or pipe)", error=False))
        elif _kind(path, self.extensions):
            self.file(path)
        else:
            self.problems.append(Skipped(str(path), f"unsupported file type '{''.join(path.suffixes) or path.name}'", error=False))


def _kind(path: Path, extensions: list[str]) -> str | None:
    name = path.name.lower()
    for ext in sorted(extensions, key=len, reverse=True):
        if name.endswith(ext):
            if ext in (".jsonl", ".jsonl.gz"):
                return "jsonl"
            if ext in (".html", ".htm"):
                return "html"
            if ext in (".md", ".markdown"):
                return "markdown"
            if ext in (".pdf", ".docx"):
                return ext[1:]
            return "text"
    return None


def iter_file(path: Path, extensions: list[str], max_bytes: int, documents: DocumentRules = DocumentRules()) -> Iterator[Article | Skipped]:
    """One file's articles, and its records that were skipped, as they are read.

    Raises UnreadableFile with a reason the user can act on; for JSON Lines this can happen after
    some articles were yielded (a truncated gzip), which are good and may be kept. ``max_bytes``
    bounds a whole file, but one record of a JSON Lines file: an archive may be any size, and is
    streamed line by line, never held in memory whole. ``documents``: how PDFs are read.
    """
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFile("empty file")
    kind = _kind(path, extensions)
    if kind == "jsonl":
        yield from _iter_jsonl(path, max_bytes)
        return
    if size > max_bytes:
        raise UnreadableFile(f"file is {_mb(size)}, over the ingest.max_file_mb limit of {_mb(max_bytes)}")
    if kind in ("pdf", "docx"):
        yield from _iter_document(path, kind, documents)
        return
    text = decode(path.read_bytes())
    if not text.strip():
        raise UnreadableFile("no text in file")
    if kind == "html":
        page = html_article(text)
        yield page.model_copy(update={"doc_id": path.stem, "source": page.source or path.name, "path": str(path)})
        return
    if kind == "markdown":
        text = markdown_to_text(text)
    yield Article(doc_id=path.stem, title="", text=text, source=path.name, path=str(path))


def _iter_document(path: Path, kind: str, documents: DocumentRules) -> Iterator[Article | Skipped]:
    """A PDF or Word file as one article; a PDF's pages that could not be read are reported."""
    try:
        if kind == "docx":
            yield read_docx(path)
            return
        article, unread = pdf_article(path, documents.max_pages, documents.ocr)
    except DocumentError as exc:
        raise UnreadableFile(str(exc)) from None
    yield article
    if unread:
        pages = ", ".join(map(str, unread))
        why = f"needs Tesseract with Arabic: {OCR_INSTALL}" if documents.ocr else "ingest.ocr is off"
        which = f"pages {pages} have" if len(unread) > 1 else f"page {pages} has"
        yield Skipped(str(path), f"{which} no text layer and could not be read (OCR {why}); the other pages are indexed")


def read_file(path: Path, extensions: list[str], max_bytes: int, documents: DocumentRules = DocumentRules()) -> FileRead:
    """Read one whole file. Raises UnreadableFile with a reason the user can act on."""
    articles: list[Article] = []
    skipped: list[Skipped] = []
    for item in iter_file(path, extensions, max_bytes, documents):
        (skipped if isinstance(item, Skipped) else articles).append(item)
    return FileRead(path, articles, skipped)


def decode(data: bytes) -> str:
    """Bytes → text: UTF-8 (with or without BOM), UTF-16 (with or without BOM), Windows-1256
    (legacy Arabic). Raises UnreadableFile with what to do when it is none of them."""
    if data.startswith(codecs.BOM_UTF8):
        return _utf8(data[len(codecs.BOM_UTF8):])
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableFile("invalid UTF-16 text (truncated or corrupt)") from None
    if b"\x00" in data[:65536]:
        text = _utf16_without_bom(data)
        if text is None:
            raise UnreadableFile("binary file (contains NUL bytes), not text")
        return text
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Windows-1256 decodes any byte string: UTF-8 with a damaged byte would come out as
    # "ظ‚ط§ظ„"-style Arabic-looking garbage and pass the Arabic-share check below. So first tell
    # them apart: in UTF-8 nearly every non-ASCII byte belongs to a valid multi-byte sequence;
    # in Windows-1256 Arabic only a few percent do (a letter followed by "،" or "؟", say).
    if _utf8_share(data) >= 0.5:
        return _utf8(data)
    try:
        text = data.decode("cp1256")
        if arabic_share(text) >= 0.5:
            return text
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None or _control_share(str(best)) > 0.05:
        raise UnreadableFile("binary or unknown encoding, not text")
    return str(best)


# A valid UTF-8 multi-byte sequence (no overlongs, no surrogates), as the Unicode standard defines it.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_ASCII = bytes(range(0x80))


def _utf8_share(data: bytes) -> float:
    """Share of the non-ASCII bytes that form valid UTF-8 sequences (in the first MB: enough to
    tell the encoding, and a 50 MB file is not scanned match by match)."""
    sample = data[: 1 << 20]
    non_ascii = len(sample.translate(None, _ASCII))
    return sum(map(len, _UTF8_SEQUENCE.findall(sample))) / non_ascii if non_ascii else 1.0


def _utf8(data: bytes) -> str:
    """UTF-8 that may be damaged. A few damaged places (a download cut inside a letter, a flipped
    byte) cost a word or two: the article is kept with U+FFFD there, as losing it all would be
    worse. More than about one per 1,000 non-ASCII bytes (~one word in a hundred) is no longer an
    article worth answering from: it is refused, with where the damage starts."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first = exc.start
    text = data.decode("utf-8", errors="replace")
    damaged = text.count("\ufffd") - data.count("\ufffd".encode("utf-8"))
    if damaged <= max(2, len(data.translate(None, _ASCII)) // 1000):
        return text
    raise UnreadableFile(f"invalid UTF-8 at byte {first} ({damaged} damaged places); save the file as UTF-8")


# What UTF-16 text is made of: ASCII, Latin-1, Arabic (with its supplements and presentation
# forms) and general punctuation (RLM/LRM marks, dashes, quotes). Binary data read as UTF-16 is
# scattered over the whole range instead.
_UTF16_TEXT = re.compile(
    r"[\t\n\f\r -~\u00a0-\u00ff\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\u2000-\u206f\ufb50-\ufdff\ufe70-\ufeff]"
)


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 saved without a BOM (its NUL bytes would otherwise mark it binary), when clearly
    text in one byte order: ASCII has a NUL high byte, Arabic U+06xx a 0x06 one."""
    if len(data) % 2:
        return None
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        sample = text[:65536]
        if sample.strip() and len(_UTF16_TEXT.findall(sample)) >= 0.98 * len(sample):
            return text
    return None


def _mb(size: int) -> str:
    """Megabytes of 10^6 bytes, as ingest.max_file_mb counts them, to 3 significant digits."""
    return f"{size / 1e6:.3g} MB"


def _control_share(text: str) -> float:
    if not text:
        return 1.0
    bad = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
    return bad / len(text)


_MD_SYNTAX = [
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE), ""),  # headings
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),  # italics
    (re.compile(r"^\s{0,3}>\s?", re.MULTILINE), ""),  # quotes
    (re.compile(r"^\s{0,3}[-*_]{3,}\s*$", re.MULTILINE), ""),  # rules
]


def markdown_to_text(text: str) -> str:
    for pattern, repl in _MD_SYNTAX:
        text = pattern.sub(repl, text)
    return text


_BLOCK_TAGS = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "figcaption", "div"]
_INVISIBLE_TAGS = ["script", "style", "noscript", "template", "iframe", "svg"]
_CHROME_TAGS = ["nav", "header", "footer", "aside", "form"]


# Publication dates from the page's metadata only: trafilatura's extensive search would take a
# date from the text (an event the article recalls) or the URL, which is a guess.
_PAGE_DATES = {"extensive_search": False, "original_date": True}


def html_article(html: str, url: str = "") -> Article:
    """An HTML page's article: main text and metadata by trafilatura, else every block's text.
    ``doc_id`` is left empty for the caller; ``source`` is the outlet, or "" when unnamed."""
    import trafilatura  # lxml and its models: loaded only when there is HTML to read

    page = trafilatura.bare_extraction(
        html, url=url or None, with_metadata=True, include_comments=False, include_tables=True,
        # Precision: on short pages the default let menus and <noscript> text through.
        favor_precision=True, date_extraction_params=_PAGE_DATES,
    )
    if page is None or not (page.text or "").strip():
        title, body = html_to_text(html)
        return Article(doc_id="", title=title, text=body, url=url)
    title = (page.title or "").strip()
    lines = page.text.strip().split("\n")
    if len(lines) > 1 and lines[0].strip() == title:  # the headline opens the text too
        lines = lines[1:]
    return Article(
        doc_id="",
        title=title,
        text="\n".join(lines),
        source=_declared_site_name(page.sitename, url),
        url=page.url or url,
        date=page.date or "",
        author=(page.author or "").strip(),
    )


def _declared_site_name(name: str | None, url: str) -> str:
    """The outlet a page names itself, or "": trafilatura falls back to the URL's host name, and the
    caller may know better (a feed's title)."""
    name = (name or "").strip()
    host = urlsplit(url).netloc.lower() if url else ""
    return "" if host and name.lower() in {host, host.removeprefix("www."), host.split(":")[0]} else name


def html_to_text(html: str) -> tuple[str, str]:
    """(title, body) from an HTML page: one line per block element, scripts and navigation dropped."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_INVISIBLE_TAGS):
        tag.decompose()
    # The headline: the <h1> of the article itself, else the first one outside site chrome.
    content = soup.find("article") or soup.find("main")
    h1 = (content.find("h1") if content else None) or next(
        (h for h in soup.find_all("h1") if not h.find_parent(_CHROME_TAGS)), None
    )
    title = (h1.get_text(" ", strip=True) if h1 else "") or (soup.title.get_text(" ", strip=True) if soup.title else "")
    for tag in [soup.title, h1, *soup(_CHROME_TAGS)]:
        if tag is not None:
            tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    lines = _block_lines(root) if root.find(_BLOCK_TAGS) else []
    if not lines:
        lines = [ln.strip() for ln in root.get_text("\n").splitlines() if ln.strip()]
    return title, "\n".join(lines)


def _block_lines(node: Tag) -> list[str]:
    """One line per block; text standing directly in a container block becomes its own line."""
    lines: list[str] = []
    inline: list[str] = []

    def flush() -> None:
        line = " ".join(part for part in inline if part)
        if line:
            lines.append(line)
        inline.clear()

    for child in node.children:
        if isinstance(child, Tag) and (child.name in _BLOCK_TAGS or child.find(_BLOCK_TAGS)):
            flush()
            lines.extend(_block_lines(child))
        elif isinstance(child, Tag):
            inline.append(child.get_text(" ", strip=True))
        elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
            inline.append(child.strip())
    flush()
    return lines


def _iter_jsonl(path: Path, max_bytes: int) -> Iterator[Article | Skipped]:
    gzipped = path.name.lower().endswith(".gz")
    records = skipped = 0
    number = 0
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as lines:
            for number, raw in enumerate(lines, start=1):
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                if not raw.strip():
                    continue
                where = f"{path}:{number}"
                item = _jsonl_record(raw, where, max_bytes)
                if isinstance(item, Skipped):
                    if records + skipped == 0 and item.reason == _NOT_UTF8:
                        raise UnreadableFile("JSON Lines must be UTF-8")
                    skipped += 1
                else:
                    records += 1
                yield item
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        after = f" after line {number}" if records + skipped else ""
        raise UnreadableFile(f"not a valid gzip file, or damaged{after} ({exc})") from None
    if not records and not skipped:
        raise UnreadableFile("no records in file")


_NOT_UTF8 = "not UTF-8 (JSON Lines must be UTF-8)"


def _jsonl_record(raw: bytes, where: str, max_bytes: int) -> Article | Skipped:
    if len(raw) > max_bytes:
        return Skipped(where, f"record is {_mb(len(raw))}, over the ingest.max_file_mb limit of {_mb(max_bytes)}")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Skipped(where, _NOT_UTF8)
    try:
        # Without the line end: a string cut short is then "Unterminated string", not "control character".
        record = json.loads(line.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        return Skipped(where, f"invalid JSON ({exc.msg} column {exc.colno})")
    if not isinstance(record, dict):
        return Skipped(where, "a line must be a JSON object")
    missing = [k for k in ("id", "text") if not str(record.get(k) or "").strip()]
    if missing:
        return Skipped(where, f"missing {' and '.join(missing)}")
    return Article(
        doc_id=str(record["id"]).strip(),
        title=str(record.get("title") or "").strip(),
        text=str(record["text"]),
        source=_first_field(record, _SOURCE_FIELDS),
        url=str(record.get("url") or ""),
        date=_first_field(record, _DATE_FIELDS),
        author=str(record.get("author") or "").strip(),
        path=where,
    )


# The names archives and scrapers give an article's outlet and publication date, in order of trust.
_SOURCE_FIELDS = ("source", "outlet", "site_name")
_DATE_FIELDS = ("date", "published", "published_at", "pubDate", "time")


def _first_field(record: dict, names: tuple[str, ...]) -> str:
    return next((str(record[n]).strip() for n in names if str(record.get(n) or "").strip()), "")


@dataclass
class Opened:
    """Marks the start of a readable file's articles in ``read_paths``' stream."""

    path: Path


def read_paths(
    paths: list[str | Path], extensions: list[str], max_bytes: int, documents: DocumentRules = DocumentRules()
) -> Iterator[Opened | Article | Skipped]:
    """Every file under ``paths``, streamed: ``Opened(file)`` and then its articles and skipped
    records, or a ``Skipped`` for a file that cannot be read (after any articles read before the
    damage). Nothing is read ahead, so memory stays bounded on any size of archive."""
    files, problems = expand_paths(paths, extensions)
    yield from problems
    for path in files:
        opened = False
        try:
            for item in iter_file(path, extensions, max_bytes, documents):
                if not opened:
                    opened = True
                    yield Opened(path)
                yield item
        except UnreadableFile as exc:
            yield Skipped(str(path), str(exc))
        except OSError as exc:
            yield Skipped(str(path), f"cannot read file ({exc.strerror or exc})")
