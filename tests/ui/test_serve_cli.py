"""``assistant serve`` as a subprocess: it starts on the embedded model and serves the page, and it
refuses to listen beyond loopback without a login."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.helpers import cli_env, free_port

from .helpers import wait_http

ASSISTANT = Path(sys.executable).with_name("assistant")


def serve(cwd: Path, *args: str, log: Path) -> subprocess.Popen:
    env = cli_env() | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    with log.open("wb") as out:  # a file, not a pipe: a chatty server must never block on it
        return subprocess.Popen([str(ASSISTANT), "--config", str(cwd / "config.yaml"), "serve", *args],
                                cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.mark.slow
def test_serve_starts_on_the_embedded_model_and_serves_the_page(seeded_settings_factory, tmp_path):
    seeded_settings_factory(llm={"provider": "embedded"})
    port, log = free_port(), tmp_path / "serve.log"
    process = serve(tmp_path, "--port", str(port), log=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/", deadline_s=300, process=process)
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200
            assert "Arabic news assistant" in response.read().decode("utf-8")
        # The HTTP API is served on the same port (README "HTTP API").
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=30) as response:
            assert json.loads(response.read())["index"]["documents"] == 5  # the seeds
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as response:
            assert [m["id"] for m in json.loads(response.read())["data"]] == ["arabic-news-assistant"]
        # The model loads in the background, after the page is already served.
        deadline = time.monotonic() + 300
        while "language model:" not in log.read_text(encoding="utf-8", errors="replace") and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            time.sleep(0.5)
    finally:
        stop(process)
    output = log.read_text(encoding="utf-8", errors="replace")
    assert "language model: embedded:" in output and "(loaded)" in output, output
    assert f"Serving on http://127.0.0.1:{port}" in output, output
    assert "Traceback" not in output, output


def test_serve_beyond_loopback_without_login_is_refused(config_factory, tmp_path):
    config_factory()
    log = tmp_path / "serve.log"
    process = serve(tmp_path, "--host", "0.0.0.0", "--port", str(free_port()), log=log)
    try:
        assert process.wait(timeout=120) == 1
    finally:
        stop(process)
    output = log.read_text(encoding="utf-8")
    assert "without a login" in output and "ASSISTANT_UI__USERNAME" in output, output
    assert "Traceback" not in output, output
