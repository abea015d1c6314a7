"""``assistant bench known-item`` on a small archive of the seeds' paragraphs: every (outlet, month)
has one article, so restricted to its outlet and month a title can only find its own article."""

from __future__ import annotations

import json

import pytest

from assistant.config import load_settings
from assistant.eval.known_item import run_known_item_bench
from tests.conftest import SEEDS, write_config

from .helpers import run_cli, write_jsonl_gz

pytestmark = pytest.mark.slow

OUTLETS = ["Enab Baladi", "Syria TV", "Asharq Al-Awsat"]


def archive_records() -> list[dict]:
    paragraphs = []
    for path in sorted(SEEDS.glob("*.txt")):
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines()[1:] if len(ln) > 80]
        paragraphs += [lines[i : i + 2] for i in range(0, len(lines) - 1, 2)]
    records = []
    for n, body in enumerate(paragraphs[:9]):
        title = " ".join(body[0].split()[:8])  # the article's opening words, as a headline
        month = n // len(OUTLETS) + 1
        records.append({"id": f"k{n}", "title": title, "text": "\n".join(body), "source": OUTLETS[n % len(OUTLETS)],
                        "time": f"Tue, {10 + n} {['Jan', 'Feb', 'Mar'][month - 1]} 2020 09:00:00 +0300"})
    return records


def test_titles_find_their_article_within_their_outlet_and_month(tmp_path):
    data = write_jsonl_gz(tmp_path / "archive.jsonl.gz", archive_records())
    settings = load_settings(write_config(tmp_path, llm={"provider": "extractive"}))
    result = run_known_item_bench(settings, data, limit=9, every=1, questions=9, store=tmp_path / "store")
    assert result["sample"] == {"every": 1, "limit": 9, "articles": 9, "indexed": 9, "outlets": 3, "dated_share": 1.0}
    assert result["questions"] == 9
    assert result["with_filter"]["hit_at_1"] == 1.0  # the only article of its outlet and month
    assert result["passages_outside_the_filter"] == 0
    assert 0 < result["without_filter"]["hit_at_1"] <= 1.0
    assert result["ingest"]["added"] == 9

    # From the command line, on the kept store: nothing is embedded again.
    out = run_cli(tmp_path, "bench", "known-item", "--data", data, "--limit", "9", "--every", "1", "--questions", "9",
                  "--store", tmp_path / "store", "--json", tmp_path / "r.json")
    assert out.returncode == 0, out.stderr
    again = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert (again["ingest"]["added"], again["ingest"]["unchanged"]) == (0, 9)
    assert again["with_filter"]["hit_at_1"] == 1.0
    assert "| outlet and month | 1.000 |" in out.stdout
