"""The base of every coderchat handler: authentication, authorization, the caller's identity,
JSON bodies with a size cap, and the one place where :class:`~coderchat_ext.errors.ApiError`
becomes an HTTP response (DESIGN §5)."""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from .. import errors as E
from ..chatd.service import Actor, parse_positive_int
from ..store import is_storage_full

if TYPE_CHECKING:
    from ..app import CoderChatApp

AUTH_RESOURCE = "coderchat"
ADMIN_RESOURCE = "coderchat:admin"
MAX_BODY_BYTES = 256 * 1024
"""Request bodies are capped at 256 KiB (reference §3.1)."""


class CoderChatMixin(ExtensionHandlerMixin, JupyterHandler):
    """What REST and WebSocket handlers share: the extension app and the caller."""

    auth_resource = AUTH_RESOURCE

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        """Answer 503 until the extension's async start hook has opened the database."""
        result = super().prepare(*args, **kwargs)
        if inspect.isawaitable(result):
            await result
        if not self.app.started:
            raise E.Unavailable("coderchat_ext is starting; try again in a moment.")

    @property
    def app(self) -> CoderChatApp:
        return self.extensionapp  # type: ignore[return-value]

    async def actor(self) -> Actor:
        """The caller as an :class:`Actor`: owner name per ``CoderChatApp.owner_for`` and
        admin when the authorizer grants ``write`` on ``coderchat:admin`` and ``admin_users``
        (if set) lists them."""
        user = self.current_user
        username = self.app.owner_for(user)
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, "write", ADMIN_RESOURCE)
        )
        admins = self.app.admin_users
        is_admin = bool(allowed) and (not admins or user.username in admins or username in admins)
        return Actor(username=username, is_admin=is_admin)


class CoderChatHandler(CoderChatMixin, APIHandler):
    """Parses, authorizes, calls the service, serializes. No business logic here."""

    def json_body(self) -> dict[str, Any]:
        """The request's JSON object. 413 over 256 KiB; 400 when not a JSON object."""
        raw = self.request.body or b""
        if len(raw) > MAX_BODY_BYTES:
            raise E.PayloadTooLarge("Request body too large.", "Bodies are limited to 256 KiB.")
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise E.BadRequest("Invalid JSON body.", str(exc)) from None
        if not isinstance(value, dict):
            raise E.BadRequest("Invalid JSON body.", "The body must be a JSON object.")
        return value

    def limit_arg(self, default: int = 50) -> int:
        """The ``limit`` query parameter: 1..200 (reference §3.2)."""
        raw = self.get_argument("limit", None)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or not 1 <= int(raw) <= 200:
            raise E.BadRequest("Invalid limit parameter (1-200).")
        return int(raw)

    def int_arg(self, name: str, *, default: int | None = None, minimum: int = 0) -> int | None:
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise E.BadRequest(f"Invalid {name} parameter.") from None
        if value < minimum:
            raise E.BadRequest(f"Invalid {name} parameter.")
        return value

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        if status == 204:
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        exc = _api_error(exc_info[1] if exc_info else None)
        if isinstance(exc, E.ApiError):
            self.set_status(exc.status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.body()))
            return
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, E.ApiError) and value.status < 500:
            return
        if not isinstance(value, E.ApiError) and is_storage_full(value):
            self.log.warning(
                "%s %s refused, the disk is full: %s", self.request.method, self.request.uri, value
            )
            return
        super().log_exception(typ, value, tb)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        exc = _api_error(exc_info[1] if exc_info else None)
        if isinstance(exc, E.ApiError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)


def _api_error(exc: BaseException | None) -> BaseException | None:
    """``exc``, or the 507 it stands for when it says the disk is full (SQLite's SQLITE_FULL,
    ENOSPC: ``store.is_storage_full``)."""
    if exc is not None and not isinstance(exc, E.ApiError) and is_storage_full(exc):
        return E.storage_full()
    return exc


__all__ = ["CoderChatHandler", "parse_positive_int", "web"]
