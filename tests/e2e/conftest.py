"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Each test gets a tiny demo workspace (real simulator-logged decisions) and the three demo logins;
Celery runs eagerly inside the live server so a training run finishes within the test. A screenshot
of every main page lands in test-artifacts/screenshots/ (gitignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import roles_ensure


@pytest.fixture(scope="session", autouse=True)
def orm_beside_playwright_loop():
    """Playwright's sync API runs an event loop in this thread for the whole browser session; the
    ORM calls made by fixtures (and the database flushes between tests) are ordinary synchronous
    code. Set only once a browser test runs - never at import, where it leaked into every test's
    subprocesses (`check --deploy` refuses it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORDS = {"marketer": "marketer-demo-pass", "reviewer": "reviewer-demo-pass", "admin": "admin-demo-pass"}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists()
                                              else shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def demo(transactional_db, monkeypatch, tmp_path, settings):
    """A 40-customer demo workspace, fast training settings and eager Celery in the live server."""
    from crm_console.celery import app
    from crm_console.demo_workspace import demo_workspace_seed
    from crm_console.training import agents_training, services

    roles_ensure()
    settings.POLICY_CHECKPOINT_DIR = tmp_path / "checkpoints"
    monkeypatch.setattr(agents_training, "EVALUATION_CUSTOMERS", 40)
    monkeypatch.setattr(agents_training, "EVALUATION_DAYS", 10)
    monkeypatch.setattr(agents_training, "WARM_START_Q_STEPS", 100)
    monkeypatch.setattr(services, "PROGRESS_SAVE_SECONDS", 0.0)
    demo_workspace_seed(seed=0, customers=40, days=21)
    from crm_console.campaigns.models import Campaign

    # the real stack sets a broker; these tests have no worker, so run tasks in the live server
    eager = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield Campaign.objects.get()
    app.conf.task_always_eager, app.conf.task_eager_propagates = eager


@pytest.fixture
def login(browser, live_server, demo) -> Iterator[Callable]:
    """login("reviewer") -> a Playwright page, logged in through the real login form.

    Whatever the test does, no page may have anything refused by the Content-Security-Policy.
    """
    contexts = []
    refused: list[str] = []

    def open_as(username: str):
        context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: refused.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text else None)
        page.set_default_timeout(30_000)
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORDS[username])
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert not refused, "refused by the Content-Security-Policy:\n" + "\n".join(refused)


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact (after charts have been drawn)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=True)
    return path
