"""Ollama through llama-index's Ollama integration (which uses the official ``ollama`` client).

Before the first question the server is probed with a short timeout (``/api/tags``), so a missing
server or model is reported at once, with the command that fixes it, instead of mid-answer.
The evidence check asks for token log-probabilities (Ollama >= 0.12.11) for a calibrated P(yes).
"""

from __future__ import annotations

import httpx
import ollama

from assistant.config import LLMSettings
from assistant.errors import BackendUnavailableError
from assistant.llm import ChatBackend, Message, YesNoReply


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

    def yes_no(messages: list[Message]) -> YesNoReply:
        # llama-index's Ollama drops logprobs, so the official client asks directly, with the
        # answer's options (another num_ctx would make Ollama reload the model).
        response = llm.client.chat(
            model=cfg.model,
            messages=[{"role": m.role, "content": m.content} for m in messages],
            stream=False,
            options={"temperature": settings.temperature, "num_ctx": llm.get_context_window(), "num_predict": 1},
            keep_alive=cfg.keep_alive,
            logprobs=True,
            top_logprobs=10,
        )
        first = response.logprobs[0] if response.logprobs else None  # None from servers before 0.12.11
        alternatives = (first.top_logprobs or [first]) if first else []
        return YesNoReply(response.message.content or "", [(t.token, t.logprob) for t in alternatives])

    return ChatBackend(f"ollama:{cfg.model}", llm, explain, yes_no=yes_no)
