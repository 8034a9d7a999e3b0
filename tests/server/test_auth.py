"""Every coderchat endpoint refuses callers without credentials, with wrong credentials and
callers the authorizer denies, on every route of the handler tables and every HTTP verb;
cookie-authenticated writes need the XSRF header; WebSocket upgrades from another origin are
refused; and every verb is decorated so that Jupyter's own authentication check covers it
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
EVERY_VERB = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
UNSAFE_VERBS = ("POST", "PUT", "PATCH", "DELETE")
REFUSED = (401, 403)
NO_CREDENTIALS = {"Authorization": ""}
WRONG_CREDENTIALS = [
    pytest.param({"Authorization": "token not-the-token"}, id="wrong-token"),
    pytest.param({"Authorization": "Bearer not-the-token"}, id="wrong-bearer"),
    pytest.param(
        {"Authorization": "", "Cookie": "username-forged=2|1:0|10:1|x"}, id="forged-cookie"
    ),
]
EVIL_ORIGIN = "http://evil.example"
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
    # The default name depends on the Host header, which jp_fetch and jp_ws_fetch spell apart.
    jp_server_config["IdentityProvider"] = {"cookie_name": "coderchat-test-login"}
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


def every_route() -> list[tuple[str, bool]]:
    """``(path, is_websocket)`` of every route of both handler tables, random UUIDs for ids."""
    return [(_with_random_ids(pattern), False) for pattern, _ in rest_handlers()] + [
        (path, True) for path in ws_endpoints()
    ]


def expected_without_credentials(verb: str, websocket: bool) -> int:
    """What a caller without valid credentials gets: 403 for every verb of every route, but
    405 for TRACE (tornado refuses a verb it does not serve before anyone is authenticated)
    and 200 for OPTIONS of a REST route (Jupyter's CORS preflight, allowed unauthenticated,
    with an empty body)."""
    if verb == "TRACE":
        return 405
    if verb == "OPTIONS" and not websocket:
        return 200
    return 403


async def answer_of(fetch: Fetch, verb: str, path: str, **kwargs: Any) -> HTTPResponse:
    """The response to ``verb path`` (errors included), without following redirects."""
    body = b"{}" if verb in ("POST", "PUT", "PATCH") else None
    if "headers" in kwargs:
        kwargs["headers"] = dict(kwargs["headers"])
    try:
        return await fetch(
            *path.split("/"),
            method=verb,
            body=body,
            follow_redirects=False,
            allow_nonstandard_methods=True,
            **kwargs,
        )
    except HTTPClientError as exc:
        if exc.response is None:
            raise
        return exc.response


async def sweep(fetch: Fetch, headers: dict[str, str]) -> dict[tuple[str, str], int]:
    """``(VERB, path) -> status`` of every route and verb whose answer is not the expected
    refusal, or that leaks a body on OPTIONS."""
    unexpected: dict[tuple[str, str], int] = {}
    for path, websocket in every_route():
        for verb in EVERY_VERB:
            response = await answer_of(fetch, verb, path, headers=headers)
            leaks = verb == "OPTIONS" and response.code == 200 and bool(response.body)
            if response.code != expected_without_credentials(verb, websocket) or leaks:
                unexpected[(verb, path)] = response.code
    return unexpected


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


async def test_every_route_and_verb_refuses_requests_without_credentials(
    jp_fetch: Fetch, app: Any
) -> None:
    assert await sweep(jp_fetch, NO_CREDENTIALS) == {}


@pytest.mark.parametrize("headers", WRONG_CREDENTIALS)
async def test_every_route_and_verb_refuses_wrong_credentials(
    jp_fetch: Fetch, app: Any, headers: dict[str, str]
) -> None:
    assert await sweep(jp_fetch, headers) == {}


async def _login_cookie(fetch: Fetch) -> str:
    response = await fetch("api", "coderchat", "info")
    return str(response.headers["Set-Cookie"].split(";", 1)[0])


@pytest.mark.parametrize(
    "xsrf",
    [
        pytest.param({}, id="no-xsrf"),
        pytest.param({"X-XSRFToken": "c0ffee"}, id="header-without-cookie"),
        pytest.param({"X-XSRFToken": "c0ffee", "_xsrf": "decaf"}, id="header-not-the-cookie"),
    ],
)
async def test_every_unsafe_verb_with_cookie_auth_needs_the_matching_xsrf_header(
    jp_fetch: Fetch, app: Any, xsrf: dict[str, str]
) -> None:
    cookie = await _login_cookie(jp_fetch)
    if "_xsrf" in xsrf:
        cookie += f"; _xsrf={xsrf.pop('_xsrf')}"
    headers = {**NO_CREDENTIALS, "Cookie": cookie, **xsrf}
    statuses = {
        (verb, path): (await answer_of(jp_fetch, verb, path, headers=headers)).code
        for path, _ in every_route()
        for verb in UNSAFE_VERBS
    }
    assert {key: code for key, code in statuses.items() if code != 403} == {}


async def test_websocket_upgrades_from_another_origin_are_refused_with_cookie_auth(
    jp_fetch: Fetch, jp_ws_fetch: WsFetch, jp_http_port: int, api: Any
) -> None:
    """A login cookie is ambient (a page of another site can make the browser send it), so a
    cross-origin upgrade is refused before anything is opened; a token is not, and Jupyter
    skips the origin check for token-authenticated requests."""
    chat = await api.ok("POST", "chats", {"content": "Hello"})
    await api.wait_status(chat["id"], "waiting")
    cookie = {**NO_CREDENTIALS, "Cookie": await _login_cookie(jp_fetch)}
    paths = {
        "chats/watch": {},
        f"chats/{chat['id']}/stream": {},
        f"jobs/{uuid.uuid4()}/logs": {"follow": "1"},
    }
    assert len(paths) == len(ws_handlers())
    for path, params in paths.items():
        with pytest.raises(HTTPClientError) as refused:
            await jp_ws_fetch(
                *f"api/coderchat/{path}".split("/"),
                headers={**cookie, "Origin": EVIL_ORIGIN},
                params=params,
            )
        assert refused.value.code == 403, path
        assert refused.value.response is not None
        body = json.loads(refused.value.response.body)
        assert body["message"] == "Cross origin websockets not allowed", path
    stream = f"api/coderchat/chats/{chat['id']}/stream"
    same_origin = {**cookie, "Origin": f"http://localhost:{jp_http_port}"}
    assert await ws_status_of(jp_ws_fetch, stream, headers=same_origin) == 101


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
