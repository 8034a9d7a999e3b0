"""A fresh install: no key anywhere, so the offline demo model is what chats use, clearly
labelled; adding a real provider brings its known models and makes one the default."""

from __future__ import annotations

from typing import Any

import pytest

from coderchat_ext.providers.known_models import DEMO_MODEL, known_models


@pytest.fixture
def coderchat_config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return {"db_path": str(tmp_path / "coderchat" / "coderchat.db"), "acquire_interval": 0.05}


async def test_a_fresh_install_defaults_to_the_labelled_offline_demo_model(api: Any) -> None:
    models = await api.ok("GET", "models")
    demo = next(p for p in models["providers"] if p["provider"] == "demo")
    assert demo["available"] is True
    assert demo["display_name"] == "Offline demo model"
    assert [m["model"] for m in demo["models"]] == [DEMO_MODEL]
    assert demo["models"][0]["is_default"] is True
    assert demo["models"][0]["display_name"] == "Offline demo model"
    anthropic = next(p for p in models["providers"] if p["provider"] == "anthropic")
    assert anthropic == {
        "provider": "anthropic",
        "display_name": "Anthropic",
        "available": False,
        "models": [],
        "unavailable_reason": "missing_api_key",
    }
    info = await api.ok("GET", "info")
    assert info["real_provider_configured"] is False
    assert info["default_model"]["provider"] == "demo"


async def test_without_workspace_tools_the_demo_model_answers_with_provider_guidance(
    api: Any, app: Any
) -> None:
    app.services.tools.unregister("create_workspace")
    chat = await api.ok("POST", "chats", {"content": "hello there"})
    done = await api.wait_status(chat["id"], "waiting", "error")
    assert done["status"] == "waiting", done.get("last_error")
    messages = await api.messages(chat["id"])
    assert [m["role"] for m in messages] == ["user", "assistant"]
    text = messages[-1]["content"][0]["text"]
    assert "offline demo model" in text
    assert "ANTHROPIC_API_KEY" in text
    # The answer came through the real SDK from the demo's loopback server.
    (request,) = [r for r in app.services.demo.server.requests if r.path == "/v1/messages"]
    assert request.json["model"] == DEMO_MODEL
    assert request.json["messages"][-1]["content"][-1]["text"].endswith("hello there")


async def test_the_demo_model_runs_a_real_agent_session_in_a_new_workspace(
    api: Any, app: Any
) -> None:
    chat = await api.ok("POST", "chats", {"content": "show me what you can do"})
    done = await api.wait_status(chat["id"], "waiting", "error", timeout=90)
    assert done["status"] == "waiting", done.get("last_error")
    assert done["workspace_id"]
    messages = await api.messages(chat["id"])
    roles = [m["role"] for m in messages]
    assert roles == ["user"] + ["assistant", "tool"] * 3 + ["assistant"]
    results = {
        part["tool_name"]: part
        for m in messages
        if m["role"] == "tool"
        for part in m["content"]
        if part["type"] == "tool-result"
    }
    assert set(results) == {"create_workspace", "write_file", "execute"}
    assert not any(r.get("is_error") for r in results.values()), results
    assert results["create_workspace"]["result"]["created"] is True
    output = results["execute"]["result"]
    assert output["exit_code"] == 0
    assert "Hello from Python" in output["output"]
    assert "Squares: [1, 4, 9, 16, 25]" in output["output"]
    final = messages[-1]["content"][-1]["text"]
    assert "real agent session" in final
    assert "ANTHROPIC_API_KEY" in final
    workspace = await api.ok("GET", f"workspaces/{done['workspace_id']}")
    await api.ok("POST", f"workspaces/{workspace['id']}/builds", {"transition": "stop"})


async def test_adding_a_provider_seeds_its_known_models_and_takes_over_the_default(
    api: Any, app: Any
) -> None:
    await api.ok("POST", "providers", {"provider": "anthropic", "api_key": "sk-ant-new"})
    configs = await api.ok("GET", "model-configs")
    anthropic = [c for c in configs if c["provider"] == "anthropic"]
    assert {c["model"] for c in anthropic} == {m.model for m in known_models("anthropic")}
    (default,) = [c for c in configs if c["is_default"]]
    assert (default["provider"], default["model"]) == ("anthropic", "claude-sonnet-5-5")
    cost = default["model_config"]["cost"]
    assert cost["input_price_per_million_tokens"] == 2
    assert cost["cache_read_price_per_million_tokens"] == 0.2
    assert default["context_limit"] == 1_000_000
    assert any(c["provider"] == "demo" for c in configs)
    assert "sk-ant-new" not in str(configs)

    # Seeding happens once: a config the administrator deleted is not created again.
    await api.ok("DELETE", f"model-configs/{anthropic[1]['id']}")
    assert await app.services.settings.seed_model_configs() == []
    remaining = [c["model"] for c in await api.ok("GET", "model-configs")]
    assert anthropic[1]["model"] not in remaining
