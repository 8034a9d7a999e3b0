"""Chats belong to their owner: another user's chat is "not found" (404), never "forbidden"
(docs/api.md#authentication), and their requests change nothing.

The server runs with ``multi_user`` and an identity provider that knows two users, "alice" and
"bob", who authenticate with ``Authorization: token alice`` / ``token bob``. A header token keeps
the request token-authenticated, so XSRF checks stay on and are satisfied as for any API client.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web
from tornado.httpclient import HTTPClientError

USERS = ("alice", "bob")


class TwoUserIdentityProvider(IdentityProvider):
    """``token alice`` / ``token bob`` -> that user; the server token -> user "server".

    Overrides the token lookup only: jupyter_server's own ``get_user`` then marks the request
    token-authenticated (no XSRF check) exactly as for its stock token.
    """

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        match = self.auth_header_pat.match(handler.request.headers.get("Authorization", ""))
        token = match.group(2).strip() if match else ""
        if token in USERS or (token and token == self.token):
            name = token if token in USERS else "server"
            return User(username=name, name=name, display_name=name)
        return None


@pytest.fixture
def coderchat_config(coderchat_config: dict[str, Any]) -> dict[str, Any]:
    return {**coderchat_config, "multi_user": True}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    server = {**jp_server_config["ServerApp"], "identity_provider_class": TwoUserIdentityProvider}
    return {**jp_server_config, "ServerApp": server}


def as_user(name: str) -> dict[str, str]:
    return {"Authorization": f"token {name}"}


async def db_rows(app: Any) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with app.services.db.read() as conn:
        for table in ("chats", "chat_messages", "chat_queued_messages"):
            rows = await conn.fetchall(f"SELECT * FROM {table} ORDER BY 1")
            out[table] = [tuple(r) for r in rows]
    return out


async def alice_chat(api: Any) -> dict[str, Any]:
    """A waiting chat of alice's with one answered message."""
    chat = await api.ok(
        "POST",
        "chats",
        {"content": [{"type": "text", "text": "secret plans"}]},
        headers=as_user("alice"),
    )
    assert chat["owner"] == "alice"
    deadline = time.monotonic() + 10
    while chat["status"] != "waiting":
        assert time.monotonic() < deadline, f"alice's chat stayed {chat['status']}"
        await asyncio.sleep(0.02)
        chat = await api.ok("GET", f"chats/{chat['id']}", headers=as_user("alice"))
    return chat


ENDPOINTS = [
    pytest.param("GET", "chats/{id}", None, id="get"),
    pytest.param("PATCH", "chats/{id}", {"title": "mine now"}, id="rename"),
    pytest.param("PATCH", "chats/{id}", {"archived": True}, id="archive"),
    pytest.param("GET", "chats/{id}/messages", None, id="list-messages"),
    pytest.param(
        "POST", "chats/{id}/messages", {"content": [{"type": "text", "text": "hi"}]}, id="send"
    ),
    pytest.param(
        "PATCH",
        "chats/{id}/messages/{mid}",
        {"content": [{"type": "text", "text": "edited"}]},
        id="edit",
    ),
    pytest.param("DELETE", "chats/{id}/queue/1", None, id="delete-queued"),
    pytest.param("POST", "chats/{id}/queue/1/promote", None, id="promote"),
    pytest.param("POST", "chats/{id}/interrupt", None, id="interrupt"),
    pytest.param(
        "POST",
        "chats/{id}/tool-results",
        {"results": [{"tool_call_id": "c", "output": 1}]},
        id="tool-results",
    ),
    pytest.param("POST", "chats/{id}/title/regenerate", None, id="regenerate-title"),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_another_users_chat_is_not_found(
    api: Any, app: Any, method: str, path: str, body: Any
) -> None:
    chat = await alice_chat(api)
    page = await api.ok("GET", f"chats/{chat['id']}/messages", headers=as_user("alice"))
    mid = page["messages"][-1]["id"]
    before = await db_rows(app)
    code, error = await api(
        method, path.format(id=chat["id"], mid=mid), body, headers=as_user("bob")
    )
    assert code == 404, error
    assert error["message"] == "Chat not found."
    assert await db_rows(app) == before
    assert (await api.ok("GET", f"chats/{chat['id']}", headers=as_user("alice"))) == chat


async def test_another_users_stream_is_not_found(api: Any, jp_ws_fetch: Any) -> None:
    chat = await alice_chat(api)
    with pytest.raises(HTTPClientError) as caught:
        await jp_ws_fetch("api", "coderchat", "chats", chat["id"], "stream", headers=as_user("bob"))
    assert caught.value.code == 404
    assert caught.value.response is not None
    assert json.loads(caught.value.response.body)["message"] == "Chat not found."
    ws = await jp_ws_fetch(
        "api", "coderchat", "chats", chat["id"], "stream", headers=as_user("alice")
    )
    ws.close()


async def test_chat_lists_show_only_own_chats(api: Any) -> None:
    chat = await alice_chat(api)
    bobs = await api.ok(
        "POST", "chats", {"content": [{"type": "text", "text": "bob"}]}, headers=as_user("bob")
    )
    assert bobs["owner"] == "bob"
    alice_ids = [c["id"] for c in await api.ok("GET", "chats", headers=as_user("alice"))]
    bob_ids = [c["id"] for c in await api.ok("GET", "chats", headers=as_user("bob"))]
    assert alice_ids == [chat["id"]]
    assert bob_ids == [bobs["id"]]
    assert await api.ok("GET", "chats", params={"archived": "true"}, headers=as_user("bob")) == []
