"""Ollama through llama-index's Ollama integration (which uses the official ``ollama`` client).

Before the first question the server is probed with a short timeout (``/api/tags``), so a missing
server or model is reported at once, with the command that fixes it, instead of mid-answer.
"""

from __future__ import annotations

import httpx
import ollama

from assistant.config import LLMSettings
from assistant.errors import BackendUnavailableError
from assistant.llm import ChatBackend


# What the messages tell the user to change: the answer model's keys by default; the eval's
# faithfulness judge passes its own.
HOST_KEY = "llm.ollama.host"
WITHOUT = "answer without it: set llm.provider to embedded or extractive"


def _unreachable(host: str, exc: Exception, host_key: str = HOST_KEY, without: str = WITHOUT) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"cannot reach Ollama at {host} ({type(exc).__name__}). Start it with `ollama serve` "
        f"(or fix {host_key}), or {without}."
    )


def _missing_model(host: str, model: str) -> BackendUnavailableError:
    return BackendUnavailableError(f"Ollama at {host} does not have the model '{model}'. Run: ollama pull {model}")


def _has_model(names: set[str], model: str) -> bool:
    return model in names or (":" not in model and f"{model}:latest" in names)


def probe(settings: LLMSettings, host_key: str = HOST_KEY, without: str = WITHOUT) -> None:
    """Raise BackendUnavailableError unless the server answers and has the model."""
    cfg = settings.ollama
    client = ollama.Client(host=cfg.host, timeout=cfg.probe_timeout)
    try:
        listed = client.list()
    except (ConnectionError, httpx.HTTPError) as exc:
        raise _unreachable(cfg.host, exc, host_key, without) from None
    except ollama.ResponseError as exc:
        raise BackendUnavailableError(f"Ollama at {cfg.host} answered with an error: {exc.error}") from None
    names = {m.model for m in listed.models if m.model}
    if not _has_model(names, cfg.model):
        raise _missing_model(cfg.host, cfg.model)


def make_ollama(settings: LLMSettings, host_key: str = HOST_KEY, without: str = WITHOUT) -> ChatBackend:
    from llama_index.llms.ollama import Ollama

    probe(settings, host_key, without)
    cfg = settings.ollama
    llm = Ollama(
        model=cfg.model,
        base_url=cfg.host,
        temperature=settings.temperature,
        context_window=cfg.context_window,  # also sent as num_ctx
        request_timeout=cfg.request_timeout,
        keep_alive=cfg.keep_alive,
        additional_kwargs={"num_predict": settings.max_tokens},
    )

    def explain(exc: Exception) -> Exception | None:
        if isinstance(exc, httpx.TimeoutException):
            return BackendUnavailableError(
                f"Ollama at {cfg.host} did not answer within llm.ollama.request_timeout = {cfg.request_timeout:g} s. "
                "Is the model still loading, or the machine overloaded? Try again or raise the timeout."
            )
        if isinstance(exc, (ConnectionError, httpx.TransportError)):
            return _unreachable(cfg.host, exc)
        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == 404:
                return _missing_model(cfg.host, cfg.model)
            return BackendUnavailableError(f"Ollama at {cfg.host} answered with an error: {exc.error}")
        return None

    return ChatBackend(f"ollama:{cfg.model}", llm, explain)
