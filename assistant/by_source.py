"""One question answered once per outlet (``ask --by-source``): each answer from that outlet's
passages only, side by side, and the numbers on which they disagree.

The outlets are those whose passages clear the answer's own similarity floor among the question's
candidates, most relevant first, at most ``answer.max_sources`` (each is one more model call).
Each answer is an ordinary ``Assistant.ask`` restricted to the outlet by the filters, so it has
the same refusals and citation checks, and can cite nothing from another outlet.

A disagreement is a number (written in figures or in Arabic words; ``assistant.numbers``) that
some answers give and others, which give numbers too, do not: "31 arrested" against "30
arrested". An answer without any number says nothing against it.

For a question that asks for a name ("who …", "من …", "what is the name …"), it is also a name:
the answer's name words are its content words that are not in the question and are taken from its
own cited passages (or, in Latin script, capitalized inside a sentence). Two answers that share none of them name
different people or things. Names are not compared for other questions, where answers that
mention different people need not disagree.
"""

from __future__ import annotations

import re
from decimal import Decimal
from assistant.arabic import STOPWORDS, detect_language, light_stem, normalize
from assistant.cite import strip_markers
from assistant.models import Answer, BySource, Disagreement, Filters, Passage, SourceAnswer
from assistant.numbers import numbers
from assistant.present import outlet


# The types live in assistant.models, beside the saved conversation turn that holds them.
__all__ = ["BySource", "Disagreement", "SourceAnswer", "COMPARED_NONE", "disagreements", "merged", "narrowed", "outlets_of"]

COMPARED_NONE = {"ar": "لا تتناول مقالات أي مصدر هذا السؤال.", "en": "No outlet's articles are about this question."}


def outlets_of(passages: list[Passage], relevant, limit: int) -> list[str]:
    """The outlets of ``passages`` (best first) whose passages ``relevant(passages)`` accepts, at
    most ``limit``. An article without an outlet (a file) is not an outlet."""
    by_outlet: dict[str, list[Passage]] = {}
    for passage in passages:
        if outlet(passage.source, passage.doc_id):
            by_outlet.setdefault(passage.source, []).append(passage)
    return [source for source, found in by_outlet.items() if relevant(found)][:limit]


def narrowed(filters: Filters | None, outlet: str) -> Filters:
    """``filters`` for one outlet (its dates kept)."""
    filters = filters or Filters()
    return Filters(sources=[outlet], since=filters.since, until=filters.until)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def disagreements(answers: list[SourceAnswer], question: str = "") -> list[Disagreement]:
    """The numbers given by some answers and not by others that give numbers, and, when
    ``question`` asks for a name, the names (refusals aside)."""
    return _number_disagreements(answers) + (_name_disagreements(answers, question) if asks_for_name(question) else [])


def _number_disagreements(answers: list[SourceAnswer]) -> list[Disagreement]:
    said = {a.source: {_plain(n) for n in numbers(strip_markers(a.text))} for a in answers if not a.refused}
    with_numbers = {source: values for source, values in said.items() if values}
    if len(with_numbers) < 2:
        return []
    found = []
    for value in sorted(set().union(*with_numbers.values()), key=lambda v: (len(v), v)):
        givers = [s for s, values in with_numbers.items() if value in values]
        others = [s for s in with_numbers if s not in givers]
        if others:
            found.append(Disagreement(value=value, sources=givers, others=others))
    return found


_NAME_QUESTION = re.compile(
    r"^\s*(?:who|whom|whose|what(?: is|'s| was) (?:the|his|her|their) name|(?:what|which) (?:person|man|woman|group|party|company)"
    r"|(?:ما|ماهو|ما هو|ما هي) اسم|من (?!اين|أين|اي |أي |خلال|بين|اجل|أجل|حيث))",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+")  # a hashtag's words apart: #سيرجي_سكريبال


def asks_for_name(question: str) -> bool:
    return bool(_NAME_QUESTION.match(question))


def _key(word: str) -> str:
    return light_stem(normalize(word).lower())


def _content_keys(text: str) -> set[str]:
    return {_key(w) for w in _WORD.findall(text) if len(w) >= 3 and normalize(w).lower() not in STOPWORDS and not w.isdigit()}


def name_words(answer: Answer, question: str) -> tuple[set[str], str]:
    """The keys of ``answer``'s name words (see the module's docstring) and their longest run, as
    the answer writes it."""
    text = strip_markers(answer.text)
    asked = _content_keys(question)
    cited = set().union(*(_content_keys(c.text) for c in answer.citations)) if answer.citations else set()
    keys: set[str] = set()
    runs: list[tuple[int, int]] = []
    for match in _WORD.finditer(text):
        word, key = match.group(0), _key(match.group(0))
        named = (
            len(word) >= 3 and normalize(word).lower() not in STOPWORDS and not word.isdigit() and key not in asked
            and (key in cited or (word[0].isupper() and word.isascii() and not _sentence_start(text, match.start())))
        )
        if not named:
            continue
        keys.add(key)
        if runs and not text[runs[-1][1] : match.start()].strip():  # the next word of the same run
            runs[-1] = (runs[-1][0], match.end())
        else:
            runs.append((match.start(), match.end()))
    longest = max(runs, key=lambda r: r[1] - r[0], default=(0, 0))
    return keys, text[longest[0] : longest[1]]


def _sentence_start(text: str, at: int) -> bool:
    before = text[:at].rstrip()
    return not before or before[-1] in ".!?:\n"


def _name_disagreements(answers: list[SourceAnswer], question: str) -> list[Disagreement]:
    named = {a.source: name_words(a, question) for a in answers if not a.refused}
    named = {source: found for source, found in named.items() if found[0]}
    found = []
    for source, (keys, phrase) in named.items():
        others = [other for other, (their, _) in named.items() if other != source and not keys & their]
        if others:
            found.append(Disagreement(kind="name", value=phrase, sources=[source], others=others))
    return found


def merged(compared: BySource) -> Answer:
    """The outlets' answers as one answer, to save in a conversation, export, search and carry as
    history: a paragraph per outlet ("outlet: its answer"), the citations numbered on across them."""
    if not compared.answers:
        language = detect_language(compared.question)
        return Answer(text=COMPARED_NONE[language], language=language, refused=True, question=compared.question)
    paragraphs, citations = [], []
    for answer in compared.answers:
        offset = len(citations)
        # cite() writes every kept marker as "[n]", n one of the answer's own citations.
        text = re.sub(r"\[(\d+)\]", lambda m: f"[{int(m.group(1)) + offset}]", answer.text)
        paragraphs.append(f"{answer.source}: {text}")
        citations += [c.model_copy(update={"n": c.n + offset}) for c in answer.citations]
    first = compared.answers[0]
    return Answer(
        text="\n\n".join(paragraphs), language=first.language, citations=citations, refused=all(a.refused for a in compared.answers),
        model=first.model, question=compared.question,
    )

