"""Helpers for the integration tests: a fake Ollama server (the one process boundary we cannot run
here), a real `chroma run` server, free ports and the CLI as a subprocess."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


DIM = 64
# ingest.batch_chunks for the tests that need an ingest of several write batches (to stop, kill or
# compare it between batches): the same batching as the default 256, with a tenth of the embedding.
TEST_BATCH_CHUNKS = 24
_TOKENS = re.compile(r"\w+")


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bag_of_words(text: str) -> list[float]:
    """Deterministic hashed bag-of-words vector: texts sharing words are close in cosine."""
    vector = [0.0] * DIM
    for token in _TOKENS.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "big")
        vector[h % DIM] += 1.0 if (h >> 32) & 1 else -1.0
    return vector


class FakeOllama:
    """Speaks Ollama's wire protocol on 127.0.0.1 (a free port), for the models in ``models``:

    - ``POST /api/embed``: hashed bag-of-words vectors (``bag_of_words``);
    - ``GET /api/tags``: the models it "has"; ``POST /api/show``: model info, 404 for others;
    - ``POST /api/chat``: ``chat_reply(body)`` (a str, or a list of pieces) streamed as NDJSON when
      ``"stream"`` is true (the client's default), else one JSON object; 404 for an unknown model.
      With ``hang_chat`` set (True, or a predicate of the request body), /api/chat reads the
      request and never answers (until the server stops).
      The assistant's evidence check (its prompt ends with prompts/verify_instruction.txt) gets
      ``verify_reply`` ("yes" unless a test says otherwise) instead of ``chat_reply``. With
      ``verify_top_logprobs`` set ({token: log-probability}), an evidence check that asks for
      ``logprobs`` gets them as Ollama >= 0.12.11 sends them, and the most likely token as the
      reply; unset, the fake ignores ``logprobs`` as older servers do.

    Every request body is recorded: ``requests`` (embed), ``chat_requests``, ``show_requests``;
    ``tags_calls`` counts the model listings.
    """

    def __init__(self, models: set[str], chat_reply=None, port: int = 0):
        self.models = set(models)
        self.requests: list[dict] = []  # every /api/embed request body, as parsed JSON
        self.chat_requests: list[dict] = []  # every /api/chat request body but the evidence checks
        self.evidence_requests: list[dict] = []  # the assistant's "do the passages answer it?" checks
        self.show_requests: list[dict] = []  # every /api/show request body
        self.tags_calls = 0
        # body -> reply text (one piece) or a list of pieces; replaceable by a test.
        self.chat_reply = chat_reply or (lambda body: ["OK"])
        self.verify_reply = "yes"
        self.verify_top_logprobs: dict[str, float] | None = None
        self.hang_chat: bool | Callable[[dict], bool] = False
        self.hanging = 0  # /api/chat handlers currently hanging
        self._release = threading.Event()  # set when the server stops: hanging handlers return
        self._connections: set[socket.socket] = set()  # open client connections, closed when it stops
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _reply(self, status: int, payload: dict | str) -> None:
                body = (json.dumps(payload) if isinstance(payload, dict) else payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if isinstance(payload, dict) else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _not_found(self, model: str) -> None:
                self._reply(404, {"error": f'model "{model}" not found, try pulling it first'})

            def do_GET(self) -> None:
                if self.path == "/api/tags":
                    with fake._lock:
                        fake.tags_calls += 1
                        names = sorted(fake.models)
                    self._reply(200, {"models": [_tag(name) for name in names]})
                elif self.path == "/":
                    self._reply(200, "Ollama is running")
                else:
                    self._reply(404, "404 page not found")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                routes = {"/api/embed": self._embed, "/api/chat": self._chat, "/api/show": self._show}
                if self.path not in routes:
                    self._reply(404, "404 page not found")
                    return
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError as exc:
                    self._reply(400, {"error": f"invalid JSON: {exc}"})
                    return
                try:
                    routes[self.path](body)
                except (BrokenPipeError, ConnectionResetError):  # the client went away
                    self.close_connection = True

            def _embed(self, body: dict) -> None:
                with fake._lock:
                    fake.requests.append(body)
                model = body.get("model", "")
                if not fake.has(model):
                    self._not_found(model)
                    return
                texts = body.get("input", [])
                if isinstance(texts, str):
                    texts = [texts]
                self._reply(
                    200,
                    {
                        "model": model,
                        "embeddings": [bag_of_words(t) for t in texts],
                        "total_duration": 1000,
                        "load_duration": 10,
                        "prompt_eval_count": sum(len(t.split()) for t in texts),
                    },
                )

            def _show(self, body: dict) -> None:
                with fake._lock:
                    fake.show_requests.append(body)
                model = body.get("model") or body.get("name") or ""
                if not fake.has(model):
                    self._not_found(model)
                    return
                self._reply(200, _show(model))

            def _chat(self, body: dict) -> None:
                with fake._lock:
                    (fake.evidence_requests if _is_evidence_check(body) else fake.chat_requests).append(body)
                model = body.get("model", "")
                if not fake.has(model):
                    self._not_found(model)
                    return
                if fake.hang_chat is True or (callable(fake.hang_chat) and fake.hang_chat(body)):
                    with fake._lock:
                        fake.hanging += 1
                    try:
                        fake._release.wait()  # until the server stops; the client times out first
                    finally:
                        with fake._lock:
                            fake.hanging -= 1
                    self.close_connection = True
                    return
                reply = fake.verify_reply if _is_evidence_check(body) else fake.chat_reply(body)
                logprobs = None
                if _is_evidence_check(body) and fake.verify_top_logprobs and body.get("logprobs"):
                    logprobs = _logprobs(fake.verify_top_logprobs, int(body.get("top_logprobs") or 0))
                    reply = logprobs[0]["token"]
                pieces = [reply] if isinstance(reply, str) else list(reply)
                prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
                final = {
                    "model": model,
                    "created_at": _now(),
                    "done": True,
                    "done_reason": "stop",
                    "total_duration": 1,
                    "load_duration": 1,
                    "prompt_eval_count": prompt_tokens,
                    "prompt_eval_duration": 1,
                    "eval_count": len(pieces),
                    "eval_duration": 1,
                }
                if logprobs:
                    final["logprobs"] = logprobs
                if body.get("stream", True) is False:
                    self._reply(200, {**final, "message": {"role": "assistant", "content": "".join(pieces)}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in pieces:
                    self._chunk(
                        {
                            "model": model,
                            "created_at": _now(),
                            "message": {"role": "assistant", "content": piece},
                            "done": False,
                        }
                    )
                self._chunk({**final, "message": {"role": "assistant", "content": ""}})
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _chunk(self, line: dict) -> None:
                data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
                self.wfile.write(f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def has(self, model: str) -> bool:
        """Ollama's matching: ``name`` and ``name:latest`` are the same model."""
        with self._lock:
            models = set(self.models)
        return bool(model) and (model in models or f"{model}:latest" in models or model.removesuffix(":latest") in models)

    @property
    def inputs(self) -> list[str]:
        """Every text the server was asked to embed."""
        with self._lock:
            out: list[str] = []
            for body in self.requests:
                texts = body.get("input", [])
                out.extend([texts] if isinstance(texts, str) else texts)
            return out

    def wait_hanging(self, timeout: float = 60.0) -> bool:
        """True once a /api/chat request is being held open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.hanging:
                    return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> "FakeOllama":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()  # hanging /api/chat handlers return (and close their connection)
        self.server.shutdown()
        self.server.server_close()
        with self._lock:  # as when the process ends: kept-alive connections close too
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        deadline = time.monotonic() + 10
        while self.hanging and time.monotonic() < deadline:
            time.sleep(0.05)


VERIFY_INSTRUCTION = (Path(__file__).resolve().parents[2] / "prompts" / "verify_instruction.txt").read_text(encoding="utf-8").strip()


def _is_evidence_check(body: dict) -> bool:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return bool(users) and str(users[-1].get("content", "")).rstrip().endswith(VERIFY_INSTRUCTION)


def _logprobs(top: dict[str, float], n: int) -> list[dict]:
    """Ollama's ``logprobs`` for a one-token reply: the most likely token, and the ``n`` best."""
    ranked = sorted(top.items(), key=lambda item: -item[1])

    def entry(token: str, logprob: float) -> dict:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    return [{**entry(*ranked[0]), "top_logprobs": [entry(*item) for item in ranked[:n]]}]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


def _tag(name: str) -> dict:
    """One entry of ``GET /api/tags``."""
    return {
        "name": name,
        "model": name,
        "modified_at": "2024-01-01T00:00:00Z",
        "size": 1,
        "digest": "x",
        "details": {},
    }


def _show(name: str) -> dict:
    """``POST /api/show`` for a model the fake has (a small qwen2-like model)."""
    return {
        "modelfile": f"FROM {name}\n",
        "parameters": "stop \"<|im_end|>\"",
        "template": "{{ .Prompt }}",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "qwen2",
            "families": ["qwen2"],
            "parameter_size": "7.6B",
            "quantization_level": "Q4_K_M",
        },
        "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
        "capabilities": ["completion"],
        "modified_at": "2024-01-01T00:00:00Z",
    }


FAKE_MODEL = "fake-embed"
CHAT_MODEL = "qwen-test"


def ollama_overrides(host: str, model: str = FAKE_MODEL, **embedding) -> dict:
    return {"embedding": {"provider": "ollama", "ollama": {"host": host, "model": model, "request_timeout": 30}, **embedding}}


def ollama_llm_overrides(host: str, model: str = CHAT_MODEL, provider: str = "ollama", **ollama) -> dict:
    """``llm`` settings for answering with Ollama at ``host`` (``ollama``: more llm.ollama keys)."""
    return {"llm": {"provider": provider, "ollama": {"host": host, "model": model, "request_timeout": 60, **ollama}}}


# --------------------------------------------------------------------------- chroma server
CHROMA = Path(sys.executable).with_name("chroma")


class ChromaServer:
    def __init__(self, data: Path, log: Path):
        self.host, self.port = "127.0.0.1", free_port()
        self.log = log
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        self._log_file = open(log, "wb")
        self.process = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(data), "--host", self.host, "--port", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait_ready(self, deadline_s: float = 60.0) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        deadline = time.monotonic() + deadline_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.process.returncode}: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                chromadb.HttpClient(
                    host=self.host, port=self.port, settings=ChromaSettings(anonymized_telemetry=False)
                ).heartbeat()
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.25)
        raise RuntimeError(f"chroma run did not answer within {deadline_s:.0f} s ({last}): {self.log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        self._log_file.close()


# --------------------------------------------------------------------------- CLI
def cli_env() -> dict[str, str]:
    from tests.conftest import without_user_overrides

    env = without_user_overrides(dict(os.environ))
    env["ANONYMIZED_TELEMETRY"] = "False"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def ingest_until_first_batch(cwd: Path, *args: str) -> tuple[subprocess.Popen, bytes]:
    """Start `assistant ingest --progress ARGS` in ``cwd``; return (the process, its stderr so far)
    once it has written a batch (the progress bar shows chunks=N). Its stderr is blocking again."""
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "ingest", "--progress", *map(str, args)],
        cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    stderr = b""
    os.set_blocking(process.stderr.fileno(), False)
    deadline = time.monotonic() + 600
    while b"chunks=" not in stderr and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        stderr += process.stderr.read() or b""
    os.set_blocking(process.stderr.fileno(), True)
    assert b"chunks=" in stderr, f"no batch was written: {stderr.decode(errors='replace')[-2000:]}"
    return process, stderr


def write_jsonl_gz(path: Path, records: list[dict]) -> Path:
    path.write_bytes(gzip.compress("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")))
    return path


def run_cli(
    cwd: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess:
    """``python -m assistant.cli ARGS`` in ``cwd`` (whose config.yaml it reads); ``env``: added
    variables; ``input``: what is typed (stdin)."""
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *map(str, args)],
        cwd=cwd,
        env={**cli_env(), **(env or {})},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        input=input,
    )
