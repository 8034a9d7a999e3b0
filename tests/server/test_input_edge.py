"""Input at the API's edge: integers past 64 bits, JSON that nests too deeply or holds a lone
surrogate, PUTs without a body, mistyped fields, unsupported verbs and plain GETs of WebSocket
paths are all refused with a documented 4xx in the error shape of docs/api.md#errors
(``{message, detail?, validations?}``), never a 500 or a text/html answer."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from coderchat_ext.server.handlers import rest_handlers
from coderchat_ext.server.ws import ws_handlers

HUGE = 2**64
"""Past SQLite's INTEGER range (the driver's binding overflows)."""
_GROUP = re.compile(r"\((?:[^()\\]|\\.)*\)")
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def assert_json_error(
    result: tuple[int, Any], status: int, message: str, field: str | None = None
) -> dict[str, Any]:
    """The body of a refused request; ``field`` must then be the one validation's field."""
    code, body = result
    assert code == status, body
    assert body["message"] == message, body
    if field is not None:
        assert [v["field"] for v in body["validations"]] == [field], body
        assert body["validations"][0]["detail"]
    return dict(body)


async def idle_chat(api: Any, text: str = "hello there") -> dict[str, Any]:
    chat = await api.ok("POST", "chats", {"content": [{"type": "text", "text": text}]})
    return dict(await api.wait_status(chat["id"], "waiting"))


# --- integers past 64 bits -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("chats", "offset"),
        ("chats", "limit"),
        ("chats/{id}/messages", "after_id"),
        ("chats/{id}/messages", "before_id"),
        ("chats/{id}/messages", "limit"),
    ],
)
async def test_query_integers_past_64_bits_are_invalid_parameters(
    api: Any, path: str, name: str
) -> None:
    chat = await idle_chat(api)
    result = await api("GET", path.format(id=chat["id"]), params={name: str(HUGE)})
    message = (
        "Invalid limit parameter (1-200)." if name == "limit" else f"Invalid {name} parameter."
    )
    assert_json_error(result, 400, message, name)


async def test_the_largest_row_id_is_still_a_valid_cursor(api: Any) -> None:
    chat = await idle_chat(api)
    page = await api.ok("GET", f"chats/{chat['id']}/messages", params={"before_id": str(2**63 - 1)})
    assert [m["role"] for m in page["messages"]] == ["assistant", "user"]


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("PATCH", "chats/{id}/messages/{n}", "Invalid chat message ID."),
        ("DELETE", "chats/{id}/queue/{n}", "Invalid queued message ID."),
        ("POST", "chats/{id}/queue/{n}/promote", "Invalid queued message ID."),
    ],
)
async def test_path_ids_past_64_bits_are_invalid_ids(
    api: Any, method: str, path: str, message: str
) -> None:
    chat = await idle_chat(api)
    body = {"content": "edited"} if method == "PATCH" else None
    result = await api(method, path.format(id=chat["id"], n=HUGE), body)
    assert_json_error(result, 400, message)


async def test_stream_upgrade_with_after_id_past_64_bits_is_refused(
    api: Any, jp_ws_fetch: Any
) -> None:
    chat = await idle_chat(api)
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch(
            "api", "coderchat", "chats", chat["id"], "stream", params={"after_id": str(HUGE)}
        )
    assert refused.value.code == 400
    assert refused.value.response is not None
    body = json.loads(refused.value.response.body)
    assert body["message"] == "Invalid after_id parameter."


async def test_a_context_limit_past_64_bits_is_refused(api: Any) -> None:
    body = {"provider": "scripted", "model": "big", "context_limit": HUGE}
    assert_json_error(await api("POST", "model-configs", body), 400, "Context limit is required.")


# --- JSON that nests too deeply or is not Unicode text ---------------------------------------


async def test_json_nested_50000_deep_is_an_invalid_body(api: Any) -> None:
    raw = b'{"content": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    body = assert_json_error(await api("POST", "chats", raw=raw), 400, "Invalid JSON body.")
    assert body["detail"] == "The body is nested too deeply."


LONE_SURROGATE = '"x\\ud800y"'
"""A JSON string escape of an unpaired UTF-16 surrogate (no UTF-8 encoding exists)."""

TEXT_BODIES = [
    pytest.param("POST", "chats", '{"content": %s}', id="chat-content"),
    pytest.param(
        "POST",
        "chats",
        '{"content": [{"type": "text", "text": %s}]}',
        id="chat-content-part",
    ),
    pytest.param(
        "POST", "chats", '{"content": "hi", "system_prompt": %s}', id="chat-system-prompt"
    ),
    pytest.param("POST", "chats", '{"content": "hi", "labels": {"k": %s}}', id="chat-label"),
    pytest.param("PATCH", "chats/{id}", '{"title": %s}', id="title"),
    pytest.param("PATCH", "chats/{id}", '{"labels": {"k": %s}}', id="labels"),
    pytest.param("POST", "chats/{id}/messages", '{"content": %s}', id="message"),
    pytest.param("PATCH", "chats/{id}/messages/{user}", '{"content": %s}', id="edit"),
    pytest.param("PUT", "config/system-prompt", '{"system_prompt": %s}', id="system-prompt"),
    pytest.param("PUT", "config/user-prompt", '{"custom_prompt": %s}', id="user-prompt"),
    pytest.param(
        "POST",
        "chats/{id}/tool-results",
        '{"results": [{"tool_call_id": "c", "output": %s}]}',
        id="tool-result",
    ),
]


@pytest.mark.parametrize(("method", "path", "template"), TEXT_BODIES)
async def test_a_lone_surrogate_in_stored_or_echoed_text_is_an_invalid_body(
    api: Any, app: Any, method: str, path: str, template: str
) -> None:
    chat = await idle_chat(api)
    messages = await api.messages(chat["id"])
    user = next(m for m in messages if m["role"] == "user")
    raw = (template % LONE_SURROGATE).encode()
    result = await api(method, path.format(id=chat["id"], user=user["id"]), raw=raw)
    body = assert_json_error(result, 400, "Invalid JSON body.")
    assert "surrogate" in body["detail"]
    assert (await api.ok("GET", f"chats/{chat['id']}"))["title"] == chat["title"]


async def test_a_paired_surrogate_escape_is_text(api: Any) -> None:
    chat = await idle_chat(api, "start")
    raw = b'{"title": "smile \\ud83d\\ude00"}'
    status, _ = await api("PATCH", f"chats/{chat['id']}", raw=raw)
    assert status == 204
    assert (await api.ok("GET", f"chats/{chat['id']}"))["title"] == "smile \U0001f600"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_standard_json_constants_are_an_invalid_body(api: Any, constant: str) -> None:
    raw = f'{{"content": "hi", "labels": {constant}}}'.encode()
    assert_json_error(await api("POST", "chats", raw=raw), 400, "Invalid JSON body.")


# --- PUT bodies and types --------------------------------------------------------------------

PUT_PATHS = [
    pattern.removeprefix("api/coderchat/")
    for pattern, handler in rest_handlers()
    if "put" in vars(handler)
]


def test_every_put_route_is_covered() -> None:
    assert PUT_PATHS == [
        "config/system-prompt",
        "config/user-prompt",
        "config/template-allowlist",
        "config/advisor",
    ]


@pytest.mark.parametrize("path", PUT_PATHS)
@pytest.mark.parametrize("raw", [b"", b"  \n"], ids=["no-body", "blank-body"])
async def test_a_put_without_a_body_is_refused(api: Any, path: str, raw: bytes) -> None:
    before = await api.ok("GET", path)
    assert_json_error(await api("PUT", path, raw=raw), 400, "Invalid JSON body.")
    assert await api.ok("GET", path) == before


async def test_a_put_without_a_body_keeps_the_admin_system_prompt(api: Any) -> None:
    await api.ok("PUT", "config/system-prompt", {"system_prompt": "Answer in French."})
    assert_json_error(await api("PUT", "config/system-prompt"), 400, "Invalid JSON body.")
    assert_json_error(
        await api("PUT", "config/system-prompt", {"include_default_system_prompt": True}),
        400,
        "Invalid request body.",
        "system_prompt",
    )
    stored = await api.ok("GET", "config/system-prompt")
    assert stored["system_prompt"] == "Answer in French."


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reasoning_effort": {}}, "reasoning_effort"),
        ({"reasoning_effort": 0}, "reasoning_effort"),
        ({"model_config_id": []}, "model_config_id"),
        ({"model_config_id": False}, "model_config_id"),
        ({"enabled": "yes"}, "enabled"),
        ({"max_uses_per_run": True}, "max_uses_per_run"),
        ({"max_output_tokens": 1.5}, "max_output_tokens"),
    ],
)
async def test_advisor_fields_of_the_wrong_type_are_refused_with_validations(
    api: Any, body: dict[str, Any], field: str
) -> None:
    before = await api.ok("GET", "config/advisor")
    assert_json_error(await api("PUT", "config/advisor", body), 400, "Invalid request body.", field)
    assert await api.ok("GET", "config/advisor") == before


async def test_advisor_keeps_the_reference_messages_for_values(api: Any) -> None:
    result = await api("PUT", "config/advisor", {"reasoning_effort": "max"})
    assert_json_error(
        result,
        400,
        'reasoning_effort "max" is not valid; must be one of "", "low", "medium", or "high".',
    )
    result = await api("PUT", "config/advisor", {"max_uses_per_run": -1})
    assert_json_error(result, 400, "max_uses_per_run -1 must be non-negative.")
    await api.ok("PUT", "config/advisor", {"enabled": True, "reasoning_effort": "low"})
    assert (await api.ok("GET", "config/advisor"))["reasoning_effort"] == "low"


@pytest.mark.parametrize("value", [{}, [], 7, True])
async def test_an_organization_that_is_not_a_string_is_refused(api: Any, value: Any) -> None:
    result = await api("POST", "chats", {"content": "hi", "organization_id": value})
    assert_json_error(result, 400, "Invalid request body.")


@pytest.mark.parametrize("key", ["sk-ключ", "sk-\x00", "sk-a\nb"])
async def test_an_api_key_that_cannot_travel_in_a_header_is_refused(api: Any, key: str) -> None:
    before = await api.ok("GET", "providers")
    result = await api("POST", "providers", {"provider": "openai", "api_key": key})
    body = assert_json_error(result, 400, "Invalid request body.")
    assert body["detail"] == "api_key must be printable ASCII."
    assert await api.ok("GET", "providers") == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("busy_behavior", {}, "Invalid busy_behavior value."),
        ("busy_behavior", False, "Invalid busy_behavior value."),
        ("model_config_id", {}, "Invalid model config ID."),
        ("model_config_id", 0, "Invalid model config ID."),
    ],
)
async def test_message_options_of_the_wrong_type_are_not_taken_as_defaults(
    api: Any, field: str, value: Any, message: str
) -> None:
    chat = await idle_chat(api)
    result = await api("POST", f"chats/{chat['id']}/messages", {"content": "hi", field: value})
    assert_json_error(result, 400, message)
    assert len(await api.messages(chat["id"])) == 2


# --- title regeneration without a model --------------------------------------------------------


async def test_title_regeneration_without_any_model_config_is_a_bad_request(api: Any) -> None:
    chat = await idle_chat(api)
    for config in await api.ok("GET", "model-configs"):
        await api.ok("DELETE", f"model-configs/{config['id']}")
    result = await api("POST", f"chats/{chat['id']}/title/regenerate")
    assert_json_error(result, 400, "No default chat model config is configured.")


# --- verbs and WebSocket paths -----------------------------------------------------------------


def _route_paths() -> list[tuple[str, list[str]]]:
    """``(path, Allow)`` of every route, with random UUIDs for the path parameters."""
    routes = []
    for pattern, handler in [*rest_handlers(), *ws_handlers()]:
        path = _GROUP.sub(lambda _: str(uuid.uuid4()), pattern)
        own_classes = [c for c in handler.__mro__ if c.__module__.startswith("coderchat_ext.")]
        own = [v for v in VERBS if any(v.lower() in vars(c) for c in own_classes)]
        allowed = ["GET"] if (pattern, handler) in ws_handlers() else [*own, "OPTIONS"]
        routes.append((path, allowed))
    return routes


async def _answer(jp_fetch: Any, method: str, path: str) -> Any:
    try:
        return await jp_fetch(
            *path.split("/"),
            method=method,
            body=b"{}" if method in ("POST", "PUT", "PATCH") else None,
            allow_nonstandard_methods=True,
        )
    except HTTPClientError as exc:
        if exc.response is None:
            raise
        return exc.response


@pytest.mark.parametrize("method", ["TRACE", "HEAD", *VERBS])
async def test_an_unsupported_verb_is_405_with_allow_listing_the_routes_verbs(
    jp_fetch: Any, app: Any, method: str
) -> None:
    checked = 0
    for path, allowed in _route_paths():
        if method in allowed:
            continue
        response = await _answer(jp_fetch, method, path)
        assert response.code == 405, (method, path)
        assert sorted(response.headers["Allow"].split(", ")) == sorted(allowed), path
        if method != "HEAD":
            assert response.headers["Content-Type"] == "application/json", path
            assert json.loads(response.body)["message"]
        checked += 1
    assert checked


@pytest.mark.parametrize(
    ("path", "params"),
    [("chats/watch", {}), ("chats/{id}/stream", {}), ("jobs/{id}/logs", {"follow": "1"})],
)
async def test_a_plain_get_of_a_websocket_path_is_a_json_400(
    api: Any, jp_fetch: Any, path: str, params: dict[str, str]
) -> None:
    chat = await idle_chat(api)
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("api", "coderchat", *path.format(id=chat["id"]).split("/"), params=params)
    response = refused.value.response
    assert response is not None
    assert refused.value.code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body)["message"] == 'Can "Upgrade" only to "WebSocket".'
