"""The review page end to end in a real browser: Debian's Chromium, driven by Playwright.

The app runs under a real uvicorn server on a free loopback port, in a thread of the test; the
browser is ``/usr/bin/chromium`` (Playwright never downloads one here), headless, with a fresh
profile and its background networking off: this machine's network is closed, and a browser
that calls home at every start only slows the test down.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from playwright.async_api import Page, async_playwright, expect

from app.http.app import create_app

from .harness import SMALL_PLAN, panel_config, propose, seed, serve, settings_for

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 10_000
START_TIMEOUT_S = 15


@pytest.fixture
def chromium() -> Path:
    """Return Debian's Chromium, or fail saying how to install it or skip these tests."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium "
            'chromium-driver, or deselect these tests with -m "not browser"'
        )
    return CHROMIUM


@asynccontextmanager
async def live_server(database_url: str) -> AsyncIterator[str]:
    """Serve the app with uvicorn on a free loopback port and yield its base URL."""
    app = create_app(settings_for(database_url), config=panel_config())
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))  # the port is ours from here on: no race for a free one
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        with anyio.fail_after(START_TIMEOUT_S):
            while not server.started:
                assert thread.is_alive(), "the server stopped while starting"
                await anyio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await anyio.to_thread.run_sync(thread.join, START_TIMEOUT_S)
        listener.close()


async def _decide(page: Page, *, reviewer: str, comment: str, button: str) -> None:
    await page.get_by_label("Reviewer").fill(reviewer)
    await page.get_by_label("Comment").fill(comment)
    await page.get_by_role("button", name=button).click()


async def _approve_the_weights_proposal(page: Page, base: str, flips: int, shots: Path) -> None:
    """Read the pending proposal, open a flipped verdict's transcript, come back, approve."""
    await page.goto(f"{base}/review")
    pending = page.locator("#pending tbody tr")
    await expect(pending).to_have_count(1)
    await expect(pending).to_contain_text("weights")
    await pending.get_by_role("link", name="Review").click()

    await expect(page.locator("h1")).to_contain_text("Proposal #1: weights proposed")
    await expect(page.locator("table.evidence tbody tr").first).to_contain_text("alpha")
    await expect(page.locator("#flips h2")).to_have_text(f"Flipped verdicts ({flips})")
    await page.locator("#flips tbody a").first.click()

    await expect(page.locator("h1")).to_contain_text("Verdict")
    await expect(page.get_by_text("Go ahead with this deploy change?")).to_be_visible()
    await expect(page.get_by_role("heading", name="Round 2")).to_be_visible()
    await page.screenshot(path=shots / "transcript.png", full_page=True)
    await page.go_back()

    await expect(page.locator("h1")).to_contain_text("Proposal #1")
    await page.screenshot(path=shots / "proposal.png", full_page=True)
    await _decide(page, reviewer="rita", comment="Replay is better: approve.", button="Approve")
    await page.wait_for_url(re.compile(r"/review\?decided=1$"))
    await expect(page.get_by_role("status")).to_contain_text(
        "Proposal #1 is approved by rita: version 1 is now active."
    )
    await expect(page.locator("#weights")).to_contain_text("In force: version 1")
    active = page.locator("#weights tbody tr", has_text="active")
    await expect(active).to_contain_text("version 1")
    approval = page.locator("#audit tbody tr", has_text="proposal.approved")
    await expect(approval).to_contain_text("rita")
    await expect(approval).to_contain_text("Replay is better: approve.")


async def _reject_the_calibration_proposal(page: Page, base: str) -> None:
    await page.goto(f"{base}/review")
    pending = page.locator("#pending tbody tr")
    await expect(pending).to_have_count(1)
    await expect(pending).to_contain_text("calibration")
    await pending.get_by_role("link", name="Review").click()

    await expect(page.locator("h1")).to_contain_text("Proposal #2: calibration proposed")
    await _decide(page, reviewer="sam", comment="One judge only: not yet.", button="Reject")
    await page.wait_for_url(re.compile(r"/review\?decided=2$"))
    await expect(page.get_by_role("status")).to_contain_text("Proposal #2 is rejected by sam.")
    await expect(page.locator("#pending")).to_contain_text("No proposal awaits review.")
    await expect(page.locator("#decided tbody tr", has_text="#2")).to_contain_text("rejected")
    await expect(page.locator("#weights")).to_contain_text("In force: version 1")
    rejection = page.locator("#audit tbody tr", has_text="proposal.rejected")
    await expect(rejection).to_contain_text("sam")
    await expect(rejection).to_contain_text("One judge only: not yet.")


async def test_a_reviewer_approves_and_rejects_in_the_browser(
    sqlite_database: str, chromium: Path, tmp_path: Path
) -> None:
    async with serve(sqlite_database) as served:
        await seed(served, SMALL_PLAN)
        proposal = await propose(served.client, created_by="ops-bot")
    flips = len(proposal["replay"]["flipped"])
    assert flips > 0

    async with (
        live_server(sqlite_database) as base,
        httpx.AsyncClient(base_url=base, trust_env=False) as api,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            browser.set_default_timeout(STEP_TIMEOUT_MS)
            page = await browser.new_page()
            await _approve_the_weights_proposal(page, base, flips, tmp_path)
            created = await api.post(
                "/trust/proposals", json={"kind": "calibration", "min_evidence": 10}
            )
            assert created.status_code == 201, created.text
            await _reject_the_calibration_proposal(page, base)
            screenshot = tmp_path / "review.png"
            await page.screenshot(path=screenshot, full_page=True)
        finally:
            await browser.close()
    for shot in (tmp_path / "proposal.png", tmp_path / "transcript.png", screenshot):
        assert shot.read_bytes().startswith(b"\x89PNG")
