"""Fixtures of the provider tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coderchat_ext.providers.fake import FakeProviderServer


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    """A fake provider server on loopback (its queue and recorded requests are this test's)."""
    with FakeProviderServer() as server:
        yield server
