"""Stage 1, read: files and folders → Articles (raw text, before cleaning).

Plain text and Markdown take their title from the first line (cleaning may pick a better one);
HTML takes it from <h1> or <title>; JSON Lines (optionally gzipped) carry one article per line
with ``id``, ``title``, ``text`` and optional ``source``, ``url``, ``date``.
Anything unusable is reported as skipped with the reason, never silently dropped.
"""

from __future__ import annotations

import codecs
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag
from charset_normalizer import from_bytes

from assistant.arabic import arabic_share
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
    """Files to read, in a stable order, and the paths that cannot be read at all."""
    files: list[Path] = []
    problems: list[Skipped] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            problems.append(Skipped(str(path), "no such file or folder"))
        elif path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            for p in found:
                if _kind(p, extensions):
                    files.append(p)
                else:
                    problems.append(Skipped(str(p), f"unsupported file type '{''.join(p.suffixes) or p.name}'", error=False))
        elif _kind(path, extensions):
            files.append(path)
        else:
            problems.append(Skipped(str(path), f"unsupported file type (supported: {', '.join(extensions)})"))
    return files, problems


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
            return "text"
    return None


def iter_file(path: Path, extensions: list[str], max_bytes: int) -> Iterator[Article | Skipped]:
    """One file's articles, and its records that were skipped, as they are read.

    Raises UnreadableFile with a reason the user can act on; for JSON Lines this can happen after
    some articles were yielded (a truncated gzip), which are good and may be kept. ``max_bytes``
    bounds a whole file, but one record of a JSON Lines file: an archive may be any size, and is
    streamed line by line, never held in memory whole.
    """
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFile("empty file")
    kind = _kind(path, extensions)
    if kind == "jsonl":
        yield from _iter_jsonl(path, max_bytes)
        return
    if size > max_bytes:
        raise UnreadableFile(f"file is {size / 1e6:.1f} MB, over the ingest.max_file_mb limit")
    text = decode(path.read_bytes())
    if not text.strip():
        raise UnreadableFile("no text in file")
    if kind == "html":
        title, body = html_to_text(text)
    else:
        if kind == "markdown":
            text = markdown_to_text(text)
        title, body = "", text
    yield Article(doc_id=path.stem, title=title, text=body, source=path.name, path=str(path))


def read_file(path: Path, extensions: list[str], max_bytes: int) -> FileRead:
    """Read one whole file. Raises UnreadableFile with a reason the user can act on."""
    articles: list[Article] = []
    skipped: list[Skipped] = []
    for item in iter_file(path, extensions, max_bytes):
        (skipped if isinstance(item, Skipped) else articles).append(item)
    return FileRead(path, articles, skipped)


def decode(data: bytes) -> str:
    """Bytes → text: UTF-8 (with or without BOM), UTF-16 with BOM, Windows-1256 (legacy Arabic)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableFile("invalid UTF-16 text (truncated or corrupt)") from None
    if b"\x00" in data[:65536]:
        raise UnreadableFile("binary file (contains NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Windows-1256 decodes almost any byte string, so accept it only when it yields Arabic text.
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


def _control_share(text: str) -> float:
    if not text:
        return 1.0
    bad = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
    return bad / len(text)


_MD_SYNTAX = [
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.M), ""),  # headings
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),  # italics
    (re.compile(r"^\s{0,3}>\s?", re.M), ""),  # quotes
    (re.compile(r"^\s{0,3}[-*_]{3,}\s*$", re.M), ""),  # rules
]


def markdown_to_text(text: str) -> str:
    for pattern, repl in _MD_SYNTAX:
        text = pattern.sub(repl, text)
    return text


_BLOCK_TAGS = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "figcaption", "div"]
_INVISIBLE_TAGS = ["script", "style", "noscript", "template", "iframe", "svg"]
_CHROME_TAGS = ["nav", "header", "footer", "aside", "form"]


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
        return Skipped(where, f"record is {len(raw) / 1e6:.1f} MB, over the ingest.max_file_mb limit")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Skipped(where, _NOT_UTF8)
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return Skipped(where, f"invalid JSON ({exc.msg})")
    if not isinstance(record, dict):
        return Skipped(where, "a line must be a JSON object")
    missing = [k for k in ("id", "text") if not str(record.get(k) or "").strip()]
    if missing:
        return Skipped(where, f"missing {' and '.join(missing)}")
    return Article(
        doc_id=str(record["id"]).strip(),
        title=str(record.get("title") or "").strip(),
        text=str(record["text"]),
        source=str(record.get("source") or ""),
        url=str(record.get("url") or ""),
        date=str(record.get("date") or ""),
        path=where,
    )


@dataclass
class Opened:
    """Marks the start of a readable file's articles in ``read_paths``' stream."""

    path: Path


def read_paths(paths: list[str | Path], extensions: list[str], max_bytes: int) -> Iterator[Opened | Article | Skipped]:
    """Every file under ``paths``, streamed: ``Opened(file)`` and then its articles and skipped
    records, or a ``Skipped`` for a file that cannot be read (after any articles read before the
    damage). Nothing is read ahead, so memory stays bounded on any size of archive."""
    files, problems = expand_paths(paths, extensions)
    yield from problems
    for path in files:
        opened = False
        try:
            for item in iter_file(path, extensions, max_bytes):
                if not opened:
                    opened = True
                    yield Opened(path)
                yield item
        except UnreadableFile as exc:
            yield Skipped(str(path), str(exc))
        except OSError as exc:
            yield Skipped(str(path), f"cannot read file ({exc.strerror or exc})")
