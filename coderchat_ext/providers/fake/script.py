"""The fake provider's script: pydantic models, validation and turn selection.

One script drives all three wires (see the package docstring for the format). Selection is
stateless apart from the queue: rules and ``steps`` look only at the request body, so concurrent
chats against one server each get the turn that fits their own history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

Wire = Literal["anthropic", "responses", "chat"]
"""The three wire formats: Anthropic Messages, OpenAI Responses, OpenAI Chat Completions."""

DEFAULT_CHUNK_SIZE = 8
"""Characters per text, reasoning or tool-argument delta when a turn does not say."""

_NonNegativeInt = Annotated[int, Field(ge=0)]


class ScriptError(ValueError):
    """An invalid script, turn or replay; the message lists every problem with its location
    (``turns[0].tool_calls[0].name: Field required``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ToolCallSpec(_Strict):
    """A client tool call the model makes. ``arguments`` is a JSON object (sent as its JSON
    text) or a string sent verbatim (to script malformed arguments); ``id`` defaults to a fresh
    wire-style id (``toolu_…`` / ``call_…``)."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(
        default_factory=dict, validation_alias=AliasChoices("arguments", "args")
    )
    id: str | None = Field(default=None, min_length=1)

    def arguments_json(self) -> str:
        """The arguments as the wire carries them (a JSON text)."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)


class UsageSpec(_Strict):
    """Token counts of a turn; unset counts are estimated (about 4 characters a token).

    ``input_tokens`` excludes cached tokens, as Anthropic counts them (context tokens =
    input + cache read + cache creation, docs/data-model.md#usage-and-cost). On the OpenAI wires
    ``prompt_tokens`` / ``input_tokens`` is ``input_tokens + cache_read_tokens`` with
    ``cached_tokens = cache_read_tokens``; OpenAI has no cache-creation count. ``output_tokens``
    includes ``reasoning_tokens``.
    """

    input_tokens: _NonNegativeInt | None = None
    output_tokens: _NonNegativeInt | None = None
    cache_creation_tokens: _NonNegativeInt = 0
    cache_read_tokens: _NonNegativeInt = 0
    reasoning_tokens: _NonNegativeInt | None = None


class ErrorSpec(_Strict):
    """Fields of an error object, laid over the wire's default for the status (or, mid-stream,
    the wire's default in-stream error). ``None`` keeps the default."""

    type: str | None = None
    message: str | None = None
    code: str | None = None
    param: str | None = None


class ReplaySpec(_Strict):
    """Serve ``path`` byte for byte with ``status``, ``content_type`` (default:
    ``text/event-stream; charset=utf-8`` for ``.sse`` files, ``application/json`` otherwise) and
    extra ``headers``. The file is read when the spec is validated, so a missing file is a
    script error and later edits of the file do not change what is served."""

    path: str = Field(min_length=1)
    status: int = Field(default=200, ge=100, le=599)
    content_type: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    _data: bytes = PrivateAttr(default=b"")

    @model_validator(mode="after")
    def _read_file(self) -> ReplaySpec:
        try:
            self._data = Path(self.path).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read replay file {self.path!r}: {exc.strerror}") from None
        return self

    @property
    def data(self) -> bytes:
        """The bytes to serve."""
        return self._data

    @property
    def media_type(self) -> str:
        """The content-type to serve the file with."""
        if self.content_type:
            return self.content_type
        if self.path.endswith(".sse"):
            return "text/event-stream; charset=utf-8"
        return "application/json"


class Turn(_Strict):
    """One model response, rendered in the wire format of the request that gets it.

    Content: ``text`` (or ``echo``: the last user message's text), ``reasoning`` (a string, or a
    list of strings for several thinking blocks / summary parts), ``signature`` (Anthropic
    thinking signature; generated from the reasoning text when unset), ``tool_calls``, ``usage``,
    ``stop_reason`` (alias ``finish_reason``: ``stop``, ``tool-calls``, ``length`` or
    ``content-filter``, mapped to each wire; any other value is sent as is on the Anthropic and
    chat wires), ``model`` (default: the request's model), ``reasoning_field`` (the chat delta
    key for reasoning: ``reasoning_content`` as vLLM/DeepSeek, or ``reasoning`` as Ollama).

    Streaming: ``chunk_size`` characters per delta, ``chunk_delay`` seconds before each delta.
    A *chunk* is one content delta (text, reasoning or tool arguments); framing events (message
    start, block start/stop, ...) are not chunks, so a script means the same on every wire.

    Faults: ``status`` (4xx/5xx) answers with the wire's error body for that status (fields
    overridable with ``error``, or the whole body with ``body``); ``retry_after`` adds a
    ``retry-after`` header; ``headers`` adds any header to any response. ``error_midstream``
    sends the wire's in-stream error event after ``N`` chunks (``true``: after the text, before
    tool calls) and ends the stream. ``drop_after`` closes the connection after ``N`` chunks
    without finishing the response. For both, ``N`` beyond the last chunk means just before the
    stream's terminal events. ``stall`` waits that many seconds after the response headers and
    before the first stream event (what a first-chunk timeout sees); ``stall_headers`` waits
    before the status line and headers (what an HTTP read timeout sees).

    ``replay`` serves a file instead (:class:`ReplaySpec`); it excludes every other field.
    """

    text: str | None = None
    echo: bool = False
    reasoning: str | list[str] | None = None
    signature: str | None = Field(default=None, min_length=1)
    tool_calls: list[ToolCallSpec] = Field(default_factory=list)
    usage: UsageSpec = Field(default_factory=UsageSpec)
    stop_reason: str | None = Field(
        default=None, min_length=1, validation_alias=AliasChoices("stop_reason", "finish_reason")
    )
    model: str | None = Field(default=None, min_length=1)
    reasoning_field: Literal["reasoning_content", "reasoning"] = "reasoning_content"
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, ge=1)
    chunk_delay: float = Field(default=0.0, ge=0)
    status: int | None = Field(default=None, ge=400, le=599)
    error: ErrorSpec | None = None
    body: Any = None
    retry_after: float | str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    error_midstream: bool | _NonNegativeInt | None = None
    drop_after: _NonNegativeInt | None = None
    stall: float = Field(default=0.0, ge=0)
    stall_headers: float = Field(default=0.0, ge=0)
    replay: ReplaySpec | None = None

    @field_validator("error_midstream")
    @classmethod
    def _no_false(cls, value: bool | int | None) -> bool | int | None:
        # `false` means no error; keep 0 ("before the first chunk") apart from it.
        return None if value is False else value

    @model_validator(mode="after")
    def _check_combinations(self) -> Turn:
        if self.replay is not None:
            others = sorted(self.model_fields_set - {"replay"})
            if others:
                raise ValueError(f"replay excludes the other turn fields (got {', '.join(others)})")
        if self.echo and self.text is not None:
            raise ValueError("give either text or echo, not both")
        streaming_faults = self.error_midstream is not None or self.drop_after is not None
        if self.status is not None and streaming_faults:
            raise ValueError(
                "status answers before the stream starts; it excludes "
                "error_midstream and drop_after"
            )
        if self.error_midstream is not None and self.drop_after is not None:
            raise ValueError("give either error_midstream or drop_after, not both")
        if self.body is not None and self.status is None:
            raise ValueError("body is the error body of a status; set status too")
        return self

    @property
    def reasoning_blocks(self) -> list[str]:
        """The reasoning as a list of blocks (empty when there is none)."""
        if self.reasoning is None:
            return []
        if isinstance(self.reasoning, str):
            return [self.reasoning] if self.reasoning else []
        return [block for block in self.reasoning if block]


class Rule(_Strict):
    """A turn chosen by the last user message's text: ``contains`` (case-insensitive substring)
    or ``match`` (case-insensitive regular expression, searched), and/or by ``tools`` (the
    request offers every tool named). ``turn`` is the answer, or ``steps`` a list of turns
    picked by the number of tool-result rounds after the last user message (step 0: none yet);
    past the last step the script's ``default`` answers."""

    contains: str | None = None
    match: str | None = None
    tools: list[str] | None = None
    turn: Turn | None = None
    steps: list[Turn] | None = None
    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if self.contains is not None and self.match is not None:
            raise ValueError("a rule takes contains or match, not both")
        if self.contains is None and self.match is None and not self.tools:
            raise ValueError("a rule needs contains, match or tools")
        if (self.turn is None) == (self.steps is None):
            raise ValueError("a rule needs exactly one of turn or steps")
        if self.steps is not None and not self.steps:
            raise ValueError("steps must not be empty")
        if self.match is not None:
            try:
                self._pattern = re.compile(self.match, re.IGNORECASE | re.DOTALL)
            except re.error as exc:
                raise ValueError(f"match is not a valid regular expression: {exc}") from None
        return self

    def matches(self, text: str, offered: Sequence[str] = ()) -> bool:
        """Whether the rule applies to a last user message with this text, in a request that
        offers the tools ``offered``."""
        if self.tools and not set(self.tools) <= set(offered):
            return False
        if self._pattern is not None:
            return self._pattern.search(text) is not None
        return (self.contains or "").lower() in text.lower()


class Script(_Strict):
    """A whole script: ``turns`` (a queue, consumed in order by any wire), then ``rules`` (first
    match wins), then ``default`` (echo the last user message). ``models`` are the ids ``GET
    /v1/models`` lists."""

    turns: list[Turn] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    default: Turn = Field(default_factory=lambda: Turn(echo=True))
    models: list[str] = Field(default_factory=lambda: ["fake-model"])


def _describe(exc: ValidationError, what: str) -> ScriptError:
    problems = []
    for error in exc.errors():
        location = ""
        for item in error["loc"]:
            location += f"[{item}]" if isinstance(item, int) else f".{item}" if location else item
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return ScriptError(f"invalid fake provider {what}: " + "; ".join(problems))


def parse_script(data: Mapping[str, Any] | Script | None) -> Script:
    """Validate a script dict. Raises :class:`ScriptError` listing every problem."""
    if isinstance(data, Script):
        return data
    try:
        return Script.model_validate(data or {})
    except ValidationError as exc:
        raise _describe(exc, "script") from None


def parse_turn(data: Mapping[str, Any] | Turn) -> Turn:
    """Validate one turn dict. Raises :class:`ScriptError`."""
    if isinstance(data, Turn):
        return data
    try:
        return Turn.model_validate(data)
    except ValidationError as exc:
        raise _describe(exc, "turn") from None


def load_script(path: str | Path) -> Script:
    """Read a script from a JSON file; relative replay paths are taken from the file's folder.
    Raises :class:`ScriptError` (also for unreadable files and invalid JSON)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScriptError(f"cannot read script {str(path)!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise ScriptError(f"script {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ScriptError(f"script {str(path)!r} must hold a JSON object")
    _resolve_replay_paths(data, path.parent)
    return parse_script(data)


def _resolve_replay_paths(node: Any, base: Path) -> None:
    if isinstance(node, dict):
        replay = node.get("replay")
        if isinstance(replay, dict) and isinstance(replay.get("path"), str):
            replay["path"] = str(base / replay["path"])
        for value in node.values():
            _resolve_replay_paths(value, base)
    elif isinstance(node, list):
        for value in node:
            _resolve_replay_paths(value, base)


# --- reading requests --------------------------------------------------------------------

Entry = Literal["user", "assistant", "tool"]


def _text_of(content: Any, text_types: Sequence[str]) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        str(block.get("text") or "")
        for block in content
        if isinstance(block, dict) and block.get("type") in text_types
    )


def _entries(wire: Wire, body: Mapping[str, Any]) -> list[tuple[Entry, str]]:
    """The request's conversation as ``(kind, user text)`` entries, system prompts left out."""
    entries: list[tuple[Entry, str]] = []
    if wire == "responses":
        items = body.get("input")
        if isinstance(items, str):
            return [("user", items)]
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if isinstance(kind, str) and kind.endswith("_call_output"):
                entries.append(("tool", ""))
            elif item.get("role") == "user" and kind in (None, "message"):
                entries.append(("user", _text_of(item.get("content"), ("input_text", "text"))))
            elif item.get("role") not in ("system", "developer"):
                entries.append(("assistant", ""))
        return entries
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if wire == "anthropic" and role == "user":
            results = isinstance(content, list) and any(
                isinstance(b, dict) and b.get("type") == "tool_result" for b in content
            )
            entries.append(("tool", "") if results else ("user", _text_of(content, ("text",))))
        elif wire == "chat" and role in ("tool", "function"):
            entries.append(("tool", ""))
        elif role == "user":
            entries.append(("user", _text_of(content, ("text",))))
        elif role == "assistant":
            entries.append(("assistant", ""))
    return entries


def conversation_position(wire: Wire, body: Mapping[str, Any]) -> tuple[str, int]:
    """``(last user text, tool-result rounds since)`` of a request body.

    The last user message is the newest user message that is not only tool results (Anthropic
    ``tool_result`` blocks, chat ``tool`` messages, Responses ``*_call_output`` items). A round is
    a run of consecutive tool results; the assistant items between runs separate them.
    """
    entries = _entries(wire, body)
    last = max((i for i, (kind, _) in enumerate(entries) if kind == "user"), default=-1)
    text = entries[last][1] if last >= 0 else ""
    rounds = 0
    previous: Entry | None = None
    for kind, _ in entries[last + 1 :]:
        if kind == "tool" and previous != "tool":
            rounds += 1
        previous = kind
    return text, rounds


def offered_tools(wire: Wire, body: Mapping[str, Any]) -> list[str]:
    """The names of the tools a request offers (chat nests them under ``function``)."""
    names = []
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        spec = tool.get("function") if wire == "chat" else tool
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            names.append(spec["name"])
    return names


def select_turn(script: Script, wire: Wire, body: Mapping[str, Any]) -> Turn:
    """The rule or default turn for a request (the queue is the caller's business)."""
    text, rounds = conversation_position(wire, body)
    offered = offered_tools(wire, body)
    for rule in script.rules:
        if rule.matches(text, offered):
            if rule.turn is not None:
                return rule.turn
            steps = rule.steps or []
            return steps[rounds] if rounds < len(steps) else script.default
    return script.default
