"""BM25 over normalized, stemmed Arabic, kept in step with the Chroma collection, updated in place.

Scores are Lucene's BM25 (idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf saturated by k1 and
length-normalized by b), the same numbers as ``bm25s`` with ``method="lucene"``. Unlike bm25s,
which precomputes every (term, chunk) score and so must be rebuilt from all texts whenever one
chunk changes, this index keeps raw term counts and scores at query time. Adding an article
tokenizes only its chunks, and removing one marks its rows dead. N, average length and document
frequencies are computed over live rows at query time.

Postings are term-major arrays (``indptr``/``rows``/``tf``, like a CSC matrix). Rows added since
the last compaction wait in a small pending list, merged into the arrays in one linear pass when
searched or saved. The index is saved as one ``.npz`` file, replaced atomically, with the state it
was built for (collection id and generation). ``assistant.store.Index`` decides when it is stale.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from assistant.arabic import lexical_tokens
from assistant.errors import AssistantError

SNAPSHOT = "bm25.npz"
# Compact away dead rows once they are this share of all rows.
DEAD_SHARE_TO_COMPACT = 0.25


class LexicalIndex:
    def __init__(self, k1: float, b: float):
        self.k1, self.b = k1, b
        self.ids: list[str] = []  # row -> chunk id
        self.versions: list[str] = []  # row -> the doc_hash its tokens were made from
        self.row_of: dict[str, int] = {}  # live chunk id -> row
        self.vocab: dict[str, int] = {}
        self.doc_len = np.zeros(0, dtype=np.float32)
        self.alive = np.zeros(0, dtype=bool)
        self._indptr = np.zeros(1, dtype=np.int64)  # term t's postings: [indptr[t], indptr[t+1])
        self._rows = np.zeros(0, dtype=np.int32)
        self._tf = np.zeros(0, dtype=np.float32)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (terms, rows, tf) per add

    def __len__(self) -> int:
        return len(self.row_of)

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self.row_of

    @property
    def chunk_ids(self) -> list[str]:
        """The chunks indexed now (``ids`` also holds rows removed since the last compaction)."""
        return list(self.row_of)

    def version(self, chunk_id: str) -> str | None:
        row = self.row_of.get(chunk_id)
        return None if row is None else self.versions[row]

    # --- updates -----------------------------------------------------------------------------
    def add(self, ids: list[str], versions: list[str], texts: list[str]) -> None:
        """Index texts (tokenized here) under chunk ids; an id already present is replaced."""
        self.add_tokens(ids, versions, [lexical_tokens(t) for t in texts])

    def add_tokens(self, ids: list[str], versions: list[str], token_lists: list[list[str]]) -> None:
        self.remove(ids)
        first = len(self.ids)
        terms, rows, counts, lengths = [], [], [], []
        for offset, (chunk_id, version, tokens) in enumerate(zip(ids, versions, token_lists)):
            row = first + offset
            self.ids.append(chunk_id)
            self.versions.append(version)
            self.row_of[chunk_id] = row
            lengths.append(len(tokens))
            for term, count in Counter(tokens).items():
                terms.append(self.vocab.setdefault(term, len(self.vocab)))
                rows.append(row)
                counts.append(count)
        self.doc_len = np.concatenate([self.doc_len, np.asarray(lengths, dtype=np.float32)])
        self.alive = np.concatenate([self.alive, np.ones(len(lengths), dtype=bool)])
        if terms:
            self._pending.append(
                (np.asarray(terms, dtype=np.int64), np.asarray(rows, dtype=np.int32), np.asarray(counts, dtype=np.float32))
            )

    def remove(self, ids: Iterable[str]) -> None:
        for chunk_id in ids:
            row = self.row_of.pop(chunk_id, None)
            if row is not None:
                self.alive[row] = False

    # --- search ------------------------------------------------------------------------------
    def search(self, query: str, k: int, allowed: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score), best first; only chunks sharing a term with the query, and
        when ``allowed`` is given only those chunk ids. Term statistics stay those of the whole
        index, so a chunk scores the same with or without a filter."""
        term_ids = [self.vocab[t] for t in lexical_tokens(query) if t in self.vocab]
        if not term_ids or not self.row_of:
            return []
        self._merge_pending()
        admitted = None
        if allowed is not None:
            admitted = np.zeros(len(self.ids), dtype=bool)
            admitted[[self.row_of[cid] for cid in allowed if cid in self.row_of]] = True
        live = len(self.row_of)
        average = float(self.doc_len[self.alive].mean())
        scores = np.zeros(len(self.ids), dtype=np.float32)
        # A repeated query term counts each time, as in bm25s.
        for term in term_ids:
            start, end = self._indptr[term], self._indptr[term + 1]
            rows, tf = self._rows[start:end], self._tf[start:end]
            keep = self.alive[rows]
            rows, tf = rows[keep], tf[keep]
            if not len(rows):
                continue
            idf = np.log(1.0 + (live - len(rows) + 0.5) / (len(rows) + 0.5))
            norm = self.k1 * ((1.0 - self.b) + self.b * self.doc_len[rows] / average)
            scores[rows] += (idf * tf / (norm + tf)).astype(np.float32)
        if admitted is not None:
            scores[~admitted] = 0.0
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # --- maintenance -------------------------------------------------------------------------
    def _merge_pending(self) -> None:
        """Fold pending rows into the term-major arrays: one linear pass, no global sort."""
        if not self._pending:
            return
        terms = np.concatenate([p[0] for p in self._pending])
        rows = np.concatenate([p[1] for p in self._pending])
        tf = np.concatenate([p[2] for p in self._pending])
        self._pending = []
        order = np.argsort(terms, kind="stable")
        terms, rows, tf = terms[order], rows[order], tf[order]
        size = len(self.vocab)
        old_counts = np.zeros(size, dtype=np.int64)
        old_counts[: len(self._indptr) - 1] = np.diff(self._indptr)
        new_counts = np.bincount(terms, minlength=size)
        indptr = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(old_counts + new_counts, out=indptr[1:])
        merged_rows = np.empty(indptr[-1], dtype=np.int32)
        merged_tf = np.empty(indptr[-1], dtype=np.float32)
        # Old postings keep their order at the start of each term's run; new ones follow.
        old_terms = np.repeat(np.arange(size), old_counts)
        old_at = indptr[old_terms] + (np.arange(len(self._rows)) - self._indptr[old_terms])
        merged_rows[old_at], merged_tf[old_at] = self._rows, self._tf
        new_first = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(new_counts, out=new_first[1:])
        new_at = indptr[terms] + old_counts[terms] + (np.arange(len(terms)) - new_first[terms])
        merged_rows[new_at], merged_tf[new_at] = rows, tf
        self._indptr, self._rows, self._tf = indptr, merged_rows, merged_tf

    def _drop_dead_rows(self) -> None:
        """Renumber rows without the dead ones (their postings go too)."""
        self._merge_pending()
        keep = self.alive
        new_row = np.cumsum(keep, dtype=np.int64) - 1
        posting_alive = keep[self._rows]
        term_of = np.repeat(np.arange(len(self._indptr) - 1), np.diff(self._indptr))
        counts = np.bincount(term_of[posting_alive], minlength=len(self._indptr) - 1)
        self._rows = new_row[self._rows[posting_alive]].astype(np.int32)
        self._tf = self._tf[posting_alive]
        self._indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.ids = [cid for cid, live in zip(self.ids, keep) if live]
        self.versions = [v for v, live in zip(self.versions, keep) if live]
        self.doc_len = self.doc_len[keep]
        self.alive = np.ones(len(self.ids), dtype=bool)
        self.row_of = {cid: row for row, cid in enumerate(self.ids)}

    # --- on-disk snapshot --------------------------------------------------------------------
    def save(self, folder: Path, state: dict) -> None:
        """Write the snapshot for ``state`` (replaces the old one atomically)."""
        if len(self.ids) and (len(self.ids) - len(self.row_of)) / len(self.ids) > DEAD_SHARE_TO_COMPACT:
            self._drop_dead_rows()
        self._merge_pending()
        header = {"state": {**state, "k1": self.k1, "b": self.b}, "ids": self.ids, "versions": self.versions,
                  "vocab": sorted(self.vocab, key=self.vocab.__getitem__)}
        tmp = folder / f".{SNAPSHOT}.{os.getpid()}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    header=np.frombuffer(json.dumps(header, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
                    doc_len=self.doc_len, alive=self.alive, indptr=self._indptr, rows=self._rows, tf=self._tf,
                )
            os.replace(tmp, folder / SNAPSHOT)
        except OSError as exc:  # read-only folder, a file in the way, a full disk
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)  # a partial snapshot (a full disk)
            raise AssistantError(
                f"cannot write the BM25 index to {folder} (store.lexical_cache): {exc.strerror or exc}; "
                "set store.lexical_cache in the config to a folder this user can write, or fix its permissions"
            ) from None
        for legacy in ("ids.json", "state.json"):  # the bm25s cache of earlier versions
            (folder / legacy).unlink(missing_ok=True)
        shutil.rmtree(folder / "bm25", ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, k1: float, b: float) -> tuple["LexicalIndex", dict] | None:
        """(index, the state it was saved for), or None when there is no usable snapshot."""
        try:
            with np.load(folder / SNAPSHOT, allow_pickle=False) as data:
                header = json.loads(data["header"].tobytes().decode("utf-8"))
                state = header["state"]
                if (state.pop("k1"), state.pop("b")) != (k1, b):
                    return None
                index = cls(k1, b)
                index.ids, index.versions = header["ids"], header["versions"]
                index.vocab = {term: i for i, term in enumerate(header["vocab"])}
                index.doc_len, index.alive = data["doc_len"], data["alive"]
                index._indptr, index._rows, index._tf = data["indptr"], data["rows"], data["tf"]
            index.row_of = {cid: row for row, cid in enumerate(index.ids) if index.alive[row]}
            return index, state
        except (OSError, ValueError, KeyError, EOFError):
            return None
