"""Stage 9, the web UI (``assistant serve``): Gradio chat, source viewer and article library, on
one server with the HTTP API (``assistant.api``)."""

from __future__ import annotations

import ipaddress
import os

from assistant.config import Settings
from assistant.errors import AssistantError, ConfigError


SHUTDOWN_S = 5  # seconds a request still running gets to finish when the server stops


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


def server_app(assistant, settings: Settings):
    """The whole server as one ASGI app: the REST and OpenAI-compatible APIs, then the UI at ``/``.
    The API apps are mounted on the root, not inside Gradio's app, so that Gradio's CORS rules
    (which let any origin in beyond loopback) do not apply to them."""
    import gradio as gr
    from fastapi import FastAPI

    from assistant.api import api_mounts
    from assistant.ui.app import build_app, mount_kwargs

    root = FastAPI(routes=api_mounts(assistant, settings, is_loopback(settings.ui.host)), docs_url=None, redoc_url=None, openapi_url=None)
    blocks = build_app(assistant).queue(default_concurrency_limit=1)
    return gr.mount_gradio_app(root, blocks, path="", **mount_kwargs(settings))


def server(app, settings: Settings):
    """A uvicorn server for ``server_app``. On shutdown, Gradio's heartbeat streams (open as long as
    a page or a client is) are ended first, as ``Blocks.close`` does, so that Ctrl-C or SIGTERM
    does not wait for them to time out."""
    import uvicorn
    from gradio.routes import App
    from starlette.routing import Mount

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            for route in app.routes:
                if isinstance(route, Mount) and isinstance(route.app, App):
                    route.app.stop_event.set()
            await super().shutdown(sockets)

    return Server(uvicorn.Config(app, host=settings.ui.host, port=settings.ui.port, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_S))


def serve(settings: Settings, warm_up: bool = True) -> None:
    """Start the UI and the API, and block until interrupted."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    check_exposure(settings)
    from assistant.assistant import Assistant

    assistant = Assistant(settings)
    if warm_up:
        # The embedding model, the index and the language model load while the page is served, not
        # on the first question (which waits for them if it comes sooner).
        def ready(error: AssistantError | None) -> None:
            # The UI still runs after an error: each question will say what is wrong.
            print(f"warning: {error}" if error else f"language model: {assistant.model_label()} (loaded)", flush=True)

        assistant.warm_up_in_background(ready)
    app = server_app(assistant, settings)
    url = f"http://{settings.ui.host}:{settings.ui.port}"
    print(f"Serving on {url}  (Ctrl-C to stop); API: {url}/api/v1/docs, OpenAI-compatible: {url}/v1", flush=True)
    if not is_loopback(settings.ui.host) and settings.api.key is None:
        print("note: the HTTP API answers 401 beyond loopback until ASSISTANT_API__KEY is set", flush=True)
    server(app, settings).run()
