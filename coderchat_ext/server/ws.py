"""WebSocket handlers: the per-chat stream and the per-owner watch feed
(docs/stream-protocol.md: frames, the on-connect replay, the watch feed).

A chat stream frame is a JSON array of up to 256 events; a watch frame is one event. Both are
authenticated with ``@ws_authenticated`` (403 instead of a login redirect) and authorized with
``execute`` on resource ``coderchat`` before the upgrade, so HTTP errors are still possible.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .. import errors as E
from ..chatd.stream import MAX_BATCH, StreamClosed, Subscription
from .base import AUTH_RESOURCE, CoderChatMixin

log = logging.getLogger(__name__)


class _Socket(WebSocketMixin, WebSocketHandler, CoderChatMixin):
    """Common upgrade checks and the send loop.

    The request is checked (:meth:`check_request`: arguments, access) before the upgrade, so a
    bad one still gets its HTTP error; the subscription is opened only in :meth:`open`, once
    tornado accepted the handshake (a refused upgrade, 400 or 403, must leave nothing behind),
    and closed on every way out: the client leaving, :meth:`open` failing, the send loop
    ending.
    """

    single_event_frames = False
    _sub: Subscription | None = None
    _pump: asyncio.Task[None] | None = None
    _gone = False

    async def pre_get(self) -> None:
        user = self.current_user
        if user is None:
            raise web.HTTPError(403)
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, user, "execute", AUTH_RESOURCE)
        )
        if not allowed:
            raise web.HTTPError(403)

    async def check_request(self) -> None:
        """Raise an :class:`~coderchat_ext.errors.ApiError` for a request the upgrade must
        refuse (bad arguments, a resource the caller may not see)."""

    async def _open_subscription(self) -> tuple[Subscription, list[dict[str, Any]]]:
        """Subscribe, then read what the client gets first; ``(subscription, initial
        events)``. Raises ``ApiError`` like :meth:`check_request`."""
        raise NotImplementedError

    async def plain_get(self) -> bool:
        """Answer a plain (not upgrading) GET here instead; True when it did."""
        return False

    def _refuse_non_handshake(self) -> None:
        """400 when the request is not a WebSocket handshake and 403 when it comes from
        another origin, in the API's JSON error shape (tornado answers these as text), before
        anything is opened; tornado's own checks still follow."""
        headers = self.request.headers
        if headers.get("Upgrade", "").lower() != "websocket":
            raise E.BadRequest(
                'Can "Upgrade" only to "WebSocket".', "This endpoint is a WebSocket upgrade."
            )
        if "upgrade" not in (s.strip().lower() for s in headers.get("Connection", "").split(",")):
            raise E.BadRequest('"Connection" must be "Upgrade".')
        origin = headers.get("Origin") or headers.get("Sec-Websocket-Origin")
        if origin is not None and not self.check_origin(origin):
            raise E.Forbidden("Cross origin websockets not allowed")

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        try:
            await self.pre_get()
            if await self.plain_get():
                return
            self._refuse_non_handshake()
            await self.check_request()
        except E.ApiError as exc:
            self.set_status(exc.status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(exc.body()))
            return
        await super().get(*args, **kwargs)

    async def open(self, *args: Any, **kwargs: Any) -> None:
        try:
            sub, initial = await self._open_subscription()
        except E.ApiError as exc:
            # Checked before the upgrade, gone since (a chat deleted meanwhile).
            self.close(1008, exc.message[:120])
            return
        if self._gone:
            sub.close(1000, "closed")
            return
        self._sub = sub
        self._pump = asyncio.ensure_future(self._send_loop(sub, initial))

    async def _send(self, events: list[dict[str, Any]]) -> None:
        if self.single_event_frames:
            for event in events:
                await self.write_message(json.dumps(event))
        else:
            for start in range(0, len(events), MAX_BATCH):
                await self.write_message(json.dumps(events[start : start + MAX_BATCH]))

    async def _send_loop(self, sub: Subscription, initial: list[dict[str, Any]]) -> None:
        try:
            if initial:
                await self._send(initial)
            while True:
                await self._send(await sub.next_batch())
        except StreamClosed as closed:
            self.close(closed.code, closed.reason)
        except WebSocketClosedError:
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("stream send failed")
            self.close(1011, "internal error")
        finally:
            sub.close(1000, "closed")

    def on_message(self, message: str | bytes) -> None:
        """Clients do not send on these sockets; anything received is ignored."""

    def on_close(self) -> None:
        self._gone = True
        if self._sub is not None:
            self._sub.close(1000, "closed")
        if self._pump is not None:
            self._pump.cancel()


class ChatStreamSocket(_Socket):
    """``GET chats/{id}/stream?after_id=N``: the connect snapshot, then live events."""

    async def check_request(self) -> None:
        self.int_arg("after_id", default=0)
        await self.services.chats.get_chat(await self.actor(), self.path_args[0])

    async def _open_subscription(self) -> tuple[Subscription, list[dict[str, Any]]]:
        after_id = self.int_arg("after_id", default=0)
        return await self.services.chats.open_stream(
            await self.actor(), self.path_args[0], after_id
        )


class WatchSocket(_Socket):
    """``GET chats/watch``: one ``ChatWatchEvent`` per frame for the caller's chats."""

    single_event_frames = True

    async def _open_subscription(self) -> tuple[Subscription, list[dict[str, Any]]]:
        return await self.services.chats.open_watch(await self.actor()), []


class JobLogsSocket(_Socket):
    """``GET jobs/{id}/logs?after=N``: the build logs with ``id > after`` as a JSON array; with
    ``follow=1`` a WebSocket that sends them one ``ProvisionerJobLog`` per frame, then each new
    one, and closes with 1000 when the job has ended."""

    single_event_frames = True

    def _after(self) -> int:
        return self.int_arg("after", default=0)

    async def plain_get(self) -> bool:
        if self.get_argument("follow", "") in ("1", "true"):
            return False
        logs = await self.services.workspaces.job_logs(
            await self.actor(), self.path_args[0], self._after()
        )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps([entry.dump() for entry in logs]))
        return True

    async def check_request(self) -> None:
        await self.services.workspaces.job_logs(
            await self.actor(), self.path_args[0], self._after()
        )

    async def _open_subscription(self) -> tuple[Subscription, list[dict[str, Any]]]:
        stops: list[Callable[[], None]] = []

        def unsubscribe() -> None:
            for stop in stops:
                stop()

        sub = Subscription(unsubscribe)
        initial, stop = await self.services.workspaces.follow_job_logs(
            await self.actor(),
            self.path_args[0],
            self._after(),
            push=sub.push,
            done=lambda: sub.close(1000, "job completed"),
        )
        if sub.closed:
            stop()
        else:
            stops.append(stop)
        return sub, initial


def ws_handlers() -> list[tuple[str, type[Any]]]:
    base = "api/coderchat"
    return [
        (rf"{base}/chats/watch", WatchSocket),
        (rf"{base}/chats/([^/]+)/stream", ChatStreamSocket),
        (rf"{base}/jobs/([^/]+)/logs", JobLogsSocket),
    ]
