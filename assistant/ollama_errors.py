"""What an Ollama failure means for the user, worded once for every Ollama client here: the
answer model (``llm.ollama``), the embedding model (``embedding.ollama``) and the eval's judge
(``eval.judge``). ``section`` names the config keys to fix; ``instead`` says how to do without."""

from __future__ import annotations

import httpx
import ollama

from assistant.errors import BackendUnavailableError


def unreachable(host: str, exc: Exception, section: str, instead: str) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"cannot reach Ollama at {host} ({type(exc).__name__}). Start it with `ollama serve` "
        f"(or fix {section}.host), or {instead}."
    )


def missing_model(host: str, model: str) -> BackendUnavailableError:
    return BackendUnavailableError(f"Ollama at {host} does not have the model '{model}'. Run: ollama pull {model}")


def explain(exc: Exception, host: str, model: str, section: str, instead: str, timeout: float) -> BackendUnavailableError | None:
    """The user-facing error for an exception from an Ollama call, or None when it is not one."""
    if isinstance(exc, httpx.TimeoutException):
        return BackendUnavailableError(
            f"Ollama at {host} did not answer within {section}.request_timeout = {timeout:g} s. "
            "Is the model still loading, or the machine overloaded? Try again or raise the timeout."
        )
    if isinstance(exc, (ConnectionError, httpx.TransportError)):
        return unreachable(host, exc, section, instead)
    if isinstance(exc, ollama.ResponseError):
        if exc.status_code == 404:
            return missing_model(host, model)
        return BackendUnavailableError(f"Ollama at {host} answered with an error: {exc.error}")
    return None
