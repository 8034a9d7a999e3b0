"""coderchat_ext: an agent chat for Jupyter.

A Jupyter server extension (:class:`~coderchat_ext.app.CoderChatApp`) hosts a chat daemon that
runs LLM conversations with tools, keeps them in SQLite and streams them over WebSockets.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["Chat", "ChatWidget", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing the extension stays cheap (no anywidget, no SDKs).
    if name == "Chat":
        from .chat import Chat

        return Chat
    if name == "ChatWidget":
        from .widget import ChatWidget

        return ChatWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext coderchat_ext``: register ``%chat``/``%%chat`` (:mod:`.magics`)."""
    from .magics import load

    load(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension (the Chats side panel), built from ``js/lab`` into
    ``coderchat_ext/labextension``; a wheel installs it under
    ``share/jupyter/labextensions/coderchat-ext`` (docs/frontend.md#entries)."""
    return [{"src": "labextension", "dest": "coderchat-ext"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import CoderChatApp

    return [{"module": "coderchat_ext.app", "app": CoderChatApp}]
