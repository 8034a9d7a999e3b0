"""The secret values that must never reach the model, and the redactor that removes them.

Workspace kernels start with a scrubbed environment (``workspaces/environment.py``), but a
kernel the user attaches (``%chat attach``: a notebook's kernel, an external agent) still has
the server's environment, and any kernel may read a file holding a key. So every tool result,
every ``result_delta`` streamed to clients and the workspace context are passed through
:class:`SecretValues` before they are published, persisted or sent to a provider: each known
secret value is replaced by :data:`REDACTED`.

The values come from the provider catalog (every configured key: database, traitlets config,
environment), the server's environment (variables whose name says they hold a secret, see
:func:`~coderchat_ext.workspaces.environment.is_secret_name`) and the fixed values the app hands
in (the server's token).
:meth:`SecretValues.refresh` re-reads the catalog (the daemon calls it at the start of every
turn; the catalog's cache is dropped whenever a provider is written). A value once known stays
known for the life of the process: a rotated key is still a secret.

Exact values only: a key that a command truncated, reversed or encoded is not recognised. The
scrubbed kernel environment is the protection; this is the second line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ..models import ChatMessagePart
from ..workspaces.environment import is_secret_name

REDACTED = "[REDACTED]"
"""What a secret value is replaced by."""
MIN_SECRET_LENGTH = 8
"""Values shorter than this are not treated as secrets (redacting ``1`` or ``true`` everywhere
would garble every output and protect nothing)."""


class KeySource(Protocol):
    """Where provider keys come from: the :class:`~coderchat_ext.providers.registry.
    ProviderCatalog` (its ``resolve_all`` gives every provider with its plain ``api_key``)."""

    async def resolve_all(self) -> Iterable[Any]: ...


class SecretValues:
    """The set of secret values and the redaction of them.

    ``catalog`` supplies provider keys on :meth:`refresh`; ``fixed`` are values known at
    construction (the server's token); ``environ`` (default: ``os.environ``, read at each
    refresh) supplies the values of secret-named variables.
    """

    def __init__(
        self,
        catalog: KeySource | None = None,
        *,
        fixed: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._catalog = catalog
        self._environ = environ
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*fixed)
        self._add_environ()

    @property
    def values(self) -> frozenset[str]:
        """Every known secret value."""
        return frozenset(self._values)

    def add(self, *values: str) -> None:
        """Treat ``values`` as secrets from now on (short ones are ignored)."""
        new = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH} - self._values
        if new:
            self._values |= new
            # Longest first: a secret containing another is replaced whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def _add_environ(self) -> None:
        environ = os.environ if self._environ is None else self._environ
        self.add(*(value for name, value in environ.items() if is_secret_name(name)))

    async def refresh(self) -> None:
        """Add the catalog's current provider keys and the environment's secret values."""
        if self._catalog is not None:
            self.add(*(str(p.api_key or "") for p in await self._catalog.resolve_all()))
        self._add_environ()

    async def current(self) -> frozenset[str]:
        """:meth:`refresh`, then every known secret value."""
        await self.refresh()
        return self.values

    def redact(self, text: str) -> str:
        """``text`` with every known secret value replaced by :data:`REDACTED`."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def redact_value(self, value: Any) -> Any:
        """A JSON value (strings, lists, dicts: keys included) with every string redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if isinstance(value, dict):
            return {self.redact(str(k)): self.redact_value(v) for k, v in value.items()}
        return value

    def redact_part(self, part: ChatMessagePart) -> ChatMessagePart:
        """A copy of ``part`` with every text field, ``args`` and ``result`` redacted
        (``type`` and ids are left alone; provider metadata is the provider's own)."""
        if self._pattern is None:
            return part
        update = {
            name: self.redact_value(value)
            for name, value in part
            if name not in ("type", "provider_metadata") and isinstance(value, str | list | dict)
        }
        return part.model_copy(update=update)

    def stream(self) -> StreamRedactor:
        """A redactor for one stream of text chunks (a tool's ``result_delta`` s)."""
        return StreamRedactor(self)

    def pending_length(self, text: str) -> int:
        """For streams: the length of the longest end of ``text`` that begins some secret
        (and might be completed by the next chunk)."""
        best = 0
        for value in self._values:
            for length in range(min(len(value) - 1, len(text)), best, -1):
                if text.endswith(value[:length]):
                    best = length
                    break
        return best


class StreamRedactor:
    """Redacts a text stream chunk by chunk: a secret split across two chunks is caught, because
    an end of a chunk that could begin a secret is held back until the next chunk shows whether
    it does. What is held back at the end is never sent (the tool's final result, redacted
    whole, supersedes the streamed preview)."""

    def __init__(self, secrets: SecretValues) -> None:
        self._secrets = secrets
        self._held = ""

    def feed(self, chunk: str) -> str:
        """The part of ``self._held + chunk`` that is safe to send now, redacted."""
        text = self._secrets.redact(self._held + chunk)
        keep = self._secrets.pending_length(text)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]
