"""Private, local question answering over Arabic news articles."""

from assistant.assistant import Assistant
from assistant.models import Article, IngestReport, Passage

__all__ = ["Assistant", "Article", "IngestReport", "Passage"]
