"""Stage 2, clean: drop site furniture and repeated lines, settle the title and the date.

The cleaned body is what gets chunked and what citation offsets point into: one paragraph per
line, no blank lines. Cases seen in real scraped articles (see seeds/):
- the title repeated as the second line, sometimes several times glued together;
- the real headline as a short line repeated near the end while line 1 is the lede;
- a footer after "الأكثر قراءة" / "مقالات متعلقة" / "لم تشترك بعد" (site names, logos, URLs);
- lone widget lines ("ع ع ع") and bare URLs.
"""

from __future__ import annotations

import re
from collections import Counter

from assistant.arabic import normalize
from assistant.config import CleaningSettings
from assistant.dates import find_dateline, parse_date
from assistant.models import Article

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_URL_LINE = re.compile(r"^(https?://|www\.)\S+$|^[\w-]+(\.[\w-]+)*\.(com|net|org|info|news|tv|co|me|io)(/\S*)?$", re.I)
_SENTENCE_END = tuple(".!?؟۔")


def _key(line: str) -> str:
    """Comparison key: normalized, punctuation-insensitive."""
    return re.sub(r"[\W_]+", " ", normalize(line)).strip().lower()


def clean_article(article: Article, rules: CleaningSettings) -> Article:
    """A copy of ``article`` with a cleaned body, a settled title (body may come back empty) and
    its date as ISO ``YYYY-MM-DD``: the one it came with if that is a whole date, else the date
    of its dateline, else none."""
    raw = [_SPACES.sub(" ", ln).strip() for ln in article.text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    # Each line's page travels with it (a PDF's; 0 for text without pages).
    pages = article.line_pages if len(article.line_pages) == len(raw) else [0] * len(raw)
    paged = [(ln, page) for ln, page in zip(raw, pages) if ln]

    cut_keys = {_key(m) for m in rules.cut_at_lines}
    for i, (line, _) in enumerate(paged):
        if i > 0 and _key(line) in cut_keys:
            paged = paged[:i]
            break

    drop_keys = {_key(d) for d in rules.drop_lines}
    paged = [(ln, page) for ln, page in paged if _key(ln) not in drop_keys and not _URL_LINE.match(ln)]
    lines = [ln for ln, _ in paged]

    published = parse_date(article.date) if article.date.strip() else find_dateline("\n".join(lines))
    title = article.title.strip()
    if not title and len(lines) > 1:  # a single paragraph is body, not a title
        title = _pick_title(lines, rules.max_title_chars)

    title_key = _key(title)
    seen: set[str] = set()
    body: list[str] = []
    body_pages: list[int] = []
    for line, page in paged:
        key = _key(line)
        if not key or key in seen:
            continue
        # The title alone, or glued to itself several times, is not body text.
        if title_key and (key == title_key or not key.replace(title_key, "").strip()):
            continue
        seen.add(key)
        body.append(line)
        body_pages.append(page)
    line_pages = body_pages if article.line_pages else []
    return article.model_copy(update={"title": title, "text": "\n".join(body), "date": published, "line_pages": line_pages})


def _pick_title(lines: list[str], max_chars: int) -> str:
    first = lines[0]
    looks_like_lede = len(first) > max_chars or first.endswith(_SENTENCE_END)
    if looks_like_lede:
        counts = Counter(_key(ln) for ln in lines)
        for line in lines[1:]:
            if counts[_key(line)] > 1 and len(line) <= max_chars and not line.endswith(_SENTENCE_END):
                return line
    return first
