"""embedding.provider: ollama through the real ``ollama`` client, against a fake server that speaks
Ollama's ``POST /api/embed`` protocol (hashed bag-of-words vectors, 64 dimensions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.assistant import Assistant
from assistant.errors import BackendUnavailableError
from assistant.store import indexed_text

from assistant.embed import make_embedder

from .helpers import DIM, FAKE_MODEL, FakeOllama, bag_of_words, free_port, ollama_overrides, run_cli

pytestmark = pytest.mark.slow  # starts a (fake) server

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
DOC_IDS = sorted(p.stem for p in SEEDS.glob("*.txt"))
SPOKESMAN_Q = "من هو المتحدث الرسمي باسم التحالف الدولي؟"


def test_ingest_and_search_with_ollama(fake_ollama, settings_factory):
    settings = settings_factory(**ollama_overrides(fake_ollama.host, batch_size=8))
    assistant = Assistant(settings)

    report = assistant.ingest([SEEDS])

    assert sorted(report.added) == DOC_IDS and report.errors == []
    status = assistant.status()
    assert status.embedding_model == f"ollama:{FAKE_MODEL}"
    assert status.documents == 5 and status.chunks == report.chunks_written > 0

    # What went over the wire: the model, batches of at most batch_size, every passage's text.
    assert fake_ollama.requests, "the server was never called"
    assert all(body["model"] == FAKE_MODEL for body in fake_ollama.requests)
    assert all(1 <= len(body["input"]) <= 8 for body in fake_ollama.requests)
    sent = fake_ollama.inputs
    stored = list(assistant.index.vectors.iter_chunks())
    expected = {indexed_text(s.meta["title"], s.text, True) for s in stored}
    # ...and every sentence vector's text (embedding.sentences), sliced from its chunk.
    by_id = {s.chunk_id: s for s in stored}
    sentence_metas = assistant.index.vectors.sentences.get(include=["metadatas"])["metadatas"]
    for m in sentence_metas:
        chunk = by_id[m["chunk_id"]]
        offset = int(chunk.meta["start"])
        expected.add(indexed_text(chunk.meta["title"], chunk.text[int(m["start"]) - offset : int(m["end"]) - offset], True))
    assert sentence_metas and len(sent) == report.chunks_written + len(sentence_metas)
    assert set(sent) == expected

    # The vectors stored are the server's, L2-normalized.
    page = assistant.index.vectors.collection.get(ids=[stored[0].chunk_id], include=["embeddings"])
    vector = np.asarray(page["embeddings"][0], dtype=np.float32)
    raw = np.asarray(bag_of_words(indexed_text(stored[0].meta["title"], stored[0].text, True)), dtype=np.float32)
    assert vector.shape == (DIM,)
    np.testing.assert_allclose(vector, raw / np.linalg.norm(raw), rtol=1e-5, atol=1e-6)

    # A question is embedded by the server too, as is (no passage batching).
    fake_ollama.requests.clear()
    passages = assistant.search(SPOKESMAN_Q, top_k=3, mode="dense")
    assert fake_ollama.inputs == [SPOKESMAN_Q]
    assert len(passages) == 3 and all(p.dense_rank is not None for p in passages)

    # Unchanged articles are not embedded again.
    fake_ollama.requests.clear()
    again = assistant.ingest([SEEDS])
    assert sorted(again.unchanged) == DOC_IDS
    assert fake_ollama.requests == []


def test_unknown_model_says_how_to_pull_it(fake_ollama, settings_factory):
    settings = settings_factory(**ollama_overrides(fake_ollama.host, model="missing-model"))
    assistant = Assistant(settings)

    with pytest.raises(BackendUnavailableError) as caught:
        assistant.ingest([SEEDS])

    assert "ollama pull missing-model" in str(caught.value)
    assert [body["model"] for body in fake_ollama.requests][:1] == ["missing-model"]
    status = assistant.status()
    assert status.chunks == 0 and status.documents == 0


def test_unknown_model_cli_message(fake_ollama, config_factory, tmp_path):
    config_factory(**ollama_overrides(fake_ollama.host, model="missing-model"))

    result = run_cli(tmp_path, "ingest", str(SEEDS / f"{DOC_IDS[0]}.txt"))

    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "ollama pull missing-model" in result.stderr


def test_nothing_listening_names_the_host(settings_factory):
    host = f"http://127.0.0.1:{free_port()}"
    assistant = Assistant(settings_factory(**ollama_overrides(host)))

    with pytest.raises(BackendUnavailableError) as caught:
        assistant.ingest([SEEDS / f"{DOC_IDS[0]}.txt"])
    assert host in str(caught.value)
    assert assistant.status().chunks == 0

    with pytest.raises(BackendUnavailableError) as caught:
        assistant.search(SPOKESMAN_Q)
    assert host in str(caught.value)


def test_nothing_listening_cli_fails_without_traceback(config_factory, tmp_path):
    host = f"http://127.0.0.1:{free_port()}"
    config_factory(**ollama_overrides(host))

    result = run_cli(tmp_path, "search", SPOKESMAN_Q)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert host in result.stderr


def test_ollamas_embeddinggemma_gets_the_models_own_prompts(settings_factory):
    """Ollama passes text through as given; EmbeddingGemma was trained with task prompts."""
    with FakeOllama({"embeddinggemma:latest"}) as server:
        embedder = make_embedder(settings_factory(**ollama_overrides(server.host, "embeddinggemma:latest")).embedding)
        embedder.embed_queries(["من هو المتحدث؟"])
        embedder.embed_passages(["عنوان\nنص الخبر"])
    assert [body["input"] for body in server.requests] == [
        ["task: search result | query: من هو المتحدث؟"], ["title: none | text: عنوان\nنص الخبر"],
    ]
    # Any other model gets the text alone.
    with FakeOllama({FAKE_MODEL}) as server:
        make_embedder(settings_factory(**ollama_overrides(server.host)).embedding).embed_queries(["سؤال"])
    assert server.requests[0]["input"] == ["سؤال"]
