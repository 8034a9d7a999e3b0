"""In-process publish/subscribe with Coder's channel/notify shapes (docs/architecture.md).

Channels are strings (``chat:<id>``, ``watch:<owner>``, ``config``); a message is any JSON-able
value. Delivery is synchronous and in publish order. A Postgres ``LISTEN/NOTIFY`` backend could
implement the same two methods for multi-process deployments.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Listener = Callable[[Any], None]


class PubSub(Protocol):
    def publish(self, channel: str, message: Any) -> None: ...

    def subscribe(self, channel: str, listener: Listener) -> Callable[[], None]:
        """Register ``listener``; returns the function that unsubscribes it."""
        ...


class MemoryPubSub:
    """A :class:`PubSub` for one process. A listener that raises is logged and skipped."""

    def __init__(self) -> None:
        self._listeners: defaultdict[str, list[Listener]] = defaultdict(list)

    def publish(self, channel: str, message: Any) -> None:
        for listener in list(self._listeners.get(channel, ())):
            try:
                listener(message)
            except Exception:
                log.exception("pubsub listener on %s failed", channel)

    def subscribe(self, channel: str, listener: Listener) -> Callable[[], None]:
        self._listeners[channel].append(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(channel)
            if listeners and listener in listeners:
                listeners.remove(listener)
                if not listeners:
                    del self._listeners[channel]

        return unsubscribe

    def subscriber_count(self, channel: str) -> int:
        return len(self._listeners.get(channel, ()))
