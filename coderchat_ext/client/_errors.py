"""The client's exceptions: one base class, one subclass per way a call can fail."""

from __future__ import annotations

import json
from typing import Any


class ChatClientError(Exception):
    """Base of every error the client raises on its own (transport errors from httpx and
    websockets that are not retried propagate unchanged)."""


class ApiError(ChatClientError):
    """The server refused a request (the error body of docs/api.md#errors).

    ``status`` is the HTTP status code; ``message``, ``detail`` and ``validations`` (a list of
    ``{"field", "detail"}`` dicts) come from the JSON body. ``body`` is the whole decoded body
    (``None`` when it was not JSON).
    """

    def __init__(
        self,
        status: int,
        message: str,
        detail: str | None = None,
        validations: list[dict[str, Any]] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status}: {message}" + (f" ({detail})" if detail else ""))
        self.status = status
        self.message = message
        self.detail = detail
        self.validations = validations or []
        self.body = body

    @classmethod
    def from_response(cls, status: int, reason: str, content: bytes) -> ApiError:
        """Build from a raw response: the JSON error body when there is one, else the text
        (or the reason phrase when the body is empty)."""
        text = content.decode("utf-8", "replace")
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            validations = body.get("validations")
            return cls(
                status,
                body["message"],
                body.get("detail") if isinstance(body.get("detail"), str) else None,
                validations if isinstance(validations, list) else None,
                body,
            )
        message = text.strip()[:500] or reason or f"HTTP {status}"
        return cls(status, message, None, None, body)


class ServerNotFound(ChatClientError):
    """No coderchat server could be discovered (see :func:`discover_server`)."""


class TurnTimeout(ChatClientError, TimeoutError):
    """``run_turn`` gave up waiting; the turn may still be running on the server
    (``chat_id`` says where)."""

    def __init__(self, chat_id: str, timeout: float) -> None:
        super().__init__(f"chat {chat_id}: the turn did not finish within {timeout:g} s")
        self.chat_id = chat_id
        self.timeout = timeout
