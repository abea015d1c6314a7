"""Fixtures for the integration tests: a fake Ollama server and a real `chroma run` server."""

from __future__ import annotations

import pytest

from .helpers import CHAT_MODEL, CHROMA, FAKE_MODEL, ChromaServer, FakeOllama


@pytest.fixture
def fake_ollama():
    """A fake Ollama on a free loopback port that knows only FAKE_MODEL."""
    with FakeOllama({FAKE_MODEL}) as server:
        yield server


@pytest.fixture
def fake_chat_ollama():
    """A fake Ollama on a free loopback port that has only the chat model CHAT_MODEL."""
    with FakeOllama({CHAT_MODEL}) as server:
        yield server


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `chroma run` server on a free port, terminated at the end of the module."""
    assert CHROMA.exists(), f"the chroma CLI is expected next to the interpreter: {CHROMA}"
    root = tmp_path_factory.mktemp("chroma-server")
    server = ChromaServer(root / "data", root / "chroma.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
