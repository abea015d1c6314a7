"""Private, local question answering over Arabic news articles.

``from assistant import Assistant, Answer, Citation, Filters``. Names are imported on first use, so that
the command line can report a configuration or connection problem before loading heavy modules.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

_EXPORTS = {
    "Assistant": "assistant.assistant",
    "Answer": "assistant.models",
    "Article": "assistant.models",
    "Citation": "assistant.models",
    "Filters": "assistant.models",
    "IngestReport": "assistant.models",
    "Passage": "assistant.models",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from assistant.assistant import Assistant
    from assistant.models import Answer, Article, Citation, Filters, IngestReport, Passage


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")
