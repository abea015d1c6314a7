"""Helpers for the integration tests: a fake Ollama server (the one process boundary we cannot run
here), a real `chroma run` server, free ports and the CLI as a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


DIM = 64
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
    """Speaks Ollama's wire protocol for ``POST /api/embed`` on 127.0.0.1 (a free port)."""

    def __init__(self, models: set[str]):
        self.models = set(models)
        self.requests: list[dict] = []  # every /api/embed request body, as parsed JSON
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _reply(self, status: int, payload: dict | str) -> None:
                body = (json.dumps(payload) if isinstance(payload, dict) else payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if isinstance(payload, dict) else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/api/embed":
                    self._reply(404, "404 page not found")
                    return
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError as exc:
                    self._reply(400, {"error": f"invalid JSON: {exc}"})
                    return
                with fake._lock:
                    fake.requests.append(body)
                model = body.get("model", "")
                if model not in fake.models:
                    self._reply(404, {"error": f'model "{model}" not found, try pulling it first'})
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def inputs(self) -> list[str]:
        """Every text the server was asked to embed."""
        with self._lock:
            out: list[str] = []
            for body in self.requests:
                texts = body.get("input", [])
                out.extend([texts] if isinstance(texts, str) else texts)
            return out

    def __enter__(self) -> "FakeOllama":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


FAKE_MODEL = "fake-embed"


def ollama_overrides(host: str, model: str = FAKE_MODEL, **embedding) -> dict:
    return {"embedding": {"provider": "ollama", "ollama": {"host": host, "model": model, "request_timeout": 30}, **embedding}}


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ANONYMIZED_TELEMETRY"] = "False"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run_cli(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m assistant.cli ARGS`` in ``cwd`` (whose config.yaml it reads)."""
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )
