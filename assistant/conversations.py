"""Saved conversations: each user's questions and cited answers, in one SQLite file
(``conversations.path``, beside the index under ``data/``).

A turn is written in one transaction once its answer is final, so a crash or a closed stream
mid-answer leaves the conversation as it was before the question, never half written. SQLite's
write-ahead log keeps every committed turn through a killed process, and lets a reader list
conversations while another thread writes.

Every call names the user, and a conversation is found only among that user's: someone else's
id is "not found", exactly like an id that never existed. Users are ``LOCAL_USER`` (no login, on
loopback), ``login_user(name)`` (the UI's login) and ``API_KEY_USER`` (the holder of the API key).
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from assistant.arabic import normalize
from assistant.errors import AssistantError, InputError, NotFoundError
from assistant.models import Answer, BySource, Conversation, ConversationSummary, ConversationTurn, Filters

LOCAL_USER = "local"
API_KEY_USER = "api-key"
NEW_TITLE = "New conversation"
TITLE_CHARS = 80  # a title longer than this (a long first question) is cut, with "…"
BUSY_TIMEOUT_S = 15.0  # how long a write waits for another one to finish
PURGE_EVERY_S = 3600.0  # conversations.keep_days is applied at most this often
SCHEMA_VERSION = 2  # 2: turns.compared

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    turn_count INTEGER NOT NULL DEFAULT 0,
    title_key TEXT NOT NULL,               -- the title folded for search (search_key)
    search_text TEXT NOT NULL DEFAULT ''   -- its questions and answers, folded
);
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations (user, updated_at DESC);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,  -- the Answer as JSON: text, citations (article, passage, offsets, pages), model
    filters TEXT,          -- the Filters as JSON, when the question had any
    asked_at REAL NOT NULL,
    compared TEXT,         -- a "compare outlets" turn: the BySource as JSON (answer: all of them as one)
    PRIMARY KEY (conversation_id, n)
);
"""


def login_user(name: str) -> str:
    """The user a UI login is (kept apart from the API key's holder and the local user)."""
    return f"login:{name}"


def title_of(question: str) -> str:
    title = " ".join(question.split())
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1].rstrip() + "…"


def search_key(text: str) -> str:
    """Text as search compares it: Arabic letter variants and marks folded, Latin lower-cased."""
    return " ".join(normalize(text).lower().split())


def _like(query: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", search_key(query)) + "%"


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


_SUMMARY = "SELECT id, title, created_at, updated_at, turn_count FROM conversations"


def _summary(row: tuple) -> ConversationSummary:
    id_, title, created, updated, count = row
    return ConversationSummary(id=id_, title=title, created_at=_time(created), updated_at=_time(updated), turn_count=count)


class ConversationStore:
    """The saved conversations of every user, in one SQLite file (created on first use)."""

    def __init__(self, path: Path, keep_days: float | None = None):
        self.path = Path(path)
        self.keep_days = keep_days
        self._opened = False
        self._purged_at, self._purging = -float("inf"), False
        self._open_lock = threading.Lock()

    # --- the file ------------------------------------------------------------------------------
    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One connection per call (they are cheap; threads never share one). ``write`` takes the
        write lock at the start, so that a turn's number and its insert are one step."""
        self._open()
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._unusable(exc) from None
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # (an error inside SQLite may have ended it already)
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise AssistantError(f"the conversations file {self.path} stayed busy for {BUSY_TIMEOUT_S:g} s; try again") from None
            raise self._unusable(exc) from None
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None
        finally:
            db.close()

    def _unusable(self, exc: Exception) -> AssistantError:
        return AssistantError(
            f"cannot use the conversations file {self.path}: {exc}. If it is damaged, move it away "
            "(a new one is started) and keep the old one to recover from"
        )

    def _open(self) -> None:
        """Create the file and its tables once per process; apply ``keep_days`` then, and again at
        most every ``PURGE_EVERY_S`` while the process runs (a server runs for weeks)."""
        with self._open_lock:
            if not self._opened:
                self._create()
                self._opened = True
            due = bool(self.keep_days) and not self._purging and time.monotonic() - self._purged_at >= PURGE_EVERY_S
            if due:
                self._purged_at, self._purging = time.monotonic(), True  # purge() opens the file too
        if due:
            try:
                self.purge(self.keep_days)
            finally:
                self._purging = False

    def _create(self) -> None:
        """The file and its tables (a no-op when they exist)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise AssistantError(f"{self.path} was written by a newer version of the assistant (schema {version})")
                db.execute("PRAGMA journal_mode = WAL")  # persistent: readers never wait for a writer
                db.executescript(_SCHEMA)
                if "compared" not in {row[1] for row in db.execute("PRAGMA table_info(turns)")}:  # a schema 1 file
                    try:
                        db.execute("ALTER TABLE turns ADD COLUMN compared TEXT")
                    except sqlite3.OperationalError as exc:  # another process upgraded it meanwhile
                        if "duplicate column" not in str(exc):
                            raise
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.commit()
            finally:
                db.close()
        except (sqlite3.Error, OSError) as exc:
            raise self._unusable(exc) from None

    # --- conversations -------------------------------------------------------------------------
    def create(self, user: str, title: str = "") -> ConversationSummary:
        with self._connect(write=True) as db:
            return self._owned(db, user, self._insert(db, user, title))

    @staticmethod
    def _insert(db: sqlite3.Connection, user: str, title: str) -> str:
        id_ = secrets.token_hex(6)  # 48 random bits; ownership is checked on every call anyway
        title, now = title_of(title) or NEW_TITLE, time.time()
        db.execute(
            "INSERT INTO conversations (id, user, title, created_at, updated_at, title_key) VALUES (?, ?, ?, ?, ?, ?)",
            (id_, user, title, now, now, search_key(title)),
        )
        return id_

    def list(self, user: str, query: str = "", limit: int | None = None) -> list[ConversationSummary]:
        """Newest first; ``query`` finds words in titles, questions and answers (Arabic folded)."""
        sql, params = _SUMMARY + " WHERE user = ?", [user]
        if query.strip():
            sql += " AND (title_key LIKE ? ESCAPE '\\' OR search_text LIKE ? ESCAPE '\\')"
            params += [_like(query)] * 2
        sql += " ORDER BY updated_at DESC, rowid DESC"
        if limit:
            sql += " LIMIT ?"
            params.append(limit)
        with self._connect() as db:
            return [_summary(row) for row in db.execute(sql, params)]

    def get(self, user: str, conversation_id: str) -> Conversation:
        with self._connect() as db:
            summary = self._owned(db, user, conversation_id)
            rows = db.execute(
                "SELECT n, question, answer, filters, asked_at, compared FROM turns WHERE conversation_id = ? ORDER BY n", (conversation_id,)
            ).fetchall()
        turns = [
            ConversationTurn(
                n=n, question=question, answer=Answer.model_validate_json(answer),
                filters=Filters.model_validate_json(filters) if filters else None, asked_at=_time(asked),
                compared=BySource.model_validate_json(compared) if compared else None,
            )
            for n, question, answer, filters, asked, compared in rows
        ]
        return Conversation(**summary.model_dump(), turns=turns)

    def rename(self, user: str, conversation_id: str, title: str) -> ConversationSummary:
        title = title_of(title)
        if not title:
            raise InputError("a conversation's title cannot be empty")
        with self._connect(write=True) as db:
            self._owned(db, user, conversation_id)
            db.execute("UPDATE conversations SET title = ?, title_key = ? WHERE id = ?", (title, search_key(title), conversation_id))
            return self._owned(db, user, conversation_id)

    def delete(self, user: str, conversation_id: str) -> None:
        with self._connect(write=True) as db:
            self._owned(db, user, conversation_id)
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def add_turn(
        self, user: str, conversation_id: str | None, question: str, answer: Answer, filters: Filters | None = None,
        compared: BySource | None = None,
    ) -> tuple[str, ConversationTurn]:
        """Append an answered question, in one transaction; ``conversation_id`` None starts a
        conversation titled by the question. ``compared``: a "compare outlets" turn, whose
        ``answer`` is its answers as one. Returns (the conversation's id, the turn)."""
        now = time.time()
        filters = filters if filters and filters.active else None
        with self._connect(write=True) as db:
            if conversation_id is None:
                conversation_id = self._insert(db, user, question)
            self._owned(db, user, conversation_id)
            n = db.execute("SELECT coalesce(max(n), 0) + 1 FROM turns WHERE conversation_id = ?", (conversation_id,)).fetchone()[0]
            db.execute(
                "INSERT INTO turns (conversation_id, n, question, answer, filters, asked_at, compared) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, n, question, answer.model_dump_json(), filters.model_dump_json() if filters else None, now,
                 compared.model_dump_json() if compared else None),
            )
            db.execute(
                "UPDATE conversations SET updated_at = ?, turn_count = turn_count + 1, search_text = search_text || ' ' || ? WHERE id = ?",
                (now, search_key(f"{question} {answer.text}"), conversation_id),
            )
            if n == 1:  # one started without a title is named by its first question
                title = title_of(question)
                db.execute("UPDATE conversations SET title = ?, title_key = ? WHERE id = ? AND title = ?",
                           (title, search_key(title), conversation_id, NEW_TITLE))
        return conversation_id, ConversationTurn(n=n, question=question, answer=answer, filters=filters, asked_at=_time(now), compared=compared)

    def purge(self, keep_days: float) -> int:
        """Delete every user's conversations with no new answer in ``keep_days``; returns how many."""
        cutoff = time.time() - keep_days * 86400
        with self._connect(write=True) as db:
            return db.execute("DELETE FROM conversations WHERE updated_at < ?", (cutoff,)).rowcount

    def check(self) -> list[str]:
        """SQLite's own integrity check: [] when the file is sound."""
        with self._connect() as db:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
            problems += [f"turn {row} has no conversation" for row in db.execute("PRAGMA foreign_key_check")]
        return [] if problems == ["ok"] else problems

    @staticmethod
    def _owned(db: sqlite3.Connection, user: str, conversation_id: str) -> ConversationSummary:
        row = db.execute(_SUMMARY + " WHERE id = ? AND user = ?", (conversation_id, user)).fetchone()
        if row is None:  # someone else's is not found either: ids are not a way to learn what exists
            raise NotFoundError(f"there is no conversation {conversation_id!r} (see the list of your conversations)")
        return _summary(row)


def history_of(conversation: Conversation) -> list[dict]:
    """A saved conversation as the ``history`` messages a follow-up question is condensed with."""
    from assistant.answer import answered_exchange

    return [message for turn in conversation.turns for message in answered_exchange(turn.question, turn.answer)]
