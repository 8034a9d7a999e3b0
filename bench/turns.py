"""Concurrent chat turns through the real server API (N chats x M turns, scripted model).

For every N given with ``--chats`` this script

1. starts ``python -m jupyter server`` as a separate process with coderchat_ext enabled, a random
   token, a free port on 127.0.0.1, a temporary root dir, config dir and database, and the
   ``scripted`` provider replying with a fixed text without any latency;
2. runs N chats concurrently, each with M turns: the first turn is ``POST chats`` (then the chat
   stream WebSocket is opened with ``after_id=0``), later turns are ``POST chats/{id}/messages``
   sent once the previous turn's final ``waiting`` status arrived on the stream;
3. measures, per turn, the time from sending the POST to the first ``message_part`` event and to
   the final ``waiting`` status event; turns per second; the server's peak RSS (psutil samples
   every 50 ms, and the kernel's ``VmHWM``); and checks that no message was lost: every chat ends
   with exactly M user + M assistant visible messages (``GET .../messages``), ids strictly
   increasing, no id seen twice on the stream and every visible message seen on the stream;
4. stops the server (SIGTERM, then SIGKILL) and scans its log for errors and warnings;
5. counts SQL statements per turn by running the same workload once more *in this process*
   (the server exposes no statement counter): a ``CoderChatApp`` is built with the same traits
   and started without a Jupyter server, the chats are driven through ``ChatService`` (the
   methods the POST handlers call) and followed through ``ChatService.open_stream`` (what the
   WebSocket handler calls), and ``Database.statements`` is divided by the number of turns.

Results go to stdout (a table) and ``bench/results/turns-<N>.json``. See ``bench/README.md``.

Usage: ``python bench/turns.py --chats 1 100 1000 --turns 3``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
REPLY = (
    "The scripted model answers every message with this fixed reply of exactly two hundred "
    "characters, streamed in chunks of forty, so each turn is five text parts and one message."
)
REPLY = (REPLY + "." * 200)[:200]
assert len(REPLY) == 200
MODEL_CONFIG = {"provider": "scripted", "model": "scripted-1", "context_limit": 100_000}


# --- configuration -------------------------------------------------------------------------


@dataclass
class Options:
    """Command-line options of one benchmark invocation."""

    chats: list[int]
    turns: int
    reply_chars: int
    chunk_size: int
    max_chats_per_acquire: int | None
    acquire_interval: float
    connect_concurrency: int
    turn_timeout: float
    startup_timeout: float
    skip_sql: bool
    keep_temp: bool
    profile_server: bool
    results_dir: Path


def coderchat_config(opts: Options, n_chats: int, db_path: str) -> dict[str, Any]:
    """The ``CoderChatApp`` traits shared by the server run and the in-process SQL run."""
    text = (REPLY * (opts.reply_chars // len(REPLY) + 1))[: opts.reply_chars]
    return {
        "db_path": db_path,
        "scripted_model": {"default": {"text": text, "chunk_size": opts.chunk_size}},
        "model_configs": [MODEL_CONFIG],
        "acquire_interval": opts.acquire_interval,
        "max_chats_per_acquire": max_per_acquire(opts, n_chats),
    }


def max_per_acquire(opts: Options, n_chats: int) -> int:
    """``--max-chats-per-acquire`` if given, else 50 from 500 chats up and the default 10."""
    if opts.max_chats_per_acquire is not None:
        return opts.max_chats_per_acquire
    return 50 if n_chats >= 500 else 10


# --- statistics ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary_ms(values: list[float]) -> dict[str, Any]:
    """Count, p50, p90, p99 and max of durations in seconds, reported in milliseconds."""

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 2)

    return {
        "count": len(values),
        "p50_ms": ms(percentile(values, 0.50)),
        "p90_ms": ms(percentile(values, 0.90)),
        "p99_ms": ms(percentile(values, 0.99)),
        "max_ms": ms(max(values) if values else None),
    }


# --- following one chat stream -------------------------------------------------------------


@dataclass
class Turn:
    """Timings of one turn, as ``time.perf_counter()`` instants."""

    index: int
    post_at: float = 0.0
    post_done_at: float | None = None
    first_part_at: float | None = None
    first_part_in_snapshot: bool = False
    waiting_at: float | None = None

    def durations(self) -> dict[str, float | None]:
        def since(at: float | None) -> float | None:
            return None if at is None else at - self.post_at

        return {
            "post": since(self.post_done_at),
            "first_part": since(self.first_part_at),
            "waiting": since(self.waiting_at),
        }


@dataclass
class StreamTracker:
    """Consumes chat stream frames: per-turn timings and message id bookkeeping.

    A turn is complete at the first ``status: waiting`` event that follows an assistant
    ``message`` of that turn, or, in the connect snapshot (where the status comes first), when
    the snapshot holds both an assistant message and the status ``waiting``.
    """

    ids: list[int] = field(default_factory=list)
    roles: dict[int, str] = field(default_factory=dict)
    duplicates: int = 0
    out_of_order: int = 0
    error_events: list[Any] = field(default_factory=list)
    retry_events: int = 0
    frames: int = 0
    events: int = 0
    closed: str | None = None
    turn: Turn | None = None
    _assistant_seen: bool = False
    _status: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def begin(self, turn: Turn) -> None:
        """Start tracking ``turn`` (call before sending its POST)."""
        self.turn = turn
        self._assistant_seen = False
        self._status = None
        self.done.clear()

    def feed(self, events: list[dict[str, Any]], at: float, snapshot: bool) -> None:
        """Process one frame received at ``at``; ``snapshot`` marks the connect snapshot."""
        self.frames += 1
        self.events += len(events)
        turn = self.turn
        for event in events:
            kind = event.get("type")
            if kind == "message_part":
                if turn is not None and turn.first_part_at is None:
                    turn.first_part_at = at
                    turn.first_part_in_snapshot = snapshot
            elif kind == "message":
                message = event["message"]
                message_id = int(message["id"])
                if message_id in self.roles:
                    self.duplicates += 1
                    continue
                if self.ids and message_id <= self.ids[-1]:
                    self.out_of_order += 1
                self.ids.append(message_id)
                self.roles[message_id] = message.get("role", "?")
                if message.get("role") == "assistant":
                    self._assistant_seen = True
            elif kind == "status":
                self._status = event.get("status")
                if self._status == "waiting" and self._assistant_seen and not snapshot:
                    self._complete(at)
            elif kind == "error":
                self.error_events.append(event.get("error"))
            elif kind == "retry":
                self.retry_events += 1
        if snapshot and self._status == "waiting" and self._assistant_seen:
            self._complete(at)

    def _complete(self, at: float) -> None:
        if self.turn is not None and self.turn.waiting_at is None:
            self.turn.waiting_at = at
            self.done.set()

    def close(self, reason: str) -> None:
        """The stream ended: wake a waiting turn (it stays incomplete)."""
        self.closed = reason
        self.done.set()

    async def wait_turn(self, timeout: float) -> None:
        """Wait for the current turn's ``waiting`` (raises ``TimeoutError`` /
        ``RuntimeError`` when it does not come)."""
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"turn {self.turn.index if self.turn else '?'}: no final waiting status after "
                f"{timeout:.0f}s (last status {self._status!r})"
            ) from None
        if self.turn is None or self.turn.waiting_at is None:
            raise RuntimeError(f"stream closed during the turn: {self.closed}")


@dataclass
class ChatOutcome:
    """What one chat's client observed."""

    index: int
    chat_id: str | None = None
    turns: list[Turn] = field(default_factory=list)
    tracker: StreamTracker = field(default_factory=StreamTracker)
    failure: str | None = None
    visible_user: int = 0
    visible_assistant: int = 0
    visible_other: int = 0
    visible_ids_increasing: bool = True
    visible_not_on_stream: int = 0

    def problems(self, turns: int) -> list[str]:
        """Why this chat does not pass the no-message-lost check (empty when it does)."""
        out = []
        if self.failure:
            out.append(self.failure)
        if (self.visible_user, self.visible_assistant, self.visible_other) != (turns, turns, 0):
            out.append(
                f"visible messages: {self.visible_user} user, {self.visible_assistant} "
                f"assistant, {self.visible_other} other (want {turns} + {turns})"
            )
        if not self.visible_ids_increasing:
            out.append("visible message ids not strictly increasing")
        if self.tracker.duplicates:
            out.append(f"{self.tracker.duplicates} message ids seen twice on the stream")
        if self.tracker.out_of_order:
            out.append(f"{self.tracker.out_of_order} stream message ids not increasing")
        if self.visible_not_on_stream:
            out.append(f"{self.visible_not_on_stream} visible messages never seen on the stream")
        if self.tracker.error_events:
            out.append(f"error events: {self.tracker.error_events[:3]}")
        return out

    def check_visible(self, messages: list[dict[str, Any]]) -> None:
        """Record the final visible messages (ascending ``GET .../messages?after_id=0``)."""
        ids = [int(m["id"]) for m in messages]
        self.visible_ids_increasing = all(a < b for a, b in itertools.pairwise(ids))
        self.visible_user = sum(1 for m in messages if m.get("role") == "user")
        self.visible_assistant = sum(1 for m in messages if m.get("role") == "assistant")
        self.visible_other = len(messages) - self.visible_user - self.visible_assistant
        self.visible_not_on_stream = sum(1 for i in ids if i not in self.tracker.roles)


def content(chat: int, turn: int) -> dict[str, Any]:
    """The body of a create/send POST."""
    return {"content": [{"type": "text", "text": f"bench chat {chat} turn {turn}: hello"}]}


# --- the server process --------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_nofile() -> tuple[int, int]:
    """Raise this process's open-file limit to the hard limit (the server inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a thread; keeps the maximum."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.process.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class StatusProbe:
    """Times an unrelated ``GET api/status`` (jupyter_server's own status handler, no
    coderchat_ext code) every ``interval`` seconds while the workload runs: how long the
    server's event loop keeps a request that has nothing to do with chats waiting.

    It runs in its own thread with a blocking client and one keep-alive connection, so the
    bench's busy asyncio loop does not delay the probe; the next request goes out
    ``interval`` after the previous one was sent, or at once when that one took longer.
    """

    def __init__(self, base_url: str, headers: dict[str, str], interval: float = 0.05) -> None:
        self.base_url = base_url
        self.headers = headers
        self.interval = interval
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-probe", daemon=True)

    def _run(self) -> None:
        with httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=120, trust_env=False
        ) as client:
            while not self._stop.is_set():
                sent = time.perf_counter()
                try:
                    response = client.get("api/status")
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text[:100]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                took = time.perf_counter() - sent
                self.latencies.append(took)
                self._stop.wait(max(0.0, self.interval - took))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        """Stop probing; the latency summary (``summary_ms`` plus ``failures``)."""
        self._stop.set()
        self._thread.join()
        return {**summary_ms(self.latencies), "failures": self.failures[:5]}


def vm_hwm(pid: int) -> int | None:
    """The kernel's peak-RSS mark (``VmHWM``) of ``pid`` in bytes (Linux), else None."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


class Server:
    """A ``jupyter server`` child process with coderchat_ext and the scripted model."""

    def __init__(self, opts: Options, n_chats: int) -> None:
        self.opts = opts
        self.tmp = Path(tempfile.mkdtemp(prefix=f"coderchat-bench-{n_chats}-"))
        self.token = secrets.token_hex(24)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/"
        self.log_path = self.tmp / "server.log"
        self.db_path = str(self.tmp / "db" / "coderchat.db")
        self.command = [sys.executable, "-m", "jupyter", "server"]
        if opts.profile_server:
            # ``jupyter server`` execs ``jupyter-server``; profile the server module directly.
            profile = opts.results_dir / f"server-{n_chats}.prof"
            self.command = [sys.executable, "-m", "cProfile", "-o", str(profile)]
            self.command += ["-m", "jupyter_server"]
        self.proc: asyncio.subprocess.Process | None = None
        self.killed = False
        self.ready_offset = 0
        self.probe_failures: list[str] = []
        config_dir = self.tmp / "config"
        root = self.tmp / "root"
        for folder in (config_dir, root, self.tmp / "data", self.tmp / "runtime"):
            folder.mkdir(parents=True)
        self.config = {
            "ServerApp": {
                "jpserver_extensions": {"coderchat_ext": True},
                "open_browser": False,
                "ip": "127.0.0.1",
                "port": self.port,
                "port_retries": 0,
                "root_dir": str(root),
                "allow_root": True,
            },
            # ``ServerApp.token`` is deprecated in jupyter_server 2; this is its successor.
            "IdentityProvider": {"token": self.token},
            "CoderChatApp": coderchat_config(opts, n_chats, self.db_path),
        }
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(self.config, indent=2))
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_DATA_DIR": str(self.tmp / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.tmp / "runtime"),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("CODERCHAT_URL", None)
        self.env.pop("CODERCHAT_TOKEN", None)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        """Spawn the server and poll ``GET api/coderchat/info`` until it answers 200."""
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=self.tmp,
                env=self.env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        deadline = time.monotonic() + self.opts.startup_timeout
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=5, trust_env=False
        ) as client:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(
                        f"server exited with {self.proc.returncode} during start; "
                        f"log:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get("api/coderchat/info")
                    if response.status_code == 200:
                        self.ready_offset = self.log_path.stat().st_size
                        return
                    self.probe_failures.append(f"{response.status_code} {response.text[:200]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready in time; log:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    async def stop(self) -> int | None:
        """SIGTERM, wait up to 20 s, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except asyncio.TimeoutError:
                self.killed = True
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_findings(self) -> dict[str, Any]:
        """Error/warning lines and tracebacks in the server log, split at the moment the
        readiness probe first succeeded (``startup``: while ``GET api/coderchat/info`` was
        being polled; ``run``: afterwards, i.e. during the workload and shutdown)."""
        raw = self.log_path.read_bytes() if self.log_path.exists() else b""
        return {
            "startup": self._scan(raw[: self.ready_offset].decode(errors="replace")),
            "run": self._scan(raw[self.ready_offset :].decode(errors="replace")),
        }

    @staticmethod
    def _scan(text: str) -> dict[str, Any]:
        lines = text.splitlines()
        errors = [
            ln
            for ln in lines
            if ln.startswith(("[E ", "[C ")) and "received signal 15, stopping" not in ln
        ]
        warnings = [ln for ln in lines if ln.startswith("[W ")]
        exceptions = [ln.strip() for ln in lines if re.match(r"^\s*[\w.]+(Error|Exception): ", ln)]
        return {
            "lines": len(lines),
            "errors": len(errors),
            "warnings": len(warnings),
            "tracebacks": text.count("Traceback (most recent call last)"),
            "exceptions": exceptions[:10],
            "error_samples": errors[:10],
            "warning_samples": warnings[:10],
        }

    def cleanup(self) -> None:
        if not self.opts.keep_temp:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --- the HTTP/WebSocket workload -----------------------------------------------------------


class Workload:
    """N chats x M turns against a running :class:`Server`.

    Every chat has its own ``httpx.AsyncClient`` holding one keep-alive connection (like one
    browser tab): a single client with a pool of N connections spends O(pool size) CPU per
    request in httpcore's connection assignment, which made the client, not the server, the
    bottleneck from 100 chats up.
    """

    def __init__(self, server: Server, opts: Options, n_chats: int) -> None:
        self.server = server
        self.opts = opts
        self.n_chats = n_chats
        self.gate = asyncio.Semaphore(opts.connect_concurrency)
        # Shared so httpx does not build (and load CA files into) an SSL context per client.
        self.ssl_context = ssl.create_default_context()
        self.ws_base = f"ws://127.0.0.1:{server.port}/api/coderchat/chats/"

    def client(self) -> httpx.AsyncClient:
        """A one-connection HTTP client for one chat."""
        return httpx.AsyncClient(
            base_url=self.server.base_url + "api/coderchat/",
            headers=self.server.headers,
            timeout=httpx.Timeout(max(60.0, self.opts.turn_timeout)),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            verify=self.ssl_context,
            trust_env=False,
        )

    async def run(self) -> list[ChatOutcome]:
        return list(await asyncio.gather(*(self.chat(i) for i in range(self.n_chats))))

    @staticmethod
    async def _post(
        http: httpx.AsyncClient, turn: Turn, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        turn.post_at = time.perf_counter()
        response = await http.post(path, json=body)
        turn.post_done_at = time.perf_counter()
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:200]}")
        return dict(response.json())

    async def chat(self, index: int) -> ChatOutcome:
        """Create the chat, follow its stream, send the other turns, verify the messages."""
        out = ChatOutcome(index)
        tracker = out.tracker
        ws: ClientConnection | None = None
        pump: asyncio.Task[None] | None = None
        http = self.client()
        try:
            first = Turn(1)
            out.turns.append(first)
            async with self.gate:
                tracker.begin(first)
                created = await self._post(http, first, "chats", content(index, 1))
                out.chat_id = created["id"]
                ws = await connect(
                    f"{self.ws_base}{out.chat_id}/stream?after_id=0",
                    additional_headers=self.server.headers,
                    max_size=None,
                    compression=None,
                    ping_interval=None,
                    proxy=None,
                    open_timeout=max(60.0, self.opts.turn_timeout),
                )
            pump = asyncio.ensure_future(self._pump(ws, tracker))
            await tracker.wait_turn(self.opts.turn_timeout)
            for number in range(2, self.opts.turns + 1):
                turn = Turn(number)
                out.turns.append(turn)
                tracker.begin(turn)
                sent = await self._post(
                    http, turn, f"chats/{out.chat_id}/messages", content(index, number)
                )
                if sent.get("queued"):
                    raise RuntimeError(f"turn {number}: the message was queued, chat still busy")
                await tracker.wait_turn(self.opts.turn_timeout)
            response = await http.get(
                f"chats/{out.chat_id}/messages", params={"after_id": 0, "limit": 200}
            )
            response.raise_for_status()
            out.check_visible(response.json()["messages"])
        except Exception as exc:
            out.failure = f"{type(exc).__name__}: {exc}"
        finally:
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()
            if pump is not None:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            await http.aclose()
        return out

    @staticmethod
    async def _pump(ws: ClientConnection, tracker: StreamTracker) -> None:
        snapshot = True
        try:
            async for raw in ws:
                at = time.perf_counter()
                tracker.feed(json.loads(raw), at, snapshot)
                snapshot = False
            tracker.close(f"closed {ws.close_code} {ws.close_reason}")
        except ConnectionClosed as exc:
            tracker.close(f"closed: {exc}")


# --- the in-process SQL statement count ----------------------------------------------------


class SqlTally:
    """Counts statements by SQL text while active, by wrapping the methods of
    ``coderchat_ext.store.db.Conn`` (restored on exit). ``BEGIN``/``COMMIT`` are counted by
    ``Database.tx`` itself, so they are the difference to ``Database.statements``."""

    # The methods that run a statement; ``fetchone``/``fetchval`` go through ``fetchall``.
    METHODS = ("execute", "execute_rowcount", "executemany", "fetchall")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> SqlTally:
        from coderchat_ext.store.db import Conn

        for name in self.METHODS:
            original = getattr(Conn, name)
            self._saved[name] = original

            def wrapper(conn: Any, sql: str, *args: Any, _original: Any = original) -> Any:
                key = re.sub(r"\s+", " ", sql).strip()[:100]
                self.counts[key] = self.counts.get(key, 0) + 1
                return _original(conn, sql, *args)

            setattr(Conn, name, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        from coderchat_ext.store.db import Conn

        for name, original in self._saved.items():
            setattr(Conn, name, original)

    def per_turn(self, statements: int, turns: int, top: int = 20) -> dict[str, float]:
        """The most frequent statements per turn, plus ``BEGIN IMMEDIATE/COMMIT``."""
        if not turns:
            return {}
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])
        out = {sql: round(n / turns, 2) for sql, n in ranked[:top]}
        rest = sum(n for _, n in ranked[top:])
        if rest:
            out["(other statements)"] = round(rest / turns, 2)
        out["BEGIN IMMEDIATE / COMMIT"] = round((statements - sum(self.counts.values())) / turns, 2)
        return out


@contextlib.asynccontextmanager
async def inprocess_server(opts: Options, n_chats: int, tmp: Path) -> AsyncIterator[Any]:
    """A real ``ServerApp`` in this process with coderchat_ext started the way ``jupyter
    server`` starts it; yields the ``CoderChatApp``. No HTTP server listens: the workload calls
    the services the handlers call.

    ``ServerApp.initialize`` links and loads the extension (its ``initialize_settings``), then
    ``ExtensionManager.start_all_extensions`` runs its async start hook, which is what the
    server's ``_post_start`` does (minus swallowing a failure: here it raises). ``_cleanup``
    is the server's own shutdown (extensions stopped, kernels shut down)."""
    from jupyter_server.serverapp import ServerApp
    from traitlets.config import Config

    root = tmp / "root"
    root.mkdir(parents=True)
    config = Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"coderchat_ext": True},
                "open_browser": False,
                "root_dir": str(root),
                "allow_root": True,
                "log_level": "WARN",
                "reraise_server_extension_failures": True,
            },
            "IdentityProvider": {"token": secrets.token_hex(24)},
            "CoderChatApp": coderchat_config(opts, n_chats, str(tmp / "coderchat.db")),
        }
    )
    # The start hook exports the server's URL and token for kernels; this process is not a
    # server, so they are put back afterwards. The server installs SIGINT/SIGTERM handlers
    # that stop its IOLoop; the bench keeps its own (Ctrl-C raises KeyboardInterrupt).
    saved_env = {k: os.environ.get(k) for k in ("CODERCHAT_URL", "CODERCHAT_TOKEN")}
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    serverapp = ServerApp(config=config)
    try:
        serverapp.initialize(argv=[], find_extensions=False, new_httpserver=False)
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)
        await serverapp.extension_manager.start_all_extensions()
        (app,) = serverapp.extension_manager.extension_apps["coderchat_ext"]
        if app.services is None:
            raise RuntimeError("coderchat_ext did not start (see the log above)")
        yield app
    finally:
        await serverapp._cleanup()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def inprocess_run(opts: Options, n_chats: int) -> dict[str, Any]:
    """Run the same workload in this process and count ``Database.statements``.

    The ``CoderChatApp`` runs inside a real ``ServerApp`` (:func:`inprocess_server`), so the
    ``Database``, ``StreamHub(MemoryPubSub())``, ``ProviderCatalog``, ``ToolRegistry``,
    ``ChatDaemon``, ``ChatService`` and ``WorkspaceService`` are built and started exactly as
    in the server; the chats are driven through ``ChatService``.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f"coderchat-bench-sql-{n_chats}-"))
    try:
        async with inprocess_server(opts, n_chats, tmp) as app:
            return await _inprocess_workload(app, opts, n_chats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _inprocess_workload(app: Any, opts: Options, n_chats: int) -> dict[str, Any]:
    """The N x M workload on a started ``CoderChatApp``, counting its statements."""
    from coderchat_ext.chatd.service import Actor
    from coderchat_ext.chatd.stream import StreamClosed, Subscription
    from coderchat_ext.models import CreateChatMessageRequest, CreateChatRequest

    actor = Actor(username="bench")
    services = app.services
    db = services.db

    async def pump(sub: Subscription, tracker: StreamTracker) -> None:
        try:
            while True:
                batch = await sub.next_batch()
                tracker.feed(batch, time.perf_counter(), False)
        except StreamClosed as closed:
            tracker.close(f"closed {closed.code} {closed.reason}")

    async def one_chat(index: int) -> ChatOutcome:
        out = ChatOutcome(index)
        tracker = out.tracker
        task: asyncio.Task[None] | None = None
        sub: Subscription | None = None
        try:
            first = Turn(1)
            out.turns.append(first)
            tracker.begin(first)
            first.post_at = time.perf_counter()
            chat = await services.chats.create_chat(
                actor, CreateChatRequest.model_validate(content(index, 1))
            )
            first.post_done_at = time.perf_counter()
            out.chat_id = chat.id
            sub, snapshot = await services.chats.open_stream(actor, chat.id, 0)
            tracker.feed(snapshot, time.perf_counter(), True)
            task = asyncio.ensure_future(pump(sub, tracker))
            await tracker.wait_turn(opts.turn_timeout)
            for number in range(2, opts.turns + 1):
                turn = Turn(number)
                out.turns.append(turn)
                tracker.begin(turn)
                turn.post_at = time.perf_counter()
                sent = await services.chats.send_message(
                    actor, chat.id, CreateChatMessageRequest.model_validate(content(index, number))
                )
                turn.post_done_at = time.perf_counter()
                if sent.get("queued"):
                    raise RuntimeError(f"turn {number}: the message was queued")
                await tracker.wait_turn(opts.turn_timeout)
        except Exception as exc:
            out.failure = f"{type(exc).__name__}: {exc}"
        finally:
            if sub is not None:
                sub.close(1000, "closed")
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return out

    turns_before = services.daemon.turns_completed
    start_statements = db.statements
    started = time.perf_counter()
    with SqlTally() as tally:
        outcomes = list(await asyncio.gather(*(one_chat(i) for i in range(n_chats))))
        wall = time.perf_counter() - started
        await asyncio.sleep(0.2)  # let trailing title updates land (counted as turn work)
    statements = db.statements - start_statements
    turns = services.daemon.turns_completed - turns_before
    # One stream open on an idle chat, to separate the per-chat connect cost.
    probe = next((o.chat_id for o in outcomes if o.chat_id), None)
    open_cost = 0
    if probe is not None:
        before = db.statements
        sub, _ = await services.chats.open_stream(actor, probe, 0)
        open_cost = db.statements - before
        sub.close(1000, "closed")
    for out in outcomes:
        if out.chat_id is not None:
            page = await services.chats.list_messages(
                actor, out.chat_id, before_id=None, after_id=0, limit=200
            )
            out.check_visible(page["messages"])
    failed = [o for o in outcomes if o.problems(opts.turns)]
    per_turn = statements / turns if turns else None
    return {
        "chats": n_chats,
        "turns": turns,
        "statements": statements,
        "statements_per_turn": None if per_turn is None else round(per_turn, 2),
        "stream_open_statements": open_cost,
        "statements_per_turn_without_stream_open": (
            round((statements - open_cost * n_chats) / turns, 2) if turns else None
        ),
        "by_statement_per_turn": tally.per_turn(statements, turns),
        "wall_s": round(wall, 3),
        "turns_per_s": round(turns / wall, 1) if wall else None,
        "latency": latency_summary(outcomes),
        "chats_failed": len(failed),
        "failures": [o.problems(opts.turns) for o in failed[:5]],
    }


# --- reporting -----------------------------------------------------------------------------


def latency_summary(outcomes: list[ChatOutcome]) -> dict[str, Any]:
    """Percentiles of POST response, first part and final waiting, overall and by turn."""

    def collect(turns: list[Turn]) -> dict[str, Any]:
        d = [t.durations() for t in turns]
        return {
            key: summary_ms([x[key] for x in d if x[key] is not None])
            for key in ("post", "first_part", "waiting")
        }

    all_turns = [t for o in outcomes for t in o.turns]
    by_turn = {}
    for number in sorted({t.index for t in all_turns}):
        by_turn[str(number)] = collect([t for t in all_turns if t.index == number])
    return {
        **collect(all_turns),
        "first_part_in_snapshot": sum(1 for t in all_turns if t.first_part_in_snapshot),
        "first_part_not_seen": sum(
            1 for t in all_turns if t.waiting_at is not None and t.first_part_at is None
        ),
        "by_turn": by_turn,
    }


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_table(results: list[dict[str, Any]]) -> None:
    """The summary table (one row per N) on stdout."""
    header = (
        "chats",
        "turns",
        "wall s",
        "turns/s",
        "1st part p50",
        "1st part p99",
        "waiting p50",
        "waiting p99",
        "SQL/turn",
        "status p50/p99/max",
        "peak RSS MiB",
        "lost/dup",
        "ok chats",
    )
    rows = []
    for r in results:
        lat = r["latency"]
        sql = r.get("sql") or {}
        status = r["status_latency"]
        rows.append(
            (
                str(r["chats"]),
                f"{r['turns_completed']}/{r['turns_expected']}",
                fmt(r["wall_s"], 2),
                fmt(r["turns_per_s"]),
                fmt(lat["first_part"]["p50_ms"]),
                fmt(lat["first_part"]["p99_ms"]),
                fmt(lat["waiting"]["p50_ms"]),
                fmt(lat["waiting"]["p99_ms"]),
                fmt(sql.get("statements_per_turn")),
                "/".join(fmt(status[k]) for k in ("p50_ms", "p99_ms", "max_ms")),
                fmt(r["server"]["peak_rss_mib"]),
                f"{r['checks']['lost_messages']}/{r['checks']['duplicate_ids']}",
                f"{r['checks']['chats_ok']}/{r['chats']}",
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print("(latencies in ms from sending the POST; status = GET api/status during the load, ms;")
    print(" lost = visible messages never seen on the stream + missing user/assistant messages;")
    print(" dup = message ids seen twice)")
    for r in results:
        log = r["server"]["log"]
        print(
            f"server log, {r['chats']} chats: run {log['run']['errors']} errors / "
            f"{log['run']['tracebacks']} tracebacks; startup (readiness polling) "
            f"{log['startup']['errors']} errors {log['startup']['exceptions'][:1]}"
        )


async def run_one(opts: Options, n_chats: int) -> dict[str, Any]:
    """Start a server, run N chats x M turns, stop it, count SQL in-process; the result."""
    server = Server(opts, n_chats)
    print(f"== {n_chats} chats x {opts.turns} turns: starting server on port {server.port}")
    outcomes: list[ChatOutcome] = []
    try:
        await server.start()
        proc = psutil.Process(server.pid)
        rss_at_start = proc.memory_info().rss
        cpu_before = proc.cpu_times()
        client_cpu_before = time.process_time()
        sampler = RssSampler(server.pid)
        sampler.start()
        status_probe = StatusProbe(server.base_url, server.headers)
        status_probe.start()
        started = time.perf_counter()
        try:
            outcomes = await Workload(server, opts, n_chats).run()
        finally:
            wall = time.perf_counter() - started
            sampler.stop()
            status_latency = status_probe.stop()
        cpu_after = proc.cpu_times()
        client_cpu = time.process_time() - client_cpu_before
        hwm = vm_hwm(server.pid)
        threads = proc.num_threads()
        open_fds = proc.num_fds()
    finally:
        exit_code = await server.stop()
        findings = server.log_findings()
        findings["readiness_probe_failures"] = server.probe_failures[:10]
        for phase in ("startup", "run"):
            found = findings[phase]
            if found["errors"] or found["tracebacks"]:
                print(
                    f"   server log ({phase}): {found['errors']} errors, "
                    f"{found['tracebacks']} tracebacks {found['exceptions'][:1]}; "
                    f"see {server.log_path}"
                )
                opts.keep_temp = True
        server.cleanup()

    turns_done = [t for o in outcomes for t in o.turns if t.waiting_at is not None]
    if turns_done:
        first_post = min(t.post_at for o in outcomes for t in o.turns)
        last_waiting = max(t.waiting_at for t in turns_done if t.waiting_at is not None)
        span = last_waiting - first_post
    else:
        span = wall
    failed = [o for o in outcomes if o.problems(opts.turns)]
    lost = sum(
        o.visible_not_on_stream
        + max(0, opts.turns - o.visible_user)
        + max(0, opts.turns - o.visible_assistant)
        for o in outcomes
    )
    result: dict[str, Any] = {
        "benchmark": "turns",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "chats": n_chats,
        "turns_per_chat": opts.turns,
        "turns_expected": n_chats * opts.turns,
        "turns_completed": len(turns_done),
        "wall_s": round(span, 3),
        "turns_per_s": round(len(turns_done) / span, 1) if span > 0 else None,
        "latency": latency_summary(outcomes),
        "status_latency": status_latency,
        "server": {
            "command": server.command,
            "config": {k: v for k, v in server.config.items() if k != "IdentityProvider"},
            "rss_at_start_mib": round(rss_at_start / 2**20, 1),
            "peak_rss_mib": round(sampler.peak / 2**20, 1),
            "peak_rss_vmhwm_mib": None if hwm is None else round(hwm / 2**20, 1),
            "rss_samples": sampler.samples,
            "cpu_s": round(
                (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system), 2
            ),
            "threads_at_end": threads,
            "open_fds_at_end": open_fds,
            "exit_code": exit_code,
            "needed_sigkill": server.killed,
            "log": findings,
        },
        "client_cpu_s": round(client_cpu, 2),
        "checks": {
            "chats_ok": n_chats - len(failed),
            "chats_failed": len(failed),
            "lost_messages": lost,
            "duplicate_ids": sum(o.tracker.duplicates for o in outcomes),
            "stream_ids_out_of_order": sum(o.tracker.out_of_order for o in outcomes),
            "error_events": sum(len(o.tracker.error_events) for o in outcomes),
            "retry_events": sum(o.tracker.retry_events for o in outcomes),
            "failures": [
                {"chat": o.index, "chat_id": o.chat_id, "problems": o.problems(opts.turns)}
                for o in failed[:20]
            ],
        },
        "settings": {
            "reply_chars": opts.reply_chars,
            "chunk_size": opts.chunk_size,
            "max_chats_per_acquire": max_per_acquire(opts, n_chats),
            "acquire_interval": opts.acquire_interval,
            "connect_concurrency": opts.connect_concurrency,
        },
        "machine": machine(),
    }
    if not opts.skip_sql:
        print(f"   counting SQL statements in-process ({n_chats} chats x {opts.turns} turns)")
        result["sql"] = await inprocess_run(opts, n_chats)
    return result


def machine() -> dict[str, Any]:
    """Where the benchmark ran."""
    cpu_model = ""
    with contextlib.suppress(OSError):
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu_model = ln.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--turns", type=int, default=3, help="turns per chat (M)")
    parser.add_argument("--reply-chars", type=int, default=200)
    parser.add_argument("--chunk-size", type=int, default=40)
    parser.add_argument(
        "--max-chats-per-acquire",
        type=int,
        default=None,
        help="CoderChatApp.max_chats_per_acquire (default: 50 from 500 chats up, else 10)",
    )
    parser.add_argument("--acquire-interval", type=float, default=1.0)
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=100,
        help="chats creating + connecting their WebSocket at once (first turn only)",
    )
    parser.add_argument("--turn-timeout", type=float, default=300.0)
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--skip-sql", action="store_true", help="skip the in-process SQL count")
    parser.add_argument("--keep-temp", action="store_true", help="keep server temp dirs/logs")
    parser.add_argument(
        "--profile-server",
        action="store_true",
        help="run the server under cProfile, writing <results-dir>/server-<N>.prof "
        "(slows it down: for finding bottlenecks, not for the figures)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    ns = parser.parse_args(argv)
    return Options(
        chats=ns.chats,
        turns=ns.turns,
        reply_chars=ns.reply_chars,
        chunk_size=ns.chunk_size,
        max_chats_per_acquire=ns.max_chats_per_acquire,
        acquire_interval=ns.acquire_interval,
        connect_concurrency=ns.connect_concurrency,
        turn_timeout=ns.turn_timeout,
        startup_timeout=ns.startup_timeout,
        skip_sql=ns.skip_sql,
        keep_temp=ns.keep_temp,
        profile_server=ns.profile_server,
        results_dir=ns.results_dir,
    )


async def amain(opts: Options) -> int:
    """Run every N in turn; write JSON results and print the table."""
    soft, _ = raise_nofile()
    needed = max(opts.chats) * 2 + 256
    if soft < needed:
        print(f"warning: open-file limit {soft} may be too low for {max(opts.chats)} chats")
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for n in opts.chats:
        result = await run_one(opts, n)
        path = opts.results_dir / f"turns-{n}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"   wrote {path}")
        results.append(result)
    print()
    print_table(results)
    return 0 if all(r["checks"]["chats_failed"] == 0 for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
