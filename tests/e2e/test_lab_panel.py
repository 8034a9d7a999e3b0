"""The JupyterLab extension in a real JupyterLab and Chromium: the Chats panel loads, drives
the offline demo model through a whole agent session (streamed text, tool cards, final
status), shows the same history after a reload, and shows the retry countdown and the error
callout for provider faults (issue 5, "Tests")."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext import _jupyter_labextension_paths
from coderchat_ext.providers.fake import FakeProviderServer
from tests.helpers import wait_for_sync

from .conftest import LABEXTENSION, Browser, Lab, open_chats_panel, open_lab

# Records, in the page, what passing states showed: the text of live (streaming) assistant
# messages, which the final message replaces, and every countdown text of a retry callout.
WATCH_PANEL = """
() => {
  window.__ccStreamed = [];
  window.__ccCountdowns = [];
  new MutationObserver(() => {
    for (const el of document.querySelectorAll("#coderchat-panel .cc-msg-live")) {
      const text = el.textContent.trim();
      if (text) window.__ccStreamed.push(text.length);
    }
    for (const el of document.querySelectorAll("#coderchat-panel .cc-countdown")) {
      window.__ccCountdowns.push(el.textContent.trim());
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


def send(panel: Any, text: str) -> None:
    """Type a message in the panel's composer and press Enter."""
    box = panel.locator(".cc-input")
    box.fill(text)
    box.press("Enter")


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
    panel.locator(".cc-input").wait_for()
    assert panel.locator(".cc-lab-list").count() == 1
    assert browser.page_errors == []
    assert browser.console_errors == []


def test_new_chat_from_the_command_palette_opens_the_panel_on_an_empty_composer(
    demo_lab: Lab, browser: Browser
) -> None:
    open_lab(browser, demo_lab)
    page = browser.page
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("New chat")
    page.locator('.lm-CommandPalette-item[data-command="coderchat:new-chat"]').click()
    panel = page.locator("#coderchat-panel")
    panel.wait_for(state="visible")
    assert panel.locator(".cc-input").input_value() == ""
    assert panel.locator(".cc-msg").count() == 0


def test_a_chat_started_in_the_panel_streams_the_demo_agent_session_and_survives_a_reload(
    demo_lab: Lab, browser: Browser
) -> None:
    page = browser.page
    open_lab(browser, demo_lab)
    panel = open_chats_panel(browser)
    page.evaluate(WATCH_PANEL)
    send(panel, "show me what you can do")

    panel.locator(".cc-msg-user", has_text="show me what you can do").wait_for()
    for tool in ("create_workspace", "write_file", "execute"):
        panel.locator(f'.cc-tool[data-tool="{tool}"]').first.wait_for(timeout=90_000)
    browser.shot("tools")
    final = panel.locator(".cc-msg-assistant", has_text="real agent session")
    final.wait_for(timeout=90_000)

    (chat,) = demo_lab.get("chats")
    done = wait_for_sync(
        lambda: (c := demo_lab.get(f"chats/{chat['id']}"))["status"] == "waiting" and c,
        "the turn to end",
        timeout=60,
    )
    assert done.get("last_error") is None
    # The final status: no callout left, Send back in place of Stop.
    panel.locator(".cc-callout").wait_for(state="detached")
    assert panel.locator(".cc-send").is_visible()
    assert not panel.locator(".cc-interrupt").is_visible()
    assert "Hello from Python" in panel.locator('.cc-tool[data-tool="execute"]').inner_text()
    assert page.evaluate("window.__ccStreamed.length") > 0, "no streamed text was seen"
    # The chat is in the list, selected.
    assert panel.locator(".cc-lab-list", has_text=done["title"]).count() == 1
    browser.shot("done")

    messages = panel.locator(".cc-msg").count()
    tools = panel.locator(".cc-tool").count()
    page.reload()
    page.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=60_000)
    panel = open_chats_panel(browser)
    panel.locator(".cc-msg-assistant", has_text="real agent session").wait_for()
    assert panel.locator(".cc-msg-user", has_text="show me what you can do").count() == 1
    assert panel.locator(".cc-msg").count() == messages
    assert panel.locator(".cc-tool").count() == tools
    browser.shot("reloaded")
    assert browser.page_errors == []


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer({"default": {"text": "Fine, thanks."}}) as server:
        yield server


def test_provider_faults_show_a_retry_countdown_then_an_error_callout(
    lab_factory: Callable[[dict[str, Any]], Lab], fake: FakeProviderServer, browser: Browser
) -> None:
    lab = lab_factory({"providers": {"anthropic": {"api_key": "sk-ant-e2e", "base_url": fake.url}}})
    open_lab(browser, lab)
    panel = open_chats_panel(browser)
    browser.page.evaluate(WATCH_PANEL)
    # A first turn that succeeds: its title request is spent, so the faults queued next go to
    # the chat's second turn alone.
    send(panel, "hello")
    panel.locator(".cc-msg-assistant", has_text="Fine, thanks.").wait_for()
    (chat,) = lab.get("chats")
    wait_for_sync(
        lambda: lab.get(f"chats/{chat['id']}")["status"] == "waiting", "the first turn", timeout=60
    )

    # Three rate limits (backoff 1 s, 2 s, 4 s: docs/loop.md#retries), then a rejected key.
    fake.push(*[{"status": 429, "retry_after": 1}] * 3, {"status": 401})
    send(panel, "and now?")
    retrying = panel.locator('.cc-callout[data-phase="retrying"]', has_text="Attempt 3")
    retrying.wait_for(timeout=30_000)
    assert "Rate limited" in retrying.inner_text()
    assert "HTTP 429" in retrying.inner_text()
    browser.shot("retrying")

    failed = panel.locator('.cc-callout[data-phase="failed"]')
    failed.wait_for(timeout=30_000)
    assert "Authentication" in failed.inner_text()
    assert "HTTP 401" in failed.inner_text()
    browser.shot("failed")
    # The countdown ticked down live before the retry went out.
    countdowns = browser.page.evaluate("window.__ccCountdowns")
    assert countdowns[0] == "Retrying in 1s", countdowns
    four = countdowns.index("Retrying in 4s")
    assert "Retrying in 3s" in countdowns[four:], countdowns
    assert lab.get(f"chats/{chat['id']}")["status"] == "error"
    assert "sk-ant-e2e" not in page_text(browser)


def page_text(browser: Browser) -> str:
    return str(browser.page.locator("body").inner_text())
