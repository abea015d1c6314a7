"""Bad files through a real ingest (real files on disk, real Chroma, the real embedding model).

One batch holds every kind of unusable input next to good articles in every encoding: each bad
one is reported with its reason, never silently dropped, and the rest of the batch is indexed.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.config import load_settings
from assistant.errors import InputError
from assistant.ingest import check_paths
from assistant.models import IngestReport
from tests.conftest import write_config

from .helpers import run_cli

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
EXTENSIONS = [".txt", ".md", ".markdown", ".html", ".htm", ".jsonl", ".jsonl.gz"]


def article(n: int) -> str:
    """A distinct Arabic article: a title line and two sentences naming ``n``."""
    return (
        f"خبر رقم {n} عن افتتاح مكتبة عامة في مدينة حماة\n"
        f"افتتحت بلدية حماة المكتبة العامة رقم {n} في حي الحاضر بعد ترميم استمر عامين كاملين.\n"
        f"وقال مدير المكتبة إن المكتبة رقم {n} تضم آلاف الكتب المصورة للأطفال والكبار.\n"
    )


def body(n: int) -> str:
    return article(n).splitlines()[1]


BIG = article(8) * 100  # ~25 kB: over the 0.02 MB limit the batch sets


HTML = f"""<html><head><title>صفحة</title>
<style>body::after {{ content: "STYLE_TEXT" }}</style>
<script>var SCRIPT_TEXT = "tracking";</script></head>
<body><h1>خبر رقم 9 عن افتتاح مكتبة عامة في مدينة حماة</h1>
<p>{body(9)}</p><p>قبل النص <script>document.write("INLINE_SCRIPT")</script>بعد النص.</p></body></html>"""


@dataclass
class Batch:
    root: Path
    folder: Path
    assistant: Assistant
    report: IngestReport

    def skipped(self, name: str) -> tuple[str, bool]:
        """(reason, error) of the one skipped entry whose path ends with ``name``."""
        found = [
            (s.reason, s.error) for s in self.report.skipped if s.path.endswith(name)
        ]
        assert len(found) == 1, f"{name}: {found} in {self.report.skipped}"
        return found[0]

    def text(self, doc_id: str) -> str:
        stored = self.assistant.article(doc_id)
        assert stored is not None, f"{doc_id} is not in the index: {self.report}"
        return f"{stored.title}\n{stored.text}"


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    root = tmp_path_factory.mktemp("bad-files")
    folder = root / "batch"
    folder.mkdir()
    (folder / "good.txt").write_text(article(1), encoding="utf-8")
    (folder / "legacy.txt").write_bytes(article(2).encode("cp1256"))
    (folder / "utf16-bom.txt").write_bytes(article(3).encode("utf-16"))
    (folder / "utf16le-no-bom.txt").write_bytes(article(4).encode("utf-16-le"))
    (folder / "utf16be-no-bom.txt").write_bytes(article(5).encode("utf-16-be"))
    one_bad_byte = bytearray(article(6).encode("utf-8"))
    # "ح" of the title: 0xD8 0xAD becomes 0xFF 0xAD.
    one_bad_byte[one_bad_byte.index("حماة".encode())] = 0xFF
    (folder / "broken-utf8.txt").write_bytes(bytes(one_bad_byte))
    ruined = bytearray((article(7) * 20).encode("utf-8"))
    for i in range(0, len(ruined), 100):
        ruined[i] = 0xFF
    (folder / "ruined-utf8.txt").write_bytes(bytes(ruined))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 16)
    (folder / "big.txt").write_text(BIG, encoding="utf-8")
    (folder / "page.html").write_text(HTML, encoding="utf-8")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    lines = [
        json.dumps({"id": "feed-1", "text": article(10)}, ensure_ascii=False),
        '{"id": "feed-2", "text": "نص مقطوع',
        json.dumps({"id": "feed-3", "text": article(11)}, ensure_ascii=False),
    ]
    (folder / "feed.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "z-copy-of-good.txt").write_text(article(1), encoding="utf-8")
    outside = root / "outside"
    (outside / "more").mkdir(parents=True)
    (outside / "linked-file.txt").write_text(article(12), encoding="utf-8")
    (outside / "more" / "in-linked-folder.txt").write_text(
        article(13), encoding="utf-8"
    )
    (folder / "linked.txt").symlink_to(outside / "linked-file.txt")
    (folder / "linked-folder").symlink_to(outside / "more", target_is_directory=True)
    (folder / "loop").symlink_to(".", target_is_directory=True)
    (folder / "dead-link.txt").symlink_to(root / "gone.txt")

    assistant = Assistant(
        load_settings(write_config(root, ingest={"max_file_mb": 0.02}))
    )
    report = assistant.ingest([folder, root / "missing.txt"])
    return Batch(root, folder, assistant, report)


# --------------------------------------------------------------------------- what is indexed
@pytest.mark.slow
@pytest.mark.parametrize(
    ("doc_id", "n"),
    [
        ("good", 1),
        ("legacy", 2),
        ("utf16-bom", 3),
        ("utf16le-no-bom", 4),
        ("utf16be-no-bom", 5),
        ("page", 9),
        ("feed-1", 10),
        ("feed-3", 11),
        ("linked", 12),
        ("in-linked-folder", 13),
    ],
)
def test_good_articles_in_every_encoding_and_place_are_indexed(
    batch: Batch, doc_id: str, n: int
) -> None:
    assert body(n) in batch.text(doc_id)


@pytest.mark.slow
def test_utf8_with_one_bad_byte_is_indexed_without_mojibake(batch: Batch) -> None:
    text = batch.text("broken-utf8")
    # One letter lost (its two bytes replaced), the rest intact.
    assert "مدينة \ufffd\ufffdماة" in text
    assert body(6) in text and article(6).splitlines()[2] in text
    assert "ط§" not in text and "ظ…" not in text, "UTF-8 Arabic read as Windows-1256"


@pytest.mark.slow
def test_html_script_and_style_text_is_not_indexed(batch: Batch) -> None:
    indexed = [c.text for c in batch.assistant.index.vectors.chunks_of(["page"])]
    assert indexed and body(9) in "\n".join(indexed)
    for gone in (
        "SCRIPT_TEXT",
        "STYLE_TEXT",
        "INLINE_SCRIPT",
        "document.write",
        "tracking",
    ):
        assert not any(gone in chunk for chunk in indexed), gone
    assert "قبل النص بعد النص." in batch.text("page")


# --------------------------------------------------------------------------- what is reported
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "words", "error"),
    [
        ("empty.txt", ["empty file"], True),
        ("binary.txt", ["binary"], True),
        (
            "ruined-utf8.txt",
            ["invalid UTF-8 at byte 0 ", "save the file as UTF-8"],
            True,
        ),
        (
            "big.txt",
            [
                f"file is {len(BIG.encode()) / 1e6:.3g} MB, over the ingest.max_file_mb limit of 0.02 MB"
            ],
            True,
        ),
        ("photo.png", ["unsupported file type"], False),
        (
            "feed.jsonl:2",
            ["invalid JSON (Unterminated string starting at column 26)"],
            True,
        ),
        ("missing.txt", ["no such file or folder"], True),
        ("dead-link.txt", ["broken symbolic link"], True),
        ("loop", ["symbolic link loop"], False),
        ("z-copy-of-good.txt", ["same title and text as good (", "good.txt)"], False),
    ],
)
def test_each_bad_input_is_reported_with_its_reason(
    batch: Batch, name: str, words: list[str], error: bool
) -> None:
    reason, is_error = batch.skipped(name)
    for word in words:
        assert word in reason, reason
    assert is_error is error


@pytest.mark.slow
def test_the_malformed_jsonl_line_is_reported_with_its_line_number(
    batch: Batch,
) -> None:
    feed = batch.folder / "feed.jsonl"
    assert [s.path for s in batch.report.skipped if s.path.startswith(str(feed))] == [
        f"{feed}:2"
    ]
    assert {"feed-1", "feed-3"} <= set(
        batch.report.added
    ) and "feed-2" not in batch.report.added


@pytest.mark.slow
def test_nothing_is_dropped_silently(batch: Batch) -> None:
    """Every entry of the folder is indexed (by its stem) or reported, and the copy is not indexed."""
    indexed = {d.doc_id for d in batch.assistant.documents()}
    reported = {Path(s.path).name for s in batch.report.skipped}
    # Articles not named after their file: the feed's records, the file in the linked folder.
    accounted = indexed | reported | {"feed", "linked-folder"}
    for entry in batch.folder.iterdir():
        assert entry.name.split(".")[0] in accounted or entry.name in accounted, (
            entry.name
        )
    assert "z-copy-of-good" not in indexed
    assert indexed == {
        "good",
        "legacy",
        "utf16-bom",
        "utf16le-no-bom",
        "utf16be-no-bom",
        "broken-utf8",
        "page",
        "feed-1",
        "feed-3",
        "linked",
        "in-linked-folder",
    }
    assert batch.assistant.status().incomplete_documents == []


# --------------------------------------------------------------------------- the same article twice
@pytest.mark.slow
def test_same_article_under_another_name_is_skipped_across_runs_and_exit_code_stays_0(
    tmp_path: Path,
) -> None:
    write_config(tmp_path)
    (tmp_path / "a.txt").write_text(article(20), encoding="utf-8")
    # A Windows copy: other line ends, same words.
    (tmp_path / "b.txt").write_text(article(20).replace("\n", "\r\n"), encoding="utf-8")
    (tmp_path / "c.txt").write_text(article(20), encoding="utf-8")

    first = run_cli(tmp_path, "ingest", "a.txt", "b.txt")
    # A copy is not an error: its article is indexed.
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Added 1, updated 0, unchanged 0"), first.stdout
    assert "Skipped b.txt: same title and text as a (a.txt)" in first.stderr

    # Another run, the copy read first: it is found in the index (not among this run's articles);
    # the article itself, same doc id, is unchanged.
    second = run_cli(tmp_path, "ingest", "c.txt", "a.txt", "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["unchanged"] == ["a"] and report["added"] == []
    assert report["skipped"] == [
        {
            "path": "c.txt",
            "reason": "same title and text as a (already in the index)",
            "error": False,
        }
    ]


@pytest.mark.slow
def test_an_indexed_article_edited_into_a_copy_of_another_is_still_updated(
    settings_factory, tmp_path: Path
) -> None:
    """Only new doc ids are skipped as copies: skipping an edit would leave the old text indexed."""
    assistant = Assistant(settings_factory())
    (tmp_path / "a.txt").write_text(article(21), encoding="utf-8")
    (tmp_path / "b.txt").write_text(article(22), encoding="utf-8")
    assert sorted(assistant.ingest([tmp_path / "a.txt", tmp_path / "b.txt"]).added) == [
        "a",
        "b",
    ]
    (tmp_path / "b.txt").write_text(article(21), encoding="utf-8")

    report = assistant.ingest([tmp_path / "b.txt"])

    assert report.replaced == ["b"] and report.skipped == []
    assert body(21) in assistant.article("b").text


# --------------------------------------------------------------------------- nothing to ingest at all
@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda root: [root / "missing.txt"], ["missing.txt: no such file or folder"]),
        (lambda root: [root / "empty-folder"], ["no article files in"]),
        (lambda root: [root / "pictures"], ["photo.png: unsupported file type"]),
    ],
    ids=["missing", "empty-folder", "no-articles"],
)
def test_check_paths_refuses_a_batch_with_nothing_to_read(
    tmp_path: Path, make, words: list[str]
) -> None:
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError) as caught:
        check_paths(make(tmp_path), EXTENSIONS)
    message = str(caught.value)
    assert (
        message.startswith("nothing to ingest (")
        and "the index was not changed" in message
    )
    for word in words:
        assert word in message
    assert "\n" not in message


def test_check_paths_accepts_a_batch_with_one_readable_file(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text(article(1), encoding="utf-8")
    # No error: the missing one is reported by the ingest, and the rest indexed.
    check_paths([tmp_path / "missing.txt", tmp_path / "good.txt"], EXTENSIONS)


@pytest.mark.slow
def test_rebuild_with_only_bad_paths_keeps_the_index(
    seeded_settings_factory, tmp_path: Path
) -> None:
    """`ingest --rebuild BADPATH` used to drop the index before finding there was nothing to read."""
    seeded_settings_factory()
    before = run_cli(tmp_path, "status", "--json")
    assert json.loads(before.stdout)["documents"] == 5, before.stderr

    result = run_cli(tmp_path, "ingest", "--rebuild", "no-such-folder")

    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "nothing to ingest (" in result.stderr and "no-such-folder" in result.stderr
    after = run_cli(tmp_path, "status", "--json")
    assert json.loads(after.stdout)["documents"] == 5, "the index was dropped"


def test_utf16_and_windows_1256_fixtures_are_what_they_claim() -> None:
    """Controls for the batch: the no-BOM files really lack a BOM, the legacy one is not UTF-8."""
    assert (
        not article(4)
        .encode("utf-16-le")
        .startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    )
    assert b"\x00" in article(4).encode("utf-16-le")
    with pytest.raises(UnicodeDecodeError):
        article(2).encode("cp1256").decode("utf-8")
