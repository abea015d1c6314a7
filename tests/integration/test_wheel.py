"""The wheel works outside the repository: the prompts and the default config ship inside it.

The wheel is built offline from the repository's files (``pip wheel --no-build-isolation``) and
installed with ``--no-deps`` into a fresh venv. That venv borrows this venv's dependencies through a
``.pth`` line naming this venv's site-packages; the ``.pth`` files inside that folder are not
processed, so the editable install's finder (which maps ``assistant`` to the repository) is not
active there. Then, from an empty temporary folder with no config.yaml, one script ingests a seed,
searches, answers (extractive, no model) and loads what ``assistant config`` printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # builds a wheel and loads the embedding model

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "seeds" / "000_f059682764c3eed9.txt"
QUESTION = "من هو المتحدث الرسمي باسم التحالف الدولي؟"
SPOKESMAN = "كيغينز"  # the article names the coalition spokesman, Colonel Myles Caggins

# Run by the fresh venv's python in the empty folder; prints one JSON line.
SCRIPT = r"""
import json, sys
from pathlib import Path

import assistant
from assistant import Assistant
from assistant.config import load_settings
from assistant.prompts import default_file

seed, question, printed = sys.argv[1:4]
bot = Assistant.from_config(llm={"provider": "extractive"})  # no config.yaml here: the defaults
report = bot.ingest([seed])
passages = bot.search(question)
answer = bot.ask(question)
print(json.dumps({
    "assistant_file": assistant.__file__,
    "prompts_folder": str(bot.prompts.folder),
    "extractive_ar": bot.prompts.localized("extractive", "ar"),
    "default_config": str(default_file("config.yaml")),
    "base_dir": str(bot.settings.base_dir),
    "store": str(bot.settings.resolve(bot.settings.store.path)),
    "lexical_cache": str(bot.settings.resolve(bot.settings.store.lexical_cache)),
    "added": report.added,
    "skipped": [s.reason for s in report.skipped],
    "passages": [{"doc_id": p.doc_id, "text": p.text} for p in passages],
    "answer": answer.model_dump(mode="json"),
    "printed_thresholds": load_settings(printed).eval.thresholds,
}, ensure_ascii=False))
"""


def _env() -> dict[str, str]:
    """No ASSISTANT_* setting, no path into the repository, nothing that calls home."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_") and k not in drop}
    env.update(HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False", GRADIO_ANALYTICS_ENABLED="False", PYTHONIOENCODING="utf-8")
    return env


def _run(args: list, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True, encoding="utf-8", timeout=timeout)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _source_tree(dest: Path) -> Path:
    """The repository's files (tracked and new, not ignored) copied to ``dest``, so that the build
    neither writes build/ into the working tree nor packs stale files left in it."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return REPO  # not a git checkout (e.g. an unpacked sdist): build in place
    for name in filter(None, listed.decode("utf-8").split("\0")):
        source = REPO / name
        if source.is_file():  # a file deleted but not yet staged is listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the wheel, install it into a fresh venv; the venv's paths."""
    root = tmp_path_factory.mktemp("wheel")
    source = _source_tree(root / "src")
    dist = root / "dist"
    # No network: no build isolation (setuptools and wheel come from this venv), no index.
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, source], root, 600)
    wheels = list(dist.glob("arabic_news_assistant-*.whl"))
    assert len(wheels) == 1, wheels

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], root, 120)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, 60).stdout.strip())
    # Installed before the .pth below exists, so pip sees only the fresh venv (never this venv's
    # editable install, which it could otherwise take as already installed, or uninstall).
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheels[0]], root, 300)
    # The dependencies: this venv's site-packages as a plain sys.path entry (its .pth files are not run).
    (site / "_test_runner_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return {"wheel": wheels[0], "venv": venv, "python": python, "site": site, "root": root}


@pytest.fixture(scope="module")
def outcome(installed: dict[str, Path]) -> dict:
    """`assistant config`, then the script, both run in an empty folder by the fresh venv."""
    work = installed["root"] / "work"
    work.mkdir()
    printed = _run([installed["venv"] / "bin" / "assistant", "config"], work, 120).stdout
    printed_file = installed["root"] / "printed" / "config.yaml"  # outside work: from_config() must not see it
    printed_file.parent.mkdir()
    printed_file.write_text(printed, encoding="utf-8")
    assert not (work / "config.yaml").exists()
    result = _run([installed["python"], "-c", SCRIPT, SEED, QUESTION, printed_file], work, 900)
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "printed": printed, "work": work}


def test_wheel_ships_the_prompts_and_the_default_config(installed: dict[str, Path]) -> None:
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = set(wheel.namelist())
        assert wheel.read("assistant/defaults/config.yaml") == (REPO / "config.yaml").read_bytes()
        prompts = sorted((REPO / "prompts").glob("*.txt"))
        assert prompts
        for prompt in prompts:
            assert wheel.read(f"assistant/defaults/prompts/{prompt.name}") == prompt.read_bytes()
    assert "assistant/ui/ui.css" in names


def test_the_installed_package_is_used_not_the_repository(installed: dict[str, Path], outcome: dict) -> None:
    package = installed["site"] / "assistant"
    assert Path(outcome["assistant_file"]).is_relative_to(package), outcome["assistant_file"]
    assert not Path(outcome["assistant_file"]).is_relative_to(REPO)
    assert Path(outcome["prompts_folder"]) == package / "defaults" / "prompts"
    assert Path(outcome["default_config"]) == package / "defaults" / "config.yaml"


def test_without_a_config_file_paths_resolve_in_the_current_folder(outcome: dict) -> None:
    work = outcome["work"].resolve()
    assert Path(outcome["base_dir"]) == work
    assert Path(outcome["store"]) == work / "data" / "chroma"
    assert Path(outcome["lexical_cache"]) == work / "data" / "lexical"
    assert (work / "data" / "chroma").is_dir()


def test_ingest_and_search_from_the_wheel(outcome: dict) -> None:
    assert outcome["added"] == [SEED.stem], outcome["skipped"]
    assert outcome["passages"]
    assert {p["doc_id"] for p in outcome["passages"]} == {SEED.stem}
    assert any(SPOKESMAN in p["text"] for p in outcome["passages"])


def test_ask_is_answered_with_a_citation_from_the_article(outcome: dict) -> None:
    answer = outcome["answer"]
    assert answer["model"] == "extractive"
    assert not answer["refused"], answer
    assert answer["citations"], answer
    assert {c["doc_id"] for c in answer["citations"]} == {SEED.stem}
    assert "[1]" in answer["text"] or "[2]" in answer["text"]
    assert answer["text"].startswith(outcome["extractive_ar"])  # the packaged prompt was read
    assert SPOKESMAN in answer["text"], answer["text"]


def test_installed_config_command_prints_a_valid_config(outcome: dict) -> None:
    printed = outcome["printed"]
    assert printed == (REPO / "config.yaml").read_text(encoding="utf-8")
    assert isinstance(yaml.safe_load(printed), dict)
    # load_settings (of the installed package) accepted it, thresholds and all.
    assert outcome["printed_thresholds"] == yaml.safe_load(printed)["eval"]["thresholds"]
