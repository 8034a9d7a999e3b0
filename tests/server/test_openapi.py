"""The served OpenAPI document: a valid OpenAPI 3.1 document with one operation per handler route
and verb, whose statuses and schemas are what the server really answers with."""

from __future__ import annotations

import inspect
import json
import re
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import BaseModel
from tornado.httpclient import HTTPClientError

from coderchat_ext.server.handlers import rest_handlers
from coderchat_ext.server.openapi import openapi_document
from coderchat_ext.server.operations import OPERATIONS
from coderchat_ext.server.ws import ws_handlers

PREFIX = "api/coderchat"
VERBS = ("get", "post", "put", "patch", "delete")
_GROUP = re.compile(r"\((?:[^()\\]|\\.)*\)")
_PARAM = re.compile(r"\{(\w+)\}")
Key = tuple[str, str]


def _own_verbs(handler: type[Any]) -> list[str]:
    """The verbs a handler implements in coderchat code (not tornado's or Jupyter's bases)."""
    classes = [c for c in handler.__mro__ if c.__module__.startswith("coderchat_ext.")]
    return [verb for verb in VERBS if any(verb in vars(c) for c in classes)]


def _name_groups(pattern: str, names: list[str]) -> str:
    """``pattern`` with its regex groups replaced, in order, by ``{name}`` (``{}`` once the
    names run out)."""
    remaining = iter(names)
    return _GROUP.sub(lambda _: "{" + next(remaining, "") + "}", pattern)


def served_operations() -> dict[Key, list[str] | None]:
    """``(VERB, path) -> path argument names`` for every route of ``rest_handlers()`` and
    ``ws_handlers()`` and every verb its handler implements. Regex groups become ``{name}``
    positionally, with the names of the verb's arguments; ``None`` when it takes ``*args``
    (the WebSockets), whose groups become ``{}``."""
    served: dict[Key, list[str] | None] = {}
    for pattern, handler in [*rest_handlers(), *ws_handlers()]:
        assert pattern.startswith(f"{PREFIX}/"), pattern
        relative = pattern[len(PREFIX) :]
        for verb in _own_verbs(handler):
            params = list(inspect.signature(getattr(handler, verb)).parameters.values())[1:]
            names: list[str] | None = [p.name for p in params]
            if any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in params):
                names = None
            path = _name_groups(relative, names or [])
            assert (verb.upper(), path) not in served, f"{verb} {path} is routed twice"
            served[(verb.upper(), path)] = names
    return served


def documented_operations(document: dict[str, Any]) -> dict[Key, list[str]]:
    """``(VERB, path) -> path parameter names`` of every operation of ``document``."""
    return {
        (verb.upper(), path): _PARAM.findall(path)
        for path, item in document["paths"].items()
        for verb in item
        if verb in VERBS
    }


def _skeleton(path: str) -> str:
    return _PARAM.sub("{}", path)


def assert_matches(document: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """Validate ``value`` against a schema of ``document`` (its ``$ref`` resolve in it)."""
    validator = Draft202012Validator(
        {**schema, "components": document["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]
    assert not errors, (errors, value)


class Contract:
    """Calls the API and checks each answer against the served document: the status must be
    documented for the operation (and be its only 2xx when it succeeds) and the body must
    match the documented schema."""

    def __init__(self, api: Any, document: dict[str, Any]) -> None:
        self.api = api
        self.document = document

    async def call(
        self,
        method: str,
        path: str,
        expected: int,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        raw: bytes | None = None,
        **path_args: Any,
    ) -> Any:
        """``method`` on the documented ``path`` with ``path_args`` substituted; asserts the
        answer is ``expected`` and documented, returns its JSON body."""
        url = path.format(**path_args).lstrip("/")
        status, data = await self.api(method, url, body, params=params, raw=raw)
        assert status == expected, (method, url, status, data)
        responses = self.document["paths"][path][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {path} answered {status}, not documented"
        if 200 <= status < 300:
            assert [s for s in responses if s.startswith("2")] == [str(status)]
        content = responses[str(status)].get("content")
        if content is None:
            assert data is None, (method, url, data)
        else:
            assert_matches(self.document, content["application/json"]["schema"], data)
        return data


async def served_document(api: Any) -> dict[str, Any]:
    document: dict[str, Any] = await api.ok("GET", "openapi.json")
    return document


async def test_served_document_is_valid_openapi_3_1(api: Any, jp_base_url: str) -> None:
    document = await served_document(api)
    OpenAPIV31SpecValidator(document).validate()
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": f"{jp_base_url}{PREFIX}"}]
    operation_ids = [
        op["operationId"]
        for item in document["paths"].values()
        for verb, op in item.items()
        if verb in VERBS
    ]
    assert len(operation_ids) == len(set(operation_ids))


async def test_every_served_route_and_verb_is_documented_and_nothing_else(api: Any) -> None:
    documented = documented_operations(await served_document(api))
    served = served_operations()
    by_skeleton = {(verb, _skeleton(path)): path for verb, path in documented}
    missing = [key for key in served if (key[0], _skeleton(key[1])) not in by_skeleton]
    assert not missing, f"served but not documented: {missing}"
    served_skeletons = {(verb, _skeleton(path)) for verb, path in served}
    extra = [key for key in documented if (key[0], _skeleton(key[1])) not in served_skeletons]
    assert not extra, f"documented but not served: {extra}"
    for (verb, path), names in served.items():
        if names is not None:
            assert (verb, path) in documented, f"{verb} {path}: path parameters are misnamed"


async def test_every_operation_documents_security_and_a_refusal(api: Any) -> None:
    document = await served_document(api)
    for path, item in document["paths"].items():
        for verb, op in item.items():
            cookie: dict[str, list[str]] = {"cookie": []}
            if verb != "get":
                cookie["xsrf"] = []
            assert op["security"] == [{"token": []}, cookie], (verb, path)
            assert {"403", "503"} <= set(op["responses"]), (verb, path)
            assert ("413" in op["responses"]) == ("requestBody" in op), (verb, path)


async def test_chat_statuses_and_bodies_match_the_document(api: Any, scripted: Any) -> None:
    contract = Contract(api, await served_document(api))
    scripted.push({"text": "Hello."})
    chat = await contract.call("POST", "/chats", 201, {"content": "Say hello"})
    chat_id = chat["id"]
    await api.wait_status(chat_id, "waiting")
    await contract.call("GET", "/chats", 200, params={"limit": 10})
    await contract.call("GET", "/chats", 400, params={"limit": 201})
    await contract.call("GET", "/chats/{chat_id}", 200, chat_id=chat_id)
    await contract.call("GET", "/chats/{chat_id}", 404, chat_id=uuid.uuid4())
    page = await contract.call("GET", "/chats/{chat_id}/messages", 200, chat_id=chat_id)
    await contract.call(
        "GET", "/chats/{chat_id}/messages", 400, params={"limit": 0}, chat_id=chat_id
    )
    await contract.call("PATCH", "/chats/{chat_id}", 204, {"title": "Renamed"}, chat_id=chat_id)
    await contract.call("PATCH", "/chats/{chat_id}", 400, {"title": " "}, chat_id=chat_id)
    (user,) = [m for m in page["messages"] if m["role"] == "user"]
    await contract.call(
        "PATCH",
        "/chats/{chat_id}/messages/{message_id}",
        200,
        {"content": "Say hello again"},
        chat_id=chat_id,
        message_id=user["id"],
    )
    await contract.call(
        "PATCH",
        "/chats/{chat_id}/messages/{message_id}",
        400,
        {"content": "x"},
        chat_id=chat_id,
        message_id="first",
    )
    await api.wait_status(chat_id, "waiting")
    await contract.call(
        "POST",
        "/chats/{chat_id}/tool-results",
        409,
        {"results": [{"tool_call_id": "call_1", "output": 1}]},
        chat_id=chat_id,
    )
    await contract.call("POST", "/chats/{chat_id}/interrupt", 200, chat_id=chat_id)
    await contract.call("POST", "/chats/{chat_id}/title/regenerate", 200, chat_id=chat_id)
    await contract.call("PATCH", "/chats/{chat_id}", 204, {"archived": True}, chat_id=chat_id)
    await contract.call("PATCH", "/chats/{chat_id}", 400, {"archived": True}, chat_id=chat_id)
    await contract.call(
        "POST", "/chats/{chat_id}/messages", 400, {"content": "More"}, chat_id=chat_id
    )
    await contract.call("POST", "/chats", 413, raw=b'{"content": "' + b"x" * 300_000 + b'"}')


async def test_queue_statuses_and_bodies_match_the_document(api: Any, scripted: Any) -> None:
    contract = Contract(api, await served_document(api))
    scripted.push({"text": "Slow.", "delay_first": 60})
    chat_id = (await contract.call("POST", "/chats", 201, {"content": "Take your time"}))["id"]
    await api.wait_status(chat_id, "running")
    path = "/chats/{chat_id}/messages"
    first = await contract.call("POST", path, 200, {"content": "q"}, chat_id=chat_id)
    assert first["queued"] is True
    queued_id = first["queued_message"]["id"]
    await contract.call(
        "DELETE", "/chats/{chat_id}/queue/{queued_id}", 204, chat_id=chat_id, queued_id=queued_id
    )
    await contract.call(
        "DELETE", "/chats/{chat_id}/queue/{queued_id}", 404, chat_id=chat_id, queued_id=queued_id
    )
    queued = [
        await contract.call("POST", path, 200, {"content": f"q{i}"}, chat_id=chat_id)
        for i in range(20)
    ]
    await contract.call("POST", path, 429, {"content": "one too many"}, chat_id=chat_id)
    await contract.call(
        "POST",
        "/chats/{chat_id}/queue/{queued_id}/promote",
        200,
        chat_id=chat_id,
        queued_id=queued[-1]["queued_message"]["id"],
    )
    await contract.call("POST", "/chats/{chat_id}/interrupt", 200, chat_id=chat_id)
    await api.wait_status(chat_id, "waiting")


async def test_tool_results_status_matches_the_document(api: Any, scripted: Any) -> None:
    contract = Contract(api, await served_document(api))
    scripted.push({"tool_calls": [{"id": "call_1", "name": "pick", "args": {}}]}, {"text": "Ok."})
    body = {"content": "Pick one", "unsafe_dynamic_tools": [{"name": "pick"}]}
    chat_id = (await contract.call("POST", "/chats", 201, body))["id"]
    await api.wait_status(chat_id, "requires_action")
    results = {"results": [{"tool_call_id": "call_1", "output": {"picked": 2}}]}
    await contract.call("POST", "/chats/{chat_id}/tool-results", 204, results, chat_id=chat_id)
    await api.wait_status(chat_id, "waiting")


async def test_settings_statuses_and_bodies_match_the_document(api: Any) -> None:
    contract = Contract(api, await served_document(api))
    await contract.call("GET", "/models", 200)
    await contract.call("GET", "/model-configs", 200)
    body = {"provider": "scripted", "model": "scripted-2", "context_limit": 1000}
    config = await contract.call("POST", "/model-configs", 201, body)
    await contract.call("POST", "/model-configs", 409, body)
    await contract.call("POST", "/model-configs", 400, {**body, "context_limit": 0})
    path = "/model-configs/{config_id}"
    await contract.call("PATCH", path, 200, {"display_name": "Two"}, config_id=config["id"])
    await contract.call("DELETE", path, 204, config_id=config["id"])
    await contract.call("DELETE", path, 404, config_id=config["id"])
    await contract.call("GET", "/providers", 200)
    await contract.call("POST", "/providers", 400, {"provider": "no-such-provider"})
    await contract.call("PATCH", "/providers/{provider_id}", 404, {}, provider_id=uuid.uuid4())
    await contract.call("GET", "/config/system-prompt", 200)
    await contract.call("PUT", "/config/system-prompt", 204, {"system_prompt": "Be brief."})
    await contract.call("PUT", "/config/system-prompt", 400, {"system_prompt": 5})
    await contract.call("GET", "/config/user-prompt", 200)
    await contract.call("PUT", "/config/user-prompt", 200, {"custom_prompt": "Hi."})
    await contract.call("GET", "/config/template-allowlist", 200)
    await contract.call("PUT", "/config/template-allowlist", 204, {"template_ids": []})
    await contract.call("PUT", "/config/template-allowlist", 400, {"template_ids": ["x"]})
    await contract.call("GET", "/config/advisor", 200)
    await contract.call("PUT", "/config/advisor", 204, {"enabled": True})
    await contract.call("PUT", "/config/advisor", 400, {"reasoning_effort": "max"})
    await contract.call("GET", "/info", 200)
    await contract.call("GET", "/openapi.json", 200)


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("chats/{chat_id}/stream", {"after_id": "x"}, 400),
        ("chats/{missing}/stream", {}, 404),
    ],
)
async def test_stream_refusals_are_documented(
    api: Any, jp_ws_fetch: Any, path: str, params: dict[str, str], expected: int
) -> None:
    document = await served_document(api)
    chat = await api.ok("POST", "chats", {"content": "Hello"})
    await api.wait_status(chat["id"], "waiting")
    url = path.format(chat_id=chat["id"], missing=uuid.uuid4())
    with pytest.raises(HTTPClientError) as refused:
        await jp_ws_fetch(PREFIX, *url.split("/"), params=params)
    assert refused.value.code == expected
    responses = document["paths"]["/chats/{chat_id}/stream"]["get"]["responses"]
    assert str(expected) in responses


async def test_websocket_frames_match_the_documented_schemas(
    api: Any, jp_ws_fetch: Any, scripted: Any
) -> None:
    document = await served_document(api)
    operations = {
        op["operationId"]: op for item in document["paths"].values() for op in item.values()
    }
    watch = await jp_ws_fetch(PREFIX, "chats", "watch")
    try:
        scripted.push({"text": "Hello."})
        chat = await api.ok("POST", "chats", {"content": "Hello"})
        event = json.loads(await watch.read_message())
        assert_matches(document, operations["watchChats"]["x-websocket"]["frame"], event)
        assert event["kind"] == "created"
    finally:
        watch.close()
    await api.wait_status(chat["id"], "waiting")
    stream = await jp_ws_fetch(PREFIX, "chats", chat["id"], "stream")
    try:
        frame = json.loads(await stream.read_message())
        assert_matches(document, operations["streamChat"]["x-websocket"]["frame"], frame)
        assert [e["type"] for e in frame][:1] == ["status"]
    finally:
        stream.close()


def _component(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    [(key, target)] = schema.items()
    assert key == "$ref", schema
    components: dict[str, Any] = document["components"]["schemas"]
    return dict(components[target.rsplit("/", 1)[1]])


def test_bodies_answers_and_queries_are_the_schemas_of_the_operations_models() -> None:
    """The document says what the models enforce: each request body is its model's validation
    schema, each model answer its serialization schema, each query parameter a field of the
    operation's query model (nothing is described a second time by hand)."""
    document = openapi_document("/")
    template = "#/components/schemas/{model}"
    checked = 0
    for op in OPERATIONS:
        documented = document["paths"][op.path][op.method]
        if op.request is not None:
            body = documented["requestBody"]["content"]["application/json"]["schema"]
            schema = op.request.model_json_schema(ref_template=template, mode="validation")
            schema.pop("$defs", None)
            assert _component(document, body) == schema, op.operation_id
            checked += 1
        if isinstance(op.response, type) and issubclass(op.response, BaseModel):
            answer = documented["responses"][str(op.status)]["content"]["application/json"]
            schema = op.response.model_json_schema(ref_template=template, mode="serialization")
            schema.pop("$defs", None)
            if set(schema) != {"$ref"}:
                assert _component(document, answer["schema"]) == schema, op.operation_id
                checked += 1
        query = [p["name"] for p in documented.get("parameters", ()) if p["in"] == "query"]
        assert query == (list(op.query.model_fields) if op.query else []), op.operation_id
    assert checked > 30
