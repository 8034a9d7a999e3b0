"""The JupyterLab extension in a real JupyterLab and Chromium: the Chats panel loads, lists
chats and drives the offline demo model through a whole agent turn."""

from __future__ import annotations

import json
from pathlib import Path

from coderchat_ext import _jupyter_labextension_paths

from .conftest import LABEXTENSION, Browser, Lab, open_chats_panel, open_lab


def test_the_labextension_path_points_at_the_built_extension_named_like_its_dest() -> None:
    (entry,) = _jupyter_labextension_paths()
    built = Path(__file__).resolve().parents[2] / "coderchat_ext" / entry["src"]
    assert built == LABEXTENSION
    meta = json.loads((built / "package.json").read_text())
    assert meta["name"] == entry["dest"] == "coderchat-ext"
    assert (built / meta["jupyterlab"]["_build"]["load"]).exists()


def test_jupyterlab_loads_the_plugin_and_the_chats_panel_opens_without_errors(
    demo_lab: Lab, browser: Browser
) -> None:
    open_lab(browser, demo_lab)
    panel = open_chats_panel(browser)
    assert panel.locator(".cc-lab-list").count() == 1
    assert panel.locator(".cc-lab-chat").count() == 1
    browser.shot("panel")
    assert browser.page_errors == []
    assert [e for e in browser.console_errors if "coderchat" in e.lower()] == []
