"""Finding the coderchat server from inside a kernel, a terminal or a script (docs/client.md)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import ServerNotFound


@dataclass(frozen=True)
class ServerInfo:
    """Where a server is: ``url`` is its base URL (ending in ``/``), ``token`` its auth token
    (``None`` when it needs none), ``source`` how it was found (``env``, ``parent`` or
    ``single``)."""

    url: str
    token: str | None
    source: str


def _running_servers() -> list[dict[str, Any]]:
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:  # the client also works where jupyter_server is not installed
        return []
    return list(list_running_servers())


def _info(server: Mapping[str, Any], source: str) -> ServerInfo:
    url = str(server.get("url") or "")
    if not url:
        base = str(server.get("base_url") or "/")
        scheme = "https" if server.get("secure") else "http"
        url = f"{scheme}://{server.get('hostname') or '127.0.0.1'}:{server['port']}{base}"
    return ServerInfo(url=_with_slash(url), token=server.get("token") or None, source=source)


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def discover_server(
    env: Mapping[str, str] | None = None,
    servers: Iterable[Mapping[str, Any]] | None = None,
) -> ServerInfo:
    """Find the server to talk to; first match wins:

    1. ``CODERCHAT_URL`` (and ``CODERCHAT_TOKEN``) in the environment — the extension exports
       both into the server's environment, so kernels it starts inherit them;
    2. the running Jupyter server (``jupyter_server.serverapp.list_running_servers()``) whose
       pid is ``JPY_PARENT_PID`` or this process's parent pid;
    3. the only running Jupyter server, when there is exactly one.

    ``env`` and ``servers`` replace ``os.environ`` and the running-server list (for tests).
    Raises :class:`ServerNotFound` when none of these applies.
    """
    env = os.environ if env is None else env
    url = env.get("CODERCHAT_URL")
    if url:
        return ServerInfo(_with_slash(url), env.get("CODERCHAT_TOKEN") or None, "env")
    found = _running_servers() if servers is None else list(servers)
    parents: list[int] = []
    raw_parent = env.get("JPY_PARENT_PID", "")
    if raw_parent.isdigit():
        parents.append(int(raw_parent))
    parents.append(os.getppid())
    for pid in parents:
        for server in found:
            if server.get("pid") == pid:
                return _info(server, "parent")
    if len(found) == 1:
        return _info(found[0], "single")
    if not found:
        raise ServerNotFound(
            "No running coderchat server found: set CODERCHAT_URL (and CODERCHAT_TOKEN), pass "
            "url= explicitly, or start one with `coderchat serve`."
        )
    urls = ", ".join(str(s.get("url")) for s in found)
    raise ServerNotFound(
        f"{len(found)} Jupyter servers are running ({urls}) and none is this process's parent: "
        "set CODERCHAT_URL (and CODERCHAT_TOKEN) or pass url= explicitly."
    )
