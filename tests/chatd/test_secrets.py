"""The secret set and its redactors: exact values replaced wherever they occur, in JSON values
and message parts, and in a stream even when a value is split across chunks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from coderchat_ext.chatd.secrets import REDACTED, SecretValues
from coderchat_ext.models import ChatMessagePart
from coderchat_ext.workspaces.environment import is_secret_name

KEY = "sk-ant-api03-abcdefghijklmnop"
TOKEN = "0123456789abcdef0123"


@dataclass
class Provider:
    api_key: str


class Catalog:
    """A key source whose keys the test changes (as a provider write would)."""

    def __init__(self, *keys: str) -> None:
        self.keys = list(keys)

    async def resolve_all(self) -> list[Provider]:
        return [Provider(k) for k in self.keys]


def refreshed(catalog: Catalog, **kw: Any) -> SecretValues:
    values = SecretValues(catalog, **kw)
    asyncio.run(values.refresh())
    return values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key={KEY}\n", f"key={REDACTED}\n"),
        (f"{TOKEN}{TOKEN}", REDACTED * 2),
        (f"{KEY}x{TOKEN}", f"{REDACTED}x{REDACTED}"),
        ("nothing secret here", "nothing secret here"),
        (KEY[:-1], KEY[:-1]),
    ],
)
def test_redact_replaces_every_known_value(text: str, expected: str) -> None:
    values = refreshed(Catalog(KEY, ""), fixed=[TOKEN], environ={})
    assert values.redact(text) == expected


def test_values_come_from_the_catalog_the_fixed_list_and_secret_named_variables() -> None:
    environ = {
        "CODERCHAT_TOKEN": "token-from-env-1",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "PGPASSWORD": "db-password-1",
        "JUPYTER_TOKEN": "short",
        "HOME": "/home/someone-long",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/",
    }
    catalog = Catalog(KEY)
    values = refreshed(catalog, fixed=[TOKEN, "tiny"], environ=environ)
    assert values.values == {
        KEY,
        TOKEN,
        "token-from-env-1",
        "aws-secret-value",
        "db-password-1",
    }
    # A key replaced in the catalog is added; the old one stays a secret.
    catalog.keys = ["sk-proj-new-key-0000"]
    asyncio.run(values.refresh())
    assert {KEY, "sk-proj-new-key-0000"} <= values.values


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("ANTHROPIC_API_KEY", True),
        ("OPENAI_API_KEY", True),
        ("CODERCHAT_TOKEN", True),
        ("JPY_API_TOKEN", True),
        ("GITHUB_TOKEN", True),
        ("client_secret", True),
        ("KEYBOARD", False),
        ("PATH", False),
        ("ANTHROPIC_BASE_URL", False),
    ],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_json_values_and_parts_are_redacted_keys_included() -> None:
    values = refreshed(Catalog(KEY), environ={})
    assert values.redact_value({KEY: [KEY, 1, None, {"k": f"a{KEY}"}]}) == {
        REDACTED: [REDACTED, 1, None, {"k": f"a{REDACTED}"}]
    }
    part = ChatMessagePart(
        type="tool-result", tool_call_id="call_1", tool_name="execute", result={"output": KEY}
    )
    assert values.redact_part(part).result == {"output": REDACTED}
    assert values.redact_part(part).tool_call_id == "call_1"


@pytest.mark.parametrize("cut", range(1, len(KEY)))
def test_a_stream_never_shows_a_value_split_across_chunks(cut: int) -> None:
    values = refreshed(Catalog(KEY), environ={})
    stream = values.stream()
    chunks = [f"before {KEY[:cut]}", f"{KEY[cut:]} after\n", "more\n"]
    sent = "".join(stream.feed(chunk) for chunk in chunks)
    assert sent == f"before {REDACTED} after\nmore\n"


def test_a_stream_holds_back_only_what_could_begin_a_value() -> None:
    values = refreshed(Catalog(KEY), environ={})
    stream = values.stream()
    assert stream.feed("line one\n") == "line one\n"
    assert stream.feed("x sk-an") == "x "
    assert stream.feed("d then text") == "sk-and then text"
