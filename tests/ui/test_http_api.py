"""The HTTP API served beside the UI (issue 17): REST under /api/v1 and the OpenAI-compatible chat
under /v1, called over real HTTP (httpx and the official ``openai`` client) on the server
``assistant serve`` builds, answering with the embedded model."""

from __future__ import annotations

import json
import os
import shutil
import threading

import httpx
import jsonschema
import openai
import pytest

from assistant.config import load_settings
from assistant.models import Answer, Conversation, ConversationSummary, DocumentInfo, IndexStatus, IngestReport, Passage
from tests.conftest import REPO, STORE_DIR, without_user_overrides, write_config
from tests.integration.helpers import free_port

from .helpers import SPOKESMAN_DOC, running_ui

pytestmark = pytest.mark.slow  # the embedded model answers

QUESTION_AR = "من هو المتحدث الرسمي باسم التحالف الدولي؟"
SPOKESMAN_DOCS = {SPOKESMAN_DOC, "001_85a3b68c139dd4d8", "003_e7f47d77941dc1b4"}
MODEL = "arabic-news-assistant"


@pytest.fixture(scope="module")
def api(ui_server) -> httpx.Client:
    with httpx.Client(base_url=ui_server.url + "api/v1", timeout=300) as client:
        yield client


def sse_events(response: httpx.Response) -> list[tuple[str | None, str]]:
    """(event name, data) of each Server-Sent Event, in order."""
    events, name, data = [], None, []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif not line and data:
            events.append((name, "\n".join(data)))
            name, data = None, []
    return events


def error_of(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()["error"]


# --------------------------------------------------------------------------- REST
def test_ask_returns_the_answer_model_with_citations(api):
    response = api.post("/ask", json={"question": QUESTION_AR})
    assert response.status_code == 200, response.text
    answer = Answer.model_validate(response.json())
    assert answer.language == "ar" and not answer.refused, answer.notes
    assert answer.citations and all(f"[{c.n}]" in answer.text for c in answer.citations), answer.text
    assert {c.doc_id for c in answer.citations} & SPOKESMAN_DOCS


def test_ask_streams_deltas_that_join_to_the_final_text(api):
    with api.stream("POST", "/ask", json={"question": QUESTION_AR, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    names = [name for name, _ in events]
    assert names[0] == "delta" and names[-1] == "answer" and names.count("answer") == 1, names
    assert "error" not in names
    text = ""
    for name, data in events[:-1]:
        text = text + json.loads(data)["text"] if name == "delta" else json.loads(data)["text"]
    answer = Answer.model_validate_json(events[-1][1])
    assert text == answer.text
    assert answer.citations, answer.text


def test_filters_and_history_are_taken(api):
    """An outlet no article has: refused without a model call, saying which filter."""
    body = {"question": QUESTION_AR, "filters": {"sources": ["no such outlet"]}, "history": [{"role": "user", "content": "مرحبا"}, {"role": "assistant", "content": "أهلا"}]}
    answer = Answer.model_validate(api.post("/ask", json=body).json())
    assert answer.refused and any("no such outlet" in note for note in answer.notes), answer.notes


def test_a_conversation_is_continued_saved_exported_renamed_and_deleted(api):
    created = api.post("/conversations", json={})
    assert created.status_code == 201
    conversation_id = ConversationSummary.model_validate(created.json()).id
    first = Answer.model_validate(api.post("/ask", json={"question": QUESTION_AR, "conversation_id": conversation_id}).json())
    # The follow-up needs the first turn ("his"): condensed with it, streamed, and saved before the answer event.
    with api.stream("POST", "/ask", json={"question": "ما هي رتبته العسكرية؟", "conversation_id": conversation_id, "stream": True}) as response:
        events = sse_events(response)
    assert events[-1][0] == "answer", events
    follow = Answer.model_validate_json(events[-1][1])
    saved = Conversation.model_validate(api.get(f"/conversations/{conversation_id}").json())
    assert [t.question for t in saved.turns] == [QUESTION_AR, "ما هي رتبته العسكرية؟"]
    assert [t.answer for t in saved.turns] == [first, follow] and saved.title == QUESTION_AR  # named by its first question
    assert follow.question != "ما هي رتبته العسكرية؟" and "التحالف" in follow.question, follow.question

    markdown = api.get(f"/conversations/{conversation_id}/export", params={"format": "markdown"})
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    assert f'filename="conversation-{conversation_id}.md"' in markdown.headers["content-disposition"]
    for citation in first.citations + follow.citations:
        assert citation.title in markdown.text and citation.text.split("\n")[0] in markdown.text
    exported = Conversation.model_validate(api.get(f"/conversations/{conversation_id}/export", params={"format": "json"}).json())
    assert exported == saved
    one = api.get(f"/conversations/{conversation_id}/export", params={"format": "json", "turn": 2}).json()
    assert Answer.model_validate(one["answer"]) == follow

    # (The UI tests on this server save conversations of the same local user: a unique title to find.)
    renamed = api.patch(f"/conversations/{conversation_id}", json={"title": "ملف المتحدث زمردة-٧٣١٩"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "ملف المتحدث زمردة-٧٣١٩"
    listed = [ConversationSummary.model_validate(c) for c in api.get("/conversations", params={"q": "زمرده-7319"}).json()]
    assert [c.id for c in listed] == [conversation_id] and listed[0].turn_count == 2  # found with ة→ه and Arabic-Indic digits folded
    assert api.delete(f"/conversations/{conversation_id}").json() == {"id": conversation_id, "deleted": True}
    for response in (
        api.get(f"/conversations/{conversation_id}"), api.delete(f"/conversations/{conversation_id}"),
        api.get(f"/conversations/{conversation_id}/export"), api.patch(f"/conversations/{conversation_id}", json={"title": "x"}),
        api.post("/ask", json={"question": QUESTION_AR, "conversation_id": conversation_id}),
        api.post("/ask", json={"question": QUESTION_AR, "conversation_id": conversation_id, "stream": True}),
    ):
        assert response.status_code == 404 and error_of(response)["code"] == "not_found", response.text
    assert conversation_id not in [c["id"] for c in api.get("/conversations").json()]


def test_a_conversation_and_a_history_together_are_a_400(api):
    conversation_id = api.post("/conversations", json={"title": "x"}).json()["id"]
    body = {"question": QUESTION_AR, "conversation_id": conversation_id, "history": [{"role": "user", "content": "مرحبا"}]}
    response = api.post("/ask", json=body)
    assert response.status_code == 400 and "not both" in error_of(response)["message"]
    bad_format = api.get(f"/conversations/{conversation_id}/export", params={"format": "pdf"})
    assert bad_format.status_code == 400 and "format" in error_of(bad_format)["message"]
    assert api.get(f"/conversations/{conversation_id}/export", params={"turn": 1}).status_code == 404  # it has no answers
    api.delete(f"/conversations/{conversation_id}")


def test_search_status_and_documents(api, ui_server):
    passages = [Passage.model_validate(p) for p in api.post("/search", json={"question": QUESTION_AR, "top_k": 3}).json()]
    assert len(passages) == 3 and {p.doc_id for p in passages} & SPOKESMAN_DOCS
    assert [p.doc_id for p in passages] == [p.doc_id for p in ui_server.assistant.search(QUESTION_AR, top_k=3)]
    status = api.get("/status").json()
    assert IndexStatus.model_validate(status["index"]) == ui_server.assistant.status()
    listed = [DocumentInfo.model_validate(d) for d in api.get("/documents").json()]
    assert {d.doc_id for d in listed} == {d.doc_id for d in ui_server.assistant.documents()}


def test_upload_is_listed_and_searchable_and_delete_removes_it(api, added_articles):
    marker = "زرقاوي-فيروزي"
    text = f"تقرير عن مهرجان الكتاب\n\nافتتح في المدينة مهرجان {marker} للكتاب العربي بمشاركة مئة دار نشر."
    response = api.post("/documents", files=[("files", ("mahrajan_api.txt", text.encode(), "text/plain"))])
    assert response.status_code == 200, response.text
    report = IngestReport.model_validate(response.json())
    added_articles.extend(report.added)
    assert report.added == ["mahrajan_api"] and not report.skipped
    assert "mahrajan_api" in {d["doc_id"] for d in api.get("/documents").json()}
    found = api.post("/search", json={"question": f"مهرجان {marker}", "top_k": 1}).json()
    assert found[0]["doc_id"] == "mahrajan_api"

    removed = api.delete("/documents/mahrajan_api")
    assert removed.json() == {"doc_id": "mahrajan_api", "passages_removed": 1}
    assert "mahrajan_api" not in {d["doc_id"] for d in api.get("/documents").json()}
    gone = api.delete("/documents/mahrajan_api")
    assert gone.status_code == 404 and error_of(gone)["code"] == "not_found"


def test_a_pdf_upload_is_indexed_and_its_passages_say_their_page(api, added_articles):
    pdf = (REPO / "tests" / "fixtures" / "documents" / "pages.pdf").read_bytes()
    response = api.post("/documents", files=[("files", ("bulletin_api.pdf", pdf, "application/pdf"))])
    assert response.status_code == 200, response.text
    report = IngestReport.model_validate(response.json())
    added_articles.extend(report.added)
    assert report.added == ["bulletin_api"] and not report.skipped
    found = [Passage.model_validate(p) for p in api.post("/search", json={"question": "محطة مياه البوكمال الجديدة", "top_k": 3}).json()]
    assert found[0].doc_id == "bulletin_api" and found[0].pages == [2]


def test_unreadable_uploads_are_reported_by_name(api, added_articles):
    alone = api.post("/documents", files=[("files", ("notes.odt", b"PK\x03\x04", "application/vnd.oasis.opendocument.text"))])
    assert alone.status_code == 400
    message = error_of(alone)["message"]
    assert "notes.odt: unsupported file type" in message and "assistant-upload-" not in message, message
    good = ("maqal_api.txt", "خبر قصير\n\nوصل وفد ثقافي إلى المدينة لافتتاح معرض الصور السنوي.".encode(), "text/plain")
    mixed = api.post("/documents", files=[("files", ("notes.pdf", b"%PDF-1.4", "application/pdf")), ("files", good)])
    assert mixed.status_code == 200, mixed.text
    report = IngestReport.model_validate(mixed.json())
    added_articles.extend(report.added)
    assert report.added == ["maqal_api"] and [s.path for s in report.skipped] == ["notes.pdf"]
    assert report.skipped[0].reason.startswith("damaged, or not a PDF")
    assert "assistant-upload-" not in mixed.text  # no temporary folder leaks


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "question"),
        ({"question": 5}, "question"),
        ({"question": "سؤال", "top_k": "many"}, "top_k"),
        ({"question": "سؤال", "filters": {"since": "2020-08", "until": "2020-07"}}, "filters"),
        ({"question": "سؤال", "history": [{"role": "system", "content": "x"}]}, "history"),
        ({"question": "سؤال", "colour": "blue"}, "colour"),
    ],
    ids=["missing", "not-text", "top-k-type", "dates-reversed", "history-role", "unknown-field"],
)
def test_bad_bodies_get_400_json_naming_the_field(api, body, field):
    response = api.post("/ask", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request" and field in error["message"], error


@pytest.mark.parametrize("question", ["", "؟؟؟"])
def test_an_unusable_question_gets_400_with_what_to_do(api, question):
    for stream in (False, True):
        response = api.post("/ask", json={"question": question, "stream": stream})
        assert response.status_code == 400
        assert "type a question about the indexed articles" in error_of(response)["message"]


def test_oversize_and_malformed_requests(api, ui_server):
    huge = api.post("/ask", json={"question": "س" * 300_000})
    assert huge.status_code == 413 and error_of(huge)["code"] == "too_large"
    limit = ui_server.settings.ui.max_upload_mb
    big_file = api.post("/documents", files=[("files", ("big.txt", b"x" * int(limit * 1_000_000 + 100_000), "text/plain"))])
    assert big_file.status_code == 413 and error_of(big_file)["code"] == "too_large"
    not_json = api.post("/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and error_of(not_json)["code"] == "invalid_request"
    unknown = api.get("/nowhere")
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "not_found"


def test_the_openapi_schema_describes_the_replies(api):
    schema = api.get("/openapi.json").json()
    assert {"/ask", "/search", "/status", "/documents", "/documents/{doc_id}", "/conversations", "/conversations/{conversation_id}",
            "/conversations/{conversation_id}/export"} <= set(schema["paths"])
    components = schema["components"]["schemas"]
    assert set(components["Answer"]["properties"]) == set(Answer.model_fields)
    # A real reply validates against the served schema.
    reply = api.post("/search", json={"question": QUESTION_AR, "top_k": 2}).json()
    passages_schema = {"type": "array", "items": {"$ref": "#/components/schemas/Passage"}, "components": schema["components"]}
    jsonschema.validate(reply, passages_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"chunk_id": 1}], passages_schema)


def test_status_answers_while_a_question_is_being_answered(api):
    done = threading.Event()

    def ask():
        api.post("/ask", json={"question": "Who is the coalition spokesman?"})
        done.set()

    thread = threading.Thread(target=ask)
    thread.start()
    try:
        status = api.get("/status")
        assert status.status_code == 200
        assert not done.is_set(), "the answer finished before /status was asked; the check proves nothing"
    finally:
        thread.join()


def test_no_cors_headers_unless_configured(api):
    response = api.get("/status", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in response.headers


# --------------------------------------------------------------------------- OpenAI-compatible
@pytest.fixture(scope="module")
def client(ui_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=ui_server.url + "v1", api_key="not-needed-on-loopback", timeout=300, max_retries=0)


def test_models_lists_the_assistant(client):
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_chat_completion_gives_a_cited_arabic_answer(client):
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION_AR}])
    content = reply.choices[0].message.content
    citations = reply.model_extra["citations"]
    assert citations and all(f"[{c['n']}]" in content for c in citations), content
    assert {c["doc_id"] for c in citations} & SPOKESMAN_DOCS
    assert "المصادر:" in content  # the sources list, for clients that show text only
    assert reply.choices[0].finish_reason == "stop" and reply.usage.prompt_tokens > 0


def test_streamed_chat_completion_joins_to_a_cited_answer(client):
    stream = client.chat.completions.create(
        model=MODEL, stream=True,
        messages=[{"role": "system", "content": "ignored"}, {"role": "user", "content": "مرحبا"}, {"role": "assistant", "content": "أهلا"}, {"role": "user", "content": QUESTION_AR}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    citations = last.model_extra["citations"]
    assert citations and all(f"[{c['n']}]" in text for c in citations), text
    assert "المصادر:" in text
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 2  # streamed, not one piece


def test_openai_errors_are_typed(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION_AR}])
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=MODEL, messages=[{"role": "assistant", "content": "أهلا"}])
    assert "last message" in str(error.value)
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "   "}])
    assert "empty" in str(error.value)


# --------------------------------------------------------------------------- auth and CORS
@pytest.fixture(scope="module")
def serve_with(seeded_index, tmp_path_factory, monkeypatch_module):
    """``serve_with(**config) -> base URL``: another server on the seeded index, for the module."""
    servers = []
    for name in [n for n in os.environ if n not in without_user_overrides(dict(os.environ))]:
        monkeypatch_module.delenv(name)  # the developer's shell must not reconfigure the servers under test

    def start(**overrides):
        root = tmp_path_factory.mktemp("api")
        shutil.copytree(seeded_index.root / STORE_DIR, root / STORE_DIR)
        overrides.setdefault("ui", {})["port"] = free_port()
        overrides.setdefault("llm", {"provider": "embedded"})
        settings = load_settings(write_config(root, **overrides))
        context = running_ui(settings)
        servers.append(context)
        return context.__enter__().url

    yield start
    for context in servers:
        context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_beyond_loopback_the_key_is_required_on_every_route(serve_with):
    login = {"username": "ana", "password": "s3cret"}
    url = serve_with(ui={"host": "0.0.0.0", **login}, api={"key": "k-123"})
    for path in ("api/v1/status", "api/v1/openapi.json", "v1/models"):
        bare = httpx.get(url + path)
        assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer", path
        assert error_of(bare)["code"] == "unauthorized"
        wrong = httpx.get(url + path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, path
        assert httpx.get(url + path, headers={"Authorization": "Bearer k-123"}).status_code == 200, path
    assert [m.id for m in openai.OpenAI(base_url=url + "v1", api_key="k-123", max_retries=0).models.list()] == [MODEL]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "v1", api_key="wrong", max_retries=0).models.list()


def test_beyond_loopback_without_a_key_the_api_says_how_to_set_one(serve_with):
    url = serve_with(ui={"host": "0.0.0.0", "username": "ana", "password": "s3cret"})
    response = httpx.get(url + "api/v1/status")
    assert response.status_code == 401 and "ASSISTANT_API__KEY" in error_of(response)["message"]


def test_a_key_configured_on_loopback_is_required_too_and_cors_only_as_configured(serve_with):
    url = serve_with(api={"key": "k-456", "cors_origins": ["https://cms.example.org"]})
    assert httpx.get(url + "api/v1/status").status_code == 401
    allowed = httpx.get(url + "api/v1/status", headers={"Authorization": "Bearer k-456", "Origin": "https://cms.example.org"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://cms.example.org"
    other = httpx.get(url + "api/v1/status", headers={"Authorization": "Bearer k-456", "Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = httpx.options(url + "v1/chat/completions", headers={"Origin": "https://cms.example.org", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "https://cms.example.org"


def test_an_unreachable_model_is_a_503_that_says_what_to_do(serve_with):
    """Ollama configured, and nothing listening where it should be."""
    url = serve_with(llm={"provider": "ollama", "ollama": {"host": f"http://127.0.0.1:{free_port()}", "probe_timeout": 2}})
    for stream in (False, True):
        response = httpx.post(url + "api/v1/ask", json={"question": QUESTION_AR, "stream": stream}, timeout=120)
        assert response.status_code == 503
        error = error_of(response)
        assert error["code"] == "unavailable" and "llm.provider" in error["message"], error
    with pytest.raises(openai.InternalServerError) as raised:
        openai.OpenAI(base_url=url + "v1", api_key="x", max_retries=0).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION_AR}])
    assert raised.value.status_code == 503
