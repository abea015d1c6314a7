"""A saved conversation, or one answer of it, to take away: Markdown for people, JSON for programs.

The Markdown gives every citation its outlet, date, title, address and the quoted passage. Arabic
lines start with a right-to-left mark (U+200F): Markdown viewers (GitHub's, VS Code's, Obsidian's)
set each paragraph's direction from its first strong character, so the line reads right to left
even when it opens with a marker such as "[1]" or a number.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from assistant.arabic import detect_language
from assistant.errors import NotFoundError
from assistant.models import Answer, Citation, Conversation, ConversationTurn, Filters
from assistant.present import SOURCES_HEADING, outlet, page_label

Format = Literal["markdown", "json"]
RLM = "\u200f"
MEDIA_TYPES = {"markdown": "text/markdown; charset=utf-8", "json": "application/json"}
SUFFIXES = {"markdown": ".md", "json": ".json"}


def export(conversation: Conversation, format: Format = "markdown", turn: int | None = None) -> str:
    """The whole conversation, or only its answer number ``turn`` (1-based)."""
    if turn is not None:
        one = turn_of(conversation, turn)
        return _json(one) if format == "json" else "\n".join(turn_markdown(one)).rstrip() + "\n"
    return _json(conversation) if format == "json" else markdown(conversation)


def _json(item: Conversation | ConversationTurn) -> str:
    return json.dumps(item.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


def turn_of(conversation: Conversation, n: int) -> ConversationTurn:
    for turn in conversation.turns:
        if turn.n == n:
            return turn
    raise NotFoundError(f"conversation {conversation.id} has no answer {n} (it has {len(conversation.turns)})")


def file_name(conversation_id: str, format: Format, turn: int | None = None) -> str:
    return f"conversation-{conversation_id}{f'-answer-{turn}' if turn else ''}{SUFFIXES[format]}"


def directed(text: str) -> str:
    """Each line of ``text`` marked right to left when it is Arabic."""
    return "\n".join(RLM + line if line.strip() and detect_language(line) == "ar" else line for line in text.split("\n"))


def markdown(conversation: Conversation) -> str:
    lines = [f"# {directed(conversation.title)}", ""]
    when = conversation.created_at.strftime("%Y-%m-%d %H:%M UTC")
    lines += [f"*{len(conversation.turns)} question(s), started {when}; exported from the Arabic news assistant.*", ""]
    for turn in conversation.turns:
        lines += turn_markdown(turn)
    return "\n".join(lines).rstrip() + "\n"


def turn_markdown(turn: ConversationTurn) -> list[str]:
    return answer_markdown(turn.question, turn.answer, turn.filters, f"{turn.n}. ", turn.asked_at)


def answer_markdown(
    question: str, answer: Answer, filters: Filters | None = None, number: str = "", asked_at: datetime | None = None
) -> list[str]:
    """One question and its cited answer, as Markdown lines."""
    lines = [f"## {number}{directed(question)}", ""]
    if answer.question and answer.question != question:  # a follow-up, condensed with the turns before it
        lines += [f"*Answered as:* {directed(answer.question)}", ""]
    if filters and filters.active:
        lines += [f"*Asked {filters.describe()}.*", ""]
    lines += [directed(answer.text), ""]
    if answer.citations:
        lines += [f"**{directed(SOURCES_HEADING[answer.language])}**", ""]
        for citation in answer.citations:
            lines += citation_markdown(citation) + [""]
    when = f" · {asked_at.strftime('%Y-%m-%d %H:%M UTC')}" if asked_at else ""
    lines.append(f"*{answer.model or 'no model'}{when}*")
    return lines + [""]


def citation_markdown(c: Citation) -> list[str]:
    """"[1] outlet · date · title · p. 2", its address, then the quoted passage."""
    head = " · ".join(x for x in (outlet(c.source, c.doc_id), c.date, c.title or c.doc_id, page_label(c.pages)) if x)
    lines = [f"- {directed(f'[{c.n}] {head}')}"]
    if c.url:
        lines.append(f"  <{c.url}>")
    lines += [f"  > {line}" for line in directed(c.text).split("\n")]
    return lines
