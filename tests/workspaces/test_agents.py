"""The agent manager with real ipykernel kernels started through the test server's kernel
manager: injection, calls, subshells and the serial fallback, liveness, interrupt."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from coderchat_ext.workspaces.agents import (
    AGENT_DISCONNECTED,
    AGENT_TIMEOUT,
    NO_RUNNING_AGENT,
    RUNTIME_MODULE,
    AgentError,
    AgentManager,
    AgentUnavailable,
)
from tests.helpers import wait_for


class Agents:
    """An :class:`AgentManager` on the test server's kernel manager that records statuses and
    shuts down every kernel it started."""

    def __init__(self, serverapp: Any, **options: Any) -> None:
        self.km = serverapp.kernel_manager
        self.statuses: dict[str, list[str]] = {}
        self.started: list[str] = []
        options.setdefault("poll_interval", 0.1)
        self.manager = AgentManager(self.km, on_status=self._on_status, **options)

    async def _on_status(self, agent_id: str, status: str) -> None:
        self.statuses.setdefault(agent_id, []).append(status)

    async def start(self, agent_id: str = "agent", **kw: Any) -> str:
        self.started.append(agent_id)
        return await self.manager.start(agent_id, kernel_name="python3", path="", **kw)

    async def close(self) -> None:
        for agent_id in self.started:
            await self.manager.shutdown(agent_id)
        await self.manager.close()


@pytest.fixture
def make_agents(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    made: list[Agents] = []

    def make(**options: Any) -> Agents:
        agents = Agents(jp_serverapp, **options)
        made.append(agents)
        return agents

    yield make
    for agents in made:
        jp_asyncio_loop.run_until_complete(agents.close())


@pytest.fixture
def agents(make_agents: Any) -> Agents:
    return make_agents()


async def python(agents: Agents, agent_id: str, code: str) -> None:
    """Run ``code`` in the agent's kernel, as a user's cell would."""
    kernel = agents.km.get_kernel(agents.manager.kernel_id(agent_id))
    session = kernel.session.clone()
    session.session = "test-user-cell"  # a ZMQ identity of its own
    client = kernel.client(session=session)
    client.start_channels()
    try:
        reply = await client.execute_interactive(code, timeout=10)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()


def running_command(agents: Agents, agent_id: str, command: str) -> Any:
    """Start ``echo started; <command>`` in the foreground; returns ``(task, started)`` where
    the event is set once the command's first line streamed back."""
    started = asyncio.Event()

    async def on_output(text: str) -> None:
        if "started" in text:
            started.set()

    task = asyncio.ensure_future(
        agents.manager.call(
            agent_id,
            "execute",
            {"command": f"echo started; {command}", "timeout": "60s"},
            on_output=on_output,
        )
    )
    return task, started


def kernel_pid(agents: Agents, agent_id: str) -> int:
    kernel = agents.km.get_kernel(agents.manager.kernel_id(agent_id))
    return int(kernel.provisioner.process.pid)


# --- start, calls, results -------------------------------------------------------------------


async def test_start_injects_the_runtime_and_reports_connecting_then_connected(
    agents: Agents, jp_root_dir: Any
) -> None:
    kernel_id = await agents.start(env={"CODERCHAT_TEST_VAR": "42"})
    assert kernel_id in agents.km
    assert agents.statuses["agent"] == ["connecting", "connected"]
    assert agents.manager.status("agent") == "connected"
    assert agents.manager.kernel_id("agent") == kernel_id
    info = agents.manager.info("agent")
    assert info["cwd"] == str(jp_root_dir)
    assert info["subshells"] is True
    result = await agents.manager.call("agent", "execute", {"command": "echo $CODERCHAT_TEST_VAR"})
    assert result["output"] == "42\n"


async def test_the_runtime_stays_out_of_the_user_namespace(agents: Agents) -> None:
    await agents.start()
    await python(agents, "agent", f"assert {RUNTIME_MODULE!r} not in dir()")
    await python(agents, "agent", "assert not [n for n in dir() if 'coderchat' in n.lower()]")


async def test_execute_streams_output_before_the_result(agents: Agents) -> None:
    await agents.start()
    chunks: list[str] = []
    times: list[float] = []

    async def on_output(text: str) -> None:
        chunks.append(text)
        times.append(time.monotonic())

    result = await agents.manager.call(
        "agent",
        "execute",
        {"command": "echo first; sleep 0.5; echo second"},
        on_output=on_output,
    )
    done = time.monotonic()
    assert "".join(chunks) == "first\nsecond\n"
    assert result["output"] == "first\nsecond\n"
    assert times[0] < done - 0.3, "the first line arrived only with the result"


async def test_failed_operations_raise_agent_error_with_the_runtime_message(
    agents: Agents,
) -> None:
    await agents.start()
    with pytest.raises(AgentError, match=r"^file does not exist: nope.txt$"):
        await agents.manager.call("agent", "read_file", {"path": "nope.txt"})
    with pytest.raises(AgentError, match=r"^unknown operation 'fly'$"):
        await agents.manager.call("agent", "fly", {})
    with pytest.raises(AgentError, match=r"^invalid arguments for read_file: "):
        await agents.manager.call("agent", "read_file", {"bogus": 1})
    # The agent still works afterwards.
    await agents.manager.call("agent", "write_file", {"path": "a.txt", "content": "hi\n"})
    assert (await agents.manager.call("agent", "read_file", {"path": "a.txt"}))[
        "content"
    ] == "1\thi"


async def test_calls_to_an_unknown_agent_fail_at_once(agents: Agents) -> None:
    with pytest.raises(AgentUnavailable) as info:
        await agents.manager.call("nobody", "process_list", {})
    assert info.value.message == NO_RUNNING_AGENT


async def test_a_call_that_outlives_its_timeout_fails_and_is_cancelled_in_the_kernel(
    agents: Agents,
) -> None:
    await agents.start()
    with pytest.raises(AgentUnavailable) as info:
        await agents.manager.call(
            "agent", "execute", {"command": "sleep 30", "timeout": "60s"}, timeout=0.5
        )
    assert info.value.message == AGENT_TIMEOUT

    async def killed() -> bool:
        listing = await agents.manager.call("agent", "process_list", {})
        return all(not p["running"] for p in listing["processes"])

    deadline = time.monotonic() + 10
    while not await killed():
        assert time.monotonic() < deadline, "the command was not cancelled"
        await asyncio.sleep(0.05)
    assert agents.manager.status("agent") == "connected"


# --- parallelism -------------------------------------------------------------------------------


async def test_four_parallel_sleeps_finish_in_under_two_seconds_on_subshells(
    agents: Agents,
) -> None:
    await agents.start()
    assert agents.manager.info("agent")["subshells"] is True
    started = time.monotonic()
    results = await asyncio.gather(
        *[agents.manager.call("agent", "execute", {"command": "sleep 1"}) for _ in range(4)]
    )
    elapsed = time.monotonic() - started
    assert all(r["success"] for r in results)
    assert elapsed < 2.0, f"4 parallel sleeps took {elapsed:.2f}s"


async def test_without_subshells_calls_run_one_at_a_time(make_agents: Any) -> None:
    agents = make_agents(use_subshells=False)
    await agents.start()
    assert agents.manager.info("agent")["subshells"] is False
    started = time.monotonic()
    results = await asyncio.gather(
        *[
            agents.manager.call(
                "agent", "execute", {"command": "date +%s.%N; sleep 0.4; date +%s.%N"}
            )
            for _ in range(3)
        ]
    )
    assert time.monotonic() - started >= 1.2
    spans = sorted(tuple(float(x) for x in r["output"].split()) for r in results)
    for (_, end), (begin, _) in itertools.pairwise(spans):
        assert begin >= end, "two calls overlapped"


# --- liveness --------------------------------------------------------------------------------


async def test_kernel_killed_during_a_call_fails_it_and_later_calls_fail_fast(
    agents: Agents,
) -> None:
    await agents.start()
    kernel = agents.km.get_kernel(agents.manager.kernel_id("agent"))
    kernel.stop_restarter()  # keep it dead
    call, started = running_command(agents, "agent", "sleep 30")
    await asyncio.wait_for(started.wait(), 10)
    os.kill(kernel_pid(agents, "agent"), signal.SIGKILL)
    with pytest.raises(AgentUnavailable) as info:
        await asyncio.wait_for(call, 10)
    assert info.value.message == AGENT_DISCONNECTED
    assert agents.manager.status("agent") == "disconnected"
    assert agents.statuses["agent"][-1] == "disconnected"
    started = time.monotonic()
    with pytest.raises(AgentUnavailable) as again:
        await agents.manager.call("agent", "process_list", {})
    assert again.value.message == AGENT_DISCONNECTED
    assert time.monotonic() - started < 0.1


async def test_an_auto_restarted_kernel_gets_the_runtime_again(agents: Agents) -> None:
    await agents.start()
    await agents.manager.call("agent", "write_file", {"path": "kept.txt", "content": "x"})
    os.kill(kernel_pid(agents, "agent"), signal.SIGKILL)
    await wait_for(lambda: "disconnected" in agents.statuses["agent"], "disconnected", 20)
    await wait_for(lambda: agents.manager.status("agent") == "connected", "connected", 30)
    assert agents.statuses["agent"][-3:] == ["disconnected", "connecting", "connected"]
    result = await agents.manager.call("agent", "read_file", {"path": "kept.txt"})
    assert result["content"] == "1\tx"


async def test_a_kernel_shut_down_elsewhere_is_disconnected(agents: Agents) -> None:
    kernel_id = await agents.start()
    await agents.km.shutdown_kernel(kernel_id)
    await wait_for(lambda: agents.manager.status("agent") == "disconnected", "disconnected", 20)
    with pytest.raises(AgentUnavailable, match="disconnected"):
        await agents.manager.call("agent", "process_list", {})


async def test_a_frozen_kernel_times_out_and_recovers(make_agents: Any) -> None:
    agents = make_agents(inactive_timeout=1.5)
    await agents.start()
    pid = kernel_pid(agents, "agent")
    os.kill(pid, signal.SIGSTOP)
    try:
        await wait_for(lambda: agents.manager.status("agent") == "timeout", "timeout", 15)
        started = time.monotonic()
        with pytest.raises(AgentUnavailable) as info:
            await agents.manager.call("agent", "process_list", {})
        assert info.value.message == AGENT_TIMEOUT
        assert time.monotonic() - started < 0.1
    finally:
        os.kill(pid, signal.SIGCONT)
    await wait_for(lambda: agents.manager.status("agent") == "connected", "connected", 15)
    assert agents.statuses["agent"][-2:] == ["timeout", "connected"]
    assert (await agents.manager.call("agent", "process_list", {}))["processes"] == []


async def test_a_kernel_that_lost_the_runtime_gets_it_injected_again(agents: Agents) -> None:
    await agents.start()
    await python(agents, "agent", f"import sys; del sys.modules[{RUNTIME_MODULE!r}]")
    result = await agents.manager.call("agent", "execute", {"command": "echo back"})
    assert result["output"] == "back\n"
    assert agents.statuses["agent"][-2:] == ["connecting", "connected"]


# --- interrupt, attach, shutdown -----------------------------------------------------------------


@pytest.mark.parametrize("subshells", [True, False])
async def test_interrupt_stops_a_running_command(make_agents: Any, subshells: bool) -> None:
    agents = make_agents(use_subshells=subshells)
    await agents.start()
    call, running = running_command(agents, "agent", "sleep 30")
    await asyncio.wait_for(running.wait(), 10)
    started = time.monotonic()
    await agents.manager.interrupt("agent")
    if subshells:
        result = await asyncio.wait_for(call, 10)
        assert result["error"] == "command was cancelled"
    else:
        with pytest.raises(AgentError, match="interrupted"):
            await asyncio.wait_for(call, 10)
    assert time.monotonic() - started < 5
    assert (await agents.manager.call("agent", "execute", {"command": "echo ok"}))["success"]


async def test_attach_binds_a_running_kernel_and_detach_leaves_it_running(
    agents: Agents,
) -> None:
    kernel_id = await agents.km.start_kernel(kernel_name="python3", path="")
    try:
        await agents.manager.attach("external", kernel_id)
        assert agents.statuses["external"] == ["connecting", "connected"]
        result = await agents.manager.call("external", "execute", {"command": "echo hi"})
        assert result["output"] == "hi\n"
        await agents.manager.detach("external")
        assert agents.manager.status("external") is None
        assert kernel_id in agents.km
    finally:
        await agents.km.shutdown_kernel(kernel_id)


async def test_attach_to_a_missing_kernel_fails(agents: Agents) -> None:
    with pytest.raises(AgentError, match=r"^no running kernel nope$"):
        await agents.manager.attach("external", "nope")


async def test_shutdown_stops_the_kernel_and_forgets_the_agent(agents: Agents) -> None:
    kernel_id = await agents.start()
    await agents.manager.shutdown("agent")
    assert kernel_id not in agents.km
    assert agents.manager.status("agent") is None
    with pytest.raises(AgentUnavailable):
        await agents.manager.call("agent", "process_list", {})


async def test_a_kernel_that_does_not_exist_fails_to_start(agents: Agents) -> None:
    with pytest.raises(AgentError, match="did not start"):
        await agents.manager.start("bad", kernel_name="no-such-kernel", path="")
    assert agents.manager.status("bad") == "disconnected"
    await agents.manager.shutdown("bad")


@pytest.fixture
def slow_kernel(jp_data_dir: Any) -> Callable[[float], str]:
    """Installs a kernel whose process waits ``seconds`` before ipykernel starts, as a first
    start on a cold machine does while it imports ipykernel and IPython; returns its name."""

    def install(seconds: float) -> str:
        name = f"slow-{seconds:g}".replace(".", "-")
        folder = jp_data_dir / "kernels" / name
        folder.mkdir(parents=True)
        launch = (
            f"import time; time.sleep({seconds}); "
            "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()"
        )
        spec = {
            "argv": [sys.executable, "-c", launch, "-f", "{connection_file}"],
            "display_name": name,
            "language": "python",
        }
        (folder / "kernel.json").write_text(json.dumps(spec))
        return name

    return install


async def test_a_kernel_slower_to_start_than_the_connect_timeout_still_connects(
    make_agents: Any, slow_kernel: Callable[[float], str]
) -> None:
    agents = make_agents(connect_timeout=1.0)
    agents.started.append("slow")
    await agents.manager.start("slow", kernel_name=slow_kernel(3), path="")
    assert agents.manager.status("slow") == "connected"
    assert (await agents.manager.call("slow", "execute", {"command": "echo up"}))["exit_code"] == 0


async def test_a_running_kernel_that_never_answers_fails_with_what_to_do(
    make_agents: Any, slow_kernel: Callable[[float], str]
) -> None:
    agents = make_agents(start_timeout=2.0)
    agents.started.append("silent")
    began = time.monotonic()
    with pytest.raises(AgentError) as failed:
        await agents.manager.start("silent", kernel_name=slow_kernel(120), path="")
    assert time.monotonic() - began < 15
    assert "without replying" in failed.value.message
    assert "JupyterLab's Running panel" in failed.value.message
    assert agents.manager.status("silent") == "disconnected"
