"""The ``Assistant`` facade: wires the stages from the typed config.

Heavy parts (the embedding model, the Chroma client) are created on first use, so that
``assistant status`` or a config error does not pay for loading a model.
"""

from __future__ import annotations

import os
import threading
from contextlib import closing
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from assistant.answer import Answerer, History
from assistant.by_source import BySource, SourceAnswer, disagreements, merged, narrowed, outlets_of
from assistant.config import Settings, load_settings
from assistant.conversations import LOCAL_USER, ConversationStore, history_of
from assistant.embed import Embedder, check_engine, make_embedder, model_id_for
from assistant.errors import AssistantError
from assistant.arabic import detect_language
from assistant.ingest import check_sources, ingest, ingest_articles
from assistant.llm import Message, resolve_backend
from assistant.errors import InputError
from assistant.export import Format, export
from assistant.models import (
    Answer, Article, Conversation, ConversationSummary, ConversationTurn, DocumentInfo, Filters, IndexCheck, IndexStatus,
    IngestReport, Passage,
)
from assistant.prompts import Prompts
from assistant.retrieve import Mode, Retriever, check_question
from assistant.store import Index, drop_index
from assistant.timeline import Timeline, TimelineBuilder, summarize

# The parts built on first use that read the index: a rebuild makes each of them anew.
_INDEX_PARTS = ("index", "retriever", "answerer")


class _part(cached_property):
    """Built once per Assistant even when several threads ask for it at once (Python 3.12 dropped
    cached_property's lock, and two embedders or indexes on one store must not race)."""

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        with instance._parts_lock:
            return super().__get__(instance, owner)


class Assistant:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._parts_lock = threading.RLock()  # reentrant: building the answerer builds the retriever

    @classmethod
    def from_config(cls, path: str | os.PathLike | None = None, **overrides: Any) -> "Assistant":
        """Load ``config.yaml`` (or ``path`` / $ASSISTANT_CONFIG); ``overrides`` are nested dicts."""
        return cls(load_settings(path, **overrides))

    @_part
    def embedder(self) -> Embedder:
        return make_embedder(self.settings.embedding)

    @_part
    def index(self) -> Index:
        return Index(self.settings, model_id_for(self.settings.embedding))

    @_part
    def retriever(self) -> Retriever:
        return Retriever(self.index, self.embedder, self.settings.retrieval)

    @_part
    def answerer(self) -> Answerer:
        return Answerer(self.retriever, self.embedder, resolve_backend(self.settings), self.settings.answer, self.prompts)

    @_part
    def prompts(self) -> Prompts:
        folder = self.settings.answer.prompts_dir
        return Prompts(self.settings.resolve(folder) if folder else None)

    @_part
    def conversation_store(self) -> ConversationStore:
        conversations = self.settings.conversations
        return ConversationStore(self.settings.resolve(conversations.path), conversations.keep_days)

    def stream(
        self, question: str, history: History = None, top_k: int | None = None, filters: Filters | None = None,
        conversation_id: str | None = None, user: str = LOCAL_USER,
    ) -> Iterator[str | Answer]:
        """Text deltas as the model writes them, then the final ``Answer`` (the authoritative text).
        With ``conversation_id`` (one of ``user``'s), the question follows that saved conversation
        and its answer is saved into it before the ``Answer`` is yielded; a stream closed earlier
        saves nothing."""
        self._check(question)
        if conversation_id is None:
            return self.answerer.stream(question, history, top_k, filters)
        if history:
            raise InputError("give either the history or a conversation to continue, not both")
        saved = self.conversation(conversation_id, user)  # an unknown id fails now, before any model work
        return self._saving(self.answerer.stream(question, history_of(saved), top_k, filters), question, filters, conversation_id, user)

    def _saving(self, items: Iterator[str | Answer], question: str, filters, conversation_id: str, user: str) -> Iterator[str | Answer]:
        with closing(items):
            for item in items:
                if isinstance(item, Answer):
                    self.save_turn(question, item, filters, conversation_id, user)
                yield item

    def ask(
        self, question: str, history: History = None, top_k: int | None = None, filters: Filters | None = None,
        conversation_id: str | None = None, user: str = LOCAL_USER,
    ) -> Answer:
        """``history``: earlier turns as ``{"role": "user"|"assistant", "content": ...}`` dicts.
        ``filters``: answer only from some outlets or a date range (``Filters``).
        ``conversation_id``: continue that saved conversation instead (see ``stream``)."""
        with closing(self.stream(question, history, top_k, filters, conversation_id, user)) as items:
            for item in items:
                if isinstance(item, Answer):
                    return item
        raise RuntimeError("the answer stream ended without an Answer")  # a bug, not a user error

    # --- saved conversations (assistant.conversations), each user's own --------------------------
    def save_turn(
        self, question: str, answer: Answer | BySource, filters: Filters | None = None, conversation_id: str | None = None,
        user: str = LOCAL_USER,
    ) -> tuple[str, ConversationTurn]:
        """Save an answered question, or the outlets' answers to it (``ask_by_source``); without
        ``conversation_id`` it starts a new conversation. Returns (the conversation's id, the saved turn)."""
        if isinstance(answer, BySource):
            return self.conversation_store.add_turn(user, conversation_id, question, merged(answer), filters, compared=answer)
        return self.conversation_store.add_turn(user, conversation_id, question, answer, filters)

    def conversations(self, user: str = LOCAL_USER, query: str = "", limit: int | None = None) -> list[ConversationSummary]:
        """``user``'s conversations, newest first; ``query`` searches titles, questions and answers."""
        return self.conversation_store.list(user, query, limit)

    def conversation(self, conversation_id: str, user: str = LOCAL_USER) -> Conversation:
        """One of ``user``'s conversations with its turns (NotFoundError for anyone else's)."""
        return self.conversation_store.get(user, conversation_id)

    def new_conversation(self, title: str = "", user: str = LOCAL_USER) -> ConversationSummary:
        return self.conversation_store.create(user, title)

    def rename_conversation(self, conversation_id: str, title: str, user: str = LOCAL_USER) -> ConversationSummary:
        return self.conversation_store.rename(user, conversation_id, title)

    def delete_conversation(self, conversation_id: str, user: str = LOCAL_USER) -> None:
        self.conversation_store.delete(user, conversation_id)

    def export_conversation(
        self, conversation_id: str, format: Format = "markdown", turn: int | None = None, user: str = LOCAL_USER
    ) -> str:
        """Markdown (every citation with outlet, date, title, address and quoted passage) or JSON;
        ``turn``: only that answer (1-based)."""
        return export(self.conversation(conversation_id, user), format, turn)

    def purge_conversations(self, keep_days: float) -> int:
        """Delete every user's conversations with no new answer in ``keep_days``; how many."""
        return self.conversation_store.purge(keep_days)

    def _check(self, question: str) -> None:
        # Before the answerer is built: a bad question must not wait for a model to load.
        check_question(question, self.settings.retrieval.max_question_chars)

    def ingest(
        self, paths: list[str | Path], progress: bool = False, rebuild: bool = False, stop: threading.Event | None = None,
        follow: bool = False,
    ) -> IngestReport:
        """``paths``: files, folders, and URLs of pages and RSS/Atom feeds. ``stop``: set it (e.g.
        on Ctrl-C) to end the ingest after the batch being written. ``follow``: a rerun asks feeds
        only for what changed (conditional GET) and skips pages already read."""
        check_engine(self.settings.ingest)  # a missing Ray is said before anything is dropped or read
        if rebuild:
            check_sources(paths, self.settings.ingest.extensions)  # before dropping anything
            self.rebuild()
        return ingest(paths, self.settings, self.index, self.embedder, progress=progress, stop=stop, follow=follow)

    def ingest_articles(
        self, articles: Iterable[Article], progress: bool = False, stop: threading.Event | None = None, total: int | None = None
    ) -> IngestReport:
        """Index articles from any iterable (e.g. a benchmark's paragraphs), streamed."""
        return ingest_articles(articles, self.settings, self.index, self.embedder, progress=progress, stop=stop, total=total)

    def rebuild(self) -> None:
        """Drop the collection (whatever model built it) and start an empty one."""
        with self._parts_lock:
            drop_index(self.settings)
            for part in _INDEX_PARTS:
                self.__dict__.pop(part, None)

    def search(
        self,
        question: str,
        top_k: int | None = None,
        mode: Mode | None = None,
        lexical_query: str | None = None,
        filters: Filters | None = None,
    ) -> list[Passage]:
        """``lexical_query``: an Arabic rendering of the question for the BM25 side."""
        return self.retriever.search(question, top_k=top_k, mode=mode, lexical_query=lexical_query, filters=filters)

    def remove(self, doc_ids: list[str]) -> dict[str, int]:
        return self.index.remove(doc_ids)

    def status(self, documents: list[DocumentInfo] | None = None) -> IndexStatus:
        """``documents``: the result of ``documents()``, when the caller has it (saves a scan)."""
        return self.index.status(documents)

    def check(self) -> IndexCheck:
        """Whether Chroma and BM25 hold the same chunks, every article is whole and every chunk has
        its sentence vectors."""
        return self.index.check()

    def repair(self) -> int:
        """Derive what derives from Chroma's chunks again: the BM25 index, and the sentence vectors
        that are missing or stale (embedded from the stored chunk text). Returns the sentence
        vectors written. An article missing chunks stays for ``ingest`` to rewrite."""
        self.index.rebuild_lexical()
        return self.index.repair_sentences(self.embedder.embed_passages)

    def chunk_count(self) -> int:
        return self.index.vectors.count()

    def model_label(self, load: bool = False) -> str | None:
        """Which language model answers (and why, after a fallback). Until the first question it is
        not loaded, and this is None unless ``load`` asks to load it now."""
        if not load and "answerer" not in self.__dict__:
            return None
        resolved = self.answerer.resolved
        return resolved.label + (f" — {resolved.note}" if resolved.note else "")

    def warm_up(self, model: bool = False) -> None:
        """Open the index (Chroma and BM25) and load the embedding model now, not at the first
        question. No scan of every chunk: that grows with the archive. With ``model``, also load
        the language model and have it read the answer prompt's fixed start (see
        ``Answerer.warm_up``), so that the first question pays neither."""
        self.chunk_count()
        self.index.lexical()
        self.embedder.embed_queries(["warm-up"])
        if model:
            self.answerer.warm_up()

    def warm_up_in_background(self, on_ready=None) -> threading.Thread:
        """``warm_up(model=True)`` in a thread, so that a UI or chat can start at once; a question
        asked meanwhile waits for the parts it needs. ``on_ready(error)`` is called at the end,
        with the AssistantError that stopped it, or None."""

        def run() -> None:
            try:
                self.warm_up(model=True)
            except AssistantError as exc:  # the same error will be told with the first question
                error = exc
            else:
                error = None
            if on_ready:
                on_ready(error)

        thread = threading.Thread(target=run, name="warm-up", daemon=True)
        thread.start()
        return thread

    def ask_by_source(self, question: str, filters: Filters | None = None, top_k: int | None = None) -> BySource:
        """The question answered once per outlet that has relevant passages (at most
        ``answer.max_sources``, the most relevant first), each from that outlet's passages only;
        and the numbers the answers disagree on (see assistant.by_source)."""
        self._check(question)
        answerer = self.answerer
        language = detect_language(question)
        candidates = self.search(question, top_k=self.settings.retrieval.candidates, filters=filters)
        outlets = outlets_of(candidates, lambda found: answerer.similarity_gate(found, language) is None, self.settings.answer.max_sources)
        answers = [
            SourceAnswer(**self.ask(question, top_k=top_k, filters=narrowed(filters, outlet)).model_dump(), source=outlet)
            for outlet in outlets
        ]
        return BySource(question=question, answers=answers, disagreements=disagreements(answers, question))

    def timeline(self, query: str, filters: Filters | None = None, summaries: bool = False) -> Timeline:
        """The story of ``query`` across outlets and dates: per day (or week), each outlet's most
        representative sentence, cited. Extractive: no model call (see assistant.timeline), unless
        ``summaries`` asks the model for one line per period."""
        self._check(query)
        builder = TimelineBuilder(self.index, self.embedder, self.settings.timeline, self.settings.retrieval)
        timeline = builder.build(query, filters)
        if summaries and timeline.periods:
            summarize(timeline, self.answerer.llm, self.prompts)
        return timeline

    def translate_query(self, question: str) -> str | None:
        """The question in Arabic for BM25, by the language model (None when it cannot)."""
        return self.answerer.arabic_query(question, detect_language(question), self.answerer.llm, force=True)

    def answer_prompt(self, question: str, filters: Filters | None = None) -> list[Message]:
        """The answer prompt as the model gets it for a standalone question."""
        return self.answerer.answer_messages(question, filters)

    def prompt_tokens(self, question: str) -> int | None:
        """The answer prompt's size in the model's own tokens (None when the backend cannot count)."""
        llm = self.answerer.llm
        return llm.prompt_tokens(self.answer_prompt(question)) if llm else None

    def documents(self) -> list[DocumentInfo]:
        return self.index.documents()

    def article(self, doc_id: str) -> Article | None:
        """An indexed article's cleaned text and metadata (what citations' offsets point into)."""
        return self.index.article(doc_id)
