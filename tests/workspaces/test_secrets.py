"""No secret reaches the model (issue 11, item 1): a workspace kernel starts without the
server's provider keys and token, and whatever a kernel can still read (an attached notebook
kernel has the server's whole environment; any kernel may read a file holding a key) is
redacted before it is published, persisted or sent to a provider.

Real parts: the Jupyter server, workspace and notebook kernels, the Anthropic SDK talking to
the fake provider server, whose script makes the model run the leaking commands."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.chatd.secrets import REDACTED
from coderchat_ext.providers.fake import FakeProviderServer
from coderchat_ext.providers.scripted import ScriptedModel
from coderchat_ext.workspaces.templates import template_id_for
from tests.conftest import Api
from tests.workspaces.helpers import wait_build, wait_chat, write_template

ENV_KEY = "sk-ant-api03-" + secrets.token_urlsafe(32)
"""The Anthropic key, in the server's environment (``ANTHROPIC_API_KEY``)."""
CONFIG_KEY = "sk-proj-" + secrets.token_urlsafe(32)
"""The OpenAI key, only in ``c.CoderChatApp.providers`` (and, under an innocent name, in an
environment variable a template asks to pass through)."""
MODEL = "claude-sonnet-5-5"

LEAKS = [
    ("execute", {"command": "env"}),
    ("execute", {"command": "cat /proc/self/environ /proc/$PPID/environ | tr '\\0' '\\n'"}),
    ("execute", {"command": "python -c 'import os; print(dict(os.environ))'; cat notes.txt"}),
    ("read_file", {"path": "notes.txt"}),
]
"""The model's tool calls: the environment of the command and of the kernel that runs it, and
a file holding the keys."""


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def coderchat_config(
    tmp_path: Path, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("SHARED_SETTING", CONFIG_KEY)
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    templates = tmp_path / "templates"
    write_template(
        templates / "sealed",
        """
        name = "sealed"
        env_passthrough = ["SHARED_SETTING", "PLAIN_*"]
        init = "env; cat /proc/self/environ | tr '\\\\0' '\\\\n'"
        """,
    )
    write_template(templates / "attachable", 'name = "attachable"\nexternal = true\n')
    return {
        "db_path": str(tmp_path / "coderchat" / "coderchat.db"),
        "seed_default_models": False,
        "providers": {"openai": {"api_key": CONFIG_KEY, "base_url": fake.openai_base_url}},
        "model_configs": [
            {"provider": "anthropic", "model": MODEL, "context_limit": 100_000, "is_default": True}
        ],
        "template_paths": [str(templates)],
        "acquire_interval": 0.05,
    }


@pytest.fixture(autouse=True)
def titles_in_process(app: Any) -> None:
    """Titles come from an in-process echo model, so the fake server's queue of turns is
    consumed by chat steps only."""
    echo = ScriptedModel({"default": {"echo": True}})
    for name, factory in list(app.services.catalog.factories.items()):
        app.services.catalog.factories[name] = lambda c, r, p, f=factory: (
            echo if p == "title" else f(c, r, p)
        )


async def leaking_turn(
    api: Api, fake: FakeProviderServer, workspace: dict[str, Any], folder: Path, token: str
) -> list[str]:
    """Put a file holding the secrets in the workspace folder, then have the model run
    :data:`LEAKS` there; returns each tool result as JSON text, in call order."""
    (folder / "notes.txt").write_text(f"anthropic={ENV_KEY}\nopenai={CONFIG_KEY}\n{token}\n")
    calls = [
        {"id": f"toolu_{secrets.token_hex(8)}", "name": name, "arguments": args}
        for name, args in LEAKS
    ]
    fake.push({"tool_calls": calls}, {"text": "Done."})
    chat = await api.ok(
        "POST", "chats", {"content": "Look around.", "workspace_id": workspace["id"]}
    )
    finished = await wait_chat(api, chat["id"], timeout=120)
    assert finished["status"] == "waiting", finished.get("last_error")
    results = {
        part["tool_call_id"]: part
        for message in await api.messages(chat["id"])
        for part in message["content"]
        if part["type"] == "tool-result"
    }
    for call in calls:
        assert not results[call["id"]].get("is_error"), results[call["id"]]
    return [json.dumps(results[call["id"]]["result"]) for call in calls]


async def create_workspace(api: Api, template: str) -> dict[str, Any]:
    workspace = await api.ok(
        "POST", "workspaces", {"template_id": template_id_for("default", template)}
    )
    built = await wait_build(api, workspace["id"], timeout=120)
    assert built["latest_build"]["job"]["status"] == "succeeded", built["latest_build"]
    return built


async def test_no_secret_reaches_the_model_from_a_workspace_or_an_attached_kernel(
    app: Any,
    api: Api,
    jp_fetch: Any,
    jp_root_dir: Path,
    fake: FakeProviderServer,
    published: list[tuple[str, Any]],
) -> None:
    token = app.serverapp.identity_provider.token
    assert len(token) >= 16
    secret_values = {"ANTHROPIC_API_KEY": ENV_KEY, "openai key": CONFIG_KEY, "token": token}

    # A workspace kernel: none of the server's secrets is in its environment, not even under
    # a name the template passes through; what it reads from a file is redacted.
    sealed = await create_workspace(api, "sealed")
    env, environ, printed, read = await leaking_turn(
        api, fake, sealed, jp_root_dir / sealed["directory"], token
    )
    for output in (env, environ, printed):
        for name in ("ANTHROPIC_", "OPENAI_", "CODERCHAT_TOKEN", "CODERCHAT_URL", "SHARED_"):
            assert name not in output, (name, output)
        assert "PLAIN_SETTING=visible" in output or "'PLAIN_SETTING': 'visible'" in output
    assert "CODERCHAT_WORKSPACE_ID" in env
    assert read.count(REDACTED) == 3, read

    # A notebook kernel attached to a workspace has the server's whole environment: the
    # values are redacted from every output.
    attachable = await create_workspace(api, "attachable")
    response = await jp_fetch(
        "api",
        "kernels",
        method="POST",
        body=json.dumps({"name": "python3", "path": attachable["directory"]}),
    )
    kernel_id = json.loads(response.body)["id"]
    try:
        await api.ok("POST", f"workspaces/{attachable['id']}/attach", {"kernel_id": kernel_id})
        env, environ, printed, read = await leaking_turn(
            api, fake, attachable, jp_root_dir / attachable["directory"], token
        )
    finally:
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    assert f"ANTHROPIC_API_KEY={REDACTED}" in env, env
    assert f"CODERCHAT_TOKEN={REDACTED}" in env, env
    assert f"ANTHROPIC_API_KEY={REDACTED}" in environ, environ
    assert f"'ANTHROPIC_API_KEY': '{REDACTED}'" in printed, printed
    assert read.count(REDACTED) == 3, read

    # Nowhere: the stream and watch events, what the provider was sent, the database (every
    # message, every build log), the messages the API serves.
    assert len(fake.requests) == 4
    haystacks = {
        "stream and watch events": json.dumps(published),
        "provider requests": json.dumps([r.redacted() for r in fake.requests])
        + "".join(r.body.decode() for r in fake.requests),
    }
    database = Path(app.services.db.path)
    for path in (database, database.with_name(database.name + "-wal")):
        if path.exists():
            haystacks[path.name] = path.read_bytes().decode("utf-8", "replace")
    assert REDACTED in haystacks["provider requests"]
    assert any(
        "result_delta" in json.dumps(message) and REDACTED in json.dumps(message)
        for _, message in published
    ), "no redacted result_delta was streamed"
    for where, text in haystacks.items():
        for name, value in secret_values.items():
            assert value not in text, f"{name} found in {where}"
