"""HTML for the web UI, built from escaped text only.

Everything that comes from an article, a model or a user goes through ``html.escape`` before it
reaches the page, so markup inside an article is shown as text and never runs. Direction is set
per message from its language (Arabic right-to-left, English left-to-right) rather than once for
the whole chat, so mixed conversations stay readable.
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import urlparse

from assistant.arabic import detect_language
from assistant.by_source import COMPARED_NONE, BySource
from assistant.export import answer_markdown
from assistant.models import SPAN_GAP, Answer, Article, Citation, DocumentInfo, Filters, IndexStatus
from assistant.present import byline, outlet, page_label
from assistant.timeline import Timeline

_MARKER = re.compile(r"\[(\d+)\]")

# Interface strings in both languages: the UI does not know which language its reader prefers.
EMPTY_CHAT = (
    '<div class="empty-chat"><p dir="rtl" lang="ar">اسأل عن الأخبار المفهرسة بالعربية أو بالإنجليزية.</p>'
    '<p dir="ltr" lang="en">Ask about the indexed news, in Arabic or English.</p></div>'
)
EMPTY_VIEWER = (
    '<div class="viewer-empty"><p dir="ltr" lang="en">Click a citation such as [1] to read the passage in its article.</p>'
    '<p dir="rtl" lang="ar">انقر على إحالة مثل [1] لقراءة المقطع في مقاله.</p></div>'
)

# A question accepted while earlier ones are answered; Gradio's queue position shows under the chat.
WAITING = {
    "ar": "في الانتظار: يُجاب أولاً عن الأسئلة التي سبقته…",
    "en": "Waiting: questions asked before this one are answered first…",
}


# Under a question asked with filters: the outlets and dates its answer was limited to.
FILTERED = {"ar": "من المقالات فقط:", "en": "Only articles:"}


def filters_html(filters: Filters, language: str) -> str:
    dates = f"{filters.since or '…'} – {filters.until or '…'}" if filters.since or filters.until else ""
    only = " · ".join(x for x in (", ".join(filters.sources), dates) if x)
    return f'<div class="filters">{escape(FILTERED[language])} <bdi>{escape(only)}</bdi></div>'


def _dir(language: str) -> str:
    return "rtl" if language == "ar" else "ltr"


def _attrs(language: str) -> str:
    return f'dir="{_dir(language)}" lang="{language}"'


def _cite_link(turn: int, n: int, label: str, title: str = "", css: str = "cite", answer: int | None = None) -> str:
    """A citation link; ``answer``: which of a turn's compared answers (``ask --by-source``) it is in."""
    which = f' data-answer="{answer}"' if answer is not None else ""
    return (
        f'<a class="{css}" href="#" role="button" data-turn="{turn}" data-n="{n}"{which} '
        f'title="{escape(title)}">{label}</a>'
    )


_FIGURES = re.compile(r"\d+(?:[.,]\d+)*")


def _marked(text: str, differing: set[str]) -> str:
    """Escaped ``text``, its figures whose value is in ``differing``, and the names in it, marked as
    disagreeing."""
    if not differing:
        return escape(text)
    names = sorted((d for d in differing if d and not _FIGURES.fullmatch(d)), key=len, reverse=True)
    pattern = re.compile("|".join([*(re.escape(n) for n in names), _FIGURES.pattern]))
    out, cursor = [], 0
    for match in pattern.finditer(text):
        value = match.group(0) if match.group(0) in names else match.group(0).replace(",", "")
        if value in differing:
            out += [escape(text[cursor : match.start()]), f'<mark class="differs">{escape(match.group(0))}</mark>']
            cursor = match.end()
    return "".join(out) + escape(text[cursor:])


def answer_text_html(answer: Answer, turn: int, which: int | None = None, differing: set[str] = frozenset()) -> str:
    """The answer with each valid ``[n]`` marker as a link that opens the cited passage (and the
    numbers in ``differing`` marked)."""
    by_n = {c.n: c for c in answer.citations}
    out, cursor = [], 0
    for match in _MARKER.finditer(answer.text):
        out.append(_marked(answer.text[cursor : match.start()], differing))
        citation = by_n.get(int(match.group(1)))
        label = escape(match.group(0))
        out.append(_cite_link(turn, citation.n, label, citation.title, answer=which) if citation else label)
        cursor = match.end()
    out.append(_marked(answer.text[cursor:], differing))
    return "".join(out)


def _byline(item) -> str:
    return escape(byline(item))


def sources_html(answer: Answer, turn: int, which: int | None = None) -> str:
    if not answer.citations:
        return ""
    items = []
    for c in answer.citations:
        byline = _byline(c)
        title = escape(c.title or c.doc_id)
        items.append(
            f"<li>{_cite_link(turn, c.n, f'[{c.n}]', c.title, 'cite source-link', which)} "
            f'<span class="source-title" dir="auto">{title}</span>'
            + (f' <span class="byline" dir="auto">{byline}</span>' if byline else "")
            + "</li>"
        )
    heading = "المصادر" if answer.language == "ar" else "Sources"
    return f'<div class="sources"><div class="sources-heading">{heading}</div><ol>{"".join(items)}</ol></div>'


def _meta_html(answer: Answer) -> str:
    seconds = answer.timings.total_ms / 1000
    meta = f'<span class="model">{escape(answer.model)}</span> · {seconds:.1f} s'
    if not answer.notes:
        return f'<div class="meta" dir="ltr">{meta}</div>'
    notes = "".join(f"<li>{escape(note)}</li>" for note in answer.notes)
    return f'<details class="meta" dir="ltr"><summary>{meta}</summary><ul>{notes}</ul></details>'



def compared_html(compared: BySource, index: int) -> str:
    """Each outlet's answer side by side, with its sources; the numbers and names they disagree on
    marked."""
    language = detect_language(compared.question)
    if not compared.answers:
        return f'<div class="text">{escape(COMPARED_NONE[language])}</div>'
    differing = {d.value for d in compared.disagreements}
    columns = "".join(
        f'<div class="compared-answer{" refusal" if a.refused else ""}" {_attrs(a.language)}>'
        f'<div class="outlet" dir="auto">{escape(a.source)}</div>'
        f'<div class="text">{answer_text_html(a, index, k, differing)}</div>{sources_html(a, index, k)}</div>'
        for k, a in enumerate(compared.answers)
    )
    differences = ""
    if compared.disagreements:
        items = " · ".join(f"<bdi>{escape(d.value)}</bdi>: {escape(', '.join(d.sources))}" for d in compared.disagreements)
        differences = f'<div class="differences" dir="ltr">Where they differ · نقاط الاختلاف: {items}</div>'
    return f'<div class="compared-answers">{columns}</div>{differences}'


def actions_html(turn: dict, answer: Answer, index: int) -> str:
    """"Copy with sources" and a Markdown download of one answer: the page's script (CONVERSATION_JS)
    copies or saves the Markdown held here, so neither asks the server."""
    filters = Filters.model_validate(turn["filters"]) if turn.get("filters") else None
    text = "\n".join(answer_markdown(turn["question"], answer, filters)).strip() + "\n"
    notice = f'<span class="not-saved">{escape(turn["not_saved"])}</span>' if turn.get("not_saved") else ""
    return (
        f'<div class="answer-actions" dir="ltr">'
        f'<a href="#" role="button" class="copy-answer">Copy with sources</a> · '
        f'<a href="#" role="button" class="download-answer" data-name="answer-{index + 1}.md">Markdown</a>{notice}'
        f'<textarea class="answer-markdown" hidden="" readonly="">{escape(text)}</textarea></div>'
    )


def _message(role: str, language: str, body: str, extra_class: str = "") -> str:
    classes = " ".join(x for x in ("msg", role, extra_class) if x)
    return f'<div class="{classes}" {_attrs(language)}>{body}</div>'


def turn_html(turn: dict, index: int) -> str:
    """One exchange. ``turn``: question, language, and then waiting (in the queue), partial
    (streaming), answer or error."""
    language = turn.get("language") or detect_language(turn.get("question") or "")
    parts = []
    if turn.get("question"):
        shown = filters_html(Filters.model_validate(turn["filters"]), language) if turn.get("filters") else ""
        parts.append(_message("user", language, f'<div class="text">{escape(turn["question"])}</div>{shown}'))
    if turn.get("error"):
        parts.append(_message("bot", language, f'<div class="text">{escape(turn["error"])}</div>', "error"))
    elif turn.get("compared"):
        parts.append(_message("bot", language, compared_html(BySource.model_validate(turn["compared"]), index), "compared"))
    elif turn.get("answer"):
        answer = Answer.model_validate(turn["answer"])
        body = f'<div class="text">{answer_text_html(answer, index)}</div>' + sources_html(answer, index) + _meta_html(answer)
        body += actions_html(turn, answer, index)
        parts.append(_message("bot", answer.language, body, "refusal" if answer.refused else ""))
    elif turn.get("waiting"):  # "streaming" too: the answer is still to come
        parts.append(_message("bot", language, f'<div class="text">{escape(WAITING[language])}</div>', "streaming waiting"))
    else:
        waiting = "…" if not turn.get("partial") else escape(turn["partial"])
        parts.append(_message("bot", language, f'<div class="text">{waiting}</div>', "streaming"))
    return f'<div class="turn" data-turn="{index}">{"".join(parts)}</div>'


def conversation_html(turns: list[dict]) -> str:
    if not turns:
        return EMPTY_CHAT
    return "".join(turn_html(turn, i) for i, turn in enumerate(turns))


def _safe_url(url: str) -> str:
    """Only http(s) links: a ``javascript:`` URL in an article must not become a link."""
    return url if urlparse(url).scheme in ("http", "https") else ""


def _first_mark(i: int) -> str:
    return ' id="cited-passage"' if i == 0 else ""  # the viewer scrolls to it


def article_html(article: Article | None, citation: Citation, question: str = "") -> str:
    """The cited article with the passage highlighted (``<mark>``), or the passage alone when the
    article has left the index since the answer was given."""
    language = detect_language(citation.text)
    title = escape(citation.title or citation.doc_id)
    header = f'<div class="cite-label" dir="auto">[{citation.n}] {escape(question)}</div>' if question else ""
    if citation.pages:  # a PDF's passage: where to find it in the file
        header += f'<div class="cite-pages" dir="ltr">{escape(page_label(citation.pages))}</div>'
    spans = citation.shown_spans()
    if article is None or SPAN_GAP.join(article.text[a:b] for a, b in spans) != citation.text:
        runs = citation.text.split(SPAN_GAP) if citation.text.count(SPAN_GAP) == len(spans) - 1 else [citation.text]
        body = escape(SPAN_GAP).join(f"<mark{_first_mark(i)}>{escape(run)}</mark>" for i, run in enumerate(runs))
        missing = '<p class="notice" dir="ltr">This article is no longer in the index (or has changed); the cited passage is shown alone.</p>'
        return (
            f'<article class="source-article" {_attrs(language)}>{header}<h3>{title}</h3>{missing}'
            f'<div class="article-body">{body}</div></article>'
        )
    url = _safe_url(article.url)
    byline = _byline(article)
    link = f' · <a href="{escape(url)}" target="_blank" rel="noopener noreferrer">link</a>' if url else ""
    # Each run of sentences the model was shown is marked; the text between runs is not.
    body, cursor = "", 0
    for i, (start, end) in enumerate(spans):
        body += escape(article.text[cursor:start]) + f"<mark{_first_mark(i)}>{escape(article.text[start:end])}</mark>"
        cursor = end
    body += escape(article.text[cursor:])
    return (
        f'<article class="source-article" {_attrs(language)}>{header}<h3>{escape(article.title or article.doc_id)}</h3>'
        f'<div class="byline">{byline}{link} <span class="doc-id" dir="ltr">({escape(article.doc_id)})</span></div>'
        f'<div class="article-body">{body}</div></article>'
    )


EMPTY_TIMELINE = (
    '<div class="empty-chat"><p dir="rtl" lang="ar">اكتب موضوعاً لترى كيف روته المصادر يوماً بيوم.</p>'
    '<p dir="ltr" lang="en">Type a subject to see how the outlets told it, day by day.</p></div>'
)


def timeline_html(timeline: Timeline) -> str:
    """Periods in date order; in each, one line per outlet (merged copies name every outlet), its
    sentence and a citation link (``data-period``, ``data-line``) that opens the passage."""
    if not timeline.periods:
        note = f" ({timeline.undated} undated articles left out)" if timeline.undated else ""
        return f'<div class="empty-chat"><p dir="ltr">No dated article is about this{escape(note)}.</p></div>'
    parts = [
        f'<div class="timeline-summary" dir="ltr">{timeline.articles} articles, {len(timeline.periods)} '
        f'{escape(timeline.periods[0].unit)}s{f"; {timeline.undated} undated left out" if timeline.undated else ""}</div>'
    ]
    for i, period in enumerate(timeline.periods):
        label = f"week of {period.date}" if period.unit == "week" else period.date
        lines = []
        for j, line in enumerate(period.lines):
            outlets = " · ".join(escape(o or line.doc_id) for o in line.sources)
            link = (f'<a class="cite" href="#" role="button" data-period="{i}" data-line="{j}" '
                    f'title="{escape(line.citation.title)}">[{line.citation.n}]</a>')
            lines.append(
                f'<li class="timeline-line"><span class="outlets" dir="auto">{outlets}</span> '
                f'<span class="text" {_attrs(detect_language(line.text))}>{escape(line.text)}</span> {link}</li>'
            )
        summary = f'<p class="summary" {_attrs(detect_language(period.summary))}>{escape(period.summary)}</p>' if period.summary else ""
        parts.append(
            f'<section class="period" data-period="{i}"><h4 dir="ltr">{escape(label)} '
            f'<span class="count">({period.articles} article{"s" if period.articles != 1 else ""})</span></h4>'
            f'{summary}<ul>{"".join(lines)}</ul></section>'
        )
    parts += [f'<p class="notice" dir="ltr">{escape(note)}</p>' for note in timeline.notes]
    return "".join(parts)


def status_html(status: IndexStatus, llm: str) -> str:
    rows = [
        ("Articles", str(status.documents)),
        ("Passages (chunks)", str(status.chunks)),
        ("Embedding model", status.embedding_model),
        ("Language model", llm),
        ("Store", f"{status.store} (collection {status.collection})"),
    ]
    if status.incomplete_documents:
        rows.append(("Incomplete (re-add them)", ", ".join(status.incomplete_documents)))
    cells = "".join(f"<tr><th>{escape(k)}</th><td dir=\"auto\">{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="index-status" dir="ltr">{cells}</table>'


def library_rows(documents: list[DocumentInfo]) -> list[list]:
    return [[d.title, d.doc_id, outlet(d.source, d.doc_id), d.author, d.date, d.chunks] for d in documents]


def outlets(documents: list[DocumentInfo]) -> list[str]:
    """The outlets the indexed articles come from, for the chat's outlet filter."""
    return sorted({outlet(d.source, d.doc_id) for d in documents} - {""})
