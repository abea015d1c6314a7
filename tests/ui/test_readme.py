"""The README's commands and code run as written.

- Every ``bash`` block: its ``make`` targets exist (``make -n``), its ``assistant`` commands parse,
  and its ``curl`` commands run against a served assistant (only the address changes) and get a
  reply that is not an error.
- Every ``python`` block runs: the Python API's in a folder with ``seeds/`` and a ``config.yaml``
  of its own, the OpenAI client's against the served assistant.
- Every ``assistant ...`` command in inline code parses with the real argument parser, and the
  command table names exactly the options each command has.

Answers come from the extractive backend (no model), so the blocks run in seconds: what is checked
is that the commands and APIs are the real ones, not the answers' quality (the e2e tests do that).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import build_parser
from assistant.config import load_settings
from tests.conftest import SEEDS, STORE_DIR, without_user_overrides, write_config
from tests.integration.helpers import free_port

from .helpers import running_ui

pytestmark = pytest.mark.slow  # serves the UI and loads the embedder

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
DEFAULT_URL = "http://127.0.0.1:7860"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def blocks(language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(README) if lang == language]


def shell_commands(block: str) -> list[list[str]]:
    """The block's commands as argument lists: continuation lines joined, comments dropped, and
    ``&`` / ``VAR=value`` prefixes left out."""
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            words.pop(0)
        if words and words[-1] == "&":
            words.pop()
        if words:
            commands.append(_before_redirection(words))
    return commands


def inline_assistant_commands() -> list[str]:
    """``assistant ...`` commands written in inline code, outside the command table's synopses."""
    spans = re.findall(r"`((?:\.venv/bin/)?assistant [^`]+)`", _without_fences(README))
    return [s for s in spans if not re.search(r"[\[\]|…]|\.\.\.", s)]  # a synopsis, not a command


def _without_fences(text: str) -> str:
    return _FENCE.sub("", text)


def _before_redirection(words: list[str]) -> list[str]:
    """``assistant config > config.yaml`` -> the command's own words."""
    for i, word in enumerate(words):
        if word in (">", ">>", "|", "&&", "2>"):
            return words[:i]
    return words


def parse(words: list[str]) -> argparse.Namespace:
    """Parse a command with the real parser; argparse's exit becomes a test failure naming it."""
    parser = build_parser()
    try:
        return parser.parse_args(words)
    except SystemExit as exc:
        pytest.fail(f"the README's command does not parse (exit {exc.code}): assistant {shlex.join(words)}")


# --------------------------------------------------------------------------- shell commands
def test_every_make_target_in_the_readme_exists():
    targets = {words[1] for block in blocks("bash") for words in shell_commands(block) if words[0] == "make"}
    targets |= set(re.findall(r"`make ([a-z-]+)", README))
    assert {"run", "test"} <= targets, "the quick start's two commands"
    for target in sorted(targets):
        dry = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True)
        assert dry.returncode == 0, f"make {target}: {dry.stderr}"


def test_every_assistant_command_in_the_readme_parses():
    commands = [words for block in blocks("bash") for words in shell_commands(block) if words[0].endswith("assistant")]
    commands += [_before_redirection(shlex.split(span)) for span in inline_assistant_commands()]
    assert len(commands) >= 5, commands
    for words in commands:
        parse(words[1:])


def _table_rows() -> dict[str, str]:
    """Command table: "ingest", "bench squad", "conversations list", ... -> the synopsis in its first column."""
    rows = {}
    for synopsis in re.findall(r"^\| `assistant ((?:[^`]|`(?!\s*\|))+)` \|", README, re.M):
        words = synopsis.split()
        name = " ".join(words[:2]) if words[0] in ("bench", "conversations") else words[0]
        rows[name] = synopsis
    return rows


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:  # argparse keeps its subcommands here; it has no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = _subparsers(sub, f"{prefix}{name} ")
                found.update(inner or {f"{prefix}{name}": sub})
    return found


def test_the_command_table_lists_every_command_with_exactly_its_options():
    rows = _table_rows()
    commands = _subparsers(build_parser())
    assert set(rows) == set(commands), "the table lists every command, and no other"
    for name, parser in commands.items():
        options = {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
        synopsis = rows[name].replace("FILTERS", "--source --since --until")  # as the table defines FILTERS
        written = set(re.findall(r"--[a-z][a-z-]*", synopsis))
        assert written == options, f"assistant {name}: the table says {sorted(written)}, the parser has {sorted(options)}"


# --------------------------------------------------------------------------- against a server
@pytest.fixture(scope="module")
def served(seeded_index, tmp_path_factory):
    """``assistant serve`` on a copy of the seeded index, answering extractively."""
    root = tmp_path_factory.mktemp("readme-server")
    shutil.copytree(seeded_index.root / STORE_DIR, root / STORE_DIR)
    settings = load_settings(write_config(root, llm={"provider": "extractive"}, ui={"port": free_port()}))
    with running_ui(settings) as server:
        yield server


def test_every_curl_command_in_the_readme_runs_against_the_served_api(served, tmp_path):
    base = served.url.rstrip("/")
    (tmp_path / "article.txt").write_text("مقال تجريبي\nأعلن المجلس المحلي افتتاح مكتبة عامة جديدة في المدينة.\n", encoding="utf-8")
    curls = [words for block in blocks("bash") for words in shell_commands(block) if words[0] == "curl"]
    assert len(curls) >= 6, curls
    for words in curls:
        command = [w.replace(DEFAULT_URL, base) for w in words]
        done = subprocess.run([*command, "-w", "\n%{http_code}"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        body, _, status = done.stdout.rpartition("\n")
        assert done.returncode == 0 and status.startswith("2"), f"{shlex.join(words)} -> {status}: {body[:500]} {done.stderr}"
        streamed = any(re.fullmatch(r"-[a-zA-Z]*N[a-zA-Z]*", w) for w in words)  # curl -N: Server-Sent Events
        if not streamed:  # one JSON document
            assert body.strip() and "error" not in json.loads(body), f"{shlex.join(words)} -> {status}: {body[:500]!r}"
        else:
            assert "event: answer" in body and "event: error" not in body, body[:500]
    assert "article" not in {d.doc_id for d in served.assistant.documents()}, "the README's upload is removed by its delete"


def _run_python(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = without_user_overrides(dict(os.environ))
    environment.update(env or {}, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)


def test_the_openai_client_example_runs_against_the_served_api(served, tmp_path):
    (example,) = [b for b in blocks("python") if "from openai import OpenAI" in b]
    done = _run_python(example.replace(DEFAULT_URL, served.url.rstrip("/")), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[1]" in done.stdout and "Sources" in done.stdout, done.stdout


def test_the_python_api_example_runs_as_written(tmp_path):
    (example,) = [b for b in blocks("python") if "Assistant.from_config()" in b]
    shutil.copytree(SEEDS, tmp_path / "seeds")
    write_config(tmp_path, llm={"provider": "extractive"})  # ./config.yaml, which from_config() reads
    done = _run_python(example, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[1]" in done.stdout, done.stdout
