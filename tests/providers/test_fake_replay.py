"""Replay mode of the fake provider server: every recorded fixture is served byte for byte with
the status and content-type its SOURCES.md gives."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from coderchat_ext.providers.fake import FakeProviderServer, ScriptError

FIXTURES = Path(os.environ.get("CODERCHAT_FIXTURES", Path(__file__).parent / "fixtures"))
WIRE_PATHS = {
    "anthropic": "/v1/messages",
    "openai_chat": "/v1/chat/completions",
    "openai_responses": "/v1/responses",
}
REQUEST = {"model": "m", "max_tokens": 16, "messages": [], "stream": True}


def fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*/*") if p.suffix in (".sse", ".json"))


pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="provider fixtures not available")


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


@pytest.mark.parametrize(
    "path",
    [p for p in fixture_files() if not p.name.endswith(".expect.json")],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_replay_serves_the_fixture_byte_for_byte_with_its_status(
    server: FakeProviderServer, path: Path
) -> None:
    expect_file = path.with_name(path.stem + ".expect.json")
    status = json.loads(expect_file.read_text())["http_status"]
    server.replay(path, status=status)

    response = httpx.post(server.url + WIRE_PATHS[path.parent.name], json=REQUEST)

    assert response.status_code == status
    assert response.content == path.read_bytes()
    sse = path.suffix == ".sse"
    expected_type = "text/event-stream; charset=utf-8" if sse else "application/json"
    assert response.headers["content-type"] == expected_type


def test_replay_uses_the_given_content_type_and_headers(server: FakeProviderServer) -> None:
    path = FIXTURES / "anthropic" / "error_429_rate_limit.json"
    server.replay(
        path,
        status=429,
        content_type="application/json; charset=utf-8",
        headers={"x-should-retry": "true", "retry-after": "7"},
    )

    response = httpx.post(server.url + "/v1/messages", json=REQUEST)

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["x-should-retry"] == "true"
    assert response.headers["retry-after"] == "7"
    assert response.content == path.read_bytes()


def test_replays_are_served_in_queue_order_then_the_script_answers(
    server: FakeProviderServer,
) -> None:
    first = FIXTURES / "openai_chat" / "text_usage.sse"
    second = FIXTURES / "openai_chat" / "tool_calls_parallel.sse"
    server.replay(first)
    server.replay(second)

    bodies = [
        httpx.post(server.openai_base_url + "/chat/completions", json=REQUEST).content
        for _ in range(3)
    ]

    assert bodies[:2] == [first.read_bytes(), second.read_bytes()]
    assert b"[DONE]" in bodies[2]
    assert server.pending == 0


def test_replay_of_a_missing_file_fails_at_once(server: FakeProviderServer, tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"cannot read replay file .*missing\.sse"):
        server.replay(tmp_path / "missing.sse")
    assert server.pending == 0


def test_replay_freezes_the_bytes_when_queued(server: FakeProviderServer, tmp_path: Path) -> None:
    path = tmp_path / "stream.sse"
    path.write_bytes(b"data: one\n\n")
    server.replay(path)
    path.write_bytes(b"data: two\n\n")

    response = httpx.post(server.url + "/v1/messages", json=REQUEST)

    assert response.content == b"data: one\n\n"
