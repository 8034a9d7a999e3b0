"""Schemathesis against the served OpenAPI document of a real Jupyter server (a subprocess on
127.0.0.1): every documented operation is fuzzed, seeded and bounded, with the server's token,
and no answer may be a server error, an undocumented status or content type, a body that does
not match its schema, or a 405 without ``Allow``.

The same run by hand, against a server started with ``tests/jupyter_process.py``::

    python -m schemathesis.cli run http://127.0.0.1:<port>/api/coderchat/openapi.json \\
        -H "Authorization: token <token>" <the options of SCHEMATHESIS_OPTIONS>
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jupyter_process import JupyterProcess, start_jupyter

TOKEN = "schemathesis-token"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
)
EXCLUDED_OPERATIONS = ("createProvider", "updateProvider")
"""Configuring a real provider would send chat turns and titles to its random base URL: the
run stays on loopback and the scripted model (the provider endpoints' validation is covered
by tests/server/test_input_edge.py and the chatd tests)."""
SCHEMATHESIS_OPTIONS = (
    f"--checks={','.join(CHECKS)}",
    "--max-examples=10",
    "--seed=20261204",
    "--workers=1",
    "--request-timeout=20",
    "--continue-on-failure",
    "--generation-database=none",
    "--no-color",
    *(f"--exclude-operation-id={op}" for op in EXCLUDED_OPERATIONS),
)
"""Seeded and bounded: about 2,200 cases in 20-60 s. One worker, because Hypothesis's lambda
cache is not thread-safe (two workers fail at random with FlakyFailure)."""
DEAD_PROXY = "http://127.0.0.1:9"
"""Where the server's HTTP clients are sent for any non-loopback host: nothing listens there."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterProcess]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    with pytest.MonkeyPatch.context() as env:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env.setenv(name, DEAD_PROXY)
        env.setenv("NO_PROXY", "127.0.0.1,localhost")
        server = start_jupyter(
            tmp,
            token=TOKEN,
            coderchat={
                "db_path": str(tmp / "chat.db"),
                "scripted_model": {},
                "acquire_interval": 0.05,
                "model_configs": [{"provider": "scripted", "model": "s", "context_limit": 1000}],
            },
        )
    try:
        yield server
    finally:
        server.stop()


def _summary(output: str, label: str) -> int:
    found = re.search(rf"^\s*{label}:\s*(\d+)", output, re.MULTILINE)
    assert found, output[-4000:]
    return int(found.group(1))


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="schemathesis 4 needs Python 3.11 (pyproject.toml test extras)",
)
@pytest.mark.timeout(400)
def test_schemathesis_finds_no_failure_in_any_documented_operation(
    server: JupyterProcess, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        server.api + "openapi.json",
        f"--header=Authorization: token {TOKEN}",
        *SCHEMATHESIS_OPTIONS,
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=380)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-12000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases, output[-4000:]
    assert int(cases.group(1)) > 1000
    assert cases.group(1) == cases.group(2), output[-4000:]
    assert _summary(output, "Tested") == _summary(output, "Selected") > 30
    assert "failures" not in output.split("SUMMARY")[-1].lower()
    assert "Uncaught exception" not in server.log()
