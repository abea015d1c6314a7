"""Stories to measure the timeline against (``assistant bench timeline``): events that several
outlets reported within a few days, found from an archive's titles alone, so that nobody's
judgement of relevance goes into the set.

Two articles of different outlets published at most ``window_days`` apart are one story when their
titles share at least ``shared`` rare words: words (compared as light stems, ≥ 4 letters, not
stopwords) in at most ``max_df`` titles of the whole archive. A story is a connected group of such
pairs with at least ``min_outlets`` outlets and at most ``max_articles`` articles (a bigger group is
a running theme, not one event). Its query is its rare title words that most of its articles share.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

from pydantic import BaseModel

from assistant.arabic import STOPWORDS, light_stem, normalize

_MIN_LETTERS = 4


class StoryArticle(BaseModel):
    doc_id: str
    source: str
    date: str
    title: str


class Story(BaseModel):
    query: str  # its most shared rare title words
    articles: list[StoryArticle]  # by date

    @property
    def outlets(self) -> set[str]:
        return {a.source for a in self.articles}


def title_terms(title: str) -> set[str]:
    words = (w.lower() for w in normalize(title).split())
    words = ("".join(c for c in w if c.isalnum()) for w in words)
    return {light_stem(w) for w in words if len(w) >= _MIN_LETTERS and w not in STOPWORDS and not w.isdigit()}


def find_stories(
    articles: list[StoryArticle], window_days: int = 3, shared: int = 2, max_df: int = 30, min_outlets: int = 2,
    max_articles: int = 12,
) -> list[Story]:
    """Stories among dated, titled articles with an outlet (see the module's docstring)."""
    articles = [a for a in articles if a.date and a.title and a.source]
    terms = [title_terms(a.title) for a in articles]
    df = Counter(t for ts in terms for t in ts)
    rare = [{t for t in ts if df[t] <= max_df} for ts in terms]
    by_term: dict[str, list[int]] = defaultdict(list)
    for i, ts in enumerate(rare):
        for t in ts:
            by_term[t].append(i)
    days = [date.fromisoformat(a.date) for a in articles]
    parent = list(range(len(articles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(articles)):
        candidates = Counter(j for t in rare[i] for j in by_term[t] if j > i)
        for j, common in candidates.items():
            if common >= shared and articles[i].source != articles[j].source and abs((days[i] - days[j]).days) <= window_days:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(articles)):
        groups[root(i)].append(i)
    stories = []
    for members in groups.values():
        if len(members) > max_articles or len({articles[i].source for i in members}) < min_outlets:
            continue
        counts = Counter(t for i in members for t in rare[i])
        common = [t for t, n in counts.most_common() if n >= max(2, len(members) // 2)]
        words = _words_of(common, [articles[i].title for i in members])
        members.sort(key=lambda i: (articles[i].date, articles[i].doc_id))
        stories.append(Story(query=" ".join(words), articles=[articles[i] for i in members]))
    return sorted(stories, key=lambda s: (s.articles[0].date, s.query))


def _words_of(stems: list[str], titles: list[str]) -> list[str]:
    """The title words, as written in the first title that has them, of these light stems."""
    words = []
    for stem_ in stems[:4]:
        for title in titles:
            found = next((w for w in title.split() if title_terms(w) == {stem_}), None)
            if found:
                words.append("".join(c for c in found if c.isalnum()))
                break
    return words
