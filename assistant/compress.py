"""Stage 7a, compress: the retrieved passages cut down to the sentences that bear on the question,
within the answer prompt's token budget (``answer.prompt_tokens``).

On a CPU the model's reading of the prompt is most of the wait for the first token (the embedded
model reads ~70 tokens a second on 2 cores), so the passages are what the budget is spent on.
Each passage's sentences are scored against the question (embedding similarity plus the share
of the question's terms they hold, the same score the extractive answerer quotes by) and taken
best first, across passages, while they fit. A passage keeps its chosen sentences in article
order; runs that are not adjacent are joined by ``SPAN_GAP`` (`` … ``), and ``Passage.spans`` records the exact
character offsets of each run in the article, so a citation points at what the model was shown.
A passage none of whose sentences fit is not shown at all.

The sentences' vectors are the ones stored at ingest (``embedding.sentences``, embedded with the
article's title as the index embeds them; a chunk of one sentence has its own vector); only the
others are embedded here, in the same form. Embedding a question's dozen sentences took ~500 ms on
2 cores, before the model could read a token.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.arabic import lexical_tokens
from assistant.chunk import MAX_SENTENCE_CHARS, pages_of, sentence_spans
from assistant.embed import Embedder
from assistant.models import SPAN_GAP, Passage
from assistant.store import ChunkSentences
# Without the model's tokenizer (Ollama has no tokenize endpoint): characters per token of the Qwen2.5
# tokenizer (the embedded model's, and that of Ollama's default qwen2.5:7b-instruct), for Arabic
# letters and for all other characters, fitted by least squares on the seeds and the prompts
# (docs/experiments.md, 2026-11-30).
CHARS_PER_TOKEN = {"arabic": 2.63, "other": 4.37}
_ARABIC_CHARS = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")

TokenCounter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """The text's size in Qwen2.5 tokens, estimated from its characters."""
    arabic = len(_ARABIC_CHARS.findall(text))
    return math.ceil(arabic / CHARS_PER_TOKEN["arabic"] + (len(text) - arabic) / CHARS_PER_TOKEN["other"] - 1e-9)


@dataclass
class Sentence:
    passage: int  # index into the passages
    start: int  # offsets into the passage's text
    end: int
    text: str


def sentence_scores(question: str, sentences: list[str], embedder: Embedder, vectors: np.ndarray | None = None) -> np.ndarray:
    """How closely each sentence bears on the question: cosine similarity of their embeddings plus
    0.1 × the share of the question's terms the sentence holds. ``vectors``: the sentences'
    embeddings when they are known already."""
    if not sentences:
        return np.zeros(0, dtype=np.float32)
    q = embedder.embed_queries([question])[0]
    if vectors is None:
        vectors = embedder.embed_passages(sentences)
    terms = set(lexical_tokens(question))
    overlap = [len(terms & set(lexical_tokens(s))) / max(len(terms), 1) for s in sentences]
    return vectors @ q + 0.1 * np.asarray(overlap, dtype=np.float32)


def sentence_vectors(
    sentences: list[Sentence], passages: list[Passage], stored: dict[str, ChunkSentences], embedder: Embedder, as_indexed: Callable[[Passage, str], str]
) -> np.ndarray:
    """The sentences' vectors: stored ones by their article offsets, the rest embedded now as
    ``as_indexed(passage, sentence)`` (the form the index embeds a sentence in)."""
    found: dict[int, np.ndarray] = {}
    per_passage = Counter(s.passage for s in sentences)
    for i, s in enumerate(sentences):
        p = passages[s.passage]
        chunk = stored.get(p.chunk_id)
        if chunk is None or p.spans:  # only a whole chunk's sentences are the stored ones
            continue
        span = (p.start + s.start, p.start + s.end)
        if span in chunk.spans:
            found[i] = chunk.vectors[chunk.spans.index(span)]
        elif per_passage[s.passage] == 1 and chunk.spans == [(p.start, p.end)]:
            found[i] = chunk.vectors[0]  # a chunk of one sentence: its own vector
    missing = [i for i in range(len(sentences)) if i not in found]
    if missing:
        embedded = embedder.embed_passages([as_indexed(passages[sentences[i].passage], sentences[i].text) for i in missing])
        found.update(zip(missing, embedded))
    return np.stack([found[i] for i in range(len(sentences))])


def passage_sentences(passages: list[Passage]) -> list[Sentence]:
    return [
        Sentence(i, span.start, span.end, p.text[span.start : span.end])
        for i, p in enumerate(passages)
        for span in sentence_spans(p.text, MAX_SENTENCE_CHARS)
    ]


def compress(
    question: str,
    passages: list[Passage],
    embedder: Embedder,
    budget: int,
    count: TokenCounter,
    header: Callable[[Passage], str],
    stored: Callable[[list[str]], dict[str, ChunkSentences]] | None = None,
    as_indexed: Callable[[Passage, str], str] = lambda p, sentence: sentence,
) -> list[Passage]:
    """The passages cut to their best sentences, within ``budget`` tokens of passage text and headers
    (``header(p)``: the line the prompt puts before a passage). The best sentence is always kept.
    ``stored(chunk_ids)``: the index's sentence vectors of those chunks."""
    sentences = passage_sentences(passages)
    costs = [count(s.text) for s in sentences]
    headers = [count(header(p)) for p in passages]
    if not sentences or sum(costs) + sum(headers) <= budget:
        return passages  # all of it fits
    known = stored([p.chunk_id for p in passages]) if stored else {}
    vectors = sentence_vectors(sentences, passages, known, embedder, as_indexed)
    scores = sentence_scores(question, [s.text for s in sentences], embedder, vectors)
    chosen: dict[int, list[Sentence]] = {}
    spent = 0
    for rank, i in enumerate(np.argsort(-scores, kind="stable")):
        sentence = sentences[i]
        cost = costs[i] + (0 if sentence.passage in chosen else headers[sentence.passage])
        if spent + cost > budget and rank > 0:
            continue  # a shorter sentence further down may still fit
        chosen.setdefault(sentence.passage, []).append(sentence)
        spent += cost
    return [shown(passages[i], chosen[i]) for i in range(len(passages)) if i in chosen]


def shown(passage: Passage, sentences: list[Sentence]) -> Passage:
    """``passage`` reduced to ``sentences``: adjacent ones as one run of the original text."""
    runs: list[list[int]] = []
    for s in sorted(sentences, key=lambda s: s.start):
        between = passage.text[runs[-1][1] : s.start] if runs else None
        if between is not None and not between.strip():
            runs[-1][1] = s.end
        else:
            runs.append([s.start, s.end])
    if len(runs) == 1 and runs[0] == [0, len(passage.text)] or not runs:
        return passage
    text = SPAN_GAP.join(passage.text[a:b] for a, b in runs)
    spans = [(passage.start + a, passage.start + b) for a, b in runs]
    pages = pages_of(passage.page_starts, spans)
    return passage.model_copy(update={"text": text, "start": spans[0][0], "end": spans[-1][1], "spans": spans, "pages": pages})
