"""The standalone page at ``<base_url>coderchat/`` (docs/frontend.md#entries): authenticated, sets
the XSRF cookie, and loads the built front end from the extension's static path."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError, HTTPResponse

import coderchat_ext

STATIC = Path(coderchat_ext.__file__).parent / "static"
BUILT = ("widget.js", "page.js", "chat.css")
Fetch = Callable[..., Awaitable[HTTPResponse]]


class DenyEverything(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return False


@pytest.fixture
def authorizer_class() -> type[Authorizer] | None:
    return None


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], authorizer_class: type[Authorizer] | None
) -> dict[str, Any]:
    if authorizer_class is not None:
        jp_server_config["ServerApp"]["authorizer_class"] = authorizer_class
    return jp_server_config


def _config_data(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, html
    return json.loads(match.group(1))


def test_the_front_end_is_built() -> None:
    missing = [name for name in BUILT if not (STATIC / name).is_file()]
    assert not missing, f"missing {missing}: run `npm install && npm run build` in js/"
    assert "export" in (STATIC / "widget.js").read_text()


async def test_page_redirects_to_login_without_credentials(jp_fetch: Fetch, app: Any) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("coderchat", "", headers={"Authorization": ""}, follow_redirects=False)
    assert caught.value.code in (302, 403)
    if caught.value.code == 302:
        assert caught.value.response is not None
        assert "/login" in caught.value.response.headers["Location"]


async def test_page_serves_html_that_loads_the_built_assets(
    jp_fetch: Fetch, app: Any, jp_base_url: str
) -> None:
    response = await jp_fetch("coderchat", "")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    assert 'id="coderchat-root"' in html
    config = _config_data(html)
    assert config["baseUrl"] == jp_base_url
    scripts = re.findall(r'<script type="module" src="([^"]+)"', html)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert len(scripts) == 1
    assert len(styles) == 1
    assert scripts[0].startswith(f"{jp_base_url}static/coderchat_ext/page.js")
    assert styles[0].startswith(f"{jp_base_url}static/coderchat_ext/chat.css")
    # The page's requests echo this cookie as X-XSRFToken.
    cookies = response.headers.get_list("Set-Cookie")
    assert any(c.startswith("_xsrf=") for c in cookies)
    for url in (scripts[0], styles[0]):
        path = url[len(jp_base_url) :].split("?")[0]
        asset = await jp_fetch(*path.split("/"))
        assert asset.code == 200
        assert asset.body == (STATIC / path.rsplit("/", 1)[1]).read_bytes()


async def test_page_gives_a_token_authenticated_request_its_token(
    jp_fetch: Fetch, app: Any
) -> None:
    response = await jp_fetch("coderchat", "")
    token = app.serverapp.identity_provider.token
    assert _config_data(response.body.decode()).get("token") == token


@pytest.mark.parametrize("authorizer_class", [DenyEverything])
async def test_page_refuses_a_user_the_authorizer_denies(jp_fetch: Fetch, app: Any) -> None:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("coderchat", "")
    assert caught.value.code == 403
