"""A notebook in a real JupyterLab and Chromium: ``%%chat`` renders the live chat widget in the
cell's output and returns the turn's result for the next cell (issue 5, "Tests")."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import Browser, Lab, open_lab

CELLS = [
    "%load_ext coderchat_ext",
    "%%chat\nshow me what you can do",
    "turn = _\n"
    "print('RESULT', turn.status, len(turn.tool_calls), 'real agent session' in turn.text)",
]


def write_notebook(lab: Lab, name: str) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
        for src in CELLS
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (lab.root / name).write_text(json.dumps(notebook))


@pytest.mark.timeout(300)
def test_a_chat_cell_renders_the_widget_and_returns_the_turn_result(
    demo_lab: Lab, browser: Browser
) -> None:
    write_notebook(demo_lab, "magic.ipynb")
    open_lab(browser, demo_lab, "lab/tree/magic.ipynb")
    page = browser.page
    notebook = page.locator(".jp-NotebookPanel")
    notebook.wait_for()
    kernel_name = page.locator(".jp-NotebookPanel-toolbar .jp-KernelName")
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    dialog = page.locator(".jp-Dialog .jp-mod-accept", has_text="Select")
    deadline = time.monotonic() + 60
    while not ("Python 3" in kernel_name.inner_text() and idle.count()):
        # JupyterLab may ask which kernel to start: take the notebook's own (Python 3).
        if dialog.count():
            dialog.click()
        assert time.monotonic() < deadline, "the notebook's kernel did not start"
        time.sleep(0.1)
    # Not awaited: the command's promise resolves only when every cell has run.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

    cells = notebook.locator(".jp-Cell")
    widget = cells.nth(1).locator(".jp-OutputArea-output .cc-timeline")
    widget.wait_for(timeout=60_000)
    for tool in ("create_workspace", "write_file", "execute"):
        cells.nth(1).locator(f'.cc-tool[data-tool="{tool}"]').first.wait_for(timeout=90_000)
    result = cells.nth(2).locator(".jp-OutputArea-output", has_text="RESULT")
    result.wait_for(timeout=120_000)
    assert result.inner_text().strip() == "RESULT waiting 3 True"
    cells.nth(1).locator(".cc-msg-assistant", has_text="real agent session").wait_for()
    cells.nth(1).scroll_into_view_if_needed()
    browser.shot("notebook")
    assert browser.page_errors == []
