"""Stage 8, cite: turn the model's ``[n]`` markers into verified citations.

A marker survives only if ``n`` names a passage that was shown and the sentence carrying it is
supported by that passage. When no marker survives, citations are attached by matching each
sentence to the passage that supports it best. Markers may use Arabic-Indic digits (``[١]``),
lists (``[1, 2]``, ``[١،٢]``) or lenticular brackets (``【1】``); all come out as ``[n]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from assistant.arabic import detect_language, lexical_tokens, normalize
from assistant.models import Citation, Passage
from assistant.numbers import number_spans, prepared_text

_MARKER = re.compile(r"[\[【]\s*([0-9٠-٩۰-۹]+(?:\s*[,،;؛-]\s*[0-9٠-٩۰-۹]+)*)\s*[\]】]")
# A "." between two digits ("1.5 مليون", "١.٥") is a decimal point, never a sentence end.
_SENTENCE = re.compile(r"(?:[^.!?؟۔\n]|(?<=\d)\.(?=\d))+(?:[.!?؟۔]+|\n|$)")
# Markers written after the sentence's final punctuation ("… النفط.[2]") belong to that sentence.
_TRAILING = re.compile(r"([.!?؟۔]+)((?:[ \t]*" + _MARKER.pattern + r")+)")
# Attributions the model writes in words instead of markers (English answers, about one in five on
# the eval set): "According to passage [1], …", "…, as stated in passage [2].", "This is stated in
# passage [2]." They become markers on the sentence they attribute.
_PASSAGES = (
    r"(?:the\s+)?passages?(?P<n>\s*(?:\[\s*\d+\s*\]|\d+\b(?![.,]\d))"
    r"(?:\s*(?:,|and|&)?\s*\[\s*\d+\s*\]|\s*,?\s*(?:and|&)\s+\d+\b)*)?"
)
_LEADING_ATTRIBUTION = re.compile(r"^(\s*)(?:according\s+to|as\s+(?:stated|mentioned|reported)\s+in|based\s+on)\s+" + _PASSAGES + r"\s*,\s*", re.I)
_INLINE_ATTRIBUTION = re.compile(r",?\s*(?:as\s+(?:stated|mentioned|reported|noted|given|shown)\s+in|according\s+to)\s+" + _PASSAGES, re.I)
_ATTRIBUTION_SENTENCE = re.compile(
    r"\s*(?:this|that|the\s+answer|this\s+information|the\s+information)\s+(?:is|was|can\s+be)\s+"
    r"(?:stated|found|mentioned|given|reported|provided)\s+in\s+" + _PASSAGES + r"\s*[.!]?\s*",
    re.I,
)


# support(sentence, passage) -> 0..1; lexical by default, cross-lingual (``answer_support``) when given.
Support = Callable[[str, Passage], float]


def marker_numbers(raw: str) -> list[int]:
    return [int(normalize(d)) for d in re.split(r"\s*[,،;؛-]\s*", raw.strip()) if d]


def strip_markers(text: str) -> str:
    return re.sub(r"\s+([.،,؟?!])", r"\1", _MARKER.sub("", text)).strip()


@lru_cache(maxsize=2048)
def _terms_and_numbers(text: str) -> tuple[frozenset[str], frozenset[Decimal]]:
    """``lexical_tokens`` of ``text`` with each number as one term of its value ("num1500000" for
    "1.5 مليون" and "1,500,000" alike), and the numbers' values. Cached: called per sentence × passage."""
    prepared = prepared_text(text)
    spans = number_spans(prepared)
    pieces, last = [], 0
    for start, end, value in spans:
        pieces += [prepared[last:start], f" num{format(value.normalize(), 'f').replace('.', 'p')} "]
        last = end
    pieces.append(prepared[last:])
    return frozenset(lexical_tokens("".join(pieces))), frozenset(value for _, _, value in spans)


def _passage_text(passage: Passage) -> str:
    return f"{passage.title}\n{passage.text}"


def invented_numbers(sentence: str, passage: Passage, question: str = "") -> set[Decimal]:
    """The values of the numbers ``sentence`` gives that neither ``question`` nor ``passage`` has."""
    said = _terms_and_numbers(strip_markers(sentence))[1]
    if not said:
        return set()
    return set(said - _terms_and_numbers(question)[1] - _terms_and_numbers(_passage_text(passage))[1])


def lexical_support(sentence: str, passage: Passage, asked: str = "", *, question: str | None = None) -> float:
    """Share of the sentence's content terms (stems) that occur in the passage. Terms of ``asked``
    (the question) do not count: an answer that restates the question is supported by any
    passage on the topic, so only what it adds is evidence (0.0 when it adds nothing).

    Numbers are terms by value, and a number the sentence gives that neither the question nor the
    passage has makes it 0.0 (``invented_numbers``). ``question`` (default ``asked``) exempts the
    question's numbers without discounting its words."""
    sentence = strip_markers(sentence)
    if invented_numbers(sentence, passage, asked if question is None else question):
        return 0.0
    terms = _terms_and_numbers(sentence)[0] - _terms_and_numbers(asked)[0]
    if not terms:
        return 0.0
    found = _terms_and_numbers(_passage_text(passage))[0]
    return len(terms & found) / len(terms)


def answer_support(sentence: str, passage: Passage, asked: str = "", *, question: str | None = None) -> float:
    """How well a passage supports an answer sentence (0..1), in either language.

    Arabic sentences: ``lexical_support``. Other sentences cannot be matched word for word
    against Arabic text, and multilingual embeddings proved useless at sentence level (an
    unrelated sentence scored above the right one), so only what crosses scripts is checked: the
    sentence's numbers, by value. 1.0 when the passage (or the question) has each of them, also
    when there are none; 0.0 when one is made up. With ``asked`` (the question) a sentence that
    adds no term to the question gets 0.0. ``question`` (default ``asked``) exempts the
    question's numbers alone, as in ``lexical_support``."""
    text = strip_markers(sentence)
    question = asked if question is None else question
    if detect_language(text) == "ar":
        return lexical_support(text, passage, asked, question=question)
    if asked and not set(lexical_tokens(text)) - set(lexical_tokens(asked)):
        return 0.0
    return 0.0 if invented_numbers(text, passage, question) else 1.0


@dataclass
class Cited:
    text: str
    citations: list[Citation]
    dropped: list[int]  # marker numbers removed as invalid or unsupported


def _pieces(text: str) -> list[str]:
    """The sentences of ``text`` and the gaps between them (line breaks, stray punctuation): all of it."""
    pieces, last = [], 0
    for m in _SENTENCE.finditer(text):
        if m.start() > last:
            pieces.append(text[last : m.start()])
        pieces.append(m.group(0))
        last = m.end()
    if last < len(text):
        pieces.append(text[last:])
    return pieces or [text]


def _markers_inside(text: str) -> str:
    """"… النفط.[2]" -> "… النفط [2].": a marker after the final punctuation joins its sentence."""
    return _TRAILING.sub(lambda m: f" {m.group(2).strip()}{m.group(1)}", text)


def _with_marker(sentence: str, numbers: list) -> str:
    """``sentence`` with ``[n]`` markers before its final punctuation (trailing space kept)."""
    body = sentence.rstrip()
    tail = sentence[len(body) :]
    ends = re.search(r"[.!?؟۔]+$", body)
    head, stop = (body[: ends.start()].rstrip(), ends.group(0)) if ends else (body, "")
    markers = ("" if head.endswith("]") else " ") + "".join(f"[{n}]" for n in numbers)
    return head + markers + stop + tail


def _passage_numbers(attribution: re.Match) -> list[str]:
    return re.findall(r"\d+", attribution.group("n") or "")


def attributions_as_markers(answer: str) -> str:
    """Attributions in words become markers: "According to passage [1], X." -> "X [1].",
    "X. This is stated in passage [2]." -> "X [2]." (English; the model's Arabic never does this)."""
    out: list[str] = []
    for piece in _pieces(answer):
        if out and (whole := _ATTRIBUTION_SENTENCE.fullmatch(piece)):
            # The sentence only attributes the one before it: its markers go there.
            if numbers := _passage_numbers(whole):
                out[-1] = _with_marker(out[-1], numbers)
            out.append(piece[len(piece.rstrip()) :] if "\n" in piece else "")  # keep a line break
            continue
        numbers = []

        def drop(attribution: re.Match) -> str:
            numbers.extend(_passage_numbers(attribution))
            return ""

        if lead := _LEADING_ATTRIBUTION.match(piece):
            numbers += _passage_numbers(lead)
            rest = piece[lead.end() :]
            piece = lead.group(1) + rest[:1].upper() + rest[1:]
        piece = _INLINE_ATTRIBUTION.sub(drop, piece)
        out.append(_with_marker(piece, numbers) if numbers else piece)
    return re.sub(r"[ \t]+(?=\n|$)", "", "".join(out))


def cited_sentences(answer: str) -> list[tuple[str, list[int]]]:
    """Each sentence of an answer, markers removed, with the passage numbers it cites."""
    out = []
    for piece in _pieces(_markers_inside(answer)):
        sentence = strip_markers(piece)
        if len(sentence) >= 3:  # not a stray marker or punctuation between sentences
            numbers = [n for m in _MARKER.finditer(piece) for n in marker_numbers(m.group(1))]
            out.append((sentence, list(dict.fromkeys(numbers))))
    return out


def cite(answer: str, passages: list[Passage], support: Support = lexical_support, min_support: float = 0.3) -> Cited:
    sentences = _pieces(_markers_inside(attributions_as_markers(answer)))
    used: list[int] = []
    dropped: list[int] = []
    out: list[str] = []
    for sentence in sentences:
        kept: list[int] = []

        def replace(match: re.Match) -> str:
            numbers = []
            for n in marker_numbers(match.group(1)):
                valid = 1 <= n <= len(passages) and support(sentence, passages[n - 1]) >= min_support
                (numbers if valid else dropped).append(n)
            kept.extend(numbers)
            return "".join(f"[{n}]" for n in dict.fromkeys(numbers))

        out.append(_MARKER.sub(replace, sentence))
        used.extend(kept)
    text = _tidy("".join(out))

    if not used and passages:
        text, used = _attach(text, passages, support, min_support)
    numbers = list(dict.fromkeys(used))
    return Cited(text, [to_citation(n, passages[n - 1]) for n in numbers], dropped)


def _attach(text: str, passages: list[Passage], support: Support, min_support: float) -> tuple[str, list[int]]:
    """Append ``[n]`` to each sentence that one passage supports well enough."""
    out, used = [], []
    for sentence in _pieces(text):
        body = sentence.rstrip()
        tail = sentence[len(body):]
        if len(strip_markers(body)) < 3:
            out.append(sentence)
            continue
        scores = [support(body, p) for p in passages]
        best = max(range(len(passages)), key=scores.__getitem__)
        if scores[best] >= min_support:
            used.append(best + 1)
            body = _with_marker(body, [best + 1])
        out.append(body + tail)
    return _tidy("".join(out)), used


def _tidy(text: str) -> str:
    text = re.sub(r"(\[\d+\])(?:[ \t]*\1)+", r"\1", text)  # "[1][1]" -> "[1]"
    text = re.sub(r"(\[\d+\])((?:\[\d+\])*)", lambda m: "".join(dict.fromkeys(re.findall(r"\[\d+\]", m.group(0)))), text)
    text = re.sub(r"[ \t]+([.،,؟?!])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def to_citation(n: int, passage: Passage) -> Citation:
    return Citation(
        n=n,
        doc_id=passage.doc_id,
        title=passage.title,
        chunk_id=passage.chunk_id,
        text=passage.text,
        start=passage.start,
        end=passage.end,
        score=passage.score,
        source=passage.source,
        date=passage.date,
        author=passage.author,
        url=passage.url,
        spans=passage.spans,
        pages=passage.pages,
    )
