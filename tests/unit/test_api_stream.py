"""How the HTTP API streams an answer (assistant.api.settled_stream): the model's draft as deltas,
then whatever makes the joined stream equal the final, authoritative ``Answer.text``."""

from __future__ import annotations

import pytest

from assistant.api import appended_stream, settled_stream
from assistant.models import Answer


def final(text: str) -> Answer:
    return Answer(text=text, language="ar")


def apply(events) -> str:
    """What a client that appends deltas and applies replace events shows in the end."""
    shown = ""
    for kind, item in events:
        if kind == "delta":
            shown += item
        elif kind == "replace":
            shown = item
    return shown


@pytest.mark.parametrize(
    ("draft", "text", "tail"),
    [
        (["المتحدث ", "هو كيغينز [1]."], "المتحدث هو كيغينز [1].", []),
        # The marker goes before the final stop: the draft is no prefix, so the text is replaced.
        (["المتحدث ", "هو كيغينز."], "المتحدث هو كيغينز [1].", [("replace", "المتحدث هو كيغينز [1].")]),
        (["المتحدث هو كيغينز [3]."], "المتحدث هو كيغينز.", [("replace", "المتحدث هو كيغينز.")]),
        (["لا أعرف."], "لا تتضمن المقالات المفهرسة إجابة عن هذا السؤال.", [("replace", "لا تتضمن المقالات المفهرسة إجابة عن هذا السؤال.")]),
        (["", "الجواب"], "الجواب [1]", [("delta", " [1]")]),
    ],
    ids=["unchanged", "marker-attached", "marker-removed", "refused-after-writing", "extended"],
)
def test_the_stream_ends_equal_to_the_final_text(draft, text, tail):
    events = list(settled_stream(iter([*draft, final(text)])))
    assert events[-1] == ("answer", final(text))
    assert [e for e in events[:-1] if e[0] == "delta"][: len([d for d in draft if d])] == [("delta", d) for d in draft if d]
    assert apply(events[:-1]) == text
    if tail:
        assert events[-1 - len(tail) : -1] == tail


def sources(answer: Answer) -> str:
    return "\n\nالمصادر:\n[1] …" if "[1]" in answer.text else ""


def test_an_append_only_client_gets_the_checked_answer_after_the_draft_only_when_its_words_differ():
    same_words = list(appended_stream(iter(["المتحدث هو كيغينز.", final("المتحدث هو كيغينز [1].")]), sources))[:-1]
    # Only a marker was attached: the words are the draft's, and the sources list follows.
    assert "".join(same_words) == "المتحدث هو كيغينز." + "\n\nالمصادر:\n[1] …"
    other = list(appended_stream(iter(["المتحدث هو البغدادي [1].", final("لا تتضمن المقالات المفهرسة إجابة عن هذا السؤال.")]), sources))
    assert other[-1] == final("لا تتضمن المقالات المفهرسة إجابة عن هذا السؤال.")
    assert "".join(other[:-1]) == "المتحدث هو البغدادي [1].\n\nبعد التحقق من المصادر:\nلا تتضمن المقالات المفهرسة إجابة عن هذا السؤال."
