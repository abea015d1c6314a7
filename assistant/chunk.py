"""Stage 3, chunk: cleaned article → passages that respect Arabic sentences and paragraphs.

The stock llama-index splitter uses English Punkt, knows nothing of ``؟ ، ؛ ۔`` and expects
``\\n\\n\\n`` between paragraphs, so it cuts Arabic mid-sentence. Here: paragraphs are lines,
sentences end at ``. ! ? ؟ ۔ …`` (optionally followed by closing quotes), an over-long sentence
is cut at ``، ؛ , ;`` and then at spaces. Sentences are packed into chunks of at most
``max_chars``; a chunk ends at a paragraph boundary once it holds ``min_chars``; consecutive
chunks of one paragraph overlap by whole sentences up to ``overlap_chars``.
Every chunk is an exact slice ``text[start:end]`` of the cleaned article.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from assistant.config import ChunkingSettings
from assistant.models import Chunk

# The sentences of a chunk that get their own vectors and that compression chooses from: a longer
# sentence is cut at its clauses, so that one long sentence cannot take the answer's budget.
MAX_SENTENCE_CHARS = 400

_SENTENCE_END = re.compile(r"[.!?؟۔…]+[\"'»”’)\]]*(?=\s|$)")
_CLAUSE_END = re.compile(r"[،؛,;:]+(?=\s)")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    paragraph: int


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _pieces(text: str, start: int, end: int, pattern: re.Pattern) -> list[tuple[int, int]]:
    """Split text[start:end] after each match of ``pattern``; trimmed, non-empty pieces."""
    out, cursor = [], start
    for match in pattern.finditer(text, start, end):
        s, e = _trimmed(text, cursor, match.end())
        if e > s:
            out.append((s, e))
        cursor = match.end()
    s, e = _trimmed(text, cursor, end)
    if e > s:
        out.append((s, e))
    return out


def _fit(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Cut a too-long sentence at clause marks, then at spaces (never inside a word if avoidable)."""
    if end - start <= limit:
        return [(start, end)]
    out: list[tuple[int, int]] = []
    for s, e in _pieces(text, start, end, _CLAUSE_END):
        while e - s > limit:
            cut = text.rfind(" ", s, s + limit)
            if cut <= s:
                cut = s + limit
            out.append(_trimmed(text, s, cut))
            s, _ = _trimmed(text, cut, e)
        if e > s:
            out.append((s, e))
    return out


def sentence_spans(text: str, max_chars: int) -> list[Span]:
    spans: list[Span] = []
    offset = 0
    for paragraph, line in enumerate(text.split("\n")):
        line_end = offset + len(line)
        for s, e in _pieces(text, offset, line_end, _SENTENCE_END):
            spans.extend(Span(a, b, paragraph) for a, b in _fit(text, s, e, max_chars))
        offset = line_end + 1
    return spans


def chunk_spans(text: str, settings: ChunkingSettings) -> list[tuple[int, int]]:
    """(start, end) of every chunk of ``text``."""
    sentences = sentence_spans(text, settings.max_chars)
    chunks: list[tuple[int, int]] = []
    i = 0
    while i < len(sentences):
        first = i
        end = i + 1  # sentences[first:end] form the chunk
        while end < len(sentences):
            nxt = sentences[end]
            if nxt.end - sentences[first].start > settings.max_chars:
                break
            new_paragraph = nxt.paragraph != sentences[end - 1].paragraph
            if new_paragraph and sentences[end - 1].end - sentences[first].start >= settings.min_chars:
                break
            end += 1
        chunks.append((sentences[first].start, sentences[end - 1].end))
        if end >= len(sentences):
            break
        # Overlap: restart a few sentences back, only inside the same paragraph.
        back = end
        while (
            back - 1 > first
            and sentences[back - 1].paragraph == sentences[end].paragraph
            and sentences[end - 1].end - sentences[back - 1].start <= settings.overlap_chars
            # ...and only if the next chunk still has room for new text after the overlap.
            and sentences[end].end - sentences[back - 1].start <= settings.max_chars
        ):
            back -= 1
        i = back
    return chunks


def chunk_article(doc_id: str, text: str, settings: ChunkingSettings) -> list[Chunk]:
    """Chunks with deterministic ids: doc id + position + content hash."""
    chunks = []
    for index, (start, end) in enumerate(chunk_spans(text, settings)):
        piece = text[start:end]
        digest = hashlib.sha1(piece.encode("utf-8")).hexdigest()[:12]
        chunks.append(Chunk(chunk_id=f"{doc_id}:{index}:{digest}", doc_id=doc_id, index=index, text=piece, start=start, end=end))
    return chunks


def chunk_sentences(chunk: Chunk) -> list[tuple[int, int]]:
    """Article offsets (start, end) of a chunk's sentences, or [] for a chunk of one sentence
    (whose sentence vector would be the chunk's own). Embedded beside the chunk, they let dense
    retrieval score a chunk by its best sentence as well (``retrieval.sentence_weight``)."""
    spans = sentence_spans(chunk.text, MAX_SENTENCE_CHARS)
    if len(spans) < 2:
        return []
    return [(chunk.start + s.start, chunk.start + s.end) for s in spans]


# --- pages of a paged document (PDF) -----------------------------------------------------------
# The chunk metadata key that holds ``page_starts`` (every chunk of a paged article has it).
PAGE_STARTS = "page_starts"


def page_starts(text: str, line_pages: list[int]) -> str:
    """Where each page begins in the cleaned ``text``, from the page of each of its lines, as the
    index stores it: "offset:page,..." ("0:1,1834:2"); "" for text without pages."""
    starts, offset, previous = [], 0, None
    for line, page in zip(text.split("\n"), line_pages):
        if page != previous and page:
            starts.append(f"{offset}:{page}")
            previous = page
        offset += len(line) + 1
    return ",".join(starts)


def pages_of(starts: str, spans: list[tuple[int, int]]) -> list[int]:
    """The pages that the article offsets ``spans`` fall on, given ``page_starts``."""
    if not starts:
        return []
    bounds = [tuple(map(int, item.split(":"))) for item in starts.split(",")]
    pages = set()
    for i, (offset, page) in enumerate(bounds):
        following = bounds[i + 1][0] if i + 1 < len(bounds) else float("inf")
        if any(start < following and end > offset for start, end in spans):
            pages.add(page)
    return sorted(pages)
