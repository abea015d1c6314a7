"""assistant.read: files and folders → Articles, with every unusable input reported."""

from __future__ import annotations

import codecs
import gzip
import json
from pathlib import Path

import pytest

from assistant.models import Article
from assistant.read import (
    FileRead,
    Opened,
    Skipped,
    UnreadableFile,
    decode,
    expand_paths,
    html_to_text,
    read_file,
    read_paths,
)

MAX = 50_000_000
ARABIC = "قال المتحدث باسم الحكومة إن الاجتماع سيعقد غدا في دمشق.\nوأضاف أن الوفد سيصل صباحا."


def _one(path: Path, extensions: list[str], max_bytes: int = MAX) -> Article:
    result = read_file(path, extensions, max_bytes)
    assert isinstance(result, FileRead)
    assert result.skipped == []
    assert len(result.articles) == 1
    return result.articles[0]


def _outcomes(paths, extensions, max_bytes: int = MAX) -> tuple[list[FileRead], list[Skipped]]:
    """(files opened, with their articles and skipped records; files that could not be read)."""
    reads: list[FileRead] = []
    skips: list[Skipped] = []
    for item in read_paths(paths, extensions, max_bytes):
        if isinstance(item, Opened):
            reads.append(FileRead(item.path, [], []))
        elif isinstance(item, Article):
            reads[-1].articles.append(item)
        elif reads and reads[-1].path == Path(item.path.rsplit(":", 1)[0]) and item.path != str(reads[-1].path):
            reads[-1].skipped.append(item)  # a record inside the open file
        else:
            skips.append(item)
    return reads, skips


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda s: s.encode("utf-8"), id="utf-8"),
        pytest.param(lambda s: codecs.BOM_UTF8 + s.encode("utf-8"), id="utf-8-bom"),
        pytest.param(lambda s: s.encode("utf-16"), id="utf-16-bom-native"),
        pytest.param(lambda s: codecs.BOM_UTF16_LE + s.encode("utf-16-le"), id="utf-16-le-bom"),
        pytest.param(lambda s: codecs.BOM_UTF16_BE + s.encode("utf-16-be"), id="utf-16-be-bom"),
        pytest.param(lambda s: s.encode("cp1256"), id="windows-1256"),
        pytest.param(lambda s: s.encode("utf-16-le"), id="utf-16-le-no-bom"),
        pytest.param(lambda s: s.encode("utf-16-be"), id="utf-16-be-no-bom"),
    ],
)
def test_txt_encodings_decode_to_same_arabic_text(tmp_path: Path, extensions: list[str], encode) -> None:
    path = tmp_path / "article.txt"
    path.write_bytes(encode(ARABIC))
    article = _one(path, extensions)
    assert article.text == ARABIC
    assert "\ufeff" not in article.text


def test_windows_1256_is_not_valid_utf8_so_fallback_is_exercised() -> None:
    data = ARABIC.encode("cp1256")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert decode(data) == ARABIC


def test_decode_plain_ascii_and_latin_text() -> None:
    assert decode(b"Plain English text.") == "Plain English text."


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_english_and_mixed_text(codec: str) -> None:
    """Saved as "Unicode" without a BOM, its NUL bytes used to mark it binary."""
    for text in ("Plain English text,\r\nsecond line.", f"Reuters — {ARABIC} «2020»"):
        assert decode(text.encode(codec)) == text


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(bytes(range(256)) * 16, id="every-byte"),
        pytest.param(b"\x00" * 512, id="all-nul"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x02\x03" * 10, id="png"),
        pytest.param("نص".encode("utf-16-le") + b"\x00", id="odd-length"),
    ],
)
def test_binary_with_nul_bytes_is_not_taken_for_utf16(data: bytes) -> None:
    with pytest.raises(UnreadableFile, match="binary"):
        decode(data)


def _damage(data: bytes, every: int) -> bytes:
    """Overwrite the first byte of one character every ``every`` bytes with 0xFF (never valid UTF-8)."""
    out = bytearray(data)
    for i in range(every // 2, len(out), every):
        while out[i] & 0xC0 == 0x80:  # move to the start of a character
            i += 1
        out[i] = 0xFF
    return bytes(out)


LONG_ARABIC = (ARABIC + "\n") * 40  # ~6,000 non-ASCII bytes in UTF-8


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8], ids=["no-bom", "bom"])
def test_utf8_arabic_with_one_bad_byte_keeps_its_text_not_windows_1256_garbage(bom: bytes) -> None:
    """Windows-1256 decodes any bytes: one bad byte used to turn the whole UTF-8 article into
    Arabic-looking mojibake ("ظ‚ط§ظ„") that passed the Arabic-share check."""
    data = LONG_ARABIC.encode("utf-8")
    at = data.index("الحكومة".encode())
    text = decode(bom + data[:at] + b"\xff" + data[at + 1 :])
    # The two bytes of "ا" (0xD8 0xA7) became 0xFF 0xA7: two replacement characters, all else intact.
    assert text == LONG_ARABIC.replace("الحكومة", "\ufffd\ufffdلحكومة", 1)
    assert "ط§" not in text and "ظ„" not in text  # ا and ل as UTF-8 read as Windows-1256


def test_utf8_arabic_with_much_damage_is_refused_with_the_first_bad_byte() -> None:
    data = LONG_ARABIC.encode("utf-8")
    damaged = _damage(data, 200)  # one letter in ~100
    first = next(i for i, (a, b) in enumerate(zip(data, damaged)) if a != b)
    with pytest.raises(UnreadableFile) as caught:
        decode(damaged)
    message = str(caught.value)
    assert f"invalid UTF-8 at byte {first} " in message
    assert "save the file as UTF-8" in message


def test_utf8_and_windows_1256_mixed_in_one_file_is_refused_not_garbled() -> None:
    with pytest.raises(UnreadableFile, match="invalid UTF-8 at byte"):
        decode(LONG_ARABIC.encode("utf-8") + LONG_ARABIC.encode("cp1256"))


def test_windows_1256_seeds_still_decode(seed_files: dict[str, Path]) -> None:
    """Real articles in Windows-1256 are not taken for damaged UTF-8: in them only a few percent
    of the non-ASCII bytes happen to form UTF-8 sequences (a letter followed by "،", say)."""
    for path in seed_files.values():
        text = path.read_text(encoding="utf-8")
        assert decode(text.encode("cp1256")) == text, path.name


def test_txt_article_fields(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "2020-06-07_report.txt"
    path.write_text(ARABIC, encoding="utf-8")
    article = _one(path, extensions)
    assert article.doc_id == "2020-06-07_report"  # file stem
    assert article.title == ""  # plain text: cleaning settles the title
    assert article.source == "2020-06-07_report.txt"
    assert article.path == str(path)


# --------------------------------------------------------------------------- markdown


def test_markdown_syntax_stripped(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "note.md"
    path.write_text(
        "# عنوان المقال\n\n"
        "قال **المتحدث** في [بيان رسمي](https://example.com/statement) إن الحملة __مستمرة__.\n\n"
        "## خلفية\n\n"
        "> اقتباس من التقرير\n\n"
        "---\n\n"
        "![صورة الموقع](img/site.png) نص بعد الصورة.\n",
        encoding="utf-8",
    )
    article = _one(path, extensions)
    text = article.text
    assert article.doc_id == "note"
    for syntax in ("#", "**", "__", "](", "https://", "example.com", "> ", "---", "!["):
        assert syntax not in text, syntax
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines[0] == "عنوان المقال"
    assert "قال المتحدث في بيان رسمي إن الحملة مستمرة." in lines
    assert "خلفية" in lines
    assert "اقتباس من التقرير" in lines
    assert "صورة الموقع نص بعد الصورة." in lines


def test_markdown_extension_variant(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "note.markdown"
    path.write_text("### عنوان\nنص **مهم** هنا.", encoding="utf-8")
    assert _one(path, extensions).text == "عنوان\nنص مهم هنا."


# --------------------------------------------------------------------------- html

HTML = """<!doctype html>
<html><head>
<meta charset="utf-8">
<title>عنوان الصفحة | موقع الأخبار</title>
<style>.x { color: red } body::after { content: "STYLE_TEXT" }</style>
<script>var SCRIPT_TEXT = "tracking";</script>
</head>
<body>
<nav><a href="/">الرئيسية</a> <a href="/world">NAV_TEXT</a></nav>
<main>
  <h1>التحالف يوسع حملته في دير الزور</h1>
  <p>الفقرة الأولى من الخبر.</p>
  <p>الفقرة الثانية <script>document.write("INLINE_SCRIPT")</script>من الخبر.</p>
  <div><p>فقرة داخل قسم.</p></div>
  <ul><li>بند أول</li><li>بند ثان</li></ul>
  <noscript>NOSCRIPT_TEXT</noscript>
</main>
<aside>ASIDE_TEXT</aside>
<footer>FOOTER_TEXT جميع الحقوق محفوظة</footer>
</body></html>
"""


def test_html_title_body_and_dropped_furniture(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML, encoding="utf-8")
    article = _one(path, extensions)
    assert article.doc_id == "page"
    assert article.title == "التحالف يوسع حملته في دير الزور"
    lines = article.text.split("\n")
    assert lines == [
        "الفقرة الأولى من الخبر.",
        "الفقرة الثانية من الخبر.",
        "فقرة داخل قسم.",
        "- بند أول",  # list items keep a bullet
        "- بند ثان",
    ]
    for gone in ("STYLE_TEXT", "SCRIPT_TEXT", "INLINE_SCRIPT", "document.write", "NAV_TEXT", "الرئيسية",
                 "NOSCRIPT_TEXT", "ASIDE_TEXT", "FOOTER_TEXT", "color: red"):
        assert gone not in article.text, gone
        assert gone not in article.title, gone
    # The headline is the title, not a body line.
    assert article.title not in article.text


def test_html_title_falls_back_to_title_tag(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "page.htm"
    path.write_text(
        "<html><head><title>عنوان من الوسم</title></head>"
        "<body><p>سطر أول.</p><p>سطر ثان.</p></body></html>",
        encoding="utf-8",
    )
    article = _one(path, extensions)
    assert article.title == "عنوان من الوسم"
    assert article.text == "سطر أول.\nسطر ثان."


def test_html_without_block_tags_keeps_text_lines(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "bare.html"
    path.write_text("<html><body>سطر أول<br>سطر ثان<script>HIDDEN()</script></body></html>", encoding="utf-8")
    article = _one(path, extensions)
    assert article.text.split("\n") == ["سطر أول", "سطر ثان"]


def test_html_in_windows_1256(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "legacy.html"
    path.write_bytes("<html><body><h1>عنوان قديم</h1><p>نص عربي بترميز قديم.</p></body></html>".encode("cp1256"))
    article = _one(path, extensions)
    assert article.title == "عنوان قديم"
    assert article.text == "نص عربي بترميز قديم."


def test_html_h1_inside_article_header_is_the_title(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "news.html"
    path.write_text(
        "<html><head><title>التحالف يوسع حملته | موقع الأخبار</title></head><body>"
        "<header><nav>قائمة الموقع</nav></header>"
        "<article><header><h1>التحالف يوسع حملته</h1></header>"
        "<p>الفقرة الأولى.</p></article></body></html>",
        encoding="utf-8",
    )
    article = _one(path, extensions)
    assert article.title == "التحالف يوسع حملته"
    assert "قائمة الموقع" not in article.text


def test_html_text_directly_inside_container_div_is_kept(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "mixed.html"
    path.write_text(
        "<html><body><div class='body'>مقدمة الخبر مباشرة في القسم.<p>الفقرة الثانية.</p></div></body></html>",
        encoding="utf-8",
    )
    article = _one(path, extensions)
    assert "مقدمة الخبر مباشرة في القسم." in article.text
    assert "الفقرة الثانية." in article.text


# --------------------------------------------------------------------------- json lines

RECORDS = [
    {"id": "enab-1", "title": "عنوان أول", "text": "نص الخبر الأول.", "source": "عنب بلدي",
     "url": "https://example.com/1", "date": "2020-06-07"},
    {"id": 42, "title": "عنوان ثان", "text": "نص الخبر الثاني.\nسطر آخر.", "source": "إرم نيوز",
     "url": "https://example.com/2", "date": "2020-03-23"},
    {"id": "  padded-3 ", "text": "نص بلا عنوان."},
]


def _jsonl(records) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


@pytest.mark.parametrize(("name", "pack"), [("feed.jsonl", lambda b: b), ("feed.jsonl.gz", gzip.compress)])
def test_jsonl_records_become_articles(tmp_path: Path, extensions: list[str], name: str, pack) -> None:
    path = tmp_path / name
    path.write_bytes(pack(_jsonl(RECORDS)))
    result = read_file(path, extensions, MAX)
    assert result.skipped == []
    assert [a.doc_id for a in result.articles] == ["enab-1", "42", "padded-3"]
    first, second, third = result.articles
    assert (first.title, first.text, first.source, first.url, first.date) == (
        "عنوان أول", "نص الخبر الأول.", "عنب بلدي", "https://example.com/1", "2020-06-07"
    )
    assert second.text == "نص الخبر الثاني.\nسطر آخر."
    assert (second.source, second.date) == ("إرم نيوز", "2020-03-23")
    assert (third.title, third.source, third.url, third.date) == ("", "", "", "")
    assert first.path == f"{path}:1"
    assert third.path == f"{path}:3"


def test_jsonl_outlet_and_date_under_the_names_archives_use(tmp_path: Path, extensions: list[str]) -> None:
    """The ANT corpus writes ``time`` (RFC 2822), scrapers ``outlet`` and ``pubDate``; ``source`` and
    ``date`` win when both are there. The written form is kept here; cleaning makes it ISO."""
    records = [
        {"id": "ant", "text": "نص.", "source": "alarabia", "time": "Sun, 18 Feb 2018 21:35:43 +0400"},
        {"id": "scraped", "text": "نص.", "outlet": "Enab Baladi", "pubDate": "2020-07-28T10:00:00+03:00"},
        {"id": "both", "text": "نص.", "source": "a", "outlet": "b", "date": "1 آب 2020", "published": "2 آب 2020"},
        {"id": "empty", "text": "نص.", "source": "", "outlet": "  ", "date": None},
    ]
    path = tmp_path / "archive.jsonl"
    path.write_bytes(_jsonl(records))
    got = {a.doc_id: (a.source, a.date) for a in read_file(path, extensions, MAX).articles}
    assert got == {
        "ant": ("alarabia", "Sun, 18 Feb 2018 21:35:43 +0400"),
        "scraped": ("Enab Baladi", "2020-07-28T10:00:00+03:00"),
        "both": ("a", "1 آب 2020"),
        "empty": ("", ""),
    }


def test_jsonl_with_bom_and_blank_lines(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + b"\n" + _jsonl(RECORDS[:1]) + b"\n   \n" + _jsonl(RECORDS[1:2]))
    result = read_file(path, extensions, MAX)
    assert [a.doc_id for a in result.articles] == ["enab-1", "42"]
    assert result.skipped == []
    assert result.articles[1].path == f"{path}:5"  # line numbers count the blank lines


def test_jsonl_bad_lines_are_skipped_with_line_numbers(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "feed.jsonl"
    lines = [
        json.dumps(RECORDS[0], ensure_ascii=False),
        '{"id": "broken", "text": "نص',  # invalid JSON
        json.dumps({"id": "no-text", "title": "بلا نص"}, ensure_ascii=False),
        json.dumps({"id": "blank-text", "text": "   "}),
        json.dumps({"text": "بلا معرف"}, ensure_ascii=False),
        "[1, 2, 3]",
        json.dumps(RECORDS[1], ensure_ascii=False),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read_file(path, extensions, MAX)
    assert [a.doc_id for a in result.articles] == ["enab-1", "42"]
    assert result.articles[1].path == f"{path}:7"
    by_path = {s.path: s.reason for s in result.skipped}
    assert set(by_path) == {f"{path}:{n}" for n in (2, 3, 4, 5, 6)}
    assert "invalid JSON" in by_path[f"{path}:2"]
    assert "text" in by_path[f"{path}:3"] and "missing" in by_path[f"{path}:3"]
    assert "text" in by_path[f"{path}:4"]
    assert "id" in by_path[f"{path}:5"]
    assert "object" in by_path[f"{path}:6"]
    assert all(s.error for s in result.skipped)


def test_jsonl_bad_lines_reach_read_paths_callers(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\nnot json\n", encoding="utf-8")
    reads, skips = _outcomes([path], extensions)
    assert skips == []  # the file itself was readable
    assert len(reads) == 1
    assert [a.doc_id for a in reads[0].articles] == ["enab-1"]
    assert [s.path for s in reads[0].skipped] == [f"{path}:2"]


def test_jsonl_without_records_is_unreadable(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(UnreadableFile, match="no records"):
        read_file(path, extensions, MAX)


def test_jsonl_must_be_utf8(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(json.dumps({"id": "a", "text": "نص"}, ensure_ascii=False).encode("cp1256"))
    with pytest.raises(UnreadableFile, match="UTF-8"):
        read_file(path, extensions, MAX)


# Records that do not compress to nothing, so that a cut near the end leaves most of them readable.
_MANY = [{"id": f"n{i}", "text": f"نص الخبر رقم {i * 7919 % 100003} عن {i * 104729 % 1000003}."} for i in range(3000)]


def test_not_gzip(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "feed.jsonl.gz"
    path.write_bytes(b"this is not gzip at all\n")
    with pytest.raises(UnreadableFile, match="gzip"):
        read_file(path, extensions, MAX)
    reads, skips = _outcomes([path], extensions)
    assert reads == []
    assert len(skips) == 1 and skips[0].path == str(path) and skips[0].error
    assert "gzip" in skips[0].reason and "after line" not in skips[0].reason


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda: gzip.compress(_jsonl(_MANY))[:-200], id="truncated"),
        pytest.param(lambda: gzip.compress(_jsonl(_MANY))[:-8] + b"\x00" * 8, id="bad-crc"),
    ],
)
def test_damaged_gzip_keeps_the_records_before_the_damage(tmp_path: Path, extensions: list[str], payload) -> None:
    """An archive is streamed: records read before the damage are good and kept; the file is
    reported with where the damage was found."""
    path = tmp_path / "feed.jsonl.gz"
    path.write_bytes(payload())
    with pytest.raises(UnreadableFile, match="gzip"):
        read_file(path, extensions, MAX)
    reads, skips = _outcomes([path], extensions)
    assert len(reads) == 1 and len(reads[0].articles) > len(_MANY) // 2
    assert [a.doc_id for a in reads[0].articles] == [r["id"] for r in _MANY][: len(reads[0].articles)]
    assert len(skips) == 1 and skips[0].path == str(path) and skips[0].error
    assert "gzip" in skips[0].reason and "after line" in skips[0].reason


def test_jsonl_archive_is_streamed_with_records_over_the_limit_skipped(tmp_path: Path, extensions: list[str]) -> None:
    """max_bytes bounds one record of a JSON Lines file, not the archive."""
    path = tmp_path / "archive.jsonl.gz"
    big = {"id": "big", "text": "نص طويل " * 200}
    path.write_bytes(gzip.compress(_jsonl(RECORDS * 20 + [big])))
    result = read_file(path, extensions, max_bytes=1000)
    assert len(result.articles) == len(RECORDS) * 20
    assert [s.path for s in result.skipped] == [f"{path}:{len(RECORDS) * 20 + 1}"]
    assert "limit" in result.skipped[0].reason


def test_jsonl_bad_utf8_line_after_good_ones_is_skipped(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "feed.jsonl"
    bad = json.dumps({"id": "a", "text": "نص"}, ensure_ascii=False).encode("cp1256") + b"\n"
    path.write_bytes(_jsonl(RECORDS[:1]) + bad + _jsonl(RECORDS[1:2]))
    result = read_file(path, extensions, MAX)
    assert [a.doc_id for a in result.articles] == ["enab-1", "42"]
    assert [s.path for s in result.skipped] == [f"{path}:2"] and "UTF-8" in result.skipped[0].reason


# A valid gzip header followed by a deflate stream with an invalid block type: zlib.error.
_BAD_DEFLATE = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 20 + b"\x00" * 8


def test_corrupt_deflate_stream_is_unreadable_not_a_crash(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "feed.jsonl.gz"
    path.write_bytes(_BAD_DEFLATE)
    reads, skips = _outcomes([path], extensions)
    assert reads == []
    assert len(skips) == 1 and "gzip" in skips[0].reason


# --------------------------------------------------------------------------- unusable files


def test_empty_file_skipped(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(UnreadableFile, match="empty"):
        read_file(path, extensions, MAX)
    reads, skips = _outcomes([path], extensions)
    assert reads == []
    assert [(s.path, s.error) for s in skips] == [(str(path), True)]
    assert "empty" in skips[0].reason


def test_whitespace_only_file_skipped(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\t\n  ", encoding="utf-8")
    reads, skips = _outcomes([path], extensions)
    assert reads == [] and len(skips) == 1
    assert "no text" in skips[0].reason


def test_binary_file_skipped(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x02\x03" * 10)
    with pytest.raises(UnreadableFile, match="binary"):
        read_file(path, extensions, MAX)
    reads, skips = _outcomes([path], extensions)
    assert reads == []
    assert len(skips) == 1 and skips[0].error and "binary" in skips[0].reason


def test_oversized_file_skipped(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "big.txt"
    path.write_text(ARABIC * 20, encoding="utf-8")
    size = path.stat().st_size
    with pytest.raises(UnreadableFile, match="max_file_mb"):
        read_file(path, extensions, max_bytes=size - 1)
    reads, skips = _outcomes([path], extensions, max_bytes=100)
    assert reads == []
    assert len(skips) == 1 and skips[0].error and "limit" in skips[0].reason
    # Exactly at the limit is fine.
    assert _one(path, extensions, max_bytes=size).text == ARABIC * 20


def test_broken_utf16_file_is_skipped_not_a_crash(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "broken.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "نص".encode("utf-16-le") + b"\x41")
    reads, skips = _outcomes([path], extensions)
    assert reads == []
    assert len(skips) == 1 and skips[0].path == str(path)


# --------------------------------------------------------------------------- paths and folders


def test_missing_path_skipped(tmp_path: Path, extensions: list[str]) -> None:
    missing = tmp_path / "nope" / "article.txt"
    reads, skips = _outcomes([missing], extensions)
    assert reads == []
    assert len(skips) == 1
    assert skips[0].path == str(missing)
    assert "no such file" in skips[0].reason
    assert skips[0].error is True


def test_explicit_unsupported_file_is_an_error(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG")
    files, problems = expand_paths([path], extensions)
    assert files == []
    assert len(problems) == 1 and problems[0].error is True
    assert "unsupported" in problems[0].reason


def _make_tree(root: Path) -> None:
    (root / "z.txt").write_text("المقال زد.", encoding="utf-8")
    (root / "b.md").write_text("# بي\nنص.", encoding="utf-8")
    (root / "a").mkdir()
    (root / "a" / "m.txt").write_text("المقال إم.", encoding="utf-8")
    (root / "a" / "deep").mkdir()
    (root / "a" / "deep" / "c.html").write_text("<p>المقال سي.</p>", encoding="utf-8")
    (root / "feeds").mkdir()
    (root / "feeds" / "f.jsonl.gz").write_bytes(gzip.compress(_jsonl(RECORDS[:1])))
    # Not articles:
    (root / "a" / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "README").write_text("notes", encoding="utf-8")
    (root / "data.csv").write_text("a,b\n", encoding="utf-8")
    # Hidden: ignored entirely.
    (root / ".hidden.txt").write_text("مخفي.", encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD.txt").write_text("مخفي.", encoding="utf-8")
    (root / "a" / ".cache").mkdir()
    (root / "a" / ".cache" / "x.txt").write_text("مخفي.", encoding="utf-8")


def test_folder_walk_recursive_sorted_hidden_ignored(tmp_path: Path, extensions: list[str]) -> None:
    _make_tree(tmp_path)
    files, problems = expand_paths([tmp_path], extensions)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "a/deep/c.html",
        "a/m.txt",
        "b.md",
        "feeds/f.jsonl.gz",
        "z.txt",
    ]
    assert files == sorted(files)
    skipped_names = sorted(Path(s.path).relative_to(tmp_path).as_posix() for s in problems)
    assert skipped_names == ["README", "a/photo.jpg", "data.csv"]
    assert all(s.error is False for s in problems)
    assert all("unsupported" in s.reason for s in problems)


def test_read_paths_on_folder(tmp_path: Path, extensions: list[str]) -> None:
    _make_tree(tmp_path)
    reads, skips = _outcomes([tmp_path], extensions)
    assert [a.doc_id for r in reads for a in r.articles] == ["c", "m", "b", "enab-1", "z"]
    assert all(not s.error for s in skips)
    everything = " ".join(a.text for r in reads for a in r.articles) + " ".join(s.path for s in skips)
    assert "مخفي" not in everything
    assert ".hidden" not in everything and ".git" not in everything and ".cache" not in everything
    # Same tree, same order, every time.
    again, _ = _outcomes([tmp_path], extensions)
    assert [r.path for r in again] == [r.path for r in reads]


def test_read_paths_mixes_files_folders_and_missing(tmp_path: Path, extensions: list[str]) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "one.txt").write_text("واحد.", encoding="utf-8")
    single = tmp_path / "two.txt"
    single.write_text("اثنان.", encoding="utf-8")
    reads, skips = _outcomes([tmp_path / "dir", single, tmp_path / "missing.txt"], extensions)
    assert [r.articles[0].doc_id for r in reads] == ["one", "two"]
    assert len(skips) == 1 and "no such file" in skips[0].reason


def test_seed_files_read_as_text(extensions: list[str]) -> None:
    seeds = Path(__file__).resolve().parents[2] / "seeds"
    reads, skips = _outcomes([seeds], extensions)
    assert skips == []
    assert [r.articles[0].doc_id for r in reads] == sorted(p.stem for p in seeds.glob("*.txt"))
    for r in reads:
        assert r.articles[0].text.strip()
        assert "\ufffd" not in r.articles[0].text


# --------------------------------------------------------------------------- links and repeats


def _reasons(problems: list[Skipped], root: Path) -> dict[str, Skipped]:
    return {Path(s.path).relative_to(root).as_posix(): s for s in problems}


def test_symlinked_file_and_folder_are_read_and_each_file_once(tmp_path: Path, extensions: list[str]) -> None:
    outside = tmp_path / "outside"
    (outside / "more").mkdir(parents=True)
    (outside / "linked.txt").write_text("مقال مرتبط.", encoding="utf-8")
    (outside / "more" / "deep.txt").write_text("مقال في مجلد مرتبط.", encoding="utf-8")
    root = tmp_path / "articles"
    root.mkdir()
    (root / "own.txt").write_text("مقال.", encoding="utf-8")
    (root / "a-link.txt").symlink_to(outside / "linked.txt")
    (root / "b-folder").symlink_to(outside / "more", target_is_directory=True)
    (root / "c-again.txt").symlink_to(root / "own.txt")  # a second name for a file already read

    files, problems = expand_paths([root], extensions)

    # Links are followed after the real tree, so that a file is read under its own name.
    assert [p.relative_to(root).as_posix() for p in files] == ["own.txt", "a-link.txt", "b-folder/deep.txt"]
    reasons = _reasons(problems, root)
    assert list(reasons) == ["c-again.txt"]
    assert "same file as" in reasons["c-again.txt"].reason and str(root / "own.txt") in reasons["c-again.txt"].reason
    assert reasons["c-again.txt"].error is False  # its article is read, under the other name


@pytest.mark.parametrize(
    ("link", "target"),
    [("sub/z-loop", "."), ("sub/z-loop", ".."), ("a-sub", "sub")],
    ids=["to-its-folder", "to-the-parent", "to-a-folder-walked-anyway"],
)
def test_folder_with_a_symlink_loop_is_walked_once_and_the_loop_reported(
    tmp_path: Path, extensions: list[str], link: str, target: str
) -> None:
    root = tmp_path / "articles"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "one.txt").write_text("واحد.", encoding="utf-8")
    (root / link).symlink_to(target, target_is_directory=True)

    files, problems = expand_paths([root], extensions)

    assert [p.relative_to(root).as_posix() for p in files] == ["sub/one.txt"]
    reasons = _reasons(problems, root)
    assert list(reasons) == [link]
    assert "loop" in reasons[link].reason or "same folder as" in reasons[link].reason
    assert reasons[link].error is False  # every article in it is read, under its own path


def test_broken_and_self_looping_links_are_reported(tmp_path: Path, extensions: list[str]) -> None:
    root = tmp_path / "articles"
    root.mkdir()
    (root / "dead.txt").symlink_to(tmp_path / "gone.txt")
    (root / "self.txt").symlink_to(root / "self.txt")
    (root / "dead-image.png").symlink_to(tmp_path / "gone.png")

    files, problems = expand_paths([root, root / "self.txt"], extensions)

    assert files == []
    reasons: dict[str, list[tuple[str, bool]]] = {}
    for skipped in problems:
        reasons.setdefault(Path(skipped.path).name, []).append((skipped.reason, skipped.error))
    assert sorted(reasons) == ["dead-image.png", "dead.txt", "self.txt"]
    [(reason, error)] = reasons["dead.txt"]
    assert "broken symbolic link" in reason and str(tmp_path / "gone.txt") in reason
    assert error is True  # an article the user meant to give is missing
    [(reason, error)] = reasons["dead-image.png"]
    assert "broken symbolic link" in reason and error is False  # not an article anyway
    # Once in the folder, once given as a path: both a loop, not "no such file".
    assert [("loop" in reason, error) for reason, error in reasons["self.txt"]] == [(True, True), (True, True)]


def test_the_same_file_given_twice_is_read_once(tmp_path: Path, extensions: list[str]) -> None:
    path = tmp_path / "one.txt"
    path.write_text("واحد.", encoding="utf-8")
    files, problems = expand_paths([path, tmp_path], extensions)
    assert files == [path]
    assert [(s.path, s.error) for s in problems] == [(str(path), False)]
    assert "same file as" in problems[0].reason


# --------------------------------------------------------------------------- article pages (trafilatura)
PAGES = Path(__file__).parent.parent / "fixtures" / "html"
# What each page's chrome says: menus, a "most read" box, a comment thread, a share bar, a footer.
CHROME = ["أخبار سوريا", "الأكثر قراءة", "أسعار الذهب", "تعليق من قارئ", "جميع الحقوق محفوظة", "شارك على فيسبوك", "من نحن", "الرئيسية"]


@pytest.mark.parametrize(
    ("page", "title", "source", "date", "author", "url", "first", "last"),
    [
        ("enab_og.html", "التحالف الدولي يعلن تحركه نحو دير الزور", "عنب بلدي", "2020-07-29", "فريق التحرير",
         "https://www.enabbaladi.net/archives/405123", "أعلن التحالف الدولي", "وإعادة تأهيل المدارس."),
        ("jsonld_only.html", "افتتاح متحف الخط العربي في تطوان", "تطوان اليوم", "2021-03-15", "سلمى العلوي", "",
         "افتتحت بلدية مدينة تطوان", "والدخول مجاني للطلاب."),
        # A date in the text is an event the article recalls, not when it was published: none.
        ("undated.html", "ذكرى انطلاق الاحتجاجات في درعا", "", "", "", "", "بدأت الاحتجاجات", "وسط المدينة القديمة."),
    ],
)
def test_an_article_page_gives_its_main_text_and_metadata(tmp_path, extensions, page, title, source, date, author, url, first, last):
    path = tmp_path / page
    path.write_bytes((PAGES / page).read_bytes())
    article = _one(path, extensions)
    assert (article.title, article.date, article.author, article.url) == (title, date, author, url)
    assert article.source == (source or page)  # unnamed outlet: the file, as for text files
    assert article.text.startswith(first) and article.text.endswith(last), article.text
    assert not [c for c in CHROME if c in article.text]


def test_the_block_reader_keeps_what_the_extractor_drops():
    """Why pages go through trafilatura: the project's own block reader (still the fallback) keeps
    the menu bar and the share bar of a page without <article> or <main>."""
    kept = set()
    for page in sorted(PAGES.glob("*.html")):
        _, body = html_to_text(page.read_text(encoding="utf-8"))
        kept |= {c for c in CHROME if c in body}
    assert {"شارك على فيسبوك", "الرئيسية", "من نحن"} <= kept
