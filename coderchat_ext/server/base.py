"""The base of every coderchat handler: authentication, authorization, the caller's identity,
the validation of query parameters and JSON bodies (the API's edge), and the one place where
an error becomes an HTTP response (docs/api.md#errors)."""

from __future__ import annotations

import functools
import inspect
import json
from typing import Annotated, Any, NoReturn, Protocol, overload

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import Field, TypeAdapter, ValidationError
from tornado import web

from .. import errors as E
from ..chatd.service import Actor, parse_positive_int
from ..models import MAX_PAGE_LIMIT, MAX_ROW_ID
from ..store import is_storage_full
from ..wiring import Services

AUTH_RESOURCE = "coderchat"
ADMIN_RESOURCE = "coderchat:admin"
MAX_BODY_BYTES = 256 * 1024
"""Request bodies are capped at 256 KiB (upstream's cap; docs/api.md#limits)."""


@functools.lru_cache(maxsize=16)
def _bounded_int(minimum: int, maximum: int) -> TypeAdapter[int]:
    return TypeAdapter(Annotated[int, Field(ge=minimum, le=maximum)])


_UNIMPLEMENTED = {
    method.lower(): getattr(web.RequestHandler, method.lower())
    for method in web.RequestHandler.SUPPORTED_METHODS
}
"""Tornado's verb methods that answer 405."""


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


class Host(Protocol):
    """What the handlers need of the extension (``CoderChatApp``, in tornado's settings under
    ``coderchat``): its services once started, who owns a chat, who is an admin."""

    services: Services | None
    admin_users: Any
    """The usernames that may change deployment settings (empty: whoever the authorizer
    allows)."""

    def owner_for(self, user: Any) -> str: ...


class CoderChatMixin(ExtensionHandlerMixin, JupyterHandler):
    """What REST and WebSocket handlers share: the extension's services and the caller."""

    auth_resource = AUTH_RESOURCE

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        """Answer 503 until the extension's async start hook has started the services."""
        result = super().prepare(*args, **kwargs)
        if inspect.isawaitable(result):
            await result
        if self.host.services is None:
            raise E.Unavailable("coderchat_ext is starting; try again in a moment.")

    @property
    def host(self) -> Host:
        host: Host = self.settings["coderchat"]
        return host

    @property
    def services(self) -> Services:
        """The running extension's services (:meth:`prepare` answered 503 before start)."""
        services = self.host.services
        if services is None:
            raise E.Unavailable("coderchat_ext is stopping; try again in a moment.")
        return services

    async def actor(self) -> Actor:
        """The caller as an :class:`Actor`: owner name per ``CoderChatApp.owner_for`` and
        admin when the authorizer grants ``write`` on ``coderchat:admin`` and ``admin_users``
        (if set) lists them."""
        user = self.current_user
        username = self.host.owner_for(user)
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, "write", ADMIN_RESOURCE)
        )
        admins = self.host.admin_users
        is_admin = bool(allowed) and (not admins or user.username in admins or username in admins)
        return Actor(username=username, is_admin=is_admin)

    @overload
    def int_arg(
        self, name: str, *, default: int, minimum: int = ..., maximum: int = ..., message: str = ...
    ) -> int: ...

    @overload
    def int_arg(
        self,
        name: str,
        *,
        default: None = None,
        minimum: int = ...,
        maximum: int = ...,
        message: str = ...,
    ) -> int | None: ...

    def int_arg(
        self,
        name: str,
        *,
        default: int | None = None,
        minimum: int = 0,
        maximum: int = MAX_ROW_ID,
        message: str | None = None,
    ) -> int | None:
        """The integer query parameter ``name`` in ``minimum..maximum`` (default: up to the
        largest row id), ``default`` when absent or empty. Raises 400 ``message`` (default
        "Invalid <name> parameter.") with ``validations`` ``[{field: name, detail}]``."""
        raw = self.get_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            return _bounded_int(minimum, maximum).validate_python(raw)
        except ValidationError as exc:
            raise E.invalid(exc, message or f"Invalid {name} parameter.", name) from None

    def limit_arg(self, default: int = 50) -> int:
        """The ``limit`` query parameter: 1..200 (docs/api.md#limits)."""
        return self.int_arg(
            "limit",
            default=default,
            minimum=1,
            maximum=MAX_PAGE_LIMIT,
            message=f"Invalid limit parameter (1-{MAX_PAGE_LIMIT}).",
        )

    def allowed_methods(self) -> list[str]:
        """The HTTP methods this handler class implements (the ``Allow`` header of a 405)."""
        return [
            method
            for method in self.SUPPORTED_METHODS
            if getattr(type(self), method.lower()) is not _UNIMPLEMENTED.get(method.lower())
        ]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Write every error, tornado's and Jupyter's own (403, 404, 405, ...) included, as
        the JSON body of docs/api.md#errors (``{message, detail?, validations?}``); a 405 also gets
        the ``Allow`` header (RFC 9110 §15.5.6)."""
        exc_info = kwargs.get("exc_info")
        exc = _api_error(exc_info[1] if exc_info else None)
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        if isinstance(exc, E.ApiError):
            self.set_status(exc.status)
            body = exc.body()
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            body = {"message": exc.log_message % exc.args if exc.args else exc.log_message}
        else:
            body = {"message": self._reason}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

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


class CoderChatHandler(CoderChatMixin, APIHandler):
    """Parses, authorizes, calls the service, serializes. No business logic here."""

    def json_body(self) -> dict[str, Any]:
        """The request's JSON object; an empty body is ``{}`` except on PUT, which replaces a
        whole resource. 413 over 256 KiB; 400 "Invalid JSON body." when the body is not a JSON
        object, nests too deeply, holds a string that is not Unicode text (a lone surrogate
        escape such as ``"\\ud800"``, which no store or answer can encode) or
        ``NaN``/``Infinity``, or when a PUT has no body."""
        raw = self.request.body or b""
        if len(raw) > MAX_BODY_BYTES:
            raise E.PayloadTooLarge("Request body too large.", "Bodies are limited to 256 KiB.")
        if not raw.strip():
            if self.request.method == "PUT":
                raise E.BadRequest("Invalid JSON body.", "A PUT needs a JSON object body.")
            return {}
        try:
            value = json.loads(raw, parse_constant=_no_constant)
            json.dumps(value, ensure_ascii=False).encode()
        except RecursionError:
            raise E.BadRequest("Invalid JSON body.", "The body is nested too deeply.") from None
        except UnicodeEncodeError:
            raise E.BadRequest(
                "Invalid JSON body.", "A string holds an unpaired UTF-16 surrogate escape."
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise E.BadRequest("Invalid JSON body.", str(exc)) from None
        if not isinstance(value, dict):
            raise E.BadRequest("Invalid JSON body.", "The body must be a JSON object.")
        return value

    def body_as(self, model: type[E.ModelT]) -> E.ModelT:
        """The JSON body (:meth:`json_body`) validated as the pydantic ``model``; 400 "Invalid
        request body." with ``validations`` when the model refuses it."""
        return E.validate(model, self.json_body())

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        if status == 204:
            self.finish()
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value))


__all__ = ["CoderChatHandler", "parse_positive_int", "web"]
