"""A backend that serves one request at a time (the embedded llama.cpp server) takes turns in
Python: threads wait for the turn untimed, and never overlap inside the model's request."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from assistant.llm import Capabilities, ChatBackend, Message, YesNoReply


class OneAtATimeLLM:
    """Records how many generations run at once."""

    def __init__(self):
        self.running = 0
        self.most = 0
        self._count = threading.Lock()

    def stream_chat(self, _messages):
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            for piece in ("one ", "two"):
                time.sleep(0.05)
                yield SimpleNamespace(delta=piece)
        finally:
            with self._count:
                self.running -= 1


def ask_from_threads(backend: ChatBackend, threads: int = 6) -> list[str]:
    replies: list[str] = []

    def ask() -> None:
        replies.append(backend.complete([Message("user", "q")]))
        backend.yes_probability([Message("user", "q")])

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return replies


def yes(llm: OneAtATimeLLM):
    def reply(_messages) -> YesNoReply:
        return YesNoReply("".join(piece.delta for piece in llm.stream_chat(None)), [])

    return reply


def test_with_a_turn_lock_generations_never_overlap():
    llm = OneAtATimeLLM()
    backend = ChatBackend("test", llm, lambda exc: None, capabilities=Capabilities(yes_no=yes(llm)), turn=threading.Lock())
    assert ask_from_threads(backend) == ["one two"] * 6
    assert llm.most == 1


def test_without_one_they_do_overlap():
    # The control: the threads above really would meet inside the model.
    llm = OneAtATimeLLM()
    backend = ChatBackend("test", llm, lambda exc: None, capabilities=Capabilities(yes_no=yes(llm)))
    ask_from_threads(backend)
    assert llm.most > 1
