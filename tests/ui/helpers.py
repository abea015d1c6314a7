"""Helpers for the web UI tests: the real Gradio app in-process, and a page object for the browser.

The server is built exactly as ``assistant serve`` builds it (``assistant.ui.server_app``: the UI
and the HTTP API), and run by uvicorn in a thread on a free loopback port.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assistant.assistant import Assistant
from assistant.config import Settings

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium, never a downloaded one; no network beyond the loopback UI.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = REPO / "out" / "ui-screenshots"  # test artifacts (out/ is gitignored)
# An answer from the embedded model takes 10-60 s on 2 busy cores; never assert on timings.
ANSWER_TIMEOUT_MS = 240_000
UI_TIMEOUT_MS = 60_000  # page load, library updates, the source viewer

SPOKESMAN_Q = "من هو المتحدث الرسمي باسم التحالف الدولي؟"
SPOKESMAN_DOC = "000_f059682764c3eed9"


@dataclass
class RunningUI:
    url: str
    assistant: Assistant
    settings: Settings


def wait_http(url: str, deadline_s: float = 180.0, process=None) -> None:
    """Until ``url`` answers 200 (or ``process`` exits, or the deadline passes: AssertionError)."""
    end = time.monotonic() + deadline_s
    last: object = None
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
                last = response.status
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 within {deadline_s:.0f} s (last: {last})")


@contextmanager
def running_ui(settings: Settings):
    """The UI and API of ``settings`` (its ``ui.port`` must be free), served until the block ends."""
    import threading

    from assistant.ui import server, server_app

    assistant = Assistant(settings)
    running = server(server_app(assistant, settings), settings)
    thread = threading.Thread(target=running.run, name="ui-server", daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{settings.ui.port}/"
        wait_http(url)
        yield RunningUI(url, assistant, settings)
    finally:
        running.should_exit = True
        thread.join(30)


# Records, per turn, whether its bot message was seen streaming and each distinct partial text, so
# a fast answer cannot slip past the test between two polls.
STREAM_RECORDER = """() => {
  window.__stream = {};
  const root = document.querySelector('#conversation');
  const record = () => {
    for (const turn of root.querySelectorAll('.turn')) {
      const bot = turn.querySelector('.msg.bot');
      if (!bot || !bot.classList.contains('streaming')) continue;
      const log = (window.__stream[turn.dataset.turn] ||= {texts: []});
      const text = bot.textContent;
      if (log.texts[log.texts.length - 1] !== text) log.texts.push(text);
    }
  };
  new MutationObserver(record).observe(root, {subtree: true, childList: true, characterData: true});
}"""


class UIPage:
    """The assistant's page in one browser tab, with screenshots at each step."""

    def __init__(self, page, url: str, name: str, login: tuple[str, str] | None = None):
        self.page = page
        self.name = re.sub(r"[^\w.-]+", "_", name)
        self.step = 0
        self.page_errors: list[str] = []
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.set_default_timeout(UI_TIMEOUT_MS)
        self.goto(url, login)

    def goto(self, url: str, login: tuple[str, str] | None = None) -> None:
        """Load ``url`` (the UI, perhaps with a query), as a new page load: a reload too."""
        page = self.page
        page.goto(url)
        if login:  # Gradio's login form first
            page.locator("input[type=text]").first.fill(login[0])
            page.locator("input[type=password]").first.fill(login[1])
            page.get_by_role("button", name=re.compile("login", re.I)).click()
        page.wait_for_selector("#question textarea")
        page.evaluate(STREAM_RECORDER)

    def shot(self, step: str, path: Path | None = None) -> Path:
        self.step += 1
        out = path or SCREENSHOTS / f"{self.name}-{self.step:02d}-{step}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(out), full_page=True)
        return out

    # --- chat ----------------------------------------------------------------------------------
    def turns(self):
        return self.page.locator("#conversation .turn")

    def send(self, question: str, press_enter: bool = False) -> int:
        """Type and send a question; returns its turn index."""
        index = self.turns().count()
        self.page.evaluate("(i) => { delete window.__stream[i]; }", str(index))
        box = self.page.locator("#question textarea")
        box.fill(question)
        if press_enter:
            box.press("Enter")
        else:
            self.page.click("#send")
        return index

    def bot(self, index: int):
        return self.page.locator(f'#conversation .turn[data-turn="{index}"] .msg.bot')

    def finished(self, index: int):
        """The turn's bot message once it is no longer streaming."""
        done = self.page.locator(f'#conversation .turn[data-turn="{index}"] .msg.bot:not(.streaming)')
        done.wait_for(timeout=ANSWER_TIMEOUT_MS)
        return done

    def ask(self, question: str):
        return self.finished(self.send(question))

    def stream_log(self, index: int) -> list[str]:
        """The texts the turn's bot message showed while streaming, in order."""
        log = self.page.evaluate("(i) => window.__stream[i]", str(index))
        return log["texts"] if log else []

    def open_citation(self, link) -> str:
        """Click a citation link; returns the highlighted passage's exact text."""
        link.click()
        mark = self.page.locator("#source-viewer mark#cited-passage")
        mark.wait_for()
        return mark.text_content()

    # --- saved conversations ---------------------------------------------------------------------
    def listed_conversations(self):
        """The side list's entries ("title · date"), newest first."""
        return self.page.locator("#conversation-list label")

    def export(self, button: str) -> str:
        """Download the open conversation with #export-markdown or #export-json; its text."""
        tools = self.page.locator("#conversation-tools")
        if not tools.locator(f"#{button}").is_visible():
            tools.locator("button").first.click()  # the accordion's header
        with self.page.expect_download() as download:
            self.page.click(f"#{button}")
        return Path(download.value.path()).read_text(encoding="utf-8")

    # --- library -------------------------------------------------------------------------------
    def open_tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=re.compile(name)).click()

    def open_library(self) -> None:
        self.open_tab("Library")
        self.page.locator("#index-status table").wait_for()

    def library_message(self):
        return self.page.locator("#library-message textarea")

    def upload(self, paths: list[Path]) -> None:
        """Choose files in #upload as a user does (click the drop zone, answer the file chooser),
        wait until Gradio has uploaded them and lists each, then add them.

        The listed name is matched by its aria-label: Gradio renders it as ``stem .ext`` in two
        spans, so the visible text is not the file name (matching the text failed in CI)."""
        upload = self.page.locator("#upload")
        with self.page.expect_response(lambda r: "/upload" in r.url and r.request.method == "POST") as response:
            with self.page.expect_file_chooser() as chooser:
                upload.locator("button").first.click()
            chooser.value.set_files([str(p) for p in paths])
        assert response.value.ok, f"Gradio's upload answered HTTP {response.value.status}"
        for path in paths:
            upload.get_by_label(path.name, exact=True).first.wait_for()
        self.page.click("#add-articles")

    def remove(self, doc_id: str) -> None:
        self.page.locator("#remove-choice input").click()
        self.page.get_by_role("option", name=re.compile(rf"^{re.escape(doc_id)} — ")).click()
        self.page.click("#remove-article")

    def body_text(self) -> str:
        return self.page.locator("body").inner_text()
