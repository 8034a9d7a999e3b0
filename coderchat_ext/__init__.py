"""coderchat_ext: an agent chat for Jupyter.

A Jupyter server extension (:class:`~coderchat_ext.app.CoderChatApp`) hosts a chat daemon that
runs LLM conversations with tools, keeps them in SQLite and streams them over WebSockets.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension (the Chats side panel), built from ``js/lab`` into
    ``coderchat_ext/labextension``; a wheel installs it under
    ``share/jupyter/labextensions/coderchat-ext`` (anchors §4.2)."""
    return [{"src": "labextension", "dest": "coderchat-ext"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import CoderChatApp

    return [{"module": "coderchat_ext.app", "app": CoderChatApp}]
