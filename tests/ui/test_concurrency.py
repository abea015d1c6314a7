"""Many users at once through the served UI's ``/ask``: separate ``gradio_client`` clients in threads,
each with its own question and history, and the one queue that makes them take turns.

Most tests answer with the ``extractive`` backend (a real backend, no model: fast), so eight
questions take seconds, not eight model answers; one test asks two at once of the embedded model.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from gradio_client import Client
from gradio_client.utils import Status

from assistant.answer import exchange
from assistant.arabic import detect_language
from assistant.config import load_settings
from assistant.models import Answer
from tests.conftest import STORE_DIR, without_user_overrides, write_config
from tests.integration.helpers import CHAT_MODEL, FakeOllama, free_port

from .helpers import SPOKESMAN_DOC, running_ui

pytestmark = pytest.mark.slow  # the embedding model, a served app

WAIT_S = 120  # for a queue state to be reached: a deadline, never a measurement


@dataclass(frozen=True)
class Case:
    doc: str  # the seed the question is about: its answer must cite it
    previous: str  # this conversation's earlier question (its own history); "" for none
    question: str


# Eight conversations, each about one seed, Arabic and English; every earlier question is distinct,
# so a history that crossed into another conversation would show in ``Answer.question``.
CASES = [
    Case(
        "000_f059682764c3eed9",
        "متى عقد المؤتمر الصحفي للتحالف في رميلان؟",
        "في أي بلدة عُقد المؤتمر الصحفي المشترك بين التحالف الدولي وقسد؟",
    ),
    Case(
        "001_85a3b68c139dd4d8",
        "ما الحملة الأمنية التي أطلقتها قسد في حزيران؟",
        "ما اسم القرية التي شهدت مداهمة لقسد بدعم من التحالف دامت قرابة ساعتين؟",
    ),
    Case(
        "002_19328c00382c3f33",
        "ما البلدة التي كانت آخر معاقل داعش؟",
        "كم عسكرياً أمريكياً أبقت الولايات المتحدة في سوريا بعد قرار الانسحاب؟",
    ),
    Case(
        "003_e7f47d77941dc1b4",
        "ماذا قال المتحدث باسم قسد عن المجالس المحلية؟",
        "لأي جهات في المناطق المحررة من داعش تعهد التحالف بتقديم الدعم والمساعدات؟",
    ),
    Case(
        "004_8ede33af2f05cf80",
        "كم شهراً مضى على عمليات التحالف في سوريا؟",
        "أين أقام التحالف مركزاً لتأهيل مقاتلات وحدات حماية المرأة؟",
    ),
    Case(
        "000_f059682764c3eed9",
        "Where was the coalition press briefing held?",
        "From which province did the coalition shift eastward toward Hasakah and Deir ez-Zor?",
    ),
    Case(
        "001_85a3b68c139dd4d8",
        "What was the June security campaign?",
        "Which news agency linked to the Kurdish-led Autonomous Administration reported the June arrests?",
    ),
    Case(
        "004_8ede33af2f05cf80",
        "How long have coalition operations lasted in Syria?",
        "In which oil field did the coalition set up a drone-training centre for the YPJ?",
    ),
]


@contextmanager
def served_copy(seeded_index, root, **overrides):
    """The UI served on a private copy of the seeded index, configured by ``overrides``."""
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n not in without_user_overrides(dict(os.environ))]:
            # The developer's shell must not reconfigure the UI under test.
            env.delenv(name)
        shutil.copytree(seeded_index.root / STORE_DIR, root / STORE_DIR)
        settings = load_settings(
            write_config(root, ui={"port": free_port()}, **overrides)
        )
        with running_ui(settings) as server:
            yield server


@pytest.fixture(scope="module")
def extractive_ui(seeded_index, tmp_path_factory):
    with served_copy(
        seeded_index,
        tmp_path_factory.mktemp("concurrency"),
        llm={"provider": "extractive"},
    ) as server:
        yield server


@contextmanager
def held(assistant, method: str):
    """Every call of ``assistant.<method>`` waits until the block ends: the question being answered
    stays in its handler, so the ones behind it stay in the queue for as long as the test looks."""
    release, entered = threading.Event(), threading.Event()
    real = getattr(assistant, method)

    def wait_then_answer(*args, **kwargs):
        entered.set()
        release.wait(WAIT_S)
        return real(*args, **kwargs)

    # The instance only: the class is untouched.
    setattr(assistant, method, wait_then_answer)
    try:
        yield entered
    finally:
        release.set()
        delattr(assistant, method)


def wait_for_status(job, accept) -> object:
    """The job's latest status once ``accept(status)`` holds (AssertionError at the deadline)."""
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        status = job.status()
        if accept(status):
            return status
        time.sleep(0.1)
    raise AssertionError(
        f"the job never reached the expected state; last status: {job.status()}"
    )


def ask_all_at_once(
    url: str, cases: list[Case], previous_answer: str = "…"
) -> list[Answer]:
    """Each case from its own ``Client`` (its own session) in its own thread, released together."""
    start = threading.Barrier(len(cases))

    def ask(case: Case) -> Answer:
        client = Client(url, verbose=False)
        history = exchange(case.previous, previous_answer) if case.previous else None
        start.wait(WAIT_S)
        return Answer.model_validate(
            client.predict(case.question, history, api_name="/ask")
        )

    with ThreadPoolExecutor(len(cases)) as pool:
        return list(pool.map(ask, cases))


def test_eight_clients_at_once_each_get_the_answer_to_their_own_question(extractive_ui):
    answers = ask_all_at_once(extractive_ui.url, CASES)
    for case, answer in zip(CASES, answers, strict=True):
        # The extractive backend condenses a follow-up as "previous question + question": this is
        # the question with this conversation's own history, and no other's.
        assert answer.question == f"{case.previous} {case.question}", (
            case,
            answer.question,
        )
        assert answer.language == detect_language(case.question)
        assert not answer.refused, (case.question, answer.notes)
        assert case.doc in {c.doc_id for c in answer.citations}, (
            case.question,
            [c.doc_id for c in answer.citations],
        )
        assert all(f"[{c.n}]" in answer.text for c in answer.citations), answer.text
    # The same questions asked one by one get the same answers: being asked together changed nothing.
    alone = Client(extractive_ui.url, verbose=False)
    for case, answer in zip(CASES, answers, strict=True):
        again = Answer.model_validate(
            alone.predict(case.question, exchange(case.previous, "…"), api_name="/ask")
        )
        assert (again.text, again.citations) == (answer.text, answer.citations), (
            case.question
        )


def test_questions_wait_their_turn_with_their_rank_visible_and_are_all_answered(
    extractive_ui,
):
    """While one question is answered, the next two wait in the one queue: a script sees their
    rank (0 = next), then each gets its own answer."""
    url = extractive_ui.url
    first, second, third = CASES[0], CASES[4], CASES[5]
    with held(extractive_ui.assistant, "ask") as entered:
        running = Client(url, verbose=False).submit(
            first.question, None, api_name="/ask"
        )
        assert entered.wait(WAIT_S), "the first question never reached its handler"
        next_job = Client(url, verbose=False).submit(
            second.question, None, api_name="/ask"
        )
        wait_for_status(next_job, lambda s: s.code == Status.IN_QUEUE and s.rank == 0)
        last_job = Client(url, verbose=False).submit(
            third.question, None, api_name="/ask"
        )
        last = wait_for_status(
            last_job, lambda s: s.code == Status.IN_QUEUE and s.rank is not None
        )
        # One question ahead of it in the queue.
        assert (last.rank, last.queue_size) == (1, 2), last
        assert not running.done() and not next_job.done()
    for case, job in ((first, running), (second, next_job), (third, last_job)):
        answer = Answer.model_validate(job.result(timeout=WAIT_S))
        assert answer.question == case.question
        assert case.doc in {c.doc_id for c in answer.citations}, (
            case.question,
            answer.citations,
        )


def test_time_in_the_queue_does_not_count_against_the_model_request_timeout(
    seeded_index, tmp_path
):
    """``llm.ollama.request_timeout`` is per model request, started when the handler asks: a question
    that waited longer than that in the queue is still answered by the model."""
    timeout_s = 1.0
    with FakeOllama(
        {CHAT_MODEL},
        chat_reply=lambda body: [
            "The coalition spokesman is Colonel Myles Caggins [1]."
        ],
    ) as ollama:
        llm = {
            "provider": "ollama",
            "ollama": {
                "host": ollama.host,
                "model": CHAT_MODEL,
                "request_timeout": timeout_s,
            },
        }
        with served_copy(seeded_index, tmp_path, llm=llm) as server:
            with held(server.assistant, "ask") as entered:
                running = Client(server.url, verbose=False).submit(
                    "Who is the coalition spokesman?", None, api_name="/ask"
                )
                assert entered.wait(WAIT_S)
                waiting = Client(server.url, verbose=False).submit(
                    "Who leads the coalition press briefing?", None, api_name="/ask"
                )
                wait_for_status(waiting, lambda s: s.code == Status.IN_QUEUE)
                # Longer in the queue than one model request may take.
                time.sleep(2 * timeout_s)
            for job in (running, waiting):
                answer = Answer.model_validate(job.result(timeout=WAIT_S))
                assert answer.model == f"ollama:{CHAT_MODEL}" and not answer.refused, (
                    answer.notes
                )
    asked = [
        m["content"]
        for body in ollama.chat_requests
        for m in body["messages"]
        if m["role"] == "user"
    ]
    assert any(
        "Who leads the coalition press briefing?" in content for content in asked
    )


def test_two_clients_at_once_share_the_embedded_model(ui_server):
    """The embedded model answers two clients asking at once, one after the other through the
    queue, each in its own language and about its own question."""
    cases = [
        Case(SPOKESMAN_DOC, "", "Who is the coalition spokesman?"),
        Case(SPOKESMAN_DOC, "", "ما هي البلدة التي عقد فيها المؤتمر الصحفي للتحالف؟"),
    ]
    english, arabic = ask_all_at_once(ui_server.url, cases)
    for case, answer in zip(cases, (english, arabic), strict=True):
        assert answer.model.startswith("embedded:"), answer.model
        assert answer.question == case.question
        assert answer.language == detect_language(case.question)
        assert not answer.refused, answer.notes
        assert answer.citations, answer.text
    assert "رميلان" in arabic.text, arabic.text
