"""The demo notebooks and the magics in real kernels (nbclient) against a real ``jupyter
server`` process running the offline demo model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from tests.frontend.conftest import ROOT


def run_notebook(server: dict[str, str], cells: list[str] | Path) -> Any:
    if isinstance(cells, Path):
        nb = nbformat.read(cells, as_version=4)
    else:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": server["tmp"]}},
    )
    client.execute(env=json.loads(server["env"]))  # type: ignore[no-untyped-call]
    return nb


def text_of(cell: Any) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            out.append(o["text"])
        elif "data" in o:
            out.append(o["data"].get("text/plain", ""))
        elif o["output_type"] == "error":
            out.append("\n".join(o["traceback"]))
    return "\n".join(out)


def test_the_quickstart_runs_offline_with_the_demo_model(server: dict[str, str]) -> None:
    nb = run_notebook(server, ROOT / "notebooks" / "quickstart.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "Offline demo model" in text_of(code[0])
    chat_cell = text_of(code[3])
    assert "Show me what you can do with Python." in chat_cell
    assert "ChatWidget(chat_id=" in chat_cell
    assert "Turn(chat_id=" in chat_cell
    assert "status='waiting'" in chat_cell
    assert text_of(code[4]).startswith("waiting 3 ")
    assert "waiting" in text_of(code[5])
    assert "offline demo model" in text_of(code[5])
    assert "ChatWidget(chat_id='" in text_of(code[6])


def test_the_workspaces_notebook_creates_a_workspace_and_runs_tools(
    server: dict[str, str],
) -> None:
    nb = run_notebook(server, ROOT / "notebooks" / "workspaces.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "building" in text_of(code[2])
    assert "start/succeeded" in text_of(code[2])
    assert "scratch" in text_of(code[3])
    assert "hello from the workspace" in text_of(code[5])
    assert "stopping workspace" in text_of(code[6])
    # nbclient's kernel is not one the server started, so it cannot be attached; the magic
    # says why instead of failing later.
    assert "%chat: cannot read the kernel id from the connection file" in text_of(code[7])


def test_magics_report_clear_errors(server: dict[str, str]) -> None:
    nb = run_notebook(
        server,
        [
            "%load_ext coderchat_ext",
            "%chat bogus",
            "%chat use 00000000-0000-0000-0000-000000000000",
            "%chat new --model nope",
            "%%chat\n{undefined_name}",
            "%%chat\n   ",
            "%chat tool echo text=hi",
            "%chat workspace create no-such-template",
            "import os\nos.environ['CODERCHAT_URL'] = 'http://127.0.0.1:9/'\n"
            "from coderchat_ext import chat\nchat.reset_client()\n%chat list",
            "del os.environ['CODERCHAT_URL']\nchat.reset_client()\n"
            "import unittest.mock as m\n"
            "with m.patch('jupyter_server.serverapp.list_running_servers', return_value=[]):\n"
            "    get_ipython().run_line_magic('chat', 'list')",
        ],
    )
    out = [text_of(c) for c in nb.cells]
    assert "%chat: unknown subcommand 'bogus'" in out[1]
    assert "%chat: 404: Chat not found." in out[2]
    assert "%chat: unknown model 'nope'; available: demo/" in out[3]
    assert "%chat: {undefined_name} is not defined in the notebook" in out[4]
    assert "an empty message is not sent" in out[5]
    assert "send one first" in out[6]
    assert "%chat: unknown template 'no-such-template'" in out[7]
    assert "%chat: cannot reach the coderchat server at http://127.0.0.1:9/" in out[8]
    assert "%chat: no coderchat server found: start JupyterLab with coderchat_ext" in out[9]
