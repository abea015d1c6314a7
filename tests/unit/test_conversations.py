"""Saved conversations: the SQLite store (each user's own, transactional, searchable), the facade's
conversation-aware answers (with the in-process fake model), the Markdown and JSON exports, and a
process killed mid-answer and mid-write."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.conversations import LOCAL_USER, TITLE_CHARS, ConversationStore, login_user, search_key
from assistant.errors import InputError, NotFoundError
from assistant.export import RLM, export
from assistant.models import Answer, Citation, Filters
from tests.unit.test_answer_gates import SPOKESMAN, make_answerer

REPO = Path(__file__).resolve().parents[2]
AMAL, OMAR = login_user("amal"), login_user("omar")


def citation(n: int = 1, **changes) -> Citation:
    values = dict(
        n=n, doc_id="000_f059682764c3eed9", title="التحالف الدولي: تحركنا من الغرب إلى الحسكة ودير الزور", chunk_id="000_f059682764c3eed9:3",
        text="وقال الناطق الرسمي باسم التحالف الدولي العقيد، مايلز كيغينز", start=120, end=180, score=0.8,
        source="عنب بلدي", date="2020-07-29", url="https://www.enabbaladi.net/archives/402144", pages=[2],
    )
    return Citation(**{**values, **changes})


def answer(text: str = "المتحدث هو العقيد مايلز كيغينز [1]", **changes) -> Answer:
    values = dict(text=text, language="ar", citations=[citation()], model="fake", question="من هو المتحدث باسم التحالف؟")
    return Answer(**{**values, **changes})


@pytest.fixture
def store(tmp_path) -> ConversationStore:
    return ConversationStore(tmp_path / "data" / "conversations.sqlite3")


# --- the store ---------------------------------------------------------------------------------
def test_turns_are_saved_in_order_with_their_question_answer_citations_and_filters(store):
    filters = Filters(sources=["عنب بلدي"], since="2020-07")
    conversation_id, first = store.add_turn(LOCAL_USER, None, "من هو المتحدث باسم التحالف؟", answer(), filters)
    same_id, second = store.add_turn(LOCAL_USER, conversation_id, "ما رتبته؟", answer("هو عقيد [1]", question="ما رتبة المتحدث باسم التحالف؟"))
    assert same_id == conversation_id and (first.n, second.n) == (1, 2)
    saved = store.get(LOCAL_USER, conversation_id)
    assert saved.title == "من هو المتحدث باسم التحالف؟" and saved.turn_count == 2
    assert [t.question for t in saved.turns] == ["من هو المتحدث باسم التحالف؟", "ما رتبته؟"]
    assert saved.turns[1].answer.question == "ما رتبة المتحدث باسم التحالف؟"  # the standalone question
    assert saved.turns[0].answer.citations == [citation()]  # article, passage, offsets, pages, url
    assert saved.turns[0].filters == filters and saved.turns[1].filters is None
    assert saved.turns[0].asked_at <= saved.turns[1].asked_at == saved.updated_at


def test_each_user_sees_and_opens_only_their_own_conversations(store):
    mine, _ = store.add_turn(AMAL, None, "سؤال أمل", answer())
    theirs, _ = store.add_turn(OMAR, None, "سؤال عمر", answer())
    assert [c.id for c in store.list(AMAL)] == [mine] and [c.id for c in store.list(OMAR)] == [theirs]
    assert store.list(LOCAL_USER) == []
    # Someone else's id is "not found", like an id that never existed, for every operation.
    for attempt in (
        lambda: store.get(AMAL, theirs), lambda: store.rename(AMAL, theirs, "x"), lambda: store.delete(AMAL, theirs),
        lambda: store.add_turn(AMAL, theirs, "سؤال", answer()), lambda: store.get(AMAL, "000000000000"),
    ):
        with pytest.raises(NotFoundError, match="there is no conversation"):
            attempt()
    assert store.get(OMAR, theirs).turn_count == 1 and store.get(OMAR, theirs).title == "سؤال عمر"


def test_the_list_is_newest_first_and_search_folds_arabic_letters_and_case(store):
    old, _ = store.add_turn(LOCAL_USER, None, "ما هي أسعار الخبز في إدلب؟", answer("ارتفعت الأسعار [1]"))
    new, _ = store.add_turn(LOCAL_USER, None, "Who is the coalition spokesman?", answer("Colonel Myles Caggins [1]", language="en"))
    assert [c.id for c in store.list(LOCAL_USER)] == [new, old]
    store.add_turn(LOCAL_USER, old, "وماذا عن الوقود؟", answer("لم يتغير [1]"))  # a new answer moves it up
    assert [c.id for c in store.list(LOCAL_USER)] == [old, new]
    assert [c.id for c in store.list(LOCAL_USER, "اسعار الخبز")] == [old]  # أ folded to ا
    assert [c.id for c in store.list(LOCAL_USER, "الوقود")] == [old]  # a later question
    assert [c.id for c in store.list(LOCAL_USER, "caggins")] == [new]  # an answer's words, any case
    assert store.list(LOCAL_USER, "100%_") == []  # LIKE's wildcards are searched as text
    assert store.list(LOCAL_USER, limit=1)[0].id == old


def test_rename_delete_and_titles(store):
    long_question = "ما " + "الذي حدث في دير الزور " * 10
    conversation_id, _ = store.add_turn(LOCAL_USER, None, long_question, answer())
    assert len(store.get(LOCAL_USER, conversation_id).title) == TITLE_CHARS and store.list(LOCAL_USER)[0].title.endswith("…")
    renamed = store.rename(LOCAL_USER, conversation_id, "  Deir ez-Zor   notes ")
    assert renamed.title == "Deir ez-Zor notes"
    assert [c.id for c in store.list(LOCAL_USER, "deir")] == [conversation_id]
    assert [c.id for c in store.list(LOCAL_USER, "دير الزور")] == [conversation_id]  # the questions still count
    with pytest.raises(InputError, match="cannot be empty"):
        store.rename(LOCAL_USER, conversation_id, "   ")
    store.delete(LOCAL_USER, conversation_id)
    assert store.list(LOCAL_USER) == []
    with pytest.raises(NotFoundError):
        store.get(LOCAL_USER, conversation_id)
    assert store.check() == []
    with sqlite3.connect(store.path) as db:  # its turns went with it
        assert db.execute("SELECT count(*) FROM turns").fetchone()[0] == 0


def test_keep_days_deletes_conversations_idle_longer_as_the_store_opens(tmp_path):
    path = tmp_path / "c.sqlite3"
    store = ConversationStore(path)
    idle, _ = store.add_turn(LOCAL_USER, None, "قديم", answer())
    recent, _ = store.add_turn(AMAL, None, "جديد", answer())
    with sqlite3.connect(path) as db:
        db.execute("UPDATE conversations SET updated_at = updated_at - 40 * 86400 WHERE id = ?", (idle,))
    assert [c.id for c in ConversationStore(path).list(LOCAL_USER)] == [idle]  # keep_days unset: kept
    assert ConversationStore(path, keep_days=30).list(LOCAL_USER) == []
    assert [c.id for c in ConversationStore(path, keep_days=30).list(AMAL)] == [recent]
    with sqlite3.connect(path) as db:
        db.execute("UPDATE conversations SET updated_at = updated_at - 2 * 86400")
    assert ConversationStore(path).purge(1) == 1 and ConversationStore(path).list(AMAL) == []


def test_keep_days_is_applied_again_while_a_server_runs(tmp_path, monkeypatch):
    import assistant.conversations as conversations

    store = ConversationStore(tmp_path / "c.sqlite3", keep_days=30)
    idle, _ = store.add_turn(LOCAL_USER, None, "قديم", answer())
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE conversations SET updated_at = updated_at - 40 * 86400")
    assert [c.id for c in store.list(LOCAL_USER)] == [idle]  # purged when opened, an hour ago at most
    monkeypatch.setattr(conversations, "PURGE_EVERY_S", 0.0)  # the hour has passed
    assert store.list(LOCAL_USER) == []


def test_two_threads_answering_in_one_conversation_get_distinct_turns(store):
    conversation_id, _ = store.add_turn(LOCAL_USER, None, "أول", answer())
    errors = []

    def write(k: int) -> None:
        try:
            for i in range(10):
                store.add_turn(LOCAL_USER, conversation_id, f"سؤال {k}-{i}", answer())
        except Exception as exc:  # pragma: no cover - the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    saved = store.get(LOCAL_USER, conversation_id)
    assert [t.n for t in saved.turns] == list(range(1, 22)) and saved.turn_count == 21


def test_a_damaged_file_is_one_clear_error(tmp_path):
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Exception, match=r"cannot use the conversations file .*move it away") as caught:
        ConversationStore(path).list(LOCAL_USER)
    assert type(caught.value).__name__ == "AssistantError"


# --- the facade: answers saved into conversations ------------------------------------------------
@pytest.fixture
def assistant_with(tmp_path):
    """``assistant_with(replies)``: an Assistant over the fake model (replies in turn) and a fresh store."""

    def make(replies, p_yes: float = 0.9):
        assistant = Assistant(Settings(conversations={"path": tmp_path / "conversations.sqlite3"}))
        answerer, llm, _ = make_answerer([SPOKESMAN], replies, p_yes=p_yes)
        assistant.__dict__["answerer"] = answerer
        return assistant, llm

    return make


def test_a_follow_up_in_a_saved_conversation_is_condensed_with_its_turns_and_saved(assistant_with):
    assistant, llm = assistant_with(["المتحدث هو العقيد مايلز كيغينز [1]", "ما رتبة المتحدث باسم التحالف؟", "رتبته عقيد [1]"])
    first = assistant.new_conversation(user=AMAL)
    answered = assistant.ask("من هو المتحدث باسم التحالف؟", conversation_id=first.id, user=AMAL)
    follow = assistant.ask("ما رتبته؟", conversation_id=first.id, user=AMAL)
    condense_prompt = llm.prompts[1][-1].content
    assert "من هو المتحدث باسم التحالف؟" in condense_prompt and answered.text.split("[")[0].strip() in condense_prompt
    assert follow.question == "ما رتبة المتحدث باسم التحالف؟"
    saved = assistant.conversation(first.id, AMAL)
    # Started without a title, it is named by its first question.
    assert [t.answer.text for t in saved.turns] == [answered.text, follow.text] and saved.title == "من هو المتحدث باسم التحالف؟"
    with pytest.raises(NotFoundError):  # another user cannot continue it: nothing runs, nothing is saved
        assistant.ask("ما رتبته؟", conversation_id=first.id, user=OMAR)
    with pytest.raises(InputError, match="not both"):
        assistant.ask("ما رتبته؟", history=[{"role": "user", "content": "x"}], conversation_id=first.id, user=AMAL)
    assert assistant.conversation(first.id, AMAL).turn_count == 2


def test_an_answer_stream_closed_before_its_end_saves_nothing(assistant_with):
    # Each question follows a saved turn, so the model first condenses it, then answers.
    condensed = "من هو المتحدث باسم التحالف؟"
    assistant, _ = assistant_with([condensed, "جواب لن يكتمل أبدا [1]", condensed, "المتحدث هو العقيد مايلز كيغينز [1]"])
    conversation_id, _ = assistant.save_turn("سؤال", answer(), user=LOCAL_USER)
    stream = assistant.stream("من هو المتحدث باسم التحالف؟", conversation_id=conversation_id)
    assert isinstance(next(stream), str)  # the answer has started
    stream.close()  # the client went away
    assert assistant.conversation(conversation_id).turn_count == 1
    items = list(assistant.stream("من هو المتحدث باسم التحالف؟", conversation_id=conversation_id))
    saved = assistant.conversation(conversation_id)
    assert saved.turn_count == 2 and saved.turns[-1].answer == items[-1]


# --- export ----------------------------------------------------------------------------------
def test_the_markdown_export_gives_every_citation_and_keeps_arabic_right_to_left(store):
    two = citation(2, title="التحالف يتعهد بدعم المجالس المحلية", url="", pages=[], source="syria-tv", date="2020-08-01",
                   text="قال التحالف إنه سيدعم المجالس المحلية")
    conversation_id, _ = store.add_turn(LOCAL_USER, None, "من هو المتحدث باسم التحالف؟", answer(citations=[citation(), two]))
    store.add_turn(LOCAL_USER, conversation_id, "Who is he?", answer("He is Colonel Myles Caggins [1]", language="en",
                                                                    question="Who is the coalition spokesman?"))
    conversation = store.get(LOCAL_USER, conversation_id)
    text = export(conversation, "markdown")
    for c in [citation(), two]:  # outlet, date, title and the quoted passage of each
        assert f"{c.source} · {c.date} · {c.title}" in text and f"> {RLM}{c.text}" in text
    assert "<https://www.enabbaladi.net/archives/402144>" in text and "p. 2" in text
    assert f"## 1. {RLM}من هو المتحدث باسم التحالف؟" in text and f"{RLM}المتحدث هو العقيد" in text
    assert "## 2. Who is he?" in text and f"{RLM}He is" not in text  # English lines carry no mark
    assert "*Answered as:* Who is the coalition spokesman?" in text
    one = export(conversation, "markdown", turn=2)
    assert "Who is he?" in one and "من هو المتحدث" not in one
    data = json.loads(export(conversation, "json"))
    assert data["id"] == conversation_id and [t["question"] for t in data["turns"]] == ["من هو المتحدث باسم التحالف؟", "Who is he?"]
    assert Answer.model_validate(data["turns"][0]["answer"]) == conversation.turns[0].answer
    assert json.loads(export(conversation, "json", turn=2))["answer"]["text"] == "He is Colonel Myles Caggins [1]"
    with pytest.raises(NotFoundError, match="has no answer 3"):
        export(conversation, "markdown", turn=3)


def test_a_compare_outlets_turn_keeps_each_outlet_s_answer_and_is_searched_exported_and_carried_as_history(store):
    """Saved with its outlets' answers side by side (``compared``); its ``answer`` is all of them as
    one, the citations numbered on across the outlets, which the search, the export and a
    follow-up's history read."""
    from assistant.by_source import merged
    from assistant.conversations import history_of
    from assistant.models import BySource, Disagreement, SourceAnswer

    tv = citation(1, doc_id="stv-0729", chunk_id="stv-0729:0", source="Syria TV", text="اعتقلت قسد 30 شخصا في القرية")
    compared = BySource(question="كم شخصا اعتقلت قسد؟", answers=[
        SourceAnswer(**answer("اعتقلت قسد 31 شخصا [1].").model_dump(), source="عنب بلدي"),
        SourceAnswer(**answer("اعتقلت 30 شخصا في قرية الزيزفونة [1].", citations=[tv]).model_dump(), source="Syria TV"),
    ], disagreements=[Disagreement(value="31", sources=["عنب بلدي"], others=["Syria TV"])])
    one = merged(compared)
    assert one.text == "عنب بلدي: اعتقلت قسد 31 شخصا [1].\n\nSyria TV: اعتقلت 30 شخصا في قرية الزيزفونة [2]."
    assert [(c.n, c.doc_id) for c in one.citations] == [(1, citation().doc_id), (2, "stv-0729")]
    assert one.question == compared.question and not one.refused

    conversation_id, turn = store.add_turn(LOCAL_USER, None, compared.question, one, compared=compared)
    saved = store.get(LOCAL_USER, conversation_id).turns[0]
    assert saved.compared == compared == turn.compared and saved.answer == one
    assert [c.id for c in store.list(LOCAL_USER, "الزيزفونة")] == [conversation_id]  # a word of the second outlet's answer
    text = export(store.get(LOCAL_USER, conversation_id), "markdown")
    assert "Syria TV" in text and f"> {RLM}{tv.text}" in text
    assert history_of(store.get(LOCAL_USER, conversation_id))[1]["content"] == one.text
    assert merged(BySource(question="How many?")).refused  # no outlet had anything: said plainly, saved as a refusal


def test_a_file_of_the_first_schema_is_upgraded_in_place_and_keeps_its_turns(tmp_path):
    """A conversations file written before "compare outlets" turns were saved (schema 1) gains the
    column as it opens; its turns read as before, and a compared turn can be added."""
    from assistant.models import BySource, SourceAnswer

    path = tmp_path / "conversations.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE conversations (id TEXT PRIMARY KEY, user TEXT NOT NULL, title TEXT NOT NULL, created_at REAL NOT NULL,
            updated_at REAL NOT NULL, turn_count INTEGER NOT NULL DEFAULT 0, title_key TEXT NOT NULL, search_text TEXT NOT NULL DEFAULT '');
        CREATE TABLE turns (conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE, n INTEGER NOT NULL,
            question TEXT NOT NULL, answer TEXT NOT NULL, filters TEXT, asked_at REAL NOT NULL, PRIMARY KEY (conversation_id, n));
        PRAGMA user_version = 1;
    """)
    old.execute("INSERT INTO conversations VALUES ('c1', ?, 'قديمة', 1.0, 1.0, 1, 'قديمه', '')", (LOCAL_USER,))
    old.execute("INSERT INTO turns VALUES ('c1', 1, 'من هو المتحدث؟', ?, NULL, 1.0)", (answer().model_dump_json(),))
    old.commit()
    old.close()
    store = ConversationStore(path)
    assert store.get(LOCAL_USER, "c1").turns[0].answer == answer() and store.get(LOCAL_USER, "c1").turns[0].compared is None
    compared = BySource(question="كم؟", answers=[SourceAnswer(**answer("31 [1]").model_dump(), source="عنب بلدي")])
    store.add_turn(LOCAL_USER, "c1", "كم؟", answer("عنب بلدي: 31 [1]"), compared=compared)
    assert store.get(LOCAL_USER, "c1").turns[1].compared == compared
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert store.check() == []


def test_search_key_folds_what_a_user_may_type_differently():
    assert search_key("إدلب") == search_key("ادلب") and search_key("Caggins") == "caggins"
    assert search_key("مُحَمَّد") == search_key("محمد")


# --- a killed process --------------------------------------------------------------------------
KILLED_MID_ANSWER = """
import sys, time
from assistant.assistant import Assistant
from assistant.config import Settings
from tests.unit.test_answer_gates import SPOKESMAN, make_answerer

ANSWER = "المتحدث هو العقيد مايلز كيغينز [1]"
# Replies in turn: answer 1; answer 2's condensed question, then answer 2; answer 3's question, then
# a long answer 3 that is still being written when the parent kills this process.
replies = [ANSWER, "ما رتبة المتحدث باسم التحالف؟", ANSWER, "من المتحدث باسم التحالف؟", "كلمة " * 400 + "[1]"]
assistant = Assistant(Settings(conversations={"path": sys.argv[1]}))
answerer, llm, _ = make_answerer([SPOKESMAN], replies, p_yes=0.9)
fast = llm.stream_chat

def slow(messages):
    for piece in fast(messages):
        time.sleep(0.05)
        yield piece

llm.stream_chat = slow
assistant.__dict__["answerer"] = answerer
conversation_id, _ = assistant.save_turn("أول", assistant.ask("من هو المتحدث باسم التحالف؟"))
assistant.ask("ما رتبته؟", conversation_id=conversation_id)
print(conversation_id, flush=True)
for item in assistant.stream("سؤال ثالث", conversation_id=conversation_id):
    print("delta", flush=True)
"""

KILLED_MID_WRITE = """
import sys
from assistant.conversations import ConversationStore
from tests.unit.test_conversations import answer
store = ConversationStore(sys.argv[1])
conversation_id, _ = store.add_turn("local", None, "سؤال", answer())
print(conversation_id, 1, flush=True)
while True:
    _, turn = store.add_turn("local", conversation_id, "سؤال", answer("نص " * 200))
    print(conversation_id, turn.n, flush=True)
"""


def _run_until(script: str, path: Path, lines: int) -> tuple[subprocess.Popen, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    seen = [process.stdout.readline().strip() for _ in range(lines)]
    assert all(seen), f"the child stopped early: {seen}"
    return process, seen


def _kill(process: subprocess.Popen) -> list[str]:
    process.send_signal(signal.SIGKILL)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return rest.split("\n")


def test_sigkill_during_an_answer_leaves_the_earlier_turns_and_a_sound_file(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    process, (conversation_id, *_) = _run_until(KILLED_MID_ANSWER, path, lines=3)  # the id, then two deltas of answer 3
    _kill(process)
    store = ConversationStore(path)
    assert store.check() == []
    saved = store.get(LOCAL_USER, conversation_id)
    assert [t.question for t in saved.turns] == ["أول", "ما رتبته؟"] and saved.turn_count == 2
    assert all(t.answer.text == "المتحدث هو العقيد مايلز كيغينز [1]" for t in saved.turns)


def test_sigkill_during_writes_keeps_every_committed_turn(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    process, seen = _run_until(KILLED_MID_WRITE, path, lines=20)
    time.sleep(0.3)  # the child keeps writing: the kill lands at an arbitrary point of a write
    rest = _kill(process)
    conversation_id = seen[0].split()[0]
    committed = max(int(line.split()[1]) for line in seen + rest if line)
    store = ConversationStore(path)
    assert store.check() == []
    saved = store.get(LOCAL_USER, conversation_id)
    # Every turn the child was told is committed is there; at most the one being written is extra.
    assert [t.n for t in saved.turns] == list(range(1, saved.turn_count + 1))
    assert committed <= saved.turn_count <= committed + 1


def test_the_conversations_benchmark_fills_a_throwaway_store_and_times_each_operation():
    from assistant.eval.conversations_bench import format_conversations_table, run_conversations_bench

    result = run_conversations_bench(REPO / "seeds", count=12, turns=2, repeats=3)
    assert result["list"]["rows"] == 12 and result["open_one"]["median_ms"] > 0
    assert result["search"]["no match"]["rows"] == 0 and 1 <= result["search"]["a word of a title"]["rows"] <= 12
    table = format_conversations_table(result)
    assert "12 conversations of 2 answers" in table and "search: no match" in table
