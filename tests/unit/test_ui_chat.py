"""The chat handlers on their own, with a scripted assistant: what "New chat" does to an answer that
is still streaming."""

from __future__ import annotations

from assistant.models import Answer
from assistant.ui.app import ChatUI


class ScriptedAssistant:
    """Streams a few tokens then the final answer, and records whether the stream was closed."""

    def __init__(self):
        self.closed = False
        self.tokens_sent = 0

    def stream(self, question, history=None, filters=None):
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
