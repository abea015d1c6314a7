"""Prompts live as text files under ``prompts/`` and are loaded by name; no prompt text in code.

Placeholders use ``str.format`` syntax (``{question}``); a literal brace is written ``{{``.
The repository keeps ``prompts/`` and ``config.yaml`` at its top level; a built wheel carries
copies inside the package, under ``assistant/defaults/`` (see setup.py), found by ``default_file``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from assistant.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent


def default_file(name: str) -> Path:
    """A file shipped as a default (``"prompts"``, ``"config.yaml"``): the package's copy in an
    installed wheel, else the repository's top-level one (editable install, checkout)."""
    packaged = PACKAGE_DIR / "defaults" / name
    return packaged if packaged.exists() else PACKAGE_DIR.parent / name


DEFAULT_DIR = default_file("prompts")
LANGUAGE_NAMES = {"ar": "Arabic", "en": "English"}


class Prompts:
    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder or DEFAULT_DIR)

    def text(self, name: str, suffix: str = ".txt") -> str:
        # A folder of one's own may replace only some prompts: the others are the packaged ones.
        own = self.folder / f"{name}{suffix}"
        return _read(own if own.exists() or self.folder == DEFAULT_DIR else DEFAULT_DIR / own.name)

    def render(self, name: str, **values: str) -> str:
        try:
            return self.text(name).format(**values)
        except KeyError as exc:
            raise ConfigError(f"prompt '{name}' uses the placeholder {exc}, which is not provided") from None

    def localized(self, name: str, language: str) -> str:
        """``name.<language>.txt``, e.g. the refusal sentence in the question's language."""
        return self.text(f"{name}.{language}")

    def grammar(self, name: str, language: str) -> str:
        """``name.<language>.gbnf``: the GBNF grammar a reply in that language follows (where the
        backend can constrain replies; lines starting with ``#`` are comments)."""
        return self.text(f"{name}.{language}", suffix=".gbnf")


@lru_cache(maxsize=64)
def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"prompt file missing: {path}") from None
