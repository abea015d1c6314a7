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

from assistant.assistant import Assistant
from assistant.config import IngestSettings
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
    feed.write_bytes(gzip.compress(json.dumps({"id": "feed-1", "title": "خبر", "text": ARTICLE + " وقال المدير إن الزيارة مجانية."}, ensure_ascii=False).encode()))

    _status, rows, _choices, message = ui.upload([str(markdown), str(feed)])
    assert message.startswith("Added 2, updated 0, unchanged 0"), message
    assert {"museum", "feed-1"} <= {row[1] for row in rows}


def test_upload_size_limit_counts_megabytes_of_a_million_bytes(settings_factory, tmp_path: Path):
    """1.43 million bytes are over a 1.4 MB limit in megabytes of 10^6 bytes (as in
    ingest.max_file_mb), but under it in MiB."""
    ui = ChatUI(Assistant(settings_factory(llm={"provider": "extractive"}, ui={"max_upload_mb": 1.4})))
    big = tmp_path / "big.txt"
    big.write_text((ARTICLE + "\n") * (1_430_000 // len((ARTICLE + "\n").encode())), encoding="utf-8")
    assert 1_400_000 < big.stat().st_size < 1.4 * 1024 * 1024
    _status, _rows, _choices, message = ui.upload([str(big)])
    assert message == "Rejected big.txt: larger than 1.4 MB"
