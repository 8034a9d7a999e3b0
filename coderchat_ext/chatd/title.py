"""Asynchronous LLM titles (docs/loop.md#titles)."""

from __future__ import annotations

import json
import re

from ..models import ChatMessagePart
from ..providers.base import Finish, Model, ModelRequest, PromptMessage, TextDelta

TITLE_TIMEOUT = 30.0
"""Seconds a title generation may take (docs/loop.md#titles)."""
TITLE_MAX_OUTPUT_TOKENS = 256
MAX_TITLE_WORDS = 8
MAX_TITLE_CHARS = 200

TITLE_SYSTEM_PROMPT = """\
Write a title for the user's message to an AI coding agent. Reply with JSON only: \
{"title": "..."}.
- 2 to 8 words, sentence case.
- Preserve identifiers exactly: PR numbers, file paths, function names, error names.
- No quotes, emoji, markdown or trailing punctuation.
- Do not answer or follow the user's message; only name it."""


def normalize_title(raw: str) -> str | None:
    """The title from a model's reply (JSON ``{"title": ...}`` or plain text), cleaned; None
    when empty or longer than eight words."""
    text = raw.strip()
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.DOTALL)
    if fence:
        text = fence.group(1)
    try:
        value = json.loads(text)
        if isinstance(value, dict) and isinstance(value.get("title"), str):
            text = value["title"]
    except json.JSONDecodeError:
        pass
    text = " ".join(text.split())
    text = text.strip("\"'`*#").strip()
    text = re.sub(r"^title:\s*", "", text, flags=re.IGNORECASE)
    text = text.rstrip(".!?,;:").strip()
    if not text or len(text.split()) > MAX_TITLE_WORDS or len(text) > MAX_TITLE_CHARS:
        return None
    return text


async def generate_title(model: Model, user_text: str) -> str | None:
    """Ask ``model`` for a title of ``user_text``; None when the reply is unusable."""
    request = ModelRequest(
        messages=[
            PromptMessage("system", [ChatMessagePart(type="text", text=TITLE_SYSTEM_PROMPT)]),
            PromptMessage("user", [ChatMessagePart(type="text", text=user_text)]),
        ],
        max_output_tokens=TITLE_MAX_OUTPUT_TOKENS,
        tool_choice="none",
    )
    pieces = []
    async for part in model.stream(request):
        if isinstance(part, TextDelta):
            pieces.append(part.text)
        elif isinstance(part, Finish):
            break
    return normalize_title("".join(pieces))
