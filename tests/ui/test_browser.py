"""The web UI in Debian's chromium: streamed, cited answers in both directions, the source viewer,
the library (upload, remove), friendly errors and the safety of article text in the page.

Screenshots of every step land in out/ui-screenshots/ (``<test>-<step>.png``), and
out/ui-screenshots/arabic-answer.png shows a finished Arabic answer with its source open.
"""

from __future__ import annotations

import json
import re
import threading
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from assistant.arabic import detect_language
from assistant.config import Settings
from assistant.conversations import API_KEY_USER, login_user
from assistant.models import Answer
from assistant.present import outlet
from assistant.ui.app import EMPTY_QUESTION
from assistant.ui.render import WAITING
from tests.integration.helpers import free_port
from tests.integration.test_timeline import QUERY as STORY_QUERY
from tests.integration.test_timeline import archive

from .helpers import (
    ANSWER_TIMEOUT_MS,
    SCREENSHOTS,
    SEEDS,
    SPOKESMAN_DOC,
    SPOKESMAN_Q,
    running_ui,
)

pytestmark = [pytest.mark.ui, pytest.mark.slow]

SPOKESMAN_NAMES = ("كيغينز", "كاغينز")
# Seeds that name the spokesman: the first citation may point at any of them.
SPOKESMAN_DOCS = {SPOKESMAN_DOC, "001_85a3b68c139dd4d8", "003_e7f47d77941dc1b4"}
DOC_ID_IN_VIEWER = re.compile(r"^\((.+)\)$")

MUSEUM_TITLE = "افتتاح متحف الزعفران للخط العربي في مدينة تطوان"
MUSEUM_TEXT = (
    f"{MUSEUM_TITLE}\n"
    "افتتحت بلدية مدينة تطوان المغربية يوم 14 آذار 2031 متحف الزعفران للخط العربي، وهو أول متحف في المدينة مخصص لفنون الخط.\n"
    "وقالت مديرة المتحف سلمى البرقوقي إن المتحف يضم ثلاثمئة وأربعين مخطوطة نادرة جمعت من مكتبات العائلات القديمة في تطوان.\n"
    "ويفتح متحف الزعفران أبوابه للزوار كل يوم من الساعة التاسعة صباحاً حتى الخامسة مساء، والدخول مجاني للطلاب.\n"
)
# A fact only the uploaded article holds. (Asked "when" — متى — the 1.5B model answered with a seed's
# headline instead: it is confused by a date in another passage; "who" and "where" it answers right.)
MUSEUM_Q = "من هي مديرة متحف الزعفران للخط العربي؟"
MUSEUM_DIRECTOR = "البرقوقي"

IMG_PAYLOAD = '<img src=x onerror="window.__pwned=1">'
SCRIPT_PAYLOAD = "<script>window.__pwned=2</script>"
HOSTILE_TITLE = 'نشرة مختبر القرنفل للبرمجيات <img src=y onerror="window.__pwned=4">'
HOSTILE_TEXT = (
    f"{HOSTILE_TITLE}\n"
    f"أعلن مختبر القرنفل للبرمجيات في مدينة صلالة أن شعاره الجديد هو النص التالي: {IMG_PAYLOAD} "
    f"وأنه يختبر أيضا {SCRIPT_PAYLOAD} في صفحاته.\n"
    "وقال مدير مختبر القرنفل إن القوالب {{value}} و ${1+1} و ${window.__pwned=3} تظهر كما هي في تقارير المختبر منذ عام 2029.\n"
)
# A short answer (the city); the markup is in the cited passage. (Asked for the slogan itself, the model
# copies the markup into its answer too, but takes over a minute on 2 busy cores.)
HOSTILE_Q = "في أي مدينة يقع مختبر القرنفل للبرمجيات؟"


def write_article(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def add_article(ui, added_articles: list[str], folder: Path, doc_id: str, text: str) -> None:
    """Upload ``<doc_id>.txt`` through the library tab (removed after the test if still there)."""
    added_articles.append(doc_id)
    path = write_article(folder, f"{doc_id}.txt", text)
    ui.open_library()
    expect(ui.page.locator("#articles")).not_to_contain_text(doc_id)
    ui.upload([path])


def seed_text(doc_id: str) -> str:
    return (SEEDS / f"{doc_id}.txt").read_text(encoding="utf-8")


def viewer_doc_id(ui) -> str:
    match = DOC_ID_IN_VIEWER.match(ui.page.locator("#source-viewer .doc-id").text_content().strip())
    assert match, ui.page.locator("#source-viewer").inner_html()
    return match.group(1)


def assert_no_traceback(ui) -> None:
    body = ui.body_text()
    assert "Traceback" not in body and 'File "' not in body, body[-2000:]
    assert ui.page_errors == [], ui.page_errors


# --------------------------------------------------------------------------- a. the main flow
def test_arabic_answer_streams_with_citation_then_english_follow_up_then_new_chat(ui, ui_server):
    turn = ui.send(SPOKESMAN_Q)
    expect(ui.bot(turn)).to_have_count(1)  # the bot message appears at once, before the model answers
    ui.shot("asked")
    answer = ui.finished(turn)
    ui.shot("answered")

    # Seen streaming: the recorder saw the placeholder or partial text before the final answer.
    streamed = ui.stream_log(turn)
    assert streamed, "the answer never showed in a streaming state"
    partial = [t for t in streamed if t.strip("…").strip() and t not in WAITING.values()]
    assert all(a in b for a, b in pairwise(partial)), f"the partial text did not grow: {partial}"

    expect(answer).to_have_attribute("dir", "rtl")
    expect(answer).not_to_have_class(re.compile(r"\b(refusal|error)\b"))
    text = answer.locator(".text").inner_text()
    assert any(name in text for name in SPOKESMAN_NAMES), text
    citations = answer.locator(".text a.cite")
    assert citations.count() >= 1, answer.inner_html()
    first = citations.first
    expect(first).to_have_attribute("data-turn", str(turn))

    passage = ui.open_citation(first)
    viewer = ui.page.locator("#source-viewer")
    doc_id = viewer_doc_id(ui)
    assert doc_id in SPOKESMAN_DOCS
    assert passage and passage in seed_text(doc_id), passage  # the exact passage, inside its article
    titles = {d.doc_id: d.title for d in ui_server.assistant.documents()}
    expect(viewer.locator("h3")).to_have_text(titles[doc_id])
    assert titles[doc_id] in seed_text(doc_id)  # the article's headline, as in the seed file
    expect(viewer.locator("article")).to_have_attribute("dir", "rtl")
    expect(viewer.locator("mark#cited-passage")).to_be_visible()
    ui.shot("source-open")
    ui.shot("arabic-answer", path=SCREENSHOTS / "arabic-answer.png")

    # An English follow-up about the same person: answered (or refused) in English, left to right.
    follow = ui.send("What is his military rank?")
    reply = ui.finished(follow)
    ui.shot("follow-up")
    expect(reply).to_have_attribute("dir", "ltr")
    expect(reply).to_have_attribute("lang", "en")
    expect(reply).not_to_have_class(re.compile(r"\berror\b"))
    reply_text = reply.locator(".text").inner_text()
    assert detect_language(re.sub(r"\[\d+\]", "", reply_text)) == "en", reply_text
    refused = "refusal" in (reply.get_attribute("class") or "")
    assert refused or reply.locator(".text a.cite").count() >= 1, reply.inner_html()
    # The earlier turn is still there, unchanged.
    expect(ui.turns()).to_have_count(2)
    expect(ui.bot(turn)).to_have_attribute("dir", "rtl")

    ui.page.click("#new-chat")
    expect(ui.turns()).to_have_count(0)
    expect(ui.page.locator("#conversation .empty-chat")).to_be_visible()
    expect(ui.page.locator("#source-viewer mark")).to_have_count(0)
    ui.shot("new-chat")
    assert_no_traceback(ui)

    # Saved: after a reload the conversation is in the side list. Reopened, its citations still open
    # their passages, and a follow-up that needs its first turn ("his rank") is answered in context.
    ui.goto(ui.page.url)
    expect(ui.turns()).to_have_count(0)
    saved = ui.listed_conversations().filter(has_text=SPOKESMAN_Q)
    expect(saved).to_have_count(1)
    saved.click()
    expect(ui.turns()).to_have_count(2)
    expect(ui.bot(0).locator(".text")).to_have_text(text)
    assert ui.open_citation(ui.bot(0).locator(".text a.cite").first) in seed_text(viewer_doc_id(ui))
    ui.shot("reopened")
    rank = ui.finished(ui.send("ما هي رتبته العسكرية؟"))
    ui.shot("follow-up-after-reopening")
    expect(rank).not_to_have_class(re.compile(r"\b(refusal|error)\b"))
    # "His" was understood: the answer is about the spokesman of the first turn, cited from his articles.
    rank_text = rank.locator(".text").inner_text()
    assert any(name in rank_text for name in SPOKESMAN_NAMES), rank_text
    ui.open_citation(rank.locator(".text a.cite").first)
    assert viewer_doc_id(ui) in SPOKESMAN_DOCS

    # Exported: the Markdown has every citation's outlet, title and quoted passage.
    conversation = next(c for c in ui_server.assistant.conversations() if c.title == SPOKESMAN_Q)
    conversation = ui_server.assistant.conversation(conversation.id)
    assert [t.question for t in conversation.turns] == [SPOKESMAN_Q, "What is his military rank?", "ما هي رتبته العسكرية؟"]
    markdown = ui.export("export-markdown")
    for turn in conversation.turns:
        for c in turn.answer.citations:
            # (The seeds are plain text files: no outlet, date or URL. tests/unit/test_conversations.py exports those.)
            assert all(part in markdown for part in (outlet(c.source, c.doc_id), c.date, c.url, c.title, *c.text.split("\n"))), c
    assert json.loads(ui.export("export-json")) == conversation.model_dump(mode="json")
    # "Copy with sources" under an answer: that answer's Markdown, citations included.
    ui.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = rank.locator("a.copy-answer")
    copy.click()
    expect(copy).to_have_text("Copied ✓")
    copied = ui.page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("## \u200fما هي رتبته العسكرية؟") and all(c.title in copied for c in conversation.turns[2].answer.citations)
    with ui.page.expect_download() as saved_answer:  # "Markdown" under the answer: the same text, as a file
        rank.locator("a.download-answer").click()
    assert saved_answer.value.suggested_filename == "answer-3.md"
    assert Path(saved_answer.value.path()).read_text(encoding="utf-8") == copied
    assert_no_traceback(ui)


def test_new_chat_while_answer_streams_leaves_the_conversation_empty(ui):
    turn = ui.send(SPOKESMAN_Q)
    ui.page.locator(f'#conversation .turn[data-turn="{turn}"] .msg.bot.streaming:not(.waiting)').wait_for()
    ui.page.click("#new-chat")
    expect(ui.turns()).to_have_count(0)
    # The next question is answered in the same queue after the cancelled answer (refused after the
    # one-token evidence check, so quickly): once it shows, the cancelled answer can no longer redraw.
    off_topic = ui.send("What is the capital of Australia?")
    reply = ui.finished(off_topic)
    ui.shot("after-new-chat")
    expect(reply).to_have_class(re.compile(r"\brefusal\b"))
    text = ui.page.locator("#conversation").inner_text()
    assert SPOKESMAN_Q not in text, text
    expect(ui.turns()).to_have_count(1)


# --------------------------------------------------------------------------- b. empty question
def test_empty_question_is_a_friendly_error_in_the_chat(ui):
    turn = ui.send("")
    error = ui.finished(turn)
    expect(error).to_have_class(re.compile(r"\berror\b"))
    expect(error).to_contain_text(EMPTY_QUESTION["en"])
    expect(error).to_contain_text(EMPTY_QUESTION["ar"])
    ui.shot("empty")
    # Blank (whitespace only), sent with Enter, is empty too.
    turn = ui.send("   ", press_enter=True)
    expect(ui.finished(turn)).to_have_class(re.compile(r"\berror\b"))
    ui.shot("blank")
    assert_no_traceback(ui)


# --------------------------------------------------------------------------- c. library
def test_uploaded_article_is_listed_answerable_and_removable(ui, ui_server, added_articles, tmp_path):
    doc_id = "zafaran_museum"
    before = ui_server.assistant.status().documents
    add_article(ui, added_articles, tmp_path, doc_id, MUSEUM_TEXT)
    articles = ui.page.locator("#articles")
    expect(ui.library_message()).to_have_value(re.compile(r"^Added 1, updated 0, unchanged 0 \(\d+ passages? written, 0 old removed; 1 file read in [\d.]+ s\)\.$"))
    expect(articles).to_contain_text(doc_id)
    expect(articles).to_contain_text(MUSEUM_TITLE)
    expect(ui.page.locator("#index-status")).to_contain_text(str(before + 1))
    ui.shot("added")

    ui.open_tab("Chat")
    answer = ui.ask(MUSEUM_Q)
    ui.shot("answered")
    expect(answer).to_have_attribute("dir", "rtl")
    text = answer.locator(".text").inner_text()
    assert MUSEUM_DIRECTOR in text, text
    cites = answer.locator(f'.text a.cite[title="{MUSEUM_TITLE}"]')
    assert cites.count() >= 1, answer.inner_html()
    passage = ui.open_citation(cites.first)
    assert viewer_doc_id(ui) == doc_id
    assert passage in MUSEUM_TEXT, passage
    expect(ui.page.locator("#source-viewer h3")).to_have_text(MUSEUM_TITLE)
    ui.shot("source-open")

    ui.open_library()
    ui.remove(doc_id)
    expect(ui.library_message()).to_have_value(re.compile(rf"^Removed {doc_id} \(\d+ passages\)\.$"))
    expect(articles).not_to_contain_text(doc_id)
    ui.shot("removed")
    assert doc_id not in {d.doc_id for d in ui_server.assistant.documents()}
    assert ui_server.assistant.status().documents == before

    # The answer still cites it: the viewer now shows the cited passage alone, with a notice.
    ui.open_tab("Chat")
    cites.first.click()
    expect(ui.page.locator("#source-viewer .notice")).to_contain_text("no longer in the index")
    expect(ui.page.locator("#source-viewer mark#cited-passage")).to_have_text(passage)
    expect(ui.page.locator("#source-viewer .article-body")).to_contain_text(passage)  # with any other runs shown
    ui.shot("cited-after-removal")
    assert_no_traceback(ui)


# --------------------------------------------------------------------------- d. safety
def test_markup_in_an_article_is_shown_as_text_and_never_runs(ui, ui_server, added_articles, tmp_path):
    doc_id = "qaranful_lab"
    add_article(ui, added_articles, tmp_path, doc_id, HOSTILE_TEXT)
    expect(ui.library_message()).to_have_value(re.compile(r"^Added 1,"))

    ui.open_tab("Chat")
    answer = ui.ask(HOSTILE_Q)
    assert "صلالة" in answer.locator(".text").inner_text()
    cites = answer.locator(".text a.cite")
    assert cites.count() >= 1, answer.inner_html()
    expect(cites.first).to_have_attribute("title", HOSTILE_TITLE)
    ui.open_citation(cites.first)
    assert viewer_doc_id(ui) == doc_id
    expect(ui.page.locator("#source-viewer h3")).to_have_text(HOSTILE_TITLE)
    expect(answer.locator(".sources .source-title").first).to_have_text(HOSTILE_TITLE)
    ui.shot("source-open")

    viewer = ui.page.locator("#source-viewer .article-body")
    viewer_text = viewer.inner_text()
    for literal in (IMG_PAYLOAD, SCRIPT_PAYLOAD, "{{value}}", "${1+1}", "${window.__pwned=3}"):
        assert literal in viewer_text, (literal, viewer_text)  # shown as text, not interpreted
    expect(viewer.get_by_text("<img src=x").first).to_be_visible()
    assert ui.page.locator("#source-viewer img, #conversation img, #source-viewer script, #conversation script").count() == 0
    assert ui.page.evaluate("window.__pwned") is None
    ui.open_library()  # the title also reaches the library table and the remove list
    expect(ui.page.locator("#articles")).to_contain_text(HOSTILE_TITLE)
    ui.page.locator("#remove-choice input").click()
    expect(ui.page.get_by_role("option", name=re.compile(doc_id))).to_have_text(re.compile(re.escape(HOSTILE_TITLE)))
    ui.shot("library")
    assert ui.page.locator("img[src=x], img[src=y]").count() == 0
    assert ui.page.evaluate("window.__pwned") is None
    assert_no_traceback(ui)


# --------------------------------------------------------------------------- outlets and dates
MUSEUM_OUTLET = "Tetouan Daily"


def test_questions_are_answered_only_from_the_chosen_outlet_and_dates(ui, ui_server, added_articles, tmp_path):
    """An article with an outlet and an Arabic date is listed with them; chosen in the chat's
    filters, it is the only article answers draw from, whatever the seeds say."""
    doc_id = "zafaran_dated"
    added_articles.append(doc_id)
    record = {"id": doc_id, "source": MUSEUM_OUTLET, "date": "15 آذار 2031", "title": MUSEUM_TITLE,
              "text": MUSEUM_TEXT.split("\n", 1)[1]}
    path = write_article(tmp_path, "dated.jsonl", json.dumps(record, ensure_ascii=False) + "\n")
    ui.open_library()
    ui.upload([path])
    expect(ui.library_message()).to_have_value(re.compile(r"^Added 1,"))
    row = ui.page.locator("#articles").get_by_role("row", name=re.compile(doc_id))
    expect(row).to_contain_text(MUSEUM_OUTLET)
    expect(row).to_contain_text("2031-03-15")
    ui.shot("dated-article-listed")

    ui.open_tab("Chat")
    ui.page.locator("#filters").get_by_text(re.compile("Outlets and dates")).click()
    ui.page.locator("#filter-sources input").click()
    ui.page.get_by_role("option", name=MUSEUM_OUTLET).click()
    ui.page.keyboard.press("Escape")
    answer = ui.ask(SPOKESMAN_Q)  # the seeds answer it; they are not from this outlet
    turn = ui.page.locator('#conversation .turn[data-turn="0"]')
    expect(turn.locator(".msg.user .filters")).to_contain_text(MUSEUM_OUTLET)
    cited = {c.get_attribute("title") for c in answer.locator(".text a.cite").all()}
    assert cited <= {MUSEUM_TITLE}, (cited, answer.inner_html())
    ui.shot("filtered-by-outlet")

    ui.page.locator("#filter-since input").fill("July 2031")
    index = ui.send(MUSEUM_Q)
    error = ui.page.locator(f'#conversation .turn[data-turn="{index}"] .msg.bot.error')
    expect(error).to_contain_text("'July 2031' is not a date: write YYYY, YYYY-MM or YYYY-MM-DD")
    expect(ui.page.locator("#question textarea")).to_have_value(MUSEUM_Q)  # kept, to ask again
    ui.shot("bad-date")

    ui.page.click("#new-chat")  # else the museum question is read as a follow-up of the spokesman one
    expect(ui.turns()).to_have_count(0)
    ui.page.locator("#filter-since input").fill("2031-03")
    answer = ui.ask(MUSEUM_Q)
    assert MUSEUM_DIRECTOR in answer.locator(".text").inner_text(), answer.inner_html()
    cited = {c.get_attribute("title") for c in answer.locator(".text a.cite").all()}
    assert cited == {MUSEUM_TITLE}, answer.inner_html()
    ui.shot("filtered-by-date")
    assert_no_traceback(ui)


# --------------------------------------------------------------------------- e. rejected uploads
def test_disallowed_uploads_are_rejected_and_change_nothing(ui, ui_server, added_articles, tmp_path):
    before = [d.doc_id for d in ui_server.assistant.documents()]
    ui.open_library()
    status = ui.page.locator("#index-status").inner_text()

    # A type outside the accepted list: Gradio refuses it in the page (file_types) with a message.
    exe = write_article(tmp_path, "setup.exe", "MZ\x90\x00 not an article")
    ui.page.locator("#upload input[type=file]").set_input_files(str(exe))
    expect(ui.page.get_by_text(re.compile(r"Invalid file type: setup\.exe"))).to_be_visible()
    ui.shot("exe-refused")
    ui.page.click("#add-articles")
    expect(ui.library_message()).to_have_value(re.compile(r"^Choose one or more files first"))

    # A binary file renamed .txt passes the type check and is skipped by the reader, with the reason.
    added_articles.append("report")
    fake = tmp_path / "report.txt"
    fake.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\x00\x00\x00endobj\n" * 20)
    ui.upload([fake])
    expect(ui.library_message()).to_have_value(re.compile(r"^Added 0, updated 0, unchanged 0 \(0 passages written, 0 old removed; 0 files read in [\d.]+ s\)\.\nSkipped report\.txt: .+"))
    ui.shot("binary-skipped")

    assert [d.doc_id for d in ui_server.assistant.documents()] == before
    assert ui.page.locator("#index-status").inner_text() == status
    assert_no_traceback(ui)


# --------------------------------------------------------------------------- f. Ollama down
def test_unreachable_ollama_is_a_friendly_error_naming_the_host(open_ui, seeded_settings_factory):
    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings: Settings = seeded_settings_factory(llm={"provider": "ollama", "ollama": {"host": host}}, ui={"port": free_port()})
    with running_ui(settings) as server:
        ui = open_ui(server.url)
        error = ui.ask("Who is the coalition spokesman?")
        ui.shot("ollama-down")
        expect(error).to_have_class(re.compile(r"\berror\b"))
        expect(error).to_have_attribute("dir", "ltr")
        expect(error).to_contain_text(f"cannot reach Ollama at {host}")
        assert_no_traceback(ui)



# --------------------------------------------------------------------------- h. saved conversations
def test_a_reopened_answer_whose_article_was_removed_says_so(ui, ui_server, tmp_path):
    """A saved answer citing an article that has left the index since: its link shows the passage
    alone and says the article is gone (no model needed: the conversation is saved directly)."""
    citation = {"n": 1, "doc_id": "removed_article", "title": "مقال حذف من الفهرس", "chunk_id": "removed_article:0",
                "text": "نص المقطع الذي استشهد به الجواب", "start": 0, "end": 31, "score": 0.5}
    gone = Answer(text="جواب من مقال محذوف [1]", language="ar", citations=[citation], model="fake")
    conversation_id, _ = ui_server.assistant.save_turn("سؤال عن مقال محذوف", gone)
    ui.goto(f"{ui_server.url}?conversation={conversation_id}")
    expect(ui.turns()).to_have_count(1)
    expect(ui.listed_conversations().filter(has_text="سؤال عن مقال محذوف")).to_have_count(1)
    assert ui.open_citation(ui.bot(0).locator(".text a.cite").first) == citation["text"]
    expect(ui.page.locator("#source-viewer .notice")).to_contain_text("no longer in the index")
    ui.shot("removed-article")
    ui_server.assistant.delete_conversation(conversation_id)
    assert_no_traceback(ui)


def test_the_side_list_searches_renames_and_deletes(ui, ui_server):
    """Conversations saved directly (no model): found by a word of a later answer (pasted, and the
    search cleared with the keyboard), renamed, deleted."""
    saved = Answer(text="ارتفع سعر ربطة الخبز في إدلب إلى 1500 ليرة [1]", language="ar", model="fake")
    bread, _ = ui_server.assistant.save_turn("ما سعر الخبز؟", saved)
    # A made-up village: no other conversation on this shared server mentions it.
    ui_server.assistant.save_turn("وفي الزيزفونة؟", saved.model_copy(update={"text": "لم يتغير في قرية الزيزفونة [1]"}), conversation_id=bread)
    other, _ = ui_server.assistant.save_turn("من هو المتحدث؟", saved.model_copy(update={"text": "العقيد [1]"}))
    try:
        ui.goto(ui_server.url)
        expect(ui.listed_conversations().filter(has_text="ما سعر الخبز؟")).to_have_count(1)
        # The tools first: a box in an accordion takes its value a moment after the accordion opens,
        # and on a loaded machine that can overwrite a title typed at once (docs/reliability.md).
        ui.page.locator("#conversation-tools").locator("button").first.click()
        search = ui.page.locator("#conversation-search input")
        # Pasted: no key is pressed (nor by an input method, nor by Playwright typing Arabic), and
        # the list must follow all the same; words of an answer.
        search.fill("قرية الزيزفونة")
        expect(ui.listed_conversations()).to_have_count(1)
        expect(ui.listed_conversations().first).to_contain_text("ما سعر الخبز؟")
        ui.listed_conversations().first.click()
        expect(ui.turns()).to_have_count(2)
        title = ui.page.locator("#conversation-title input")
        expect(title).to_have_value("ما سعر الخبز؟")
        title.fill("أسعار الخبز")
        ui.page.click("#rename-conversation")
        expect(ui.listed_conversations().first).to_contain_text("أسعار الخبز")
        assert ui_server.assistant.conversation(bread).title == "أسعار الخبز"
        ui.shot("renamed")
        ui.page.click("#delete-conversation")
        expect(ui.turns()).to_have_count(0)
        expect(ui.page.locator("#conversation-message")).to_contain_text("Deleted")
        expect(ui.listed_conversations()).to_have_count(0)
        assert bread not in {c.id for c in ui_server.assistant.conversations()}
        # Cleared with the keyboard (Backspace is not a key press to the browser): everything again.
        search.press("Control+a")
        search.press("Backspace")
        expect(ui.listed_conversations().filter(has_text="من هو المتحدث؟")).to_have_count(1)
        assert other in {c.id for c in ui_server.assistant.conversations()}
        assert_no_traceback(ui)
    finally:
        for conversation_id in {bread, other} & {c.id for c in ui_server.assistant.conversations()}:
            ui_server.assistant.delete_conversation(conversation_id)


def test_two_users_cannot_see_or_open_each_others_conversations(open_ui, browser, seeded_settings_factory):
    """The UI login (one browser context) and the API key's holder (another) each see only their own
    conversations; guessing the other's id gets "not found" everywhere. Extractive answers (fast)."""
    key, login = "k-789", ("ana", "s3cret")
    settings: Settings = seeded_settings_factory(
        llm={"provider": "extractive"}, api={"key": key},
        ui={"host": "0.0.0.0", "port": free_port(), "username": login[0], "password": login[1]},
    )
    with running_ui(settings) as server:
        ana = open_ui(server.url, login=login)
        ana_question = "في أي بلدة عُقد المؤتمر الصحفي المشترك بين التحالف الدولي وقسد؟"
        ana.ask(ana_question)
        expect(ana.listed_conversations()).to_have_count(1)
        (ana_id,) = [c.id for c in server.assistant.conversations(login_user(login[0]))]

        scripts = browser.new_context(extra_http_headers={"Authorization": f"Bearer {key}"})
        try:
            api = scripts.request
            api_id = api.post(f"{server.url}api/v1/conversations", data={"title": "ملاحظات المفتاح"}).json()["id"]
            asked = api.post(f"{server.url}api/v1/ask", data={"question": "Where was the coalition press briefing held?", "conversation_id": api_id})
            assert asked.ok, asked.text()
            assert [c["id"] for c in api.get(f"{server.url}api/v1/conversations").json()] == [api_id]
            for response in (
                api.get(f"{server.url}api/v1/conversations/{ana_id}"), api.get(f"{server.url}api/v1/conversations/{ana_id}/export"),
                api.delete(f"{server.url}api/v1/conversations/{ana_id}"),
                api.patch(f"{server.url}api/v1/conversations/{ana_id}", data={"title": "mine now"}),
                api.post(f"{server.url}api/v1/ask", data={"question": "ما رتبته؟", "conversation_id": ana_id}),
            ):
                assert response.status == 404 and response.json()["error"]["code"] == "not_found", response.text()
        finally:
            scripts.close()

        # Ana's list has only hers; the key holder's id, typed into the address, is not found either.
        ana.goto(ana.page.url)
        expect(ana.listed_conversations()).to_have_count(1)
        expect(ana.listed_conversations().first).to_contain_text(ana_question)
        ana.goto(f"{server.url}?conversation={api_id}")
        expect(ana.page.locator("#conversation .msg.error")).to_contain_text("there is no conversation")
        expect(ana.listed_conversations()).to_have_count(1)
        ana.shot("guessed-id")
        # Nothing was changed by the attempts.
        assert server.assistant.conversation(ana_id, login_user(login[0])).turn_count == 1
        assert server.assistant.conversation(api_id, API_KEY_USER).title == "ملاحظات المفتاح"
        assert_no_traceback(ana)


# --------------------------------------------------------------------------- i. the timeline
def test_the_timeline_view_shows_dated_periods_with_outlets_and_opens_a_cited_passage(open_ui, settings_factory, tmp_path):
    """A small dated archive from three outlets (tests/integration/test_timeline.py), on its own
    server (the shared one holds the seeds, which the archive repeats). No model is needed."""
    settings: Settings = settings_factory(llm={"provider": "extractive"}, ui={"port": free_port()})
    with running_ui(settings) as server:
        path = archive(tmp_path / "story.jsonl.gz")
        with path.open("rb") as upload:
            report = httpx.post(f"{server.url}api/v1/documents", files=[("files", (path.name, upload))], timeout=300).json()
        assert len(report["added"]) == 6, report
        # Over the REST API: the periods in date order, each line with its outlet and citation.
        body = {"query": STORY_QUERY, "filters": {"until": "2020-07-31"}}
        served = httpx.post(f"{server.url}api/v1/timeline", json=body, timeout=300).json()
        assert [p["date"] for p in served["periods"]] == ["2020-07-29"], served
        assert all({"source", "date", "text", "doc_id", "chunk_id", "citation"} <= set(line) for line in served["periods"][0]["lines"])
        compared = httpx.post(f"{server.url}api/v1/ask", json={"question": STORY_QUERY, "by_source": True}, timeout=300).json()
        assert {a["source"] for a in compared["answers"]} >= {"Enab Baladi", "Al-Modon", "Syria TV"}, compared
        assert all(c["source"] == a["source"] for a in compared["answers"] for c in a["citations"])
        streamed = httpx.post(f"{server.url}api/v1/ask", json={"question": STORY_QUERY, "by_source": True, "stream": True}, timeout=300)
        assert streamed.status_code == 400 and "by_source" in streamed.json()["error"]["message"]
        # With a conversation: saved into it, each outlet's answer and all of them as one answer.
        notes = httpx.post(f"{server.url}api/v1/conversations", json={"title": "notes"}).json()["id"]
        into = httpx.post(f"{server.url}api/v1/ask", json={"question": STORY_QUERY, "by_source": True, "conversation_id": notes}, timeout=300)
        (turn,) = httpx.get(f"{server.url}api/v1/conversations/{notes}").json()["turns"]
        assert turn["compared"] == into.json() and "Syria TV: " in turn["answer"]["text"], turn
        unknown = httpx.post(f"{server.url}api/v1/ask", json={"question": STORY_QUERY, "by_source": True, "conversation_id": "nope"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
        assert httpx.delete(f"{server.url}api/v1/conversations/{notes}").status_code == 200

        ui = open_ui(server.url)
        ui.open_tab("Timeline")
        ui.page.locator("#timeline-query input").fill(STORY_QUERY)
        ui.page.click("#timeline-show")
        periods = ui.page.locator("#timeline .period")
        expect(periods).to_have_count(2)
        expect(periods.first.locator("h4")).to_contain_text("2020-07-29")
        expect(periods.nth(1).locator("h4")).to_contain_text("2020-08-02")
        expect(periods.first.locator(".timeline-line")).to_have_count(2)  # Enab Baladi with Al-Modon (one copy), Syria TV
        expect(periods.first).to_contain_text(re.compile("Enab Baladi · Al-Modon|Al-Modon · Enab Baladi"))
        expect(periods.first).to_contain_text("Syria TV")
        ui.shot("timeline")
        line = periods.first.locator(".timeline-line").first
        sentence = line.locator(".text").inner_text()
        line.locator("a.cite").click()
        expect(ui.page.locator("#timeline-viewer mark#cited-passage")).to_have_text(sentence)
        expect(ui.page.locator("#timeline-viewer .notice")).to_have_count(0)  # the article is there, whole
        ui.shot("timeline-source")

        # Compare outlets in the chat: one answer per outlet, side by side, each citing its own outlet.
        ui.open_tab("Chat")
        ui.page.locator("#filters").locator("button").first.click()
        ui.page.locator("#by-source input").check()
        compared = ui.ask(STORY_QUERY)
        columns = compared.locator(".compared-answer")
        expect(columns).to_have_count(3)
        outlets = {columns.nth(k).locator(".outlet").inner_text() for k in range(3)}
        assert outlets == {"Enab Baladi", "Al-Modon", "Syria TV"}, outlets
        syria_tv = columns.filter(has_text="Syria TV")
        syria_tv.locator(".text a.cite").first.click()
        expect(ui.page.locator("#source-viewer mark#cited-passage")).to_be_visible()
        assert viewer_doc_id(ui) == "stv-0729"
        ui.shot("compared")
        # Saved like any answer: the page loaded again, the conversation reopens side by side.
        ui.goto(server.url)
        ui.listed_conversations().first.click()
        expect(ui.turns().locator(".compared-answer")).to_have_count(3)
        expect(ui.turns().locator(".compared-answer").filter(has_text="Syria TV").locator(".text a.cite")).not_to_have_count(0)
        assert_no_traceback(ui)


# --------------------------------------------------------------------------- g. waiting in the queue
def test_a_question_asked_while_another_is_answered_shows_at_once_as_waiting(open_ui, seeded_settings_factory):
    """Two tabs share the one queue: a question asked while another is being answered appears at
    once, marked as waiting, with Gradio's queue position under the chat; then each tab gets the
    answers to its own questions. The extractive backend answers (fast); the first answer is held
    in its handler (``assistant.stream``) until the waiting states have been seen."""
    settings: Settings = seeded_settings_factory(llm={"provider": "extractive"}, ui={"port": free_port()})
    asked = {  # tab -> its questions, in order
        "first": ["في أي بلدة عُقد المؤتمر الصحفي المشترك بين التحالف الدولي وقسد؟", "Where was the coalition press briefing held?"],
        "second": ["أين أقام التحالف مركزاً لتأهيل مقاتلات وحدات حماية المرأة؟"],
    }
    with running_ui(settings) as server:
        release, entered = threading.Event(), threading.Event()
        stream = server.assistant.stream

        def held_stream(*args, **kwargs):
            entered.set()
            release.wait(ANSWER_TIMEOUT_MS / 1000)
            yield from stream(*args, **kwargs)

        server.assistant.stream = held_stream  # this server's Assistant only
        try:
            first, second = open_ui(server.url), open_ui(server.url)
            answering = first.send(asked["first"][0])
            assert entered.wait(ANSWER_TIMEOUT_MS / 1000), "the first question never reached its handler"
            expect(first.bot(answering)).to_have_class(re.compile(r"\bstreaming\b"))
            expect(first.bot(answering)).not_to_have_class(re.compile(r"\bwaiting\b"))

            # The other tab's question shows at once, waiting, first in line.
            waiting = second.send(asked["second"][0])
            expect(second.page.locator(f'#conversation .turn[data-turn="{waiting}"] .msg.user')).to_have_text(asked["second"][0])
            expect(second.bot(waiting)).to_have_class(re.compile(r"\bwaiting\b"))
            expect(second.bot(waiting)).to_have_text(WAITING["ar"])
            expect(second.page.locator("#ask-status")).to_contain_text("queue: 1/1")
            expect(second.page.locator("#question textarea")).to_have_value("")
            second.shot("waiting")

            # A follow-up in the first tab waits behind both.
            follow = first.send(asked["first"][1])
            expect(first.bot(follow)).to_have_text(WAITING["en"])
            expect(first.page.locator("#ask-status")).to_contain_text("queue: 2/2")
            first.shot("waiting-behind-two")
        finally:
            release.set()

        for ui, questions in ((first, asked["first"]), (second, asked["second"])):
            expect(ui.turns()).to_have_count(len(questions))
            for index, question in enumerate(questions):
                answer = ui.finished(index)
                expect(answer).not_to_have_class(re.compile(r"\b(error|refusal|waiting)\b"))
                expect(answer).to_have_attribute("lang", detect_language(question))
                assert answer.locator(".text a.cite").count() >= 1, answer.inner_html()
                expect(ui.page.locator(f'#conversation .turn[data-turn="{index}"] .msg.user')).to_have_text(question)
            ui.shot("answered")
            assert_no_traceback(ui)
        # Each tab shows only its own questions: nothing crossed between the two conversations.
        assert asked["second"][0] not in first.page.locator("#conversation").inner_text()
        assert asked["first"][0] not in second.page.locator("#conversation").inner_text()
