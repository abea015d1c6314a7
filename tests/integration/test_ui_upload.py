"""The web UI's upload handler and file picker accept what ingest accepts, with one meaning of MB.

The handler is called directly on a real Assistant (real Chroma, real embedding model); the
browser tests drive the same handler through the page.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from gradio.routes import App

from assistant.assistant import Assistant
from assistant.config import IngestSettings, megabytes
from assistant.ui.app import ChatUI, build_app

pytestmark = pytest.mark.slow

ARTICLE = "افتتح متحف الزعفران في مدينة حلب أبوابه أمام الزوار بعد ترميم استمر ثلاث سنوات، وعرض مقتنيات أثرية نادرة."


def test_the_file_picker_offers_every_ingest_extension(settings_factory):
    settings = settings_factory(llm={"provider": "extractive"})
    app = build_app(Assistant(settings))
    pickers = [b for b in app.blocks.values() if isinstance(b, gr.File)]
    assert len(pickers) == 1
    assert pickers[0].file_types == IngestSettings().extensions
    assert {".markdown", ".jsonl.gz"} <= set(pickers[0].file_types)


def test_markdown_and_gzipped_json_lines_uploads_are_indexed(settings_factory, tmp_path: Path):
    ui = ChatUI(Assistant(settings_factory(llm={"provider": "extractive"})))
    markdown = tmp_path / "museum.markdown"
    markdown.write_text(f"# متحف الزعفران\n\n{ARTICLE}\n", encoding="utf-8")
    feed = tmp_path / "feed.jsonl.gz"
    feed.write_bytes(gzip.compress(json.dumps({"id": "feed-1", "title": "خبر", "source": "Museum News", "text": ARTICLE + " وقال المدير إن الزيارة مجانية."}, ensure_ascii=False).encode()))

    _status, rows, _choices, message, outlets, timeline_outlets = ui.upload([str(markdown), str(feed)])
    assert message.startswith("Added 2, updated 0, unchanged 0"), message
    assert {"museum", "feed-1"} <= {row[1] for row in rows}
    assert {row[1]: row[2] for row in rows}["feed-1"] == "Museum News"
    assert outlets["choices"] == timeline_outlets["choices"] == ["Museum News"]  # the chat's and the timeline's outlet filters offer it


def test_upload_size_limit_counts_megabytes_of_a_million_bytes(settings_factory, tmp_path: Path):
    """1.43 million bytes are over a 1.4 MB limit in megabytes of 10^6 bytes (as in
    ingest.max_file_mb), but under it in MiB."""
    ui = ChatUI(Assistant(settings_factory(llm={"provider": "extractive"}, ui={"max_upload_mb": 1.4})))
    big = tmp_path / "big.txt"
    big.write_text((ARTICLE + "\n") * (1_430_000 // len((ARTICLE + "\n").encode())), encoding="utf-8")
    assert 1_400_000 < big.stat().st_size < 1.4 * 1024 * 1024
    _status, _rows, _choices, message, *_outlets = ui.upload([str(big)])
    assert message == "Rejected big.txt: larger than 1.4 MB"


def test_upload_file_name_with_path_traversal_stays_in_the_upload_folder(settings_factory, tmp_path: Path, monkeypatch):
    """A browser may send any file name. Through Gradio's own upload route and then the handler:
    nothing is written outside the upload folder and the store, and the doc id is a plain name."""
    uploads = tmp_path / "a" / "b" / "uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    assistant = Assistant(settings_factory(llm={"provider": "extractive"}))
    app = build_app(assistant)
    app.max_file_size = megabytes(assistant.settings.ui.max_upload_mb)  # what launch() sets
    before = {p for p in tmp_path.rglob("*")}
    names = ["../../x.txt", "..\\..\\y.txt", "/etc/z.txt"]
    texts = [ARTICLE, ARTICLE + " وقال المدير إن الدخول مجاني.", ARTICLE + " ويفتح المتحف يوميا."]

    with TestClient(App.create_app(app)) as client:
        response = client.post("/gradio_api/upload", files=[("files", (n, t.encode())) for n, t in zip(names, texts)])
    assert response.status_code == 200, response.text
    saved = [Path(p) for p in response.json()]
    _status, rows, _choices, message, *_outlets = ChatUI(assistant).upload([str(p) for p in saved])

    assert all(p.resolve().is_relative_to(uploads.resolve()) for p in saved), saved
    store = {tmp_path / "chroma", tmp_path / "lexical"}
    written = {p for p in tmp_path.rglob("*") if p not in before}
    # New: files under the upload folder or the store, and the folders leading to the upload folder.
    outside = [
        p for p in written
        if not any(p.is_relative_to(s) for s in (uploads, *store)) and not (p.is_dir() and uploads.is_relative_to(p))
    ]
    assert outside == [], outside
    assert not Path("/etc/z.txt").exists()
    assert message.startswith("Added 3, updated 0, unchanged 0"), message
    doc_ids = sorted(row[1] for row in rows)
    assert doc_ids[-2:] == ["x", "z"] and doc_ids[0].endswith("y"), doc_ids  # Gradio keeps "..\\..\\y" as "....y"
    assert not any("/" in d or "\\" in d or d in (".", "..") for d in doc_ids), doc_ids
