"""Error classification, a port of Coder's ``chaterror`` (docs/loop.md#error-classification).

Three layers, each importing only the one below it:

- :mod:`.provider_facts`: what providers and their HTTP stacks say about a failure (statuses,
  error-body shapes, ``Retry-After``, provider names, the text patterns of the rule table);
- :mod:`.messages`: what a user reads (the message templates per kind, the ``retry`` texts,
  secret redaction and normalization of a :class:`~coderchat_ext.models.ChatError`);
- :mod:`.classification`: the precedence, the rule table and :func:`classify`.

Everything the rest of the package uses is re-exported here: import from
``coderchat_ext.chatd.errors``.
"""

from __future__ import annotations

from .classification import (
    CHAT_INTERRUPTED,
    PROVIDER_TRANSPORT_RESET,
    Classification,
    ClassifiedError,
    classify,
    retry_message,
    with_provider,
)
from .messages import MAX_DETAIL_RUNES, redact_secrets
from .provider_facts import PROVIDER_DISPLAY_NAMES, status_code_retryable

__all__ = [
    "CHAT_INTERRUPTED",
    "MAX_DETAIL_RUNES",
    "PROVIDER_DISPLAY_NAMES",
    "PROVIDER_TRANSPORT_RESET",
    "Classification",
    "ClassifiedError",
    "classify",
    "redact_secrets",
    "retry_message",
    "status_code_retryable",
    "with_provider",
]
