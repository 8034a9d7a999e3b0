"""The dependency rule (docs/architecture.md#the-dependency-rule): the import-linter contracts in
pyproject.toml's ``[tool.importlinter]`` hold for the package, and they break when a module
imports upward, across the kernel/server divide, or in a cycle, ``TYPE_CHECKING`` included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "coderchat_ext"
PYPROJECT = ROOT / "pyproject.toml"

_LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename=sys.argv[1], cache_dir=None, no_logo=True))"
)


def lint(source_root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the ``coderchat_ext`` found first under ``source_root``."""
    return subprocess.run(
        [sys.executable, "-c", _LINT, str(PYPROJECT)],
        cwd=source_root,
        env={"PYTHONPATH": str(source_root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_package_keeps_every_contract() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        pytest.param(
            "models.py",
            "from .chatd import daemon",
            "Server side: each layer imports only the layers below it",
            id="upward",
        ),
        pytest.param(
            "store/chats.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..server import base",
            "Server side: each layer imports only the layers below it",
            id="upward-for-typing",
        ),
        pytest.param(
            "client/_chats.py",
            "from ..store import db",
            "The kernel side imports nothing of the server side",
            id="kernel-to-server",
        ),
        pytest.param(
            "chatd/pubsub.py",
            "from . import stream",
            "No import cycles between the modules or subpackages of any package",
            id="cycle",
        ),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    copy = tmp_path / "coderchat_ext"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "static"))
    with (copy / module).open("a") as source:
        source.write(f"\n{line}\n")
    result = lint(tmp_path)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout
