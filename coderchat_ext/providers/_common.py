"""What the SDK adapters share: the client cache, option parsing, and rendering our persisted
parts (docs/data-model.md#message-parts) into the pieces every provider's history needs.

Importing this module imports no provider SDK.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from ..models import ChatMessagePart
from .base import ProviderError

CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection to a provider."""
READ_TIMEOUT = 300.0
"""Seconds a provider may stay silent inside a response (the first chunk has its own 60 s
timeout in the loop, docs/loop.md#startup-timeout)."""

SKILLS_INTRO = (
    "Skills hold instructions for specific tasks. Call read_skill with a skill's name before "
    "following it, and read_skill_file for its supporting files."
)
"""The first line of the ``<available-skills>`` block
(docs/workspaces.md#context-files-and-skills)."""

_Client = TypeVar("_Client")


class ClientCache:
    """One SDK client per (event loop, provider, base URL, key, read timeout), reused across
    calls.

    An SDK client's connection pool belongs to the event loop that opened it, so clients are
    kept per running loop (and dropped with it). The key is held only as a digest here.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str, str, float], Any]
        ] = weakref.WeakKeyDictionary()

    def get(
        self,
        provider: str,
        base_url: str,
        api_key: str,
        read_timeout: float,
        build: Callable[[], _Client],
    ) -> _Client:
        """The cached client for these settings (``read_timeout`` in seconds), built with
        ``build()`` the first time."""
        loop = asyncio.get_running_loop()
        clients = self._by_loop.setdefault(loop, {})
        digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()
        key = (provider, base_url, digest, read_timeout)
        client = clients.get(key)
        if client is None:
            client = clients[key] = build()
        return client


CLIENTS = ClientCache()


def missing_key_error(display_name: str) -> ProviderError:
    """The error for a provider without an API key, raised before any request is sent (a 401 so
    it classifies as ``auth``, not retryable)."""
    message = f"No API key is configured for the {display_name} provider."
    return ProviderError(
        f"{display_name}: missing API key (status 401)",
        status_code=401,
        body={"error": {"type": "authentication_error", "message": message}},
    )


def invalid_options_error(display_name: str, exc: ValidationError) -> ProviderError:
    """A model config whose provider options do not validate: classifies as ``config``."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
    )
    return ProviderError(
        f"malformed config for {display_name}: {problems}",
        body={"error": {"type": "invalid_request_error", "message": problems}},
    )


def metadata(part: ChatMessagePart, provider: str) -> dict[str, Any]:
    """The part's provider metadata for ``provider`` (empty when it came from elsewhere)."""
    return (part.provider_metadata or {}).get(provider) or {}


def args_json(part: ChatMessagePart) -> str:
    """A tool call's arguments as JSON text (arguments that never parsed stay as streamed)."""
    if part.args is None:
        return "{}"
    if isinstance(part.args, str):
        return part.args
    return json.dumps(part.args, ensure_ascii=False)


def args_object(part: ChatMessagePart) -> dict[str, Any]:
    """A tool call's arguments as a JSON object ({} when they are not one)."""
    args = part.args
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return {}
    return args if isinstance(args, dict) else {}


def result_text(part: ChatMessagePart) -> str:
    """A tool result as text: strings as they are, other JSON values serialized."""
    if part.result is None:
        return ""
    if isinstance(part.result, str):
        return part.result
    return json.dumps(part.result, ensure_ascii=False)


def media_results(part: ChatMessagePart) -> list[tuple[str, str]] | None:
    """``(media_type, base64 data)`` pairs of a media tool result (``is_media`` with
    ``{"media_type", "data"}`` or a list of those); None when the result is not media."""
    if not part.is_media:
        return None
    items = part.result if isinstance(part.result, list) else [part.result]
    out = []
    for item in items:
        if not isinstance(item, dict):
            return None
        media_type, data = item.get("media_type"), item.get("data")
        if not (isinstance(media_type, str) and isinstance(data, str)):
            return None
        out.append((media_type, data))
    return out or None


def file_text(part: ChatMessagePart) -> str | None:
    """The decoded text of a ``text/*`` (or JSON) file part, else None."""
    media_type = (part.media_type or "").split(";")[0].strip()
    if not part.data or not (media_type.startswith("text/") or media_type == "application/json"):
        return None
    try:
        return base64.b64decode(part.data, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def file_placeholder(part: ChatMessagePart) -> str:
    """What the model sees for a file its provider cannot take."""
    name = part.name or part.file_name or "file"
    kind = f" ({part.media_type})" if part.media_type else ""
    return f"[Attached file {name}{kind} cannot be shown to this model.]"


def wrap_file_text(part: ChatMessagePart, text: str) -> str:
    name = part.name or part.file_name or "file"
    return f'<file name="{name}">\n{text}\n</file>'


def user_parts(parts: list[ChatMessagePart]) -> list[ChatMessagePart]:
    """A user message's parts with the ones only we know rendered as ``text`` parts: a
    ``file-reference`` as a fenced snippet, a ``context-file`` as ``<context-file>``, and the
    message's ``skill`` parts as one ``<available-skills>`` block
    (docs/workspaces.md#context-files-and-skills). ``text`` and ``file`` parts pass through; blank
    ones and context-file markers without content are dropped."""
    out: list[ChatMessagePart] = []
    skills: list[ChatMessagePart] = []
    for part in parts:
        if part.type == "file" or (part.type == "text" and (part.text or "").strip()):
            out.append(part)
        elif part.type == "file-reference":
            out.append(_text(_file_reference(part)))
        elif part.type == "context-file" and (part.context_file_content or "").strip():
            truncated = ' truncated="true"' if part.context_file_truncated else ""
            path = part.context_file_path or ""
            out.append(
                _text(
                    f'<context-file path="{path}"{truncated}>\n'
                    f"{part.context_file_content}\n</context-file>"
                )
            )
        elif part.type == "skill" and part.skill_name:
            skills.append(part)
    if skills:
        lines = [f"- {s.skill_name}: {s.skill_description or ''}".rstrip() for s in skills]
        block = "\n".join(["<available-skills>", SKILLS_INTRO, *lines, "</available-skills>"])
        out.append(_text(block))
    return out


def _file_reference(part: ChatMessagePart) -> str:
    where = part.file_name or "snippet"
    if part.start_line is not None:
        where += f":{part.start_line}"
        if part.end_line is not None and part.end_line != part.start_line:
            where += f"-{part.end_line}"
    return f"{where}\n```\n{part.content or ''}\n```"


def _text(text: str) -> ChatMessagePart:
    return ChatMessagePart(type="text", text=text)


def system_texts(parts: list[ChatMessagePart]) -> str:
    """The text of a system message (its text parts joined by blank lines)."""
    return "\n\n".join(p.text for p in parts if p.type == "text" and p.text and p.text.strip())
