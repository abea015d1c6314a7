"""The Gradio web UI: chat with streamed, cited answers, a source viewer and the article library.

One ``Assistant`` serves every browser tab. All events that touch it share one concurrency
queue (``concurrency_id``), so an upload never writes the index while a question reads it and
the in-process model answers one question at a time. Asking is two events: ``accept`` shows the
question at once, marked as waiting (it never touches the Assistant, so it need not queue), then
``answer`` waits its turn in that queue, with Gradio's queue position shown under the chat.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import closing
from pathlib import Path

import gradio as gr

from assistant.answer import answered_exchange
from assistant.by_source import BySource, merged
from assistant.arabic import detect_language
from assistant.config import megabytes
from assistant.conversations import LOCAL_USER, login_user
from assistant.errors import AssistantError
from assistant.export import export, file_name
from assistant.fetch import is_url
from assistant.models import Answer, Citation, Conversation, Filters
from assistant.timeline import Timeline
from assistant.present import ingest_summary, skipped_lines
from assistant.ui import render

log = logging.getLogger(__name__)
QUEUE = "assistant"  # every event that uses the Assistant waits in this one queue
CSS_PATH = Path(__file__).with_name("ui.css")

# Clicks on a citation anywhere in the conversation become one "click" event with its position.
# "Copy with sources" and "Markdown" under an answer use the Markdown the answer carries (render.actions_html).
CONVERSATION_JS = """
element.addEventListener('click', (event) => {
  const action = event.target.closest('a.copy-answer, a.download-answer');
  if (action) {
    event.preventDefault();
    const text = action.closest('.answer-actions').querySelector('textarea.answer-markdown').value;
    if (action.classList.contains('copy-answer')) {
      navigator.clipboard.writeText(text).then(() => { action.textContent = 'Copied ✓'; });
    } else {
      const url = URL.createObjectURL(new Blob([text], {type: 'text/markdown;charset=utf-8'}));
      const save = Object.assign(document.createElement('a'), {href: url, download: action.dataset.name});
      save.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    }
    return;
  }
  const link = event.target.closest('a.cite');
  if (!link) return;
  event.preventDefault();
  trigger('click', {turn: Number(link.dataset.turn), n: Number(link.dataset.n), answer: Number(link.dataset.answer ?? -1)});
});
"""
# A timeline's citation links: one "click" event with the line's position.
TIMELINE_JS = """
element.addEventListener('click', (event) => {
  const link = event.target.closest('a.cite');
  if (!link) return;
  event.preventDefault();
  trigger('click', {period: Number(link.dataset.period), line: Number(link.dataset.line)});
});
"""
# Bring the highlighted passage into view whenever the viewer shows a new article.
VIEWER_JS = """
watch('value', () => {
  const mark = element.querySelector('mark');
  if (mark) mark.scrollIntoView({block: 'center'});
});
"""

UNEXPECTED = "Something went wrong while answering (details are in the server log). Please try again."
EMPTY_QUESTION = {
    "ar": "اكتب سؤالاً أولاً.",
    "en": "Type a question first.",
}


def _friendly(exc: Exception) -> str:
    if isinstance(exc, AssistantError):
        return str(exc)
    log.exception("unexpected error in the UI")
    return UNEXPECTED


def user_of(request: gr.Request | None) -> str:
    """Whose conversations: the UI login's, or the one local user's without a login."""
    name = getattr(request, "username", None)
    return login_user(name) if name else LOCAL_USER


def saved_turns(conversation: Conversation) -> list[dict]:
    """A saved conversation as the chat's turns."""
    return [
        {
            "question": turn.question, "language": detect_language(turn.question),
            # A "compare outlets" turn shows side by side again, as it did when asked.
            **({"compared": turn.compared.model_dump(mode="json")} if turn.compared
               else {"answer": turn.answer.model_dump(mode="json")}),
            **({"filters": turn.filters.model_dump(mode="json")} if turn.filters else {}),
        }
        for turn in conversation.turns
    ]


def _history(turns: list[dict]) -> list[dict]:
    """Earlier answered turns as chat messages, for condensing follow-up questions; a "compare
    outlets" turn as its answers in one, as it is saved (``merged``)."""
    messages = []
    for t in turns:
        if t.get("question") and (t.get("answer") or t.get("compared")):
            answer = Answer.model_validate(t["answer"]) if t.get("answer") else merged(BySource.model_validate(t["compared"]))
            messages += answered_exchange(t["question"], answer)
    return messages


class ChatUI:
    """The handlers, separate from the layout so they can be read (and called) on their own."""

    def __init__(self, assistant):
        self.assistant = assistant
        # The export buttons' files, one per conversation, rewritten when it changes (Gradio serves a copy).
        self._exports_dir = tempfile.TemporaryDirectory(prefix="assistant-export-")

    # --- chat ----------------------------------------------------------------------------------
    # ``turns`` is changed in place, never copied: a question accepted while an earlier answer
    # streams appends to the same list that answer is writing back, so neither drops the other.
    def accept(
        self, question: str, turns: list[dict] | None, sources: list[str] | None = None, since: str = "", until: str = "",
        by_source: bool = False,
    ):
        """Step one, instant: the question joins the conversation as waiting, with the outlet and
        date filters set when it was asked (or, empty or badly filtered, as an error). Returns
        (conversation HTML, turns, the emptied textbox)."""
        turns = turns if turns is not None else []
        question = (question or "").strip()
        if not question:
            turns.append({"question": "", "language": "en", "error": f"{EMPTY_QUESTION['en']} / {EMPTY_QUESTION['ar']}"})
            return render.conversation_html(turns), turns, ""
        turn = {"question": question, "language": detect_language(question)}
        try:
            filters = Filters.of(sources, since, until)
        except AssistantError as exc:
            turns.append({**turn, "error": f"Filters: {exc}"})
            return render.conversation_html(turns), turns, question  # kept, to ask again once fixed
        if filters.active:
            turn["filters"] = filters.model_dump(mode="json")
        if by_source:
            turn["by_source"] = True
        turns.append({**turn, "waiting": True})
        return render.conversation_html(turns), turns, ""

    def answer(self, turns: list[dict] | None, chat: dict | None = None, request: gr.Request = None):
        """Step two, in the one queue: stream the answer to the oldest waiting question, and save it
        into the chat's conversation (``chat["id"]``; the first answer starts one). Yields
        (conversation HTML, turns)."""
        turns = turns if turns is not None else []
        chat = chat if chat is not None else {}
        index = next((i for i, t in enumerate(turns) if t.get("waiting")), None)
        if index is None:  # an empty question, or its conversation was cleared
            yield render.conversation_html(turns), turns
            return
        turn = turns[index]
        turn.pop("waiting")
        turn["partial"] = ""
        history = _history(turns[:index])
        filters = Filters.model_validate(turn["filters"]) if turn.get("filters") else None
        saving_to = chat.get("id")  # the conversation this question was asked in
        yield render.conversation_html(turns), turns
        if turn.get("by_source"):  # one answer per outlet, all at once (not streamed)
            try:
                compared = self.assistant.ask_by_source(turn["question"], filters)
            except Exception as exc:
                turn["error"] = _friendly(exc)
            else:
                if any(t is turn for t in turns):  # not when "New chat" cleared it meanwhile
                    self.save(turn, compared, filters, chat, saving_to, request)
                turn["compared"] = compared.model_dump(mode="json")
            yield render.conversation_html(turns), turns
            return
        try:
            with closing(self.assistant.stream(turn["question"], history=history or None, filters=filters)) as stream:
                for item in stream:
                    if not any(t is turn for t in turns):  # "New chat" cleared it: stop the model, free the queue
                        yield render.conversation_html(turns), turns
                        return
                    if isinstance(item, Answer):
                        self.save(turn, item, filters, chat, saving_to, request)
                        turn["answer"] = item.model_dump(mode="json")
                    else:
                        turn["partial"] += item
                    yield render.conversation_html(turns), turns
        except Exception as exc:  # shown in the chat, never as a stack trace in the page
            turn["error"] = _friendly(exc)
            yield render.conversation_html(turns), turns

    def save(self, turn: dict, answer: Answer | BySource, filters: Filters | None, chat: dict, into: str | None, request) -> None:
        """Save an answer (or the outlets' answers) into conversation ``into`` (None: a new one,
        which becomes the chat's); the answer still shows when saving fails."""
        try:
            saved_in, _ = self.assistant.save_turn(turn["question"], answer, filters, into, user_of(request))
        except Exception as exc:
            turn["not_saved"] = f"Not saved: {_friendly(exc)}"
            return
        if chat.get("id") == into:  # not when another conversation was opened meanwhile
            chat["id"] = saved_in

    # --- saved conversations -------------------------------------------------------------------
    def conversation_list(self, query: str, chat: dict | None, request: gr.Request = None):
        """The side list: this user's conversations, newest first (matching ``query``), the open one
        selected."""
        chat = chat if chat is not None else {}
        try:
            found = self.assistant.conversations(user_of(request), query or "")
        except Exception as exc:
            return gr.update(choices=[], value=None, label=f"Conversations: {_friendly(exc)}")
        # The date isolated left to right (LRI … PDI), so that an Arabic title does not reorder it.
        choices = [(f"{c.title} · \u2066{c.updated_at.astimezone():%Y-%m-%d %H:%M}\u2069", c.id) for c in found]
        open_id = chat.get("id") if any(c.id == chat.get("id") for c in found) else None
        return gr.update(choices=choices, value=open_id, label=f"Conversations · المحادثات ({len(found)})")

    def side_panel(self, query: str, chat: dict | None, request: gr.Request = None):
        """The side list, and the export buttons for the open conversation."""
        return self.conversation_list(query, chat, request), *self._exports((chat or {}).get("id"), request)

    def _exports(self, conversation_id: str | None, request: gr.Request | None):
        """The Markdown and JSON download buttons, for the open conversation."""
        if not conversation_id:
            return gr.update(value=None, interactive=False), gr.update(value=None, interactive=False)
        try:
            conversation = self.assistant.conversation(conversation_id, user_of(request))  # read once for both
        except Exception:  # deleted meanwhile: nothing to download
            return gr.update(value=None, interactive=False), gr.update(value=None, interactive=False)
        buttons = []
        for format in ("markdown", "json"):
            path = Path(self._exports_dir.name) / file_name(conversation_id, format)
            path.write_text(export(conversation, format), encoding="utf-8")
            buttons.append(gr.update(value=str(path), interactive=True))
        return tuple(buttons)

    def open_conversation(self, conversation_id: str | None, turns: list[dict] | None, chat: dict | None, request: gr.Request = None):
        """Reopen a saved conversation to read or continue it. Returns (conversation HTML, turns,
        viewer, title box)."""
        turns = turns if turns is not None else []
        chat = chat if chat is not None else {}
        if not conversation_id:
            return render.conversation_html(turns), turns, gr.update(), gr.update()
        try:
            conversation = self.assistant.conversation(conversation_id, user_of(request))
        except Exception as exc:
            turns.clear()
            chat["id"] = None
            turns.append({"question": "", "language": "en", "error": _friendly(exc)})
            return render.conversation_html(turns), turns, render.EMPTY_VIEWER, ""
        turns.clear()  # in place: an answer still streaming for the old one sees it gone and stops
        turns.extend(saved_turns(conversation))
        chat["id"] = conversation.id
        return render.conversation_html(turns), turns, render.EMPTY_VIEWER, conversation.title

    def opened_from_url(self, turns: list[dict] | None, chat: dict | None, request: gr.Request = None):
        """``/?conversation=ID`` opens that conversation (when it is this user's) as the page loads."""
        conversation_id = request.query_params.get("conversation") if request else None
        if not conversation_id:
            turns = turns if turns is not None else []
            return render.conversation_html(turns), turns, gr.update(), gr.update()
        return self.open_conversation(conversation_id, turns, chat, request)

    def rename_conversation(self, title: str, chat: dict | None, request: gr.Request = None) -> str:
        conversation_id = (chat or {}).get("id")
        if not conversation_id:
            return "Ask a question first: a conversation is saved with its first answer."
        try:
            self.assistant.rename_conversation(conversation_id, title, user_of(request))
        except Exception as exc:
            return _friendly(exc)
        return "Renamed: the list shows the new title."

    def delete_conversation(self, turns: list[dict] | None, chat: dict | None, request: gr.Request = None):
        """Delete the open conversation and start a new chat. Returns (conversation HTML, turns,
        viewer, title box, message)."""
        chat = chat if chat is not None else {}
        conversation_id, message = chat.get("id"), "Nothing to delete: this chat is not saved yet."
        if conversation_id:
            try:
                self.assistant.delete_conversation(conversation_id, user_of(request))
                message = "Deleted the conversation."
            except Exception as exc:
                message = _friendly(exc)
        html, turns, viewer, _ = self.new_chat(turns, chat)
        return html, turns, viewer, "", message

    def show_source(self, turns: list[dict], event: gr.EventData) -> str:
        data = getattr(event, "_data", None) or {}
        try:
            turn = turns[int(data["turn"])]
            if turn.get("compared"):  # a citation of one outlet's answer
                answer = BySource.model_validate(turn["compared"]).answers[int(data["answer"])]
            else:
                answer = Answer.model_validate(turn["answer"])
            citation: Citation = next(c for c in answer.citations if c.n == int(data["n"]))
        except (KeyError, IndexError, StopIteration, TypeError, ValueError):
            return render.EMPTY_VIEWER
        return self._article_view(citation, turn["question"])

    def new_chat(self, turns: list[dict] | None, chat: dict | None = None):
        # Emptied in place, not replaced: an answer cancelled mid-stream may still deliver one last
        # update, and it writes back this same (now empty) list instead of the old conversation.
        turns = turns if turns is not None else []
        turns.clear()
        if chat is not None:
            chat["id"] = None  # the next answer starts a new conversation
        return render.conversation_html(turns), turns, render.EMPTY_VIEWER, ""

    # --- timeline ------------------------------------------------------------------------------
    def timeline(self, query: str, sources: list[str] | None = None, since: str = "", until: str = "", summaries: bool = False):
        """The story of ``query`` across outlets and dates. Returns (timeline HTML, the Timeline as
        JSON for the citation links, the emptied viewer)."""
        query = (query or "").strip()
        if not query:
            return render.EMPTY_TIMELINE, None, render.EMPTY_VIEWER
        try:
            timeline = self.assistant.timeline(query, Filters.of(sources, since, until), summaries=summaries)
        except Exception as exc:
            return f'<p class="error" dir="auto">{render.escape(_friendly(exc))}</p>', None, render.EMPTY_VIEWER
        return render.timeline_html(timeline), timeline.model_dump(mode="json"), render.EMPTY_VIEWER

    def show_timeline_source(self, timeline: dict | None, event: gr.EventData) -> str:
        data = getattr(event, "_data", None) or {}
        try:
            story = Timeline.model_validate(timeline)
            line = story.periods[int(data["period"])].lines[int(data["line"])]
        except (KeyError, IndexError, TypeError, ValueError):  # (pydantic's ValidationError is a ValueError)
            return render.EMPTY_VIEWER
        return self._article_view(line.citation, story.query)

    def _article_view(self, citation: Citation, question: str) -> str:
        try:
            article = self.assistant.article(citation.doc_id)
        except Exception as exc:
            log.warning("could not read %s for the viewer: %s", citation.doc_id, _friendly(exc))
            article = None
        return render.article_html(article, citation, question)

    # --- API for scripts (gradio_client) ------------------------------------------------------
    def api_ask(
        self,
        question: str,
        history: list[dict] | None = None,
        sources: list[str] | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> dict:
        """Answer one question, optionally only from some outlets (``sources``) and dates (``since``,
        ``until``: YYYY, YYYY-MM or YYYY-MM-DD); returns the ``Answer`` as JSON (errors raise
        ``gr.Error``)."""
        try:
            filters = Filters.of(sources, since, until)
            return self.assistant.ask(question, history=history or None, filters=filters if filters.active else None).model_dump(mode="json")
        except Exception as exc:
            # No traceback on the server's stderr: the message is the whole story (an unexpected
            # error was logged by _friendly), and the user's question stays out of the log.
            raise gr.Error(_friendly(exc), print_exception=False) from None

    # --- library -------------------------------------------------------------------------------
    def llm_label(self) -> str:
        # Only a model already loaded is named: loading it here would stall the library tab
        # (`assistant serve` loads it in the background as it starts).
        return self.assistant.model_label() or f"{self.assistant.settings.llm.provider} (not loaded yet)"

    def library(self, message: str = ""):
        """(status HTML, article rows, remove-choices, message, the chat's and the timeline's outlet choices)."""
        try:
            documents = self.assistant.documents()
            status = self.assistant.status(documents)
        except Exception as exc:
            return f'<p class="error">{render.escape(_friendly(exc))}</p>', [], gr.update(choices=[]), message, gr.update(), gr.update()
        choices = [(f"{d.doc_id} — {d.title}"[:120], d.doc_id) for d in documents]
        outlets = render.outlets(documents)
        return (
            render.status_html(status, self.llm_label()),
            render.library_rows(documents),
            gr.update(choices=choices, value=None),
            message,
            gr.update(choices=outlets),  # the chat's outlets (the selection is kept)
            gr.update(choices=outlets),  # the timeline's
        )

    def upload(self, files: list[str] | None):
        if not files:
            return self.library(f"Choose one or more files first ({' '.join(self.assistant.settings.ingest.extensions)}).")
        paths, lines = [], []
        limit = self.assistant.settings.ui.max_upload_mb
        for file in files:
            path = Path(file)
            # The file type is checked by the page (file_types) and again by ingest, which reports it.
            if path.stat().st_size > megabytes(limit):
                lines.append(f"Rejected {path.name}: larger than {limit:g} MB")
            else:
                paths.append(path)
        if paths:
            try:
                report = self.assistant.ingest(paths)
            except Exception as exc:
                lines.append(f"Nothing was added: {_friendly(exc)}")
            else:
                lines += [ingest_summary(report), *skipped_lines(report, names_only=True)]
        return self.library("\n".join(lines))

    def add_urls(self, text: str | None):
        """Pages and feeds by URL, one or more separated by spaces or lines."""
        urls = (text or "").split()
        if not urls:
            return self.library("Paste the URL of an article page or of an RSS/Atom feed first.")
        not_urls = [u for u in urls if not is_url(u)]
        if not_urls:
            return self.library(f"Not a URL: {not_urls[0]} (write it with http:// or https://).")
        try:
            report = self.assistant.ingest(urls)
        except Exception as exc:
            return self.library(f"Nothing was added: {_friendly(exc)}")
        return self.library("\n".join([ingest_summary(report), *skipped_lines(report)]))

    def remove(self, doc_id: str | None):
        if not doc_id:
            return self.library("Choose an article to remove.")
        try:
            removed = self.assistant.remove([doc_id])
        except Exception as exc:
            return self.library(f"Could not remove {doc_id}: {_friendly(exc)}")
        if doc_id not in removed:
            return self.library(f"{doc_id} is not in the index.")
        return self.library(f"Removed {doc_id} ({removed[doc_id]} passages).")


def build_app(assistant) -> gr.Blocks:
    ui = ChatUI(assistant)
    with gr.Blocks(title="Arabic news assistant · مساعد الأخبار") as app:
        turns = gr.State([])
        chat = gr.State({"id": None})  # the saved conversation this chat writes to (changed in place, like turns)
        gr.HTML('<header class="app-header"><h1>Arabic news assistant <span dir="rtl" lang="ar">· مساعد الأخبار العربية</span></h1></header>')
        with gr.Tabs():
            with gr.Tab("Chat · المحادثة", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=220, elem_id="conversations"):
                        new_chat = gr.Button("New chat · محادثة جديدة", elem_id="new-chat", size="sm")
                        search = gr.Textbox(show_label=False, placeholder="Search · بحث", elem_id="conversation-search", max_lines=1)
                        listed = gr.Radio(label="Conversations · المحادثات", choices=[], elem_id="conversation-list")
                        with gr.Accordion("This conversation · هذه المحادثة", open=False, elem_id="conversation-tools"):
                            title = gr.Textbox(label="Title · العنوان", elem_id="conversation-title", max_lines=1)
                            with gr.Row():
                                rename = gr.Button("Rename", elem_id="rename-conversation", size="sm")
                                delete = gr.Button("Delete", variant="stop", elem_id="delete-conversation", size="sm")
                            export_md = gr.DownloadButton("Markdown", elem_id="export-markdown", size="sm", interactive=False)
                            export_json = gr.DownloadButton("JSON", elem_id="export-json", size="sm", interactive=False)
                            conversation_message = gr.Markdown(elem_id="conversation-message")
                    with gr.Column(scale=3):
                        conversation = gr.HTML(
                            render.conversation_html([]),
                            elem_id="conversation",
                            js_on_load=CONVERSATION_JS,
                            autoscroll=True,
                            max_height=620,
                            min_height=300,
                        )
                        ask_status = gr.HTML("", elem_id="ask-status")  # Gradio's queue position (ui.css)
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False,
                                placeholder="اكتب سؤالك… / Ask a question…",
                                elem_id="question",
                                lines=1,
                                max_lines=6,
                                # The browser stops typing at the limit; /ask still checks it.
                                max_length=assistant.settings.retrieval.max_question_chars,
                                scale=5,
                                autofocus=True,
                            )
                            send = gr.Button("Ask · اسأل", variant="primary", elem_id="send", scale=1, min_width=90)
                        with gr.Accordion("Outlets and dates · المصادر والتواريخ", open=False, elem_id="filters"):
                            with gr.Row():
                                sources = gr.Dropdown(
                                    label="Only from · من المصادر", choices=[], multiselect=True, elem_id="filter-sources", scale=2
                                )
                                since = gr.Textbox(label="From · من تاريخ", placeholder="YYYY-MM-DD", elem_id="filter-since", max_lines=1)
                                until = gr.Textbox(label="To · إلى تاريخ", placeholder="YYYY-MM", elem_id="filter-until", max_lines=1)
                            by_source = gr.Checkbox(label="Compare outlets: one answer per outlet · قارن المصادر: جواب لكل مصدر",
                                                    elem_id="by-source")
                        gr.Examples(examples=[[q] for q in assistant.settings.ui.examples], inputs=[question], label="Examples · أمثلة")
                    with gr.Column(scale=2):
                        viewer = gr.HTML(render.EMPTY_VIEWER, elem_id="source-viewer", js_on_load=VIEWER_JS, max_height=700, container=True)
            with gr.Tab("Timeline · الخط الزمني", id="timeline-tab"):
                story = gr.State(None)  # the Timeline shown, for its citation links
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        with gr.Row():
                            timeline_query = gr.Textbox(show_label=False, placeholder="موضوع أو حدث… / A subject or an event…",
                                                        elem_id="timeline-query", max_lines=1, scale=5)
                            timeline_show = gr.Button("Show · اعرض", variant="primary", elem_id="timeline-show", scale=1, min_width=90)
                        with gr.Row():
                            timeline_sources = gr.Dropdown(label="Only from · من المصادر", choices=[], multiselect=True,
                                                           elem_id="timeline-sources", scale=2)
                            timeline_since = gr.Textbox(label="From · من تاريخ", placeholder="YYYY-MM-DD", elem_id="timeline-since", max_lines=1)
                            timeline_until = gr.Textbox(label="To · إلى تاريخ", placeholder="YYYY-MM", elem_id="timeline-until", max_lines=1)
                        timeline_summaries = gr.Checkbox(label="A line per period by the model (slower) · سطر لكل فترة من النموذج",
                                                         elem_id="timeline-summaries")
                        timeline_view = gr.HTML(render.EMPTY_TIMELINE, elem_id="timeline", js_on_load=TIMELINE_JS, max_height=700)
                    with gr.Column(scale=2):
                        timeline_viewer = gr.HTML(render.EMPTY_VIEWER, elem_id="timeline-viewer", js_on_load=VIEWER_JS, max_height=700,
                                                  container=True)
            with gr.Tab("Library · المكتبة", id="library"):
                status = gr.HTML(elem_id="index-status")
                articles = gr.Dataframe(
                    headers=["title", "id", "outlet", "author", "date", "passages"],
                    datatype=["str", "str", "str", "str", "str", "number"],
                    interactive=False,
                    elem_id="articles",
                    wrap=True,
                    show_search="filter",  # find an outlet or a date; headers sort
                )
                with gr.Row():
                    with gr.Column():
                        extensions = assistant.settings.ingest.extensions
                        files = gr.File(
                            label=f"Add articles ({' '.join(extensions)})", file_count="multiple", file_types=extensions, elem_id="upload"
                        )
                        add = gr.Button("Add to the index", elem_id="add-articles")
                        urls = gr.Textbox(label="Or pages and feeds by URL · أو صفحات وخلاصات بعناوينها",
                                          placeholder="https://…/feed.xml  https://…/article.html", elem_id="urls", max_lines=4)
                        add_urls = gr.Button("Fetch and add", elem_id="add-urls")
                    with gr.Column():
                        to_remove = gr.Dropdown(label="Remove an article", choices=[], elem_id="remove-choice")
                        remove = gr.Button("Remove", variant="stop", elem_id="remove-article")
                library_message = gr.Textbox(label="Library", interactive=False, lines=2, elem_id="library-message")

        # Asking: ``accept`` shows the question at once (own group, no limit: it never touches the
        # Assistant), then ``answer`` waits in QUEUE; while it waits, Gradio's queue position
        # ("queue: 2/3") shows on #ask-status instead of the page looking idle.
        accept = {"fn": ui.accept, "inputs": [question, turns, sources, since, until, by_source], "outputs": [conversation, turns, question], "show_progress": "hidden",
                  "concurrency_id": "accept", "concurrency_limit": None, "api_visibility": "private"}
        # trigger_mode "multiple": a question asked while this tab's previous answer streams gets its
        # own turn in the queue ("once", the default, would drop it and leave it waiting forever).
        answer = {"fn": ui.answer, "inputs": [turns, chat], "outputs": [conversation, turns], "concurrency_id": QUEUE, "trigger_mode": "multiple",
                  "show_progress": "minimal", "show_progress_on": [ask_status], "api_visibility": "private"}
        # The side list and the export buttons, after an answer is saved or the list changes. Only
        # SQLite is read, so they wait in their own group, not behind answers.
        side = {"fn": ui.side_panel, "inputs": [search, chat], "outputs": [listed, export_md, export_json],
                "concurrency_id": "conversations", "concurrency_limit": None, "show_progress": "hidden", "api_visibility": "private"}
        asking = []
        for trigger in (send.click, question.submit):
            accepted = trigger(**accept)
            answered = accepted.then(**answer)
            asking += [accepted, answered]
            answered.then(**side)
        conversation.click(ui.show_source, inputs=[turns], outputs=[viewer], concurrency_id=QUEUE, api_visibility="private")
        # Cancel an answer still streaming, or it redraws the old conversation into the new one.
        new_chat.click(ui.new_chat, inputs=[turns, chat], outputs=[conversation, turns, viewer, question], cancels=asking,
                       api_visibility="private").then(**side)
        opened = [conversation, turns, viewer, title]
        listed.input(ui.open_conversation, inputs=[listed, turns, chat], outputs=opened, cancels=asking,
                     concurrency_id="conversations", api_visibility="private").then(**side)
        # .change, not .input: Gradio's Textbox fires .input only on a key press, so a search pasted,
        # typed through an input method or erased with Backspace would leave the list stale.
        search.change(ui.conversation_list, inputs=[search, chat], outputs=[listed], concurrency_id="conversations",
                      concurrency_limit=None, show_progress="hidden", api_visibility="private", trigger_mode="always_last")
        rename.click(ui.rename_conversation, inputs=[title, chat], outputs=[conversation_message], concurrency_id="conversations",
                     api_visibility="private").then(**side)
        delete.click(ui.delete_conversation, inputs=[turns, chat], outputs=[*opened, conversation_message], cancels=asking,
                     concurrency_id="conversations", api_visibility="private").then(**side)
        app.load(ui.opened_from_url, inputs=[turns, chat], outputs=opened, concurrency_id="conversations",
                 api_visibility="private").then(**side)

        # A timeline reads the index (no model): it waits in QUEUE so that an upload never writes meanwhile.
        for trigger in (timeline_show.click, timeline_query.submit):
            trigger(ui.timeline, inputs=[timeline_query, timeline_sources, timeline_since, timeline_until, timeline_summaries],
                    outputs=[timeline_view, story, timeline_viewer], concurrency_id=QUEUE, api_visibility="private")
        timeline_view.click(ui.show_timeline_source, inputs=[story], outputs=[timeline_viewer], concurrency_id=QUEUE,
                            api_visibility="private")

        library_outputs = [status, articles, to_remove, library_message, sources, timeline_sources]
        app.load(ui.library, outputs=library_outputs, concurrency_id=QUEUE, api_visibility="private")
        add.click(ui.upload, inputs=[files], outputs=library_outputs, concurrency_id=QUEUE, api_visibility="private").then(
            lambda: None, outputs=[files], api_visibility="private"
        )
        remove.click(ui.remove, inputs=[to_remove], outputs=library_outputs, concurrency_id=QUEUE, api_visibility="private")
        add_urls.click(ui.add_urls, inputs=[urls], outputs=library_outputs, concurrency_id=QUEUE, api_visibility="private")
        gr.api(ui.api_ask, api_name="ask", concurrency_id=QUEUE)
    return app


def mount_kwargs(settings) -> dict:
    """``gr.mount_gradio_app`` arguments from the config: login, upload limit, styling."""
    ui = settings.ui
    auth = (ui.username, ui.password.get_secret_value()) if ui.username and ui.password else None
    return dict(
        auth=auth,
        max_file_size=megabytes(ui.max_upload_mb),  # bytes: Gradio's "mb" would mean 1024²
        show_error=False,  # errors are shown as friendly messages in the chat instead
        css=CSS_PATH.read_text(encoding="utf-8"),
        footer_links=["api"],  # the API page documents /ask for scripts
    )
