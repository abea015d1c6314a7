"""Ollama through llama-index's Ollama integration (which uses the official ``ollama`` client).

Before the first question the server is probed with a short timeout (``/api/tags``), so a missing
server or model is reported at once, with the command that fixes it, instead of mid-answer.
The evidence check asks for token log-probabilities (Ollama >= 0.12.11) for a calibrated P(yes).
"""

from __future__ import annotations

import httpx
import ollama

from assistant.config import OllamaLLMSettings
from assistant.llm import Capabilities, ChatBackend, Message, YesNoReply
from assistant.ollama_errors import explain, missing_model, unreachable


# The answer model's config section, and how to answer without Ollama; the eval's judge passes its own.
SECTION = "llm.ollama"
INSTEAD = "answer without it: set llm.provider to embedded or extractive"


def probe(cfg: OllamaLLMSettings, section: str = SECTION, instead: str = INSTEAD) -> None:
    """Raise BackendUnavailableError unless the server answers and has the model."""
    client = ollama.Client(host=cfg.host, timeout=cfg.probe_timeout)
    try:
        listed = client.list()
    except (ConnectionError, httpx.HTTPError) as exc:  # a probe that times out found no server
        raise unreachable(cfg.host, exc, section, instead) from None
    except ollama.ResponseError as exc:
        raise explain(exc, cfg.host, cfg.model, section, instead, cfg.probe_timeout) from None
    names = {m.model for m in listed.models if m.model}
    if not _has_model(names, cfg.model):
        raise missing_model(cfg.host, cfg.model)


def _has_model(names: set[str], model: str) -> bool:
    return model in names or (":" not in model and f"{model}:latest" in names)


def make_ollama(
    cfg: OllamaLLMSettings, temperature: float, max_tokens: int, section: str = SECTION, instead: str = INSTEAD
) -> ChatBackend:
    from llama_index.llms.ollama import Ollama

    probe(cfg, section, instead)
    llm = Ollama(
        model=cfg.model,
        base_url=cfg.host,
        temperature=temperature,
        context_window=cfg.context_window,  # also sent as num_ctx
        request_timeout=cfg.request_timeout,
        keep_alive=cfg.keep_alive,
        additional_kwargs={"num_predict": max_tokens},
    )

    def explain_error(exc: Exception) -> Exception | None:
        return explain(exc, cfg.host, cfg.model, section, instead, cfg.request_timeout)

    def yes_no(messages: list[Message]) -> YesNoReply:
        # llama-index's Ollama drops logprobs, so the official client asks directly, with the
        # answer's options (another num_ctx would make Ollama reload the model).
        response = llm.client.chat(
            model=cfg.model,
            messages=[{"role": m.role, "content": m.content} for m in messages],
            stream=False,
            options={"temperature": temperature, "num_ctx": llm.get_context_window(), "num_predict": 1},
            keep_alive=cfg.keep_alive,
            logprobs=True,
            top_logprobs=10,
        )
        first = response.logprobs[0] if response.logprobs else None  # None from servers before 0.12.11
        alternatives = (first.top_logprobs or [first]) if first else []
        return YesNoReply(response.message.content or "", [(t.token, t.logprob) for t in alternatives])

    return ChatBackend(f"ollama:{cfg.model}", llm, explain_error, Capabilities(yes_no=yes_no))
