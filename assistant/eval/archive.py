"""What the scale benchmarks share: an archive's articles read as `assistant ingest` reads them,
folder sizes, and the facts about the machine that numbers are reported with."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from pathlib import Path

from assistant.config import Settings, megabytes
from assistant.errors import InputError
from assistant.models import Article
from assistant.read import Skipped, read_paths


def archive_articles(data: Path, settings: Settings) -> Iterator[Article]:
    """The archive's articles in file order, streamed by the product's own reader (so chunk ids
    match those of a real ingest). Bad records are left out, as ingest skips them; an unreadable
    archive is an InputError."""
    if not data.is_file():
        raise InputError(f"no such file: {data}")
    for item in read_paths([data], settings.ingest.extensions, megabytes(settings.ingest.max_file_mb)):
        if isinstance(item, Article):
            yield item
        elif isinstance(item, Skipped) and item.path == str(data):
            raise InputError(f"cannot read {data}: {item.reason}")


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6 if folder.exists() else 0.0


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
