"""Stage 9, the web UI (``assistant serve``): Gradio chat, source viewer and article library."""

from __future__ import annotations

import ipaddress
import os

from assistant.config import Settings
from assistant.errors import AssistantError, ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Beyond loopback the UI shows and changes the index: it needs a login."""
    ui = settings.ui
    if not is_loopback(ui.host) and not (ui.username and ui.password):
        raise ConfigError(
            f"the UI would listen on {ui.host}, beyond this machine, without a login: set "
            "ASSISTANT_UI__USERNAME and ASSISTANT_UI__PASSWORD, or keep ui.host at 127.0.0.1"
        )


def serve(settings: Settings, warm_up: bool = True) -> None:
    """Start the UI and block until interrupted."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    check_exposure(settings)
    from assistant.assistant import Assistant
    from assistant.ui.app import build_app, launch_kwargs

    assistant = Assistant(settings)
    if warm_up:
        # The embedding model, the index and the language model load while the page is served, not
        # on the first question (which waits for them if it comes sooner).
        def ready(error: AssistantError | None) -> None:
            # The UI still runs after an error: each question will say what is wrong.
            print(f"warning: {error}" if error else f"language model: {assistant.model_label()} (loaded)", flush=True)

        assistant.warm_up_in_background(ready)
    app = build_app(assistant)
    print(f"Serving on http://{settings.ui.host}:{settings.ui.port}  (Ctrl-C to stop)", flush=True)
    app.queue(default_concurrency_limit=1).launch(**launch_kwargs(settings))
