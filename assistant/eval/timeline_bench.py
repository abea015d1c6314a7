"""``assistant bench timeline``: the timeline against stories several outlets told
(``assistant.eval.stories``), on an index of a JSON Lines archive (the configured store).

For each story whose articles are all in the index, the timeline over the whole index of its first
article's title (``--query-from title``: a reader asks for the story of a headline; recall is then
over the story's other articles) or of its shared rare title words (``words``; recall over all):
- **recall**: the share of the story's articles the timeline gathered (in any period);
- **dates**: the share of those found under the period of their own publication date;
- **lines**: over every line, whether its citation quotes its article at its offsets and whether it
  stands in its article's period;
- **time**: median and p95 seconds of ``Assistant.timeline``; the process's peak memory, and its
  resident memory after the warm-up, half the stories and all of them;
- **the floor**: each story article's relevance to its query, and the floor that would keep 90 %
  and 95 % of them (what ``timeline.min_score`` is fitted from);
- a sample of periods written as Markdown (``--sample``), each with its story's titles, each line to
  be marked by hand ``[x]`` (about the story) or ``[-]`` (not). The precision is counted from those
  marks (``--marks``: files marked before), not guessed. A mark belongs to an article and a story's
  query, so a run with another floor or index reuses the marks of the lines it shares with the
  marked ones and writes them in its own sample: only its new lines are left to mark.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from assistant.arabic import detect_language
from assistant.assistant import Assistant
from assistant.embed import off_topic_floor
from assistant.eval.archive import archive_articles, machine
from assistant.eval.latency import peak_rss_mb, rss_mb
from assistant.eval.metrics import median, percentile
from assistant.eval.stories import Story, StoryArticle, find_stories, title_terms
from assistant.timeline import Timeline, TimelineBuilder, kept, period_of


def story_query(story: Story, query_from: str) -> tuple[str, list[StoryArticle]]:
    """What the timeline is asked for a story, and the articles it should find: its first article's
    title and the story's other articles (``title``: a reader asks for the story of a headline), or
    its shared rare title words and all its articles (``words``)."""
    if query_from == "title":
        return story.articles[0].title, story.articles[1:]
    return story.query, story.articles


def run_timeline_bench(
    assistant: Assistant, data, limit: int | None = None, seed: int = 7, sample_periods: int = 50, marks: list[Path] | None = None,
    query_from: str = "title",
) -> dict:
    indexed = {d.doc_id for d in assistant.documents()}
    articles = [
        StoryArticle(doc_id=a.doc_id, source=a.source, date=a.date, title=a.title)
        for a in _cleaned(archive_articles(data, assistant.settings), assistant)
    ]
    stories = [s for s in find_stories(articles) if all(a.doc_id in indexed for a in s.articles) and s.query]
    if limit:
        stories = random.Random(seed).sample(stories, min(limit, len(stories)))
    builder = TimelineBuilder(assistant.index, assistant.embedder, assistant.settings.timeline, assistant.settings.retrieval)
    rows, seconds = [], []
    timelines: list[tuple[Story, Timeline, dict[str, float]]] = []
    assistant.timeline("warm-up")  # loads the embedder and the index: not timed
    memory = [rss_mb()]  # after the warm-up, then after each story: flat, or growing with the timelines
    articles_seen: dict[str, str] = {}  # doc_id -> cleaned text, for checking the lines' citations
    for story in stories:
        query, expected = story_query(story, query_from)
        started = time.perf_counter()
        timeline = assistant.timeline(query)
        seconds.append(time.perf_counter() - started)
        found = {doc_id: p for p in timeline.periods for doc_id in p.doc_ids}
        wanted = [a.doc_id for a in expected]
        hits = [d for d in wanted if d in found]
        dated = [a for a in expected if a.doc_id in found and found[a.doc_id].date == period_of(a.date, found[a.doc_id].unit)]
        article_relevance = _article_relevance(builder, query)
        timelines.append((story, timeline, article_relevance))
        terms = title_terms(story.query)  # the story's rare title words, whatever the query
        lines = [line for p in timeline.periods for line in p.lines]
        checked = _checked_lines(assistant, timeline, articles_seen)
        rows.append({"query": query, "articles": len(wanted), "outlets": len(story.outlets), "found": len(hits),
                     "dated_right": len(dated), "periods": len(timeline.periods), "lines": len(lines),
                     "lines_with_story_word": sum(bool(terms & title_terms(line.text)) for line in lines),
                     "lines_cited": checked["cited"], "lines_in_their_period": checked["in_period"], "seconds": seconds[-1],
                     "relevance": [article_relevance.get(a.doc_id, 0.0) for a in expected],
                     "best": next(iter(article_relevance.values()), 0.0), "off_topic": off_topic_floor(assistant.embedder.model_id, detect_language(query))})
        memory.append(rss_mb())
    total = sum(r["articles"] for r in rows)
    found = sum(r["found"] for r in rows)
    ordered = sorted(r for row in rows for r in row["relevance"])  # each story article's relevance
    result = {
        "stories": len(rows), "query_from": query_from, "story_articles": total, "indexed_articles": len(indexed),
        "recall": found / total if total else 0.0,
        "story_recall_mean": sum(r["found"] / r["articles"] for r in rows) / len(rows) if rows else 0.0,
        "dated_right": sum(r["dated_right"] for r in rows) / found if found else 0.0,
        # A rough, automatic stand-in for precision: a line with none of its story's rare title words
        # is often about something else (or says it in other words). The precision is counted by hand.
        "lines": (lines := sum(r["lines"] for r in rows)),
        # Every line's citation quotes its article at its offsets, and every line stands in the
        # period of its article's date: checked over all lines, not a sample.
        "lines_cited": _share(sum(r["lines_cited"] for r in rows), lines),
        "lines_in_their_period": _share(sum(r["lines_in_their_period"] for r in rows), lines),
        "lines_with_story_word": _share(sum(r["lines_with_story_word"] for r in rows), sum(r["lines"] for r in rows)),
        "seconds": {"median": median(seconds), "p95": percentile(seconds, 95)} if seconds else {},
        "floor": builder.floor,
        "margin": builder.margin,
        "gap": builder.gap,
        "floor_for_recall": {"0.90": _quantile(ordered, 0.10), "0.95": _quantile(ordered, 0.05)},
        "peak_rss_mb": max(peak_rss_mb(), *memory),  # the kernel's high-water mark can lag a reading
        "rss_mb": {"after_warm_up": memory[0], "after_half": memory[len(memory) // 2], "after_last": memory[-1]},
        "rows": rows,
        "sample": (sample := _sample(timelines, sample_periods, seed, read_marks(marks or []), assistant.embedder.model_id)),
        "precision": precision_of(sample) if marks else None,
        "machine": machine(),
    }
    if marks:  # what stricter rules would give, from the same marks
        result["rules"] = rule_table(result, stricter_rules(builder.floor, builder.margin, builder.gap))
    return result


def _cleaned(articles, assistant: Assistant):
    from assistant.clean import clean_article

    for article in articles:
        yield clean_article(article, assistant.settings.cleaning)


def _checked_lines(assistant: Assistant, timeline: Timeline, texts: dict[str, str]) -> dict[str, int]:
    """How many of the timeline's lines (and their copies) quote their article exactly at their
    citation's offsets, and how many stand in the period of their article's date."""
    cited = in_period = 0
    for period in timeline.periods:
        for line in period.lines:
            quotes = [line.citation, *line.copies]
            for c in quotes:
                if c.doc_id not in texts:
                    article = assistant.article(c.doc_id)
                    texts[c.doc_id] = article.text if article else ""
            cited += all(texts[c.doc_id][c.start : c.end] == c.text and c.text for c in quotes) and line.text == line.citation.text
            in_period += all(period_of(c.date, period.unit) == period.date for c in quotes)
    return {"cited": cited, "in_period": in_period}


def _article_relevance(builder: TimelineBuilder, query: str) -> dict[str, float]:
    """Each candidate article's best passage relevance to the query, whatever the floor and margin
    (an article left out is 0), most relevant first."""
    vector = builder.embedder.embed_queries([query])[0]
    scored, _ = builder.relevant(query, vector, None, every_candidate=True)
    stored = builder.index.fetch([cid for cid, _ in scored])
    best: dict[str, float] = {}
    for cid, score in scored:
        doc_id = stored[cid].meta["doc_id"] if cid in stored else None
        if doc_id is not None:
            best.setdefault(doc_id, score)
    return best


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _quantile(ordered: list[float], share: float) -> float | None:
    return ordered[int(share * (len(ordered) - 1))] if ordered else None


def _sample(
    timelines: list[tuple[Story, Timeline, dict[str, float]]], count: int, seed: int, marks: dict[tuple[str, str], bool], timeline_model: str,
) -> list[dict]:
    """Periods drawn at random, each line with its mark when there is one, and its article's
    relevance beside the query's best (what another floor or margin would decide on)."""
    periods = [(story, timeline, scores, p) for story, timeline, scores in timelines for p in timeline.periods]
    chosen = random.Random(seed).sample(periods, min(count, len(periods)))
    return [
        {"query": timeline.query, "period": p.date, "unit": p.unit, "titles": [f"{a.source} {a.date}: {a.title}" for a in story.articles],
         "best": next(iter(scores.values()), 0.0), "off_topic": off_topic_floor(timeline_model, detect_language(timeline.query)),
         "lines": [{"sources": line.sources, "text": line.text, "doc_id": line.doc_id, "relevance": scores.get(line.doc_id, 0.0),
                    "relevant": marks.get((timeline.query, line.doc_id))} for line in p.lines]}
        for story, timeline, scores, p in chosen
    ]


def rule_table(result: dict, rules: list[tuple[float, float, float]]) -> list[dict]:
    """Recall and hand-marked precision that other rules (floor, margin, gap) would give, from one
    run: recall from each story article's relevance, precision from the marked sample lines the rule
    keeps. Only rules at least as strict as the run's own are known (a looser one adds lines
    nobody marked)."""
    table = []
    for floor, margin, gap in rules:
        found = [kept(r, row["best"], floor, margin, row["off_topic"], gap) for row in result["rows"] for r in row["relevance"]]
        marked = [line["relevant"] for item in result["sample"] for line in item["lines"]
                  if line["relevant"] is not None and kept(line["relevance"], item["best"], floor, margin, item["off_topic"], gap)]
        table.append({"floor": floor, "margin": margin, "gap": gap, "recall": _share(sum(found), len(found)),
                      "precision": _share(sum(marked), len(marked)), "marked_lines": len(marked)})
    return table


def stricter_rules(floor: float, margin: float, gap: float) -> list[tuple[float, float, float]]:
    """The run's rule, higher floors (with and without the margin), and narrower gaps."""
    floors = [round(floor + step / 100, 2) for step in range(0, 14, 2)]
    gaps = [g for g in (0.35, 0.30, 0.25, 0.20) if gap <= 0 or g < gap]
    return ([(f, m, gap) for m in sorted({0.0, margin}) for f in floors]
            + [(floor, margin, g) for g in gaps])


_MARK = {True: "x", False: "-", None: " "}


def sample_markdown(result: dict) -> str:
    """The sampled periods, each line marked as far as earlier marks go, the rest to mark by hand."""
    out = ["# Timeline periods to check by hand", "",
           "Mark a line `[x]` when it is about the story its query stands for (the titles under each heading), `[-]` when not.", ""]
    for n, item in enumerate(result["sample"], start=1):
        out += [f"## {n}. {item['query']} — {item['unit']} {item['period']}", ""]
        out += [f"> {title}" for title in item.get("titles", [])] + [""]
        out += [f"- [{_MARK[line.get('relevant')]}] **{' · '.join(line['sources'])}** ({line['doc_id']}): {line['text']}"
                for line in item["lines"]]
        out.append("")
    return "\n".join(out)


_HEADING = re.compile(r"^## \d+\. (?P<query>.*) — (?:day|week) \d{4}-\d{2}-\d{2}$")
_LINE = re.compile(r"^- \[(?P<mark>[ xX-])\] \*\*.*?\*\* \((?P<doc_id>[^)]+)\):")


def read_marks(files: list[Path]) -> dict[tuple[str, str], bool]:
    """(query, doc_id) -> about the story or not, from samples marked by hand (later files win)."""
    marks: dict[tuple[str, str], bool] = {}
    for file in files:
        query = None
        for line in file.read_text(encoding="utf-8").splitlines():
            if found := _HEADING.match(line):
                query = found["query"]
            elif (found := _LINE.match(line)) and query is not None and found["mark"] != " ":
                marks[(query, found["doc_id"])] = found["mark"] in "xX"
    return marks


def precision_of(sample: list[dict]) -> dict:
    """The precision of the sampled lines that carry a mark, and how many still want one."""
    lines = [line for item in sample for line in item["lines"]]
    checked = [line["relevant"] for line in lines if line["relevant"] is not None]
    whole = [item for item in sample if all(line["relevant"] is not None for line in item["lines"])]
    return {"lines": len(lines), "checked": len(checked), "relevant": sum(checked),
            "precision": sum(checked) / len(checked) if checked else None, "periods_checked": len(whole), "periods": len(sample)}


def format_timeline_table(result: dict) -> str:
    s = result["seconds"]
    floors = result["floor_for_recall"]
    rss = result["rss_mb"]
    return "\n".join([
        f"{result['stories']} stories asked by their {_ASKED[result['query_from']]}, {result['story_articles']} articles to find, "
        f"over an index of {result['indexed_articles']} articles",
        f"recall of the stories' articles: {result['recall']:.3f} (mean per story {result['story_recall_mean']:.3f}); "
        f"under their own date: {result['dated_right']:.3f}",
        f"lines citing their article's text exactly: {_share_text(result['lines_cited'])}; standing in their article's period: "
        f"{_share_text(result['lines_in_their_period'])} (all {result['lines']} lines)",
        f"lines holding one of their story's rare title words: {_share_text(result['lines_with_story_word'])} (an automatic stand-in for precision)",
        f"timeline seconds: median {s.get('median', 0):.2f}, p95 {s.get('p95', 0):.2f}; peak memory {result['peak_rss_mb']:.0f} MB; "
        f"resident after the warm-up, half the stories, all of them: {rss['after_warm_up']:.0f}, {rss['after_half']:.0f}, {rss['after_last']:.0f} MB",
        f"floor {result['floor']:.3f}, margin {result['margin']:.3f}, gap {result.get('gap', 0):.3f}; the floor alone that keeps 90% of the stories' articles: {floors['0.90']}, 95%: {floors['0.95']}",
        *([_precision_line(result["precision"])] if result.get("precision") else []),
        *[f"  floor {r['floor']:.2f}, margin {r['margin']:.2f}, gap {r.get('gap', 0):.2f}: recall {_share_text(r['recall'])}, "
          f"precision {_share_text(r['precision'])} ({r['marked_lines']} marked lines)" for r in result.get("rules") or []],
    ])


_ASKED = {"title": "first title (its other articles to find)", "words": "shared rare title words"}


def _share_text(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.3f}"


def _precision_line(p: dict) -> str:
    return (f"precision by hand: {_share_text(p['precision'])} ({p['relevant']} of {p['checked']} marked lines are about their story; "
            f"{p['lines'] - p['checked']} of the sample's {p['lines']} lines unmarked; {p['periods_checked']} of {p['periods']} periods wholly marked)")
