"""Stage 10, the HTTP API: REST under ``/api/v1`` and an OpenAI-compatible chat under ``/v1``,
served by ``assistant serve`` on the same server (and the same ``Assistant``) as the web UI.

Both are FastAPI apps mounted beside the Gradio app (see ``assistant.ui.server_app``), so
Gradio's own middleware (its CORS rules) does not reach them. Their bodies and replies are the
pydantic models of the Python API (``Answer``, ``Passage``, ``Filters`` ...), so the OpenAPI schema
at ``/api/v1/openapi.json`` is generated from them.

Handlers are plain functions: FastAPI runs them in its thread pool, so a long answer does not keep
``/status`` or a search waiting; answers wait only for the model's own queue (one question at a
time in the embedded model). Every error is JSON, ``{"error": {"code", "message", "type"}}``, with
a stable ``code`` (the shape OpenAI clients read).

Streaming: the text deltas are the model's draft as it writes; the final ``Answer`` is
authoritative (citation markers checked, refusals). When the final text only extends the draft,
the rest arrives as one more delta; when it differs, REST sends a ``replace`` event with the whole
final text, and the OpenAI stream appends the checked answer under a heading, since its clients can
only append.
"""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.routing import Mount

from assistant.arabic import detect_language
from assistant.by_source import BySource
from assistant.cite import strip_markers
from assistant.config import Settings, megabytes
from assistant.conversations import API_KEY_USER, LOCAL_USER
from assistant.errors import AssistantError, BackendUnavailableError, IndexMismatchError, InputError, NotFoundError
from assistant.export import MEDIA_TYPES, Format, file_name
from assistant.models import Answer, Conversation, ConversationSummary, DocumentInfo, Filters, IndexStatus, IngestReport, Passage
from assistant.present import with_sources
from assistant.retrieve import Mode
from assistant.timeline import Timeline

log = logging.getLogger(__name__)

REST_PREFIX = "/api/v1"
OPENAI_PREFIX = "/v1"


# --- errors ---------------------------------------------------------------------------------
class APIError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# An AssistantError's class -> (HTTP status, code). The message is the error's own: it says what to do.
_STATUS_OF: list[tuple[type[AssistantError], int, str]] = [
    (InputError, 400, "invalid_request"),
    (NotFoundError, 404, "not_found"),
    (IndexMismatchError, 409, "index_mismatch"),
    (BackendUnavailableError, 503, "unavailable"),
    (AssistantError, 500, "server_error"),
]
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def error_body(code: str, message: str) -> dict:
    kind = "invalid_request_error" if code in ("invalid_request", "too_large", "length_required", "not_found") else code
    return {"error": {"code": code, "message": message, "type": kind}}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def as_api_error(exc: Exception) -> APIError:
    if isinstance(exc, APIError):
        return exc
    for kind, status, code in _STATUS_OF:
        if isinstance(exc, kind):
            return APIError(status, code, str(exc))
    log.exception("unexpected error in the HTTP API", exc_info=exc)
    return APIError(500, "server_error", "something went wrong on the server (details are in its log)")


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid').removeprefix('Value error, ')}")
    return "; ".join(parts)


def _handle_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        return error_response(400, "invalid_request", _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http(_: Request, exc: HTTPException):
        return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail))

    # APIError and AssistantError are answers, not faults: handled here, they are not logged as
    # crashes. Anything else is logged with its traceback (and still answered as JSON).
    @app.exception_handler(APIError)
    @app.exception_handler(AssistantError)
    @app.exception_handler(Exception)
    async def other(_: Request, exc: Exception):
        error = as_api_error(exc)
        return error_response(error.status, error.code, error.message)


# --- the guard: key and body size, before any route -------------------------------------------
class Guard:
    """ASGI wrapper of an API app: the bearer key (``api.key``; required beyond loopback) and the
    request body's size (``Content-Length`` required for a body; ``api.max_body_kb``, uploads
    ``ui.max_upload_mb``), checked before the app reads anything."""

    def __init__(self, app, settings: Settings, loopback: bool, upload_path: str | None = None):
        self.app = app
        self.key = settings.api.key.get_secret_value().encode() if settings.api.key else None
        self.loopback = loopback
        self.cors = bool(settings.api.cors_origins)
        self.max_body = int(settings.api.max_body_kb * 1000)
        self.max_upload = int(megabytes(settings.ui.max_upload_mb)) + 64_000  # the multipart framing
        self.upload_path = upload_path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (self.cors and scope["method"] == "OPTIONS"):
            return await self.app(scope, receive, send)  # CORS preflights carry no credentials
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)

    def refusal(self, scope, headers: dict) -> JSONResponse | None:
        if self.key is None and not self.loopback:
            return error_response(401, "unauthorized", "this server listens beyond loopback, so the API needs a key: start it "
                                  "with ASSISTANT_API__KEY set and send 'Authorization: Bearer <key>'")
        if self.key is not None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), self.key):
                return error_response(401, "unauthorized", "missing or wrong API key: send 'Authorization: Bearer <ASSISTANT_API__KEY>'")
        if scope["method"] in ("POST", "PUT", "PATCH"):
            limit = self.max_upload if scope["path"].rstrip("/").endswith(self.upload_path or "\0") else self.max_body
            length = headers.get("content-length")
            if length is None:
                return error_response(411, "length_required", "send the request body with a Content-Length header")
            if not length.isdigit() or int(length) > limit:
                return error_response(413, "too_large", f"the request body is larger than {limit // 1000} kB")
        return None


def _api_app(settings: Settings, title: str, description: str) -> FastAPI:
    app = FastAPI(title=title, description=description, version="1", redoc_url=None)
    _handle_errors(app)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.api.cors_origins, allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


# --- streaming ----------------------------------------------------------------------------------
def settled_stream(items: Iterator[str | Answer]) -> Iterator[tuple[str, str | Answer]]:
    """The answer stream as ("delta", text) ... then, when the final text is not just the draft,
    ("delta", the rest) or ("replace", the whole final text), and last ("answer", Answer)."""
    draft = ""
    for item in items:
        if isinstance(item, Answer):
            if item.text != draft:
                yield ("delta", item.text[len(draft) :]) if item.text.startswith(draft) else ("replace", item.text)
            yield "answer", item
            return
        if item:
            draft += item
            yield "delta", item


def appended_stream(items: Iterator[str | Answer], tail: Callable[[Answer], str]) -> Iterator[str | Answer]:
    """For clients that can only append (OpenAI's): the draft's pieces; then, when the checked
    answer says something else, the checked answer under ``CHECKED`` (not when only its markers
    differ: the sources list says the same); then ``tail(answer)`` (the sources list) and the Answer."""
    draft = ""
    for kind, item in settled_stream(items):
        if kind == "delta":
            draft += item
            yield item
        elif kind == "replace":
            if _words(item) != _words(draft):
                yield f"\n\n{CHECKED[detect_language(item)]}\n{item}"
        else:
            if extra := tail(item):
                yield extra
            yield item


CHECKED = {"ar": "بعد التحقق من المصادر:", "en": "After checking the sources:"}


def _words(text: str) -> list[str]:
    return strip_markers(text).split()


def _sse(data: dict | str, event: str | None = None) -> str:
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {body}\n\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# --- REST -------------------------------------------------------------------------------------
class HistoryMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="in Arabic or English; answered in its language")
    history: list[HistoryMessage] = Field(default_factory=list, description="earlier turns, oldest first")
    top_k: int | None = Field(default=None, ge=1, le=50, description="passages to retrieve (default: retrieval.top_k)")
    filters: Filters | None = None
    stream: bool = Field(default=False, description="Server-Sent Events: 'delta' events, then one 'answer' event")
    conversation_id: str | None = Field(
        default=None, description="continue this saved conversation (instead of 'history'); the answer is saved into it"
    )
    by_source: bool = Field(
        default=False,
        description="answer once per outlet, each from its own passages: returns BySource (saved into conversation_id when given)",
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str
    top_k: int | None = Field(default=None, ge=1, le=50)
    mode: Mode | None = Field(default=None, description="hybrid (default), dense or bm25")
    filters: Filters | None = None


class TimelineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(description="what the story is about, in Arabic or English")
    filters: Filters | None = None
    summaries: bool = Field(default=False, description="also a one-line summary per period, by the language model")


class Status(BaseModel):
    index: IndexStatus
    model: str | None = Field(description="the language model that answers; null until it is loaded")


class Removed(BaseModel):
    doc_id: str
    passages_removed: int


class ConversationTitle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", max_length=1000, description="empty: named by its first question")


class ConversationDeleted(BaseModel):
    id: str
    deleted: bool = True


def rest_app(assistant, settings: Settings) -> FastAPI:
    app = _api_app(settings, "Arabic news assistant", "Ask questions about the indexed Arabic news, with cited passages.")

    # Conversations belong to whoever holds the key (without a key, on loopback: the local user,
    # the same one as the UI without a login).
    user = API_KEY_USER if settings.api.key else LOCAL_USER

    @app.post("/ask", response_model=Answer | BySource, responses={200: {"content": {"text/event-stream": {}}}})
    def ask(body: AskRequest):
        history = [m.model_dump() for m in body.history]
        if body.by_source:
            if body.stream or body.history:
                raise APIError(400, "invalid_request", "by_source answers one question on its own: without stream or history")
            if body.conversation_id:
                assistant.conversation(body.conversation_id, user)  # someone else's, or none: 404 before any model call
            compared = assistant.ask_by_source(body.question, body.filters, body.top_k)
            if body.conversation_id:  # saved like an answer: its outlets' answers side by side
                assistant.save_turn(body.question, compared, body.filters, body.conversation_id, user)
            return compared
        saved = {"conversation_id": body.conversation_id, "user": user}
        if not body.stream:
            return assistant.ask(body.question, history, body.top_k, body.filters, **saved)
        items = assistant.stream(body.question, history, body.top_k, body.filters, **saved)  # a bad question fails here, as JSON

        def events() -> Iterator[str]:
            try:
                for kind, item in settled_stream(items):
                    yield _sse(item.model_dump(mode="json") if kind == "answer" else {"text": item}, kind)
            except Exception as exc:
                error = as_api_error(exc)
                yield _sse(error_body(error.code, error.message), "error")

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    @app.post("/search", response_model=list[Passage])
    def search(body: SearchRequest):
        return assistant.search(body.question, top_k=body.top_k, mode=body.mode, filters=body.filters)

    @app.post("/timeline", response_model=Timeline)
    def timeline(body: TimelineRequest):
        """Per day (or week), each outlet's most representative sentence about the query, cited;
        extractive, no model call."""
        return assistant.timeline(body.query, body.filters, body.summaries)

    @app.get("/status", response_model=Status)
    def status():
        return Status(index=assistant.status(), model=assistant.model_label())

    @app.get("/documents", response_model=list[DocumentInfo])
    def documents():
        return assistant.documents()

    @app.post("/documents", response_model=IngestReport)
    def upload(files: list[UploadFile] = File(description="articles: " + " ".join(settings.ingest.extensions))):
        with tempfile.TemporaryDirectory(prefix="assistant-upload-") as folder:
            paths = []
            for file in files:
                name = Path(file.filename or "").name
                if not name or name.startswith("."):
                    raise APIError(400, "invalid_request", f"a file needs a name with its extension ({file.filename!r})")
                path = Path(folder) / name
                with path.open("wb") as out:
                    while block := file.file.read(1 << 20):
                        out.write(block)
                paths.append(path)
            try:
                report = assistant.ingest(paths)
            except InputError as exc:  # nothing readable: say so without the temporary folder
                raise APIError(400, "invalid_request", str(exc).replace(folder + "/", "")) from None
        for skipped in report.skipped:  # the temporary folder means nothing to the caller
            skipped.path = Path(skipped.path).name
            skipped.reason = skipped.reason.replace(folder + "/", "")
        return report

    @app.delete("/documents/{doc_id}", response_model=Removed)
    def remove(doc_id: str):
        removed = assistant.remove([doc_id])
        if doc_id not in removed:
            raise APIError(404, "not_found", f"{doc_id} is not in the index")
        return Removed(doc_id=doc_id, passages_removed=removed[doc_id])

    @app.get("/conversations", response_model=list[ConversationSummary])
    def conversations(q: str = "", limit: int | None = None):
        """Your saved conversations, newest first; ``q`` searches titles, questions and answers."""
        return assistant.conversations(user, q, limit)

    @app.post("/conversations", response_model=ConversationSummary, status_code=201)
    def new_conversation(body: ConversationTitle | None = None):
        return assistant.new_conversation((body or ConversationTitle()).title, user)

    @app.get("/conversations/{conversation_id}", response_model=Conversation)
    def conversation(conversation_id: str):
        return assistant.conversation(conversation_id, user)

    @app.patch("/conversations/{conversation_id}", response_model=ConversationSummary)
    def rename_conversation(conversation_id: str, body: ConversationTitle):
        return assistant.rename_conversation(conversation_id, body.title, user)

    @app.delete("/conversations/{conversation_id}", response_model=ConversationDeleted)
    def delete_conversation(conversation_id: str):
        assistant.delete_conversation(conversation_id, user)
        return ConversationDeleted(id=conversation_id)

    @app.get("/conversations/{conversation_id}/export", response_class=Response,
             responses={200: {"content": {MEDIA_TYPES["markdown"]: {}, MEDIA_TYPES["json"]: {}}}})
    def export_conversation(conversation_id: str, format: Format = "markdown", turn: int | None = None):
        """Markdown (each citation with outlet, date, title, URL and the quoted passage) or JSON (the
        ``Conversation``; with ``turn``, that one answer's ``ConversationTurn``)."""
        text = assistant.export_conversation(conversation_id, format, turn, user)
        name = file_name(conversation_id, format, turn)
        return Response(text, media_type=MEDIA_TYPES[format], headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return app


# --- OpenAI-compatible -----------------------------------------------------------------------
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens ...: the assistant decides those
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    filters: Filters | None = Field(default=None, description="an extension: outlets and dates to answer from")


def openai_app(assistant, settings: Settings) -> FastAPI:
    app = _api_app(settings, "Arabic news assistant (OpenAI-compatible)", "The assistant as one chat model.")
    name = settings.api.model_name

    def model_card() -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "local"}

    @app.get("/models")
    def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/models/{model_id}")
    def model(model_id: str):
        if model_id != name:
            raise APIError(404, "model_not_found", f"the only model here is {name!r}")
        return model_card()

    def content(answer: Answer) -> str:
        return with_sources(answer) if settings.api.sources_in_content else answer.text

    def usage(answer: Answer) -> dict:
        used = answer.usage
        prompt, generated = (used.prompt_tokens, used.generated_tokens) if used else (0, 0)
        return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}

    def extras(answer: Answer) -> dict:
        return {"citations": [c.model_dump(mode="json") for c in answer.citations], "refused": answer.refused}

    @app.post("/chat/completions")
    def chat(body: ChatRequest):
        if body.model != name:
            raise APIError(404, "model_not_found", f"the only model here is {name!r}")
        turns = [m for m in body.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1].role != "user":
            raise APIError(400, "invalid_request", "the last message must be the user's question")
        history = [{"role": m.role, "content": m.text} for m in turns[:-1]]
        question = turns[-1].text
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not body.stream:
            answer = assistant.ask(question, history, filters=body.filters)
            return {
                "id": reply_id, "object": "chat.completion", "created": created, "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content(answer)}, "finish_reason": "stop"}],
                "usage": usage(answer), **extras(answer),
            }
        items = assistant.stream(question, history, filters=body.filters)

        def chunk(delta: dict, finish: str | None = None, **more) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return _sse({"id": reply_id, "object": "chat.completion.chunk", "created": created, "model": name, "choices": [choice], **more})

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            try:
                for piece in appended_stream(items, lambda answer: content(answer)[len(answer.text) :]):
                    if isinstance(piece, Answer):
                        yield chunk({}, "stop", usage=usage(piece), **extras(piece))
                    else:
                        yield chunk({"content": piece})
            except Exception as exc:
                error = as_api_error(exc)
                yield _sse(error_body(error.code, error.message))
            yield _sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    return app


def api_mounts(assistant, settings: Settings, loopback: bool) -> list[Mount]:
    """The REST and OpenAI-compatible apps, guarded, as routes for the server's root app."""
    return [
        Mount(REST_PREFIX, Guard(rest_app(assistant, settings), settings, loopback, upload_path="/documents")),
        Mount(OPENAI_PREFIX, Guard(openai_app(assistant, settings), settings, loopback)),
    ]
