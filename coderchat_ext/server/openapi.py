"""The OpenAPI 3.1 document served at ``GET api/coderchat/openapi.json`` (docs/api.md), built
from the operation table (``operations.py``) and the pydantic models it names: request bodies
and query parameters in validation mode, answers and WebSocket frames in serialization mode,
every nested model a component. Nothing here is written a second time by hand: a limit or a
field appears in the document because the model that enforces it declares it.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from typing_extensions import TypeAliasType

from .. import models as M
from .._version import __version__
from .base import MAX_BODY_BYTES
from .operations import OPERATIONS, PATH_PARAMS, Operation, Schema

REF_TEMPLATE = "#/components/schemas/{model}"


def ref(name: str) -> Schema:
    """A reference to ``#/components/schemas/<name>``."""
    return {"$ref": REF_TEMPLATE.format(model=name)}


def component_schemas() -> dict[str, Schema]:
    """``components.schemas`` of the document (every schema an operation names)."""
    schemas: dict[str, Schema] = openapi_document("/")["components"]["schemas"]
    return schemas


# --- building the document --------------------------------------------------------------------

_STATUS_TEXT = {
    101: "Switching Protocols: the WebSocket is open.",
    200: "OK.",
    201: "Created.",
    204: "No content.",
    400: "Bad request.",
    403: "Forbidden.",
    404: "Not found.",
    409: "Conflict.",
    413: f"Request body too large (over {MAX_BODY_BYTES // 1024} KiB).",
    429: "Too many requests.",
    500: "Internal error.",
    503: "coderchat_ext is starting; try again in a moment.",
}
_REFUSED = (
    "Missing or invalid credentials, a failed XSRF check (cookie auth without the "
    "X-XSRFToken header), or the authorizer refused the action on resource `coderchat`."
)
_PATH_PARAM = re.compile(r"\{(\w+)\}")
_TAGS = (
    ("chats", "Chats, their messages and their queue (docs/api.md#chats)."),
    ("streams", "WebSocket feeds (docs/stream-protocol.md)."),
    ("models", "Providers, model configs and the models a chat may use."),
    ("config", "Deployment and user settings (docs/api.md#configuration)."),
    ("workspaces", "Templates, workspaces, builds, build logs and agents (docs/workspaces.md)."),
    ("server", "About this server."),
)


class _Components:
    """``components.schemas`` as the operations are rendered: each model's schema (validation
    mode for what the server reads, serialization for what it answers) with its ``$defs``
    merged in. Raises ``ValueError`` when two different schemas claim one name."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}

    def _add(self, name: str, schema: Schema) -> None:
        if self.schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas named {name}")

    def schema(self, value: Any, mode: JsonSchemaMode) -> Schema:
        """The schema of ``value`` (a pydantic model, any type pydantic knows such as
        ``list[Model]`` or a named alias, or a raw schema dict), named models as ``$ref``."""
        if isinstance(value, dict):
            return value
        if isinstance(value, type) and issubclass(value, BaseModel):
            schema = value.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
            self._merge(schema)
            if set(schema) != {"$ref"}:  # a recursive model is its own $defs entry
                self._add(value.__name__, schema)
            return ref(value.__name__)
        schema = TypeAdapter(value).json_schema(ref_template=REF_TEMPLATE, mode=mode)
        self._merge(schema)
        if isinstance(value, TypeAliasType):  # a named alias is a component of its own
            self._add(value.__name__, schema)
            return ref(value.__name__)
        return schema

    def _merge(self, schema: Schema) -> None:
        for name, definition in schema.pop("$defs", {}).items():
            self._add(name, definition)


def _error(description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": ref("ApiErrorBody")}},
    }


def _responses(op: Operation, components: _Components) -> dict[str, Schema]:
    ok: Schema = {"description": _STATUS_TEXT[op.status]}
    if op.response is not None:
        schema = components.schema(op.response, "serialization")
        ok["content"] = {"application/json": {"schema": schema}}
    errors: dict[int, str] = {403: "", 503: ""}
    if op.request is not None:
        errors[413] = ""
    errors.update(op.errors)
    out = {str(op.status): ok}
    if op.frame is not None and op.status != 101:
        out["101"] = {"description": _STATUS_TEXT[101]}
    for status in sorted(errors):
        detail = errors[status]
        if status == 403:
            detail = f"{_REFUSED} {detail}".strip()
        out[str(status)] = _error(detail or _STATUS_TEXT[status])
    return out


def _parameters(op: Operation) -> list[Schema]:
    params: list[Schema] = []
    for name in _PATH_PARAM.findall(op.path):
        schema, description = PATH_PARAMS[name]
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": schema,
                "description": description,
            }
        )
    if op.query is None:
        return params
    properties = op.query.model_json_schema(mode="validation")["properties"]
    for name, prop in properties.items():
        description = prop.pop("description", "")
        schema = _not_null({k: v for k, v in prop.items() if k != "title"})
        param: Schema = {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": description,
        }
        if schema.get("type") == "array":
            param.update(style="form", explode=True)
        params.append(param)
    return params


def _not_null(schema: Schema) -> Schema:
    """``schema`` without its ``null`` alternative: a query parameter is left out, not null."""
    options = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
    if len(options) != 1 or len(schema["anyOf"]) != 2:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**options[0], **rest}


def _security(method: str) -> list[dict[str, list[str]]]:
    # Jupyter skips the XSRF check for token-authenticated and for GET requests.
    if method in ("get", "head"):
        return [{"token": []}, {"cookie": []}]
    return [{"token": []}, {"cookie": [], "xsrf": []}]


def _operation(op: Operation, components: _Components) -> Schema:
    out: Schema = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        out["description"] = op.description
    params = _parameters(op)
    if params:
        out["parameters"] = params
    if op.request is not None:
        out["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": components.schema(op.request, "validation")}
            },
        }
    out["responses"] = _responses(op, components)
    out["security"] = _security(op.method)
    if op.frame is not None:
        out["x-websocket"] = {"frame": components.schema(op.frame, "serialization")}
    return out


@functools.lru_cache(maxsize=8)
def _build(base_url: str) -> Schema:
    paths: dict[str, dict[str, Schema]] = {}
    components = _Components()
    components.schema(M.ApiErrorBody, "serialization")
    for op in OPERATIONS:
        item = paths.setdefault(op.path, {})
        if op.method in item:
            raise ValueError(f"{op.method.upper()} {op.path} is listed twice")
        item[op.method] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "coderchat_ext",
            "version": __version__,
            "description": "The agent chat API of the coderchat_ext Jupyter server extension "
            "(docs/api.md). JSON everywhere; errors are `{message, detail?, validations?}`.",
        },
        "servers": [{"url": f"{base_url.rstrip('/')}/api/coderchat"}],
        "tags": [{"name": name, "description": text} for name, text in _TAGS],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Authorization: token <server token>` (the server's "
                    "token or `?token=` in the URL).",
                },
                "cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "username-<host>-<port>",
                    "description": "The Jupyter login cookie (its name depends on the "
                    "server's host and port unless IdentityProvider.cookie_name is set).",
                },
                "xsrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-XSRFToken",
                    "description": "The value of the `_xsrf` cookie; required with cookie "
                    "authentication for every method but GET.",
                },
            },
        },
    }


def openapi_document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API under ``<base_url>api/coderchat``.

    Built once per ``base_url`` and shared: callers must not mutate the result.
    """
    return _build(base_url)


if __name__ == "__main__":  # `python -m coderchat_ext.server.openapi`: the document at "/"
    import json
    import sys

    json.dump(openapi_document("/"), sys.stdout, indent=1, sort_keys=True)
