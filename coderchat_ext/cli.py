"""The ``coderchat`` command (docs/client.md).

``coderchat serve`` starts a headless Jupyter server with only this extension;
``coderchat chat MESSAGE...`` runs one turn and streams it to the terminal;
``coderchat chats`` and ``coderchat models`` list. The client commands find the server with
``--url``/``--token`` or :func:`~coderchat_ext.client.discover_server`. ``coderchat fake-llm``
runs the fake provider server (:mod:`coderchat_ext.providers.fake`) until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TextIO

from .client import (
    ApiError,
    AsyncChatClient,
    ChatClientError,
    StreamMarker,
    TurnResult,
    discover_server,
)
from .models import ChatError, ChatMessage, ChatMessagePart, ChatStreamEvent

SCRIPTED_MODEL_CONFIG = {
    "provider": "scripted",
    "model": "scripted-1",
    "display_name": "Scripted model",
    "context_limit": 200_000,
    "is_default": True,
}
"""The model config ``serve --scripted-model`` creates so chats have a default model."""
EXIT_OK, EXIT_ERROR, EXIT_ACTION = 0, 1, 2
FAKE_LLM_PORT = 8765
"""The default port of ``coderchat fake-llm``."""
RESULT_PREVIEW_CHARS = 200


def _client_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--url", help="server base URL (default: discover, see CODERCHAT_URL)")
    parent.add_argument("--token", help="server token (default: CODERCHAT_TOKEN or discovery)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``coderchat``."""
    parser = argparse.ArgumentParser(prog="coderchat", description="An agent chat for Jupyter.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    client = _client_options()

    serve = commands.add_parser(
        "serve",
        help="start a headless Jupyter server with only coderchat_ext",
        description="Start a headless Jupyter server with only the coderchat_ext extension. "
        "Other arguments go to jupyter_server's ServerApp (e.g. --ServerApp.root_dir=DIR, "
        "--allow-root).",
    )
    serve.add_argument("--port", type=int, help="port (0 picks a free one; default 8888)")
    serve.add_argument("--ip", help="address to listen on (default localhost)")
    serve.add_argument("--db", help="SQLite database file (CoderChatApp.db_path)")
    serve.add_argument("--token", help="auth token (default: a random one)")
    serve.add_argument(
        "--scripted-model",
        metavar="JSON_FILE",
        help="enable the scripted model with this script and the test tools (benchmarks)",
    )

    chat = commands.add_parser(
        "chat",
        parents=[client],
        help="send a message and stream the turn",
        description="Send a message (to a new chat unless --chat) and stream the turn. Exit "
        "status: 0 when the chat ends waiting, 1 on error, 2 when it requires client tool "
        "results.",
    )
    chat.add_argument("--chat", dest="chat_id", help="chat id (default: create a new chat)")
    chat.add_argument("--model", help="model config id or model name")
    chat.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    chat.add_argument("message", nargs="+", help='message text ("-" reads stdin)')

    chats = commands.add_parser("chats", parents=[client], help="list chats")
    chats.add_argument("--archived", action="store_true", help="list archived chats")
    chats.add_argument("--limit", type=int, default=50)

    commands.add_parser("models", parents=[client], help="list providers and model configs")

    fake = commands.add_parser(
        "fake-llm",
        help="run the fake LLM provider server (Anthropic and OpenAI wire formats)",
        description="Serve the Anthropic Messages, OpenAI Responses and Chat Completions APIs "
        "from a script, on loopback, until Ctrl-C. Any API key is accepted. Drive it from "
        "another process with its control API (POST /_fake/push, /_fake/script, "
        "/_fake/replay, /_fake/reset; GET /_fake/requests).",
    )
    fake.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    fake.add_argument(
        "--port", type=int, default=FAKE_LLM_PORT, help=f"port (default {FAKE_LLM_PORT}; 0: any)"
    )
    fake.add_argument("--script", metavar="FILE.json", help="the script (default: echo)")
    fake.add_argument(
        "--replay",
        metavar="FILE[:STATUS]",
        nargs="+",
        default=[],
        help="queue files to serve byte for byte, in order (status default 200)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``coderchat`` with ``argv`` (default ``sys.argv[1:]``) -> the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "serve":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "serve":
        return serve(args, extra)
    if args.command == "fake-llm":
        return fake_llm(args)
    try:
        return asyncio.run(_run_client_command(args))
    except ChatClientError as exc:
        print(f"coderchat: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


# --- serve -------------------------------------------------------------------------------


def serve(args: argparse.Namespace, server_argv: list[str]) -> int:
    """Start a headless ``ServerApp`` with ``jpserver_extensions={"coderchat_ext": True}``,
    no browser and no extension found in the Jupyter config paths; prints the URL with its
    token, then serves until interrupted."""
    from jupyter_server.serverapp import ServerApp
    from traitlets.config import Config

    config = Config()
    config.ServerApp.open_browser = False
    config.ServerApp.jpserver_extensions = {"coderchat_ext": True}
    if args.port is not None:
        config.ServerApp.port = args.port
    if args.ip:
        config.ServerApp.ip = args.ip
    if args.token is not None:
        config.IdentityProvider.token = args.token
    if args.db:
        config.CoderChatApp.db_path = args.db
    if args.scripted_model:
        with open(args.scripted_model, encoding="utf-8") as f:
            script = json.load(f)
        if not isinstance(script, dict):
            print("coderchat: the scripted model file must hold a JSON object", file=sys.stderr)
            return EXIT_ERROR
        config.CoderChatApp.scripted_model = script
        config.CoderChatApp.test_tools = True
        config.CoderChatApp.model_configs = [SCRIPTED_MODEL_CONFIG]
        config.CoderChatApp.default_model = "scripted/scripted-1"

    app = ServerApp(config=config)
    app.jpserver_extensions = {"coderchat_ext": True}
    app.initialize(argv=server_argv, find_extensions=False)
    app.start_app()
    token = getattr(app.identity_provider, "token", "") or ""
    url = app.connection_url
    print(f"coderchat serving at {url}" + (f"?token={token}" if token else ""), flush=True)
    print(f"CODERCHAT_URL={url}" + (f" CODERCHAT_TOKEN={token}" if token else ""), flush=True)
    app.start_ioloop()
    return EXIT_OK


# --- fake-llm ----------------------------------------------------------------------------


def _replay_argument(value: str) -> tuple[str, int]:
    path, _, status = value.rpartition(":")
    if path and status.isdigit():
        return path, int(status)
    return value, 200


def fake_llm(args: argparse.Namespace) -> int:
    """Run the fake provider server with ``--script`` and ``--replay`` files queued first;
    prints the base URLs and the environment to point the SDKs at it, then serves until
    SIGINT (Ctrl-C) or SIGTERM (POSIX only: it waits with ``signal.sigwait``)."""
    import signal

    from .providers.fake import FakeProviderServer, ScriptError, load_script

    stop_signals = {signal.SIGINT, signal.SIGTERM}
    # Block the stop signals before the server thread starts (it inherits the mask), so they
    # reach this thread, which waits for them synchronously.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        script = load_script(args.script) if args.script else None
        server = FakeProviderServer(script, host=args.host, port=args.port)
        for value in args.replay:
            path, status = _replay_argument(value)
            server.replay(path, status=status)
        server.start()
    except (ScriptError, OSError) as exc:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
        print(f"coderchat: fake-llm: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"coderchat fake-llm serving at {server.url}", flush=True)
    print(f"  Anthropic SDK: base_url={server.url}", flush=True)
    print(f"  OpenAI SDK (Responses, Chat Completions): base_url={server.openai_base_url}")
    print(f"  export ANTHROPIC_BASE_URL={server.url} ANTHROPIC_API_KEY=fake")
    print(f"  export OPENAI_BASE_URL={server.openai_base_url} OPENAI_API_KEY=fake")
    print(f"  control: POST {server.url}/_fake/push, GET {server.url}/_fake/requests")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        signal.sigwait(stop_signals)
    finally:
        server.stop()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    return EXIT_OK


# --- client commands ---------------------------------------------------------------------


def _client(args: argparse.Namespace) -> AsyncChatClient:
    if args.url:
        return AsyncChatClient(args.url, args.token)
    info = discover_server()
    return AsyncChatClient(info.url, args.token or info.token)


async def _run_client_command(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        try:
            if args.command == "chat":
                return await _chat(client, args)
            if args.command == "chats":
                return await _chats(client, args)
            return await _models(client)
        except ApiError as exc:
            print(f"coderchat: {exc}", file=sys.stderr)
            return EXIT_ERROR


async def _resolve_model(client: AsyncChatClient, value: str) -> str:
    configs = await client.list_model_configs()
    for config in configs:
        if value in (config.id, config.model, f"{config.provider}/{config.model}"):
            return config.id
    names = ", ".join(f"{c.provider}/{c.model}" for c in configs) or "none"
    raise ChatClientError(f"no model config matches {value!r} (available: {names})")


async def _chat(client: AsyncChatClient, args: argparse.Namespace) -> int:
    words: list[str] = args.message
    text = sys.stdin.read() if words == ["-"] else " ".join(words)
    model = await _resolve_model(client, args.model) if args.model else None
    printer = TurnPrinter(sys.stdout, sys.stderr)
    result = await client.run_turn(
        args.chat_id, text, model_config_id=model, on_event=printer, timeout=args.timeout
    )
    printer.finish(result)
    if args.chat_id is None:
        print(f"chat: {result.chat_id}", file=sys.stderr)
    if result.status == "waiting":
        return EXIT_OK
    if result.status == "requires_action":
        return EXIT_ACTION
    return EXIT_ERROR


async def _chats(client: AsyncChatClient, args: argparse.Namespace) -> int:
    for chat in await client.list_chats(archived=args.archived, limit=args.limit):
        print(f"{chat.id}  {chat.status:<15}  {chat.title}")
    return EXIT_OK


async def _models(client: AsyncChatClient) -> int:
    for provider in (await client.list_models()).providers:
        state = "available" if provider.available else "unavailable"
        if provider.unavailable_reason:
            state += f": {provider.unavailable_reason}"
        print(f"{provider.provider} ({provider.display_name}, {state})")
        for model in provider.models:
            default = "  (default)" if model.is_default else ""
            print(f"  {model.id}  {model.model}  {model.display_name}{default}")
    return EXIT_OK


def _preview(text: str) -> str:
    return text if len(text) <= RESULT_PREVIEW_CHARS else text[:RESULT_PREVIEW_CHARS] + "..."


class TurnPrinter:
    """Renders a turn's stream events on a terminal: assistant text as it streams (to
    ``out``), tool calls and results as short lines (to ``out``), retries and errors (to
    ``err``).

    Text the server re-sends after a reconnect, and text a retried model call repeats, is not
    printed twice: ``printed`` is what the terminal shows of the step in flight, ``received``
    what the current connection/attempt has sent of it.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.printed = ""
        self.received = ""
        self.at_line_start = True
        self.calls: set[str] = set()
        self.results: set[str] = set()
        self.error_shown = False

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self.at_line_start = text.endswith("\n")

    def _line(self, text: str) -> None:
        self._write(("" if self.at_line_start else "\n") + text + "\n")

    def _text(self, received: str) -> None:
        self.received = received
        if self.printed.startswith(received):
            return
        if received.startswith(self.printed):
            self._write(received[len(self.printed) :])
        else:
            self._line("")
            self._write(received)
        self.printed = received

    def _call(self, part: ChatMessagePart) -> None:
        call_id = part.tool_call_id or ""
        if call_id in self.calls:
            return
        self.calls.add(call_id)
        args = "" if part.args is None else " " + _preview(json.dumps(part.args))
        self._line(f"[tool call] {part.tool_name}{args}")

    def _result(self, part: ChatMessagePart) -> None:
        call_id = part.tool_call_id or ""
        if call_id in self.results:
            return
        self.results.add(call_id)
        label = "tool error" if part.is_error else "tool result"
        value = part.result if isinstance(part.result, str) else json.dumps(part.result)
        preview = (
            value if len(value) <= RESULT_PREVIEW_CHARS else value[:RESULT_PREVIEW_CHARS] + "…"
        )
        self._line(f"[{label}] {part.tool_name}: {preview}")

    def _error(self, error: ChatError) -> None:
        self.error_shown = True
        detail = f" ({error.detail})" if error.detail else ""
        status = f" [HTTP {error.status_code}]" if error.status_code else ""
        print(f"coderchat: error: {error.message}{detail}{status}", file=self.err, flush=True)

    def _message(self, message: ChatMessage) -> None:
        if message.role == "assistant":
            self._text("".join(p.text or "" for p in message.content if p.type == "text"))
            self.printed = self.received = ""
        for part in message.content:
            if part.type == "tool-call":
                self._call(part)
            elif part.type == "tool-result":
                self._result(part)

    def __call__(self, item: ChatStreamEvent | StreamMarker) -> None:
        """Render one item (the ``on_event`` of ``run_turn``)."""
        if isinstance(item, StreamMarker):
            self.received = ""
            if item.kind == "reset":
                print("coderchat: the chat's history changed", file=self.err)
            return
        if item.type == "message_part" and item.message_part is not None:
            part = item.message_part.part
            if part.type == "text" and part.text:
                self._text(self.received + part.text)
            elif part.type == "tool-call" and part.args_delta is None:
                self._call(part)
            elif part.type == "tool-result" and part.result_delta:
                self._write(part.result_delta)
            elif part.type == "tool-result" and (part.result is not None or part.is_error):
                self._result(part)
        elif item.type == "message" and item.message is not None:
            self._message(item.message)
        elif item.type == "retry" and item.retry is not None:
            self.received = ""
            retry = item.retry
            print(
                f"coderchat: retrying in {retry.delay_ms / 1000:g}s "
                f"(attempt {retry.attempt}): {retry.error}",
                file=self.err,
                flush=True,
            )
        elif item.type == "error" and item.error is not None:
            self._error(item.error)

    def finish(self, result: TurnResult) -> None:
        """End the output: a final newline, and what needs the user's attention."""
        if not self.at_line_start:
            self._write("\n")
        if result.status == "error" and result.error is not None and not self.error_shown:
            self._error(result.error)
        if result.action_required is not None:
            for call in result.action_required.tool_calls:
                print(
                    f"coderchat: waiting for a result of {call.tool_name} ({call.tool_call_id})",
                    file=self.err,
                )


if __name__ == "__main__":
    sys.exit(main())
