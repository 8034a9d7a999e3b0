"""The standalone chat page at ``<base_url>coderchat/`` (docs/frontend.md#entries):
the chat list on the left, the chat on the right, rendered by ``static/page.js``.

The page authenticates like any Jupyter page (login redirect, cookie) and sets the ``_xsrf``
cookie the page's requests echo as ``X-XSRFToken``. Its ``jupyter-config-data`` carries the base
URL, and the token only when this request itself was authenticated with one (so a page opened
with ``?token=`` keeps working on WebSockets without putting the token anywhere else).
"""

from __future__ import annotations

import html
import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from .base import AUTH_RESOURCE

PAGE_TITLE = "Jupyter agent chat"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{css}">
<style>html, body {{ margin: 0; height: 100%; }}</style>
<script id="jupyter-config-data" type="application/json">{config}</script>
</head>
<body>
<div id="coderchat-root" class="cc-page"></div>
<script type="module" src="{js}"></script>
</body>
</html>
"""


class ChatPageHandler(ExtensionHandlerMixin, JupyterHandler):
    """``GET <base_url>coderchat/``: the HTML shell of the standalone chat page."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    def get(self) -> None:
        # Reading xsrf_token sets the _xsrf cookie the page sends back as X-XSRFToken.
        self.xsrf_token  # noqa: B018
        config: dict[str, Any] = {"baseUrl": self.base_url, "appName": "coderchat_ext"}
        if self.token_authenticated:
            token = getattr(self.identity_provider, "token", "") or ""
            if token:
                config["token"] = token
        # "</" inside a script element would end it early; JSON allows "<\/".
        config_json = json.dumps(config).replace("</", "<\\/")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            _PAGE.format(
                title=html.escape(PAGE_TITLE),
                css=html.escape(self.static_url("chat.css")),
                js=html.escape(self.static_url("page.js")),
                config=config_json,
            )
        )


def page_handlers() -> list[tuple[str, type[Any]]]:
    return [(r"coderchat/?", ChatPageHandler)]
