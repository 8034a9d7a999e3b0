"""Every coderchat endpoint refuses callers without credentials and callers the authorizer
denies, and every verb is decorated so that Jupyter's own authentication check covers it
(docs/api.md#authentication)."""

from __future__ import annotations

import json
import re
import uuid
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.utils import JupyterServerAuthWarning
from tornado.httpclient import HTTPClientError, HTTPResponse
from tornado.websocket import WebSocketClientConnection

from coderchat_ext.server.handlers import rest_handlers
from coderchat_ext.server.ws import ws_handlers

VERBS = ("get", "post", "put", "patch", "delete")
REFUSED = (401, 403)
NO_CREDENTIALS = {"Authorization": ""}
_GROUP = re.compile(r"\((?:[^()\\]|\\.)*\)")
Fetch = Callable[..., Awaitable[HTTPResponse]]
WsFetch = Callable[..., Awaitable[WebSocketClientConnection]]


class DenyEverything(Authorizer):
    """An authorizer that refuses every action on every resource."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return False


@pytest.fixture
def authorizer_class() -> type[Authorizer] | None:
    """The server's ``ServerApp.authorizer_class``; ``None`` keeps Jupyter's default. Tests
    parametrize it."""
    return None


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], authorizer_class: type[Authorizer] | None
) -> dict[str, Any]:
    if authorizer_class is not None:
        jp_server_config["ServerApp"]["authorizer_class"] = authorizer_class
    return jp_server_config


def _with_random_ids(pattern: str) -> str:
    return _GROUP.sub(lambda _: str(uuid.uuid4()), pattern)


def rest_endpoints() -> list[tuple[str, str]]:
    """``(VERB, path)`` for every route of ``rest_handlers()`` and every verb its handler class
    defines itself, with a random UUID for each path parameter."""
    return [
        (verb.upper(), _with_random_ids(pattern))
        for pattern, handler in rest_handlers()
        for verb in VERBS
        if verb in vars(handler)
    ]


def ws_endpoints() -> list[str]:
    """The path of every route of ``ws_handlers()``, with random UUIDs for its parameters."""
    return [_with_random_ids(pattern) for pattern, _ in ws_handlers()]


async def status_of(fetch: Fetch, verb: str, path: str, **kwargs: Any) -> int:
    """The status ``verb path`` answers with, without following redirects."""
    body = b"{}" if verb in ("POST", "PUT", "PATCH") else None
    if "headers" in kwargs:
        kwargs["headers"] = dict(kwargs["headers"])
    try:
        response = await fetch(
            *path.split("/"), method=verb, body=body, follow_redirects=False, **kwargs
        )
    except HTTPClientError as exc:
        return exc.code
    return response.code


async def refusals(fetch: Fetch, **kwargs: Any) -> dict[tuple[str, str], int]:
    """``(VERB, path) -> status`` of every REST endpoint that did not refuse the request."""
    statuses = {
        (verb, path): await status_of(fetch, verb, path, **kwargs)
        for verb, path in rest_endpoints()
    }
    return {key: status for key, status in statuses.items() if status not in REFUSED}


async def ws_status_of(ws_fetch: WsFetch, path: str, **kwargs: Any) -> int:
    """The HTTP status a WebSocket upgrade of ``path`` answers with (101 when it opens)."""
    try:
        socket = await ws_fetch(*path.split("/"), **kwargs)
    except HTTPClientError as exc:
        return exc.code
    socket.close()
    return 101


def test_every_handler_verb_is_enumerated() -> None:
    endpoints = rest_endpoints()
    assert len(endpoints) == len(set(endpoints))
    assert ("POST", "api/coderchat/chats") in endpoints
    assert {verb for verb, _ in endpoints} == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    assert len(ws_endpoints()) == 3


async def test_rest_endpoints_refuse_requests_without_credentials(
    jp_fetch: Fetch, app: Any
) -> None:
    assert await refusals(jp_fetch, headers=NO_CREDENTIALS) == {}


async def test_rest_endpoints_refuse_a_wrong_token(jp_fetch: Fetch, app: Any) -> None:
    assert await refusals(jp_fetch, headers={"Authorization": "token not-the-token"}) == {}


async def test_websockets_refuse_the_upgrade_without_credentials(
    jp_ws_fetch: WsFetch, api: Any
) -> None:
    chat = await api.ok("POST", "chats", {"content": "Hello"})
    await api.wait_status(chat["id"], "waiting")
    paths = [*ws_endpoints(), f"api/coderchat/chats/{chat['id']}/stream"]
    statuses = {
        path: await ws_status_of(jp_ws_fetch, path, headers=NO_CREDENTIALS) for path in paths
    }
    assert {path: s for path, s in statuses.items() if s not in REFUSED} == {}
    assert await ws_status_of(jp_ws_fetch, paths[-1]) == 101


async def test_cookie_auth_needs_the_xsrf_header_to_write(
    jp_fetch: Fetch, app: Any, api: Any
) -> None:
    response = await jp_fetch("api", "coderchat", "info")
    login = response.headers["Set-Cookie"].split(";", 1)[0]
    cookie_only = {**NO_CREDENTIALS, "Cookie": login}
    body = '{"content": "Hello"}'
    assert await status_of(jp_fetch, "GET", "api/coderchat/chats", headers=cookie_only) == 200
    refused = await status_of(jp_fetch, "POST", "api/coderchat/chats", headers=cookie_only)
    assert refused == 403
    with_xsrf = {
        **NO_CREDENTIALS,
        "Cookie": f"{login}; _xsrf=c0ffee",
        "X-XSRFToken": "c0ffee",
    }
    created = await jp_fetch(
        "api", "coderchat", "chats", method="POST", body=body, headers=with_xsrf
    )
    assert created.code == 201
    await api.wait_status(json.loads(created.body)["id"], "waiting")


@pytest.mark.parametrize("authorizer_class", [DenyEverything])
async def test_a_denying_authorizer_refuses_every_endpoint_even_with_the_token(
    jp_fetch: Fetch, jp_ws_fetch: WsFetch, app: Any
) -> None:
    assert await refusals(jp_fetch) == {}
    statuses = {path: await ws_status_of(jp_ws_fetch, path) for path in ws_endpoints()}
    assert statuses == dict.fromkeys(statuses, 403)


@pytest.fixture
def startup_warnings(request: pytest.FixtureRequest) -> list[warnings.WarningMessage]:
    """The warnings emitted while the test server starts and registers its handlers."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        request.getfixturevalue("jp_serverapp")
    return caught


async def test_every_verb_is_decorated_so_jupyter_emits_no_auth_warning(
    startup_warnings: list[warnings.WarningMessage], jp_serverapp: Any
) -> None:
    # jupyter_server warns at registration, naming every verb without an auth decorator
    # ("- GET of ChatsHandler registered for ..."), since the test server disallows
    # unauthenticated access; the requests above check what the decorators do.
    assert jp_serverapp.web_app.settings["allow_unauthenticated_access"] is False
    names = {handler.__name__ for _, handler in [*rest_handlers(), *ws_handlers()]}
    auth_warnings = [
        str(w.message) for w in startup_warnings if issubclass(w.category, JupyterServerAuthWarning)
    ]
    assert not [m for m in auth_warnings if any(f" of {name} " in m for name in names)]
