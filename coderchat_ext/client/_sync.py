"""``ChatClient``: the blocking client. It runs an :class:`AsyncChatClient` on a private event
loop in a daemon thread, so it works where the caller's thread already runs a loop (a Jupyter
kernel) as well as in plain scripts."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import Future, wait
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..models import ProvisionerJobLog
from ._async import AsyncChatClient
from ._discovery import discover_server
from ._types import StreamItem, WatchItem

P = ParamSpec("P")
T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name="coderchat-client", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def closed(self) -> bool:
        return self._stopping or not self._thread.is_alive()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule ``coro`` on the loop -> its future. Raises ``RuntimeError`` when the
        client is closed."""
        if self.closed:
            coro.close()
            raise RuntimeError("the ChatClient is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block until it is done; an exception in the caller
        (``KeyboardInterrupt``) cancels it. Raises ``RuntimeError`` when the client is closed
        or when called from the loop's own thread."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("ChatClient methods cannot be called from its own I/O thread")
        future = self.submit(coro)
        try:
            # Wake up now and then so a loop thread that died cannot leave the caller waiting
            # forever.
            while not future.done():
                wait([future], timeout=1.0)
                if not future.done() and not self._thread.is_alive():
                    raise RuntimeError("the ChatClient's I/O thread stopped")
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


def _blocking(
    method: Callable[Concatenate[AsyncChatClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[ChatClient, P], T]:
    """The blocking twin of an :class:`AsyncChatClient` method (same signature and doc)."""

    @functools.wraps(method)
    def call(self: ChatClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._loop.run(method(self.aio, *args, **kwargs))

    return call


async def _shutdown(aio: AsyncChatClient) -> None:
    """Close the HTTP pool, then whatever still runs on the loop (open streams)."""
    await aio.aclose()
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    await asyncio.get_running_loop().shutdown_asyncgens()


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


class ChatClient:
    """Blocking client of the coderchat API; same methods, arguments, return values and errors
    as :class:`AsyncChatClient` (see there), without ``await``: each method below is the
    async one run on the client's I/O thread, so requests are built in one place.

    ``stream()``, ``watch()`` and ``follow_job_logs()`` return ordinary iterators;
    ``run_turn``'s ``on_event`` runs on the client's I/O thread, where calling this client
    raises ``RuntimeError`` (it would wait on itself). To start a call without waiting for it
    (a turn shown live while the caller goes on, a kernel attaching itself) pass a coroutine
    of ``aio`` (the underlying async client) to :meth:`submit`. Close with :meth:`close` or
    use as a context manager.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self._loop = _LoopThread()
        self.aio = AsyncChatClient(url, token, timeout=timeout)
        self.url = self.aio.url

    @classmethod
    def discover(cls, *, timeout: float = 30.0) -> ChatClient:
        """A client for the server found by :func:`discover_server`; raises
        :class:`ServerNotFound`."""
        info = discover_server()
        return cls(info.url, info.token, timeout=timeout)

    def close(self) -> None:
        """Close connections and stop the I/O thread (idempotent)."""
        if not self._loop.closed:
            try:
                self._loop.run(_shutdown(self.aio))
            finally:
                self._loop.stop()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    item = self._loop.run(_anext(iterator))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None and not self._loop.closed:
                self._loop.run(aclose())

    def stream(
        self, chat_id: str, after_id: int = 0, *, reconnect: bool = True
    ) -> Iterator[StreamItem]:
        """Blocking :meth:`AsyncChatClient.stream`: yields ``list[ChatStreamEvent]`` per frame
        and :class:`StreamMarker` between connections. Close the iterator (or break out of a
        ``for`` loop) to disconnect."""
        return self._iterate(self.aio.stream(chat_id, after_id, reconnect=reconnect))

    def stream_with_connections(
        self,
        chat_id: str,
        after_id: int = 0,
        *,
        reconnect: bool = True,
        on_connect: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[int, StreamItem]]:
        """Blocking :meth:`AsyncChatClient.stream_with_connections` (``on_connect`` runs on
        the client's I/O thread)."""
        return self._iterate(
            self.aio.stream_with_connections(
                chat_id, after_id, reconnect=reconnect, on_connect=on_connect
            )
        )

    def watch(self, *, reconnect: bool = True) -> Iterator[WatchItem]:
        """Blocking :meth:`AsyncChatClient.watch`."""
        return self._iterate(self.aio.watch(reconnect=reconnect))

    def follow_job_logs(
        self, job_id: str, *, after: int = 0, reconnect: bool = True
    ) -> Iterator[ProvisionerJobLog]:
        """Blocking :meth:`AsyncChatClient.follow_job_logs`: ends when the job has ended."""
        return self._iterate(self.aio.follow_job_logs(job_id, after=after, reconnect=reconnect))

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coro``, a coroutine of :attr:`aio` (``client.submit(client.aio.run_turn(...))``),
        on the client's I/O thread without waiting -> a ``concurrent.futures.Future`` of its
        result (``cancel()`` cancels it). Raises ``RuntimeError`` when the client is
        closed."""
        return self._loop.submit(coro)

    request = _blocking(AsyncChatClient.request)
    list_chats = _blocking(AsyncChatClient.list_chats)
    create_chat = _blocking(AsyncChatClient.create_chat)
    get_chat = _blocking(AsyncChatClient.get_chat)
    update_chat = _blocking(AsyncChatClient.update_chat)
    archive_chat = _blocking(AsyncChatClient.archive_chat)
    unarchive_chat = _blocking(AsyncChatClient.unarchive_chat)
    list_messages = _blocking(AsyncChatClient.list_messages)
    send_message = _blocking(AsyncChatClient.send_message)
    edit_message = _blocking(AsyncChatClient.edit_message)
    delete_queued_message = _blocking(AsyncChatClient.delete_queued_message)
    promote_queued_message = _blocking(AsyncChatClient.promote_queued_message)
    interrupt = _blocking(AsyncChatClient.interrupt)
    submit_tool_results = _blocking(AsyncChatClient.submit_tool_results)
    run_tool = _blocking(AsyncChatClient.run_tool)
    regenerate_title = _blocking(AsyncChatClient.regenerate_title)
    list_models = _blocking(AsyncChatClient.list_models)
    list_providers = _blocking(AsyncChatClient.list_providers)
    create_provider = _blocking(AsyncChatClient.create_provider)
    update_provider = _blocking(AsyncChatClient.update_provider)
    delete_provider = _blocking(AsyncChatClient.delete_provider)
    list_model_configs = _blocking(AsyncChatClient.list_model_configs)
    create_model_config = _blocking(AsyncChatClient.create_model_config)
    update_model_config = _blocking(AsyncChatClient.update_model_config)
    delete_model_config = _blocking(AsyncChatClient.delete_model_config)
    get_system_prompt = _blocking(AsyncChatClient.get_system_prompt)
    set_system_prompt = _blocking(AsyncChatClient.set_system_prompt)
    get_user_prompt = _blocking(AsyncChatClient.get_user_prompt)
    set_user_prompt = _blocking(AsyncChatClient.set_user_prompt)
    get_template_allowlist = _blocking(AsyncChatClient.get_template_allowlist)
    set_template_allowlist = _blocking(AsyncChatClient.set_template_allowlist)
    get_advisor_config = _blocking(AsyncChatClient.get_advisor_config)
    set_advisor_config = _blocking(AsyncChatClient.set_advisor_config)
    list_templates = _blocking(AsyncChatClient.list_templates)
    get_template = _blocking(AsyncChatClient.get_template)
    list_workspaces = _blocking(AsyncChatClient.list_workspaces)
    create_workspace = _blocking(AsyncChatClient.create_workspace)
    get_workspace = _blocking(AsyncChatClient.get_workspace)
    create_build = _blocking(AsyncChatClient.create_build)
    wait_for_build = _blocking(AsyncChatClient.wait_for_build)
    get_job_logs = _blocking(AsyncChatClient.get_job_logs)
    attach_kernel = _blocking(AsyncChatClient.attach_kernel)
    info = _blocking(AsyncChatClient.info)
    openapi = _blocking(AsyncChatClient.openapi)
    run_turn = _blocking(AsyncChatClient.run_turn)
