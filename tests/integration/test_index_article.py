"""``Index.article`` / ``Assistant.article``: the cleaned article rebuilt from its stored chunks, which
the UI's source viewer shows with the cited passage highlighted at the citation's offsets.

Here rather than in tests/unit: it needs the real Chroma store and the embedding model that built it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.clean import clean_article
from assistant.read import read_file

pytestmark = pytest.mark.slow

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
SENTENCES = [
    f"وقالت بلدية مدينة نزوى إن المرحلة رقم {i} من مشروع حديقة البنفسج اكتملت في موعدها المحدد دون أي تأخير يذكر."
    for i in range(1, 25)
]
LONG_RECORD = {  # one long paragraph: the chunker cuts it into overlapping chunks
    "id": "nizwa_garden",
    "title": "مشروع حديقة البنفسج في نزوى",
    "text": " ".join(SENTENCES[:12]) + "\n" + " ".join(SENTENCES[12:]),
    "source": "جريدة نزوى",
    "url": "https://example.com/nizwa",
    "date": "2030-05-01",
}


def assert_offsets_match(assistant: Assistant, doc_id: str) -> str:
    """Every stored chunk is the rebuilt text's slice at its offsets; returns the rebuilt text."""
    rebuilt = assistant.article(doc_id)
    assert rebuilt is not None and rebuilt.doc_id == doc_id
    chunks = assistant.index.vectors.chunks_of([doc_id])
    assert chunks
    for chunk in chunks:
        start, end = int(chunk.meta["start"]), int(chunk.meta["end"])
        assert rebuilt.text[start:end] == chunk.text, (doc_id, chunk.chunk_id)
    return rebuilt.text


def test_seed_articles_are_rebuilt_exactly(seeded_settings_factory):
    settings = seeded_settings_factory()
    assistant = Assistant(settings)
    for path in sorted(SEEDS.glob("*.txt")):
        cleaned = clean_article(read_file(path, settings.ingest.extensions, 10**9).articles[0], settings.cleaning)
        assert assert_offsets_match(assistant, cleaned.doc_id) == cleaned.text
        rebuilt = assistant.index.article(cleaned.doc_id)
        assert (rebuilt.title, rebuilt.source, rebuilt.url, rebuilt.date) == (cleaned.title, cleaned.source, cleaned.url, cleaned.date)


def test_overlapping_chunks_and_metadata_of_a_jsonl_article(seeded_settings_factory, tmp_path):
    assistant = Assistant(seeded_settings_factory())
    path = tmp_path / "garden.jsonl"
    path.write_text(json.dumps(LONG_RECORD, ensure_ascii=False) + "\n", encoding="utf-8")
    assert assistant.ingest([path]).added == ["nizwa_garden"]
    chunks = sorted(assistant.index.vectors.chunks_of(["nizwa_garden"]), key=lambda c: int(c.meta["start"]))
    starts_ends = [(int(c.meta["start"]), int(c.meta["end"])) for c in chunks]
    assert any(start < prev_end for (_, prev_end), (start, _) in zip(starts_ends, starts_ends[1:])), starts_ends
    text = assert_offsets_match(assistant, "nizwa_garden")
    assert text == LONG_RECORD["text"]
    article = assistant.article("nizwa_garden")
    assert (article.title, article.source, article.url, article.date) == (
        LONG_RECORD["title"], LONG_RECORD["source"], LONG_RECORD["url"], LONG_RECORD["date"])


def test_retrieved_passages_point_into_the_rebuilt_article(seeded_settings_factory):
    assistant = Assistant(seeded_settings_factory())
    for question in ("من هو المتحدث الرسمي باسم التحالف الدولي؟", "Who is the coalition spokesman?"):
        for passage in assistant.search(question, top_k=8):
            assert assistant.article(passage.doc_id).text[passage.start : passage.end] == passage.text


def test_a_missing_chunk_leaves_the_other_offsets_right(seeded_settings_factory):
    """An incompletely written article (a chunk lost) still shows its other passages in place."""
    assistant = Assistant(seeded_settings_factory())
    doc_id = "000_f059682764c3eed9"
    full = assistant.article(doc_id).text
    chunks = sorted(assistant.index.vectors.chunks_of([doc_id]), key=lambda c: int(c.meta["start"]))
    lost = chunks[1]
    assistant.index.vectors.delete([lost.chunk_id])
    text = assert_offsets_match(assistant, doc_id)
    start, end = int(lost.meta["start"]), int(lost.meta["end"])
    assert text[:start] == full[:start] and text[end:] == full[end:]
    assert text[start:end].strip("\n") == ""


def test_unknown_or_removed_article_is_none(seeded_settings_factory):
    assistant = Assistant(seeded_settings_factory())
    assert assistant.article("no_such_doc") is None
    assistant.remove(["002_19328c00382c3f33"])
    assert assistant.article("002_19328c00382c3f33") is None
