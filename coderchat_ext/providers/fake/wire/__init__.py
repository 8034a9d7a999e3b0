"""Rendering a scripted turn in the three wire formats, streaming and not, plus error bodies.

The shapes follow the recorded transcripts in ``shared/acceptance/fixtures`` (Anthropic
``thinking_tool_use.sse``, ``error_overloaded_midstream.sse``; Responses
``reasoning_summary_function_call.sse``, ``error_insufficient_quota.sse``; chat
``tool_calls_parallel_include_usage.sse``) and their error bodies: Anthropic sends compact JSON
with an ``event:`` line per event, OpenAI pretty-prints error bodies, the Responses API names
every event after its ``type`` and has no ``[DONE]``, Chat Completions is data-only and ends with
``data: [DONE]``.
"""

from __future__ import annotations

from typing import Any

from ._common import (
    NEUTRAL_STOP_REASONS,
    Frame,
    Plan,
    PlannedCall,
    Rendered,
    build_plan,
    encrypted_reasoning,
    thinking_signature,
)
from .anthropic import anthropic_message, anthropic_stream
from .chat import chat_completion, chat_stream
from .errors import error_body, error_fields, midstream_http_error, midstream_status
from .responses import responses_object, responses_stream

__all__ = [
    "NEUTRAL_STOP_REASONS",
    "Frame",
    "Plan",
    "PlannedCall",
    "Rendered",
    "anthropic_message",
    "anthropic_stream",
    "build_plan",
    "chat_completion",
    "chat_stream",
    "encrypted_reasoning",
    "error_body",
    "error_fields",
    "midstream_http_error",
    "midstream_status",
    "render_body",
    "render_stream",
    "responses_object",
    "responses_stream",
    "thinking_signature",
]


def render_stream(plan: Plan) -> Rendered:
    """The stream of ``plan`` in its wire format."""
    if plan.wire == "anthropic":
        return anthropic_stream(plan)
    if plan.wire == "responses":
        return responses_stream(plan)
    return chat_stream(plan)


def render_body(plan: Plan) -> dict[str, Any]:
    """The non-streaming response of ``plan`` in its wire format."""
    if plan.wire == "anthropic":
        return anthropic_message(plan)
    if plan.wire == "responses":
        return responses_object(plan)
    return chat_completion(plan)
