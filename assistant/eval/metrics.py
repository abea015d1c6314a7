"""Every metric of the eval suite and the benchmarks, defined once.

Retrieval (a question's *source articles* are the articles that support its answer; passages are
ranked by the retriever, and an article counts once, however many of its passages come back):

- **rank**: the 1-based position of the first source article among the *distinct* articles
  retrieved (``first_relevant_rank``); None when no source article is retrieved.
- **hit@k**: the share of (answerable) questions whose source article is among the first k
  distinct articles retrieved (``hit_at``). With one source per question, as in SQuAD data,
  this is recall@k.
- **MRR**: the mean over questions of 1/rank, counting 0 past rank 10 or without a hit: MRR@10
  (``mean_reciprocal_rank``).

Answers (a question has one or more gold answers; any one counts):

- **contains**: a gold answer occurs in the answer after ``answer_normalize`` (the eval suite's
  accuracy rule: our answers are cited sentences, not spans); ``contains_answer``.
- **token F1**: the best token-overlap F1 with a gold answer; ``token_f1`` (after
  ``answer_normalize``) and ``squad_f1`` (after ``squad_normalize``).
- **exact match**: the answer equals a gold answer after ``squad_normalize``; ``exact_match``.

Visible defects of an answer's text (``answer_defects``, counted by the eval suite): a bare
article word ("ال المتحدث …"), a word mixing Latin and Arabic letters ("Dاعsh"), Arabic outside
parentheses in an English answer, a citation marker inside a number ("1 [1].5"), and a number
that neither the question nor the passage citing it holds.

Documents: ``text_match`` (difflib's ratio of text read from a PDF or DOCX to its source, after NFKC
and whitespace folding) and ``character_accuracy`` (1 − Levenshtein distance / source length, for OCR).

Aggregates: ``share`` (the share of true flags), ``mean``, ``percentile`` (inclusive method) and
``median`` (its 50th percentile).
"""

from __future__ import annotations

import difflib
import re
import statistics
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from rapidfuzz.distance import Levenshtein

from assistant.arabic import normalize
from assistant.cite import cited_sentences, invented_numbers, strip_markers

MRR_CUTOFF = 10
_WORD = re.compile(r"\w+")
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")


_BARE_ARTICLE = re.compile(r"(?:^|\s)ال(?:\s|$)")
_MIXED_WORD = re.compile(r"[A-Za-z][\u0600-\u06FF]|[\u0600-\u06FF][A-Za-z]")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06FF]")
_MARKER_IN_NUMBER = re.compile(r"\d\s*(?:\[\d+\])+\s*[.,٫]\d")
DEFECTS = ("bare_article", "mixed_script_word", "arabic_outside_parentheses", "marker_inside_number", "invented_number_cited")


# --- text normalization ------------------------------------------------------------------------
def words(text: str) -> list[str]:
    """The word tokens (runs of letters, digits and underscores) of ``text``, as it is."""
    return _WORD.findall(text)


def answer_normalize(text: str) -> str:
    """For the eval suite's own rules (``contains_answer``, ``token_f1``): citation markers dropped,
    Arabic normalized (tashkeel, hamza and ta marbuta forms, digits), lowercased, then the words
    joined by single spaces (punctuation dropped). Articles such as "ال" are kept."""
    return " ".join(words(normalize(strip_markers(text)).lower()))


def _is_punctuation(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")  # P*: also ، ؛ ؟ « »


def squad_normalize(text: str) -> str:
    """For SQuAD exact match and F1 (the answer benchmark), as in the MLQA evaluation script's
    ``normalize_answer`` after our Arabic normalization: markers dropped, Arabic normalized,
    lowercased, punctuation and articles removed, spaces collapsed. Like MLQA, every "ال" is
    removed, not only the word-initial article, so that the numbers stay comparable with
    published MLQA/XQuAD scores (both sides are treated alike)."""
    text = "".join(ch for ch in normalize(strip_markers(text)).lower() if not _is_punctuation(ch))
    text = _EN_ARTICLES.sub(" ", text).replace("ال", " ")
    return " ".join(text.split())


# --- answer matching ---------------------------------------------------------------------------
def contains_answer(answer: str, golds: list[str]) -> bool:
    """Whether a gold answer occurs in the answer, both after ``answer_normalize``."""
    text = f" {answer_normalize(answer)} "
    for gold in golds:
        gold = answer_normalize(gold)
        if gold and (f" {gold} " in text or gold in text):
            return True
    return False


def token_f1(answer: str, golds: list[str], norm: Callable[[str], str] = answer_normalize) -> float:
    """The best token F1 between the answer and a gold answer, both normalized by ``norm``."""
    predicted = norm(answer).split()
    best = 0.0
    for gold in golds:
        truth = norm(gold).split()
        common = sum((Counter(predicted) & Counter(truth)).values())
        if common:
            precision, recall = common / len(predicted), common / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def exact_match(answer: str, golds: list[str]) -> float:
    """SQuAD exact match: 1.0 when the answer equals a gold answer after ``squad_normalize``."""
    return float(any(squad_normalize(answer) == squad_normalize(g) for g in golds))


def squad_f1(answer: str, golds: list[str]) -> float:
    """SQuAD token F1: ``token_f1`` after ``squad_normalize``."""
    return token_f1(answer, golds, squad_normalize)


# --- visible defects ---------------------------------------------------------------------------
def answer_defects(text: str, language: str, question: str = "", citations: Sequence = ()) -> list[str]:
    """The ``DEFECTS`` an answer's text shows. ``citations``: what each marker cites (``n``,
    ``title``, ``text``: a ``Citation``), to find numbers no cited passage holds."""
    found = []
    if _BARE_ARTICLE.search(text):
        found.append("bare_article")
    if _MIXED_WORD.search(text):
        found.append("mixed_script_word")
    if language == "en" and _ARABIC_LETTER.search(re.sub(r"\([^()]*\)", "", text)):
        found.append("arabic_outside_parentheses")
    if _MARKER_IN_NUMBER.search(text):
        found.append("marker_inside_number")
    by_n = {c.n: c for c in citations}
    if any(n in by_n and invented_numbers(sentence, by_n[n], question) for sentence, cited in cited_sentences(text) for n in cited):
        found.append("invented_number_cited")
    return found



# --- retrieval ---------------------------------------------------------------------------------
def first_relevant_rank(doc_ids: Sequence[str], relevant: Iterable[str]) -> int | None:
    """The 1-based rank of the first relevant article among the distinct articles of ``doc_ids``
    (the retrieved passages' articles, best first): an article counts once, at its first
    passage. None when no relevant article is retrieved."""
    relevant = set(relevant)
    for rank, doc_id in enumerate(dict.fromkeys(doc_ids), start=1):
        if doc_id in relevant:
            return rank
    return None


def hit_at(ranks: Sequence[int | None], k: int) -> float | None:
    """hit@k: the share of questions whose first source article is at distinct-article rank k or
    better (recall@k with one source per question). None without questions."""
    return share([r is not None and r <= k for r in ranks])


def mean_reciprocal_rank(ranks: Sequence[int | None], cutoff: int = MRR_CUTOFF) -> float | None:
    """MRR@``cutoff``: the mean of 1/rank, a rank past ``cutoff`` or None counting 0. None
    without questions."""
    return mean([1 / r if r is not None and r <= cutoff else 0.0 for r in ranks])


def retrieval_metrics(ranks: Sequence[int | None]) -> dict[str, float | None]:
    """hit@1, hit@5 and MRR@10 of the questions' distinct-article ranks."""
    return {"hit_at_1": hit_at(ranks, 1), "hit_at_5": hit_at(ranks, 5), "mrr": mean_reciprocal_rank(ranks)}


# --- document text ------------------------------------------------------------------------------
def folded_text(text: str) -> str:
    """Text as the document benchmarks compare it: NFKC (presentation forms back to letters) and
    every run of whitespace as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def text_match(extracted: str, source: str) -> float:
    """How close text read from a document is to its source: difflib's ratio of the two after
    ``folded_text`` (1.0 is identical; text in reversed word or letter order scores far lower)."""
    return difflib.SequenceMatcher(None, folded_text(extracted), folded_text(source), autojunk=False).ratio()


def character_accuracy(recognized: str, source: str) -> float:
    """OCR's character accuracy: 1 − the Levenshtein distance from the source / its length, both
    after ``folded_text`` (0 when it is further than that)."""
    reference = folded_text(source)
    distance = Levenshtein.distance(folded_text(recognized), reference)
    return max(0.0, 1 - distance / len(reference)) if reference else float(not folded_text(recognized))


# --- aggregates --------------------------------------------------------------------------------
def mean(values: Sequence[float]) -> float | None:
    """The arithmetic mean; None for no values."""
    return sum(values) / len(values) if values else None


def share(flags: Sequence[bool]) -> float | None:
    """The share of true flags; None for no flags (a rate that could not be computed)."""
    return mean([bool(f) for f in flags])


def percentile(values: Sequence[float], pct: int) -> float:
    """The ``pct``-th percentile (1–99), by linear interpolation between the sorted values
    (``statistics.quantiles``' inclusive method); the value itself for one value, 0.0 for none."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def median(values: Sequence[float]) -> float | None:
    """The median (the 50th ``percentile``: the middle value, or the mean of the two middle
    ones); None for no values."""
    return percentile(values, 50) if values else None
