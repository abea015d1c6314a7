"""store.mode: http against a real `chroma run` server subprocess on a free loopback port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.errors import AssistantError, BackendUnavailableError

from .helpers import ChromaServer, free_port, run_cli

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
DOC_IDS = sorted(p.stem for p in SEEDS.glob("*.txt"))
SPOKESMAN_Q = "من هو المتحدث الرسمي باسم التحالف الدولي؟"


def http_store(host: str, port: int, collection: str) -> dict:
    return {"store": {"mode": "http", "host": host, "port": port, "collection": collection}}


def ids_by_doc(assistant: Assistant) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    for stored in assistant.index.vectors.iter_chunks(with_text=False):
        ids.setdefault(stored.meta["doc_id"], []).append(stored.chunk_id)
    return {d: sorted(v) for d, v in ids.items()}


@pytest.mark.slow
def test_ingest_search_remove_reingest_over_http(chroma_server, settings_factory, seeded_index, tmp_path):
    settings = settings_factory(**http_store(chroma_server.host, chroma_server.port, "lifecycle"))
    assistant = Assistant(settings)

    report = assistant.ingest([SEEDS])

    assert sorted(report.added) == DOC_IDS and report.errors == []
    status = assistant.status()
    assert status.store == f"chroma server http://{chroma_server.host}:{chroma_server.port}"
    assert status.documents == 5 and status.chunks == report.chunks_written
    assert status.incomplete_documents == []
    assert not (tmp_path / "chroma").exists(), "http mode must not create a local store"
    # Same chunking as the on-disk store: the chunk ids are deterministic.
    assert ids_by_doc(assistant) == seeded_index.chunk_ids

    passages = assistant.search(SPOKESMAN_Q, top_k=3)
    assert any("كيغينز" in p.text or "كاغينز" in p.text for p in passages)
    assert any(p.bm25_rank is not None for p in passages)

    again = assistant.ingest([SEEDS])
    assert again.added == [] and again.replaced == [] and sorted(again.unchanged) == DOC_IDS
    assert again.chunks_written == 0
    assert assistant.status().chunks == status.chunks

    doc_id = "001_85a3b68c139dd4d8"
    removed = assistant.remove([doc_id])
    assert removed == {doc_id: len(seeded_index.chunk_ids[doc_id])}
    assert assistant.index.vectors.chunks_of([doc_id]) == []
    assert not set(seeded_index.chunk_ids[doc_id]) & set(assistant.index.lexical().chunk_ids)
    assert all(p.doc_id != doc_id for p in assistant.search("وكالة هاوار تويتر", mode="bm25"))
    assert assistant.status().documents == 4

    back = assistant.ingest([SEEDS])
    assert back.added == [doc_id] and sorted(back.unchanged) == sorted(d for d in DOC_IDS if d != doc_id)
    assert ids_by_doc(assistant) == seeded_index.chunk_ids
    assert doc_id in {p.doc_id for p in assistant.search("وكالة هاوار تويتر", mode="bm25")}

    # A second client (another process would be the same) sees the same collection.
    other = Assistant(settings_factory(**http_store(chroma_server.host, chroma_server.port, "lifecycle")))
    assert other.status().documents == 5
    assert other.ingest([SEEDS]).chunks_written == 0


@pytest.mark.slow
def test_cli_over_http(chroma_server, config_factory, tmp_path):
    config_factory(**http_store(chroma_server.host, chroma_server.port, "cli-collection"))
    one = SEEDS / f"{DOC_IDS[3]}.txt"

    ingest = run_cli(tmp_path, "ingest", str(one))
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stdout.startswith("Added 1, updated 0, unchanged 0")

    status = json.loads(run_cli(tmp_path, "status", "--json").stdout)
    assert status["documents"] == 1
    assert status["store"] == f"chroma server http://{chroma_server.host}:{chroma_server.port}"

    search = run_cli(tmp_path, "search", SPOKESMAN_Q, "--json", "--top-k", "2")
    assert search.returncode == 0, search.stderr
    assert [p["doc_id"] for p in json.loads(search.stdout)] == [DOC_IDS[3]] * 2

    again = run_cli(tmp_path, "ingest", str(one))
    assert again.returncode == 0 and again.stdout.startswith("Added 0, updated 0, unchanged 1"), again.stdout

    remove = run_cli(tmp_path, "remove", DOC_IDS[3])
    assert remove.returncode == 0, remove.stderr
    assert json.loads(run_cli(tmp_path, "status", "--json").stdout)["documents"] == 0


def test_nothing_listening_is_a_clear_error(settings_factory):
    port = free_port()
    settings = settings_factory(**http_store("127.0.0.1", port, "arabic-news"))

    with pytest.raises(BackendUnavailableError) as caught:
        Assistant(settings).status()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert isinstance(caught.value, AssistantError)


@pytest.mark.parametrize("command", [["status"], ["search", "سؤال"], ["remove", "x"], ["ingest", "SEEDS"]])
def test_nothing_listening_cli_fails_without_traceback(config_factory, tmp_path, command):
    port = free_port()
    config_factory(**http_store("127.0.0.1", port, "arabic-news"))
    command = [str(SEEDS) if c == "SEEDS" else c for c in command]

    result = run_cli(tmp_path, *command)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "chroma run" in result.stderr  # says how to start it


@pytest.mark.slow
def test_server_lost_after_connecting_is_a_clear_error(settings_factory, tmp_path):
    server = ChromaServer(tmp_path / "data", tmp_path / "chroma.log")
    try:
        server.wait_ready()
        assistant = Assistant(settings_factory(**http_store(server.host, server.port, "lost")))
        if assistant.status().documents != 0:
            pytest.fail("precondition failed: the new collection is empty")
    finally:
        server.stop()

    for operation in (assistant.status, lambda: assistant.search("مايلز", mode="bm25"), lambda: assistant.remove(["x"])):
        with pytest.raises(Exception) as caught:
            operation()
        assert isinstance(caught.value, BackendUnavailableError), f"{type(caught.value).__name__}: {caught.value}"
        assert f"{server.host}:{server.port}" in str(caught.value)
