"""Security: a doc id is a key in the index, never a path, and neither a user's question nor a
secret (the UI password, an ``Authorization`` header) reaches the logs at the default log level.

Answers come from the ``extractive`` backend (a real backend, no model): what is checked is what
the app logs, not what a model says.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

# Before gradio is imported: it must never call home from a test.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from assistant.assistant import Assistant
from assistant.config import load_settings
from tests.ui.helpers import running_ui, wait_http

from .helpers import cli_env, free_port

pytestmark = pytest.mark.slow  # the embedding model, a served app

ASSISTANT = Path(sys.executable).with_name("assistant")
# Doc ids shaped like paths out of the store: relative, absolute, Windows-style, encoded.
PATH_LIKE_IDS = [
    "../x",
    "../../x",
    "../../etc/passwd",
    "/etc/passwd",
    "chroma/../x",
    "..\\x",
    "%2e%2e/x",
    "",
]


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (but the top-level folders in ``skip``): (size, mtime in ns)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


# --------------------------------------------------------------------------- doc ids are not paths
def test_path_like_doc_ids_find_nothing_and_touch_no_file(
    seeded_settings_factory, tmp_path
):
    settings = seeded_settings_factory(llm={"provider": "extractive"})
    assistant = Assistant(settings)
    store = settings.resolve(settings.store.path)
    # So "../x" from the store would be the sentinel below.
    assert store.parent == tmp_path
    sentinel = tmp_path / "x"
    sentinel.write_text("must survive", encoding="utf-8")
    before_docs = [d.doc_id for d in assistant.documents()]
    # The store's own folders are left out: Chroma may touch its files on any read.
    before = tree(tmp_path, skip=("chroma", "lexical"))
    passwd = Path("/etc/passwd").stat()

    for doc_id in PATH_LIKE_IDS:
        assert assistant.article(doc_id) is None, doc_id
    assert assistant.remove(PATH_LIKE_IDS) == {}

    assert sentinel.read_text(encoding="utf-8") == "must survive"
    assert tree(tmp_path, skip=("chroma", "lexical")) == before
    assert Path("/etc/passwd").stat().st_mtime_ns == passwd.st_mtime_ns
    assert [d.doc_id for d in assistant.documents()] == before_docs


def test_a_path_like_doc_id_is_only_a_key(seeded_settings_factory, tmp_path):
    """An archive record may carry any id: it is stored and removed as a key, and creates, reads or
    deletes no file of that name."""
    settings = seeded_settings_factory(llm={"provider": "extractive"})
    assistant = Assistant(settings)
    doc_id = "../../escaped"
    text = "أعلنت بلدية مدينة صلالة افتتاح حديقة جديدة للأطفال قرب الميناء، وقالت إنها تفتح كل يوم."
    archive = tmp_path / "incoming" / "archive.jsonl"
    archive.parent.mkdir()
    archive.write_text(
        json.dumps(
            {"id": doc_id, "title": "حديقة صلالة", "text": text}, ensure_ascii=False
        )
        + "\n",
        encoding="utf-8",
    )
    outside = (archive.parent / doc_id).resolve()  # where the id would point as a path

    report = assistant.ingest([archive])

    assert report.added == [doc_id], report
    article = assistant.article(doc_id)
    assert article is not None and article.doc_id == doc_id and text in article.text
    assert not any(p.name.startswith("escaped") for p in tmp_path.parent.rglob("*")), (
        outside
    )
    assert assistant.remove([doc_id]) and assistant.article(doc_id) is None
    assert len(assistant.documents()) == 5  # the seeds, untouched


# --------------------------------------------------------------------------- nothing secret in logs
def secrets() -> dict[str, str]:
    """Unique markers: a question, a password and a bearer token no log could contain by chance."""
    tag = uuid.uuid4().hex[:12]
    return {
        "question": f"Who is the coalition spokesman? qmark{tag}",
        "password": f"pw-{tag}-Secret",
        "token": f"tok{tag}",
    }


def leaks(text: str, values: dict[str, str]) -> list[str]:
    """The secrets (and the question's marker word) that occur in ``text``."""
    probes = [*values.values(), values["question"].split()[-1]]
    return [p for p in probes if p in text]


def test_served_app_logs_no_question_password_or_authorization_header(
    seeded_settings_factory, monkeypatch, caplog, capfd, tmp_path
):
    """The app served in this process, with a login from the environment: questions (answered, too
    long, empty) asked through ``/ask`` by a logged-in client that also sends an ``Authorization``
    header. Neither logging at the default level nor the server's stdout/stderr shows any of them."""
    values = secrets()
    seeded_settings_factory(llm={"provider": "extractive"}, ui={"port": free_port()})
    monkeypatch.setenv("ASSISTANT_UI__USERNAME", "reader")
    monkeypatch.setenv("ASSISTANT_UI__PASSWORD", values["password"])
    # The login comes from the environment.
    settings = load_settings(tmp_path / "config.yaml")
    assert settings.ui.password.get_secret_value() == values["password"]

    with running_ui(settings) as server:
        client = Client(
            server.url,
            auth=("reader", values["password"]),
            headers={"Authorization": f"Bearer {values['token']}"},
            verbose=False,
        )
        answer = client.predict(values["question"], None, api_name="/ask")
        # It was answered: the question went all the way through.
        assert answer["citations"], answer
        with pytest.raises(AppError, match="characters long"):
            client.predict(values["question"] * 200, None, api_name="/ask")
        with pytest.raises(AppError, match="the question is empty"):
            client.predict("   ", None, api_name="/ask")
        with pytest.raises(
            ValueError, match="Could not login"
        ):  # a wrong password is refused
            Client(server.url, auth=("reader", "wrong"), verbose=False)
        # Gradio's file route does not serve files outside its own folders (the config, the store).
        for path in (tmp_path / "config.yaml", Path("/etc/passwd")):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(
                    f"{server.url}gradio_api/file={path}", timeout=30
                )
            assert refused.value.code in (401, 403, 404), (path, refused.value.code)

    captured = capfd.readouterr()
    for name, text in {
        "logging": caplog.text,
        "stdout": captured.out,
        "stderr": captured.err,
    }.items():
        assert leaks(text, values) == [], (name, text[-3000:])
    # User errors (too long, empty) print no traceback either.
    assert "Traceback" not in captured.err, captured.err[-3000:]
    # What was checked is logging at its default level.
    assert logging.getLogger().getEffectiveLevel() == logging.WARNING


def test_serve_and_cli_write_no_question_or_password(seeded_settings_factory, tmp_path):
    """``assistant serve`` and ``assistant ask`` as subprocesses with the password in their
    environment: their output (stderr, and the server's stdout) never shows it or the question."""
    values = secrets()
    port = free_port()
    seeded_settings_factory(llm={"provider": "extractive"})
    env = cli_env() | {
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "ASSISTANT_UI__USERNAME": "reader",
        "ASSISTANT_UI__PASSWORD": values["password"],
    }
    log = tmp_path / "serve.log"
    with log.open(
        "wb"
    ) as out:  # a file, not a pipe: a chatty server must never block on it
        server = subprocess.Popen(
            [
                str(ASSISTANT),
                "--config",
                str(tmp_path / "config.yaml"),
                "serve",
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, deadline_s=300, process=server)
        client = Client(
            url,
            auth=("reader", values["password"]),
            headers={"Authorization": f"Bearer {values['token']}"},
            verbose=False,
        )
        assert client.predict(values["question"], None, api_name="/ask")["citations"]
        with pytest.raises(AppError):
            client.predict(" ", None, api_name="/ask")
    finally:
        server.terminate()
        server.wait(timeout=60)
    served = log.read_text(encoding="utf-8", errors="replace")
    # The log is the server's.
    assert f"Serving on http://127.0.0.1:{port}" in served, served
    assert leaks(served, values) == [], served[-3000:]

    asked = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ask", values["question"]],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert asked.returncode == 0, asked.stderr
    # Answered with citations (the answer itself goes to stdout); which passage numbers it cites
    # depends on the random marker word in the question.
    assert re.search(r"\[\d+\]", asked.stdout) and "\nSources:\n" in asked.stdout, asked.stdout
    assert leaks(asked.stderr, values) == [], asked.stderr
    assert values["password"] not in asked.stdout
