"""Shared fixtures for the fast unit tests (no embedding model, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.clean import clean_article
from assistant.config import CleaningSettings, IngestSettings
from assistant.models import Article
from assistant.read import read_file

REPO = Path(__file__).resolve().parents[2]
SEEDS_DIR = REPO / "seeds"
SEED_PATHS = sorted(SEEDS_DIR.glob("*.txt"))
EXTENSIONS = IngestSettings().extensions
MAX_BYTES = 50_000_000


def seed_path(prefix: str) -> Path:
    """The seed file whose name starts with ``prefix`` (e.g. "002")."""
    matches = [p for p in SEED_PATHS if p.name.startswith(prefix)]
    assert len(matches) == 1, f"expected one seed starting with {prefix!r}, found {matches}"
    return matches[0]


def read_seed(prefix: str) -> Article:
    result = read_file(seed_path(prefix), EXTENSIONS, MAX_BYTES)
    assert len(result.articles) == 1 and not result.skipped
    return result.articles[0]


@pytest.fixture(scope="session")
def seed_files() -> dict[str, Path]:
    """The seed files keyed by their 3-digit prefix ("000" … "004")."""
    assert len(SEED_PATHS) == 5, "the five seed articles are expected in seeds/"
    return {p.name[:3]: p for p in SEED_PATHS}


@pytest.fixture(scope="session")
def raw_seeds(seed_files) -> dict[str, Article]:
    """Every seed as read from disk (before cleaning)."""
    return {prefix: read_seed(prefix) for prefix in seed_files}


@pytest.fixture(scope="session")
def cleaned_seeds(raw_seeds) -> dict[str, Article]:
    """Every seed cleaned with the default rules."""
    return {prefix: clean_article(article, CleaningSettings()) for prefix, article in raw_seeds.items()}


@pytest.fixture
def extensions() -> list[str]:
    return list(EXTENSIONS)
