import pytest
from tests.integration.test_index import Assistant, copy_seeds, edit_paragraph, EDITED_DOC, EDITED_PARAGRAPH_START, NEW_SENTENCE, prepared, stored_ids

@pytest.mark.parametrize("i", range(10))
def test_probe(i, seeded_index, seeded_settings_factory, tmp_path):
    settings = seeded_settings_factory()
    assistant = Assistant(settings)
    folder = copy_seeds(tmp_path / "articles")
    edit_paragraph(folder, EDITED_DOC, EDITED_PARAGRAPH_START, NEW_SENTENCE)
    expected = prepared(folder / f"{EDITED_DOC}.txt", settings)
    report = assistant.ingest([folder])
    after = stored_ids(assistant)
    status = assistant.status()
    passages = assistant.search(NEW_SENTENCE, top_k=3)
    if passages[0].doc_id != EDITED_DOC:
        print("FAIL", i, [(p.doc_id[:3], p.chunk_id[-12:], round(p.score, 3), p.dense_score, p.bm25_score) for p in passages])
        lex = assistant.index.lexical()
        print("lexical", len(lex.ids), lex.search(NEW_SENTENCE, 3), "count", assistant.chunk_count(), "gen", assistant.index.vectors.generation)
        print("dense", assistant.index.dense_search(assistant.embedder.embed_queries([NEW_SENTENCE])[0], 3))
        print("expected", [c.chunk_id for c in expected.chunks])
    else:
        print("ok", i)
