"""The fake provider HTTP server: tornado on loopback, in its own thread and event loop.

Routes (the ``/v1`` prefix is optional on the provider routes):

- ``POST /v1/messages`` (Anthropic), ``POST /v1/responses`` (OpenAI Responses),
  ``POST /v1/chat/completions`` (Chat Completions): the next turn, streaming when the body has
  ``"stream": true``.
- ``GET /v1/models``: the script's ``models``, in Anthropic's shape when the request carries an
  ``anthropic-version`` header, else OpenAI's.
- Control API for another process (JSON bodies; 400 with ``{"error": {"type":
  "invalid_script", "message"}}`` on a bad script): ``POST /_fake/script`` (replace the
  script), ``POST /_fake/push`` (a turn, a list of turns or ``{"turns": [...]}``),
  ``POST /_fake/replay`` (``{"path", "status", "content_type", "headers"}``),
  ``GET /_fake/requests`` (recorded requests; credential headers are replaced by
  ``[redacted sha256:<12 hex>]`` so keys never leave the process yet stay comparable),
  ``POST /_fake/reset``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from . import wire as _wire
from .script import (
    ErrorSpec,
    ReplaySpec,
    Script,
    ScriptError,
    Turn,
    Wire,
    conversation_position,
    parse_script,
    parse_turn,
    select_turn,
)

log = logging.getLogger(__name__)

CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})
"""Headers the control API never returns in clear."""

_STOP_TIMEOUT = 10.0
_REQUIRED_FIELDS: dict[Wire, tuple[str, ...]] = {
    "anthropic": ("model", "max_tokens", "messages"),
    "responses": ("model",),
    "chat": ("model", "messages"),
}


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received: ``headers`` with lower-case names (as sent, API keys
    included: only the in-process list holds them), ``json`` the parsed body (``None`` when
    empty or not JSON), ``body`` the raw bytes, ``wire`` the API it was addressed to."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes = b""
    wire: Wire | None = None

    def redacted(self) -> dict[str, Any]:
        """A JSON-able view with credential header values replaced by a short hash."""
        headers = {
            name: _redact(value) if name in CREDENTIAL_HEADERS else value
            for name, value in self.headers.items()
        }
        return {
            "method": self.method,
            "path": self.path,
            "headers": headers,
            "json": self.json,
            "wire": self.wire,
        }


def _redact(value: str) -> str:
    return f"[redacted sha256:{hashlib.sha256(value.encode()).hexdigest()[:12]}]"


@dataclass
class _State:
    """What the handlers share with the owning thread; every access holds ``lock``."""

    script: Script
    lock: threading.Lock = field(default_factory=threading.Lock)
    queue: deque[Turn] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)

    def next_turn(self, wire: Wire, body: Mapping[str, Any]) -> Turn:
        with self.lock:
            if self.queue:
                return self.queue.popleft()
            script = self.script
        return select_turn(script, wire, body)


class FakeProviderServer:
    """A loopback HTTP server speaking the Anthropic Messages, OpenAI Responses and Chat
    Completions wire formats from a script (see :mod:`coderchat_ext.providers.fake`).

    ``start()`` runs it in a daemon thread with its own event loop and returns once it listens;
    ``stop()`` closes every connection (ending streams in flight) and joins the thread. Use as a
    context manager. ``push``, ``replay``, ``set_script``, ``reset`` and ``requests`` are safe to
    call from any thread while it runs. Raises :class:`~.script.ScriptError` for invalid
    scripts, turns or replay files.
    """

    def __init__(
        self,
        script: Mapping[str, Any] | Script | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        parsed = parse_script(script)
        self._state = _State(script=parsed, queue=deque(parsed.turns))
        self._host = host
        self._port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: HTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (the requested one before ``start``)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT``: the Anthropic SDK's ``base_url``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def openai_base_url(self) -> str:
        """``url + "/v1"``: the OpenAI SDK's ``base_url``."""
        return self.url + "/v1"

    def start(self) -> FakeProviderServer:
        """Listen and serve in a background thread. Raises ``OSError`` when the address cannot
        be bound and ``RuntimeError`` when already running."""
        if self._thread is not None:
            raise RuntimeError("the fake provider server is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._run, args=(ready, failure), name="fake-provider-server", daemon=True
        )
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._thread = thread
        return self

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            sockets = bind_sockets(self._port, self._host)
            server = HTTPServer(self._application())
            server.add_sockets(sockets)
        except BaseException as exc:
            failure.append(exc)
            loop.close()
            ready.set()
            return
        self._port = sockets[0].getsockname()[1]
        self._loop, self._server = loop, server
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.stop()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.close_all_connections(), _STOP_TIMEOUT)
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        """Stop serving, close open connections and join the thread (no-op when stopped)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(_STOP_TIMEOUT * 2)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_STOP_TIMEOUT)
            self._thread = self._loop = self._server = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- script ----------------------------------------------------------------------

    def set_script(self, script: Mapping[str, Any] | Script) -> None:
        """Replace the script; its ``turns`` replace the queue."""
        parsed = parse_script(script)
        with self._state.lock:
            self._state.script = parsed
            self._state.queue = deque(parsed.turns)

    def push(self, *turns: Mapping[str, Any]) -> None:
        """Append turns to the queue (all or none: an invalid turn raises ``ScriptError``)."""
        parsed = [parse_turn(turn) for turn in turns]
        with self._state.lock:
            self._state.queue.extend(parsed)

    def replay(
        self,
        path: str | os.PathLike[str],
        *,
        status: int = 200,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue a response that serves ``path`` byte for byte (read now) with ``status``,
        ``content_type`` (default ``text/event-stream; charset=utf-8`` for ``.sse``,
        ``application/json`` otherwise) and extra ``headers``."""
        spec = {"path": os.fspath(path), "status": status, "content_type": content_type}
        self.push({"replay": {**spec, "headers": headers or {}}})

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def pending(self) -> int:
        """How many queued turns have not been served yet."""
        with self._state.lock:
            return len(self._state.queue)

    def reset(self) -> None:
        """Clear the queue and the recorded requests (rules and default stay)."""
        with self._state.lock:
            self._state.queue.clear()
            self._state.requests.clear()

    # --- routes ----------------------------------------------------------------------

    def _application(self) -> Application:
        state = {"server": self}
        routes: list[Any] = [
            (r"(?:/v1)?/messages", _ProviderHandler, {**state, "wire": "anthropic"}),
            (r"(?:/v1)?/responses", _ProviderHandler, {**state, "wire": "responses"}),
            (r"(?:/v1)?/chat/completions", _ProviderHandler, {**state, "wire": "chat"}),
            (r"(?:/v1)?/models", _ModelsHandler, state),
            (r"/_fake/(script|push|replay|requests|reset)", _ControlHandler, state),
        ]
        return Application(
            routes,
            default_handler_class=_NotFoundHandler,
            default_handler_args=state,
            log_function=_log_request,
            compress_response=False,
        )


def _log_request(handler: RequestHandler) -> None:
    # Method, path and status only: headers carry API keys.
    request = handler.request
    log.debug("%s %s -> %s", request.method, request.path, handler.get_status())


class _BaseHandler(RequestHandler):
    def initialize(self, server: FakeProviderServer) -> None:
        self.fake = server
        self.closed = asyncio.Event()

    def on_connection_close(self) -> None:
        self.closed.set()

    def check_xsrf_cookie(self) -> None:
        """No XSRF: SDK clients send no cookies."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado's own errors (405, 500) as JSON, like every other answer."""
        self.set_header("content-type", "application/json")
        error = {"type": "api_error", "message": self._reason}
        self.finish(json.dumps({"error": error}))

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("content-type", "application/json")
        self.finish(json.dumps(value))

    def json_body(self) -> Any:
        if not self.request.body:
            return None
        try:
            return json.loads(self.request.body)
        except ValueError:
            return None


class _NotFoundHandler(_BaseHandler):
    def prepare(self) -> None:
        self.write_json(
            {"error": {"type": "not_found_error", "message": f"no route {self.request.path}"}},
            404,
        )


class _ModelsHandler(_BaseHandler):
    def get(self) -> None:
        with self.fake._state.lock:
            models = list(self.fake._state.script.models)
        if "anthropic-version" in self.request.headers:
            data = [
                {
                    "type": "model",
                    "id": name,
                    "display_name": name,
                    "created_at": "2025-01-01T00:00:00Z",
                }
                for name in models
            ]
            self.write_json(
                {
                    "data": data,
                    "has_more": False,
                    "first_id": models[0] if models else None,
                    "last_id": models[-1] if models else None,
                }
            )
            return
        listing = [
            {"id": name, "object": "model", "created": 1735689600, "owned_by": "fake"}
            for name in models
        ]
        self.write_json({"object": "list", "data": listing})


class _ControlHandler(_BaseHandler):
    def get(self, action: str) -> None:
        if action != "requests":
            self.write_json({"error": {"type": "method_not_allowed", "message": "use POST"}}, 405)
            return
        self.write_json([r.redacted() for r in self.fake.requests])

    def post(self, action: str) -> None:
        body = self.json_body()
        try:
            if action == "script":
                if not isinstance(body, dict):
                    raise ScriptError("the script must be a JSON object")
                self.fake.set_script(body)
            elif action == "push":
                turns = body.get("turns") if isinstance(body, dict) and "turns" in body else body
                turns = turns if isinstance(turns, list) else [turns]
                if not all(isinstance(t, dict) for t in turns):
                    raise ScriptError("push takes a turn object, a list of them or {turns: [...]}")
                self.fake.push(*turns)
            elif action == "replay":
                if not isinstance(body, dict):
                    raise ScriptError("replay takes {path, status, content_type, headers}")
                self.fake.push({"replay": body})
            elif action == "reset":
                self.fake.reset()
            else:
                error = {"type": "method_not_allowed", "message": "use GET"}
                self.write_json({"error": error}, 405)
                return
        except ScriptError as exc:
            self.write_json({"error": {"type": "invalid_script", "message": str(exc)}}, 400)
            return
        self.write_json({"ok": True, "pending": self.fake.pending})


class _ProviderHandler(_BaseHandler):
    def initialize(self, server: FakeProviderServer, wire: Wire) -> None:  # type: ignore[override]
        super().initialize(server)
        self.wire: Wire = wire

    async def pause(self, seconds: float) -> bool:
        """Sleep unless the client goes away first; ``False`` when it did."""
        if seconds <= 0:
            return not self.closed.is_set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closed.wait(), seconds)
        return not self.closed.is_set()

    def common_headers(self) -> None:
        request_id = secrets.token_hex(12)
        if self.wire == "anthropic":
            self.set_header("request-id", "req_" + request_id)
        else:
            self.set_header("x-request-id", "req_" + request_id)

    async def post(self) -> None:
        body = self.json_body()
        state = self.fake._state
        record = RecordedRequest(
            method=self.request.method or "POST",
            path=self.request.path,
            headers={name.lower(): value for name, value in self.request.headers.get_all()},
            json=body,
            body=self.request.body,
            wire=self.wire,
        )
        with state.lock:
            state.requests.append(record)
        self.common_headers()
        if not isinstance(body, dict):
            error = ErrorSpec(type="invalid_request_error", message="The body is not valid JSON.")
            self.send_wire_error(400, error)
            return
        missing = [name for name in _REQUIRED_FIELDS[self.wire] if name not in body]
        if missing:
            self.send_missing_field(missing[0])
            return
        turn = state.next_turn(self.wire, body)
        if turn.replay is not None:
            self.serve_replay(turn.replay)
            return
        await self.serve_turn(turn, body)

    def send_missing_field(self, name: str) -> None:
        if self.wire == "anthropic":
            error = ErrorSpec(type="invalid_request_error", message=f"{name}: Field required")
        else:
            error = ErrorSpec(
                type="invalid_request_error",
                message=f"Missing required parameter: '{name}'.",
                param=name,
                code="missing_required_parameter",
            )
        self.send_wire_error(400, error)

    def send_wire_error(self, status: int, error: ErrorSpec | None, body: Any = None) -> None:
        self.set_status(status)
        self.set_header("content-type", "application/json")
        if self.wire == "anthropic" and (status in (408, 409, 429) or status >= 500):
            self.set_header("x-should-retry", "true")
        self.finish(_wire.error_body(self.wire, status, error, body))

    def serve_replay(self, replay: ReplaySpec) -> None:
        self.set_status(replay.status)
        self.set_header("content-type", replay.media_type)
        for name, value in replay.headers.items():
            self.set_header(name, value)
        self.finish(replay.data)

    async def serve_turn(self, turn: Turn, body: dict[str, Any]) -> None:
        for name, value in turn.headers.items():
            self.set_header(name, value)
        retry_after = turn.retry_after
        if retry_after is not None:
            text = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
            self.set_header("retry-after", text)
        if not await self.pause(turn.stall_headers):
            return
        stream = body.get("stream") is True
        if turn.status is not None:
            self.send_wire_error(turn.status, turn.error, turn.body)
            return
        user_text, _ = conversation_position(self.wire, body)
        plan = _wire.build_plan(turn, self.wire, body, user_text)
        if not stream:
            await self.serve_body(turn, plan)
            return
        rendered = _wire.render_stream(plan)
        cut = len(rendered.frames)
        if turn.error_midstream is True:
            cut = rendered.text_end
        elif turn.error_midstream is not None:
            cut = rendered.cut_after(turn.error_midstream)
        elif turn.drop_after is not None:
            cut = rendered.cut_after(turn.drop_after)
        self.set_header("content-type", "text/event-stream; charset=utf-8")
        self.set_header("cache-control", "no-cache")
        try:
            await self.flush()
            if not await self.pause(turn.stall):
                return
            for frame in rendered.frames[:cut]:
                if frame.chunk and not await self.pause(turn.chunk_delay):
                    return
                self.write(frame.data)
                await self.flush()
            if turn.drop_after is not None:
                self.detach().close()
                return
            if turn.error_midstream is not None:
                for frame in rendered.error_frames(cut, turn.error):
                    self.write(frame.data)
            self.finish()
        except StreamClosedError:
            # The client went away mid-stream; nothing is left to tell it.
            return

    async def serve_body(self, turn: Turn, plan: _wire.Plan) -> None:
        if not await self.pause(turn.stall):
            return
        if turn.drop_after is not None:
            self.detach().close()
            return
        if turn.error_midstream is not None:
            error = _wire.midstream_http_error(self.wire, turn.error)
            self.send_wire_error(_wire.midstream_status(self.wire, turn.error), error)
            return
        self.set_header("content-type", "application/json")
        self.finish(json.dumps(_wire.render_body(plan), ensure_ascii=False))
