"""The chat handlers on their own, with a scripted assistant: what "New chat" does to an answer that
is still streaming."""

from __future__ import annotations

from assistant.models import Answer
from assistant.ui.app import ChatUI


class ScriptedAssistant:
    """Streams a few tokens then the final answer, and records whether the stream was closed."""

    def __init__(self, save_error: Exception | None = None):
        self.closed = False
        self.tokens_sent = 0
        self.saved: list[tuple[str | None, str]] = []  # (the conversation asked for, the question)
        self.saved_answers: list = []
        self.histories: list = []  # the history each streamed question came with
        self.save_error = save_error

    def save_turn(self, question, answer, filters=None, conversation_id=None, user="local"):
        if self.save_error:
            raise self.save_error
        self.saved.append((conversation_id, question))
        self.saved_answers.append(answer)
        return conversation_id or f"c{len(self.saved)}", None

    def ask_by_source(self, question, filters=None):
        from assistant.models import BySource, SourceAnswer

        return BySource(question=question, answers=[
            SourceAnswer(text="Enab Baladi says 31 [1].", language="en", source="Enab Baladi"),
            SourceAnswer(text="Syria TV says 30 [1].", language="en", source="Syria TV"),
        ])

    def stream(self, question, history=None, filters=None):
        self.histories.append(history)
        try:
            for token in ("The ", "spokesman ", "is ", "Caggins."):
                self.tokens_sent += 1
                yield token
            yield Answer(text="The spokesman is Caggins.", language="en")
        finally:
            self.closed = True


def test_new_chat_mid_stream_empties_the_conversation_the_answer_writes_back():
    assistant = ScriptedAssistant()
    ui = ChatUI(assistant)
    _html, turns, _ = ui.accept("Who is the spokesman?", [])
    answering = ui.answer(turns)
    next(answering)  # the turn, no longer waiting
    html, _ = next(answering)  # the first token
    assert "Who is the spokesman?" in html

    html, cleared, _viewer, _question = ui.new_chat(turns)
    assert cleared is turns and turns == []
    assert "Who is the spokesman?" not in html

    # The cancelled answer's last update (Gradio may still deliver it) draws the emptied conversation,
    # and the answer stops: the model's stream is closed and nothing more is asked of it.
    late = list(answering)
    assert late, "the answer should yield once more, then stop"
    for html, written_back in late:
        assert written_back is turns
        assert "Who is the spokesman?" not in html
    assert turns == []
    assert assistant.closed
    assert assistant.tokens_sent < 4


def test_a_question_asked_after_new_chat_is_not_mixed_with_the_cancelled_one():
    ui = ChatUI(ScriptedAssistant())
    _html, turns, _ = ui.accept("Who is the spokesman?", [])
    cancelled = ui.answer(turns)
    next(cancelled)
    next(cancelled)
    ui.new_chat(turns)
    html, turns_after, _ = ui.accept("What is the capital of Australia?", turns)
    html, written_back = next(cancelled)  # the cancelled answer's late update
    assert written_back is turns_after
    assert "What is the capital of Australia?" in html
    assert "Who is the spokesman?" not in html
    assert [t["question"] for t in turns_after] == ["What is the capital of Australia?"]


def test_a_chat_is_saved_into_one_conversation_until_new_chat_starts_another():
    assistant = ScriptedAssistant()
    ui = ChatUI(assistant)
    chat = {"id": None}
    _html, turns, _ = ui.accept("Who is the spokesman?", [])
    list(ui.answer(turns, chat))
    ui.accept("What is his rank?", turns)
    list(ui.answer(turns, chat))
    assert assistant.saved == [(None, "Who is the spokesman?"), ("c1", "What is his rank?")] and chat["id"] == "c1"
    ui.new_chat(turns, chat)
    ui.accept("Another question", turns)
    list(ui.answer(turns, chat))
    assert assistant.saved[-1] == (None, "Another question") and chat["id"] == "c3"


def test_an_answer_that_cannot_be_saved_still_shows_and_says_so():
    from assistant.errors import AssistantError

    ui = ChatUI(ScriptedAssistant(save_error=AssistantError("cannot use the conversations file x: disk I/O error")))
    chat = {"id": None}
    _html, turns, _ = ui.accept("Who is the spokesman?", [])
    html, _ = list(ui.answer(turns, chat))[-1]
    assert "The spokesman is Caggins." in html and "Not saved: cannot use the conversations file x" in html
    assert chat["id"] is None


def test_compare_outlets_is_saved_in_the_chat_s_conversation_and_a_follow_up_reads_it():
    """A "compare outlets" turn is saved (all the outlets' answers), into the same conversation as
    the chat's other answers, and the next question is condensed with it."""
    from assistant.models import BySource

    assistant = ScriptedAssistant()
    ui = ChatUI(assistant)
    chat = {"id": None}
    _html, turns, _ = ui.accept("How many were arrested?", [], by_source=True)
    html, _ = list(ui.answer(turns, chat))[-1]
    assert "Enab Baladi says 31" in html and "Syria TV says 30" in html
    assert assistant.saved == [(None, "How many were arrested?")] and chat["id"] == "c1"
    assert isinstance(assistant.saved_answers[0], BySource)
    ui.accept("Who arrested them?", turns)
    list(ui.answer(turns, chat))
    assert assistant.saved[-1] == ("c1", "Who arrested them?")
    (history,) = assistant.histories
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert "Enab Baladi: Enab Baladi says 31" in history[1]["content"] and "Syria TV: Syria TV says 30" in history[1]["content"]
