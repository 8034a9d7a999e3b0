"""Real-browser fixtures: a ``jupyter lab`` subprocess with coderchat_ext and its prebuilt
labextension (free port, token, temporary root, config and data dirs), and Debian's Chromium
driven through Playwright (/usr/bin/chromium, never a browser download:
docs/architecture.md#testing).

Screenshots go to ``tests/e2e/artifacts/`` (git-ignored), one per checkpoint, named after the
test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.jupyter_process import ROOT, JupyterProcess, start_jupyter

CHROMIUM = Path("/usr/bin/chromium")
LABEXTENSION = ROOT / "coderchat_ext" / "labextension"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TOKEN = "e2e-test-token"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(
                        reason="/usr/bin/chromium is absent (scripts/test.sh installs Debian's "
                        "chromium with apt)"
                    )
                )


class Lab(JupyterProcess):
    """A running ``jupyter lab``: ``url`` is its base URL (with a trailing slash)."""

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.api + path, headers=self.headers(), params=params, timeout=10)
        response.raise_for_status()
        return response.json()


def start_lab(tmp: Path, coderchat: dict[str, Any]) -> Lab:
    """Start ``jupyter lab`` with ``c.CoderChatApp`` set to ``coderchat`` and wait until the
    chat API answers (30 s at most). The labextension is the worktree's build, linked into the
    server's own data dir so it wins over any installed copy."""
    if not (LABEXTENSION / "package.json").exists():
        pytest.fail(
            f"{LABEXTENSION} is not built: run `pip install -e .` or "
            "`npm --prefix js install && npm --prefix js run build`"
        )
    data = tmp / "data"
    (data / "labextensions").mkdir(parents=True, exist_ok=True)
    link = data / "labextensions" / "coderchat-ext"
    if not link.exists():
        link.symlink_to(LABEXTENSION, target_is_directory=True)
    try:
        server = start_jupyter(
            tmp,
            token=TOKEN,
            module="jupyterlab",
            root=tmp / "root",
            data_dir=data,
            coderchat={"db_path": str(tmp / "coderchat.db"), "acquire_interval": 0.05, **coderchat},
            extra_config={
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                }
            },
            # No "receive Jupyter news?" toast over the screenshots; window.jupyterapp lets a
            # test run JupyterLab commands (run all cells) the way the menus do.
            config_files={
                "labconfig/page_config.json": json.dumps(
                    {
                        "disabledExtensions": {
                            "@jupyterlab/apputils-extension:announcements": True
                        },
                        "exposeAppInBrowser": True,
                    }
                )
            },
            timeout=30,
        )
    except AssertionError as exc:
        pytest.fail(str(exc))
    return Lab(**vars(server))


@pytest.fixture
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private loop instead of pytest-jupyter's autouse one, which would pick up (and try to
    close) the loop Playwright's sync API keeps running in this thread."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def jp_server_cleanup() -> None:
    """Nothing to clean: these tests run JupyterLab in a subprocess, not an in-process
    ServerApp (overrides pytest-jupyter's autouse fixture)."""


@pytest.fixture
def lab_factory(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Lab]]:
    """Start a ``jupyter lab`` with the given CoderChatApp config; stopped after the test."""
    started: list[Lab] = []

    def start(coderchat: dict[str, Any]) -> Lab:
        lab = start_lab(tmp_path, coderchat)
        started.append(lab)
        return lab

    yield start
    for lab in started:
        lab.stop()


@pytest.fixture
def demo_lab(lab_factory: Callable[[dict[str, Any]], Lab]) -> Lab:
    """JupyterLab on a fresh install: no provider key, so chats use the offline demo model."""
    return lab_factory({})


@dataclass
class Browser:
    """A Chromium page plus what it reported: console errors and uncaught page errors."""

    page: Any
    name: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def shot(self, label: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright's Python driver (no bundled browser). One per test:
    Playwright's sync API keeps an event loop running in this thread while it is started,
    which the in-process server tests that follow would trip over."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """A fresh browser context and page (1400×900); a screenshot is kept when the test fails."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    b = Browser(page, request.node.name.removeprefix("test_")[:60])
    page.on("console", lambda m: b.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: b.page_errors.append(str(e)))
    yield b
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        b.shot("failure")
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def open_lab(browser: Browser, lab: Lab, path: str = "lab") -> None:
    """Load JupyterLab (token in the URL: the server answers with its login cookie) and wait
    until the application shell is up."""
    browser.page.goto(f"{lab.url}{path}?token={TOKEN}")
    browser.page.wait_for_selector("#jp-main-dock-panel", state="visible", timeout=60_000)


def open_chats_panel(browser: Browser) -> Any:
    """Click the Chats tab in the left side bar; returns the panel's locator."""
    page = browser.page
    panel = page.locator("#coderchat-panel")
    if not panel.is_visible():
        page.locator('.jp-SideBar [data-id="coderchat-panel"]').click()
    panel.wait_for(state="visible")
    return panel
