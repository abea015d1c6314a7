"""``assistant bench conversations``: how fast saved conversations are listed, searched, opened and
written when a user has many (issue target: 1,000 conversations listed and searched in ≤ 300 ms).

A throwaway store in a temporary folder (never the user's) gets ``count`` conversations of
``turns`` answers each for the user measured, and as many for another user, so that the list has
to pick one user's rows out of the file. Questions, answers and cited passages are sentences of the
articles in ``seeds`` (Arabic news), with three citations per answer, like real answers. Each
operation is timed ``repeats`` times through the ``Assistant`` facade, which the UI and the API
call; the list is also encoded as the API's JSON reply.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from pathlib import Path

from pydantic import TypeAdapter

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.conversations import LOCAL_USER, login_user
from assistant.eval.archive import machine
from assistant.eval.metrics import median, percentile
from assistant.models import Answer, Citation, ConversationSummary

OTHER_USER = login_user("someone-else")
SUMMARIES = TypeAdapter(list[ConversationSummary])


def _sentences(seeds: Path) -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(seeds.glob("*.txt")))
    return [s.strip() for s in re.split(r"(?<=[.؟!])\s+", text) if 40 <= len(s.strip()) <= 400]


def _answer(rng: random.Random, sentences: list[str]) -> Answer:
    citations = [
        Citation(n=n, doc_id=f"doc{rng.randrange(10_000)}", title=rng.choice(sentences)[:90], chunk_id=f"doc:{n}",
                 text=" ".join(rng.sample(sentences, 3))[:700], start=0, end=700, score=0.5, source="عنب بلدي", date="2020-07-29",
                 url="https://www.enabbaladi.net/archives/402144")
        for n in (1, 2, 3)
    ]
    text = " ".join(f"{rng.choice(sentences)} [{n}]" for n in (1, 2, 3))
    return Answer(text=text, language="ar", citations=citations, model="embedded:qwen2.5-coder-1.5b-instruct-q4_k_m", question=rng.choice(sentences))


def _timed(call, repeats: int) -> dict:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": median(times), "p95_ms": percentile(times, 95), "max_ms": max(times), "result": result}


def run_conversations_bench(seeds: Path, count: int = 1000, turns: int = 4, repeats: int = 20, seed: int = 7) -> dict:
    sentences = _sentences(seeds)
    if len(sentences) < 10:
        raise ValueError(f"{seeds} holds too few sentences to write conversations from")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="assistant-bench-conversations-") as folder:
        assistant = Assistant(Settings(conversations={"path": Path(folder) / "conversations.sqlite3"}))
        started = time.perf_counter()
        writes = []
        for user in (LOCAL_USER, OTHER_USER):
            for _ in range(count):
                conversation_id = None
                for _ in range(turns):
                    t0 = time.perf_counter()
                    conversation_id, _ = assistant.save_turn(rng.choice(sentences)[:200], _answer(rng, sentences), conversation_id=conversation_id, user=user)
                    writes.append((time.perf_counter() - t0) * 1000)
        fill_s = time.perf_counter() - started
        some = assistant.conversations(LOCAL_USER, limit=1)[0]
        word = next(w for w in some.title.split() if len(w) > 5)
        queries = {"a word of a title": word, "a common word (في)": "في", "no match": "كاليدونيا", "Latin, no match": "caggins"}
        result = {
            "conversations_per_user": count, "turns_per_conversation": turns, "users": 2, "repeats": repeats,
            "file_mb": (Path(folder) / "conversations.sqlite3").stat().st_size / 1e6, "fill_seconds": fill_s,
            "write_turn": {"median_ms": median(writes), "p95_ms": percentile(writes, 95)},
            "machine": machine(),
        }
        listed = _timed(lambda: assistant.conversations(LOCAL_USER), repeats)
        result["list"] = {**_without(listed), "rows": len(listed["result"])}
        as_json = _timed(lambda: SUMMARIES.dump_json(assistant.conversations(LOCAL_USER)), repeats)
        result["list_as_api_json"] = _without(as_json)
        result["search"] = {}
        for label, query in queries.items():
            found = _timed(lambda q=query: assistant.conversations(LOCAL_USER, q), repeats)
            result["search"][label] = {**_without(found), "query": query, "rows": len(found["result"])}
        result["open_one"] = _without(_timed(lambda: assistant.conversation(some.id), repeats))
    return result


def _without(timed: dict) -> dict:
    return {k: v for k, v in timed.items() if k != "result"}


def format_conversations_table(result: dict) -> str:
    lines = [
        f"{result['conversations_per_user']} conversations of {result['turns_per_conversation']} answers for the user measured, "
        f"as many for another; file {result['file_mb']:.1f} MB (filled in {result['fill_seconds']:.1f} s)",
        f"{'':<34}{'rows':>6}{'median ms':>11}{'p95 ms':>9}",
        f"{'list (newest first)':<34}{result['list']['rows']:>6}{result['list']['median_ms']:>11.1f}{result['list']['p95_ms']:>9.1f}",
        f"{'list, as the API JSON':<34}{result['list']['rows']:>6}{result['list_as_api_json']['median_ms']:>11.1f}"
        f"{result['list_as_api_json']['p95_ms']:>9.1f}",
    ]
    for label, row in result["search"].items():
        lines.append(f"{'search: ' + label:<34}{row['rows']:>6}{row['median_ms']:>11.1f}{row['p95_ms']:>9.1f}")
    lines.append(f"{'open one (its turns)':<34}{result['turns_per_conversation']:>6}{result['open_one']['median_ms']:>11.1f}"
                 f"{result['open_one']['p95_ms']:>9.1f}")
    lines.append(f"{'save one answer (a transaction)':<34}{'':>6}{result['write_turn']['median_ms']:>11.1f}{result['write_turn']['p95_ms']:>9.1f}")
    return "\n".join(lines)
