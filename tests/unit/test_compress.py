"""assistant.compress: passages cut to their best sentences within a token budget, with the exact
article offsets of what is shown. A fake embedder scores a sentence 1 when it holds the question's
key word, so that which sentences win is known; token counts are the product's estimate."""

from __future__ import annotations

import numpy as np

from assistant.compress import compress, estimate_tokens
from assistant.models import SPAN_GAP, Passage

ARTICLE = (
    "عنوان جانبي عن الطقس في المدينة.\n"
    "قال الناطق الرسمي باسم التحالف العقيد مايلز كيغينز إن العمليات مستمرة. "
    "وأضاف أن القوات وصلت إلى دير الزور. "
    "وتحدث السكان عن انقطاع الكهرباء لساعات طويلة في الأحياء الشرقية. "
    "وأكد كيغينز أن التحالف سيواصل دعم الشركاء."
)
SECOND = "افتتح متحف جديد في المدينة القديمة. وقال مديره إن الزيارات مجانية. وأكد كيغينز حضوره الافتتاح."


class KeywordEmbedder:
    """Query vector e0; a sentence holding the key word is e0 (similarity 1), any other e1 (0)."""

    model_id = "fake"

    def __init__(self, *keys: str):
        self.keys = keys
        self.embedded: list[str] = []

    def embed_queries(self, texts):
        return np.tile(np.array([1.0, 0.0], dtype=np.float32), (len(texts), 1))

    def embed_passages(self, texts):
        self.embedded += texts
        return np.array([[1.0, 0.0] if any(k in t for k in self.keys) else [0.0, 1.0] for t in texts], dtype=np.float32)


def passage(text: str, article_start: int, n: int) -> Passage:
    return Passage(chunk_id=f"d{n}#0", doc_id=f"d{n}", title=f"مقال {n}", text=text, start=article_start, end=article_start + len(text), score=1.0 / n)


def header(p: Passage) -> str:
    return f"[0] {p.title}\n"


def shown_in_article(p: Passage, article: str) -> str:
    return SPAN_GAP.join(article[a:b] for a, b in (p.spans or [(p.start, p.end)]))


def test_passages_that_fit_are_shown_whole_without_embedding_anything():
    embedder = KeywordEmbedder("كيغينز")
    passages = [passage(ARTICLE, 0, 1), passage(SECOND, 0, 2)]
    assert compress("من هو الناطق؟", passages, embedder, 10_000, estimate_tokens, header) == passages
    assert embedder.embedded == []


def test_the_budget_keeps_the_best_sentences_in_article_order_with_their_offsets():
    embedder = KeywordEmbedder("كيغينز")
    offset = 500  # the chunk starts 500 characters into its article
    article = "x" * offset + ARTICLE
    first = passage(ARTICLE, offset, 1)
    budget = estimate_tokens(header(first)) + sum(
        estimate_tokens(s) for s in ("قال الناطق الرسمي باسم التحالف العقيد مايلز كيغينز إن العمليات مستمرة.", "وأكد كيغينز أن التحالف سيواصل دعم الشركاء.")
    )
    [shown] = compress("من هو الناطق؟", [first], embedder, budget, estimate_tokens, header)
    assert shown.text == (
        "قال الناطق الرسمي باسم التحالف العقيد مايلز كيغينز إن العمليات مستمرة." + SPAN_GAP + "وأكد كيغينز أن التحالف سيواصل دعم الشركاء."
    )
    assert len(shown.spans) == 2 and shown_in_article(shown, article) == shown.text
    assert (shown.start, shown.end) == (shown.spans[0][0], shown.spans[-1][1])
    assert shown.end == offset + len(ARTICLE)


def test_adjacent_sentences_are_one_run_of_the_original_text():
    embedder = KeywordEmbedder("الناطق", "القوات")  # the second and third sentences
    first = passage(ARTICLE, 0, 1)
    run = ARTICLE[ARTICLE.index("قال") : ARTICLE.index("الزور.") + len("الزور.")]
    sentences = ("قال الناطق الرسمي باسم التحالف العقيد مايلز كيغينز إن العمليات مستمرة.", "وأضاف أن القوات وصلت إلى دير الزور.")
    assert " ".join(sentences) == run
    budget = estimate_tokens(header(first)) + sum(estimate_tokens(s) for s in sentences)  # each counted alone
    [shown] = compress("سؤال", [first], embedder, budget, estimate_tokens, header)
    assert len(shown.spans) == 1
    assert shown.text == run == ARTICLE[shown.start : shown.end]


def test_a_passage_with_no_sentence_chosen_is_not_shown_and_the_order_is_kept():
    embedder = KeywordEmbedder("مجانية")
    passages = [passage(ARTICLE, 0, 1), passage(SECOND, 0, 2), passage(ARTICLE.replace("كيغينز", "الناطق"), 0, 3)]
    budget = estimate_tokens(header(passages[1])) + estimate_tokens("وقال مديره إن الزيارات مجانية.")
    shown = compress("هل الدخول مجاني؟", passages, embedder, budget, estimate_tokens, header)
    assert [p.doc_id for p in shown] == ["d2"]
    assert shown[0].text == "وقال مديره إن الزيارات مجانية."


def test_the_best_sentence_is_kept_even_over_a_budget_too_small_for_it():
    embedder = KeywordEmbedder("مجانية")
    shown = compress("هل الدخول مجاني؟", [passage(SECOND, 0, 1)], embedder, 1, estimate_tokens, header)
    assert [p.text for p in shown] == ["وقال مديره إن الزيارات مجانية."]


def test_token_estimate_counts_arabic_letters_denser_than_latin():
    assert estimate_tokens("") == 0
    assert estimate_tokens("ا" * 263) == 100
    assert estimate_tokens("a" * 437) == 100


def stored_as(passage_: Passage, similar: str) -> dict:
    """The index's sentence vectors of ``passage_``'s chunk: the sentence holding ``similar`` is e0."""
    from assistant.chunk import MAX_SENTENCE_CHARS, sentence_spans
    from assistant.store import ChunkSentences

    spans = sentence_spans(passage_.text, MAX_SENTENCE_CHARS)
    vectors = np.array([[1.0, 0.0] if similar in passage_.text[s.start : s.end] else [0.0, 1.0] for s in spans], dtype=np.float32)
    return {passage_.chunk_id: ChunkSentences([(passage_.start + s.start, passage_.start + s.end) for s in spans], vectors)}


def test_stored_sentence_vectors_are_used_and_nothing_is_embedded():
    embedder = KeywordEmbedder("مجانية")  # would pick the second sentence; the index says the first
    first = passage(SECOND, 100, 1)
    stored = stored_as(first, "متحف")
    asked: list[list[str]] = []

    def lookup(chunk_ids):
        asked.append(chunk_ids)
        return stored

    shown = compress("هل الدخول مجاني؟", [first], embedder, 1, estimate_tokens, header, stored=lookup)
    assert [p.text for p in shown] == ["افتتح متحف جديد في المدينة القديمة."]
    assert asked == [["d1#0"]] and embedder.embedded == []


def test_sentences_the_index_lacks_are_embedded_in_the_indexed_form():
    embedder = KeywordEmbedder("مجانية")
    first, second = passage(SECOND, 0, 1), passage(ARTICLE, 0, 2)
    as_indexed = lambda p, sentence: f"{p.title}\n{sentence}"  # noqa: E731
    budget = estimate_tokens(header(first)) + estimate_tokens("وقال مديره إن الزيارات مجانية.")
    shown = compress("هل الدخول مجاني؟", [first, second], embedder, budget, estimate_tokens, header, stored=lambda ids: stored_as(second, "كيغينز"), as_indexed=as_indexed)
    assert [p.text for p in shown] == ["وقال مديره إن الزيارات مجانية."]
    sentences = ("افتتح متحف جديد في المدينة القديمة.", "وقال مديره إن الزيارات مجانية.", "وأكد كيغينز حضوره الافتتاح.")
    assert embedder.embedded == [f"مقال 1\n{sentence}" for sentence in sentences]
