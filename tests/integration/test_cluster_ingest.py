"""``assistant ingest --engine ray``: a real Ray cluster on loopback and a real `chroma run` server.

The Ray cluster is started by ``ray start --head --block`` (its processes end with it), or by the
ingest itself when no address is given. The ingest runs as a CLI subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.assistant import Assistant
from assistant.config import load_settings
from assistant.eval.ingest_bench import format_ingest_table, run_ingest_bench
from assistant.ingest import prepare
from assistant.models import Article

from .helpers import TEST_BATCH_CHUNKS, cli_env, free_port, ingest_until_first_batch, run_cli, write_jsonl_gz
from .test_archive_ingest import _seed_articles

pytestmark = pytest.mark.slow

RAY = Path(sys.executable).with_name("ray")
# Enough articles for five write batches of TEST_BATCH_CHUNKS (~110 chunks), so that a worker can
# be killed between them.
ARTICLES = 30
SMALL_BATCHES = {"ingest": {"batch_chunks": TEST_BATCH_CHUNKS}}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    records = _seed_articles(ARTICLES)
    return write_jsonl_gz(tmp_path_factory.mktemp("archive") / "archive.jsonl.gz", records), records


# Token authentication, as the README sets it up for a cluster: the head and every client share it.
RAY_AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@pytest.fixture(scope="module")
def ray_head():
    """``HOST:PORT`` of a two-CPU Ray head on loopback with token authentication (clients need
    RAY_AUTH), stopped at the end of the module."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
    log = open(Path(temp) / "head.log", "wb")
    head = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp],
        stdout=log, stderr=subprocess.STDOUT,
        # Loopback only (the switch the engine sets for a Ray it starts), no usage reporting.
        env={**cli_env(), **RAY_AUTH, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"},
    )
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while b"Ray runtime started" not in Path(temp, "head.log").read_bytes():
            assert head.poll() is None and time.monotonic() < deadline, Path(temp, "head.log").read_text(errors="replace")
            time.sleep(0.5)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        log.close()


def http_config(root: Path, config_factory, server, collection: str) -> Path:
    config_factory(root, store={"mode": "http", "host": server.host, "port": server.port, "collection": collection},
                   llm={"provider": "extractive"}, **SMALL_BATCHES)
    return root


def expected_chunks(records: list[dict], settings) -> set[str]:
    ids = set()
    for r in records:
        prepared = prepare(Article(doc_id=r["id"], title=r["title"], text=r["text"], source=""), settings)
        ids |= {c.chunk_id for c in prepared.chunks}
    return ids


def stored(assistant: Assistant) -> dict[str, tuple]:
    got = assistant.index.vectors.collection.get(include=["embeddings", "documents", "metadatas"])
    return {i: (d, m, np.asarray(e)) for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"])}


def test_a_ray_ingest_into_a_chroma_server_is_the_same_index_as_a_local_one(
    ray_head, chroma_server, config_factory, tmp_path, archive
):
    path, records = archive
    on_ray = http_config(tmp_path / "ray", config_factory, chroma_server, "on-ray")
    local = http_config(tmp_path / "local", config_factory, chroma_server, "local")

    without_token = run_cli(on_ray, "ingest", path, "--engine", "ray", "--ray-address", ray_head, timeout=300)
    assert without_token.returncode == 1 and "RAY_AUTH_TOKEN" in without_token.stderr.splitlines()[-1], without_token.stderr
    done = run_cli(on_ray, "ingest", path, "--engine", "ray", "--ray-address", ray_head, "--workers", "2", "--json",
                   timeout=900, env=RAY_AUTH)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["added"]) == ARTICLES and "workers" in report["stage_seconds"]
    assert run_cli(local, "ingest", path, "--json", timeout=900).returncode == 0

    a, b = (Assistant(load_settings(root / "config.yaml")) for root in (on_ray, local))
    # Chunks: the same ids, texts, metadata, and vectors within float tolerance.
    ours, theirs = stored(a), stored(b)
    assert set(ours) == set(theirs) == expected_chunks(records, a.settings)
    for chunk_id, (text, meta, vector) in ours.items():
        assert (text, meta) == theirs[chunk_id][:2], chunk_id
        np.testing.assert_allclose(vector, theirs[chunk_id][2], atol=1e-5)
    # The sentence vectors (embedding.sentences) too.
    sentences = list(ours)
    mine, other = (x.index.sentence_vectors(sentences, whole_chunks=True) for x in (a, b))
    assert set(mine) == set(other) == set(sentences)
    for chunk_id in sentences:
        assert mine[chunk_id].spans == other[chunk_id].spans
        np.testing.assert_allclose(mine[chunk_id].vectors, other[chunk_id].vectors, atol=1e-5)
    # BM25 and the hybrid ranking answer alike.
    queries = ["Who speaks for the coalition?"] + [" ".join(records[i]["text"].split()[3:7]) for i in (0, 13, ARTICLES - 2)]
    for query in queries:
        for mode in ("bm25", "hybrid"):
            ranked = [[(h.chunk_id, round(h.score, 5)) for h in x.search(query, mode=mode)] for x in (a, b)]
            assert ranked[0] == ranked[1] and (ranked[0] or query.isascii()), (query, mode)

    # A rerun adds nothing, and starts no Ray workers for it.
    again = run_cli(on_ray, "ingest", path, "--engine", "ray", "--ray-address", ray_head, "--json", timeout=900, env=RAY_AUTH)
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert (rerun["added"], rerun["chunks_written"], len(rerun["unchanged"])) == ([], 0, ARTICLES)
    assert "workers" not in rerun["stage_seconds"]
    check = run_cli(on_ray, "status", "--check", "--json")
    assert check.returncode == 0 and json.loads(check.stdout)["documents"] == ARTICLES, check.stdout + check.stderr


def descendants(pid: int) -> dict[int, bytes]:
    """The processes under ``pid`` (a Ray instance the ingest started runs there), with their
    command lines; Ray names an actor's process after its class, e.g. ray::EmbedWorker."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, bytes] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            found[child] = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        todo += children.get(child, [])
    return found


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its new parent, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def every_chunk_once(root: Path, records: list[dict]) -> int:
    """Assert that the index under ``root`` holds each of the records' chunks once, in Chroma and
    BM25 alike, every article whole; return how many chunks."""
    assistant = Assistant(load_settings(root / "config.yaml"))
    chunk_ids = [c.chunk_id for c in assistant.index.vectors.iter_chunks(with_text=False)]
    expected = expected_chunks(records, assistant.settings)
    assert len(chunk_ids) == len(set(chunk_ids)) == len(expected) and set(chunk_ids) == expected
    assert sorted(assistant.index.lexical().chunk_ids) == sorted(expected)
    assert assistant.check().ok
    return len(chunk_ids)


def assert_gone(pids: set[int], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not list(filter(alive, pids)), "Ray processes outlived the ingest that started them"


def embed_workers(pid: int) -> set[int]:
    return {child for child, cmdline in descendants(pid).items() if cmdline.startswith(b"ray::EmbedWorker")}


def listening_addresses(pids: set[int]) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp* shows them) of the TCP sockets these processes listen on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            pass
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add(fields[1].rsplit(":", 1)[0])
    return found


# 127.0.0.1, as IPv4 and as IPv4-mapped IPv6 (::ffff:127.0.0.1), and ::1.
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def test_a_killed_worker_is_retried_and_no_chunk_is_lost_or_doubled(config_factory, tmp_path, archive):
    """Without --ray-address the ingest starts Ray on loopback for the run and stops it after."""
    path, records = archive
    config_factory(tmp_path, llm={"provider": "extractive"}, **SMALL_BATCHES)
    # Once the first batch is written, the models are loaded and the next tasks are running.
    process, _ = ingest_until_first_batch(tmp_path, path, "--engine", "ray", "--workers", "2", "--json")
    seen: set[int] = set()
    try:
        workers = embed_workers(process.pid)
        assert len(workers) == 2, workers
        ray_processes = set(descendants(process.pid))
        seen |= ray_processes
        # Every server of the Ray instance the ingest started listens on loopback only.
        addresses = listening_addresses(ray_processes)
        assert addresses and addresses <= LOOPBACK, addresses
        assert process.poll() is None, "the ingest ended before a worker could be killed"
        os.kill(min(workers), signal.SIGKILL)
        restarted: set[int] = set()
        while not restarted and process.poll() is None:
            restarted = embed_workers(process.pid) - workers
            seen |= restarted
            time.sleep(0.2)
        out, err = process.communicate(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    assert restarted, "Ray did not restart the killed worker before the ingest ended"
    assert b"was restarted (its process died)" in err, err.decode(errors="replace")[-3000:]
    report = json.loads(out)
    assert sorted(report["added"]) == sorted(r["id"] for r in records)

    assert report["chunks_written"] == every_chunk_once(tmp_path, records)
    assert_gone(seen, within_s=30)  # the Ray instance ended with the ingest


def test_a_ray_ingest_killed_after_its_first_batch_resumes_and_leaves_no_ray_behind(config_factory, tmp_path, archive):
    path, records = archive
    config_factory(tmp_path, llm={"provider": "extractive"}, **SMALL_BATCHES)
    process, _ = ingest_until_first_batch(tmp_path, path, "--engine", "ray", "--workers", "2")
    ray_processes = set(descendants(process.pid))
    assert embed_workers(process.pid)
    process.kill()
    process.wait(timeout=60)

    rerun = run_cli(tmp_path, "ingest", path, "--engine", "ray", "--workers", "2", "--json", timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["unchanged"] and len(report["added"]) + len(report["replaced"]) + len(report["unchanged"]) == ARTICLES
    every_chunk_once(tmp_path, records)
    # Ray's processes share the fate of the ingest that started them (its agents notice within ~75 s).
    assert_gone(ray_processes, within_s=180)


def test_engine_ray_without_ray_installed_is_one_clear_line(config_factory, tmp_path, archive):
    path, _ = archive
    config_factory(tmp_path, llm={"provider": "extractive"})
    # Ray made unimportable for this process, as in an install without the cluster extra.
    code = "import sys; sys.modules['ray'] = None; from assistant.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "ingest", str(path), "--engine", "ray"],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e '.[cluster]'" in lines[0] and "Traceback" not in done.stderr, done.stderr
    status = run_cli(tmp_path, "status", "--json")
    assert json.loads(status.stdout)["documents"] == 0


def test_bench_ingest_reports_the_ray_engine_next_to_the_local_one(settings_factory, tmp_path, archive):
    path, _ = archive
    result = run_ingest_bench(settings_factory(tmp_path), path, limit=8, ceiling_share=1.0, ray_workers=(1,))
    [run] = result["engines"]
    assert (run["engine"], run["workers"], run["articles"], run["chunks"]) == ("ray", 1, result["articles"], result["chunks"])
    assert result["articles"] == 8 and run["startup_seconds"] > 0 and run["words_per_s"] > 0
    # vs_local comes from the unrounded rates; the report's rates are rounded to 0.1 words/s.
    assert run["vs_local"] == pytest.approx(run["words_per_s"] / result["words_per_s"], abs=2e-3)
    assert "ray, 1 worker" in format_ingest_table(result)


def test_a_ray_address_nobody_answers_at_is_one_line_before_anything_is_dropped(config_factory, tmp_path, seeds_dir):
    config_factory(tmp_path, llm={"provider": "extractive"})
    assert run_cli(tmp_path, "ingest", seeds_dir).returncode == 0
    nobody = f"127.0.0.1:{free_port()}"
    done = run_cli(tmp_path, "ingest", seeds_dir, "--rebuild", "--engine", "ray", "--ray-address", nobody, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert nobody in line and "ray start --head" in line
    status = run_cli(tmp_path, "status", "--json")
    assert json.loads(status.stdout)["documents"] == len(list(seeds_dir.glob("*.txt")))
