"""What the daemon adds to a model call: a direct SDK streaming call versus a full chat turn
through the server, against the same fake provider server in one run.

For every concurrency N given with ``--chats`` this script

1. starts one :class:`~coderchat_ext.providers.fake.FakeProviderServer` (in this process, its
   own thread) whose default turn streams a fixed reply of ``--reply-chars`` characters in
   chunks of ``--chunk-size`` with ``--chunk-delay`` seconds between chunks;
2. **direct**: runs N concurrent ``client.messages.stream(...)`` calls with the official
   ``anthropic`` SDK (``AsyncAnthropic``, ``max_retries=0``) against it, ``--turns`` rounds, and
   times each call from the request to the end of the stream;
3. **daemon**: starts ``jupyter server`` with coderchat_ext as a child process (the server of
   ``bench/turns.py``) whose ``anthropic`` provider points at the same fake server, then runs N
   concurrent chats of ``--turns`` turns and times each turn from sending ``POST chats`` (or
   ``POST chats/{id}/messages``) to the final ``waiting`` status on the chat stream WebSocket,
   that is: validation, persistence, acquisition, prompt assembly, the same SDK call inside the
   daemon, publishing every part, persisting the step, and the status change;
4. prints p50/p99 of both and the ratio of the medians, and writes
   ``bench/results/overhead-<N>.json``.

The fake server and this client share two cores with the Jupyter server, so absolute figures
are machine-bound; the ratio is the point. See ``bench/README.md``.

Usage: ``python bench/overhead.py --chats 1 50 --turns 20``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import anthropic  # noqa: E402
import turns as base  # noqa: E402

from coderchat_ext.providers.fake import FakeProviderServer  # noqa: E402

MODEL = "claude-sonnet-5-5"


@dataclass
class Options:
    chats: list[int]
    turns: int
    reply_chars: int
    chunk_size: int
    chunk_delay: float
    acquire_interval: float
    results_dir: Path
    keep_temp: bool


def fake_script(opts: Options) -> dict[str, Any]:
    text = (base.REPLY * (opts.reply_chars // len(base.REPLY) + 1))[: opts.reply_chars]
    return {
        "default": {
            "text": text,
            "chunk_size": opts.chunk_size,
            "chunk_delay": opts.chunk_delay,
            "usage": {"input_tokens": 200, "output_tokens": 50},
        }
    }


# --- direct SDK calls ----------------------------------------------------------------------


async def direct_calls(fake: FakeProviderServer, n: int, rounds: int) -> list[float]:
    """Seconds per streamed call: ``rounds`` rounds of ``n`` concurrent calls."""
    client = anthropic.AsyncAnthropic(base_url=fake.url, api_key="bench", max_retries=0)

    async def one(index: int) -> float:
        started = time.perf_counter()
        async with client.messages.stream(
            model=MODEL,
            max_tokens=1024,
            messages=[{"role": "user", "content": f"chat {index}: say something"}],
        ) as stream:
            async for _ in stream:
                pass
            await stream.get_final_message()
        return time.perf_counter() - started

    durations: list[float] = []
    try:
        await asyncio.gather(*(one(i) for i in range(min(n, 4))))  # warm-up: connections, imports
        for _ in range(rounds):
            durations += await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await client.close()
    return durations


# --- full turns through the daemon ---------------------------------------------------------


class Server(base.Server):
    """``bench/turns.py``'s server with the ``anthropic`` provider pointed at the fake."""

    def __init__(self, opts: base.Options, n_chats: int, fake: FakeProviderServer) -> None:
        super().__init__(opts, n_chats)
        self.config["CoderChatApp"] = {
            "db_path": self.db_path,
            "providers": {"anthropic": {"api_key": "bench", "base_url": fake.url}},
            "model_configs": [{"provider": "anthropic", "model": MODEL, "context_limit": 200_000}],
            "seed_default_models": False,
            "acquire_interval": opts.acquire_interval,
            "max_chats_per_acquire": base.max_per_acquire(opts, n_chats),
        }
        config_file = self.tmp / "config" / "jupyter_server_config.json"
        config_file.write_text(json.dumps(self.config, indent=2))


async def daemon_turns(opts: Options, n: int, fake: FakeProviderServer) -> dict[str, Any]:
    turn_opts = base.Options(
        chats=[n],
        turns=opts.turns,
        reply_chars=opts.reply_chars,
        chunk_size=opts.chunk_size,
        max_chats_per_acquire=None,
        acquire_interval=opts.acquire_interval,
        connect_concurrency=100,
        turn_timeout=120.0,
        startup_timeout=60.0,
        skip_sql=True,
        keep_temp=opts.keep_temp,
        profile_server=False,
        results_dir=opts.results_dir,
    )
    server = Server(turn_opts, n, fake)
    try:
        await server.start()
        # One warm-up chat (imports the SDK, opens the client's connection pool).
        await base.Workload(server, turn_opts, 1).run()
        outcomes = await base.Workload(server, turn_opts, n).run()
    finally:
        await server.stop()
        if not opts.keep_temp:
            server.cleanup()
    failures = [o.failure for o in outcomes if o.failure]
    waits = [
        t.durations()["waiting"]
        for o in outcomes
        for t in o.turns
        if t.durations()["waiting"] is not None
    ]
    return {"durations": [w for w in waits if w is not None], "failures": failures}


# --- report --------------------------------------------------------------------------------


def ms(values: list[float], q: float) -> float | None:
    value = base.percentile(values, q)
    return None if value is None else round(value * 1000, 2)


async def run_one(opts: Options, n: int) -> dict[str, Any]:
    with FakeProviderServer(fake_script(opts)) as fake:
        direct = await direct_calls(fake, n, opts.turns)
        daemon = await daemon_turns(opts, n, fake)
    direct_p50, daemon_p50 = ms(direct, 0.5), ms(daemon["durations"], 0.5)
    return {
        "chats": n,
        "turns": opts.turns,
        "reply_chars": opts.reply_chars,
        "chunk_size": opts.chunk_size,
        "chunk_delay": opts.chunk_delay,
        "direct_ms": {"p50": direct_p50, "p99": ms(direct, 0.99), "count": len(direct)},
        "daemon_ms": {
            "p50": daemon_p50,
            "p99": ms(daemon["durations"], 0.99),
            "count": len(daemon["durations"]),
        },
        "ratio_p50": round(daemon_p50 / direct_p50, 2) if direct_p50 and daemon_p50 else None,
        "failures": daemon["failures"][:10],
        "machine": base.machine(),
    }


def print_table(results: list[dict[str, Any]]) -> None:
    print("| chats | direct SDK p50 / p99 (ms) | daemon turn p50 / p99 (ms) | ratio (p50) |")
    print("|---|---|---|---|")
    for r in results:
        d, t = r["direct_ms"], r["daemon_ms"]
        print(
            f"| {r['chats']} | {d['p50']} / {d['p99']} | {t['p50']} / {t['p99']} "
            f"| {r['ratio_p50']} |"
        )


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--turns", type=int, default=20, help="turns (rounds) per chat")
    parser.add_argument("--reply-chars", type=int, default=200)
    parser.add_argument("--chunk-size", type=int, default=40)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--acquire-interval", type=float, default=1.0)
    parser.add_argument("--results-dir", type=Path, default=base.RESULTS_DIR)
    parser.add_argument("--keep-temp", action="store_true")
    ns = parser.parse_args(argv)
    return Options(
        chats=ns.chats,
        turns=ns.turns,
        reply_chars=ns.reply_chars,
        chunk_size=ns.chunk_size,
        chunk_delay=ns.chunk_delay,
        acquire_interval=ns.acquire_interval,
        results_dir=ns.results_dir,
        keep_temp=ns.keep_temp,
    )


async def amain(opts: Options) -> int:
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for n in opts.chats:
        result = await run_one(opts, n)
        path = opts.results_dir / f"overhead-{n}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"   wrote {path}")
        results.append(result)
    print()
    print_table(results)
    return 0 if all(not r["failures"] for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
