"""Typed records that travel between the stages of the data flow."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from assistant.dates import day_number, period_bounds
from assistant.errors import InputError


class Article(BaseModel):
    """One article as read from disk, before cleaning. ``doc_id`` = file stem or record id."""

    doc_id: str
    title: str = ""
    text: str
    source: str = ""  # outlet, or the file it came from
    url: str = ""
    date: str = ""
    author: str = ""
    path: str = ""
    # A paged document's (PDF): the page each line of ``text`` is on, 1-based; empty otherwise.
    line_pages: list[int] = Field(default_factory=list)


class Chunk(BaseModel):
    """A passage of a cleaned article: ``text == article_text[start:end]``."""

    chunk_id: str
    doc_id: str
    index: int
    text: str
    start: int
    end: int


SPAN_GAP = " … "  # joins runs of a passage's sentences that are not adjacent in the article


class Filters(BaseModel):
    """Which articles a question may be answered from: outlets (``Article.source``, exactly as
    stored) and an inclusive range of publication dates. Empty means no restriction. A date
    range leaves out articles whose date is unknown. ``since``/``until`` also take ``YYYY`` or
    ``YYYY-MM``: the period's first day, or for ``until`` its last."""

    sources: list[str] = Field(default_factory=list)
    since: date | None = None
    until: date | None = None

    @field_validator("sources", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        items = [value] if isinstance(value, str) else list(value or [])
        return [str(item).strip() for item in items if str(item).strip()]

    @field_validator("since", "until", mode="before")
    @classmethod
    def _period(cls, value, info):
        if isinstance(value, str):
            return period_bounds(value, end=info.field_name == "until") if value.strip() else None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "Filters":
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        return self

    @classmethod
    def of(cls, sources=None, since: str | None = None, until: str | None = None) -> "Filters":
        """Filters from what a user typed; InputError saying what is wrong when it is not valid."""
        try:
            return cls(sources=sources or [], since=since or None, until=until or None)
        except ValidationError as exc:
            raise InputError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None

    @property
    def active(self) -> bool:
        return bool(self.sources or self.since or self.until)

    def where(self) -> dict | None:
        """The Chroma metadata filter, or None for no restriction."""
        clauses: list[dict] = []
        if self.sources:
            clauses.append({"source": {"$in": self.sources}})
        if self.since:
            clauses.append({"day": {"$gte": day_number(self.since.isoformat())}})
        if self.until:
            clauses.append({"day": {"$lte": day_number(self.until.isoformat())}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def describe(self) -> str:
        parts = []
        if self.sources:
            parts.append("from " + ", ".join(self.sources))
        if self.since or self.until:
            parts.append(f"dated {self.since or '…'} to {self.until or '…'}")
        return "; ".join(parts)


class Passage(BaseModel):
    """A retrieved chunk with its article metadata and fusion scores."""

    chunk_id: str
    doc_id: str
    title: str
    source: str = ""
    url: str = ""
    date: str = ""
    author: str = ""  # the article's byline, when it names one
    text: str
    start: int
    end: int
    score: float  # fused retrieval score (see retrieval.fusion), higher is better; per query only
    dense_score: float | None = None  # cosine similarity, when the dense retriever found it
    bm25_score: float | None = None
    dense_rank: int | None = None  # 1-based
    bm25_rank: int | None = None
    # Set when the answer stage showed only some of the chunk's sentences (see compress.py): the
    # article offsets of each run shown; ``text`` is those runs joined by ``SPAN_GAP``.
    spans: list[tuple[int, int]] = Field(default_factory=list)
    # A PDF's passage: the pages it is on (of the runs shown, when ``spans`` is set).
    pages: list[int] = Field(default_factory=list)
    page_starts: str = Field(default="", exclude=True)  # the article's (chunk.page_starts), to find them

    def shown_spans(self) -> list[tuple[int, int]]:
        return self.spans or [(self.start, self.end)]


class SkippedFile(BaseModel):
    path: str
    reason: str
    # False for files in a folder that are simply not articles (images, READMEs, ...).
    error: bool = True


class IngestReport(BaseModel):
    """What an ingest did, per article and per file."""

    files_read: int = 0
    articles_seen: int = 0
    added: list[str] = Field(default_factory=list)  # doc ids newly indexed
    replaced: list[str] = Field(default_factory=list)  # doc ids whose content changed
    unchanged: list[str] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0
    # Wall seconds per stage (read, prepare, lookup, embed, store, lexical): where the time went.
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    # Stopped early (Ctrl-C): every article written is complete; the next ingest does the rest.
    interrupted: bool = False

    def skip(self, path: str | Path, reason: str, error: bool = True) -> None:
        self.skipped.append(SkippedFile(path=str(path), reason=reason, error=error))

    @property
    def errors(self) -> list[SkippedFile]:
        return [s for s in self.skipped if s.error]


class DocumentInfo(BaseModel):
    doc_id: str
    title: str
    source: str = ""
    date: str = ""
    author: str = ""
    chunks: int
    complete: bool = True


class IndexStatus(BaseModel):
    documents: int
    chunks: int
    embedding_model: str
    store: str
    collection: str
    incomplete_documents: list[str] = Field(default_factory=list)


class IndexCheck(BaseModel):
    """``assistant status --check``: Chroma and BM25 hold the same chunks, every article whole."""

    chunks: int  # in Chroma
    articles: int
    problems: list[str] = Field(default_factory=list)  # the first CHECK_LIST_MAX, in order
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


class Citation(BaseModel):
    """A passage an answer cites: ``[n]`` in the answer text points here."""

    n: int
    doc_id: str
    title: str
    chunk_id: str
    text: str
    start: int  # char offsets into the cleaned article
    end: int
    score: float
    source: str = ""
    date: str = ""
    author: str = ""
    url: str = ""  # the article's address, when it has one
    # What the model was shown of the passage, when not all of it: article offsets of each run of
    # sentences (``text`` is the runs joined by ``SPAN_GAP``; ``start``/``end`` span them all).
    spans: list[tuple[int, int]] = Field(default_factory=list)
    pages: list[int] = Field(default_factory=list)  # the pages of a PDF it is on; empty for other formats

    def shown_spans(self) -> list[tuple[int, int]]:
        return self.spans or [(self.start, self.end)]


class Timings(BaseModel):
    retrieval_ms: float = 0.0
    compress_ms: float = 0.0  # cutting the passages to the prompt budget (answer.prompt_tokens)
    first_token_ms: float | None = None  # None when no model generated text
    total_ms: float = 0.0


class TokenUsage(BaseModel):
    """What the model read and wrote for one answer, over all its calls (evidence check, answer,
    translation), where the backend reports it (the embedded llama.cpp does; Ollama does not)."""

    prompt_tokens: int = 0  # in the prompts sent
    cached_tokens: int = 0  # of those, reused from the model's prompt cache instead of read again
    generated_tokens: int = 0
    calls: int = 0

    def add(self, timings: dict) -> None:
        """Add one call's llama.cpp timings ("prompt_n": tokens read, "cache_n": reused)."""
        self.prompt_tokens += int(timings.get("prompt_n", 0)) + int(timings.get("cache_n", 0))
        self.cached_tokens += int(timings.get("cache_n", 0))
        self.generated_tokens += int(timings.get("predicted_n", 0))
        self.calls += 1

    @property
    def read_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens


class Answer(BaseModel):
    text: str
    language: Literal["ar", "en"]
    citations: list[Citation] = Field(default_factory=list)
    refused: bool = False
    timings: Timings = Field(default_factory=Timings)
    model: str = ""  # which backend answered: "ollama:…", "embedded:…" or "extractive"
    notes: list[str] = Field(default_factory=list)  # e.g. why a fallback was used
    question: str = ""  # the standalone question actually answered (after condensing a follow-up)
    # The evidence check's P(the passages state the answer), when it ran (see answer.min_answerable).
    evidence: float | None = None
    usage: TokenUsage | None = None  # None when the backend does not report tokens


class SourceAnswer(Answer):
    """An answer from one outlet's passages only."""

    source: str


class Disagreement(BaseModel):
    kind: Literal["number", "name"] = "number"
    # A number as a plain decimal ("31", "1500", "2.5"), or a name as the answer writes it.
    value: str
    sources: list[str]  # the outlets whose answer gives it
    others: list[str]  # the outlets whose answer gives other numbers (names), not this one


class BySource(BaseModel):
    question: str
    answers: list[SourceAnswer] = Field(default_factory=list)  # the most relevant outlet first
    disagreements: list[Disagreement] = Field(default_factory=list)


class ConversationTurn(BaseModel):
    """One saved exchange. ``answer.question`` is the standalone question it was condensed to;
    ``answer.citations`` keep each passage's article, offsets and pages."""

    n: int  # 1-based, in the order the answers were given
    question: str  # as asked
    answer: Answer
    filters: Filters | None = None  # the outlets and dates it was asked with
    asked_at: datetime
    # A "compare outlets" turn: each outlet's answer; ``answer`` is then all of them as one
    # (``assistant.by_source.merged``), which the export, the search and follow-ups read.
    compared: BySource | None = None


class ConversationSummary(BaseModel):
    """A saved conversation as listed: its title is its first question until renamed."""

    id: str
    title: str
    created_at: datetime
    updated_at: datetime  # its last answer (or rename)
    turn_count: int = 0


class Conversation(ConversationSummary):
    turns: list[ConversationTurn] = Field(default_factory=list)
