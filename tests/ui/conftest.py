"""Fixtures for the web UI tests.

- ``ui_server`` (session): the real Gradio UI in this process, on a free loopback port, over a
  private copy of the seeded index, answering with the embedded model (``llm.provider: embedded``,
  so nothing tries Ollama). Tests that add articles remove them again (``added_articles``).
- ``browser`` (session): Debian's chromium driven by playwright; the browser tests are skipped,
  with the reason, only when /usr/bin/chromium is absent.
- ``ui`` (per test): a fresh browser context on the UI, as a ``UIPage``.
"""

from __future__ import annotations

import os

# Before gradio is imported anywhere: no analytics, no Hugging Face lookups, no Chroma telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import shutil  # noqa: E402

import pytest  # noqa: E402

from assistant.config import load_settings  # noqa: E402
from tests.conftest import STORE_DIR, without_user_overrides, write_config  # noqa: E402
from tests.integration.helpers import free_port  # noqa: E402

from .helpers import CHROMIUM, CHROMIUM_ARGS, UIPage, running_ui  # noqa: E402

EMBEDDED = {"llm": {"provider": "embedded"}}


@pytest.fixture(scope="session")
def ui_server(seeded_index, tmp_path_factory):
    """The UI on a copy of the seeded index with the embedded model (loaded by the first question)."""
    with pytest.MonkeyPatch.context() as env:
        keep = without_user_overrides(dict(os.environ))
        for name in [n for n in os.environ if n not in keep]:
            env.delenv(name)  # the developer's shell must not reconfigure the UI under test
        root = tmp_path_factory.mktemp("ui")
        shutil.copytree(seeded_index.root / STORE_DIR, root / STORE_DIR)
        settings = load_settings(write_config(root, **EMBEDDED, ui={"port": free_port()}))
        with running_ui(settings) as server:
            yield server


@pytest.fixture
def added_articles(ui_server):
    """Doc ids a test adds to the shared UI's index: whatever is still there afterwards is removed."""
    ids: list[str] = []
    yield ids
    left = [d.doc_id for d in ui_server.assistant.documents() if d.doc_id in ids]
    if left:
        ui_server.assistant.remove(left)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); the browser tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_ui(browser, request):
    """``open_ui(url) -> UIPage``: a fresh browser context (its own Gradio session) on ``url``."""
    contexts = []

    def open_(url: str, login: tuple[str, str] | None = None) -> UIPage:
        context = browser.new_context(viewport={"width": 1400, "height": 950})
        contexts.append(context)
        return UIPage(context.new_page(), url, request.node.name, login)

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def ui(ui_server, open_ui) -> UIPage:
    return open_ui(ui_server.url)
