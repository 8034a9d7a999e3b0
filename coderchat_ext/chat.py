"""``Chat``: a chat of the coderchat server, used from a notebook or a script (docs/client.md).

Every call is blocking and safe inside a Jupyter kernel: it goes through a
:class:`~coderchat_ext.client.ChatClient`, whose I/O runs on its own loop thread, so the
kernel's running loop is never re-entered. The server is found as docs/client.md#server-discovery
says (``CODERCHAT_URL``/``CODERCHAT_TOKEN``, then the kernel's parent Jupyter server).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import httpx

from .client import ApiError, ChatClient, ServerNotFound, TurnResult, discover_server
from .models import (
    MAX_PAGE_LIMIT,
    USAGE_TOKEN_FIELDS,
    ChatMessage,
    ChatMessagePart,
    ChatMessageUsage,
)

if TYPE_CHECKING:
    from .models import Chat as ChatModel
    from .widget import ChatWidget

NO_SERVER = (
    "no coderchat server found: start JupyterLab with coderchat_ext enabled or set "
    "CODERCHAT_URL/CODERCHAT_TOKEN"
)

_client: ChatClient | None = None
_client_lock = threading.Lock()


class ChatRequestError(RuntimeError):
    """A notebook-facing failure with a message a user can act on (no server, no such chat
    or model, the server refused the request). Not to be confused with
    :class:`~coderchat_ext.models.ChatError`, the classified error of a failed turn on the wire."""


def default_client() -> ChatClient:
    """The process-wide :class:`ChatClient` for the discovered server (created once).
    Raises :class:`ChatRequestError` when no server is found."""
    global _client
    with _client_lock:
        if _client is None:
            try:
                info = discover_server()
            except ServerNotFound as exc:
                raise ChatRequestError(f"{NO_SERVER} ({exc})") from None
            _client = ChatClient(info.url, info.token)
        return _client


def reset_client() -> None:
    """Forget the shared client (after changing ``CODERCHAT_URL``, or in tests)."""
    global _client
    with _client_lock:
        client, _client = _client, None
    if client is not None:
        client.close()


@contextlib.contextmanager
def api_errors(client: ChatClient) -> Iterator[None]:
    """Turn the errors of ``client`` calls made in the ``with`` block into what a notebook
    user sees, a :class:`ChatRequestError`: a refused request keeps the server's message and
    detail; an unreachable server says where it was looked for."""
    try:
        yield
    except ApiError as exc:
        raise ChatRequestError(str(exc)) from None
    except (httpx.TransportError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise ChatRequestError(
            f"cannot reach the coderchat server at {client.url}: {reason}. {NO_SERVER}"
        ) from None


def _usd(micros: int) -> float:
    return micros / 1_000_000


def _part_text(part: ChatMessagePart) -> str:
    if part.type == "text":
        return part.text or ""
    if part.type == "reasoning":
        return f"[reasoning] {part.text or ''}"
    if part.type == "tool-call":
        return f"[tool {part.tool_name}] {part.args}"
    if part.type == "tool-result":
        flag = " error" if part.is_error else ""
        text = str(part.result)
        return f"[result{flag} {part.tool_name}] {text[:500]}" + ("..." if len(text) > 500 else "")
    return f"[{part.type}]"


def transcript(messages: list[ChatMessage]) -> str:
    """Plain text of ``messages``: one block per message, ``role:`` then its parts (workspace
    context messages left out)."""
    blocks = []
    for message in messages:
        if message.is_workspace_context:
            continue
        lines = [_part_text(p) for p in message.content]
        blocks.append(f"{message.role}: " + "\n".join(line for line in lines if line))
    return "\n\n".join(blocks)


@dataclass
class Turn(TurnResult):
    """The result of :meth:`Chat.send` and ``%%chat``: a
    :class:`~coderchat_ext.client.TurnResult` (``text``, ``tool_calls``, ``tool_results``,
    ``usage``, ``status``, ``error``, ``messages``) plus ``cost`` in US dollars and a short
    repr."""

    @classmethod
    def of(cls, result: TurnResult) -> Turn:
        return cls(**{f.name: getattr(result, f.name) for f in fields(TurnResult)})

    @property
    def cost(self) -> float:
        """The turn's cost in US dollars (0 when the model has no price)."""
        return _usd(self.total_cost_micros)

    def transcript(self) -> str:
        """The turn as plain text."""
        return transcript(self.messages)

    def __repr__(self) -> str:
        usage = self.usage
        tokens = (usage.input_tokens or 0) + (usage.output_tokens or 0)
        error = f", error={self.error.message!r}" if self.error is not None else ""
        return (
            f"Turn(chat_id={self.chat_id!r}, status={self.status!r}, "
            f"tool_calls={len(self.tool_calls)}, tokens={tokens}, cost=${self.cost:.4f}{error})"
        )


class PendingTurn:
    """A turn started with ``send(..., wait=False)``: :meth:`result` blocks until it ends."""

    def __init__(self, future: concurrent.futures.Future[TurnResult]) -> None:
        self._future = future

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> Turn:
        """The :class:`Turn` (raises what the turn raised; ``TimeoutError`` after
        ``timeout`` seconds)."""
        try:
            return Turn.of(self._future.result(timeout))
        except ApiError as exc:
            raise ChatRequestError(str(exc)) from None


def resolve_model(client: ChatClient, model: str | None) -> str | None:
    """A model config id for ``model``: an id, a model name (``claude-sonnet-5-5``), a
    display name or ``provider/model``, case-insensitive. ``None`` -> the server default.
    Raises :class:`ChatRequestError` listing the choices."""
    if model is None:
        return None
    with api_errors(client):
        configs = client.list_model_configs()
    wanted = model.lower()
    for config in configs:
        names = {
            config.id,
            config.model,
            config.display_name or "",
            f"{config.provider}/{config.model}",
        }
        if wanted in {n.lower() for n in names if n}:
            return str(config.id)
    choices = ", ".join(f"{c.provider}/{c.model}" for c in configs) or "none"
    raise ChatRequestError(f"unknown model {model!r}; available: {choices}")


def resolve_workspace(client: ChatClient, workspace: str | None) -> str | None:
    """A workspace id for ``workspace``: an id or a workspace name. Raises
    :class:`ChatRequestError`."""
    if workspace is None:
        return None
    with api_errors(client):
        listed = client.list_workspaces()
    for item in listed:
        if workspace in (item.id, item.name):
            return item.id
    raise ChatRequestError(f"unknown workspace {workspace!r}")


class Chat:
    """A chat on the server.

    ``Chat(chat_id)`` (or :meth:`use`) refers to an existing chat; :meth:`new` creates one.
    A chat created without content exists locally only until the first :meth:`send` (the
    server creates a chat from its first message). ``client`` defaults to the shared
    :func:`default_client`.
    """

    def __init__(self, chat_id: str | None = None, *, client: ChatClient | None = None) -> None:
        self.client = client or default_client()
        self.chat_id = chat_id or None
        self.model_config_id: str | None = None
        self.workspace_id: str | None = None
        self._widget: ChatWidget | None = None
        if self.chat_id is not None:
            self.info()  # fails now, clearly, for an unknown id

    @classmethod
    def use(cls, chat_id: str, *, client: ChatClient | None = None) -> Chat:
        """The existing chat ``chat_id`` (:class:`ChatRequestError` when there is none)."""
        return cls(chat_id, client=client)

    @classmethod
    def new(
        cls,
        content: str | None = None,
        model: str | None = None,
        workspace: str | None = None,
        *,
        client: ChatClient | None = None,
    ) -> Chat:
        """A new chat with ``model`` (see :func:`resolve_model`) bound to ``workspace`` (id
        or name). With ``content`` the chat is created now and its first turn starts (wait
        for it with :meth:`wait`); without, it is created by the first :meth:`send`."""
        chat = cls(client=client)
        chat.model_config_id = resolve_model(chat.client, model)
        chat.workspace_id = resolve_workspace(chat.client, workspace)
        if content is not None:
            with api_errors(chat.client):
                created = chat.client.create_chat(
                    content, model_config_id=chat.model_config_id, workspace_id=chat.workspace_id
                )
            chat.chat_id = created.id
        return chat

    def __repr__(self) -> str:
        return f"Chat({self.chat_id!r})"

    def _require_id(self) -> str:
        if self.chat_id is None:
            raise ChatRequestError("this chat has no messages yet: send one first")
        return self.chat_id

    def info(self) -> ChatModel:
        """The chat as the server has it now (title, status, workspace, last error)."""
        with api_errors(self.client):
            return self.client.get_chat(self._require_id())

    @property
    def title(self) -> str:
        return self.info().title if self.chat_id else ""

    @property
    def status(self) -> str:
        return self.info().status if self.chat_id else "new"

    def _create_options(self) -> dict[str, Any]:
        return {"workspace_id": self.workspace_id} if self.workspace_id else {}

    def send(self, text: str, wait: bool = True, *, timeout: float = 600.0) -> Any:
        """Send ``text`` (queued when the chat is busy). With ``wait`` block until the turn
        ends and return its :class:`Turn`; else return a :class:`PendingTurn`. The first
        send of a chat made by :meth:`new` without content creates it. Raises
        :class:`ChatRequestError` for empty text or a refused request, ``TurnTimeout`` after
        ``timeout`` seconds (the turn keeps running: :meth:`interrupt` stops it)."""
        if not text or not text.strip():
            raise ChatRequestError("Content is required: an empty message is not sent.")
        creating = self.chat_id is None
        future = self.client.submit(
            self.client.aio.run_turn(
                self.chat_id,
                text,
                model_config_id=self.model_config_id,
                timeout=timeout,
                create_options=self._create_options() if creating else None,
            )
        )
        if creating:
            # The chat id is known once the server created it; learn it from the stream.
            self._learn_id(future)
        pending = PendingTurn(future)
        if not wait:
            return pending
        try:
            return pending.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    def _learn_id(self, future: concurrent.futures.Future[TurnResult]) -> None:
        def done(f: concurrent.futures.Future[TurnResult]) -> None:
            if not f.cancelled() and f.exception() is None:
                self.chat_id = f.result().chat_id
                if self._widget is not None:
                    self._widget.chat_id = self.chat_id

        future.add_done_callback(done)

    def wait(self, timeout: float = 600.0) -> Turn | None:
        """Block until the chat is not busy (polling every 0.1 s) -> :meth:`last_turn`
        (e.g. the first turn of a chat :meth:`new` created with content)."""
        chat_id = self._require_id()
        pause = threading.Event()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.info().status not in ("pending", "running"):
                return self.last_turn()
            pause.wait(0.1)
        raise TimeoutError(f"chat {chat_id}: still busy after {timeout:g} s")

    def last_turn(self) -> Turn | None:
        """The latest turn (from the last user message on) as a :class:`Turn`, or
        ``None`` when the chat has no user message."""
        messages = self.messages
        starts = [i for i, m in enumerate(messages) if m.role == "user"]
        if not starts:
            return None
        turn = messages[starts[-1] :]
        chat = self.info()
        assistant = [m for m in turn if m.role == "assistant"]
        text = "\n\n".join(
            t
            for t in (
                "".join(p.text or "" for p in m.content if p.type == "text") for m in assistant
            )
            if t
        )
        totals = dict.fromkeys(USAGE_TOKEN_FIELDS, 0)
        for m in assistant:
            if m.usage is not None:
                for name in USAGE_TOKEN_FIELDS:
                    totals[name] += getattr(m.usage, name) or 0
        return Turn(
            chat_id=chat.id,
            status=chat.status,
            text=text,
            messages=turn,
            tool_calls=[p for m in turn for p in m.content if p.type == "tool-call"],
            tool_results=[p for m in turn for p in m.content if p.type == "tool-result"],
            usage=ChatMessageUsage(**totals),
            total_cost_micros=sum(m.total_cost_micros or 0 for m in assistant),
            error=chat.last_error if chat.status == "error" else None,
        )

    def _iter_messages(self) -> Iterator[ChatMessage]:
        after = 0
        while True:
            with api_errors(self.client):
                page = self.client.list_messages(
                    self._require_id(), after_id=after, limit=MAX_PAGE_LIMIT
                )
            yield from page.messages
            if not page.has_more or not page.messages:
                return
            after = page.messages[-1].id

    @property
    def messages(self) -> list[ChatMessage]:
        """Every visible message, oldest first (``[]`` before the first send)."""
        return [] if self.chat_id is None else list(self._iter_messages())

    def transcript(self) -> str:
        """The whole chat as plain text."""
        return transcript(self.messages)

    def interrupt(self) -> None:
        """Stop the running turn (the partial answer is kept)."""
        with api_errors(self.client):
            self.client.interrupt(self._require_id())

    def widget(self, **kwargs: Any) -> ChatWidget:
        """A :class:`~coderchat_ext.widget.ChatWidget` showing this chat; a chat created in
        the widget becomes this chat."""
        from .widget import ChatWidget

        if self._widget is None:
            widget = ChatWidget(
                self.chat_id or "",
                server_url=self.client.url,
                token=self.client.aio.token,
                **kwargs,
            )
            widget.observe(self._on_widget_chat, names="chat_id")
            self._widget = widget
        return self._widget

    def _on_widget_chat(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.chat_id = change["new"]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget()._repr_mimebundle_(**kwargs)
