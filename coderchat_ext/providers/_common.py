"""What the SDK adapters share: :class:`SDKModel` (construction, the stream loop and its error
handling), the client cache, option parsing, and rendering our persisted parts
(docs/data-model.md#message-parts) into the pieces every provider's history needs.

Importing this module imports no provider SDK.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import ValidationError

from ..models import ChatMessagePart, ChatModelConfig
from .base import ModelRequest, ProviderError, StreamPart
from .registry import DISPLAY_NAMES, ResolvedProvider

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


_Options = TypeVar("_Options")
_SDKModel = TypeVar("_SDKModel", bound="SDKModel")


class EventStream(Protocol):
    """An SDK's open response stream (``anthropic.AsyncStream``, ``openai.AsyncStream``)."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def close(self) -> None: ...


class EventParser(Protocol):
    """Turns one adapter's raw stream events into stream parts."""

    def feed(self, event: Any) -> list[StreamPart]:
        """The parts for one event. May raise :class:`ProviderError` for an error event."""
        ...

    def end(self) -> list[StreamPart]:
        """The parts after the last event. Raises :class:`ProviderError` (classified
        ``timeout``, retryable) when the stream closed before its terminal event."""
        ...


class SDKModel(ABC):
    """A :class:`~coderchat_ext.providers.base.Model` over a provider SDK's async client.

    A subclass builds the request (:meth:`request_params`), opens the SDK stream
    (:meth:`open_stream`), gives a parser for its events and says which SDK exceptions report an
    error inside the stream (:meth:`in_stream_error`); the stream loop is here.

    ``api_key`` empty means :attr:`key_placeholder`; still empty, :meth:`stream` raises a 401
    :class:`ProviderError` without sending anything. ``base_url`` empty means
    :attr:`default_base_url`; ``read_timeout`` is the seconds the provider may stay silent
    inside a response. ``repr`` never shows the key.
    """

    provider: str
    """The provider kind (a key of ``DISPLAY_NAMES``)."""
    default_base_url: ClassVar[str]
    """Used when the provider has no ``base_url`` (never an SDK's environment lookup: a key from
    the store must not travel to an endpoint named only in the environment)."""
    title_model: ClassVar[str | None] = None
    """The cheap model for titles (docs/providers.md#title-models); None: the chat's model."""
    key_placeholder: ClassVar[str] = ""
    """Sent when the provider has no key (empty: a key is required)."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str = "",
        base_url: str = "",
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.model = model
        self._api_key = api_key or self.key_placeholder
        self.base_url = base_url or self.default_base_url
        self.read_timeout = read_timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    @classmethod
    def for_config(
        cls: type[_SDKModel], config: ChatModelConfig, resolved: ResolvedProvider, purpose: str
    ) -> _SDKModel:
        """The model for ``config`` (the adapter module's ``make_model``): titles use
        :attr:`title_model` unless the provider has a custom ``base_url`` (a proxy or gateway
        may not serve it; the chat's model is used then)."""
        model = config.model
        if purpose == "title" and cls.title_model and not resolved.base_url:
            model = cls.title_model
        return cls(model, api_key=resolved.api_key, base_url=resolved.base_url)

    @abstractmethod
    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        """The SDK's create arguments (without ``stream``) for ``request``. Raises
        :class:`ProviderError` (``config``) for invalid provider options."""

    @abstractmethod
    async def open_stream(self, params: dict[str, Any]) -> EventStream:
        """Send the request; the SDK's stream once the response headers arrived. Raises the
        SDK's errors (HTTP status, connection, timeout) as they are."""

    @abstractmethod
    def parser(self) -> EventParser:
        """A fresh parser for one response's events."""

    @abstractmethod
    def in_stream_error(self, exc: Exception) -> ProviderError | None:
        """The :class:`ProviderError` for ``exc`` when the SDK raised it for an error reported
        inside a 200 stream (so it classifies like the same error before the stream); None for
        every other exception, which propagates as it is."""

    def provider_options(self, read: Callable[[], _Options]) -> _Options:
        """``read()`` (a ``ChatModelCallConfig.*_options`` method), its ``ValidationError`` as
        a ``config`` :class:`ProviderError`."""
        try:
            return read()
        except ValidationError as exc:
            raise invalid_options_error(DISPLAY_NAMES[self.provider], exc) from None

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        """Stream one response (the adapter module's docstring gives the mapping and the
        errors)."""
        if not self._api_key:
            raise missing_key_error(DISPLAY_NAMES[self.provider])
        params = self.request_params(request)
        parser = self.parser()
        events = await self.open_stream(params)
        try:
            async for event in events:
                for part in parser.feed(event):
                    yield part
        except Exception as exc:
            error = self.in_stream_error(exc)
            if error is None:
                raise
            raise error from exc
        finally:
            await events.close()
        for part in parser.end():
            yield part


def metadata(part: ChatMessagePart, provider: str) -> dict[str, Any]:
    """The part's provider metadata for ``provider`` (empty when it came from elsewhere)."""
    return (part.provider_metadata or {}).get(provider) or {}


def _json_text(value: Any, absent: str) -> str:
    if value is None:
        return absent
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def args_json(part: ChatMessagePart) -> str:
    """A tool call's arguments as JSON text (arguments that never parsed stay as streamed)."""
    return _json_text(part.args, "{}")


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
    return _json_text(part.result, "")


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


def base_media_type(part: ChatMessagePart) -> str:
    """A file part's media type without parameters (``text/plain; charset=utf-8`` →
    ``text/plain``; empty when it has none)."""
    return (part.media_type or "").split(";")[0].strip()


def file_text(part: ChatMessagePart) -> str | None:
    """The decoded text of a ``text/*`` (or JSON) file part, else None."""
    media_type = base_media_type(part)
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
