"""Kernel agent benchmarks (not run by the test suite).

    python bench/agents.py [--reads 200] [--parallel 8] [--seconds 1] [--starts 5]

Starts ipykernel ``python3`` kernels through jupyter_server's ``AsyncMappingKernelManager``
(the class the server uses) in a temporary root folder and measures, through
:class:`~coderchat_ext.workspaces.agents.AgentManager`:

- ``read_file`` round trip: one call after another on a connected agent, p50/p99;
- ``--parallel`` concurrent ``execute("sleep <seconds>")`` calls, wall time, on a kernel with
  subshells and with the serial fallback (``use_subshells=False``);
- kernel start to a connected agent (start + runtime injection), once without bytecode cache
  (``PYTHONPYCACHEPREFIX`` an empty folder: a cold first start) and ``--starts`` times warm;
- ``POST workspaces`` (what ``create_workspace`` does) to a connected agent for the blank
  ``python`` template, on a real ``jupyter server`` subprocess.

The table goes to stdout and ``<results-dir>/agents.json`` (default ``bench/results/``).

Each benchmark is an ``async def bench_<name>(km, args) -> list[Row]`` listed in
:data:`BENCHMARKS`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

from coderchat_ext.workspaces.agents import AgentManager


@dataclass
class Row:
    name: str
    n: int
    p50_ms: float | None
    p99_ms: float | None
    total_s: float


def percentile(samples: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0..100) of ``samples``."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def started_agent(
    km: Any, env: dict[str, str] | None = None, **options: Any
) -> tuple[AgentManager, float]:
    manager = AgentManager(km, **options)
    began = time.perf_counter()
    await manager.start("bench", kernel_name="python3", path="", env=env)
    return manager, time.perf_counter() - began


async def stop(manager: AgentManager) -> None:
    await manager.shutdown("bench")
    await manager.close()


async def bench_start(km: Any, args: argparse.Namespace) -> list[Row]:
    # A cold first start: the kernel finds no bytecode and compiles ipykernel, IPython and
    # their dependencies from source (what a fresh environment without .pyc files does).
    with tempfile.TemporaryDirectory(prefix="coderchat-bench-pyc-") as cache:
        cold_env = {"PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": "1"}
        manager, cold = await started_agent(km, env=cold_env)
        await stop(manager)
    samples = []
    for _ in range(args.starts):
        manager, seconds = await started_agent(km)
        samples.append(seconds * 1000)
        await stop(manager)
    return [
        Row("kernel start, no bytecode cache → connected agent", 1, cold * 1000, None, cold),
        Row(
            "kernel start → connected agent",
            len(samples),
            statistics.median(samples),
            percentile(samples, 99),
            sum(samples) / 1000,
        ),
    ]


async def bench_read_file(km: Any, args: argparse.Namespace) -> list[Row]:
    rows = []
    for subshells in (True, False):
        manager, _ = await started_agent(km, use_subshells=subshells)
        try:
            await manager.call("bench", "write_file", {"path": "bench.txt", "content": "x\n" * 200})
            for _ in range(10):  # warm up
                await manager.call("bench", "read_file", {"path": "bench.txt"})
            samples = []
            began = time.perf_counter()
            for _ in range(args.reads):
                t0 = time.perf_counter()
                await manager.call("bench", "read_file", {"path": "bench.txt"})
                samples.append((time.perf_counter() - t0) * 1000)
            total = time.perf_counter() - began
        finally:
            await stop(manager)
        mode = "subshells" if subshells else "serial"
        rows.append(
            Row(
                f"read_file round trip ({mode})",
                len(samples),
                statistics.median(samples),
                percentile(samples, 99),
                total,
            )
        )
    return rows


async def bench_parallel_commands(km: Any, args: argparse.Namespace) -> list[Row]:
    rows = []
    command = {"command": f"sleep {args.seconds}", "timeout": f"{args.seconds * 20}s"}
    for subshells in (True, False):
        manager, _ = await started_agent(km, use_subshells=subshells)
        try:
            await manager.call("bench", "execute", {"command": "true"})
            began = time.perf_counter()
            results = await asyncio.gather(
                *[
                    manager.call("bench", "execute", command, timeout=args.seconds * 40)
                    for _ in range(args.parallel)
                ]
            )
            total = time.perf_counter() - began
        finally:
            await stop(manager)
        assert all(r["success"] for r in results), results
        mode = "subshells" if subshells else "serial"
        rows.append(
            Row(
                f"{args.parallel} parallel `sleep {args.seconds:g}` ({mode})",
                args.parallel,
                None,
                None,
                total,
            )
        )
    return rows


async def bench_create_workspace(km: Any, args: argparse.Namespace) -> list[Row]:
    """``POST workspaces`` for the blank ``python`` template on a real ``jupyter server`` (the
    one ``bench/turns.py`` starts) until its agent is ``connected``, polling every 10 ms: the
    path ``create_workspace`` takes (quota, folder, kernel, runtime, files, ``init``)."""
    import httpx
    import turns

    from coderchat_ext.workspaces.templates import template_id_for

    opts = turns.parse_args(["--chats", "1"])
    server = turns.Server(opts, 1)
    samples = []
    try:
        await server.start()
        async with httpx.AsyncClient(
            base_url=server.base_url + "api/coderchat/", headers=server.headers, timeout=60
        ) as client:
            for index in range(args.starts):
                began = time.perf_counter()
                response = await client.post(
                    "workspaces",
                    json={"template_id": template_id_for("default", "python"), "name": f"b{index}"},
                )
                response.raise_for_status()
                workspace_id = response.json()["id"]
                while True:
                    workspace = (await client.get(f"workspaces/{workspace_id}")).json()
                    agents = workspace["latest_build"]["agents"]
                    if agents and all(a["status"] == "connected" for a in agents):
                        break
                    if workspace["latest_build"]["job"]["status"] == "failed":
                        raise RuntimeError(f"build failed: {workspace['latest_build']}")
                    await asyncio.sleep(0.01)
                samples.append((time.perf_counter() - began) * 1000)
                await client.post(f"workspaces/{workspace_id}/builds", json={"transition": "stop"})
    finally:
        await server.stop()
        server.cleanup()
    return [
        Row(
            "create_workspace (python template) → connected agent",
            len(samples),
            statistics.median(samples),
            percentile(samples, 99),
            sum(samples) / 1000,
        )
    ]


BENCHMARKS: list[Callable[[Any, argparse.Namespace], Awaitable[list[Row]]]] = [
    bench_start,
    bench_create_workspace,
    bench_read_file,
    bench_parallel_commands,
]


def table(rows: list[Row]) -> str:
    def ms(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    lines = [
        "| benchmark | n | p50 ms | p99 ms | total s |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.name} | {r.n} | {ms(r.p50_ms)} | {ms(r.p99_ms)} | {r.total_s:.2f} |" for r in rows
    ]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="coderchat-bench-") as root,
        tempfile.TemporaryDirectory(prefix="coderchat-bench-runtime-") as runtime,
    ):
        # Without a connection_dir (the server sets its runtime dir) the connection files land
        # in the current directory, and stay there when the run is interrupted.
        km = AsyncMappingKernelManager(root_dir=root, connection_dir=runtime)
        rows: list[Row] = []
        try:
            for bench in BENCHMARKS:
                rows += await bench(km, args)
        finally:
            await km.shutdown_all()
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / "agents.json"
    result = {"benchmark": "agents", "args": vars(args), "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"   wrote {path}")
    print(table(rows))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=200, help="read_file calls (default 200)")
    parser.add_argument("--parallel", type=int, default=8, help="parallel commands (default 8)")
    parser.add_argument("--seconds", type=float, default=1.0, help="command length (default 1)")
    parser.add_argument("--starts", type=int, default=5, help="kernel starts (default 5)")
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
