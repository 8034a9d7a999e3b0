"""The Python half of ChatWidget's kernel relay against a real server: requests, stream
subscriptions and the watch feed answered with the contract's messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from coderchat_ext.widget import ChatWidget


class Recorder:
    def __init__(self, widget: ChatWidget) -> None:
        self.sent: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        widget.send = self.send  # type: ignore[method-assign]

    def send(self, content: dict[str, Any], buffers: Any = None) -> None:
        with self.changed:
            self.sent.append(content)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = [m for m in self.sent if predicate(m)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                assert left > 0, self.sent
                self.changed.wait(left)


def deliver(widget: ChatWidget, content: dict[str, Any]) -> None:
    """Hand ``content`` to the widget the way the kernel does for the front end's
    ``model.send(content)``: a ``comm_msg`` with ``method: custom`` on the widget's comm."""
    widget.comm.handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def widget_for(server: dict[str, str]) -> tuple[ChatWidget, Recorder]:
    widget = ChatWidget(server_url=server["url"], token=server["token"])
    return widget, Recorder(widget)


def test_requests_are_relayed_with_status_and_error_bodies(server: dict[str, str]) -> None:
    widget, rec = widget_for(server)
    try:
        deliver(widget, {"kind": "request", "id": "1", "method": "GET", "path": "info"})
        ok = rec.wait(lambda m: m.get("id") == "1")
        assert (ok["kind"], ok["status"]) == ("response", 200)
        assert "version" in ok["body"]
        deliver(
            widget,
            {
                "kind": "request",
                "id": "2",
                "method": "POST",
                "path": "chats",
                "body": {"content": ""},
            },
        )
        bad = rec.wait(lambda m: m.get("id") == "2")
        assert (bad["status"], bad["body"]["message"]) == (400, "Content is required.")
        deliver(
            widget,
            {"kind": "request", "id": "3", "method": "GET", "path": "http://evil.example/x"},
        )
        refused = rec.wait(lambda m: m.get("id") == "3")
        assert refused["status"] == 400
        assert "relative" in refused["body"]["message"]
    finally:
        widget.close()


def test_an_unreachable_server_answers_status_0(server: dict[str, str]) -> None:
    widget = ChatWidget(server_url="http://127.0.0.1:9/", token="x")
    rec = Recorder(widget)
    try:
        deliver(widget, {"kind": "request", "id": "1", "method": "GET", "path": "info"})
        reply = rec.wait(lambda m: m.get("id") == "1")
        assert reply["status"] == 0
        assert "cannot reach the coderchat server" in reply["body"]["message"]
    finally:
        widget.close()


def test_a_subscription_streams_a_turn_and_the_watch_feed_sees_the_chat(
    server: dict[str, str],
) -> None:
    widget, rec = widget_for(server)
    try:
        deliver(widget, {"kind": "watch", "id": "w"})
        rec.wait(lambda m: m.get("id") == "w" and m.get("state") == "open")
        deliver(
            widget,
            {
                "kind": "request",
                "id": "c",
                "method": "POST",
                "path": "chats",
                "body": {"content": "hello there"},
            },
        )
        chat = rec.wait(lambda m: m.get("id") == "c")["body"]
        deliver(widget, {"kind": "subscribe", "id": "s", "chat_id": chat["id"], "after_id": 0})
        rec.wait(lambda m: m.get("id") == "s" and m.get("state") == "open")

        def final(m: dict[str, Any]) -> bool:
            return (
                m.get("id") == "s"
                and m["kind"] == "events"
                and any(e["type"] == "status" and e["status"] == "waiting" for e in m["events"])
            )

        rec.wait(final, timeout=60)
        messages = [
            e["message"]
            for m in rec.sent
            if m.get("id") == "s" and m["kind"] == "events"
            for e in m["events"]
            if e["type"] == "message"
        ]
        assert [m["role"] for m in messages][:2] == ["user", "assistant"]
        event = rec.wait(
            lambda m: m.get("kind") == "watch_event" and m["event"]["chat"]["id"] == chat["id"]
        )
        assert event["id"] == "w"
        deliver(widget, {"kind": "unsubscribe", "id": "s"})
        deliver(widget, {"kind": "unwatch", "id": "w"})
        deadline = time.monotonic() + 10
        while widget._tasks:
            assert time.monotonic() < deadline, widget._tasks
            threading.Event().wait(0.05)
    finally:
        widget.close()
