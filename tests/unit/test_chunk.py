"""assistant.chunk: exact slices, size limits, sentence boundaries, overlap, deterministic ids."""

from __future__ import annotations

import random
import re

import pytest

from assistant.chunk import chunk_article, chunk_spans, sentence_spans
from assistant.config import ChunkingSettings
from assistant.models import Chunk

SENTENCE_MARKS = ".!?؟۔…"
CLOSERS = "\"'»”’)]"

SMALL = ChunkingSettings(max_chars=200, overlap_chars=60, min_chars=0)
SETTINGS = [
    pytest.param(ChunkingSettings(), id="default-700"),
    pytest.param(SMALL, id="small-200-ov60"),
    pytest.param(ChunkingSettings(max_chars=300, overlap_chars=0, min_chars=150), id="300-ov0-min150"),
    pytest.param(ChunkingSettings(max_chars=100, overlap_chars=99, min_chars=100), id="100-ov99"),
]


def _ends_at_sentence_or_paragraph(text: str, end: int) -> bool:
    if end == len(text) or text[end] == "\n":
        return True
    head = text[:end].rstrip(CLOSERS)
    return bool(head) and head[-1] in SENTENCE_MARKS


def _check_invariants(text: str, chunks: list[Chunk], settings: ChunkingSettings, doc_id: str) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    covered = [False] * len(text)
    previous = None
    for chunk in chunks:
        assert chunk.doc_id == doc_id
        assert text[chunk.start:chunk.end] == chunk.text
        assert 0 < len(chunk.text) <= settings.max_chars
        assert chunk.text == chunk.text.strip(), "chunk has leading/trailing whitespace"
        # Never starts or ends inside a word.
        assert chunk.start == 0 or text[chunk.start - 1].isspace(), text[chunk.start - 5:chunk.start + 5]
        assert chunk.end == len(text) or text[chunk.end].isspace(), text[chunk.end - 5:chunk.end + 5]
        if previous is not None:
            assert chunk.start > previous.start, "chunks go backwards"
            assert chunk.end >= previous.end, "chunks go backwards"
        for k in range(chunk.start, chunk.end):
            covered[k] = True
        previous = chunk
    missing = [k for k, c in enumerate(covered) if not c and not text[k].isspace()]
    assert not missing, f"uncovered text at {missing[:5]}: {text[missing[0]:missing[0] + 20]!r}"


# --------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("settings", SETTINGS)
def test_seed_chunks_satisfy_invariants(cleaned_seeds, settings: ChunkingSettings) -> None:
    for article in cleaned_seeds.values():
        chunks = chunk_article(article.doc_id, article.text, settings)
        assert chunks
        _check_invariants(article.text, chunks, settings, article.doc_id)


def test_seed_chunks_end_at_sentence_ends(cleaned_seeds) -> None:
    settings = ChunkingSettings()  # every seed sentence is shorter than 700 characters
    for article in cleaned_seeds.values():
        assert max(s.end - s.start for s in sentence_spans(article.text, 10**9)) < settings.max_chars
        for chunk in chunk_article(article.doc_id, article.text, settings):
            assert _ends_at_sentence_or_paragraph(article.text, chunk.end), chunk.text[-40:]


def test_seed_chunk_ids_deterministic(cleaned_seeds) -> None:
    for article in cleaned_seeds.values():
        first = chunk_article(article.doc_id, article.text, ChunkingSettings())
        second = chunk_article(article.doc_id, article.text, ChunkingSettings())
        assert [c.chunk_id for c in first] == [c.chunk_id for c in second]
        assert [c.model_dump() for c in first] == [c.model_dump() for c in second]
        assert len({c.chunk_id for c in first}) == len(first)
        assert all(c.chunk_id.startswith(f"{article.doc_id}:{c.index}:") for c in first)


def test_seed_chunks_within_paragraphs_overlap(cleaned_seeds) -> None:
    overlaps = 0
    for article in cleaned_seeds.values():
        chunks = chunk_article(article.doc_id, article.text, SMALL)
        for a, b in zip(chunks, chunks[1:]):
            if b.start < a.end:
                overlaps += 1
                shared = article.text[b.start:a.end]
                assert "\n" not in shared  # overlap never crosses a paragraph
                assert len(shared) <= SMALL.overlap_chars
    assert overlaps > 0


# --------------------------------------------------------------------------- synthetic texts

WORDS = ["قال", "المتحدث", "باسم", "الحكومة", "إن", "الحملة", "مستمرة", "في", "دير", "الزور", "التحالف",
         "الدولي", "«داعش»", "2020", "NATO", "قوات", "سوريا", "الديمقراطية"]


def _random_text(rng: random.Random, max_words: int = 12, marks: str = SENTENCE_MARKS) -> str:
    paragraphs = []
    for _ in range(rng.randint(1, 5)):
        sentences = []
        for _ in range(rng.randint(1, 7)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(1, max_words))]
            if len(words) > 3 and rng.random() < 0.3:
                words[1] += "،"
            sentence = " ".join(words) + rng.choice(marks)
            if rng.random() < 0.1:
                sentence += "»"
            sentences.append(sentence)
        paragraphs.append(" ".join(sentences))
    return "\n".join(paragraphs)


@pytest.mark.parametrize("seed", range(40))
def test_random_short_sentences_invariants_and_sentence_ends(seed: int) -> None:
    rng = random.Random(seed)
    text = _random_text(rng, max_words=10)
    settings = ChunkingSettings(
        max_chars=rng.choice([150, 200, 300]),
        overlap_chars=rng.choice([0, 30, 80]),
        min_chars=rng.choice([0, 50, 100]),
    )
    # Precondition: every sentence fits in a chunk.
    assert max(s.end - s.start for s in sentence_spans(text, 10**9)) < settings.max_chars
    chunks = chunk_article("doc", text, settings)
    _check_invariants(text, chunks, settings, "doc")
    for chunk in chunks:
        assert _ends_at_sentence_or_paragraph(text, chunk.end), chunk.text
        # ... and starts at a sentence start (after an end mark or at a paragraph start).
        assert chunk.start == 0 or text[chunk.start - 1] == "\n" or _ends_at_sentence_or_paragraph(
            text, chunk.start - 1
        ), chunk.text


@pytest.mark.parametrize("seed", range(20))
def test_random_long_sentences_invariants(seed: int) -> None:
    rng = random.Random(1000 + seed)
    text = _random_text(rng, max_words=60, marks=SENTENCE_MARKS + "  ")  # some sentences unpunctuated
    settings = ChunkingSettings(max_chars=100, overlap_chars=rng.choice([0, 40]), min_chars=0)
    _check_invariants(text, chunk_article("doc", text, settings), settings, "doc")


def test_empty_and_whitespace_text_has_no_chunks() -> None:
    assert chunk_article("doc", "", ChunkingSettings()) == []
    assert chunk_article("doc", "   \n \n\t", ChunkingSettings()) == []


def test_short_text_is_one_chunk() -> None:
    text = "قال المتحدث إن الحملة مستمرة."
    [chunk] = chunk_article("doc", text, ChunkingSettings())
    assert (chunk.start, chunk.end, chunk.text, chunk.index) == (0, len(text), text, 0)


@pytest.mark.parametrize("mark", ["؟", "۔", ".", "!", "?", "…"])
def test_arabic_and_latin_sentence_end_marks(mark: str) -> None:
    first = f"هل ستستمر الحملة الأمنية في ريف دير الزور الشرقي خلال الأيام المقبلة{mark}"
    second = "قال المتحدث إن العمليات ستتواصل حتى تحقيق أهدافها كاملة في المنطقة."
    text = f"{first} {second}"
    spans = sentence_spans(text, 1000)
    assert [text[s.start:s.end] for s in spans] == [first, second]
    settings = ChunkingSettings(max_chars=100, overlap_chars=0, min_chars=0)
    assert len(text) > settings.max_chars
    assert [c.text for c in chunk_article("doc", text, settings)] == [first, second]


def test_closing_quote_stays_with_its_sentence() -> None:
    text = "قال المتحدث: «الحملة مستمرة حتى النهاية.» وأضاف أن القوات جاهزة تماما."
    spans = sentence_spans(text, 1000)
    assert [text[s.start:s.end] for s in spans] == [
        "قال المتحدث: «الحملة مستمرة حتى النهاية.»",
        "وأضاف أن القوات جاهزة تماما.",
    ]


def test_decimal_point_and_abbreviation_dots_inside_words_do_not_split() -> None:
    text = "ارتفع المؤشر 3.5 في المئة، وفق موقع example.com اليوم."
    assert len(sentence_spans(text, 1000)) == 1


def test_paragraph_ends_are_sentence_ends() -> None:
    text = "عنوان فرعي بلا نقطة\nفقرة بعده تنتهي بنقطة."
    spans = sentence_spans(text, 1000)
    assert [(text[s.start:s.end], s.paragraph) for s in spans] == [
        ("عنوان فرعي بلا نقطة", 0),
        ("فقرة بعده تنتهي بنقطة.", 1),
    ]


def test_long_unpunctuated_sentence_split_at_spaces() -> None:
    words = [f"كلمة{i}" for i in range(120)]
    text = " ".join(words)
    settings = ChunkingSettings(max_chars=100, overlap_chars=0, min_chars=0)
    chunks = chunk_article("doc", text, settings)
    assert len(chunks) > 1
    _check_invariants(text, chunks, settings, "doc")
    # No word cut: the chunks' words, in order, are exactly the text's words.
    assert [w for c in chunks for w in c.text.split()] == words
    # Chunks are filled reasonably (not one word each).
    assert all(len(c.text) > 80 for c in chunks[:-1])


def test_long_sentence_prefers_clause_marks() -> None:
    clause = "قال المتحدث باسم التحالف الدولي إن قوات سوريا الديمقراطية تواصل الحملة"
    text = f"{clause}، {clause}؛ {clause}، {clause}."
    settings = ChunkingSettings(max_chars=160, overlap_chars=0, min_chars=0)
    chunks = chunk_article("doc", text, settings)
    _check_invariants(text, chunks, settings, "doc")
    for chunk in chunks[:-1]:
        assert chunk.text[-1] in "،؛", chunk.text


def test_single_word_longer_than_max_chars_is_hard_cut() -> None:
    text = "ا" * 250
    settings = ChunkingSettings(max_chars=100, overlap_chars=0, min_chars=0)
    chunks = chunk_article("doc", text, settings)
    assert [len(c.text) for c in chunks] == [100, 100, 50]
    assert "".join(c.text for c in chunks) == text


def _paragraph(n: int) -> list[str]:
    """``n`` distinct sentences of 43 characters each."""
    sentences = [f"هذه هي الجملة رقم {i:02d} من الفقرة الطويلة هنا." for i in range(n)]
    assert {len(x) for x in sentences} == {43}
    return sentences


def test_overlap_within_a_paragraph() -> None:
    sentences = _paragraph(12)
    text = " ".join(sentences)
    settings = ChunkingSettings(max_chars=150, overlap_chars=60, min_chars=0)
    chunks = chunk_article("doc", text, settings)
    assert len(chunks) >= 3
    _check_invariants(text, chunks, settings, "doc")
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks of one paragraph should share text"
        shared = text[b.start:a.end]
        assert 0 < len(shared) <= settings.overlap_chars
        # The shared part is whole sentences: it starts a sentence and ends one.
        assert all(piece in sentences for piece in re.split(r"(?<=\.) ", shared)), shared


def test_no_overlap_when_overlap_is_zero() -> None:
    text = " ".join(_paragraph(12))
    settings = ChunkingSettings(max_chars=150, overlap_chars=0, min_chars=0)
    chunks = chunk_article("doc", text, settings)
    assert len(chunks) >= 3
    _check_invariants(text, chunks, settings, "doc")
    for a, b in zip(chunks, chunks[1:]):
        assert b.start > a.end
        assert text[a.end:b.start].strip() == ""


def test_overlap_does_not_cross_paragraphs() -> None:
    first = " ".join(_paragraph(3))
    second = " ".join(_paragraph(3))
    text = f"{first}\n{second}"
    settings = ChunkingSettings(max_chars=150, overlap_chars=100, min_chars=50)
    chunks = chunk_article("doc", text, settings)
    assert [c.text for c in chunks] == [first, second]


def test_short_paragraphs_merge_until_min_chars() -> None:
    text = "أ.\nب.\nج."
    merged = chunk_article("doc", text, ChunkingSettings(max_chars=100, overlap_chars=0, min_chars=50))
    assert [c.text for c in merged] == [text]
    separate = chunk_article("doc", text, ChunkingSettings(max_chars=100, overlap_chars=0, min_chars=0))
    assert [c.text for c in separate] == ["أ.", "ب.", "ج."]


def test_chunk_ids_change_with_text_and_doc_id() -> None:
    paragraphs = [" ".join(_paragraph(3)) for _ in range(3)]
    text = "\n".join(paragraphs)
    settings = ChunkingSettings(max_chars=150, overlap_chars=0, min_chars=0)
    base = chunk_article("doc", text, settings)
    assert len(base) == 3
    edited_text = text[: base[2].start] + text[base[2].start:].replace("الجملة رقم 01", "الجملة رقم 09", 1)
    edited = chunk_article("doc", edited_text, settings)
    assert [c.chunk_id for c in edited[:2]] == [c.chunk_id for c in base[:2]]
    assert edited[2].chunk_id != base[2].chunk_id
    assert edited[2].chunk_id.startswith("doc:2:")
    other = chunk_article("other", text, settings)
    assert all(o.chunk_id != b.chunk_id for o, b in zip(other, base))
    assert [o.chunk_id.split(":")[-1] for o in other] == [b.chunk_id.split(":")[-1] for b in base]


def test_chunk_spans_matches_chunk_article() -> None:
    text = "\n".join(" ".join(_paragraph(5)) for _ in range(3))
    spans = chunk_spans(text, SMALL)
    assert spans == [(c.start, c.end) for c in chunk_article("doc", text, SMALL)]


def test_no_chunk_is_contained_in_the_previous_one() -> None:
    text = "أ" * 20 + ". " + "ب" * 20 + ". " + "ج" * 90 + "."
    settings = ChunkingSettings(max_chars=100, overlap_chars=30, min_chars=0)
    spans = chunk_spans(text, settings)
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert not (s1 <= s2 and e2 <= e1), f"{text[s2:e2]!r} is inside {text[s1:e1]!r}"
