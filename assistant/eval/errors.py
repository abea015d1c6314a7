"""What the eval suite and the benchmarks do when the model fails.

A question whose answer fails with ``BackendUnavailableError`` (the model is unreachable, or one
generation ran past its timeout on a busy machine) fails or scores 0 with the reason, and the run
goes on: one slow answer must not lose an hour's run. ``MAX_ERRORS_IN_A_ROW`` failures in a row
mean the model is gone: the run stops, saying how many items were not run. The report lists the
errors and the command exits 1 when there were any.
"""

from __future__ import annotations

from assistant.errors import BackendUnavailableError
from assistant.models import Answer

MAX_ERRORS_IN_A_ROW = 3


class ModelErrors:
    """The model errors of one run of ``total`` questions; ask each question through ``ask``."""

    def __init__(self, total: int, max_in_a_row: int = MAX_ERRORS_IN_A_ROW):
        self.total = total
        self.max_in_a_row = max_in_a_row
        self.errors: list[str] = []  # "label: reason" per failed question, then why the run stopped
        self.last: str | None = None  # the reason of the last failure
        self.asked = 0
        self.in_a_row = 0
        self.stopped = False  # no more questions are to be asked

    def ask(self, assistant, label: str, question: str) -> Answer | None:
        """``assistant.ask(question)``, or None when the model failed: the reason is then in
        ``last`` and ``errors`` (as "label: reason"), and ``stopped`` is set after too many
        failures in a row while questions are left."""
        self.asked += 1
        try:
            answer = assistant.ask(question)
        except BackendUnavailableError as exc:
            self.last = str(exc)
            self.errors.append(f"{label}: {exc}")
            self.in_a_row += 1
            left = self.total - self.asked
            if self.in_a_row >= self.max_in_a_row and left > 0:
                self.stopped = True
                self.errors.append(f"stopped after {self.in_a_row} model errors in a row; {left} item(s) not run")
            return None
        self.in_a_row = 0
        return answer
