"""Every script in ``bench/`` runs at toy size, exits 0 and reports sane figures, so a
benchmark cannot rot unnoticed.

The scripts run as subprocesses (as a user runs them), all at once to keep the module near
30 s on a loaded two-core machine; each test then checks its script's exit code, the table it
printed and the JSON it wrote to a temporary ``--results-dir``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.jupyter_process import HIDDEN_ENV, ROOT

BENCH = ROOT / "bench"
ARGS: dict[str, list[str]] = {
    "turns.py": ["--chats", "2", "--turns", "2"],
    "overhead.py": ["--chats", "1", "--turns", "2"],
    "agents.py": ["--reads", "5", "--parallel", "2", "--seconds", "0.2", "--starts", "1"],
}
"""Toy-size arguments of each benchmark script; a new script must be added here."""
DEADLINE = 150.0
"""Seconds a script may take here: several times its unloaded time (~10-20 s)."""


class Run:
    """One benchmark subprocess writing into its own results folder."""

    def __init__(self, script: str, results: Path) -> None:
        self.results = results
        env = {k: v for k, v in os.environ.items() if k not in HIDDEN_ENV}
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / script), *ARGS[script], "--results-dir", str(results)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._output: str | None = None

    def output(self) -> str:
        """Everything the script printed; fails the test when it did not exit 0 in time."""
        if self._output is None:
            try:
                self._output, _ = self.proc.communicate(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self._output, _ = self.proc.communicate()
                pytest.fail(f"not done in {DEADLINE:.0f}s:\n{self._output[-3000:]}")
        assert self.proc.returncode == 0, self._output[-3000:]
        return self._output

    def result(self, name: str) -> dict[str, Any]:
        self.output()
        return dict(json.loads((self.results / name).read_text()))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    started = {s: Run(s, tmp_path_factory.mktemp(s.removesuffix(".py"))) for s in ARGS}
    yield started
    # Let runs no test waited for (``-k``) finish: a killed script leaves its kernels behind.
    for run in started.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.proc.communicate(timeout=DEADLINE)
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.communicate()


def test_every_bench_script_has_a_smoke_run() -> None:
    assert sorted(p.name for p in BENCH.glob("*.py")) == sorted(ARGS)


def table_rows(output: str) -> list[list[str]]:
    """The rows of the whitespace-aligned table ``turns.py`` prints (after its ``---`` rule)."""
    lines = output.splitlines()
    rule = max(i for i, line in enumerate(lines) if line.startswith("----"))
    rows = []
    for line in lines[rule + 1 :]:
        if not line.strip() or line.startswith("("):
            break
        rows.append(line.split())
    return rows


def markdown_rows(output: str) -> dict[str, list[str]]:
    """``| a | b | ... |`` rows of a printed markdown table by first cell (header excluded)."""
    rows = {}
    for line in output.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_turns_runs_and_reports_throughput_sql_and_status_latency(runs: dict[str, Run]) -> None:
    run = runs["turns.py"]
    (row,) = table_rows(run.output())
    assert row[0] == "2"
    assert row[1] == "4/4"
    assert float(row[3]) > 0  # turns/s
    assert float(row[8]) > 0  # SQL/turn
    assert all(float(v) > 0 for v in row[9].split("/"))  # status p50/p99/max
    assert row[-2:] == ["0/0", "2/2"]

    result = run.result("turns-2.json")
    assert result["turns_completed"] == result["turns_expected"] == 4
    assert result["turns_per_s"] > 0
    assert result["checks"]["chats_failed"] == 0
    assert result["checks"]["lost_messages"] == 0
    assert 0 < result["latency"]["first_part"]["p50_ms"] <= result["latency"]["waiting"]["p99_ms"]
    sql = result["sql"]
    assert sql["turns"] == 4
    assert sql["chats_failed"] == 0
    # Each turn writes its user and assistant messages at least, in transactions.
    assert 4 < sql["statements_per_turn"] < 200
    assert sql["by_statement_per_turn"]["BEGIN IMMEDIATE / COMMIT"] > 0
    status = result["status_latency"]
    assert status["count"] >= 1
    assert status["failures"] == []
    assert 0 < status["p50_ms"] <= status["max_ms"]
    assert result["server"]["exit_code"] == 0
    assert result["server"]["log"]["run"]["tracebacks"] == 0


def test_overhead_runs_and_reports_direct_and_daemon_turns(runs: dict[str, Run]) -> None:
    run = runs["overhead.py"]
    direct, daemon, ratio = markdown_rows(run.output())["1"]
    assert all(float(v) > 0 for v in direct.split(" / ") + daemon.split(" / "))
    assert float(ratio) > 0

    result = run.result("overhead-1.json")
    assert result["failures"] == []
    assert result["direct_ms"]["count"] == result["daemon_ms"]["count"] == 2
    assert 0 < result["direct_ms"]["p50"] <= result["direct_ms"]["p99"]
    assert 0 < result["daemon_ms"]["p50"] <= result["daemon_ms"]["p99"]


def test_agents_runs_and_reports_every_benchmark(runs: dict[str, Run]) -> None:
    run = runs["agents.py"]
    printed = markdown_rows(run.output())
    rows = {r["name"]: r for r in run.result("agents.json")["rows"]}
    assert set(rows) == set(printed) - {"benchmark"}
    assert set(rows) == {
        "kernel start, no bytecode cache → connected agent",
        "kernel start → connected agent",
        "create_workspace (python template) → connected agent",
        "read_file round trip (subshells)",
        "read_file round trip (serial)",
        "2 parallel `sleep 0.2` (subshells)",
        "2 parallel `sleep 0.2` (serial)",
    }
    for name, row in rows.items():
        assert row["total_s"] > 0, name
        if row["p50_ms"] is not None:
            assert row["p50_ms"] > 0, name
        if row["p99_ms"] is not None:
            assert row["p50_ms"] <= row["p99_ms"], name
    assert rows["read_file round trip (serial)"]["n"] == 5
    # Two 0.2 s commands: about 0.2 s on subshells, at least 0.4 s one after the other.
    assert rows["2 parallel `sleep 0.2` (serial)"]["total_s"] >= 0.4
