"""One question answered once per outlet (``ask --by-source``): each answer from that outlet's
passages only, side by side, and the numbers on which they disagree.

The outlets are those whose passages clear the answer's own similarity floor among the question's
candidates, most relevant first, at most ``answer.max_sources`` (each is one more model call).
Each answer is an ordinary ``Assistant.ask`` restricted to the outlet by the filters, so it has
the same refusals and citation checks, and can cite nothing from another outlet.

A disagreement is a number (written in figures or in Arabic words; ``assistant.numbers``) that
some answers give and others, which give numbers too, do not: "31 arrested" against "30
arrested". An answer without any number says nothing against it.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from assistant.cite import strip_markers
from assistant.models import Answer, Filters, Passage
from assistant.numbers import numbers
from assistant.present import outlet


class SourceAnswer(Answer):
    """An answer from one outlet's passages only."""

    source: str


class Disagreement(BaseModel):
    kind: str = "number"
    value: str  # the number, as a plain decimal ("31", "1500", "2.5")
    sources: list[str]  # the outlets whose answer gives it
    others: list[str]  # the outlets whose answer gives other numbers, not this one


class BySource(BaseModel):
    question: str
    answers: list[SourceAnswer] = Field(default_factory=list)  # the most relevant outlet first
    disagreements: list[Disagreement] = Field(default_factory=list)


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


def disagreements(answers: list[SourceAnswer]) -> list[Disagreement]:
    """The numbers given by some answers and not by others that give numbers (refusals aside)."""
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
