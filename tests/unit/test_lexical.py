"""assistant.store.lexical: in-place BM25 gives bm25s' Lucene scores, through adds, removals,
compaction and a save/load round trip."""

from __future__ import annotations

import random
from pathlib import Path

import bm25s
import numpy as np
import pytest

from assistant.arabic import lexical_tokens
from assistant.store.lexical import LexicalIndex

K1, B = 1.2, 0.75
WORDS = (
    "قال المتحدث باسم التحالف الدولي إن القوات سيطرت على مدينة الرقة بعد معارك عنيفة مع التنظيم "
    "وأعلنت الحكومة السورية عن خطة لإعادة الإعمار في دير الزور والحسكة وصرح وزير الخارجية "
    "بأن المفاوضات مستمرة في جنيف حول الدستور والانتخابات والاقتصاد والنفط والمياه"
).split()
QUERIES = ["المتحدث باسم التحالف", "إعادة الإعمار في الرقة", "وزير الخارجية جنيف", "النفط والمياه والاقتصاد", "Geneva"]


def _corpus(n: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    return {f"doc{seed}-{i}": " ".join(rng.choices(WORDS, k=rng.randint(3, 40))) for i in range(n)}


def _reference(texts: dict[str, str], query: str) -> dict[str, float]:
    """bm25s (method=lucene) over the same tokens: every chunk's score for the query."""
    ids = list(texts)
    model = bm25s.BM25(k1=K1, b=B, method="lucene")
    model.index([lexical_tokens(texts[i]) for i in ids], show_progress=False)
    tokens = [t for t in lexical_tokens(query) if t in model.vocab_dict]
    if not tokens:
        return {}
    scores = model.get_scores(tokens)
    return {ids[i]: float(s) for i, s in enumerate(scores) if s > 0}


def _scores(index: LexicalIndex, query: str) -> dict[str, float]:
    return dict(index.search(query, k=10_000))


def _assert_same(index: LexicalIndex, texts: dict[str, str]) -> None:
    assert sorted(index.chunk_ids) == sorted(texts)
    for query in QUERIES:
        expected = _reference(texts, query)
        got = _scores(index, query)
        assert set(got) == set(expected), query
        for chunk_id, score in expected.items():
            assert got[chunk_id] == pytest.approx(score, rel=1e-4), (query, chunk_id)


def _add(index: LexicalIndex, texts: dict[str, str], version: str = "v1") -> None:
    index.add(list(texts), [version] * len(texts), list(texts.values()))


def test_scores_match_bm25s() -> None:
    texts = _corpus(200, seed=1)
    index = LexicalIndex(K1, B)
    _add(index, texts)
    _assert_same(index, texts)
    ranked = index.search(QUERIES[0], k=5)
    assert len(ranked) == 5 and [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_incremental_adds_and_removals_equal_a_fresh_build(tmp_path: Path) -> None:
    texts = _corpus(150, seed=2)
    index = LexicalIndex(K1, B)
    items = list(texts.items())
    for start in range(0, len(items), 40):  # several adds, searched in between
        _add(index, dict(items[start : start + 40]))
        index.search(QUERIES[1], k=3)
    removed = [cid for cid in list(texts)[::3]]
    index.remove(removed)
    for cid in removed:
        del texts[cid]
    replaced = {cid: "النفط " + texts[cid] for cid in list(texts)[:10]}  # same ids, new text
    _add(index, replaced, version="v2")
    texts.update(replaced)
    more = _corpus(30, seed=3)
    _add(index, more)
    texts.update(more)
    _assert_same(index, texts)
    assert index.version(next(iter(replaced))) == "v2"
    assert index.version(removed[0]) is None

    # Save compacts (a third of the rows were dead) and loads back to the same scores.
    index.save(tmp_path, {"generation": 7})
    loaded, state = LexicalIndex.load(tmp_path, K1, B)
    assert state == {"generation": 7}
    assert len(loaded.ids) == len(texts)  # dead rows dropped
    _assert_same(loaded, texts)
    _add(loaded, _corpus(5, seed=4))
    assert len(loaded) == len(texts) + 5


def test_load_refuses_other_parameters_and_missing_files(tmp_path: Path) -> None:
    index = LexicalIndex(K1, B)
    _add(index, _corpus(5, seed=5))
    index.save(tmp_path, {"generation": 1})
    assert LexicalIndex.load(tmp_path, 1.5, B) is None
    assert LexicalIndex.load(tmp_path / "missing", K1, B) is None
    (tmp_path / "bm25.npz").write_bytes(b"not an npz file")
    assert LexicalIndex.load(tmp_path, K1, B) is None


def test_empty_index_and_unknown_terms() -> None:
    index = LexicalIndex(K1, B)
    assert index.search("التحالف", 5) == []
    _add(index, {"a": "التحالف الدولي"})
    assert index.search("كلمات غير موجودة", 5) == []
    index.remove(["a"])
    assert index.search("التحالف", 5) == [] and len(index) == 0


def test_merge_keeps_every_posting_in_term_order() -> None:
    """The linear merge puts each posting under its own term (checked against a direct count)."""
    texts = _corpus(60, seed=6)
    index = LexicalIndex(K1, B)
    items = list(texts.items())
    for start in range(0, len(items), 7):
        _add(index, dict(items[start : start + 7]))
        index._merge_pending()
    for term, term_id in index.vocab.items():
        rows = index._rows[index._indptr[term_id] : index._indptr[term_id + 1]]
        tf = index._tf[index._indptr[term_id] : index._indptr[term_id + 1]]
        expected = {index.row_of[cid]: lexical_tokens(text).count(term) for cid, text in texts.items() if term in lexical_tokens(text)}
        assert dict(zip(rows.tolist(), tf.tolist())) == expected
        assert np.all(np.diff(rows) > 0)  # rows ascend within a term: added in row order
