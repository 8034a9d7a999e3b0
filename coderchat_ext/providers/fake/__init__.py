"""A fake LLM provider: a loopback HTTP server speaking the Anthropic Messages, OpenAI
Responses and Chat Completions wire formats from a script
(docs/providers.md#the-fake-provider-server).

Tests, benchmarks and the offline ``demo`` provider point the real ``anthropic`` and ``openai``
SDKs at it::

    with FakeProviderServer({"default": {"text": "hi"}}) as server:
        client = anthropic.AsyncAnthropic(base_url=server.url, api_key="x", max_retries=0)
        openai_client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="x")
        server.push({"text": "first"}, {"status": 429, "retry_after": 2})
        server.replay("fixtures/anthropic/text.sse")
        ...
        server.requests[-1].json          # what the SDK sent

The script (a plain dict, or JSON for ``coderchat fake-llm --script``)::

    {
      "turns": [ TURN, ... ],           # a queue, consumed in order by requests on any wire
      "rules": [                        # then the first rule matching the last user message
        {"contains": "weather", "turn": TURN},           # case-insensitive substring
        {"match": "^run (.*)", "steps": [TURN, TURN]}    # regex; steps by tool-result rounds
      ],
      "default": TURN,                  # then this (default: {"echo": true})
      "models": ["fake-model"]          # what GET /v1/models lists
    }

A TURN is rendered in the wire format of the request that gets it::

    {"text": "...", "reasoning": "..." | ["...", "..."], "signature": "...",
     "tool_calls": [{"name": "read_file", "arguments": {"path": "a"}, "id": "call_1"}],
     "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_tokens": 0,
               "cache_read_tokens": 0, "reasoning_tokens": 0},
     "stop_reason": "stop" | "tool-calls" | "length" | "content-filter",
     "chunk_size": 8, "chunk_delay": 0.0,
     "status": 429, "retry_after": 2, "error": {"type", "message", "code", "param"},
     "body": {...}, "headers": {...},
     "error_midstream": true | N, "drop_after": N, "stall": 1.5, "stall_headers": 1.5,
     "replay": {"path": "x.sse", "status": 200, "content_type": "...", "headers": {...}}}

``steps`` are stateless: step ``n`` answers a request with ``n`` tool-result rounds after its
last user message, so concurrent chats each get their own step. :class:`~.script.Turn`
documents every field; :mod:`.wire` the exact event sequences and error bodies.

``stall`` waits after the response headers and before the first event, which is what a
first-chunk timeout measures (the SDKs return from the request once headers arrive);
``stall_headers`` waits before the headers, which is what an HTTP read timeout measures.
"""

from __future__ import annotations

from .script import Rule, Script, ScriptError, Turn, load_script, parse_script, parse_turn
from .server import FakeProviderServer, RecordedRequest
from .wire import encrypted_reasoning, thinking_signature

__all__ = [
    "FakeProviderServer",
    "RecordedRequest",
    "Rule",
    "Script",
    "ScriptError",
    "Turn",
    "encrypted_reasoning",
    "load_script",
    "parse_script",
    "parse_turn",
    "thinking_signature",
]
