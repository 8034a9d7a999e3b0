"""Driving the fake provider server from another process: its HTTP control API and the
``coderchat fake-llm`` command."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from coderchat_ext.providers.fake import FakeProviderServer

MESSAGES = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}
STARTUP_DEADLINE = 30.0


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


def test_control_push_queues_turns_for_the_next_requests(server: FakeProviderServer) -> None:
    pushed = httpx.post(server.url + "/_fake/push", json={"turns": [{"text": "a"}, {"text": "b"}]})
    single = httpx.post(server.url + "/_fake/push", json={"status": 429, "retry_after": 2})

    answers = [httpx.post(server.url + "/v1/messages", json=MESSAGES) for _ in range(3)]

    assert pushed.json() == {"ok": True, "pending": 2}
    assert single.json() == {"ok": True, "pending": 3}
    assert [r.json()["content"][0]["text"] for r in answers[:2]] == ["a", "b"]
    assert answers[2].status_code == 429
    assert answers[2].headers["retry-after"] == "2"


def test_control_script_replaces_the_script_and_refuses_invalid_ones(
    server: FakeProviderServer,
) -> None:
    bad = httpx.post(server.url + "/_fake/script", json={"turns": [{"texts": "x"}]})
    good = httpx.post(server.url + "/_fake/script", json={"default": {"text": "scripted"}})

    answer = httpx.post(server.url + "/v1/messages", json=MESSAGES)

    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_script"
    assert "turns[0].texts: Extra inputs are not permitted" in bad.json()["error"]["message"]
    assert good.status_code == 200
    assert answer.json()["content"][0]["text"] == "scripted"


def test_control_replay_queues_a_file(server: FakeProviderServer, tmp_path: Path) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(b'{"error": {"message": "nope", "type": "server_error"}}')
    queued = httpx.post(server.url + "/_fake/replay", json={"path": str(path), "status": 503})
    missing = httpx.post(server.url + "/_fake/replay", json={"path": str(tmp_path / "none")})

    answer = httpx.post(server.openai_base_url + "/chat/completions", json=MESSAGES)

    assert queued.status_code == 200
    assert missing.status_code == 400
    assert "cannot read replay file" in missing.json()["error"]["message"]
    assert (answer.status_code, answer.content) == (503, path.read_bytes())


def test_control_requests_lists_requests_with_credentials_redacted(
    server: FakeProviderServer,
) -> None:
    secret = "sk-live-very-secret"
    httpx.post(server.url + "/v1/messages", json=MESSAGES, headers={"x-api-key": secret})
    httpx.post(
        server.openai_base_url + "/responses",
        json={"model": "m", "input": "hi"},
        headers={"authorization": f"Bearer {secret}"},
    )

    listed = httpx.get(server.url + "/_fake/requests")

    assert secret not in listed.text
    first, second = listed.json()
    assert (first["path"], first["wire"], first["json"]) == ("/v1/messages", "anthropic", MESSAGES)
    assert first["headers"]["x-api-key"].startswith("[redacted sha256:")
    assert second["headers"]["authorization"].startswith("[redacted sha256:")
    # The same key gives the same fingerprint, so tests can still compare keys.
    assert server.requests[0].headers["x-api-key"] == secret


def test_control_reset_clears_the_queue_and_the_requests(server: FakeProviderServer) -> None:
    server.push({"text": "queued"})
    httpx.post(server.url + "/v1/messages", json=MESSAGES)
    server.push({"text": "queued again"})

    reset = httpx.post(server.url + "/_fake/reset")

    assert reset.json() == {"ok": True, "pending": 0}
    assert httpx.get(server.url + "/_fake/requests").json() == []


def test_unknown_routes_and_methods_get_json_errors(server: FakeProviderServer) -> None:
    missing = httpx.post(server.url + "/v1/completions", json=MESSAGES)
    wrong_method = httpx.get(server.url + "/_fake/push")
    get_messages = httpx.get(server.url + "/v1/messages")

    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    assert wrong_method.status_code == 405
    assert get_messages.status_code == 405
    assert get_messages.json()["error"]["message"] == "Method Not Allowed"
    assert server.requests == []


def test_a_second_start_is_refused_and_stop_is_idempotent() -> None:
    fake = FakeProviderServer().start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            fake.start()
    finally:
        fake.stop()
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(fake.url + "/v1/messages", json=MESSAGES)


def test_binding_a_busy_port_raises(server: FakeProviderServer) -> None:
    with pytest.raises(OSError, match="in use"):
        FakeProviderServer(port=server.port).start()


# --- coderchat fake-llm --------------------------------------------------------------------


def read_lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def wait_for_line(lines: queue.Queue[str], prefix: str, deadline: float) -> str:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no line starting with {prefix!r} in time")
        line = lines.get(timeout=remaining)
        if line.startswith(prefix):
            return line.strip()


def test_cli_fake_llm_serves_its_script_and_replays_until_interrupted(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"contains": "ping", "turn": {"text": "pong"}}]}))
    error_body = tmp_path / "overloaded.json"
    error_body.write_bytes(b'{"type":"error","error":{"type":"overloaded_error","message":"O"}}')
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "coderchat_ext.cli", "fake-llm", "--port", "0"),
            *("--script", str(script), "--replay", f"{error_body}:529"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        url = wait_for_line(lines, "coderchat fake-llm serving at ", deadline).rsplit(" ", 1)[1]
        openai_line = wait_for_line(lines, "  export OPENAI_BASE_URL=", deadline)
        body = {**MESSAGES, "messages": [{"role": "user", "content": "ping?"}]}

        replayed = httpx.post(url + "/v1/messages", json=body)
        scripted = httpx.post(url + "/v1/chat/completions", json=body)

        assert f"OPENAI_BASE_URL={url}/v1 " in openai_line
        assert (replayed.status_code, replayed.content) == (529, error_body.read_bytes())
        assert scripted.json()["choices"][0]["message"]["content"] == "pong"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STARTUP_DEADLINE) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_fake_llm_reports_an_invalid_script(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": [{"chunk_size": 0}]}))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    result = subprocess.run(
        [sys.executable, "-m", "coderchat_ext.cli", "fake-llm", "--script", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=STARTUP_DEADLINE,
    )

    assert result.returncode == 1
    assert "turns[0].chunk_size" in result.stderr
