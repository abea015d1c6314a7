"""A folder of one's own prompts (answer.prompts_dir) replaces only the files it holds."""

from __future__ import annotations

import pytest

from assistant.errors import ConfigError
from assistant.prompts import DEFAULT_DIR, Prompts


def test_own_folder_overrides_the_files_it_has_and_falls_back_for_the_rest(tmp_path):
    (tmp_path / "refusal.en.txt").write_text("Not in these articles.\n", encoding="utf-8")
    prompts = Prompts(tmp_path)
    assert prompts.localized("refusal", "en") == "Not in these articles."
    packaged = (DEFAULT_DIR / "languages.en.txt").read_text(encoding="utf-8").strip()
    assert prompts.localized("languages", "en") == packaged


def test_a_prompt_that_exists_nowhere_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="prompt file missing"):
        Prompts(tmp_path).text("no-such-prompt")
